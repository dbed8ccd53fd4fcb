"""The interface every channel (console, WeCom, DingTalk) implements for outbound delivery."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

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


@dataclass(frozen=True)
class Delivery:
    """What the platform answered, kept on the outbox row (for card updates later)."""

    platform_msg_id: str | None = None
    response_code: str | None = None


class DeliveryError(Exception):
    """A failed delivery. ``retryable`` decides between backoff and giving up at once."""

    def __init__(self, message: str, *, retryable: bool, code: str | int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.code = code


class Channel(Protocol):
    """Delivers outbox items on one platform."""

    name: str

    def can_reach(self, user: User) -> bool:
        """Whether ``user`` has an identity on this channel."""
        ...

    async def deliver(self, item: OutboxItem) -> Delivery: ...
