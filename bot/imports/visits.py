"""Import historic visits from CSV or XLSX (``salesbot import visits FILE``; docs/imports.md).

Columns ``rep, customer, ward, contacts, visited_at, objection, next_step, latitude, longitude``; each cell goes
through the rule the same text typed in chat goes through: the hospital through the chat matcher, the ward through
``match_ward``, contacts and the objection through the visit parser (unknown objection text → 其他 with the text as
its note), a location's distance through ``distance_to``. ``visited_at`` is org local time.

An imported visit is locked history (``source_channel = "import"``): reps cannot correct it in chat, an admin's
解锁 is refused too; it is corrected by fixing the file and importing it again. It is keyed by (rep, customer,
visited_at) among the imported visits, so a re-import updates a visit in place and never adds it twice; every
create or update is an audit row ``visit.import`` / ``visit.reimport`` naming the file and row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import VisitsConfig
from bot.imports.batches import Outcome, json_safe, start, write_and_record
from bot.imports.refs import CUSTOMER_ALIASES, REP_ALIASES, Customers, Reps, load_customers, load_reps
from bot.imports.table import (
    Column,
    ImportReport,
    Record,
    RowError,
    RowErrors,
    coordinates,
    parse_local_time,
    required,
)
from bot.infra import audit, i18n
from bot.parsing.visit_parser import KEY_ALIASES, Objection, parse_field_value
from bot.services import visits as svc
from storage.db import Database
from storage.models import Customer, Visit
from storage.vocab import IMPORTED


def _column(name: str, required: bool = False, extra: tuple[str, ...] = ()) -> Column:
    """A visit field's column: its header is what the chat takes as the field's key (异议, 下一步, next …)."""
    labels = tuple(i18n.t(locale, f"field.{name}") for locale in (i18n.ZH, i18n.EN))
    return Column(name, labels[0], tuple(dict.fromkeys((*labels, *KEY_ALIASES[name], *extra))), required)


VISIT_COLUMNS = (
    Column("rep", "代表", REP_ALIASES, required=True),
    _column("customer", required=True, extra=CUSTOMER_ALIASES),
    _column("ward"),
    _column("contacts"),
    _column("visited_at", required=True),
    _column("objection"),
    _column("next_step"),
    Column("latitude", "纬度", ("纬度", "lat")),
    Column("longitude", "经度", ("经度", "lon", "lng")),
)


@dataclass(frozen=True)
class _Visit:
    """A valid row: the visit's natural key and the columns to store (``fields``)."""

    row: int
    rep_id: str
    customer_id: int
    visited_at: datetime  # UTC
    fields: dict[str, Any]

    @property
    def key(self) -> tuple[str, int, datetime]:
        return (self.rep_id, self.customer_id, self.visited_at)


@dataclass(frozen=True)
class _Rules:
    """What a row is checked against: the directory, the visit rules of the config, the org's zone, now."""

    reps: Reps
    customers: Customers
    cfg: VisitsConfig
    tz: ZoneInfo
    now: datetime


def _when(errors: RowErrors, cells: dict[str, str], rules: _Rules) -> datetime | None:
    raw = required(errors, cells, "visited_at", "拜访时间", 40)
    when = parse_local_time(errors, "visited_at", "拜访时间", raw, rules.tz) if raw else None
    if when is None:
        return None
    # History may be of any age (no backdate limit), but a visit cannot lie in the future, as in chat.
    if when > rules.now + timedelta(minutes=rules.cfg.future_tolerance_minutes):
        shown = when.astimezone(rules.tz).strftime("%Y-%m-%d %H:%M")
        errors.add("visited_at", i18n.t(i18n.ZH, "visit.future", when=shown))
        return None
    return when.astimezone(UTC)


def _notes(errors: RowErrors, cells: dict[str, str], customer: Customer, rules: _Rules) -> dict[str, Any]:
    """Ward, contacts, objection and next step, each by the chat's rule; an empty cell is an empty field."""
    now_local = rules.now.astimezone(rules.tz)
    fields: dict[str, Any] = {"ward": None, "contacts": [], "objection": None, "objection_note": None}
    if ward := cells.get("ward", ""):
        fields["ward"] = svc.match_ward(customer, ward)
        if fields["ward"] is None:
            wards = "、".join(customer.wards or [])
            errors.add("ward", i18n.t(i18n.ZH, "visit.unknown_ward", customer=customer.name, ward=ward, wards=wards))
    if contacts := cells.get("contacts", ""):
        people, _ = parse_field_value("contacts", contacts, now_local, rules.cfg.objections)
        fields["contacts"] = people or []
    if objection := cells.get("objection", ""):
        parsed, _ = parse_field_value("objection", objection, now_local, rules.cfg.objections)
        if isinstance(parsed, Objection):
            fields["objection"], fields["objection_note"] = parsed
        else:  # 无 / none, or free text without a catch-all objection configured
            choices = "、".join(rules.cfg.objections)
            message = i18n.t(i18n.ZH, "visit.bad_objection", value=objection, choices=choices)
            errors.add("objection", f"{message}（没有异议请留空）")
    fields["next_step"] = cells.get("next_step") or None
    probe = svc.VisitDraft(**fields)
    for name, limit in svc.overlong_fields(probe):  # the chat's limits (the columns' lengths)
        column = "objection" if name == "objection_note" else name  # the note is what the cell said
        errors.add(column, f"{i18n.t(i18n.ZH, f'field.{column}')}超过 {limit} 个字符，请缩短")
    return fields


