"""Customer alerts (issue 14; docs/customers.md "Alerts").

``evaluate`` runs every rule of ``[customers.alerts]`` over one night, after that night's scores are written: each
rule is ONE set-based query over ``customer_scores``, ``customers`` and ``visits`` (correlated lookups on the
unique ``(customer_id, night)`` key and ``ix_visits_customer_at``, never a query per customer), the customers it
fires for are claimed in ``customer_alerts`` with multi-row ``INSERT … ON CONFLICT DO NOTHING RETURNING`` (unique
per customer, rule and period: a rerun of the night, a crashed run taken over, or two replicas claim each alert
once), and only the alerts claimed now become messages: one ``SendText`` per person per night listing their new
alerts (the customer's rep and/or the rep's manager, per the rule's ``notify``).

``alert_line`` words one alert (the chat message and the digest share it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Select, Table, and_, exists, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.config import AlertRuleConfig, Settings
from bot.core.intents import Intent, SendText
from bot.infra import i18n
from bot.infra.clock import read_utc
from storage.models import Customer, CustomerAlert, CustomerScore, User, Visit

# Periods are aligned on this Monday: a 7-day period runs Monday–Sunday, a 14-day one every other Monday on.
EPOCH = date(2000, 1, 3)
COMPONENTS = ("purchases", "trials", "events")
# A message lists at most this many alerts, then "还有 N 条".
MAX_LINES = 10
# A score drop must exceed the rule's points by more than float noise (82.3 − 67.3 is 15.000000000000009).
EPSILON = 1e-6
# Rows per multi-row INSERT / IN list (well under SQLite's and asyncpg's bound-parameter limits).
CHUNK = 500
ICON = {"red": "🔴", "info": "💡"}


def period_of(night: date, every_days: int) -> str:
    """The period key of ``night`` for a rule repeating every ``every_days`` days: ``"<first night>/<days>"``,
    periods aligned on ``EPOCH`` (so every replica and every rerun computes the same key)."""
    first = EPOCH + timedelta(days=((night - EPOCH).days // every_days) * every_days)
    return f"{first.isoformat()}/{every_days}"


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def short_name(name: str, aliases: Sequence[Any] | None) -> str:
    """What people call the customer: its first alias (浙二), else its name."""
    first = next((str(a) for a in aliases or () if str(a).strip()), None)
    return first or name


def _num(value: float) -> str:
    """82 → "82", 82.46 → "82.5"."""
    return f"{round(value, 1):g}"


# ---- the rules ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A customer a rule fires for tonight, with what the rule saw (stored as the alert's ``detail``)."""

    customer_id: int
    name: str
    rep_id: str | None
    detail: dict[str, Any]


@dataclass(frozen=True)
class Night:
    night: date
    tz: ZoneInfo

    @property
    def end(self) -> datetime:
        """The end of the night's day: visits up to it count (a visit dated later is not one yet)."""
        return _midnight(self.night + timedelta(days=1), self.tz)


def _base() -> Select[Any]:
    """What every rule reads of a customer, with tonight's score (each rule joins the score row: inner when the
    rule reads the score, outer when the score is only shown)."""
    cols = (Customer.id, Customer.name, Customer.aliases, Customer.grade, Customer.rep_id, CustomerScore.score)
    return select(*cols).select_from(Customer)


def _common(row: Any) -> dict[str, Any]:
    score = row.score
    return {
        "customer": short_name(row.name, row.aliases),
        "grade": row.grade,
        "score": None if score is None else round(float(score), 2),
    }


