"""Measuring the model (docs/customers.md "Measuring the model"; `salesbot customers report`): did the customers the
nightly score recommended convert better, over the following window, than the other customers scored at the time?

- Flag period: the nights ``[since, since + flag_days)``. A customer is *recommended* if on some night of it its
  suggested grade was better than its grade that night (``customer_scores``), or a ``worth_developing`` alert fired
  for it (``customer_alerts``); its flag date is the first such night. *Others*: every other customer scored in the
  flag period, with the flag date ``since``.
- Outcome window: the days ``[flag, flag + window_days)``. *Converted*: its purchases in the months whose first day
  falls in the window exceed those of the same number of months just before (purchases are per month), or it had
  a trial of a product it had never trialled before the flag date.

One set-based query per report (no row per customer comes to Python), the same SQL on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, Select, and_, case, exists, func, literal, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from bot.config import Settings
from bot.core.errors import DomainError
from bot.infra import i18n
from bot.services.scoring import grade_rank
from bot.services.team import team_members
from storage.models import Customer, CustomerAlert, CustomerPurchase, CustomerScore, CustomerTrial, User

WORTH_DEVELOPING = "worth_developing"
DEFAULT_WINDOW_DAYS = 182
DEFAULT_FLAG_DAYS = 30
DEFAULT_POINTS = 15.0
# A window of 31 days or more holds at least one first of a month (purchases are per month); 3 years at most.
WINDOW_RANGE = (31, 1096)
FLAG_DAYS_RANGE = (1, 366)
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class ReportError(DomainError):
    """A bad argument of the report (the message says what is wrong and how to fix it)."""


@dataclass(frozen=True)
class ReportParams:
    """What to measure: the flag period's first night, its length, the outcome window, the target and the scope."""

    since: date
    window_days: int = DEFAULT_WINDOW_DAYS
    flag_days: int = DEFAULT_FLAG_DAYS
    points: float = DEFAULT_POINTS
    # A manager's user id: only the customers whose rep reports to them (at any depth).
    team: str | None = None


def parse_params(
    since: str | None,
    window: str | None = None,
    flag_days: str | None = None,
    points: str | None = None,
    team: str | None = None,
) -> ReportParams:
    """The command line's texts as ``ReportParams``; a bad one raises ``ReportError`` naming the fix."""
    if not since:
        raise ReportError("customer_report.since_missing")
    try:
        if not _ISO_DAY.match(since.strip()):
            raise ValueError(since)
        day = date.fromisoformat(since.strip())
    except ValueError:
        raise ReportError("customer_report.bad_since", value=since) from None
    return ReportParams(
        since=day,
        window_days=_int_in("window", window, DEFAULT_WINDOW_DAYS, WINDOW_RANGE),
        flag_days=_int_in("flag_days", flag_days, DEFAULT_FLAG_DAYS, FLAG_DAYS_RANGE),
        points=_points(points),
        team=(team or "").strip() or None,
    )


def _int_in(name: str, text: str | None, default: int, bounds: tuple[int, int]) -> int:
    if text is None:
        return default
    lo, hi = bounds
    try:
        value = int(text.strip())
    except ValueError:
        value = lo - 1
    if not lo <= value <= hi:
        raise ReportError(f"customer_report.bad_{name}", value=text, lo=lo, hi=hi)
    return value


def _points(text: str | None) -> float:
    if text is None:
        return DEFAULT_POINTS
    try:
        value = float(text.strip())
    except ValueError:
        value = -1.0
    if not 0 <= value <= 100:
        raise ReportError("customer_report.bad_points", value=text)
    return value


@dataclass(frozen=True)
class GroupOutcome:
    """One group's figures: how many customers, how many converted (and by which road: a customer may take
    both), the mean purchase growth in yuan (window minus the months before) and the mean new products trialled."""

    customers: int = 0
    converted: int = 0
    by_purchases: int = 0
    by_trials: int = 0
    purchases_growth_mean: float | None = None
    trials_mean: float | None = None

    @property
    def rate(self) -> float | None:
        return self.converted / self.customers if self.customers else None

    def to_json(self) -> dict[str, Any]:
        return {
            "customers": self.customers,
            "converted": self.converted,
            "conversion_rate": None if self.rate is None else round(self.rate, 4),
            "converted_by_purchases": self.by_purchases,
            "converted_by_trials": self.by_trials,
            "purchases_growth_mean": None
            if self.purchases_growth_mean is None
            else round(self.purchases_growth_mean, 2),
            "new_product_trials_mean": None if self.trials_mean is None else round(self.trials_mean, 2),
        }


