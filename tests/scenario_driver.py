"""One driver for scenario tests on every channel (issue 10 §6): a person sends text, taps a button on a card,
shares a location, sends a photo; the test reads what that person received. A scenario written against ``Chat``
runs on the console and on WeCom alike (``tests/scenarios/conftest.py`` parametrizes the channel); a third channel
is one more class here.

What a person sees is reduced to what both channels show: texts in order, and cards as ``SeenCard`` — title,
status line, fields (label → value), the buttons still tappable — in their current state (updates applied).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any, Protocol

from cards.wecom import ELLIPSIS, SETTLED_KEY, strip_dedup_tag
from tests.console_driver import ConsoleUser

# WeCom markdown's markup (cards/rich.py): bold and font colours.
_MARKUP = re.compile(r"\*\*|<font color=\"\w+\">|</font>")
# What a photo sent through the console carries (the WeCom driver sends a MediaId instead).
JPEG = b"\xff\xd8\xff\xe0 a photo"


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

    async def tap_stale(self, label: str, card: SeenCard) -> None:
        """Tap ``label`` as it was on ``card`` when that snapshot was taken: a screen (or a tap in flight) that has
        not caught up with the card's update."""
        ...

    async def location(self, latitude: float, longitude: float, label: str = "") -> None: ...

    async def image(self, name: str = "photo.jpg") -> None:
        """Send a photo (the console uploads a file; WeCom sends an image message with a MediaId)."""
        ...

    async def texts(self) -> list[str]:
        """Every text this person received, oldest first (a photo or file received is not a text: ``media``)."""
        ...

    async def media(self) -> list[str]:
        """The kind ("image", "file", …) of every photo or file this person received, oldest first."""
        ...

    async def new_texts(self) -> list[str]:
        """The texts received since the last call of ``new_texts``."""
        ...

    async def cards(self) -> list[SeenCard]:
        """Every card this person received, in the order they arrived, each in its current state."""
        ...

    async def rich(self) -> list[str]:
        """Every formatted message (a digest) this person received, oldest first, as read without its markup: the
        console's plain text of each, each WeCom markdown part (a long one arrives in several)."""
        ...


def shown_as(card: SeenCard, label: str) -> str | None:
    """The text of ``card``'s button for ``label``: the label itself, or the one button that shows it cut (WeCom cuts
    button texts to 10 characters, keeping what tells similar ones apart: "…第二医院"); None if no single one."""
    if label in card.buttons:
        return label
    cut = [b for b in card.buttons if ELLIPSIS in b and _cut_from(b, label)]
    return cut[0] if len(cut) == 1 else None


def _cut_from(shown: str, label: str) -> bool:
    at = 0
    for part in shown.split(ELLIPSIS):
        found = label.find(part, at)
        if found < 0:
            return False
        at = found + len(part)
    return (shown.startswith(ELLIPSIS) or label.startswith(shown.split(ELLIPSIS)[0])) and (
        shown.endswith(ELLIPSIS) or label.endswith(shown.split(ELLIPSIS)[-1])
    )


def button(card: SeenCard, label: str) -> str:
    text = shown_as(card, label)
    assert text is not None, f"card {card.ref} shows no single {label!r} button: {card.buttons}"
    return text