def _location(
    errors: RowErrors, cells: dict[str, str], customer: Customer, when: datetime, rules: _Rules
) -> tuple[dict[str, Any], RowError | None]:
    """The location evidence columns (``missing`` without coordinates) and a warning when it is far from the
    customer (kept, as in chat, where such a location is questioned)."""
    where = coordinates(errors, cells)
    latitude, longitude = where.get("latitude"), where.get("longitude")
    if latitude is None or longitude is None:
        return {
            "latitude": None,
            "longitude": None,
            "distance_m": None,
            "location_at": None,
            "location_status": "missing",
        }, None
    distance = svc.distance_to(customer, latitude, longitude)
    fields = {
        "latitude": latitude,
        "longitude": longitude,
        "distance_m": distance,
        "location_at": when,  # the file has no time of its own for the location
        "location_status": "ok",
    }
    if distance is None or distance <= rules.cfg.far_warning_meters:
        return fields, None
    far = i18n.fmt_distance(distance, i18n.ZH)
    limit = i18n.fmt_distance(rules.cfg.far_warning_meters, i18n.ZH)
    return fields, RowError(errors.row, "latitude", f"定位距 {customer.name} {far}（超过 {limit}），已导入")


def _parse(record: Record, rules: _Rules) -> tuple[_Visit | None, list[RowError], RowError | None]:
    errors = RowErrors(record.row)
    cells = record.cells
    raw_rep = required(errors, cells, "rep", "代表", 64)
    rep_id = rules.reps.check(errors, "rep", "代表", raw_rep) if raw_rep else None
    raw_customer = required(errors, cells, "customer", "医院", 200)
    customer = rules.customers.resolve(errors, "customer", raw_customer) if raw_customer else None
    when = _when(errors, cells, rules)
    if customer is None or when is None:
        coordinates(errors, cells)  # still report a bad location in this row
        return None, errors.items, None
    fields = _notes(errors, cells, customer, rules)
    location, warning = _location(errors, cells, customer, when, rules)
    if errors.items or rep_id is None:
        return None, errors.items, None
    return _Visit(record.row, rep_id, customer.id, when, {**fields, **location, "visited_at": when}), [], warning


def _validate(records: Sequence[Record], rules: _Rules, report: ImportReport) -> list[_Visit]:
    """The valid rows; a row with the key of an earlier row (same rep, customer and time) is refused. Notes: a
    hospital resolved by more than its exact name or alias, a location far from the hospital."""
    visits: list[_Visit] = []
    first_row: dict[tuple[str, int, datetime], int] = {}
    for record in records:
        visit, errors, warning = _parse(record, rules)
        report.errors.extend(errors)
        if visit is None:
            continue
        if visit.key in first_row:
            message = f"与第 {first_row[visit.key]} 行是同一次拜访（同一代表、医院和拜访时间），请删除或合并其中一行"
            report.errors.append(RowError(visit.row, "visited_at", message))
            continue
        first_row[visit.key] = visit.row
        visits.append(visit)
        guessed = rules.customers.guess_note(visit.row, "customer", record.cells["customer"])
        report.warnings.extend(note for note in (guessed, warning) if note is not None)
    return visits


def _audited(snapshot: dict[str, Any], file: str, row: int) -> dict[str, Any]:
    return {**snapshot, "file": file, "row": row}


async def _write_batch(
    session: AsyncSession, visits: Sequence[_Visit], *, file: str, now: datetime, actor_id: str | None
) -> list[Outcome]:
    """Create each visit, or update the imported visit with its key; an audit row per change."""
    found = await session.scalars(
        select(Visit).where(
            Visit.source_channel == IMPORTED,
            Visit.rep_id.in_(sorted({v.rep_id for v in visits})),
            Visit.visited_at.in_(sorted({v.visited_at for v in visits})),
        )
    )
    existing = {(v.rep_id, v.customer_id, v.visited_at.astimezone(UTC)): v for v in found}
    outcomes: list[Outcome] = []
    created: list[tuple[Visit, int]] = []
    for item in visits:
        visit = existing.get(item.key)
        if visit is None:
            visit = Visit(
                rep_id=item.rep_id,
                customer_id=item.customer_id,
                locked=True,
                source_channel=IMPORTED,
                created_at=now,
                updated_at=now,
                **item.fields,
            )
            session.add(visit)
            created.append((visit, item.row))
            outcomes.append("created")
            continue
        delta = audit.diff({name: getattr(visit, name) for name in item.fields}, item.fields)
        if not delta:
            outcomes.append("unchanged")
            continue
        for name, value in item.fields.items():
            setattr(visit, name, value)
        visit.updated_at = now
        changes = _audited(json_safe(delta), file, item.row)
        svc.audit_visit(session, visit.id, "visit.reimport", changes, at=now, actor_id=actor_id, channel=IMPORTED)
        outcomes.append("updated")
    await session.flush()  # ids exist only after the INSERT
    for visit, row in created:
        changes = _audited(svc.snapshot(visit), file, row)
        svc.audit_visit(session, visit.id, "visit.import", changes, at=now, actor_id=actor_id, channel=IMPORTED)
    return outcomes


async def import_visits(
    db: Database,
    path: Path,
    *,
    now: datetime,
    cfg: VisitsConfig,
    tz: ZoneInfo,
    actor_id: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Create or update imported visits from the file (``cfg``: the objections and the far-location rule; ``tz``:
    the zone ``visited_at`` is written in); valid rows are written regardless of the others, a far location is a
    warning. Raises ImportFileError if the file is unreadable."""
    table, report = start(path, VISIT_COLUMNS, "visits", now)
    if report.errors:
        return report
    rules = _Rules(await load_reps(db), await load_customers(db), cfg, tz, now)
    visits = _validate(table.records, rules, report)
    write = partial(_write_batch, file=path.name, now=now, actor_id=actor_id)
    return await write_and_record(
        db, "visit", write, table.records, visits, report, path, now=now, actor_id=actor_id, progress=progress
    )
