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
from typing import Any, Unpack

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.calendar.workcal import add_hours, get_calendar
from bot.config import EscalationLevelConfig, RequestTypeConfig, Settings
from bot.core.errors import DomainError
from bot.infra import audit
from bot.infra.words import fold_word, normalize_text
from storage.models import AuditLog, SupportRequest, TaskCard, User
from storage.vocab import CARD_ENTITY, DEPARTMENT_ROLES, TASK_CLOSED, CardEvent, Role, TaskState

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
                "deadline": level_deadline(level),
                "due": level_due(level.after_sla, level.after_hours),
                "notify": list(level.notify),
                "repeat": level.repeat_every_hours,
            }
        )
    steps.sort(key=lambda s: (s["due"], 0 if s["kind"] == "remind" else 1))
    for s in steps:
        s["due"] = s["due"].isoformat()
    return {"urgent": urgent, "steps": steps, "type": type_key}


FIRST_RESPONSE, COMPLETE = "first_response", "complete"


def level_deadline(level: EscalationLevelConfig) -> str:
    """The deadline a level is about (``first_response`` or ``complete``): the SLA it counts from, else the one its
    trigger watches (not claimed: the first response; not done: the completion)."""
    if level.after_sla is not None:
        return level.after_sla
    return FIRST_RESPONSE if level.trigger == "not_claimed" else COMPLETE


def step_deadline(card: TaskCard, step: dict[str, Any]) -> tuple[str, datetime]:
    """Which deadline a frozen step is about and when it is: the step's own (``deadline``, frozen since issue 11),
    else the one its trigger watches (policies frozen before)."""
    kind = str(step.get("deadline") or (FIRST_RESPONSE if step.get("trigger") == "not_claimed" else COMPLETE))
    return kind, card.respond_by if kind == FIRST_RESPONSE else card.due_at


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


def audit_card(
    session: AsyncSession, card_id: int, action: CardEvent, changes: dict[str, Any], **who: Unpack[audit.Who]
) -> AuditLog:
    """An audit row about a task card: the sweep's steps, snoozes, and the transitions in ``bot.services.requests``.
    ``action`` is one of ``CardEvent`` (an action outside it raises), so every row has its sentence in 升级记录."""
    event = CardEvent(action)
    return audit.record(session, action=event.value, entity=CARD_ENTITY, entity_id=card_id, changes=changes, **who)


# ---- the sweep -------------------------------------------------------------------------------------------------


@dataclass
class Notice:
    """One notification the sweep decided on; the caller renders and enqueues it in the same transaction."""

    kind: str  # remind | level | repeat
    card: TaskCard
    request: SupportRequest
    level: int
    targets: list[User]
    # The deadline the step is about (``deadline_kind``: first_response | complete) and when it was taken.
    deadline: datetime
    deadline_kind: str
    at: datetime
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

    def named(self, name: str, department: str) -> list[User]:
        """Whom a level target names in ``department`` whatever the card: head, director, department, user:<id>,
        role:<role>. (``holder`` and ``requester`` are a card's own people: ``resolve_targets``.)"""
        if name == "head":
            return [u for u in self.department(department) if Role.HEAD in (u.roles or [])]
        if name == "department":
            return self.department(department)
        if name.startswith("user:"):
            user = self.by_id.get(name[5:])
            return [user] if user is not None else []
        return self.with_role("director" if name == "director" else name.removeprefix("role:"))


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
        if name == "holder":
            holder = directory.by_id.get(card.holder_id or "")
            found = [holder] if holder is not None else directory.department(card.department)
        elif name == "requester":
            rep = directory.by_id.get(request.rep_id)
            found = [rep] if rep is not None else []
        else:
            found = directory.named(name, card.department)
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
            _, deadline = step_deadline(card, step)
            if not trigger_holds(card, step["trigger"]) or deadline <= now:
                result.skipped += 1  # handled in time, or too late for a reminder: the level takes over
                card.esc_step += 1
                continue
            if quiet_end is not None and quiet_end < deadline:
                # It waits for the end of quiet hours, unless the deadline comes first (then now is the last chance).
                card.next_due_at = quiet_end
                return result
            await _fire(session, people, card, request, step, "remind", now, result)
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


async def step_targets(
    session: AsyncSession, card: TaskCard, request: SupportRequest, step: dict[str, Any], people: People | None = None
) -> list[User]:
    """Whom a step tells: a reminder the holder (the department while nobody holds the card), a level whom it names,
    else the directors and admins (a department without a head, a user who left: an escalation must reach someone)."""
    if step.get("kind") == "remind":
        return await resolve_targets(session, card, request, ["holder"], people)
    targets = await resolve_targets(session, card, request, list(step.get("notify") or ["head"]), people)
    return targets or await resolve_targets(session, card, request, FALLBACK_TARGETS, people)