async def _component_zero(session: AsyncSession, rule: AlertRuleConfig, n: Night) -> list[Candidate]:
    """``component`` at 0 on every scored night of the last ``weeks`` weeks (tonight included), for customers
    whose history reaches back to the window's first night."""
    first = n.night - timedelta(days=7 * rule.weeks - 1)
    h = aliased(CustomerScore)
    tonight = getattr(CustomerScore, rule.component)
    earlier = getattr(h, rule.component)
    q = (
        _base()
        .join(CustomerScore, CustomerScore.customer_id == Customer.id)
        .where(
            CustomerScore.night == n.night,
            tonight <= 0,
            exists(select(h.id).where(h.customer_id == CustomerScore.customer_id, h.night <= first)),
            ~exists(
                select(h.id).where(
                    h.customer_id == CustomerScore.customer_id, h.night >= first, h.night < n.night, earlier > 0
                )
            ),
        )
    )
    out = []
    for row in await session.execute(q):
        detail = _common(row) | {"component": rule.component, "weeks": rule.weeks, "since": first.isoformat()}
        out.append(Candidate(row.id, row.name, row.rep_id, detail))
    return out


async def _score_drop(session: AsyncSession, rule: AlertRuleConfig, n: Night) -> list[Candidate]:
    """Tonight's score against the score ``weeks`` weeks ago (the nearest scored night at or before it): fired
    when it fell by more than ``points``."""
    ref = n.night - timedelta(days=7 * rule.weeks)
    h = aliased(CustomerScore)

    def then(column: Any) -> Any:
        # One backward step on the unique (customer_id, night) key per customer (a join on the nearest night made
        # PostgreSQL hash every score row ever).
        return (
            select(column)
            .where(h.customer_id == CustomerScore.customer_id, h.night <= ref)
            .order_by(h.night.desc())
            .limit(1)
            .scalar_subquery()
        )

    inner = (
        _base()
        .add_columns(then(h.score).label("before"), then(h.night).label("before_night"))
        .join(CustomerScore, CustomerScore.customer_id == Customer.id)
        .where(CustomerScore.night == n.night)
        .subquery()
    )
    q = select(inner).where(inner.c.before - inner.c.score > rule.points + EPSILON)
    out = []
    for row in await session.execute(q):
        before = float(row.before)
        detail = _common(row) | {
            "weeks": rule.weeks,
            "before": round(before, 2),
            "before_night": row.before_night.isoformat(),
            "drop": round(before - float(row.score), 2),
        }
        out.append(Candidate(row.id, row.name, row.rep_id, detail))
    return out


async def _no_visit(session: AsyncSession, rule: AlertRuleConfig, n: Night) -> list[Candidate]:
    """Customers of grade ``grade`` (their current grade) with no visit on any of the last ``days`` days (tonight's
    day included); never visited: counted from the customer's ``created_at``."""
    cutoff = _midnight(n.night - timedelta(days=rule.days - 1), n.tz)
    last_visit = (
        select(func.max(Visit.visited_at))
        .where(Visit.customer_id == Customer.id, Visit.visited_at < n.end)
        .scalar_subquery()
    )
    inner = (
        _base()
        .add_columns(last_visit.label("last"), Customer.created_at)
        .outerjoin(CustomerScore, and_(CustomerScore.customer_id == Customer.id, CustomerScore.night == n.night))
        .where(Customer.grade == rule.grade)
        .subquery()
    )
    q = select(inner).where(
        or_(inner.c.last < cutoff, and_(inner.c.last.is_(None), inner.c.created_at < cutoff)),
    )
    out = []
    for row in await session.execute(q):
        last = read_utc(row.last)
        since = read_utc(row.created_at) if last is None else last
        assert since is not None
        days = (n.night - since.astimezone(n.tz).date()).days
        detail = _common(row) | {
            "days": days,
            "last_visit": None if last is None else last.astimezone(n.tz).date().isoformat(),
            "rule_days": rule.days,
        }
        out.append(Candidate(row.id, row.name, row.rep_id, detail))
    return out