@dataclass(frozen=True)
class CustomerReport:
    """The measure: both groups, the difference in percentage points and whether it reaches the target."""

    params: ReportParams
    today: date
    team_name: str | None
    recommended: GroupOutcome
    others: GroupOutcome
    # The latest flag date of anyone counted (the last window ends window_days after it).
    last_flag: date | None

    @property
    def flag_until(self) -> date:
        """The flag period's last night."""
        return self.params.since + timedelta(days=self.params.flag_days - 1)

    @property
    def empty(self) -> bool:
        return self.recommended.customers + self.others.customers == 0

    @property
    def window_end(self) -> date | None:
        """The last day of the latest outcome window."""
        return None if self.last_flag is None else self.last_flag + timedelta(days=self.params.window_days - 1)

    @property
    def partial(self) -> bool:
        """Some window has not ended yet (it reaches today or beyond): the figures are the ones so far."""
        return self.window_end is not None and self.window_end >= self.today

    @property
    def difference_points(self) -> float | None:
        rec, oth = self.recommended.rate, self.others.rate
        return None if rec is None or oth is None else (rec - oth) * 100

    @property
    def passed(self) -> bool | None:
        """Recommended ≥ others + points (None: a group is empty, nothing to compare)."""
        diff = self.difference_points
        # A hair of tolerance: 61.5 % − 46.5 % is 15 points, whatever the floats say.
        return None if diff is None else diff >= self.params.points - 1e-9

    def to_json(self) -> dict[str, Any]:
        """The stable document of `--json` (docs/customers.md)."""
        diff = self.difference_points
        end = self.window_end
        return {
            "since": self.params.since.isoformat(),
            "flag_until": self.flag_until.isoformat(),
            "flag_days": self.params.flag_days,
            "window_days": self.params.window_days,
            "points": self.params.points,
            "team": self.params.team,
            "today": self.today.isoformat(),
            "window_end": None if end is None else end.isoformat(),
            "partial": self.partial,
            "recommended": self.recommended.to_json(),
            "others": self.others.to_json(),
            "difference_points": None if diff is None else round(diff, 2),
            "pass": self.passed,
        }


# ---- the query ----------------------------------------------------------------------------------------------------


