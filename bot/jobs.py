"""One scheduler per process: features register their interval and periodic jobs here (``runtime.jobs``).

Two kinds of job share one ``AsyncIOScheduler``:

* **interval jobs** (``register_interval``): a coroutine run every N seconds in this process, never overlapped by
  its own next tick (``max_instances=1``, ``coalesce``). No bookkeeping across processes: the job copes with
  replicas itself (the escalation sweep claims its rows).
* **periodic jobs** (``register_periodic``): a crontab in the org time zone; every fire time is a *period*
  (key ``"2026-12-02T18:00"``, the fire time in local time) and each period runs at most once across restarts and
  replicas, recorded in ``job_runs`` (``job`` + ``period`` unique):

  1. *claim*: ``INSERT … ON CONFLICT DO NOTHING`` a ``running`` row in this process's name (``bot.infra.leases.Owner``).
     If a row exists: ``done`` → skip; ``failed`` → retried (``attempts`` + 1) while ``attempts`` is below
     ``[scheduler] max_attempts``; ``running`` → taken over (``attempts`` + 1) only if its owner is provably dead
     (``bot.infra.leases.provably_dead``) or it started more than the job's timeout ago, else left to its owner. A take
     over is a compare-and-set on the row's status and attempts, so two processes never take one row both.
  2. *run* the job's coroutine with the ``Period`` (cancelled at the timeout, so nobody else can take a row over
     while its owner still works on it).
  3. *record* ``done`` or ``failed`` (+ the error, truncated) — only if the row is still this run's (same owner and
     attempt); a late outcome of a run that was taken over is dropped.

Which period is due: the most recent fire time at or before ``runtime.clock.now()`` (never APScheduler's wall
clock), if it is less than the job's ``catch_up`` window old (``[scheduler] catch_up_hours`` unless the job gives
its own). Only that one: after a long downtime the last missed period runs once, the earlier ones are skipped; a
period whose fire time left the window is not started any more (neither retried nor taken over). The due period is
looked at when the cron fires, at start (catch-up after downtime), when a job is registered on a running scheduler,
and every ``[scheduler] check_interval_seconds`` (retries, take-overs, periods a busy replica missed).

The run is once per period as long as its ``done`` mark commits; a process killed after the work but before the
mark leaves a ``running`` row that another process takes over (dead owner, or after the timeout) and runs again.
Jobs should therefore be idempotent per period, or write their results in a way a second run recognises.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.infra.clock import as_utc
from bot.infra.leases import LinuxProcesses, Owner, ProcessTable, current_owner, provably_dead
from storage.models import JobRun

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

MAX_NAME = 64  # job_runs.job
ERROR_CHARS = 2000
RECHECK = "jobs-recheck"
# Shortest catch-up window a job may ask for (its fire must still be in the window when the cron callback runs).
MIN_CATCH_UP = timedelta(minutes=1)

Outcome = Literal["done", "failed", "skipped", "given up", "running", "busy", "idle"]
"""What a look at a periodic job did: ``done`` / ``failed`` (this call ran it), ``skipped`` (already done),
``given up`` (failed ``max_attempts`` times), ``running`` (another live process has it), ``busy`` (this process is
running the job right now), ``idle`` (no period due within the catch-up window)."""


@dataclass(frozen=True)
class Period:
    """One period of a periodic job, handed to the job's coroutine."""

    job: str
    # The period key stored in job_runs: the fire time in the job's time zone, "2026-12-02T18:00".
    key: str
    # The scheduled fire time (aware, in the job's time zone); a catch-up run starts later than this.
    at: datetime
    # 1 for the first run; 2, 3 … for a retry after a failure or a take-over of a dead/stuck run.
    attempt: int


@dataclass(frozen=True)
class RunResult:
    job: str
    period: str | None
    outcome: Outcome
    attempt: int = 0
    error: str | None = None


@dataclass(frozen=True)
class _Interval:
    name: str
    seconds: float
    func: Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class _Periodic:
    name: str
    trigger: CronTrigger
    func: Callable[[Period], Awaitable[None]]
    catch_up: timedelta
    timeout: timedelta


def latest_fire(trigger: CronTrigger, now: datetime, within: timedelta) -> datetime | None:
    """The last fire time of ``trigger`` in ``[now - within, now]``, or None. Looks back 1, 2, 4 … minutes, so a
    frequent job does not walk a whole day of fire times."""
    earliest = now - within
    look = timedelta(minutes=1)
    while True:
        start = max(now - look, earliest)
        fire: datetime | None = trigger.get_next_fire_time(None, start)
        if fire is not None and fire <= now:
            while (later := trigger.get_next_fire_time(None, fire + timedelta(microseconds=1))) is not None:
                if later > now:
                    break
                fire = later
            return fire
        if start <= earliest:
            return None
        look *= 2


