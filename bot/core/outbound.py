"""Intents become outbox rows in the transaction that produced them (the transactional outbox): one row per
recipient, one per card update or shared card. ``bot.outbox`` delivers them after the commit."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.intents import Intent, SendCard, SendMedia, UpdateCard
from bot.infra.filestore import token_of
from storage.models import AttachmentGrant, OutboxMessage


def enqueue(session: AsyncSession, intents: Iterable[Intent], now: datetime) -> list[OutboxMessage]:
    """Add outbox rows for ``intents`` to the session: one per recipient, one per card update."""
    intents = list(intents)
    rows = [OutboxMessage(**values) for values in row_values(intents, now)]
    session.add_all(rows)
    session.add_all([AttachmentGrant(**values) for values in grant_values(intents, now)])
    return rows


def grant_values(intents: Iterable[Intent], now: datetime) -> list[dict[str, Any]]:
    """``attachment_grants`` rows for the stored files these intents send: whoever receives a file may read it on
    the console too (``bot.services.attachments.may_read``). Written in the same transaction as the outbox rows."""
    return [
        {"attachment_token": token, "user_id": user_id, "granted_at": now}
        for intent in intents
        if isinstance(intent, SendMedia) and (token := token_of(intent.media_id)) is not None
        for user_id in intent.user_ids
    ]


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
