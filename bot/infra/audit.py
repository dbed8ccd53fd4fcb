"""Append-only audit trail: every create/edit of a visit, every import and config-relevant change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditLog


def record(
    session: AsyncSession,
    *,
    at: datetime,
    action: str,
    entity: str,
    entity_id: str | int | None = None,
    actor_id: str | None = None,
    channel: str | None = None,
    changes: dict[str, Any] | None = None,
) -> AuditLog:
    """Add one audit row to the session (written with the surrounding transaction)."""
    row = AuditLog(
        at=at,
        actor_id=actor_id,
        channel=channel,
        action=action,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        changes=changes or {},
    )
    session.add(row)
    return row


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """``{field: [old, new]}`` for every field whose value changed."""
    return {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}


async def history(session: AsyncSession, entity: str, entity_id: str | int) -> list[AuditLog]:
    """The audit rows of one entity, oldest first."""
    rows = await session.scalars(
        select(AuditLog)
        .where(AuditLog.entity == entity, AuditLog.entity_id == str(entity_id))
        .order_by(AuditLog.at, AuditLog.id)
    )
    return list(rows)
