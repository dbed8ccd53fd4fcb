"""The SQLite write lock: urgent waiters (persisting before an acknowledgement) go before background work."""

from __future__ import annotations

import asyncio

import pytest

from storage.db import PriorityLock


async def test_urgent_waiter_overtakes_normal_waiters() -> None:
    lock = PriorityLock()
    order: list[str] = []
    holding = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with lock.hold():
            holding.set()
            await release.wait()

    async def worker(name: str, urgent: bool) -> None:
        async with lock.hold(urgent):
            order.append(name)

    first = asyncio.create_task(holder())
    await holding.wait()
    tasks = [asyncio.create_task(worker("bg1", False)), asyncio.create_task(worker("bg2", False))]
    await asyncio.sleep(0)  # let them queue
    tasks.append(asyncio.create_task(worker("ack", True)))
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, *tasks)
    assert order == ["ack", "bg1", "bg2"]


async def test_cancelled_waiter_does_not_keep_the_lock() -> None:
    lock = PriorityLock()
    holding = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with lock.hold():
            holding.set()
            await release.wait()

    first = asyncio.create_task(holder())
    await holding.wait()
    waiter = asyncio.create_task(lock.hold(True).__aenter__())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    release.set()
    await first
    async with asyncio.timeout(1), lock.hold():
        pass
