"""The org and customer directory as the core sees it: who is this sender, which hospital did they mean."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, joinedload

from bot.parsing.customer_match import CustomerEntry, CustomerMatcher
from storage.db import Database
from storage.models import Customer, User, UserIdentity

STAMP_TTL = 2.0

# Built once: constructing these statements (the aliased join, the comparisons) cost more per batch than running
# them. The senders are an expanding bound parameter.
_USERS_BY_ID = (
    select(User).where(User.id.in_(bindparam("senders", expanding=True))).options(joinedload(User.identities))
)
_MATCH = aliased(UserIdentity)
_USERS_BY_IDENTITY = (
    select(User)
    .join(_MATCH, _MATCH.user_id == User.id)
    .where(_MATCH.channel == bindparam("channel"), _MATCH.external_id.in_(bindparam("senders", expanding=True)))
    .options(joinedload(User.identities))
)


class Identified(Protocol):
    """What the directory needs of a channel plug-in (``bot.channels.base.ChannelPlugin`` is one)."""

    @property
    def name(self) -> str: ...

    @property
    def identity_is_user_id(self) -> bool: ...


class Directory:
    """User lookups and a cached customer matcher that reloads when the customer table changes.

    A person's id on a channel is their row in ``user_identities`` for that channel, except on channels whose
    plug-in knows people by their user id (``ChannelPlugin.identity_is_user_id``)."""

    def __init__(self, plugins: Sequence[Identified]) -> None:
        self._by_user_id = frozenset(p.name for p in plugins if p.identity_is_user_id)
        self._matcher: CustomerMatcher | None = None
        self._stamp: tuple[int, datetime | None] | None = None
        self._checked = 0.0
        # (channel, sender) → monotonic time it was seen registered; spares the callback path a query.
        self._known: dict[tuple[str, str], float] = {}

    async def is_registered(self, db: Database, channel: str, sender: str, ttl: float = 60.0) -> bool:
        """Whether an active user has this channel id (positive answers cached for ``ttl`` seconds)."""
        key = (channel, sender)
        seen = self._known.get(key)
        if seen is not None and time.monotonic() - seen < ttl:
            return True
        # The callback path needs a yes or no, not the person: one Core query, no ORM rows, no identities.
        if channel in self._by_user_id:
            query = select(User.active).where(User.id == sender)
        else:
            query = (
                select(User.active)
                .join(UserIdentity, UserIdentity.user_id == User.id)
                .where(UserIdentity.channel == channel, UserIdentity.external_id == sender)
            )
        async with db.read() as s:
            active = await s.scalar(query)
        if not active:
            self._known.pop(key, None)
            return False
        if len(self._known) > 100_000:
            self._known.clear()
        self._known[key] = time.monotonic()
        return True

    async def user_by_channel_id(self, session: AsyncSession, channel: str, sender: str) -> User | None:
        return (await self.users_by_channel_ids(session, channel, (sender,))).get(sender)

    async def users_by_channel_ids(
        self, session: AsyncSession, channel: str, senders: Iterable[str]
    ) -> dict[str, User]:
        """Channel id → user for those of ``senders`` that someone has: one query for a whole batch, the users'
        identities joined in (not a second SELECT: this is on every handled batch)."""
        wanted = sorted(set(senders))
        if not wanted:
            return {}
        if channel in self._by_user_id:
            users = await session.scalars(_USERS_BY_ID, {"senders": wanted})
            return {user.id: user for user in users.unique()}
        found = await session.scalars(_USERS_BY_IDENTITY, {"channel": channel, "senders": wanted})
        by_id: dict[str, User] = {}
        for user in found.unique():
            if (external_id := user.channel_id(channel)) is not None:
                by_id[external_id] = user
        return by_id

    async def user(self, session: AsyncSession, user_id: str) -> User | None:
        return await session.get(User, user_id)

    async def customer(self, session: AsyncSession, customer_id: int) -> Customer | None:
        return await session.get(Customer, customer_id)

    async def matcher(self, session: AsyncSession) -> CustomerMatcher:
        """The matcher over all customers; rebuilt when a customer was added or changed (checked at most every
        ``STAMP_TTL`` seconds, so an import by another process shows up within that time)."""
        if self._matcher is not None and time.monotonic() - self._checked < STAMP_TTL:
            return self._matcher
        self._checked = time.monotonic()
        stamp_row = (await session.execute(select(func.count(Customer.id), func.max(Customer.updated_at)))).one()
        stamp = (int(stamp_row[0]), stamp_row[1])
        if self._matcher is None or stamp != self._stamp:
            rows = await session.execute(select(Customer.id, Customer.name, Customer.aliases))
            self._matcher = CustomerMatcher(
                CustomerEntry(id=cid, name=name, aliases=tuple(aliases or ())) for cid, name, aliases in rows
            )
            self._stamp = stamp
        return self._matcher
