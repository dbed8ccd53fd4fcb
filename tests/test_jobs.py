"""The one scheduler (bot/jobs.py): periodic jobs run once per period across restarts and replicas (job_runs),
catch up the last missed period after downtime, retry failures, take over the runs of dead (or stuck) owners;
interval jobs (the escalation sweep) tick on the same scheduler.

Time is the runtime's injected clock; the job under test is a daily 18:00 (Asia/Shanghai) cron. Tests call
``jobs.run_due()`` where the scheduler would, and ``jobs.idle()`` to wait for what ``start`` looks at.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.channels.base import Delivery, OutboxItem
from bot.infra.clock import FixedClock, as_utc
from bot.infra.leases import Owner
from bot.jobs import Jobs, Period, latest_fire, period_key
from bot.runtime import Runtime
from bot.services import requests
from storage.models import AuditLog, Customer, JobRun, TaskCard, User
from tests.conftest import make_settings

SH = ZoneInfo("Asia/Shanghai")
DAILY = "0 18 * * *"
JOB = "daily-digest"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SH)


class FakeProcesses:
    """The process table at the boundary: pid → start time; a pid not listed has no process."""

    def __init__(self, running: dict[int, str] | None = None) -> None:
        self.running = running or {}

    def start_time(self, pid: int) -> str | None:
        return self.running.get(pid)


class Recorder:
    """A periodic job at the boundary: records every period it is run for; fails the first ``failures`` runs;
    with ``gated`` each run waits at ``gate`` (``entered`` is set meanwhile)."""

    def __init__(self, failures: int = 0, gated: bool = False, message: str = "report source down") -> None:
        self.failures = failures
        self.message = message
        self.gated = gated
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()
        self.periods: list[Period] = []

    @property
    def keys(self) -> list[str]:
        return [p.key for p in self.periods]

    async def __call__(self, period: Period) -> None:
        self.periods.append(period)
        if self.gated:
            self.entered.set()
            await self.gate.wait()
        if len(self.periods) <= self.failures:
            raise RuntimeError(self.message)


@contextlib.asynccontextmanager
async def bot(
    db_url: str,
    clock: FixedClock,
    job: Callable[[Period], Any] | None = None,
    *,
    start: bool = True,
    processes: FakeProcesses | None = None,
    **register: Any,
) -> AsyncIterator[Runtime]:
    """A bot process on ``db_url`` with ``job`` registered as the daily 18:00 job, started (its catch-up look done)."""
    rt = Runtime(make_settings(db_url, escalation={"enabled": False}), clock=clock)
    if processes is not None:
        rt.jobs.processes = processes
    if job is not None:
        rt.jobs.register_periodic(JOB, DAILY, job, **register)
    try:
        if start:
            await rt.start()
            await rt.jobs.idle()
        yield rt
    finally:
        await rt.close()


async def runs(rt: Runtime) -> list[JobRun]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(JobRun).order_by(JobRun.period)))


async def put_run(rt: Runtime, period: str, **values: Any) -> None:
    """A job_runs row as another process left it."""
    async with rt.db.transaction() as s:
        s.add(JobRun(job=JOB, period=period, started_at=rt.clock.now(), **values))


def neighbour(me: Owner, pid: int = 4_000_001, started: str = "4242", host: str | None = None) -> Owner:
    return Owner(host or me.host, me.pid_ns, pid, started, "0a0b0c0d0e0f")


# ---- periods -----------------------------------------------------------------------------------------------------


def test_the_due_period_is_the_last_fire_within_the_window() -> None:
    from apscheduler.triggers.cron import CronTrigger

    daily = CronTrigger.from_crontab(DAILY, timezone=SH)
    day = timedelta(hours=24)
    assert latest_fire(daily, at(23, 18), day) == at(23, 18)
    assert latest_fire(daily, at(23, 17, 59), day) == at(22, 18)
    assert latest_fire(daily, at(26, 10), day) == at(25, 18)  # three days down: only the last missed one
    assert latest_fire(daily, at(23, 17), timedelta(hours=2)) is None
    assert period_key(at(23, 18)) == "2026-11-23T18:00"
    minutely = CronTrigger.from_crontab("* 9-10 * * mon-fri", timezone=SH)
    assert latest_fire(minutely, at(23, 23), day) == at(23, 10, 59)
    assert latest_fire(minutely, at(23, 10, 30), day) == at(23, 10, 30)


async def test_numeric_weekdays_and_duplicate_names_are_refused(runtime: Runtime) -> None:
    with pytest.raises(ValueError, match="names"):
        runtime.jobs.register_periodic("weekly", "0 9 * * 1", Recorder())
    runtime.jobs.register_periodic("weekly", "0 9 * * mon", Recorder())
    with pytest.raises(ValueError, match="already registered"):
        runtime.jobs.register_interval("weekly", 60, Recorder.__call__)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="catch_up"):
        runtime.jobs.register_periodic("short", DAILY, Recorder(), catch_up=timedelta(seconds=5))


# ---- once per period -----------------------------------------------------------------------------------------------


async def test_a_period_runs_once_however_often_it_is_looked_at(db_url: str, clock: FixedClock) -> None:
    clock.set(at(23, 18))
    job = Recorder()
    async with bot(db_url, clock, job) as rt:
        assert job.keys == ["2026-11-23T18:00"]  # looked at by start
        assert [r.outcome for r in await rt.jobs.run_due()] == ["skipped"]
        clock.set(at(24, 17, 59))
        assert [r.outcome for r in await rt.jobs.run_due()] == ["skipped"]
        clock.set(at(24, 18))
        [result] = await rt.jobs.run_due()
        assert (result.outcome, result.period, result.attempt) == ("done", "2026-11-24T18:00", 1)
        await rt.jobs.run_due()
        assert job.keys == ["2026-11-23T18:00", "2026-11-24T18:00"]
        assert job.periods[1].at == at(24, 18) and job.periods[1].attempt == 1
        rows = await runs(rt)
        assert [(r.period, r.status, r.attempts, r.owner, r.error) for r in rows] == [
            ("2026-11-23T18:00", "done", 1, str(rt.jobs.owner), None),
            ("2026-11-24T18:00", "done", 1, str(rt.jobs.owner), None),
        ]
        assert rows[1].finished_at is not None and as_utc(rows[1].finished_at) == at(24, 18)


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_two_runtimes_on_one_postgresql_run_each_period_exactly_once(db_url: str, clock: FixedClock) -> None:
    clock.set(at(23, 18))
    job_a, job_b = Recorder(), Recorder()
    async with bot(db_url, clock, job_a, start=False) as a, bot(db_url, clock, job_b, start=False) as b:
        # Both start at once: the catch-up of the due period runs in one of them.
        await asyncio.gather(a.start(), b.start())
        await asyncio.gather(a.jobs.idle(), b.jobs.idle())
        assert len(job_a.periods) + len(job_b.periods) == 1
        # A week of 18:00 fires, each looked at by both at the same moment.
        for day in range(24, 31):
            clock.set(at(day, 18))
            outcomes = Counter(r.outcome for rt in await asyncio.gather(a.jobs.run_due(), b.jobs.run_due()) for r in rt)
            assert outcomes["done"] == 1 and outcomes["done"] + outcomes["skipped"] + outcomes["running"] == 2
        keys = job_a.keys + job_b.keys
        assert sorted(keys) == [f"2026-11-{d}T18:00" for d in range(23, 31)]
        rows = await runs(a)
        assert len(rows) == 8 and {(r.status, r.attempts) for r in rows} == {("done", 1)}


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_run_in_progress_in_one_replica_is_not_started_by_the_other(db_url: str, clock: FixedClock) -> None:
    clock.set(at(23, 18))
    slow, other = Recorder(gated=True), Recorder()
    async with bot(db_url, clock, slow, start=False) as a, bot(db_url, clock, other, start=False) as b:
        running = asyncio.create_task(a.jobs.run_due())
        await slow.entered.wait()
        [seen] = await b.jobs.run_due()
        assert (seen.outcome, seen.period) == ("running", "2026-11-23T18:00")
        slow.gate.set()
        [result] = await running
        assert result.outcome == "done"
        assert [r.outcome for r in await b.jobs.run_due()] == ["skipped"]
        assert other.periods == [] and slow.keys == ["2026-11-23T18:00"]


# ---- catch-up after downtime ---------------------------------------------------------------------------------------


async def test_a_restart_after_downtime_catches_up_the_last_missed_period_once(db_url: str, clock: FixedClock) -> None:
    clock.set(at(23, 18, 30))
    first = Recorder()
    async with bot(db_url, clock, first):
        assert first.keys == ["2026-11-23T18:00"]
    # Down from Monday evening to Thursday 10:00: Tuesday's and Wednesday's 18:00 were missed.
    clock.set(at(26, 10))
    restarted = Recorder()
    async with bot(db_url, clock, restarted) as rt:
        assert restarted.keys == ["2026-11-25T18:00"]  # only the last one (Tuesday's is 40 h old, outside 24 h)
        assert restarted.periods[0].at == at(25, 18)
    clock.set(at(26, 11))
    again = Recorder()
    async with bot(db_url, clock, again) as rt:
        assert again.periods == []
        assert [r.period for r in await runs(rt)] == ["2026-11-23T18:00", "2026-11-25T18:00"]


async def test_a_period_older_than_the_catch_up_window_is_not_run(db_url: str, clock: FixedClock) -> None:
    clock.set(at(24, 10))  # Monday's 18:00 was 16 h ago
    job = Recorder()
    async with bot(db_url, clock, job, catch_up=timedelta(hours=2)) as rt:
        assert job.periods == [] and await runs(rt) == []
        assert [r.outcome for r in await rt.jobs.run_due()] == ["idle"]
        clock.set(at(24, 19, 59))
        assert [r.outcome for r in await rt.jobs.run_due()] == ["done"]
        assert job.keys == ["2026-11-24T18:00"]


# ---- failures --------------------------------------------------------------------------------------------------------


async def test_a_failed_run_is_recorded_and_retried_on_the_next_look_and_at_the_next_start(
    db_url: str, clock: FixedClock
) -> None:
    clock.set(at(23, 18))
    job = Recorder(failures=2, message="x" * 5000)
    async with bot(db_url, clock, job) as rt:
        [row] = await runs(rt)
        assert (row.status, row.attempts) == ("failed", 1)
        assert row.error is not None and row.error.startswith("RuntimeError: xxx") and len(row.error) == 2000
        clock.set(at(23, 18, 1))  # the next periodic check
        [result] = await rt.jobs.run_due()
        assert (result.outcome, result.attempt) == ("failed", 2)
    clock.set(at(23, 18, 5))
    async with bot(db_url, clock, job) as rt:  # a restart retries too
        [row] = await runs(rt)
        assert (row.status, row.attempts, row.owner) == ("done", 3, str(rt.jobs.owner))
        assert row.error is not None and row.error.startswith("RuntimeError")  # the last failure, for the record
    assert [(p.key, p.attempt) for p in job.periods] == [("2026-11-23T18:00", n) for n in (1, 2, 3)]


async def test_a_period_is_given_up_after_max_attempts(db_url: str, clock: FixedClock) -> None:
    clock.set(at(23, 18))
    job = Recorder(failures=99)
    async with bot(db_url, clock, job) as rt:
        outcomes = [r.outcome for _ in range(4) for r in await rt.jobs.run_due()]
        assert outcomes == ["failed", "failed", "given up", "given up"]
        assert len(job.periods) == rt.settings.scheduler.max_attempts == 3
        [row] = await runs(rt)
        assert (row.status, row.attempts) == ("failed", 3)
        clock.set(at(24, 18))  # the next period starts afresh
        assert [r.outcome for r in await rt.jobs.run_due()] == ["failed"]


# ---- take-over -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("death", ["pid gone", "pid reused"])
async def test_a_running_row_of_a_dead_owner_is_taken_over(db_url: str, clock: FixedClock, death: str) -> None:
    clock.set(at(23, 18, 5))
    job = Recorder()
    async with bot(db_url, clock, start=False) as setup:
        dead = neighbour(setup.jobs.owner)
        await put_run(setup, "2026-11-23T18:00", status="running", owner=str(dead), attempts=1)
    processes = FakeProcesses({} if death == "pid gone" else {dead.pid: "9999"})
    async with bot(db_url, clock, job, processes=processes) as rt:
        assert [(p.key, p.attempt) for p in job.periods] == [("2026-11-23T18:00", 2)]
        [row] = await runs(rt)
        assert (row.status, row.attempts, row.owner) == ("done", 2, str(rt.jobs.owner))


@pytest.mark.parametrize("holder", ["live process on this host", "process on another host", "this process"])
async def test_a_running_row_of_a_live_owner_is_left_until_the_timeout(
    db_url: str, clock: FixedClock, holder: str
) -> None:
    clock.set(at(23, 18, 5))
    job = Recorder()
    async with bot(db_url, clock, start=False) as setup:
        me = setup.jobs.owner
        owner = {
            "live process on this host": neighbour(me),
            "process on another host": neighbour(me, host="other-host"),
            "this process": Owner(me.host, me.pid_ns, me.pid, me.started, "another-gen"),  # another runtime of it
        }[holder]
        await put_run(setup, "2026-11-23T18:00", status="running", owner=str(owner), attempts=1)
    processes = FakeProcesses({owner.pid: owner.started} if holder.startswith("live") else {})
    async with bot(db_url, clock, job, processes=processes, timeout=timedelta(minutes=30)) as rt:
        assert job.periods == []
        clock.set(at(23, 18, 34))
        assert [r.outcome for r in await rt.jobs.run_due()] == ["running"]
        clock.set(at(23, 18, 35))  # 30 minutes after it started: stuck, taken over
        [result] = await rt.jobs.run_due()
        assert (result.outcome, result.attempt) == ("done", 2)
        [row] = await runs(rt)
        assert (row.status, row.attempts, row.owner) == ("done", 2, str(rt.jobs.owner))


async def test_a_late_outcome_of_a_run_taken_over_is_dropped(db_url: str, clock: FixedClock) -> None:
    clock.set(at(23, 18))
    slow = Recorder(gated=True)
    async with bot(db_url, clock, slow, start=False, timeout=timedelta(minutes=30)) as a:
        running = asyncio.create_task(a.jobs.run_due())
        await slow.entered.wait()
        clock.set(at(23, 18, 31))
        other = Recorder()
        async with bot(db_url, clock, other, start=False, timeout=timedelta(minutes=30)) as b:
            assert [r.outcome for r in await b.jobs.run_due()] == ["done"]
            slow.gate.set()
            await running
            [row] = await runs(b)
            assert (row.status, row.attempts, row.owner) == ("done", 2, str(b.jobs.owner))
            assert other.keys == slow.keys == ["2026-11-23T18:00"]


# ---- interval jobs and the escalation sweep ------------------------------------------------------------------------


async def test_interval_jobs_tick_on_the_scheduler_and_stop_waits_for_a_run_in_progress(runtime: Runtime) -> None:
    ticks: list[int] = []
    entered, gate, finished = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def tick() -> None:
        ticks.append(len(ticks))
        if len(ticks) == 2:
            entered.set()
            await gate.wait()
            finished.set()

    runtime.jobs.register_interval("tick", 0.01, tick)
    await asyncio.wait_for(entered.wait(), 10)
    stopping = asyncio.create_task(runtime.jobs.stop())
    for _ in range(20):
        await asyncio.sleep(0)
    assert not stopping.done()  # waiting for the tick in progress, not cancelling it
    gate.set()
    await stopping
    assert finished.is_set() and ticks == [0, 1]


class NoticeChannel:
    """The console at the boundary (the channel that reaches everyone in the demo org): records what the outbox
    delivers to it and says so (``delivered``)."""

    name = "console"

    def __init__(self) -> None:
        self.items: list[OutboxItem] = []
        self.delivered = asyncio.Event()

    def can_reach(self, user: User) -> bool:
        return True

    async def deliver(self, item: OutboxItem) -> Delivery:
        self.items.append(item)
        self.delivered.set()
        return Delivery(platform_msg_id=f"n{len(self.items)}")


async def test_the_escalation_sweep_is_an_interval_job_of_the_shared_scheduler(db_url: str, clock: FixedClock) -> None:
    settings = make_settings(db_url, escalation={"sweep_interval_seconds": 1})
    rt = Runtime(settings, clock=clock)
    channel = NoticeChannel()
    rt.channels[channel.name] = channel
    try:
        await rt.start()
        assert rt.jobs.registered() == {"escalation-sweep": "interval"}
        async with rt.db.transaction() as s:
            rep = await s.get(User, "rep01")
            customer = await s.scalar(select(Customer).order_by(Customer.id).limit(1))
            assert rep is not None and customer is not None
            values = {"product": "骨钉", "quantity": "20", "needed_by": "2026-11-30"}
            await requests.create(
                s,
                settings=rt.settings,
                type_key="stock_reservation",
                values=values,
                customer=customer,
                rep=rep,
                visit_id=None,
                now=clock.now(),
                channel="console",
            )
        clock.set(clock.now() + timedelta(days=3))  # the card's steps are due; only the scheduler's tick sweeps
        await asyncio.wait_for(channel.delivered.wait(), 10)
        async with rt.db.read() as s:
            levels = await s.scalar(select(func.count()).where(AuditLog.action == "escalation.level"))
            assert levels and all(c.notices > 0 for c in await s.scalars(select(TaskCard)))
        await rt.escalator.stop()
        assert rt.jobs.registered() == {}
    finally:
        await rt.close()


async def test_jobs_of_a_runtime_are_its_own(runtime: Runtime) -> None:
    assert isinstance(runtime.jobs, Jobs) and runtime.jobs.running
    assert runtime.jobs.registered() == {"escalation-sweep": "interval"}


def test_scheduler_settings_are_validated() -> None:
    from bot.config import ConfigError, parse_settings

    assert parse_settings({}).scheduler.model_dump() == {
        "catch_up_hours": 24.0,
        "check_interval_seconds": 60.0,
        "run_timeout_minutes": 60.0,
        "max_attempts": 3,
    }
    with pytest.raises(ConfigError) as refused:
        parse_settings({"scheduler": {"max_attempts": 0, "catch_up_hours": 0, "check_interval_seconds": 0.5}})
    assert {i.path for i in refused.value.issues} == {
        "scheduler.max_attempts",
        "scheduler.catch_up_hours",
        "scheduler.check_interval_seconds",
    }
