"""The customers' nightly job (``customer-nightly`` at ``[customers.score] time``; docs/customers.md):

1. the night's health scores for every customer (``bot.services.scoring.compute_night``), one transaction;
2. the alert rules over the scores just written (``bot.services.customer_alerts.evaluate``), each alert claimed once
   per customer, rule and period with its outbox rows.

``job_runs`` runs each night once across restarts and replicas; a run taken over after a crash recomputes the
night (the scores are upserted) and fires only the alerts not yet claimed.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

from bot import outbox
from bot.jobs import Period
from bot.services import customer_alerts, scoring

if TYPE_CHECKING:
    from bot.runtime import Runtime

NIGHTLY = "customer-nightly"


def _cron(hhmm: str) -> str:
    hour, minute = hhmm.split(":")
    return f"{int(minute)} {int(hour)} * * *"


def night_of(rt: Runtime, period: Period) -> date:
    """The night a run computes: the local date of its fire time (02:00 on 12-05 computes the night of 12-05)."""
    return period.at.astimezone(rt.settings.org.tz).date()


def register(rt: Runtime) -> None:
    cfg = rt.settings.customers
    if not cfg.enabled:
        return

    async def nightly(period: Period) -> None:
        await run_night(rt, night_of(rt, period))

    # A night missed by more than 12 hours is skipped: the next night recomputes everything anyway.
    rt.jobs.register_periodic(NIGHTLY, _cron(cfg.score.time), nightly, catch_up=timedelta(hours=12))


async def run_night(rt: Runtime, night: date) -> tuple[int, int]:
    """Score every customer for ``night``, then fire the alerts; returns (customers scored, alerts fired)."""
    async with rt.db.transaction() as s:
        scored = await scoring.compute_night(s, rt.settings, night, rt.clock.now())
    async with rt.db.transaction() as s:
        intents = await customer_alerts.evaluate(s, rt.settings, night, rt.clock.now(), rt.channel_for)
        outbox.enqueue(s, intents, rt.clock.now())
    rt.outbox.wake()
    return scored, len(intents)
