"""Group commit: concurrent callers share one flush, each gets its own result, failures reach every caller."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from bot.infra.batching import GroupCommitter


async def test_concurrent_submissions_share_flushes_and_keep_their_results() -> None:
    batches: list[list[int]] = []

    async def flush(items: Sequence[int]) -> list[int]:
        batches.append(list(items))
        await asyncio.sleep(0)
        return [i * 10 for i in items]

    committer: GroupCommitter[int, int] = GroupCommitter(flush, max_batch=50)
    results = await asyncio.gather(*(committer.submit(i) for i in range(120)))
    assert results == [i * 10 for i in range(120)]
    assert sorted(i for b in batches for i in b) == list(range(120))
    assert len(batches) < 120 and max(len(b) for b in batches) <= 50


async def test_a_failed_flush_fails_its_callers_and_the_next_batch_still_runs() -> None:
    calls = 0

    async def flush(items: Sequence[str]) -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("disk full")
        return list(items)

    committer: GroupCommitter[str, str] = GroupCommitter(flush)
    with pytest.raises(RuntimeError):
        await committer.submit("a")
    assert await committer.submit("b") == "b"


async def test_a_caller_that_goes_away_does_not_cancel_the_flush_of_the_others() -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    flushed: list[list[str]] = []

    async def flush(items: Sequence[str]) -> list[str]:
        started.set()
        await release.wait()
        flushed.append(list(items))
        return [i.upper() for i in items]

    committer: GroupCommitter[str, str] = GroupCommitter(flush)
    leaving = asyncio.create_task(committer.submit("a"))
    staying = asyncio.create_task(committer.submit("b"))
    await started.wait()
    leaving.cancel()
    release.set()
    assert await staying == "B"
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert flushed == [["a", "b"]]
    await committer.wait_idle()