async def card_with(chat: Chat, label: str) -> SeenCard:
    """The newest card of ``chat`` that shows a ``label`` button."""
    for card in reversed(await chat.cards()):
        if shown_as(card, label) is not None:
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
        await self.user.tap(button(card, label), card.ref)

    async def forge_tap(self, key: str, card: SeenCard) -> None:
        await self.user.post("/console/api/action", {"client_id": secrets.token_hex(8), "payload": key})

    async def tap_stale(self, label: str, card: SeenCard) -> None:
        body = {"client_id": secrets.token_hex(8), "payload": card.keys[button(card, label)], "card_ref": card.ref}
        await self.user.post("/console/api/action", body)

    async def location(self, latitude: float, longitude: float, label: str = "") -> None:
        await self.user.location(latitude, longitude, label)

    async def image(self, name: str = "photo.jpg") -> None:
        await self.user.upload(name, JPEG, "image/jpeg")

    async def texts(self) -> list[str]:
        await self.user.refresh()
        # A photo passed on is a feed item with a caption; what the person sees there is the photo (``media``).
        return [i["text"] for i in self.user.items if i.get("from") == "bot" and "text" in i and "media_url" not in i]

    async def media(self) -> list[str]:
        await self.user.refresh()
        return [str(i["media_type"]) for i in self.user.items if i.get("from") == "bot" and "media_url" in i]

    async def rich(self) -> list[str]:
        await self.user.refresh()
        return [str(i["text"]) for i in self.user.items if i.get("kind") == "rich"]

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
        await self.user.tap({"task_id": card.ref}, button(card, label))

    async def forge_tap(self, key: str, card: SeenCard) -> None:
        signer, fake = self.user.signer, self.user.fake
        code = f"forged-{secrets.token_hex(6)}"
        inner = signer.card_event(self.user_id, key, card.ref, code, self.user.now())
        del fake  # the fake never issued this code: an update with it is refused, as WeCom would
        status, _ = await self.user.deliver(inner)
        assert status == 200

    async def tap_stale(self, label: str, card: SeenCard) -> None:
        # WeCom issues a code for every tap, also on a copy that was updated while the tap was on its way.
        code = self.user.fake.issue_response_code(card.ref, self.user_id)
        inner = self.user.signer.card_event(
            self.user_id, card.keys[button(card, label)], card.ref, code, self.user.now()
        )
        assert await self.user.deliver(inner) == (200, b"")

    async def location(self, latitude: float, longitude: float, label: str = "") -> None:
        assert await self.user.location(latitude, longitude, label) == 200

    async def image(self, name: str = "photo.jpg") -> None:
        # A photo the member took: WeCom holds it (media/get serves it for 3 days), the callback names its MediaId.
        media_id = self.user.fake.register_media(JPEG, name, "image/jpeg")
        inner = self.user.signer.image(self.user_id, media_id, self.user.next_msg_id(), self.user.now())
        assert await self.user.deliver(inner) == (200, b"")

    async def texts(self) -> list[str]:
        return list(self.user.texts())

    async def rich(self) -> list[str]:
        return [strip_dedup_tag(_MARKUP.sub("", part)) for part in self.user.fake.markdowns_to(self.user_id)]

    async def media(self) -> list[str]:
        kinds = ("image", "file", "voice", "video")
        return [d.msgtype for d in self.user.fake.messages_to(self.user_id) if d.msgtype in kinds]

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


# ---- DingTalk ---------------------------------------------------------------------------------------------------

# The capabilities a channel lacks, with the reason a scenario that needs one is skipped (``Chat.location`` …).
NO_LOCATION_ON_DINGTALK = (
    "DingTalk robot messages carry no location: a shared location reaches the robot as unknownMsgType "
    "(docs/dingtalk.md, 'The scenario suite on DingTalk')"
)
# DingTalk markdown (cards/dingtalk.py rich_markdown): headings, bold, list bullets.
_DT_MARKUP = re.compile(r"\*\*|^#{1,6} |^- ", re.MULTILINE)


