"""The scheduled digest as a runtime component (issue 12; docs/digest.md).

* ``daily-digest``: a periodic job at ``[digest] time`` (org time) every day; on working days of the working
  calendar each manager gets their team's digest and each director everyone's (with the chart of the last 7 working
  days, ``bot.services.digest_chart``), and each manager a follow-up card per rep of theirs below the plan
  threshold. Once per person per day: the person's ``digest_sends`` row (unique per person, kind and day) is
  written in the same transaction as their outbox rows (the chart's media row too), so a restart, a retried or
  taken-over run (``job_runs``) or a second replica never sends a digest twice; a run that died half way sends the
  rest when it is run again. After downtime the job's catch-up (``[scheduler] catch_up_hours``) sends the missed
  day's digest once.
* ``weekly-objections``: at ``[digest] weekly_objections_weekday`` / ``weekly_objections_time``, the week's top
  objections with example notes as a card to every member and the head of ``[digest] weekly_objections_department``.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from bot import outbox
from bot.calendar.workcal import get_calendar
from bot.core.intents import Intent, SendCard, SendRich
from bot.infra import i18n
from bot.services import digest_chart, followups, sends
from bot.services.digest import compute_digest
from bot.services.digest_render import render_digest
from bot.services.plan_rule import week_start
from cards.followup import ObjectionLine, followup_card, objections_card
from storage.models import User, Visit
from storage.vocab import Role

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.jobs import Period
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

DAILY_JOB = "daily-digest"
WEEKLY_JOB = "weekly-objections"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TOP_OBJECTIONS = 3
EXAMPLES = 2


def cron_at(hhmm: str, days: str = "*") -> str:
    hour, minute = (int(x) for x in hhmm.split(":"))
    return f"{minute} {hour} * * {days}"


class DigestPush:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self._registered = False

    def start(self) -> None:
        cfg = self.rt.settings.digest
        if self._registered or not cfg.enabled:
            return
        self.rt.jobs.register_periodic(DAILY_JOB, cron_at(cfg.time), self.send_daily)
        if cfg.weekly_objections_department:
            days = WEEKDAYS[cfg.weekly_objections_weekday - 1]
            self.rt.jobs.register_periodic(WEEKLY_JOB, cron_at(cfg.weekly_objections_time, days), self.send_weekly)
        self._registered = True

    # ---- the daily digest ----------------------------------------------------------------------------------------

    async def send_daily(self, period: Period) -> None:
        day = period.at.date()
        settings = self.rt.settings
        if not get_calendar(settings.calendar, settings.org.tz).is_working_day(day):
            log.info("digest: %s is not a working day, nothing sent", day)
            return
        async with self.rt.db.read() as s:
            people = [
                u
                for u in await s.scalars(select(User).where(User.active.is_(True)).order_by(User.id))
                if {Role.MANAGER, Role.DIRECTOR} & set(u.roles or [])
            ]
        sent = 0
        for person in people:
            sent += await self.send_to(person.id, day)
        log.info("digest: %s sent to %d of %d managers and directors", day, sent, len(people))

    async def send_to(self, user_id: str, day: date) -> bool:
        """``user_id``'s digest for ``day`` (and their follow-ups), unless it went out already: True if sent now."""
        rt, settings = self.rt, self.rt.settings
        now = rt.clock.now()
        # The figures and the chart are read and drawn first, outside the write transaction (on SQLite it holds the
        # one write lock: drawing a chart takes up to ~0.1 s); the claim below still decides whether anything goes.
        async with rt.db.read() as s:
            if await sends.made(s, user_id, "daily", day):
                return False
            user = await s.get(User, user_id)
            if user is None:
                return False
            digest = await compute_digest(s, settings, user, period="day", day=day, now=now)
            drawn = await digest_chart.draw(s, settings, user, digest)
        async with rt.db.transaction() as s:
            if not await sends.claim(s, user_id, "daily", day, now):
                return False
            user = await s.get(User, user_id)
            if user is None:
                return False
            channel = rt.channel_for(user)
            intents: list[Intent] = [
                SendRich(channel=channel, user_ids=(user.id,), rich=render_digest(digest, settings, user.locale))
            ]
            # The chart goes out with the digest's claim: stored and enqueued in this transaction, never twice.
            if drawn is not None:
                intents.extend(await digest_chart.send(s, settings, user, drawn, channel, now))
            if settings.digest.followup and Role.MANAGER in (user.roles or []):
                today = now.astimezone(settings.org.tz).date()
                for made in await followups.create(s, user, digest, day, now, channel):
                    card = followup_card(made, user.locale, today)
                    intents.append(SendCard(channel=channel, user_ids=(user.id,), card=card))
            outbox.enqueue(s, intents, now)
        return True

    # ---- the week's objections for marketing ---------------------------------------------------------------------

    async def send_weekly(self, period: Period) -> None:
        rt, settings = self.rt, self.rt.settings
        department = settings.digest.weekly_objections_department
        day = period.at.date()
        start = week_start(day)
        tz = settings.org.tz
        since = datetime.combine(start, time(0), tzinfo=tz)
        until = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
        now = rt.clock.now()
        async with rt.db.transaction() as s:
            lines = await top_objections(s, since, until)
            people = [
                u
                for u in await s.scalars(
                    select(User).where(User.active.is_(True), User.department == department).order_by(User.id)
                )
                if {Role.MEMBER, Role.HEAD} & set(u.roles or [])
            ]
            to = [u for u in people if await sends.claim(s, u.id, "objections", start, now)]
            if not to:
                return
            locale = i18n.normalize_locale(settings.org.default_locale)
            card = objections_card(f"objections-{start.isoformat()}", lines, start, day, locale)
            groups: dict[str, list[str]] = {}
            for u in to:
                groups.setdefault(rt.channel_for(u), []).append(u.id)
            outbox.enqueue(
                s,
                [SendCard(channel=ch, user_ids=tuple(ids), card=card, shared=True) for ch, ids in groups.items()],
                now,
            )


async def top_objections(session: AsyncSession, since: datetime, until: datetime) -> list[ObjectionLine]:
    """The most frequent objections of visits in [since, until), with up to two of the reps' notes each."""
    counts = (
        await session.execute(
            select(Visit.objection, func.count())
            .where(Visit.visited_at >= since, Visit.visited_at < until, Visit.objection.is_not(None))
            .group_by(Visit.objection)
            .order_by(func.count().desc(), Visit.objection)
            .limit(TOP_OBJECTIONS)
        )
    ).all()
    lines = []
    for objection, count in counts:
        notes = await session.scalars(
            select(Visit.objection_note)
            .where(
                Visit.visited_at >= since,
                Visit.visited_at < until,
                Visit.objection == objection,
                Visit.objection_note.is_not(None),
            )
            .order_by(Visit.visited_at.desc())
            .limit(EXAMPLES)
        )
        lines.append(ObjectionLine(str(objection), int(count), [n for n in notes if n]))
    return lines
