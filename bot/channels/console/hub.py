"""Wakes browsers that long-poll for their feed when something is delivered to them."""

from __future__ import annotations

import asyncio
from collections import defaultdict


class ConsoleHub:
    """One asyncio.Event per waiting user; ``notify`` sets it, the long-poll re-reads the feed."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._closed = False

    def close(self) -> None:
        """Release every waiting long-poll (server shutdown must not wait for their timeouts)."""
        self._closed = True
        for events in self._waiters.values():
            for ev in events:
                ev.set()

    def notify(self, user_ids: list[str] | tuple[str, ...]) -> None:
        for uid in user_ids:
            for ev in self._waiters.get(uid, ()):
                ev.set()

    async def wait(self, user_id: str, seconds: float) -> bool:
        """Wait up to ``seconds`` for a notification; True if one came."""
        if self._closed:
            return False
        ev = asyncio.Event()
        self._waiters[user_id].add(ev)
        try:
            await asyncio.wait_for(ev.wait(), seconds)
            return True
        except TimeoutError:
            return False
        finally:
            self._waiters[user_id].discard(ev)
            if not self._waiters[user_id]:
                del self._waiters[user_id]
