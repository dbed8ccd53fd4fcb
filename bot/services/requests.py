"""Support requests and their department task cards: creation, the card state machine, evidence. No platform code.

State machine of a card::

    open ──claim──▶ claimed ──done──▶ done
      │               │
      ├──reject──▶ rejected ◀──reject──┤
      └─need_info─▶ need_info ──answer──▶ (back to the state it paused)

Take-over and reassign (escalation notices) are transitions too (``hand_over``: open or claimed → claimed, to the
new holder). Invalid transitions raise ``RequestError`` (a ``DomainError``) carrying the message the user sees;
nothing changes. Every transition reschedules the card's escalation. Callers load the card with ``load_card``
(``FOR UPDATE`` on PostgreSQL) inside the write transaction (SQLite serialises writers), so of two simultaneous
taps exactly one sees ``open``.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.calendar.workcal import add_hours, get_calendar
from bot.config import RequestFieldConfig, RequestTaskConfig, RequestTypeConfig, Settings
from bot.config.request_types import render_title
from bot.core.errors import Denial, DomainError
from bot.infra import audit, i18n
from bot.parsing.request_parser import field_by_key, parse_request_line, split_day_time
from bot.services import attachments, console_media, escalation_words, signatures
from bot.services.escalation import Upcoming, audit_card, freeze_policy, reschedule, step_targets, upcoming
from bot.services.signatures import COMPLIANCE
from storage.models import AuditLog, Customer, SupportRequest, TaskCard, User
from storage.vocab import (
    CARD_ENTITY,
    DEPARTMENT_ROLES,
    SUPERVISORS,
    TASK_CLOSED,
    CardEvent,
    RequestStatus,
    Role,
    TaskState,
)

log = logging.getLogger(__name__)

# Task states by their short names (``svc.OPEN`` …), defined in storage/vocab.py.
OPEN, CLAIMED, NEED_INFO, DONE, REJECTED = (
    TaskState.OPEN,
    TaskState.CLAIMED,
    TaskState.NEED_INFO,
    TaskState.DONE,
    TaskState.REJECTED,
)
CLOSED = TASK_CLOSED


class RequestError(DomainError):
    """A refusal by the request rules (a ``DomainError``)."""


class CardClosed(RequestError):
    """The card is done or rejected: nothing more to do on it."""

    def __init__(self, card: TaskCard) -> None:
        super().__init__("task.closed", no=card_no(card.id), state_key=f"task.state.{card.state}")
        self.state = card.state


def request_no(request_id: int) -> str:
    return f"R{request_id}"


def card_no(card_id: int) -> str:
    return f"T{card_id}"


def _parse_no(text: str, prefix: str) -> int | None:
    m = re.fullmatch(rf"[{prefix}{prefix.lower()}]?(\d{{1,12}})", text.strip())
    return int(m.group(1)) if m else None


def parse_request_no(text: str) -> int | None:
    return _parse_no(text, "R")


def parse_card_no(text: str) -> int | None:
    return _parse_no(text, "T")


# ---- who may do what ----------------------------------------------------------------------------------------


def is_head_of(user: User, department: str) -> bool:
    return user.department == department and Role.HEAD in (user.roles or [])


def may_act(user: User, card: TaskCard) -> bool:
    """Members and the head of the card's department, directors and admins."""
    roles = set(user.roles or [])
    if roles & SUPERVISORS:
        return True
    return user.department == card.department and bool(roles & DEPARTMENT_ROLES)


def may_override(user: User, card: TaskCard) -> bool:
    """May act on a card someone else holds: the department head, directors, admins."""
    return bool(set(user.roles or []) & SUPERVISORS) or is_head_of(user, card.department)


async def _rep_or_their_manager(session: AsyncSession, user: User, request: SupportRequest) -> bool:
    if request.rep_id == user.id:
        return True
    if Role.MANAGER in set(user.roles or []):
        rep = await session.get(User, request.rep_id)
        return rep is not None and rep.manager_id == user.id
    return False


async def may_view(session: AsyncSession, user: User, request: SupportRequest) -> bool:
    """Reps see their own requests, managers their team's; departments, directors and admins see all."""
    if set(user.roles or []) & (SUPERVISORS | DEPARTMENT_ROLES):
        return True
    return await _rep_or_their_manager(session, user, request)


async def may_see_file(session: AsyncSession, user: User, uploader_id: str, card_id: int | None) -> bool:
    """Who may open an uploaded file: its uploader, and, once it is attached to a task card, the card's
    department (members, head), directors and admins (``may_act``), the request's rep and that rep's manager.
    Other departments see the request's progress, not its files."""
    if user.id == uploader_id:
        return True
    if card_id is None:
        return False
    card = await session.get(TaskCard, card_id)
    if card is None:
        return False
    if may_act(user, card):
        return True
    request = await session.get(SupportRequest, card.request_id)
    return request is not None and await _rep_or_their_manager(session, user, request)


