"""A channel plug-in that exists only in tests: what a new ``bot/channels/<name>/plugin.py`` provides, at its
smallest. Inbound: ``POST /fake/inbound`` with ``{"sender": ..., "text": ..., "id": ...}``; outbound: every
delivered item is kept in ``FakeChannel.delivered``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.channels import keys
from bot.channels.base import ChannelPlugin, Delivery, IdentityColumn, OutboxItem
from bot.core.events import TextMessage

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.runtime import Runtime
    from storage.models import User

NAME = "fake"
PATH = "/fake/inbound"


class FakeChannel:
    name = NAME

    def __init__(self) -> None:
        self.delivered: list[tuple[str, tuple[str, ...], dict[str, Any]]] = []
        self.problem: dict[str, Any] | None = None
        self.closed = False

    def can_reach(self, user: User) -> bool:
        return user.channel_id(NAME) is not None

    async def deliver(self, item: OutboxItem) -> Delivery:
        external = tuple(str(u.channel_id(NAME)) for u in item.recipients)
        self.delivered.append((item.kind, external, item.payload))
        return Delivery(platform_msg_id=f"fake-{item.id}", messages=1)

    def health(self) -> dict[str, Any] | None:
        return self.problem

    async def close(self) -> None:
        self.closed = True


async def inbound(request: web.Request) -> web.Response:
    rt = request.app[keys.RUNTIME]
    body = await request.json()
    if not await rt.directory.is_registered(rt.db, NAME, body["sender"]):
        return web.json_response({"registered": False}, status=403)
    event = TextMessage(channel=NAME, sender=body["sender"], dedup_key=f"msg:{body['id']}", text=body["text"])
    await rt.pipeline.ingest(event)
    return web.json_response({"accepted": True})


class FakePlugin(ChannelPlugin):
    name = NAME
    section = "console"  # no section of its own (Settings forbids unknown ones); always enabled
    identity = IdentityColumn("fake_id", "测试ID", ("测试ID",))

    def enabled(self, settings: Settings) -> bool:
        return True

    def build(self, runtime: Runtime) -> FakeChannel:
        return FakeChannel()

    def setup(self, app: web.Application) -> None:
        app.router.add_post(PATH, inbound)


PLUGIN = FakePlugin()
