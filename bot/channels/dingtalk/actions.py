"""Action links: the buttons of a card sent without an interactive card template (``sampleActionCard`` messages
carry URL buttons only), and ``GET /dingtalk/act/<token>``, which applies the tap.

A token is ``<payload>.<signature>``, both base64url without padding: the payload is the JSON
``{"u": user id, "r": card ref, "k": button key, "t": button label, "e": expiry (unix seconds)}`` and the signature
HMAC-SHA256 over the payload's base64 text with a key derived from the app secret (HMAC-SHA256(app_secret,
"salesbot/dingtalk/action-link/v1"): the secret itself never signs anything a browser sees). Links expire after
``[dingtalk] action_link_hours``.

The route verifies the token (forged → 403, malformed → 400, expired → 410), looks the person up by the user id
it carries (their DingTalk staff id is the event's sender), and ingests a neutral ``CardAction`` for them with the
dedup key ``act:<sha256 of the token>``, committed with a ``dingtalk_action_links`` row: the same link opened again
(a second tap, a browser reload, a preview fetch) is a duplicate → 409 and nothing changes. The answer is a tiny
zh-CN page (no script, ``default-src 'none'``); what the tap did arrives as the bot's reply in DingTalk.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web
from sqlalchemy import select

from bot.channels import keys
from bot.config import Settings
from bot.core.events import CardAction
from bot.infra import i18n
from storage.models import DingTalkActionLink, User

log = logging.getLogger(__name__)

PATH = "/dingtalk/act/{token}"
PREFIX = "/dingtalk/act/"
CHANNEL = "dingtalk"
MAX_TOKEN_CHARS = 3000
LABEL_MAX_CHARS = 20
_KEY_INFO = b"salesbot/dingtalk/action-link/v1"
PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class ActionClaim:
    """What a verified link says: who taps which button of which card."""

    user_id: str
    card_ref: str
    button_key: str
    label: str
    expires: int


class LinkRejected(Exception):
    def __init__(self, status: int, reason: str, message_key: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.message_key = message_key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(settings: Settings) -> bytes:
    secret = settings.dingtalk.app_secret.get_secret_value().encode()
    return hmac.new(secret, _KEY_INFO, hashlib.sha256).digest()


def action_token(
    settings: Settings, user_id: str, card_ref: str, button_key: str, now: datetime, label: str = ""
) -> str:
    expires = int((now + timedelta(hours=settings.dingtalk.action_link_hours)).timestamp())
    claim = {"u": user_id, "r": card_ref, "k": button_key, "t": label[:LABEL_MAX_CHARS], "e": expires}
    body = _b64(json.dumps(claim, ensure_ascii=False, separators=(",", ":")).encode())
    signature = _b64(hmac.new(_key(settings), body.encode(), hashlib.sha256).digest())
    return f"{body}.{signature}"


def action_link(
    settings: Settings, user_id: str, card_ref: str, button_key: str, now: datetime, label: str = ""
) -> str:
    """The signed URL that taps ``button_key`` on ``card_ref`` as ``user_id`` (valid ``action_link_hours``)."""
    token = action_token(settings, user_id, card_ref, button_key, now, label)
    return f"{settings.dingtalk.public_base_url}{PREFIX}{token}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def verify(settings: Settings, token: str, now: datetime) -> ActionClaim:
    """The claim of a genuine, unexpired ``token``; ``LinkRejected`` otherwise (nothing is looked up)."""
    if not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise LinkRejected(400, "malformed token", "dingtalk.act_invalid")
    body, signature = token.split(".")
    expected = _b64(hmac.new(_key(settings), body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise LinkRejected(403, "bad signature", "dingtalk.act_invalid")
    try:
        claim = json.loads(_unb64(body))
        result = ActionClaim(
            user_id=str(claim["u"]),
            card_ref=str(claim["r"]),
            button_key=str(claim["k"]),
            label=str(claim.get("t") or ""),
            expires=int(claim["e"]),
        )
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise LinkRejected(400, "unreadable claim", "dingtalk.act_invalid") from None
    if now.timestamp() >= result.expires:
        raise LinkRejected(410, "link expired", "dingtalk.act_expired")
    return result


def page(status: int, message: str, locale: str | None = None) -> web.Response:
    """A tiny page: one heading and one line, no script, nothing loaded."""
    title = html.escape(i18n.t(locale, "dingtalk.act_title"))
    body = (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title>"
        "<style>body{font-family:sans-serif;margin:2em;font-size:1.1em;line-height:1.6}</style></head>"
        f"<body><h1>{title}</h1><p>{html.escape(message)}</p></body></html>"
    )
    return web.Response(status=status, text=body, content_type="text/html", charset="utf-8", headers=PAGE_HEADERS)


async def act(request: web.Request) -> web.Response:
    """Apply a tap carried by a signed link, once."""
    rt = request.app[keys.RUNTIME]
    locale: str = rt.settings.org.default_locale
    token = request.match_info.get("token", "")
    try:
        claim = verify(rt.settings, token, rt.clock.now())
    except LinkRejected as exc:
        rt.metrics.inbound.labels(CHANNEL, "card_action", "rejected").inc()
        log.warning("dingtalk action link rejected: %s (%s)", exc.status, exc.reason)
        return page(exc.status, i18n.t(locale, exc.message_key), locale)
    try:
        async with rt.db.read() as s:
            user = await s.scalar(select(User).where(User.id == claim.user_id))
            staff_id = user.channel_id(CHANNEL) if user is not None and user.active else None
    except Exception as exc:
        rt.metrics.errors.labels("dingtalk_act").inc()
        log.error("dingtalk action link: directory lookup failed: %s", exc.__class__.__name__)
        return page(503, i18n.t(locale, "dingtalk.act_busy"), locale)
    if not staff_id or user is None:
        return page(403, i18n.t(locale, "dingtalk.act_invalid"), locale)
    locale = user.locale
    digest = token_hash(token)
    event = CardAction(
        channel=CHANNEL,
        sender=staff_id,
        dedup_key=f"act:{digest}",
        payload=claim.button_key,
        card_ref=claim.card_ref,
    )
    row = DingTalkActionLink(
        token_hash=digest, user_id=claim.user_id, card_ref=claim.card_ref[:200], used_at=rt.clock.now()
    )
    try:
        with rt.ack_first.acknowledging():
            result = await rt.pipeline.ingest(event, [row])
    except Exception as exc:
        rt.metrics.errors.labels("dingtalk_act").inc()
        log.error("dingtalk action link from %s not stored: %s", claim.user_id, exc.__class__.__name__)
        return page(503, i18n.t(locale, "dingtalk.act_busy"), locale)
    if result.duplicate:
        return page(409, i18n.t(locale, "dingtalk.act_used"), locale)
    label = claim.label or i18n.t(locale, "dingtalk.act_button")
    return page(200, i18n.t(locale, "dingtalk.act_done", label=label), locale)


def setup(app: web.Application) -> None:
    """Mount ``GET /dingtalk/act/{token}`` once."""
    if any(getattr(r.resource, "canonical", "") == PATH for r in app.router.routes()):
        return
    # No HEAD: a link previewer's HEAD must not use the link up.
    app.router.add_get(PATH, act, allow_head=False)