async def department_people(session: AsyncSession, department: str) -> list[User]:
    """Active members and heads of ``department``, ordered by id."""
    rows = await session.scalars(
        select(User).where(User.department == department, User.active.is_(True)).order_by(User.id)
    )
    return [u for u in rows if DEPARTMENT_ROLES & set(u.roles or [])]


# ---- creation -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deadlines:
    respond_by: datetime
    due_at: datetime


def deadlines(settings: Settings, rt: RequestTypeConfig, start: datetime, respond_h: float, done_h: float) -> Deadlines:
    """SLA instants for a card created at ``start``."""
    return Deadlines(
        add_hours(settings, start, respond_h, calendar=rt.calendar_hours),
        add_hours(settings, start, done_h, calendar=rt.calendar_hours),
    )


def needed_field(rt: RequestTypeConfig) -> RequestFieldConfig | None:
    """The request type's needed-by date (``needed_by = true``), if it has one."""
    return next((f for f in rt.fields if f.needed_by), None)


def _parse_hhmm(text: str) -> time | None:
    try:
        return time.fromisoformat(text) if text else None
    except ValueError:
        return None


def store_needed(
    settings: Settings, rt: RequestTypeConfig, values: dict[str, Any]
) -> tuple[dict[str, Any], datetime | None]:
    """The values to store (the needed-by date as ISO yyyy-mm-dd) and the instant the work is needed when a time of
    day came with the date (``2026-12-05 08:00`` → ``support_requests.needed_at``, aware UTC)."""
    f = needed_field(rt)
    stored = dict(values)
    if f is None or not stored.get(f.key):
        return stored, None
    day, hhmm = split_day_time(str(stored[f.key]))
    stored[f.key] = day
    clock = _parse_hhmm(hhmm)
    if clock is None:
        return stored, None
    try:
        return stored, datetime.combine(date.fromisoformat(day), clock, tzinfo=settings.org.tz).astimezone(UTC)
    except ValueError:
        return stored, None


def shown_fields(settings: Settings, rt: RequestTypeConfig | None, request: SupportRequest) -> dict[str, Any]:
    """The request's values as people read them: the needed-by date with its time of day when one was given."""
    values = dict(request.fields or {})
    f = needed_field(rt) if rt is not None else None
    if f is not None and values.get(f.key) and request.needed_at is not None:
        values[f.key] = f"{values[f.key]} {request.needed_at.astimezone(settings.org.tz):%H:%M}"
    return values


def need_of(settings: Settings, rt: RequestTypeConfig, request: SupportRequest) -> datetime | None:
    """The instant the work is needed: the needed-by date's time of day, else the end of work on that date (needed
    by 12-03: at the latest on 12-03)."""
    if request.needed_at is not None:
        return request.needed_at
    f = needed_field(rt)
    raw = str((request.fields or {}).get(f.key) or "") if f is not None else ""
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        return None
    end = time.fromisoformat(settings.calendar.work_end)
    return datetime.combine(day, end, tzinfo=settings.org.tz).astimezone(UTC)


@dataclass(frozen=True)
class CardDeadlines:
    """A card's deadlines; ``need`` is set when the needed-by date (less the lead time) made them earlier."""

    respond_by: datetime
    due_at: datetime
    need: datetime | None = None
    lead_hours: float = 0.0


def card_deadlines(
    settings: Settings, rt: RequestTypeConfig, request: SupportRequest, now: datetime, respond_h: float, done_h: float
) -> CardDeadlines:
    """The deadline rule (docs/requests.md): the SLA's, unless the need less ``lead_hours`` comes first; that
    instant is moved back into working hours (unless the type counts calendar hours) and never before ``now``."""
    sla = deadlines(settings, rt, now, respond_h, done_h)
    need = need_of(settings, rt, request)
    if need is None:
        return CardDeadlines(sla.respond_by, sla.due_at)
    latest = need - timedelta(hours=rt.lead_hours)
    if not rt.calendar_hours:
        latest = get_calendar(settings.calendar, settings.org.tz).last_working_instant(latest)
    if latest >= sla.due_at:
        return CardDeadlines(sla.respond_by, sla.due_at)
    due = max(latest, now)
    return CardDeadlines(min(sla.respond_by, due), due, need, rt.lead_hours)


def title_values(
    rt: RequestTypeConfig,
    values: dict[str, str],
    customer: Customer,
    rep: User,
    request_id: int,
    locale: str = i18n.ZH,
) -> dict[str, str]:
    out = {f.key: "" for f in rt.fields}
    out.update(values)
    type_name = rt.name_en if i18n.normalize_locale(locale) == i18n.EN else rt.name_zh
    out.update(customer=customer.name, requester=rep.name, request_no=request_no(request_id), type_name=type_name)
    out.setdefault("ward", values.get("ward", ""))
    return out


