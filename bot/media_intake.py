"""Received media into the attachment store, before their events are handled (issue 13, docs/attachments.md).

A photo or file arrives as a platform media id (WeCom MediaId, valid 3 days; a DingTalk downloadCode, shorter).
The webhook only stores the event and acknowledges it; here, on the pipeline's worker and before the handler's
transaction, a channel that is ``MediaFetching`` downloads the bytes, the store keeps them (fsynced before the
commit) and, in one transaction, the ``attachments`` row is written and the stored event's media id becomes the
store's (``att-<token>``). From then on the handler, the task card's attachments, the audit trail and the outbox
rows all name the store's id.

- A re-delivered or recovered event finds its attachment by (channel, media id) and is not downloaded again.
- Refused (too large, a type not kept): the event is marked done and the sender gets a short message; nothing is
  stored.
- Failed (platform busy, timeout, network): tried again ``[attachments] fetch_attempts`` times with doubling pauses
  from ``fetch_backoff_seconds``; a media id the platform no longer knows is not retried. After that the event is
  handled with the platform's own id, as before the store existed (the card keeps it; it works on its platform
  until it expires, elsewhere its caption is sent); the failure is logged and counted in
  ``salesbot_errors{where="attachment_fetch"}``. The message is never lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from pydantic import TypeAdapter
from sqlalchemy import select

from bot import outbox
from bot.channels.base import FetchedMedia, MediaFetchError, MediaFetching
from bot.core.events import InboundEvent, MediaMessage
from bot.core.intents import SendText
from bot.infra.i18n import t
from bot.services import attachments, console_media
from bot.services.attachments import AttachmentRefused
from storage.models import InboundEvent as InboundRow

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)
_event_adapter: TypeAdapter[InboundEvent] = TypeAdapter(InboundEvent)

Sleep = Callable[[float], Awaitable[object]]
TOO_LARGE = "too_large"


def fetching(rt: Runtime, channel: str) -> MediaFetching | None:
    found = rt.channels.get(channel)
    return found if isinstance(found, MediaFetching) else None


async def intake(rt: Runtime, event_ids: Sequence[int], sleep: Sleep = asyncio.sleep) -> None:
    """Download the media of these stored events (those of a fetching channel not yet in the store)."""
    async with rt.db.read() as s:
        rows = (
            await s.execute(
                select(InboundRow.id, InboundRow.channel, InboundRow.payload).where(
                    InboundRow.id.in_(list(event_ids)), InboundRow.status == "pending", InboundRow.kind == "media"
                )
            )
        ).all()
    for event_id, channel, payload in rows:
        source = fetching(rt, channel)
        event = _event_adapter.validate_python(payload)
        if source is None or not isinstance(event, MediaMessage) or attachments.token_of(event.media_id):
            continue
        try:
            await _intake_one(rt, source, event_id, event, sleep)
        except Exception:
            # Whatever happened, the event is handled with the platform's id: never lost for a download.
            log.exception("attachment intake of inbound event %s failed", event_id)
            rt.metrics.errors.labels("attachment_fetch").inc()


async def _intake_one(rt: Runtime, source: MediaFetching, event_id: int, event: MediaMessage, sleep: Sleep) -> None:
    cfg = rt.settings.attachments
    async with rt.db.read() as s:
        user = await rt.directory.user_by_channel_id(s, event.channel, event.sender)
        known = await attachments.by_source(s, event.channel, event.media_id)
        known_token = known.token if known is not None else None
    if user is None or not user.active:
        return  # the handler says "not in the directory"; nothing is downloaded for strangers
    user_id, locale = user.id, user.locale
    if known_token is not None:
        await _resolve(rt, event_id, event, known_token)
        return
    fetched = await _fetch(rt, source, event, sleep)
    if fetched is None:
        return
    if fetched == TOO_LARGE:
        size = console_media.size_text(cfg.max_bytes)
        await _refuse(rt, event_id, event, user_id, t(locale, "attachment.too_large", size=size))
        return
    assert isinstance(fetched, FetchedMedia)
    try:
        checked = attachments.check(fetched.data, fetched.filename or event.media_type, cfg, locale)
    except AttachmentRefused as refused:
        log.info("%s media from %s refused: %s", event.channel, event.sender, refused.kind)
        await _refuse(rt, event_id, event, user_id, refused.message)
        return
    # On disk (fsynced) before the row that names it commits.
    stored = await attachments.store_for(rt.settings).put(fetched.data)
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        row = await s.get(InboundRow, event_id, with_for_update=not rt.db.is_sqlite)
        if row is None or row.status != "pending":
            return
        again = await attachments.by_source(s, event.channel, event.media_id)
        if again is None:
            again = attachments.add(
                s,
                stored,
                checked,
                owner_id=user_id,
                source_channel=event.channel,
                source_media_id=event.media_id,
                now=now,
            )
            await s.flush()
        row.payload = event.model_copy(update={"media_id": attachments.media_id(again.token)}).model_dump(mode="json")
    log.info("%s media of event %s stored (%s bytes, %s)", event.channel, event_id, stored.size, checked.content_type)


async def _fetch(rt: Runtime, source: MediaFetching, event: MediaMessage, sleep: Sleep) -> FetchedMedia | str | None:
    """The bytes, ``TOO_LARGE``, or None after the last failed attempt."""
    cfg = rt.settings.attachments
    last: MediaFetchError | None = None
    for attempt in range(1, cfg.fetch_attempts + 1):
        try:
            return await source.fetch_media(event.media_type, event.media_id, cfg.max_bytes)
        except MediaFetchError as exc:
            if exc.too_large:
                return TOO_LARGE
            last = exc
            if not exc.retryable or attempt == cfg.fetch_attempts:
                break
            log.info("%s media download failed (%s), attempt %s; retrying", event.channel, exc, attempt)
            await sleep(cfg.fetch_backoff_seconds * 2 ** (attempt - 1))
    log.warning(
        "%s media %s from %s not downloaded (%s): handled with the platform's id",
        event.channel,
        event.media_id[:24],
        event.sender,
        last,
    )
    rt.metrics.errors.labels("attachment_fetch").inc()
    return None


async def _resolve(rt: Runtime, event_id: int, event: MediaMessage, token: str) -> None:
    async with rt.db.transaction() as s:
        row = await s.get(InboundRow, event_id, with_for_update=not rt.db.is_sqlite)
        if row is not None and row.status == "pending":
            row.payload = event.model_copy(update={"media_id": attachments.media_id(token)}).model_dump(mode="json")


async def _refuse(rt: Runtime, event_id: int, event: MediaMessage, user_id: str, message: str) -> None:
    """The event is done: its file is not kept, and the sender is told why."""
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        row = await s.get(InboundRow, event_id, with_for_update=not rt.db.is_sqlite)
        if row is None or row.status != "pending":
            return
        row.status = "done"
        row.attempts += 1
        row.handled_at = now
        row.error = "attachment refused"
        outbox.enqueue(s, [SendText(channel=event.channel, user_ids=(user_id,), text=message)], now)
