"""``salesbot import purchases|trials|events``: CSV and XLSX, Chinese headers, per-row errors, purchases by month
(a day or a month in the file), an idempotent re-import with audited updates, and the refusal of any file that could
carry per-doctor prescription data (统方). On SQLite and PostgreSQL (``db_url``: the demo org and customers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import Workbook
from sqlalchemy import select

from bot.cli import main
from bot.imports.activity import ActivityKind, import_activity
from bot.imports.table import ImportReport
from storage.db import Database
from storage.models import Customer, CustomerEvent, CustomerPurchase, CustomerTrial
from tests.import_files import audits, count, errors_of, write

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
LATER = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
ZJU1 = "浙江大学医学院附属第一医院"
ZJU2 = "浙江大学医学院附属第二医院"


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    yield database
    await database.dispose()


async def run(db: Database, kind: ActivityKind, path: Path, now: datetime = NOW) -> ImportReport:
    return await import_activity(db, kind, path, now=now, actor_id="admin01")


async def purchases(db: Database) -> list[tuple[str, date, Decimal, str]]:
    async with db.read() as session:
        rows = await session.execute(
            select(Customer.name, CustomerPurchase.month, CustomerPurchase.amount, CustomerPurchase.source)
            .join(Customer, Customer.id == CustomerPurchase.customer_id)
            .order_by(Customer.name, CustomerPurchase.month)
        )
        return [tuple(r) for r in rows.all()]  # type: ignore[misc]


async def trials(db: Database) -> list[tuple[str, str, date]]:
    async with db.read() as session:
        rows = await session.execute(
            select(Customer.name, CustomerTrial.product, CustomerTrial.day)
            .join(Customer, Customer.id == CustomerTrial.customer_id)
            .order_by(CustomerTrial.day, Customer.name)
        )
        return [tuple(r) for r in rows.all()]  # type: ignore[misc]


async def events(db: Database) -> list[tuple[str, str, date, int]]:
    async with db.read() as session:
        rows = await session.execute(
            select(Customer.name, CustomerEvent.event, CustomerEvent.day, CustomerEvent.attendees)
            .join(Customer, Customer.id == CustomerEvent.customer_id)
            .order_by(CustomerEvent.day, Customer.name)
        )
        return [tuple(r) for r in rows.all()]  # type: ignore[misc]


def xlsx(tmp_path: Path, name: str, rows: list[list[object]]) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    path = tmp_path / name
    book.save(path)
    return path


# ---- purchases -------------------------------------------------------------------------------------------------


async def test_purchases_month_or_day_and_amount_formats(db: Database, tmp_path: Path) -> None:
    content = (
        "医院,月份,金额\n"
        '浙一,2026-10,"1,234.50"\n'  # thousands separators
        "浙一,2026-11-15,¥800\n"  # a day → its month
        "浙一,2026/11/20,200.5\n"  # the same month: added up
        "浙二,2026年11月,￥ 3000元\n"
    )
    report = await run(db, "purchases", write(tmp_path, "p.csv", content))

    assert (report.total, report.created, report.errors) == (4, 3, [])
    assert await purchases(db) == [
        (ZJU1, date(2026, 10, 1), Decimal("1234.50"), "import"),
        (ZJU1, date(2026, 11, 1), Decimal("1000.50"), "import"),
        (ZJU2, date(2026, 11, 1), Decimal("3000.00"), "import"),
    ]
    assert len(await audits(db, "customer_purchase", "import.create")) == 3


async def test_purchases_from_xlsx_with_date_cells(db: Database, tmp_path: Path) -> None:
    path = xlsx(
        tmp_path,
        "p.xlsx",
        [["Customer", "Date", "Amount"], ["浙一", datetime(2026, 9, 3), 1500], ["zdey", date(2026, 9, 30), 99.99]],
    )
    report = await run(db, "purchases", path)

    assert (report.created, report.errors) == (2, [])
    assert await purchases(db) == [
        (ZJU1, date(2026, 9, 1), Decimal("1500.00"), "import"),
        (ZJU2, date(2026, 9, 1), Decimal("99.99"), "import"),
    ]


async def test_purchase_row_errors(db: Database, tmp_path: Path) -> None:
    content = (
        "customer,month,amount\n"
        "协和医院,2026-11,100\n"  # 2: unknown customer
        "浙一,2026-13,100\n"  # 3: no 13th month
        "浙一,2026-11,-5\n"  # 4: negative
        "浙二,2026-11,1.234\n"  # 5: three decimals
        "浙二,2026-11,abc\n"  # 6: not a number
        "省人民,2026-12,100\n"  # 7: fine
        "浙一,2026-10,100\n"  # 8: fine by itself, but row 9 of the same month is bad
        "浙一,2026-10-31,x\n"  # 9
    )
    report = await run(db, "purchases", write(tmp_path, "p.csv", content))

    errors = errors_of(report)
    assert errors[(2, "customer")].startswith("找不到医院「协和医院」")
    assert "月份 '2026-13' 无法识别" in errors[(3, "month")]
    assert "是负数" in errors[(4, "amount")]
    assert "最多两位小数" in errors[(5, "amount")]
    assert "无法识别" in errors[(6, "amount")]
    assert "第 9 行有错误，本月金额未导入" in errors[(8, "amount")]
    assert (9, "amount") in errors
    assert report.created == 1
    assert await purchases(db) == [("浙江省人民医院", date(2026, 12, 1), Decimal("100.00"), "import")]


async def test_purchase_reimport_unchanged_then_replaced_and_audited(db: Database, tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", "客户,月份,金额\n浙一,2026-11,1000\n浙二,2026-11,500\n")
    await run(db, "purchases", path)

    again = await run(db, "purchases", path, now=LATER)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)

    changed = await run(
        db, "purchases", write(tmp_path, "p.csv", "客户,月份,金额\n浙一,2026-11,1200.5\n浙二,2026-11,500\n"), LATER
    )
    assert (changed.created, changed.updated, changed.unchanged, changed.errors) == (0, 1, 1, [])
    assert await count(db, CustomerPurchase) == 2
    [update] = await audits(db, "customer_purchase", "import.update")
    assert update.changes == {"amount": ["1000.00", "1200.50"]}
    assert update.actor_id == "admin01"
    async with db.read() as session:
        row = await session.scalar(select(CustomerPurchase).where(CustomerPurchase.amount == Decimal("1200.50")))
    assert row is not None and row.updated_at == LATER and row.created_at == NOW


# ---- trials ----------------------------------------------------------------------------------------------------


async def test_trials_csv_and_xlsx_idempotent(db: Database, tmp_path: Path) -> None:
    content = "医院,试用产品,试用日期\n浙一,超声刀X1,2026-11-20\n浙二,超声刀X1,2026/11/21\n浙一,超声刀X1,2026-11-20\n"
    report = await run(db, "trials", write(tmp_path, "t.csv", content))
    assert report.created == 2
    assert "与第 2 行是同一条记录" in errors_of(report)[(4, "customer")]

    path = xlsx(tmp_path, "t.xlsx", [["customer", "product", "date"], ["浙一", "超声刀X1", datetime(2026, 11, 20)]])
    again = await run(db, "trials", path)
    assert (again.created, again.unchanged, again.errors) == (0, 1, [])
    assert await trials(db) == [
        (ZJU1, "超声刀X1", date(2026, 11, 20)),
        (ZJU2, "超声刀X1", date(2026, 11, 21)),
    ]


async def test_trial_row_errors(db: Database, tmp_path: Path) -> None:
    content = "客户,产品,日期\n浙一,,2026-11-20\n浙一,X1,昨天\n" + f"浙一,{'长' * 101},2026-11-20\n"
    report = await run(db, "trials", write(tmp_path, "t.csv", content))

    errors = errors_of(report)
    assert errors[(2, "product")] == "产品不能为空，请填写"
    assert "日期 '昨天' 无法识别" in errors[(3, "date")]
    assert "超过 100 个字符" in errors[(4, "product")]
    assert await count(db, CustomerTrial) == 0


# ---- events ----------------------------------------------------------------------------------------------------


async def test_events_reimport_updates_attendees(db: Database, tmp_path: Path) -> None:
    content = "医院,活动,活动日期,参会人数\n浙二,骨科沙龙,2026-11-25,3\n浙一,科室会,2026-11-26,12\n"
    report = await run(db, "events", write(tmp_path, "e.csv", content))
    assert (report.created, report.errors) == (2, [])

    path = xlsx(
        tmp_path,
        "e.xlsx",
        [
            ["Customer", "Event", "Date", "Attendees"],
            ["浙二", "骨科沙龙", datetime(2026, 11, 25), 5],
            ["浙一", "科室会", datetime(2026, 11, 26), 12],
            ["浙一", "科室会", datetime(2026, 11, 27), -1],
        ],
    )
    again = await run(db, "events", path, now=LATER)

    assert (again.created, again.updated, again.unchanged) == (0, 1, 1)
    assert "参会人数 '-1' 无效" in errors_of(again)[(4, "attendees")]
    assert await events(db) == [
        (ZJU2, "骨科沙龙", date(2026, 11, 25), 5),
        (ZJU1, "科室会", date(2026, 11, 26), 12),
    ]
    [update] = await audits(db, "customer_event", "import.update")
    assert update.changes == {"attendees": [3, 5]}


# ---- 统方 ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["医生", "医生姓名", "处方量", "Doctor_Name", "prescriptions", "统方"])
async def test_a_file_with_doctor_or_prescription_columns_is_refused(db: Database, tmp_path: Path, header: str) -> None:
    content = f"客户,月份,金额,{header}\n浙一,2026-11,100,张三\n"
    report = await run(db, "purchases", write(tmp_path, "p.csv", content))

    [error] = report.errors
    assert error.row == 1
    assert f"「{header}」" in error.message and "不得统方" in error.message
    assert report.total == 0
    assert await count(db, CustomerPurchase) == 0


async def test_an_event_file_with_a_doctor_column_is_refused_too(db: Database, tmp_path: Path) -> None:
    path = xlsx(
        tmp_path,
        "e.xlsx",
        [["客户", "活动", "日期", "参会人数", "参会医生"], ["浙二", "沙龙", "2026-11-25", 3, "李四"]],
    )
    report = await run(db, "events", path)
    assert "不得统方" in report.errors[0].message
    assert await count(db, CustomerEvent) == 0


@pytest.mark.usefixtures("clean_env", "keep_logging")
def test_cli(db_url: str, tmp_path: Path) -> None:
    env = {"SALESBOT__DATABASE__URL": db_url}
    path = write(tmp_path, "e.csv", "客户,活动,日期,参会人数\n浙二,骨科沙龙,2026-11-25,3\n协和医院,沙龙,2026-11-25,3\n")

    result = CliRunner().invoke(main, ["import", "events", str(path)], env=env)

    assert result.exit_code == 2, result.output
    assert "events: 2 rows — 1 created, 0 updated, 0 unchanged, 1 with errors" in result.stdout
    assert "第 3 行 [customer]: 找不到医院「协和医院」" in result.stderr
    refused = write(tmp_path, "p.csv", "客户,月份,金额,处方数\n浙一,2026-11,100,5\n")
    result = CliRunner().invoke(main, ["import", "purchases", str(refused)], env=env)
    assert result.exit_code == 2
    assert "不得统方" in result.stderr


async def test_a_gb18030_csv_as_chinese_excel_writes_it(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes("客户,新品,日期\n浙二,吻合器Y2,2026年11月3日\n".encode("gb18030"))

    report = await run(db, "trials", path)

    assert (report.created, report.errors) == (1, [])
    assert await trials(db) == [(ZJU2, "吻合器Y2", date(2026, 11, 3))]
