"""Visit plans (docs/plans.md): who may plan for whom, adding items (a duplicate adds nothing), cancelling, the
rep's view of today and this week, and the morning / open-items reminders. Done is derived from visits by the one
rule in ``bot.services.plan_rule``, never stored. No platform code here."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.directory import Directory
from bot.core.errors import Denial, DomainError
from bot.infra import audit
from bot.parsing.customer_match import MatchResult
from bot.parsing.plan_parser import PlanWhen, parse_plan_line
from bot.services import advice, plan_rule
from cards.customer import AdviceLine
from storage.models import Customer, PlanItem, User, Visit
from storage.vocab import PlanPeriod, PlanStatus, Role

_NO_RE = re.compile(r"^[Pp](\d{1,12})$")
# A manager chain longer than this is a loop in the org file, not a hierarchy.
_MAX_CHAIN = 32
WEEKDAYS_ZH = "一二三四五六日"


class PlanError(DomainError):
    """A refusal by the plan rules (a ``DomainError``)."""


@dataclass(frozen=True)
class Planned:
    """One customer for the span, as added or found."""

    customer_id: int
    name: str


@dataclass
class Added:
    """What ``add`` did: the items created (or reopened after a cancel) and the customers already planned."""

    rep: User
    when: PlanWhen
    created: list[tuple[PlanItem, str]] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ItemView:
    """A plan item as shown: its number, customer, span, purpose, and whether a visit did it."""

    id: int
    customer: str
    period: PlanPeriod
    day: date
    purpose: str | None
    done: bool
    customer_id: int = 0
    # The manager's newest advice for the customer (``bot.services.advice``): the morning list and 我的计划 show it.
    advice: AdviceLine | None = None


@dataclass(frozen=True)
class PlanView:
    """A rep's plan: today's day items, and this week's (week items, then the other days' items)."""

    rep: User
    today: date
    week_start: date
    today_items: list[ItemView]
    week_items: list[ItemView]


def plan_no(item_id: int) -> str:
    return f"P{item_id}"


def parse_plan_no(text: str) -> int | None:
    found = _NO_RE.match(text.strip())
    return int(found.group(1)) if found else None


def local_today(now: datetime, tz: ZoneInfo) -> date:
    return now.astimezone(tz).date()


def day_label(day: date) -> str:
    """11-24 周二 (numbers and the weekday: the same in every locale's list)."""
    return f"{day:%m-%d} 周{WEEKDAYS_ZH[day.weekday()]}"


# ---- who plans for whom -------------------------------------------------------------------------------------------


def may_plan_for_others(user: User) -> bool:
    roles = set(user.roles or [])
    return bool(roles & {Role.MANAGER, Role.DIRECTOR})


async def reports_to(session: AsyncSession, rep: User, manager_id: str) -> bool:
    """Whether ``manager_id`` is ``rep``'s manager, directly or through their managers."""
    current: str | None = rep.manager_id
    seen: set[str] = set()
    while current and current not in seen and len(seen) < _MAX_CHAIN:
        if current == manager_id:
            return True
        seen.add(current)
        current = await session.scalar(select(User.manager_id).where(User.id == current))
    return False


async def check_scope(session: AsyncSession, actor: User, rep: User) -> None:
    """The actor may see and set ``rep``'s plan: themselves, a director anyone, a manager the reps below them."""
    if actor.id == rep.id or Role.DIRECTOR in (actor.roles or []):
        return
    if Role.MANAGER in (actor.roles or []) and await reports_to(session, rep, actor.id):
        return
    raise PlanError(
        "plan.not_your_rep",
        name=rep.name,
        denial=Denial("plan.denied", "user", rep.id, {"actor": actor.id}),
    )


async def find_person(session: AsyncSession, word: str) -> User | None:
    """An active person by user id or by name (a manager names the rep: 计划 王磊 明天 浙一)."""
    found = await session.scalars(select(User).where(User.active.is_(True), (User.id == word) | (User.name == word)))
    people = list(found)
    return people[0] if len(people) == 1 else None


async def target_of(session: AsyncSession, actor: User, words: list[str]) -> tuple[User, list[str]]:
    """Whose plan a line is about: the person its first word names (a manager or director only; checked), else the
    sender (who must then be a rep). Returns the person and the remaining words."""
    if words and may_plan_for_others(actor):
        person = await find_person(session, words[0])
        if person is not None:
            await check_scope(session, actor, person)
            return person, words[1:]
    roles = actor.roles or [Role.REP]
    if Role.REP not in roles:
        raise PlanError("plan.whose" if may_plan_for_others(actor) else "no_permission")
    return actor, words


def check_when(when: PlanWhen, now: datetime, tz: ZoneInfo) -> None:
    """A day before today (or a week already over) is refused, saying what day it is today."""
    today = local_today(now, tz)
    last = when.day + timedelta(days=6 if when.period == PlanPeriod.WEEK else 0)
    if last < today:
        raise PlanError("plan.past_day", day=day_label(when.day), today=day_label(today))


# ---- adding and cancelling ---------------------------------------------------------------------------------------


async def add(
    session: AsyncSession,
    *,
    rep: User,
    actor: User,
    when: PlanWhen,
    customers: Sequence[Planned],
    purpose: str | None,
    now: datetime,
    tz: ZoneInfo,
    channel: str | None,
) -> Added:
    """Plan ``customers`` for ``rep`` in ``when``: one item per customer (rep, customer, period, day unique); a
    customer already planned there adds nothing (and is listed as such); a cancelled one is planned again."""
    check_when(when, now, tz)
    first, starts_at, ends_at = plan_rule.span(when.period, when.day, tz)
    done = Added(rep=rep, when=PlanWhen(when.period, first))
    source = "chat" if actor.id == rep.id else "manager"
    seen: set[int] = set()
    # The items already there for these customers in this span: one query, not one per customer.
    planned = {
        i.customer_id: i
        for i in await session.scalars(
            select(PlanItem).where(
                PlanItem.rep_id == rep.id,
                PlanItem.customer_id.in_({c.customer_id for c in customers}),
                PlanItem.period == when.period,
                PlanItem.day == first,
            )
        )
    }
    for c in customers:
        if c.customer_id in seen:
            continue
        seen.add(c.customer_id)
        item = planned.get(c.customer_id)
        if item is not None and item.status == PlanStatus.OPEN:
            done.existing.append(c.name)
            continue
        if item is None:
            item = plan_rule.new_item(
                rep.id,
                c.customer_id,
                when.period,
                (first, starts_at, ends_at),
                source=source,
                created_by=actor.id,
                now=now,
            )
            session.add(item)
        item.status, item.purpose, item.source, item.created_by, item.updated_at = (
            PlanStatus.OPEN.value,
            purpose,
            source,
            actor.id,
            now,
        )
        await session.flush()
        changes = {"rep": rep.id, "customer_id": c.customer_id, "period": item.period, "day": first.isoformat()}
        _audit(session, item, "plan.add", actor, now, channel, changes)
        done.created.append((item, c.name))
    return done


def _audit(
    session: AsyncSession,
    item: PlanItem,
    action: str,
    actor: User,
    now: datetime,
    channel: str | None,
    changes: dict[str, object],
) -> None:
    audit.record(
        session,
        at=now,
        action=action,
        entity="plan_item",
        entity_id=item.id,
        actor_id=actor.id,
        channel=channel,
        changes=changes,
    )


@dataclass
class Cancelled:
    rep: User
    items: list[tuple[PlanItem, str]]


async def _cancel_items(
    session: AsyncSession, items: Iterable[tuple[PlanItem, str]], actor: User, now: datetime, channel: str | None
) -> list[tuple[PlanItem, str]]:
    out = []
    for item, name in items:
        item.status = PlanStatus.CANCELLED.value
        item.updated_at = now
        _audit(session, item, "plan.cancel", actor, now, channel, {"status": ["open", "cancelled"]})
        out.append((item, name))
    return out


async def cancel(
    session: AsyncSession,
    directory: Directory,
    actor: User,
    text: str,
    *,
    now: datetime,
    tz: ZoneInfo,
    channel: str | None,
) -> Cancelled:
    """``P12`` (one item, the actor's own or a rep's in their scope), or ``[王磊] 浙一 [明天]``: that customer's open
    items in that span, or without a span every open item of it not over yet."""
    words = text.split()
    if words and all(parse_plan_no(w) is not None for w in words):
        return await _cancel_by_no(session, actor, [parse_plan_no(w) or 0 for w in words], now, channel)
    line = parse_plan_line(text, local_today(now, tz))
    rep, names = await target_of(session, actor, line.words)
    if not names:
        raise PlanError("plan.cancel_usage")
    open_items = await _open_items(session, rep.id, line.when, now, tz)
    matcher = await directory.matcher(session)
    chosen: list[tuple[PlanItem, str]] = []
    for word in names:
        planned = {item.customer_id for item, _ in open_items}
        customer_id = _resolve_among(matcher.match(word), planned)
        if customer_id is None:
            raise PlanError("plan.cancel_not_found", text=word)
        chosen += [(item, name) for item, name in open_items if item.customer_id == customer_id]
    return Cancelled(rep, await _cancel_items(session, chosen, actor, now, channel))


def _resolve_among(result: MatchResult, planned: set[int]) -> int | None:
    """The customer a word names among those planned: the matcher's answer, or the one planned candidate of an
    ambiguous word (浙大 while only 浙二 is planned)."""
    if result.best is not None:
        return result.best.id if result.best.id in planned else None
    hits = [c.entry.id for c in result.candidates if c.entry.id in planned]
    return hits[0] if len(hits) == 1 else None


async def _cancel_by_no(
    session: AsyncSession, actor: User, ids: list[int], now: datetime, channel: str | None
) -> Cancelled:
    rows = (
        await session.execute(
            select(PlanItem, Customer.name)
            .join(Customer, Customer.id == PlanItem.customer_id)
            .where(PlanItem.id.in_(ids))
        )
    ).all()
    found = {item.id: (item, name) for item, name in rows}
    missing = [plan_no(i) for i in ids if i not in found or found[i][0].status != PlanStatus.OPEN]
    if missing:
        raise PlanError("plan.no_such_item", no="、".join(missing))
    reps = {item.rep_id for item, _ in found.values()}
    rep = actor
    for rep_id in reps:
        person = await session.get(User, rep_id)
        if person is None:
            raise PlanError("plan.no_such_item", no="、".join(plan_no(i) for i in ids))
        await check_scope(session, actor, person)
        rep = person
    return Cancelled(rep, await _cancel_items(session, found.values(), actor, now, channel))


async def _open_items(
    session: AsyncSession, rep_id: str, when: PlanWhen | None, now: datetime, tz: ZoneInfo
) -> list[tuple[PlanItem, str]]:
    query = (
        select(PlanItem, Customer.name)
        .join(Customer, Customer.id == PlanItem.customer_id)
        .where(PlanItem.rep_id == rep_id, PlanItem.status == PlanStatus.OPEN)
    )
    if when is None:
        query = query.where(PlanItem.ends_at > now)
    else:
        first, _, _ = plan_rule.span(when.period, when.day, tz)
        query = query.where(PlanItem.period == when.period, PlanItem.day == first)
    return [(item, name) for item, name in (await session.execute(query.order_by(PlanItem.id))).all()]


# ---- seeing the plan ----------------------------------------------------------------------------------------------


def _listed(*where: ColumnElement[bool]) -> Select[PlanItem, str, bool]:
    """The open plan items matching ``where`` with their customer's name and whether a visit did them
    (``plan_rule.done_clause``), by day."""
    return (
        select(PlanItem, Customer.name, plan_rule.done_clause().label("done"))
        .join(Customer, Customer.id == PlanItem.customer_id)
        .where(PlanItem.status == PlanStatus.OPEN, *where)
        .order_by(PlanItem.day, PlanItem.rep_id, PlanItem.id)
    )


async def _items(session: AsyncSession, *where: ColumnElement[bool]) -> list[tuple[str, ItemView]]:
    """(rep id, item as shown) of the open items matching ``where``."""
    rows = await session.execute(_listed(*where))
    return [
        (
            item.rep_id,
            ItemView(item.id, name, PlanPeriod(item.period), item.day, item.purpose, bool(done), item.customer_id),
        )
        for item, name, done in rows.all()
    ]


async def _with_advice(session: AsyncSession, rows: list[tuple[str, ItemView]]) -> list[tuple[str, ItemView]]:
    """The items with their customer's newest advice (one query for all of them)."""
    found = await advice.newest_advice(session, {view.customer_id for _, view in rows})
    return [(rep_id, replace(view, advice=found.get(view.customer_id))) for rep_id, view in rows]


async def overview(session: AsyncSession, actor: User, rep: User, *, now: datetime, tz: ZoneInfo) -> PlanView:
    """``我的计划`` (``我的计划 王磊`` for a manager): today's items and this week's, each done or open."""
    await check_scope(session, actor, rep)
    today = local_today(now, tz)
    start = plan_rule.week_start(today)
    week = await _with_advice(
        session,
        await _items(
            session, PlanItem.rep_id == rep.id, PlanItem.day >= start, PlanItem.day < start + timedelta(days=7)
        ),
    )
    items = [view for _, view in week]
    today_items = [i for i in items if i.period == PlanPeriod.DAY and i.day == today]
    week_items = [i for i in items if i.period == PlanPeriod.WEEK] + [
        i for i in items if i.period == PlanPeriod.DAY and i.day != today
    ]
    return PlanView(rep, today, start, today_items, week_items)


async def completed_by(session: AsyncSession, visit: Visit) -> list[ItemView]:
    """The open plan items this visit does (its rep, its customer, its time inside their span): for the reply."""
    rows = await session.scalars(
        select(PlanItem).where(
            PlanItem.rep_id == visit.rep_id,
            PlanItem.customer_id == visit.customer_id,
            PlanItem.status == PlanStatus.OPEN,
            PlanItem.starts_at <= visit.visited_at,
            PlanItem.ends_at > visit.visited_at,
        )
    )
    return [ItemView(i.id, "", PlanPeriod(i.period), i.day, i.purpose, True) for i in rows]


@dataclass(frozen=True)
class Reminder:
    """One rep's items for a reminder."""

    rep: User
    items: list[ItemView]


async def reminders(session: AsyncSession, day: date, *, open_only: bool) -> list[Reminder]:
    """Each active rep with day items on ``day`` (the morning list, each item with its customer's newest advice), or
    only those with items still open and just those items (the nudge)."""
    rows = await _items(session, PlanItem.day == day, PlanItem.period == PlanPeriod.DAY)
    rows = [(rep_id, view) for rep_id, view in rows if not (open_only and view.done)]
    if not open_only:
        rows = await _with_advice(session, rows)
    by_rep: dict[str, list[ItemView]] = {}
    for rep_id, view in rows:
        by_rep.setdefault(rep_id, []).append(view)
    if not by_rep:
        return []
    people = await session.scalars(select(User).where(User.id.in_(list(by_rep)), User.active.is_(True)))
    return [Reminder(p, by_rep[p.id]) for p in sorted(people, key=lambda u: u.id)]
