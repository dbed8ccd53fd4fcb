"""A service refuses by raising ``DomainError``; the dispatcher turns it into the actor's reply in one place, and the
handler's work (rows, intents, the conversation) is rolled back. Take-over and reassign go through the card's
state machine like claim / done / reject."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.core.errors import Denial, DomainError
from bot.core.events import TextMessage
from bot.core.routing import Context, Dispatcher, Router, command
from bot.infra import i18n
from bot.pipeline import Pipeline
from bot.runtime import Runtime
from handlers import ROUTERS
from storage.models import AuditLog, Conversation, InboundEvent, Location, OutboxMessage, TaskCard
from tests.console_driver import ConsoleUser

STOCK = "备货 省人民 骨钉 20 2026-11-30"
NOON = datetime(2026, 11, 23, 12, tzinfo=ZoneInfo("Asia/Shanghai"))
LEVELS = [{"trigger": "not_claimed", "after_sla": "first_response", "notify": ["head"]}]


def _refusing_router() -> Router:
    router = Router("test_refusal")

    @router.route(command("坏事"))
    async def half_done_then_refused(ctx: Context) -> None:
        """Writes a row, changes the conversation and replies, then a service refuses."""
        ctx.session.add(
            Location(
                user_id=ctx.user.id, channel="console", latitude=30.0, longitude=120.0, label="x", shared_at=ctx.now
            )
        )
        await ctx.session.flush()
        ctx.conversation.start("visit", {"token": "t"})
        ctx.reply("half done")
        denial = Denial("test.denied", "location", None, {"why": "test"})
        raise DomainError("task.held_by", denial=denial, no="T9", holder_id="log01")

    return router


def _say(sender: str, n: int, body: str) -> TextMessage:
    return TextMessage(channel="console", sender=sender, dedup_key=f"{sender}:refusal-{n}", text=body)


async def _texts(rt: Runtime, recipient: str) -> list[str]:
    async with rt.db.read() as s:
        rows = await s.scalars(
            select(OutboxMessage).where(OutboxMessage.recipient == recipient).order_by(OutboxMessage.id)
        )
        return [str(r.payload.get("text", "")) for r in rows]


async def _count(rt: Runtime, model: Any, *where: Any) -> int:
    async with rt.db.read() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


@pytest.mark.parametrize("batch", [False, True])
async def test_a_domain_error_yields_exactly_the_reply_and_no_state_change(runtime: Runtime, batch: bool) -> None:
    await runtime.outbox.stop()  # the outbox rows stay to be read
    runtime.dispatcher = Dispatcher([_refusing_router(), *ROUTERS])
    pipeline = Pipeline(runtime, concurrency=1)
    await pipeline.ingest(_say("rep01", 1, "坏事"))
    if batch:  # another sender's event in the same batch keeps its work
        await pipeline.ingest(_say("rep02", 1, "拜访"))
    pipeline.start()
    await pipeline.join()
    await pipeline.stop()
    held_by = i18n.t("zh-CN", "task.held_by", no="T9", holder="吴敏")
    assert await _texts(runtime, "rep01") == [held_by]
    assert await _count(runtime, Location) == 0
    assert await _count(runtime, Conversation, Conversation.user_id == "rep01") == 0
    assert await _count(runtime, AuditLog, AuditLog.action == "test.denied", AuditLog.actor_id == "rep01") == 1
    async with runtime.db.read() as s:
        statuses = dict((await s.execute(select(InboundEvent.sender, InboundEvent.status))).all())
    assert statuses == ({"rep01": "done", "rep02": "done"} if batch else {"rep01": "done"})
    if batch:
        assert await _texts(runtime, "rep02")  # the visit dialog's first question
        assert await _count(runtime, Conversation, Conversation.user_id == "rep02", Conversation.flow == "visit") == 1


@pytest.fixture
def settings_overrides() -> dict[str, dict[str, Any]]:
    return {"escalation": {"sweep_interval_seconds": 3600, "remind_at": 0, "levels": LEVELS}}


def _notice(user: ConsoleUser) -> dict[str, Any]:
    [notice] = [c for ref, c in user.cards().items() if re.search(r"-[0-9a-f]{6}-e\d+$", ref)]
    return notice


async def _the_card(rt: Runtime) -> TaskCard:
    async with rt.db.read() as s:
        [card] = list(await s.scalars(select(TaskCard)))
        return card


async def test_take_over_goes_through_the_state_machine(console: Any, runtime: Runtime, clock: Any) -> None:
    """A card waiting for the rep's answer (need_info) is not taken over from an old notice: refused like a claim,
    in plain words, and the card keeps its state and holder (before, the handler set the holder itself)."""
    rep = await console("rep01")
    await rep.send(STOCK)
    await rep.refresh()
    await rep.tap("提交")
    head, log01 = await console("log_head"), await console("log01")
    clock.set(NOON)  # the first-response SLA (2 working hours) is over
    await runtime.escalator.sweep()
    await runtime.settle()
    await head.refresh()
    notice = _notice(head)
    await log01.refresh()
    await log01.tap("需补充")
    await log01.send("哪个仓库发货？")
    before = await _the_card(runtime)
    assert (before.state, before.holder_id) == ("need_info", None)
    await head.tap("接手", notice["ref"])
    assert (await head.replies())[-1] == "卡片 T1 正在等待代表补充信息，收到回复后再继续。"
    after = await _the_card(runtime)
    assert (after.state, after.holder_id, after.state_since) == ("need_info", None, before.state_since)
    assert await _count(runtime, AuditLog, AuditLog.action == "escalation.takeover") == 0
    # Once the rep has answered, the take-over is a transition like any other.
    await rep.send("补充 T1 杭州仓")
    await head.tap("接手", notice["ref"])
    assert (await head.replies())[-1] == "你已接手卡片 T1：备货 骨钉 × 20"
    taken = await _the_card(runtime)
    assert (taken.state, taken.holder_id) == ("claimed", "log_head")
    assert await _count(runtime, AuditLog, AuditLog.action == "escalation.takeover") == 1


async def test_reassign_of_a_closed_card_is_refused(console: Any, runtime: Runtime, clock: Any) -> None:
    rep = await console("rep01")
    await rep.send(STOCK)
    await rep.refresh()
    await rep.tap("提交")
    head, log01 = await console("log_head"), await console("log01")
    clock.set(NOON)
    await runtime.escalator.sweep()
    await runtime.settle()
    await head.refresh()
    notice = _notice(head)
    await head.tap("转派", notice["ref"])
    await head.refresh()
    choose = head.last_card()
    await log01.refresh()
    await log01.tap("驳回")
    await log01.send("没有库存")
    await head.tap("吴敏", choose["ref"])
    assert (await head.replies())[-1] == "卡片 T1 已关闭（已驳回），无需再操作。"
    card = await _the_card(runtime)
    assert (card.state, card.holder_id) == ("rejected", "log01")
    assert await _count(runtime, AuditLog, AuditLog.action == "escalation.reassign") == 0
