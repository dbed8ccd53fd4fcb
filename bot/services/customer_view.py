"""Seeing a customer (``客户 浙二``) and the manager's advice (``建议 浙二 …``); docs/customers.md "Seeing a customer".

Who sees what (``access``):

- a rep: the customers they are responsible for (``customers.rep_id``), and those they have a visit or a plan item
  for (they have been there or are going: covering for a colleague);
- a manager: the same for themselves and every rep below them (any depth, as 我的计划 and the digest);
- a director or an admin: every customer;
- the marketing department (members and head): every customer's grade, score and trend (they run the academic
  events the score counts), not the visits, requests, plans or advice;
- anyone else (logistics, compliance …): refused before the hospital is looked up, so the refusal says nothing
  about the customer.

Advice: a manager for the customers of the reps below them, a director or admin for any; the customer's rep is told.
Reads ``customer_scores`` as the nightly job wrote it; computes nothing of the score itself. No platform code."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.core.errors import Denial, DomainError
from bot.infra import audit, i18n
from bot.infra.sanitize import clean_text
from bot.services import plans as plan_svc
from bot.services import recipients
from bot.services import requests as req_svc
from bot.services.activity import MARKETING
from bot.services.advice import newest_advice
from cards.customer import (
    Access,
    AlertLine,
    CustomerView,
    PlanLine,
    RequestLine,
    ScoreView,
    VisitLine,
    WeekPoint,
    Windows,
)
from storage.models import (
    Customer,
    CustomerAdvice,
    CustomerAlert,
    CustomerScore,
    PlanItem,
    SupportRequest,
    TaskCard,
    User,
    Visit,
)
from storage.vocab import DEPARTMENT_ROLES, SUPERVISORS, PlanPeriod, PlanStatus, RequestStatus, Role

TREND_WEEKS = 8
ALERT_DAYS = 30
VISITS_SHOWN = 5
ADVICE_MAX = 500
ADVICE_ENTITY = "customer_advice"


class CustomerViewError(DomainError):
    """A refusal of 客户 / 建议 (a ``DomainError``)."""


# ---- who may see and advise ---------------------------------------------------------------------------------


def _roles(user: User) -> set[str]:
    """The user's roles; none at all counts as a rep (as help and 计划 read it)."""
    return set(user.roles or [Role.REP])


def may_use(user: User) -> bool:
    """Whether ``user`` may look customers up at all (checked before the hospital is matched)."""
    roles = _roles(user)
    if roles & ({Role.REP, Role.MANAGER} | SUPERVISORS):
        return True
    return user.department == MARKETING and bool(roles & DEPARTMENT_ROLES)


async def _in_scope(session: AsyncSession, actor: User, rep_id: str | None) -> bool:
    """``rep_id`` is the actor, or (a manager) a rep below them."""
    if rep_id is None:
        return False
    if rep_id == actor.id:
        return True
    if Role.MANAGER not in _roles(actor):
        return False
    rep = await session.get(User, rep_id)
    return rep is not None and await plan_svc.reports_to(session, rep, actor.id)


async def access(session: AsyncSession, actor: User, customer: Customer) -> Access:
    """What ``actor`` may see of ``customer`` (module docstring); refused with an audited denial otherwise."""
    roles = _roles(actor)
    if roles & SUPERVISORS:
        return "full"
    if roles & {Role.REP, Role.MANAGER}:
        if await _in_scope(session, actor, customer.rep_id):
            return "full"
        # The people who visited or planned it: their scope decides as the customer's own rep's does.
        visitors = await session.scalars(select(Visit.rep_id).where(Visit.customer_id == customer.id).distinct())
        planners = await session.scalars(select(PlanItem.rep_id).where(PlanItem.customer_id == customer.id).distinct())
        for rep_id in {*visitors, *planners}:
            if await _in_scope(session, actor, rep_id):
                return "full"
    if may_use(actor) and actor.department == MARKETING:
        return "score"
    raise CustomerViewError(
        "customer.not_yours",
        name=customer.name,
        denial=Denial("customer.view_denied", "customer", customer.id, {"actor": actor.id}),
    )


async def check_may_advise(session: AsyncSession, actor: User, customer: Customer) -> None:
    """A manager for the customers of the reps below them (the customer's own rep), a director or admin for any."""
    roles = _roles(actor)
    if roles & SUPERVISORS:
        return
    if Role.MANAGER not in roles:
        raise CustomerViewError("advice.not_allowed")
    if customer.rep_id is not None and customer.rep_id != actor.id and await _in_scope(session, actor, customer.rep_id):
        return
    raise CustomerViewError(
        "advice.not_your_team",
        name=customer.name,
        denial=Denial("advice.denied", "customer", customer.id, {"actor": actor.id}),
    )


