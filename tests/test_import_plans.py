"""``salesbot import plans``: CSV and XLSX, Chinese headers, per-row errors, week items under their Monday, an
idempotent re-import, and done derived from visits whichever of the two files comes first. On SQLite and PostgreSQL
(``db_url``: the demo org and customers loaded)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from openpyxl import Workbook
from sqlalchemy import select

from bot.cli import main
from bot.config import VisitsConfig
from bot.imports.plans import import_plans
from bot.imports.table import ImportReport
from bot.imports.visits import import_visits
from bot.services import plan_rule
from storage.db import Database
from storage.models import Customer, PlanItem
from tests.import_files import audits, count, errors_of, write

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Thursday 2026-12-03 17:00 in Shanghai.
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
LATER = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
ZJU1 = "浙江大学医学院附属第一医院"
ZJU2 = "浙江大学医学院附属第二医院"
SRRS = "浙江省人民医院"


async def run(db: Database, path: Path, now: datetime = NOW, tz: ZoneInfo = SHANGHAI) -> ImportReport:
    return await import_plans(db, path, now=now, tz=tz, actor_id="admin01")


async def items(db: Database) -> list[tuple[str, str, str, date, str | None]]:
    async with db.read() as session:
        rows = await session.execute(
            select(PlanItem.rep_id, Customer.name, PlanItem.period, PlanItem.day, PlanItem.purpose)
            .join(Customer, Customer.id == PlanItem.customer_id)
            .order_by(PlanItem.rep_id, PlanItem.day, Customer.name)
        )
        return [tuple(r) for r in rows.all()]  # type: ignore[misc]


async def test_chinese_headers_day_and_week_items(db: Database, tmp_path: Path) -> None:
    content = (
        "代表,医院,日期,周期,目的\n"
        "rep01,浙一,2026-12-01,,新品试用\n"  # day (default)
        "rep01,浙二,2026-12-02,周,\n"  # Wednesday → the week of Monday 11-30
        "rep02,省人民,2026/12/6,week,回访\n"  # Sunday → the same week
        "rep02,邵逸夫,2026年12月7日,天,\n"
    )
    report = await run(db, write(tmp_path, "plans.csv", content))

    assert (report.total, report.created, report.errors) == (4, 4, [])
    assert await items(db) == [
        ("rep01", ZJU2, "week", date(2026, 11, 30), None),
        ("rep01", ZJU1, "day", date(2026, 12, 1), "新品试用"),
        ("rep02", SRRS, "week", date(2026, 11, 30), "回访"),
        ("rep02", "浙江大学医学院附属邵逸夫医院", "day", date(2026, 12, 7), None),
    ]
    async with db.read() as session:
        day_item, week_item = list(await session.scalars(select(PlanItem).order_by(PlanItem.id)))[:2]
    # Spans are org-local days and ISO weeks, stored in UTC.
    assert (day_item.starts_at, day_item.ends_at) == (
        datetime(2026, 11, 30, 16, 0, tzinfo=UTC),
        datetime(2026, 12, 1, 16, 0, tzinfo=UTC),
    )
    assert (week_item.starts_at, week_item.ends_at) == (
        datetime(2026, 11, 29, 16, 0, tzinfo=UTC),
        datetime(2026, 12, 6, 16, 0, tzinfo=UTC),
    )
    assert (day_item.source, day_item.status, day_item.created_by, day_item.created_at) == (
        "import",
        "open",
        "admin01",
        NOW,
    )
    assert len(await audits(db, "plan_item", "import.create")) == 4


async def test_week_spans_follow_the_org_time_zone(db: Database, tmp_path: Path) -> None:
    path = write(tmp_path, "plans.csv", "rep,customer,date,period\nrep01,浙一,2026-12-03,week\n")
    report = await run(db, path, tz=ZoneInfo("UTC"))

    assert report.errors == []
    async with db.read() as session:
        item = await session.scalar(select(PlanItem))
    assert item is not None
    assert (item.day, item.starts_at, item.ends_at) == (
        date(2026, 11, 30),
        datetime(2026, 11, 30, tzinfo=UTC),
        datetime(2026, 12, 7, tzinfo=UTC),
    )


async def test_xlsx_with_date_cells(db: Database, tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Rep", "Customer", "Date", "Period", "Purpose"])
    sheet.append(["rep01", "浙一", datetime(2026, 12, 1), "day", "送样"])
    sheet.append(["rep01", "zdey", date(2026, 12, 2), "周", None])  # pinyin initials of 浙大二院, as in chat
    path = tmp_path / "plans.xlsx"
    book.save(path)

    report = await run(db, path)

    assert (report.created, report.errors) == (2, [])
    assert await items(db) == [
        ("rep01", ZJU2, "week", date(2026, 11, 30), None),
        ("rep01", ZJU1, "day", date(2026, 12, 1), "送样"),
    ]


async def test_bad_rows_are_reported_and_valid_rows_written(db: Database, tmp_path: Path) -> None:
    content = (
        "rep,customer,date,period,purpose\n"
        "rep01,浙一,2026-12-01,,\n"  # 2: valid
        "rep01,北京协和医院,2026-12-01,,\n"  # 3: no such hospital
        "rep01,浙江,2026-12-01,,\n"  # 4: ambiguous
        "mgr01,浙一,2026-12-01,,\n"  # 5: not a rep
        "ghost,浙一,2026-12-01,,\n"  # 6: no such user
        "rep01,浙二,12/01,,\n"  # 7: bad date
        "rep01,浙二,2026-12-01,month,\n"  # 8: bad period
        "rep01,浙大一院,2026-12-01,,\n"  # 9: the plan item of row 2 (another alias)
        "rep02,浙二,2026-12-01,week,\n"  # 10: valid
        "rep02,浙二,2026-12-04,week,\n"  # 11: the same week as row 10
        ",浙二,2026-12-01,,\n"  # 12: no rep
        f"rep02,省人民,2026-12-01,,{'长' * 201}\n"  # 13: purpose too long
    )
    report = await run(db, write(tmp_path, "plans.csv", content))

    errors = errors_of(report)
    assert set(errors) == {
        (3, "customer"),
        (4, "customer"),
        (5, "rep"),
        (6, "rep"),
        (7, "date"),
        (8, "period"),
        (9, "customer"),
        (11, "customer"),
        (12, "rep"),
        (13, "purpose"),
    }
    assert errors[(3, "customer")].startswith("找不到医院「北京协和医院」")
    assert "不明确" in errors[(4, "customer")] and f"「{ZJU1}」" in errors[(4, "customer")]
    assert "不是代表" in errors[(5, "rep")]
    assert "与第 2 行是同一计划" in errors[(9, "customer")]
    assert "与第 10 行是同一计划" in errors[(11, "customer")]
    assert [e.row for e in report.errors] == sorted(e.row for e in report.errors)
    assert (report.total, report.created) == (12, 2)
    assert await items(db) == [
        ("rep01", ZJU1, "day", date(2026, 12, 1), None),
        ("rep02", ZJU2, "week", date(2026, 11, 30), None),
    ]


async def test_a_hospital_taken_for_more_than_its_name_is_written_with_a_note(db: Database, tmp_path: Path) -> None:
    content = "rep,customer,date\nrep01,浙一医院,2026-12-01\nrep01,浙二,2026-12-01\n"
    report = await run(db, write(tmp_path, "plans.csv", content))

    assert (report.created, report.errors) == (2, [])
    [note] = report.warnings
    assert (note.row, note.column, note.message) == (
        2,
        "customer",
        f"「浙一医院」按「{ZJU1}」导入，如不对请改成全称后重新导入",
    )


async def test_missing_required_header_writes_nothing(db: Database, tmp_path: Path) -> None:
    report = await run(db, write(tmp_path, "plans.csv", "rep,customer\nrep01,浙一\n"))

    assert [(e.row, e.column) for e in report.errors] == [(1, "date")]
    assert await count(db, PlanItem) == 0


async def test_reimport_updates_purpose_and_never_duplicates(db: Database, tmp_path: Path) -> None:
    content = "rep,customer,date,period,purpose\nrep01,浙一,2026-12-01,,新品试用\nrep01,浙二,2026-12-02,week,\n"
    await run(db, write(tmp_path, "plans.csv", content))

    again = await run(db, write(tmp_path, "plans.csv", content), now=LATER)
    assert (again.created, again.updated, again.unchanged, again.errors) == (0, 0, 2, [])

    # Another alias and another day of the same week name the same two items: only the purpose changes.
    edited = "rep,customer,date,period,purpose\nrep01,浙大一院,2026-12-01,,跟台\nrep01,浙二,2026-12-05,周,\n"
    changed = await run(db, write(tmp_path, "plans.csv", edited), now=LATER)
    assert (changed.created, changed.updated, changed.unchanged, changed.errors) == (0, 1, 1, [])
    assert await count(db, PlanItem) == 2
    assert ("rep01", ZJU1, "day", date(2026, 12, 1), "跟台") in await items(db)
    [update] = await audits(db, "plan_item", "import.update")
    assert (update.changes, update.at, update.actor_id) == ({"purpose": ["新品试用", "跟台"]}, LATER, "admin01")

    # A file without the purpose column leaves the purpose alone.
    bare = await run(db, write(tmp_path, "plans.csv", "rep,customer,date\nrep01,浙一,2026-12-01\n"), now=LATER)
    assert (bare.unchanged, bare.errors) == (1, [])
    assert ("rep01", ZJU1, "day", date(2026, 12, 1), "跟台") in await items(db)


async def done_items(db: Database) -> list[tuple[str, date]]:
    async with db.read() as session:
        rows = await session.execute(
            select(PlanItem.rep_id, PlanItem.day).where(plan_rule.done_clause()).order_by(PlanItem.day)
        )
        return [(rep, day) for rep, day in rows.all()]


@pytest.mark.parametrize("plans_first", [True, False])
async def test_done_is_derived_whichever_file_comes_first(db: Database, tmp_path: Path, plans_first: bool) -> None:
    plans = write(
        tmp_path,
        "plans.csv",
        "rep,customer,date,period\nrep01,浙一,2026-12-01,day\nrep01,浙二,2026-12-01,day\nrep01,浙二,2026-12-01,week\n",
    )
    # 浙一 on the day (late evening local time); 浙二 on another day of that week only.
    visits = write(
        tmp_path, "visits.csv", "rep,customer,visited_at\nrep01,浙一,2026-12-01 23:30\nrep01,浙二,2026-12-02 09:00\n"
    )
    cfg = VisitsConfig()
    if plans_first:
        await run(db, plans)
    assert (await import_visits(db, visits, now=NOW, cfg=cfg, tz=SHANGHAI)).errors == []
    if not plans_first:
        await run(db, plans)

    assert await done_items(db) == [("rep01", date(2026, 11, 30)), ("rep01", date(2026, 12, 1))]
    async with db.read() as session:
        [open_item] = await session.scalars(select(PlanItem).where(~plan_rule.done_clause()))
    assert (open_item.period, open_item.day) == ("day", date(2026, 12, 1))


@pytest.mark.usefixtures("clean_env", "keep_logging")
def test_cli_reports_rows_in_chinese_and_exits_2(db_url: str, tmp_path: Path) -> None:
    content = "代表,客户,日期\nrep01,浙一,2026-12-01\nrep01,协和医院,2026-12-01\n"
    env = {"SALESBOT__DATABASE__URL": db_url}

    result = CliRunner().invoke(main, ["import", "plans", str(write(tmp_path, "plans.csv", content))], env=env)

    assert result.exit_code == 2, result.output
    assert "plans: 2 rows — 1 created, 0 updated, 0 unchanged, 1 with errors" in result.stdout
    assert "第 3 行 [customer]: 找不到医院「协和医院」" in result.stderr
    again = CliRunner().invoke(main, ["import", "plans", str(write(tmp_path, "plans.csv", content))], env=env)
    assert "0 created, 0 updated, 1 unchanged" in again.stdout
