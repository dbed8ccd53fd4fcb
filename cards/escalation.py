"""Escalation notice cards: what the head or director needs to decide, with take over / reassign / snooze."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from bot.infra import i18n
from cards.model import Button, Card, CardField
from cards.payload import CallbackData
from cards.tasks import TaskView, due_text


class EscalationOp(StrEnum):
    """Buttons of an escalation notice (``EscalationTap.op``); a snooze is ``snooze_`` + its length."""

    TAKE = "take"
    REASSIGN = "reassign"
    SNOOZE_1H = "snooze_1h"
    SNOOZE_4H = "snooze_4h"
    SNOOZE_TOMORROW = "snooze_tomorrow"


TAKE, REASSIGN = EscalationOp.TAKE, EscalationOp.REASSIGN
SNOOZES = ("1h", "4h", "tomorrow")


@dataclass(frozen=True)
class EscalationTap(CallbackData, prefix="te"):
    """接手 / 转派 / 暂缓 on an escalation notice."""

    card_id: int
    op: EscalationOp


@dataclass(frozen=True)
class AssignTo(CallbackData, prefix="ta"):
    """A member chosen on the reassign card."""

    card_id: int
    user_id: str


def fmt_duration(span: timedelta, locale: str) -> str:
    """A wait as people say it, in wall time: minutes under an hour ("45 分钟"), then hours and minutes ("2 小时
    15 分钟", "2 小时"), then days and hours from 24 h ("1 天 3 小时"). Rounded down to the minute (hour)."""

    def t(key: str, **params: object) -> str:
        return i18n.t(locale, key, **params)

    minutes = max(0, int(span.total_seconds() // 60))
    if minutes < 1:
        return t("escw.dur.under_minute")
    if minutes < 60:
        return t("escw.dur.minutes", m=minutes)
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return t("escw.dur.hours_minutes", h=hours, m=minutes) if minutes else t("escw.dur.hours", h=hours)
    days, hours = divmod(hours, 24)
    return t("escw.dur.days_hours", d=days, h=hours) if hours else t("escw.dur.days", d=days)


def escalation_card(
    view: TaskView,
    locale: str,
    tz: ZoneInfo,
    card_id: int,
    *,
    ref: str,
    level: int,
    waited: timedelta,
    repeat: bool,
    deadline: datetime,
    first_response: bool,
) -> Card:
    """The original card's facts, how long it has waited since it was submitted, who holds it, the deadline the
    notice is about (``first_response``: the first response, else the completion); buttons to act on it."""

    def t(key: str, **params: object) -> str:
        return i18n.t(locale, key, **params)

    holder = view.holder or t("esc.nobody")
    fields = [
        CardField(label=t("esc.f.waited"), value=fmt_duration(waited, locale)),
        CardField(label=t("esc.f.holder"), value=holder),
        CardField(label=t("task.f.state"), value=t(f"task.state.{view.state}")),
        CardField(
            label=t("escw.f.due_first_response" if first_response else "escw.f.due_complete"),
            # The completion deadline says when a needed-by date set it (due_text), as the task card does.
            value=i18n.fmt_when(deadline, tz)
            if first_response or deadline != view.due_at
            else due_text(view, locale, tz),
        ),
        *(CardField(label=label, value=value) for label, value in view.rows if value),
        CardField(label=t("task.f.requester"), value=view.requester),
        CardField(label=t("task.f.no"), value=f"{view.no} / {view.request_no}"),
    ]

    def b(op: EscalationOp, style: str = "default") -> Button:
        label = t(f"esc.btn.{op}")
        return Button.of(label, EscalationTap(card_id, op), "primary" if style == "primary" else "default")

    buttons = [b(TAKE, "primary"), b(REASSIGN), *(b(EscalationOp(f"snooze_{s}")) for s in SNOOZES)]
    title = t("esc.title_repeat" if repeat else "esc.title", level=level, department=view.department_name)
    return Card(
        ref=ref,
        title=f"{title}｜{view.title}",
        description=t("esc.desc", no=view.no, type_name=view.type_name),
        fields=fields,
        buttons=buttons,
        tone="warning",
    )


def settled_escalation(ref: str, title: str, status: str) -> Card:
    return Card(ref=ref, title=title, status=status, tone="muted")


def assignee_card(ref: str, locale: str, card_id: int, no: str, people: Sequence[tuple[str, str]]) -> Card:
    """Choose a member to hand the card to (id, name), at most six."""
    buttons = [Button.of(name, AssignTo(card_id, uid)) for uid, name in people[:6]]
    return Card(ref=ref, title=i18n.t(locale, "esc.choose_assignee", no=no), buttons=buttons)
