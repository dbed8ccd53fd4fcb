"""Trials and academic events logged in chat (issue 14, docs/imports.md "Logging trials and events in chat").

The same rows as the file import (``bot.imports.activity``): a trial is keyed by (customer, product, day), an event
by (customer, event, day). Chat only creates: a line repeating a stored key is "already logged", never a second row
and never an update (the attendees of a logged event are corrected by re-importing or by an admin). Each created row
has one audit row, like the import's, with the chat channel and the person who typed it. There is no doctor field:
per-doctor or prescription data (统方) is never stored; a word like 处方 in an event's name is just its name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.infra import audit
from storage.limits import max_length
from storage.models import CustomerEvent, CustomerTrial, User
from storage.vocab import Role

SOURCE = "chat"  # ``customer_trials.source`` / ``customer_events.source`` of a row logged in chat
MARKETING = "marketing"
PRODUCT_MAX = max_length(CustomerTrial, "product") or 100
EVENT_MAX = max_length(CustomerEvent, "event") or 200
ATTENDEES_MAX = 999_999


def may_log(user: User) -> bool:
    """Reps, and the marketing department's members and head."""
    roles = set(user.roles or [Role.REP])
    if Role.REP in roles:
        return True
    return user.department == MARKETING and bool(roles & {Role.MEMBER, Role.HEAD})


def _json_safe(changes: dict[str, Any]) -> dict[str, Any]:
    """The audit diff with its days as ISO text (the audit row is JSON), as the import writes it."""
    return {name: [v.isoformat() if isinstance(v, date) else v for v in pair] for name, pair in changes.items()}


@dataclass(frozen=True)
class Logged:
    """The row, and whether this message created it (False: it was already logged)."""

    row_id: int
    created: bool


async def _create(
    session: AsyncSession,
    model: Any,
    entity: str,
    key: dict[str, Any],
    values: dict[str, Any],
    *,
    actor: User,
    now: datetime,
    channel: str,
) -> Logged:
    found = await session.scalar(select(model).filter_by(**key))
    if found is not None:
        return Logged(found.id, False)
    row = model(**key, **values, source=SOURCE, created_at=now, updated_at=now)
    try:
        async with session.begin_nested():  # a concurrent message with the same key: that one's row stands
            session.add(row)
            await session.flush()
    except IntegrityError:
        found = await session.scalar(select(model).filter_by(**key))
        if found is None:  # pragma: no cover - another constraint
            raise
        return Logged(found.id, False)
    audit.record(
        session,
        at=now,
        action="chat.create",
        entity=entity,
        entity_id=row.id,
        actor_id=actor.id,
        channel=channel,
        changes=_json_safe(audit.diff({}, {**key, **values, "source": SOURCE})),
    )
    return Logged(row.id, True)


async def log_trial(
    session: AsyncSession, *, customer_id: int, product: str, day: date, actor: User, now: datetime, channel: str
) -> Logged:
    key = {"customer_id": customer_id, "product": product, "day": day}
    return await _create(session, CustomerTrial, "customer_trial", key, {}, actor=actor, now=now, channel=channel)


async def log_event(
    session: AsyncSession,
    *,
    customer_id: int,
    event: str,
    day: date,
    attendees: int,
    actor: User,
    now: datetime,
    channel: str,
) -> Logged:
    key = {"customer_id": customer_id, "event": event, "day": day}
    values = {"attendees": attendees}
    return await _create(session, CustomerEvent, "customer_event", key, values, actor=actor, now=now, channel=channel)
