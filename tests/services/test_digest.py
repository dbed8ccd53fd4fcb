"""The digest's figures (bot/services/digest.py) on the hand-made data set of tests/digest_data.py, at Tuesday
2026-12-01 18:00 Shanghai: every expected value below is worked out by hand from those rows (the comments say how).

Working hours are the defaults (09:00–12:00, 13:00–18:00, Monday–Friday); [plans] frequency A = 2 a month;
[digest] plan_threshold 0.92, a_customer_gap_days 30, first_response_target_hours 2.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.config import Settings
from bot.services import digest as svc
from bot.services.digest_model import CustomerGap, DepartmentLine, Digest, ObjectionCount, Period, RepLine
from storage.db import Database
from storage.models import Customer, User, Visit
from tests.conftest import make_settings
from tests.digest_data import DAY, NOW, seed


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    await seed(database)
    yield database
    await database.dispose()


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url, plans={"frequency": {"A": 2, "B": 1, "C": 1}})


async def digest_of(
    db: Database,
    settings: Settings,
    user_id: str,
    period: Period = "day",
    day: date = DAY,
    rep_id: str | None = None,
    now: datetime = NOW,
) -> Digest:
    async with db.read() as s:
        viewer = await s.get(User, user_id)
        assert viewer is not None
        return await svc.compute_digest(s, settings, viewer, period=period, day=day, now=now, rep_id=rep_id)


# ---- a manager's day: every figure ------------------------------------------------------------------------------


async def test_a_managers_day_plan_completion_reach_and_visits(db: Database, settings: Settings) -> None:
    d = await digest_of(db, settings, "m1")
    # m1's reps: r1, r2, r3 and, through m2 below m1, r4.
    assert d.scope.reps == ("r1", "r2", "r3", "r4") and (d.scope.start, d.scope.end) == (DAY, DAY)
    # r1: C1 done (V1), C2 not (V2 was the day before); the cancelled C3, tomorrow's C1 and the week item (its
    # Monday is 11-30) are not in the day. r2: C3 done by two visits (once), C4 not. r3 none. r4: C6 done.
    assert d.reps == (
        RepLine("r1", "王磊", 1, 2, 1, 0.5, True, 0),
        RepLine("r2", "李娜", 2, 2, 1, 0.5, True, 1),
        RepLine("r3", "张伟", 2, 0, 0, None, False, 1),
        RepLine("r4", "赵敏", 1, 1, 1, 1.0, False, 0),
    )
    t = d.totals
    assert (t.visits, t.plan_items, t.plan_done, t.no_location) == (6, 5, 3, 2)
    assert t.plan_completion == pytest.approx(3 / 5)
    # Planned (rep, customer): (r1,C1) yes, (r1,C2) no, (r2,C3) yes, (r2,C4) no, (r4,C6) yes.
    assert t.reach == pytest.approx(3 / 5)
    assert [r.user for r in d.below_threshold()] == ["r1", "r2"]


async def test_a_managers_a_customers_coverage_touch_and_gaps(db: Database, settings: Settings) -> None:
    d = await digest_of(db, settings, "m1")
    # A customers of r1–r4: C1 C2 C3 C6 C7 C8 C9. December so far: C1 2 visits (V1, and V7 by the other team's
    # r5: the customer was seen), C3 2, C6 1, the others 0 — frequency 2: C1 and C3 covered, C6 touched.
    assert d.totals.a_coverage == pytest.approx(2 / 7)
    assert d.totals.a_touched == pytest.approx(3 / 7)
    # Not visited for 30 days: C7 never, C8 since 10-15 (47 days), C9 since 11-01 (30 days, on the limit).
    assert d.a_customers_not_visited == (
        CustomerGap("庚医院", None),
        CustomerGap("辛医院", 47),
        CustomerGap("壬医院", 30),
    )


async def test_a_managers_top_objections_and_requests(db: Database, settings: Settings) -> None:
    d = await digest_of(db, settings, "m1")
    # V1 V3 V5 价格, V4 V6 交付, V10 资质; r5's 价格 (V7) is the other team's.
    assert d.top_objections == (ObjectionCount("价格", 3), ObjectionCount("交付", 2), ObjectionCount("资质", 1))
    assert d.totals.requests_opened == 6


async def test_a_managers_cards_and_first_response_per_department(db: Database, settings: Settings) -> None:
    d = await digest_of(db, settings, "m1")
    t = d.totals
    # Opened K1–K6; first response in the day K1 K2 K3 K5 K6; done K1; K8 overdue since 11-30 and escalated.
    assert (t.cards_opened, t.cards_claimed, t.cards_done, t.cards_overdue, t.cards_escalated) == (6, 5, 1, 1, 1)
    # Logistics: K1 30, K6 45, K2 60 (11:30→13:30 over lunch), K3 150 (surgery: calendar hours, 07:00→09:30);
    # K4 unanswered 150 working minutes: a miss. Median (45+60)/2, p90 the 4th of 4, within 2 h 3 of 5.
    # Marketing: K5 10:00→14:00 = 180 working minutes.
    assert d.departments == (
        DepartmentLine("logistics", 5, 52.5, 150.0, pytest.approx(3 / 5), 1),  # type: ignore[arg-type]
        DepartmentLine("marketing", 1, 180.0, 180.0, 0.0, 0),
    )


# ---- periods ----------------------------------------------------------------------------------------------------


async def test_a_week_counts_its_week_items_and_every_day_item_of_monday_to_sunday(
    db: Database, settings: Settings
) -> None:
    d = await digest_of(db, settings, "m1", "week")
    assert (d.scope.start, d.scope.end) == (date(2026, 11, 30), date(2026, 12, 6))
    # r1: 12-01 C1 done, 12-01 C2 not, the week's C2 done (V2 on Monday), 12-02 C1 not; r2 1/2; r4 1/1.
    assert (d.totals.plan_items, d.totals.plan_done) == (7, 4)
    assert d.reps[0] == RepLine("r1", "王磊", 2, 4, 2, 0.5, True, 0)
    # (r1,C2) reached this week (V2) although its 12-01 item is missed: reach 4/5, completion 4/7.
    assert d.totals.reach == pytest.approx(4 / 5)
    assert d.totals.visits == 7


async def test_a_month_counts_plan_items_by_their_day(db: Database, settings: Settings) -> None:
    d = await digest_of(db, settings, "m1", "month")
    assert (d.scope.start, d.scope.end) == (date(2026, 12, 1), date(2026, 12, 31))
    # The week item's day is Monday 11-30: November's. December: r1 1/3, r2 1/2, r4 1/1.
    assert (d.totals.plan_items, d.totals.plan_done, d.totals.visits) == (6, 3, 6)
    assert d.totals.reach == pytest.approx(3 / 5)


async def test_a_past_day_is_figured_as_of_its_end(db: Database, settings: Settings) -> None:
    d = await digest_of(db, settings, "m1", day=date(2026, 11, 30))
    # Monday 11-30 holds the week item (its day), but a day digest counts day items only: none that day.
    assert (d.totals.plan_items, d.totals.plan_done, d.totals.visits) == (0, 0, 1)
    assert d.totals.plan_completion is None and not d.below_threshold()
    # November up to 12-01 00:00: C1 (V8), C2 (V2), C9 (V13) once each; nobody twice.
    assert (d.totals.a_coverage, d.totals.a_touched) == (0.0, pytest.approx(3 / 7))
    # As of 11-30: C3, C6 and C7 never visited yet, C8 46 days; C1 (20) and C9 (29) within the 30.
    assert d.a_customers_not_visited == (
        CustomerGap("丙医院", None),
        CustomerGap("己医院", None),
        CustomerGap("庚医院", None),
        CustomerGap("辛医院", 46),
    )
    # K8 went overdue at 18:00 that day and is escalated; nothing opened.
    assert (d.totals.cards_opened, d.totals.cards_overdue, d.totals.cards_escalated) == (0, 1, 1)


async def test_the_period_is_figured_as_of_now_while_it_runs(db: Database, settings: Settings) -> None:
    # At 16:00 K4 (opened 15:30) is 30 working minutes old: not yet a miss.
    d = await digest_of(db, settings, "m1", now=NOW - timedelta(hours=2))
    logistics = d.departments[0]
    assert logistics.within_target_share == pytest.approx(3 / 4)


# ---- scope ------------------------------------------------------------------------------------------------------


async def test_a_nested_manager_sees_only_their_own_team(db: Database, settings: Settings) -> None:
    d = await digest_of(db, settings, "m2")
    assert d.scope.reps == ("r4",)
    t = d.totals
    assert (t.visits, t.plan_items, t.plan_done, t.plan_completion, t.reach) == (1, 1, 1, 1.0, 1.0)
    # C6 once in December: touched, not covered.
    assert (t.a_coverage, t.a_touched) == (0.0, 1.0)
    # K4: opened, unanswered past the target.
    assert (t.requests_opened, t.cards_opened, t.cards_claimed) == (1, 1, 0)
    assert d.departments == (DepartmentLine("logistics", 1, None, None, 0.0, 0),)
    assert d.top_objections == (ObjectionCount("交付", 1),)


async def test_a_director_sees_everyone(db: Database, settings: Settings) -> None:
    d = await digest_of(db, settings, "d1")
    assert d.scope.reps == ("r1", "r2", "r3", "r4", "r5")
    t = d.totals
    assert (t.visits, t.no_location, t.plan_items, t.plan_done) == (8, 3, 6, 4)
    assert t.reach == pytest.approx(4 / 6)
    # Every A customer: C1 C2 C3 C5 C6 C7 C8 C9; covered C1 C3, touched also C5 C6.
    assert (t.a_coverage, t.a_touched) == (0.25, 0.5)
    assert d.top_objections == (ObjectionCount("价格", 4), ObjectionCount("交付", 2), ObjectionCount("资质", 1))
    assert (t.requests_opened, t.cards_opened, t.cards_claimed) == (7, 7, 6)
    # K7 (5 minutes) joins logistics: [5, 30, 45, 60, 150].
    logistics = d.departments[0]
    assert (logistics.first_response_median_minutes, logistics.first_response_p90_minutes) == (45.0, 150.0)
    assert logistics.within_target_share == pytest.approx(4 / 6)


async def test_the_other_team_sees_none_of_the_first(db: Database, settings: Settings) -> None:
    d = await digest_of(db, settings, "m3")
    assert d.scope.reps == ("r5",)
    assert (d.totals.visits, d.totals.no_location, d.totals.plan_completion) == (2, 1, 1.0)
    assert (d.totals.a_coverage, d.totals.a_touched) == (0.0, 1.0)


async def test_a_rep_gets_their_own(db: Database, settings: Settings) -> None:
    d = await digest_of(db, settings, "r1")
    assert d.scope.reps == ("r1",)
    assert d.reps == (RepLine("r1", "王磊", 1, 2, 1, 0.5, True, 0),)
    # r1's A customers: C1 covered, C2 not touched.
    assert (d.totals.a_coverage, d.totals.a_touched) == (0.5, 0.5)


async def test_rep_id_narrows_within_the_scope(db: Database, settings: Settings) -> None:
    d = await digest_of(db, settings, "m1", rep_id="r2")
    assert d.scope.reps == ("r2",)
    assert (d.totals.visits, d.totals.plan_items, d.totals.plan_done) == (2, 2, 1)


@pytest.mark.parametrize(("viewer", "rep"), [("m1", "r5"), ("m3", "r1"), ("m2", "r1"), ("r1", "r2")])
async def test_nobody_sees_another_team(db: Database, settings: Settings, viewer: str, rep: str) -> None:
    with pytest.raises(svc.DigestError) as refused:
        await digest_of(db, settings, viewer, rep_id=rep)
    assert refused.value.key == "digest.not_in_scope"


async def test_a_department_member_has_no_digest(db: Database, settings: Settings) -> None:
    with pytest.raises(svc.DigestError) as refused:
        await digest_of(db, settings, "log1")
    assert refused.value.key == "digest.not_allowed"


async def test_no_plan_items_is_not_below_the_threshold(db: Database, settings: Settings) -> None:
    d = await digest_of(db, settings, "m1", day=date(2026, 12, 5))
    assert d.totals.plan_completion is None and d.totals.reach is None
    assert d.below_threshold() == []


# ---- what a person typed ----------------------------------------------------------------------------------------


def test_parse_ask_reads_days_names_and_detail_in_any_order() -> None:
    today = date(2026, 12, 1)
    assert svc.parse_ask("", today) == svc.Ask(today)
    assert svc.parse_ask("昨天 详情", today) == svc.Ask(date(2026, 11, 30), detail=True)
    assert svc.parse_ask("王磊 2026-11-20", today) == svc.Ask(date(2026, 11, 20), rep="王磊")
    assert svc.parse_ask("11-20", today) == svc.Ask(date(2026, 11, 20))
    assert svc.parse_ask("12月1日", today) == svc.Ask(today)
    with pytest.raises(svc.DigestError):
        svc.parse_ask("2026-02-30", today)


async def test_ask_finds_a_rep_by_name_in_the_scope_only(db: Database, settings: Settings) -> None:
    async with db.read() as s:
        m1 = await s.get(User, "m1")
        assert m1 is not None
        answer = await svc.ask(s, settings, m1, "day", "王磊 昨天", NOW)
        assert answer.digest.scope.reps == ("r1",) and answer.digest.scope.start == date(2026, 11, 30)
        with pytest.raises(svc.DigestError) as refused:
            await svc.ask(s, settings, m1, "day", "孙丽", NOW)
    assert refused.value.key == "digest.no_such_rep"


async def test_tied_objections_are_ordered_by_name_alike_on_every_backend(db: Database, settings: Settings) -> None:
    """Ties in code-point order (交 U+4EA4, 价 U+4EF7, 资 U+8D44), not the database's collation (pinyin: 价 交 资)."""
    saturday = datetime(2026, 12, 5, 2, tzinfo=UTC)
    async with db.transaction() as s:
        customer = await s.scalar(select(Customer.id).where(Customer.name == "丁医院"))
        assert customer is not None
        for objection in ("资质", "价格", "交付", "其他"):
            s.add(
                Visit(
                    rep_id="r3",
                    customer_id=customer,
                    visited_at=saturday,
                    objection=objection,
                    source_channel="console",
                    created_at=saturday,
                    updated_at=saturday,
                )
            )
    d = await digest_of(db, settings, "m1", day=date(2026, 12, 5))
    # 其他 (U+5176) comes before 资 but after 价: the three first by code point are 交付, 价格, 其他.
    assert [o.objection for o in d.top_objections] == ["交付", "价格", "其他"]
