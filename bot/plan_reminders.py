"""The optional plan reminders as periodic jobs on the runtime's scheduler (``bot.jobs``; docs/plans.md):

- ``plan-morning`` at ``[plans] morning_reminder``: today's plan to each rep who has one;
- ``plan-nudge`` at ``[plans] open_items_nudge``: the items still open to each rep who has some.

Each fires every day at its time and does nothing on a day off of the working calendar (so a 调休 Saturday gets
its reminder and a holiday Monday none); ``job_runs`` runs each period once across restarts and replicas, and
each rep's reminder is claimed in ``digest_sends`` with its outbox row, so a round retried after it had sent
sends nothing twice.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from bot import outbox
from bot.calendar.workcal import get_calendar
from bot.core.intents import Intent, SendText
from bot.infra import i18n
from bot.jobs import Period
from bot.services import advice, plans, sends

if TYPE_CHECKING:
    from bot.runtime import Runtime

MORNING = "plan-morning"
NUDGE = "plan-nudge"


def _cron(hhmm: str) -> str:
    hour, minute = hhmm.split(":")
    return f"{int(minute)} {int(hour)} * * *"


def register(rt: Runtime) -> None:
    """Register the reminders the config asks for (an empty time: none)."""
    cfg = rt.settings.plans

    async def morning(period: Period) -> None:
        await remind(rt, period, open_only=False)

    async def nudge(period: Period) -> None:
        await remind(rt, period, open_only=True)

    # A reminder more than two hours late (the bot was down) is not worth sending any more.
    if cfg.morning_reminder:
        rt.jobs.register_periodic(MORNING, _cron(cfg.morning_reminder), morning, catch_up=timedelta(hours=2))
    if cfg.open_items_nudge:
        rt.jobs.register_periodic(NUDGE, _cron(cfg.open_items_nudge), nudge, catch_up=timedelta(hours=2))


def _line(item: plans.ItemView, locale: str) -> str:
    """○ P12 浙一（目的） and, under it, the manager's newest advice for the customer on one line (if any)."""
    line = f"{'✓' if item.done else '○'} {plans.plan_no(item.id)} {item.customer}"
    if item.purpose:
        line += i18n.t(locale, "plan.purpose_suffix", purpose=item.purpose)
    tip = advice.advice_line(item.advice, locale)
    return f"{line}\n{tip}" if tip else line


async def remind(rt: Runtime, period: Period, *, open_only: bool) -> int:
    """One reminder round for ``period``'s day; returns how many reps were told."""
    settings = rt.settings
    tz = settings.org.tz
    day = period.at.astimezone(tz).date()
    if not get_calendar(settings.calendar, tz).is_working_day(day):
        return 0
    key = "plan.nudge" if open_only else "plan.morning"
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        found = await plans.reminders(s, day, open_only=open_only)
        intents: list[Intent] = []
        for r in found:
            if not await sends.claim(s, r.rep.id, MORNING if not open_only else NUDGE, day, now):
                continue  # this round was run before and had sent it (docs/plans.md)
            lines = "\n".join(_line(i, r.rep.locale) for i in r.items)
            text = i18n.t(r.rep.locale, key, count=len(r.items), lines=lines)
            intents.append(SendText(channel=rt.channel_for(r.rep), user_ids=(r.rep.id,), text=text))
        outbox.enqueue(s, intents, now)
    rt.outbox.wake()
    return len(found)
