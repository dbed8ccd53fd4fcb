"""Drives the console channel over real HTTP, like the browser page does."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from bot.runtime import Runtime


@dataclass
class ConsoleUser:
    """One signed-in console user with their own cookie jar and feed cursor."""

    server: TestServer
    runtime: Runtime
    user_id: str
    session: aiohttp.ClientSession = field(init=False)
    items: list[dict[str, Any]] = field(default_factory=list)
    cursor: int = 0

    async def open(self) -> ConsoleUser:
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        async with self.session.post(self.server.make_url("/console/api/login"), json={"user_id": self.user_id}) as r:
            assert r.status == 200, await r.text()
        return self

    async def close(self) -> None:
        await self.session.close()

    async def post(self, path: str, body: dict[str, Any], settle: bool = True) -> dict[str, Any]:
        async with self.session.post(self.server.make_url(path), json=body) as r:
            data: dict[str, Any] = await r.json()
            assert r.status == 200, data
        if settle:
            await self.runtime.settle()
        return data

    async def send(self, text: str, client_id: str | None = None, settle: bool = True) -> dict[str, Any]:
        return await self.post("/console/api/send", {"client_id": client_id or uuid.uuid4().hex, "text": text}, settle)

    async def location(self, latitude: float, longitude: float, label: str = "") -> dict[str, Any]:
        body = {"client_id": uuid.uuid4().hex, "latitude": latitude, "longitude": longitude, "label": label}
        return await self.post("/console/api/location", body)

    async def upload(self, name: str, data: bytes, content_type: str = "image/jpeg") -> dict[str, Any]:
        """Send a photo or file, as the page's 📎 button does."""
        url = self.server.make_url("/console/api/media").with_query(client_id=uuid.uuid4().hex, name=name)
        async with self.session.post(url, data=data, headers={"Content-Type": content_type}) as r:
            body: dict[str, Any] = await r.json()
            assert r.status == 200, body
        await self.runtime.settle()
        return body

    async def tap(self, label: str, card_ref: str | None = None) -> dict[str, Any]:
        """Tap the button labelled ``label`` on the newest card showing it (or on ``card_ref``)."""
        card = self.card_with(label) if card_ref is None else self.card(card_ref)
        button = next(b for b in card["buttons"] if b["text"] == label)
        body = {"client_id": uuid.uuid4().hex, "payload": button["key"], "card_ref": card["ref"]}
        return await self.post("/console/api/action", body)

    async def refresh(self) -> list[dict[str, Any]]:
        """Fetch feed items after the cursor; returns the new ones."""
        url = self.server.make_url("/console/api/updates").with_query(after=str(self.cursor), wait="0")
        async with self.session.get(url) as r:
            data = await r.json()
        self.items.extend(data["items"])
        self.cursor = data["cursor"]
        return list(data["items"])

    async def replies(self) -> list[str]:
        """Texts from the bot since the last call."""
        return [i["text"] for i in await self.refresh() if i.get("from") == "bot" and "text" in i]

    def cards(self) -> dict[str, dict[str, Any]]:
        """Current state of every card on screen, by ref (updates applied in place)."""
        shown: dict[str, dict[str, Any]] = {}
        for item in self.items:
            if "card" in item:
                shown[item["card"]["ref"]] = item["card"]
        return shown

    def card(self, ref: str) -> dict[str, Any]:
        return self.cards()[ref]

    def card_with(self, label: str) -> dict[str, Any]:
        for card in reversed(list(self.cards().values())):
            if any(b["text"] == label for b in card["buttons"]):
                return card
        raise AssertionError(f"no card shows a {label!r} button; cards: {list(self.cards().values())}")

    def last_card(self) -> dict[str, Any]:
        cards = [i["card"] for i in self.items if "card" in i]
        assert cards, "no card shown"
        return self.cards()[cards[-1]["ref"]]
