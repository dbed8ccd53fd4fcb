"""Typed aiohttp application keys, in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from bot.channels.base import Host

# The running bot, as the channels' routes see it (``bot.runtime.Runtime`` implements ``Host``).
RUNTIME: web.AppKey[Host] = web.AppKey("runtime")