def task_title(task: RequestTaskConfig, locale: str) -> str:
    """The title template of ``task`` in ``locale``: ``title_en`` for English, the Chinese one when it is empty."""
    if i18n.normalize_locale(locale) == i18n.EN and task.title_en.strip():
        return task.title_en
    return task.title_zh


def new_card(
    settings: Settings,
    rt: RequestTypeConfig,
    task: RequestTaskConfig,
    request: SupportRequest,
    customer: Customer,
    rep: User,
    people: Sequence[User],
    now: datetime,
    supersedes: TaskCard | None = None,
) -> TaskCard:
    """One department's card for ``request``, made ``now``: the title in the org's language (one copy for the whole
    department, as ``recipients.task_view`` renders it), the deadlines (``card_deadlines``), the frozen escalation."""
    locale = i18n.normalize_locale(settings.org.default_locale)
    variables = title_values(rt, shown_fields(settings, rt, request), customer, rep, request.id, locale)
    due = card_deadlines(settings, rt, request, now, task.first_response_hours, task.complete_hours)
    moved = (due.respond_by, due.due_at) if due.need is not None else None
    card = TaskCard(
        request_id=request.id,
        rep_id=request.rep_id,
        department=task.department,
        ref=f"task-{request.id}-{task.department[:20]}-{secrets.token_hex(3)}",
        title=render_title(task_title(task, locale), variables),
        state=OPEN,
        require_claim=task.require_claim,
        evidence=task.evidence,
        first_response_hours=task.first_response_hours,
        complete_hours=task.complete_hours,
        respond_by=due.respond_by,
        due_at=due.due_at,
        needed_at=due.need,
        lead_hours=due.lead_hours if due.need is not None else None,
        attachments=[],
        questions=[],
        recipients=[u.id for u in people],
        policy=freeze_policy(
            settings,
            rt,
            request.type_key,
            task.department,
            now,
            task.first_response_hours,
            task.complete_hours,
            deadlines=moved,
        ),
        esc_step=0,
        notices=0,
        watchers=[],
        created_at=now,
        state_since=now,
        updated_at=now,
        supersedes_id=supersedes.id if supersedes is not None else None,
    )
    reschedule(card)
    return card


async def create(
    session: AsyncSession,
    *,
    settings: Settings,
    type_key: str,
    values: dict[str, str],
    customer: Customer,
    rep: User,
    visit_id: int | None,
    now: datetime,
    channel: str,
) -> tuple[SupportRequest, list[tuple[TaskCard, list[User]]]]:
    """Store the request and one task card per configured department; return the cards with their recipients."""
    rt = settings.request_types[type_key]
    stored, needed_at = store_needed(settings, rt, {k: v for k, v in values.items() if k != "customer"})
    request = SupportRequest(
        type_key=type_key,
        rep_id=rep.id,
        customer_id=customer.id,
        ward=values.get("ward"),
        fields=stored,
        visit_id=visit_id,
        status=RequestStatus.OPEN,
        source_channel=channel,
        created_at=now,
        updated_at=now,
        needed_at=needed_at,
    )
    session.add(request)
    await session.flush()
    cards: list[tuple[TaskCard, list[User]]] = []
    for task in rt.tasks:
        people = await department_people(session, task.department)
        card = new_card(settings, rt, task, request, customer, rep, people, now)
        session.add(card)
        cards.append((card, people))
    await session.flush()
    _audit_request(
        session,
        request,
        "request.create",
        rep,
        channel,
        now,
        {
            "type": type_key,
            "customer_id": customer.id,
            "fields": stored,
            "visit_id": visit_id,
            "needed_at": needed_at.isoformat() if needed_at is not None else None,
        },
    )
    for card, _ in cards:
        audit_card(
            session,
            card.id,
            CardEvent.CREATE,
            {"request_id": request.id, "department": card.department, "recipients": card.recipients},
            at=now,
            actor_id=rep.id,
            channel=channel,
        )
    return request, cards


# ---- transitions ----------------------------------------------------------------------------------------------


def _closed_error(card: TaskCard) -> RequestError:
    return CardClosed(card)


def _held_by_other(card: TaskCard, actor: User) -> bool:
    return card.holder_id is not None and card.holder_id != actor.id and not may_override(actor, card)


def _touch(card: TaskCard, now: datetime, *, state: str | None = None, holder: str | None = None) -> None:
    if (state is not None and state != card.state) or (holder is not None and holder != card.holder_id):
        card.state_since = now
    if state is not None:
        card.state = state
    if holder is not None:
        card.holder_id = holder
    card.updated_at = now
    # Every transition moves the card's next look by the escalation sweep (closed and paused cards leave it).
    reschedule(card)


