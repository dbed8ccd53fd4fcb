"""Imported official holiday arrangements in the database (``calendar_days``): write an import, read them back.

``salesbot calendar import`` writes through :func:`import_arrangement`; the runtime reads every row with
:func:`load_official_days` at start and on config reload and attaches them to the working calendar
(:func:`bot.calendar.workcal.with_official_days`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import delete, or_, select

from bot.calendar.holiday_notice import Arrangement, Problem
from bot.calendar.workcal import OfficialDay, OfficialDays
from bot.infra import audit
from storage.db import Database
from storage.models import CalendarDay

__all__ = ["ImportResult", "import_arrangement", "load_official_days"]

SOURCE_MAX = 200


@dataclass
class ImportResult:
    """What an import did (nothing when ``conflicts`` is not empty)."""

    year: int
    added: int = 0
    unchanged: int = 0
    replaced: int = 0  # rows deleted by --replace (the year's rows and rows of the listed dates)
    kept: int = 0  # rows of the year already stored and not in the file (kept without --replace)
    conflicts: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.conflicts


def _to_official(row: CalendarDay) -> OfficialDay:
    return OfficialDay(row.day, row.kind == "closed", row.year, row.name, row.source)


async def load_official_days(db: Database) -> OfficialDays:
    """Every imported day, for the working calendar."""
    async with db.read() as s:
        rows = await s.scalars(select(CalendarDay).order_by(CalendarDay.day))
        return OfficialDays(_to_official(r) for r in rows)


async def import_arrangement(
    db: Database, arr: Arrangement, *, source: str, now: datetime, replace: bool = False
) -> ImportResult:
    """Store a validated arrangement in one transaction.

    Re-importing the same days changes nothing. Without ``replace`` a stored row for a listed date that says
    something else is a conflict and nothing is written; with ``replace`` the year's stored rows (and any row for
    a listed date) are deleted first.
    """
    if not arr.ok or arr.year is None:
        raise ValueError("import_arrangement needs a parsed arrangement without errors")
    result = ImportResult(arr.year)
    source = source[:SOURCE_MAX]
    with contextlib.suppress(_Conflicts):  # raised to roll back: nothing written
        await _write(db, arr, result, source=source, now=now, replace=replace)
    return result


class _Conflicts(Exception):
    """Raised inside the transaction to roll it back."""


async def _write(
    db: Database, arr: Arrangement, result: ImportResult, *, source: str, now: datetime, replace: bool
) -> None:
    year = result.year
    listed = {d.day: d for d in arr.days}
    async with db.transaction() as s:
        if replace:
            gone = await s.execute(
                delete(CalendarDay).where(or_(CalendarDay.year == year, CalendarDay.day.in_(list(listed))))
            )
            result.replaced = int(getattr(gone, "rowcount", 0) or 0)
            stored: dict[date, CalendarDay] = {}
        else:
            rows = await s.scalars(
                select(CalendarDay).where(or_(CalendarDay.year == year, CalendarDay.day.in_(list(listed))))
            )
            stored = {r.day: r for r in rows}
        for day, new in listed.items():
            old = stored.get(day)
            if old is None:
                s.add(CalendarDay(day=day, year=year, kind=new.kind, name=new.name, source=source, imported_at=now))
                result.added += 1
            elif (old.kind, old.name, old.year) == (new.kind, new.name, year):
                result.unchanged += 1
            else:
                result.conflicts.append(
                    Problem(
                        new.line,
                        f"{day.isoformat()} 已导入为 {old.kind}“{old.name}”（{old.year} 年，{old.source}），"
                        f"文件里是 {new.kind}“{new.name}”：用 --replace 替换",
                        f"{day.isoformat()} is stored as {old.kind} {old.name!r} (year {old.year}, {old.source}), "
                        f"the file says {new.kind} {new.name!r}: pass --replace to replace it",
                    )
                )
        result.kept = sum(1 for d, r in stored.items() if d not in listed and r.year == year)
        if result.conflicts:
            raise _Conflicts
        audit.record(
            s,
            at=now,
            action="calendar.import",
            entity="calendar",
            entity_id=year,
            changes={
                "source": source,
                "replace": replace,
                "added": result.added,
                "unchanged": result.unchanged,
                "replaced": result.replaced,
            },
        )
