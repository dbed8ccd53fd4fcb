"""DingTalk callback JSON → neutral inbound events (docs/dingtalk_inbound.md).

Robot messages (``/v1.0/im/bot/messages/get``, the same JSON over HTTP and Stream; field names as the official
SDK's ``ChatbotMessage.from_dict``): ``text`` → TextMessage; ``picture`` → an image; ``file`` and ``video`` → media;
``audio`` → its speech recognition as a TextMessage marked ``dictated`` (a voice message without one is voice
media); ``richText`` → one TextMessage of its text parts joined, then one image per picture part; anything else is
``Unsupported`` (answered politely, nothing stored). Media carry the ``downloadCode`` as ``media_id``.

Dedup keys (``inbound_events`` is unique per channel and key): ``msg:<msgId>`` for a message's first event,
``msg:<msgId>:<n>`` for the picture at index ``n`` of a richText list; ``tap:<outTrackId>:<userId>:<actionIds>:
<sha256 of params>:<delivery>`` for a card tap (``delivery``: the callback's signed timestamp, or the Stream
frame's messageId). Keys over 200 characters keep their prefix and hash the rest.

Group chats: only messages that @ the robot reach it; the leading @mentions are stripped from the text, and the
sender is the person (``senderStaffId``), so replies go to them privately, like every reply of the bot. The group's
``conversationId`` is not in the neutral event (it has no place for it): ``RobotMessage`` keeps it for the log.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from bot.channels.dingtalk.sign import CallbackRejected
from bot.core.events import CardAction, InboundEvent, MediaMessage, TextMessage
from cards.dingtalk import KEY_PARAM

CHANNEL = "dingtalk"
# The inbound_events columns: sender 64, dedup_key 200.
_MAX_SENDER = 64
_MAX_DEDUP = 200
# Ids (msgId, downloadCode, outTrackId …): printable, no control characters, a sane length.
_ID = re.compile(r"[^\x00-\x1f\x7f]{1,512}")
# The monthly quota is spent: DingTalk sends a message with this errorCode and no content.
QUOTA_SPENT = 20001
# Leading @mentions of a group message ("@销售助手 拜访 …"); DingTalk puts U+2005 after a mention.
_MENTIONS = re.compile(r"^(?:[\s\u2005]*@[^\s\u2005]+[\s\u2005]+)+")
# Card refs are at most the outbox's card_ref column (128).
_MAX_REF = 128


@dataclass(frozen=True)
class Ignored:
    """A valid callback we do not act on (the quota notice, a group message not for the robot …)."""

    reason: str


@dataclass(frozen=True)
class RobotMessage:
    """One robot message: who sent it, where, and its events in order (empty when ``unsupported``)."""

    sender: str
    msg_id: str
    events: tuple[InboundEvent, ...]
    conversation_id: str = ""
    group: bool = False
    # A message type the bot cannot use (unknownMsgType …): answered with 暂不支持这种消息.
    unsupported: str = ""


@dataclass(frozen=True)
class CardTap:
    """One card tap: the CardAction, and the DingTalk card it came from."""

    event: CardAction
    out_track_id: str


def load_json(body: bytes) -> dict[str, Any]:
    """The body as a JSON object; CallbackRejected(400) for anything else (bad UTF-8, NaN, nesting bombs …)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise CallbackRejected(400, "body is not UTF-8") from None
    return _object(text, "body")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _object(text: str, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise CallbackRejected(400, f"{what} is not valid JSON") from None
    if not isinstance(doc, dict):
        raise CallbackRejected(400, f"{what} is not a JSON object")
    return doc


def _str(doc: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = doc.get(key)
    if value is None:
        if required:
            raise CallbackRejected(400, f"missing field {key}")
        return ""
    if not isinstance(value, str):
        raise CallbackRejected(400, f"field {key} is not a string")
    return value


def _id(doc: dict[str, Any], key: str, *, limit: int = 512) -> str:
    value = _str(doc, key).strip()
    if not _ID.fullmatch(value) or len(value) > limit:
        raise CallbackRejected(400, f"field {key} empty, too long or with control characters")
    return value


def _dict(doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key)
    if not isinstance(value, dict):
        raise CallbackRejected(400, f"field {key} missing or not an object")
    return value


def _dedup(prefix: str, rest: str) -> str:
    key = f"{prefix}:{rest}"
    if len(key) <= _MAX_DEDUP:
        return key
    return f"{prefix}:sha256:{hashlib.sha256(rest.encode('utf-8', 'surrogatepass')).hexdigest()}"


def _create_at(doc: dict[str, Any]) -> None:
    """``createAt`` (ms) is a number or a string of digits; it is not needed, only checked when present."""
    value = doc.get("createAt")
    if value is None:
        return
    if isinstance(value, bool) or not (
        (isinstance(value, int) and value >= 0) or (isinstance(value, str) and value.isascii() and value.isdigit())
    ):
        raise CallbackRejected(400, "field createAt is not a time in milliseconds")


def error_code(doc: dict[str, Any]) -> int | None:
    """The ``errorCode`` of a platform notice (20001: the monthly quota is spent), or None."""
    value = doc.get("errorCode")
    if value is None:
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 10:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise CallbackRejected(400, "field errorCode is not a number")


def check_robot_code(doc: dict[str, Any], robot_code: str) -> None:
    """400 when ``robotCode`` is missing or not a string, 403 when it is another robot's."""
    if _str(doc, "robotCode") != robot_code:
        raise CallbackRejected(403, "message for another robot")


def strip_mentions(text: str) -> str:
    """A group message's text without the leading @mentions (the robot's and anyone else's before the words)."""
    return _MENTIONS.sub("", text).strip()


def sender_of(doc: dict[str, Any]) -> str:
    """The sender's staffId (the org's userid, as the identities table holds it)."""
    sender = _id(doc, "senderStaffId", limit=_MAX_SENDER)
    return sender


def parse_robot(doc: dict[str, Any]) -> RobotMessage | Ignored:
    """Map one robot message (already verified, robotCode checked) to its events; CallbackRejected(400) when it
    is malformed."""
    msg_type = _str(doc, "msgtype").strip()
    msg_id = _id(doc, "msgId")
    sender = sender_of(doc)
    _create_at(doc)
    conversation_type = _str(doc, "conversationType", required=False).strip() or "1"
    if conversation_type not in ("1", "2"):
        raise CallbackRejected(400, "field conversationType is not 1 or 2")
    group = conversation_type == "2"
    if group and doc.get("isInAtList") is False:
        return Ignored("group message not addressed to the robot")
    conversation_id = _str(doc, "conversationId", required=False)[:200]
    try:
        events, unsupported = _events(doc, msg_type, msg_id, sender, group)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        raise CallbackRejected(400, f"invalid field values: {fields}") from None
    return RobotMessage(sender, msg_id, tuple(events), conversation_id, group, unsupported)


def _events(
    doc: dict[str, Any], msg_type: str, msg_id: str, sender: str, group: bool
) -> tuple[list[InboundEvent], str]:
    common: dict[str, Any] = {"channel": CHANNEL, "sender": sender}
    first = _dedup("msg", msg_id)

    def text_event(text: str, dictated: bool = False) -> TextMessage:
        return TextMessage(**common, dedup_key=first, text=strip_mentions(text) if group else text, dictated=dictated)

    def media(kind: Any, code: str, dedup: str = first, filename: str = "") -> MediaMessage:
        return MediaMessage(**common, dedup_key=dedup, media_type=kind, media_id=code, filename=filename)

    if msg_type == "text":
        return [text_event(_str(_dict(doc, "text"), "content"))], ""
    if msg_type in ("picture", "file", "video", "audio"):
        content = _dict(doc, "content")
        code = _id(content, "downloadCode")
        if msg_type == "audio":
            recognition = _str(content, "recognition", required=False).strip()
            return ([text_event(recognition, dictated=True)] if recognition else [media("voice", code)]), ""
        kind = {"picture": "image", "file": "file", "video": "video"}[msg_type]
        # A file message's fileName: kept as the stored file's name (cleaned by the store), at most 200 characters.
        name = _str(content, "fileName", required=False)[:200] if msg_type == "file" else ""
        return [media(kind, code, filename=name)], ""
    if msg_type == "richText":
        parts = _dict(doc, "content").get("richText")
        if not isinstance(parts, list) or not parts:
            raise CallbackRejected(400, "richText is not a list of parts")
        texts: list[str] = []
        pictures: list[MediaMessage] = []
        for index, part in enumerate(parts):
            if not isinstance(part, dict):
                raise CallbackRejected(400, "richText part is not an object")
            if "downloadCode" in part:
                pictures.append(media("image", _id(part, "downloadCode"), _dedup("msg", f"{msg_id}:{index}")))
            elif "text" in part:
                texts.append(_str(part, "text"))
        text = "\n".join(t.strip() for t in texts if t.strip())
        events: list[InboundEvent] = []
        if text:
            events.append(text_event(text))
        events += pictures
        if not events:
            raise CallbackRejected(400, "richText without text or pictures")
        return events, ""
    return [], msg_type or "?"


def ref_from_out_track_id(out_track_id: str) -> str:
    """The card ref a DingTalk card's ``outTrackId`` stands for: the outbound side sends a card with
    ``outTrackId = card.ref``, so a valid ref is taken as is; anything else names no card of ours ("")."""
    if len(out_track_id) <= _MAX_REF and out_track_id.isprintable():
        return out_track_id
    return ""


def parse_card(doc: dict[str, Any], delivery: str = "") -> CardTap | Ignored:
    """Map a card callback to a CardAction; CallbackRejected(400) when it is malformed.

    ``delivery`` tells this callback from another tap of the same button: the signed timestamp of an HTTP callback
    (``x-ddpaas-signature-timestamp``, as WeCom's CreateTime in its tap keys), the Stream frame's ``messageId``. A
    callback carries no id of its own, so without it a person could not tap the same button of an unchanged card
    twice (完成 refused for a missing photo, then 完成 again once it is attached).

    ``{"type": "actionCallback", "outTrackId", "corpId", "userId", "content": "<JSON string>"}``, the content
    ``{"cardPrivateData": {"actionIds": […], "params": {"key": "<packed CallbackData>", …}}}``."""
    kind = _str(doc, "type")
    if kind != "actionCallback":
        return Ignored(f"card callback type {kind[:40]!r} not handled")
    out_track_id = _id(doc, "outTrackId")
    sender = _id(doc, "userId", limit=_MAX_SENDER)
    raw = doc.get("content")
    if not isinstance(raw, str):
        raise CallbackRejected(400, "field content is not a JSON string")
    content = _object(raw, "content")
    private = _dict(content, "cardPrivateData")
    params = private.get("params")
    if not isinstance(params, dict):
        raise CallbackRejected(400, "cardPrivateData.params missing or not an object")
    actions = private.get("actionIds", [])
    if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
        raise CallbackRejected(400, "cardPrivateData.actionIds is not a list of strings")
    key = params.get(KEY_PARAM)
    if not isinstance(key, str) or not key.strip():
        raise CallbackRejected(400, f"params.{KEY_PARAM} missing or not a string")
    digest = hashlib.sha256(
        json.dumps(params, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
    ).hexdigest()
    at = f":{delivery[:64]}" if delivery else ""
    dedup = _dedup("tap", f"{out_track_id}:{sender}:{','.join(actions)}:{digest}{at}")
    try:
        event = CardAction(
            channel=CHANNEL,
            sender=sender,
            dedup_key=dedup,
            payload=key,
            card_ref=ref_from_out_track_id(out_track_id),
        )
    except ValidationError:
        raise CallbackRejected(400, "invalid card callback values") from None
    return CardTap(event, out_track_id)
