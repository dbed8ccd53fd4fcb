"""Helpers of the plan and visit import tests: files written into ``tmp_path``, counts, audit rows and the errors of
a report by (row, column)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from bot.imports.table import ImportReport
from storage.db import Database
from storage.models import AuditLog, Base


def write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


async def count(db: Database, model: type[Base]) -> int:
    async with db.read() as session:
        return (await session.scalar(select(func.count()).select_from(model))) or 0


async def audits(db: Database, entity: str, action: str) -> list[AuditLog]:
    async with db.read() as session:
        query = select(AuditLog).where(AuditLog.action == action, AuditLog.entity == entity)
        return list(await session.scalars(query.order_by(AuditLog.id)))


def errors_of(report: ImportReport) -> dict[tuple[int, str | None], str]:
    return {(e.row, e.column): e.message for e in report.errors}
