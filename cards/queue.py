"""The department queue as a card: one compact card per page (a short line per task card, 打开 per line, paging).

The builder gets everything already resolved (``QueueView``, made by ``bot.services.queue``) and keeps neutral
rules only: at most ``PAGE_SIZE`` lines a page, one field per line, one 打开 button per line plus 上一页 / 下一页.
Whatever a channel cannot show (a platform's field and text sizes) its renderer cuts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from bot.infra import i18n
from cards.model import Button, Card, CardField
from cards.payload import CallbackData

# Lines a page: four 打开 buttons plus 上一页 and 下一页 are six, the most buttons a card shows on every channel.
PAGE_SIZE = 4
_SEP = "｜"


class QueueKind(StrEnum):
    """Which queue was asked for (``QueuePage.kind``); the service decides what the asker sees of it."""

    MINE = "mine"  # 我的任务 / 待办
    UNCLAIMED = "unclaimed"  # 待认领
    DEPARTMENT = "dept"  # 部门待办
    OVERDUE = "overdue"  # 超时
    ALL = "all"  # every department (a director's overview)


@dataclass(frozen=True)
class QueuePage(CallbackData, prefix="qp"):
    """上一页 / 下一页 on a queue card: the queue asked for and the page (from 0) to show in its place."""

    kind: QueueKind
    page: int


@dataclass(frozen=True)
class QueueOpen(CallbackData, prefix="qo"):
    """打开 on a queue line: send a live copy of that task card."""

    card_id: int


@dataclass(frozen=True)
class QueueEntry:
    """One task card on a queue page, resolved to names."""

    card_id: int
    card_no: str
    request_no: str
    type_name: str
    customer: str
    rep: str
    department_name: str
    state: str
    holder: str
    due_at: datetime
    overdue: bool
    escalated: bool


@dataclass(frozen=True)
class DepartmentLoad:
    """A department's open cards (any state but done / rejected), unclaimed and overdue ones."""

    department_name: str
    open: int
    unclaimed: int
    overdue: int


@dataclass(frozen=True)
class QueueView:
    """One page of a queue as the asker sees it. ``kind`` is what they see (a head's 我的任务 is ``DEPARTMENT``);
    ``asked`` is what the paging buttons ask for again; ``scope`` names whose cards these are ("" = mine, a
    department's name, or None = every department)."""

    kind: QueueKind
    asked: QueueKind
    scope: str | None
    entries: Sequence[QueueEntry]
    page: int
    pages: int
    total: int
    overdue: int
    unclaimed: int
    escalated: int
    departments: Sequence[DepartmentLoad] = ()


def overdue_by(delta: timedelta, locale: str) -> str:
    """How late, in the largest unit that reads well: 25分钟, 3小时, 2天."""
    minutes = max(1, int(delta.total_seconds() // 60))
    if minutes < 60:
        return i18n.t(locale, "queue.dur.minutes", n=minutes)
    if minutes < 48 * 60:
        return i18n.t(locale, "queue.dur.hours", n=minutes // 60)
    return i18n.t(locale, "queue.dur.days", n=minutes // (24 * 60))


def entry_line(entry: QueueEntry, view: QueueView, locale: str, tz: ZoneInfo, now: datetime) -> str:
    """The short line of one card, most urgent facts first: (department) deadline or how late, escalated, state
    and holder, type and hospital, rep, request number."""
    t = lambda key, **p: i18n.t(locale, key, **p)  # noqa: E731
    parts = [entry.department_name] if view.scope is None else []
    if entry.overdue:
        parts.append(t("queue.overdue_by", by=overdue_by(now - entry.due_at, locale)))
    else:
        parts.append(t("queue.due", when=i18n.fmt_when(entry.due_at, tz)))
    if entry.escalated:
        parts.append(t("queue.escalated"))
    state = t(f"task.state.{entry.state}")
    parts.append(f"{state}·{entry.holder}" if entry.holder else state)
    parts.append(f"{entry.type_name} {entry.customer}".strip())
    parts += [entry.rep, entry.request_no]
    return _SEP.join(p for p in parts if p)


def _title(view: QueueView, locale: str) -> str:
    if view.scope is None:
        scope = i18n.t(locale, "queue.scope.all")
    else:
        scope = view.scope or i18n.t(locale, "queue.scope.mine")
    return i18n.t(locale, f"queue.title.{view.kind}", scope=scope, total=view.total)


def _summary(view: QueueView, locale: str) -> str:
    t = lambda key, **p: i18n.t(locale, key, **p)  # noqa: E731
    counts = [
        t(key, n=n)
        for key, n in (
            ("queue.count.overdue", view.overdue),
            ("queue.count.unclaimed", view.unclaimed),
            ("queue.count.escalated", view.escalated),
        )
        if n and not (key == "queue.count.unclaimed" and view.kind == QueueKind.UNCLAIMED)
    ]
    if view.pages > 1:
        counts.append(t("queue.page", page=view.page + 1, pages=view.pages))
    lines = [" · ".join(counts)] if counts else []
    lines += [
        t("queue.department_line", department=d.department_name, open=d.open, unclaimed=d.unclaimed, overdue=d.overdue)
        for d in view.departments
    ]
    return "\n".join(lines)


def queue_buttons(view: QueueView, locale: str) -> list[Button]:
    """打开 per line, then 上一页 / 下一页 where there is such a page."""
    buttons = [
        Button.of(
            i18n.t(locale, "queue.btn.open", no=e.card_no), QueueOpen(e.card_id), "primary" if e.overdue else "default"
        )
        for e in view.entries[:PAGE_SIZE]
    ]
    if view.page > 0:
        buttons.append(Button.of(i18n.t(locale, "queue.btn.prev"), QueuePage(view.asked, view.page - 1)))
    if view.page + 1 < view.pages:
        buttons.append(Button.of(i18n.t(locale, "queue.btn.next"), QueuePage(view.asked, view.page + 1)))
    return buttons


def queue_card(view: QueueView, ref: str, locale: str, tz: ZoneInfo, now: datetime) -> Card:
    """A page of the queue: the title with the count, a summary (overdue, unclaimed, escalated, page; a director's
    department counts), one line per card labelled with its number, and the buttons. An empty queue is settled:
    no buttons, its status says so."""
    if not view.entries:
        empty = i18n.t(locale, "queue.empty")
        return Card(ref=ref, title=_title(view, locale), description=_summary(view, locale), status=empty, tone="muted")
    fields = [CardField(label=e.card_no, value=entry_line(e, view, locale, tz, now)) for e in view.entries[:PAGE_SIZE]]
    return Card(
        ref=ref,
        title=_title(view, locale),
        description=_summary(view, locale),
        fields=fields,
        buttons=queue_buttons(view, locale),
        tone="warning" if view.overdue else "info",
    )
