"""The DingTalk channel's delivery side: outbox items → robot messages (batchSend) and interactive cards.

- text: ``sampleText {content}`` in parts of at most ``cards.dingtalk.TEXT_MAX_BYTES``; rich text (``RichText``):
  ``sampleMarkdown {title, text}`` in parts (``cards.dingtalk.rich_markdown``); media of the attachment store
  (``att-<token>``): uploaded with oapi media/upload (or an earlier upload still valid, ``attachment_uploads``),
  then ``sampleImageMsg {photoURL: media_id}`` (JPEG/PNG/GIF) or ``sampleFile {mediaId, fileName, fileType}``
  (PDF, Word/Excel/PowerPoint); anything else (another platform's media id, a type DingTalk's robot cannot show):
  its caption. Received media are downloaded by ``fetch_media`` (messageFiles/download, docs/attachments.md).
- ≤ 20 staff ids per batchSend call. A user DingTalk lists in ``flowControlledStaffIdList`` did not get the
  message: when some recipients got it, the rest of the message (this part and the later ones) goes to the
  flow-controlled users alone in a new outbox row written with the outcome (``record``), due a few seconds later;
  when nobody got it, the row is retried as a whole.
- cards with ``card_template_id`` set: ``createAndDeliver`` with ``outTrackId = cards.dingtalk.out_track_id(ref)``
  (the same for every send and update of the card), all recipients in one call (openSpaceId
  ``dtv1.card//IM_ROBOT.a;IM_ROBOT.b…``, at most 20 a call), callbackType "HTTP" + callbackRouteKey or "STREAM";
  updates: ``PUT /v1.0/card/instances`` with ``updateCardDataByKey`` (one call updates every copy).
- cards without a template: ``sampleActionCard``…``sampleActionCard5`` whose buttons are signed, single-use links
  (``actions.action_link``): one call per person (each person's links are their own); an update sends the new
  state as a new message (a settled card as markdown).
- per-person throttle counted in ``channel_sends`` under ``dingtalk`` (as WeCom's), the month's API calls in
  ``platform_api_calls`` (``quota.CallCounter``), both written in the round's outcome commit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.base import (
    Delivery,
    DeliveryDeferred,
    DeliveryError,
    FetchedMedia,
    MediaFetchError,
    OutboxItem,
)
from bot.channels.dingtalk import actions
from bot.channels.dingtalk.client import CONFIG_BACKOFF_SECONDS, QUOTA_CODE, DingTalkClient, DingTalkError
from bot.channels.dingtalk.quota import CallCounter
from bot.channels.throttle import PersonThrottle
from bot.config import DingTalkConfig, Settings
from bot.infra.clock import Clock
from bot.infra.filestore import FileStore
from bot.services import attachments
from cards import dingtalk as render
from cards.model import Card
from cards.rich import RichText
from storage.db import Database
from storage.models import OutboxMessage, User

log = logging.getLogger(__name__)

CHANNEL = "dingtalk"
BATCH_SEND = "/v1.0/robot/oToMessages/batchSend"
CREATE_AND_DELIVER = "/v1.0/card/instances/createAndDeliver"
UPDATE_CARD = "/v1.0/card/instances"
MAX_USERS_PER_CALL = 20
# The payload key of a follow-up row for flow-controlled users: the rendered messages still to send them.
PARTS = "dingtalk_parts"
# A flow-controlled user's follow-up row is due this much later.
FLOW_RETRY_SECONDS = 5
# Per-person budget (DingTalk documents none for robot chats; WeCom's defaults).
PER_USER_PER_MINUTE = 20
PER_USER_PER_HOUR = 600
CARD_GONE = frozenset({"param.cardNotExist"})
# oapi media/upload's media_id: DingTalk documents no lifetime (*uncertain*; reports say 3 days). Recorded as valid
# for a conservative day, reused while at least an hour of that is left, else uploaded again.
MEDIA_TTL = timedelta(days=1)
UPLOAD_REUSE_MARGIN = timedelta(hours=1)
MB = 1024 * 1024
# What a stored file goes to DingTalk as (上传媒体文件: image ≤ 20 MB jpg/gif/png/bmp; file ≤ 20 MB doc(x), xls(x),
# ppt(x), zip, pdf, rar): (upload type, msgKey, the file name's suffix). Other types (text, WebP, video, voice)
# go as their caption: sampleVideo needs a cover picture and sampleAudio a duration the store does not know, and
# a .txt or .webp is refused by media/upload.
_DINGTALK_MEDIA: dict[str, tuple[str, str, str]] = {
    "image/jpeg": ("image", "sampleImageMsg", "jpg"),
    "image/png": ("image", "sampleImageMsg", "png"),
    "image/gif": ("image", "sampleImageMsg", "gif"),
    "application/pdf": ("file", "sampleFile", "pdf"),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ("file", "sampleFile", "docx"),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ("file", "sampleFile", "xlsx"),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ("file", "sampleFile", "pptx"),
}
MEDIA_MAX_BYTES = 20 * MB


def dingtalk_media(content_type: str, size: int) -> tuple[str, str, str] | None:
    """(upload type, msgKey, suffix) a stored file goes as, or None (its caption is sent instead)."""
    if size <= 0 or size > MEDIA_MAX_BYTES:
        return None
    return _DINGTALK_MEDIA.get(content_type)


def upload_filename(name: str, suffix: str) -> str:
    """The name DingTalk shows: the store's (already cleaned) name without quotes or slashes, ending in the real
    type's suffix (media/upload checks the name's suffix against the type)."""
    cleaned = "".join("_" if c in '\\/:"' or ord(c) < 32 else c for c in name).strip() or "file"
    if not cleaned.lower().endswith("." + suffix) and not (suffix == "jpg" and cleaned.lower().endswith(".jpeg")):
        cleaned = cleaned[: 200 - len(suffix) - 1] + "." + suffix
    return cleaned


Message = tuple[str, dict[str, str]]


def month_of(when: datetime, tz: ZoneInfo) -> str:
    return when.astimezone(tz).strftime("%Y-%m")


def next_month_start(when: datetime, tz: ZoneInfo) -> datetime:
    local = when.astimezone(tz)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return local.replace(year=year, month=month, day=1, hour=0, minute=0, second=0, microsecond=0)


def card_body(cfg: DingTalkConfig, card: Card, staff_ids: list[str]) -> dict[str, Any]:
    """The createAndDeliver body of ``card`` for ``staff_ids`` (one instance for all: one update reaches every
    copy); ``salesbot dingtalk setup --test-card`` sends one the same way."""
    body: dict[str, Any] = {
        "cardTemplateId": cfg.card_template_id,
        "outTrackId": render.out_track_id(card.ref),
        "cardData": {"cardParamMap": render.card_param_map(card)},
        "openSpaceId": "dtv1.card//" + ";".join(f"IM_ROBOT.{sid}" for sid in staff_ids),
        "imRobotOpenSpaceModel": {
            "supportForward": False,
            "lastMessageI18n": {"ZH_CN": render.cut(render.to_one_line(card.title), 200)},
        },
        "imRobotOpenDeliverModel": {"spaceType": "IM_ROBOT", "robotCode": cfg.robot_code},
        "userIdType": 1,
    }
    if cfg.mode == "stream":
        body["callbackType"] = "STREAM"
    else:
        body["callbackType"] = "HTTP"
        body["callbackRouteKey"] = cfg.card_callback_route_key
    return body


class DingTalkChannel:
    """Delivers to DingTalk people by their staff id (``user_identities`` under ``dingtalk``)."""

    name = CHANNEL

    def __init__(
        self,
        db: Database,
        clock: Clock,
        client: DingTalkClient,
        settings: Settings,
        counter: CallCounter,
        store: FileStore | None = None,
    ) -> None:
        self.db = db
        # The attachment store (files passed on are uploaded from it); None: media go as their caption.
        self.store = store
        self.clock = clock
        self.client = client
        self.settings = settings
        self.cfg = settings.dingtalk
        self.tz = settings.org.tz
        self.counter = counter
        self.throttle = PersonThrottle(CHANNEL, db, clock, PER_USER_PER_MINUTE, PER_USER_PER_HOUR)
        self._followups: dict[int, list[tuple[list[str], list[Message]]]] = {}

    def can_reach(self, user: User) -> bool:
        return bool(user.channel_id(CHANNEL))

    def health(self) -> dict[str, Any]:
        """Always shown in /healthz: the month's API calls; "degraded" on a configuration error or a spent quota."""
        info: dict[str, Any] = {"ok": True, **self.counter.health()}
        if self.client.quota_exhausted is not None:
            info.update(
                ok=False,
                state="quota_exhausted",
                code=QUOTA_CODE,
                error="DingTalk's monthly API call quota is spent: messages wait until next month",
            )
        elif self.client.config_problem is not None:
            problem = self.client.config_problem
            info.update(ok=False, state="degraded", code=problem.code, error=problem.hint)
        return info

    async def close(self) -> None:
        await self.counter.flush(self.clock.now())
        await self.client.close()

    # ---- deliver ------------------------------------------------------------------------------------------------

    async def deliver(self, item: OutboxItem) -> Delivery:
        self._followups.pop(item.id, None)  # left by an earlier attempt that failed later on
        staff = [(u, sid) for u in item.recipients if (sid := u.channel_id(CHANNEL))]
        if not staff:
            raise DeliveryError("recipient has no DingTalk staff id", retryable=False)
        try:
            if item.kind == "card_update":
                return await self._update(item, staff)
            await self.throttle.check(item)
            if PARTS in item.payload:
                messages = [(str(k), dict(p)) for k, p in item.payload[PARTS]]
                return await self._batch(item, [sid for _, sid in staff], messages)
            if item.kind == "text":
                return await self._batch(item, [sid for _, sid in staff], self._texts(str(item.payload["text"])))
            if item.kind == "rich":
                rich = RichText.model_validate(item.payload["rich"])
                md = [("sampleMarkdown", {"title": t, "text": x}) for t, x in render.rich_markdown(rich)]
                return await self._batch(item, [sid for _, sid in staff], md)
            if item.kind == "media":
                return await self._media(item, [sid for _, sid in staff])
            card = Card.model_validate(item.payload["card"])
            if self.cfg.card_template_id:
                return await self._create_card(item, card, [sid for _, sid in staff])
            return await self._action_cards(item, card, staff)
        except DingTalkError as exc:
            raise self._delivery_error(exc) from None

    def _delivery_error(self, exc: DingTalkError) -> Exception:
        now = self.clock.now()
        if exc.quota:
            # Not before the next month: nothing is spent asking again.
            return DeliveryDeferred(str(exc), next_month_start(now, self.tz))
        if exc.config:
            # Not the message's fault: wait for the operator (shown in /healthz) without using up attempts.
            return DeliveryDeferred(str(exc), now + timedelta(seconds=CONFIG_BACKOFF_SECONDS))
        return DeliveryError(
            str(exc),
            retryable=exc.retryable,
            code=exc.code,
            outcome_unknown=exc.unknown,
            retry_after=max(1.0, exc.retry_after) if exc.retryable else 0.0,
        )

    # ---- media ------------------------------------------------------------------------------------------------

    async def _media(self, item: OutboxItem, staff_ids: list[str]) -> Delivery:
        """A stored file as a DingTalk image or file message; anything else as its caption."""
        caption = str(item.payload.get("caption") or "📎")
        token = attachments.token_of(str(item.payload["media_id"]))
        uploaded = await self._uploaded(item, token) if token is not None else None
        if uploaded is None:
            return await self._batch(item, staff_ids, self._texts(caption))
        msg_key, media_id, filename, suffix = uploaded
        if msg_key == "sampleImageMsg":
            # photoURL takes an http(s) URL or a media/upload media_id (what DingTalk's own clients send).
            param = {"photoURL": media_id}
        else:
            param = {"mediaId": media_id, "fileName": filename, "fileType": suffix}
        return await self._batch(item, staff_ids, [(msg_key, param)])

    async def _uploaded(self, item: OutboxItem, token: str) -> tuple[str, str, str, str] | None:
        """(msgKey, DingTalk media_id, file name, suffix) of a stored attachment: an earlier upload with at least an
        hour left, else a fresh upload (recorded in ``attachment_uploads``); None when it cannot go as a file."""
        if self.store is None:
            return None
        now = self.clock.now()
        async with self.db.read() as s:
            row = await attachments.by_token(s, token)
            if row is None:
                return None
            kind = dingtalk_media(row.content_type, row.size)
            reuse = await attachments.valid_upload(s, row.id, CHANNEL, now, UPLOAD_REUSE_MARGIN) if kind else None
            attachment_id, key, name, content_type = row.id, row.storage_key, row.filename, row.content_type
        if kind is None:
            log.info("attachment %s (%s) cannot go to DingTalk as a file: caption instead", attachment_id, content_type)
            return None
        upload_type, msg_key, suffix = kind
        filename = upload_filename(name, suffix)
        if reuse is not None:
            return msg_key, reuse, filename, suffix
        try:
            data = await self.store.read(key)
        except (FileNotFoundError, ValueError):
            log.error("attachment %s: file %s missing from the store", attachment_id, key)
            return None
        await item.starting_call()
        media_id = await self.client.upload_media(upload_type, filename, content_type, data)
        async with self.db.transaction() as s:
            await attachments.record_upload(s, attachment_id, CHANNEL, media_id, now, MEDIA_TTL)
        return msg_key, media_id, filename, suffix

    async def fetch_media(self, media_type: str, media_id: str, max_bytes: int) -> FetchedMedia:
        """Download a received file: ``messageFiles/download`` turns the downloadCode into a temporary URL (an API
        call), whose bytes are then read (not an API call; no token sent)."""
        try:
            url = await self.client.download_url(media_id, self.cfg.robot_code)
            data = await self.client.fetch_url(url, max_bytes)
        except DingTalkError as exc:
            if exc.code == "too_large":
                raise MediaFetchError(str(exc), retryable=False, too_large=True) from None
            raise MediaFetchError(str(exc), retryable=exc.retryable or exc.config) from None
        return FetchedMedia(data)

    @staticmethod
    def _texts(text: str) -> list[Message]:
        return [("sampleText", {"content": p}) for p in render.split_bytes(text, render.TEXT_MAX_BYTES)]

    async def _batch(self, item: OutboxItem, staff_ids: list[str], messages: list[Message]) -> Delivery:
        """Each message to every staff id, 20 a call; flow-controlled users get the rest in a follow-up row."""
        if not messages:
            return Delivery()
        held: dict[str, int] = {}  # staff id → index of the first message DingTalk held back from them
        key = None
        for n, (msg_key, param) in enumerate(messages):
            active = [sid for sid in staff_ids if sid not in held]
            for chunk in _chunks(active, MAX_USERS_PER_CALL):
                body = {
                    "robotCode": self.cfg.robot_code,
                    "userIds": chunk,
                    "msgKey": msg_key,
                    "msgParam": render.msg_param(param),
                }
                await item.starting_call()
                data = await self.client.post(BATCH_SEND, body)
                key = data.get("processQueryKey") or key
                for sid in data.get("flowControlledStaffIdList") or []:
                    if sid in chunk:
                        held.setdefault(str(sid), n)
                invalid = data.get("invalidStaffIdList") or []
                if invalid:
                    log.warning("dingtalk message to invalid staff ids: %s", ", ".join(map(str, invalid)))
        if held and len(held) == len(staff_ids) and all(n == 0 for n in held.values()):
            raise DeliveryError(
                "DingTalk held the message back (flowControlledStaffIdList)",
                retryable=True,
                code="flow_controlled",
                retry_after=FLOW_RETRY_SECONDS,
            )
        if held:
            self._followup(item, held, messages)
        return Delivery(platform_msg_id=key, messages=self._count_sends(item, len(messages)))

    def _followup(self, item: OutboxItem, held: dict[str, int], messages: list[Message]) -> None:
        by_sid = {u.channel_id(CHANNEL): u.id for u in item.recipients}
        groups: dict[int, list[str]] = {}
        for sid, n in held.items():
            if sid in by_sid:
                groups.setdefault(n, []).append(by_sid[sid])
        self._followups[item.id] = [(users, messages[n:]) for n, users in sorted(groups.items())]
        log.info("dingtalk: outbox %s held back for %s, resent to them alone", item.id, ", ".join(held))

    # ---- cards --------------------------------------------------------------------------------------------------

    async def _create_card(self, item: OutboxItem, card: Card, staff_ids: list[str]) -> Delivery:
        """One createAndDeliver for up to 20 recipients (the same outTrackId: one instance, one update for all)."""
        track = render.out_track_id(card.ref)
        failed: list[str] = []
        for chunk in _chunks(staff_ids, MAX_USERS_PER_CALL):
            await item.starting_call()
            data = await self.client.post(CREATE_AND_DELIVER, card_body(self.cfg, card, chunk))
            result = data.get("result")
            for r in (result.get("deliverResults") if isinstance(result, dict) else None) or []:
                if isinstance(r, dict) and r.get("success") is False:
                    failed.append(str(r.get("spaceId")))
                    log.warning("dingtalk card %s not delivered to %s: %s", track, r.get("spaceId"), r.get("errorMsg"))
        if failed and len(failed) == len(staff_ids):
            raise DeliveryError("card delivered to nobody", retryable=True, code="deliver_failed", retry_after=5)
        return Delivery(platform_msg_id=track, platform_token=track, messages=self._count_sends(item, 1))

    async def _action_cards(self, item: OutboxItem, card: Card, staff: list[tuple[User, str]]) -> Delivery:
        """The no-template fallback: an action card per person, its buttons that person's signed links."""
        now = self.clock.now()
        key = None
        held: dict[str, int] = {}
        per_user: dict[str, list[Message]] = {}
        for user, sid in staff:
            urls = [
                actions.action_link(self.settings, user.id, card.ref, b.key, now, label=b.text)
                for b in card.buttons[: render.ACTION_CARD_MAX_BUTTONS]
            ]
            if urls and not self.cfg.public_base_url:
                log.warning("dingtalk: [dingtalk] public_base_url is not set: action card buttons cannot link back")
            msg_key, param = render.action_card(card, urls)
            per_user[sid] = [(msg_key, param)]
            body = {
                "robotCode": self.cfg.robot_code,
                "userIds": [sid],
                "msgKey": msg_key,
                "msgParam": render.msg_param(param),
            }
            await item.starting_call()
            data = await self.client.post(BATCH_SEND, body)
            key = data.get("processQueryKey") or key
            if sid in (data.get("flowControlledStaffIdList") or []):
                held[sid] = 0
        if held and len(held) == len(staff):
            raise DeliveryError(
                "DingTalk held the card back (flowControlledStaffIdList)",
                retryable=True,
                code="flow_controlled",
                retry_after=FLOW_RETRY_SECONDS,
            )
        if held:
            by_sid = {sid: u.id for u, sid in staff}
            self._followups[item.id] = [([by_sid[sid]], per_user[sid]) for sid in held]
        return Delivery(platform_msg_id=key, messages=self._count_sends(item, 1))

    async def _update(self, item: OutboxItem, staff: list[tuple[User, str]]) -> Delivery:
        card = Card.model_validate(item.payload["card"])
        if self.cfg.card_template_id:
            track = render.out_track_id(card.ref)
            body = {
                "outTrackId": track,
                "cardData": {"cardParamMap": render.card_param_map(card)},
                "cardUpdateOptions": {"updateCardDataByKey": True},
                "userIdType": 1,
            }
            try:
                await item.starting_call()
                await self.client.put(UPDATE_CARD, body)
                return Delivery(platform_token=track)
            except DingTalkError as exc:
                if exc.code not in CARD_GONE:
                    raise
                # Sent before the template was configured (an action card): show the new state as a message.
                log.info("dingtalk card %s has no instance, sending the new state as a message", card.ref)
        await self.throttle.check(item)
        if card.buttons:
            return await self._action_cards(item, card, staff)
        msg_key, param = render.action_card(card, [])
        return await self._batch(item, [sid for _, sid in staff], [(msg_key, param)])

    # ---- throttle and bookkeeping -------------------------------------------------------------------------------

    async def prepare(self, items: Sequence[OutboxItem]) -> None:
        await self.throttle.prepare(u.id for item in items for u in item.recipients)
        try:
            await self.counter.load()
        except Exception:
            log.warning("dingtalk: this month's API call count could not be read")

    async def record(self, session: AsyncSession, sent: Sequence[tuple[OutboxItem, Delivery]], now: datetime) -> None:
        """In the outcome commit: throttle rows, the month's API calls, follow-up rows for flow-controlled users."""
        await self.throttle.record(session, sent, now)
        followups = []
        for item, _ in sent:
            for users, messages in self._followups.pop(item.id, []):
                payload = {**item.payload, "user_ids": users, PARTS: [[k, p] for k, p in messages]}
                followups.append(
                    {
                        "channel": CHANNEL,
                        "recipient": users[0],
                        "kind": "text" if item.kind == "card_update" else item.kind,
                        "payload": payload,
                        "card_ref": item.card_ref,
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": now + timedelta(seconds=FLOW_RETRY_SECONDS),
                        "created_at": now,
                    }
                )
        if followups:
            await session.execute(insert(OutboxMessage), followups)
        await self.counter.record(session, now)

    def committed(self, sent: Sequence[tuple[OutboxItem, Delivery]]) -> None:
        self.counter.committed()

    def _count_sends(self, item: OutboxItem, messages: int) -> int:
        return self.throttle.count(item, messages)


def _chunks(values: list[str], size: int) -> list[list[str]]:
    return [values[i : i + size] for i in range(0, len(values), size)]
