"""The running bot without its web server: config, database, directory, router, pipeline, outbox, channels."""

from __future__ import annotations

import asyncio
import logging

from bot.ackfirst import AckFirst
from bot.channels.base import Channel
from bot.channels.console.channel import ConsoleChannel
from bot.channels.console.hub import ConsoleHub
from bot.channels.wecom.client import WeComClient
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.metrics import Metrics
from bot.outbox import OutboxWorker
from bot.pipeline import Pipeline
from bot.routing import Dispatcher
from bot.services.directory import Directory
from handlers import ROUTERS
from storage.db import Database
from storage.models import User

log = logging.getLogger(__name__)


class Runtime:
    """One instance per process (tests make several). ``start`` runs the workers, ``stop`` ends them."""

    def __init__(self, settings: Settings, clock: Clock | None = None, db: Database | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.db = db or Database(settings.database.url, settings.database.echo, settings.database.pool_size)
        self.metrics = Metrics()
        # Answering callbacks goes before handling events and delivering replies (bot.ackfirst).
        self.ack_first = AckFirst()
        self.directory = Directory()
        self.dispatcher = Dispatcher(ROUTERS)
        self.console_hub = ConsoleHub()
        self.channels: dict[str, Channel] = {}
        if settings.console_enabled:
            self.channels["console"] = ConsoleChannel(self.db, self.clock, self.console_hub)
        self.wecom_client: WeComClient | None = None
        if settings.wecom.enabled:
            from bot.channels.wecom.channel import WeComChannel

            cfg = settings.wecom
            self.wecom_client = WeComClient(
                base_url=cfg.api_base_url,
                corp_id=cfg.corp_id,
                secret=cfg.secret.get_secret_value(),
                timeout=cfg.request_timeout_seconds,
                calls_per_minute=cfg.app_calls_per_minute,
                monotonic=lambda: self.clock.now().timestamp(),
            )
            self.channels["wecom"] = WeComChannel(self.db, self.clock, self.wecom_client, cfg)
        self.pipeline = Pipeline(self)
        self.outbox = OutboxWorker(self)
        self._started = False

    def channel_for(self, user: User, fallback: str) -> str:
        """The channel to reach ``user`` on: their platform if it is enabled, else ``fallback``."""
        for name in ("wecom", "dingtalk"):
            channel = self.channels.get(name)
            if channel is not None and channel.can_reach(user):
                return name
        return fallback

    async def start(self) -> None:
        self.pipeline.start()
        self.outbox.start()
        await self.pipeline.recover()
        self._started = True

    async def stop(self) -> None:
        await self.pipeline.stop()
        await self.outbox.stop()
        self._started = False

    async def close(self) -> None:
        if self._started:
            await self.stop()
        if self.wecom_client is not None:
            await self.wecom_client.close()
        await self.db.dispose()

    async def settle(self, rounds: int = 50) -> None:
        """Wait until every accepted event is handled and every due message delivered (tests, benchmarks)."""
        for _ in range(rounds):
            await self.pipeline.join()
            delivered = await self.outbox.drain()
            if delivered == 0 and self.pipeline.pending == 0:
                return
            await asyncio.sleep(0)
        raise RuntimeError("runtime did not settle")
