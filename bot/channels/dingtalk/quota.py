"""DingTalk's monthly API call quota: counting, /healthz and /metrics, the admins' 80 % warning.

DingTalk's standard edition allows 5,000 API calls a month (robot sends and card calls count, token calls do not).
Every call the client sends is counted here in memory (``count``: no database write per call). The count is added
to ``platform_api_calls`` (channel, month) with an upsert inside the outbox round's outcome commit
(``RoundAware.record``: no extra commit) and taken off the in-memory pending count only once that commit is done
(``committed``): a failed commit keeps the calls for the next round. Approximation, documented in docs/dingtalk.md:
calls of a process killed before its round's commit are lost (a round's worth, at most ~20 calls); calls made by a
round in which nothing reached anyone wait for the next round that sends something (or ``flush`` at close).

The month total read back by the upsert (``RETURNING calls``) includes the other replicas' calls: it is what
/healthz and ``salesbot_platform_api_calls`` show, plus this process's pending calls. At 80 % of
``monthly_call_quota`` the admins (users with role admin) get one text in chat: ``warned_at`` on the month's row is
set with ``UPDATE … WHERE warned_at IS NULL`` in the same commit as the outbox rows, so restarts and replicas warn
once per month.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import outbound
from bot.core.intents import SendText
from bot.infra import i18n
from storage.db import Database
from storage.models import PlatformApiCall, User
from storage.vocab import Role

log = logging.getLogger(__name__)

WARN_SHARE = 0.8


class CallCounter:
    """Calls this month on one channel: ``stored`` (the database's total, all replicas, as last read) plus this
    process's ``pending`` calls not yet written."""

    def __init__(
        self,
        db: Database,
        channel: str,
        quota: int,
        month: Callable[[], str],
        *,
        admin_channel: Callable[[User], str] | None = None,
        on_change: Callable[[int], None] | None = None,
    ) -> None:
        self.db = db
        self.channel = channel
        self.quota = quota
        self._month = month
        self.admin_channel = admin_channel
        self.on_change = on_change
        self.month = month()
        self.stored = 0
        self.pending = 0
        self._flushing: deque[tuple[str, int]] = deque()
        self._loaded = False
        self.warned = False

    # ---- counting ---------------------------------------------------------------------------------------------

    def count(self, _path: str = "") -> None:
        self._roll()
        self.pending += 1
        self._changed()

    def _roll(self) -> None:
        month = self._month()
        if month != self.month:
            self.month, self.stored, self.pending, self.warned = month, 0, 0, False
            self._loaded = False

    @property
    def this_month(self) -> int:
        self._roll()
        in_flight = sum(n for m, n in self._flushing if m == self.month)
        return self.stored + self.pending + in_flight

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self.this_month)

    async def load(self) -> None:
        """Read the month's total once (at the first round, and again after the month changes)."""
        self._roll()
        if self._loaded:
            return
        async with self.db.read() as s:
            row = (
                await s.execute(
                    select(PlatformApiCall.calls, PlatformApiCall.warned_at).where(
                        PlatformApiCall.channel == self.channel, PlatformApiCall.month == self.month
                    )
                )
            ).first()
        if row is not None:
            self.stored = max(self.stored, int(row[0]))
            self.warned = row[1] is not None
        self._loaded = True
        self._changed()

    # ---- writing ------------------------------------------------------------------------------------------------

    async def record(self, session: AsyncSession, now: datetime) -> None:
        """Inside a commit: add the pending calls to the month's row; warn the admins at 80 % (once)."""
        self._roll()
        n, month = self.pending, self.month
        if n == 0 and (self.warned or self.this_month < self.quota * WARN_SHARE):
            return
        self.pending = 0
        self._flushing.append((month, n))
        insert = sqlite_insert if self.db.is_sqlite else pg_insert
        stmt = insert(PlatformApiCall).values(channel=self.channel, month=month, calls=n, updated_at=now)
        upsert = stmt.on_conflict_do_update(
            index_elements=["channel", "month"],
            set_={"calls": PlatformApiCall.calls + stmt.excluded.calls, "updated_at": now},
        ).returning(PlatformApiCall.calls)
        total = int((await session.execute(upsert)).scalar_one())
        self.stored = total - n
        if not self.warned and total >= self.quota * WARN_SHARE:
            await self._warn(session, month, total, now)

    def committed(self) -> None:
        """The commit holding the last ``record`` is done: its calls are in ``stored`` now."""
        if self._flushing:
            month, n = self._flushing.popleft()
            if month == self.month:
                self.stored += n
        self._changed()

    def failed(self) -> None:
        """The commit failed: its calls are pending again."""
        if self._flushing:
            month, n = self._flushing.popleft()
            if month == self.month:
                self.pending += n

    async def flush(self, now: datetime) -> None:
        """Write the pending calls in a transaction of their own (at close)."""
        if not self.pending:
            return
        try:
            async with self.db.transaction() as s:
                await self.record(s, now)
        except Exception:
            self.failed()
            log.warning("dingtalk: the API call count could not be saved")
            return
        self.committed()

    async def _warn(self, session: AsyncSession, month: str, total: int, now: datetime) -> None:
        won = (
            await session.execute(
                update(PlatformApiCall)
                .where(
                    PlatformApiCall.channel == self.channel,
                    PlatformApiCall.month == month,
                    PlatformApiCall.warned_at.is_(None),
                )
                .values(warned_at=now)
                .returning(PlatformApiCall.id)
            )
        ).first()
        self.warned = True
        if won is None:
            return  # another replica (or an earlier run) warned already
        admins = [u for u in await session.scalars(select(User).where(User.active.is_(True))) if _is_admin(u)]
        log.warning(
            "dingtalk: %s API calls this month, %.0f%% of the quota %s", total, 100 * total / self.quota, self.quota
        )
        intents = []
        for admin in admins:
            channel = self.admin_channel(admin) if self.admin_channel else self.channel
            text = i18n.t(admin.locale, "dingtalk.quota_warning", calls=total, quota=self.quota, month=month)
            intents.append(SendText(channel=channel, user_ids=(admin.id,), text=text))
        outbound.enqueue(session, intents, now)

    def health(self) -> dict[str, object]:
        return {"api_calls_this_month": self.this_month, "monthly_call_quota": self.quota, "month": self.month}


def _is_admin(user: User) -> bool:
    roles: Iterable[str] = user.roles or []
    return Role.ADMIN in roles
