"""Cards of support requests: the rep's confirmation card, the department task card, the offer after a visit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo

from bot.infra import i18n
from cards.model import Button, Card, CardField
from cards.payload import CallbackData
from cards.visits import DialogChoice, DialogConfirm, confirm_buttons
from storage.vocab import TASK_CLOSED, TaskState


class TaskOp(StrEnum):
    """Task-card buttons (``TaskTap.op``)."""

    CLAIM = "claim"
    DONE = "done"
    REJECT = "reject"
    INFO = "info"


CLAIM, DONE, REJECT, INFO = TaskOp.CLAIM, TaskOp.DONE, TaskOp.REJECT, TaskOp.INFO


@dataclass(frozen=True)
class TaskTap(CallbackData, prefix="tk"):
    """认领 / 完成 / 驳回 / 需补充 on a task card."""

    card_id: int
    op: TaskOp


@dataclass(frozen=True)
class Resubmit(CallbackData, prefix="rs"):
    """重新提交 on the rep's rejection notice: send the rejected card's part again."""

    card_id: int


@dataclass(frozen=True)
class RequestOffer(CallbackData, prefix="rq"):
    """A request type offered after a visit: start that request from the visit."""

    type_key: str
    visit_id: int


@dataclass(frozen=True)
class RequestChoice(DialogChoice, prefix="rf"):
    pass


@dataclass(frozen=True)
class RequestConfirm(DialogConfirm, prefix="rc"):
    pass


@dataclass(frozen=True)
class TaskView:
    """Everything a task card shows, already resolved to names (no database access while rendering)."""

    ref: str
    no: str
    request_no: str
    title: str
    type_name: str
    department_name: str
    state: str
    rows: Sequence[tuple[str, str]]
    requester: str
    holder: str
    since: datetime
    due_at: datetime
    require_claim: bool
    evidence: str
    attachments: int
    question: str = ""
    answer: str = ""
    reject_reason: str = ""
    # The needed-by rule made the deadline (the need and the lead time kept before it); see docs/requests.md.
    needed_at: datetime | None = None
    needed_time: bool = False  # the need came with a time of day (else only its date is shown)
    lead_hours: float = 0.0
    # 重新提交: the card this one replaces / the card it was resubmitted as ("T4"), if any.
    supersedes: str = ""
    resubmitted_as: str = ""
    # The approval's signature (compliance's 完成: 审核通过): who, the meaning in the reader's words, when.
    signed_by: str = ""
    signed_meaning: str = ""
    signed_at: datetime | None = None


def lead_text(hours: float, locale: str) -> str:
    """提前 1 天 / 提前 6 小时 (empty for none)."""
    if hours <= 0:
        return ""
    days, rest = divmod(hours, 24)
    if not rest:
        return i18n.t(locale, "task.lead_days", n=f"{days:g}")
    return i18n.t(locale, "task.lead_hours", n=f"{hours:g}")


def due_text(view: TaskView, locale: str, tz: ZoneInfo) -> str:
    """The deadline as a card shows it: ``12-02 18:00（需在 12-03 前备好，提前 1 天）`` when the needed-by date set
    it (with the time of day when one was given: ``需在 12-05 08:00 前备好``)."""
    due = i18n.fmt_when(view.due_at, tz)
    if view.needed_at is None:
        return due
    need = i18n.fmt_when(view.needed_at, tz) if view.needed_time else f"{view.needed_at.astimezone(tz):%m-%d}"
    return due + i18n.t(locale, "task.due_needed", need=need, lead=lead_text(view.lead_hours, locale))


_TONES: dict[str, Literal["info", "success", "warning", "muted"]] = {
    TaskState.DONE: "success",
    TaskState.REJECTED: "muted",
    TaskState.NEED_INFO: "warning",
}


def task_buttons(view: TaskView, locale: str, card_id: int) -> list[Button]:
    def b(op: TaskOp, style: Literal["primary", "default", "danger"] = "default") -> Button:
        return Button.of(i18n.t(locale, f"task.btn.{op}"), TaskTap(card_id, op), style)

    if view.state == TaskState.OPEN:
        first = [b(CLAIM, "primary")] if view.require_claim else [b(CLAIM, "primary"), b(DONE)]
        return [*first, b(INFO), b(REJECT, "danger")]
    if view.state == TaskState.CLAIMED:
        return [b(DONE, "primary"), b(INFO), b(REJECT, "danger")]
    if view.state == TaskState.NEED_INFO:
        return [b(REJECT, "danger")]
    return []


def task_card(view: TaskView, locale: str, tz: ZoneInfo, card_id: int) -> Card:
    """The department's card: facts first (customer, ward, date …), then who holds it, the deadline, the number."""
    t = lambda key, **p: i18n.t(locale, key, **p)  # noqa: E731
    fields = [CardField(label=label, value=value) for label, value in view.rows if value]
    fields.append(CardField(label=t("task.f.requester"), value=view.requester))
    state = t(f"task.state.{view.state}")
    if view.holder:
        state = f"{state} · {view.holder}"
    fields.append(CardField(label=t("task.f.state"), value=f"{state}（{i18n.fmt_when(view.since, tz)}）"))
    due = due_text(view, locale, tz)
    fields.append(CardField(label=t("task.f.due"), value=due))
    fields.append(CardField(label=t("task.f.no"), value=f"{view.no} / {view.request_no}"))
    if view.supersedes:
        fields.append(CardField(label=t("task.f.supersedes"), value=view.supersedes))
    if view.attachments:
        fields.append(CardField(label=t("task.f.attachments"), value=str(view.attachments)))
    if view.question:
        fields.append(CardField(label=t("task.f.question"), value=view.question))
    if view.answer:
        fields.append(CardField(label=t("task.f.answer"), value=view.answer))
    if view.reject_reason:
        fields.append(CardField(label=t("task.f.reason"), value=view.reject_reason))
    if view.signed_at is not None:
        when = i18n.fmt_when(view.signed_at, tz)
        signed = t("sig.value", name=view.signed_by, meaning=view.signed_meaning, when=when)
        fields.append(CardField(label=t("sig.field"), value=signed))
    needs_evidence = view.evidence != "none" and view.state == TaskState.CLAIMED
    evidence = t(f"task.evidence.{view.evidence}") if needs_evidence else ""
    closed = view.state in TASK_CLOSED
    status = ""
    if closed:
        status = t(f"task.status.{view.state}", holder=view.holder, when=i18n.fmt_when(view.since, tz))
        if view.resubmitted_as:
            status += t("task.status.resubmitted", no=view.resubmitted_as)
    return Card(
        ref=view.ref,
        title=f"{view.department_name}｜{view.title}",
        description=evidence or t("task.desc", type_name=view.type_name),
        fields=fields,
        buttons=task_buttons(view, locale, card_id),
        status=status,
        tone=_TONES.get(view.state, "info"),
    )


