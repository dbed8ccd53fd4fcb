"""Group commit: callers that arrive while a transaction is being written share the next one.

Each caller still waits for the commit that contains its own work, so "commit before acknowledge" holds, but N
concurrent callers cost one transaction instead of N (SQLite has one writer; PostgreSQL saves round trips).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class GroupCommitter(Generic[T, R]):
    """``await submit(item)`` → the result ``flush`` gave that item, once the batch holding it is committed."""

    def __init__(self, flush: Callable[[Sequence[T]], Awaitable[Sequence[R]]], max_batch: int = 200) -> None:
        self._flush = flush
        self._max = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        # A caller that goes away (client disconnect) cancels only its own future: the flush runs in its own task
        # and skips futures that are already done, so the others still get their results.
        return await self.enqueue(item)

    def enqueue(self, item: T) -> asyncio.Future[R]:
        """Queue ``item`` for the next batch without waiting: the future has its result once that batch is
        committed (await it before relying on the write)."""
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, fut))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="group-commit")
        return fut

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self._max], self._pending[self._max :]
            try:
                results = await self._flush([item for item, _ in batch])
            except Exception as exc:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), result in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(result)

    async def wait_idle(self) -> None:
        """Wait until nothing is pending (shutdown)."""
        while self._task is not None and not self._task.done():
            await asyncio.wait({self._task})
