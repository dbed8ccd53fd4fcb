"""Decrypted WeCom callback XML → neutral inbound event (or ``Ignored``).

Formats: https://developer.work.weixin.qq.com/document/path/90239 (messages) and /90240 (events, incl.
template_card_event). Dedup keys: ``msg:<MsgId>`` for messages, ``evt:<user>:<CreateTime>:<Event>:<EventKey>`` for
events (events carry no MsgId), and one ``enter`` per user and org-local day so the welcome is shown at most daily.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from xml.parsers import expat

from pydantic import ValidationError

from bot.channels.wecom.crypto import CallbackRejected
from bot.core.events import CardAction, EnterChat, InboundEvent, LocationShared, MediaMessage, TextMessage

CHANNEL = "wecom"
_DIGITS = re.compile(r"[0-9]{1,20}")
# WeCom userids are at most 64 bytes; the inbound_events.sender column holds 64.
_MAX_SENDER = 64
# inbound_events.dedup_key holds 200 characters; longer keys (button keys go up to 1024 bytes) are hashed.
_MAX_DEDUP = 200
MediaType = Literal["image", "file", "voice", "video"]
# File messages are not in the self-built app docs but arrive like the others, with a MediaId.
_MEDIA_TYPES: dict[str, MediaType] = {"image": "image", "voice": "voice", "video": "video", "file": "file"}


@dataclass(frozen=True)
class Ignored:
    """A valid callback we do not act on (menu clicks, subscribe, another app's events, …)."""

    reason: str


def _refuse_dtd(*_args: object) -> None:
    raise CallbackRejected(400, "XML declares a DTD or entities")


class _DictBuilder:
    """expat handlers that build what ``xmltodict.parse`` would (attributes as ``@name``, mixed text as ``#text``,
    whitespace stripped, repeated children as lists, ``force_list`` names always lists), without its generality."""

    __slots__ = ("data", "force_list", "item", "stack")

    def __init__(self, force_list: tuple[str, ...]) -> None:
        self.force_list = force_list
        self.stack: list[tuple[dict[str, Any] | None, list[str]]] = []
        self.item: dict[str, Any] | None = None
        self.data: list[str] = []

    def start(self, _name: str, attrs: list[str]) -> None:
        self.stack.append((self.item, self.data))
        self.item = {"@" + attrs[i]: attrs[i + 1] for i in range(0, len(attrs), 2)} if attrs else None
        self.data = []

    def chars(self, text: str) -> None:
        self.data.append(text)

    def end(self, name: str) -> None:
        text = ("".join(self.data).strip() or None) if self.data else None
        item = self.item
        self.item, self.data = self.stack.pop()
        if item is not None:
            if text:
                item["#text"] = text
            self._push(name, item)
        else:
            self._push(name, text)

    def _push(self, key: str, value: Any) -> None:
        parent = self.item
        if parent is None:
            parent = self.item = {}
        if key in parent:
            old = parent[key]
            if isinstance(old, list):
                old.append(value)
            else:
                parent[key] = [old, value]
        else:
            parent[key] = [value] if key in self.force_list else value


def parse_xml(text: str, force_list: tuple[str, ...] = ()) -> dict[str, Any]:
    """The children of the ``<xml>`` root as a dict; CallbackRejected(400) for DTDs, entities or bad XML.

    pyexpat with DOCTYPE and entity declarations refused (defusedxml's forbid_dtd rule); an entity reference
    without a declaration is an expat error. The dict has the shape ``xmltodict.parse`` gives.
    """
    builder = _DictBuilder(force_list)
    parser = expat.ParserCreate("utf-8")
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.ordered_attributes = True
    parser.buffer_text = True
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.chars
    try:
        parser.Parse(text, True)
    except CallbackRejected:
        raise
    except (expat.ExpatError, ValueError):
        raise CallbackRejected(400, "malformed XML") from None
    doc = builder.item
    root = doc.get("xml") if isinstance(doc, dict) else None
    if not isinstance(root, dict):
        raise CallbackRejected(400, "XML root is not <xml> with children")
    return root


def _text(doc: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = doc.get(key)
    if value is None:
        if required:
            raise CallbackRejected(400, f"missing field {key}")
        return ""
    if not isinstance(value, str):
        raise CallbackRejected(400, f"field {key} is not a single text value")
    return value


def _digits(doc: dict[str, Any], key: str) -> str:
    value = _text(doc, key).strip()
    if not _DIGITS.fullmatch(value):
        raise CallbackRejected(400, f"field {key} is not an integer")
    return str(int(value))


def _optional_number(doc: dict[str, Any], key: str) -> float | None:
    return _number(doc, key) if _text(doc, key, required=False).strip() else None


def _number(doc: dict[str, Any], key: str) -> float:
    raw = _text(doc, key).strip()
    try:
        value = float(raw)
    except ValueError:
        raise CallbackRejected(400, f"field {key} is not a number") from None
    if not math.isfinite(value):
        raise CallbackRejected(400, f"field {key} is not a finite number")
    return value


def _sender(doc: dict[str, Any]) -> str:
    sender = _text(doc, "FromUserName").strip()
    if not sender or len(sender) > _MAX_SENDER:
        raise CallbackRejected(400, "FromUserName empty or too long")
    return sender


def _event_dedup(sender: str, create_time: str, event: str, key: str) -> str:
    dedup = f"evt:{sender}:{create_time}:{event}:{key}"
    if len(dedup) <= _MAX_DEDUP:
        return dedup
    return f"evt:{sender}:{create_time}:{event}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def _selected(doc: dict[str, Any]) -> dict[str, list[str]]:
    """``SelectedItems/SelectedItem/{QuestionKey, OptionIds/OptionId}`` of vote and multiple-choice cards."""
    items = doc.get("SelectedItems")
    if items is None:
        return {}
    if not isinstance(items, dict):
        raise CallbackRejected(400, "SelectedItems is not a list of items")
    selected: dict[str, list[str]] = {}
    for item in items.get("SelectedItem") or []:
        if not isinstance(item, dict):
            raise CallbackRejected(400, "SelectedItem is not an element")
        options = item.get("OptionIds")
        if options is not None and not isinstance(options, dict):
            raise CallbackRejected(400, "OptionIds is not a list of options")
        ids = (options or {}).get("OptionId") or []
        if not all(isinstance(i, str) for i in ids):
            raise CallbackRejected(400, "OptionId is not text")
        selected[_text(item, "QuestionKey")] = list(ids)
    return selected


def _message(doc: dict[str, Any], msg_type: str) -> InboundEvent | Ignored:
    if msg_type not in ("text", "location", *_MEDIA_TYPES):
        return Ignored(f"message type {msg_type or '?'} not handled")
    sender = _sender(doc)
    _digits(doc, "CreateTime")
    common: dict[str, Any] = {"channel": CHANNEL, "sender": sender, "dedup_key": "msg:" + _digits(doc, "MsgId")}
    if msg_type == "text":
        return TextMessage(**common, text=_text(doc, "Content"))
    if msg_type == "location":
        # Location_X is the latitude, Location_Y the longitude; Scale is the map zoom, not a precision.
        return LocationShared(
            **common,
            latitude=_number(doc, "Location_X"),
            longitude=_number(doc, "Location_Y"),
            label=_text(doc, "Label", required=False),
        )
    return MediaMessage(**common, media_type=_MEDIA_TYPES[msg_type], media_id=_text(doc, "MediaId"))


def _event(doc: dict[str, Any], local_date: Callable[[int], str]) -> InboundEvent | Ignored:
    event = _text(doc, "Event").strip()
    if event not in ("LOCATION", "enter_agent", "template_card_event"):
        return Ignored(f"event {event or '?'} not handled")
    sender = _sender(doc)
    create_time = _digits(doc, "CreateTime")
    key = _text(doc, "EventKey", required=False)
    if event == "template_card_event":
        # The same button key can stand on two cards (a card re-sent with a fresh task_id): the card is part of
        # the tap's identity, so two taps in one second on two cards are two events.
        key = f"{_text(doc, 'TaskId', required=False)}/{key}"
    dedup = _event_dedup(sender, create_time, event, key)
    if event == "LOCATION":
        return LocationShared(
            channel=CHANNEL,
            sender=sender,
            dedup_key=dedup,
            latitude=_number(doc, "Latitude"),
            longitude=_number(doc, "Longitude"),
            precision_m=_optional_number(doc, "Precision"),
            passive=True,
        )
    if event == "enter_agent":
        return EnterChat(channel=CHANNEL, sender=sender, dedup_key=f"enter:{sender}:{local_date(int(create_time))}")
    return CardAction(
        channel=CHANNEL,
        sender=sender,
        dedup_key=dedup,
        payload=_text(doc, "EventKey"),
        card_ref=_text(doc, "TaskId", required=False),
        selected=_selected(doc),
    )


def parse_callback(
    xml: str, *, corp_id: str, agent_id: int, local_date: Callable[[int], str]
) -> InboundEvent | Ignored:
    """Map one decrypted callback to an event; CallbackRejected(400) when it is malformed.

    Callbacks addressed to another corp or app (ToUserName, AgentID) are ignored. ``local_date`` maps a unix time
    to the org-local ``YYYY-MM-DD``.
    """
    return parse_callback_and_code(xml, corp_id=corp_id, agent_id=agent_id, local_date=local_date)[0]


def parse_callback_and_code(
    xml: str, *, corp_id: str, agent_id: int, local_date: Callable[[int], str]
) -> tuple[InboundEvent | Ignored, str]:
    """``parse_callback``, and the ResponseCode a template_card_event carries ("" for anything else): the code
    stays in this channel (recorded at ingest, spent on the next update of that card), never in the event."""
    doc = parse_xml(xml, force_list=("SelectedItem", "OptionId"))
    event = _parse_doc(doc, corp_id=corp_id, agent_id=agent_id, local_date=local_date)
    code = _text(doc, "ResponseCode", required=False).strip() if isinstance(event, CardAction) else ""
    return event, code


def _parse_doc(
    doc: dict[str, Any], *, corp_id: str, agent_id: int, local_date: Callable[[int], str]
) -> InboundEvent | Ignored:
    msg_type = _text(doc, "MsgType").strip()
    if _text(doc, "ToUserName", required=False).strip() not in ("", corp_id):
        return Ignored("callback for another corp")
    if "AgentID" in doc and int(_digits(doc, "AgentID")) != agent_id:
        return Ignored("callback for another agent")
    try:
        if msg_type == "event":
            return _event(doc, local_date)
        return _message(doc, msg_type)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        raise CallbackRejected(400, f"invalid field values: {fields}") from None
