"""Platform-neutral inbound events: the only vocabulary channels hand to the core."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bot.infra.sanitize import clean_tree


class _Event(BaseModel):
    """Every string a channel hands over is cleaned by one rule (``bot.infra.sanitize``), whatever the channel."""

    model_config = ConfigDict(frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _clean_strings(cls, data: Any) -> Any:
        return clean_tree(data) if isinstance(data, dict) else data

    channel: str
    # The sender's id on that channel (the platform's user id, the console user id).
    sender: str
    # Unique per channel: platform message id, or a key built from the event's identity.
    dedup_key: str


class TextMessage(_Event):
    kind: Literal["text"] = "text"
    text: str
    # Spoken, not typed: the platform's speech recognition of a voice message. Handled as typed text; a visit
    # logged from it is audited as dictated.
    dictated: bool = False


class LocationShared(_Event):
    kind: Literal["location"] = "location"
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    label: str = ""
    precision_m: float | None = None
    # True for locations the platform reports by itself (e.g. on entering the app): kept as
    # evidence, but not answered unless they attach to a visit.
    passive: bool = False


class MediaMessage(_Event):
    kind: Literal["media"] = "media"
    media_type: Literal["image", "file", "voice", "video"] = "image"
    media_id: str
    # The name the sender's platform gave the file (a file message's name), "" when none: a hint for the stored
    # name only (cleaned; never used as a path).
    filename: str = ""


class CardAction(_Event):
    """A button tap on a card: ``payload`` is the packed button data (see cards.payload)."""

    kind: Literal["card_action"] = "card_action"
    payload: str
    # The tapped card as the channel names it. Whatever the platform needs to update that card later stays in the
    # channel (recorded when it ingests the tap): handlers only say "update card X".
    card_ref: str = ""
    selected: dict[str, list[str]] = Field(default_factory=dict)


class EnterChat(_Event):
    kind: Literal["enter"] = "enter"


InboundEvent = Annotated[
    TextMessage | LocationShared | MediaMessage | CardAction | EnterChat, Field(discriminator="kind")
]
