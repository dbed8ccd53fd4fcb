"""`salesbot calendar import/show` and imported holidays in the running bot, on SQLite and PostgreSQL.

The 2027 notice below is made up for the tests (the package has no 2027 data): Friday 2027-02-05 to Saturday
2027-02-13 off, Saturday 2027-02-20 a make-up working day.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner, Result
from sqlalchemy import select

from bot.app import build_app
from bot.calendar.holiday_notice import parse_notice
from bot.calendar.official import import_arrangement, load_official_days
from bot.calendar.workcal import add_hours, coverage_warning, official_days
from bot.cli import main
from bot.infra.clock import FixedClock, as_utc
from bot.runtime import Runtime
from storage.db import Database
from storage.models import AuditLog, CalendarDay, TaskCard
from tests.conftest import make_settings

# No SALESBOT_* variable from the developer's shell leaks in; the CLI's logging set-up is undone.
pytestmark = pytest.mark.usefixtures("clean_env", "keep_logging")

TZ = ZoneInfo("Asia/Shanghai")
DATA = Path(__file__).resolve().parent / "data"
NOTICE_2027 = """\
国务院办公厅关于2027年部分节假日安排的通知（测试用，非正式文本）
一、元旦：1月1日（周五）至3日（周日）放假，共3天。
二、春节：2月5日（农历除夕、周五）至13日（周六）放假调休，共9天。2月20日（周六）上班。
"""


def at(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=TZ)


async def cli(db_url: str, *args: str) -> Result:
    """Run the CLI against ``db_url`` in a thread (it runs its own event loop, as from a shell)."""
    env = {"SALESBOT__DATABASE__URL": db_url}
    return await asyncio.to_thread(CliRunner().invoke, main, list(args), env=env, catch_exceptions=False)


async def stored(db_url: str) -> list[tuple[date, int, str, str]]:
    db = Database(db_url)
    try:
        async with db.read() as s:
            rows = await s.scalars(select(CalendarDay).order_by(CalendarDay.day))
            return [(r.day, r.year, r.kind, r.name) for r in rows]
    finally:
        await db.dispose()


@pytest.fixture
def notice_2027(tmp_path: Path) -> Path:
    path = tmp_path / "notice_2027.txt"
    path.write_text(NOTICE_2027, encoding="utf-8")
    return path


# ---- import -------------------------------------------------------------------------------------------------------


async def test_import_the_2025_and_2026_notices_then_reimport_changes_nothing(db_url: str) -> None:
    for year, count in ((2025, 33), (2026, 39)):
        result = await cli(db_url, "calendar", "import", str(DATA / f"holiday_notice_{year}.txt"))
        assert result.exit_code == 0, result.output
        assert f"{count} added, 0 unchanged" in result.stdout
        assert "春节：放假 / closed" in result.stdout
    rows = await stored(db_url)
    assert len(rows) == 72
    assert (date(2026, 2, 14), 2026, "open", "春节") in rows
    again = await cli(db_url, "calendar", "import", str(DATA / "holiday_notice_2026.txt"))
    assert again.exit_code == 0, again.output
    assert "0 added, 39 unchanged" in again.stdout
    assert await stored(db_url) == rows


async def test_imported_2025_and_2026_agree_with_the_package(db_url: str) -> None:
    for year in (2025, 2026):
        assert (await cli(db_url, "calendar", "import", str(DATA / f"holiday_notice_{year}.txt"))).exit_code == 0
    db = Database(db_url)
    try:
        days = await load_official_days(db)
    finally:
        await db.dispose()
    from bot.calendar.workcal import WorkCalendar, WorkCalendarConfig, with_official_days

    package = WorkCalendar(WorkCalendarConfig(), TZ)
    imported = WorkCalendar(with_official_days(WorkCalendarConfig(), days), TZ)
    day = date(2025, 1, 1)
    while day.year < 2027:
        assert imported.is_working_day(day) is package.is_working_day(day), day
        day = date.fromordinal(day.toordinal() + 1)


async def test_an_invalid_file_writes_nothing_and_exits_1(db_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text(NOTICE_2027.replace("2月20日（周六）上班", "2月30日上班"), encoding="utf-8")
    result = await cli(db_url, "calendar", "import", str(bad))
    assert result.exit_code == 1
    assert "第 3 行 / line 3" in result.stderr and "2027-02-30" in result.stderr
    assert "nothing imported" in result.stderr
    assert await stored(db_url) == []


async def test_a_year_option_that_contradicts_the_title_exits_1(db_url: str, notice_2027: Path) -> None:
    result = await cli(db_url, "calendar", "import", str(notice_2027), "--year", "2028")
    assert result.exit_code == 1 and "year mismatch" in result.stderr
    assert await stored(db_url) == []


async def test_a_count_mismatch_warns_and_imports(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "n.txt"
    path.write_text(NOTICE_2027.replace("共9天", "共8天"), encoding="utf-8")
    result = await cli(db_url, "calendar", "import", str(path))
    assert result.exit_code == 0, result.output
    assert "warning" in result.stderr and "says 8 days but the dates give 9" in result.stderr


async def test_a_conflicting_reimport_is_refused_unless_replace(db_url: str, notice_2027: Path, tmp_path: Path) -> None:
    assert (await cli(db_url, "calendar", "import", str(notice_2027))).exit_code == 0
    before = await stored(db_url)
    assert len(before) == 13
    changed = tmp_path / "days.csv"
    changed.write_text("date,kind,name\n2027-02-13,open,春节\n2027-02-27,open,春节\n", encoding="utf-8")
    refused = await cli(db_url, "calendar", "import", str(changed))
    assert refused.exit_code == 1
    assert "2027-02-13 is stored as closed" in refused.stderr and "--replace" in refused.stderr
    assert "line 2" in refused.stderr
    assert await stored(db_url) == before  # nothing written, not even the new 2027-02-27
    replaced = await cli(db_url, "calendar", "import", str(changed), "--replace")
    assert replaced.exit_code == 0, replaced.output
    assert "2 added, 0 unchanged, 13 replaced" in replaced.stdout
    assert await stored(db_url) == [
        (date(2027, 2, 13), 2027, "open", "春节"),
        (date(2027, 2, 27), 2027, "open", "春节"),
    ]


async def test_adding_days_keeps_the_others_and_says_so(db_url: str, notice_2027: Path, tmp_path: Path) -> None:
    assert (await cli(db_url, "calendar", "import", str(notice_2027))).exit_code == 0
    more = tmp_path / "more.toml"
    more.write_text('[[days]]\ndate = 2027-10-01\nkind = "closed"\nname = "国庆节"\n', encoding="utf-8")
    result = await cli(db_url, "calendar", "import", str(more))
    assert result.exit_code == 0, result.output
    assert "1 added, 0 unchanged, 13 other stored days of 2027 kept" in result.stdout
    assert len(await stored(db_url)) == 14
    db = Database(db_url)
    try:
        async with db.read() as s:
            audits = list(await s.scalars(select(AuditLog).where(AuditLog.action == "calendar.import")))
    finally:
        await db.dispose()
    assert [a.entity_id for a in audits] == ["2027", "2027"]
    assert audits[1].changes["source"] == "toml: more.toml"


# ---- show ---------------------------------------------------------------------------------------------------------


async def test_show_a_year_from_each_source(db_url: str, notice_2027: Path) -> None:
    empty = await cli(db_url, "calendar", "show", "2027")
    assert empty.exit_code == 0, empty.output
    assert "no holiday data for 2027" in empty.stdout
    assert (await cli(db_url, "calendar", "import", str(notice_2027))).exit_code == 0
    shown = await cli(db_url, "calendar", "show", "2027")
    assert shown.exit_code == 0, shown.output
    assert "导入 / imported (notice: notice_2027.txt)" in shown.stdout
    assert "春节：放假 / closed 2月5日（周五）至2月13日（周六）（9 天）；上班 / open 2月20日（周六）" in shown.stdout
    assert "no holiday data" not in shown.stdout
    package = await cli(db_url, "calendar", "show", "2026")
    assert "chinese-calendar 软件包 / package (chinese-calendar" in package.stdout
    assert (
        "国庆节：放假 / closed 10月1日（周四）至10月7日（周三）（7 天）；上班 / open 9月20日（周日）、10月10日（周六）"
        in (package.stdout)
    )


async def test_show_lists_config_extras(db_url: str, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[calendar]\nextra_closed = [2027-12-31]\n", encoding="utf-8")
    result = await cli(db_url, "calendar", "show", "2027", "--config", str(config))
    assert "配置 / config extra (extra_closed):" in result.stdout
    assert "extra_closed：放假 / closed 12月31日（周五）（1 天）" in result.stdout


# ---- config check -------------------------------------------------------------------------------------------------


async def test_config_check_counts_an_imported_next_year(db_url: str, notice_2027: Path, tmp_path: Path) -> None:
    today = date.today()
    if today.year != 2026:
        pytest.skip("written for December 2026, when the package's data ends with this year")
    before = await cli(db_url, "config", "check")
    assert "2027 is not covered" in before.stderr
    assert (await cli(db_url, "calendar", "import", str(notice_2027))).exit_code == 0
    after = await cli(db_url, "config", "check")
    assert after.exit_code == 0 and "not covered" not in after.stderr, after.stderr


async def test_config_check_says_when_it_could_not_read_the_database(tmp_path: Path) -> None:
    missing = f"sqlite+aiosqlite:///{tmp_path / 'nope.db'}"
    result = await cli(missing, "config", "check")
    assert result.exit_code == 0
    if "not covered" in result.stderr:
        assert "could not check the imported holiday days" in result.stderr
    assert not (tmp_path / "nope.db").exists()


# ---- the running bot ----------------------------------------------------------------------------------------------


async def import_2027(db: Database, now: datetime) -> None:
    result = await import_arrangement(db, parse_notice(NOTICE_2027), source="notice: test", now=now)
    assert result.ok and result.added == 13


async def test_runtime_start_loads_imported_days_for_deadlines(db_url: str, clock: FixedClock) -> None:
    db = Database(db_url)
    try:
        await import_2027(db, clock.now())
    finally:
        await db.dispose()
    rt = Runtime(make_settings(db_url), clock=clock)
    await rt.start()
    try:
        days = official_days(rt.settings.calendar)
        assert days is not None and days.covers(2027)
        # Thursday 17:00 + 2 working hours: the Spring Festival (Fri 5th – Sat 13th) is off → Monday 15th 10:00.
        assert add_hours(rt.settings, at(2027, 2, 4, 17), 2, calendar=False) == at(2027, 2, 15, 10)
        # Friday 19th 17:00 + 2: the make-up Saturday 20th counts.
        assert add_hours(rt.settings, at(2027, 2, 19, 17), 2, calendar=False) == at(2027, 2, 20, 10)
        assert coverage_warning(rt.settings.calendar, date(2026, 12, 2)) is None
    finally:
        await rt.close()


async def test_an_import_reaches_the_running_bot_after_reload(
    console: Any, runtime: Runtime, clock: FixedClock
) -> None:
    clock.set(at(2027, 2, 4, 17))
    await import_2027(runtime.db, clock.now())
    # Not yet: the running bot reads the table at start and on reload.
    assert add_hours(runtime.settings, at(2027, 2, 4, 17), 2, calendar=False) == at(2027, 2, 5, 10)
    runtime.reload(make_settings(runtime.settings.database.url))
    await runtime.calendar_loaded()
    assert add_hours(runtime.settings, at(2027, 2, 4, 17), 2, calendar=False) == at(2027, 2, 15, 10)
    # A request raised now gets SLA deadlines that skip the imported holiday (2 h to respond, 24 h to finish).
    rep = await console("rep01")
    await rep.send("资料 浙一 内容:新品彩页")
    await rep.refresh()
    await rep.tap("提交")
    await runtime.settle()
    async with runtime.db.read() as s:
        card = (await s.scalars(select(TaskCard))).one()
    assert as_utc(card.respond_by) == at(2027, 2, 15, 10)
    # 1 h on Thursday, 8 h each on Mon 15th and Tue 16th, 7 h on Wed 17th → 24 working hours end at 17:00.
    assert as_utc(card.due_at) == at(2027, 2, 17, 17)


async def test_reload_keeps_the_loaded_days_while_it_rereads(runtime: Runtime, clock: FixedClock) -> None:
    await import_2027(runtime.db, clock.now())
    runtime.reload(make_settings(runtime.settings.database.url))
    await runtime.calendar_loaded()
    days = official_days(runtime.settings.calendar)
    runtime.reload(make_settings(runtime.settings.database.url, calendar={"work_end": "17:00"}))
    assert official_days(runtime.settings.calendar) is days  # at once, before the re-read finishes
    assert runtime.settings.calendar.work_end == "17:00"
    await runtime.calendar_loaded()


async def test_healthz_counts_the_runtimes_imported_years(runtime: Runtime, clock: FixedClock) -> None:
    clock.set(at(2026, 12, 2, 10))
    client = TestClient(TestServer(build_app(runtime, manage_runtime=False)))
    await client.start_server()
    try:
        body = await (await client.get("/healthz")).json()
        assert any("2027 is not covered" in w for w in body.get("warnings", []))
        await import_2027(runtime.db, clock.now())
        runtime.reload(make_settings(runtime.settings.database.url))
        await runtime.calendar_loaded()
        body = await (await client.get("/healthz")).json()
        assert "warnings" not in body, body
    finally:
        await client.close()