class DingTalkChat(_Seen):
    """DingTalk through signed robot messages (``POST /dingtalk/callback``) and signed card callbacks
    (``POST /dingtalk/card``) into the bot's endpoints, built with ``tests.fakes.dingtalk_callbacks``; what arrived
    read back from the fake DingTalk API (``tests.fakes.dingtalk.FakeDingTalk``): robot messages per staff id, and
    interactive cards in their current state. Each person's staff id is ``dt<user id>``.

    A tap answers with the tapper's new card (``cardData``); DingTalk applies it to the instance, and so does the
    driver (``FakeDingTalk.apply_tap_answer``), before the outbox's own update of every copy. Without a card
    template (``links=True``), cards are action cards and a tap opens the button's signed link
    (``GET /dingtalk/act/<token>``), read back from the newest action card of each card."""

    channel = "dingtalk"
    # What a DingTalk person cannot do or receive (each a reason to skip what needs it; None: they can).
    no_location: str | None = NO_LOCATION_ON_DINGTALK
    no_media_out: str | None = None

    def __init__(
        self, user_id: str, staff_id: str, *, http: Any, signer: Any, fake: Any, runtime: Any, clock: Any
    ) -> None:
        self.user_id = user_id
        self.staff_id = staff_id
        self.http = http
        self.signer = signer
        self.fake = fake
        self.runtime = runtime
        self.clock = clock
        self.links = not runtime.settings.dingtalk.card_template_id
        self._tapped_at = 0

    def now_ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)

    async def _robot(self, doc: dict[str, Any]) -> None:
        from bot.channels.dingtalk import webhook

        headers, body = self.signer.signed(doc, self.now_ms())
        async with self.http.post(webhook.PATH, headers=headers, data=body) as resp:
            assert resp.status == 200, (resp.status, await resp.text())
            assert await resp.json() == {"msgtype": "empty"}, "a registered sender's message is stored, not answered"
        await self.runtime.settle()

    async def _card_tap(self, track: str, key: str) -> dict[str, Any]:
        from bot.channels.dingtalk import webhook

        doc = self.signer.card_tap(self.staff_id, track, key)
        # Two taps are never signed in the same millisecond (the bot tells taps apart by it); the clock is fixed.
        self._tapped_at = max(self.now_ms(), self._tapped_at + 1)
        headers, body = self.signer.signed_card(doc, self._tapped_at)
        async with self.http.post(webhook.CARD_PATH, headers=headers, data=body) as resp:
            assert resp.status == 200, (resp.status, await resp.text())
            answer: dict[str, Any] = await resp.json()
        self.fake.apply_tap_answer(track, answer)
        await self.runtime.settle()
        return answer

    async def _open_link(self, url: str) -> int:
        from urllib.parse import urlsplit

        async with self.http.get(urlsplit(url).path) as resp:
            status = resp.status
        await self.runtime.settle()
        return status

    async def say(self, text: str) -> None:
        await self._robot(self.signer.text(self.staff_id, text, self.now_ms()))

    async def tap(self, label: str, card: SeenCard | None = None) -> None:
        card = card or await card_with(self, label)
        [now] = [c for c in await self.cards() if c.ref == card.ref]
        key = now.keys[button(now, label)]
        if self.links:
            assert await self._open_link(key) == 200
        else:
            await self._card_tap(card.ref, key)

    async def forge_tap(self, key: str, card: SeenCard) -> None:
        if self.links:
            # A link is signed for one person: a forged one is refused at the door (tests/channels/dingtalk/).
            raise AssertionError("forge_tap needs the card template (a link cannot be forged)")
        await self._card_tap(card.ref, key)

    async def tap_stale(self, label: str, card: SeenCard) -> None:
        # The copy on screen still shows the old buttons: the callback carries the old button's key.
        key = card.keys[button(card, label)]
        if self.links:
            await self._open_link(key)
        else:
            await self._card_tap(card.ref, key)

    async def location(self, latitude: float, longitude: float, label: str = "") -> None:
        import pytest

        pytest.skip(NO_LOCATION_ON_DINGTALK)

    async def image(self, name: str = "photo.jpg") -> None:
        code = f"dlcode{secrets.token_hex(8)}"
        self.fake.add_file(code, JPEG)
        await self._robot(self.signer.picture(self.staff_id, code, self.now_ms()))

    async def texts(self) -> list[str]:
        """The texts received; a photo or file the bot sent, which DingTalk shows as its caption (``no_media_out``),
        is not a text but that media item (``media``)."""
        texts = self.fake.texts_to(self.staff_id)
        for caption in await self._media_captions():
            if caption in texts:
                texts.remove(caption)
        return texts

    async def media(self) -> list[str]:
        """The photos and files received; a scenario that asks after the bot sent this person one, which DingTalk
        shows as its caption (``no_media_out``), is skipped with that reason rather than failed or passed."""
        kinds = {"sampleImageMsg": "image", "sampleFile": "file"}
        got = [kinds[m.msg_key] for m in self.fake.received(self.staff_id) if m.msg_key in kinds]
        if self.no_media_out and len(got) < len(await self._media_captions()):
            import pytest

            pytest.skip(self.no_media_out)
        return got

    async def _media_captions(self) -> list[str]:
        """The caption of every photo or file the bot sent this person (the outbox's media items), oldest first."""
        if not self.no_media_out:
            return []
        from sqlalchemy import select

        from storage.models import OutboxMessage

        async with self.runtime.db.read() as s:
            rows = await s.scalars(
                select(OutboxMessage)
                .where(
                    OutboxMessage.channel == "dingtalk",
                    OutboxMessage.recipient == self.user_id,
                    OutboxMessage.kind == "media",
                    OutboxMessage.status == "sent",
                )
                .order_by(OutboxMessage.id)
            )
            return [str(r.payload.get("caption") or "📎") for r in rows]

    async def rich(self) -> list[str]:
        return [_DT_MARKUP.sub("", text) for title, text in self.fake.markdowns_to(self.staff_id)]

    async def cards(self) -> list[SeenCard]:
        if self.links:
            return self._link_cards()
        order: list[str] = []
        for r in self.fake.requests:
            if r.endpoint == "createAndDeliver" and isinstance(r.body, dict):
                spaces = str(r.body.get("openSpaceId", "")).split("//", 1)[-1].split(";")
                if f"IM_ROBOT.{self.staff_id}" in spaces and r.body.get("outTrackId") not in order:
                    order.append(str(r.body["outTrackId"]))
        seen = []
        for track in order:
            state = self.fake.card_state(track, self.staff_id)
            if state is not None:
                seen.append(_dingtalk_card(track, state))
        return seen

    def _link_cards(self) -> list[SeenCard]:
        """Without a template: each card as its newest action card; a card settled since (sent as a markdown with
        the card's title, no links) shows that markdown's status and fields, and no buttons."""
        newest: dict[str, SeenCard] = {}
        for m in self.fake.received(self.staff_id):
            if m.msg_key.startswith("sampleActionCard"):
                card = _action_card(m.param)
                newest.pop(card.ref, None)
                newest[card.ref] = card
            elif m.msg_key == "sampleMarkdown":
                mine = [c for c in newest.values() if c.title == m.param.get("title")]
                if mine:
                    fields, status = _card_markdown(str(m.param.get("text", "")))
                    newest[mine[-1].ref] = SeenCard(mine[-1].ref, mine[-1].title, status, fields, [], {})
        return list(newest.values())


