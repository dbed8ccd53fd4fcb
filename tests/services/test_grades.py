"""Grade changes at the service level (bot/services/grades.py): the grade in force per cycle (a change counts from
the next month), in Python and in SQL, the previous grade kept through several changes in a month, and the
digest's A-customer coverage following it. Dates are given (no clock): a change on Monday 2026-11-16, digests of
November (as of 11-30) and December (as of 12-10), Shanghai time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.services import digest, grades
from bot.services.digest_model import CustomerGap
from storage.db import Database
from storage.models import Customer, User, Visit
from tests.conftest import make_settings

SH = ZoneInfo("Asia/Shanghai")
ZJU1 = "浙江大学医学院附属第一医院"
ZJU2 = "浙江大学医学院附属第二医院"
MID_NOVEMBER = datetime(2026, 11, 16, 10, 0, tzinfo=SH)
NOV, DEC = date(2026, 11, 1), date(2026, 12, 1)


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url, plans={"frequency": {"A": 4, "B": 2, "C": 1}})


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    """The demo customers: 浙二 (B) and 浙一 (A) are 王磊's (rep01, team of 陈静 mgr01); the others nobody's."""
    database = Database(db_url)
    async with database.transaction() as s:
        for c in await s.scalars(select(Customer)):
            c.rep_id = None
            if c.name == ZJU2:
                c.rep_id, c.grade = "rep01", "B"
            elif c.name == ZJU1:
                c.rep_id, c.grade = "rep01", "A"
    yield database
    await database.dispose()


async def _customer(s: AsyncSession, name: str) -> Customer:
    row = await s.scalar(select(Customer).where(Customer.name == name))
    assert row is not None
    return row


async def _user(db: Database, user_id: str) -> User:
    async with db.read() as s:
        user = await s.get(User, user_id)
        assert user is not None
        return user


async def _direct(db: Database, settings: Settings, name: str, grade: str, when: datetime) -> None:
    director = await _user(db, "dir01")
    async with db.transaction() as s:
        c = await _customer(s, name)
        await grades.request_change(s, settings, director, c.id, grade, "年度评估", when, "test")


def test_grade_in_force_counts_a_change_from_the_next_cycle() -> None:
    c = Customer(name="x", grade="A", previous_grade="B", grade_since=date(2026, 11, 16))
    assert grades.grade_in_force(c, NOV) == "B"
    assert grades.grade_in_force(c, DEC) == "A"
    # A change on the first day of a cycle counts from the next one too; a customer never changed has its grade.
    on_the_first = Customer(name="y", grade="A", previous_grade="B", grade_since=NOV)
    assert grades.grade_in_force(on_the_first, NOV) == "B"
    assert grades.grade_in_force(on_the_first, DEC) == "A"
    assert grades.grade_in_force(Customer(name="z", grade="C"), NOV) == "C"


@pytest.mark.parametrize(
    ("word", "grade"), [("A", "A"), ("b", "B"), ("A级", "A"), ("C类", "C"), ("AA", None), ("浙二", None), ("1", None)]
)
def test_grade_words(word: str, grade: str | None) -> None:
    assert grades.parse_grade(word) == grade


def test_numbers() -> None:
    assert grades.grade_no(3) == "G3" and grades.parse_grade_no("g3") == 3 and grades.parse_grade_no("3") is None


async def test_the_previous_grade_is_the_one_in_force_at_the_cycle_start(db: Database, settings: Settings) -> None:
    await _direct(db, settings, ZJU1, "B", MID_NOVEMBER)
    await _direct(db, settings, ZJU1, "C", MID_NOVEMBER + timedelta(days=4))
    async with db.read() as s:
        c = await _customer(s, ZJU1)
        # Two changes in November: A was in force when it began, and stays so for November.
        assert (c.grade, c.previous_grade, c.grade_since) == ("C", "A", date(2026, 11, 20))
        assert grades.grade_in_force(c, NOV) == "A" and grades.grade_in_force(c, DEC) == "C"
        for start, expected in ((NOV, {ZJU1: "A", ZJU2: "B"}), (DEC, {ZJU1: "C", ZJU2: "B"})):
            query = select(Customer.name, grades.grade_in_force_sql(start)).where(Customer.rep_id == "rep01")
            assert {name: grade for name, grade in (await s.execute(query)).all()} == expected
    # A change in December: November's grade (C, in force on 12-01) becomes the previous one.
    await _direct(db, settings, ZJU1, "A", datetime(2026, 12, 3, 9, 0, tzinfo=SH))
    async with db.read() as s:
        c = await _customer(s, ZJU1)
        assert (c.grade, c.previous_grade, c.grade_since) == ("A", "C", date(2026, 12, 3))


async def test_the_digest_counts_a_customer_upgraded_mid_month_as_a_from_the_next_month(
    db: Database, settings: Settings
) -> None:
    rep, manager = await _user(db, "rep01"), await _user(db, "mgr01")
    # 浙二 B → A asked by the rep, confirmed by the manager on 11-16; 浙一 A → C by the director the same day.
    async with db.transaction() as s:
        c = await _customer(s, ZJU2)
        asked = await grades.request_change(s, settings, rep, c.id, "A", "新品试用量大", MID_NOVEMBER, "test")
        await grades.decide(
            s, settings, manager, asked.change.id, approve=True, reason="", now=MID_NOVEMBER, channel="test"
        )
    await _direct(db, settings, ZJU1, "C", MID_NOVEMBER)
    # 浙二 visited 4 times in late November and 4 times in early December (A: 4 a month).
    async with db.transaction() as s:
        zju2 = await _customer(s, ZJU2)
        for day in (17, 18, 19, 20, 1, 2, 3, 4):
            month = 11 if day > 10 else 12
            at = datetime(2026, month, day, 10, 0, tzinfo=SH)
            s.add(
                Visit(
                    rep_id="rep01", customer_id=zju2.id, contacts=[], products=[], visited_at=at,
                    source_channel="console", created_at=at, updated_at=at,
                )
            )  # fmt: skip

    async def month(day: date, now: datetime) -> tuple[float | None, tuple[CustomerGap, ...]]:
        async with db.read() as s:
            d = await digest.compute_digest(s, settings, manager, period="month", day=day, now=now)
        return d.totals.a_coverage, d.a_customers_not_visited

    # November: the grades in force on 11-01 — 浙一 is still A (not visited: a gap), 浙二 still B.
    coverage, gaps = await month(date(2026, 11, 30), datetime(2026, 11, 30, 20, 0, tzinfo=SH))
    assert coverage == 0.0 and [g.customer for g in gaps] == [ZJU1]
    # December: the new grades — 浙二 is A (4 visits: covered), 浙一 is C (not counted).
    coverage, gaps = await month(date(2026, 12, 10), datetime(2026, 12, 10, 20, 0, tzinfo=SH))
    assert coverage == 1.0 and gaps == ()