async def _worth_developing(session: AsyncSession, rule: AlertRuleConfig, n: Night) -> list[Candidate]:
    """Tonight's score below ``below`` with some component (or ``component``) at or above ``at_least``."""
    names = (rule.component,) if rule.component else COMPONENTS
    cols = [getattr(CustomerScore, c).label(f"c_{c}") for c in names]
    q = (
        _base()
        .add_columns(*cols)
        .join(CustomerScore, CustomerScore.customer_id == Customer.id)
        .where(
            CustomerScore.night == n.night,
            CustomerScore.score < rule.below,
            or_(*(getattr(CustomerScore, c) >= rule.at_least for c in names)),
        )
    )
    out = []
    for row in await session.execute(q):
        values = {c: float(getattr(row, f"c_{c}")) for c in names}
        # The strongest qualifying component (ties: purchases, trials, events).
        best = max((c for c in names if values[c] >= rule.at_least), key=lambda c: values[c])
        detail = _common(row) | {"component": best, "value": round(values[best], 2), "below": rule.below}
        out.append(Candidate(row.id, row.name, row.rep_id, detail))
    return out


async def _same_objection(session: AsyncSession, rule: AlertRuleConfig, n: Night) -> list[Candidate]:
    """The customer's last ``visits`` visits (by visit time, then id) all with the same non-empty objection. The
    N-th latest visit is found per customer by one ``LIMIT 1 OFFSET N-1`` lookup on ix_visits_customer_at; the
    streak holds when no later visit has another (or no) objection."""
    v, nth, w = aliased(Visit), aliased(Visit), aliased(Visit)
    nth_id = (
        select(v.id)
        .where(v.customer_id == Customer.id, v.visited_at < n.end)
        .order_by(v.visited_at.desc(), v.id.desc())
        .limit(1)
        .offset(rule.visits - 1)
        .scalar_subquery()
    )
    # Each customer's N-th latest visit, computed once per customer (MATERIALIZED, SQLite ≥ 3.35 and PostgreSQL
    # ≥ 12: inlined, PostgreSQL evaluated the lookup twice per customer inside a hash join), then joined by id.
    firsts = (
        select(Customer.id.label("customer_id"), nth_id.label("visit_id")).cte("nth_visit").prefix_with("MATERIALIZED")
    )
    later = or_(w.visited_at > nth.visited_at, and_(w.visited_at == nth.visited_at, w.id > nth.id))
    other = or_(w.objection.is_(None), w.objection != nth.objection)
    q = (
        _base()
        .add_columns(nth.objection.label("objection"))
        .join(firsts, firsts.c.customer_id == Customer.id)
        .join(nth, nth.id == firsts.c.visit_id)
        .outerjoin(CustomerScore, and_(CustomerScore.customer_id == Customer.id, CustomerScore.night == n.night))
        .where(
            nth.objection.is_not(None),
            nth.objection != "",
            ~exists(select(w.id).where(w.customer_id == Customer.id, w.visited_at < n.end, later, other)),
        )
    )
    out = []
    for row in await session.execute(q):
        detail = _common(row) | {"objection": row.objection, "visits": rule.visits}
        out.append(Candidate(row.id, row.name, row.rep_id, detail))
    return out


FINDERS: dict[str, Callable[[AsyncSession, AlertRuleConfig, Night], Any]] = {
    "component_zero": _component_zero,
    "score_drop": _score_drop,
    "no_visit": _no_visit,
    "worth_developing": _worth_developing,
    "same_objection": _same_objection,
}


async def find(session: AsyncSession, settings: Settings, rule: AlertRuleConfig, night: date) -> list[Candidate]:
    """The customers ``rule`` fires for on ``night`` (claimed or not), by customer id."""
    found = cast(list[Candidate], await FINDERS[rule.kind](session, rule, Night(night, settings.org.tz)))
    return sorted(found, key=lambda c: c.customer_id)


# ---- claiming -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fired:
    """An alert claimed now: it is told."""

    rule: str
    config: AlertRuleConfig
    candidate: Candidate


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


