"""The digest's follow-up cards (issue 12), on the console and WeCom: a rep below the plan threshold gets one card
to their manager, ``复盘：王磊 今日计划完成率 60%（3/5）`` listing the customers not visited; 备注 takes the next
message as the note, 已复盘 settles the card for good; nobody else may act on it; one card per rep and day.

The digest itself is given (``digest_model.Digest``) — what it contains is the digest's own tests' business; here
the follow-ups are made exactly as the 18:00 push makes them (``followups.create`` + the outbox).
The clock stands at Monday 2026-11-23 10:00 in Shanghai (tests/conftest.py T0).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot import outbox
from bot.core.intents import SendCard
from bot.runtime import Runtime
from bot.services import followups
from bot.services.digest_model import Digest, RepLine, Scope, Totals
from bot.services.plan_rule import span
from cards.followup import followup_card
from storage.models import Customer, PlanItem, User, Visit
from storage.vocab import PlanPeriod
from tests.scenario_driver import Chat, SeenCard, last_card

SH = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 23)
ZJ1, ZJ2, SRRSH = "浙江大学医学院附属第一医院", "浙江大学医学院附属第二医院", "浙江大学医学院附属邵逸夫医院"


def digest_of(*lines: RepLine) -> Digest:
    counts = ("visits", "plan_items", "plan_done", "no_location", "requests_opened", "cards_opened", "cards_claimed")
    ratios = ("plan_completion", "reach", "a_coverage", "a_touched")
    more = ("cards_done", "cards_overdue", "cards_escalated")
    totals = Totals(**dict.fromkeys(counts + more, 0), **dict.fromkeys(ratios))
    return Digest(Scope("mgr01", "day", DAY, DAY, tuple(r.user for r in lines)), totals, lines, (), (), ())


def below(user: str, name: str, done: int, items: int) -> RepLine:
    return RepLine(user, name, done, items, done, done / items, True, 0)


async def plan(runtime: Runtime, rep: str, *customers: str, visited: tuple[str, ...] = ()) -> None:
    """Day plan items of ``rep`` for DAY; a visit at 09:00 to each of ``visited``."""
    now = runtime.clock.now()
    day, start, end = span(PlanPeriod.DAY, DAY, SH)
    async with runtime.db.transaction() as s:
        ids = {c.name: c.id for c in await s.scalars(select(Customer))}
        for name in customers:
            s.add(
                PlanItem(
                    rep_id=rep, customer_id=ids[name], period="day", day=day, starts_at=start, ends_at=end,
                    status="open", source="chat", created_by=rep, created_at=now, updated_at=now,
                )
            )  # fmt: skip
        for name in visited:
            at = datetime(2026, 11, 23, 9, 0, tzinfo=SH)
            s.add(
                Visit(
                    rep_id=rep, customer_id=ids[name], contacts=[], products=[], visited_at=at,
                    source_channel="console", created_at=at, updated_at=at,
                )
            )  # fmt: skip


async def push_followups(runtime: Runtime, manager_id: str, digest: Digest) -> int:
    """What the digest push does for one manager's follow-ups; the number of cards made."""
    now = runtime.clock.now()
    async with runtime.db.transaction() as s:
        manager = await s.get(User, manager_id)
        assert manager is not None
        made = await followups.create(s, manager, digest, DAY, now, "test")
        channel = runtime.channel_for(manager)
        cards = [followup_card(m, manager.locale, DAY) for m in made]
        outbox.enqueue(s, [SendCard(channel=channel, user_ids=(manager.id,), card=c) for c in cards], now)
    await runtime.settle()
    return len(made)


async def current(person: Chat, card: SeenCard) -> SeenCard:
    [now] = [c for c in await person.cards() if c.ref == card.ref]
    return now


async def test_a_rep_below_plan_gives_the_manager_a_followup_with_the_customers_not_visited(
    chat: Any, runtime: Runtime
) -> None:
    await plan(runtime, "rep01", ZJ1, ZJ2, SRRSH, visited=(ZJ1,))
    mgr = await chat("mgr01")
    assert await push_followups(runtime, "mgr01", digest_of(below("rep01", "王磊", 1, 3))) == 1

    card = await last_card(mgr)
    assert card.title == "复盘：王磊 今日计划完成率 33%（1/3）"
    assert card.fields["未完成"] == f"{ZJ2}、{SRRSH}"
    assert card.buttons == ["已复盘", "备注"]


async def test_note_then_reviewed_settles_the_card(chat: Any, runtime: Runtime) -> None:
    mgr = await chat("mgr01")
    await push_followups(runtime, "mgr01", digest_of(below("rep01", "王磊", 3, 5)))
    card = await last_card(mgr)
    assert card.title == "复盘：王磊 今日计划完成率 60%（3/5）"

    await mgr.tap("备注", card)
    assert "请直接输入" in (await mgr.new_texts())[-1]
    await mgr.say("客户临时停诊，明天补拜访")
    assert "已记下备注" in (await mgr.new_texts())[-1]
    card = await current(mgr, card)
    assert card.fields["备注"] == "客户临时停诊，明天补拜访"
    assert card.buttons == ["已复盘", "备注"]

    await mgr.tap("已复盘", card)
    card = await current(mgr, card)
    assert card.buttons == [] and "陈静 已复盘" in card.status
    assert any("已标记复盘：王磊" in t for t in await mgr.new_texts())


async def test_only_the_reps_manager_may_act_on_the_followup(chat: Any, runtime: Runtime) -> None:
    mgr, rep = await chat("mgr01"), await chat("rep01")
    await push_followups(runtime, "mgr01", digest_of(below("rep01", "王磊", 3, 5)))
    card = await last_card(mgr)
    await rep.forge_tap(card.keys["已复盘"], card)
    assert any("不能处理" in t for t in await rep.new_texts())
    assert (await current(mgr, card)).buttons == ["已复盘", "备注"]


async def test_one_followup_per_rep_and_day_and_only_for_the_managers_own_reps(chat: Any, runtime: Runtime) -> None:
    await chat("mgr01")
    digest = digest_of(below("rep01", "王磊", 3, 5), below("log01", "吴敏", 0, 2))  # log01 is not mgr01's
    assert await push_followups(runtime, "mgr01", digest) == 1
    assert await push_followups(runtime, "mgr01", digest) == 0  # a second run of the push: nothing new
