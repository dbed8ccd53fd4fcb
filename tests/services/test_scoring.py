"""The nightly health score (bot/services/scoring.py) on a hand-made data set over the 8 demo customers, for the
night of Friday 2026-12-04; every expected value is worked out by hand below. On SQLite and PostgreSQL.

Defaults: weights 0.4 / 0.3 / 0.3, purchases over the 3 calendar months Oct–Dec 2026, trials and attendees over
the 90 days (2026-09-05, 2026-12-04]; grades A ≥ 80, B ≥ 60, C ≥ 0.

            purchases (Oct+Nov+Dec)        trials (in window)   attendees
浙一         30000 + 30000 + 40000 = 100000   3                    10 + 10 = 20
浙二         20000.25 + 30000.25 = 50000.50   0                    5
邵逸夫       20000                           1                    0
省人民       50000.50 (a tie with 浙二)        1 (a tie with 邵逸夫)  40
杭一         only September (outside): 0     0                    0
others       nothing

Just outside the windows, never counted: 浙一's September purchase, its trial and event on 09-05 (night − 90),
its trial on 12-05 (after the night); 杭一's September purchase.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, text, update

from bot.config import Settings
from bot.services import scoring
from storage.db import Database
from storage.models import Customer, CustomerEvent, CustomerPurchase, CustomerScore, CustomerTrial
from tests.conftest import make_settings

NIGHT = date(2026, 12, 4)
NOW = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)  # 02:00 on 12-04 in Shanghai
ZJU1, ZJU2, SYF = "浙江大学医学院附属第一医院", "浙江大学医学院附属第二医院", "浙江大学医学院附属邵逸夫医院"
PROV, HZ1 = "浙江省人民医院", "杭州市第一人民医院"
IDLE = ("绍兴和平医院", "浙江医院", "浙江省中医院")

PURCHASES = {
    ZJU1: {
        date(2026, 9, 1): "50000", date(2026, 10, 1): "30000", date(2026, 11, 1): "30000", date(2026, 12, 1): "40000"
    },
    ZJU2: {date(2026, 11, 1): "20000.25", date(2026, 12, 1): "30000.25"},
    SYF: {date(2026, 10, 1): "20000"},
    PROV: {date(2026, 11, 1): "50000.50"},
    HZ1: {date(2026, 9, 1): "99999"},
}  # fmt: skip
TRIALS = {
    ZJU1: [date(2026, 9, 5), date(2026, 9, 6), date(2026, 11, 15), date(2026, 12, 1), date(2026, 12, 5)],
    SYF: [date(2026, 12, 4)],
    PROV: [date(2026, 10, 10)],
}
EVENTS = {
    ZJU1: [(date(2026, 9, 5), 50), (date(2026, 10, 1), 10), (date(2026, 12, 4), 10)],
    ZJU2: [(date(2026, 11, 20), 5)],
    PROV: [(date(2026, 11, 2), 40)],
}


async def ids(db: Database) -> dict[str, int]:
    async with db.read() as s:
        return {name: cid for cid, name in await s.execute(select(Customer.id, Customer.name))}


async def seed(db: Database) -> dict[str, int]:
    by_name = await ids(db)
    async with db.transaction() as s:
        for name, months in PURCHASES.items():
            for month, amount in months.items():
                s.add(
                    CustomerPurchase(
                        customer_id=by_name[name], month=month, amount=Decimal(amount), source="import",
                        created_at=NOW, updated_at=NOW,
                    )
                )  # fmt: skip
        for name, days in TRIALS.items():
            for day in days:
                s.add(
                    CustomerTrial(
                        customer_id=by_name[name], product="新品X", day=day, source="chat", created_at=NOW,
                        updated_at=NOW,
                    )
                )  # fmt: skip
        for name, events in EVENTS.items():
            for day, attendees in events:
                s.add(
                    CustomerEvent(
                        customer_id=by_name[name], event="骨科沙龙", day=day, attendees=attendees, source="chat",
                        created_at=NOW, updated_at=NOW,
                    )
                )  # fmt: skip
    return by_name


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    await seed(database)
    yield database
    await database.dispose()


def settings_with(db_url: str, **score: Any) -> Settings:
    return make_settings(db_url, customers={"enabled": True, "score": score})


async def compute(db: Database, settings: Settings, night: date = NIGHT) -> int:
    async with db.transaction() as s:
        return await scoring.compute_night(s, settings, night, NOW)


Row = tuple[float, float, float, float, Decimal, int, int, str | None, str | None]


async def rows(db: Database, night: date = NIGHT) -> dict[str, Row]:
    """name -> (score, purchases, trials, events, amount, trials_count, attendees, grade, suggested)."""
    async with db.read() as s:
        result = await s.execute(
            select(Customer.name, CustomerScore)
            .join(Customer, Customer.id == CustomerScore.customer_id)
            .where(CustomerScore.night == night)
        )
        return {
            name: (
                r.score, r.purchases, r.trials, r.events, r.purchases_amount, r.trials_count, r.attendees, r.grade,
                r.suggested_grade,
            )
            for name, r in result.all()
        }  # fmt: skip


ZERO = (0.0, 0.0, 0.0, 0.0, Decimal("0.00"), 0, 0)


async def test_percentile_components_ties_weights_and_suggestions(db: Database, db_url: str) -> None:
    assert await compute(db, settings_with(db_url)) == 8
    got = await rows(db)
    # purchases: non-zero 20000 < 50000.50 = 50000.50 < 100000 → cume_dist 1/4, 3/4 (the tie: both the higher
    # rank), 3/4, 4/4. trials: 1 = 1 < 3 → 2/3, 2/3, 1. attendees: 5 < 20 < 40 → 1/3, 2/3, 1.
    assert got == {
        # 0.4·100 + 0.3·100 + 0.3·66.7 = 90.01
        ZJU1: (90.0, 100.0, 100.0, 66.7, Decimal("100000.00"), 3, 20, "A", "A"),
        # 0.4·75 + 0 + 0.3·33.3 = 39.99
        ZJU2: (40.0, 75.0, 0.0, 33.3, Decimal("50000.50"), 0, 5, "A", "C"),
        # 0.4·25 + 0.3·66.7 = 30.01
        SYF: (30.0, 25.0, 66.7, 0.0, Decimal("20000.00"), 1, 0, "A", "C"),
        # 0.4·75 + 0.3·66.7 + 0.3·100 = 80.01 → 80.0: exactly A's threshold
        PROV: (80.0, 75.0, 66.7, 100.0, Decimal("50000.50"), 1, 40, "A", "A"),
        # A purchase in September only: outside Oct–Dec.
        HZ1: (*ZERO, "A", "C"),
        IDLE[0]: (*ZERO, "C", "C"),
        IDLE[1]: (*ZERO, "A", "C"),
        IDLE[2]: (*ZERO, "A", "C"),
    }


async def test_target_components_are_capped_at_100(db: Database, db_url: str) -> None:
    assert await compute(db, settings_with(db_url, method="target")) == 8
    got = await rows(db)
    # targets 100000 yuan, 3 trials, 20 attendees.
    assert got[ZJU1][:4] == (100.0, 100.0, 100.0, 100.0)
    # 50000.50 / 100000 → 50.0 (rounded), 0, 5 / 20 → 25: 0.4·50 + 0.3·25 = 27.5
    assert got[ZJU2][:4] == (27.5, 50.0, 0.0, 25.0)
    # 20, 1/3 → 33.3, 0: 8 + 9.99 = 17.99
    assert got[SYF][:4] == (18.0, 20.0, 33.3, 0.0)
    # 40 attendees of 20 → capped 100: 20 + 9.99 + 30 = 59.99 → 60.0, exactly B's threshold.
    assert got[PROV][:4] == (60.0, 50.0, 33.3, 100.0) and got[PROV][-1] == "B"
    assert got[IDLE[0]][:4] == (0.0, 0.0, 0.0, 0.0) and got[IDLE[0]][-1] == "C"
    # Own targets.
    assert await compute(db, settings_with(db_url, method="target", purchases_target=50000.5, events_target=40))
    got = await rows(db)
    assert got[ZJU2][:4] == (40.0 + 3.8, 100.0, 0.0, 12.5)  # 0.4·100 + 0.3·12.5 = 43.75 → 43.8
    assert got[PROV][:4] == (40.0 + 10.0 + 30.0, 100.0, 33.3, 100.0)  # 40 + 9.99 + 30 = 79.99 → 80.0


async def test_weights_and_thresholds_come_from_the_config(db: Database, db_url: str) -> None:
    settings = make_settings(
        db_url,
        customers={
            "enabled": True,
            "score": {"purchases_weight": 0.0, "trials_weight": 0.0, "events_weight": 1.0},
            "grades": {"thresholds": {"A": 90, "B": 66.7, "C": 33.4, "D": 0}},
        },
    )
    await compute(db, settings)
    got = await rows(db)
    assert {name: (r[0], r[-1]) for name, r in got.items() if name in (ZJU1, ZJU2, PROV, SYF)} == {
        PROV: (100.0, "A"),
        ZJU1: (66.7, "B"),  # exactly at B
        ZJU2: (33.3, "D"),  # just below C
        SYF: (0.0, "D"),
    }


async def test_a_single_grade_is_suggested_to_everyone(db: Database, db_url: str) -> None:
    settings = make_settings(db_url, customers={"enabled": True, "grades": {"thresholds": {"C": 0}}})
    await compute(db, settings)
    assert {r[-1] for r in (await rows(db)).values()} == {"C"}


async def test_windows_follow_the_config(db: Database, db_url: str) -> None:
    # One month: December only; 30 days: (11-04, 12-04].
    await compute(db, settings_with(db_url, method="target", purchases_months=1, trials_days=30, events_days=30))
    got = await rows(db)
    assert got[ZJU1][4:7] == (Decimal("40000.00"), 2, 10)  # trials 11-15, 12-01; the event of 12-04
    assert got[ZJU2][4:7] == (Decimal("30000.25"), 0, 5)
    assert got[SYF][4:7] == (Decimal("0.00"), 1, 0)  # its purchase is October's
    assert got[PROV][4:7] == (Decimal("0.00"), 0, 0)  # trial 10-10, event 11-02: outside 30 days
    # The window's first month is counted whole: 12 months back from December 2026 is January 2026.
    await compute(db, settings_with(db_url, purchases_months=12))
    got = await rows(db)
    assert got[ZJU1][4] == Decimal("150000.00") and got[HZ1][4] == Decimal("99999.00")


async def test_rerunning_a_night_updates_the_same_rows(db: Database, db_url: str) -> None:
    settings = settings_with(db_url)
    await compute(db, settings)
    async with db.read() as s:
        before = {r.customer_id: r.id for r in await s.scalars(select(CustomerScore))}
    by_name = await ids(db)
    async with db.transaction() as s:
        s.add(
            CustomerTrial(
                customer_id=by_name[ZJU2], product="新品Y", day=NIGHT, source="chat", created_at=NOW, updated_at=NOW
            )
        )
        await s.execute(
            Customer.__table__.update().where(Customer.id == by_name[ZJU2]).values(grade="B")  # type: ignore[attr-defined]
        )
    later = NOW + timedelta(hours=1)
    async with db.transaction() as s:
        assert await scoring.compute_night(s, settings, NIGHT, later) == 8
    async with db.read() as s:
        after = list(await s.scalars(select(CustomerScore)))
    assert {r.customer_id: r.id for r in after} == before  # the same rows, none added
    assert {r.computed_at for r in after} == {later}
    got = await rows(db)
    # 浙二 now has a trial: trials 1, 1, 1 < 3 → 3/4 for the three; 0.4·75 + 0.3·75 + 0.3·33.3 = 62.49
    assert got[ZJU2] == (62.5, 75.0, 75.0, 33.3, Decimal("50000.50"), 1, 5, "B", "B")
    assert got[SYF][2] == 75.0


async def test_history_older_than_keep_days_is_thinned_to_mondays(db: Database, db_url: str) -> None:
    settings = settings_with(db_url, keep_nightly_days=60)  # before 2026-10-05 (a Monday)
    nights = [date(2026, 9, 28), date(2026, 9, 29), date(2026, 10, 4), date(2026, 10, 5), date(2026, 10, 6)]
    for night in nights:
        await compute(db, settings, night)
    async with db.read() as s:
        assert await s.scalar(select(func.count()).select_from(CustomerScore)) == 5 * 8
    await compute(db, settings, NIGHT)
    async with db.read() as s:
        kept = (await s.execute(select(CustomerScore.night, func.count()).group_by(CustomerScore.night))).all()
    # 09-29 (Tue) and 10-04 (Sun) are older than 60 days: gone; 09-28 is a Monday; 10-05 is not older.
    assert sorted(kept) == [(d, 8) for d in (date(2026, 9, 28), date(2026, 10, 5), date(2026, 10, 6), NIGHT)]


async def test_thinning_keeps_the_rows_the_model_flagged(db: Database, db_url: str) -> None:
    """A non-Monday row whose suggested grade is better than the grade is the report's evidence: it stays."""
    settings = settings_with(db_url, keep_nightly_days=60)
    for night in (date(2026, 9, 29), date(2026, 9, 30)):
        await compute(db, settings, night)
    async with db.transaction() as s:
        await s.execute(
            update(CustomerScore)
            .where(CustomerScore.night == date(2026, 9, 29))
            .values(grade="C", suggested_grade="A")  # recommended
        )
        await s.execute(
            update(CustomerScore)
            .where(CustomerScore.night == date(2026, 9, 30))
            .values(grade="A", suggested_grade="C")  # the other way: not a flag
        )
    await compute(db, settings, NIGHT)
    async with db.read() as s:
        kept = (await s.execute(select(CustomerScore.night, func.count()).group_by(CustomerScore.night))).all()
    assert sorted(kept) == [(date(2026, 9, 29), 8), (NIGHT, 8)]