def _first_response(card: TaskCard, now: datetime) -> None:
    if card.first_response_at is None:
        card.first_response_at = now


def _audit(
    session: AsyncSession, card: TaskCard, actor: User, now: datetime, channel: str, action: CardEvent, **c: Any
) -> None:
    audit_card(
        session,
        card.id,
        action,
        {"state": card.state, "holder": card.holder_id, **c},
        at=now,
        actor_id=actor.id,
        channel=channel,
    )


def check_may_act(card: TaskCard, actor: User) -> None:
    if not may_act(actor, card):
        raise RequestError("task.not_allowed", no=card_no(card.id))


def check_member(card: TaskCard, actor: User, via: str) -> None:
    """Refuse anyone outside the card's department (and not a supervisor) before anything else; the attempt is
    audited as ``task.denied`` (``via``: the kind of event it came with)."""
    if not may_act(actor, card):
        log.warning("user %s may not act on task card %s (department %s)", actor.id, card.id, card.department)
        denial = Denial(CardEvent.DENIED, CARD_ENTITY, card.id, {"department": card.department, "event": via})
        raise RequestError("task.not_allowed", denial=denial, no=card_no(card.id))


def claim(session: AsyncSession, card: TaskCard, actor: User, now: datetime, channel: str) -> None:
    check_may_act(card, actor)
    if card.state in CLOSED:
        raise _closed_error(card)
    if card.state == CLAIMED:
        if card.holder_id == actor.id:
            raise RequestError("task.already_yours", no=card_no(card.id))
        raise RequestError("task.held_by", no=card_no(card.id), holder_id=card.holder_id or "")
    if card.state == NEED_INFO:
        raise RequestError("task.waiting_info", no=card_no(card.id))
    _first_response(card, now)
    _touch(card, now, state=CLAIMED, holder=actor.id)
    _audit(session, card, actor, now, channel, CardEvent.CLAIM)


def _has_evidence(card: TaskCard) -> bool:
    items: list[dict[str, Any]] = list(card.attachments or [])
    if card.evidence == "photo":
        return any(a.get("kind") == "image" for a in items)
    if card.evidence == "attachment":
        return bool(items)
    return True


def done(
    session: AsyncSession, card: TaskCard, actor: User, now: datetime, channel: str, *, second_factor: bool = False
) -> None:
    """完成 (``second_factor``: the approval was confirmed with a one-time code, recorded in its signature)."""
    check_done(card, actor)
    _first_response(card, now)
    card.done_at = card.closed_at = now
    _touch(card, now, state=DONE, holder=card.holder_id or actor.id)
    # Compliance's 完成 is the authorisation review's approval: signed (docs/compliance.md).
    signed: dict[str, Any] = {}
    if card.department == COMPLIANCE:
        signature = signatures.sign(signatures.REVIEW, actor, now)
        signed["signature"] = signature | ({"second_factor": "one_time_code"} if second_factor else {})
    _audit(session, card, actor, now, channel, CardEvent.DONE, attachments=len(card.attachments or []), **signed)


def check_done(card: TaskCard, actor: User) -> None:
    """Raise unless ``actor`` may mark the card done now."""
    check_may_act(card, actor)
    if card.state in CLOSED:
        raise _closed_error(card)
    if card.state == NEED_INFO:
        raise RequestError("task.waiting_info", no=card_no(card.id))
    if card.state == OPEN and card.require_claim:
        raise RequestError("task.claim_first", no=card_no(card.id))
    if _held_by_other(card, actor):
        raise RequestError("task.held_by", no=card_no(card.id), holder_id=card.holder_id or "")
    if not _has_evidence(card):
        raise RequestError(f"task.need_{card.evidence}", no=card_no(card.id))


def check_may_question(card: TaskCard, actor: User, *, asking: bool = False) -> None:
    """Raise unless ``actor`` may reject the card now, or (``asking``) ask the rep a question (need info): one
    question at a time."""
    check_may_act(card, actor)
    if card.state in CLOSED:
        raise _closed_error(card)
    if _held_by_other(card, actor):
        raise RequestError("task.held_by", no=card_no(card.id), holder_id=card.holder_id or "")
    if asking and card.state == NEED_INFO:
        raise RequestError("task.waiting_info", no=card_no(card.id))


def reject(session: AsyncSession, card: TaskCard, actor: User, reason: str, now: datetime, channel: str) -> None:
    check_may_question(card, actor)
    if not reason.strip():
        raise RequestError("task.reason_needed")
    _first_response(card, now)
    card.reject_reason = reason.strip()[:500]
    card.closed_at = now
    card.resume_state = None
    _touch(card, now, state=REJECTED, holder=card.holder_id or actor.id)
    _audit(session, card, actor, now, channel, CardEvent.REJECT, reason=card.reject_reason)


