"""The WeCom plug-in: ``[wecom]``, the callback URL, the API client and the delivery channel."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.channels.base import Channel, ChannelPlugin, IdentityColumn

if TYPE_CHECKING:
    from aiohttp import web

    from bot.channels.base import Host


class WeComPlugin(ChannelPlugin):
    name = "wecom"
    section = "wecom"
    identity = IdentityColumn("wecom_userid", "企业微信ID", ("企业微信ID", "企业微信"))

    def build(self, runtime: Host) -> Channel:
        from bot.channels.wecom.channel import WeComChannel
        from bot.channels.wecom.client import WeComClient
        from bot.infra.filestore import FileStore

        cfg = runtime.settings.wecom
        client = WeComClient(
            base_url=cfg.api_base_url,
            corp_id=cfg.corp_id,
            secret=cfg.secret.get_secret_value(),
            timeout=cfg.request_timeout_seconds,
            calls_per_minute=cfg.app_calls_per_minute,
            monotonic=lambda: runtime.clock.now().timestamp(),
        )
        store = FileStore(runtime.settings.attachments.dir)
        return WeComChannel(runtime.db, runtime.clock, client, cfg, store)

    def setup(self, app: web.Application) -> None:
        from bot.channels.wecom import webhook

        webhook.setup(app)


PLUGIN = WeComPlugin()
