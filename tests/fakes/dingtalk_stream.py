"""A fake DingTalk Stream gateway: ``POST /v1.0/gateway/connections/open`` (checks the app's credentials and
subscriptions, answers an endpoint and a one-time ticket) and the WebSocket at that endpoint, over which a test
pushes frames as DingTalk does (``CALLBACK`` and ``SYSTEM``, ``data`` a JSON string) and reads the client's acks."""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
from typing import Any

from aiohttp import WSMsgType, web

OPEN_PATH = "/v1.0/gateway/connections/open"
CONNECT_PATH = "/connect"


class FakeStreamGateway:
    def __init__(self, client_id: str, client_secret: str) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.tickets: set[str] = set()
        self.subscriptions: list[list[dict[str, str]]] = []
        self.opens = 0
        self.connected = asyncio.Event()
        # Set when a connection ends (either side closed it).
        self.closed = asyncio.Event()
        self._ws: web.WebSocketResponse | None = None
        self._acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self.base_url = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(OPEN_PATH, self._open)
        app.router.add_get(CONNECT_PATH, self._connect)
        return app

    async def _open(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.opens += 1
        if body.get("clientId") != self.client_id or body.get("clientSecret") != self.client_secret:
            return web.json_response({"code": "InvalidAuthentication", "message": "bad credentials"}, status=401)
        subs = body.get("subscriptions")
        assert isinstance(subs, list) and all({"type", "topic"} <= set(s) for s in subs), subs
        self.subscriptions.append(subs)
        ticket = secrets.token_urlsafe(16)
        self.tickets.add(ticket)
        endpoint = self.base_url.replace("http://", "ws://") + CONNECT_PATH
        return web.json_response({"endpoint": endpoint, "ticket": ticket})

    async def _connect(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self.tickets:
            return web.Response(status=403, text="bad ticket")
        self.tickets.discard(ticket)  # one connection per ticket
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._ws = ws
        self.closed.clear()
        self.connected.set()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                ack = json.loads(msg.data)
                future = self._acks.pop(ack.get("headers", {}).get("messageId", ""), None)
                if future is not None and not future.done():
                    future.set_result(ack)
        finally:
            self.connected.clear()
            self.closed.set()
            self._ws = None
        return ws

    async def push(
        self, frame_type: str, topic: str, data: Any, *, raw_data: str | None = None, message_id: str = ""
    ) -> dict[str, Any]:
        """Send one frame and wait for the client's ack (``data`` JSON-encoded unless ``raw_data`` is given); a
        ``message_id`` given again is a redelivery of that frame (a new one otherwise)."""
        assert self._ws is not None, "no client connected"
        message_id = message_id or f"msg-{next(self._ids)}-{secrets.token_hex(4)}"
        frame = {
            "specVersion": "1.0",
            "type": frame_type,
            "headers": {
                "appId": "app-1",
                "connectionId": "conn-1",
                "contentType": "application/json",
                "messageId": message_id,
                "time": "1795312800000",
                "topic": topic,
            },
            "data": raw_data if raw_data is not None else json.dumps(data, ensure_ascii=False),
        }
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acks[message_id] = future
        await self._ws.send_str(json.dumps(frame, ensure_ascii=False))
        return await asyncio.wait_for(future, 10)

    async def callback(self, topic: str, data: Any, message_id: str = "") -> tuple[int, Any]:
        """A CALLBACK frame; the ack's code and its ``data.response``."""
        ack = await self.push("CALLBACK", topic, data, message_id=message_id)
        return ack["code"], json.loads(ack["data"]).get("response")

    async def drop(self) -> None:
        """Close the connection from the gateway's side."""
        if self._ws is not None:
            await self._ws.close()