def ask(session: AsyncSession, card: TaskCard, actor: User, question: str, now: datetime, channel: str) -> None:
    check_may_question(card, actor, asking=True)
    if not question.strip():
        raise RequestError("task.question_needed")
    _first_response(card, now)
    card.resume_state = card.state
    entry = {"q": question.strip()[:500], "by": actor.id, "at": now.isoformat(), "a": None}
    card.questions = [*(card.questions or []), entry]
    _touch(card, now, state=NEED_INFO)
    _audit(session, card, actor, now, channel, CardEvent.NEED_INFO, question=entry["q"])


def answer(session: AsyncSession, card: TaskCard, rep: User, text: str, now: datetime, channel: str) -> None:
    if card.state != NEED_INFO:
        raise RequestError("task.no_question", no=card_no(card.id))
    if not text.strip():
        raise RequestError("task.answer_needed", no=card_no(card.id))
    questions = [dict(q) for q in card.questions or []]
    questions[-1].update(a=text.strip()[:500], answered_at=now.isoformat())
    card.questions = questions
    resume = card.resume_state or OPEN
    card.resume_state = None
    _touch(card, now, state=resume)
    _audit(session, card, rep, now, channel, CardEvent.ANSWER, answer=questions[-1]["a"])


async def relay_answer(
    session: AsyncSession, card: TaskCard, rep: User, text: str, now: datetime, channel: str
) -> list[User]:
    """The rep's answer to the card's open question (their own request only); the people to tell: who asked and
    who holds the card."""
    request = await session.get(SupportRequest, card.request_id)
    if request is None or request.rep_id != rep.id:
        raise RequestError("request.not_visible", no=request_no(card.request_id))
    answer(session, card, rep, text, now, channel)
    asker_id = str((card.questions or [{}])[-1].get("by") or "")
    people = [await session.get(User, uid) for uid in dict.fromkeys([asker_id, card.holder_id or ""]) if uid]
    return [p for p in people if p is not None]


async def attach(
    session: AsyncSession, card: TaskCard, actor: User, kind: str, media_id: str, now: datetime, channel: str
) -> None:
    check_may_act(card, actor)
    if card.state in CLOSED:
        raise _closed_error(card)
    item = {"kind": kind, "media_id": media_id, "channel": channel, "by": actor.id, "at": now.isoformat()}
    card.attachments = [*(card.attachments or []), item]
    # A console upload becomes readable by the card's readers (see may_see_file).
    await console_media.link_to_card(session, media_id, card.id, actor.id)
    await attachments.link_to_card(session, media_id, card.id, actor.id)
    _touch(card, now)
    _audit(session, card, actor, now, channel, CardEvent.ATTACH, kind=kind, media_id=media_id)


# ---- escalation: take over, reassign ----------------------------------------------------------------------------


async def load_card(session: AsyncSession, card_id: int | None) -> TaskCard | None:
    """The card, locked for the rest of the transaction (``FOR UPDATE`` on PostgreSQL; SQLite serialises writers):
    of two simultaneous taps exactly one sees the state the other changes."""
    return await session.get(TaskCard, card_id, with_for_update=True) if card_id is not None else None


def may_handle_escalation(user: User, card: TaskCard) -> bool:
    """Heads of the department, directors, admins, and whoever an escalation of this card was sent to."""
    return may_override(user, card) or user.id in (card.watchers or [])


async def escalated_card(session: AsyncSession, card_id: int | None, actor: User, op: str) -> TaskCard:
    """The card of an escalation notice, locked, when ``actor`` may act on its escalation; refused otherwise (a
    refusal by someone else is audited)."""
    card = await load_card(session, card_id)
    if card is None:
        raise DomainError("stale_button")
    if not may_handle_escalation(actor, card):
        log.warning("user %s may not act on the escalation of card %s", actor.id, card.id)
        denial = Denial(CardEvent.ESCALATION_DENIED, CARD_ENTITY, card.id, {"op": op})
        raise DomainError("esc.not_allowed", denial=denial, no=card_no(card.id))
    return card


def check_open(card: TaskCard) -> None:
    """Refuse a closed card (done or rejected)."""
    if card.state in CLOSED:
        raise _closed_error(card)


def check_may_hand_over(card: TaskCard) -> None:
    """A card is handed over (taken over, reassigned) while open or claimed: not once closed, nor while it waits
    for the rep's answer (the department asked; the answer goes back to whoever holds it)."""
    check_open(card)
    if card.state == NEED_INFO:
        raise RequestError("task.waiting_info", no=card_no(card.id))


