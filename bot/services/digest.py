"""The manager digest's figures (issue 12; docs/digest.md): who is in a viewer's scope, and every figure of the
period as SQL aggregates (GROUP BY / COUNT / SUM(CASE …), valid on SQLite and PostgreSQL), never a loop over visits.
Only the first-response median and p90 are computed in Python, over the period's cards.

``compute_digest`` returns ``bot.services.digest_model.Digest``; ``ask`` reads what a person typed after 日报 / 周报 /
月报 (昨天, a date, a rep's name, 详情) and computes it.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, exists, func, literal, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.calendar.workcal import get_calendar
from bot.config import Settings
from bot.core.errors import DomainError
from bot.infra.clock import read_utc
from bot.services.customer_alerts import short_name
from bot.services.digest_model import (
    AlertCount,
    AlertLine,
    CustomerGap,
    DepartmentLine,
    Digest,
    ObjectionCount,
    OpenFollowup,
    Period,
    RepLine,
    Scope,
    Totals,
)
from bot.services.grades import grade_in_force_sql
from bot.services.plan_rule import done_clause, week_start
from bot.services.team import team_members
from storage.models import Customer, CustomerAlert, DigestFollowup, PlanItem, SupportRequest, TaskCard, User, Visit
from storage.vocab import TASK_CLOSED, PlanPeriod, PlanStatus, Role, TaskState

A_GRADE = "A"
OPEN_STATES = tuple(s.value for s in TaskState if s not in TASK_CLOSED)
TOP_OBJECTIONS = 3


class DigestError(DomainError):
    """A refusal: someone outside the viewer's scope, or a viewer with no team."""


# ---- periods ----------------------------------------------------------------------------------------------------


def period_days(period: Period, day: date) -> tuple[date, date]:
    """The first and last org-local day (both inclusive) of the ``period`` holding ``day``: the day, its
    Monday–Sunday week, or its calendar month."""
    if period == "day":
        return day, day
    if period == "week":
        first = week_start(day)
        return first, first + timedelta(days=6)
    first = day.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return first, following - timedelta(days=1)


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


# ---- scope ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class People:
    """The viewer's scope: rep ids (in a stable order), everyone's names, and whether it is everyone (a director)."""

    reps: tuple[str, ...]
    names: dict[str, str]
    everyone: bool


def _is_rep(user: User) -> bool:
    return Role.REP in (user.roles or [])


async def scope_of(session: AsyncSession, viewer: User) -> People:
    """A director sees every active rep; a manager the active reps reporting to them or to a manager below them
    (any depth: a recursive query, so a manager's digest reads their team only); a rep themselves. Anyone else has
    no digest (``DigestError``). ``names`` are the scope's reps' names."""
    roles = viewer.roles or []
    if Role.DIRECTOR in roles:
        rows = (await session.execute(select(User.id, User.name, User.roles).where(User.active.is_(True)))).all()
        everyone = True
    elif Role.MANAGER in roles:
        team = team_members(viewer.id)
        rows = (
            await session.execute(
                select(User.id, User.name, User.roles).join(team, User.id == team.c.id).where(User.active.is_(True))
            )
        ).all()
        everyone = False
    elif _is_rep(viewer):
        return People((viewer.id,), {viewer.id: viewer.name}, everyone=False)
    else:
        raise DigestError("digest.not_allowed")
    reps = {r.id: r.name for r in rows if Role.REP in (r.roles or [])}
    return People(tuple(sorted(reps)), reps, everyone=everyone)


