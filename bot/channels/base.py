"""The interface every channel (console, WeCom, DingTalk) implements for outbound delivery."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import User


@dataclass(frozen=True)
class OutboxItem:
    """A claimed outbox row, detached from the session: what to deliver and to whom."""

    id: int
    channel: str
    kind: str
    payload: dict[str, Any]
    card_ref: str | None
    attempts: int
    recipients: tuple[User, ...]
    # The message may already have reached the platform (an earlier call timed out, or a worker died while a call
    # was in flight): channels that can (WeCom enable_duplicate_check) make the platform show it once.
    resend: bool = False
    created_at: datetime | None = None
    # Call right before the platform request: records that a call is in flight (survives a crash).
    announce: Callable[[], Awaitable[None]] | None = field(default=None, compare=False)

    async def starting_call(self) -> None:
        if self.announce is not None:
            await self.announce()


@dataclass(frozen=True)
class Delivery:
    """What the platform answered, kept on the outbox row (for card updates later)."""

    platform_msg_id: str | None = None
    response_code: str | None = None
    # Messages that reached each recipient (a long text goes out in parts; a card update is none): the throttle's.
    messages: int = 0


class DeliveryError(Exception):
    """A failed delivery. ``retryable`` decides between backoff and giving up at once."""

    def __init__(
        self, message: str, *, retryable: bool, code: str | int | None = None, outcome_unknown: bool = False
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.code = code
        # The request may have reached the platform (timeout, connection lost, 5xx).
        self.outcome_unknown = outcome_unknown


class DeliveryDeferred(Exception):
    """Not now, and not a failure: e.g. the recipient's rate budget is used up. Retried at ``retry_at``
    without counting an attempt."""

    def __init__(self, reason: str, retry_at: datetime) -> None:
        super().__init__(reason)
        self.retry_at = retry_at


class Channel(Protocol):
    """Delivers outbox items on one platform."""

    name: str

    def can_reach(self, user: User) -> bool:
        """Whether ``user`` has an identity on this channel."""
        ...

    async def deliver(self, item: OutboxItem) -> Delivery: ...


@runtime_checkable
class RoundAware(Protocol):
    """A channel that prepares for an outbox round (one read for every row claimed, instead of one per row) and
    writes its own bookkeeping in the transaction that records the round's outcomes."""

    async def prepare(self, items: Sequence[OutboxItem]) -> None:
        """Called once per round with the claimed items for this channel, before any of them is delivered."""
        ...

    async def record(self, session: AsyncSession, sent: Sequence[tuple[OutboxItem, Delivery]], now: datetime) -> None:
        """Called inside the outcome commit with the items that reached the platform."""
        ...
