"""Cards of the visit dialog: choice prompts and the confirmation card."""

from __future__ import annotations

from collections.abc import Sequence

from bot.infra import i18n
from cards.model import Button, Card, CardField
from cards.payload import ButtonPayload


def choice_card(
    ref: str, token: str, field: str, question: str, options: Sequence[tuple[str, str]], action: str = "vf"
) -> Card:
    """A question with one button per option (label, value); the rep may also just type the answer. ``action``
    names the dialog's handler (vf: visit, rf: request). A platform that shows fewer buttons cuts the list in its
    renderer (``cards.wecom.MAX_BUTTONS``)."""
    buttons = [Button.of(label, ButtonPayload(action, (token, field, value))) for label, value in options]
    return Card(ref=ref, title=question, buttons=buttons)


def settled_choice(ref: str, question: str, answer: str) -> Card:
    """The choice card after it was answered: no buttons, the answer shown."""
    return Card(ref=ref, title=question, status=f"✓ {answer}", tone="muted")


def confirm_buttons(locale: str, action: str, token: str) -> list[Button]:
    """提交 / 修改 / 取消 of a dialog's confirmation card; ``action`` names the dialog's handler (vc, rc)."""
    return [
        Button.of(i18n.t(locale, "visit.btn.submit"), ButtonPayload(action, (token, "submit")), "primary"),
        Button.of(i18n.t(locale, "visit.btn.edit"), ButtonPayload(action, (token, "edit"))),
        Button.of(i18n.t(locale, "visit.btn.cancel"), ButtonPayload(action, (token, "cancel")), "danger"),
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
    buttons = [] if settled else confirm_buttons(locale, "vc", token)
    return Card(
        ref=ref,
        title=i18n.t(locale, "visit.confirm_title"),
        description="" if settled else i18n.t(locale, "visit.confirm_desc"),
        fields=[CardField(label=label, value=value) for label, value in rows],
        buttons=buttons,
        status=status,
        tone="success" if settled and status else "info",
    )
