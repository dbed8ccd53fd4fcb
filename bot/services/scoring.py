"""The nightly customer health score (docs/customers.md "The score").

``compute_night`` writes one ``customer_scores`` row per customer for a night in ONE set-based statement
(``INSERT … SELECT … ON CONFLICT DO UPDATE`` over CTEs: three GROUP BY aggregates over the windows, window
functions for the percentiles, the weighted sum, the suggested grade), the same SQL on SQLite and PostgreSQL but
for the percentiles' shape and the rounding's spelling (see ``_component``, ``_round1``), then thins the history.
No per-customer Python.

The rules (all documented in docs/customers.md):

- windows, for night N: purchases over the ``purchases_months`` calendar months ending with N's month (the
  ``customer_purchases.month`` rows from the first day of the first month to the last day of N's month); trials and
  event attendees over the days in (N − ``trials_days``, N] and (N − ``events_days``, N];
- ``method = "percentile"``: among the customers with a non-zero value, ``cume_dist × 100``: the share of them
  whose value is at most the customer's (the top value gets 100; tied values get the same figure, the one of the
  tie's highest place); a zero value gets 0. ``method = "target"``: ``min(100, value / target × 100)``;
- each component is rounded to one decimal, the score is Σ weight × (rounded) component rounded to one decimal
  (half up in double precision, a value within 1e-9 of a half counting as the half; ``_round1``);
- the suggested grade is the highest grade of ``[customers.grades] thresholds`` whose threshold the rounded score
  reaches; ``grade`` is the customer's grade when the night is computed;
- history: after writing, rows older than ``keep_nightly_days`` before N are deleted unless their night is a Monday
  or the row is a flag of the model (its suggested grade better than its grade: ``salesbot customers report``
  reads the first such night). The delete looks back ``THIN_LOOKBACK_DAYS`` from that boundary only, so its cost
  stays one night's rows however long the history grows (a job down for longer leaves the nights it missed).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Date, Float, bindparam, case, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import ScoreConfig, Settings
from storage.models import CustomerScore, UTCDateTime


def month_start(day: date, back: int = 0) -> date:
    """The first day of ``day``'s month, ``back`` months earlier."""
    index = day.year * 12 + day.month - 1 - back
    return date(index // 12, index % 12 + 1, 1)


def windows(cfg: ScoreConfig, night: date) -> dict[str, date]:
    """The bounds of the night's windows: purchases months in [p_from, p_to), trials days in (t_from, night],
    event days in (e_from, night]."""
    last = calendar.monthrange(night.year, night.month)[1]
    return {
        "p_from": month_start(night, cfg.purchases_months - 1),
        "p_to": date(night.year, night.month, last) + timedelta(days=1),
        "t_from": night - timedelta(days=cfg.trials_days),
        "e_from": night - timedelta(days=cfg.events_days),
        "night": night,
    }


# The three raw aggregates over the windows; the benchmark times these alone as its baseline.
AGGREGATES = {
    "purchases": """SELECT customer_id, SUM(amount) AS v FROM customer_purchases
        WHERE month >= :p_from AND month < :p_to GROUP BY customer_id""",
    "trials": """SELECT customer_id, COUNT(*) AS v FROM customer_trials
        WHERE day > :t_from AND day <= :night GROUP BY customer_id""",
    "events": """SELECT customer_id, SUM(attendees) AS v FROM customer_events
        WHERE day > :e_from AND day <= :night GROUP BY customer_id""",
}

WORK_MEM = "64MB"
DATE_PARAMS = frozenset({"p_from", "p_to", "t_from", "e_from", "night"})
DOUBLE = "DOUBLE PRECISION"  # REAL affinity on SQLite, float8 on PostgreSQL


def _component(cfg: ScoreConfig, raw: str, name: str, grouped: bool) -> str:
    """SQL for one component (0-100, before rounding) from the raw value column ``raw``.

    The percentile is cume_dist × 100 among the non-zero values, computed one of two ways (the same figures; the
    tests run both): ``grouped`` (PostgreSQL) reads it from ``{name}r``, over the distinct values; otherwise
    (SQLite, which would join ``{name}r`` by scanning it for every customer) as (count − rank from the top + 1) /
    count over the customers' rows. Never cume_dist() itself: PostgreSQL's looks ahead through each tie group (all
    the zeros are one), quadratic once the partition spills to disk."""
    if cfg.method == "percentile" and grouped:
        return f"COALESCE({name}r.c, 0.0)"  # a zero value is not in {name}r
    if cfg.method == "percentile":
        above = f"rank() OVER (PARTITION BY {raw} > 0 ORDER BY {raw} DESC)"
        at_most = f"CAST(nz.{name} + 1 - {above} AS {DOUBLE})"
        return f"CASE WHEN {raw} > 0 THEN {at_most} * 100.0 / nz.{name} ELSE 0.0 END"
    ratio = f"CAST({raw} AS {DOUBLE}) * 100.0 / CAST(:{name}_target AS {DOUBLE})"
    return f"CASE WHEN {ratio} >= 100.0 THEN 100.0 ELSE {ratio} END"


def _percentiles(name: str, raw: str) -> str:
    """CTE ``{name}r(v, c)``: each non-zero value of ``raw`` and its cume_dist × 100 among the customers' non-zero
    values (the customers whose value is at most v, over all of them), computed over the distinct values: a few
    rows for trials and attendees, and narrow ones for purchases, instead of sorting every customer's row."""
    return (
        f"{name}r AS (SELECT v, CAST(SUM(n) OVER (ORDER BY v) AS {DOUBLE}) * 100.0 / SUM(n) OVER () AS c"
        f" FROM (SELECT {raw} AS v, COUNT(*) AS n FROM raw WHERE {raw} > 0 GROUP BY {raw}) d),\n"
    )


def _round1(expr: str, dialect: str) -> str:
    """``expr`` (≥ 0) rounded to one decimal, half up, the same on both backends and in double precision (no
    NUMERIC: PostgreSQL's float-to-numeric casts cost more than the rest of the arithmetic). A value within 1e-9
    of a half counts as the half, so 1.15 (1.149999… in binary) gives 1.2 as it reads."""
    # floor() on PostgreSQL; SQLite may lack it, and CAST(… AS INTEGER) truncates there (the value is ≥ 0), while
    # PostgreSQL's cast to an integer rounds.
    if dialect == "sqlite":
        return f"(CAST(({expr}) * 10 + 0.5 + 1e-9 AS INTEGER) / 10.0)"
    return f"(floor(({expr}) * 10 + 0.5 + 1e-9) / 10)"


def _suggested(cfg: dict[str, float]) -> tuple[str, dict[str, float]]:
    """CASE … END for the suggested grade from the (validated: one letter each, highest first) thresholds."""
    whens, params = [], {}
    items = sorted(cfg.items(), key=lambda kv: -kv[1])
    for i, (grade, floor) in enumerate(items[:-1]):
        assert len(grade) == 1 and grade.isalpha()
        whens.append(f"WHEN score >= CAST(:g{i} AS {DOUBLE}) THEN '{grade}'")
        params[f"g{i}"] = floor
    lowest = items[-1][0]
    assert len(lowest) == 1 and lowest.isalpha()
    if not whens:  # one grade only
        return f"'{lowest}'", params
    return f"CASE {' '.join(whens)} ELSE '{lowest}' END", params


def score_statement(settings: Settings, dialect: str) -> tuple[Any, dict[str, Any]]:
    """The upsert of a night's rows and its non-date parameters, for ``dialect`` (sqlite, postgresql)."""
    cfg = settings.customers.score
    suggested, grade_params = _suggested(settings.customers.grades.thresholds)
    grouped = dialect != "sqlite"
    comps = {
        name: _round1(_component(cfg, raw, name, grouped), dialect)
        for name, raw in (("p", "pv"), ("t", "tv"), ("e", "ev"))
    }
    weighted = " + ".join(
        f"CAST(:w_{n} AS {DOUBLE}) * CAST({n}c AS {DOUBLE})" for n in ("p", "t", "e")
    )  # the weights are validated to add up to 1
    percentile = cfg.method == "percentile"
    if percentile and grouped:
        ranks = "".join(_percentiles(n, raw) for n, raw in (("p", "pv"), ("t", "tv"), ("e", "ev")))
        joins = " LEFT JOIN pr ON pr.v = raw.pv LEFT JOIN tr ON tr.v = raw.tv LEFT JOIN er ON er.v = raw.ev"
    elif percentile:  # the number of non-zero values of each component
        ranks = (
            "nz AS (SELECT SUM(CASE WHEN pv > 0 THEN 1 ELSE 0 END) AS p, SUM(CASE WHEN tv > 0 THEN 1 ELSE 0 END)"
            " AS t, SUM(CASE WHEN ev > 0 THEN 1 ELSE 0 END) AS e FROM raw),\n"
        )
        joins = " CROSS JOIN nz"
    else:
        ranks = joins = ""
    # INSERT … WITH … SELECT (not WITH … INSERT): Python's sqlite3 reports no rowcount for a statement opening
    # with WITH. The SELECT has a WHERE so that SQLite does not read ON CONFLICT as a join constraint. Rows go in
    # in customer order: the (customer_id, night) index is then appended to, not written all over.
    sql = f"""
INSERT INTO customer_scores (customer_id, night, score, purchases, trials, events, purchases_amount, trials_count,
                             attendees, grade, suggested_grade, computed_at)
WITH p AS ({AGGREGATES["purchases"]}),
t AS ({AGGREGATES["trials"]}),
e AS ({AGGREGATES["events"]}),
raw AS (
    SELECT c.id AS customer_id, c.grade AS grade, ROUND(COALESCE(p.v, 0), 2) AS pv, COALESCE(t.v, 0) AS tv,
           COALESCE(e.v, 0) AS ev
    FROM customers c
    LEFT JOIN p ON p.customer_id = c.id
    LEFT JOIN t ON t.customer_id = c.id
    LEFT JOIN e ON e.customer_id = c.id
),
{ranks}comp AS (
    SELECT customer_id, grade, pv, tv, ev, {comps["p"]} AS pc, {comps["t"]} AS tc, {comps["e"]} AS ec
    FROM raw{joins}
),
scored AS (SELECT comp.*, {_round1(weighted, dialect)} AS score FROM comp)
SELECT customer_id, :night, score, pc, tc, ec, pv, tv, ev, grade, {suggested}, :now FROM scored WHERE 1 = 1
ORDER BY customer_id
ON CONFLICT (customer_id, night) DO UPDATE SET
    score = excluded.score, purchases = excluded.purchases, trials = excluded.trials, events = excluded.events,
    purchases_amount = excluded.purchases_amount, trials_count = excluded.trials_count,
    attendees = excluded.attendees, grade = excluded.grade, suggested_grade = excluded.suggested_grade,
    computed_at = excluded.computed_at
"""
    params: dict[str, Any] = dict(grade_params)
    params.update(w_p=cfg.purchases_weight, w_t=cfg.trials_weight, w_e=cfg.events_weight)
    if cfg.method == "target":
        params.update(p_target=cfg.purchases_target, t_target=cfg.trials_target, e_target=cfg.events_target)
    return typed(sql), params


def typed(sql: str) -> Any:
    """``text(sql)`` with its parameters typed (dates as dates on both backends, the instant as UTC)."""
    binds = []
    for name in sorted(set(re.findall(r"(?<![:\w]):(\w+)", sql))):
        kind = Date() if name in DATE_PARAMS else UTCDateTime() if name == "now" else Float()
        binds.append(bindparam(name, type_=kind))
    return text(sql).bindparams(*binds)


def is_monday_sql(dialect: str) -> str:
    return "strftime('%w', night) = '1'" if dialect == "sqlite" else "EXTRACT(ISODOW FROM night) = 1"


async def compute_night(session: AsyncSession, settings: Settings, night: date, now: datetime) -> int:
    """Write (upsert) one ``customer_scores`` row per customer for ``night``; returns how many customers. Then
    delete the rows older than ``keep_nightly_days`` before ``night`` whose night is not a Monday."""
    cfg = settings.customers.score
    dialect = session.get_bind().dialect.name
    stmt, params = score_statement(settings, dialect)
    params.update(windows(cfg, night), now=now)
    if dialect == "postgresql":
        # For this transaction only: the window sorts of 100k customers fit in memory instead of spilling to
        # disk, and no JIT compilation (it costs more than it saves on a statement run once a night).
        await session.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
        await session.execute(text("SET LOCAL jit = off"))
    result = await session.execute(stmt, params)
    scored = int(result.rowcount or 0)  # type: ignore[attr-defined]
    await thin(session, settings, night - timedelta(days=cfg.keep_nightly_days))
    return scored


# How far before the thinning boundary the delete looks: the nights a stopped job left behind, up to this many.
THIN_LOOKBACK_DAYS = 60


def grade_rank(settings: Settings, column: Any, *, unknown_lowest: bool) -> ColumnElement[Any]:
    """0 for the best grade of [customers.grades] (thresholds, highest first), 1 for the next … A grade outside
    them or none: the lowest rank (a customer's grade) or NULL (a suggestion: never better than anything)."""
    order = list(settings.customers.grades.thresholds)
    whens = {grade: rank for rank, grade in enumerate(order)}
    return case(whens, value=column, else_=len(order) - 1 if unknown_lowest else None)


def flagged(settings: Settings) -> ColumnElement[bool]:
    """A score row where the model recommends the customer: its suggested grade is better than its grade."""
    return grade_rank(settings, CustomerScore.suggested_grade, unknown_lowest=False) < grade_rank(
        settings, CustomerScore.grade, unknown_lowest=True
    )


async def thin(session: AsyncSession, settings: Settings, before: date) -> None:
    """Delete the nights before ``before`` (back to ``THIN_LOOKBACK_DAYS`` earlier) that are not Mondays (one row a
    week stays for the trend), keeping the rows the model flagged (the report's evidence)."""
    dialect = session.get_bind().dialect.name
    is_flag = flagged(settings)
    await session.execute(
        delete(CustomerScore).where(
            CustomerScore.night < before,
            CustomerScore.night >= before - timedelta(days=THIN_LOOKBACK_DAYS),
            text(f"NOT ({is_monday_sql(dialect)})"),
            # NULL (no suggestion) is not a flag.
            ~func.coalesce(is_flag, False),
        )
    )


# ---- reading ---------------------------------------------------------------------------------------------------


async def latest(session: AsyncSession, customer_ids: Iterable[int]) -> dict[int, CustomerScore]:
    """Each customer's newest score row (customers never scored are absent)."""
    ids = sorted(set(customer_ids))
    if not ids:
        return {}
    newest = (
        select(CustomerScore.customer_id, func.max(CustomerScore.night).label("night"))
        .where(CustomerScore.customer_id.in_(ids))
        .group_by(CustomerScore.customer_id)
        .subquery()
    )
    rows = await session.scalars(
        select(CustomerScore).join(
            newest, (CustomerScore.customer_id == newest.c.customer_id) & (CustomerScore.night == newest.c.night)
        )
    )
    return {r.customer_id: r for r in rows}


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


async def weekly_trend(
    session: AsyncSession, customer_id: int, night: date, weeks: int = 8
) -> list[tuple[date, float]]:
    """The score of the customer once a week over the ``weeks`` weeks (Monday to Sunday) ending with ``night``'s
    week, oldest first: each week's Monday score, else (the Monday was not computed) the week's earliest night up to
    ``night``. A week without any score is left out."""
    first = week_start(night) - timedelta(weeks=weeks - 1)
    rows = await session.execute(
        select(CustomerScore.night, CustomerScore.score)
        .where(
            CustomerScore.customer_id == customer_id,
            CustomerScore.night >= first,
            CustomerScore.night <= night,
        )
        .order_by(CustomerScore.night)
    )
    out: dict[date, tuple[date, float]] = {}
    for day, score in rows:
        out.setdefault(week_start(day), (day, float(score)))
    return [out[w] for w in sorted(out)]
