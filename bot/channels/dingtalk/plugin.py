"""The DingTalk plug-in: ``[dingtalk]``, the org CSV's staff ids (``user_identities`` under ``dingtalk``), the
callback routes (HTTP mode) and, in Stream mode, the outgoing connection the runtime starts (docs/dingtalk.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.channels.base import ChannelPlugin, IdentityColumn, Service

if TYPE_CHECKING:
    from aiohttp import web

    from bot.channels.base import Host


class DingTalkPlugin(ChannelPlugin):
    name = "dingtalk"
    section = "dingtalk"
    identity = IdentityColumn("dingtalk_staff_id", "钉钉ID", ("钉钉ID", "钉钉"))

    def setup(self, app: web.Application) -> None:
        from bot.channels.dingtalk import webhook

        webhook.setup(app)

    def services(self, runtime: Host) -> Sequence[Service]:
        if runtime.settings.dingtalk.mode != "stream":
            return ()
        from bot.channels.dingtalk.stream import DingTalkStream

        return (DingTalkStream(runtime),)


PLUGIN = DingTalkPlugin()
