"""The manager digest as data (issue 12): what ``bot.services.digest.compute_digest`` returns, what every renderer
(chat rich text in each channel's format, the follow-up cards, ``salesbot digest --format json``) reads.

The producer's signature (bot/services/digest.py)::

    async def compute_digest(session, settings, viewer: User, *, period: Period, day: date, now: datetime,
                             rep_id: str | None = None) -> Digest

``day`` is any org-local day of the period (a week is Monday–Sunday, a month the calendar month); plan items
count in the period that holds their ``day`` (a week item's Monday), a day digest day items only; ``rep_id``
narrows to one rep of the viewer's scope (``日报 王磊``), anyone outside it is a ``DomainError``.

``to_json()`` is the stable document for BI tools (docs/digest.md): ratios are numbers in 0..1, or None when there
is nothing to divide by; dates are ISO ``YYYY-MM-DD``; minutes are floats rounded to 0.1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Literal

Period = Literal["day", "week", "month"]


@dataclass(frozen=True)
class Scope:
    """Whose figures: ``user`` asked (or receives) them for ``period`` from ``start`` to ``end`` (both inclusive,
    org-local days), over the reps ``reps`` (user ids) their role lets them see."""

    user: str
    period: Period
    start: date
    end: date
    reps: tuple[str, ...]


@dataclass(frozen=True)
class Totals:
    visits: int
    plan_items: int
    plan_done: int
    # plan_done / plan_items
    plan_completion: float | None
    # planned customers visited at least once / planned customers
    reach: float | None
    # visits without location evidence
    no_location: int
    # A customers (of the scope's reps) whose visits this month reach their grade's frequency / A customers
    a_coverage: float | None
    # A customers visited at least once this month / A customers
    a_touched: float | None
    requests_opened: int
    cards_opened: int
    cards_claimed: int
    cards_done: int
    cards_overdue: int
    cards_escalated: int


@dataclass(frozen=True)
class RepLine:
    user: str
    name: str
    visits: int
    plan_items: int
    plan_done: int
    plan_completion: float | None
    below_threshold: bool
    no_location: int


@dataclass(frozen=True)
class DepartmentLine:
    department: str
    cards: int
    first_response_median_minutes: float | None
    first_response_p90_minutes: float | None
    within_target_share: float | None
    overdue: int


@dataclass(frozen=True)
class ObjectionCount:
    objection: str
    count: int


@dataclass(frozen=True)
class CustomerGap:
    customer: str
    # None: never visited
    days_since_last_visit: int | None


@dataclass(frozen=True)
class OpenFollowup:
    """A follow-up card of an earlier day nobody has marked 已复盘 yet (listed in the next digest)."""

    rep: str
    name: str
    day: date


@dataclass(frozen=True)
class AlertCount:
    """Customer alerts of one rule that fired for the scope (docs/customers.md "Alerts")."""

    rule: str
    title: str
    level: str
    count: int


@dataclass(frozen=True)
class AlertLine:
    """One of the first alerts (red first, rules in config order, the newest night first)."""

    customer: str
    # The customer's rep when it fired (None: the customer had no rep), and their name.
    rep: str | None
    rep_name: str | None
    rule: str
    kind: str
    level: str
    night: date
    # What the rule saw (``customer_alerts.detail``).
    detail: dict[str, Any]


@dataclass(frozen=True)
class Digest:
    scope: Scope
    totals: Totals
    reps: tuple[RepLine, ...]
    departments: tuple[DepartmentLine, ...]
    top_objections: tuple[ObjectionCount, ...]
    a_customers_not_visited: tuple[CustomerGap, ...]
    open_followups: tuple[OpenFollowup, ...] = field(default=())
    # Customer alerts of the scope fired on the nights from ``alerts_since`` to the period's last day (a day
    # digest: since the previous working day's digest; a week or month: the period's nights).
    alerts_since: date | None = None
    alerts: tuple[AlertCount, ...] = field(default=())
    alert_lines: tuple[AlertLine, ...] = field(default=())

    def below_threshold(self) -> list[RepLine]:
        return [r for r in self.reps if r.below_threshold]

    def to_json(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, date):
                return value.isoformat()
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [plain(v) for v in value]
            return value

        return plain(asdict(self))
