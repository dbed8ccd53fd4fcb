"""The DingTalk channel end to end (outbox → FakeDingTalk): texts and rich text through batchSend, task cards
through createAndDeliver (one call for every recipient) and PUT /v1.0/card/instances, flow-controlled users resent
alone, the no-template fallback (action cards with signed links) and its link route, /healthz, /metrics, the
quota's 80 % warning and its exhaustion. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bot.channels.base import OutboxItem
from bot.channels.dingtalk.channel import DingTalkChannel
from bot.core.intents import SendCard, SendRich, SendText, UpdateCard
from bot.infra.clock import FixedClock
from bot.runtime import Runtime
from cards import dingtalk as render
from cards.model import Button, Card, CardField
from cards.rich import Line, RichText, Section, Span
from storage.models import DingTalkActionLink, InboundEvent, PlatformApiCall, User, UserIdentity
from tests.channels.dingtalk.conftest import WITH_TEMPLATE, outbox_rows, queue, staff
from tests.conftest import make_settings
from tests.fakes.dingtalk import FakeDingTalk, validate_batch_send, validate_create, validate_update


def card(ref: str = "tc-101", *, status: str = "", buttons: bool = True) -> Card:
    return Card(
        ref=ref,
        title="备货申请 R101",
        description="王磊 申请 协和医院 的备货",
        fields=[CardField(label="客户", value="协和医院"), CardField(label="数量", value="3")],
        buttons=[Button(text="接单", key="tk|101|take", style="primary"), Button(text="拒绝", key="tk|101|reject")]
        if buttons
        else [],
        status=status,
    )


def channel(rt: Runtime) -> DingTalkChannel:
    ch = rt.channels["dingtalk"]
    assert isinstance(ch, DingTalkChannel)
    return ch


def no_violations(fake: FakeDingTalk) -> None:
    assert fake.violations == []
    for r in fake.requests:
        if r.endpoint == "batchSend":
            assert validate_batch_send(r.body, fake.robot_code) == []
        if r.endpoint == "createAndDeliver":
            assert validate_create(r.body, fake.robot_code, fake.templates) == []
        if r.endpoint == "updateCard":
            assert validate_update(r.body) == []


async def test_a_text_arrives_as_sample_text_and_a_long_one_in_parts(bot: Runtime, fake: FakeDingTalk) -> None:
    long = "\n".join(f"第 {n} 行：拜访记录已保存，客户协和医院。" for n in range(300))
    await queue(bot, [SendText(channel="dingtalk", user_ids=("rep01",), text="拜访已记录 V12")])
    await queue(bot, [SendText(channel="dingtalk", user_ids=("rep01",), text=long)])
    await bot.settle()
    texts = fake.texts_to(staff("rep01"))
    assert texts[0] == "拜访已记录 V12"
    assert len(texts) > 2 and all(len(t.encode()) <= render.TEXT_MAX_BYTES for t in texts[1:])
    assert "\n".join(texts[1:]) == long
    assert all(r.body["msgKey"] == "sampleText" for r in fake.requests if r.endpoint == "batchSend")
    assert isinstance(fake.requests[-1].body["msgParam"], str)
    no_violations(fake)


async def test_rich_text_arrives_as_markdown(bot: Runtime, fake: FakeDingTalk) -> None:
    rich = RichText(
        title="今日日报",
        sections=(Section(title="拜访", lines=(Line.of("完成 ", Span(text="4", bold=True), " 次*"),)),),
    )
    await queue(bot, [SendRich(channel="dingtalk", user_ids=("mgr01",), rich=rich)])
    await bot.settle()
    [(title, text)] = fake.markdowns_to(staff("mgr01"))
    assert title == "今日日报"
    assert "### 今日日报" in text and "#### 拜访" in text and "**4**" in text and "＊" in text
    no_violations(fake)


@pytest.mark.parametrize("dingtalk_overrides", [WITH_TEMPLATE])
async def test_a_shared_card_is_one_create_call_and_one_update_reaches_every_copy(
    bot: Runtime, fake: FakeDingTalk
) -> None:
    await queue(bot, [SendCard(channel="dingtalk", user_ids=("log01", "log02"), card=card(), shared=True)])
    await bot.settle()
    creates = [r for r in fake.requests if r.endpoint == "createAndDeliver"]
    assert len(creates) == 1
    body = creates[0].body
    assert body["openSpaceId"] == f"dtv1.card//IM_ROBOT.{staff('log01')};IM_ROBOT.{staff('log02')}"
    assert body["callbackType"] == "HTTP" and body["callbackRouteKey"] == "salesbot-card"
    track = render.out_track_id("tc-101")
    assert body["outTrackId"] == track
    assert [c.out_track_id for c in fake.cards_to(staff("log02"))] == [track]
    state = fake.card_state(track, staff("log01"))
    assert state is not None and state["title"] == "备货申请 R101" and state["settled"] == "false"

    settled = card(status="已接单 吴敏", buttons=False)
    await queue(bot, [UpdateCard(channel="dingtalk", user_ids=("log01", "log02"), card=settled)])
    await bot.settle()
    updates = [r for r in fake.requests if r.endpoint == "updateCard"]
    assert len(updates) == 1 and updates[0].body["cardUpdateOptions"] == {"updateCardDataByKey": True}
    for user in ("log01", "log02"):
        state = fake.card_state(track, staff(user))
        assert state is not None and state["status"] == "已接单 吴敏" and state["settled"] == "true"
    no_violations(fake)


@pytest.mark.parametrize("dingtalk_overrides", [WITH_TEMPLATE])
async def test_a_card_whose_answer_was_lost_is_resent_without_a_second_card(
    bot: Runtime, fake: FakeDingTalk, clock: FixedClock
) -> None:
    fake.fail("createAndDeliver", "lost")
    await queue(bot, [SendCard(channel="dingtalk", user_ids=("log01", "log02"), card=card(), shared=True)])
    await bot.settle()
    [row] = await outbox_rows(bot)
    assert row.status == "pending" and row.maybe_delivered
    clock.set(clock.now() + timedelta(seconds=400))
    await bot.settle()
    assert [r.endpoint for r in fake.requests].count("createAndDeliver") == 2
    assert list(fake.cards) == [render.out_track_id("tc-101")]
    assert sorted(fake.cards[render.out_track_id("tc-101")].users) == [staff("log01"), staff("log02")]
    [row] = await outbox_rows(bot)
    assert row.status == "sent"


@pytest.mark.parametrize("dingtalk_overrides", [WITH_TEMPLATE | {"mode": "stream"}])
async def test_stream_mode_cards_ask_for_stream_callbacks(bot: Runtime, fake: FakeDingTalk) -> None:
    await queue(bot, [SendCard(channel="dingtalk", user_ids=("rep01",), card=card())])
    await bot.settle()
    [create] = [r for r in fake.requests if r.endpoint == "createAndDeliver"]
    assert create.body["callbackType"] == "STREAM" and "callbackRouteKey" not in create.body


@pytest.mark.parametrize("dingtalk_overrides", [WITH_TEMPLATE])
async def test_an_update_of_a_card_dingtalk_does_not_know_is_sent_as_a_message(
    bot: Runtime, fake: FakeDingTalk
) -> None:
    """A card sent before the template was configured (an action card) has no instance: its new state goes out."""
    await queue(bot, [UpdateCard(channel="dingtalk", user_ids=("rep01",), card=card(status="已完成", buttons=False))])
    await bot.settle()
    [(title, text)] = fake.markdowns_to(staff("rep01"))
    assert title == "备货申请 R101" and "**已完成**" in text
    assert [r.endpoint for r in fake.requests if r.endpoint != "accessToken"] == ["updateCard", "batchSend"]


def _people(n: int) -> tuple[User, ...]:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    users = []
    for i in range(n):
        u = User(id=f"bulk{i:02d}", name=f"人{i}", roles=["member"], locale="zh-CN", created_at=now, updated_at=now)
        u.identities = [UserIdentity(channel="dingtalk", external_id=f"dtbulk{i:02d}", created_at=now)]
        users.append(u)
    return tuple(users)


@pytest.mark.parametrize("dingtalk_overrides", [WITH_TEMPLATE])
async def test_more_than_20_recipients_are_split_20_a_call(bot: Runtime, fake: FakeDingTalk) -> None:
    people = _people(25)
    ch = channel(bot)
    c = card("tc-bulk")
    await ch.deliver(OutboxItem(1, "dingtalk", "card", {"card": c.model_dump(mode="json")}, c.ref, 0, people))
    sizes = [len(r.body["openSpaceId"].split(";")) for r in fake.requests if r.endpoint == "createAndDeliver"]
    assert sizes == [20, 5]
    await ch.deliver(OutboxItem(2, "dingtalk", "text", {"text": "通知"}, None, 0, people))
    sizes = [len(r.body["userIds"]) for r in fake.requests if r.endpoint == "batchSend"]
    assert sizes == [20, 5]
    assert len(fake.cards_to("dtbulk24")) == 1
    no_violations(fake)


async def test_a_flow_controlled_user_gets_the_message_alone_later(
    bot: Runtime, fake: FakeDingTalk, clock: FixedClock
) -> None:
    settled = card(status="已关闭", buttons=False)
    fake.flow_control(staff("log02"))
    await queue(bot, [UpdateCard(channel="dingtalk", user_ids=("log01", "log02"), card=settled)])
    await bot.settle()
    assert len(fake.markdowns_to(staff("log01"))) == 1
    assert fake.markdowns_to(staff("log02")) == []
    clock.set(clock.now() + timedelta(seconds=10))
    await bot.settle()
    assert len(fake.markdowns_to(staff("log01"))) == 1, "the others are not sent it again"
    assert len(fake.markdowns_to(staff("log02"))) == 1
    last = [r for r in fake.requests if r.endpoint == "batchSend"][-1]
    assert last.body["userIds"] == [staff("log02")]
    assert all(r.status == "sent" for r in await outbox_rows(bot))
    no_violations(fake)


async def test_a_single_flow_controlled_recipient_is_retried(
    bot: Runtime, fake: FakeDingTalk, clock: FixedClock
) -> None:
    fake.flow_control(staff("rep01"))
    await queue(bot, [SendText(channel="dingtalk", user_ids=("rep01",), text="你好")])
    await bot.settle()
    [row] = await outbox_rows(bot)
    assert row.status == "pending" and row.attempts == 1
    clock.set(clock.now() + timedelta(seconds=30))
    await bot.settle()
    assert fake.texts_to(staff("rep01")) == ["你好"]


async def test_a_throttled_send_is_retried_no_sooner_than_a_second(
    bot: Runtime, fake: FakeDingTalk, clock: FixedClock
) -> None:
    fake.fail("batchSend", "throttle")
    await queue(bot, [SendText(channel="dingtalk", user_ids=("rep01",), text="你好")])
    await bot.settle()
    [row] = await outbox_rows(bot)
    assert row.status == "pending"
    assert row.next_attempt_at.replace(tzinfo=UTC) >= clock.now() + timedelta(seconds=1)
    clock.set(clock.now() + timedelta(seconds=400))
    await bot.settle()
    assert fake.texts_to(staff("rep01")) == ["你好"]


# ---- the no-template fallback: action cards and their links --------------------------------------------------


async def _fallback_card(bot: Runtime, fake: FakeDingTalk, user: str = "log01") -> dict[str, Any]:
    await queue(bot, [SendCard(channel="dingtalk", user_ids=(user,), card=card())])
    await bot.settle()
    [param] = fake.action_cards_to(staff(user))
    return param


async def test_without_a_template_a_card_is_an_action_card_with_signed_links(bot: Runtime, fake: FakeDingTalk) -> None:
    param = await _fallback_card(bot, fake)
    assert [r.body["msgKey"] for r in fake.requests if r.endpoint == "batchSend"] == ["sampleActionCard2"]
    assert (param["actionTitle1"], param["actionTitle2"]) == ("接单", "拒绝")
    assert param["actionURL1"].startswith("https://bot.example.com/dingtalk/act/")
    assert param["actionURL1"] != param["actionURL2"]
    assert "协和医院" in param["text"]
    no_violations(fake)


async def _events(bot: Runtime) -> list[InboundEvent]:
    async with bot.db.read() as s:
        return list(await s.scalars(select(InboundEvent).where(InboundEvent.kind == "card_action")))


async def test_a_link_applies_the_tap_once_as_that_person(
    bot: Runtime, fake: FakeDingTalk, http: TestClient[Any, Any]
) -> None:
    param = await _fallback_card(bot, fake)
    path = urlsplit(param["actionURL1"]).path
    async with http.get(path) as resp:
        assert resp.status == 200
        page = await resp.text()
        assert "接单" in page and "<script" not in page
        assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
    async with http.head(path) as resp:
        assert resp.status == 405, "a previewer's HEAD does not use the link"
    [event] = await _events(bot)
    assert event.sender == staff("log01")
    assert event.payload["payload"] == "tk|101|take" and event.payload["card_ref"] == "tc-101"
    async with http.get(path) as resp:
        assert resp.status == 409
        assert "已经点过" in await resp.text()
    assert len(await _events(bot)) == 1
    async with bot.db.read() as s:
        assert await s.scalar(select(func.count()).select_from(DingTalkActionLink)) == 1


async def test_an_expired_or_forged_link_changes_nothing(
    bot: Runtime, fake: FakeDingTalk, http: TestClient[Any, Any], clock: FixedClock
) -> None:
    param = await _fallback_card(bot, fake)
    path = urlsplit(param["actionURL2"]).path
    body, sig = path.rsplit("/", 1)[1].split(".")
    forged = f"/dingtalk/act/{body}.{sig[:-2]}{'AA' if sig[-2:] != 'AA' else 'BB'}"
    async with http.get(forged) as resp:
        assert resp.status == 403
    async with http.get("/dingtalk/act/not-a-token") as resp:
        assert resp.status == 400
    # Another person's link body with this signature, or a claim re-signed by guess: refused the same way.
    async with http.get(f"/dingtalk/act/{body[:-4]}AAAA.{sig}") as resp:
        assert resp.status == 403
    clock.set(clock.now() + timedelta(hours=73))
    async with http.get(path) as resp:
        assert resp.status == 410
        assert "过期" in await resp.text()
    assert await _events(bot) == []


# ---- health, metrics, quota -----------------------------------------------------------------------------------


async def test_healthz_and_metrics_show_the_calls_this_month(
    bot: Runtime, fake: FakeDingTalk, http: TestClient[Any, Any]
) -> None:
    for n in range(3):
        await queue(bot, [SendText(channel="dingtalk", user_ids=("rep01",), text=f"第{n}条")])
    await bot.settle()
    async with http.get("/healthz") as resp:
        health = await resp.json()
    assert health["status"] == "ok"
    assert health["dingtalk"]["api_calls_this_month"] == 3 == fake.api_calls
    assert health["dingtalk"]["monthly_call_quota"] == 5000
    async with http.get("/metrics") as resp:
        text = await resp.text()
    assert 'salesbot_platform_api_calls{channel="dingtalk"} 3.0' in text
    async with bot.db.read() as s:
        row = await s.scalar(select(PlatformApiCall))
    assert row is not None and (row.channel, row.month, row.calls) == ("dingtalk", "2026-11", 3)


async def test_a_configuration_error_shows_as_degraded(
    bot: Runtime, fake: FakeDingTalk, http: TestClient[Any, Any]
) -> None:
    fake.fail("batchSend", "ip")
    await queue(bot, [SendText(channel="dingtalk", user_ids=("rep01",), text="你好")])
    await bot.settle()
    async with http.get("/healthz") as resp:
        health = await resp.json()
    assert health["status"] == "degraded"
    assert health["dingtalk"]["state"] == "degraded"
    assert health["dingtalk"]["code"] == "Forbidden.AccessDenied.IpNotInWhiteList"
    [row] = await outbox_rows(bot)
    assert row.status == "pending" and row.attempts == 0, "deferred, no attempt used up"


async def test_a_spent_quota_waits_for_next_month(bot: Runtime, fake: FakeDingTalk, http: TestClient[Any, Any]) -> None:
    fake.quota_spent = True
    await queue(bot, [SendText(channel="dingtalk", user_ids=("rep01",), text="你好")])
    await bot.settle()
    async with http.get("/healthz") as resp:
        health = await resp.json()
    assert health["status"] == "degraded" and health["dingtalk"]["state"] == "quota_exhausted"
    rows = await outbox_rows(bot)
    # Deferred to the 1st of next month, which is past the outbox's horizon (6 h): given up, never hammered.
    assert rows[0].status == "dead" and "ApiCountLimitForOrg" in (rows[0].last_error or "")
    calls = fake.calls["batchSend"]
    await queue(bot, [SendText(channel="dingtalk", user_ids=("rep02",), text="你好")])
    await bot.settle()
    assert fake.calls["batchSend"] == calls


@pytest.mark.parametrize("dingtalk_overrides", [{"monthly_call_quota": 5}])
async def test_the_admins_are_warned_once_at_80_percent(
    bot: Runtime, fake: FakeDingTalk, db_url: str, clock: FixedClock
) -> None:
    for n in range(6):
        await queue(bot, [SendText(channel="dingtalk", user_ids=("rep01",), text=f"第{n}条")])
        await bot.settle()
    warnings = [t for t in fake.texts_to(staff("admin01")) if "钉钉接口" in t]
    assert len(warnings) == 1 and "额度 5 次" in warnings[0]
    async with bot.db.read() as s:
        row = await s.scalar(select(PlatformApiCall))
    assert row is not None and row.warned_at is not None

    # A restart (or another replica) does not warn again this month.
    settings = make_settings(db_url, dingtalk=bot.settings.dingtalk.model_dump(mode="python"))
    other = Runtime(settings, clock=clock)
    await other.start()
    try:
        await queue(other, [SendText(channel="dingtalk", user_ids=("rep01",), text="再来一条")])
        await other.settle()
    finally:
        await other.close()
    warnings = [t for t in fake.texts_to(staff("admin01")) if "钉钉接口" in t]
    assert len(warnings) == 1


async def test_the_per_person_throttle_defers_past_20_a_minute(
    bot: Runtime, fake: FakeDingTalk, clock: FixedClock
) -> None:
    from bot.channels.dingtalk.channel import PER_USER_PER_MINUTE
    from storage.models import ChannelSend

    await queue(
        bot,
        [SendText(channel="dingtalk", user_ids=("rep01",), text=f"第{n}条") for n in range(PER_USER_PER_MINUTE + 2)],
    )
    await bot.settle()
    assert len(fake.texts_to(staff("rep01"))) == PER_USER_PER_MINUTE
    async with bot.db.read() as s:
        counted = await s.scalar(select(func.count()).select_from(ChannelSend).where(ChannelSend.channel == "dingtalk"))
    assert counted == PER_USER_PER_MINUTE
    clock.set(clock.now() + timedelta(minutes=1, seconds=1))
    await bot.settle()
    assert fake.texts_to(staff("rep01"))[-1] == f"第{PER_USER_PER_MINUTE + 1}条", "in order"
