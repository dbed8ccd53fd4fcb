from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select, text

from bot.imports.org import (
    ImportFileError,
    ImportReport,
    RowError,
    import_customers,
    import_org,
    read_table,
)
from storage.db import Database
from storage.models import AuditLog, Base, Customer, User, UserIdentity

DEMO = Path(__file__).resolve().parents[2] / "bot" / "demo_data"
NOW = datetime(2024, 5, 6, 1, 30, tzinfo=UTC)
LATER = datetime(2024, 5, 7, 1, 30, tzinfo=UTC)
DEPARTMENTS = ("logistics", "marketing", "compliance")
ORG_HEADER = "user_id,name,roles,department,manager,wecom_userid,dingtalk_staff_id,locale\n"
CUSTOMER_HEADER = "name,aliases,grade,address,latitude,longitude,wards,contacts\n"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 't.db'}")
    async with database.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield database
    await database.dispose()


def write(tmp_path: Path, name: str, content: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode(encoding))
    return path


async def org(db: Database, path: Path, now: datetime = NOW) -> ImportReport:
    return await import_org(db, path, now=now, departments=DEPARTMENTS, actor_id="admin01")


async def count(db: Database, model: type[User] | type[Customer] | type[AuditLog]) -> int:
    async with db.read() as session:
        return (await session.scalar(select(func.count()).select_from(model))) or 0


async def users(db: Database) -> dict[str, User]:
    async with db.read() as session:
        return {u.id: u for u in await session.scalars(select(User))}


async def customers(db: Database) -> dict[str, Customer]:
    async with db.read() as session:
        return {c.name: c for c in await session.scalars(select(Customer))}


async def audits(db: Database, action: str) -> list[AuditLog]:
    async with db.read() as session:
        return list(await session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)))


def located(report: ImportReport) -> set[tuple[int, str | None]]:
    return {(e.row, e.column) for e in report.errors}


async def test_demo_files_import_cleanly(db: Database) -> None:
    org_report = await org(db, DEMO / "org.csv")
    customer_report = await import_customers(db, DEMO / "customers.csv", now=NOW, actor_id="admin01")

    assert (org_report.total, org_report.created, org_report.errors) == (14, 14, [])
    assert (customer_report.total, customer_report.created, customer_report.errors) == (8, 8, [])
    people = await users(db)
    assert people["rep01"].name == "王磊"
    assert people["rep01"].manager_id == "mgr01"
    assert people["log01"].roles == ["member"]
    assert people["log01"].department == "logistics"
    assert people["mkt02"].locale == "en"
    assert people["admin01"].channel_id("wecom") == "admin01"
    assert people["rep01"].created_at == NOW
    hospitals = await customers(db)
    zheyi = hospitals["浙江大学医学院附属第一医院"]
    assert zheyi.aliases == ["浙一", "浙大一院", "浙大一附院"]
    assert (zheyi.latitude, zheyi.longitude, zheyi.grade) == (30.2556, 120.1775, "A")
    assert {"name": "张主任", "ward": "骨科", "title": "主任"} in zheyi.contacts
    assert hospitals["绍兴和平医院"].grade == "C"
    assert len(await audits(db, "import.create")) == 22


async def test_reimport_is_unchanged_and_never_duplicates(db: Database) -> None:
    await org(db, DEMO / "org.csv")
    await import_customers(db, DEMO / "customers.csv", now=NOW)

    again = await org(db, DEMO / "org.csv", now=LATER)
    again_customers = await import_customers(db, DEMO / "customers.csv", now=LATER)

    assert (again.created, again.updated, again.unchanged) == (0, 0, 14)
    assert (again_customers.created, again_customers.updated, again_customers.unchanged) == (0, 0, 8)
    assert await count(db, User) == 14
    assert await count(db, Customer) == 8
    assert await audits(db, "import.update") == []
    assert (await users(db))["rep01"].updated_at == NOW


async def test_changed_field_is_updated_and_audited(db: Database, tmp_path: Path) -> None:
    await org(db, DEMO / "org.csv")
    edited = (DEMO / "org.csv").read_text(encoding="utf-8").replace("rep01,王磊,", "rep01,王磊磊,")
    report = await org(db, write(tmp_path, "org.csv", edited), now=LATER)

    assert (report.created, report.updated, report.unchanged) == (0, 1, 13)
    rep = (await users(db))["rep01"]
    assert (rep.name, rep.created_at, rep.updated_at) == ("王磊磊", NOW, LATER)
    [row] = await audits(db, "import.update")
    assert (row.entity, row.entity_id, row.actor_id, row.at) == ("user", "rep01", "admin01", LATER)
    assert row.changes == {"name": ["王磊", "王磊磊"]}