def _add_months(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _month_starts(lo: date, hi: date) -> tuple[date, int]:
    """The first month start on or after ``lo`` and how many month starts fall in ``[lo, hi)``."""
    first = lo if lo.day == 1 else _add_months(lo.replace(day=1), 1)
    n, m = 0, first
    while m < hi:
        n, m = n + 1, _add_months(m, 1)
    return first, n


def _windows(params: ReportParams) -> Any:
    """One row per possible flag date: ``flag``, ``hi`` (the window's end, exclusive) and ``before_lo`` (the first
    month of the months before: as many as the window holds). At most 366 rows, built here, joined in SQL."""
    rows = []
    for i in range(params.flag_days):
        flag = params.since + timedelta(days=i)
        hi = flag + timedelta(days=params.window_days)
        first, n = _month_starts(flag, hi)
        rows.append(
            select(
                literal(flag, Date).label("flag"),
                literal(hi, Date).label("hi"),
                literal(_add_months(first, -n), Date).label("before_lo"),
            )
        )
    return (union_all(*rows) if len(rows) > 1 else rows[0]).cte("windows")


async def _scope(
    session: AsyncSession, settings: Settings, now: datetime, params: ReportParams
) -> tuple[date, Any, str | None]:
    """Today (org time), the team CTE (None: everyone) and the manager's name; a bad argument raises."""
    today = now.astimezone(settings.org.tz).date()
    if params.since > today:
        raise ReportError("customer_report.since_future", since=params.since.isoformat(), today=today.isoformat())
    if not params.team:
        return today, None, None
    manager = await session.get(User, params.team)
    if manager is None:
        raise ReportError("customer_report.team_unknown", team=params.team)
    team = team_members(manager.id)
    if await session.scalar(select(func.count()).select_from(team)) == 0:
        raise ReportError("customer_report.team_empty", team=params.team, name=manager.name)
    return today, team, manager.name


def outcomes_query(settings: Settings, params: ReportParams, team: Any = None) -> Select[Any]:
    """One row per customer counted: ``cid``, ``rec`` (1 recommended, 0 others), ``flag`` (its flag date),
    ``after`` / ``before`` (purchases in the window's months and in as many months before), ``new_products``
    (products first trialled in the window), ``grew``, ``tried`` and ``converted`` (1 or 0)."""
    start = params.since
    stop = params.since + timedelta(days=params.flag_days)
    S, A = CustomerScore, CustomerAlert

    def in_scope(customer_id: Any) -> list[ColumnElement[bool]]:
        if team is None:
            return []
        return [customer_id.in_(select(Customer.id).where(Customer.rep_id.in_(select(team.c.id))))]

    # One pass over the period's scores: every customer scored, with its first night of a better suggestion (NULL:
    # none); the worth_developing alerts' first nights beside them; the earlier of the two is the flag date.
    better = grade_rank(settings, S.suggested_grade, unknown_lowest=False) < grade_rank(
        settings, S.grade, unknown_lowest=True
    )
    scored = (
        select(S.customer_id.label("cid"), func.min(case((better, S.night), else_=None)).label("flag"))
        .where(S.night >= start, S.night < stop, *in_scope(S.customer_id))
        .group_by(S.customer_id)
    )
    alerted = (
        select(A.customer_id.label("cid"), func.min(A.night).label("flag"))
        .where(A.kind == WORTH_DEVELOPING, A.night >= start, A.night < stop, *in_scope(A.customer_id))
        .group_by(A.customer_id)
    )
    both = union_all(scored, alerted).subquery()
    first = func.min(both.c.flag)
    cohort = (
        select(
            both.c.cid,
            func.coalesce(first, literal(start, Date)).label("flag"),
            case((first.is_not(None), 1), else_=0).label("rec"),
        )
        .group_by(both.c.cid)
        .cte("cohort")
    )
    windows = _windows(params)

    P = CustomerPurchase
    purchases = (
        select(
            cohort.c.cid,
            func.sum(case((P.month >= cohort.c.flag, P.amount), else_=0)).label("after"),
            func.sum(case((P.month < cohort.c.flag, P.amount), else_=0)).label("before"),
        )
        .join(windows, windows.c.flag == cohort.c.flag)
        .join(P, and_(P.customer_id == cohort.c.cid, P.month >= windows.c.before_lo, P.month < windows.c.hi))
        .group_by(cohort.c.cid)
        .subquery()
    )
    T, earlier = CustomerTrial, aliased(CustomerTrial)
    trials = (
        select(cohort.c.cid, func.count(T.product.distinct()).label("new_products"))
        .join(windows, windows.c.flag == cohort.c.flag)
        .join(T, and_(T.customer_id == cohort.c.cid, T.day >= cohort.c.flag, T.day < windows.c.hi))
        .where(
            ~exists().where(
                earlier.customer_id == T.customer_id, earlier.product == T.product, earlier.day < cohort.c.flag
            )
        )
        .group_by(cohort.c.cid)
        .subquery()
    )
    after = func.coalesce(purchases.c.after, 0)
    before = func.coalesce(purchases.c.before, 0)
    new_products = func.coalesce(trials.c.new_products, 0)
    # Amounts are in cents: a growth of half a cent is float noise (SQLite sums doubles), not growth.
    grew = after - before > 0.005
    tried = new_products > 0
    return (
        select(
            cohort.c.cid,
            cohort.c.rec,
            cohort.c.flag,
            after.label("after"),
            before.label("before"),
            new_products.label("new_products"),
            case((grew, 1), else_=0).label("grew"),
            case((tried, 1), else_=0).label("tried"),
            case((or_(grew, tried), 1), else_=0).label("converted"),
        )
        .select_from(cohort)
        .outerjoin(purchases, purchases.c.cid == cohort.c.cid)
        .outerjoin(trials, trials.c.cid == cohort.c.cid)
    )


@dataclass(frozen=True)
class CustomerOutcome:
    """One customer's line of the measure (``customer_outcomes``: tests, a drill-down)."""

    customer_id: int
    recommended: bool
    flag: date
    after: float
    before: float
    new_products: int
    converted: bool


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


async def customer_outcomes(
    session: AsyncSession, settings: Settings, now: datetime, params: ReportParams
) -> list[CustomerOutcome]:
    """Every customer the report counts, by id."""
    _, team, _ = await _scope(session, settings, now, params)
    q = outcomes_query(settings, params, team).subquery()
    rows = (await session.execute(select(q).order_by(q.c.cid))).all()
    return [
        CustomerOutcome(
            r.cid, bool(r.rec), _day(r.flag), float(r.after), float(r.before), int(r.new_products), bool(r.converted)
        )
        for r in rows
    ]


async def customer_report(
    session: AsyncSession, settings: Settings, now: datetime, params: ReportParams
) -> CustomerReport:
    """The report for ``params`` as of ``now`` (its org-local date is "today"): one aggregate query."""
    today, team, team_name = await _scope(session, settings, now, params)
    q = outcomes_query(settings, params, team).subquery()
    rows = (
        await session.execute(
            select(
                q.c.rec,
                func.count(),
                func.sum(q.c.converted),
                func.sum(q.c.grew),
                func.sum(q.c.tried),
                func.sum(q.c.after - q.c.before),
                func.sum(q.c.new_products),
                func.max(q.c.flag),
            ).group_by(q.c.rec)
        )
    ).all()
    groups = {0: GroupOutcome(), 1: GroupOutcome()}
    last_flag: date | None = None
    for rec, n, converted, grew, tried, growth_sum, trials_sum, max_flag in rows:
        groups[int(rec)] = GroupOutcome(
            customers=int(n),
            converted=int(converted or 0),
            by_purchases=int(grew or 0),
            by_trials=int(tried or 0),
            purchases_growth_mean=float(growth_sum or 0) / n,
            trials_mean=float(trials_sum or 0) / n,
        )
        flag = _day(max_flag)
        last_flag = flag if last_flag is None else max(last_flag, flag)
    return CustomerReport(params, today, team_name, groups[1], groups[0], last_flag)


# ---- text -----------------------------------------------------------------------------------------------------------


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def _yuan(value: float) -> str:
    """¥1,234 or -¥60: whole yuan."""
    return f"{'-' if round(value) < 0 else ''}¥{abs(value):,.0f}"


def _num(value: float) -> str:
    return f"{value:g}"


def render_report(report: CustomerReport, locale: str | None) -> str:
    """The report as people read it (zh-CN by default), one fact a line; the summary line carries ✓ or ✗."""
    p = report.params

    def t(key: str, **kw: Any) -> str:
        return i18n.t(locale, f"customer_report.{key}", **kw)

    if report.empty:
        return t("no_scores", since=p.since.isoformat(), until=report.flag_until.isoformat())
    lines = [
        t(
            "title",
            since=p.since.isoformat(),
            until=report.flag_until.isoformat(),
            window=p.window_days,
            today=report.today.isoformat(),
        )
    ]
    if report.team_name:
        lines.append(t("team", name=report.team_name, team=p.team))
    rec, oth, diff = report.recommended, report.others, report.difference_points
    groups = t("groups", rec=rec.customers, rec_rate=_pct(rec.rate), oth=oth.customers, oth_rate=_pct(oth.rate))
    if diff is None:
        verdict = t("no_compare_recommended" if not rec.customers else "no_compare_others")
    elif diff >= 0:
        verdict = t("higher", diff=f"{diff:.1f}", points=_num(p.points))
    else:
        verdict = t("lower", diff=f"{-diff:.1f}", points=_num(p.points))
    mark = "" if report.passed is None else ("✓" if report.passed else "✗")
    lines.append(f"{groups}{t('sep')}{verdict}{mark}")
    for key, g in (("recommended", rec), ("others", oth)):
        if g.customers:
            lines.append(
                t(
                    "detail",
                    group=t(key),
                    by_purchases=g.by_purchases,
                    by_trials=g.by_trials,
                    growth=_yuan(g.purchases_growth_mean or 0),
                    trials=f"{g.trials_mean or 0:.2f}",
                )
            )
    if report.partial and report.window_end is not None:
        lines.append(t("partial", end=report.window_end.isoformat(), today=report.today.isoformat()))
    lines.append(t("definition", window=p.window_days))
    return "\n".join(lines)
