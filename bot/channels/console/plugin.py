"""The console plug-in: ``[console]``, the chat page and its API under /console, delivery into the feed. People are
known by their user id (no ``user_identities`` rows)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.channels.base import Channel, ChannelPlugin

if TYPE_CHECKING:
    import click
    from aiohttp import web

    from bot.config import Settings
    from bot.runtime import Runtime


class ConsolePlugin(ChannelPlugin):
    name = "console"
    section = "console"
    home = "/console"

    def enabled(self, settings: Settings) -> bool:
        return settings.console_enabled

    def build(self, runtime: Runtime) -> Channel:
        from bot.channels.console.channel import ConsoleChannel
        from bot.channels.console.hub import ConsoleHub

        return ConsoleChannel(runtime.db, runtime.clock, ConsoleHub())

    def setup(self, app: web.Application) -> None:
        from bot.channels.console import web as console_web

        console_web.setup(app)

    def commands(self) -> Sequence[click.Command]:
        from bot.channels.console import cli

        return (cli.group(),)


PLUGIN = ConsolePlugin()
