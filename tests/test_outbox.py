"""Outbox delivery: retries with backoff, give-up horizon, per-person order, crash recovery by lease: a dead
predecessor's rows released at start, live owners' rows left alone, heartbeat renewal, lost leases."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot.channels.base import Delivery, DeliveryError, OutboxItem
from bot.core.intents import SendText
from bot.infra.clock import FixedClock
from bot.infra.leases import Owner
from bot.outbox import enqueue
from bot.runtime import Runtime
from storage.models import AuditLog, OutboxMessage, User
from tests.conftest import make_settings


class FlakyChannel:
    """A channel at the boundary: fails the first ``failures`` deliveries of each text, then succeeds."""

    name = "flaky"

    def __init__(
        self, failures: int = 0, retryable: bool = True, only: set[str] | None = None, unknown: bool = False
    ) -> None:
        self.failures = failures
        self.unknown = unknown
        self.only = only
        self.retryable = retryable
        self.seen: list[OutboxItem] = []
        self.delivered: list[str] = []

    def can_reach(self, user: User) -> bool:
        return True

    async def deliver(self, item: OutboxItem) -> Delivery:
        self.seen.append(item)
        await item.starting_call()
        text = str(item.payload["text"])
        flaky = self.only is None or text in self.only
        if flaky and sum(1 for i in self.seen if i.payload["text"] == text) <= self.failures:
            if self.unknown:
                raise DeliveryError("timeout", retryable=True, code="timeout", outcome_unknown=True)
            raise DeliveryError("system busy", retryable=self.retryable, code=-1)
        self.delivered.append(text)
        return Delivery(platform_msg_id=f"m{len(self.delivered)}")


async def _send(rt: Runtime, *texts: str, user: str = "rep01") -> None:
    async with rt.db.transaction() as s:
        enqueue(s, [SendText(channel="flaky", user_ids=(user,), text=t) for t in texts], rt.clock.now())


async def _rows(rt: Runtime) -> list[OutboxMessage]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


async def _advance_until_quiet(rt: Runtime, clock: FixedClock, step: timedelta, rounds: int = 100) -> None:
    for _ in range(rounds):
        await rt.outbox.drain()
        if all(r.status in ("sent", "dead") for r in await _rows(rt)):
            return
        clock.set(clock.now() + step)
    raise AssertionError("outbox did not settle")


async def test_retryable_failures_are_retried_with_backoff_then_delivered_once(
    runtime: Runtime, clock: FixedClock
) -> None:
    channel = FlakyChannel(failures=2)
    runtime.channels["flaky"] = channel
    await _send(runtime, "你好")
    await runtime.outbox.drain()
    [row] = await _rows(runtime)
    assert (row.status, row.attempts) == ("pending", 1) and row.next_attempt_at > clock.now() - timedelta(seconds=1)
    await _advance_until_quiet(runtime, clock, timedelta(seconds=5))
    [row] = await _rows(runtime)
    assert (row.status, row.attempts, channel.delivered) == ("sent", 3, ["你好"])
    # A definite error ("system busy") means nothing was delivered: the retries are not flagged as resends.
    assert [i.resend for i in channel.seen] == [False, False, False]


async def test_after_an_unknown_outcome_every_retry_is_flagged_as_a_possible_resend(
    runtime: Runtime, clock: FixedClock
) -> None:
    channel = FlakyChannel(failures=2, unknown=True)
    runtime.channels["flaky"] = channel
    await _send(runtime, "超时了")
    await _advance_until_quiet(runtime, clock, timedelta(seconds=5))
    assert channel.delivered == ["超时了"]
    assert [i.resend for i in channel.seen] == [False, True, True]


async def test_gives_up_after_the_horizon_with_audit_and_metric(runtime: Runtime, clock: FixedClock) -> None:
    runtime.channels["flaky"] = FlakyChannel(failures=10_000)
    await _send(runtime, "永远失败")
    await _advance_until_quiet(runtime, clock, timedelta(minutes=10), rounds=200)
    [row] = await _rows(runtime)
    assert row.status == "dead"
    assert clock.now() - row.created_at <= timedelta(seconds=runtime.settings.outbox.give_up_after_seconds)
    async with runtime.db.read() as s:
        audit = list(await s.scalars(select(AuditLog).where(AuditLog.action == "outbox.dead")))
    assert [a.entity_id for a in audit] == [str(row.id)]
    assert b'salesbot_outbox_delivered_total{channel="flaky",result="dead"} 1.0' in runtime.metrics.render()


async def test_non_retryable_error_is_dead_at_once(runtime: Runtime) -> None:
    runtime.channels["flaky"] = FlakyChannel(failures=1, retryable=False)
    await _send(runtime, "坏消息")
    await runtime.outbox.drain()
    [row] = await _rows(runtime)
    assert (row.status, row.attempts) == ("dead", 1)


async def test_a_persons_messages_never_overtake_a_failed_one(runtime: Runtime, clock: FixedClock) -> None:
    channel = FlakyChannel(failures=1, only={"第一条"})
    runtime.channels["flaky"] = channel
    await _send(runtime, "第一条", "第二条", "第三条")
    await _send(runtime, "别人的", user="rep02")
    await runtime.outbox.drain()
    # The first failed; the second and third wait for it, another person's message is not held up.
    assert channel.delivered == ["别人的"]
    await _advance_until_quiet(runtime, clock, timedelta(seconds=5))
    mine = [t for t in channel.delivered if t != "别人的"]
    assert mine == ["第一条", "第二条", "第三条"]


class HangingChannel(FlakyChannel):
    """Never answers: with ``call_started`` the platform call is in flight when the worker dies, without it the
    worker dies before calling (e.g. while checking the rate budget)."""

    def __init__(self, call_started: bool = True) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.call_started = call_started

    async def deliver(self, item: OutboxItem) -> Delivery:
        self.seen.append(item)
        if self.call_started:
            await item.starting_call()
        self.entered.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


@pytest.mark.parametrize("call_started", [True, False])
async def test_a_row_claimed_by_a_dead_worker_is_retried_after_the_lease(
    runtime: Runtime, clock: FixedClock, call_started: bool
) -> None:
    hanging = HangingChannel(call_started)
    runtime.channels["flaky"] = hanging
    await _send(runtime, "崩溃前")
    worker = asyncio.create_task(runtime.outbox.run_once())
    await hanging.entered.wait()
    worker.cancel()  # the worker dies
    with contextlib.suppress(asyncio.CancelledError):
        await worker
    channel = FlakyChannel()
    runtime.channels["flaky"] = channel
    await runtime.outbox.drain()
    assert channel.delivered == []  # still leased to the dead worker
    clock.set(clock.now() + timedelta(seconds=runtime.settings.outbox.lease_seconds + 1))
    await runtime.outbox.drain()
    # Only a call that was in flight makes the retry a possible duplicate (WeCom then drops the copy).
    assert channel.delivered == ["崩溃前"] and channel.seen[-1].resend is call_started


# ---- leases: reclaim at start, heartbeat, lost leases (issue 9: replies must not wait a minute after a crash) ----


class FakeProcesses:
    """The process table at the boundary: pid → start time; a pid not listed has no process."""

    def __init__(self, running: dict[int, str] | None = None) -> None:
        self.running = running or {}

    def start_time(self, pid: int) -> str | None:
        return self.running.get(pid)


class Naps:
    """The heartbeat's sleep at the boundary: a nap lasts until the test ends it with ``end_nap()``."""

    def __init__(self) -> None:
        self._naps: asyncio.Queue[asyncio.Future[None]] = asyncio.Queue()

    async def sleep(self, seconds: float) -> None:
        nap = asyncio.get_running_loop().create_future()
        self._naps.put_nowait(nap)
        await nap

    async def end_nap(self) -> None:
        """End the current nap and wait until the heartbeat naps again (its renewal is committed by then)."""
        (await self._naps.get()).set_result(None)
        self._naps.put_nowait(await self._naps.get())


