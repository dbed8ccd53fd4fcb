"""Import visit plans from CSV or XLSX (``salesbot import plans FILE``; docs/imports.md).

Columns ``rep, customer, date, period, purpose``. A row is one plan item: the rep (a user id with the rep role), the
customer (a name or alias, resolved as in chat), the day — or, for ``period = week``, any day of the week, stored
under its Monday (``plan_rule.span``). Keyed by (rep, customer, period, day), the unique key of ``plan_items``: a
re-import updates the purpose and never adds an item twice. Whether an item is done is derived from visits
(``bot.services.plan_rule``), so importing plans before or after the visits needs nothing recomputed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from bot.imports.batches import Outcome, audit_changes, start, write_and_record
from bot.imports.refs import CUSTOMER_ALIASES, REP_ALIASES, Customers, Reps, load_customers, load_reps
from bot.imports.table import (
    Column,
    ImportReport,
    Record,
    RowError,
    RowErrors,
    parse_day,
    required,
    text,
)
from bot.infra import audit
from bot.services import plan_rule
from storage.db import Database
from storage.limits import max_length
from storage.models import PlanItem
from storage.vocab import IMPORTED, PlanPeriod

PLAN_COLUMNS = (
    Column("rep", "代表", REP_ALIASES, required=True),
    Column("customer", "客户", CUSTOMER_ALIASES, required=True),
    Column("date", "日期", ("日期", "计划日期"), required=True),
    Column("period", "周期", ("周期", "计划周期", "计划类型")),
    Column("purpose", "目的", ("目的", "拜访目的", "计划目的")),
)

_PERIODS = {
    "day": PlanPeriod.DAY,
    "天": PlanPeriod.DAY,
    "日": PlanPeriod.DAY,
    "当天": PlanPeriod.DAY,
    "日计划": PlanPeriod.DAY,
    "week": PlanPeriod.WEEK,
    "周": PlanPeriod.WEEK,
    "星期": PlanPeriod.WEEK,
    "周计划": PlanPeriod.WEEK,
}
_PERIOD_NAMES = {PlanPeriod.DAY: "当天", PlanPeriod.WEEK: "当周"}
_PURPOSE_MAX = max_length(PlanItem, "purpose") or 200


@dataclass(frozen=True)
class _Plan:
    """A valid row: the plan item it names (``day`` is the Monday for a week item) and its span in UTC."""

    row: int
    rep_id: str
    customer_id: int
    customer_name: str
    period: PlanPeriod
    day: date
    starts_at: datetime
    ends_at: datetime
    purpose: str | None
    # Whether the file has the column: a file without it leaves the stored purpose alone.
    has_purpose: bool

    @property
    def key(self) -> tuple[str, int, str, date]:
        return (self.rep_id, self.customer_id, self.period.value, self.day)


def _period(errors: RowErrors, raw: str) -> PlanPeriod:
    if not raw:
        return PlanPeriod.DAY
    period = _PERIODS.get(raw.strip().lower())
    if period is None:
        errors.add("period", f"周期 '{raw}' 无效，可选: day、week（或 天、日、周；留空为 day）")
        return PlanPeriod.DAY
    return period


def _parse(record: Record, reps: Reps, customers: Customers, tz: ZoneInfo) -> tuple[_Plan | None, list[RowError]]:
    errors = RowErrors(record.row)
    cells = record.cells
    raw_rep = required(errors, cells, "rep", "代表", 64)
    rep_id = reps.check(errors, "rep", "代表", raw_rep) if raw_rep else None
    raw_customer = required(errors, cells, "customer", "客户", 200)
    customer = customers.resolve(errors, "customer", raw_customer) if raw_customer else None
    raw_day = required(errors, cells, "date", "日期", 40)
    day = parse_day(errors, "date", "日期", raw_day) if raw_day else None
    period = _period(errors, cells.get("period", ""))
    purpose = text(errors, cells, "purpose", "目的", _PURPOSE_MAX)
    if errors.items or rep_id is None or customer is None or day is None:
        return None, errors.items
    first, starts_at, ends_at = plan_rule.span(period, day, tz)
    return _Plan(
        record.row, rep_id, customer.id, customer.name, period, first, starts_at, ends_at, purpose, "purpose" in cells
    ), []


def _validate(
    records: Sequence[Record], reps: Reps, customers: Customers, tz: ZoneInfo, report: ImportReport
) -> list[_Plan]:
    """The valid rows; a row naming the same plan item as an earlier one (another alias of the hospital, another
    day of the same week) is refused, so what the file means never depends on row order. A hospital resolved by
    more than its exact name or alias is a note."""
    plans: list[_Plan] = []
    first_row: dict[tuple[str, int, str, date], int] = {}
    for record in records:
        plan, row_errors = _parse(record, reps, customers, tz)
        report.errors.extend(row_errors)
        if plan is None:
            continue
        if plan.key in first_row:
            what = f"{plan.rep_id}、{plan.customer_name}、{plan.day.isoformat()} {_PERIOD_NAMES[plan.period]}"
            message = f"与第 {first_row[plan.key]} 行是同一计划（{what}），请删除或合并其中一行"
            report.errors.append(RowError(plan.row, "customer", message))
            continue
        first_row[plan.key] = plan.row
        plans.append(plan)
        if note := customers.guess_note(plan.row, "customer", record.cells["customer"]):
            report.warnings.append(note)
    return plans


def _fields(plan: _Plan) -> dict[str, Any]:
    fields: dict[str, Any] = {"starts_at": plan.starts_at, "ends_at": plan.ends_at}
    if plan.has_purpose:
        fields["purpose"] = plan.purpose
    return fields


async def _write_batch(
    session: AsyncSession, plans: Sequence[_Plan], *, now: datetime, actor_id: str | None
) -> list[Outcome]:
    """Create each plan item or update the one with its key (purpose, span); one audit row per change."""
    found = await session.scalars(
        # The days and reps narrow through ix_plan_items_day_rep; the row values (SQLite >= 3.15, PostgreSQL) keep
        # exactly the batch's keys (alone, PostgreSQL tests them against every row: 0.2 s a batch at 10k items).
        select(PlanItem).where(
            PlanItem.day.in_(sorted({p.day for p in plans})),
            PlanItem.rep_id.in_(sorted({p.rep_id for p in plans})),
            tuple_(PlanItem.rep_id, PlanItem.customer_id, PlanItem.period, PlanItem.day).in_([p.key for p in plans]),
        )
    )
    existing = {(i.rep_id, i.customer_id, i.period, i.day): i for i in found}
    outcomes: list[Outcome] = []
    audited: list[tuple[PlanItem, str, dict[str, Any]]] = []
    for plan in plans:
        item = existing.get(plan.key)
        fields = _fields(plan)
        if item is None:
            item = plan_rule.new_item(
                plan.rep_id,
                plan.customer_id,
                plan.period,
                (plan.day, plan.starts_at, plan.ends_at),
                source=IMPORTED,
                created_by=actor_id,
                now=now,
                purpose=plan.purpose if plan.has_purpose else None,
            )
            session.add(item)
            keys = {"rep_id": plan.rep_id, "customer_id": plan.customer_id, "period": plan.period.value}
            created = audit.diff({}, {**keys, "day": plan.day, **fields})
            audited.append((item, "import.create", created))
            outcomes.append("created")
            continue
        changes = audit.diff({name: getattr(item, name) for name in fields}, fields)
        if not changes:
            outcomes.append("unchanged")
            continue
        for name, value in fields.items():
            setattr(item, name, value)
        item.updated_at = now
        audited.append((item, "import.update", changes))
        outcomes.append("updated")
    await audit_changes(session, "plan_item", audited, now=now, actor_id=actor_id)
    return outcomes


async def import_plans(
    db: Database,
    path: Path,
    *,
    now: datetime,
    tz: ZoneInfo,
    actor_id: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Create or update plan items from the file (``tz``: the org's time zone, which days and weeks are in);
    valid rows are written regardless of the others. Raises ImportFileError if the file is unreadable."""
    table, report = start(path, PLAN_COLUMNS, "plans", now)
    if report.errors:
        return report
    plans = _validate(table.records, await load_reps(db), await load_customers(db), tz, report)
    write = partial(_write_batch, now=now, actor_id=actor_id)
    return await write_and_record(
        db, "plan_item", write, table.records, plans, report, path, now=now, actor_id=actor_id, progress=progress
    )
