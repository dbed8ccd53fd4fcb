"""The web app around a runtime: health, metrics, the console API under hostile input, and sign-in outside demo mode."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from bot.app import build_app
from bot.channels.console.auth import make_token
from bot.channels.console.web import COOKIE
from bot.infra.clock import FixedClock
from bot.runtime import Runtime
from storage.migrate import head_revision
from tests.conftest import T0, make_settings

ACCEPTED_TEXT = {"channel": "console", "kind": "text", "result": "accepted"}
ClientFactory = Callable[[Runtime], Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def client_for() -> AsyncIterator[ClientFactory]:
    """``await client_for(runtime)`` → an HTTP client on a real server around ``runtime``."""
    clients: list[TestClient[Any, Any]] = []

    async def make(rt: Runtime) -> TestClient[Any, Any]:
        client: TestClient[Any, Any] = TestClient(TestServer(build_app(rt, manage_runtime=False)))
        await client.start_server()
        clients.append(client)
        return client

    try:
        yield make
    finally:
        for c in clients:
            await c.close()


@pytest.fixture
async def client(runtime: Runtime, client_for: ClientFactory) -> TestClient[Any, Any]:
    return await client_for(runtime)


@pytest.fixture
async def runtime_with(db_url: str, clock: FixedClock) -> AsyncIterator[Callable[..., Awaitable[Runtime]]]:
    """``await runtime_with(org={...}, console={...})`` → a started runtime on the test database."""
    made: list[Runtime] = []

    async def make(**sections: dict[str, Any]) -> Runtime:
        rt = Runtime(make_settings(db_url, **sections), clock=clock)
        await rt.start()
        made.append(rt)
        return rt

    try:
        yield make
    finally:
        for rt in made:
            await rt.close()


def new_id() -> str:
    return uuid.uuid4().hex


async def sign_in(client: TestClient[Any, Any], user_id: str = "rep01") -> None:
    resp = await client.post("/console/api/login", json={"user_id": user_id})
    assert resp.status == 200, await resp.text()


def metric_value(text: str, family: str, labels: dict[str, str]) -> float:
    for fam in text_string_to_metric_families(text):
        if fam.name != family:
            continue
        for sample in fam.samples:
            if sample.name == f"{family}_total" and sample.labels == labels:
                return float(sample.value)
    return 0.0


# ---- health and metrics -------------------------------------------------------------------------------------


async def test_healthz_reports_database_and_revision(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert body["status"] == "ok"
    assert body["database"] == {"ok": True, "revision": head_revision()}
    assert "console" in body["channels"]


async def test_healthz_warns_when_the_holiday_data_ends(client: TestClient[Any, Any], clock: Any) -> None:
    from datetime import UTC, datetime

    clock.set(datetime(2031, 6, 1, 2, 0, tzinfo=UTC))  # beyond any chinese-calendar data shipped today
    body = await (await client.get("/healthz")).json()
    assert body["status"] == "ok"  # deadlines still work, on weekdays plus the configured dates
    [warning] = body["warnings"]
    assert warning.startswith("calendar: ") and "2031" in warning and "extra_closed" in warning


async def test_metrics_exposes_the_operator_counters(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.content_type == "text/plain"
    text = await resp.text()
    for name in ("salesbot_inbound_events", "salesbot_handler_seconds", "salesbot_outbox_depth", "salesbot_errors"):
        assert f"# TYPE {name}" in text, name
    # The text parses as Prometheus exposition.
    assert {f.name for f in text_string_to_metric_families(text)} >= {
        "salesbot_inbound_events",
        "salesbot_handler_seconds",
        "salesbot_outbox_depth",
        "salesbot_errors",
    }


async def test_console_message_increments_inbound_counter(client: TestClient[Any, Any], runtime: Runtime) -> None:
    before = metric_value(await (await client.get("/metrics")).text(), "salesbot_inbound_events", ACCEPTED_TEXT)
    await sign_in(client)
    resp = await client.post("/console/api/send", json={"client_id": new_id(), "text": "帮助"})
    assert resp.status == 200
    await runtime.settle()
    text = await (await client.get("/metrics")).text()
    assert metric_value(text, "salesbot_inbound_events", ACCEPTED_TEXT) == before + 1
    handled = [
        s
        for f in text_string_to_metric_families(text)
        if f.name == "salesbot_handler_seconds"
        for s in f.samples
        if s.name == "salesbot_handler_seconds_count" and s.labels.get("handler") == "help.show_help"
    ]
    assert [s.value for s in handled] == [1.0]


# ---- console API under hostile input ---------------------------------------------------------------------------


async def test_send_without_cookie_is_401_json(client: TestClient[Any, Any]) -> None:
    resp = await client.post("/console/api/send", json={"client_id": new_id(), "text": "帮助"})
    assert resp.status == 401
    assert "error" in await resp.json()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/console/api/send"),
        ("POST", "/console/api/action"),
        ("POST", "/console/api/location"),
        ("GET", "/console/api/updates"),
    ],
)
async def test_forged_cookie_is_401(client: TestClient[Any, Any], method: str, path: str) -> None:
    forged = {"Cookie": f"{COOKIE}=rep01.{'0' * 32}"}
    resp = await client.request(method, path, json={"client_id": new_id(), "text": "x"}, headers=forged)
    assert resp.status == 401
    assert "error" in await resp.json()


async def test_bad_json_is_400(client: TestClient[Any, Any]) -> None:
    await sign_in(client)
    resp = await client.post("/console/api/send", data=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert "JSON" in (await resp.json())["error"]


@pytest.mark.parametrize(
    "body",
    [
        {"client_id": "abcdefgh1234"},  # text missing
        {"client_id": "bad id!", "text": "帮助"},  # client_id pattern
        {"client_id": "short", "text": "帮助"},  # client_id too short
        {"client_id": "abcdefgh1234", "text": ""},  # empty text
        {"client_id": "abcdefgh1234", "text": "x" * 2001},  # text too long
        ["not", "an", "object"],
    ],
    ids=["missing-text", "bad-client-id", "short-client-id", "empty-text", "long-text", "array"],
)
async def test_invalid_send_body_is_400(client: TestClient[Any, Any], runtime: Runtime, body: Any) -> None:
    await sign_in(client)
    resp = await client.post("/console/api/send", json=body)
    assert resp.status == 400
    assert "error" in await resp.json()
    await runtime.settle()
    metrics = await (await client.get("/metrics")).text()
    assert metric_value(metrics, "salesbot_inbound_events", ACCEPTED_TEXT) == 0


async def test_invalid_location_is_400(client: TestClient[Any, Any]) -> None:
    await sign_in(client)
    resp = await client.post("/console/api/location", json={"client_id": new_id(), "latitude": 91, "longitude": 0})
    assert resp.status == 400


async def test_body_over_limit_is_413(client: TestClient[Any, Any], runtime: Runtime) -> None:
    await sign_in(client)
    limit = runtime.settings.server.max_body_bytes
    resp = await client.post("/console/api/send", json={"client_id": new_id(), "text": "x" * (limit + 1)})
    assert resp.status == 413


async def test_updates_with_non_integer_cursor_is_400(client: TestClient[Any, Any]) -> None:
    await sign_in(client)
    resp = await client.get("/console/api/updates", params={"after": "abc", "wait": "0"})
    assert resp.status == 400
    assert "error" in await resp.json()


async def test_updates_with_huge_cursor_is_400(client: TestClient[Any, Any]) -> None:
    await sign_in(client)
    resp = await client.get("/console/api/updates", params={"after": "9" * 20, "wait": "0"})
    assert resp.status == 400


async def test_demo_login_for_unknown_user_is_401(client: TestClient[Any, Any]) -> None:
    resp = await client.post("/console/api/login", json={"user_id": "ghost"})
    assert resp.status == 401


# ---- outside demo mode ------------------------------------------------------------------------------------------

SECRET = "test-console-secret-0123456789abcdef"  # 32+ bytes: shorter ones are refused
NON_DEMO = {"org": {"demo": False}, "console": {"enabled": True, "token_secret": SECRET}}


def token(user_id: str = "rep01", secret: str = SECRET) -> str:
    return make_token(secret, user_id, T0 - timedelta(hours=1), T0 + timedelta(days=1))


async def test_non_demo_hides_the_user_list(runtime_with, client_for: ClientFactory) -> None:
    client = await client_for(await runtime_with(**NON_DEMO))
    assert (await client.get("/console/api/users")).status == 404
    assert (await client.get("/console/api/places")).status == 404


async def test_non_demo_refuses_login_by_user_id(runtime_with, client_for: ClientFactory) -> None:
    client = await client_for(await runtime_with(**NON_DEMO))
    resp = await client.post("/console/api/login", json={"user_id": "rep01"})
    assert resp.status == 401
    me = await (await client.get("/console/api/me")).json()
    assert me["user"] is None


async def test_non_demo_login_with_token(runtime_with, client_for: ClientFactory) -> None:
    client = await client_for(await runtime_with(**NON_DEMO))
    resp = await client.post("/console/api/login", json={"token": token()})
    assert resp.status == 200, await resp.text()
    me = await (await client.get("/console/api/me")).json()
    assert me["user"]["id"] == "rep01" and me["demo"] is False
    sent = await client.post("/console/api/send", json={"client_id": new_id(), "text": "帮助"})
    assert sent.status == 200


@pytest.mark.parametrize(
    "bad",
    [
        token()[:-1] + ("0" if token()[-1] != "0" else "1"),
        "rep02." + token().split(".", 1)[1],
        token(secret="another-console-secret-0123456789abcdef"),
        token("ghost"),
        "rep01",
        "",
    ],
    ids=["tampered-mac", "other-user", "other-secret", "unknown-user", "no-mac", "empty"],
)
async def test_non_demo_refuses_bad_tokens(runtime_with, client_for: ClientFactory, bad: str) -> None:
    client = await client_for(await runtime_with(**NON_DEMO))
    resp = await client.post("/console/api/login", json={"token": bad})
    assert resp.status == 401
    assert (await client.post("/console/api/send", json={"client_id": new_id(), "text": "帮助"})).status == 401


async def test_console_disabled_is_not_mounted(runtime_with, client_for: ClientFactory) -> None:
    client = await client_for(await runtime_with(org={"demo": False}, console={"enabled": False}))
    assert (await client.get("/console")).status == 404
    assert (await client.post("/console/api/login", json={"user_id": "rep01"})).status == 404
    root = await client.get("/", allow_redirects=False)
    assert root.status == 200 and await root.json() == {"service": "salesbot"}
    health = await (await client.get("/healthz")).json()
    assert "console" not in health["channels"]


async def test_freeze_startup_heap_moves_what_exists_out_of_the_collectors_sight() -> None:
    import gc

    from bot.app import freeze_startup_heap

    survivor = [[n] for n in range(10)]  # lists are tracked by the collector
    try:
        await freeze_startup_heap(web.Application())
        assert gc.get_freeze_count() >= len(survivor)
        watched = {id(o) for generation in range(3) for o in gc.get_objects(generation=generation)}
        assert not any(id(o) in watched for o in survivor)
    finally:
        gc.unfreeze()