def confirm_title(locale: str, type_name: str) -> str:
    """请确认手术跟台申请; a type whose name already says 申请 (样机申请) is not doubled (请确认样机申请)."""
    en = i18n.normalize_locale(locale) == i18n.EN
    named = type_name.casefold().endswith("request") if en else type_name.endswith("申请")
    return i18n.t(locale, "request.confirm_title_named" if named else "request.confirm_title", type_name=type_name)


def request_confirm_card(
    ref: str, token: str, locale: str, type_name: str, rows: Sequence[tuple[str, str]], *, status: str = ""
) -> Card:
    """提交 / 修改 / 取消 for a request; with ``status`` the card is settled (no buttons)."""
    buttons = [] if status else confirm_buttons(locale, RequestConfirm, token)
    return Card(
        ref=ref,
        title=confirm_title(locale, type_name),
        description="" if status else i18n.t(locale, "request.confirm_desc"),
        fields=[CardField(label=label, value=value) for label, value in rows if value],
        buttons=buttons,
        status=status,
        tone="success" if status else "info",
    )


def offer_card(ref: str, locale: str, visit_id: int, offers: Sequence[tuple[str, str]]) -> Card:
    """After a visit: "需要跟台吗?" with one button per request type offered (key, name)."""
    buttons = [Button.of(name, RequestOffer(key, visit_id)) for key, name in offers[:6]]
    return Card(ref=ref, title=i18n.t(locale, "request.offer_title"), buttons=buttons)


def settled_offer(ref: str, locale: str, chosen: str) -> Card:
    return Card(ref=ref, title=i18n.t(locale, "request.offer_title"), status=f"✓ {chosen}", tone="muted")


def rejection_notice(
    ref: str, locale: str, *, no: str, department: str, title: str, reason: str, card_id: int, resubmitted_as: str = ""
) -> Card:
    """The rep's notice of a rejected part: the reason, how to resubmit, and the 重新提交 button (settled, without
    it, once resubmitted as ``resubmitted_as``)."""
    t = lambda key, **p: i18n.t(locale, key, **p)  # noqa: E731
    settled = bool(resubmitted_as)
    return Card(
        ref=ref,
        title=t("notice.rejected_title", no=no, department=department),
        description="" if settled else t("notice.rejected_howto", no=no),
        fields=[CardField(label=t("task.f.title"), value=title), CardField(label=t("task.f.reason"), value=reason)],
        buttons=[] if settled else [Button.of(t("task.btn.resubmit"), Resubmit(card_id), "primary")],
        status=t("notice.resubmitted_status", no=resubmitted_as) if settled else "",
        tone="muted" if settled else "warning",
    )
