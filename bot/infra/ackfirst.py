"""Acknowledgements first: during a burst of callbacks, background work gives way to answering them.

A platform callback must be answered within seconds (WeCom retries after 5 s), its reply can follow later. Both run
on one event loop, so every background step (handling an event, an outbox round) taken during a burst delays the
answers queued behind it. A burst is ``burst_at`` or more callbacks being answered at the same time; it lasts until
``window`` seconds after the last such moment. During a burst a background unit starts only on its budget: one unit
at a time, and after a unit that took d seconds the next one waits ``d * (1 - share) / share``, so the background
keeps about ``share`` of the time: slowed down, never starved. Outside bursts (a few callbacks at a time, however
steady) background units start at once, as many as ask, and what they take is not charged to a later burst: under
sustained load (a moment of 8 callbacks now and then) the charge of many concurrent units, each counted with the
time it waited for the others, used to hold the background back for seconds at the next burst.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
from collections.abc import AsyncIterator, Callable, Iterator


class AckFirst:
    """``with acknowledging():`` around answering a callback; ``async with background():`` around background units."""

    def __init__(
        self, share: float = 0.15, burst_at: int = 8, window: float = 0.05, now: Callable[[], float] | None = None
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        if burst_at < 1 or window < 0:
            raise ValueError("burst_at must be at least 1 and window not negative")
        self._ratio = (1 - share) / share
        # The event loop's clock unless a test injects one.
        self._clock = now
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

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    def in_burst(self) -> bool:
        return self._now() < self._burst_until

    @contextlib.contextmanager
    def acknowledging(self) -> Iterator[None]:
        self._inflight += 1
        if self._inflight >= self._burst_at:
            self._burst_until = self._now() + self._window
        try:
            yield
        finally:
            self._inflight -= 1

    @contextlib.asynccontextmanager
    async def background(self) -> AsyncIterator[None]:
        budgeted = await self._admit(asyncio.get_running_loop())
        start = self._now()
        try:
            yield
        finally:
            if budgeted:
                end = self._now()
                self._not_before = max(self._not_before, end + (end - start) * self._ratio)
                self._budgeted = False
            if self._waiters:
                self._release()

    def _budget_free(self, now: float) -> bool:
        return not self._budgeted and now >= self._not_before

    async def _admit(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Wait for a turn; True when it was given on budget (then it is the only one)."""
        now = self._now()
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
        now = self._now()
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
        loop = asyncio.get_running_loop()
        at = loop.time() + max(0.0, when - self._now())  # on the loop's clock
        if self._timer is not None:
            if self._timer.when() <= at:
                return
            self._timer.cancel()
        self._timer = loop.call_at(at, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._release()
