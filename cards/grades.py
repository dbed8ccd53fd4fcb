"""The grade-change card the approver gets (issue 14, docs/customers.md "Grades"): ``调级申请：浙二 B → A`` with
the customer's score and suggested grade, the reason and who asked; 同意 / 驳回 while pending, settled in place
(who decided, and the reason of a rejection) afterwards. Also the buttons' payloads of the 调级 dialog."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from enum import StrEnum

from bot.infra import i18n
from cards.model import Button, Card, CardField
from cards.payload import CallbackData
from cards.visits import DialogChoice, DialogConfirm


class GradeOp(StrEnum):
    APPROVE = "ok"  # 同意
    REJECT = "no"  # 驳回


@dataclass(frozen=True)
class GradeTap(CallbackData, prefix="gd"):
    """同意 / 驳回 on a grade-change card."""

    change_id: int
    op: GradeOp


@dataclass(frozen=True)
class GradeChoice(DialogChoice, prefix="gf"):
    """A choice button of the 调级 dialog (which hospital, which grade)."""


@dataclass(frozen=True)
class GradeConfirm(DialogConfirm, prefix="gk"):
    """Declared for the engine; a request is made as soon as it is complete, so no card carries it."""


def grade_ref(change_id: int) -> str:
    return f"grade-{change_id}"


@dataclass(frozen=True)
class GradeView:
    change_id: int
    customer: str
    rep: str
    old_grade: str | None
    new_grade: str
    reason: str
    requested_by: str
    # pending | confirmed | rejected | direct
    state: str
    score: float | None = None
    suggested: str | None = None
    decided_by: str | None = None
    decision_reason: str | None = None
    # A confirmation is a signed approval (同意调级): when it was signed (the signer is ``decided_by``).
    signed_at: datetime | None = None

    @property
    def no(self) -> str:
        return f"G{self.change_id}"


def grade_card(view: GradeView, locale: str, tz: tzinfo = UTC) -> Card:
    """Live while pending; settled (no buttons, who decided and why) once confirmed or rejected."""

    def t(key: str, **params: object) -> str:
        return i18n.t(locale, key, **params)

    old = view.old_grade or t("grade.none")
    fields = [
        CardField(label=t("grade.f.customer"), value=view.customer),
        CardField(label=t("grade.f.change"), value=f"{old} → {view.new_grade}"),
    ]
    if view.rep:
        fields.append(CardField(label=t("grade.f.rep"), value=view.rep))
    if view.score is not None:
        suggested = t("grade.suggested", grade=view.suggested) if view.suggested else ""
        fields.append(
            CardField(label=t("grade.f.score"), value=t("grade.score", score=f"{view.score:.0f}") + suggested)
        )
    fields += [
        CardField(label=t("grade.f.reason"), value=view.reason),
        CardField(label=t("grade.f.requested_by"), value=view.requested_by),
        CardField(label=t("grade.f.no"), value=view.no),
    ]
    title = t("grade.title", customer=view.customer, old=old, new=view.new_grade)
    ref = grade_ref(view.change_id)
    if view.state != "pending":
        if view.decision_reason and view.state == "rejected":
            fields.append(CardField(label=t("grade.f.decision_reason"), value=view.decision_reason))
        if view.signed_at is not None:
            meaning, when = t("sig.meaning.grade"), i18n.fmt_when(view.signed_at, tz)
            signed = t("sig.value", name=view.decided_by or "", meaning=meaning, when=when)
            fields.append(CardField(label=t("sig.field"), value=signed))
        status = t(f"grade.status.{view.state}", who=view.decided_by or "")
        tone = "success" if view.state in ("confirmed", "direct") else "muted"
        return Card(ref=ref, title=title, fields=fields, status=status, tone=tone)
    buttons = [
        Button.of(t("grade.btn.approve"), GradeTap(view.change_id, GradeOp.APPROVE), "primary"),
        Button.of(t("grade.btn.reject"), GradeTap(view.change_id, GradeOp.REJECT), "danger"),
    ]
    return Card(ref=ref, title=title, description=t("grade.desc"), fields=fields, buttons=buttons, tone="warning")
