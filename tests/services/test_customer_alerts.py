"""The customer alert rules (bot/services/customer_alerts.py; docs/customers.md "Alerts") on a fixed data set, on
SQLite and PostgreSQL: each kind fires when it should and not when it should not (history too short, a drop just
under the points, a visit just inside the days, a broken objection streak, a component just under at_least …),
once per customer, rule and period; who is told, and the message.

The night is Saturday 2026-12-05; 7-day periods run Monday to Sunday (2026-11-30 … 12-06, then 12-07 …). The
scores are written here directly (the score engine is tested on its own).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from bot.config import Settings
from bot.core.intents import Intent, SendText
from bot.services import customer_alerts
from storage.db import Database
from storage.models import Customer, CustomerAlert, CustomerScore, User, Visit
from tests.conftest import make_settings

SH = ZoneInfo("Asia/Shanghai")
NIGHT = date(2026, 12, 5)
NOW = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)  # 02:00 on 12-05 in Shanghai


def at(day: date, hhmm: str = "10:00") -> datetime:
    hour, minute = (int(x) for x in hhmm.split(":"))
    return datetime.combine(day, time(hour, minute), tzinfo=SH).astimezone(UTC)


def nights(last: date, count: int) -> list[date]:
    """``count`` consecutive nights ending with ``last``."""
    return [last - timedelta(days=i) for i in range(count - 1, -1, -1)]


def settings_with(db_url: str, **rules: dict[str, Any]) -> Settings:
    return make_settings(db_url, customers={"alerts": rules})


async def add_customer(
    db: Database,
    name: str,
    *,
    grade: str | None = "A",
    rep: str | None = "rep01",
    alias: str | None = None,
    created: date = date(2026, 10, 1),
) -> int:
    async with db.transaction() as s:
        c = Customer(
            name=name, aliases=[alias] if alias else [], grade=grade, rep_id=rep, wards=[], contacts=[],
            created_at=at(created, "09:00"), updated_at=at(created, "09:00"),
        )  # fmt: skip
        s.add(c)
        await s.flush()
        return c.id


async def add_scores(
    db: Database,
    customer_id: int,
    on: Sequence[date],
    score: float = 50.0,
    purchases: float = 50.0,
    trials: float = 50.0,
    events: float = 50.0,
) -> None:
    async with db.transaction() as s:
        for night in on:
            s.add(
                CustomerScore(
                    customer_id=customer_id, night=night, score=score, purchases=purchases, trials=trials,
                    events=events, purchases_amount=Decimal("0"), trials_count=0, attendees=0, grade=None,
                    suggested_grade=None, computed_at=NOW,
                )
            )  # fmt: skip


async def add_visit(db: Database, customer_id: int, when: datetime, objection: str | None = None) -> None:
    async with db.transaction() as s:
        s.add(
            Visit(
                rep_id="rep01", customer_id=customer_id, contacts=[], products=[], objection=objection,
                visited_at=when, source_channel="console", created_at=when, updated_at=when,
            )
        )  # fmt: skip


async def run(db: Database, settings: Settings, night: date = NIGHT) -> list[Intent]:
    async with db.transaction() as s:
        return await customer_alerts.evaluate(s, settings, night, NOW, lambda u: "console")


async def fired(db: Database) -> list[tuple[str, str, str, date, str | None]]:
    """(customer, rule, period, night, rep) of every stored alert."""
    async with db.read() as s:
        rows = await s.execute(
            select(Customer.name, CustomerAlert.rule, CustomerAlert.period, CustomerAlert.night, CustomerAlert.rep_id)
            .join(Customer, Customer.id == CustomerAlert.customer_id)
            .order_by(CustomerAlert.night, Customer.name)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def names_fired(db: Database) -> set[str]:
    return {name for name, *_ in await fired(db)}


def texts(intents: Sequence[Intent]) -> dict[str, str]:
    out = {}
    for i in intents:
        assert isinstance(i, SendText) and i.channel == "console"
        [who] = i.user_ids
        out[who] = i.text
    return out


# ---- periods -------------------------------------------------------------------------------------------------------


def test_periods_are_aligned_on_a_fixed_monday() -> None:
    assert customer_alerts.period_of(NIGHT, 7) == "2026-11-30/7"
    assert customer_alerts.period_of(date(2026, 11, 30), 7) == "2026-11-30/7"
    assert customer_alerts.period_of(date(2026, 12, 6), 7) == "2026-11-30/7"
    assert customer_alerts.period_of(date(2026, 12, 7), 7) == "2026-12-07/7"
    assert customer_alerts.period_of(NIGHT, 1) == "2026-12-05/1"
    # 30-day periods: the same key for every night of one, whoever computes it.
    assert {customer_alerts.period_of(date(2026, 11, 12) + timedelta(days=d), 30) for d in range(30)} == {
        "2026-11-12/30"
    }
    assert customer_alerts.period_of(date(2026, 12, 12), 30) == "2026-12-12/30"


# ---- component_zero ------------------------------------------------------------------------------------------------

ZERO = {"zero": {"kind": "component_zero", "title": "新品试用停滞", "component": "trials", "weeks": 2}}


async def test_component_zero_fires_after_two_full_weeks_at_zero(db: Database, db_url: str) -> None:
    settings = settings_with(db_url, **ZERO)
    # 14 nights at 0, the first exactly 13 days before tonight: fires.
    full = await add_customer(db, "甲医院")
    await add_scores(db, full, nights(NIGHT, 14), trials=0)
    # Only 13 nights of history (scored first on 11-23): too short, whatever the values.
    short = await add_customer(db, "乙医院")
    await add_scores(db, short, nights(NIGHT, 13), trials=0)
    # Scored for the first time tonight: too short.
    new = await add_customer(db, "丙医院")
    await add_scores(db, new, [NIGHT], trials=0)
    # 0 on every night but one inside the window.
    broken = await add_customer(db, "丁医院")
    await add_scores(db, broken, nights(NIGHT, 20), trials=0)
    async with db.transaction() as s:
        await s.execute(
            update(CustomerScore)
            .where(CustomerScore.customer_id == broken, CustomerScore.night == NIGHT - timedelta(days=5))
            .values(trials=0.5)
        )
    # Not 0 tonight (0 before): the trials came back.
    back = await add_customer(db, "戊医院")
    await add_scores(db, back, nights(NIGHT - timedelta(days=1), 20), trials=0)
    await add_scores(db, back, [NIGHT], trials=10)
    # Gaps in the history (the job did not run, or old nights thinned to Mondays): the nights there are decide.
    gaps = await add_customer(db, "己医院")
    await add_scores(db, gaps, [NIGHT - timedelta(days=30), NIGHT - timedelta(days=9), NIGHT], trials=0)
    # A non-zero night just before the window does not count.
    before = await add_customer(db, "庚医院")
    await add_scores(db, before, [NIGHT - timedelta(days=14)], trials=40)
    await add_scores(db, before, nights(NIGHT, 14), trials=0)
    # Not scored tonight at all: no alert from old rows.
    stale = await add_customer(db, "辛医院")
    await add_scores(db, stale, nights(NIGHT - timedelta(days=1), 20), trials=0)

    await run(db, settings)
    assert await names_fired(db) == {"甲医院", "己医院", "庚医院"}
    async with db.read() as s:
        alert = await s.scalar(select(CustomerAlert).where(CustomerAlert.customer_id == full))
    assert alert is not None
    assert (alert.kind, alert.level, alert.title, alert.period, alert.rep_id) == (
        "component_zero", "red", "新品试用停滞", "2026-11-30/7", "rep01",
    )  # fmt: skip
    assert alert.detail == {
        "customer": "甲医院", "grade": "A", "score": 50.0, "component": "trials", "weeks": 2, "since": "2026-11-22",
    }  # fmt: skip


async def test_an_alert_goes_out_once_per_period(db: Database, db_url: str) -> None:
    settings = settings_with(db_url, **ZERO)
    cid = await add_customer(db, "甲医院")
    await add_scores(db, cid, nights(date(2026, 12, 8), 30), trials=0)
    assert len(await run(db, settings)) == 2  # rep01 and mgr01
    # The same night again (a rerun, a take-over, another replica): nothing new.
    assert await run(db, settings) == []
    # The next night is in the same period (Monday 11-30 to Sunday 12-06).
    assert await run(db, settings, NIGHT + timedelta(days=1)) == []
    # Monday 12-07 starts a new period: told again.
    assert len(await run(db, settings, date(2026, 12, 7))) == 2
    assert await run(db, settings, date(2026, 12, 8)) == []
    assert await fired(db) == [
        ("甲医院", "zero", "2026-11-30/7", NIGHT, "rep01"),
        ("甲医院", "zero", "2026-12-07/7", date(2026, 12, 7), "rep01"),
    ]


# ---- score_drop ----------------------------------------------------------------------------------------------------

DROP = {"drop": {"kind": "score_drop", "title": "健康分下滑", "points": 15, "weeks": 4}}
FOUR_WEEKS_AGO = NIGHT - timedelta(days=28)


async def test_score_drop_fires_above_the_points_only(db: Database, db_url: str) -> None:
    settings = settings_with(db_url, **DROP)
    cases = {
        "甲医院": (90.0, 74.0),  # 16 > 15: fires
        "乙医院": (90.0, 75.0),  # exactly 15: not more than 15
        "丙医院": (82.3, 67.3),  # 15 in decimals (float noise 15.000000000000009): not more
        "丁医院": (80.0, 64.9),  # 15.1: fires
        "戊医院": (60.0, 90.0),  # a rise
    }
    for name, (then, now) in cases.items():
        cid = await add_customer(db, name)
        await add_scores(db, cid, [FOUR_WEEKS_AGO], score=then)
        await add_scores(db, cid, [NIGHT], score=now)
    # The nearest night at or before four weeks ago counts (11-04 missing: 11-01's), not a later one.
    nearest = await add_customer(db, "己医院")
    await add_scores(db, nearest, [FOUR_WEEKS_AGO - timedelta(days=3)], score=95)
    await add_scores(db, nearest, [FOUR_WEEKS_AGO + timedelta(days=1)], score=70)
    await add_scores(db, nearest, [NIGHT], score=70)
    # History shorter than four weeks: nothing to compare with.
    short = await add_customer(db, "庚医院")
    await add_scores(db, short, [FOUR_WEEKS_AGO + timedelta(days=1)], score=99)
    await add_scores(db, short, [NIGHT], score=10)

    await run(db, settings)
    assert await names_fired(db) == {"甲医院", "丁医院", "己医院"}
    async with db.read() as s:
        details = {
            a.detail["customer"]: a.detail
            for a in await s.scalars(select(CustomerAlert).where(CustomerAlert.kind == "score_drop"))
        }
    assert details["己医院"] == {
        "customer": "己医院", "grade": "A", "score": 70.0, "weeks": 4, "before": 95.0, "before_night": "2026-11-04",
        "drop": 25.0,
    }  # fmt: skip
    assert details["丁医院"]["drop"] == pytest.approx(15.1)


# ---- no_visit ------------------------------------------------------------------------------------------------------

NO_VISIT = {"gap": {"kind": "no_visit", "title": "B 类客户久未拜访", "grade": "B", "days": 30}}


async def test_no_visit_counts_days_from_the_last_visit_or_from_created_at(db: Database, db_url: str) -> None:
    settings = settings_with(db_url, **NO_VISIT)
    # Last visit 11-05: 30 days before 12-05 → fires. 11-06 (even at 00:10): 29 days → not.
    thirty = await add_customer(db, "甲医院", grade="B")
    await add_visit(db, thirty, at(date(2026, 11, 5), "23:50"))
    inside = await add_customer(db, "乙医院", grade="B")
    await add_visit(db, inside, at(date(2026, 11, 1)))
    await add_visit(db, inside, at(date(2026, 11, 6), "00:10"))
    # Never visited: counted from created_at (11-05: 30 days, fires; 11-06: 29 days, not).
    never_old = await add_customer(db, "丙医院", grade="B", created=date(2026, 11, 5))
    never_new = await add_customer(db, "丁医院", grade="B", created=date(2026, 11, 6))
    # A visit dated after the night is not one yet (it does not stop the alert).
    future = await add_customer(db, "戊医院", grade="B")
    await add_visit(db, future, at(date(2026, 10, 1)))
    await add_visit(db, future, at(date(2026, 12, 6)))
    # Another grade: never asked about (the demo's A customers, never visited, stay quiet too).
    other = await add_customer(db, "己医院", grade="C", created=date(2026, 1, 1))
    assert (never_new, other) != (0, 0)

    await run(db, settings)
    assert await names_fired(db) == {"甲医院", "丙医院", "戊医院"}
    async with db.read() as s:
        got = {
            a.customer_id: a.detail for a in await s.scalars(select(CustomerAlert).where(CustomerAlert.rule == "gap"))
        }
    assert got[thirty] == {
        "customer": "甲医院", "grade": "B", "score": None, "days": 30, "last_visit": "2026-11-05", "rule_days": 30,
    }  # fmt: skip
    assert got[never_old]["days"] == 30 and got[never_old]["last_visit"] is None
    assert got[future]["last_visit"] == "2026-10-01"


# ---- worth_developing ----------------------------------------------------------------------------------------------

WORTH = {
    "worth": {"kind": "worth_developing", "title": "值得开发", "below": 70, "at_least": 90, "level": "info"},
}


async def test_worth_developing_needs_a_low_score_and_a_strong_component(db: Database, db_url: str) -> None:
    settings = settings_with(db_url, **WORTH)
    cases: dict[str, dict[str, float]] = {
        "甲医院": dict(score=61, purchases=20, trials=30, events=100),  # fires on events
        "乙医院": dict(score=61, purchases=89.9, trials=89.99, events=10),  # just under 90
        "丙医院": dict(score=70, purchases=20, trials=30, events=100),  # score not below 70
        "丁医院": dict(score=69.9, purchases=90, trials=95, events=0),  # fires: trials the strongest
    }
    for name, values in cases.items():
        cid = await add_customer(db, name, grade="C")
        await add_scores(db, cid, [NIGHT], **values)
    # Yesterday's strong night does not count tonight.
    old = await add_customer(db, "戊医院", grade="C")
    await add_scores(db, old, [NIGHT - timedelta(days=1)], score=50, events=100)
    await add_scores(db, old, [NIGHT], score=50, events=80)

    await run(db, settings)
    assert await names_fired(db) == {"甲医院", "丁医院"}
    async with db.read() as s:
        got = {a.detail["customer"]: a for a in await s.scalars(select(CustomerAlert))}
    assert (got["甲医院"].detail["component"], got["甲医院"].detail["value"]) == ("events", 100.0)
    assert (got["丁医院"].detail["component"], got["丁医院"].level) == ("trials", "info")
    # every_days is the rule's (7 unless set, whatever the kind).
    assert got["甲医院"].period == "2026-11-30/7"


async def test_worth_developing_on_one_named_component(db: Database, db_url: str) -> None:
    rule = WORTH["worth"] | {"component": "purchases", "every_days": 30}
    settings = settings_with(db_url, worth=rule)
    strong_events = await add_customer(db, "甲医院", grade="C")
    await add_scores(db, strong_events, [NIGHT], score=61, purchases=20, events=100)
    strong_purchases = await add_customer(db, "乙医院", grade="C")
    await add_scores(db, strong_purchases, [NIGHT], score=61, purchases=90, events=0)
    await run(db, settings)
    assert await fired(db) == [("乙医院", "worth", "2026-11-12/30", NIGHT, "rep01")]


# ---- same_objection ------------------------------------------------------------------------------------------------

SAME = {"same": {"kind": "same_objection", "title": "异议反复出现", "visits": 3}}


async def test_same_objection_over_the_last_visits(db: Database, db_url: str) -> None:
    settings = settings_with(db_url, **SAME)
    streaks: dict[str, list[str | None]] = {
        "甲医院": ["交付", "价格", "价格", "价格"],  # the last three: fires
        "乙医院": ["价格", "价格", "交付"],  # broken by the latest
        "丙医院": ["价格", "价格"],  # two visits only
        "丁医院": ["价格", None, "价格"],  # a visit without an objection breaks it
        "戊医院": ["", "", ""],  # no objection is not an objection
        "己医院": [None, None, None],
        "庚医院": ["交付", "资质", "资质", "资质"],  # fires: 资质 three times in a row
    }
    ids = {}
    for name, said in streaks.items():
        ids[name] = cid = await add_customer(db, name)
        for n, objection in enumerate(said):
            await add_visit(db, cid, at(date(2026, 11, 10 + n)), objection)
    # Two visits at the same instant: ordered by id (the later record is the later visit).
    tie = await add_customer(db, "辛医院")
    await add_visit(db, tie, at(date(2026, 11, 20)), "价格")
    await add_visit(db, tie, at(date(2026, 11, 21)), "价格")
    await add_visit(db, tie, at(date(2026, 11, 21)), "交付")
    # A visit after the night does not count yet: the streak before it fires.
    future = await add_customer(db, "壬医院")
    for d in (1, 2, 3):
        await add_visit(db, future, at(date(2026, 12, d)), "价格")
    await add_visit(db, future, at(date(2026, 12, 6)), "交付")

    await run(db, settings)
    assert await names_fired(db) == {"甲医院", "庚医院", "壬医院"}
    async with db.read() as s:
        got = {
            a.detail["customer"]: a.detail
            for a in await s.scalars(select(CustomerAlert).where(CustomerAlert.rule == "same"))
        }
    assert got["庚医院"] == {"customer": "庚医院", "grade": "A", "score": None, "objection": "资质", "visits": 3}


# ---- who is told, and the message ----------------------------------------------------------------------------------

BOTH = {
    "zero": {"kind": "component_zero", "title": "新品试用停滞", "component": "trials", "weeks": 2},
    "worth": {"kind": "worth_developing", "title": "值得开发", "below": 70, "at_least": 90, "level": "info"},
}


async def demo_customer(db: Database, alias: str, rep: str | None) -> int:
    async with db.transaction() as s:
        customer = next(c for c in (await s.scalars(select(Customer))).all() if alias in [c.name, *(c.aliases or [])])
        customer.rep_id = rep
        return customer.id


async def test_the_rep_and_their_manager_each_get_one_message(db: Database, db_url: str) -> None:
    settings = settings_with(db_url, **BOTH)
    zhe2 = await demo_customer(db, "浙二", "rep01")
    await add_scores(db, zhe2, nights(NIGHT, 14), score=82, trials=0)
    heping = await demo_customer(db, "和平医院", "rep01")
    await add_scores(db, heping, [NIGHT], score=61, events=100)
    zhe1 = await demo_customer(db, "浙一", "rep02")
    await add_scores(db, zhe1, nights(NIGHT, 14), score=75.5, trials=0)
    # No rep: nobody to tell (still recorded, for the director's digest).
    sheng = await demo_customer(db, "省人民", None)
    await add_scores(db, sheng, nights(NIGHT, 14), score=90, trials=0)

    got = texts(await run(db, settings))
    assert sorted(got) == ["mgr01", "rep01", "rep02"]
    assert got["rep01"] == "\n".join(
        [
            "客户提醒（12-05）：2 条新提醒",
            "🔴 浙二（A 类，82 分）新品试用已连续 2 周为 0",
            "💡 和平医院（C 类，61 分）值得开发：学术活动 100 分",
            "发送「客户 浙二」查看详情",
        ]
    )
    assert got["rep02"] == "\n".join(
        [
            "客户提醒（12-05）：1 条新提醒",
            "🔴 浙一（A 类，75.5 分）新品试用已连续 2 周为 0",
            "发送「客户 浙一」查看详情",
        ]
    )
    # The manager's names the rep of each customer.
    assert got["mgr01"] == "\n".join(
        [
            "客户提醒（12-05）：3 条新提醒",
            "【李娜】",
            "🔴 浙一（A 类，75.5 分）新品试用已连续 2 周为 0",
            "【王磊】",
            "🔴 浙二（A 类，82 分）新品试用已连续 2 周为 0",
            "💡 和平医院（C 类，61 分）值得开发：学术活动 100 分",
            "发送「客户 浙一」查看详情",
        ]
    )
    assert ("浙江省人民医院", None) in {(name, rep) for name, _, _, _, rep in await fired(db)}


async def test_a_rule_for_the_manager_only(db: Database, db_url: str) -> None:
    settings = settings_with(db_url, zero=BOTH["zero"] | {"notify": ["manager"]})
    zhe2 = await demo_customer(db, "浙二", "rep01")
    await add_scores(db, zhe2, nights(NIGHT, 14), score=82, trials=0)
    got = texts(await run(db, settings))
    assert list(got) == ["mgr01"]
    assert "【王磊】" in got["mgr01"]


async def test_a_rule_for_the_rep_only_and_people_who_left(db: Database, db_url: str) -> None:
    settings = settings_with(db_url, zero=BOTH["zero"] | {"notify": ["rep"]})
    zhe2 = await demo_customer(db, "浙二", "rep01")
    await add_scores(db, zhe2, nights(NIGHT, 14), score=82, trials=0)
    zhe1 = await demo_customer(db, "浙一", "rep02")
    await add_scores(db, zhe1, nights(NIGHT, 14), score=82, trials=0)
    async with db.transaction() as s:
        await s.execute(update(User).where(User.id == "rep02").values(active=False))
    got = texts(await run(db, settings))
    assert list(got) == ["rep01"]  # rep02 left: not told (the alert is still recorded, for the digest)
    assert {rep for *_, rep in await fired(db)} == {"rep01", "rep02"}


async def test_english_and_a_long_list_is_capped(db: Database, db_url: str) -> None:
    settings = settings_with(db_url, **WORTH)
    async with db.transaction() as s:
        await s.execute(update(User).where(User.id == "rep01").values(locale="en"))
    for n in range(12):
        cid = await add_customer(db, f"医院{n:02d}", grade=None)
        await add_scores(db, cid, [NIGHT], score=60 + n / 10, events=95)
    got = texts(await run(db, settings))
    lines = got["rep01"].split("\n")
    assert lines[0] == "Customer alerts (12-05): 12 new"
    assert lines[1] == "💡 医院00 (no grade, 60 points): worth developing: academic events at 95 points"
    assert len(lines) == 1 + 10 + 2 and lines[-2:] == ["and 2 more", "Send 「客户 医院00」 for the details"]
    zh = got["mgr01"].split("\n")
    assert zh[:3] == [
        "客户提醒（12-05）：12 条新提醒",
        "【王磊】",
        "💡 医院00（未分级，60 分）值得开发：学术活动 95 分",
    ]
    assert zh[-2:] == ["还有 2 条", "发送「客户 医院00」查看详情"]
    assert len(zh) == 1 + 1 + 10 + 2


async def test_no_rules_no_alerts(db: Database, db_url: str) -> None:
    settings = settings_with(db_url)
    zhe2 = await demo_customer(db, "浙二", "rep01")
    await add_scores(db, zhe2, nights(NIGHT, 14), score=82, trials=0)
    assert await run(db, settings) == []
    assert await fired(db) == []


# ---- the digest ----------------------------------------------------------------------------------------------------

MONDAY = date(2026, 12, 7)


async def digest_of(db: Database, settings: Settings, viewer: str, rep_id: str | None = None) -> Any:
    from bot.services.digest import compute_digest

    async with db.read() as s:
        user = await s.get(User, viewer)
        assert user is not None
        return await compute_digest(s, settings, user, period="day", day=MONDAY, now=at(MONDAY, "18:00"), rep_id=rep_id)


async def test_the_digest_shows_the_alerts_since_the_previous_working_days(db: Database, db_url: str) -> None:
    from bot.services.digest_render import render_digest
    from cards.rich import to_plain

    rules = {
        "zero": BOTH["zero"] | {"weeks": 1, "every_days": 1},
        "worth": BOTH["worth"] | {"every_days": 30},
    }
    settings = settings_with(db_url, **rules)
    zhe2 = await demo_customer(db, "浙二", "rep01")
    await add_scores(db, zhe2, nights(MONDAY, 20), score=82, trials=0)
    sheng = await demo_customer(db, "省人民", None)
    await add_scores(db, sheng, nights(MONDAY, 20), score=90, trials=0)
    heping = await demo_customer(db, "和平医院", "rep02")
    await add_scores(db, heping, [date(2026, 12, 6)], score=61, events=100)
    for night in nights(MONDAY, 4):  # Friday 12-04 to Monday 12-07
        await run(db, settings, night)

    # Monday's digest: the nights after Friday (the previous working day): Saturday, Sunday, Monday.
    d = await digest_of(db, settings, "mgr01")
    assert d.alerts_since == date(2026, 12, 5)
    assert [(c.rule, c.title, c.level, c.count) for c in d.alerts] == [
        ("zero", "新品试用停滞", "red", 3),
        ("worth", "值得开发", "info", 1),
    ]
    # A customer and rule once (its newest), red first.
    assert [(a.customer, a.rep, a.night) for a in d.alert_lines] == [
        ("浙二", "rep01", date(2026, 12, 7)),
        ("和平医院", "rep02", date(2026, 12, 6)),
    ]
    text = to_plain(render_digest(d, settings, "zh-CN"))
    section = text.split("【客户提醒】\n", 1)[1].split("\n\n", 1)[0]
    assert section.split("\n") == [
        "12-05 以来 4 条：新品试用停滞 3、值得开发 1",
        "· 🔴 浙二（A 类，82 分）新品试用已连续 1 周为 0（王磊）",
        "· 💡 和平医院（C 类，61 分）值得开发：学术活动 100 分（李娜）",
        "还有 2 条，发送「客户 医院名」查看",
    ]
    en = to_plain(render_digest(d, settings, "en"))
    assert "4 since 12-05: 新品试用停滞 3, 值得开发 1" in en
    assert "🔴 浙二 (grade A, 82 points): new-product trials at 0 for 1 weeks (王磊)" in en

    # The director's: every alert, customers without a rep too; five lines at most.
    for alias in ("杭一", "浙江医院", "省中医院", "邵逸夫"):
        await add_scores(db, await demo_customer(db, alias, None), nights(MONDAY, 20), score=70, trials=0)
    for night in nights(MONDAY, 3):
        await run(db, settings, night)
    d = await digest_of(db, settings, "dir01")
    assert [(c.rule, c.count) for c in d.alerts] == [("zero", 18), ("worth", 1)]
    assert [a.customer for a in d.alert_lines] == ["浙二", "省人民", "邵逸夫", "杭一", "浙江医院"]
    text = to_plain(render_digest(d, settings, "zh-CN"))
    assert "· 🔴 省人民（A 类，90 分）新品试用已连续 1 周为 0（无负责代表）" in text
    assert "还有 14 条，发送「客户 医院名」查看" in text

    # One rep's digest: their own, without their name on each line.
    d = await digest_of(db, settings, "mgr01", rep_id="rep02")
    assert [(c.rule, c.count) for c in d.alerts] == [("worth", 1)]
    text = to_plain(render_digest(d, settings, "zh-CN"))
    assert "· 💡 和平医院（C 类，61 分）值得开发：学术活动 100 分\n" in text + "\n"
    assert "（李娜）" not in text.split("客户提醒", 1)[1].split("\n\n", 1)[0]