class GatedChannel(FlakyChannel):
    """Holds its delivery at ``gate`` (with its platform call started, or ``before_call``), then answers: delivered,
    or a definite failure with ``fail``."""

    def __init__(self, before_call: bool = False, fail: bool = False) -> None:
        super().__init__()
        self.before_call = before_call
        self.fail = fail
        self.calls = 0
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()
        self.finished: list[BaseException | None] = []

    async def deliver(self, item: OutboxItem) -> Delivery:
        self.seen.append(item)
        try:
            if not self.before_call:
                await self._call(item)
            self.entered.set()
            await self.gate.wait()
            if self.before_call:
                await self._call(item)
        except BaseException as exc:
            self.finished.append(exc)
            raise
        self.finished.append(None)
        if self.fail:
            raise DeliveryError("invalid message", retryable=False, code=40008)
        self.delivered.append(str(item.payload["text"]))
        return Delivery(platform_msg_id="late")

    async def _call(self, item: OutboxItem) -> None:
        await item.starting_call()
        self.calls += 1


@contextlib.asynccontextmanager
async def other_process(db_url: str, clock: FixedClock, channel: FlakyChannel) -> AsyncIterator[Runtime]:
    """A second bot on the same database (not started: its outbox is driven by the test)."""
    rt = Runtime(make_settings(db_url), clock=clock)
    rt.channels["flaky"] = channel
    try:
        yield rt
    finally:
        await rt.close()


