"""Cards on DingTalk: a ``Card`` as the ``cardParamMap`` of the shipped interactive card template
(``cards/dingtalk_template.json``, imported into the org's 卡片平台; docs/dingtalk.md).

DingTalk wants every ``cardParamMap`` value as a string of at most 1 KB (lists and objects JSON-encoded), so
fields and buttons travel as JSON arrays that the template loops over; a value that would pass the limit is cut
with an ellipsis (a field's value first, then whole fields from the end). A button's ``key`` is the packed
``CallbackData`` the tap sends back in ``cardPrivateData.params.key``.
"""

from __future__ import annotations

import json
from typing import Any

from cards.model import Card

# DingTalk's documented size of one cardParamMap value.
PARAM_MAX_BYTES = 1024
ELLIPSIS = "…"
# The template shows at most this many buttons (the rest would not fit a phone's card width).
MAX_BUTTONS = 4
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
