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
    # Sign-ins so far: tests that move the clock past the session's idle or absolute lifetime get a 401, and then,
    # like a person at the page's sign-in screen, the driver signs in again.
    sign_ins: int = 0

    async def open(self) -> ConsoleUser:
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        await self._sign_in()
        return self

    async def _sign_in(self) -> None:
        async with self.session.post(self.server.make_url("/console/api/login"), json={"user_id": self.user_id}) as r:
            assert r.status == 200, await r.text()
        self.sign_ins += 1

    async def _request(self, method: str, url: Any, **kwargs: Any) -> tuple[int, Any]:
        """One request; after a 401 (the session ended) sign in again and repeat it once (same body, so the same
        client_id: the server deduplicates)."""
        for attempt in (1, 2):
            async with self.session.request(method, url, **kwargs) as r:
                if r.status == 401 and attempt == 1:
                    await self._sign_in()
                    continue
                return r.status, await r.json()
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await self.session.close()

    async def post(self, path: str, body: dict[str, Any], settle: bool = True) -> dict[str, Any]:
        status, data = await self._request("POST", self.server.make_url(path), json=body)
        assert status == 200, data
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
        status, body = await self._request("POST", url, data=data, headers={"Content-Type": content_type})
        assert status == 200, body
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
        status, data = await self._request("GET", url)
        assert status == 200, data
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
