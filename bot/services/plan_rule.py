"""The one rule for "is this plan item done" (issue 12; docs/plans.md), shared by 我的计划, the digest and imports.

A plan item (rep, customer, span) is done when that rep has at least one visit to that customer with
``starts_at <= visited_at < ends_at``. A day item's span is that org-local day; a week item's span is its ISO week
(Monday 00:00 to the next Monday 00:00, org time). Done is never stored: a visit imported, corrected (修改 医院) or
logged late counts at once, and two visits to one customer complete one item, never two.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, exists, select

from storage.models import PlanItem, Visit
from storage.vocab import PlanPeriod, PlanStatus


def week_start(day: date) -> date:
    """The Monday of ``day``'s ISO week."""
    return day - timedelta(days=day.weekday())


def span(period: PlanPeriod | str, day: date, tz: ZoneInfo) -> tuple[date, datetime, datetime]:
    """(the stored ``day``, starts_at, ends_at in UTC) of a plan item for ``day`` (any day of the week for a week
    item: it is stored under its Monday)."""
    first = week_start(day) if period == PlanPeriod.WEEK else day
    days = 7 if period == PlanPeriod.WEEK else 1
    start = datetime.combine(first, time(0), tzinfo=tz)
    end = datetime.combine(first + timedelta(days=days), time(0), tzinfo=tz)
    return first, start.astimezone(UTC), end.astimezone(UTC)


def new_item(
    rep_id: str,
    customer_id: int,
    period: PlanPeriod,
    span_of: tuple[date, datetime, datetime],
    *,
    source: str,
    created_by: str | None,
    now: datetime,
    purpose: str | None = None,
) -> PlanItem:
    """A new open plan item (chat, a manager, an import) over ``span_of`` = ``span(period, day, tz)``."""
    day, starts_at, ends_at = span_of
    return PlanItem(
        rep_id=rep_id,
        customer_id=customer_id,
        period=period.value,
        day=day,
        starts_at=starts_at,
        ends_at=ends_at,
        purpose=purpose,
        status=PlanStatus.OPEN.value,
        source=source,
        created_by=created_by,
        created_at=now,
        updated_at=now,
    )


def done_clause() -> ColumnElement[bool]:
    """SQL: the plan item of the enclosing query (``PlanItem``) is done (a visit of its rep to its customer inside
    its span). Uses ix_visits_rep_at."""
    return exists(
        select(Visit.id).where(
            and_(
                Visit.rep_id == PlanItem.rep_id,
                Visit.customer_id == PlanItem.customer_id,
                Visit.visited_at >= PlanItem.starts_at,
                Visit.visited_at < PlanItem.ends_at,
            )
        )
    )


def is_done(item: PlanItem, visits: list[Visit]) -> bool:
    """The same rule in Python, over visits already loaded."""
    return any(
        v.rep_id == item.rep_id and v.customer_id == item.customer_id and item.starts_at <= v.visited_at < item.ends_at
        for v in visits
    )