FALLBACK_TARGETS = ("director", "role:admin")


async def _fire(
    session: AsyncSession,
    people: People,
    card: TaskCard,
    request: SupportRequest,
    step: dict[str, Any],
    kind: str,
    now: datetime,
    result: SweepResult,
) -> None:
    targets = await step_targets(session, card, request, step, people)
    if kind != "remind":
        card.watchers = sorted({*(card.watchers or []), *(u.id for u in targets)})
        card.notices = (card.notices or 0) + 1
        card.notice_log = [*(card.notice_log or []), {"n": card.notices, "targets": [u.id for u in targets]}]
    level = int(step.get("level") or 0)
    trigger = str(step.get("trigger") or "")
    deadline_kind, deadline = step_deadline(card, step)
    changes = {
        "level": level,
        "targets": [u.id for u in targets],
        "state": card.state,
        "holder": card.holder_id,
        "trigger": trigger,  # what 升级记录 says happened: not claimed / not done
    }
    if kind != "remind":
        changes["notice"] = card.notices  # names the notice card (<card ref>-e<n>), to settle it when the card closes
    audit_card(session, card.id, SWEEP_EVENTS[kind], changes, at=now, actor_id=None, channel=None)
    number = card.notices if kind != "remind" else 0
    result.notices.append(
        Notice(kind, card, request, level, targets, deadline, deadline_kind, now, trigger=trigger, number=number)
    )


SWEEP_EVENTS = {"remind": CardEvent.REMIND, "level": CardEvent.LEVEL, "repeat": CardEvent.REPEAT}


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
        CardEvent.SNOOZE,
        {"until": until.isoformat(), "reason": reason[:500]},
        at=now,
        actor_id=actor.id,
        channel=channel,
    )


def sent_notices(card: TaskCard) -> list[tuple[str, list[str]]]:
    """(notice card ref, its recipients) for every escalation notice sent about ``card`` (its ``notice_log``)."""
    return [(f"{card.ref}-e{entry['n']}", list(entry.get("targets") or [])) for entry in card.notice_log or []]


def waited(card: TaskCard, now: datetime) -> timedelta:
    """How long the card has waited at ``now``: wall time since it was submitted (a notice's 已等待)."""
    return max(timedelta(0), now - card.created_at)


# ---- what people are told: the next step of a card, the policy of a department and request type ----------------


@dataclass(frozen=True)
class Upcoming:
    """What the sweep will do next about a card, and when (``升级记录``'s last line)."""

    at: datetime
    kind: str  # remind | level | repeat
    level: int
    trigger: str
    deadline_kind: str
    deadline: datetime
    step: dict[str, Any]
    snoozed: bool = False


def upcoming(card: TaskCard) -> Upcoming | None:
    """The next step that will do something as the card stands: steps whose trigger no longer holds, and reminders
    whose deadline comes first, are passed over (the sweep skips them); a repeat when it comes first; not before a
    snooze ends. None for closed and paused cards, or when nothing is left."""
    if card.state in CLOSED or card.state in PAUSED:
        return None
    steps: list[dict[str, Any]] = list((card.policy or {}).get("steps", []))
    found: list[tuple[datetime, str, dict[str, Any]]] = []
    for step in steps[card.esc_step :]:
        if not trigger_holds(card, str(step.get("trigger") or "")):
            continue
        if step["kind"] == "remind" and step_deadline(card, step)[1] <= _due(step):
            continue
        found.append((_due(step), str(step["kind"]), step))
        break
    if card.repeat_at is not None and card.repeat_step is not None and card.repeat_step < len(steps):
        step = steps[card.repeat_step]
        if trigger_holds(card, str(step.get("trigger") or "")):
            found.append((card.repeat_at, "repeat", step))
    if not found:
        return None
    at, kind, step = min(found, key=lambda f: f[0])
    snoozed = card.snoozed_until is not None and card.snoozed_until > at
    if snoozed:
        assert card.snoozed_until is not None
        at = card.snoozed_until
    deadline_kind, deadline = step_deadline(card, step)
    level = int(step.get("level") or 0)
    return Upcoming(at, kind, level, str(step.get("trigger") or ""), deadline_kind, deadline, step, snoozed)


