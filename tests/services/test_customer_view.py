"""The customer view's service (bot/services/customer_view.py, bot/services/advice.py, cards/customer.py): the
8-week trend from nightly rows, the sparkline and money formats, who sees and who advises which customer, the
advice's cleaning and length, the newest advice per customer."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from bot.config import ConfigError, parse_settings
from bot.core.errors import DomainError
from bot.runtime import Runtime
from bot.services import advice as advice_svc
from bot.services import customer_view as svc
from cards.customer import sparkline, yuan
from handlers import command_words
from storage.models import Customer, CustomerAdvice, User, Visit

MONDAY = date(2026, 11, 23)


@pytest.mark.parametrize("word", ["客户", "建议", "customer", "advice"])
def test_the_words_are_declared_commands_no_request_type_may_take(word: str) -> None:
    assert word in command_words()
    data = {
        "request_types": {
            "repair": {
                "name_zh": "维修",
                "name_en": "Repair",
                "keywords": [word],
                "fields": [{"key": "customer", "label_zh": "医院", "label_en": "Hospital", "type": "customer"}],
                "tasks": [{"department": "logistics", "title_zh": "维修 {{ customer }}"}],
            }
        }
    }
    with pytest.raises(ConfigError):
        parse_settings(data, reserved=command_words())


# ---- the trend ------------------------------------------------------------------------------------------------


def test_one_figure_per_week_the_weeks_latest_night_oldest_first() -> None:
    rows = []
    night = MONDAY - timedelta(days=7 * 9)
    while night <= MONDAY:
        rows.append((night, float(night.toordinal() % 100)))
        night += timedelta(days=1)
    trend = svc.weekly_trend(rows, MONDAY)
    assert [p.week for p in trend] == [MONDAY - timedelta(days=7 * (7 - i)) for i in range(8)]
    # Each full week: its Sunday's figure; the newest week: Monday 11-23 (the only night so far).
    sundays = [MONDAY - timedelta(days=7 * (7 - i)) + timedelta(days=6) for i in range(7)]
    assert [p.score for p in trend] == [float(d.toordinal() % 100) for d in [*sundays, MONDAY]]


def test_a_week_without_rows_is_a_gap_and_thinned_weeks_show_their_monday() -> None:
    rows = [
        (MONDAY - timedelta(days=49), 50.0),  # a thinned week: only its Monday left
        (MONDAY - timedelta(days=42) + timedelta(days=2), 55.0),
        (MONDAY - timedelta(days=42) + timedelta(days=1), 54.0),
        (MONDAY - timedelta(days=60), 99.0),  # before the eight weeks
        (MONDAY + timedelta(days=1), 11.0),  # after the newest night asked for: ignored
        (MONDAY, 70.0),
    ]
    trend = svc.weekly_trend(rows, MONDAY)
    assert [p.score for p in trend] == [50.0, 55.0, None, None, None, None, None, 70.0]
    assert sparkline([p.score for p in trend]) == "▅▅·····▆"


def test_a_newest_night_in_mid_week_anchors_the_weeks_on_its_monday() -> None:
    thursday = MONDAY + timedelta(days=3)
    trend = svc.weekly_trend([(thursday, 80.0), (MONDAY, 60.0)], thursday, weeks=2)
    assert [(p.week, p.score) for p in trend] == [(MONDAY - timedelta(days=7), None), (MONDAY, 80.0)]


def test_sparkline_and_money() -> None:
    assert sparkline([0.0, 12.4, 12.5, 50.0, 87.4, 87.5, 100.0, None]) == "▁▁▂▅▇██·"
    assert yuan(Decimal("123000"), "zh-CN") == "¥12.3 万"
    assert yuan(Decimal("8500"), "zh-CN") == "¥8,500"
    assert yuan(Decimal("123000"), "en") == "¥123,000"


def test_advice_is_cleaned_like_any_text() -> None:
    assert svc.clean_advice("  先约\x00刘主任   看试用 \n\n 带数据\u202e ") == "先约刘主任 看试用\n带数据"
    assert svc.clean_advice(" \n ") == ""


# ---- scope ----------------------------------------------------------------------------------------------------


async def _setup(rt: Runtime) -> dict[str, int]:
    """浙二 rep01's, 浙一 without a rep; mgr00 above mgr01 (two levels above rep01); cmp01 compliance."""
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        found = {c.name: c for c in await s.scalars(select(Customer))}
        found["浙江大学医学院附属第二医院"].rep_id = "rep01"
        found["浙江大学医学院附属第一医院"].rep_id = None
        s.add(User(id="mgr00", name="上级", roles=["manager"], created_at=now, updated_at=now))
        mgr = await s.get(User, "mgr01")
        assert mgr is not None
        mgr.manager_id = "mgr00"
        return {"zju2": found["浙江大学医学院附属第二医院"].id, "zju1": found["浙江大学医学院附属第一医院"].id}


