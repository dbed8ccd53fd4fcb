"""The escalation sweep as a runtime component: an interval job on the runtime's scheduler (``bot.jobs``) runs
``sweep`` every ``[escalation] sweep_interval_seconds``.

Each sweep takes due cards in batches, one transaction per batch: select the due rows (``FOR UPDATE SKIP LOCKED``
on PostgreSQL, so another replica takes other rows), advance each card's state machine, write the notices to the
outbox and the new ``next_due_at`` — and commit. The card's ORM version counter turns every write into a
compare-and-set, so a slow sweep overlapping the next one, a tap landing mid-sweep, or a second replica never
sends a step twice: the loser's transaction rolls back whole and the card is looked at again next time.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from bot import outbox
from bot.core.intents import Intent, SendCard
from bot.infra import i18n
from bot.services import escalation as esc
from bot.services import recipients
from bot.services.requests import card_no, request_no
from cards.escalation import escalation_card
from storage.models import Customer, SupportRequest, TaskCard

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass
class SweepStats:
    cards: int = 0
    notices: int = 0
    skipped: int = 0
    conflicts: int = 0


JOB = "escalation-sweep"


class Escalator:
    """Registers the sweep on the runtime's scheduler; ``sweep`` can also be called directly (tests, catch-up at
    start)."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self._registered = False
        self._lock = asyncio.Lock()

    def start(self) -> None:
        cfg = self.rt.settings.escalation
        if not cfg.enabled or self._registered:
            return
        # An interval job: never overlapped by the next tick of this process (max_instances=1, coalesce); other
        # replicas may overlap it, the row claims handle that. No job_runs bookkeeping: every tick sweeps.
        self.rt.jobs.register_interval(JOB, cfg.sweep_interval_seconds, self._tick)
        self._registered = True

    async def stop(self) -> None:
        if self._registered:
            self.rt.jobs.remove(JOB)
            self._registered = False
        async with self._lock:  # let a sweep in progress finish its transaction
            pass

    async def _tick(self) -> None:
        try:
            await self.sweep()
        except Exception:
            log.exception("escalation sweep failed")
            self.rt.metrics.errors.labels("escalation").inc()

    async def sweep(self, max_batches: int = 1000) -> SweepStats:
        """Advance every due card (in batches); returns what was done. Missed steps are caught up once each."""
        stats = SweepStats()
        async with self._lock:
            for _ in range(max_batches):
                done = await self._batch(stats)
                if done < self.rt.settings.escalation.batch_size:
                    break
        if stats.notices:
            self.rt.outbox.wake()
        return stats

    async def _batch(self, stats: SweepStats) -> int:
        rt = self.rt
        now = rt.clock.now()
        settings = rt.settings
        try:
            async with rt.db.transaction() as s:
                ids = await esc.due_card_ids(s, now, settings.escalation.batch_size, postgres=not rt.db.is_sqlite)
                if not ids:
                    return 0
                cards = list(await s.scalars(select(TaskCard).where(TaskCard.id.in_(ids)).order_by(TaskCard.id)))
                # One query each for the batch's requests, their customers and the directory, instead of per card
                # (the session's identity map then answers the per-card lookups).
                requests = list(
                    await s.scalars(select(SupportRequest).where(SupportRequest.id.in_({c.request_id for c in cards})))
                )
                (await s.scalars(select(Customer).where(Customer.id.in_({r.customer_id for r in requests})))).all()
                people = await esc.People.load(s)
                # No autoflush while advancing: each card is written once, at commit, in one UPDATE … WHERE version.
                with s.no_autoflush:
                    for card in cards:
                        if card.next_due_at is None or card.next_due_at > now:
                            continue  # handled by someone else since the select (SQLite: another process)
                        result = await esc.advance(s, settings, card, now, people)
                        stats.cards += 1
                        stats.skipped += result.skipped
                        intents: list[Intent] = []
                        for notice in result.notices:
                            intents += await self._render(s, notice)
                            rt.metrics.escalations.labels(notice.kind).inc()
                        stats.notices += len(result.notices)
                        outbox.enqueue(s, intents, now)
                return len(ids)
        except StaleDataError:
            # A tap or another replica changed one of the cards mid-sweep: nothing of this batch was written.
            stats.conflicts += 1
            log.info("escalation batch lost a race; retried next sweep")
            return 0

    async def _render(self, session: AsyncSession, notice: esc.Notice) -> list[Intent]:
        rt = self.rt
        card, request = notice.card, notice.request
        settings = rt.settings
        fallback = card.policy.get("channel") or request.source_channel
        if notice.kind == "remind":
            when = i18n.fmt_when(notice.deadline, settings.org.tz)
            key = "esc.remind_claim" if notice.trigger == "not_claimed" else "esc.remind_done"
            return [
                recipients.text_to(
                    rt.channel_for, user, fallback, key, card=card_no(card.id), title=card.title, when=when
                )
                for user in notice.targets
            ]
        view = await recipients.task_view(session, settings, card, request)
        locale = recipients.org_locale(settings)
        rendered = escalation_card(
            view,
            locale,
            settings.org.tz,
            card.id,
            ref=f"{card.ref}-e{notice.number}",
            level=notice.level,
            # Since the card was submitted, at the sweep's instant (docs/escalation.md).
            waited=esc.waited(card, notice.at),
            repeat=notice.kind == "repeat",
            deadline=notice.deadline,
            first_response=notice.deadline_kind == esc.FIRST_RESPONSE,
        )
        ids = [u.id for u in notice.targets]
        groups = await recipients.by_channel(session, rt.channel_for, ids, fallback)
        log.info(
            "escalation: card %s (%s) level %s %s → %s", card.id, request_no(request.id), notice.level, notice.kind, ids
        )
        return [SendCard(channel=ch, user_ids=tuple(us), card=rendered, shared=True) for ch, us in groups.items()]