@dataclass(frozen=True)
class PolicyView:
    """The policy new cards of one department and request type get, with the people its targets name today.

    ``type_key`` empty: the department's (or the default) ladder without a request type's SLA hours."""

    department: str
    type_key: str
    levels: list[EscalationLevelConfig]
    remind_at: float
    first_response_hours: float | None
    complete_hours: float | None
    calendar_hours: bool
    # notify target (head, director, user:<id> …) → the people it names in the department now
    people: dict[str, list[User]]


class PolicyNameUnknown(DomainError):
    """A word of ``升级策略`` names no department and no request type: the message lists the names that work."""


def _department_names(settings: Settings, key: str) -> set[str]:
    cfg = settings.departments[key]
    names = {key, cfg.name_zh, cfg.name_en, f"{cfg.name_zh}部", f"{cfg.name_en} department"}
    return {fold_word(n) for n in names}


def _type_names(settings: Settings, key: str) -> set[str]:
    rt = settings.request_types[key]
    return {fold_word(n) for n in (key, rt.name_zh, rt.name_en, *rt.keywords)}


def match_policy_words(settings: Settings, text: str) -> tuple[str, str]:
    """(department key, request type key), either may be empty, from what people type: 物流, 物流部, logistics,
    跟台, 手术跟台, surgery_support, "Surgery support" (two words) … Unknown words raise ``PolicyNameUnknown``."""
    departments = {n: k for k in settings.departments for n in _department_names(settings, k)}
    types = {n: k for k in settings.request_types for n in _type_names(settings, k)}
    department = type_key = ""
    words = fold_word(text).split()
    i = 0
    while i < len(words):
        # Two words first: English names have a space ("Stock reservation").
        for width in (2, 1):
            name = " ".join(words[i : i + width])
            if width == 2 and i + 1 >= len(words):
                continue
            if name in departments and not department:
                department, i = departments[name], i + width
                break
            if name in types and not type_key:
                type_key, i = types[name], i + width
                break
        else:
            word = normalize_text(text).split()[i]
            raise PolicyNameUnknown("esc.policy_unknown", denial=None, word=word, **_valid_names(settings))
    return department, type_key


def _valid_names(settings: Settings) -> dict[str, str]:
    """The names ``升级策略`` takes, for its refusal: in Chinese (with a request type's short keyword) and English."""
    types = settings.request_types.values()
    return {
        "departments": "、".join(d.name_zh for d in settings.departments.values()),
        "types": "、".join(
            rt.name_zh + (f"（{rt.keywords[0]}）" if rt.keywords[0] != rt.name_zh else "") for rt in types
        ),
        "departments_en": ", ".join(d.name_en for d in settings.departments.values()),
        "types_en": ", ".join(rt.name_en for rt in types),
    }


def policy_scopes(settings: Settings, department: str, type_key: str, own_department: str) -> list[tuple[str, str]]:
    """Which (department, request type) pairs ``升级策略`` describes: both given → that one; a type → its department
    the asker belongs to, else every department it goes to; a department (given, else the asker's) → each request
    type it receives; nothing and no department of one's own → the default ladder."""
    if type_key:
        going = [t.department for t in settings.request_types[type_key].tasks]
        if department:
            return [(department, type_key)]
        return [(own_department, type_key)] if own_department in going else [(d, type_key) for d in going]
    department = department or own_department
    if not department:
        return [("", "")]
    types = [k for k, rt in settings.request_types.items() if any(t.department == department for t in rt.tasks)]
    return [(department, k) for k in types] or [(department, "")]


async def policy_views(session: AsyncSession, settings: Settings, text: str, own_department: str) -> list[PolicyView]:
    """``升级策略 [部门] [申请类型]``: the policies described (``policy_scopes``), each with its SLA hours and the
    people its targets name."""
    department, type_key = match_policy_words(settings, text)
    directory = await People.load(session)
    views = []
    for dep, key in policy_scopes(settings, department, type_key, own_department):
        levels, remind = effective_policy(settings, dep, key)
        rt = settings.request_types.get(key)
        task = next((t for t in rt.tasks if t.department == dep), None) if rt else None
        wanted = {n for level in levels for n in level.notify} | set(FALLBACK_TARGETS)
        people = {n: directory.named(n, dep) for n in wanted if n not in ("holder", "requester")}
        views.append(
            PolicyView(
                department=dep,
                type_key=key,
                levels=levels,
                remind_at=remind,
                first_response_hours=task.first_response_hours if task else None,
                complete_hours=task.complete_hours if task else None,
                calendar_hours=bool(rt and rt.calendar_hours),
                people=people,
            )
        )
    return views
