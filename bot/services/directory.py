"""The org and customer directory as the core sees it: who is this sender, which hospital did they mean."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.customer_match import CustomerEntry, CustomerMatcher
from storage.db import Database
from storage.models import Customer, User

STAMP_TTL = 2.0

# Channel name → the User column holding that channel's id for the person.
_CHANNEL_ID_COLUMN = {
    "console": User.id,
    "wecom": User.wecom_userid,
    "dingtalk": User.dingtalk_staff_id,
}


class Directory:
    """User lookups and a cached customer matcher that reloads when the customer table changes."""

    def __init__(self) -> None:
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
        async with db.read() as s:
            user = await self.user_by_channel_id(s, channel, sender)
        if user is None or not user.active:
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
        """Channel id → user for those of ``senders`` that someone has (one query for a whole batch)."""
        column = _CHANNEL_ID_COLUMN.get(channel)
        wanted = set(senders)
        if column is None or not wanted:
            return {}
        users = await session.scalars(select(User).where(column.in_(sorted(wanted))))
        return {getattr(user, column.key): user for user in users}

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