# ---- the trend ------------------------------------------------------------------------------------------------


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def weekly_trend(rows: Iterable[tuple[date, float]], newest: date, weeks: int = TREND_WEEKS) -> list[WeekPoint]:
    """One figure per week, oldest → newest, for the ``weeks`` weeks (Monday–Sunday) ending with ``newest``'s
    week: the score of the week's latest night (older history is thinned to Mondays, so a thinned week shows its
    Monday); a week without any row is None. Rows outside those weeks are ignored."""
    last = week_start(newest)
    first = last - timedelta(days=7 * (weeks - 1))
    best: dict[date, tuple[date, float]] = {}
    for night, score in rows:
        if night > newest:
            continue
        week = week_start(night)
        if week < first:
            continue
        if week not in best or night > best[week][0]:
            best[week] = (night, score)
    out = []
    for i in range(weeks):
        week = first + timedelta(days=7 * i)
        out.append(WeekPoint(week, best[week][1] if week in best else None))
    return out


# ---- the view -------------------------------------------------------------------------------------------------


async def _names(session: AsyncSession, ids: Iterable[str | None]) -> dict[str, str]:
    return await recipients.names(session, {i for i in ids if i})


async def _score(session: AsyncSession, customer_id: int) -> tuple[ScoreView | None, list[WeekPoint]]:
    newest = await session.scalar(
        select(CustomerScore)
        .where(CustomerScore.customer_id == customer_id)
        .order_by(CustomerScore.night.desc())
        .limit(1)
    )
    if newest is None:
        return None, []
    since = week_start(newest.night) - timedelta(days=7 * (TREND_WEEKS - 1))
    rows = await session.execute(
        select(CustomerScore.night, CustomerScore.score).where(
            CustomerScore.customer_id == customer_id, CustomerScore.night >= since
        )
    )
    view = ScoreView(
        night=newest.night,
        score=newest.score,
        purchases=newest.purchases,
        trials=newest.trials,
        events=newest.events,
        purchases_amount=newest.purchases_amount,
        trials_count=newest.trials_count,
        attendees=newest.attendees,
        suggested_grade=newest.suggested_grade,
    )
    return view, weekly_trend([(n, s) for n, s in rows.all()], newest.night)


async def _alerts(session: AsyncSession, customer_id: int, today: date) -> list[AlertLine]:
    rows = await session.scalars(
        select(CustomerAlert)
        .where(CustomerAlert.customer_id == customer_id, CustomerAlert.night > today - timedelta(days=ALERT_DAYS))
        .order_by(CustomerAlert.night.desc(), CustomerAlert.id.desc())
    )
    return [AlertLine(a.night, a.title, a.level) for a in rows]


async def _visits(session: AsyncSession, customer_id: int) -> list[VisitLine]:
    rows = list(
        await session.scalars(
            select(Visit)
            .where(Visit.customer_id == customer_id)
            .order_by(Visit.visited_at.desc(), Visit.id.desc())
            .limit(VISITS_SHOWN)
        )
    )
    names = await _names(session, (v.rep_id for v in rows))
    return [
        VisitLine(
            at=v.visited_at,
            rep=names.get(v.rep_id, v.rep_id),
            ward=v.ward,
            contacts=tuple(v.contacts or ()),
            objection=v.objection,
            objection_note=v.objection_note,
            next_step=v.next_step,
            topics=v.topics,
        )
        for v in rows
    ]


async def _requests(session: AsyncSession, settings: Settings, customer_id: int, locale: str) -> list[RequestLine]:
    """The customer's open requests (status open: some current card not closed, docs/requests.md), oldest first,
    with each department's current card."""
    requests = list(
        await session.scalars(
            select(SupportRequest)
            .where(SupportRequest.customer_id == customer_id, SupportRequest.status == RequestStatus.OPEN)
            .order_by(SupportRequest.id)
        )
    )
    if not requests:
        return []
    cards: dict[int, list[TaskCard]] = {}
    for card in await session.scalars(
        select(TaskCard).where(TaskCard.request_id.in_([r.id for r in requests])).order_by(TaskCard.id)
    ):
        cards.setdefault(card.request_id, []).append(card)
    names = await _names(session, (r.rep_id for r in requests))
    out = []
    for r in requests:
        rt = settings.request_types.get(r.type_key)
        shown = tuple(
            (
                recipients.department_name(settings, c.department, locale),
                i18n.t(locale, f"task.state.{c.state}"),
            )
            for c in req_svc.current_cards(cards.get(r.id, []))
        )
        out.append(
            RequestLine(
                no=req_svc.request_no(r.id),
                type_name=recipients.type_name(locale, rt) if rt else r.type_key,
                created_at=r.created_at,
                rep=names.get(r.rep_id, r.rep_id),
                cards=shown,
            )
        )
    return out