async def test_customer_update_audits_diff_by_id(db: Database, tmp_path: Path) -> None:
    await import_customers(db, DEMO / "customers.csv", now=NOW)
    edited = (DEMO / "customers.csv").read_text(encoding="utf-8").replace("和平医院,C,", "和平医院,b,")
    report = await import_customers(db, write(tmp_path, "c.csv", edited), now=LATER)

    assert (report.updated, report.unchanged) == (1, 7)
    heping = (await customers(db))["绍兴和平医院"]
    [row] = await audits(db, "import.update")
    # A grade changed by the file follows the cycle rule of 调级 (docs/customers.md "Grades"): C stays in force this
    # month (previous_grade), B counts from the next; all three are audited with their old and new values.
    changes = {"grade": ["C", "B"], "previous_grade": [None, "C"], "grade_since": [None, "2024-05-07"]}
    assert (row.entity, row.entity_id, row.changes) == ("customer", str(heping.id), changes)
    assert (heping.grade, heping.previous_grade) == ("B", "C")


async def test_summary_audit_row(db: Database) -> None:
    await org(db, DEMO / "org.csv")

    [row] = await audits(db, "import.org")
    assert (row.entity, row.actor_id) == ("import", "admin01")
    assert row.changes == {
        "file": "org.csv",
        "total": 14,
        "created": 14,
        "updated": 0,
        "unchanged": 0,
        "errors": 0,
    }


async def test_bad_org_rows_are_reported_and_valid_rows_written(db: Database, tmp_path: Path) -> None:
    await org(db, write(tmp_path, "seed.csv", ORG_HEADER + "old01,老员工,rep,,,wx_taken,,\n"))
    content = ORG_HEADER + (
        "u1,甲,rep,,u9,,,\n"  # 2: manager defined later in the file
        "u2,乙,boss,,,,,\n"  # 3: unknown role
        "u3,丙,member,sales,,,,\n"  # 4: unknown department
        "u1,丁,rep,,,,,\n"  # 5: duplicate user_id
        "u4,戊,rep,,ghost,,,\n"  # 6: unknown manager
        "u5,己,rep,,,wx_taken,,\n"  # 7: wecom id of another user
        "u6,,rep,,,,,\n"  # 8: missing name
        "u7,庚,head,,,,,\n"  # 9: head without department
        "u8,辛,rep,,,,,fr\n"  # 10: unknown locale
        "u9,壬,经理,LOGISTICS,old01,wx9,dt9,英文\n"  # 11: valid, Chinese role, department key in capitals
    )
    report = await org(db, write(tmp_path, "org.csv", content))

    assert located(report) == {
        (3, "roles"),
        (4, "department"),
        (5, "user_id"),
        (6, "manager"),
        (7, "wecom_userid"),
        (8, "name"),
        (9, "department"),
        (10, "locale"),
    }
    assert [e.row for e in report.errors] == sorted(e.row for e in report.errors)
    assert "boss" in next(e.message for e in report.errors if e.row == 3)
    assert (report.total, report.created) == (10, 2)
    people = await users(db)
    assert set(people) == {"old01", "u1", "u9"}
    assert people["u1"].manager_id == "u9"
    u9 = people["u9"]
    assert (u9.roles, u9.department, u9.locale, u9.channel_id("dingtalk")) == (
        ["manager"],
        "logistics",
        "en",
        "dt9",
    )


async def test_role_names_are_split_and_normalised(db: Database, tmp_path: Path) -> None:
    content = ORG_HEADER + "u1,甲,管理员；rep、代表,,,,,\nu2,乙,,,,,,\n"
    report = await org(db, write(tmp_path, "org.csv", content))

    assert located(report) == {(3, "roles")}
    assert (await users(db))["u1"].roles == ["rep", "admin"]


async def test_manager_dropped_with_invalid_row_cascades(db: Database, tmp_path: Path) -> None:
    content = ORG_HEADER + "a,甲,rep,,b,,,\nb,乙,manager,,c,,,\nc,丙,director,,,,,xx\n"
    report = await org(db, write(tmp_path, "org.csv", content))

    assert located(report) == {(2, "manager"), (3, "manager"), (4, "locale")}
    assert await count(db, User) == 0


