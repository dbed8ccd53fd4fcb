"""Append-only audit trail: every create/edit of a visit, every import and config-relevant change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict, Unpack

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


class Who(TypedDict):
    """Who did it, when and through which channel (None for both: the bot's own job)."""

    at: datetime
    actor_id: str | None
    channel: str | None


@dataclass(frozen=True)
class Trail:
    """The audit rows about one kind of entity (``task_card``, ``visit``, a denial's): ``trail(session, id, action,
    changes, at=…, actor_id=…, channel=…)`` is ``record`` with the entity given once."""

    entity: str

    def __call__(
        self,
        session: AsyncSession,
        entity_id: str | int | None,
        action: str,
        changes: dict[str, Any],
        **who: Unpack[Who],
    ) -> AuditLog:
        return record(session, action=action, entity=self.entity, entity_id=entity_id, changes=changes, **who)


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
