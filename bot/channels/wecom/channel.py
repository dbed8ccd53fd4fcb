"""The WeCom channel's delivery side: outbox items → message/send and message/update_template_card.

Per-recipient throttle is counted in the database (``channel_sends`` with channel ``wecom``: what was sent to this
person in the last minute and hour), so it holds across restarts and replicas. Per outbox round it is read once for
every recipient of the claimed rows (``prepare``), tallied in memory while the round delivers, and the new rows are
written in the round's outcome commit (``record``). Window of imprecision: sends by *another* replica to the same
person during one round (usually well under a second) are seen from that replica's next round on; a crash between
a send and its outcome commit leaves the send uncounted, but then the row is resent (flagged, WeCom drops the copy)
and counted.

Template-card response codes are single use and stay in this channel: every code we get is recorded in
``wecom_card_codes`` — from message/send here, from a tap by the webhook in the same commit as the tap's event — and
each update of a card spends one of its task_id's unspent codes (tap codes first, then the freshest); handlers only
say "update card X".
https://developer.work.weixin.qq.com/document/path/90236 (send), /94888 (update_template_card)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.base import (
    Delivery,
    DeliveryDeferred,
    DeliveryError,
    FetchedMedia,
    MediaFetchError,
    OutboxItem,
)
from bot.channels.throttle import PersonThrottle
from bot.channels.wecom.client import CONFIG_BACKOFF_SECONDS, WeComClient, WeComError
from bot.config import WeComConfig
from bot.infra.clock import Clock
from bot.infra.filestore import FileStore
from bot.services import attachments
from cards import wecom as render
from cards.model import Card
from cards.rich import RichText, to_wecom_markdown
from storage.db import Database
from storage.models import User, WeComCardCode

log = logging.getLogger(__name__)

# The response_code was already used, expired or is unknown: try another one.
CODE_SPENT_ERRORS = frozenset({60140, 42014, 42016})
CHANNEL = "wecom"  # this channel's name in channel_sends
# A temporary media lives 3 days (media/upload, path/90253); an upload is reused while an hour of that is left.
MEDIA_TTL = timedelta(days=3)
UPLOAD_REUSE_MARGIN = timedelta(hours=1)
# media/upload's limits (path/90253): image 10 MB JPG/PNG, voice 2 MB AMR, video 10 MB MP4, file 20 MB; more than
# 5 bytes each.
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png"})
MB = 1024 * 1024


def upload_filename(name: str) -> str:
    """The name sent in media/upload's form-data (what the recipient sees): never starting with "/", without "\\",
    ":" or a quote (path/90253 for 服务商; they would also end the header parameter)."""
    cleaned = "".join("_" if c in '\\/:"' or ord(c) < 32 else c for c in name).strip() or "file"
    return cleaned


def wecom_media_type(content_type: str, size: int) -> str | None:
    """The media/upload type a stored file goes as (an image WeCom does not show, a GIF say, goes as a file);
    None when it is too large for WeCom or too small."""
    if size <= 5:
        return None
    if content_type in _IMAGE_TYPES and size <= 10 * MB:
        return "image"
    if content_type == "audio/amr" and size <= 2 * MB:
        return "voice"
    if content_type == "video/mp4" and size <= 10 * MB:
        return "video"
    return "file" if size <= 20 * MB else None


class WeComChannel:
    """Delivers to WeCom users (by their WeCom userid: ``user_identities`` under ``wecom``, loaded with the users)."""

    name = "wecom"

    def __init__(
        self, db: Database, clock: Clock, client: WeComClient, cfg: WeComConfig, store: FileStore | None = None
    ) -> None:
        self.db = db
        self.clock = clock
        self.client = client
        self.cfg = cfg
        # The attachment store (files passed on are uploaded from it); None: only WeCom's own media ids are sent.
        self.store = store
        self.throttle = PersonThrottle(CHANNEL, db, clock, cfg.per_user_per_minute, cfg.per_user_per_hour)

    def can_reach(self, user: User) -> bool:
        return bool(user.channel_id(CHANNEL))

    def health(self) -> dict[str, Any] | None:
        """The API's configuration problem (a rejected secret, an IP not on the allow list …), for /healthz."""
        problem = self.client.config_problem
        if problem is None:
            return None
        return {"ok": False, "errcode": problem.errcode, "error": problem.hint}

    async def close(self) -> None:
        await self.client.close()

    async def deliver(self, item: OutboxItem) -> Delivery:
        touser = [userid for u in item.recipients if (userid := u.channel_id(CHANNEL))]
        if not touser:
            raise DeliveryError("recipient has no WeCom userid", retryable=False)
        try:
            if item.kind == "card_update":
                await item.starting_call()
                return await self._update(item, touser)
            await self.throttle.check(item)
            await item.starting_call()
            if item.kind == "media":
                return await self._send_media(item, touser)
            if item.kind == "text":
                return await self._send_text(item, str(item.payload["text"]), touser)
            if item.kind == "rich":
                return await self._send_rich(item, RichText.model_validate(item.payload["rich"]), touser)
            return await self._send_card(item, Card.model_validate(item.payload["card"]), touser)
        except WeComError as exc:
            if exc.config:
                # Not the message's fault: wait for the operator (shown in /healthz) without using up attempts.
                retry_at = self.clock.now() + timedelta(seconds=CONFIG_BACKOFF_SECONDS)
                raise DeliveryDeferred(str(exc), retry_at) from None
            raise DeliveryError(
                str(exc), retryable=exc.retryable, code=exc.errcode, outcome_unknown=exc.unknown
            ) from None

    # ---- throttling ---------------------------------------------------------------------------------------

    async def prepare(self, items: Sequence[OutboxItem]) -> None:
        """Start of an outbox round: read the budgets of every recipient the round may send to, in one query."""
        await self.throttle.prepare(u.id for item in items if item.kind != "card_update" for u in item.recipients)

    async def record(self, session: AsyncSession, sent: Sequence[tuple[OutboxItem, Delivery]], now: datetime) -> None:
        """In the outcome commit: one ``channel_sends`` row per message that reached a recipient, for the throttle."""
        await self.throttle.record(session, sent, now)

    def committed(self, sent: Sequence[tuple[OutboxItem, Delivery]]) -> None:
        """Nothing waits for the throttle rows."""

    def _count_sends(self, item: OutboxItem, messages: int) -> int:
        return self.throttle.count(item, messages)

    # ---- sends --------------------------------------------------------------------------------------------

    def _dup_window(self, item: OutboxItem) -> int | None:
        # Only a possible resend asks WeCom to drop duplicates: two genuinely identical replies (帮助 twice) must
        # both arrive.
        return (self.cfg.duplicate_check_seconds or None) if item.resend else None

    async def _send(self, body: dict[str, Any]) -> dict[str, Any]:
        data = await self.client.post("message/send", body)
        invalid = str(data.get("invaliduser") or "")
        if invalid:
            log.warning("WeCom message %s: invalid recipients %s", data.get("msgid"), invalid)
        return data

    # Every send below records what reached each recipient (``_count_sends``), for the per-person throttle.

    async def _send_text(self, item: OutboxItem, text: str, touser: list[str]) -> Delivery:
        msgid = None
        parts = render.split_text(text, render.TEXT_MAX_BYTES - render.DEDUP_TAG_MAX_BYTES)
        for n, part in enumerate(parts):
            tagged = part + render.dedup_tag(f"{item.id}.{n}")
            body = render.render_send_text(
                tagged, touser=touser, agent_id=self.cfg.agent_id, duplicate_check_seconds=self._dup_window(item)
            )
            msgid = (await self._send(body)).get("msgid") or msgid
        return Delivery(platform_msg_id=msgid, messages=self._count_sends(item, len(parts)))

    async def _send_rich(self, item: OutboxItem, rich: RichText, touser: list[str]) -> Delivery:
        """A formatted message as WeCom markdown, in parts of at most 2,048 bytes cut between sections; each part
        tagged like a text (a resend matches only its own earlier copy)."""
        msgid = None
        parts = to_wecom_markdown(rich, render.MARKDOWN_MAX_BYTES - render.DEDUP_TAG_MAX_BYTES)
        for n, part in enumerate(parts):
            body = render.render_send_markdown(
                part + render.dedup_tag(f"{item.id}.{n}"),
                touser=touser,
                agent_id=self.cfg.agent_id,
                duplicate_check_seconds=self._dup_window(item),
            )
            msgid = (await self._send(body)).get("msgid") or msgid
        return Delivery(platform_msg_id=msgid, messages=self._count_sends(item, len(parts)))

    async def _send_media(self, item: OutboxItem, touser: list[str]) -> Delivery:
        """A photo or file: one of the attachment store is uploaded (media/upload, or an upload WeCom still keeps)
        and sent by its new MediaId; a WeCom MediaId is sent as it is; anything else has its caption sent."""
        media_id = str(item.payload["media_id"])
        media_type = str(item.payload.get("media_type") or "image")
        token = attachments.token_of(media_id)
        if token is not None:
            uploaded = await self._uploaded(token)
            if uploaded is None:
                return await self._send_text(item, str(item.payload.get("caption") or "📎"), touser)
            media_type, media_id = uploaded
        elif item.payload.get("source_channel") != self.name:
            return await self._send_text(item, str(item.payload.get("caption") or "📎"), touser)
        body = render.render_send_media(
            media_type,
            media_id,
            touser=touser,
            agent_id=self.cfg.agent_id,
            duplicate_check_seconds=self._dup_window(item),
        )
        data = await self._send(body)
        return Delivery(platform_msg_id=data.get("msgid"), messages=self._count_sends(item, 1))

    async def _uploaded(self, token: str) -> tuple[str, str] | None:
        """(WeCom media type, MediaId) of a stored attachment: an earlier upload with at least an hour left, else a
        fresh upload (recorded in ``attachment_uploads``); None when WeCom cannot take it (type, size, file gone)."""
        if self.store is None:
            return None
        now = self.clock.now()
        async with self.db.read() as s:
            row = await attachments.by_token(s, token)
            if row is None:
                return None
            kind = wecom_media_type(row.content_type, row.size)
            reuse = await attachments.valid_upload(s, row.id, CHANNEL, now, UPLOAD_REUSE_MARGIN) if kind else None
            attachment_id, key, filename, content_type = row.id, row.storage_key, row.filename, row.content_type
        if kind is None:
            log.info("attachment %s (%s) cannot go to WeCom: caption instead", attachment_id, content_type)
            return None
        if reuse is not None:
            return kind, reuse
        try:
            data = await self.store.read(key)
        except (FileNotFoundError, ValueError):
            log.error("attachment %s: file %s missing from the store", attachment_id, key)
            return None
        answer = await self.client.upload_media(kind, upload_filename(filename), content_type, data)
        platform_id = str(answer["media_id"])
        async with self.db.transaction() as s:
            await attachments.record_upload(s, attachment_id, CHANNEL, platform_id, now, MEDIA_TTL)
        return kind, platform_id

    async def fetch_media(self, media_type: str, media_id: str, max_bytes: int) -> FetchedMedia:
        """Download a received MediaId (media/get) for the attachment store."""
        try:
            data, filename, content_type = await self.client.get_media(media_id, max_bytes)
        except WeComError as exc:
            if exc.errcode == "too_large":
                raise MediaFetchError(str(exc), retryable=False, too_large=True) from None
            raise MediaFetchError(str(exc), retryable=exc.retryable or exc.config) from None
        return FetchedMedia(data, filename, content_type)

    async def _send_card(self, item: OutboxItem, card: Card, touser: list[str], task_id: str | None = None) -> Delivery:
        dup = self._dup_window(item)
        body = render.render_send_card(card, touser=touser, agent_id=self.cfg.agent_id, duplicate_check_seconds=dup)
        if task_id is not None:
            body["template_card"]["task_id"] = task_id
        data = await self._send(body)
        messages = self._count_sends(item, 1)
        code = data.get("response_code")
        if code:
            await self._remember(str(code), body["template_card"]["task_id"], "send", spent=False)
        return Delivery(platform_msg_id=data.get("msgid"), platform_token=code, messages=messages)

    # ---- updates ------------------------------------------------------------------------------------------

    async def _update(self, item: OutboxItem, touser: list[str]) -> Delivery:
        card = Card.model_validate(item.payload["card"])
        task_id = render.task_id_for(card.ref)
        legacy = str(item.payload.get("response_code") or "")
        if legacy:
            # A row queued before taps' codes were recorded at ingest carries its tap's code: record it like one.
            await self._remember(legacy, task_id, "tap", spent=False)
        for code, source in await self._unspent_codes(task_id):
            body = render.render_update(card, userids=touser, agent_id=self.cfg.agent_id, response_code=code)
            try:
                await self.client.post("message/update_template_card", body)
            except WeComError as exc:
                if exc.errcode in CODE_SPENT_ERRORS:
                    await self._remember(code, task_id, source, spent=True)
                    continue
                raise
            await self._remember(code, task_id, source, spent=True)
            return Delivery(platform_token=code)
        if item.resend:
            # Every code is used up and this is a retry: the earlier attempt went through before its answer was lost.
            log.info("WeCom card %s: update already applied by an earlier attempt", task_id)
            return Delivery()
        # No usable code (all spent or expired): show the new state as a fresh message instead.
        log.info("WeCom card %s: no unspent response code, sending the new state as a message", task_id)
        if card.buttons:
            fresh = self._fresh_task_id(task_id, item.id)
            return await self._send_card(item, card, touser, task_id=fresh)
        summary = "\n".join(x for x in (card.title, card.status) if x)
        return await self._send_text(item, summary, touser)

    @staticmethod
    def _fresh_task_id(task_id: str, outbox_id: int) -> str:
        """A new task_id for re-sending a card whose codes are spent: unique per outbox row."""
        suffix = f"-r{outbox_id}"
        return task_id[: 128 - len(suffix)] + suffix

    async def _unspent_codes(self, task_id: str) -> list[tuple[str, str]]:
        """(code, source) of the card's unspent codes: taps' first (a tap was just made on this very copy), then
        the freshest."""
        async with self.db.read() as s:
            rows = await s.execute(
                select(WeComCardCode.code, WeComCardCode.source)
                .where(WeComCardCode.task_id == task_id, WeComCardCode.spent_at.is_(None))
                .order_by((WeComCardCode.source == "tap").desc(), WeComCardCode.issued_at.desc())
            )
            return [(code, source) for code, source in rows.all()]

    async def _remember(self, code: str, task_id: str, source: str, *, spent: bool) -> None:
        now = self.clock.now()
        spent_at: datetime | None = now if spent else None
        values = {"code": code, "task_id": task_id, "source": source, "issued_at": now, "spent_at": spent_at}
        async with self.db.transaction() as s:
            insert = sqlite_insert if self.db.is_sqlite else pg_insert
            await s.execute(insert(WeComCardCode).values(**values).on_conflict_do_nothing())
            if spent:
                await s.execute(update(WeComCardCode).where(WeComCardCode.code == code).values(spent_at=now))