def period_key(fire: datetime) -> str:
    """``2026-12-02T18:00`` (seconds only when the cron gives them)."""
    return fire.strftime("%Y-%m-%dT%H:%M:%S" if fire.second else "%Y-%m-%dT%H:%M")


def cron_trigger(cron: str | CronTrigger, tz: Any) -> CronTrigger:
    """A crontab line ``minute hour day month day_of_week`` in ``tz``. Weekdays must be names (``mon-fri``):
    APScheduler 3 counts 0 as Monday, crontab as Sunday, so a number would silently mean another day."""
    if isinstance(cron, CronTrigger):
        return cron
    fields = cron.split()
    if len(fields) == 5 and any(ch.isdigit() for ch in fields[4]):
        raise ValueError(f"cron {cron!r}: write the day of week as names (mon, tue … sun), not numbers")
    return CronTrigger.from_crontab(cron, timezone=tz)


class Jobs:
    """The process's scheduler. Register jobs before or after ``start``; ``run_due`` runs the due periods now
    (tests call it directly, with the runtime's injected clock)."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        # The boundaries the take-over code touches (tests replace them), as in the outbox.
        self.processes: ProcessTable = LinuxProcesses()
        self.owner: Owner = current_owner(self.processes)
        self._intervals: dict[str, _Interval] = {}
        self._periodic: dict[str, _Periodic] = {}
        self._scheduler: AsyncIOScheduler | None = None
        # Runs in progress (interval ticks and periodic checks started by the scheduler), awaited by stop/idle.
        self._tasks: set[asyncio.Task[Any]] = set()
        # Periodic jobs this process is looking at or running right now.
        self._busy: set[str] = set()

    @property
    def running(self) -> bool:
        return self._scheduler is not None

    def registered(self) -> dict[str, Literal["interval", "periodic"]]:
        """The registered jobs by name, and their kind."""
        kinds: dict[str, Literal["interval", "periodic"]] = dict.fromkeys(self._intervals, "interval")
        return kinds | dict.fromkeys(self._periodic, "periodic")

    # ---- registration ------------------------------------------------------------------------------------------

    def register_interval(self, name: str, seconds: float, func: Callable[[], Awaitable[None]]) -> None:
        """Run ``func`` every ``seconds`` in this process (first run one interval after start); an exception is
        logged and counted, the next tick runs again."""
        self._check_name(name)
        if seconds <= 0:
            raise ValueError("seconds must be positive")
        job = _Interval(name, seconds, func)
        self._intervals[name] = job
        if self._scheduler is not None:
            self._add_interval(self._scheduler, job)

    def register_periodic(
        self,
        name: str,
        cron: str | CronTrigger,
        func: Callable[[Period], Awaitable[None]],
        *,
        catch_up: timedelta | None = None,
        timeout: timedelta | None = None,
    ) -> None:
        """Run ``func(period)`` once per fire of ``cron`` (crontab in the org time zone, e.g. ``"0 18 * * mon-fri"``)
        across restarts and replicas. ``catch_up``: how long after its fire time a period may still be started
        (late, retried, taken over, after downtime); default ``[scheduler] catch_up_hours``. ``timeout``: a run is
        cancelled (and counts as failed) after this long, and another process may take over a ``running`` row this
        old; default ``[scheduler] run_timeout_minutes``."""
        self._check_name(name)
        cfg = self.rt.settings.scheduler
        window = catch_up if catch_up is not None else timedelta(hours=cfg.catch_up_hours)
        if window < MIN_CATCH_UP:
            raise ValueError(f"catch_up must be at least {MIN_CATCH_UP}")
        limit = timeout if timeout is not None else timedelta(minutes=cfg.run_timeout_minutes)
        if limit <= timedelta(0):
            raise ValueError("timeout must be positive")
        job = _Periodic(name, cron_trigger(cron, self.rt.settings.org.tz), func, window, limit)
        self._periodic[name] = job
        if self._scheduler is not None:
            self._add_periodic(self._scheduler, job)
            self._kick([name])

    def remove(self, name: str) -> None:
        """Unregister a job (a run in progress finishes)."""
        self._intervals.pop(name, None)
        self._periodic.pop(name, None)
        if self._scheduler is not None:
            with contextlib.suppress(JobLookupError):
                self._scheduler.remove_job(name)
            if not self._periodic:
                with contextlib.suppress(JobLookupError):
                    self._scheduler.remove_job(RECHECK)

    def _check_name(self, name: str) -> None:
        if not name or len(name) > MAX_NAME or name == RECHECK:
            raise ValueError(f"job name must be 1-{MAX_NAME} characters and not {RECHECK!r}")
        if name in self._intervals or name in self._periodic:
            raise ValueError(f"job {name!r} is already registered")

    # ---- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the scheduler and look at every periodic job's due period in the background (catch-up after
        downtime; ``idle()`` waits for it)."""
        if self._scheduler is not None:
            return
        scheduler = AsyncIOScheduler(timezone=self.rt.settings.org.tz)
        for interval in self._intervals.values():
            self._add_interval(scheduler, interval)
        for periodic in self._periodic.values():
            self._add_periodic(scheduler, periodic)
        scheduler.start()
        self._scheduler = scheduler
        self._kick(self._periodic)

    async def stop(self, grace: float = 30.0) -> None:
        """No new runs; wait up to ``grace`` seconds for the runs in progress (an escalation sweep finishes its
        transaction), then cancel what is left (a cancelled periodic run is recorded as failed and retried by the
        next process)."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.pause()
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in late:
                log.warning("job task %s still running after %.0f s at stop: cancelled", task.get_name(), grace)
                task.cancel()
            if late:
                await asyncio.wait(late)
        if scheduler is not None:
            # Only now: APScheduler's asyncio executor cancels the coroutines still running at shutdown.
            scheduler.shutdown(wait=False)

    async def idle(self) -> None:
        """Wait until no run started by the scheduler (or by start) is in progress."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    def _add_interval(self, scheduler: AsyncIOScheduler, job: _Interval) -> None:
        scheduler.add_job(
            self._run_interval,
            "interval",
            args=[job.name],
            seconds=job.seconds,
            id=job.name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )

    def _add_periodic(self, scheduler: AsyncIOScheduler, job: _Periodic) -> None:
        # The cron only says *when* to look; which period is due is computed from the runtime's clock.
        scheduler.add_job(self._fire, job.trigger, args=[job.name], id=job.name, coalesce=True, misfire_grace_time=None)
        if scheduler.get_job(RECHECK) is None:
            scheduler.add_job(
                self._fire,
                "interval",
                seconds=self.rt.settings.scheduler.check_interval_seconds,
                id=RECHECK,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=None,
            )

    async def _run_interval(self, name: str) -> None:
        job = self._intervals.get(name)
        task = asyncio.current_task()
        if job is None or task is None:
            return
        self._tasks.add(task)
        try:
            await job.func()
        except Exception:
            log.exception("job %s failed", name)
            self.rt.metrics.errors.labels("jobs").inc()
        finally:
            self._tasks.discard(task)

    async def _fire(self, name: str | None = None) -> None:
        """Scheduler callback: look at one periodic job (its cron fired) or all of them (the periodic check)."""
        self._kick(list(self._periodic) if name is None else [name])

    def _kick(self, names: Iterable[str]) -> None:
        """Look at each job's due period in a background task, unless this process is already at it."""
        for name in names:
            if name in self._periodic and name not in self._busy:
                task = asyncio.get_running_loop().create_task(self._look_logged(name), name=f"job-{name}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _look_logged(self, name: str) -> None:
        try:
            await self._look(name)
        except Exception:
            log.exception("job %s: looking at its due period failed", name)
            self.rt.metrics.errors.labels("jobs").inc()

    # ---- periodic runs -----------------------------------------------------------------------------------------

    async def run_due(self, names: Iterable[str] | None = None) -> list[RunResult]:
        """Run the due period of each periodic job (all by default) unless a process has done it, has it in hand,
        or it failed ``max_attempts`` times; returns what happened per job. What the scheduler does at start, on a
        cron fire and at every check; tests call it directly."""
        chosen = list(self._periodic) if names is None else list(names)
        return list(await asyncio.gather(*(self._look(name) for name in chosen)))

    async def _look(self, name: str) -> RunResult:
        job = self._periodic.get(name)
        if job is None:  # removed since the look was scheduled
            return RunResult(name, None, "idle")
        if name in self._busy:
            return RunResult(name, None, "busy")
        self._busy.add(name)
        try:
            now = self.rt.clock.now()
            fire = latest_fire(job.trigger, now, job.catch_up)
            if fire is None:
                return RunResult(name, None, "idle")
            key = period_key(fire)
            claim = await self._claim(job, key, now)
            if isinstance(claim, str):
                return RunResult(name, key, claim)
            run_id, attempt = claim
            return await self._execute(job, run_id, Period(name, key, fire, attempt))
        finally:
            self._busy.discard(name)

    async def _claim(self, job: _Periodic, key: str, now: datetime) -> tuple[int, int] | Outcome:
        """Insert this run's ``running`` row, or take over a failed / dead / stuck one; returns (row id, attempt),
        or why not."""
        me = str(self.owner)
        insert = sqlite_insert if self.rt.db.is_sqlite else pg_insert
        statement = (
            insert(JobRun)
            .values(job=job.name, period=key, status="running", owner=me, started_at=now, attempts=1)
            .on_conflict_do_nothing()
            .returning(JobRun.id)
        )
        async with self.rt.db.transaction() as s:
            run_id = await s.scalar(statement)
            if run_id is not None:
                return run_id, 1
            row = (
                await s.execute(
                    select(JobRun.id, JobRun.status, JobRun.owner, JobRun.started_at, JobRun.attempts).where(
                        JobRun.job == job.name, JobRun.period == key
                    )
                )
            ).one()
            if row.status == "done":
                return "skipped"
            if row.status == "failed":
                if row.attempts >= self.rt.settings.scheduler.max_attempts:
                    return "given up"
                why = "retry after a failure"
            elif row.owner == me:
                why = "left running by this process"  # its outcome was never recorded (this process is not at it)
            elif (holder := Owner.parse(row.owner or "")) is not None and provably_dead(
                holder, self.owner, self.processes
            ):
                why = f"owner {row.owner} is dead"
            elif as_utc(row.started_at) + job.timeout <= now:
                why = f"running since {as_utc(row.started_at).isoformat()}, past the {job.timeout} timeout"
            else:
                return "running"
            # Compare-and-set: of two processes taking the row over, one updates it, the other finds it changed.
            taken = await s.execute(
                update(JobRun)
                .where(JobRun.id == row.id, JobRun.status == row.status, JobRun.attempts == row.attempts)
                .values(status="running", owner=me, started_at=now, finished_at=None, attempts=row.attempts + 1)
                .execution_options(synchronize_session=False)
            )
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                return "running"
        log.warning("job %s period %s: attempt %s (%s)", job.name, key, row.attempts + 1, why)
        return row.id, row.attempts + 1

    async def _execute(self, job: _Periodic, run_id: int, period: Period) -> RunResult:
        log.info("job %s period %s: attempt %s starts", job.name, period.key, period.attempt)
        error: str | None = None
        try:
            async with asyncio.timeout(job.timeout.total_seconds()) as limit:
                await job.func(period)
        except asyncio.CancelledError:
            try:
                await self._finish(run_id, period, "cancelled (the process stopped mid-run)")
            except Exception:
                log.exception("job %s period %s: cancelled run not recorded", job.name, period.key)
            raise
        except Exception as exc:
            if isinstance(exc, TimeoutError) and limit.expired():
                error = f"timed out after {job.timeout}"
            else:
                error = f"{type(exc).__name__}: {exc}"
            log.exception("job %s period %s: attempt %s failed", job.name, period.key, period.attempt)
            self.rt.metrics.errors.labels("jobs").inc()
        recorded = await self._finish(run_id, period, error)
        if not recorded:
            log.warning("job %s period %s: taken over meanwhile, this run's outcome is dropped", job.name, period.key)
        elif error is None:
            log.info("job %s period %s: done", job.name, period.key)
        return RunResult(job.name, period.key, "failed" if error else "done", period.attempt, error)

    async def _finish(self, run_id: int, period: Period, error: str | None) -> bool:
        """Mark this run done (``error`` None; a previous attempt's error stays for the record) or failed; False if
        the row is no longer this run's."""
        values: dict[str, Any] = {"status": "done" if error is None else "failed", "finished_at": self.rt.clock.now()}
        if error is not None:
            values["error"] = error[:ERROR_CHARS]
        async with self.rt.db.transaction() as s:
            result = await s.execute(
                update(JobRun)
                .where(
                    JobRun.id == run_id,
                    JobRun.status == "running",
                    JobRun.owner == str(self.owner),
                    JobRun.attempts == period.attempt,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]
