"""Escalation: a state machine on the task-card row, advanced by a periodic sweep. No platform code here.

When a card is created its policy is frozen into ``task_cards.policy`` as a list of *steps* with absolute due
instants (reminders and levels, computed with the working calendar of that moment), so a later config change
affects new cards only. ``esc_step`` points at the next step; ``next_due_at`` (indexed) is the next instant the
sweep must look at the card. The sweep claims due rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite
serialises writers) and advances each with a compare-and-set on ``version``, writing the notices (outbox rows) and
the new ``next_due_at`` in the same transaction: two replicas or a restart never send a step twice or skip one.
A card that missed several steps while the bot was down fires each missed level once, then waits for the next.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.calendar.workcal import add_hours, get_calendar
from bot.config import EscalationLevelConfig, RequestTypeConfig, Settings
from bot.infra import audit
from storage.models import SupportRequest, TaskCard, User
from storage.vocab import DEPARTMENT_ROLES, TASK_CLOSED, Role, TaskState

log = logging.getLogger(__name__)

CLOSED = TASK_CLOSED
# Steps never fire while a department waits for the rep's answer: the card's clock is paused then.
PAUSED = frozenset({TaskState.NEED_INFO})


# ---- the frozen policy -----------------------------------------------------------------------------------------


def effective_policy(settings: Settings, department: str, type_key: str) -> tuple[list[EscalationLevelConfig], float]:
    """Levels and reminder fraction for a department and request type: type override, else department, else
    the defaults (each override replaces what it gives)."""
    esc = settings.escalation
    levels, remind = list(esc.levels), esc.remind_at
    for override in (esc.departments.get(department), esc.request_types.get(type_key)):
        if override is None:
            continue
        if override.levels is not None:
            levels = list(override.levels)
        if override.remind_at is not None:
            remind = override.remind_at
    return levels, remind


def freeze_policy(
    settings: Settings,
    rt: RequestTypeConfig,
    type_key: str,
    department: str,
    created_at: datetime,
    first_response_hours: float,
    complete_hours: float,
    *,
    deadlines: tuple[datetime, datetime] | None = None,
) -> dict[str, Any]:
    """The card's steps with absolute due instants, sorted by due (reminders before a level due at the same time).

    ``deadlines``: the card's (respond by, due at) when they are not the SLA's (a needed-by date made them
    earlier): levels after an SLA count from them, reminders fall at the same fraction of the time left."""
    levels, remind = effective_policy(settings, department, type_key)
    urgent = rt.calendar_hours

    def at(hours: float) -> datetime:
        return add_hours(settings, created_at, hours, calendar=urgent)

    sla_hours = {"first_response": first_response_hours, "complete": complete_hours}
    anchors: dict[str, datetime] = {}
    if deadlines is not None:
        for name, instant in zip(("first_response", "complete"), deadlines, strict=True):
            if instant != at(sla_hours[name]):
                anchors[name] = instant

    def fraction(name: str) -> datetime:
        if name in anchors:
            return created_at + (anchors[name] - created_at) * remind
        return at(sla_hours[name] * remind)

    def level_due(after_sla: str | None, after_hours: float) -> datetime:
        if after_sla in anchors:
            # Zero hours after the deadline is the deadline itself (working hours would move an 18:00 to the morning).
            anchor = anchors[after_sla]
            return add_hours(settings, anchor, after_hours, calendar=urgent) if after_hours else anchor
        return at(sla_hours.get(after_sla or "", 0.0) + after_hours)

    steps: list[dict[str, Any]] = []
    if remind > 0:
        steps.append({"kind": "remind", "trigger": "not_claimed", "due": fraction("first_response")})
        steps.append({"kind": "remind", "trigger": "not_done", "due": fraction("complete")})
    for n, level in enumerate(levels, start=1):
        steps.append(
            {
                "kind": "level",
                "level": n,
                "trigger": level.trigger,
                "due": level_due(level.after_sla, level.after_hours),
                "notify": list(level.notify),
                "repeat": level.repeat_every_hours,
            }
        )
    steps.sort(key=lambda s: (s["due"], 0 if s["kind"] == "remind" else 1))
    for s in steps:
        s["due"] = s["due"].isoformat()
    return {"urgent": urgent, "steps": steps, "type": type_key}


def _due(step: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(step["due"])


def trigger_holds(card: TaskCard, trigger: str) -> bool:
    if card.state in CLOSED:
        return False
    if trigger == "not_claimed":
        return card.first_response_at is None
    return True


def next_due(card: TaskCard) -> datetime | None:
    """The next instant the sweep must look at ``card``: the next step or repeat, not before a snooze ends."""
    if card.state in CLOSED or card.state in PAUSED:
        return None
    steps: list[dict[str, Any]] = list((card.policy or {}).get("steps", []))
    candidates = []
    if card.esc_step < len(steps):
        candidates.append(_due(steps[card.esc_step]))
    if card.repeat_at is not None:
        candidates.append(card.repeat_at)
    if not candidates:
        return None
    due = min(candidates)
    if card.snoozed_until is not None and card.snoozed_until > due:
        due = card.snoozed_until
    return due


def reschedule(card: TaskCard) -> None:
    """Call after every transition: closed or paused cards leave the sweep's index, others get their next due."""
    card.next_due_at = next_due(card)


