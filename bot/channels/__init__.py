"""The channel registry: which plug-ins exist (data: a tuple of module paths), which are enabled.

Each module listed in ``PLUGIN_MODULES`` defines ``PLUGIN``, a ``bot.channels.base.ChannelPlugin``. The order is the
preference order of the channel-choice rule (``bot.channels.choice``): a person reachable on several channels gets
notices on the first of them (the console, which reaches everyone, comes last). Adding a channel is one more module
here (docs/architecture.md, "Add a channel").
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.channels.base import ChannelPlugin, IdentityColumn
    from bot.config import Settings

PLUGIN_MODULES: tuple[str, ...] = (
    "bot.channels.wecom.plugin",
    "bot.channels.dingtalk.plugin",
    "bot.channels.console.plugin",
)


def available(modules: Iterable[str] | None = None) -> tuple[ChannelPlugin, ...]:
    """Every plug-in listed (``PLUGIN_MODULES`` unless ``modules`` is given), in order."""
    plugins: list[ChannelPlugin] = []
    for path in PLUGIN_MODULES if modules is None else modules:
        plugin = importlib.import_module(path).PLUGIN
        if any(p.name == plugin.name for p in plugins):
            raise ValueError(f"two channel plug-ins named {plugin.name!r} ({path})")
        plugins.append(plugin)
    return tuple(plugins)


def enabled(settings: Settings, plugins: Sequence[ChannelPlugin] | None = None) -> tuple[ChannelPlugin, ...]:
    """The plug-ins ``settings`` enables, in registry order."""
    return tuple(p for p in (available() if plugins is None else plugins) if p.enabled(settings))


def plugin(name: str, plugins: Sequence[ChannelPlugin] | None = None) -> ChannelPlugin | None:
    return next((p for p in (available() if plugins is None else plugins) if p.name == name), None)


def identity_columns(plugins: Sequence[ChannelPlugin] | None = None) -> tuple[tuple[str, IdentityColumn], ...]:
    """(channel, org-CSV column) for every plug-in whose people have their own ids there, in registry order."""
    return tuple((p.name, p.identity) for p in (available() if plugins is None else plugins) if p.identity is not None)