async def test_duplicate_channel_id_within_file(db: Database, tmp_path: Path) -> None:
    content = ORG_HEADER + "a,甲,rep,,,wx,dt,\nb,乙,rep,,,wx2,dt,\n"
    report = await org(db, write(tmp_path, "org.csv", content))

    assert located(report) == {(3, "dingtalk_staff_id")}
    assert set(await users(db)) == {"a"}


async def identities(db: Database) -> list[tuple[str, str, str]]:
    async with db.read() as session:
        rows = await session.execute(
            select(UserIdentity.user_id, UserIdentity.channel, UserIdentity.external_id).order_by(
                UserIdentity.user_id, UserIdentity.channel
            )
        )
        return [(r.user_id, r.channel, r.external_id) for r in rows.all()]


async def test_channel_ids_are_written_to_user_identities(db: Database, tmp_path: Path) -> None:
    content = ORG_HEADER + "a,甲,rep,,,wx-a,dt-a,\nb,乙,rep,,,wx-b,,\nc,丙,rep,,,,,\n"
    report = await org(db, write(tmp_path, "org.csv", content))
    assert (report.created, report.errors) == (3, [])
    assert await identities(db) == [("a", "dingtalk", "dt-a"), ("a", "wecom", "wx-a"), ("b", "wecom", "wx-b")]
    [created] = [row for row in await audits(db, "import.create") if row.entity_id == "a"]
    assert (created.changes["wecom_userid"], created.changes["dingtalk_staff_id"]) == ([None, "wx-a"], [None, "dt-a"])

    # Re-importing changes nothing; a changed id is updated in place, an emptied cell removes the identity.
    again = await org(db, write(tmp_path, "org.csv", content), now=LATER)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    edited = ORG_HEADER + "a,甲,rep,,,wx-a2,,\nb,乙,rep,,,wx-b,,\nc,丙,rep,,,,dt-c,\n"
    changed = await org(db, write(tmp_path, "edited.csv", edited), now=LATER)
    assert (changed.created, changed.updated, changed.unchanged, changed.errors) == (0, 2, 1, [])
    assert await identities(db) == [("a", "wecom", "wx-a2"), ("b", "wecom", "wx-b"), ("c", "dingtalk", "dt-c")]
    [update_a] = [row for row in await audits(db, "import.update") if row.entity_id == "a"]
    assert update_a.changes == {"wecom_userid": ["wx-a", "wx-a2"], "dingtalk_staff_id": ["dt-a", None]}
    # A file without the columns leaves the identities alone.
    bare = "user_id,name,roles\na,甲,rep\n"
    assert (await org(db, write(tmp_path, "bare.csv", bare), now=LATER)).unchanged == 1
    assert ("a", "wecom", "wx-a2") in await identities(db)


async def test_an_id_moves_to_another_person_only_once_its_holder_lets_go(db: Database, tmp_path: Path) -> None:
    await org(db, write(tmp_path, "seed.csv", ORG_HEADER + "a,甲,rep,,,wx-1,,\nb,乙,rep,,,,,\n"))
    taken = await org(db, write(tmp_path, "take.csv", ORG_HEADER + "b,乙,rep,,,wx-1,,\n"), now=LATER)
    [error] = taken.errors
    assert (error.row, error.column) == (2, "wecom_userid")
    assert error.message == "企业微信ID 'wx-1' 已被用户 'a' 使用，请先清空该用户的企业微信ID"
    assert await identities(db) == [("a", "wecom", "wx-1")]

    await org(db, write(tmp_path, "free.csv", ORG_HEADER + "a,甲,rep,,,,,\n"), now=LATER)
    moved = await org(db, write(tmp_path, "take.csv", ORG_HEADER + "b,乙,rep,,,wx-1,,\n"), now=LATER)
    assert (moved.updated, moved.errors) == (1, [])
    assert await identities(db) == [("b", "wecom", "wx-1")]
    assert (await users(db))["b"].channel_id("wecom") == "wx-1"


