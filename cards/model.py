"""Cards are data: a neutral description that each channel's renderer turns into its own output.

Platform limits (id lengths, how many buttons show) are the renderers' business, not this model's."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cards.payload import CallbackData


class Button(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str
    key: str  # a packed CallbackData
    style: Literal["primary", "default", "danger"] = "default"

    @classmethod
    def of(cls, text: str, payload: CallbackData, style: Literal["primary", "default", "danger"] = "default") -> Button:
        return cls(text=text, key=payload.pack(), style=style)


class CardField(BaseModel):
    model_config = ConfigDict(frozen=True)

    label: str
    value: str


class Card(BaseModel):
    """``ref`` identifies the card across updates (each renderer maps it to its platform's message id)."""

    model_config = ConfigDict(frozen=True)

    ref: str
    title: str
    description: str = ""
    fields: list[CardField] = Field(default_factory=list)
    buttons: list[Button] = Field(default_factory=list)
    # Shown once the card is settled (buttons gone): e.g. "已提交 V12".
    status: str = ""
    tone: Literal["info", "success", "warning", "muted"] = "info"
