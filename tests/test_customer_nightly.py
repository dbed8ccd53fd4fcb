"""The customers' nightly job (bot/customer_nightly.py): registered at ``[customers.score] time`` when
``[customers] enabled``, it scores every customer for the night of its fire time, once per night across restarts
and two runtimes on one database; off, it is not registered. The clock is injected; tests call ``jobs.run_due``
where the scheduler would."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.customer_nightly import NIGHTLY, run_night
from bot.infra.clock import FixedClock
from bot.runtime import Runtime
from storage.models import Customer, CustomerScore, JobRun
from tests.conftest import make_settings

SH = ZoneInfo("Asia/Shanghai")


def at(day: int, hhmm: str) -> datetime:
    hour, minute = (int(x) for x in hhmm.split(":"))
    return datetime.combine(date(2026, 12, day), time(hour, minute), tzinfo=SH).astimezone(UTC)


@contextlib.asynccontextmanager
async def bot(db_url: str, clock: FixedClock, enabled: bool = True, start: bool = True) -> AsyncIterator[Runtime]:
    settings = make_settings(
        db_url, customers={"enabled": enabled, "score": {"time": "03:30"}}, escalation={"enabled": False}
    )
    rt = Runtime(settings, clock=clock)
    try:
        if start:
            await rt.start()
            await rt.jobs.idle()
        yield rt
    finally:
        await rt.close()


async def nights(rt: Runtime) -> dict[date, int]:
    async with rt.db.read() as s:
        rows = await s.execute(select(CustomerScore.night, func.count()).group_by(CustomerScore.night))
        return {night: int(n) for night, n in rows.all()}


async def customers(rt: Runtime) -> int:
    async with rt.db.read() as s:
        return int(await s.scalar(select(func.count()).select_from(Customer)) or 0)


async def test_the_night_is_scored_once_at_the_configured_time(db_url: str) -> None:
    clock = FixedClock(at(4, "03:00"))  # before 03:30: the last fire (12-03 03:30) is past the catch-up window
    async with bot(db_url, clock) as rt:
        assert await nights(rt) == {}
        clock.set(at(4, "03:30"))
        assert [(r.outcome, r.period) for r in await rt.jobs.run_due([NIGHTLY])] == [("done", "2026-12-04T03:30")]
        n = await customers(rt)
        assert n > 0 and await nights(rt) == {date(2026, 12, 4): n}
        assert [r.outcome for r in await rt.jobs.run_due([NIGHTLY])] == ["skipped"]
        clock.set(at(5, "03:30"))
        assert [r.outcome for r in await rt.jobs.run_due([NIGHTLY])] == ["done"]
        assert await nights(rt) == {date(2026, 12, 4): n, date(2026, 12, 5): n}
    # A restart later that night: the night is done, nothing runs again.
    clock.set(at(5, "09:00"))
    async with bot(db_url, clock) as rt:
        assert [r.outcome for r in await rt.jobs.run_due([NIGHTLY])] == ["skipped"]
        async with rt.db.read() as s:
            runs = list(await s.scalars(select(JobRun).where(JobRun.job == NIGHTLY).order_by(JobRun.period)))
        assert [(r.period, r.status, r.attempts) for r in runs] == [
            ("2026-12-04T03:30", "done", 1),
            ("2026-12-05T03:30", "done", 1),
        ]


async def test_run_night_returns_the_customers_scored(db_url: str) -> None:
    clock = FixedClock(at(4, "12:00"))
    async with bot(db_url, clock, start=False) as rt:
        scored, alerts = await run_night(rt, date(2026, 12, 1))
        assert scored == await customers(rt) and alerts >= 0
        assert await nights(rt) == {date(2026, 12, 1): scored}


async def test_off_means_no_job(db_url: str) -> None:
    clock = FixedClock(at(4, "03:30"))
    async with bot(db_url, clock, enabled=False) as rt:
        assert [r.outcome for r in await rt.jobs.run_due([NIGHTLY])] == ["idle"]
        assert await nights(rt) == {}


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_two_runtimes_on_one_database_score_each_night_once(db_url: str) -> None:
    clock = FixedClock(at(4, "03:30"))
    async with bot(db_url, clock, start=False) as a, bot(db_url, clock, start=False) as b:
        # Both start at the fire time: the catch-up look runs the night in one of them.
        await asyncio.gather(a.start(), b.start())
        await asyncio.gather(a.jobs.idle(), b.jobs.idle())
        n = await customers(a)
        assert await nights(a) == {date(2026, 12, 4): n}
        for day in (5, 6, 7):
            clock.set(at(day, "03:30"))
            looks = await asyncio.gather(a.jobs.run_due([NIGHTLY]), b.jobs.run_due([NIGHTLY]))
            outcomes = Counter(r.outcome for rs in looks for r in rs)
            assert outcomes["done"] == 1 and outcomes["done"] + outcomes["skipped"] + outcomes["running"] == 2
        assert await nights(a) == {date(2026, 12, d): n for d in (4, 5, 6, 7)}
        async with a.db.read() as s:
            runs = list(await s.scalars(select(JobRun).where(JobRun.job == NIGHTLY)))
        assert sorted((r.period, r.status, r.attempts) for r in runs) == [
            (f"2026-12-0{d}T03:30", "done", 1) for d in (4, 5, 6, 7)
        ]
