"""The console channel's delivery side: outbox items become rows in each recipient's feed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.base import Delivery, OutboxItem
from bot.channels.console.hub import ConsoleHub
from bot.services import attachments, console_media
from cards.console import render_card
from cards.model import Card
from cards.rich import RichText, to_html, to_plain
from storage.models import ConsoleFeed, User

if TYPE_CHECKING:
    from bot.channels.base import Host
    from bot.infra.clock import Clock
    from storage.db import Database


def feed_body(item: OutboxItem) -> dict[str, Any]:
    """What the browser shows for one outbox item."""
    if item.kind == "text":
        return {"from": "bot", "text": item.payload["text"]}
    if item.kind == "media":
        media_id = str(item.payload["media_id"])
        body: dict[str, Any] = {"from": "bot", "text": str(item.payload.get("caption") or "📎")}
        # A file of the attachment store (whatever channel it came from) or an old console upload has a link here;
        # another platform's media id is its caption.
        token = attachments.token_of(media_id)
        if token is None and item.payload.get("source_channel") == "console":
            token = console_media.token_of(media_id)
        if token is not None:
            body["media_url"] = f"/console/media/{token}"
            body["media_type"] = str(item.payload.get("media_type") or "file")
        return body
    if item.kind == "rich":
        rich = RichText.model_validate(item.payload["rich"])
        # Escaped on the server (cards.rich.to_html), like the cards' HTML; the plain text is for search and copy.
        return {"from": "bot", "html": f'<div class="rich">{to_html(rich)}</div>', "text": to_plain(rich)}
    card = Card.model_validate(item.payload["card"])
    return {"from": "bot", "html": render_card(card), "card": card.model_dump(mode="json")}


class ConsoleChannel:
    """Delivers into the console feed; idempotent per (outbox row, user), so a redelivery shows nothing twice."""

    name = "console"

    def __init__(self, db: Database, clock: Clock, hub: ConsoleHub) -> None:
        self.db = db
        self.clock = clock
        self.hub = hub

    def can_reach(self, user: User) -> bool:
        return True

    async def close(self) -> None:
        self.hub.close()

    async def prepare(self, items: Sequence[OutboxItem]) -> None:
        """Nothing to read ahead: a console delivery is a row in the recipient's feed."""

    async def deliver(self, item: OutboxItem) -> Delivery:
        """Nothing to call: the feed rows are written with the round's outcomes (``record``), in the same commit as
        the outbox row's ``sent`` mark, so a console message costs no transaction of its own and is in the feed
        exactly when the outbox says it was sent."""
        return Delivery(platform_msg_id=f"console-{item.id}")

    async def record(self, session: AsyncSession, sent: Sequence[tuple[OutboxItem, Delivery]], now: datetime) -> None:
        rows = [
            {
                "user_id": u.id,
                "kind": item.kind,
                "card_ref": item.card_ref,
                "body": feed_body(item),
                "outbox_id": item.id,
                "created_at": now,
            }
            for item, _ in sent
            for u in item.recipients
        ]
        if rows:
            insert = sqlite_insert if self.db.is_sqlite else pg_insert
            # Unique per (outbox row, user): a redelivery after a lost lease shows nothing twice.
            await session.execute(insert(ConsoleFeed).on_conflict_do_nothing(), rows)

    def committed(self, sent: Sequence[tuple[OutboxItem, Delivery]]) -> None:
        """Wake the recipients' long-polls once their rows are committed."""
        self.hub.notify(sorted({u.id for item, _ in sent for u in item.recipients}))


def hub_of(runtime: Host) -> ConsoleHub:
    """The hub of ``runtime``'s console channel (its web routes are mounted only when the channel is enabled)."""
    channel = runtime.channels.get(ConsoleChannel.name)
    if not isinstance(channel, ConsoleChannel):
        raise RuntimeError("the console channel is not enabled")
    return channel.hub
