"""The per-person send budget a platform channel keeps below the platform's own limits (WeCom silently drops beyond
30 messages a minute per person; DingTalk throttles a robot per person): what reached each person in the last
minute and hour is counted in ``channel_sends`` under the channel's name, read once per outbox round, tallied in
memory while the round sends, and written with the round's outcome commit. A message over budget is deferred
(``DeliveryDeferred``, no attempt used) until the oldest send of the window leaves it.

A channel holds one ``PersonThrottle`` and calls it from its ``RoundAware`` hooks: ``prepare`` at the round's start,
``check`` before a send, ``count`` after one, ``record`` in the outcome commit."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.base import Delivery, DeliveryDeferred, OutboxItem
from bot.infra.clock import Clock
from storage.db import Database
from storage.models import ChannelSend

# Rows older than the hour window are pruned every this many recorded sends.
PRUNE_EVERY = 500


@dataclass
class _Budget:
    """One recipient's sends in the last hour and minute: counted from ``channel_sends`` at the round's start, plus
    what this process sent since."""

    per_hour: int = 0
    per_minute: int = 0
    oldest_hour: datetime | None = None
    oldest_minute: datetime | None = None

    def add(self, at: datetime, messages: int) -> None:
        self.per_hour += messages
        self.per_minute += messages
        self.oldest_hour = self.oldest_hour or at
        self.oldest_minute = self.oldest_minute or at


class PersonThrottle:
    """``per_minute`` / ``per_hour`` messages per person on ``channel``."""

    def __init__(self, channel: str, db: Database, clock: Clock, per_minute: int, per_hour: int) -> None:
        self.channel = channel
        self.db = db
        self.clock = clock
        self.per_minute = per_minute
        self.per_hour = per_hour
        self._budgets: dict[str, _Budget] = {}
        self._recorded = 0

    async def prepare(self, ids: Iterable[str]) -> None:
        """Start of an outbox round: the budgets of every recipient the round may send to, in one query."""
        wanted = set(ids)
        self._budgets = await self._load(wanted) if wanted else {}

    async def check(self, item: OutboxItem) -> None:
        """Defer (not fail) when a recipient already got their budget of messages this minute or hour.

        Counted per message per person (shared cards included); a shared card waits for its busiest recipient."""
        missing = {u.id for u in item.recipients if u.id not in self._budgets}
        if missing:  # delivered outside a prepared round
            self._budgets.update(await self._load(missing))
        retry_at: datetime | None = None
        reason = ""
        for u in item.recipients:
            b = self._budgets[u.id]
            if b.per_minute >= self.per_minute and b.oldest_minute is not None:
                at, why = b.oldest_minute + timedelta(minutes=1), f"{u.id}: {b.per_minute} sent this minute"
            elif b.per_hour >= self.per_hour and b.oldest_hour is not None:
                at, why = b.oldest_hour + timedelta(hours=1), f"{u.id}: {b.per_hour} sent this hour"
            else:
                continue
            if retry_at is None or at > retry_at:
                retry_at, reason = at, why
        if retry_at is not None:
            raise DeliveryDeferred(reason, retry_at)

    def count(self, item: OutboxItem, messages: int) -> int:
        """Tally what reached each recipient (``messages`` per person) in this round's budgets; the rows are written
        with the outcome (``record``). Returns ``messages``."""
        now = self.clock.now()
        for u in item.recipients:
            self._budgets.setdefault(u.id, _Budget()).add(now, messages)
        return messages

    async def record(self, session: AsyncSession, sent: Sequence[tuple[OutboxItem, Delivery]], now: datetime) -> None:
        """In the outcome commit: one ``channel_sends`` row per message that reached a recipient."""
        rows = [
            {"channel": self.channel, "recipient": u.id, "outbox_id": item.id, "sent_at": now}
            for item, delivery in sent
            for u in item.recipients
            for _ in range(delivery.messages)
        ]
        if not rows:
            return
        await session.execute(insert(ChannelSend), rows)
        before, self._recorded = self._recorded, self._recorded + len(rows)
        if before // PRUNE_EVERY != self._recorded // PRUNE_EVERY:
            await session.execute(
                delete(ChannelSend).where(
                    ChannelSend.channel == self.channel, ChannelSend.sent_at < now - timedelta(hours=2)
                )
            )

    async def _load(self, wanted: set[str]) -> dict[str, _Budget]:
        now = self.clock.now()
        in_minute = ChannelSend.sent_at > now - timedelta(minutes=1)
        async with self.db.read() as s:
            rows = (
                await s.execute(
                    select(
                        ChannelSend.recipient,
                        func.count(),
                        func.count().filter(in_minute),
                        func.min(ChannelSend.sent_at),
                        func.min(ChannelSend.sent_at).filter(in_minute),
                    )
                    .where(
                        ChannelSend.channel == self.channel,
                        ChannelSend.recipient.in_(wanted),
                        ChannelSend.sent_at > now - timedelta(hours=1),
                    )
                    .group_by(ChannelSend.recipient)
                )
            ).all()
        budgets = {u: _Budget() for u in wanted}
        for recipient, per_hour, per_minute, oldest_hour, oldest_minute in rows:
            budgets[recipient] = _Budget(per_hour, per_minute, oldest_hour, oldest_minute)
        return budgets
