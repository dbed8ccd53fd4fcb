"""Grade changes with a reason (issue 14, docs/customers.md "Grades"): ``调级 浙二 A 原因:…``.

- A rep may ask for their own customers (``customers.rep_id``), a manager for the customers of the reps below them
  (directly or through other managers); the request (``grade_changes``, state ``pending``) goes to the approver
  on a card with 同意 / 驳回. The approver is the rep's manager; when the requester is in the rep's management
  chain (a manager asking), the requester's own manager. Nobody approves their own request: with no one above, a
  director or admin must (every active director gets the card; admins when there is no director). A director or
  admin may also decide any pending request that is not their own.
- A director or admin changes directly (state ``direct``): applied at once, audited.
- Applying: ``grade`` = new, ``previous_grade`` = the grade in force at the start of the current cycle (a calendar
  month, org time), ``grade_since`` = today. Visit frequency follows ``grade_in_force``: a change counts from the
  next cycle (a change made on the first day of a month counts from that month).
- Every step is audited: entity ``grade_change`` (request, confirm, reject, direct) and, when the grade changes,
  entity ``customer`` with the old and new ``grade`` / ``previous_grade`` / ``grade_since``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, case, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.core.errors import Denial, DomainError
from bot.infra import audit
from bot.services import signatures
from bot.services.plans import local_today
from cards.grades import GradeView, grade_ref
from storage.limits import max_length
from storage.models import Customer, CustomerScore, GradeChange, User
from storage.vocab import SUPERVISORS, Role

ENTITY = "grade_change"
PENDING, CONFIRMED, REJECTED, DIRECT = "pending", "confirmed", "rejected", "direct"
REASON_MAX = max_length(GradeChange, "reason") or 500
_MAX_CHAIN = 20
# A grade as typed: one letter, optionally followed by 级 or 类 (A, b, A级, B类).
_GRADE = re.compile(r"^([A-Za-z])(?:级|类)?$")
_NO = re.compile(r"^[Gg](\d{1,18})$")


class GradeError(DomainError):
    """A refusal of a grade change (scope, grade, duplicate, decision)."""


# ---- numbers, grades and the cycle ------------------------------------------------------------------------------


def grade_no(change_id: int) -> str:
    return f"G{change_id}"


def parse_grade_no(text: str) -> int | None:
    m = _NO.match(text.strip())
    return int(m.group(1)) if m else None


def parse_grade(word: str) -> str | None:
    """The grade letter ``word`` names (``A``, ``b``, ``A级``), upper-cased; None when it is not a grade word."""
    m = _GRADE.match(word.strip())
    return m.group(1).upper() if m else None


def org_grades(settings: Settings) -> tuple[str, ...]:
    """The grades the org uses: those of ``[customers.grades] thresholds`` and of ``[plans] frequency``."""
    grades = set(settings.customers.grades.thresholds) | set(settings.plans.frequency)
    return tuple(sorted(grades))


def cycle_start(day: date) -> date:
    """The first day of the cycle (calendar month) holding ``day``."""
    return day.replace(day=1)


def grade_in_force(customer: Customer, month_start: date) -> str | None:
    """The grade that sets the customer's visit frequency in the cycle starting ``month_start``: a grade that took
    effect on or after that day (even on the 1st) counts from the next cycle, so the one before it is still in force."""
    if customer.grade_since is not None and customer.grade_since >= month_start:
        return customer.previous_grade
    return customer.grade


def grade_in_force_sql(month_start: date) -> ColumnElement[Any]:
    """``grade_in_force`` as SQL: CASE WHEN grade_since >= :month_start THEN previous_grade ELSE grade END."""
    return case((Customer.grade_since >= month_start, Customer.previous_grade), else_=Customer.grade)


# ---- who may do what ----------------------------------------------------------------------------------------------


def is_director(user: User) -> bool:
    """A director or admin: changes a grade directly."""
    return bool(SUPERVISORS & set(user.roles or []))


def may_change(user: User) -> bool:
    roles = set(user.roles or [])
    return bool(roles & {Role.REP, Role.MANAGER, Role.DIRECTOR, Role.ADMIN})


async def _chain(session: AsyncSession, user: User) -> list[str]:
    """``user``'s managers, nearest first (a loop in manager_id ends the chain)."""
    out: list[str] = []
    current = user.manager_id
    while current and current not in out and current != user.id and len(out) < _MAX_CHAIN:
        out.append(current)
        current = await session.scalar(select(User.manager_id).where(User.id == current))
    return out


def _denial(actor: User, customer: Customer, reason: str) -> Denial:
    return Denial("grade.denied", "customer", customer.id, {"reason": reason, "actor": actor.id})


