"""Console sessions and sign-in tokens (issue 9): a server-side session per sign-in with idle and absolute lifetimes,
logout and `salesbot console revoke` that really end them, expiring tokens, old-format tokens until revoked, the
cookie's flags, and secrets too short to sign with."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner, Result
from sqlalchemy import select, update

from bot.app import build_app
from bot.channels.console.auth import SessionPolicy, make_token, read_token, revoke_user
from bot.channels.console.web import COOKIE
from bot.cli import main
from bot.infra.clock import FixedClock
from bot.runtime import Runtime
from storage.models import ConsoleSession, User
from tests.conftest import T0, make_settings

SECRET = "sessions-test-console-secret-0123456789"  # 32+ bytes
NON_DEMO: dict[str, dict[str, Any]] = {"org": {"demo": False}, "console": {"enabled": True, "token_secret": SECRET}}
DEMO: dict[str, dict[str, Any]] = {}
IDLE = timedelta(hours=12)  # [console] session_idle_hours default
ABSOLUTE = timedelta(days=7)  # [console] session_max_days default


class Console:
    """An HTTP client without a cookie jar: every request says which session cookie it carries."""

    def __init__(self, client: TestClient[Any, Any], runtime: Runtime) -> None:
        self.client = client
        self.runtime = runtime

    async def sessions(self, user_id: str) -> list[ConsoleSession]:
        async with self.runtime.db.read() as s:
            query = select(ConsoleSession).where(ConsoleSession.user_id == user_id)
            return list(await s.scalars(query.order_by(ConsoleSession.created_at)))

    async def login(self, **body: str) -> aiohttp.ClientResponse:
        return await self.client.post("/console/api/login", json=body)

    async def sign_in(self, **body: str) -> str:
        resp = await self.login(**body)
        assert resp.status == 200, await resp.text()
        return resp.cookies[COOKIE].value

    async def send(self, cookie: str | None, text: str = "帮助") -> int:
        headers = {} if cookie is None else {"Cookie": f"{COOKIE}={cookie}"}
        resp = await self.client.post(
            "/console/api/send", json={"client_id": uuid.uuid4().hex, "text": text}, headers=headers
        )
        return resp.status

    async def me(self, cookie: str) -> Any:
        resp = await self.client.get("/console/api/me", headers={"Cookie": f"{COOKIE}={cookie}"})
        return (await resp.json())["user"]

    async def updates(self, cookie: str) -> int:
        resp = await self.client.get(
            "/console/api/updates", params={"wait": "0"}, headers={"Cookie": f"{COOKIE}={cookie}"}
        )
        return resp.status


ConsoleFactory = Callable[..., Awaitable[Console]]


@pytest.fixture
async def console_for(db_url: str, clock: FixedClock) -> AsyncIterator[ConsoleFactory]:
    """``await console_for(**sections)`` → a Console on a real server around a started runtime."""
    made: list[tuple[Runtime, TestClient[Any, Any]]] = []

    async def make(**sections: dict[str, Any]) -> Console:
        rt = Runtime(make_settings(db_url, **sections), clock=clock)
        await rt.start()
        client: TestClient[Any, Any] = TestClient(
            TestServer(build_app(rt, manage_runtime=False)), cookie_jar=aiohttp.DummyCookieJar()
        )
        await client.start_server()
        made.append((rt, client))
        return Console(client, rt)

    try:
        yield make
    finally:
        for rt, client in made:
            await client.close()
            await rt.close()


def token(user_id: str = "rep01", issued: datetime = T0, valid: timedelta = timedelta(days=1)) -> str:
    return make_token(SECRET, user_id, issued, issued + valid)


def old_format_token(user_id: str, secret: str = SECRET) -> str:
    """The format deployed admins handed out before tokens expired: ``user_id.mac`` (spelled out here on purpose,
    so that the test pins what is out in the field)."""
    mac = hmac.new(secret.encode(), f"console-token|{user_id}".encode(), hashlib.sha256).hexdigest()[:32]
    return f"{user_id}.{mac}"


def advance(clock: FixedClock, delta: timedelta) -> None:
    clock.set(clock.now() + delta)


# ---- sessions -----------------------------------------------------------------------------------------------------


async def test_every_sign_in_starts_its_own_session(
    console_for: ConsoleFactory, db_url: str, clock: FixedClock
) -> None:
    console = await console_for(**DEMO)  # demo mode: the people picker, same session rows
    first = await console.sign_in(user_id="rep01")
    advance(clock, timedelta(seconds=1))
    second = await console.sign_in(user_id="rep01")
    assert first != second
    assert await console.send(first) == 200 and await console.send(second) == 200
    rows = await console.sessions("rep01")
    # Only the SHA-256 of each cookie is stored, never the cookie itself.
    assert [r.id_hash for r in rows] == [hashlib.sha256(c.encode()).hexdigest() for c in (first, second)]
    assert all(r.expires_at == r.created_at + ABSOLUTE and r.revoked_at is None for r in rows)


async def test_logout_ends_the_session_for_good(console_for: ConsoleFactory) -> None:
    console = await console_for(**DEMO)
    cookie = await console.sign_in(user_id="rep01")
    other = await console.sign_in(user_id="rep01")  # another browser of the same person
    resp = await console.client.post("/console/api/logout", headers={"Cookie": f"{COOKIE}={cookie}"})
    assert resp.status == 200
    cleared = resp.cookies[COOKIE]
    assert cleared.value == "" and cleared["path"] == "/console" and cleared["max-age"] == "0"
    # A copy of the old cookie is worthless now.
    assert await console.send(cookie) == 401
    assert await console.updates(cookie) == 401
    assert await console.me(cookie) is None
    assert await console.send(other) == 200


async def test_session_ends_after_the_idle_lifetime(
    console_for: ConsoleFactory, db_url: str, clock: FixedClock
) -> None:
    console = await console_for(**NON_DEMO)
    cookie = await console.sign_in(token=token())
    advance(clock, IDLE - timedelta(seconds=1))
    assert await console.send(cookie) == 200  # still alive, and the request counts as activity
    advance(clock, IDLE - timedelta(seconds=1))
    assert await console.send(cookie) == 200
    advance(clock, IDLE)
    assert await console.send(cookie) == 401
    assert await console.me(cookie) is None


async def test_last_seen_is_written_at_most_once_a_minute(
    console_for: ConsoleFactory, db_url: str, clock: FixedClock
) -> None:
    console = await console_for(**DEMO)
    cookie = await console.sign_in(user_id="rep01")
    for _ in range(5):
        advance(clock, timedelta(seconds=10))
        assert await console.updates(cookie) == 200
    [row] = await console.sessions("rep01")
    assert row.last_seen_at == T0  # 50 s of polling: no write
    advance(clock, timedelta(seconds=10))
    assert await console.updates(cookie) == 200
    [row] = await console.sessions("rep01")
    assert row.last_seen_at == T0 + timedelta(seconds=60)


async def test_session_ends_at_the_absolute_lifetime_however_busy(
    console_for: ConsoleFactory, clock: FixedClock
) -> None:
    console = await console_for(**NON_DEMO)
    cookie = await console.sign_in(token=token(valid=timedelta(days=30)))
    while clock.now() + timedelta(hours=6) < T0 + ABSOLUTE:
        advance(clock, timedelta(hours=6))
        assert await console.send(cookie) == 200
    clock.set(T0 + ABSOLUTE)
    assert await console.send(cookie) == 401


async def test_session_of_a_deactivated_person_is_refused(console_for: ConsoleFactory) -> None:
    console = await console_for(**DEMO)
    cookie = await console.sign_in(user_id="rep01")
    async with console.runtime.db.transaction() as s:
        await s.execute(update(User).where(User.id == "rep01").values(active=False))
    assert await console.send(cookie) == 401


@pytest.mark.parametrize("cookie", ["", "x" * 43, "not a cookie", "rep01." + "0" * 32, "a" * 5000])
async def test_made_up_cookies_are_refused(console_for: ConsoleFactory, cookie: str) -> None:
    console = await console_for(**DEMO)
    await console.sign_in(user_id="rep01")
    assert await console.send(cookie) == 401


async def test_cookie_flags(console_for: ConsoleFactory) -> None:
    console = await console_for(**DEMO)
    resp = await console.login(user_id="rep01")
    morsel = resp.cookies[COOKIE]
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Strict"
    assert morsel["path"] == "/console"
    assert morsel["max-age"] == str(int(ABSOLUTE.total_seconds()))
    assert not morsel["secure"]  # plain http: a Secure cookie would never come back
    # Behind a reverse proxy on this host that terminates TLS.
    proxied = await console.client.post(
        "/console/api/login", json={"user_id": "rep01"}, headers={"X-Forwarded-Proto": "https"}
    )
    assert proxied.cookies[COOKIE]["secure"] is True


# ---- sign-in tokens -----------------------------------------------------------------------------------------------


async def test_token_works_until_it_expires(console_for: ConsoleFactory, clock: FixedClock) -> None:
    console = await console_for(**NON_DEMO)
    issued = token(issued=T0, valid=timedelta(hours=2))
    clock.set(T0 + timedelta(hours=2) - timedelta(seconds=1))
    assert (await console.login(token=issued)).status == 200
    clock.set(T0 + timedelta(hours=2))
    assert (await console.login(token=issued)).status == 401


async def test_revoke_ends_sessions_and_voids_older_tokens(
    console_for: ConsoleFactory, db_url: str, clock: FixedClock
) -> None:
    console = await console_for(**NON_DEMO)
    handed_out = token("rep01", issued=T0 - timedelta(days=1), valid=timedelta(days=30))
    laptop = await console.sign_in(token=handed_out)
    phone = await console.sign_in(token=handed_out)
    colleague = await console.sign_in(token=token("rep02", issued=T0 - timedelta(hours=1)))
    advance(clock, timedelta(minutes=5))
    rt = console.runtime

    done = await revoke_user(rt.db, clock.now(), "rep01", SessionPolicy(IDLE, ABSOLUTE))

    assert done is not None and done.sessions == 2 and done.tokens_before == clock.now()
    assert await console.send(laptop) == 401 and await console.send(phone) == 401
    assert await console.send(colleague) == 200  # someone else's session is untouched
    assert (await console.login(token=handed_out)).status == 401
    fresh = token("rep01", issued=clock.now())
    assert await console.send(await console.sign_in(token=fresh)) == 200
    assert await revoke_user(rt.db, clock.now(), "ghost", SessionPolicy(IDLE, ABSOLUTE)) is None


async def test_old_format_token_works_with_a_warning_until_revoked(
    console_for: ConsoleFactory, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    console = await console_for(**NON_DEMO)
    legacy = old_format_token("rep01")
    with caplog.at_level(logging.WARNING, logger="bot.channels.console.auth"):
        cookie = await console.sign_in(token=legacy)
    [warning] = [r for r in caplog.records if r.name == "bot.channels.console.auth"]
    assert warning.levelno == logging.WARNING and "old-format" in warning.getMessage()
    assert "rep01" in warning.getMessage() and legacy.split(".")[1] not in caplog.text  # never the token itself
    assert await console.send(cookie) == 200

    rt = console.runtime
    await revoke_user(rt.db, clock.now(), "rep01", SessionPolicy(IDLE, ABSOLUTE))
    assert (await console.login(token=legacy)).status == 401
    assert await console.send(cookie) == 401


async def test_tampered_and_wrong_tokens_get_one_and_the_same_answer(
    console_for: ConsoleFactory, clock: FixedClock
) -> None:
    console = await console_for(**NON_DEMO)
    good = token("rep01", issued=T0 - timedelta(days=2), valid=timedelta(days=1))  # expired yesterday
    user_id, issued, expires, mac = good.rsplit(".", 3)
    later = str(int(expires) + 10 * 86_400_000)
    rt = console.runtime
    await revoke_user(rt.db, T0 - timedelta(days=5), "rep03", SessionPolicy(IDLE, ABSOLUTE))
    bad = {
        "expired": good,
        "changed-expiry": f"{user_id}.{issued}.{later}.{mac}",
        "changed-user": f"rep02.{issued}.{expires}.{mac}",
        "changed-issued": f"{user_id}.{int(issued) + 1}.{expires}.{mac}",
        "flipped-mac": f"{user_id}.{issued}.{expires}.{mac[:-1]}{'0' if mac[-1] != '0' else '1'}",
        "other-secret": make_token("x" * 40, "rep01", T0, T0 + timedelta(days=1)),
        "unknown-user": token("ghost"),
        "revoked-user-old-format": old_format_token("rep03"),
        "old-format-changed-user": "rep02." + old_format_token("rep01").split(".")[1],
        "garbage": "rep01.abc.def.ghi",
        "huge": "9" * 200,
    }
    reference = await console.login(token="x")
    expected = (401, await reference.text(), False)
    for name, value in bad.items():
        resp = await console.login(token=value)
        assert (resp.status, await resp.text(), COOKIE in resp.cookies) == expected, name
    # The untampered twin with the original expiry would be fine, had it not expired.
    assert read_token(SECRET, good) is not None


async def test_token_and_login_by_user_id_outside_demo_mode(console_for: ConsoleFactory) -> None:
    console = await console_for(**NON_DEMO)
    assert (await console.login(user_id="rep01")).status == 401
    assert (await console.login(user_id="rep01", token=token())).status == 200


# ---- the CLI ------------------------------------------------------------------------------------------------------


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    base = {k: None for k in os.environ if k.startswith("SALESBOT__") or k == "SALESBOT_CONFIG"}
    return CliRunner().invoke(main, list(args), env={**base, **(env or {})}, catch_exceptions=False)


@pytest.mark.parametrize("secret", ["", "s3cret", "x" * 31], ids=["empty", "short", "31-bytes"])
@pytest.mark.parametrize("command", [("config", "check"), ("serve",)], ids=["config-check", "serve"])
def test_short_secret_is_refused_by_config_check_and_serve(
    keep_logging: None, secret: str, command: tuple[str, ...]
) -> None:
    env = {"SALESBOT__CONSOLE__ENABLED": "true", "SALESBOT__CONSOLE__TOKEN_SECRET": secret}
    result = cli(*command, env=env)
    assert result.exit_code == 1, result.output
    assert "console.token_secret must be at least 32 bytes" in result.stderr
    assert "secrets.token_urlsafe" in result.stderr  # how to make a good one
    assert "Traceback" not in result.output


def test_short_secret_is_refused_by_console_token(keep_logging: None) -> None:
    result = cli("console", "token", "rep01", env={"SALESBOT__CONSOLE__TOKEN_SECRET": "s3cret"})
    assert result.exit_code == 1
    assert "at least 32 bytes" in result.stderr and result.stdout == ""


@pytest.mark.parametrize(
    ("valid", "lifetime"), [("90m", timedelta(minutes=90)), ("12h", timedelta(hours=12)), ("7d", timedelta(days=7))]
)
def test_console_token_valid_option(keep_logging: None, valid: str, lifetime: timedelta) -> None:
    result = cli("console", "token", "rep01", "--valid", valid, env={"SALESBOT__CONSOLE__TOKEN_SECRET": SECRET})
    assert result.exit_code == 0, result.output
    claims = read_token(SECRET, result.stdout.strip())
    assert claims is not None and claims.issued_at is not None and claims.expires_at is not None
    assert claims.expires_at - claims.issued_at == lifetime


@pytest.mark.parametrize("valid", ["0d", "7", "7y", "-1h", "5000d"])
def test_console_token_refuses_a_bad_validity(keep_logging: None, valid: str) -> None:
    result = cli("console", "token", "rep01", "--valid", valid, env={"SALESBOT__CONSOLE__TOKEN_SECRET": SECRET})
    assert result.exit_code == 2
    assert "--valid" in result.stderr and result.stdout == ""


async def test_console_revoke_command(
    console_for: ConsoleFactory, db_url: str, clock: FixedClock, keep_logging: None
) -> None:
    # The CLI runs on the wall clock; start the server's clock there too.
    clock.set(datetime.now(UTC))
    console = await console_for(**NON_DEMO)
    env = {"SALESBOT__DATABASE__URL": db_url, "SALESBOT__CONSOLE__TOKEN_SECRET": SECRET}
    before = (await asyncio.to_thread(cli, "console", "token", "rep01", env=env)).stdout.strip()
    cookie = await console.sign_in(token=before)

    result = await asyncio.to_thread(cli, "console", "revoke", "rep01", env=env)

    assert result.exit_code == 0, result.output
    assert "1 live sessions revoked" in result.stdout and "1 个有效会话已注销" in result.stdout
    assert await console.send(cookie) == 401
    assert (await console.login(token=before)).status == 401
    after = (await asyncio.to_thread(cli, "console", "token", "rep01", env=env)).stdout.strip()
    assert await console.send(await console.sign_in(token=after)) == 200

    unknown = await asyncio.to_thread(cli, "console", "revoke", "ghost", env=env)
    assert unknown.exit_code == 1 and "ghost" in unknown.stderr
