"""``salesbot import visits``: CSV and XLSX, Chinese headers, each cell through the chat's rule (hospital, ward,
contacts, objection), location evidence and its distance, visited_at in org local time, per-row errors, an
idempotent re-import with its audit rows, and imported visits refused for 修改 and 解锁. On SQLite and PostgreSQL
(``db_url``: the demo org and customers loaded)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from openpyxl import Workbook
from sqlalchemy import select

from bot.cli import main
from bot.config import VisitsConfig
from bot.core.directory import Directory
from bot.imports.table import ImportReport
from bot.imports.visits import import_visits
from bot.services import visits as svc
from storage.db import Database
from storage.models import AuditLog, User, Visit
from tests.import_files import audits, count, errors_of, write

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Thursday 2026-12-03 17:00 in Shanghai.
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
LATER = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
CFG = VisitsConfig()
HEADER = "rep,customer,ward,contacts,visited_at,objection,next_step,latitude,longitude\n"
ZHEYI_AT = "30.2556,120.1775"  # 浙一 as in the demo customers


async def run(db: Database, path: Path, now: datetime = NOW, tz: ZoneInfo = SHANGHAI) -> ImportReport:
    return await import_visits(db, path, now=now, cfg=CFG, tz=tz, actor_id="admin01")


async def stored(db: Database) -> list[Visit]:
    async with db.read() as session:
        return list(await session.scalars(select(Visit).order_by(Visit.visited_at)))


async def test_chinese_headers_and_each_cell_by_the_chat_rule(db: Database, tmp_path: Path) -> None:
    content = (
        "代表,医院,科室,联系人,拜访时间,异议,下一步,纬度,经度\n"
        f"rep01,浙一,骨科,张主任、李医生,2026-11-20 15:30,价格太高,送样,{ZHEYI_AT}\n"
        "rep01,浙大二院,脊柱,刘主任和陈护士长,2026/11/21 9:05,医院在走招标流程,,30.3000,120.3000\n"
        "rep02,邵逸夫,,,2026年11月22日 10:00,,,,\n"
    )
    report = await run(db, write(tmp_path, "visits.csv", content))

    assert (report.total, report.created, report.errors) == (3, 3, [])
    first, second, third = await stored(db)
    # visited_at is org local time, stored in UTC.
    assert [v.visited_at for v in (first, second, third)] == [
        datetime(2026, 11, 20, 7, 30, tzinfo=UTC),
        datetime(2026, 11, 21, 1, 5, tzinfo=UTC),
        datetime(2026, 11, 22, 2, 0, tzinfo=UTC),
    ]
    assert (first.ward, first.contacts, first.objection, first.objection_note, first.next_step) == (
        "骨科",
        ["张主任", "李医生"],
        "价格",
        "太高",
        "送样",
    )
    # A ward typed short is the hospital's ward; free text is 其他 with the text as its note.
    assert (second.ward, second.contacts, second.objection, second.objection_note) == (
        "脊柱外科",
        ["刘主任", "陈护士长"],
        "其他",
        "医院在走招标流程",
    )
    assert (first.location_status, first.distance_m, first.location_at) == ("ok", 0.0, first.visited_at)
    assert (second.location_status, second.distance_m) == (
        "ok",
        round(svc.haversine_m(30.3, 120.3, 30.2570, 120.1856), 1),
    )
    assert (third.location_status, third.latitude, third.distance_m, third.ward, third.objection) == (
        "missing",
        None,
        None,
        None,
        None,
    )
    assert {(v.source_channel, v.locked, v.created_at) for v in (first, second, third)} == {("import", True, NOW)}
    # 浙二 is 12 km from that location: written, and said (as chat questions such a location).
    [warning] = report.warnings
    assert (warning.row, warning.column) == (3, "latitude")
    assert "12.0 公里" in warning.message and "浙江大学医学院附属第二医院" in warning.message


async def test_each_visit_has_an_audit_row_marked_imported(db: Database, tmp_path: Path) -> None:
    content = HEADER + f"rep01,浙一,骨科,张主任,2026-11-20 15:30,价格,,{ZHEYI_AT}\nrep02,浙二,,,2026-11-21 09:00,,,,\n"
    await run(db, write(tmp_path, "visits.csv", content))

    rows = await audits(db, "visit", "visit.import")
    visits = await stored(db)
    assert [r.entity_id for r in rows] == [str(v.id) for v in visits]
    first = rows[0]
    assert (first.channel, first.actor_id, first.at) == ("import", "admin01", NOW)
    assert (first.changes["file"], first.changes["row"], first.changes["objection"]) == ("visits.csv", 2, "价格")
    assert first.changes["visited_at"] == "2026-11-20T07:30:00+00:00"
    async with db.read() as session:
        [summary] = await session.scalars(select(AuditLog).where(AuditLog.action == "import.visits"))
    assert summary.changes == {
        "file": "visits.csv",
        "total": 2,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "errors": 0,
    }


async def test_visited_at_is_read_in_the_org_time_zone(db: Database, tmp_path: Path) -> None:
    content = HEADER + "rep01,浙一,,,2026-11-20 15:30,,,,\nrep01,浙二,,,2026-11-20T15:30:00+08:00,,,,\n"
    report = await run(db, write(tmp_path, "visits.csv", content), tz=ZoneInfo("Europe/Berlin"))

    assert report.errors == []
    # 15:30 in Berlin (UTC+1 in November); a time with its own offset keeps it.
    assert [v.visited_at for v in await stored(db)] == [
        datetime(2026, 11, 20, 7, 30, tzinfo=UTC),
        datetime(2026, 11, 20, 14, 30, tzinfo=UTC),
    ]


async def test_xlsx_with_date_time_and_number_cells(db: Database, tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["代表", "客户", "科室", "联系人", "拜访时间", "异议", "下一步", "纬度", "经度"])
    sheet.append(
        ["rep01", "省人民", "骨科", "吴主任", datetime(2026, 11, 25, 14, 0), "price", "再约", 30.2835, 120.1637]
    )
    path = tmp_path / "visits.xlsx"
    book.save(path)

    report = await run(db, path)

    assert (report.created, report.errors, report.warnings) == (1, [], [])
    [visit] = await stored(db)
    assert (visit.visited_at, visit.objection, visit.contacts, visit.distance_m) == (
        datetime(2026, 11, 25, 6, 0, tzinfo=UTC),
        "价格",
        ["吴主任"],
        0.0,
    )


async def test_bad_rows_are_reported_and_valid_rows_written(db: Database, tmp_path: Path) -> None:
    content = HEADER + (
        "rep01,浙一,骨科,,2026-11-20 15:30,,,,\n"  # 2: valid
        "rep01,协和医院,,,2026-11-20 15:30,,,,\n"  # 3: no such hospital
        "rep01,浙江,,,2026-11-20 15:30,,,,\n"  # 4: ambiguous
        "rep01,浙一,牙科,,2026-11-20 16:30,,,,\n"  # 5: no such ward there
        "rep01,浙一,,,2026-11-20 17:30,无,,,\n"  # 6: 无 is no objection: leave it empty
        "rep01,浙一,,,2026-11-20,,,,\n"  # 7: a day without a time
        "rep01,浙一,,,2026-12-04 10:00,,,,\n"  # 8: in the future
        "rep01,浙一,,,2026-11-20 18:30,,,30.1,\n"  # 9: latitude without longitude
        "mgr01,浙一,,,2026-11-20 15:30,,,,\n"  # 10: not a rep
        "rep01,浙大一院,,,2026-11-20 15:30,,,,\n"  # 11: the visit of row 2 again
        ",浙一,,,,,,,\n"  # 12: no rep, no time
        "rep02,浙一,,,2026-11-20 15:30,,,,\n"  # 13: valid
        f"rep02,浙一,,,2026-11-20 16:30,{'招标' * 101},,,\n"  # 14: an objection note longer than its column
    )
    report = await run(db, write(tmp_path, "visits.csv", content))

    errors = errors_of(report)
    assert set(errors) == {
        (3, "customer"),
        (4, "customer"),
        (5, "ward"),
        (6, "objection"),
        (7, "visited_at"),
        (8, "visited_at"),
        (9, "longitude"),
        (10, "rep"),
        (11, "visited_at"),
        (12, "rep"),
        (12, "visited_at"),
        (14, "objection"),
    }
    assert errors[(3, "customer")].startswith("找不到医院「协和医院」")
    assert "「浙江大学医学院附属第一医院」" in errors[(4, "customer")]
    assert errors[(5, "ward")] == "浙江大学医学院附属第一医院 没有科室「牙科」。可选：骨科、检验科、器械科"
    assert "没有异议请留空" in errors[(6, "objection")]
    assert "缺少时刻" in errors[(7, "visited_at")]
    assert "在未来" in errors[(8, "visited_at")]
    assert "与第 2 行是同一次拜访" in errors[(11, "visited_at")]
    assert errors[(14, "objection")] == "异议超过 200 个字符，请缩短"
    assert (report.total, report.created) == (13, 2)
    assert [v.rep_id for v in await stored(db)] == ["rep01", "rep02"]


async def test_reimport_updates_in_place_and_never_duplicates(db: Database, tmp_path: Path) -> None:
    content = HEADER + (
        f"rep01,浙一,骨科,张主任,2026-11-20 15:30,价格,送样,{ZHEYI_AT}\nrep01,浙二,,,2026-11-21 09:00,,,,\n"
    )
    await run(db, write(tmp_path, "visits.csv", content))
    [first, _] = await stored(db)

    again = await run(db, write(tmp_path, "visits.csv", content), now=LATER)
    assert (again.created, again.updated, again.unchanged, again.errors) == (0, 0, 2, [])

    edited = HEADER + (
        "rep01,浙大一院,骨科,张主任,2026/11/20 15:30:00,价格,跟台,,\nrep01,浙二,,,2026-11-21 09:00,,,,\n"
    )
    changed = await run(db, write(tmp_path, "visits-v2.csv", edited), now=LATER)
    assert (changed.created, changed.updated, changed.unchanged, changed.errors) == (0, 1, 1, [])
    assert await count(db, Visit) == 2
    [updated, _] = await stored(db)
    assert (updated.id, updated.next_step, updated.location_status, updated.latitude) == (
        first.id,
        "跟台",
        "missing",
        None,
    )
    assert (updated.created_at, updated.updated_at) == (NOW, LATER)
    [row] = await audits(db, "visit", "visit.reimport")
    assert row.entity_id == str(first.id)
    assert row.changes["next_step"] == ["送样", "跟台"]
    assert row.changes["location_status"] == ["ok", "missing"]
    assert (row.changes["file"], row.changes["row"], row.at) == ("visits-v2.csv", 2, LATER)
    assert len(await audits(db, "visit", "visit.import")) == 2


async def test_a_visit_logged_in_chat_is_never_taken_as_an_imported_one(db: Database, tmp_path: Path) -> None:
    when = datetime(2026, 11, 20, 7, 30, tzinfo=UTC)
    async with db.transaction() as session:
        rep = await session.get(User, "rep01")
        assert rep is not None
        draft = svc.VisitDraft(customer_id=1, visited_at=when.isoformat(), next_step="聊天里记的")
        await svc.submit(session, draft, rep, now=when, cfg=CFG, tz=SHANGHAI, channel="console")

    report = await run(db, write(tmp_path, "visits.csv", HEADER + "rep01,浙一,,,2026-11-20 15:30,,文件里的,,\n"))

    assert (report.created, report.updated) == (1, 0)
    assert sorted((v.source_channel, v.next_step) for v in await stored(db)) == [
        ("console", "聊天里记的"),
        ("import", "文件里的"),
    ]


async def test_imported_visit_is_refused_for_correction_and_unlock(db: Database, tmp_path: Path) -> None:
    await run(db, write(tmp_path, "visits.csv", HEADER + "rep01,浙一,骨科,张主任,2026-11-20 15:30,价格,送样,,\n"))
    [visit] = await stored(db)
    no = svc.visit_no(visit.id)
    directory = Directory([])

    async with db.transaction() as session:
        rep = await session.get(User, "rep01")
        admin = await session.get(User, "admin01")
        assert rep is not None and admin is not None
        loaded = await svc.load_visit(session, visit.id, no)
        # Inside the correction window after the import, as well as after an admin's 解锁 attempt.
        with pytest.raises(svc.VisitError) as refused:
            await svc.correct_from_text(
                session, directory, rep, f"{no} 下一步:改了", now=NOW, cfg=CFG, tz=SHANGHAI, channel="console"
            )
        assert (refused.value.key, refused.value.params) == ("visit.imported_locked", {"no": no})
        with pytest.raises(svc.VisitError) as no_unlock:
            await svc.unlock(session, loaded, admin, now=NOW, cfg=CFG, channel="console")
        assert no_unlock.value.key == "visit.imported_no_unlock"
        assert loaded.unlocked_until is None
        loaded.unlocked_until = NOW + timedelta(hours=1)  # even an unlock written by other means changes nothing
        with pytest.raises(svc.VisitError):
            svc.may_correct(loaded, rep, NOW, CFG, SHANGHAI)


@pytest.mark.usefixtures("clean_env", "keep_logging")
def test_cli_imports_visits_and_exits_2_on_a_bad_row(db_url: str, tmp_path: Path) -> None:
    content = HEADER + "rep01,浙一,,,2026-11-20 15:30,,,,\nrep01,浙一,,,下午三点,,,,\n"
    env = {"SALESBOT__DATABASE__URL": db_url}

    result = CliRunner().invoke(main, ["import", "visits", str(write(tmp_path, "visits.csv", content))], env=env)

    assert result.exit_code == 2, result.output
    assert "visits: 2 rows — 1 created, 0 updated, 0 unchanged, 1 with errors" in result.stdout
    assert "第 3 行 [visited_at]: 拜访时间 '下午三点' 无法识别" in result.stderr
