"""The fallback's "did you mean" card: the suggested text and one button that sends it."""

from __future__ import annotations

from dataclasses import dataclass

from bot.infra import i18n
from cards.model import Button, Card
from cards.payload import CallbackData, PayloadError

# The title shows the suggestion up to this many characters; a longer one is shown whole in the description.
TITLE_TEXT_CHARS = 24


@dataclass(frozen=True)
class SuggestedText(CallbackData, prefix="sg"):
    """发送 on a suggestion: the text to handle as if the person had typed it (a forged one is no more than what
    they could type)."""

    text: str


def _title(locale: str, text: str) -> str:
    shown = text if len(text) <= TITLE_TEXT_CHARS else text[: TITLE_TEXT_CHARS - 1] + "…"
    return i18n.t(locale, "fallback.suggest", text=shown)


def suggestion_card(ref: str, locale: str, text: str) -> Card | None:
    """The card 你是想「拜访 浙一 骨科」吗？ with a 发送 button; None when the text is too long for a button."""
    try:
        button = Button.of(i18n.t(locale, "fallback.suggest_send"), SuggestedText(text), "primary")
    except PayloadError:
        return None
    description = text if len(text) > TITLE_TEXT_CHARS else ""
    return Card(ref=ref, title=_title(locale, text), description=description, buttons=[button])


def settled_suggestion(ref: str, locale: str, text: str) -> Card:
    """The suggestion after its button was tapped: no button, "✓ 已发送"."""
    description = text if len(text) > TITLE_TEXT_CHARS else ""
    return Card(
        ref=ref,
        title=_title(locale, text),
        description=description,
        status=i18n.t(locale, "fallback.suggest_sent"),
        tone="muted",
    )