async def _lease(rt: Runtime, row_id: int, owner: Owner, *, calls_started: int, until: timedelta) -> None:
    """Mark a row as leased to ``owner`` (what a worker's claim leaves behind when its process dies)."""
    async with rt.db.transaction() as s:
        await s.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row_id)
            .values(
                status="sending",
                claimed_by=str(owner),
                claimed_until=rt.clock.now() + until,
                calls_started=calls_started,
            )
        )


def _neighbour(me: Owner, pid: int = 4_000_001, started: str = "4242", host: str | None = None) -> Owner:
    return Owner(host or me.host, me.pid_ns, pid, started, "0a0b0c0d0e0f")


@pytest.mark.parametrize("death", ["pid gone", "pid reused"])
async def test_a_dead_predecessors_rows_are_released_at_start_without_waiting_for_the_lease(
    runtime: Runtime, db_url: str, clock: FixedClock, death: str
) -> None:
    channel = FlakyChannel()
    runtime.channels["flaky"] = channel
    await runtime.outbox.stop()  # only the restarted process delivers here
    await _send(runtime, "发送中被杀", "还没发")
    first, second = await _rows(runtime)
    dead = _neighbour(runtime.outbox.owner)
    # The first row's call was in flight at the kill, the second had not started.
    await _lease(runtime, first.id, dead, calls_started=1, until=timedelta(seconds=15))
    await _lease(runtime, second.id, dead, calls_started=0, until=timedelta(seconds=15))
    async with other_process(db_url, clock, channel) as restarted:
        restarted.outbox.processes = FakeProcesses({} if death == "pid gone" else {dead.pid: "9999"})
        await restarted.start()
        await restarted.outbox.drain()
        # No clock advance: released at start, delivered in order; only the in-flight one is a possible duplicate.
        assert channel.delivered == ["发送中被杀", "还没发"]
        assert [i.resend for i in channel.seen] == [True, False]
        rows = await _rows(runtime)
        assert [(r.status, r.attempts, r.calls_started) for r in rows] == [("sent", 1, 2), ("sent", 1, 1)]
        assert {r.claimed_by for r in rows} == {str(restarted.outbox.owner)}


@pytest.mark.parametrize("holder", ["live process on this host", "process on another host", "this process"])
async def test_rows_of_a_live_owner_are_never_reclaimed_only_retried_after_the_lease(
    runtime: Runtime, db_url: str, clock: FixedClock, holder: str
) -> None:
    channel = FlakyChannel()
    runtime.channels["flaky"] = channel
    await runtime.outbox.stop()
    await _send(runtime, "别人的租约")
    [row] = await _rows(runtime)
    me = runtime.outbox.owner
    owner = {
        "live process on this host": _neighbour(me),
        "process on another host": _neighbour(me, host="other-host"),
        "this process": me,  # another worker of this very process (e.g. a second replica in tests)
    }[holder]
    lease = timedelta(seconds=runtime.settings.outbox.lease_seconds)
    await _lease(runtime, row.id, owner, calls_started=1, until=lease)
    async with other_process(db_url, clock, channel) as restarted:
        # The neighbour runs with the start time it recorded; "other-host" pids mean nothing here.
        restarted.outbox.processes = FakeProcesses({owner.pid: owner.started} if holder.startswith("live") else {})
        await restarted.start()
        await restarted.outbox.drain()
        assert channel.delivered == []
        clock.set(clock.now() + lease - timedelta(seconds=1))
        await restarted.outbox.drain()
        assert channel.delivered == []
        clock.set(clock.now() + timedelta(seconds=2))
        await restarted.outbox.drain()
        assert channel.delivered == ["别人的租约"] and channel.seen[-1].resend is True


