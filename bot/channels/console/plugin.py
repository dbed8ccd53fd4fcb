"""The console plug-in: ``[console]``, the chat page and its API under /console, delivery into the feed. People are
known by their user id (no ``user_identities`` rows)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.channels.base import Channel, ChannelPlugin, CliSupport

if TYPE_CHECKING:
    import click
    from aiohttp import web

    from bot.channels.base import Host
    from bot.config import Settings


class ConsolePlugin(ChannelPlugin):
    name = "console"
    section = "console"
    home = "/console"

    def enabled(self, settings: Settings) -> bool:
        return settings.console_enabled

    def build(self, runtime: Host) -> Channel:
        from bot.channels.console.channel import ConsoleChannel
        from bot.channels.console.hub import ConsoleHub

        return ConsoleChannel(runtime.db, runtime.clock, ConsoleHub())

    def setup(self, app: web.Application) -> None:
        from bot.channels.console import web as console_web

        console_web.setup(app)

    def commands(self, cli: CliSupport) -> Sequence[click.Command]:
        from bot.channels.console import cli as console_cli

        return (console_cli.group(cli),)


PLUGIN = ConsolePlugin()