async def test_bad_customer_rows_are_reported_and_valid_rows_written(db: Database, tmp_path: Path) -> None:
    content = CUSTOMER_HEADER + (
        "好医院,好院,a,某路1号,30.1,120.1,骨科,张主任/检验科/主任;王医生\n"  # 2: valid
        "坏纬度,,A,,91,120.1,,\n"  # 3: latitude out of range
        "只有纬度,,A,,30.1,,,\n"  # 4: latitude without longitude
        "坏等级,,D,,,,,\n"  # 5: bad grade
        ",,A,,,,,\n"  # 6: missing name
        "好医院,,A,,,,,\n"  # 7: duplicate name
        "非数字,,A,,abc,120,,\n"  # 8: latitude not a number
        "坏联系人,,,,,,,a/b/c/d\n"  # 9: malformed contact
        "另一家,,,,,,,\n"  # 10: valid, minimal
    )
    report = await import_customers(db, write(tmp_path, "c.csv", content), now=NOW)

    assert located(report) == {
        (3, "latitude"),
        (4, "longitude"),
        (5, "grade"),
        (6, "name"),
        (7, "name"),
        (8, "latitude"),
        (9, "contacts"),
    }
    assert (report.total, report.created) == (9, 2)
    good = (await customers(db))["好医院"]
    assert good.grade == "A"
    assert good.wards == ["骨科", "检验科"]
    assert good.contacts == [
        {"name": "张主任", "ward": "检验科", "title": "主任"},
        {"name": "王医生", "ward": None, "title": None},
    ]
    assert set(await customers(db)) == {"好医院", "另一家"}


async def test_chinese_headers(db: Database, tmp_path: Path) -> None:
    org_file = write(
        tmp_path,
        "org.csv",
        "工号,姓名,角色,部门,上级,企业微信ID,钉钉ID,语言\nz1,张三,成员,compliance,,wz1,,中文\n",
    )
    customer_file = write(
        tmp_path, "c.csv", "医院,别名,等级,地址,纬度,经度,科室,联系人\n某医院,某院,B,某路,30,120,骨科,\n"
    )

    org_report = await org(db, org_file)
    customer_report = await import_customers(db, customer_file, now=NOW)

    assert (org_report.created, org_report.errors) == (1, [])
    assert (customer_report.created, customer_report.errors) == (1, [])
    z1 = (await users(db))["z1"]
    assert (z1.roles, z1.department, z1.channel_id("wecom"), z1.locale) == (["member"], "compliance", "wz1", "zh-CN")
    assert (await customers(db))["某医院"].aliases == ["某院"]


async def test_gb18030_csv(db: Database, tmp_path: Path) -> None:
    path = write(tmp_path, "c.csv", "名称,别名\n浙江医院,浙医\n", encoding="gb18030")

    report = await import_customers(db, path, now=NOW)

    assert (report.created, report.errors) == (1, [])
    assert (await customers(db))["浙江医院"].aliases == ["浙医"]


async def test_bom_csv(db: Database, tmp_path: Path) -> None:
    path = write(tmp_path, "org.csv", "user_id,name,roles\nb1,王五,rep\n", encoding="utf-8-sig")

    report = await org(db, path)

    assert (report.created, report.errors) == (1, [])


async def test_xlsx(db: Database, tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["名称", "等级", "纬度", "经度", "科室"])
    sheet.append(["浙江省人民医院", "a", 30.2835, 120.1637, "骨科；检验科"])
    sheet.append([None, None, None, None, None])
    sheet.append(["整数坐标医院", None, 30, 120, None])
    sheet.append(["坏坐标医院", None, "x", 120, None])
    path = tmp_path / "c.xlsx"
    workbook.save(path)
    workbook.close()

    report = await import_customers(db, path, now=NOW)

    assert (report.total, report.created) == (3, 2)
    assert located(report) == {(5, "latitude")}
    hospital = (await customers(db))["浙江省人民医院"]
    assert (hospital.grade, hospital.latitude, hospital.wards) == ("A", 30.2835, ["骨科", "检验科"])


def test_read_table_renders_xlsx_numbers(tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["user_id", "x"])
    sheet.append([1001, 2.5])
    path = tmp_path / "t.xlsx"
    workbook.save(path)
    workbook.close()

    assert read_table(path) == (["user_id", "x"], [["1001", "2.5"]])


def test_read_table_rejects_unknown_files(tmp_path: Path) -> None:
    for name, content in (("a.txt", b"x"), ("a.xls", b"x"), ("a.xlsx", b"not a zip")):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ImportFileError):
            read_table(path)


async def test_missing_required_header_writes_nothing(db: Database, tmp_path: Path) -> None:
    report = await org(db, write(tmp_path, "org.csv", "user_id,name\nu1,甲\n"))

    assert report.errors == [RowError(1, "roles", report.errors[0].message)]
    assert "roles" in report.errors[0].message
    assert await count(db, User) == 0
    assert await count(db, AuditLog) == 0


