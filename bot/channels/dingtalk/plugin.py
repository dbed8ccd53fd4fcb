"""The DingTalk plug-in: ``[dingtalk]``, the org CSV's staff ids (``user_identities`` under ``dingtalk``), the
delivery channel (``build``: the API client, the monthly call counter), the callback routes (HTTP mode) and the
action-link route of the no-template fallback (``setup``), in Stream mode the outgoing connection the runtime starts
(``services``), and ``salesbot dingtalk setup`` (``commands``). See docs/dingtalk.md (outbound) and
docs/dingtalk_inbound.md."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.channels.base import Channel, ChannelPlugin, CliSupport, IdentityColumn, Service

if TYPE_CHECKING:
    import click
    from aiohttp import web

    from bot.channels.base import Host


class DingTalkPlugin(ChannelPlugin):
    name = "dingtalk"
    section = "dingtalk"
    identity = IdentityColumn("dingtalk_staff_id", "钉钉ID", ("钉钉ID", "钉钉"))

    def build(self, runtime: Host) -> Channel:
        from bot import channels as registry
        from bot.channels import choice
        from bot.channels.dingtalk.channel import DingTalkChannel, month_of
        from bot.channels.dingtalk.client import DingTalkClient
        from bot.channels.dingtalk.quota import CallCounter
        from bot.infra.filestore import FileStore

        settings = runtime.settings
        cfg = settings.dingtalk
        tz = settings.org.tz

        def month() -> str:
            return month_of(runtime.clock.now(), tz)

        def gauge(calls: int) -> None:
            runtime.metrics.platform_api_calls.labels(self.name).set(calls)

        preference = [p.name for p in registry.enabled(settings)]
        counter = CallCounter(
            runtime.db,
            self.name,
            cfg.monthly_call_quota,
            month,
            admin_channel=lambda user: choice.channel_for(user, runtime.channels, preference),
            on_change=gauge,
        )
        runtime.metrics.platform_api_quota.labels(self.name).set(cfg.monthly_call_quota)
        gauge(0)
        client = DingTalkClient(
            base_url=cfg.api_base_url,
            app_key=cfg.app_key,
            app_secret=cfg.app_secret.get_secret_value(),
            timeout=cfg.request_timeout_seconds,
            monotonic=lambda: runtime.clock.now().timestamp(),
            month=month,
            on_call=counter.count,
            oapi_base_url=cfg.oapi_base_url,
        )
        store = FileStore(settings.attachments.dir)
        return DingTalkChannel(runtime.db, runtime.clock, client, settings, counter, store)

    def setup(self, app: web.Application) -> None:
        from bot.channels.dingtalk import actions, webhook

        webhook.setup(app)
        actions.setup(app)

    def services(self, runtime: Host) -> Sequence[Service]:
        if runtime.settings.dingtalk.mode != "stream":
            return ()
        from bot.channels.dingtalk.stream import DingTalkStream

        return (DingTalkStream(runtime),)

    def commands(self, cli: CliSupport) -> Sequence[click.Command]:
        from bot.channels.dingtalk.setup_cli import command

        return (command(cli),)


PLUGIN = DingTalkPlugin()
