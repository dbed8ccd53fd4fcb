"""Conversation state for multi-turn dialogs, stored per (channel, user) with an expiry."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Conversation


@dataclass
class ConversationState:
    """The dialog a user is in (``flow`` None = none) and its data. Mutate, then ``save``."""

    channel: str
    user_id: str
    flow: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    expired: bool = False
    _row: Conversation | None = None

    def start(self, flow: str, data: dict[str, Any] | None = None) -> None:
        self.flow = flow
        self.data = dict(data or {})

    def clear(self) -> None:
        self.flow = None
        self.data = {}


async def load(session: AsyncSession, channel: str, user_id: str, now: datetime) -> ConversationState:
    """Load (and row-lock on PostgreSQL) the user's state; an expired dialog comes back empty with ``expired``."""
    row = await session.scalar(
        select(Conversation).where(Conversation.channel == channel, Conversation.user_id == user_id).with_for_update()
    )
    if row is None:
        return ConversationState(channel, user_id)
    # A deep copy: handlers mutate nested values in place, and the row's loaded value must stay as it was, or the
    # ORM sees no change to write.
    state = ConversationState(channel, user_id, row.flow, copy.deepcopy(row.data or {}), _row=row)
    if row.flow is not None and row.expires_at is not None and row.expires_at <= now:
        state.clear()
        state.expired = True
    return state


def save(session: AsyncSession, state: ConversationState, now: datetime, ttl: timedelta) -> None:
    """Write the state back in the surrounding transaction."""
    row = state._row
    if row is None:
        if state.flow is None:
            return
        row = Conversation(channel=state.channel, user_id=state.user_id, version=0)
        session.add(row)
        state._row = row
    row.flow = state.flow
    row.data = dict(state.data)
    row.expires_at = now + ttl if state.flow is not None else None
    row.version = (row.version or 0) + 1
    row.updated_at = now