async def test_progress_called_per_row_and_blank_lines_skipped(db: Database, tmp_path: Path) -> None:
    calls: list[int] = []
    content = ORG_HEADER + "a,甲,rep,,,,,\n\n,,,,,,,\nb,乙,bad,,,,,\nc,丙,rep,,,,,\n"

    report = await import_org(
        db, write(tmp_path, "org.csv", content), now=NOW, departments=DEPARTMENTS, progress=calls.append
    )

    assert calls == [1, 2, 3]
    assert report.total == 3
    assert located(report) == {(5, "roles")}


async def test_absent_optional_column_keeps_stored_value(db: Database, tmp_path: Path) -> None:
    await org(db, DEMO / "org.csv")

    report = await org(db, write(tmp_path, "org.csv", "user_id,name,roles\nrep01,王磊,rep\n"), now=LATER)

    assert report.unchanged == 1
    rep = (await users(db))["rep01"]
    assert (rep.channel_id("wecom"), rep.manager_id) == ("rep01", "mgr01")


async def test_row_rejected_by_database_does_not_roll_back_others(db: Database, tmp_path: Path) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(
            text(
                "CREATE TRIGGER no_bad BEFORE INSERT ON customers WHEN NEW.name = '坏医院' "
                "BEGIN SELECT RAISE(ABORT, 'rejected'); END"
            )
        )
    content = CUSTOMER_HEADER + "甲医院,,,,,,,\n坏医院,,,,,,,\n乙医院,,,,,,,\n"

    report = await import_customers(db, write(tmp_path, "c.csv", content), now=NOW)

    assert (report.created, located(report)) == (2, {(3, None)})
    assert set(await customers(db)) == {"甲医院", "乙医院"}
    assert len(await audits(db, "import.create")) == 2


async def test_naive_now_is_refused(db: Database) -> None:
    with pytest.raises(ValueError):
        await org(db, DEMO / "org.csv", now=datetime(2024, 5, 6))


async def test_customer_rep_column_sets_the_responsible_rep(db: Database, tmp_path: Path) -> None:
    await org(db, DEMO / "org.csv")
    content = "名称,负责代表\n甲医院,rep01\n乙医院,mgr01\n丙医院,ghost\n丁医院,\n"
    report = await import_customers(db, write(tmp_path, "c.csv", content), now=NOW)

    assert located(report) == {(3, "rep"), (4, "rep")}
    messages = {e.row: e.message for e in report.errors}
    assert messages[3] == "用户 'mgr01' 不是代表（角色：manager），请填写代表的用户ID"
    assert "'ghost' 不存在" in messages[4]
    hospitals = await customers(db)
    assert set(hospitals) == {"甲医院", "丁医院"}
    assert (hospitals["甲医院"].rep_id, hospitals["丁医院"].rep_id) == ("rep01", None)
    created = next(row for row in await audits(db, "import.create") if row.entity == "customer")
    assert created.changes["rep_id"] == [None, "rep01"]

    # The English header and the alias 代表 work alike; a re-import changes nothing, another rep is an update.
    again = await import_customers(db, write(tmp_path, "c.csv", "name,rep\n甲医院,rep01\n"), now=LATER)
    assert (again.unchanged, again.errors) == (1, [])
    moved = await import_customers(db, write(tmp_path, "c.csv", "名称,代表\n甲医院,rep02\n丁医院,rep01\n"), now=LATER)
    assert (moved.updated, moved.errors) == (2, [])
    # A file without the column (every customer file before issue 12) leaves the rep alone; an empty cell clears it.
    assert (await import_customers(db, write(tmp_path, "c.csv", "name,grade\n甲医院,A\n"), now=LATER)).errors == []
    assert (await customers(db))["甲医院"].rep_id == "rep02"
    await import_customers(db, write(tmp_path, "c.csv", "name,rep\n甲医院,\n"), now=LATER)
    assert (await customers(db))["甲医院"].rep_id is None


async def test_old_customer_file_without_rep_column_imports_unchanged(db: Database) -> None:
    report = await import_customers(db, DEMO / "customers.csv", now=NOW)

    assert (report.created, report.errors) == (8, [])
    assert {c.rep_id for c in (await customers(db)).values()} == {None}
    assert all("rep_id" not in row.changes for row in await audits(db, "import.create"))
