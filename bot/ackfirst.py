"""Acknowledgements first: during a burst of callbacks, background work gives way to answering them.

A platform callback must be answered within seconds (WeCom retries after 5 s), its reply can follow later. Both run
on one event loop, so every background step (handling an event, an outbox round) taken during a burst delays the
answers queued behind it. A burst is ``burst_at`` or more callbacks being answered at the same time; it lasts until
``window`` seconds after the last such moment. During a burst a background unit starts only on its budget: one unit
at a time, and after a unit that took d seconds the next one waits ``d * (1 - share) / share``, so the background
keeps about ``share`` of the time: slowed down, never starved. Outside bursts (a few callbacks at a time, however
steady) background units start at once, as many as ask.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
from collections.abc import AsyncIterator, Iterator


class AckFirst:
    """``with acknowledging():`` around answering a callback; ``async with background():`` around background units."""

    def __init__(self, share: float = 0.15, burst_at: int = 8, window: float = 0.05) -> None:
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        if burst_at < 1 or window < 0:
            raise ValueError("burst_at must be at least 1 and window not negative")
        self._ratio = (1 - share) / share
        self._burst_at = burst_at
        self._window = window
        self._inflight = 0
        self._burst_until = -math.inf  # loop time at which the current burst ends
        self._not_before = -math.inf  # earliest start of the next unit admitted on budget
        self._budgeted = False  # a unit admitted on budget is running
        self._waiters: collections.deque[asyncio.Future[bool]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None

    @property
    def in_flight(self) -> int:
        """Callbacks being answered right now."""
        return self._inflight

    @property
    def waiting(self) -> int:
        """Background units waiting for their turn."""
        return sum(1 for w in self._waiters if not w.done())

    def in_burst(self) -> bool:
        return asyncio.get_running_loop().time() < self._burst_until

    @contextlib.contextmanager
    def acknowledging(self) -> Iterator[None]:
        self._inflight += 1
        if self._inflight >= self._burst_at:
            self._burst_until = asyncio.get_running_loop().time() + self._window
        try:
            yield
        finally:
            self._inflight -= 1

    @contextlib.asynccontextmanager
    async def background(self) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        budgeted = await self._admit(loop)
        start = loop.time()
        try:
            yield
        finally:
            end = loop.time()
            self._not_before = max(self._not_before, end + (end - start) * self._ratio)
            if budgeted:
                self._budgeted = False
            if self._waiters:
                self._release()

    def _budget_free(self, now: float) -> bool:
        return not self._budgeted and now >= self._not_before

    async def _admit(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Wait for a turn; True when it was given on budget (then it is the only one)."""
        now = loop.time()
        if not self._waiters:
            if now >= self._burst_until:
                return False
            if self._budget_free(now):
                self._budgeted = True
                return True
        fut: asyncio.Future[bool] = loop.create_future()
        self._waiters.append(fut)
        self._release()
        try:
            return await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                # The turn was given just as the caller went away: pass it on.
                if fut.result():
                    self._budgeted = False
                self._release()
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(fut)
            raise

    def _release(self) -> None:
        """Give turns to the waiters that may start now, else arm the timer for the moment one could."""
        now = asyncio.get_running_loop().time()
        while self._waiters:
            head = self._waiters[0]
            if head.done():
                self._waiters.popleft()
            elif now >= self._burst_until:
                self._waiters.popleft()
                head.set_result(False)
            elif self._budget_free(now):
                self._waiters.popleft()
                self._budgeted = True
                head.set_result(True)
            else:
                break
        if self._waiters:
            # The burst may end, or (unless a budgeted unit runs: its end releases again) the budget free up.
            self._arm(self._burst_until if self._budgeted else min(self._burst_until, self._not_before))

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            if self._timer.when() <= when:
                return
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._release()
