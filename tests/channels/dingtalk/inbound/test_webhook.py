"""POST /dingtalk/callback and /dingtalk/card on a real server: persisting before acknowledging, re-deliveries,
strangers and unsupported messages, the tap answered with the tapper's new card, and every hostile input answered
4xx without a row in inbound_events."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, text

from bot.app import build_app
from bot.channels.dingtalk import webhook
from bot.infra.clock import FixedClock
from bot.runtime import Runtime
from cards.dingtalk import card_param_map
from cards.model import Card
from storage.models import AuditLog, Visit
from tests.channels.dingtalk.inbound.conftest import (
    APP_SECRET,
    CARD_SECRET,
    LIMIT,
    NOW_MS,
    count,
    outbox,
    post,
    rows,
)
from tests.conftest import T0
from tests.fakes.dingtalk_callbacks import DingTalkSigner, card_signature, dumps

VISIT_LINE = "拜访 浙一 骨科 张主任 异议:价格 下一步:送样"
EMPTY = {"msgtype": "empty"}
Client = TestClient[Any, Any]


def inbound_total(rt: Runtime, kind: str, result: str) -> float:
    labels = {"channel": "dingtalk", "kind": kind, "result": result}
    return rt.metrics.registry.get_sample_value("salesbot_inbound_events_total", labels) or 0.0


async def send(client: Client, dt: DingTalkSigner, doc: dict[str, Any] | bytes, ts: int = NOW_MS) -> tuple[int, Any]:
    return await post(client, webhook.PATH, *dt.signed(doc, ts))


async def tap(client: Client, dt: DingTalkSigner, doc: dict[str, Any] | bytes, ts: int = NOW_MS) -> tuple[int, Any]:
    return await post(client, webhook.CARD_PATH, *dt.signed_card(doc, ts))


# ---- robot messages ---------------------------------------------------------------------------------------------


async def test_text_is_stored_once_and_acknowledged_empty(
    client: Client, dt: DingTalkSigner, dt_runtime: Runtime
) -> None:
    assert await send(client, dt, dt.text("staff-rep01", "帮助", NOW_MS, msg_id="msgT1==")) == (200, EMPTY)
    stored = await rows(dt_runtime)
    assert [(r.channel, r.kind, r.sender, r.dedup_key) for r in stored] == [
        ("dingtalk", "text", "staff-rep01", "msg:msgT1==")
    ]
    assert stored[0].payload["text"] == "帮助" and stored[0].payload["dictated"] is False


async def test_a_redelivered_msg_id_ingests_nothing_new(
    client: Client, dt: DingTalkSigner, dt_runtime: Runtime, clock: FixedClock
) -> None:
    doc = dt.text("staff-rep01", "帮助", NOW_MS, msg_id="msgR1==")
    for attempt in range(3):  # DingTalk retries with the same msgId and a fresh timestamp and sign
        clock.set(T0 + timedelta(seconds=10 * attempt))
        assert await send(client, dt, doc, NOW_MS + 10_000 * attempt) == (200, EMPTY)
    assert await count(dt_runtime) == 1
    assert inbound_total(dt_runtime, "text", "duplicate") == 2


async def test_rich_text_makes_a_text_and_an_image_and_a_redelivery_nothing(
    client: Client, dt: DingTalkSigner, dt_runtime: Runtime
) -> None:
    parts = [{"text": "预留的器械"}, {"type": "picture", "downloadCode": "dlKIT1"}]
    doc = dt.rich_text("staff-rep01", parts, NOW_MS, msg_id="msgRT==")
    assert await send(client, dt, doc) == (200, EMPTY)
    assert await send(client, dt, doc) == (200, EMPTY)
    stored = await rows(dt_runtime)
    assert [(r.kind, r.dedup_key) for r in stored] == [("text", "msg:msgRT=="), ("media", "msg:msgRT==:1")]
    assert stored[1].payload["media_id"] == "dlKIT1"


async def test_media_carry_their_download_code(client: Client, dt: DingTalkSigner, dt_runtime: Runtime) -> None:
    for doc in (
        dt.picture("staff-rep01", "dlPIC", NOW_MS),
        dt.file("staff-rep01", "dlFILE", "授权书.pdf", NOW_MS),
        dt.video("staff-rep01", "dlVID", NOW_MS),
    ):
        assert await send(client, dt, doc) == (200, EMPTY)
    assert [(r.payload["media_type"], r.payload["media_id"]) for r in await rows(dt_runtime)] == [
        ("image", "dlPIC"),
        ("file", "dlFILE"),
        ("video", "dlVID"),
    ]


async def test_a_stranger_gets_a_text_answer_and_nothing_is_stored(
    client: Client, dt: DingTalkSigner, dt_runtime: Runtime
) -> None:
    status, answer = await send(client, dt, dt.text("staff-stranger", "你好", NOW_MS))
    assert status == 200 and answer["msgtype"] == "text"
    assert "联系管理员" in answer["text"]["content"]
    assert await count(dt_runtime) == 0


async def test_an_unsupported_type_is_answered_politely_and_not_stored(
    client: Client, dt: DingTalkSigner, dt_runtime: Runtime
) -> None:
    status, answer = await send(client, dt, dt.unknown("staff-rep01", NOW_MS))
    assert status == 200 and answer["msgtype"] == "text"
    assert "暂不支持这种消息" in answer["text"]["content"]
    assert await count(dt_runtime) == 0


async def test_the_quota_notice_is_logged_and_acknowledged(
    client: Client, dt: DingTalkSigner, dt_runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.channels.dingtalk.webhook")
    assert await send(client, dt, dt.quota_spent(NOW_MS)) == (200, EMPTY)
    assert await count(dt_runtime) == 0
    assert any("quota" in r.getMessage() for r in caplog.records)


async def test_group_messages_for_the_robot_are_stored_without_the_mention(
    client: Client, dt: DingTalkSigner, dt_runtime: Runtime
) -> None:
    assert await send(client, dt, dt.text("staff-rep01", "@销售助手\u2005帮助", NOW_MS, group=True)) == (200, EMPTY)
    assert await send(client, dt, dt.text("staff-rep01", "大家好", NOW_MS, group=True, at_robot=False)) == (200, EMPTY)
    stored = await rows(dt_runtime)
    assert [(r.sender, r.payload["text"]) for r in stored] == [("staff-rep01", "帮助")]
    # The reply goes to the sender privately: an outbox row for rep01 on dingtalk, not for the group.
    await dt_runtime.pipeline.join()
    assert {(m.channel, m.recipient) for m in await outbox(dt_runtime)} == {("dingtalk", "rep01")}


# ---- a visit, typed and dictated --------------------------------------------------------------------------------


async def _confirm_card(rt: Runtime) -> tuple[Card, str]:
    """The visit's confirmation card in the outbox and its 提交 button's key."""
    cards = [m for m in await outbox(rt) if m.kind == "card" and m.channel == "dingtalk"]
    assert len(cards) == 1
    card = Card.model_validate(cards[0].payload["card"])
    return card, card.buttons[0].key


async def _visit_audit(rt: Runtime) -> tuple[Visit, AuditLog]:
    async with rt.db.read() as s:
        visit = (await s.scalars(select(Visit))).one()
        audit = (
            await s.scalars(select(AuditLog).where(AuditLog.entity == "visit", AuditLog.action == "visit.create"))
        ).one()
    return visit, audit


async def test_a_visit_logged_on_dingtalk_and_confirmed_by_a_tap(
    client: Client, dt: DingTalkSigner, dt_runtime: Runtime
) -> None:
    assert await send(client, dt, dt.text("staff-rep01", VISIT_LINE, NOW_MS)) == (200, EMPTY)
    await dt_runtime.pipeline.join()
    card, submit = await _confirm_card(dt_runtime)
    status, answer = await tap(client, dt, dt.card_tap("staff-rep01", card.ref, submit))
    assert status == 200
    # The tapper's copy comes back settled in the answer: the template's variables of the new card.
    assert answer["cardUpdateOptions"] == {"updateCardDataByKey": True}
    params = answer["cardData"]["cardParamMap"]
    assert params["ref"] == card.ref and params["settled"] == "true" and "V" in params["status"]
    updates = [m for m in await outbox(dt_runtime) if m.kind == "card_update"]
    assert [u.card_ref for u in updates] == [card.ref]
    assert params == card_param_map(Card.model_validate(updates[0].payload["card"]))
    visit, audit = await _visit_audit(dt_runtime)
    assert (visit.rep_id, visit.source_channel, visit.objection, visit.next_step) == (
        "rep01",
        "dingtalk",
        "价格",
        "送样",
    )
    assert "dictated" not in audit.changes and audit.channel == "dingtalk"
    # The reply goes to the outbox on DingTalk.
    texts = [m for m in await outbox(dt_runtime) if m.kind == "text"]
    assert texts and all(m.channel == "dingtalk" and m.recipient == "rep01" for m in texts)


async def test_a_dictated_visit_is_audited_as_dictated(client: Client, dt: DingTalkSigner, dt_runtime: Runtime) -> None:
    assert await send(client, dt, dt.audio("staff-rep01", "dlVOICE", VISIT_LINE, NOW_MS)) == (200, EMPTY)
    stored = await rows(dt_runtime)
    assert stored[0].kind == "text" and stored[0].payload["dictated"] is True
    await dt_runtime.pipeline.join()
    card, submit = await _confirm_card(dt_runtime)
    assert (await tap(client, dt, dt.card_tap("staff-rep01", card.ref, submit)))[0] == 200
    visit, audit = await _visit_audit(dt_runtime)
    assert visit.next_step == "送样"
    assert audit.changes["dictated"] is True


# ---- card taps --------------------------------------------------------------------------------------------------


async def test_a_tap_answer_comes_within_the_bound(client: Client, dt: DingTalkSigner, dt_runtime: Runtime) -> None:
    assert await send(client, dt, dt.text("staff-rep01", VISIT_LINE, NOW_MS)) == (200, EMPTY)
    await dt_runtime.pipeline.join()
    card, submit = await _confirm_card(dt_runtime)
    loop = asyncio.get_running_loop()
    started = loop.time()
    status, answer = await tap(client, dt, dt.card_tap("staff-rep01", card.ref, submit))
    assert status == 200 and "cardData" in answer
    assert loop.time() - started < webhook.TAP_ANSWER_SECONDS + 0.5


async def test_a_redelivered_tap_is_answered_and_ingests_nothing(
    client: Client, dt: DingTalkSigner, dt_runtime: Runtime
) -> None:
    doc = dt.card_tap("staff-rep01", "card-gone-1", "nonsense:payload")
    assert (await tap(client, dt, doc))[0] == 200
    before = await count(dt_runtime)
    assert await tap(client, dt, doc) == (200, {})  # the same signed request again
    assert await count(dt_runtime) == before == 1


async def test_the_same_button_tapped_again_later_is_a_new_tap(
    client: Client, dt: DingTalkSigner, dt_runtime: Runtime
) -> None:
    """A callback has no id of its own: its signed timestamp tells a second tap of an unchanged card's button (完成
    refused for a missing photo, then 完成 again) from a re-sent one."""
    doc = dt.card_tap("staff-rep01", "card-gone-1", "nonsense:payload")
    assert (await tap(client, dt, doc))[0] == 200
    assert (await tap(client, dt, doc, NOW_MS + 3000))[0] == 200
    assert await count(dt_runtime) == 2


async def test_a_stale_tap_answers_without_a_card(client: Client, dt: DingTalkSigner, dt_runtime: Runtime) -> None:
    # A button of no card we know: the handler says so in a text, the card is not updated.
    assert await tap(client, dt, dt.card_tap("staff-rep01", "card-unknown", "nonsense:payload")) == (200, {})
    assert (await rows(dt_runtime))[0].kind == "card_action"


async def test_a_tap_from_a_stranger_stores_nothing(client: Client, dt: DingTalkSigner, dt_runtime: Runtime) -> None:
    assert await tap(client, dt, dt.card_tap("staff-stranger", "card-1", "k:1")) == (200, {})
    assert await count(dt_runtime) == 0


class TestSlowHandling:
    """When the handling takes longer than the bound, the tap is answered without the card (and still handled)."""

    @pytest.fixture
    async def client(self, dt_runtime: Runtime) -> Any:
        app = build_app(dt_runtime, manage_runtime=False)
        app[webhook.TAP_WAIT] = 0.0  # no time at all: the answer cannot wait for the handler
        async with TestClient(TestServer(app)) as c:
            yield c

    async def test_answer_without_the_card(self, client: Client, dt: DingTalkSigner, dt_runtime: Runtime) -> None:
        assert await send(client, dt, dt.text("staff-rep01", VISIT_LINE, NOW_MS)) == (200, EMPTY)
        await dt_runtime.pipeline.join()
        card, submit = await _confirm_card(dt_runtime)
        assert await tap(client, dt, dt.card_tap("staff-rep01", card.ref, submit)) == (200, {})
        await dt_runtime.pipeline.join()
        # The outbox's card_update brings the new card to every copy afterwards.
        assert [m.card_ref for m in await outbox(dt_runtime) if m.kind == "card_update"] == [card.ref]
        await _visit_audit(dt_runtime)


# ---- hostile input: 4xx, nothing stored, no secret in the log ---------------------------------------------------

Request = tuple[str, dict[str, str], bytes]


def _robot(dt: DingTalkSigner, change: Callable[[dict[str, str], bytes], tuple[dict[str, str], bytes]]) -> Request:
    headers, body = dt.signed(dt.text("staff-rep01", "帮助", NOW_MS, msg_id="msgH=="), NOW_MS)
    return (webhook.PATH, *change(headers, body))


def _card(dt: DingTalkSigner, change: Callable[[dict[str, str], bytes], tuple[dict[str, str], bytes]]) -> Request:
    headers, body = dt.signed_card(dt.card_tap("staff-rep01", "card-1", "k:1"), NOW_MS)
    return (webhook.CARD_PATH, *change(headers, body))


def _signed_body(body: bytes) -> Callable[[DingTalkSigner], Request]:
    return lambda dt: (webhook.PATH, *dt.signed(body, NOW_MS))


def _signed_card_body(body: bytes) -> Callable[[DingTalkSigner], Request]:
    return lambda dt: (webhook.CARD_PATH, *dt.signed_card(body, NOW_MS))


def _without(name: str) -> Callable[[dict[str, str], bytes], tuple[dict[str, str], bytes]]:
    return lambda h, b: ({k: v for k, v in h.items() if k != name}, b)


def _header(name: str, value: str) -> Callable[[dict[str, str], bytes], tuple[dict[str, str], bytes]]:
    return lambda h, b: (h | {name: value}, b)


def _message(dt: DingTalkSigner, **changes: Any) -> Request:
    doc = dt.text("staff-rep01", "帮助", NOW_MS) | changes
    return (webhook.PATH, *dt.signed(doc, NOW_MS))


def _stale_robot(dt: DingTalkSigner) -> Request:
    ts = NOW_MS - 3_601_000
    return (webhook.PATH, *dt.signed(dt.text("staff-rep01", "帮助", NOW_MS), ts))


def _stale_card(dt: DingTalkSigner) -> Request:
    ts = NOW_MS + 3_601_000
    return (webhook.CARD_PATH, *dt.signed_card(dt.card_tap("staff-rep01", "card-1", "k:1"), ts))


def _robot_sign_on_card(dt: DingTalkSigner) -> Request:
    headers, body = dt.signed(dt.card_tap("staff-rep01", "card-1", "k:1"), NOW_MS)
    return (
        webhook.CARD_PATH,
        {"x-ddpaas-signature-timestamp": headers["timestamp"], "x-ddpaas-signature": headers["sign"]},
        body,
    )


def _card_sign_on_robot(dt: DingTalkSigner) -> Request:
    ts = str(NOW_MS)
    body = dumps(dt.text("staff-rep01", "帮助", NOW_MS))
    return (webhook.PATH, {"timestamp": ts, "sign": card_signature(ts, CARD_SECRET)}, body)


def _tap_with(**changes: Any) -> Callable[[DingTalkSigner], Request]:
    return lambda dt: (
        webhook.CARD_PATH,
        *dt.signed_card(dt.card_tap("staff-rep01", "card-1", "k:1") | changes, NOW_MS),
    )


BIG = "测" * (4 * 1024 * 1024)  # 12 MB of UTF-8

HOSTILE: list[Any] = [
    pytest.param(lambda dt: _robot(dt, _without("sign")), 401, id="robot-missing-sign"),
    pytest.param(lambda dt: _robot(dt, _without("timestamp")), 401, id="robot-missing-timestamp"),
    pytest.param(lambda dt: _robot(dt, _header("sign", "A" * 43 + "=")), 403, id="robot-bad-sign"),
    pytest.param(lambda dt: _robot(dt, _header("sign", "x" * 200)), 400, id="robot-oversized-sign"),
    pytest.param(lambda dt: _robot(dt, _header("timestamp", "17x")), 400, id="robot-timestamp-not-integer"),
    pytest.param(lambda dt: _robot(dt, _header("timestamp", str(NOW_MS + 1))), 403, id="robot-sign-of-other-ts"),
    pytest.param(_stale_robot, 403, id="robot-stale"),
    pytest.param(_card_sign_on_robot, 403, id="robot-card-scheme"),
    pytest.param(_signed_body(b"{not json"), 400, id="robot-malformed-json"),
    pytest.param(_signed_body(b"[1,2,3]"), 400, id="robot-json-list"),
    pytest.param(_signed_body(b'"hello"'), 400, id="robot-json-string"),
    pytest.param(_signed_body(b""), 400, id="robot-empty-body"),
    pytest.param(_signed_body(b"\xff\xfe{}"), 400, id="robot-not-utf8"),
    pytest.param(_signed_body(b'{"msgtype": "text", "text": {"content": "a\x00b"}}'), 400, id="robot-raw-nul"),
    pytest.param(_signed_body(b"[" * 50_000), 400, id="robot-nesting-bomb"),
    pytest.param(_signed_body(dumps({"msgtype": "text", "text": {"content": BIG}})), 413, id="robot-10mb-string"),
    pytest.param(_signed_body(b" " * (LIMIT + 1)), 413, id="robot-limit-plus-1"),
    pytest.param(lambda dt: _message(dt, robotCode="dingotherrobot"), 403, id="robot-wrong-robot-code"),
    pytest.param(lambda dt: _message(dt, robotCode=None), 400, id="robot-missing-robot-code"),
    pytest.param(lambda dt: _message(dt, msgId=None), 400, id="robot-missing-msgId"),
    pytest.param(lambda dt: _message(dt, senderStaffId="staff-rep01\x00"), 400, id="robot-staffId-nul"),
    pytest.param(lambda dt: _message(dt, text={"content": 5}), 400, id="robot-text-number"),
    pytest.param(lambda dt: _message(dt, createAt="soon"), 400, id="robot-createAt"),
    pytest.param(lambda dt: _card(dt, _without("x-ddpaas-signature")), 401, id="card-missing-sign"),
    pytest.param(lambda dt: _card(dt, _without("x-ddpaas-signature-timestamp")), 401, id="card-missing-timestamp"),
    pytest.param(lambda dt: _card(dt, _header("x-ddpaas-signature", "A" * 43 + "=")), 403, id="card-bad-sign"),
    pytest.param(lambda dt: _card(dt, _header("x-ddpaas-signature-timestamp", "x")), 400, id="card-bad-timestamp"),
    pytest.param(_stale_card, 403, id="card-stale"),
    pytest.param(_robot_sign_on_card, 403, id="card-robot-scheme"),
    pytest.param(_signed_card_body(b"{"), 400, id="card-malformed-json"),
    pytest.param(_signed_card_body(b"[]"), 400, id="card-json-list"),
    pytest.param(_signed_card_body(b" " * (LIMIT + 1)), 413, id="card-oversized"),
    pytest.param(_signed_card_body(dumps({"type": "actionCallback", "content": BIG})), 413, id="card-10mb-string"),
    pytest.param(_tap_with(content={"cardPrivateData": {}}), 400, id="card-content-not-a-string"),
    pytest.param(_tap_with(content="{oops"), 400, id="card-content-not-json"),
    pytest.param(_tap_with(content='{"cardPrivateData": {"params": {}}}'), 400, id="card-no-key"),
    pytest.param(_tap_with(outTrackId=None), 400, id="card-missing-outTrackId"),
    pytest.param(_tap_with(userId=None), 400, id="card-missing-userId"),
    pytest.param(_tap_with(userId="staff\x00rep01"), 400, id="card-userId-nul"),
]


@pytest.mark.parametrize(("build", "expected"), HOSTILE)
async def test_hostile_callbacks_rejected_without_rows(
    client: Client,
    dt: DingTalkSigner,
    dt_runtime: Runtime,
    build: Callable[[DingTalkSigner], Request],
    expected: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path, headers, body = build(dt)
    caplog.set_level(logging.DEBUG, logger="bot.channels.dingtalk")
    status, _ = await post(client, path, headers, body)
    assert status == expected
    assert await count(dt_runtime) == 0
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert APP_SECRET not in logged and CARD_SECRET not in logged
    assert inbound_total(dt_runtime, "callback", "rejected") == 1


async def test_a_database_failure_is_a_503_and_the_redelivery_is_stored(
    client: Client, dt: DingTalkSigner, dt_runtime: Runtime
) -> None:
    doc = dt.text("staff-rep01", "帮助", NOW_MS, msg_id="msgDB==")
    await send(client, dt, dt.text("staff-rep01", "帮助", NOW_MS))  # the directory knows rep01 (cached)
    before = await count(dt_runtime)
    async with dt_runtime.db.transaction() as s:
        await s.execute(text("ALTER TABLE inbound_events RENAME TO inbound_events_away"))
    try:
        assert (await send(client, dt, doc))[0] == 503
    finally:
        async with dt_runtime.db.transaction() as s:
            await s.execute(text("ALTER TABLE inbound_events_away RENAME TO inbound_events"))
    assert await send(client, dt, doc) == (200, EMPTY)
    assert await count(dt_runtime) == before + 1


def test_the_fake_builds_json_dingtalk_would_send(dt: DingTalkSigner) -> None:
    doc = dt.card_tap("staff-rep01", "card-1", "k:1")
    assert isinstance(doc["content"], str)
    assert json.loads(doc["content"])["cardPrivateData"]["params"] == {"key": "k:1"}
    assert isinstance(APP_SECRET, str)
