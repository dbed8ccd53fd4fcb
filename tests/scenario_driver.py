"""One driver for scenario tests on every channel (issue 10 §6): a person sends text, taps a button on a card,
shares a location; the test reads what that person received. A scenario written against ``Chat`` runs on the
console and on WeCom alike (``tests/scenarios/conftest.py`` parametrizes the channel); a third channel is one more
class here.

What a person sees is reduced to what both channels show: texts in order, and cards as ``SeenCard`` — title,
status line, fields (label → value), the buttons still tappable — in their current state (updates applied).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Protocol

from cards.wecom import SETTLED_KEY
from tests.console_driver import ConsoleUser


@dataclass(frozen=True)
class SeenCard:
    """A card as its recipient sees it now."""

    ref: str
    title: str
    status: str
    fields: dict[str, str]
    buttons: list[str]
    # Each button's payload key (what a forged tap sends).
    keys: dict[str, str] = field(default_factory=dict)


class Chat(Protocol):
    """One person talking to the bot on one channel."""

    user_id: str
    channel: str

    async def say(self, text: str) -> None:
        """Type ``text`` and let the bot handle it (and deliver what it sent)."""
        ...

    async def tap(self, label: str, card: SeenCard | None = None) -> None:
        """Tap the button labelled ``label`` on ``card`` (default: the newest card that shows it)."""
        ...

    async def forge_tap(self, key: str, card: SeenCard) -> None:
        """Send a tap with button key ``key`` on ``card``, although this person never received it (attackers)."""
        ...

    async def location(self, latitude: float, longitude: float, label: str = "") -> None: ...

    async def texts(self) -> list[str]:
        """Every text this person received, oldest first."""
        ...

    async def new_texts(self) -> list[str]:
        """The texts received since the last call of ``new_texts``."""
        ...

    async def cards(self) -> list[SeenCard]:
        """Every card this person received, in the order they arrived, each in its current state."""
        ...


async def card_with(chat: Chat, label: str) -> SeenCard:
    """The newest card of ``chat`` that shows a ``label`` button."""
    for card in reversed(await chat.cards()):
        if label in card.buttons:
            return card
    raise AssertionError(f"{chat.user_id} has no card with a {label!r} button: {await chat.cards()}")


async def last_card(chat: Chat) -> SeenCard:
    cards = await chat.cards()
    assert cards, f"{chat.user_id} received no card"
    return cards[-1]


class _Seen:
    """``new_texts`` on top of a driver's ``texts``."""

    _texts_seen = 0

    async def texts(self) -> list[str]:
        raise NotImplementedError

    async def new_texts(self) -> list[str]:
        texts = await self.texts()
        new, self._texts_seen = texts[self._texts_seen :], len(texts)
        return new


# ---- console ----------------------------------------------------------------------------------------------------


class ConsoleChat(_Seen):
    """The console channel through its HTTP API (``ConsoleUser``)."""

    channel = "console"

    def __init__(self, user: ConsoleUser) -> None:
        self.user = user
        self.user_id = user.user_id

    async def say(self, text: str) -> None:
        await self.user.send(text)

    async def tap(self, label: str, card: SeenCard | None = None) -> None:
        await self.user.refresh()
        card = card or await card_with(self, label)
        await self.user.tap(label, card.ref)

    async def forge_tap(self, key: str, card: SeenCard) -> None:
        await self.user.post("/console/api/action", {"client_id": secrets.token_hex(8), "payload": key})

    async def location(self, latitude: float, longitude: float, label: str = "") -> None:
        await self.user.location(latitude, longitude, label)

    async def texts(self) -> list[str]:
        await self.user.refresh()
        return [i["text"] for i in self.user.items if i.get("from") == "bot" and "text" in i]

    async def cards(self) -> list[SeenCard]:
        await self.user.refresh()
        current = self.user.cards()
        order = list(dict.fromkeys(i["card"]["ref"] for i in self.user.items if "card" in i))
        return [_console_card(current[ref]) for ref in order]


def _console_card(card: dict[str, Any]) -> SeenCard:
    return SeenCard(
        ref=card["ref"],
        title=card["title"],
        status=card.get("status") or "",
        fields={f["label"]: f["value"] for f in card.get("fields", [])},
        buttons=[b["text"] for b in card.get("buttons", [])],
        keys={b["text"]: b["key"] for b in card.get("buttons", [])},
    )


# ---- WeCom ------------------------------------------------------------------------------------------------------


class WeComChat(_Seen):
    """WeCom through encrypted, signed callbacks into the bot's endpoint; what arrived read from the fake API
    (``tests.channels.wecom.conftest.WeComUser``). The WeCom userid is the org user id (as in the demo org)."""

    channel = "wecom"

    def __init__(self, user: Any) -> None:
        self.user = user
        self.user_id = user.userid

    async def say(self, text: str) -> None:
        assert await self.user.send(text) == 200

    async def tap(self, label: str, card: SeenCard | None = None) -> None:
        card = card or await card_with(self, label)
        await self.user.tap({"task_id": card.ref}, label)

    async def forge_tap(self, key: str, card: SeenCard) -> None:
        signer, fake = self.user.signer, self.user.fake
        code = f"forged-{secrets.token_hex(6)}"
        inner = signer.card_event(self.user_id, key, card.ref, code, self.user.now())
        del fake  # the fake never issued this code: an update with it is refused, as WeCom would
        status, _ = await self.user.deliver(inner)
        assert status == 200

    async def location(self, latitude: float, longitude: float, label: str = "") -> None:
        assert await self.user.location(latitude, longitude, label) == 200

    async def texts(self) -> list[str]:
        return list(self.user.texts())

    async def cards(self) -> list[SeenCard]:
        seen: list[SeenCard] = []
        for sent in dict((c["task_id"], c) for c in self.user.cards()).values():
            seen.append(_wecom_card(sent["task_id"], self.user.current(sent)))
        return seen


def _wecom_card(task_id: str, tc: dict[str, Any]) -> SeenCard:
    fields = {h["keyname"]: h["value"] for h in tc.get("horizontal_content_list", [])}
    for line in (tc.get("sub_title_text") or "").splitlines():
        label, sep, value = line.partition("：")
        if sep:
            fields.setdefault(label, value)
    buttons = [b for b in tc.get("button_list", []) if b.get("key") != SETTLED_KEY and not tc.get("replace_text")]
    title = tc.get("main_title", {})
    return SeenCard(
        ref=task_id,
        title=title.get("title", ""),
        status=title.get("desc", "") or tc.get("replace_text", ""),
        fields=fields,
        buttons=[b["text"] for b in buttons],
        keys={b["text"]: b["key"] for b in buttons},
    )