# The audit rows about task cards: the sweep's steps, snoozes, and the transitions in ``bot.services.requests``.
audit_card = audit.Trail("task_card")


# ---- the sweep -------------------------------------------------------------------------------------------------


@dataclass
class Notice:
    """One notification the sweep decided on; the caller renders and enqueues it in the same transaction."""

    kind: str  # remind | level | repeat
    card: TaskCard
    request: SupportRequest
    level: int
    targets: list[User]
    deadline: datetime | None = None
    trigger: str = "not_done"
    # The notice card's number (its ref is <card ref>-e<number>), fixed when the step is taken: one sweep that
    # catches up two levels sends two notices, -e1 and -e2 (a platform may refuse a message id used twice).
    number: int = 0


@dataclass
class SweepResult:
    cards: int = 0
    notices: list[Notice] = field(default_factory=list)
    skipped: int = 0  # steps whose trigger no longer held (handled in time)


@dataclass
class People:
    """The active directory, loaded once per sweep batch (an org has hundreds or thousands of people, a batch tens
    of cards): target lookups then cost no query per card."""

    by_id: dict[str, User]

    @classmethod
    async def load(cls, session: AsyncSession) -> People:
        rows = await session.scalars(select(User).where(User.active.is_(True)).order_by(User.id))
        return cls({u.id: u for u in rows})

    def department(self, department: str) -> list[User]:
        return [u for u in self.by_id.values() if u.department == department and DEPARTMENT_ROLES & set(u.roles or [])]

    def with_role(self, role: str) -> list[User]:
        return [u for u in self.by_id.values() if role in (u.roles or [])]


async def resolve_targets(
    session: AsyncSession,
    card: TaskCard,
    request: SupportRequest,
    names: Sequence[str],
    people: People | None = None,
) -> list[User]:
    """Users named by level targets (head, director, department, holder, requester, user:<id>, role:<role>)."""
    directory = people or await People.load(session)
    wanted: dict[str, User] = {}
    for name in names:
        found: list[User] = []
        if name == "head":
            found = [u for u in directory.department(card.department) if Role.HEAD in (u.roles or [])]
        elif name == "department":
            found = directory.department(card.department)
        elif name == "holder":
            holder = directory.by_id.get(card.holder_id or "")
            found = [holder] if holder is not None else directory.department(card.department)
        elif name == "requester":
            rep = directory.by_id.get(request.rep_id)
            found = [rep] if rep is not None else []
        elif name.startswith("user:"):
            user = directory.by_id.get(name[5:])
            found = [user] if user is not None else []
        else:
            found = directory.with_role("director" if name == "director" else name.removeprefix("role:"))
        for u in found:
            wanted.setdefault(u.id, u)
    return list(wanted.values())


def _quiet(settings: Settings, now: datetime) -> datetime | None:
    """When quiet hours end, if ``now`` is inside them."""
    cal = get_calendar(settings.calendar, settings.org.tz)
    return cal.next_non_quiet(now) if cal.in_quiet_hours(now) else None


