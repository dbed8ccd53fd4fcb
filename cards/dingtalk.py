"""Cards on DingTalk: a ``Card`` as the ``cardParamMap`` of the shipped interactive card template
(``cards/dingtalk_template.json``, imported into the org's 卡片平台; docs/dingtalk.md).

DingTalk wants every ``cardParamMap`` value as a string of at most 1 KB (lists and objects JSON-encoded), so
fields and buttons travel as JSON arrays that the template loops over; a value that would pass the limit is cut
with an ellipsis (a field's value first, then whole fields from the end). A button's ``key`` is the packed
``CallbackData`` the tap sends back in ``cardPrivateData.params.key``.

Also the robot messages of the channel (``bot/channels/dingtalk/channel.py``): ``msgParam`` as a JSON string,
``sampleText`` parts, rich text as ``sampleMarkdown`` in DingTalk's small markdown subset (``rich_markdown``), the
no-template fallback's ``sampleActionCard``…``5`` (``action_card``), and ``out_track_id`` for a card's ref.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from cards.model import Card

# DingTalk's documented size of one cardParamMap value.
PARAM_MAX_BYTES = 1024
ELLIPSIS = "…"
# The template loops over the buttons; as many as WeCom shows (cards.wecom.MAX_BUTTONS: the product's cards are
# built for six, e.g. an escalation notice's 接手 转派 暂缓1小时 暂缓4小时 明早9点, a queue page's 打开 ×4 and 下一页).
MAX_BUTTONS = 6
# The tap's parameter holding the button key.
KEY_PARAM = "key"


def _bytes(value: str) -> int:
    return len(value.encode())


def cut(text: str, limit: int = PARAM_MAX_BYTES) -> str:
    """``text`` within ``limit`` UTF-8 bytes, cut on a character boundary with an ellipsis."""
    if _bytes(text) <= limit:
        return text
    room = limit - _bytes(ELLIPSIS)
    out = text.encode()[: max(0, room)].decode(errors="ignore")
    return out + ELLIPSIS


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _fields(card: Card) -> str:
    """The fields as a JSON array within the limit: long values cut to 200 bytes, then fields dropped from the end
    (the last one says how many are hidden)."""
    items = [{"label": cut(f.label, 60), "value": cut(f.value, 200)} for f in card.fields]
    while items and _bytes(_json(items)) > PARAM_MAX_BYTES:
        items.pop()
    return _json(items)


def _buttons(card: Card) -> str:
    items = [{"text": cut(b.text, 40), KEY_PARAM: b.key, "style": b.style} for b in card.buttons[:MAX_BUTTONS]]
    while items and _bytes(_json(items)) > PARAM_MAX_BYTES:
        items.pop()
    return _json(items)


def card_param_map(card: Card) -> dict[str, str]:
    """The template's variables for ``card``: every value a string within 1 KB."""
    return {
        "ref": card.ref,
        "title": cut(card.title, 200),
        "description": cut(card.description),
        "status": cut(card.status, 200),
        "tone": card.tone,
        "fields": _fields(card),
        "buttons": _buttons(card),
        # The template hides the button row on a settled card.
        "settled": "true" if not card.buttons else "false",
    }


# ---- robot messages (batchSend / groupMessages msgParam) ------------------------------------------------------

# DingTalk documents no byte limit for sampleText / sampleMarkdown (an over-long one is refused with
# ``invalidParameter.msgParam.tooLong``); these conservative sizes keep every part well inside what the apps show.
TEXT_MAX_BYTES = 4000
MARKDOWN_MAX_BYTES = 4000
# sampleActionCard (one button) … sampleActionCard5: at most five URL buttons.
ACTION_CARD_MAX_BUTTONS = 5
ACTION_TITLE_MAX_CHARS = 20
# The markdown title is what the chat list and the notification show.
MD_TITLE_MAX_CHARS = 40
# DingTalk markdown markup characters in data, as full-width look-alikes (it has no escape syntax).
_DT_MD_DATA = str.maketrans({"*": "＊", "#": "＃", "[": "［", "]": "］", "_": "＿", "`": "｀", "<": "＜", ">": "＞"})
_CONTINUED = "（续）"
# outTrackId: our own id of a card instance. DingTalk documents no charset or length; a ref of [0-9A-Za-z_-] within
# 128 characters is its own outTrackId (the inbound side reads a tap's outTrackId back as the card ref:
# bot/channels/dingtalk/parse.py); any other ref becomes a prefix plus 24 hex digits of its SHA-256 (taps on such a
# card are answered as stale: no ref of the product looks like that).
OUT_TRACK_ID_MAX = 128
_SAFE = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-")


def msg_param(value: dict[str, str]) -> str:
    """batchSend's ``msgParam``: the parameters as a JSON *string*."""
    return _json(value)


def out_track_id(ref: str) -> str:
    """The outTrackId of the card ``ref``: the same for every send and update of that card, different refs give
    different ids; a safe ref is its own id."""
    if not ref:
        raise ValueError("a card ref must not be empty")
    if len(ref) <= OUT_TRACK_ID_MAX and all(c in _SAFE for c in ref):
        return ref
    digest = hashlib.sha256(ref.encode()).hexdigest()[:24]
    prefix = "".join(c if c in _SAFE else "_" for c in ref)[: OUT_TRACK_ID_MAX - 3 - 1 - 24]
    return f"sh-{prefix}-{digest}"


