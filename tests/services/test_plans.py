"""Visit plans (bot/parsing/plan_parser.py, bot/services/plans.py, bot/plan_reminders.py): the one-line grammar,
who may plan for whom, duplicates, week items, done derived from visits (the span's bounds at local midnight), and
the reminders on the working calendar with the injected clock.

The clock stands at Monday 2026-11-23 10:00 in Shanghai (tests/conftest.py T0).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from bot.core.errors import DomainError
from bot.infra.clock import FixedClock
from bot.parsing.plan_parser import PlanWhen, parse_plan_line, parse_span
from bot.plan_reminders import MORNING, NUDGE
from bot.runtime import Runtime
from bot.services import plans as svc
from storage.models import Customer, JobRun, OutboxMessage, PlanItem, User, Visit
from storage.vocab import PlanPeriod

SH = ZoneInfo("Asia/Shanghai")
MONDAY = date(2026, 11, 23)
ZJU1 = "浙江大学医学院附属第一医院"
ZJU2 = "浙江大学医学院附属第二医院"


def local(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SH)


# ---- the grammar ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "period", "day"),
    [
        ("今天", PlanPeriod.DAY, MONDAY),
        ("明天", PlanPeriod.DAY, date(2026, 11, 24)),
        ("周三", PlanPeriod.DAY, date(2026, 11, 25)),
        ("周一", PlanPeriod.DAY, MONDAY),  # today is Monday: the bare weekday is today, not a week back
        ("周日", PlanPeriod.DAY, date(2026, 11, 29)),
        ("12-05", PlanPeriod.DAY, date(2026, 12, 5)),
        ("本周", PlanPeriod.WEEK, MONDAY),
        ("下周", PlanPeriod.WEEK, date(2026, 11, 30)),
        ("this week", PlanPeriod.WEEK, MONDAY),
    ],
)
def test_a_span_word_is_a_day_or_a_week_and_a_bare_weekday_is_the_coming_one(
    text: str, period: PlanPeriod, day: date
) -> None:
    assert parse_span(text, MONDAY) == PlanWhen(period, day)


def test_a_bare_weekday_already_past_this_week_is_next_weeks() -> None:
    assert parse_span("周三", date(2026, 11, 26)) == PlanWhen(PlanPeriod.DAY, date(2026, 12, 2))


def test_the_line_gives_its_span_the_words_around_it_and_the_purpose() -> None:
    line = parse_plan_line("王磊 明天 浙一、浙二 邵逸夫 目的:新品 试用", MONDAY)
    assert line.when == PlanWhen(PlanPeriod.DAY, date(2026, 11, 24))
    assert line.lead == ["王磊"]
    assert line.names == ["浙一", "浙二", "邵逸夫"]
    assert line.purpose == "新品 试用"
    assert line.words == ["王磊", "浙一", "浙二", "邵逸夫"]
    no_day = parse_plan_line("浙一 浙二", MONDAY)
    assert no_day.when is None and no_day.words == ["浙一", "浙二"]


# ---- rules ---------------------------------------------------------------------------------------------------------


async def _people(rt: Runtime) -> dict[str, User]:
    async with rt.db.transaction() as s:
        # A second team: mgr02 with rep03 under them; rep04 under a manager who reports to mgr01.
        s.add_all(
            [
                User(id="mgr02", name="钱坤", roles=["manager"], manager_id="dir01", created_at=T, updated_at=T),
                User(id="rep03", name="孙丽", roles=["rep"], manager_id="mgr02", created_at=T, updated_at=T),
                User(id="mgr03", name="周明", roles=["manager"], manager_id="mgr01", created_at=T, updated_at=T),
                User(id="rep04", name="郑爽", roles=["rep"], manager_id="mgr03", created_at=T, updated_at=T),
            ]
        )
    async with rt.db.read() as s:
        return {u.id: u for u in await s.scalars(select(User))}


T = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


async def _customer_ids(rt: Runtime) -> dict[str, int]:
    async with rt.db.read() as s:
        return {c.name: c.id for c in await s.scalars(select(Customer))}


async def plan(
    rt: Runtime, rep: str, names: list[str], when: PlanWhen, actor: str | None = None, purpose: str | None = None
) -> svc.Added:
    ids = await _customer_ids(rt)
    async with rt.db.transaction() as s:
        rep_user = await s.get(User, rep)
        actor_user = await s.get(User, actor or rep)
        assert rep_user is not None and actor_user is not None
        return await svc.add(
            s,
            rep=rep_user,
            actor=actor_user,
            when=when,
            customers=[svc.Planned(ids[n], n) for n in names],
            purpose=purpose,
            now=rt.clock.now(),
            tz=SH,
            channel="console",
        )


async def visit(rt: Runtime, rep: str, name: str, at: datetime) -> None:
    ids = await _customer_ids(rt)
    async with rt.db.transaction() as s:
        s.add(
            Visit(
                rep_id=rep,
                customer_id=ids[name],
                visited_at=at.astimezone(UTC),
                source_channel="console",
                created_at=at,
                updated_at=at,
            )
        )


async def view(rt: Runtime, rep: str, actor: str | None = None) -> svc.PlanView:
    async with rt.db.read() as s:
        rep_user, actor_user = await s.get(User, rep), await s.get(User, actor or rep)
        assert rep_user is not None and actor_user is not None
        return await svc.overview(s, actor_user, rep_user, now=rt.clock.now(), tz=SH)


def marks(items: list[svc.ItemView]) -> list[tuple[str, bool]]:
    return [(i.customer, i.done) for i in items]


async def test_planning_the_same_customer_for_the_same_day_again_adds_nothing(runtime: Runtime) -> None:
    tomorrow = PlanWhen(PlanPeriod.DAY, date(2026, 11, 24))
    first = await plan(runtime, "rep01", [ZJU1, ZJU2, ZJU1], tomorrow)
    assert [n for _, n in first.created] == [ZJU1, ZJU2]
    again = await plan(runtime, "rep01", [ZJU1], tomorrow)
    assert again.created == [] and again.existing == [ZJU1]
    # The same customer for the week is another item (its own key).
    week = await plan(runtime, "rep01", [ZJU1], PlanWhen(PlanPeriod.WEEK, date(2026, 11, 26)))
    [(item, _)] = week.created
    assert (item.period, item.day) == ("week", MONDAY)
    async with runtime.db.read() as s:
        assert len(list(await s.scalars(select(PlanItem)))) == 3


async def test_a_cancelled_item_planned_again_is_open_again_not_a_second_row(runtime: Runtime) -> None:
    tomorrow = PlanWhen(PlanPeriod.DAY, date(2026, 11, 24))
    [(item, _)] = (await plan(runtime, "rep01", [ZJU1], tomorrow)).created
    async with runtime.db.transaction() as s:
        rep = await s.get(User, "rep01")
        assert rep is not None
        done = await svc.cancel(
            s, runtime.directory, rep, f"P{item.id}", now=runtime.clock.now(), tz=SH, channel="console"
        )
        assert [i.id for i, _ in done.items] == [item.id]
    [(again, _)] = (await plan(runtime, "rep01", [ZJU1], tomorrow)).created
    assert again.id == item.id and again.status == "open"


async def test_a_past_day_is_refused_saying_what_day_it_is(runtime: Runtime) -> None:
    with pytest.raises(DomainError) as refused:
        await plan(runtime, "rep01", [ZJU1], PlanWhen(PlanPeriod.DAY, date(2026, 11, 22)))
    assert refused.value.key == "plan.past_day"
    assert refused.value.params["today"] == "11-23 周一"
    # This week's week item may still be planned on its last day.
    runtime_clock = runtime.clock
    assert isinstance(runtime_clock, FixedClock)
    runtime_clock.set(local(2026, 11, 29, 20))
    assert (await plan(runtime, "rep01", [ZJU1], PlanWhen(PlanPeriod.WEEK, MONDAY))).created


@pytest.mark.parametrize(
    ("actor", "rep", "allowed"),
    [
        ("mgr01", "rep01", True),  # directly
        ("mgr01", "rep04", True),  # through mgr03, who reports to mgr01
        ("mgr01", "rep03", False),  # another manager's team
        ("mgr02", "rep01", False),
        ("dir01", "rep03", True),  # a director: anyone
        ("rep02", "rep01", False),  # a rep cannot plan for a colleague
    ],
)
async def test_who_may_plan_for_whom(runtime: Runtime, actor: str, rep: str, allowed: bool) -> None:
    people = await _people(runtime)
    async with runtime.db.read() as s:
        if allowed:
            await svc.check_scope(s, people[actor], people[rep])
        else:
            with pytest.raises(DomainError) as refused:
                await svc.check_scope(s, people[actor], people[rep])
            assert refused.value.key == "plan.not_your_rep"
            assert refused.value.denial is not None


async def test_a_manager_names_the_rep_first_and_the_item_is_theirs(runtime: Runtime) -> None:
    people = await _people(runtime)
    async with runtime.db.read() as s:
        rep, rest = await svc.target_of(s, people["mgr01"], ["王磊", "浙一"])
        assert (rep.id, rest) == ("rep01", ["浙一"])
        # A rep's first word is never a person: 王磊 is then a hospital word (not found later).
        me, rest = await svc.target_of(s, people["rep02"], ["王磊", "浙一"])
        assert (me.id, rest) == ("rep02", ["王磊", "浙一"])
        with pytest.raises(DomainError) as refused:
            await svc.target_of(s, people["mgr02"], ["王磊", "浙一"])
        assert refused.value.key == "plan.not_your_rep"
        with pytest.raises(DomainError) as whose:
            await svc.target_of(s, people["mgr01"], ["浙一"])
        assert whose.value.key == "plan.whose"
    added = await plan(runtime, "rep01", [ZJU1], PlanWhen(PlanPeriod.DAY, MONDAY), actor="mgr01")
    [(item, _)] = added.created
    assert (item.source, item.created_by) == ("manager", "mgr01")


async def test_done_is_a_visit_by_that_rep_to_that_customer_inside_the_span(runtime: Runtime) -> None:
    await plan(runtime, "rep01", [ZJU1, ZJU2], PlanWhen(PlanPeriod.DAY, MONDAY))
    await plan(runtime, "rep01", ["浙江省人民医院"], PlanWhen(PlanPeriod.WEEK, MONDAY))
    await visit(runtime, "rep02", ZJU1, local(2026, 11, 23, 9))  # another rep's visit: not rep01's plan
    await visit(runtime, "rep01", "杭州市第一人民医院", local(2026, 11, 23, 9))  # unplanned: counts for nothing here
    v = await view(runtime, "rep01")
    assert marks(v.today_items) == [(ZJU1, False), (ZJU2, False)]
    await visit(runtime, "rep01", ZJU1, local(2026, 11, 23, 9, 30))
    await visit(runtime, "rep01", ZJU1, local(2026, 11, 23, 11))  # twice: still one item done
    v = await view(runtime, "rep01")
    assert marks(v.today_items) == [(ZJU1, True), (ZJU2, False)]
    assert marks(v.week_items) == [("浙江省人民医院", False)]


async def test_a_visit_on_the_next_day_does_not_do_a_day_item_but_does_a_week_item(runtime: Runtime) -> None:
    await plan(runtime, "rep01", [ZJU1], PlanWhen(PlanPeriod.DAY, MONDAY))
    await plan(runtime, "rep01", [ZJU2], PlanWhen(PlanPeriod.WEEK, MONDAY))
    await visit(runtime, "rep01", ZJU1, local(2026, 11, 24, 0, 0))  # Tuesday 00:00: the span has ended
    await visit(runtime, "rep01", ZJU2, local(2026, 11, 29, 23, 59))  # Sunday 23:59: still the week
    v = await view(runtime, "rep01")
    assert marks(v.today_items) == [(ZJU1, False)]
    assert marks(v.week_items) == [(ZJU2, True)]


async def test_the_span_is_the_local_day_not_the_utc_day(runtime: Runtime) -> None:
    """Monday in Shanghai is Sunday 16:00 to Monday 16:00 UTC: a visit at 00:30 local (16:30 UTC the day before)
    does Monday's item; one at 23:59 local Sunday does not."""
    [(item, _)] = (await plan(runtime, "rep01", [ZJU1], PlanWhen(PlanPeriod.DAY, MONDAY))).created
    assert item.starts_at == datetime(2026, 11, 22, 16, 0, tzinfo=UTC)
    assert item.ends_at == datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
    await visit(runtime, "rep01", ZJU1, local(2026, 11, 22, 23, 59))
    assert marks((await view(runtime, "rep01")).today_items) == [(ZJU1, False)]
    await visit(runtime, "rep01", ZJU1, local(2026, 11, 23, 0, 30))
    assert marks((await view(runtime, "rep01")).today_items) == [(ZJU1, True)]


