"""Stream mode against a fake gateway: the runtime opens the connection (credentials, subscriptions, ticket), and
robot messages and card taps go through the same parse, dedup and ingest as over HTTP, acked after the commit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import build_app
from bot.channels.dingtalk import stream
from bot.channels.dingtalk.stream import CARD_TOPIC, ROBOT_TOPIC, DingTalkStream
from bot.runtime import Runtime
from cards.model import Card
from tests.channels.dingtalk.inbound.conftest import APP_SECRET, NOW_MS, count, dingtalk_section, outbox, rows
from tests.fakes.dingtalk_callbacks import DingTalkSigner
from tests.fakes.dingtalk_stream import FakeStreamGateway

VISIT_LINE = "拜访 浙一 骨科 张主任 异议:价格 下一步:送样"
APP_KEY = "dingappkeysalesbot"


@pytest.fixture
async def gateway() -> AsyncIterator[FakeStreamGateway]:
    fake = FakeStreamGateway(APP_KEY, APP_SECRET)
    server = TestServer(fake.app())
    await server.start_server()
    fake.base_url = str(server.make_url("")).rstrip("/")
    try:
        yield fake
    finally:
        await fake.drop()
        await server.close()


@pytest.fixture
def settings_overrides(gateway: FakeStreamGateway) -> dict[str, dict[str, Any]]:
    section = dingtalk_section(mode="stream", api_base_url=gateway.base_url, card_callback_route_key="")
    return {"dingtalk": section}


@pytest.fixture
async def connected(dt_runtime: Runtime, gateway: FakeStreamGateway) -> Runtime:
    await asyncio.wait_for(gateway.connected.wait(), 10)
    return dt_runtime


def service(rt: Runtime) -> DingTalkStream:
    (found,) = [s for s in rt.services if isinstance(s, DingTalkStream)]
    return found


async def test_the_runtime_opens_one_connection_with_both_topics(
    connected: Runtime, gateway: FakeStreamGateway
) -> None:
    assert gateway.opens == 1
    assert gateway.subscriptions == [
        [{"type": "CALLBACK", "topic": ROBOT_TOPIC}, {"type": "CALLBACK", "topic": CARD_TOPIC}]
    ]
    assert service(connected).connected.is_set()


async def test_no_http_routes_in_stream_mode(connected: Runtime) -> None:
    async with (
        TestClient(TestServer(build_app(connected, manage_runtime=False))) as client,
        client.post("/dingtalk/callback", data=b"{}") as resp,
    ):
        assert resp.status == 404


async def test_a_message_is_stored_before_its_ack_and_a_redelivery_is_not(
    connected: Runtime, gateway: FakeStreamGateway, dt: DingTalkSigner
) -> None:
    doc = dt.text("staff-rep01", "帮助", NOW_MS, msg_id="msgS1==")
    assert await gateway.callback(ROBOT_TOPIC, doc) == (200, "OK")
    assert [(r.sender, r.dedup_key) for r in await rows(connected)] == [("staff-rep01", "msg:msgS1==")]
    assert await gateway.callback(ROBOT_TOPIC, doc) == (200, "OK")
    assert await count(connected) == 1


async def test_a_redelivered_tap_frame_is_a_duplicate_but_a_new_tap_of_the_same_button_is_not(
    connected: Runtime, gateway: FakeStreamGateway, dt: DingTalkSigner
) -> None:
    """A card callback has no id of its own: the frame's messageId (kept on a redelivery) tells taps apart."""
    doc = dt.card_tap("staff-rep01", "card-gone-1", "nonsense:payload")
    assert (await gateway.callback(CARD_TOPIC, doc, message_id="frame-1"))[0] == 200
    assert (await gateway.callback(CARD_TOPIC, doc, message_id="frame-1"))[0] == 200
    assert await count(connected) == 1
    assert (await gateway.callback(CARD_TOPIC, doc))[0] == 200
    assert await count(connected) == 2


async def test_a_visit_and_its_confirming_tap_over_the_stream(
    connected: Runtime, gateway: FakeStreamGateway, dt: DingTalkSigner
) -> None:
    assert (await gateway.callback(ROBOT_TOPIC, dt.audio("staff-rep01", "dlV", VISIT_LINE, NOW_MS)))[0] == 200
    await connected.pipeline.join()
    (row,) = [m for m in await outbox(connected) if m.kind == "card"]
    card = Card.model_validate(row.payload["card"])
    code, answer = await gateway.callback(CARD_TOPIC, dt.card_tap("staff-rep01", card.ref, card.buttons[0].key))
    assert code == 200
    assert answer["cardData"]["cardParamMap"]["settled"] == "true"
    assert answer["cardUpdateOptions"] == {"updateCardDataByKey": True}


@pytest.mark.parametrize(
    "data",
    [
        pytest.param([1, 2], id="not-an-object"),
        pytest.param({"msgtype": "text"}, id="missing-fields"),
        pytest.param("robotCode", id="wrong-robot-code"),
    ],
)
async def test_hostile_messages_are_acked_400_and_store_nothing(
    connected: Runtime, gateway: FakeStreamGateway, dt: DingTalkSigner, data: Any
) -> None:
    if data == "robotCode":
        data = dt.text("staff-rep01", "帮助", NOW_MS) | {"robotCode": "dingotherrobot"}
    code, _ = await gateway.callback(ROBOT_TOPIC, data)
    assert code == 400
    code, _ = await gateway.callback(CARD_TOPIC, data)
    assert code == 400
    assert await count(connected) == 0


async def test_a_frame_whose_data_is_not_json_is_refused(connected: Runtime, gateway: FakeStreamGateway) -> None:
    ack = await gateway.push("CALLBACK", ROBOT_TOPIC, None, raw_data="{oops")
    assert ack["code"] == 400
    assert await count(connected) == 0


async def test_strangers_and_unsupported_types_are_acked_without_rows(
    connected: Runtime, gateway: FakeStreamGateway, dt: DingTalkSigner
) -> None:
    assert (await gateway.callback(ROBOT_TOPIC, dt.text("staff-stranger", "你好", NOW_MS)))[0] == 200
    assert (await gateway.callback(ROBOT_TOPIC, dt.unknown("staff-rep01", NOW_MS)))[0] == 200
    assert (await gateway.callback(CARD_TOPIC, dt.card_tap("staff-stranger", "c", "k:1"))) == (200, {})
    assert await count(connected) == 0


async def test_a_system_ping_is_answered(connected: Runtime, gateway: FakeStreamGateway) -> None:
    ack = await gateway.push("SYSTEM", "ping", {"opaque": "abc123"})
    assert ack["code"] == 200 and ack["headers"]["messageId"]


async def test_stop_closes_the_connection(connected: Runtime, gateway: FakeStreamGateway) -> None:
    await service(connected).stop()
    await asyncio.wait_for(gateway.closed.wait(), 10)
    assert not service(connected).connected.is_set()


async def test_the_shared_handlers_directly(dt_runtime: Runtime, dt: DingTalkSigner) -> None:
    """The functions the SDK handlers call, without a connection (what an SDK upgrade must keep calling)."""
    assert await stream.handle_robot(dt_runtime, dt.text("staff-rep01", "帮助", NOW_MS)) == (200, "OK")
    assert (await stream.handle_card(dt_runtime, "not a dict"))[0] == 400
    assert await count(dt_runtime) == 1
