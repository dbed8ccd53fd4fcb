"""WeCom renderer: neutral cards and texts → request bodies for message/send and message/update_template_card.

Every limit below is from the WeCom docs. The mirror (repo wxkingstar/doc-hub-mcp, folder wecom/) holds
  UPD = wecom/001-企业内部开发/002-服务端API/009-消息接收与发送/003-更新模版卡片消息.md   (path/94888)
whose button_interaction field table is the same as the send doc's; the send doc itself (发送应用消息,
https://developer.work.weixin.qq.com/document/path/90236) is not in the mirror, so send-only facts cite it directly.
"N 个字" limits are characters (len(str)); "字节" limits are UTF-8 bytes. The character limits are "建议"
(recommended): the client cuts longer text where it likes, so we cut first, with "…".
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from cards.model import Button, Card, CardField

# ---- limits ---------------------------------------------------------------------------------------------------

# 90236 text.content / markdown.content: "最长不超过2048个字节".
TEXT_MAX_BYTES = 2048
MARKDOWN_MAX_BYTES = 2048
# 90236 template_card.task_id: "同一个应用任务id不能重复，只能由数字、字母和“_-@”组成，最长128字节".
TASK_ID_MAX_BYTES = 128
# UPD main_title.title "建议不超过36个字", main_title.desc "建议不超过44个字".
TITLE_MAX_CHARS = 36
TITLE_DESC_MAX_CHARS = 44
# UPD sub_title_text "建议不超过160个字".
SUB_TITLE_MAX_CHARS = 160
# UPD horizontal_content_list "列表长度不超过6"; keyname "建议不超过5个字"; value "建议不超过30个字".
MAX_HORIZONTAL = 6
KEYNAME_MAX_CHARS = 5
VALUE_MAX_CHARS = 30
# UPD button_list "列表长度不超过6"; text "建议不超过10个字"; key "最长支持1024字节，不可重复"; style "目前可填1~4".
MAX_BUTTONS = 6
BUTTON_TEXT_MAX_CHARS = 10
BUTTON_KEY_MAX_BYTES = 1024
# UPD source.desc "建议不超过20个字"; desc_color 0 grey, 1 black, 2 red, 3 green.
SOURCE_DESC_MAX_CHARS = 20
# 90236 touser "最多支持1000个"; UPD userids "最多支持1000个".
MAX_RECIPIENTS = 1000
# 90236 duplicate_check_interval: "默认1800s，最大不超过4小时".
DUPLICATE_CHECK_MAX_SECONDS = 4 * 3600

ELLIPSIS = "…"
# The docs show the four button styles only as a picture; 1 is the default ("不填或错填默认1").
BUTTON_STYLE = {"primary": 1, "default": 2, "danger": 3}
TONE_COLOR = {"info": 1, "success": 3, "warning": 2, "muted": 0}
# A settled card keeps one greyed-out button (replace_text); its key is never delivered, since it cannot be tapped.
SETTLED_KEY = "settled"
SETTLED_FALLBACK = "✓"

_TASK_ID_SAFE = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-")
# "@" never appears in an escaped id except before two upper-case hex digits, so "@h" marks a hashed id.
_HASH_MARK = "@h"
_HASH_HEX = 24
_SPACES = re.compile(r"\s+")


# ---- text helpers ---------------------------------------------------------------------------------------------


def clip_chars(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the last one an ellipsis when anything was cut."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def clip_bytes(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` UTF-8 bytes (never inside a character), ending in an ellipsis when cut."""
    data = text.encode()
    if len(data) <= limit:
        return text
    room = limit - len(ELLIPSIS.encode())
    return data[:room].decode("utf-8", "ignore") + ELLIPSIS


def _one_line(text: str, limit: int) -> str:
    return clip_chars(_SPACES.sub(" ", text).strip(), limit)


def split_text(text: str, limit_bytes: int = TEXT_MAX_BYTES) -> list[str]:
    """``text`` as parts of at most ``limit_bytes`` UTF-8 bytes, cut between lines where possible.

    A line longer than the limit is cut between characters. Blank parts are dropped, so "" gives [].
    """
    if limit_bytes < 4:
        raise ValueError("limit_bytes must leave room for one UTF-8 character (4 bytes)")
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for line in text.split("\n"):
        for piece in _cut_line(line, limit_bytes):
            n = len(piece.encode())
            if current and size + 1 + n > limit_bytes:
                parts.append("\n".join(current))
                current, size = [], 0
            size += n + (1 if current else 0)
            current.append(piece)
    if current:
        parts.append("\n".join(current))
    return [p for p in parts if p.strip()]


def split_markdown(text: str, limit_bytes: int = MARKDOWN_MAX_BYTES) -> list[str]:
    """``text`` as markdown parts of at most ``limit_bytes`` bytes, cut between lines (see ``split_text``)."""
    return split_text(text, limit_bytes)


