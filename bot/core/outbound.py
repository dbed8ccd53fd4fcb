"""Intents become outbox rows in the transaction that produced them (the transactional outbox): one row per
recipient, one per card update or shared card. ``bot.outbox`` delivers them after the commit."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.intents import Intent, SendCard, UpdateCard
from storage.models import OutboxMessage


def enqueue(session: AsyncSession, intents: Iterable[Intent], now: datetime) -> list[OutboxMessage]:
    """Add outbox rows for ``intents`` to the session: one per recipient, one per card update."""
    rows = [OutboxMessage(**values) for values in row_values(intents, now)]
    session.add_all(rows)
    return rows


def row_values(intents: Iterable[Intent], now: datetime) -> list[dict[str, Any]]:
    """The column values of the outbox rows for ``intents`` (``enqueue``'s rows; the pipeline inserts them for a
    whole batch with one Core executemany)."""
    rows: list[dict[str, Any]] = []
    for intent in intents:
        card_ref = getattr(getattr(intent, "card", None), "ref", None)
        together = isinstance(intent, UpdateCard) or (isinstance(intent, SendCard) and intent.shared)
        groups: Sequence[tuple[str, ...]] = [intent.user_ids] if together else [(u,) for u in intent.user_ids]
        for group in groups:
            payload = intent.model_dump(mode="json")
            payload["user_ids"] = list(group)
            rows.append(
                {
                    "channel": intent.channel,
                    "recipient": group[0],
                    "kind": intent.kind,
                    "payload": payload,
                    "card_ref": card_ref,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
            )
    return rows