def md_data(text: str) -> str:
    """Data (names, what someone typed) as DingTalk markdown text: markup characters made harmless, one line."""
    return " ".join(text.translate(_DT_MD_DATA).split())


def split_bytes(text: str, limit: int) -> list[str]:
    """``text`` in parts of at most ``limit`` UTF-8 bytes, cut between lines where possible (a longer line between
    characters); blank parts dropped."""
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for line in text.split("\n"):
        pieces = [line]
        if _bytes(line) > limit:
            pieces, data = [], line.encode()
            while data:
                piece = data[:limit].decode("utf-8", "ignore")
                pieces.append(piece)
                data = data[len(piece.encode()) :]
        for piece in pieces:
            n = _bytes(piece)
            if current and size + 1 + n > limit:
                parts.append("\n".join(current))
                current, size = [], 0
            size += n + (1 if current else 0)
            current.append(piece)
    if current:
        parts.append("\n".join(current))
    return [p for p in parts if p.strip()]


def _rich_span(span: Any) -> str:
    text = md_data(span.text)
    if not text:
        return " " if span.text[:1].isspace() else ""
    if span.bold or span.tone == "warn":
        text = f"**{text}**"
    before = " " if span.text[:1].isspace() else ""
    after = " " if span.text[-1:].isspace() else ""
    return before + text + after


def _rich_section(section: Any) -> list[str]:
    lines = [f"#### {md_data(section.title)}"] if section.title else []
    for line in section.lines:
        body = "".join(_rich_span(s) for s in line.spans).strip()
        lines.append(f"- {body}" if line.bullet else body)
    if section.table is not None:
        header = [md_data(h) for h in section.table.header]
        for row in section.table.rows:
            cells = [md_data(c) for c in row]
            if header:
                lines.append("- " + "，".join(f"{h}：{c}" for h, c in zip(header, cells, strict=False)))
            else:
                lines.append("- " + " | ".join(cells))
    return lines


def rich_markdown(rich: Any, limit_bytes: int = MARKDOWN_MAX_BYTES) -> list[tuple[str, str]]:
    """``cards.rich.RichText`` as DingTalk ``sampleMarkdown`` messages: (title, text) pairs of at most
    ``limit_bytes`` each. DingTalk markdown is a small subset (headings, bold, links, lists), so tones other than
    "warn" (bold) are dropped and tables become list lines. Whole sections per message where they fit; a longer
    one continues in the next message under its title with "（续）". Lines are separated by blank lines
    (DingTalk joins single newlines into one paragraph)."""
    title = cut(to_one_line(rich.title), MD_TITLE_MAX_CHARS * 3)
    head = f"### {md_data(rich.title)}"
    parts: list[list[str]] = [[head]]

    def fits(lines: list[str]) -> bool:
        return _bytes("\n\n".join(lines)) <= limit_bytes

    for section in rich.sections:
        lines = _rich_section(section)
        if fits([*parts[-1], *lines]):
            parts[-1] += lines
            continue
        if fits(lines) and len(parts[-1]) > 1:
            parts.append(list(lines))
            continue
        cont = (lines[0] if section.title else "####") + _CONTINUED
        for line in lines:
            line = cut(line, limit_bytes - _bytes(cont) - 2)
            if not fits([*parts[-1], line]):
                parts.append([cont])
            parts[-1].append(line)
    texts = ["\n\n".join(p).strip() for p in parts if "".join(p).strip()]
    return [(title if n == 0 else title + _CONTINUED, text) for n, text in enumerate(texts)]


def to_one_line(text: str) -> str:
    return " ".join(text.split())


def card_text(card: Card) -> str:
    """A card's body as DingTalk markdown (the action card fallback, a settled card sent as a message)."""
    lines = [f"### {md_data(card.title)}"]
    if card.description:
        lines.append(md_data(card.description))
    lines += [f"- {md_data(f.label)}：{md_data(f.value)}" for f in card.fields]
    if card.status:
        lines.append(f"**{md_data(card.status)}**")
    return cut("\n\n".join(lines), MARKDOWN_MAX_BYTES)


def action_card(card: Card, urls: list[str]) -> tuple[str, dict[str, str]]:
    """(msgKey, msgParam values) of the no-template fallback: ``card`` as a ``sampleActionCard`` (one button) …
    ``sampleActionCard5`` whose buttons open ``urls`` (one per button, in order; buttons past five are dropped).
    A card without buttons is a ``sampleMarkdown``."""
    title = cut(to_one_line(card.title), MD_TITLE_MAX_CHARS * 3)
    text = card_text(card)
    buttons = card.buttons[:ACTION_CARD_MAX_BUTTONS]
    if not buttons:
        return "sampleMarkdown", {"title": title, "text": text}
    labels = [to_one_line(b.text)[:ACTION_TITLE_MAX_CHARS] or "…" for b in buttons]
    if len(buttons) == 1:
        return "sampleActionCard", {"title": title, "text": text, "singleTitle": labels[0], "singleURL": urls[0]}
    param = {"title": title, "text": text}
    for n, (label, url) in enumerate(zip(labels, urls, strict=False), start=1):
        param[f"actionTitle{n}"] = label
        param[f"actionURL{n}"] = url
    return f"sampleActionCard{len(buttons)}", param