async def claim(
    session: AsyncSession,
    name: str,
    rule: AlertRuleConfig,
    night: date,
    now: datetime,
    candidates: Sequence[Candidate],
) -> list[Candidate]:
    """Claim each candidate's alert for the rule's period of ``night``; the ones nobody claimed before (this
    night or an earlier one of the period, this replica or another) come back. The rows commit with the caller's
    transaction, with the messages' outbox rows."""
    if not candidates:
        return []
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else pg_insert
    key = period_of(night, rule.every_days)
    by_id = {c.customer_id: c for c in candidates}
    rows = [
        {
            "customer_id": c.customer_id,
            "rule": name,
            "kind": rule.kind,
            "level": rule.level,
            "title": rule.title,
            "period": key,
            "night": night,
            "rep_id": c.rep_id,
            "detail": c.detail,
            "created_at": now,
        }
        for c in candidates
    ]
    # One statement, sent by SQLAlchemy as multi-row INSERTs ("insertmanyvalues"): the rows already claimed (this
    # period, by this run or another) are skipped and not returned.
    # Core, not the ORM's bulk insert (which splices each batch's RETURNING rows into the previous ones).
    table = cast(Table, CustomerAlert.__table__)
    stmt = insert(table).on_conflict_do_nothing().returning(table.c.customer_id)
    connection = await session.connection()
    won = {int(x) for x in (await connection.execute(stmt, rows)).scalars()}
    return [by_id[i] for i in sorted(won)]


# ---- the words ----------------------------------------------------------------------------------------------------


def alert_line(kind: str, level: str, detail: dict[str, Any], locale: str | None) -> str:
    """One alert as people read it: ``🔴 浙二（A 类，82 分）新品试用已连续 2 周为 0``."""
    lang = i18n.normalize_locale(locale)
    grade = detail.get("grade")
    grade_text = i18n.t(lang, "alerts.grade", grade=grade) if grade else i18n.t(lang, "alerts.no_grade")
    score = detail.get("score")
    if score is None:
        about = i18n.t(lang, "alerts.about_grade", grade=grade_text)
    else:
        about = i18n.t(lang, "alerts.about", grade=grade_text, score=_num(float(score)))
    what = _what(kind, detail, lang)
    return f"{ICON.get(level, ICON['red'])} {detail.get('customer', '')}{about}{what}"


def _what(kind: str, d: dict[str, Any], lang: str) -> str:
    def component(key: str) -> str:
        return i18n.t(lang, f"alerts.component.{key}")

    if kind == "component_zero":
        return i18n.t(lang, "alerts.what.component_zero", component=component(d["component"]), weeks=d["weeks"])
    if kind == "score_drop":
        return i18n.t(
            lang,
            "alerts.what.score_drop",
            weeks=d["weeks"],
            drop=_num(float(d["drop"])),
            before=_num(float(d["before"])),
            score=_num(float(d["score"])),
        )
    if kind == "no_visit":
        if d.get("last_visit") is None:
            return i18n.t(lang, "alerts.what.never_visited", days=d["days"])
        return i18n.t(lang, "alerts.what.no_visit", days=d["days"])
    if kind == "worth_developing":
        return i18n.t(
            lang, "alerts.what.worth_developing", component=component(d["component"]), value=_num(float(d["value"]))
        )
    return i18n.t(lang, "alerts.what.same_objection", visits=d["visits"], objection=d["objection"])


@dataclass
class _Inbox:
    """One person's new alerts tonight: their own customers', and their reps' (by rep) as a manager."""

    own: list[tuple[tuple[Any, ...], Fired]] = field(default_factory=list)
    team: dict[str, list[tuple[tuple[Any, ...], Fired]]] = field(default_factory=dict)