async def test_a_manager_sees_their_reps_plan_and_nobody_elses(runtime: Runtime) -> None:
    await _people(runtime)
    await plan(runtime, "rep01", [ZJU1], PlanWhen(PlanPeriod.DAY, MONDAY))
    assert marks((await view(runtime, "rep01", actor="mgr01")).today_items) == [(ZJU1, False)]
    with pytest.raises(DomainError):
        await view(runtime, "rep01", actor="mgr02")


async def test_cancel_by_name_takes_that_customers_open_items_of_the_span(runtime: Runtime) -> None:
    tomorrow = PlanWhen(PlanPeriod.DAY, date(2026, 11, 24))
    await plan(runtime, "rep01", [ZJU1, ZJU2], tomorrow)
    await plan(runtime, "rep01", [ZJU1], PlanWhen(PlanPeriod.DAY, MONDAY))
    async with runtime.db.transaction() as s:
        rep = await s.get(User, "rep01")
        assert rep is not None
        done = await svc.cancel(s, runtime.directory, rep, "浙一 明天", now=runtime.clock.now(), tz=SH, channel="c")
        assert [(i.day, n) for i, n in done.items] == [(date(2026, 11, 24), ZJU1)]
        with pytest.raises(DomainError) as missing:
            await svc.cancel(s, runtime.directory, rep, "省人民", now=runtime.clock.now(), tz=SH, channel="c")
        assert missing.value.key == "plan.cancel_not_found"


