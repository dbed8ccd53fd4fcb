"""The console channel's wire side: a chat page and a small JSON API, through the same pipeline as WeCom."""

from __future__ import annotations

import ipaddress
import logging
import re
from pathlib import Path
from typing import Any

from aiohttp import web
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import BaseModel, Field
from sqlalchemy import select

from bot.channels import keys
from bot.channels.base import Host
from bot.channels.console import auth, headers, media
from bot.channels.console.channel import hub_of
from bot.channels.console.jsonbody import error_response as _bad
from bot.channels.console.jsonbody import read_model as _body
from bot.core.events import CardAction, InboundEvent, LocationShared, TextMessage
from bot.services import commands
from storage.models import ConsoleFeed, Customer, User

log = logging.getLogger(__name__)

COOKIE = "salesbot_console"
COOKIE_PATH = "/console"
_SIGN_IN_FAILED = "登录失败：令牌无效、已过期或已被注销"
STATIC_DIR = Path(__file__).parent / "static"
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_CURSOR = re.compile(r"[0-9]{1,19}")  # ASCII digits only (int() also takes "٣", "1_0", " 1")
_env = Environment(loader=PackageLoader("bot.channels.console", "templates"), autoescape=select_autoescape(["html"]))


class _Send(BaseModel):
    client_id: str = Field(pattern=_CLIENT_ID.pattern)
    text: str = Field(min_length=1, max_length=2000)


class _Action(BaseModel):
    client_id: str = Field(pattern=_CLIENT_ID.pattern)
    payload: str = Field(min_length=1, max_length=1024)
    card_ref: str = Field("", max_length=128)


class _Location(BaseModel):
    client_id: str = Field(pattern=_CLIENT_ID.pattern)
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    label: str = Field("", max_length=200)


