"""Outbox delivery: retries with backoff, give-up horizon, per-person order, crash recovery by lease."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.channels.base import Delivery, DeliveryError, OutboxItem
from bot.clock import FixedClock
from bot.intents import SendText
from bot.outbox import enqueue
from bot.runtime import Runtime
from storage.models import AuditLog, OutboxMessage, User


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