@dataclass(frozen=True)
class HandOver:
    """A card handed to ``holder``: the request and its rep (None when they left) to tell, and whoever held it
    before (``handed_away``, when it is someone other than the new holder and the one who handed it)."""

    card: TaskCard
    holder: User
    previous: str | None
    request: SupportRequest | None
    rep: User | None
    handed_away: User | None = None


async def hand_over(
    session: AsyncSession, card: TaskCard, actor: User, holder: User, now: datetime, channel: str, kind: str
) -> HandOver:
    """``holder`` becomes the card's holder (a claim, if nobody had responded): the transition of a take-over
    (``kind`` ``takeover``) or a reassignment (``reassign``), audited as ``escalation.<kind>``."""
    check_may_hand_over(card)
    previous = card.holder_id
    _first_response(card, now)
    _touch(card, now, state=CLAIMED, holder=holder.id)
    audit_card(
        session,
        card.id,
        HAND_OVER_EVENTS[kind],
        {"holder": [previous, holder.id], "state": card.state},
        at=now,
        actor_id=actor.id,
        channel=channel,
    )
    request = await session.get(SupportRequest, card.request_id)
    rep = await session.get(User, request.rep_id) if request is not None else None
    away = await session.get(User, previous) if previous is not None and previous not in (holder.id, actor.id) else None
    return HandOver(card, holder, previous, request, rep, away)


HAND_OVER_EVENTS = {"takeover": CardEvent.TAKEOVER, "reassign": CardEvent.REASSIGN}


async def take_over(session: AsyncSession, card: TaskCard, actor: User, now: datetime, channel: str) -> HandOver:
    """接手 on an escalation notice: the actor holds the card now."""
    return await hand_over(session, card, actor, actor, now, channel, "takeover")


async def assignees(session: AsyncSession, card: TaskCard) -> list[User]:
    """Whom 转派 offers: the department's members, not the holder; refused when there is nobody."""
    check_may_hand_over(card)
    people = [
        u
        for u in await department_people(session, card.department)
        if u.id != card.holder_id and "member" in (u.roles or [])
    ]
    if not people:
        raise DomainError("esc.no_members")
    return people


async def reassign(
    session: AsyncSession, card: TaskCard, actor: User, member_id: str, now: datetime, channel: str
) -> HandOver:
    """A member chosen on the reassign card holds the card now (one of the department's people)."""
    check_may_hand_over(card)
    member = await session.get(User, member_id)
    if member is None or member not in await department_people(session, card.department):
        raise DomainError("stale_button")
    return await hand_over(session, card, actor, member, now, channel, "reassign")


@dataclass(frozen=True)
class CardHistory:
    """``升级记录``: the card's audit rows (oldest first), what comes next and whom it tells, the people named."""

    card: TaskCard
    rows: list[AuditLog]
    upcoming: Upcoming | None
    next_targets: list[str]
    people: dict[str, User]


async def card_history(session: AsyncSession, actor: User, args: str) -> CardHistory:
    """``升级记录 T12`` for whoever may see the card or its request: its audit rows, its next step (the people it
    will tell, as the directory stands now) and everyone both name."""
    card, rows = await _card_rows(session, actor, args)
    step = upcoming(card)
    targets: list[str] = []
    if step is not None:
        request = await session.get(SupportRequest, card.request_id)
        assert request is not None
        targets = [u.id for u in await step_targets(session, card, request, step.step)]
    wanted = escalation_words.user_ids(rows) | set(targets) | {card.holder_id or ""}
    found = await session.scalars(select(User).where(User.id.in_(wanted - {""})))
    return CardHistory(card, rows, step, targets, {u.id: u for u in found})


async def _card_rows(session: AsyncSession, actor: User, args: str) -> tuple[TaskCard, list[AuditLog]]:
    """The card named by ``args`` and its audit rows, oldest first, for whoever may see the card or its request."""
    card_id = parse_card_no(args.split(" ", 1)[0]) if args else None
    if card_id is None:
        raise DomainError("esc.history_usage")
    card = await session.get(TaskCard, card_id)
    request = await session.get(SupportRequest, card.request_id) if card else None
    if card is None or request is None:
        raise DomainError("task.not_found", no=args)
    if not (may_act(actor, card) or await may_view(session, actor, request)):
        raise DomainError("request.not_visible", no=request_no(request.id))
    return card, await audit.history(session, CARD_ENTITY, card.id)


def _audit_request(
    session: AsyncSession,
    request: SupportRequest,
    action: str,
    rep: User,
    channel: str,
    now: datetime,
    changes: dict[str, Any],
) -> None:
    """One audit row about the request itself (its cards have their own, ``audit_card``)."""
    audit.record(
        session,
        at=now,
        action=action,
        entity="request",
        entity_id=request.id,
        actor_id=rep.id,
        channel=channel,
        changes=changes,
    )