def _dingtalk_card(track: str, state: dict[str, str]) -> SeenCard:
    import json

    fields = {f["label"]: f["value"] for f in json.loads(state.get("fields") or "[]")}
    buttons = [] if state.get("settled") == "true" else json.loads(state.get("buttons") or "[]")
    return SeenCard(
        ref=track,
        title=state.get("title", ""),
        status=state.get("status", ""),
        fields=fields,
        buttons=[b["text"] for b in buttons],
        keys={b["text"]: b["key"] for b in buttons},
    )


def _link_claim(url: str) -> dict[str, Any]:
    import base64
    import json

    token = url.rsplit("/", 1)[-1].split(".")[0]
    claim: dict[str, Any] = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    return claim


def _action_card(param: dict[str, Any]) -> SeenCard:
    """An action card (``sampleActionCard``…``5``) as seen: its buttons' texts and links (a link's key is the URL);
    the card ref from the links' claims; fields from the ``- label：value`` lines of its markdown."""
    pairs = (
        [(param["singleTitle"], param["singleURL"])]
        if "singleTitle" in param
        else [(param[f"actionTitle{n}"], param[f"actionURL{n}"]) for n in range(1, 6) if f"actionTitle{n}" in param]
    )
    fields, status = _card_markdown(str(param.get("text", "")))
    return SeenCard(
        ref=str(_link_claim(pairs[0][1])["r"]),
        title=str(param.get("title", "")),
        status=status,
        fields=fields,
        buttons=[t for t, _ in pairs],
        keys={t: u for t, u in pairs},
    )


def _card_markdown(text: str) -> tuple[dict[str, str], str]:
    """(fields, status) of a card's DingTalk markdown (``cards.dingtalk.card_text``): ``- label：value`` lines and
    the bold status line."""
    fields: dict[str, str] = {}
    status = ""
    for line in text.split("\n\n"):
        if line.startswith("- "):
            label, sep, value = line[2:].partition("：")
            if sep:
                fields.setdefault(label, value)
        elif line.startswith("**") and line.endswith("**"):
            status = line[2:-2]
    return fields, status
