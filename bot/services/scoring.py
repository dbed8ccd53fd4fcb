"""The nightly customer health score (docs/customers.md "The score"). Stub: the real one lands with issue 14."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings


async def compute_night(session: AsyncSession, settings: Settings, night: date, now: datetime) -> int:
    """Write (upsert) one ``customer_scores`` row per customer for ``night``; returns how many customers."""
    return 0