async def test_a_long_delivery_keeps_its_lease_by_heartbeat(runtime: Runtime, db_url: str, clock: FixedClock) -> None:
    await runtime.outbox.stop()
    slow = GatedChannel()
    runtime.channels["flaky"] = slow
    naps = Naps()
    runtime.outbox.sleep = naps.sleep
    await _send(runtime, "慢慢发")
    delivering = asyncio.create_task(runtime.outbox.run_once())
    await slow.entered.wait()
    lease = timedelta(seconds=runtime.settings.outbox.lease_seconds)
    other = FlakyChannel()
    async with other_process(db_url, clock, other) as rival:
        # Three beats over 1.8 leases: the row stays with the slow sender; the rival never takes it.
        for _ in range(3):
            clock.set(clock.now() + lease * 0.6)
            await naps.end_nap()
            await rival.outbox.drain()
            assert other.seen == []
        [row] = await _rows(runtime)
        assert row.claimed_until == clock.now() + lease and row.claimed_by == str(runtime.outbox.owner)
        slow.gate.set()
        assert await delivering == 1
        [row] = await _rows(runtime)
        assert (row.status, row.attempts, row.calls_started, slow.delivered) == ("sent", 1, 1, ["慢慢发"])


@pytest.mark.parametrize("late", ["failure", "success"])
async def test_a_stale_owners_late_outcome_does_not_overwrite_the_new_owners(
    runtime: Runtime, db_url: str, clock: FixedClock, late: str
) -> None:
    await runtime.outbox.stop()
    stalled = GatedChannel(fail=late == "failure")
    runtime.channels["flaky"] = stalled
    runtime.outbox.sleep = Naps().sleep  # the stalled process's heartbeat never beats
    await _send(runtime, "被接管")
    stale = asyncio.create_task(runtime.outbox.run_once())
    await stalled.entered.wait()
    clock.set(clock.now() + timedelta(seconds=runtime.settings.outbox.lease_seconds + 1))
    new = FlakyChannel()
    async with other_process(db_url, clock, new) as rival:
        assert await rival.outbox.drain() == 1
        assert new.delivered == ["被接管"] and new.seen[-1].resend is True  # the stalled call may have arrived
        stalled.gate.set()  # the stalled process wakes up and reports
        await stale
    [row] = await _rows(runtime)
    assert (row.status, row.attempts, row.platform_msg_id, row.last_error) == ("sent", 1, "m1", None)
    assert row.claimed_by == str(rival.outbox.owner)
    async with runtime.db.read() as s:
        assert list(await s.scalars(select(AuditLog).where(AuditLog.action == "outbox.dead"))) == []


async def test_a_worker_that_lost_its_lease_starts_no_platform_call(
    runtime: Runtime, db_url: str, clock: FixedClock
) -> None:
    await runtime.outbox.stop()
    stalled = GatedChannel(before_call=True)  # e.g. stuck checking the rate budget
    runtime.channels["flaky"] = stalled
    runtime.outbox.sleep = Naps().sleep
    await _send(runtime, "只发一次")
    stale = asyncio.create_task(runtime.outbox.run_once())
    await stalled.entered.wait()
    clock.set(clock.now() + timedelta(seconds=runtime.settings.outbox.lease_seconds + 1))
    new = FlakyChannel()
    async with other_process(db_url, clock, new) as rival:
        await rival.outbox.drain()
        stalled.gate.set()
        await stale
    assert new.delivered == ["只发一次"] and new.seen[-1].resend is False
    assert stalled.calls == 0 and isinstance(stalled.finished[-1], DeliveryError)
    [row] = await _rows(runtime)
    assert (row.status, row.calls_started) == ("sent", 1)