def current_cards(cards: Sequence[TaskCard]) -> list[TaskCard]:
    """The cards that count for the request: a rejected card resubmitted (``supersedes_id``) is replaced by its
    successor."""
    replaced = {c.supersedes_id for c in cards if c.supersedes_id is not None}
    return [c for c in cards if c.id not in replaced]


def successors(cards: Sequence[TaskCard]) -> dict[int, TaskCard]:
    """Rejected card id → the card it was resubmitted as."""
    return {c.supersedes_id: c for c in cards if c.supersedes_id is not None}


@dataclass(frozen=True)
class RequestProgress:
    """The status rule (docs/requests.md) applied to a request's current cards: its status, the departments whose
    current card is rejected, and whether any card is still open."""

    status: RequestStatus
    rejected: tuple[str, ...]
    open: bool


def progress_of(cards: Sequence[TaskCard]) -> RequestProgress:
    current = current_cards(cards)
    rejected = tuple(c.department for c in current if c.state == REJECTED)
    still_open = any(c.state not in CLOSED for c in current)
    if still_open:
        status = RequestStatus.OPEN
    elif all(c.state == DONE for c in current):
        status = RequestStatus.DONE
    else:
        status = RequestStatus.REJECTED
    return RequestProgress(status, rejected, still_open)


def settle_request(request: SupportRequest, cards: Sequence[TaskCard], now: datetime) -> bool:
    """Update the request's status from its current cards (``progress_of``); True when it just became settled."""
    cards = current_cards(cards)
    if any(c.state not in CLOSED for c in cards):
        status = RequestStatus.OPEN
    elif all(c.state == DONE for c in cards):
        status = RequestStatus.DONE
    else:
        status = RequestStatus.REJECTED
    changed = status != request.status and status != RequestStatus.OPEN
    if status != request.status:
        request.status = status
        request.updated_at = now
    return changed


async def all_done(session: AsyncSession, request: SupportRequest, now: datetime) -> bool:
    """After a card closed: settle the request's status from its cards; True when every department is done now."""
    return settle_request(request, await cards_of(session, request.id), now) and request.status == DONE


# ---- queries --------------------------------------------------------------------------------------------------


async def visible_request(session: AsyncSession, actor: User, request_id: int) -> SupportRequest:
    """The request, when ``actor`` may see it (``may_view``); refused otherwise."""
    no = request_no(request_id)
    request = await session.get(SupportRequest, request_id)
    if request is None:
        raise RequestError("request.not_found", no=no)
    if not await may_view(session, actor, request):
        log.warning("user %s may not view request %s", actor.id, request_id)
        raise RequestError("request.not_visible", no=no)
    return request


async def cards_of(session: AsyncSession, request_id: int) -> list[TaskCard]:
    rows = await session.scalars(select(TaskCard).where(TaskCard.request_id == request_id).order_by(TaskCard.id))
    return list(rows)


async def held_cards(session: AsyncSession, user_id: str) -> list[TaskCard]:
    """Cards the user holds that are still being worked on (claimed)."""
    rows = await session.scalars(
        select(TaskCard).where(TaskCard.holder_id == user_id, TaskCard.state == CLAIMED).order_by(TaskCard.id)
    )
    return list(rows)


async def open_questions(session: AsyncSession, rep_id: str) -> list[TaskCard]:
    """Cards waiting for this rep's answer (need_info), oldest first."""
    rows = await session.scalars(
        select(TaskCard)
        .join(SupportRequest, SupportRequest.id == TaskCard.request_id)
        .where(SupportRequest.rep_id == rep_id, TaskCard.state == NEED_INFO)
        .order_by(TaskCard.state_since)
    )
    return list(rows)


async def recent_for(session: AsyncSession, rep_id: str, since: datetime) -> list[SupportRequest]:
    """The rep's requests created since ``since`` or still open, newest first."""
    rows = await session.scalars(
        select(SupportRequest)
        .where(
            SupportRequest.rep_id == rep_id,
            (SupportRequest.created_at >= since) | (SupportRequest.status == RequestStatus.OPEN),
        )
        .order_by(SupportRequest.id.desc())
        .limit(20)
    )
    return list(rows)


# ---- resubmitting a rejected part ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resubmission:
    """``重新提交``: the request, the new cards (each with the rejected card it replaces and its recipients), the
    corrections applied (field key → (old, new)), and the cards that had been resubmitted already (nothing done
    twice: rejected card → its successor)."""

    request: SupportRequest
    rt: RequestTypeConfig | None
    made: list[tuple[TaskCard, TaskCard, list[User]]]
    corrections: dict[str, tuple[str, str]]
    already: list[tuple[TaskCard, TaskCard]]