async def check_customer(session: AsyncSession, actor: User, customer: Customer) -> None:
    """The actor may change this customer's grade (scope), and no request of it is open; else ``GradeError``."""
    if not may_change(actor):
        raise GradeError("grade.no_permission", denial=_denial(actor, customer, "role"))
    if not is_director(actor):
        roles = set(actor.roles or [])
        own = Role.REP in roles and customer.rep_id == actor.id
        team = False
        if not own and Role.MANAGER in roles and customer.rep_id:
            rep = await session.get(User, customer.rep_id)
            team = rep is not None and actor.id in await _chain(session, rep)
        if not (own or team):
            key = "grade.not_team" if Role.MANAGER in roles else "grade.not_yours"
            raise GradeError(key, customer=customer.name, denial=_denial(actor, customer, "scope"))
    pending = await open_request(session, customer.id)
    if pending is not None:
        raise GradeError("grade.pending", customer=customer.name, no=grade_no(pending.id))


def check_grade(settings: Settings, customer: Customer, grade: str) -> None:
    """``grade`` is one the org uses and not the customer's grade already; else ``GradeError``."""
    grades = org_grades(settings)
    if grade not in grades:
        raise GradeError("grade.bad_grade", grade=grade, grades="、".join(grades))
    if customer.grade == grade:
        raise GradeError("grade.same", customer=customer.name, grade=grade)


def check_reason(reason: str) -> str:
    reason = " ".join(reason.split())
    if not reason:
        raise GradeError("grade.needs_reason")
    if len(reason) > REASON_MAX:
        raise GradeError("grade.reason_too_long", limit=REASON_MAX)
    return reason


async def open_request(session: AsyncSession, customer_id: int) -> GradeChange | None:
    return await session.scalar(
        select(GradeChange)
        .where(GradeChange.customer_id == customer_id, GradeChange.state == PENDING)
        .order_by(GradeChange.id)
        .limit(1)
    )


async def _approver_id(session: AsyncSession, customer: Customer, requester: User) -> str | None:
    """The rep's manager; the requester's manager when the requester manages the rep (nobody approves their own
    request); None when there is nobody above (a director or admin decides)."""
    rep = await session.get(User, customer.rep_id) if customer.rep_id else None
    chain = await _chain(session, rep) if rep is not None else []
    if requester.id in chain:
        above = chain[chain.index(requester.id) + 1 :]
        approver = above[0] if above else None
    else:
        approver = chain[0] if chain else None
    if approver is None or approver == requester.id:
        return None
    person = await session.get(User, approver)
    return approver if person is not None and person.active else None


async def approvers(session: AsyncSession, change: GradeChange) -> list[User]:
    """Who gets the card: the approver, else every active director (every admin when there is none), never the
    requester."""
    if change.approver_id:
        person = await session.get(User, change.approver_id)
        return [person] if person is not None else []
    people = [u for u in await session.scalars(select(User).where(User.active.is_(True)).order_by(User.id))]
    people = [u for u in people if u.id != change.requested_by]
    directors = [u for u in people if Role.DIRECTOR in (u.roles or [])]
    return directors or [u for u in people if Role.ADMIN in (u.roles or [])]


# ---- views ------------------------------------------------------------------------------------------------------


async def view(session: AsyncSession, change: GradeChange) -> GradeView:
    customer = await session.get(Customer, change.customer_id)
    assert customer is not None
    ids = {change.requested_by, change.decided_by or "", customer.rep_id or ""}
    people = {u.id: u.name for u in await session.scalars(select(User).where(User.id.in_(ids)))}
    score = await session.scalar(
        select(CustomerScore)
        .where(CustomerScore.customer_id == customer.id)
        .order_by(CustomerScore.night.desc())
        .limit(1)
    )
    return GradeView(
        change_id=change.id,
        customer=customer.name,
        rep=people.get(customer.rep_id or "", ""),
        old_grade=change.old_grade,
        new_grade=change.new_grade,
        reason=change.reason,
        requested_by=people.get(change.requested_by, change.requested_by),
        state=change.state,
        score=None if score is None else score.score,
        suggested=None if score is None else score.suggested_grade,
        decided_by=people.get(change.decided_by or "", change.decided_by) if change.decided_by else None,
        decision_reason=change.decision_reason,
        signed_at=change.decided_at if change.state == CONFIRMED else None,
    )


# ---- requesting, deciding, applying -------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a step did: the change, its customer, who gets (or got) the card, and who is told."""

    change: GradeChange
    customer: Customer
    view: GradeView
    approvers: list[User] = field(default_factory=list)
    # The requester and the customer's rep (once each), told of a decision.
    told: list[User] = field(default_factory=list)
    # A tap or command on a change decided before: nothing was done.
    already: bool = False


def _apply(session: AsyncSession, customer: Customer, new: str, *, today: date, now: datetime, **who: Any) -> None:
    """The grade changes now; the one in force this cycle stays (``previous_grade``), audited on the customer."""
    before = {"grade": customer.grade, "previous_grade": customer.previous_grade, "grade_since": customer.grade_since}
    customer.previous_grade = grade_in_force(customer, cycle_start(today))
    customer.grade = new
    customer.grade_since = today
    customer.updated_at = now
    after = {"grade": customer.grade, "previous_grade": customer.previous_grade, "grade_since": customer.grade_since}
    changes = {
        k: [v.isoformat() if isinstance(v, date) else v for v in pair] for k, pair in audit.diff(before, after).items()
    }
    audit.record(
        session, at=now, action="grade.change", entity="customer", entity_id=customer.id, changes=changes, **who
    )