async def advance(
    session: AsyncSession, settings: Settings, card: TaskCard, now: datetime, people: People | None = None
) -> SweepResult:
    """Fire every step of ``card`` due at ``now`` (each missed level once), set the next due. Caller holds the row."""
    result = SweepResult(cards=1)
    people = people or await People.load(session)
    request = await session.get(SupportRequest, card.request_id)
    if request is None:
        card.next_due_at = None
        return result
    steps: list[dict[str, Any]] = list((card.policy or {}).get("steps", []))
    urgent = bool((card.policy or {}).get("urgent"))
    # Reminders are not urgent on any request type: they wait out quiet hours. Levels never wait.
    quiet_end = _quiet(settings, now)
    for _ in range(len(steps) + 2):
        due = next_due(card)
        if due is None or due > now:
            break
        repeat_first = card.repeat_at is not None and (
            card.esc_step >= len(steps) or card.repeat_at <= _due(steps[card.esc_step])
        )
        if repeat_first:
            step = steps[card.repeat_step or 0]
            if not trigger_holds(card, step["trigger"]):
                card.repeat_at = card.repeat_step = None
                continue
            await _fire(session, people, card, request, step, "repeat", now, result)
            card.repeat_at = add_hours(settings, now, float(step["repeat"]), calendar=urgent)
            continue
        step = steps[card.esc_step]
        if step["kind"] == "remind":
            deadline = card.respond_by if step["trigger"] == "not_claimed" else card.due_at
            if not trigger_holds(card, step["trigger"]) or deadline <= now:
                result.skipped += 1  # handled in time, or too late for a reminder: the level takes over
                card.esc_step += 1
                continue
            if quiet_end is not None and quiet_end < deadline:
                # It waits for the end of quiet hours, unless the deadline comes first (then now is the last chance).
                card.next_due_at = quiet_end
                return result
            await _fire(session, people, card, request, step, "remind", now, result, deadline=deadline)
            card.esc_step += 1
            continue
        index = card.esc_step
        card.esc_step += 1
        if not trigger_holds(card, step["trigger"]):
            result.skipped += 1
            continue
        await _fire(session, people, card, request, step, "level", now, result)
        if float(step.get("repeat") or 0) > 0:
            card.repeat_step = index
            card.repeat_at = add_hours(settings, now, float(step["repeat"]), calendar=urgent)
        else:
            card.repeat_step = card.repeat_at = None
    card.next_due_at = next_due(card)
    return result


async def _fire(
    session: AsyncSession,
    people: People,
    card: TaskCard,
    request: SupportRequest,
    step: dict[str, Any],
    kind: str,
    now: datetime,
    result: SweepResult,
    *,
    deadline: datetime | None = None,
) -> None:
    if kind == "remind":
        targets = await resolve_targets(session, card, request, ["holder"], people)
    else:
        targets = await resolve_targets(session, card, request, list(step.get("notify") or ["head"]), people)
        if not targets:
            # Nobody to tell (a department without a head, a user who left): an escalation must reach someone.
            targets = await resolve_targets(session, card, request, ["director", "role:admin"], people)
        card.watchers = sorted({*(card.watchers or []), *(u.id for u in targets)})
        card.notices = (card.notices or 0) + 1
        card.notice_log = [*(card.notice_log or []), {"n": card.notices, "targets": [u.id for u in targets]}]
    level = int(step.get("level") or 0)
    changes = {"level": level, "targets": [u.id for u in targets], "state": card.state, "holder": card.holder_id}
    if kind != "remind":
        changes["notice"] = card.notices  # names the notice card (<card ref>-e<n>), to settle it when the card closes
    audit_card(session, card.id, f"escalation.{kind}", changes, at=now, actor_id=None, channel=None)
    number = card.notices if kind != "remind" else 0
    trigger = str(step.get("trigger") or "")
    result.notices.append(Notice(kind, card, request, level, targets, deadline, trigger, number))


async def due_card_ids(session: AsyncSession, now: datetime, limit: int, *, postgres: bool) -> list[int]:
    """Ids of due cards, oldest due first, locked for this transaction on PostgreSQL (others skip them)."""
    stmt = (
        select(TaskCard.id)
        .where(TaskCard.next_due_at.is_not(None), TaskCard.next_due_at <= now)
        .order_by(TaskCard.next_due_at)
        .limit(limit)
    )
    if postgres:
        stmt = stmt.with_for_update(skip_locked=True)
    return list(await session.scalars(stmt))


def snooze_until(settings: Settings, now: datetime, choice: str) -> datetime:
    """When a snooze chosen on a notice ends: in one or four hours, or at the start of the next working day."""
    if choice == "1h":
        return now + timedelta(hours=1)
    if choice == "4h":
        return now + timedelta(hours=4)
    # "Until tomorrow 09:00": the start of the next working day.
    tz = settings.org.tz
    cal = get_calendar(settings.calendar, tz)
    tomorrow = (now.astimezone(tz) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return cal.next_working_start(tomorrow)


def snooze(
    session: AsyncSession, card: TaskCard, actor: User, until: datetime, reason: str, now: datetime, channel: str
) -> None:
    card.snoozed_until = until
    card.updated_at = now
    reschedule(card)
    audit_card(
        session,
        card.id,
        "escalation.snooze",
        {"until": until.isoformat(), "reason": reason[:500]},
        at=now,
        actor_id=actor.id,
        channel=channel,
    )


def sent_notices(card: TaskCard) -> list[tuple[str, list[str]]]:
    """(notice card ref, its recipients) for every escalation notice sent about ``card`` (its ``notice_log``)."""
    return [(f"{card.ref}-e{entry['n']}", list(entry.get("targets") or [])) for entry in card.notice_log or []]


def waited(card: TaskCard, now: datetime) -> timedelta:
    return max(timedelta(0), now - card.created_at)
