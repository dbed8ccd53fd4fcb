"""Import a customer's activity from CSV or XLSX: purchases, new-product trials, academic events (issue 14;
``salesbot import purchases|trials|events FILE``; docs/imports.md).

- purchases ``customer, month, amount``: one amount per customer and month (``month`` may be a day or a month,
  ``2026-11``; stored as the month's first day). Rows of one file for the same customer and month are added up (an
  ERP export by order or by day), and the file's total replaces the stored amount, so a re-import is idempotent.
- trials ``customer, product, date``: keyed by all three, nothing else to update.
- events ``customer, event, date, attendees``: keyed by (customer, event, date); a re-import updates attendees.

The customer is resolved as in chat (``refs.Customers``). A file with a column that could carry per-doctor or
prescription data is refused as a whole before any row is looked at: 统方 is forbidden for medical representatives,
so such data is never stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import partial
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from bot.imports.batches import Outcome, audit_changes, start, write_and_record
from bot.imports.refs import CUSTOMER_ALIASES, Customers, load_customers
from bot.imports.table import (
    Column,
    ImportReport,
    Record,
    RowError,
    RowErrors,
    parse_day,
    refused_headers,
    required,
)
from bot.infra import audit
from storage.db import Database
from storage.limits import max_length
from storage.models import Base, CustomerEvent, CustomerPurchase, CustomerTrial
from storage.vocab import IMPORTED

ActivityKind = Literal["purchases", "trials", "events"]

# A header containing one of these could carry per-doctor or prescription figures (统方): the file is refused.
PRESCRIPTION_WORDS = ("医生", "医师", "大夫", "处方", "统方", "doctor", "physician", "prescription", "prescriber")

_CUSTOMER = Column("customer", "客户", CUSTOMER_ALIASES, required=True)
_DAY = Column("date", "日期", ("日期", "day"), required=True)
COLUMNS: dict[ActivityKind, tuple[Column, ...]] = {
    "purchases": (
        _CUSTOMER,
        Column("month", "月份", ("月份", "年月", "月", "date", "日期", "采购日期", "购买日期"), required=True),
        Column(
            "amount", "金额", ("金额", "采购金额", "购买金额", "进货金额", "销售额", "amount(元)", "金额(元)"), True
        ),
    ),
    "trials": (
        _CUSTOMER,
        Column("product", "产品", ("产品", "试用产品", "新品", "产品名称"), required=True),
        Column("date", "日期", ("日期", "试用日期", "day"), required=True),
    ),
    "events": (
        _CUSTOMER,
        Column("event", "活动", ("活动", "学术活动", "活动名称", "会议", "会议名称"), required=True),
        Column("date", "日期", ("日期", "活动日期", "会议日期", "day"), required=True),
        Column("attendees", "参会人数", ("参会人数", "参会", "人数", "参会人员数"), required=True),
    ),
}

# 1234.50, 1,234.50, ¥1,234.50, ￥1234, 1234元 (spaces anywhere): at most two decimals.
_AMOUNT = re.compile(r"^(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d{1,2})?$")
_AMOUNT_MAX = Decimal("999999999999.99")  # NUMERIC(14, 2)
# 2026-11, 2026/11, 2026.11, 2026年11月, 202611.
_MONTH = re.compile(r"^(\d{4})(?:[-/.年](\d{1,2})月?|(\d{2}))$")
_PRODUCT_MAX = max_length(CustomerTrial, "product") or 100
_EVENT_MAX = max_length(CustomerEvent, "event") or 200


@dataclass(frozen=True)
class _Spec:
    """How one kind is stored: its model, audit entity, the key columns (customer first) and the value columns."""

    model: type[Base]
    entity: str
    key: tuple[str, ...]
    values: tuple[str, ...]


_SPECS: dict[ActivityKind, _Spec] = {
    "purchases": _Spec(CustomerPurchase, "customer_purchase", ("customer_id", "month"), ("amount",)),
    "trials": _Spec(CustomerTrial, "customer_trial", ("customer_id", "product", "day"), ()),
    "events": _Spec(CustomerEvent, "customer_event", ("customer_id", "event", "day"), ("attendees",)),
}


@dataclass
class _Item:
    """A valid row (or, for purchases, the first row of a customer's month): its natural key and its values."""

    row: int
    key: tuple[Any, ...]
    values: dict[str, Any] = field(default_factory=dict)


def _refuse_prescriptions(headers: Sequence[str]) -> RowError | None:
    found = refused_headers(headers, PRESCRIPTION_WORDS)
    if not found:
        return None
    columns = "、".join(f"「{h}」" for h in found)
    message = (
        f"文件含有列 {columns}，可能是医生个人或处方数据。按规定不得统方，这类数据不能导入；"
        "请删除这些列后重新导入（只需客户级的数据）"
    )
    return RowError(1, None, message)


def _amount(errors: RowErrors, raw: str) -> Decimal | None:
    cleaned = re.sub(r"\s+", "", raw).removeprefix("¥").removeprefix("￥").removesuffix("元")
    if cleaned.startswith("-") and _AMOUNT.match(cleaned[1:]):
        errors.add("amount", f"金额 '{raw}' 是负数，请填写 0 或正数（退货请在 ERP 里冲减后重新导出）")
        return None
    if not _AMOUNT.match(cleaned):
        errors.add("amount", f"金额 '{raw}' 无法识别，请填写以元为单位的数字，最多两位小数，如 1234.50")
        return None
    try:
        value = Decimal(cleaned.replace(",", ""))
    except InvalidOperation:  # pragma: no cover - the pattern admits only digits
        errors.add("amount", f"金额 '{raw}' 无法识别，请填写以元为单位的数字，如 1234.50")
        return None
    if value > _AMOUNT_MAX:
        errors.add("amount", f"金额 '{raw}' 过大，请检查单位是否为元")
        return None
    return value.quantize(Decimal("0.01"))


def _month(errors: RowErrors, raw: str) -> date | None:
    m = _MONTH.match(raw.strip())
    if m is not None:
        year, month, compact = m.groups()
        number = int(month or compact)
        if 1 <= number <= 12:
            return date(int(year), number, 1)
    probe = RowErrors(errors.row)
    day = parse_day(probe, "month", "月份", raw)
    if day is None:
        errors.add("month", f"月份 '{raw}' 无法识别，请写成 2026-11 或 2026-11-15 这样的月份或日期")
        return None
    return day.replace(day=1)


def _attendees(errors: RowErrors, raw: str) -> int | None:
    if not re.fullmatch(r"\d{1,6}", raw.strip()):
        errors.add("attendees", f"参会人数 '{raw}' 无效，请填写 0 或正整数")
        return None
    return int(raw.strip())


def _parse(kind: ActivityKind, record: Record, customers: Customers) -> _Item | RowErrors:
    errors = RowErrors(record.row)
    cells = record.cells
    raw_customer = required(errors, cells, "customer", "客户", 200)
    customer = customers.resolve(errors, "customer", raw_customer) if raw_customer else None
    key: list[Any] = [customer.id if customer else None]
    values: dict[str, Any] = {}
    if kind == "purchases":
        raw_month = required(errors, cells, "month", "月份", 40)
        key.append(_month(errors, raw_month) if raw_month else None)
        raw_amount = required(errors, cells, "amount", "金额", 40)
        values["amount"] = _amount(errors, raw_amount) if raw_amount else None
    else:
        name_key, label, limit = (
            ("product", "产品", _PRODUCT_MAX) if kind == "trials" else ("event", "活动", _EVENT_MAX)
        )
        key.append(required(errors, cells, name_key, label, limit))
        raw_day = required(errors, cells, "date", "日期", 40)
        key.append(parse_day(errors, "date", "日期", raw_day) if raw_day else None)
        if kind == "events":
            raw_attendees = required(errors, cells, "attendees", "参会人数", 20)
            values["attendees"] = _attendees(errors, raw_attendees) if raw_attendees else None
    if errors.items:
        return errors
    return _Item(record.row, tuple(key), values)


def _validate(kind: ActivityKind, records: Sequence[Record], customers: Customers, report: ImportReport) -> list[_Item]:
    """The valid items. Purchases of one customer and month are added up under the month's first row; if one of
    those rows has an error the month is not written at all (a partial total would replace the stored one). For
    trials and events, a row repeating an earlier row's key (another alias of the hospital) is refused."""
    items: dict[tuple[Any, ...], _Item] = {}
    tainted: dict[tuple[Any, ...], int] = {}  # a purchase month with a bad row → that row
    rows: dict[tuple[Any, ...], list[int]] = {}  # a purchase month → the rows added up in it
    for record in records:
        parsed = _parse(kind, record, customers)
        if isinstance(parsed, RowErrors):
            report.errors.extend(parsed.items)
            partial_key = _purchase_key(kind, record, customers)
            if partial_key is not None:
                tainted.setdefault(partial_key, record.row)
            continue
        if note := customers.guess_note(parsed.row, "customer", record.cells["customer"]):
            report.warnings.append(note)
        earlier = items.get(parsed.key)
        if earlier is None:
            items[parsed.key] = parsed
            rows[parsed.key] = [parsed.row]
        elif kind == "purchases":
            earlier.values["amount"] += parsed.values["amount"]
            rows[parsed.key].append(parsed.row)
        else:
            what = "产品" if kind == "trials" else "活动"
            message = f"与第 {earlier.row} 行是同一条记录（同一客户、{what}和日期），请删除其中一行"
            report.errors.append(RowError(parsed.row, "customer", message))
    for key, bad_row in tainted.items():
        if items.pop(key, None) is not None:
            for row in rows[key]:
                message = f"同一客户同一月份的第 {bad_row} 行有错误，本月金额未导入；请改正后重新导入"
                report.errors.append(RowError(row, "amount", message))
    for key, item in list(items.items()):
        if kind == "purchases" and item.values["amount"] > _AMOUNT_MAX:
            del items[key]
            for row in rows[key]:
                report.errors.append(RowError(row, "amount", "同一客户同一月份的金额合计过大，请检查单位是否为元"))
    return list(items.values())


def _purchase_key(kind: ActivityKind, record: Record, customers: Customers) -> tuple[Any, ...] | None:
    """A purchase row's (customer, month) when both are readable, whatever else is wrong with it."""
    if kind != "purchases":
        return None
    probe = RowErrors(record.row)
    raw_customer, raw_month = record.cells.get("customer", ""), record.cells.get("month", "")
    customer = customers.resolve(probe, "customer", raw_customer) if raw_customer else None
    month = _month(probe, raw_month) if raw_month else None
    return (customer.id, month) if customer is not None and month is not None else None


def _audited(values: dict[str, Any]) -> dict[str, Any]:
    return {name: str(value) if isinstance(value, Decimal) else value for name, value in values.items()}


async def _write_batch(
    session: AsyncSession, items: Sequence[_Item], *, spec: _Spec, now: datetime, actor_id: str | None
) -> list[Outcome]:
    """Create each row or update the one with its key; one audit row per create or change."""
    model: Any = spec.model
    key_columns = [getattr(model, name) for name in spec.key]
    found = await session.scalars(
        select(model).where(
            model.customer_id.in_(sorted({item.key[0] for item in items})),
            tuple_(*key_columns).in_([item.key for item in items]),
        )
    )
    existing = {tuple(getattr(row, name) for name in spec.key): row for row in found}
    outcomes: list[Outcome] = []
    audited: list[tuple[Any, str, dict[str, Any]]] = []
    for item in items:
        row = existing.get(item.key)
        if row is None:
            keys = dict(zip(spec.key, item.key, strict=True))
            row = model(**keys, **item.values, source=IMPORTED, created_at=now, updated_at=now)
            session.add(row)
            audited.append((row, "import.create", audit.diff({}, _audited({**keys, **item.values}))))
            outcomes.append("created")
            continue
        changes = audit.diff(_audited({name: getattr(row, name) for name in item.values}), _audited(item.values))
        if not changes:
            outcomes.append("unchanged")
            continue
        for name, value in item.values.items():
            setattr(row, name, value)
        row.updated_at = now
        audited.append((row, "import.update", changes))
        outcomes.append("updated")
    await audit_changes(session, spec.entity, audited, now=now, actor_id=actor_id)
    return outcomes


async def import_activity(
    db: Database,
    kind: ActivityKind,
    path: Path,
    *,
    now: datetime,
    actor_id: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Create or update the customers' purchases, trials or events from the file; valid rows are written regardless
    of the others. Raises ImportFileError if the file is unreadable."""
    table, report = start(path, COLUMNS[kind], kind, now, refuse=_refuse_prescriptions)
    if report.errors:
        return report
    items = _validate(kind, table.records, await load_customers(db), report)
    spec = _SPECS[kind]
    write = partial(_write_batch, spec=spec, now=now, actor_id=actor_id)
    return await write_and_record(
        db, spec.entity, write, table.records, items, report, path, now=now, actor_id=actor_id, progress=progress
    )