async def request_change(
    session: AsyncSession,
    settings: Settings,
    actor: User,
    customer_id: int,
    new_grade: str,
    reason: str,
    now: datetime,
    channel: str,
) -> Outcome:
    """``调级``: a pending request to the approver, or (a director, an admin) the change made at once."""
    customer = await session.get(Customer, customer_id, with_for_update=True)
    if customer is None:
        raise GradeError("stale_button")
    await check_customer(session, actor, customer)
    check_grade(settings, customer, new_grade)
    reason = check_reason(reason)
    direct = is_director(actor)
    change = GradeChange(
        customer_id=customer.id,
        old_grade=customer.grade,
        new_grade=new_grade,
        reason=reason,
        state=DIRECT if direct else PENDING,
        requested_by=actor.id,
        requested_at=now,
        approver_id=None if direct else await _approver_id(session, customer, actor),
        decided_by=actor.id if direct else None,
        decided_at=now if direct else None,
    )
    session.add(change)
    await session.flush()
    change.ref = grade_ref(change.id)
    who: dict[str, Any] = {"actor_id": actor.id, "channel": channel}
    audit.record(
        session,
        at=now,
        action="grade.direct" if direct else "grade.request",
        entity=ENTITY,
        entity_id=change.id,
        changes={
            "customer": customer.id,
            "grade": [customer.grade, new_grade],
            "state": [None, change.state],
            "reason": reason,
            "approver": change.approver_id,
        },
        **who,
    )
    if direct:
        _apply(session, customer, new_grade, today=local_today(now, settings.org.tz), now=now, **who)
        return Outcome(change, customer, await view(session, change), told=await _told(session, change, customer))
    return Outcome(change, customer, await view(session, change), approvers=await approvers(session, change))


async def _told(session: AsyncSession, change: GradeChange, customer: Customer) -> list[User]:
    ids = list(dict.fromkeys(i for i in (change.requested_by, customer.rep_id) if i and i != change.decided_by))
    people = {u.id: u for u in await session.scalars(select(User).where(User.id.in_(ids)))} if ids else {}
    return [people[i] for i in ids if i in people]


async def _load(session: AsyncSession, actor: User, change_id: int) -> tuple[GradeChange, Customer]:
    change = await session.get(GradeChange, change_id, with_for_update=True)
    if change is None:
        raise GradeError("grade.unknown", no=grade_no(change_id))
    customer = await session.get(Customer, change.customer_id, with_for_update=True)
    assert customer is not None
    own = change.requested_by == actor.id
    if own and change.state == PENDING:
        raise GradeError("grade.own_request", no=grade_no(change.id))
    if not own and change.approver_id != actor.id and not is_director(actor):
        denial = Denial("grade.denied", ENTITY, change.id, {"reason": "not approver", "actor": actor.id})
        raise GradeError("grade.not_approver", no=grade_no(change.id), denial=denial)
    return change, customer


async def check_decide(session: AsyncSession, actor: User, change_id: int) -> Outcome:
    """Before 驳回's reason is asked: the actor may decide (``already`` when it is decided)."""
    change, customer = await _load(session, actor, change_id)
    return Outcome(
        change,
        customer,
        await view(session, change),
        approvers=await approvers(session, change),
        already=change.state != PENDING,
    )


async def decide(
    session: AsyncSession,
    settings: Settings,
    actor: User,
    change_id: int,
    *,
    approve: bool,
    reason: str,
    now: datetime,
    channel: str,
) -> Outcome:
    """同意 / 驳回 (with a reason): once; a second tap or command finds it decided (``already``), changes nothing."""
    change, customer = await _load(session, actor, change_id)
    if change.state != PENDING:
        return Outcome(
            change, customer, await view(session, change), approvers=await approvers(session, change), already=True
        )
    if not approve:
        reason = " ".join(reason.split())
        if not reason:
            raise GradeError("grade.reject_needs_reason")
        if len(reason) > REASON_MAX:
            raise GradeError("grade.reason_too_long", limit=REASON_MAX)
    # The card's people are those it went to (before this decision changes nothing about them).
    cards_to = await approvers(session, change)
    change.state = CONFIRMED if approve else REJECTED
    change.decided_by, change.decided_at = actor.id, now
    change.decision_reason = " ".join(reason.split()) or None
    who: dict[str, Any] = {"actor_id": actor.id, "channel": channel}
    audit.record(
        session,
        at=now,
        action="grade.confirm" if approve else "grade.reject",
        entity=ENTITY,
        entity_id=change.id,
        changes={
            "customer": customer.id,
            "grade": [customer.grade, change.new_grade],
            "state": [PENDING, change.state],
            **({"reason": change.decision_reason} if change.decision_reason else {}),
            **({"signature": signatures.sign(signatures.GRADE, actor, now)} if approve else {}),
        },
        **who,
    )
    if approve and customer.grade != change.new_grade:
        _apply(session, customer, change.new_grade, today=local_today(now, settings.org.tz), now=now, **who)
    return Outcome(
        change, customer, await view(session, change), approvers=cards_to, told=await _told(session, change, customer)
    )