class _Login(BaseModel):
    # No control characters: PostgreSQL refuses NUL in a text parameter (the lookup failed with a 500).
    user_id: str | None = Field(None, max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$")
    token: str | None = Field(None, max_length=200)


def _rt(request: web.Request) -> Host:
    return request.app[keys.RUNTIME]


def _policy(rt: Host) -> auth.SessionPolicy:
    return auth.SessionPolicy.from_config(rt.settings.console)


def _https(request: web.Request) -> bool:
    """Whether the browser reached us over https: TLS terminated here, or ``X-Forwarded-Proto: https`` from a
    reverse proxy on this host (a loopback peer). A header from anyone else is not trusted."""
    if request.secure:
        return True
    try:
        local = request.remote is not None and ipaddress.ip_address(request.remote).is_loopback
    except ValueError:
        local = False
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return local and forwarded == "https"


async def _session_user(request: web.Request) -> User | None:
    rt = _rt(request)
    return await auth.session_user(rt.db, rt.clock.now(), request.cookies.get(COOKIE), _policy(rt))


async def _current_user(request: web.Request) -> User:
    """The signed-in person (a live session), else 401."""
    user = await _session_user(request)
    if user is None:
        raise web.HTTPUnauthorized(text='{"error": "请先登录（会话已失效或已退出）"}', content_type="application/json")
    return user


async def page(request: web.Request) -> web.Response:
    rt = _rt(request)
    html = _env.get_template("console.html").render(
        demo=rt.settings.org.demo, org=rt.settings.org.name, upload_max=rt.settings.console.upload_max_bytes
    )
    return web.Response(text=html, content_type="text/html")


def _user_json(rt: Host, user: User) -> dict[str, Any]:
    """The signed-in person as the page shows them: name, roles and the shortcut chips of those roles (decided
    here, by ``bot.services.commands``, so the page renders what it is given)."""
    chips = commands.chips(user.roles, user.locale, rt.settings.request_types)
    return {
        "id": user.id,
        "name": user.name,
        "roles": user.roles,
        "chips": [{"label": c.label, "text": c.text} for c in chips],
    }


async def me(request: web.Request) -> web.Response:
    rt = _rt(request)
    user = await _session_user(request)
    return web.json_response({"demo": rt.settings.org.demo, "user": None if user is None else _user_json(rt, user)})


async def users(request: web.Request) -> web.Response:
    """Demo mode only: the people one can act as."""
    rt = _rt(request)
    if not rt.settings.org.demo:
        raise web.HTTPNotFound()
    async with rt.db.read() as s:
        rows = list(await s.scalars(select(User).where(User.active.is_(True)).order_by(User.id)))
    return web.json_response(
        {"users": [{"id": u.id, "name": u.name, "roles": u.roles, "department": u.department} for u in rows]}
    )


async def places(request: web.Request) -> web.Response:
    """Demo mode only: customer coordinates, to simulate standing at a hospital."""
    rt = _rt(request)
    if not rt.settings.org.demo:
        raise web.HTTPNotFound()
    async with rt.db.read() as s:
        rows = await s.execute(
            select(Customer.name, Customer.latitude, Customer.longitude)
            .where(Customer.latitude.is_not(None))
            .order_by(Customer.id)
        )
    return web.json_response({"places": [{"name": n, "latitude": a, "longitude": o} for n, a, o in rows]})


async def login(request: web.Request) -> web.Response:
    """Sign in (demo mode: by ``user_id``; otherwise by ``token``) and start a new session."""
    rt = _rt(request)
    body: _Login = await _body(request, _Login)
    now = rt.clock.now()
    secret = rt.settings.console.token_secret
    user: User | None = None
    if rt.settings.org.demo and body.user_id:
        async with rt.db.read() as s:
            user = await s.get(User, body.user_id)
        if user is not None and not user.active:
            user = None
    elif body.token and secret is not None:
        user = await auth.check_sign_in(rt.db, now, secret.get_secret_value(), body.token)
    if user is None:
        return _bad(_SIGN_IN_FAILED, 401)
    new = await auth.start_session(rt.db, now, user.id, _policy(rt), request.headers.get("User-Agent", ""))
    log.info("console sign-in: user %s", user.id)
    resp = web.json_response({"user": _user_json(rt, user)})
    resp.set_cookie(
        COOKIE,
        new.cookie,
        path=COOKIE_PATH,
        max_age=new.max_age,
        httponly=True,
        samesite="Strict",
        secure=_https(request),
    )
    return resp


async def logout(request: web.Request) -> web.Response:
    """Sign out: the session row is revoked (the cookie is worthless from now on) and the cookie cleared."""
    rt = _rt(request)
    await auth.end_session(rt.db, rt.clock.now(), request.cookies.get(COOKIE))
    resp = web.json_response({"ok": True})
    resp.del_cookie(COOKIE, path=COOKIE_PATH)
    return resp


async def _ingest(request: web.Request, user: User, event: InboundEvent, echo: dict[str, Any] | None) -> web.Response:
    rt = _rt(request)
    extras = [] if echo is None else [ConsoleFeed(user_id=user.id, kind="text", body=echo, created_at=rt.clock.now())]
    with rt.ack_first.acknowledging():
        result = await rt.pipeline.ingest(event, extras)
    if not result.duplicate and echo is not None:
        hub_of(rt).notify([user.id])
    return web.json_response({"accepted": True, "duplicate": result.duplicate})


def _origin(user: User, client_id: str) -> dict[str, str]:
    """Who sent a console event, and its dedup key: the browser's id for the message, per person (a resend of the
    same message is a duplicate)."""
    return {"channel": "console", "sender": user.id, "dedup_key": f"{user.id}:{client_id}"}


async def send(request: web.Request) -> web.Response:
    user = await _current_user(request)
    body: _Send = await _body(request, _Send)
    event = TextMessage(**_origin(user, body.client_id), text=body.text)
    # The echo shows what was stored: the text after the inbound rule (bot.infra.sanitize).
    return await _ingest(request, user, event, {"from": "user", "text": event.text})


async def action(request: web.Request) -> web.Response:
    user = await _current_user(request)
    body: _Action = await _body(request, _Action)
    event = CardAction(**_origin(user, body.client_id), payload=body.payload, card_ref=body.card_ref)
    return await _ingest(request, user, event, None)


async def location(request: web.Request) -> web.Response:
    user = await _current_user(request)
    body: _Location = await _body(request, _Location)
    event = LocationShared(
        **_origin(user, body.client_id), latitude=body.latitude, longitude=body.longitude, label=body.label
    )
    label = event.label or f"{body.latitude:.5f}, {body.longitude:.5f}"
    return await _ingest(request, user, event, {"from": "user", "text": f"📍 {label}"})


async def updates(request: web.Request) -> web.Response:
    """Long-poll: feed rows after ``after`` for the signed-in user, waiting up to the configured timeout."""
    rt = _rt(request)
    user = await _current_user(request)
    raw_after = request.query.get("after", "0")
    if not _CURSOR.fullmatch(raw_after) or int(raw_after) >= 2**63:
        return _bad("after must be an integer between 0 and 2^63-1")
    after = int(raw_after)
    wait = request.query.get("wait", "1") != "0"
    items = await _feed(rt, user.id, after)
    if not items and wait:
        await hub_of(rt).wait(user.id, rt.settings.console.poll_timeout_seconds)
        items = await _feed(rt, user.id, after)
    return web.json_response({"items": items, "cursor": items[-1]["id"] if items else after})


async def _feed(rt: Host, user_id: str, after: int) -> list[dict[str, Any]]:
    async with rt.db.read() as s:
        rows = await s.scalars(
            select(ConsoleFeed)
            .where(ConsoleFeed.user_id == user_id, ConsoleFeed.id > after)
            .order_by(ConsoleFeed.id)
            .limit(200)
        )
        return [
            {"id": r.id, "kind": r.kind, "card_ref": r.card_ref, "at": r.created_at.isoformat(), **r.body} for r in rows
        ]


# The page's own files, by name: nothing else under static/ is reachable, and no request path reaches the file
# system (a 300-character name made aiohttp's static route fail with ENAMETOOLONG → 500).
_STATIC_FILES = frozenset({"console.js", "console.css"})


async def static(request: web.Request) -> web.StreamResponse:
    """The console's script and stylesheet."""
    name = request.match_info["name"]
    if name not in _STATIC_FILES:
        raise web.HTTPNotFound()
    return web.FileResponse(STATIC_DIR / name)


def setup(app: web.Application) -> None:
    """Mount the console under /console."""

    async def release_long_polls(_app: web.Application) -> None:
        # aiohttp waits for open requests on shutdown; wake the console long-polls so it need not wait 25 s.
        hub_of(_app[keys.RUNTIME]).close()

    app.on_shutdown.append(release_long_polls)
    app.router.add_get("/console", page)
    app.router.add_get("/console/", page)
    app.router.add_get("/console/api/me", me)
    app.router.add_get("/console/api/users", users)
    app.router.add_get("/console/api/places", places)
    app.router.add_post("/console/api/login", login)
    app.router.add_post("/console/api/logout", logout)
    app.router.add_post("/console/api/send", send)
    app.router.add_post("/console/api/action", action)
    app.router.add_post("/console/api/location", location)
    app.router.add_get("/console/api/updates", updates)
    media.setup(app, _current_user, _ingest)
    app.router.add_get("/console/static/{name}", static)
    headers.setup(app)