def _cut_line(line: str, limit: int) -> list[str]:
    data = line.encode()
    if len(data) <= limit:
        return [line]
    pieces = []
    while data:
        # Decoding a prefix with "ignore" drops only a character cut in half at its end.
        piece = data[:limit].decode("utf-8", "ignore")
        pieces.append(piece)
        data = data[len(piece.encode()) :]
    return pieces


# ---- task ids -------------------------------------------------------------------------------------------------


def task_id_for(ref: str) -> str:
    """The WeCom task_id for a card ref: ``[0-9A-Za-z_-@]``, at most 128 bytes, different refs → different ids.

    Safe characters stay; any other character becomes "@" + its UTF-8 bytes in upper-case hex. An id that would
    be longer than 128 bytes keeps a prefix and ends in "@h" + 24 hex digits of the ref's SHA-256.
    """
    if not ref:
        raise ValueError("a card ref must not be empty")
    encoded = "".join(c if c in _TASK_ID_SAFE else "".join(f"@{b:02X}" for b in c.encode()) for c in ref)
    if len(encoded) <= TASK_ID_MAX_BYTES:
        return encoded
    digest = hashlib.sha256(ref.encode()).hexdigest()[:_HASH_HEX]
    return encoded[: TASK_ID_MAX_BYTES - len(_HASH_MARK) - _HASH_HEX] + _HASH_MARK + digest


# ---- template cards -------------------------------------------------------------------------------------------


def render_template_card(card: Card, *, source: str = "") -> dict[str, Any]:
    """The ``template_card`` object (card_type button_interaction) for ``card``.

    Fields beyond the sixth are folded into sub_title_text as "label：value" lines (cut at 160 characters with
    "…"). Buttons beyond the sixth and repeated keys are dropped. A card without buttons shows one greyed-out
    button reading its status (``replace_text``), since button_interaction requires button_list.
    """
    tc: dict[str, Any] = {
        "card_type": "button_interaction",
        "task_id": task_id_for(card.ref),
        "main_title": _main_title(card),
    }
    if source:
        tc["source"] = {"desc": _one_line(source, SOURCE_DESC_MAX_CHARS), "desc_color": TONE_COLOR[card.tone]}
    sub_title = _sub_title(card.description, card.fields[MAX_HORIZONTAL:])
    if sub_title:
        tc["sub_title_text"] = sub_title
    if card.fields:
        tc["horizontal_content_list"] = [_horizontal(f) for f in card.fields[:MAX_HORIZONTAL]]
    if card.buttons:
        tc["button_list"] = _buttons(card.buttons)
    else:
        label = _one_line(card.status, BUTTON_TEXT_MAX_CHARS) or SETTLED_FALLBACK
        tc["button_list"] = [{"text": label, "style": BUTTON_STYLE["default"], "key": SETTLED_KEY}]
        tc["replace_text"] = label
    return tc


def _main_title(card: Card) -> dict[str, str]:
    title = {"title": _one_line(card.title, TITLE_MAX_CHARS) or SETTLED_FALLBACK}
    if card.status.strip():
        title["desc"] = _one_line(card.status, TITLE_DESC_MAX_CHARS)
    return title


def _sub_title(description: str, overflow: list[CardField]) -> str:
    lines = [description.strip()] if description.strip() else []
    lines += [f"{_SPACES.sub(' ', f.label).strip()}：{_SPACES.sub(' ', f.value).strip()}" for f in overflow]
    return clip_chars("\n".join(lines), SUB_TITLE_MAX_CHARS)


def _horizontal(field: CardField) -> dict[str, str]:
    return {
        "keyname": _one_line(field.label, KEYNAME_MAX_CHARS) or "-",
        "value": _one_line(field.value, VALUE_MAX_CHARS),
    }