# ---- the reminders -------------------------------------------------------------------------------------------------


class TestReminders:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, dict[str, Any]]:
        return {"plans": {"morning_reminder": "08:30", "open_items_nudge": "16:00"}}

    @staticmethod
    async def texts(rt: Runtime) -> list[tuple[str, str]]:
        async with rt.db.read() as s:
            rows = await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
            return [(r.recipient, r.payload.get("text", "")) for r in rows if r.kind == "text"]

    async def test_the_morning_list_and_the_nudge_go_once_on_a_working_day(
        self, runtime: Runtime, clock: FixedClock
    ) -> None:
        await runtime.jobs.idle()  # the start's catch-up look (Monday 08:30: nothing planned then)
        tuesday = PlanWhen(PlanPeriod.DAY, date(2026, 11, 24))
        await plan(runtime, "rep01", [ZJU1, ZJU2], tuesday)
        await plan(runtime, "rep02", [ZJU1], tuesday)
        before = len(await self.texts(runtime))
        clock.set(local(2026, 11, 24, 8, 30))
        [result] = await runtime.jobs.run_due([MORNING])
        assert (result.outcome, result.period) == ("done", "2026-11-24T08:30")
        sent = (await self.texts(runtime))[before:]
        assert [r for r, _ in sent] == ["rep01", "rep02"]
        assert sent[0][1].startswith("☀️ 今天的拜访计划（2 家）") and ZJU2 in sent[0][1]
        assert [r.outcome for r in await runtime.jobs.run_due([MORNING])] == ["skipped"]  # once per period
        await visit(runtime, "rep02", ZJU1, local(2026, 11, 24, 11))
        await visit(runtime, "rep01", ZJU1, local(2026, 11, 24, 11))
        clock.set(local(2026, 11, 24, 16, 0))
        await runtime.jobs.run_due([NUDGE])
        nudges = (await self.texts(runtime))[before + 2 :]
        assert len(nudges) == 1 and nudges[0][0] == "rep01"  # rep02 has done theirs
        assert "还有 1 家计划未拜访" in nudges[0][1] and ZJU2 in nudges[0][1] and ZJU1 not in nudges[0][1]

    async def test_a_round_run_again_after_it_had_sent_sends_nobody_the_reminder_twice(
        self, runtime: Runtime, clock: FixedClock
    ) -> None:
        await runtime.jobs.idle()
        await plan(runtime, "rep01", [ZJU1], PlanWhen(PlanPeriod.DAY, date(2026, 11, 24)))
        before = len(await self.texts(runtime))
        clock.set(local(2026, 11, 24, 8, 30))
        await runtime.jobs.run_due([MORNING])
        # Killed after its commit, before the done mark: the period is run again.
        async with runtime.db.transaction() as s:
            await s.execute(update(JobRun).where(JobRun.job == MORNING).values(status="failed"))
        [again] = await runtime.jobs.run_due([MORNING])
        assert again.outcome == "done"
        assert [r for r, _ in (await self.texts(runtime))[before:]] == ["rep01"]

    async def test_no_reminder_on_a_day_off(self, runtime: Runtime, clock: FixedClock) -> None:
        await runtime.jobs.idle()
        saturday = PlanWhen(PlanPeriod.DAY, date(2026, 11, 28))
        await plan(runtime, "rep01", [ZJU1], saturday)
        before = len(await self.texts(runtime))
        clock.set(local(2026, 11, 28, 8, 30))
        [result] = await runtime.jobs.run_due([MORNING])
        assert result.outcome == "done"
        assert (await self.texts(runtime))[before:] == []
