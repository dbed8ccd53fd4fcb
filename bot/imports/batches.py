"""Writing an import's valid rows: in file order, in batches of one transaction each, with progress per row.

A batch the database still rejects is retried row by row, so one bad row never rolls back the others; the rows
that fail alone are reported like any other row error. The import's summary is an audit row of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.imports.table import Column, ImportReport, Kind, Record, RowError, Table, load_table
from bot.infra import audit
from storage.db import Database

log = logging.getLogger(__name__)

BATCH_SIZE = 200

Outcome = Literal["created", "updated", "unchanged"]


class Row(Protocol):
    """A validated row: knows the spreadsheet row it came from."""

    @property
    def row(self) -> int: ...


ItemT = TypeVar("ItemT", bound=Row)
# Writes (creates or updates) the items in the session; one outcome per item, in order.
WriteBatch = Callable[[AsyncSession, Sequence[ItemT]], Awaitable[list[Outcome]]]


def start(
    path: Path,
    columns: Sequence[Column],
    kind: Kind,
    now: datetime,
    refuse: Callable[[Sequence[str]], RowError | None] | None = None,
) -> tuple[Table, ImportReport]:
    """The file's rows and the import's report, which holds the header errors if any (then nothing is to be written);
    ``refuse``: see ``load_table``.

    Raises ImportFileError when the file cannot be read."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    table = load_table(path, columns, refuse)
    return table, ImportReport(kind=kind, total=len(table.records), errors=list(table.header_errors))


async def audit_changes(
    session: AsyncSession,
    entity: str,
    audited: Sequence[tuple[Any, str, dict[str, Any]]],
    *,
    now: datetime,
    actor_id: str | None,
) -> None:
    """One audit row per (row, action, changes) of a batch, after a flush (new rows get their ids from the
    INSERT)."""
    await session.flush()
    for row, action, changes in audited:
        audit.record(
            session,
            at=now,
            action=action,
            entity=entity,
            entity_id=row.id,
            actor_id=actor_id,
            changes=json_safe(changes),
        )


def json_safe(changes: dict[str, Any]) -> dict[str, Any]:
    """An ``audit.diff`` with its instants and days as ISO text (the audit row is JSON)."""
    return {name: [_iso(value) for value in pair] for name, pair in changes.items()}


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime | date) else value


def _db_reason(exc: SQLAlchemyError) -> str:
    reason = str(exc.orig) if isinstance(exc, DBAPIError) else type(exc).__name__
    return reason[:200]


async def _write_items(
    db: Database, entity: str, write: WriteBatch[ItemT], items: Sequence[ItemT]
) -> tuple[dict[int, Outcome], list[RowError]]:
    """Write one batch; if the DB rejects it, retry row by row and report the rows that still fail."""
    try:
        async with db.transaction() as session:
            outcomes = await write(session, items)
        return dict(zip((i.row for i in items), outcomes, strict=True)), []
    except SQLAlchemyError:
        log.warning("import: batch of %s %s rows failed, retrying row by row", len(items), entity, exc_info=True)
    results: dict[int, Outcome] = {}
    errors = []
    for item in items:
        try:
            async with db.transaction() as session:
                [results[item.row]] = await write(session, [item])
        except SQLAlchemyError as exc:
            log.warning("import: %s row %s rejected by the database: %s", entity, item.row, exc)
            message = f"保存失败（数据库拒绝：{_db_reason(exc)}），请检查是否与已有记录冲突"
            errors.append(RowError(item.row, None, message))
    return results, errors


def _chunks(records: Sequence[Record], size: int) -> Iterator[Sequence[Record]]:
    for start in range(0, len(records), size):
        yield records[start : start + size]


async def _write_all(
    db: Database,
    entity: str,
    write: WriteBatch[ItemT],
    records: Sequence[Record],
    items: Sequence[ItemT],
    report: ImportReport,
    progress: Callable[[int], None] | None,
) -> None:
    """Write the valid items in file order, batch by batch, reporting progress for every record."""
    by_row = {item.row: item for item in items}
    done = 0
    for chunk in _chunks(records, BATCH_SIZE):
        batch = [by_row[record.row] for record in chunk if record.row in by_row]
        if batch:
            outcomes, errors = await _write_items(db, entity, write, batch)
            report.errors.extend(errors)
            report.created += sum(1 for o in outcomes.values() if o == "created")
            report.updated += sum(1 for o in outcomes.values() if o == "updated")
            report.unchanged += sum(1 for o in outcomes.values() if o == "unchanged")
        for _ in chunk:
            done += 1
            if progress is not None:
                progress(done)


async def _record_summary(
    db: Database, action: str, path: Path, report: ImportReport, *, now: datetime, actor_id: str | None
) -> None:
    changes = {
        "file": path.name,
        "total": report.total,
        "created": report.created,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "errors": len(report.errors),
    }
    async with db.transaction() as session:
        audit.record(session, at=now, action=action, entity="import", actor_id=actor_id, changes=changes)
    log.info("import %s from %s: %s", report.kind, path.name, changes)


async def write_and_record(
    db: Database,
    entity: str,
    write: WriteBatch[ItemT],
    records: Sequence[Record],
    items: Sequence[ItemT],
    report: ImportReport,
    path: Path,
    *,
    now: datetime,
    actor_id: str | None,
    progress: Callable[[int], None] | None,
) -> ImportReport:
    """Write the valid rows, sort the errors by row (a warning about a row that failed is dropped), and record the
    import's summary (``import.<kind>``) in the audit trail."""
    await _write_all(db, entity, write, records, items, report, progress)
    report.errors.sort(key=lambda e: e.row)
    failed = {e.row for e in report.errors}
    report.warnings = sorted((w for w in report.warnings if w.row not in failed), key=lambda w: w.row)
    await _record_summary(db, f"import.{report.kind}", path, report, now=now, actor_id=actor_id)
    return report