async def test_latest_and_the_weekly_trend(db: Database, db_url: str) -> None:
    settings = settings_with(db_url)
    by_name = await ids(db)
    # Nights: Mon 11-16, Tue 11-17; Tue 11-24 (Monday missed); Mon 11-30; Fri 12-04. 浙二 gains a trial on 11-24.
    for night in (date(2026, 11, 16), date(2026, 11, 17)):
        await compute(db, settings, night)
    async with db.transaction() as s:
        s.add(
            CustomerTrial(
                customer_id=by_name[ZJU2], product="新品Y", day=date(2026, 11, 24), source="chat", created_at=NOW,
                updated_at=NOW,
            )
        )  # fmt: skip
    for night in (date(2026, 11, 24), date(2026, 11, 30), NIGHT):
        await compute(db, settings, night)
    async with db.read() as s:
        trend = await scoring.weekly_trend(s, by_name[ZJU2], NIGHT)
        short = await scoring.weekly_trend(s, by_name[ZJU2], date(2026, 11, 29), weeks=2)
        newest = await scoring.latest(s, [by_name[ZJU2], by_name[ZJU1], 999_999])
    # One night a week: the Monday's (11-16, 11-30), else the week's earliest (11-24); 11-17 and 12-04 are not
    # the week's first night; weeks without a score (before 11-16) are left out.
    assert [d for d, _ in trend] == [date(2026, 11, 16), date(2026, 11, 24), date(2026, 11, 30)]
    assert trend == [(d, (await rows(db, d))[ZJU2][0]) for d, _ in trend]
    assert trend[0][1] < trend[1][1]  # the trial of 11-24
    # Two weeks ending with Sunday 11-29's week.
    assert [d for d, _ in short] == [date(2026, 11, 16), date(2026, 11, 24)]
    assert set(newest) == {by_name[ZJU1], by_name[ZJU2]}
    assert {r.night for r in newest.values()} == {NIGHT}
    async with db.read() as s:
        assert await scoring.latest(s, []) == {}


async def test_rounding_is_half_up_the_same_on_both_backends(db: Database) -> None:
    values = [0.0, 1.15, 2.25, 43.75, 59.99, 62.449999, 80.01, 99.96, 100.0]
    async with db.read() as s:
        dialect = s.get_bind().dialect.name
        got = [
            float(
                (
                    await s.execute(
                        text(f"SELECT {scoring._round1('CAST(:x AS DOUBLE PRECISION)', dialect)}"), {"x": x}
                    )
                ).scalar_one()
            )
            for x in values
        ]
    assert got == [0.0, 1.2, 2.3, 43.8, 60.0, 62.4, 80.0, 100.0, 100.0]