# ---- the figures ------------------------------------------------------------------------------------------------


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _sum_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _p90(values: Sequence[float]) -> float:
    """Nearest rank: the smallest value with at least 90 % of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def _minutes(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


async def compute_digest(
    session: AsyncSession,
    settings: Settings,
    viewer: User,
    *,
    period: Period,
    day: date,
    now: datetime,
    rep_id: str | None = None,
) -> Digest:
    """The digest ``viewer`` receives for the ``period`` holding ``day`` (org-local), as of ``now``; ``rep_id``
    narrows to one rep of the viewer's scope (anyone outside it: ``DigestError``). docs/digest.md defines every
    figure."""
    tz = settings.org.tz
    people = await scope_of(session, viewer)
    everyone = people.everyone
    reps = people.reps
    if rep_id is not None:
        if rep_id not in reps:
            name = await session.scalar(select(User.name).where(User.id == rep_id))
            raise DigestError("digest.not_in_scope", name=name or rep_id)
        reps, everyone = (rep_id,), False
    first, last = period_days(period, day)
    start, end = _midnight(first, tz), _midnight(last + timedelta(days=1), tz)
    # "As of": the period's end, or now while the period is running.
    as_of = min(end, max(now, start))
    cfg = settings.digest
    in_period_visit = and_(Visit.rep_id.in_(reps), Visit.visited_at >= start, Visit.visited_at < end)

    # Visits and visits without location evidence, per rep.
    visit_rows = await session.execute(
        select(Visit.rep_id, func.count(), _sum_if(Visit.latitude.is_(None)))
        .where(in_period_visit)
        .group_by(Visit.rep_id)
    )
    visits = {r[0]: (int(r[1]), int(r[2])) for r in visit_rows}

    # Plan items (not cancelled) whose day lies in the period, and those done, per rep. A day digest counts day
    # items only: a week item may still be done on any later day of its week (the week digest counts it).
    planned = and_(
        PlanItem.rep_id.in_(reps),
        PlanItem.status != PlanStatus.CANCELLED.value,
        PlanItem.day >= first,
        PlanItem.day <= last,
        *((PlanItem.period == PlanPeriod.DAY.value,) if period == "day" else ()),
    )
    plan_rows = await session.execute(
        select(PlanItem.rep_id, func.count(), _sum_if(done_clause())).where(planned).group_by(PlanItem.rep_id)
    )
    plans = {r[0]: (int(r[1]), int(r[2])) for r in plan_rows}

    if period == "day":
        # A day digest counts day items only, one per (rep, customer, day) (the unique key) and spanning that day:
        # each planned pair is one item, reached exactly when the item is done. No second query.
        pair_count = sum(n for n, _ in plans.values())
        pair_reached = sum(d for _, d in plans.values())
    else:
        pair_count, pair_reached = await _reach(session, planned, start, end)

    rep_lines = []
    for rid in reps:
        n_visits, no_loc = visits.get(rid, (0, 0))
        items, done = plans.get(rid, (0, 0))
        completion = _ratio(done, items)
        below = completion is not None and completion < cfg.plan_threshold
        rep_lines.append(RepLine(rid, people.names.get(rid, rid), n_visits, items, done, completion, below, no_loc))
    # Reps below the threshold first, the lowest completion first; then the others by user id.
    rep_lines.sort(
        key=lambda r: (not r.below_threshold, (r.plan_completion or 0.0) if r.below_threshold else 0.0, r.user)
    )

    a_coverage, a_touched, gaps = await _a_customers(session, settings, reps, everyone, as_of)
    counted = await session.execute(
        select(Visit.objection, func.count())
        .where(in_period_visit, Visit.objection.is_not(None), Visit.objection != "")
        .group_by(Visit.objection)
    )
    # Ties by name in code-point order, in Python: a database's collation would order Chinese differently.
    ranked = sorted(((str(o), int(n)) for o, n in counted), key=lambda c: (-c[1], c[0]))
    objections = tuple(ObjectionCount(o, n) for o, n in ranked[:TOP_OBJECTIONS])
    requests_opened = int(
        await session.scalar(
            select(func.count()).where(
                SupportRequest.rep_id.in_(reps), SupportRequest.created_at >= start, SupportRequest.created_at < end
            )
        )
        or 0
    )
    departments, counts = await _cards(session, settings, reps, everyone, start, end, as_of)
    followups = await _open_followups(session, reps, first, people.names)

    totals = Totals(
        visits=sum(r.visits for r in rep_lines),
        plan_items=sum(r.plan_items for r in rep_lines),
        plan_done=sum(r.plan_done for r in rep_lines),
        plan_completion=_ratio(sum(r.plan_done for r in rep_lines), sum(r.plan_items for r in rep_lines)),
        reach=_ratio(pair_reached, pair_count),
        no_location=sum(r.no_location for r in rep_lines),
        a_coverage=a_coverage,
        a_touched=a_touched,
        requests_opened=requests_opened,
        cards_opened=counts[0],
        cards_claimed=counts[1],
        cards_done=counts[2],
        cards_overdue=counts[3],
        cards_escalated=counts[4],
    )
    scope = Scope(viewer.id, period, first, last, tuple(reps))
    since, alerts, alert_lines = await _customer_alerts(session, settings, reps, everyone, period, first, last)
    return Digest(
        scope,
        totals,
        tuple(rep_lines),
        departments,
        objections,
        gaps,
        followups,
        alerts_since=since,
        alerts=alerts,
        alert_lines=alert_lines,
    )


async def _a_customers(
    session: AsyncSession, settings: Settings, reps: Sequence[str], everyone: bool, as_of: datetime
) -> tuple[float | None, float | None, tuple[CustomerGap, ...]]:
    """Coverage and touch of the scope's A customers this month (the month up to ``as_of``), and those not
    visited for ``[digest] a_customer_gap_days``. Visits by anyone count: the customer was seen. Correlated
    subqueries over ix_visits_customer_at (a range count and a MAX per customer)."""
    tz = settings.org.tz
    ref_day = (as_of - timedelta(microseconds=1)).astimezone(tz).date()
    month_start = _midnight(ref_day.replace(day=1), tz)
    month_visits = (
        select(func.count())
        .where(Visit.customer_id == Customer.id, Visit.visited_at >= month_start, Visit.visited_at < as_of)
        .scalar_subquery()
    )
    last_visit = (
        select(func.max(Visit.visited_at))
        .where(Visit.customer_id == Customer.id, Visit.visited_at < as_of)
        .scalar_subquery()
    )
    # The A customers of this cycle: a grade changed this month counts from the next (bot.services.grades).
    where = [grade_in_force_sql(ref_day.replace(day=1)) == A_GRADE]
    if not everyone:
        where.append(Customer.rep_id.in_(reps))
    needed = settings.plans.frequency.get(A_GRADE, 0)
    per_customer = select(month_visits.label("n")).where(*where).subquery()
    total, covered, touched = (
        await session.execute(
            select(func.count(), _sum_if(per_customer.c.n >= needed), _sum_if(per_customer.c.n >= 1)).select_from(
                per_customer
            )
        )
    ).one()
    # Not visited for gap_days: no visit on or after the day gap_days - 1 days before ref_day, or none at all.
    cutoff = _midnight(ref_day - timedelta(days=settings.digest.a_customer_gap_days - 1), tz)
    lasts = select(Customer.name.label("name"), last_visit.label("last")).where(*where).subquery()
    rows = await session.execute(
        select(lasts.c.name, lasts.c.last).where(or_(lasts.c.last.is_(None), lasts.c.last < cutoff))
    )
    gaps = []
    for name, last in rows:
        # SQLite may give MAX() of the column back as text: read it as the UTC instant it is.
        when = read_utc(last)
        days = None if when is None else (ref_day - when.astimezone(tz).date()).days
        gaps.append(CustomerGap(name, days))
    gaps.sort(key=lambda g: (g.days_since_last_visit is not None, -(g.days_since_last_visit or 0), g.customer))
    total = int(total or 0)
    return _ratio(int(covered or 0), total), _ratio(int(touched or 0), total), tuple(gaps)


async def _reach(
    session: AsyncSession, planned: ColumnElement[bool], start: datetime, end: datetime
) -> tuple[int, int]:
    """Planned (rep, customer) pairs of the period, and those the rep visited at least once in it. The period's
    items are read first through ix_plan_items_rep_day (a MATERIALIZED CTE: asked for the distinct pairs at once,
    SQLite would walk the unique key's rep_id prefix, every item of each rep ever), then made distinct."""
    items = select(PlanItem.rep_id, PlanItem.customer_id).where(planned).cte("period_items").prefix_with("MATERIALIZED")
    pairs = select(items.c.rep_id, items.c.customer_id).distinct().subquery()
    reached = exists(
        select(Visit.id).where(
            Visit.rep_id == pairs.c.rep_id,
            Visit.customer_id == pairs.c.customer_id,
            Visit.visited_at >= start,
            Visit.visited_at < end,
        )
    )
    count, hit = (await session.execute(select(func.count(), _sum_if(reached)).select_from(pairs))).one()
    return int(count or 0), int(hit or 0)


def _alive(reps: Sequence[str], everyone: bool, start: datetime, end: datetime) -> ColumnElement[bool]:
    """The scope's cards that existed and were open at some instant of [start, end): every card the digest counts
    is one. Open now (by state) or closed since ``start``: a team's through ix_task_cards_rep_state and
    ix_task_cards_rep_closed, everyone's through ix_task_cards_state_due and ix_task_cards_closed_at, so the cost
    follows the scope's open cards and the period's, not all cards ever."""
    card = aliased(TaskCard)
    team = () if everyone else (card.rep_id.in_(reps),)
    # Written as ids from two index searches: an OR of the two lets SQLite scan every card.
    ids = union_all(
        select(card.id).where(*team, card.state.in_(OPEN_STATES)),
        select(card.id).where(*team, card.closed_at >= start),
    )
    return and_(TaskCard.rep_id.in_(reps), TaskCard.created_at < end, TaskCard.id.in_(ids))


async def _cards(
    session: AsyncSession,
    settings: Settings,
    reps: Sequence[str],
    everyone: bool,
    start: datetime,
    end: datetime,
    as_of: datetime,
) -> tuple[tuple[DepartmentLine, ...], tuple[int, int, int, int, int]]:
    """Per department, the cards of the scope's requests: opened, first-responded (claimed or asked), done in the
    period; overdue at some instant of the period (up to ``as_of``); escalated and open during it. First response
    median / p90 / share within target over the cards opened in the period."""
    opened = and_(TaskCard.created_at >= start, TaskCard.created_at < end)
    claimed = and_(TaskCard.first_response_at >= start, TaskCard.first_response_at < end)
    done = and_(TaskCard.done_at >= start, TaskCard.done_at < end)
    overdue = and_(
        TaskCard.due_at < as_of,
        or_(TaskCard.closed_at.is_(None), and_(TaskCard.closed_at > TaskCard.due_at, TaskCard.closed_at > start)),
    )
    escalated = TaskCard.notices > 0
    rows = await session.execute(
        select(
            TaskCard.department,
            _sum_if(opened),
            _sum_if(claimed),
            _sum_if(done),
            _sum_if(overdue),
            _sum_if(escalated),
        )
        .where(_alive(reps, everyone, start, end))
        .group_by(TaskCard.department)
    )
    per_dept = {r[0]: tuple(int(x) for x in r[1:]) for r in rows}
    responses = await _first_responses(session, settings, reps, everyone, start, end, as_of)
    order = {key: i for i, key in enumerate(settings.departments)}
    lines = []
    for dept in sorted(set(per_dept) | set(responses), key=lambda d: (order.get(d, len(order)), d)):
        n_opened, _, _, n_overdue, _ = per_dept.get(dept, (0, 0, 0, 0, 0))
        answered, late_unanswered = responses.get(dept, ([], 0))
        target = settings.digest.first_response_target_hours * 60
        within = sum(1 for m in answered if m <= target)
        lines.append(
            DepartmentLine(
                department=dept,
                cards=n_opened,
                first_response_median_minutes=_minutes(statistics.median(answered)) if answered else None,
                first_response_p90_minutes=_minutes(_p90(answered)) if answered else None,
                within_target_share=_ratio(within, len(answered) + late_unanswered),
                overdue=n_overdue,
            )
        )
    totals = [sum(v[i] for v in per_dept.values()) for i in range(5)]
    return tuple(lines), (totals[0], totals[1], totals[2], totals[3], totals[4])


async def _first_responses(
    session: AsyncSession,
    settings: Settings,
    reps: Sequence[str],
    everyone: bool,
    start: datetime,
    end: datetime,
    as_of: datetime,
) -> dict[str, tuple[list[float], int]]:
    """Per department: the first-response minutes of the cards opened in the period (working minutes when the
    request type counts working hours), and how many are still unanswered past the target (they count against
    the share within target)."""
    rows = await session.execute(
        select(TaskCard.department, TaskCard.created_at, TaskCard.first_response_at, SupportRequest.type_key)
        .join(SupportRequest, SupportRequest.id == TaskCard.request_id)
        .where(_alive(reps, everyone, start, end), TaskCard.created_at >= start)
    )
    cal = get_calendar(settings.calendar, settings.org.tz)
    target = settings.digest.first_response_target_hours * 60
    out: dict[str, tuple[list[float], int]] = {}
    for dept, created, responded, type_key in rows:
        rt = settings.request_types.get(type_key)
        calendar_hours = rt.calendar_hours if rt is not None else False
        until = responded if responded is not None else as_of
        if until <= created:
            minutes = 0.0
        elif calendar_hours:
            minutes = (until - created).total_seconds() / 60
        else:
            minutes = cal.working_hours_between(created, until) * 60
        answered, late = out.setdefault(dept, ([], 0))
        if responded is not None:
            answered.append(minutes)
        elif minutes > target:
            out[dept] = (answered, late + 1)
    return out


async def _open_followups(
    session: AsyncSession, reps: Sequence[str], before: date, names: dict[str, str]
) -> tuple[OpenFollowup, ...]:
    """Follow-up cards of days before the period that nobody has marked 已复盘."""
    rows = await session.execute(
        select(DigestFollowup.rep_id, DigestFollowup.day)
        .where(DigestFollowup.rep_id.in_(reps), DigestFollowup.status == "open", DigestFollowup.day < before)
        .order_by(DigestFollowup.day, DigestFollowup.rep_id)
    )
    return tuple(OpenFollowup(rep, names.get(rep, rep), day) for rep, day in rows)


# ---- customer alerts (issue 14; docs/customers.md "Alerts") ----------------------------------------------------

ALERT_LINES = 5


def alerts_since(settings: Settings, period: Period, first: date) -> date:
    """The first night whose alerts a digest shows: a day digest those since the previous working day's digest
    (the night after the previous working day: Monday's shows Saturday's, Sunday's and Monday's), a week or month
    digest the period's."""
    if period != "day":
        return first
    cal = get_calendar(settings.calendar, settings.org.tz)
    previous = first - timedelta(days=1)
    for _ in range(31):
        if cal.is_working_day(previous):
            break
        previous -= timedelta(days=1)
    return previous + timedelta(days=1)


async def _customer_alerts(
    session: AsyncSession,
    settings: Settings,
    reps: Sequence[str],
    everyone: bool,
    period: Period,
    first: date,
    last: date,
) -> tuple[date, tuple[AlertCount, ...], tuple[AlertLine, ...]]:
    """The scope's customer alerts fired on the nights from ``alerts_since`` to ``last``: the count per rule and
    the first ``ALERT_LINES`` (a customer and rule once: its newest). A scope's alerts are those of its reps (the
    customer's rep when it fired); a director's every alert, those of customers without a rep too. Read through
    ix_customer_alerts_night."""
    since = alerts_since(settings, period, first)
    where = [CustomerAlert.night >= since, CustomerAlert.night <= last]
    if not everyone:
        where.append(CustomerAlert.rep_id.in_(reps))
    order = {name: i for i, name in enumerate(settings.customers.alerts)}
    rows = await session.execute(
        select(CustomerAlert.rule, func.max(CustomerAlert.title), func.max(CustomerAlert.level), func.count())
        .where(*where)
        .group_by(CustomerAlert.rule)
    )
    counts = sorted(
        (AlertCount(rule, title, level, int(n)) for rule, title, level, n in rows),
        key=lambda c: (c.level != "red", order.get(c.rule, len(order)), c.rule),
    )
    if not counts:
        return since, (), ()
    rule_rank = case(order, value=CustomerAlert.rule, else_=len(order)) if order else literal(0)
    lines = await session.execute(
        select(CustomerAlert, Customer.name, Customer.aliases, User.name)
        .join(Customer, Customer.id == CustomerAlert.customer_id)
        .outerjoin(User, User.id == CustomerAlert.rep_id)
        .where(*where)
        .order_by(
            case((CustomerAlert.level == "red", 0), else_=1),
            rule_rank,
            CustomerAlert.night.desc(),
            CustomerAlert.id,
        )
        # A customer and rule once (the newest), from the first rows in that order.
        .limit(ALERT_LINES * 10)
    )
    out: list[AlertLine] = []
    seen: set[tuple[int, str]] = set()
    for alert, name, aliases, rep_name in lines:
        if len(out) == ALERT_LINES or (alert.customer_id, alert.rule) in seen:
            continue
        seen.add((alert.customer_id, alert.rule))
        customer = short_name(name, aliases)
        out.append(
            AlertLine(
                customer=customer,
                rep=alert.rep_id,
                rep_name=rep_name,
                rule=alert.rule,
                kind=alert.kind,
                level=alert.level,
                night=alert.night,
                detail={**(alert.detail or {}), "customer": customer},
            )
        )
    return since, tuple(counts), tuple(out)


# ---- what a person typed ----------------------------------------------------------------------------------------

DETAIL_WORDS = frozenset({"详情", "明细", "detail", "details"})
YESTERDAY_WORDS = frozenset({"昨天", "昨日", "yesterday"})
TODAY_WORDS = frozenset({"今天", "今日", "today"})
_FULL_DATE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")
_SHORT_DATE = re.compile(r"^(\d{1,2})[-/.月](\d{1,2})日?$")


@dataclass(frozen=True)
class Ask:
    """What followed 日报 / 周报 / 月报: the day (any day of the period), per-rep detail, one rep's name or id."""

    day: date
    detail: bool = False
    rep: str | None = None


def _parse_day(token: str, today: date) -> date | None:
    m = _FULL_DATE.match(token)
    try:
        if m:
            return date(int(m[1]), int(m[2]), int(m[3]))
        m = _SHORT_DATE.match(token)
        if m:
            return date(today.year, int(m[1]), int(m[2]))
    except ValueError:
        raise DigestError("digest.bad_date", text=token) from None
    return None


def parse_ask(args: str, today: date) -> Ask:
    """``昨天`` / ``2026-12-01`` / ``12-01`` / ``详情`` / a rep's name, in any order (日报 昨天 详情,
    日报 王磊 12-01)."""
    day, detail, words = today, False, []
    for token in args.split():
        low = token.lower()
        if low in DETAIL_WORDS:
            detail = True
        elif low in YESTERDAY_WORDS:
            day = today - timedelta(days=1)
        elif low in TODAY_WORDS:
            day = today
        elif (parsed := _parse_day(token, today)) is not None:
            day = parsed
        else:
            words.append(token)
    return Ask(day, detail, " ".join(words) or None)


@dataclass(frozen=True)
class Answer:
    digest: Digest
    detail: bool


async def ask(
    session: AsyncSession, settings: Settings, viewer: User, period: Period, args: str, now: datetime
) -> Answer:
    """日报 / 周报 / 月报 with what followed: the digest ``viewer`` asked for (a rep named outside their scope, or
    nobody of that name in it: ``DigestError``)."""
    wanted = parse_ask(args, now.astimezone(settings.org.tz).date())
    rep_id = None
    if wanted.rep is not None:
        people = await scope_of(session, viewer)
        matches = [r for r in people.reps if wanted.rep in (r, people.names.get(r))]
        if not matches:
            raise DigestError("digest.no_such_rep", name=wanted.rep)
        if len(matches) > 1:
            raise DigestError("digest.ambiguous_rep", name=wanted.rep, ids="、".join(matches))
        rep_id = matches[0]
    digest = await compute_digest(session, settings, viewer, period=period, day=wanted.day, now=now, rep_id=rep_id)
    return Answer(digest, wanted.detail)