async def _access(rt: Runtime, user_id: str, customer_id: int) -> str:
    async with rt.db.read() as s:
        user, customer = await s.get(User, user_id), await s.get(Customer, customer_id)
        assert user is not None and customer is not None
        try:
            return await svc.access(s, user, customer)
        except DomainError as exc:
            return exc.key


async def test_who_sees_which_customer(runtime: Runtime) -> None:
    ids = await _setup(runtime)
    zju2, zju1 = ids["zju2"], ids["zju1"]
    assert await _access(runtime, "rep01", zju2) == "full"
    assert await _access(runtime, "rep02", zju2) == "customer.not_yours"
    assert await _access(runtime, "mgr01", zju2) == "full"
    assert await _access(runtime, "mgr00", zju2) == "full"  # any depth below
    assert await _access(runtime, "dir01", zju1) == "full" and await _access(runtime, "admin01", zju1) == "full"
    assert await _access(runtime, "mkt01", zju2) == "score" and await _access(runtime, "mkt_head", zju1) == "score"
    assert await _access(runtime, "cmp01", zju2) == "customer.not_yours"
    # A customer without a rep: only who visited or planned it (and their managers).
    assert await _access(runtime, "rep02", zju1) == "customer.not_yours"
    at = runtime.clock.now() - timedelta(days=3)
    async with runtime.db.transaction() as s:
        s.add(
            Visit(
                rep_id="rep02", customer_id=zju1, visited_at=at, source_channel="console", created_at=at, updated_at=at
            )
        )
    assert await _access(runtime, "rep02", zju1) == "full"
    assert await _access(runtime, "mgr01", zju1) == "full"
    assert await _access(runtime, "rep01", zju1) == "customer.not_yours"
    async with runtime.db.read() as s:
        logistics = await s.get(User, "log01")
        assert logistics is not None and not svc.may_use(logistics)


async def _advise(rt: Runtime, user_id: str, customer_id: int, text: str) -> str:
    async with rt.db.transaction() as s:
        user, customer = await s.get(User, user_id), await s.get(Customer, customer_id)
        assert user is not None and customer is not None
        try:
            done = await svc.advise(s, actor=user, customer=customer, text=text, now=rt.clock.now(), channel="t")
        except DomainError as exc:
            return exc.key
        return done.rep.id if done.rep is not None else "-"


async def test_who_advises_and_the_length(runtime: Runtime) -> None:
    ids = await _setup(runtime)
    zju2, zju1 = ids["zju2"], ids["zju1"]
    assert await _advise(runtime, "mgr01", zju2, "先约刘主任") == "rep01"
    assert await _advise(runtime, "mgr00", zju2, "多关注") == "rep01"
    assert await _advise(runtime, "rep01", zju2, "自己给自己") == "advice.not_allowed"
    assert await _advise(runtime, "mgr01", zju1, "没有代表") == "advice.not_your_team"
    assert await _advise(runtime, "dir01", zju1, "没有代表") == "-"  # nobody to tell
    assert await _advise(runtime, "mgr01", zju2, "字" * 501) == "advice.too_long"
    assert await _advise(runtime, "mgr01", zju2, "字" * 500) == "rep01"
    assert await _advise(runtime, "mgr01", zju2, " \x00 ") == "advice.empty"
    async with runtime.db.read() as s:
        assert len(list(await s.scalars(select(CustomerAdvice)))) == 4
        newest = await advice_svc.newest_advice(s, [zju2, zju1, 999_999])
    assert set(newest) == {zju2, zju1}
    assert newest[zju2].text == "字" * 500 and newest[zju2].author == "陈静"
    assert newest[zju1].author == "赵强"
    line = advice_svc.advice_line(newest[zju2], "zh-CN")
    assert line is not None and line.strip().startswith("💡 经理建议：") and line.endswith("…")
    assert "\n" not in line and len(line.strip()) < 60


async def test_two_advices_in_the_same_instant_the_later_row_wins(runtime: Runtime) -> None:
    ids = await _setup(runtime)
    async with runtime.db.transaction() as s:
        for text in ("第一条", "第二条"):
            s.add(CustomerAdvice(customer_id=ids["zju2"], author_id="mgr01", text=text, created_at=runtime.clock.now()))
    async with runtime.db.read() as s:
        newest = await advice_svc.newest_advice(s, [ids["zju2"]])
    assert newest[ids["zju2"]].text == "第二条"
