"""Acknowledgements first: background units start at once outside bursts, one at a time on budget during a burst,
all of them once the burst is over; a caller that gives up its turn does not block the others."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import pytest

from bot.infra.ackfirst import AckFirst


@contextlib.contextmanager
def callbacks(gate: AckFirst, n: int) -> Iterator[None]:
    """``n`` callbacks being answered at the same time."""
    with contextlib.ExitStack() as stack:
        for _ in range(n):
            stack.enter_context(gate.acknowledging())
        yield


async def test_outside_a_burst_background_units_start_at_once_and_together() -> None:
    gate = AckFirst(burst_at=3)
    with callbacks(gate, 2):  # below the burst threshold: a steady trickle
        async with gate.background(), gate.background():
            assert gate.waiting == 0
            assert not gate.in_burst()


async def test_during_a_burst_units_run_one_at_a_time_on_budget() -> None:
    gate = AckFirst(share=1.0, burst_at=2, window=60.0)
    order: list[str] = []
    first_running = asyncio.Event()
    release_first = asyncio.Event()

    async def unit(name: str, hold: asyncio.Event | None = None) -> None:
        async with gate.background():
            order.append(f"{name} start")
            if hold is not None:
                first_running.set()
                await hold.wait()
            order.append(f"{name} end")

    with callbacks(gate, 2):
        assert gate.in_burst()
        first = asyncio.create_task(unit("a", release_first))
        await first_running.wait()
        second = asyncio.create_task(unit("b"))
        await asyncio.sleep(0)  # let it ask for its turn
        assert gate.waiting == 1
        release_first.set()
        await asyncio.gather(first, second)
    assert order == ["a start", "a end", "b start", "b end"]


async def test_waiters_start_together_when_the_burst_is_over() -> None:
    gate = AckFirst(share=1.0, burst_at=1, window=0.01)
    hold = asyncio.Event()
    running = asyncio.Event()
    inside = 0
    most = 0

    async def holder() -> None:
        async with gate.background():  # admitted on budget: the others cannot be, while it runs
            running.set()
            await hold.wait()

    async def unit() -> None:
        nonlocal inside, most
        async with gate.background():
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0)
            inside -= 1

    with gate.acknowledging():
        first = asyncio.create_task(holder())
        await running.wait()
        waiting = [asyncio.create_task(unit()) for _ in range(3)]
    # The callback is answered; once the burst window closes the three start, although the budgeted unit still runs.
    await asyncio.wait_for(asyncio.gather(*waiting), timeout=5)
    assert most == 3
    assert not gate.in_burst()
    assert not first.done()
    hold.set()
    await first


async def test_a_waiter_that_goes_away_does_not_keep_the_turn() -> None:
    gate = AckFirst(share=1.0, burst_at=1, window=60.0)
    hold = asyncio.Event()
    running = asyncio.Event()

    async def holder() -> None:
        async with gate.background():
            running.set()
            await hold.wait()

    async def unit() -> None:
        async with gate.background():
            pass

    with gate.acknowledging():
        first = asyncio.create_task(holder())
        await running.wait()
        leaving = asyncio.create_task(unit())
        staying = asyncio.create_task(unit())
        await asyncio.sleep(0)
        assert gate.waiting == 2
        leaving.cancel()
        hold.set()
        await asyncio.wait_for(staying, timeout=5)
        await first
        with pytest.raises(asyncio.CancelledError):
            await leaving
    assert gate.waiting == 0


def test_share_must_be_a_fraction() -> None:
    with pytest.raises(ValueError):
        AckFirst(share=0)


async def test_work_done_outside_a_burst_does_not_hold_back_the_next_burst() -> None:
    # Regression: under sustained load, concurrent units started outside bursts (each counted with the time it
    # waited for the others) pushed the next budgeted start seconds away, and replies lagged behind by that much.
    t = [100.0]
    gate = AckFirst(share=0.1, burst_at=1, window=60.0, now=lambda: t[0])
    async with gate.background(), gate.background():  # no burst: both start at once
        t[0] += 10.0  # and take long
    with gate.acknowledging():
        assert gate.in_burst()
        async with asyncio.timeout(5), gate.background():  # admitted on budget at once
            assert gate.waiting == 0


async def test_a_budgeted_unit_is_charged_to_the_next_one() -> None:
    t = [100.0]
    gate = AckFirst(share=0.5, burst_at=1, window=60.0, now=lambda: t[0])
    with gate.acknowledging():
        async with gate.background():  # on budget
            t[0] += 1.0
        waiter = asyncio.create_task(_unit(gate))
        await asyncio.sleep(0)
        assert gate.waiting == 1  # its turn comes 1 s (share 0.5) after the first one ended
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiter


async def _unit(gate: AckFirst) -> None:
    async with gate.background():
        pass
