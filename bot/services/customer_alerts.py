"""Customer alerts (docs/customers.md "Alerts"). Stub: the real one lands with issue 14."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.core.intents import Intent
from storage.models import User


async def evaluate(
    session: AsyncSession, settings: Settings, night: date, now: datetime, channel_for: Callable[[User], str]
) -> list[Intent]:
    """Evaluate every rule of ``[customers.alerts]`` for ``night`` over its scores; claim each alert that is due
    (``customer_alerts``, once per customer, rule and period) and return the messages to send, for the caller to
    put in the outbox in the same transaction."""
    return []