def _buttons(buttons: list[Button]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    full: list[str] = []
    for b in buttons:
        if not b.key or len(b.key.encode()) > BUTTON_KEY_MAX_BYTES:
            raise ValueError(f"button {b.text!r}: key must be 1..{BUTTON_KEY_MAX_BYTES} bytes")
        if b.key in seen:
            continue  # WeCom rejects repeated keys; a second button with the same payload would do the same thing
        seen.add(b.key)
        full.append(_SPACES.sub(" ", b.text).strip())
        out.append({"text": "", "style": BUTTON_STYLE[b.style], "key": b.key})
        if len(out) == MAX_BUTTONS:
            break
    for button, text in zip(out, _button_texts(full), strict=True):
        button["text"] = text
    return out


def _button_texts(texts: list[str]) -> list[str]:
    """Each text cut to the button limit; texts that would read the same once cut (hospitals that differ only at
    the end, 浙江大学医学院附属第一医院 / 第二医院) show what tells them apart instead: "…第二医院"."""
    cut = [clip_chars(t, BUTTON_TEXT_MAX_CHARS) or "·" for t in texts]
    for shown in {c for c in cut if cut.count(c) > 1}:
        same = [i for i, c in enumerate(cut) if c == shown]
        group = [texts[i] for i in same]
        prefix = next((n for n, chars in enumerate(zip(*group, strict=False)) if len(set(chars)) > 1), None)
        if prefix is None:
            continue  # one reads as the start of the other: nothing to tell them apart by within the limit
        for i in same:
            rest = texts[i][prefix:]
            if rest and len(texts[i]) > BUTTON_TEXT_MAX_CHARS:
                cut[i] = ELLIPSIS + clip_chars(rest, BUTTON_TEXT_MAX_CHARS - 1)
    return cut


# ---- request bodies -------------------------------------------------------------------------------------------


def render_send_card(
    card: Card, *, touser: list[str], agent_id: int, duplicate_check_seconds: int | None
) -> dict[str, Any]:
    """The message/send body for ``card`` (template_card, button_interaction)."""
    return _send(touser, agent_id, duplicate_check_seconds, "template_card", render_template_card(card))


def render_send_text(
    text: str, *, touser: list[str], agent_id: int, duplicate_check_seconds: int | None
) -> dict[str, Any]:
    """The message/send body for a text message; use ``split_text`` first, longer text is cut with "…"."""
    return _send(touser, agent_id, duplicate_check_seconds, "text", {"content": _content(text, TEXT_MAX_BYTES)})


def render_send_markdown(
    text: str, *, touser: list[str], agent_id: int, duplicate_check_seconds: int | None
) -> dict[str, Any]:
    """The message/send body for a markdown message; use ``split_markdown`` first, longer text is cut with "…"."""
    content = {"content": _content(text, MARKDOWN_MAX_BYTES)}
    return _send(touser, agent_id, duplicate_check_seconds, "markdown", content)


def render_send_media(
    media_type: str, media_id: str, *, touser: list[str], agent_id: int, duplicate_check_seconds: int | None
) -> dict[str, Any]:
    """The message/send body for an image/file/voice/video message by ``media_id`` (a MediaId of this app, valid
    3 days; 90236: image.media_id "图片媒体文件id，可以调用上传临时素材接口获取")."""
    if media_type not in ("image", "file", "voice", "video") or not media_id:
        raise ValueError("a media message needs a media type and a media_id")
    return _send(touser, agent_id, duplicate_check_seconds, media_type, {"media_id": media_id})


def render_update(card: Card, *, userids: list[str], agent_id: int, response_code: str) -> dict[str, Any]:
    """The message/update_template_card body that replaces the card for ``userids`` with ``card``'s state.

    A full replacement rather than ``button.replace_name``: it shows the new title, fields and status, and a
    settled card (no buttons) keeps only a greyed-out status button. The card keeps its task, so no task_id
    (the update doc lists none; the response_code names the card).
    """
    if not response_code:
        raise ValueError("an update needs a response_code")
    template_card = render_template_card(card)
    del template_card["task_id"]
    return {
        "userids": _recipients(userids),
        "agentid": agent_id,
        "response_code": response_code,
        "template_card": template_card,
    }


def _send(
    touser: list[str], agent_id: int, duplicate_check_seconds: int | None, msgtype: str, content: dict[str, Any]
) -> dict[str, Any]:
    body: dict[str, Any] = {"touser": "|".join(_recipients(touser)), "msgtype": msgtype, "agentid": agent_id}
    body[msgtype] = content
    if duplicate_check_seconds:
        body["enable_duplicate_check"] = 1
        body["duplicate_check_interval"] = max(1, min(duplicate_check_seconds, DUPLICATE_CHECK_MAX_SECONDS))
    return body


def _recipients(userids: list[str]) -> list[str]:
    if not userids:
        raise ValueError("no recipients")
    if len(userids) > MAX_RECIPIENTS:
        raise ValueError(f"{len(userids)} recipients, WeCom takes at most {MAX_RECIPIENTS} per call")
    return list(userids)


def _content(text: str, limit: int) -> str:
    if not text.strip():
        raise ValueError("WeCom rejects an empty message (errcode 44004)")
    return clip_bytes(text, limit)


# Zero-width characters (rendered as nothing by WeCom clients) used as base-4 digits.
_ZW_DIGITS = "\u200b\u200c\u200d\u2060"
DEDUP_TAG_MAX_BYTES = 3 * 48


def dedup_tag(key: str) -> str:
    """An invisible suffix that makes a text unique to one outbox message.

    WeCom's ``enable_duplicate_check`` compares content: with the tag, a resend after a crash matches only its own
    earlier copy, never an identical but separate reply (帮助 asked twice), which must still arrive.
    """
    number = int.from_bytes(key.encode(), "big")
    digits = []
    while number:
        number, rest = divmod(number, 4)
        digits.append(_ZW_DIGITS[rest])
    return "".join(reversed(digits))[: DEDUP_TAG_MAX_BYTES // 3]


def strip_dedup_tag(text: str) -> str:
    """The text as a person sees it."""
    return text.rstrip(_ZW_DIGITS)