async def _plans(session: AsyncSession, customer_id: int, today: date) -> list[PlanLine]:
    """Open plan items for the customer from today on (a week item while its week lasts), by day."""
    rows = list(
        await session.scalars(
            select(PlanItem)
            .where(
                PlanItem.customer_id == customer_id,
                PlanItem.status == PlanStatus.OPEN,
                PlanItem.day >= week_start(today),
            )
            .order_by(PlanItem.day, PlanItem.id)
        )
    )
    rows = [i for i in rows if (i.day >= today if i.period == PlanPeriod.DAY else i.day + timedelta(days=6) >= today)]
    names = await _names(session, (i.rep_id for i in rows))
    return [
        PlanLine(plan_svc.plan_no(i.id), i.day, i.period == PlanPeriod.WEEK, names.get(i.rep_id, i.rep_id), i.purpose)
        for i in rows
    ]


async def view(
    session: AsyncSession, settings: Settings, actor: User, customer: Customer, *, now: datetime, locale: str
) -> CustomerView:
    """What ``客户`` shows ``actor`` of ``customer`` (refused out of scope, ``access``)."""
    allowed = await access(session, actor, customer)
    tz = settings.org.tz
    today = plan_svc.local_today(now, tz)
    cfg = settings.customers.score
    windows = Windows(cfg.purchases_months, cfg.trials_days, cfg.events_days)
    rep = (await _names(session, [customer.rep_id])).get(customer.rep_id or "") if customer.rep_id else None
    score, trend = await _score(session, customer.id)
    base = CustomerView(
        name=customer.name,
        grade=customer.grade,
        rep=rep,
        access=allowed,
        windows=windows,
        score=score,
        trend=tuple(trend),
    )
    if allowed != "full":
        return base
    advice = await newest_advice(session, [customer.id])
    return CustomerView(
        name=base.name,
        grade=base.grade,
        rep=base.rep,
        access=base.access,
        windows=windows,
        score=score,
        trend=base.trend,
        alerts=tuple(await _alerts(session, customer.id, today)),
        visits=tuple(await _visits(session, customer.id)),
        requests=tuple(await _requests(session, settings, customer.id, locale)),
        plans=tuple(await _plans(session, customer.id, today)),
        advice=advice.get(customer.id),
    )


# ---- advice ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Advised:
    """What ``advise`` did: the row, and the customer's rep to tell (None: no rep, or the author is the rep)."""

    advice: CustomerAdvice
    rep: User | None


def clean_advice(text: str) -> str:
    """The advice as stored: cleaned like any inbound text, spaces collapsed on each line, blank lines dropped."""
    lines = [" ".join(line.split()) for line in clean_text(text).split("\n")]
    return "\n".join(line for line in lines if line)


async def advise(
    session: AsyncSession,
    *,
    actor: User,
    customer: Customer,
    text: str,
    now: datetime,
    channel: str | None,
) -> Advised:
    """Store ``text`` as ``actor``'s newest advice for ``customer`` (checked: ``check_may_advise``; at most
    ``ADVICE_MAX`` characters), audited."""
    await check_may_advise(session, actor, customer)
    body = clean_advice(text)
    if not body:
        raise CustomerViewError("advice.empty", name=customer.name)
    if len(body) > ADVICE_MAX:
        raise CustomerViewError("advice.too_long", limit=ADVICE_MAX, length=len(body))
    row = CustomerAdvice(customer_id=customer.id, author_id=actor.id, text=body, created_at=now)
    session.add(row)
    await session.flush()
    audit.record(
        session,
        at=now,
        action="advice.add",
        entity=ADVICE_ENTITY,
        entity_id=row.id,
        actor_id=actor.id,
        channel=channel,
        changes={"customer_id": customer.id, "text": [None, body]},
    )
    rep = await session.get(User, customer.rep_id) if customer.rep_id else None
    if rep is not None and (rep.id == actor.id or not rep.active):
        rep = None
    return Advised(row, rep)
