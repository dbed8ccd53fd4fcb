"""Cards of the visit dialog: choice prompts and the confirmation card."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from bot.infra import i18n
from cards.model import Button, Card, CardField
from cards.payload import CallbackData


class ConfirmOp(StrEnum):
    SUBMIT = "submit"
    EDIT = "edit"
    CANCEL = "cancel"


@dataclass(frozen=True)
class DialogChoice(CallbackData):
    """A choice button of a form dialog: (dialog token, field key, value). Each dialog's subclass has the prefix."""

    token: str
    field: str
    value: str


@dataclass(frozen=True)
class DialogConfirm(CallbackData):
    """提交 / 修改 / 取消 on a dialog's confirmation card: (dialog token, op)."""

    token: str
    op: ConfirmOp


@dataclass(frozen=True)
class VisitChoice(DialogChoice, prefix="vf"):
    pass


@dataclass(frozen=True)
class VisitConfirm(DialogConfirm, prefix="vc"):
    pass


def choice_card(
    ref: str,
    token: str,
    field: str,
    question: str,
    options: Sequence[tuple[str, str]],
    payload: type[DialogChoice] = VisitChoice,
) -> Card:
    """A question with one button per option (label, value); the rep may also just type the answer. ``payload``
    is the dialog's choice class (VisitChoice, RequestChoice). A platform that shows fewer buttons cuts the list in
    its renderer (``cards.wecom.MAX_BUTTONS``)."""
    buttons = [Button.of(label, payload(token, field, value)) for label, value in options]
    return Card(ref=ref, title=question, buttons=buttons)


def settled_choice(ref: str, question: str, answer: str) -> Card:
    """The choice card after it was answered: no buttons, the answer shown."""
    return Card(ref=ref, title=question, status=f"✓ {answer}", tone="muted")


def confirm_buttons(locale: str, payload: type[DialogConfirm], token: str) -> list[Button]:
    """提交 / 修改 / 取消 of a dialog's confirmation card; ``payload`` is the dialog's confirm class."""
    return [
        Button.of(i18n.t(locale, "visit.btn.submit"), payload(token, ConfirmOp.SUBMIT), "primary"),
        Button.of(i18n.t(locale, "visit.btn.edit"), payload(token, ConfirmOp.EDIT)),
        Button.of(i18n.t(locale, "visit.btn.cancel"), payload(token, ConfirmOp.CANCEL), "danger"),
    ]


def confirm_card(
    ref: str,
    token: str,
    locale: str,
    rows: Sequence[tuple[str, str]],
    *,
    status: str = "",
    settled: bool = False,
) -> Card:
    """The confirmation card (提交 / 修改 / 取消); ``settled`` drops the buttons and shows ``status``."""
    buttons = [] if settled else confirm_buttons(locale, VisitConfirm, token)
    return Card(
        ref=ref,
        title=i18n.t(locale, "visit.confirm_title"),
        description="" if settled else i18n.t(locale, "visit.confirm_desc"),
        fields=[CardField(label=label, value=value) for label, value in rows],
        buttons=buttons,
        status=status,
        tone="success" if settled and status else "info",
    )