def _message(inbox: _Inbox, names: dict[str, str], night: date, locale: str) -> str:
    lang = i18n.normalize_locale(locale)
    total = len(inbox.own) + sum(len(v) for v in inbox.team.values())
    lines = [i18n.t(lang, "alerts.header", day=night.strftime("%m-%d"), n=total)]
    shown = 0
    first: str | None = None

    def add(items: list[tuple[tuple[Any, ...], Fired]]) -> None:
        nonlocal shown, first
        for _, f in sorted(items, key=lambda x: x[0]):
            if shown >= MAX_LINES:
                return
            c = f.candidate
            lines.append(alert_line(f.config.kind, f.config.level, c.detail, lang))
            first = first or str(c.detail.get("customer") or c.name)
            shown += 1

    add(inbox.own)
    for rep_id in sorted(inbox.team, key=lambda r: (names.get(r, r), r)):
        if shown >= MAX_LINES:
            break
        lines.append(i18n.t(lang, "alerts.rep_header", name=names.get(rep_id, rep_id)))
        add(inbox.team[rep_id])
    if total > shown:
        lines.append(i18n.t(lang, "alerts.more", n=total - shown))
    if first is not None:
        lines.append(i18n.t(lang, "alerts.hint", customer=first))
    return "\n".join(lines)


async def _users(session: AsyncSession, ids: Iterable[str]) -> dict[str, User]:
    wanted = sorted(set(ids))
    out: dict[str, User] = {}
    for chunk in _chunks(wanted):
        for user in await session.scalars(select(User).where(User.id.in_(chunk))):
            out[user.id] = user
    return out


async def messages(
    session: AsyncSession,
    fired: Sequence[Fired],
    night: date,
    channel_for: Callable[[User], str],
    rule_order: Sequence[str],
) -> list[Intent]:
    """ONE ``SendText`` per person with new alerts: the rep's own customers' alerts (rules that notify the rep),
    then, for a manager, their reps' (rules that notify the manager), grouped by rep. Inactive people and
    customers without a rep reach nobody."""
    reps = await _users(session, (f.candidate.rep_id for f in fired if f.candidate.rep_id))
    managers = await _users(session, (u.manager_id for u in reps.values() if u.manager_id))
    people = {**reps, **managers}
    order = {name: i for i, name in enumerate(rule_order)}
    inboxes: dict[str, _Inbox] = {}
    for f in fired:
        rep = reps.get(f.candidate.rep_id or "")
        if rep is None:
            continue
        sort_key = (
            0 if f.config.level == "red" else 1,
            order.get(f.rule, len(order)),
            str(f.candidate.detail.get("customer", "")),
            f.candidate.customer_id,
        )
        if "rep" in f.config.notify and rep.active:
            inboxes.setdefault(rep.id, _Inbox()).own.append((sort_key, f))
        manager = managers.get(rep.manager_id or "")
        if "manager" in f.config.notify and manager is not None and manager.active and manager.id != rep.id:
            inboxes.setdefault(manager.id, _Inbox()).team.setdefault(rep.id, []).append((sort_key, f))
    names = {u.id: u.name for u in people.values()}
    intents: list[Intent] = []
    for user_id in sorted(inboxes):
        user = people[user_id]
        text = _message(inboxes[user_id], names, night, user.locale)
        intents.append(SendText(channel=channel_for(user), user_ids=(user.id,), text=text))
    return intents


async def evaluate(
    session: AsyncSession, settings: Settings, night: date, now: datetime, channel_for: Callable[[User], str]
) -> list[Intent]:
    """Evaluate every rule of ``[customers.alerts]`` for ``night`` over its scores; claim each alert that is due
    (``customer_alerts``, once per customer, rule and period) and return the messages to send, for the caller to
    put in the outbox in the same transaction."""
    rules = settings.customers.alerts
    fired: list[Fired] = []
    for name, rule in rules.items():
        found = await find(session, settings, rule, night)
        for candidate in await claim(session, name, rule, night, now, found):
            fired.append(Fired(name, rule, candidate))
    if not fired:
        return []
    return await messages(session, fired, night, channel_for, list(rules))
