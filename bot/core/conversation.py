"""Conversation state for multi-turn dialogs, stored per (channel, user) with an expiry.

The pipeline loads the states of a whole batch of events with one SELECT and writes back only those that changed
(Core statements on the batch's connection: no ORM unit of work for bookkeeping).

A dialog may leave a note of the cards it has on screen (``EXIT_KEY``: the cards, and their status per way of
leaving). When the dialog ends without its own say-so (``取消`` typed to the help router, expiry, another dialog
started), those cards are settled in the same transaction, so no live-looking button is left behind."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.core.intents import UpdateCard
from bot.core.outbound import row_values
from cards.model import Card
from storage.models import Base, Conversation, OutboxMessage

_table = Base.metadata.tables[Conversation.__tablename__]
_outbox = Base.metadata.tables[OutboxMessage.__tablename__]

# Key of the dialog's exit note in ``data``: {"cards": [Card JSON], "status": {reason: text}}.
EXIT_KEY = "_exit"
CANCELLED, EXPIRED, REPLACED = "cancelled", "expired", "replaced"
_update = (
    update(_table)
    .where(_table.c.channel == bindparam("b_channel"), _table.c.user_id == bindparam("b_user_id"))
    .values(
        flow=bindparam("flow"),
        data=bindparam("data"),
        expires_at=bindparam("expires_at"),
        version=bindparam("version"),
        updated_at=bindparam("updated_at"),
    )
)


@dataclass(frozen=True)
class _Stored:
    """What the row held when it was loaded: ``save_many`` compares against it."""

    flow: str | None
    data: dict[str, Any]
    version: int


@dataclass
class ConversationState:
    """The dialog a user is in (``flow`` None = none) and its data. Mutate, then ``save_many``."""

    channel: str
    user_id: str
    flow: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    expired: bool = False
    _stored: _Stored | None = None
    # Cards of dialogs left in this transaction, settled by ``save_many``.
    leaving: list[Card] = field(default_factory=list)

    def start(self, flow: str, data: dict[str, Any] | None = None) -> None:
        self._leave(REPLACED)
        self.flow = flow
        self.data = dict(data or {})

    def clear(self, reason: str = CANCELLED) -> None:
        self._leave(reason)
        self.flow = None
        self.data = {}

    def settled(self) -> None:
        """The dialog has settled its own cards (submitted, cancelled by its button): nothing left to do on exit."""
        self.data.pop(EXIT_KEY, None)

    def _leave(self, reason: str) -> None:
        note = self.data.pop(EXIT_KEY, None)
        if not isinstance(note, dict):
            return
        status = str((note.get("status") or {}).get(reason) or "")
        for raw in note.get("cards") or []:
            try:
                card = Card.model_validate(raw)
            except ValueError:
                continue  # a note in an older shape: nothing to settle
            self.leaving.append(card.model_copy(update={"buttons": [], "status": status, "tone": "muted"}))

    @property
    def key(self) -> tuple[str, str]:
        return (self.channel, self.user_id)


def _copied(value: Any) -> Any:
    """A copy of JSON data (dicts, lists, scalars: what the ``data`` column holds), several times faster than
    ``copy.deepcopy``, which handles any object graph; the state is copied on every load and save."""
    if isinstance(value, dict):
        return {k: _copied(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copied(v) for v in value]
    return value


async def load_many(
    conn: AsyncConnection, keys: Iterable[tuple[str, str]], now: datetime, lock: bool = False
) -> dict[tuple[str, str], ConversationState]:
    """The state of each (channel, user id) in one SELECT (``lock``: FOR UPDATE, for PostgreSQL); a user without
    a row gets an empty state; an expired dialog comes back empty with ``expired``."""
    by_channel: dict[str, set[str]] = {}
    for channel, user_id in keys:
        by_channel.setdefault(channel, set()).add(user_id)
    states: dict[tuple[str, str], ConversationState] = {
        (channel, user_id): ConversationState(channel, user_id)
        for channel, users in by_channel.items()
        for user_id in users
    }
    if not states:
        return states
    c = _table.c
    query = select(c.channel, c.user_id, c.flow, c.data, c.expires_at, c.version).where(
        or_(*(and_(c.channel == channel, c.user_id.in_(sorted(users))) for channel, users in by_channel.items()))
    )
    if lock:
        query = query.with_for_update()
    for channel, user_id, flow, data, expires_at, version in await conn.execute(query):
        data = data or {}
        # A deep copy: handlers mutate nested values in place, and the loaded value must stay as it was to compare.
        state = ConversationState(channel, user_id, flow, _copied(data), _stored=_Stored(flow, data, version))
        if flow is not None and expires_at is not None and expires_at <= now:
            state.clear(EXPIRED)
            state.expired = True
        states[(channel, user_id)] = state
    return states


async def save_many(conn: AsyncConnection, states: Sequence[ConversationState], now: datetime, ttl: timedelta) -> None:
    """Write back the states that changed, in the surrounding transaction: a state outside any dialog that was
    already so (``帮助``, a one-shot command) writes nothing; a dialog in progress is written (its expiry moves on)."""
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    leaving: list[UpdateCard] = []
    for state in states:
        leaving += [UpdateCard(channel=state.channel, user_ids=(state.user_id,), card=c) for c in state.leaving]
        state.leaving = []
        stored = state._stored
        if stored is None and state.flow is None:
            continue
        if stored is not None and state.flow is None and stored.flow is None and state.data == stored.data:
            continue
        data = dict(state.data)
        version = (stored.version if stored is not None else 0) + 1
        values = {
            "flow": state.flow,
            "data": data,
            "expires_at": now + ttl if state.flow is not None else None,
            "version": version,
            "updated_at": now,
        }
        if stored is None:
            inserts.append({"channel": state.channel, "user_id": state.user_id, **values})
        else:
            updates.append({"b_channel": state.channel, "b_user_id": state.user_id, **values})
        # Saved: a second save in the same transaction compares against what was just written.
        state._stored = _Stored(state.flow, _copied(data), version)
    if inserts:
        await conn.execute(insert(_table), inserts)
    if updates:
        await conn.execute(_update, updates)
    if leaving:
        await conn.execute(insert(_outbox), row_values(leaving, now))
