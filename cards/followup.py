"""The follow-up card a manager gets for a rep below the plan threshold at the digest time (issue 12):
``复盘：王磊 今日计划完成率 60%（3/5）`` with the open plan items, and 已复盘 / 备注."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from bot.infra import i18n
from cards.model import Button, Card, CardField
from cards.payload import CallbackData


class FollowupOp(StrEnum):
    REVIEWED = "done"  # 已复盘
    NOTE = "note"  # 备注


@dataclass(frozen=True)
class FollowupTap(CallbackData, prefix="fu"):
    """已复盘 / 备注 on a follow-up card."""

    followup_id: int
    op: FollowupOp


def followup_ref(followup_id: int) -> str:
    return f"followup-{followup_id}"


def followup_no(followup_id: int) -> str:
    return f"F{followup_id}"


def percent(done: int, items: int) -> str:
    return f"{round(100 * done / items)}%" if items else "—"


@dataclass(frozen=True)
class FollowupView:
    followup_id: int
    rep_name: str
    day: date
    plan_items: int
    plan_done: int
    open_items: Sequence[str]
    reviewed_by: str | None = None
    note: str | None = None


def followup_card(view: FollowupView, locale: str, today: date) -> Card:
    """Live while nobody has reviewed it; settled (no buttons, who reviewed) after 已复盘."""

    def t(key: str, **params: object) -> str:
        return i18n.t(locale, key, **params)

    when = t("followup.today") if view.day == today else f"{view.day:%m-%d}"
    title = t(
        "followup.title",
        rep=view.rep_name,
        when=when,
        rate=percent(view.plan_done, view.plan_items),
        done=view.plan_done,
        items=view.plan_items,
    )
    fields = [CardField(label=t("followup.f.open"), value="、".join(view.open_items) or t("followup.none_open"))]
    if view.note:
        fields.append(CardField(label=t("followup.f.note"), value=view.note))
    fields.append(CardField(label=t("followup.f.no"), value=followup_no(view.followup_id)))
    ref = followup_ref(view.followup_id)
    if view.reviewed_by:
        return Card(
            ref=ref,
            title=title,
            fields=fields,
            status=t("followup.status_reviewed", who=view.reviewed_by),
            tone="success",
        )
    buttons = [
        Button.of(t("followup.btn.reviewed"), FollowupTap(view.followup_id, FollowupOp.REVIEWED), "primary"),
        Button.of(t("followup.btn.note"), FollowupTap(view.followup_id, FollowupOp.NOTE)),
    ]
    return Card(ref=ref, title=title, description=t("followup.desc"), fields=fields, buttons=buttons, tone="warning")


@dataclass(frozen=True)
class ObjectionLine:
    objection: str
    count: int
    examples: Sequence[str]


def objections_card(ref: str, lines: Sequence[ObjectionLine], start: date, end: date, locale: str) -> Card:
    """The week's top objections with example notes, for the marketing department."""

    def t(key: str, **params: object) -> str:
        return i18n.t(locale, key, **params)

    fields = [
        CardField(
            label=f"{n}. {line.objection}",
            value=t("objections.count", count=line.count)
            + (t("objections.examples", examples="；".join(line.examples)) if line.examples else ""),
        )
        for n, line in enumerate(lines, start=1)
    ]
    return Card(
        ref=ref,
        title=t("objections.title", start=f"{start:%m-%d}", end=f"{end:%m-%d}"),
        description=t("objections.desc") if lines else t("objections.none"),
        fields=fields,
        tone="info",
    )
