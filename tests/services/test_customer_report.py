"""Measuring the model (bot/services/customer_report.py; docs/customers.md "Measuring the model") on the data set of
tests/customer_report_data.py (its docstring works out every customer's outcome), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.config import Settings
from bot.services import customer_report as svc
from storage.db import Database
from storage.models import Customer
from tests.conftest import make_settings
from tests.customer_report_data import LATER, SH, SINCE, TODAY, seed


@pytest.fixture
async def ids(db: Database) -> dict[str, int]:
    return await seed(db)


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url)


async def report(db: Database, settings: Settings, now: datetime = LATER, **kw: object) -> svc.CustomerReport:
    async with db.read() as s:
        return await svc.customer_report(s, settings, now, svc.ReportParams(since=SINCE, **kw))  # type: ignore[arg-type]


async def outcomes(db: Database, settings: Settings, **kw: object) -> dict[str, svc.CustomerOutcome]:
    """The counted customers by their short name (R1 …)."""
    async with db.read() as s:
        rows = await svc.customer_outcomes(s, settings, LATER, svc.ReportParams(since=SINCE, **kw))  # type: ignore[arg-type]
        names = {cid: name for cid, name in (await s.execute(select(Customer.id, Customer.name))).all()}
    return {names[o.customer_id].removeprefix("测试医院"): o for o in rows}


# ---- who counts, and as what ---------------------------------------------------------------------------------------


async def test_recommended_by_a_better_suggestion_or_a_worth_developing_alert_from_its_first_night(
    db: Database, settings: Settings, ids: dict[str, int]
) -> None:
    got = await outcomes(db, settings)
    # N1 was scored only before the period; the demo customers were never scored.
    assert set(got) == {"R1", "R2", "R3", "R4", "O1", "O2", "O3", "O4", "O5", "O6"}
    assert {n for n, o in got.items() if o.recommended} == {"R1", "R2", "R3", "R4"}
    # The first flagging night: R1 also on 06-02, R2 not on 06-01 (suggested = grade).
    assert {n: o.flag for n, o in got.items() if o.recommended} == {
        "R1": date(2026, 6, 1),
        "R2": date(2026, 6, 5),
        "R3": date(2026, 6, 10),
        "R4": date(2026, 6, 20),
    }
    # Others are measured from the period's first night, O3 too (flagged only in July), and O2 (a worse suggestion).
    assert {o.flag for n, o in got.items() if not o.recommended} == {SINCE}


async def test_a_shorter_flag_period_leaves_the_later_flags_to_the_others(
    db: Database, settings: Settings, ids: dict[str, int]
) -> None:
    got = await outcomes(db, settings, flag_days=5)
    # 06-01 … 06-05: R2 still (06-05), R3 (06-10) and R4 (06-20) are out, and so not scored in the period at all.
    assert {n for n, o in got.items() if o.recommended} == {"R1", "R2"}
    assert "R3" not in got and "R4" not in got and "O6" not in got
    assert {n for n, o in got.items() if not o.recommended} == {"O1", "O2", "O3", "O4", "O5"}


async def test_conversion_by_purchase_growth_or_a_new_products_trial_not_a_repeat(
    db: Database, settings: Settings, ids: dict[str, int]
) -> None:
    got = await outcomes(db, settings)
    assert {n for n, o in got.items() if o.converted} == {"R1", "R3", "R4", "O2", "O5"}
    assert (got["R1"].before, got["R1"].after) == (1000, 1500)
    # R2: 5 months each side of a window starting 06-05 (07 … 11 after, 02 … 06 before); X was trialled before.
    assert (got["R2"].before, got["R2"].after, got["R2"].new_products) == (1000, 1000, 0)
    # R3: June is before a window starting 06-10; Y twice is one new product.
    assert (got["R3"].before, got["R3"].after, got["R3"].new_products) == (500, 0, 1)
    # Month edges: 2025-11 is before the 6 months before, 2026-12-01 after the window's last day (11-29).
    assert (got["O5"].before, got["O5"].after) == (100, 150)
    assert (got["O6"].before, got["O6"].after) == (10, 0)
    assert (got["O4"].before, got["O4"].after) == (50, 50)


# ---- the figures ------------------------------------------------------------------------------------------------


async def test_rates_the_difference_in_points_and_pass(db: Database, settings: Settings, ids: dict[str, int]) -> None:
    r = await report(db, settings)
    assert r.recommended == svc.GroupOutcome(4, 3, 2, 1, pytest.approx(25.0), pytest.approx(0.25))  # type: ignore[arg-type]
    # Others' growth: O1 −100, O5 +50, O6 −10 → −60 / 6; one new product (O2) in 6.
    assert r.others == svc.GroupOutcome(6, 2, 1, 1, pytest.approx(-10.0), pytest.approx(1 / 6))  # type: ignore[arg-type]
    assert r.recommended.rate == 0.75 and r.others.rate == pytest.approx(1 / 3)
    assert r.difference_points == pytest.approx(41.6667, abs=1e-3)
    assert r.passed is True and r.partial is False
    assert r.window_end == date(2026, 12, 18)


async def test_fail_below_the_target(db: Database, settings: Settings, ids: dict[str, int]) -> None:
    r = await report(db, settings, points=50.0)
    assert r.passed is False
    text = svc.render_report(r, "zh-CN")
    assert "推荐客户 4 家，转化 75.0%；其他 6 家，转化 33.3%；高出 41.7 个百分点（目标 ≥ 50）✗" in text


async def test_the_window_reaching_beyond_today_is_partial(
    db: Database, settings: Settings, ids: dict[str, int]
) -> None:
    r = await report(db, settings, now=TODAY)
    assert r.partial is True and r.today == date(2026, 12, 4)
    assert "注意：观察期要到 2026-12-18 才结束（今天 2026-12-04），以上是截至今天的数字。" in svc.render_report(r, None)
    # Only the others, whose window ended 11-29: complete.
    r = await report(db, settings, now=TODAY, flag_days=1)
    assert r.partial is False and r.window_end == date(2026, 11, 29)


async def test_a_managers_team_only(db: Database, settings: Settings, ids: dict[str, int]) -> None:
    r = await report(db, settings, team="m9")
    assert (r.recommended.customers, r.recommended.converted, r.others.customers, r.others.converted) == (1, 1, 1, 0)
    assert r.difference_points == 100 and r.team_name == "周经理"
    r = await report(db, settings, team="mgr01")
    assert (r.recommended.customers, r.recommended.converted, r.others.customers, r.others.converted) == (3, 2, 5, 2)
    # The director: everyone (m9 and mgr01 report to dir01).
    r = await report(db, settings, team="dir01")
    assert (r.recommended.customers, r.others.customers) == (4, 6)


async def test_a_bad_team_is_refused(db: Database, settings: Settings, ids: dict[str, int]) -> None:
    with pytest.raises(svc.ReportError) as unknown:
        await report(db, settings, team="nobody")
    assert unknown.value.key == "customer_report.team_unknown"
    with pytest.raises(svc.ReportError) as empty:
        await report(db, settings, team="rep01")
    assert empty.value.key == "customer_report.team_empty"


async def test_json_keys_are_stable(db: Database, settings: Settings, ids: dict[str, int]) -> None:
    doc = (await report(db, settings)).to_json()
    assert doc == {
        "since": "2026-06-01",
        "flag_until": "2026-06-30",
        "flag_days": 30,
        "window_days": 182,
        "points": 15.0,
        "team": None,
        "today": "2027-01-15",
        "window_end": "2026-12-18",
        "partial": False,
        "recommended": {
            "customers": 4,
            "converted": 3,
            "conversion_rate": 0.75,
            "converted_by_purchases": 2,
            "converted_by_trials": 1,
            "purchases_growth_mean": 25.0,
            "new_product_trials_mean": 0.25,
        },
        "others": {
            "customers": 6,
            "converted": 2,
            "conversion_rate": 0.3333,
            "converted_by_purchases": 1,
            "converted_by_trials": 1,
            "purchases_growth_mean": -10.0,
            "new_product_trials_mean": 0.17,
        },
        "difference_points": 41.67,
        "pass": True,
    }


async def test_no_scores_in_the_period_is_an_empty_report(db: Database, settings: Settings) -> None:
    r = await report(db, settings)
    assert r.empty and r.passed is None and r.window_end is None
    assert svc.render_report(r, "zh-CN") == (
        "2026-06-01 至 2026-06-30 没有客户评分，无法衡量：请等每晚评分跑过，或换一个有评分的起始日期。"
    )


async def test_one_group_empty_has_no_verdict(db: Database, settings: Settings, ids: dict[str, int]) -> None:
    # 06-30 only: O6 is scored, nobody flagged.
    async with db.read() as s:
        r = await svc.customer_report(s, settings, LATER, svc.ReportParams(since=date(2026, 6, 30), flag_days=1))
    assert (r.recommended.customers, r.others.customers, r.passed) == (0, 1, None)
    assert "没有推荐客户，无法比较" in svc.render_report(r, "zh-CN")


# ---- the arguments ----------------------------------------------------------------------------------------------


def test_parse_params_defaults_and_values() -> None:
    assert svc.parse_params("2026-06-01") == svc.ReportParams(SINCE, 182, 30, 15.0, None)
    assert svc.parse_params("2026-06-01", "90", "7", "10.5", " m9 ") == svc.ReportParams(SINCE, 90, 7, 10.5, "m9")


@pytest.mark.parametrize(
    ("args", "key"),
    [
        ((None,), "customer_report.since_missing"),
        (("2026/06/01",), "customer_report.bad_since"),
        (("2026-02-30",), "customer_report.bad_since"),
        (("2026-06-01", "abc"), "customer_report.bad_window"),
        (("2026-06-01", "30"), "customer_report.bad_window"),
        (("2026-06-01", None, "0"), "customer_report.bad_flag_days"),
        (("2026-06-01", None, None, "-1"), "customer_report.bad_points"),
        (("2026-06-01", None, None, "x"), "customer_report.bad_points"),
    ],
)
def test_bad_arguments_say_what_to_fix(args: tuple[str | None, ...], key: str) -> None:
    with pytest.raises(svc.ReportError) as exc:
        svc.parse_params(*args)
    assert exc.value.key == key


async def test_a_start_after_today_is_refused(db: Database, settings: Settings) -> None:
    async with db.read() as s:
        with pytest.raises(svc.ReportError) as exc:
            await svc.customer_report(s, settings, TODAY, svc.ReportParams(since=date(2026, 12, 5)))
    assert exc.value.key == "customer_report.since_future"


async def test_the_longest_flag_period_and_window_run(db: Database, settings: Settings, ids: dict[str, int]) -> None:
    # 366 possible flag dates (the windows table's most rows) and 3 years: the same customers, O3 now recommended
    # (its 07-01 suggestion is inside the year).
    async with db.read() as s:
        r = await svc.customer_report(
            s, settings, datetime(2030, 1, 1, tzinfo=SH), svc.ReportParams(SINCE, window_days=1096, flag_days=366)
        )
    assert (r.recommended.customers, r.others.customers) == (5, 5)
    assert r.window_end == date(2026, 7, 1) + timedelta(days=1095)
