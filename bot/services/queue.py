"""Department queues: which open task cards a person sees (我的任务, 待认领, 部门待办, 超时), in what order, a page at
a time; and 打开, a live copy of one card. No platform code.

Who sees what (``scope_for``):

- a member: the cards they hold and the unclaimed ones of their department, including those waiting for the rep's
  answer (need info) that they hold or nobody holds; by deadline (overdue first);
- a head: every open card of the department with its holder, overdue and escalated first (then by deadline);
- a director or admin (no department): every department's counts and all open cards, oldest first;
- anyone else: refused with a hint (``queue.not_member``).

A page costs two SELECTs: the counts (grouped by department) and the page's rows with their names joined.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.config import Settings
from bot.core.errors import DomainError
from bot.infra import i18n
from bot.services import recipients
from bot.services import requests as svc
from cards.model import Card
from cards.queue import PAGE_SIZE, DepartmentLoad, QueueEntry, QueueKind, QueueView
from storage.models import Customer, SupportRequest, TaskCard, User
from storage.vocab import DEPARTMENT_ROLES, SUPERVISORS, Role, TaskState

ACTIVE = (TaskState.OPEN, TaskState.CLAIMED, TaskState.NEED_INFO)


@dataclass(frozen=True)
class Scope:
    """What a queue holds for its asker: ``kind`` as seen, the department (None: every one), and for a member's
    own queue their id (held by them, or unclaimed in the department)."""

    kind: QueueKind
    department: str | None
    member_id: str | None = None


def scope_for(user: User, asked: QueueKind) -> Scope:
    """The queue ``user`` sees when asking for ``asked`` (see the module's docstring); refused without a
    department role or a supervisor's."""
    roles = set(user.roles or [])
    department = user.department
    if department and roles & DEPARTMENT_ROLES:
        head = Role.HEAD in roles
        if asked == QueueKind.UNCLAIMED:
            return Scope(QueueKind.UNCLAIMED, department)
        if asked == QueueKind.OVERDUE:
            return Scope(QueueKind.OVERDUE, department, None if head else user.id)
        if asked == QueueKind.MINE and not head:
            return Scope(QueueKind.MINE, department, user.id)
        return Scope(QueueKind.DEPARTMENT, department)
    if roles & SUPERVISORS:
        if asked in (QueueKind.UNCLAIMED, QueueKind.OVERDUE):
            return Scope(asked, None)
        return Scope(QueueKind.ALL, None)
    raise DomainError("queue.not_member")


def _where(scope: Scope, now: datetime) -> list[ColumnElement[bool]]:
    states = (TaskState.OPEN,) if scope.kind == QueueKind.UNCLAIMED else ACTIVE
    conds: list[ColumnElement[bool]] = [TaskCard.state.in_(states)]
    if scope.member_id is not None:
        conds.append(
            or_(
                and_(TaskCard.department == scope.department, TaskCard.holder_id.is_(None)),
                TaskCard.holder_id == scope.member_id,
            )
        )
    elif scope.department is not None:
        conds.append(TaskCard.department == scope.department)
    if scope.kind == QueueKind.OVERDUE:
        conds.append(TaskCard.due_at < now)
    return conds


def _order(scope: Scope, now: datetime) -> list[Any]:
    if scope.kind == QueueKind.ALL:
        return [TaskCard.created_at, TaskCard.id]
    if scope.member_id is not None:
        return [TaskCard.due_at, TaskCard.id]
    urgent = case((or_(TaskCard.due_at < now, TaskCard.notices > 0), 0), else_=1)
    return [urgent, TaskCard.due_at, TaskCard.id]


@dataclass(frozen=True)
class _Counts:
    department: str
    total: int
    overdue: int
    unclaimed: int
    escalated: int


async def _counts(session: AsyncSession, conds: list[ColumnElement[bool]], now: datetime) -> list[_Counts]:
    rows = await session.execute(
        select(
            TaskCard.department,
            func.count(),
            func.count().filter(TaskCard.due_at < now),
            func.count().filter(TaskCard.state == TaskState.OPEN),
            func.count().filter(TaskCard.notices > 0),
        )
        .where(*conds)
        .group_by(TaskCard.department)
    )
    return [_Counts(str(d), int(n), int(o), int(u), int(e)) for d, n, o, u, e in rows.all()]


def short_customer(name: str, aliases: list[Any] | None) -> str:
    """The hospital as a queue line names it: its first alias in Chinese characters (浙一) when shorter, else its
    name."""
    for alias in aliases or []:
        text = str(alias).strip()
        if text and not text.isascii() and len(text) < len(name):
            return text
    return name


async def _entries(
    session: AsyncSession,
    settings: Settings,
    locale: str,
    scope: Scope,
    now: datetime,
    page: int,
) -> list[QueueEntry]:
    rep = aliased(User)
    holder = aliased(User)
    rows = await session.execute(
        select(
            TaskCard.id,
            TaskCard.request_id,
            TaskCard.department,
            TaskCard.state,
            TaskCard.due_at,
            TaskCard.notices,
            SupportRequest.type_key,
            SupportRequest.rep_id,
            Customer.name,
            Customer.aliases,
            rep.name,
            holder.name,
        )
        .join(SupportRequest, SupportRequest.id == TaskCard.request_id)
        .outerjoin(Customer, Customer.id == SupportRequest.customer_id)
        .outerjoin(rep, rep.id == SupportRequest.rep_id)
        .outerjoin(holder, holder.id == TaskCard.holder_id)
        .where(*_where(scope, now))
        .order_by(*_order(scope, now))
        .limit(PAGE_SIZE)
        .offset(page * PAGE_SIZE)
    )
    entries = []
    for card_id, request_id, department, state, due_at, notices, type_key, rep_id, cname, aliases, rname, hname in rows:
        rt = settings.request_types.get(type_key)
        entries.append(
            QueueEntry(
                card_id=card_id,
                card_no=svc.card_no(card_id),
                request_no=svc.request_no(request_id),
                type_name=recipients.type_name(locale, rt) if rt else type_key,
                customer=short_customer(cname or "", aliases),
                rep=rname or rep_id,
                department_name=recipients.department_name(settings, department, locale),
                state=state,
                holder=hname or "",
                due_at=due_at,
                overdue=due_at < now,
                escalated=(notices or 0) > 0,
            )
        )
    return entries


async def load(
    session: AsyncSession, settings: Settings, user: User, asked: QueueKind, page: int, now: datetime
) -> QueueView:
    """Page ``page`` (from 0; kept within the pages there are now) of the queue ``user`` sees for ``asked``."""
    scope = scope_for(user, asked)
    locale = i18n.normalize_locale(user.locale)
    counts = await _counts(session, _where(scope, now), now)
    total = sum(c.total for c in counts)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 0), pages - 1)
    entries = await _entries(session, settings, locale, scope, now, page) if total else []
    departments: list[DepartmentLoad] = []
    if scope.kind == QueueKind.ALL:
        by_department = {c.department: c for c in counts}
        for key in [*settings.departments, *sorted(set(by_department) - set(settings.departments))]:
            c = by_department.get(key, _Counts(key, 0, 0, 0, 0))
            name = recipients.department_name(settings, key, locale)
            departments.append(DepartmentLoad(name, c.total, c.unclaimed, c.overdue))
    if scope.member_id is not None:
        shown: str | None = ""
    elif scope.department is not None:
        shown = recipients.department_name(settings, scope.department, locale)
    else:
        shown = None
    return QueueView(
        kind=scope.kind,
        asked=asked,
        scope=shown,
        entries=entries,
        page=page,
        pages=pages,
        total=total,
        overdue=sum(c.overdue for c in counts),
        unclaimed=sum(c.unclaimed for c in counts),
        escalated=sum(c.escalated for c in counts),
        departments=departments,
    )


def new_ref() -> str:
    """A queue card's ref: a fresh one per 我的任务 (a page turn updates that card in place)."""
    return f"queue-{secrets.token_hex(8)}"


async def open_card(
    session: AsyncSession, settings: Settings, user: User, card_id: int, channel: str, via: str
) -> Card:
    """打开 on a queue line: a copy of the task card with its live buttons for ``user``, kept up to date with the
    card (``recipients.task_card_copy``). Only for whoever may act on the card (a refusal is audited)."""
    card = await svc.load_card(session, card_id)
    if card is None:
        raise DomainError("stale_button")
    svc.check_member(card, user, via)
    return await recipients.task_card_copy(session, settings, card, user.id, channel)