def _corrections(rt: RequestTypeConfig, request: SupportRequest, text: str, today: date, locale: str) -> dict[str, Any]:
    """``器械:脊柱B包 …`` after ``重新提交 R1``: the new values (only ``字段:值`` pairs; not the hospital or ward)."""
    if not text.strip():
        return {}
    parsed = parse_request_line(rt, text, today)
    if parsed.values.keys() & {"customer", "ward"} or parsed.loose:
        raise RequestError("request.resubmit_fields", no=request_no(request.id))
    for issue in parsed.issues:
        f = field_by_key(rt, issue.field) if issue.field else None
        label = (f.label_en if i18n.normalize_locale(locale) == i18n.EN else f.label_zh) if f else issue.value
        if issue.code == "unknown_key" or f is None:
            raise RequestError("request.resubmit_fields", no=request_no(request.id))
        raise RequestError(f"request.{issue.code}", field=label, value=issue.value, today=issue.today)
    return dict(parsed.values)


async def resubmit(
    session: AsyncSession,
    *,
    settings: Settings,
    rep: User,
    request_id: int | None = None,
    card_id: int | None = None,
    text: str = "",
    now: datetime,
    channel: str,
) -> Resubmission:
    """The rep sends a rejected part of their request again (``重新提交 R1 [字段:值 …]``, or the button on the
    rejection notice: ``card_id``): each rejected current card gets a new card for its department, linked to it
    (``supersedes_id``); the old one stays rejected. Only the request's rep may; a part already resubmitted is not
    sent twice (``Resubmission.already``). Corrections change the request's values (audited)."""
    old_card = await load_card(session, card_id) if card_id is not None else None
    if card_id is not None and old_card is None:
        raise DomainError("stale_button")
    rid = old_card.request_id if old_card is not None else request_id
    request = await session.get(SupportRequest, rid, with_for_update=True) if rid is not None else None
    no = request_no(rid or 0)
    if request is None:
        raise RequestError("request.not_found", no=no)
    if request.rep_id != rep.id:
        log.warning("user %s may not resubmit request %s", rep.id, request.id)
        raise RequestError("request.resubmit_not_yours", no=no)
    cards = await cards_of(session, request.id)
    after = successors(cards)
    rejected = [c for c in current_cards(cards) if c.state == REJECTED]
    if old_card is not None:
        rejected = [c for c in rejected if c.id == old_card.id]
    already = [(c, after[c.id]) for c in cards if c.id in after and (old_card is None or c.id == old_card.id)]
    rt = settings.request_types.get(request.type_key)
    if not rejected:
        if already:
            return Resubmission(request, rt, [], {}, already)
        raise RequestError("request.nothing_to_resubmit", no=no)
    if rt is None:
        raise RequestError("request.resubmit_unknown_type", no=no)
    today = now.astimezone(settings.org.tz).date()
    changed: dict[str, tuple[str, str]] = {}
    corrections = _corrections(rt, request, text, today, rep.locale)
    if corrections:
        shown = shown_fields(settings, rt, request)
        merged, needed_at = store_needed(settings, rt, {**shown, **corrections})
        f = needed_field(rt)
        if f is None or f.key not in corrections:
            needed_at = request.needed_at
        changed = {k: (str(shown.get(k) or ""), str(v)) for k, v in corrections.items() if shown.get(k) != v}
        request.fields = merged
        request.needed_at = needed_at
    customer = await session.get(Customer, request.customer_id)
    assert customer is not None
    made: list[tuple[TaskCard, TaskCard, list[User]]] = []
    for old in rejected:
        task = next((t for t in rt.tasks if t.department == old.department), None)
        if task is None:
            task = RequestTaskConfig(
                department=old.department,
                title_zh=old.title,
                require_claim=old.require_claim,
                evidence=old.evidence,
                first_response_hours=old.first_response_hours,
                complete_hours=old.complete_hours,
            )
        people = await department_people(session, old.department)
        card = new_card(settings, rt, task, request, customer, rep, people, now, supersedes=old)
        session.add(card)
        made.append((old, card, people))
    await session.flush()
    request.status = RequestStatus.OPEN
    request.updated_at = now
    corrections = {k: list(v) for k, v in changed.items()}
    cards_made = [[o.id, n.id] for o, n, _ in made]
    _audit_request(
        session, request, "request.resubmit", rep, channel, now, {"cards": cards_made, "corrections": corrections}
    )
    for old, card, _ in made:
        audit_card(session, old.id, CardEvent.RESUBMITTED, {"as": card.id}, at=now, actor_id=rep.id, channel=channel)
        audit_card(
            session,
            card.id,
            CardEvent.CREATE,
            {
                "request_id": request.id,
                "department": card.department,
                "recipients": card.recipients,
                "supersedes": old.id,
            },
            at=now,
            actor_id=rep.id,
            channel=channel,
        )
    return Resubmission(request, rt, made, changed, [])
