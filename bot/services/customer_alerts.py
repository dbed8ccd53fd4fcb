"""Customer alerts (docs/customers.md "Alerts"). Stub: the real one lands with issue 14."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.runtime import Runtime


async def fire(rt: Runtime, night: date) -> int:
    """Evaluate every rule of ``[customers.alerts]`` for ``night``; returns how many alerts went out."""
    return 0
