"""GET/POST /wecom/callback on a real server: URL verification, persisting before acknowledging, WeCom's retries,
and every hostile input answered 4xx without a row in inbound_events."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
import xmltodict
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select, text

from bot.app import build_app
from bot.channels.wecom import webhook
from bot.channels.wecom.crypto import WeComCrypto
from bot.infra.clock import FixedClock
from bot.runtime import Runtime
from storage.models import InboundEvent, User, WeComCardCode
from tests.conftest import T0
from tests.fakes.wecom_callbacks import WeComSigner

CORP = "wwtestcorp"
AGENT = 1000002
TOKEN = "tok"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
NOW = int(T0.timestamp())
LIMIT = 64 * 1024
SECRETS = (TOKEN, AES_KEY, "s3cret-app")

# The official WeCom vector (https://developer.work.weixin.qq.com/document/path/90968).
VECTOR = {
    "corp_id": "wx5823bf96d3bd56c7",
    "token": "QDG6eK",
    "encoding_aes_key": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
}
VECTOR_POST_QUERY = {
    "msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6",
    "timestamp": "1409659813",
    "nonce": "1372623149",
}
VECTOR_POST_BODY = (
    b"<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA[RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+"
    b"rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLY"
    b"L42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s"
    b"4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH"
    b"27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==]]>"
    b"</Encrypt>\n<AgentID><![CDATA[218]]></AgentID>\n</xml>"
)
VECTOR_GET_QUERY = {
    "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
    "timestamp": "1409659589",
    "nonce": "263014780",
    "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
}


def wecom_section(**overrides: Any) -> dict[str, Any]:
    section = {
        "enabled": True,
        "corp_id": CORP,
        "agent_id": AGENT,
        "secret": "s3cret-app",
        "token": TOKEN,
        "encoding_aes_key": AES_KEY,
        "api_base_url": "http://127.0.0.1:1/",
        "replay_window_seconds": 300,
    }
    return {**section, **overrides}


@pytest.fixture
def settings_overrides() -> dict[str, dict[str, Any]]:
    return {"wecom": wecom_section()}


@pytest.fixture
def signer() -> WeComSigner:
    return WeComSigner(TOKEN, AES_KEY, CORP, agent_id=AGENT)


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[TestClient[Any, Any]]:
    app = build_app(runtime, manage_runtime=False)
    webhook.setup(app)
    webhook.setup(app)  # idempotent: build_app may already have mounted it
    async with TestClient(TestServer(app)) as c:
        yield c


async def rows(rt: Runtime) -> list[InboundEvent]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(InboundEvent).order_by(InboundEvent.id)))


async def count(rt: Runtime) -> int:
    async with rt.db.read() as s:
        return int(await s.scalar(select(func.count()).select_from(InboundEvent)) or 0)


def inbound_total(rt: Runtime, kind: str, result: str) -> float:
    labels = {"channel": "wecom", "kind": kind, "result": result}
    return rt.metrics.registry.get_sample_value("salesbot_inbound_events_total", labels) or 0.0


def rejected_total(rt: Runtime) -> float:
    return inbound_total(rt, "callback", "rejected")


async def post(client: TestClient[Any, Any], query: dict[str, str], body: bytes, **kw: Any) -> tuple[int, bytes]:
    async with client.post(webhook.PATH, params=query, data=body, **kw) as resp:
        return resp.status, await resp.read()


# ---- the happy path ---------------------------------------------------------------------------------------------


async def test_url_verification_answers_plaintext(client: TestClient[Any, Any], signer: WeComSigner) -> None:
    query = signer.url_verification("8046361583951209342", NOW, "1372623149")
    async with client.get(webhook.PATH, params=query) as resp:
        assert resp.status == 200
        assert await resp.read() == b"8046361583951209342"
        assert resp.content_type == "text/plain"


async def test_url_verification_tolerates_unencoded_plus(client: TestClient[Any, Any], signer: WeComSigner) -> None:
    for i in range(20):  # find an echostr with a '+' in it
        query = signer.url_verification(f"echo{i}", NOW, f"n{i}")
        if "+" in query["echostr"]:
            break
    else:
        pytest.skip("no '+' in 20 ciphertexts")
    raw = "&".join(f"{k}={v}" for k, v in query.items())  # '+' left raw, as a careless proxy might
    async with client.get(f"{webhook.PATH}?{raw}") as resp:
        assert resp.status == 200
        assert await resp.text() == f"echo{i}"


async def test_text_is_stored_once_and_acknowledged_empty(
    client: TestClient[Any, Any], signer: WeComSigner, runtime: Runtime
) -> None:
    query, body = signer.envelope(signer.text("rep01", "帮助", 7001, NOW - 2), NOW, "n1")
    assert await post(client, query, body) == (200, b"")
    stored = await rows(runtime)
    assert [(r.channel, r.kind, r.sender, r.dedup_key) for r in stored] == [("wecom", "text", "rep01", "msg:7001")]
    assert stored[0].payload["text"] == "帮助"


async def test_retries_of_one_message_make_one_row(
    client: TestClient[Any, Any], signer: WeComSigner, runtime: Runtime, clock: FixedClock
) -> None:
    inner = signer.text("rep01", "帮助", 7002, NOW)
    for attempt in range(4):  # the first delivery and WeCom's 3 retries: same MsgId, fresh timestamp and nonce
        clock.set(T0 + timedelta(seconds=5 * attempt))
        query, body = signer.envelope(inner, NOW + 5 * attempt, f"retry{attempt}")
        assert await post(client, query, body) == (200, b"")
    assert await count(runtime) == 1
    assert inbound_total(runtime, "text", "duplicate") == 3


async def test_events_are_stored_with_their_kinds(
    client: TestClient[Any, Any], signer: WeComSigner, runtime: Runtime
) -> None:
    callbacks = [
        signer.location("rep01", 39.913, 116.404, "北京协和医院", 7003, NOW),
        signer.location_event("rep01", 39.913, 116.404, 30.0, NOW),
        signer.image("rep01", "MEDIA_1", 7004, NOW),
        signer.enter_agent("rep01", NOW),
        signer.enter_agent("rep01", NOW + 3600),  # same local day: no second welcome
        signer.card_event("rep01", "v1:ok:1", "card-1", "rc-1", NOW, selected={"q": ["a", "b"]}),
    ]
    for i, inner in enumerate(callbacks):
        query, body = signer.envelope(inner, NOW, f"e{i}")
        assert await post(client, query, body) == (200, b"")
    stored = await rows(runtime)
    assert [r.kind for r in stored] == ["location", "location", "media", "enter", "card_action"]
    assert stored[1].payload["passive"] is True
    assert stored[4].payload["selected"] == {"q": ["a", "b"]}
    # The tap's code is not in the neutral event: it was committed with it, as the card's unspent tap code.
    assert "rc-1" not in str(stored[4].payload)
    async with runtime.db.read() as s:
        codes = [(c.code, c.task_id, c.source, c.spent_at) for c in await s.scalars(select(WeComCardCode))]
    assert codes == [("rc-1", "card-1", "tap", None)]


async def test_unregistered_sender_gets_one_passive_reply_and_nothing_is_stored(
    client: TestClient[Any, Any], signer: WeComSigner, runtime: Runtime
) -> None:
    query, body = signer.envelope(signer.text("stranger42", "你好", 7005, NOW), NOW, "n")
    status, answer = await post(client, query, body)
    assert status == 200
    outer = xmltodict.parse(answer.decode())["xml"]
    crypto = WeComCrypto(TOKEN, AES_KEY, CORP)
    inner = crypto.decrypt(outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"], outer["Encrypt"])
    reply = xmltodict.parse(inner)["xml"]
    assert (reply["ToUserName"], reply["MsgType"]) == ("stranger42", "text")
    assert "联系管理员" in reply["Content"]
    assert await count(runtime) == 0
    # Passive events of a stranger (entering the app) are acknowledged silently.
    query, body = signer.envelope(signer.enter_agent("stranger42", NOW), NOW, "e")
    assert await post(client, query, body) == (200, b"")
    assert await count(runtime) == 0


async def test_ignored_event_is_acknowledged_without_a_row(
    client: TestClient[Any, Any], signer: WeComSigner, runtime: Runtime
) -> None:
    for i, inner in enumerate([signer.event("rep01", "subscribe", NOW), signer.event("rep01", "click", NOW)]):
        query, body = signer.envelope(inner, NOW, f"i{i}")
        assert await post(client, query, body) == (200, b"")
    other_agent = WeComSigner(TOKEN, AES_KEY, CORP, agent_id=AGENT + 1)
    query, body = other_agent.envelope(other_agent.text("rep01", "hi", 7006, NOW), NOW, "x")
    assert await post(client, query, body) == (200, b"")
    assert await count(runtime) == 0


# ---- hostile input: 4xx, logged without secrets, counted, nothing stored ----------------------------------------


Callback = tuple[dict[str, str], bytes]


def _valid(signer: WeComSigner, **query_changes: str | None) -> Callback:
    query, body = signer.envelope(signer.text("rep01", "帮助", 8001, NOW), NOW, "h1")
    for key, value in query_changes.items():
        if value is None:
            query.pop(key)
        else:
            query[key] = value
    return query, body


def _with_body(signer: WeComSigner, body: Callable[[bytes], bytes]) -> Callback:
    query, good = _valid(signer)
    return query, body(good)


def _encrypt_of(body: bytes) -> bytes:
    return body.split(b"<Encrypt><![CDATA[")[1].split(b"]]>")[0]


def _other_corp(signer: WeComSigner) -> Callback:
    other = WeComSigner(TOKEN, AES_KEY, "wwothercorp", agent_id=AGENT)
    return other.envelope(other.text("rep01", "帮助", 8005, NOW), NOW, "h5")


def _inner_dtd(signer: WeComSigner) -> Callback:
    return signer.envelope('<!DOCTYPE xml [<!ENTITY e "x">]>' + signer.text("rep01", "帮助", 8002, NOW), NOW, "h2")


HOSTILE: list[Any] = [
    pytest.param(lambda s: _valid(s, msg_signature="0" * 40), 403, id="bad-signature"),
    pytest.param(lambda s: _valid(s, msg_signature=None), 400, id="missing-signature"),
    pytest.param(lambda s: _valid(s, timestamp=None), 400, id="missing-timestamp"),
    pytest.param(lambda s: _valid(s, nonce=None), 400, id="missing-nonce"),
    pytest.param(lambda s: _valid(s, timestamp="17x"), 400, id="timestamp-not-integer"),
    pytest.param(lambda s: _valid(s, timestamp="-1"), 400, id="timestamp-negative"),
    pytest.param(lambda s: s.envelope(s.text("rep01", "帮助", 8003, NOW), NOW - 301, "h3"), 403, id="stale"),
    pytest.param(lambda s: s.envelope(s.text("rep01", "帮助", 8004, NOW), NOW + 301, "h4"), 403, id="future"),
    pytest.param(_other_corp, 403, id="wrong-corp-id"),
    pytest.param(
        lambda s: _with_body(
            s, lambda b: b'<!DOCTYPE xml [<!ENTITY e "' + _encrypt_of(b) + b'">]><xml><Encrypt>&e;</Encrypt></xml>'
        ),
        400,
        id="outer-entity",
    ),
    pytest.param(
        lambda s: _with_body(s, lambda b: b'<!DOCTYPE xml SYSTEM "http://127.0.0.1:1/x.dtd">' + b),
        400,
        id="outer-doctype",
    ),
    pytest.param(_inner_dtd, 400, id="inner-dtd"),
    pytest.param(lambda s: _with_body(s, lambda b: b[:-5]), 400, id="malformed"),
    pytest.param(lambda s: _with_body(s, lambda b: b""), 400, id="empty-body"),
    pytest.param(lambda s: _with_body(s, lambda b: b"<xml><ToUserName>x</ToUserName></xml>"), 400, id="no-encrypt"),
    pytest.param(lambda s: _with_body(s, lambda b: b"\xff\xfe<xml/>"), 400, id="not-utf8"),
    pytest.param(
        lambda s: _with_body(s, lambda b: b.replace(b"</xml>", b" " * (LIMIT + 1 - len(b)) + b"</xml>")),
        413,
        id="limit-plus-1",
    ),
]


@pytest.mark.parametrize(("build", "expected"), HOSTILE)
async def test_hostile_callbacks_rejected_without_rows(
    client: TestClient[Any, Any],
    signer: WeComSigner,
    runtime: Runtime,
    build: Callable[[WeComSigner], Callback],
    expected: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    query, body = build(signer)
    caplog.set_level(logging.WARNING, logger="bot.channels.wecom.webhook")
    assert (await post(client, query, body))[0] == expected
    assert await count(runtime) == 0
    assert rejected_total(runtime) == 1
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "wecom callback rejected" in logged
    assert not any(secret in logged for secret in SECRETS)
    assert "帮助" not in logged
    if b"<Encrypt><![CDATA[" in body:
        assert _encrypt_of(body).decode()[:16] not in logged


async def test_body_of_exactly_the_limit_is_accepted(
    client: TestClient[Any, Any], signer: WeComSigner, runtime: Runtime
) -> None:
    query, body = _valid(signer)
    body = body.replace(b"</xml>", b" " * (LIMIT - len(body)) + b"</xml>")
    assert len(body) == LIMIT
    assert await post(client, query, body) == (200, b"")
    assert await count(runtime) == 1


async def test_oversized_body_without_content_length_is_413(
    client: TestClient[Any, Any], signer: WeComSigner, runtime: Runtime
) -> None:
    query, _ = _valid(signer)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(LIMIT // 1024 + 1):
            yield b"x" * 1024

    status, _ = await post(client, query, chunks())  # type: ignore[arg-type]
    assert status == 413
    assert await count(runtime) == 0


async def test_stale_url_verification_is_403(client: TestClient[Any, Any], signer: WeComSigner) -> None:
    async with client.get(webhook.PATH, params=signer.url_verification("e", NOW - 3600, "n")) as resp:
        assert resp.status == 403


async def test_url_verification_with_bad_signature_is_403(client: TestClient[Any, Any], signer: WeComSigner) -> None:
    query = signer.url_verification("e", NOW, "n") | {"msg_signature": "f" * 40}
    async with client.get(webhook.PATH, params=query) as resp:
        assert resp.status == 403
        assert await resp.text() != "e"


async def test_repeated_query_parameter_is_400(client: TestClient[Any, Any], signer: WeComSigner) -> None:
    query, body = _valid(signer)
    url = f"{webhook.PATH}?msg_signature={query['msg_signature']}&msg_signature=x&timestamp={NOW}&nonce=h1"
    async with client.post(url, data=body) as resp:
        assert resp.status == 400


async def test_database_failure_is_not_acknowledged(
    client: TestClient[Any, Any], signer: WeComSigner, runtime: Runtime
) -> None:
    query, body = signer.envelope(signer.text("rep01", "帮助", 9001, NOW), NOW, "db1")
    async with runtime.db.transaction() as s:
        await s.execute(text("ALTER TABLE inbound_events RENAME TO inbound_events_away"))
    try:
        assert (await post(client, query, body))[0] == 503
    finally:
        async with runtime.db.transaction() as s:
            await s.execute(text("ALTER TABLE inbound_events_away RENAME TO inbound_events"))
    query, body = signer.envelope(signer.text("rep01", "帮助", 9001, NOW), NOW + 5, "db2")  # WeCom's retry
    assert await post(client, query, body) == (200, b"")
    assert await count(runtime) == 1


# ---- the official vector needs an open replay window ------------------------------------------------------------


class TestOfficialVector:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, dict[str, Any]]:
        return {"wecom": wecom_section(**VECTOR, agent_id=218, replay_window_seconds=0)}

    async def test_get(self, client: TestClient[Any, Any]) -> None:
        async with client.get(webhook.PATH, params=VECTOR_GET_QUERY) as resp:
            assert (resp.status, await resp.read()) == (200, b"1616140317555161061")

    async def test_post(self, client: TestClient[Any, Any], runtime: Runtime) -> None:
        async with runtime.db.transaction() as s:
            user = User(id="vector", name="向量", roles=["rep"], created_at=T0, updated_at=T0)
            user.set_channel_id("wecom", "mycreate", T0)
            s.add(user)
        assert await post(client, VECTOR_POST_QUERY, VECTOR_POST_BODY) == (200, b"")
        stored = await rows(runtime)
        assert [(r.sender, r.dedup_key, r.payload["text"]) for r in stored] == [
            ("mycreate", "msg:4561255354251345929", "hello")
        ]


class TestOfficialVectorWithReplayWindow:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, dict[str, Any]]:
        return {"wecom": wecom_section(**VECTOR, agent_id=218)}

    async def test_old_vector_is_stale(self, client: TestClient[Any, Any], runtime: Runtime) -> None:
        assert (await post(client, VECTOR_POST_QUERY, VECTOR_POST_BODY))[0] == 403
        async with client.get(webhook.PATH, params=VECTOR_GET_QUERY) as resp:
            assert resp.status == 403
        assert await count(runtime) == 0


class TestDisabled:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, dict[str, Any]]:
        return {}

    async def test_no_callback_route_when_wecom_is_disabled(self, client: TestClient[Any, Any]) -> None:
        async with client.get(webhook.PATH) as resp:
            assert resp.status == 404
