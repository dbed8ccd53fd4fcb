"""Outbound intents: what handlers want said. Written to the outbox, delivered by the worker."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from cards.model import Card
from cards.rich import RichText


class _Intent(BaseModel):
    model_config = ConfigDict(frozen=True)

    channel: str
    # Internal user ids (users.id); the channel maps them to its own ids.
    user_ids: tuple[str, ...]


class SendText(_Intent):
    kind: Literal["text"] = "text"
    text: str


class SendCard(_Intent):
    kind: Literal["card"] = "card"
    card: Card
    # One message to every recipient (one platform message, so one update reaches every copy), not one per person.
    shared: bool = False


class SendMedia(_Intent):
    """A photo or file the bot received (a platform's media id, a console upload) passed on to someone."""

    kind: Literal["media"] = "media"
    media_type: Literal["image", "file", "voice", "video"] = "image"
    # The id the media has on ``source_channel``, the channel it came from (set by whoever creates the intent):
    # only that channel can show it; any other says ``caption`` instead.
    media_id: str
    source_channel: str = ""
    caption: str = ""


class SendRich(_Intent):
    """A formatted message (``cards.rich``): each channel renders it as well as it can (a platform's markdown in
    parts, console HTML, plain text elsewhere)."""

    kind: Literal["rich"] = "rich"
    rich: RichText


class UpdateCard(_Intent):
    """Replace every recipient's copy of ``card.ref`` with the new state. Whatever token the platform wants for
    that is the channel's business (it recorded them when it sent the card and when it ingested taps on it)."""

    kind: Literal["card_update"] = "card_update"
    card: Card


Intent = Annotated[SendText | SendCard | SendMedia | SendRich | UpdateCard, Field(discriminator="kind")]
