"""The running bot without its web server: config, database, directory, router, pipeline, outbox, channels."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from bot import audit_anchor, customer_nightly, plan_reminders
from bot import channels as channel_registry
from bot.calendar.workcal import OfficialDays, with_official_days
from bot.channels import choice
from bot.channels.base import Channel, ChannelPlugin, Closing, Service
from bot.config import ConfigError, Settings, load_settings
from bot.core.directory import Directory
from bot.core.routing import Dispatcher
from bot.digest_push import DigestPush
from bot.escalator import Escalator
from bot.infra.ackfirst import AckFirst
from bot.infra.clock import Clock, SystemClock
from bot.infra.metrics import Metrics
from bot.jobs import Jobs
from bot.outbox import OutboxWorker
from bot.pipeline import Pipeline
from handlers import ROUTERS, command_words
from storage import audit_chain
from storage.db import Database
from storage.models import User

log = logging.getLogger(__name__)


class Runtime:
    """One instance per process (tests make several). ``start`` runs the workers, ``stop`` ends them."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock | None = None,
        db: Database | None = None,
        plugins: Sequence[ChannelPlugin] | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        audit_chain.configure(settings.audit.key_bytes())
        self.db = db or Database(settings.database.url, settings.database.echo, settings.database.pool_size)
        self.metrics = Metrics()
        # Answering callbacks goes before handling events and delivering replies (bot.infra.ackfirst).
        self.ack_first = AckFirst()
        self.directory = Directory(channel_registry.available() if plugins is None else plugins)
        self.dispatcher = Dispatcher(ROUTERS)
        # The enabled channel plug-ins (registry order) and the delivery channel each built for this runtime.
        self.plugins = channel_registry.enabled(settings, plugins)
        self.channels: dict[str, Channel] = {}
        for plugin in self.plugins:
            channel = plugin.build(self)
            if channel is None:
                log.warning("channel %s is enabled but has no delivery side yet", plugin.name)
            else:
                self.channels[plugin.name] = channel
        self.pipeline = Pipeline(self)
        self.outbox = OutboxWorker(self)
        # The enabled channels' background tasks (an outgoing callback connection …), run while the workers are.
        self.services: list[Service] = [s for plugin in self.plugins for s in plugin.services(self)]
        # The process's one scheduler: features register their interval / periodic jobs on it (bot/jobs.py).
        self.jobs = Jobs(self)
        self.escalator = Escalator(self)
        # The 18:00 digest, its follow-ups and the weekly objections (bot/digest_push.py).
        self.digest_push = DigestPush(self)
        # [plans] reminders, when configured (bot/plan_reminders.py).
        plan_reminders.register(self)
        # The customers' nightly score and alerts (bot/customer_nightly.py).
        customer_nightly.register(self)
        # The audit chain's daily anchor, when [audit] anchors names places (bot/audit_anchor.py).
        audit_anchor.register(self)
        self._started = False
        # Imported holiday arrangements (salesbot calendar import), attached to settings.calendar.
        self.calendar_days: OfficialDays | None = None
        self._calendar_tasks: set[asyncio.Task[None]] = set()

    # Sections a reload applies at once; the others (server, database, channels, outbox …) need a restart.
    RELOADABLE = ("departments", "visits", "conversation", "calendar", "request_types", "escalation")

    def reload(self, new: Settings) -> list[str]:
        """Apply a new, already validated configuration; returns the sections that changed but need a restart.

        Cards created before keep the escalation policy frozen into them; new cards get the new one.
        """
        update = {name: getattr(new, name) for name in self.RELOADABLE}
        restart = [
            name
            for name in type(new).model_fields
            if name not in self.RELOADABLE and getattr(new, name) != getattr(self.settings, name)
        ]
        self.settings = self.settings.model_copy(update=update)
        self._reload_calendar()
        for name in restart:
            log.warning("config reload: [%s] changed; it takes effect after a restart", name)
        log.info("configuration reloaded (%s)", ", ".join(self.RELOADABLE))
        return restart

    def reload_from(self, path: str | None) -> bool:
        """SIGHUP: re-read the config file; an invalid file keeps the running configuration and says why."""
        try:
            new = load_settings(path, reserved=command_words())
        except ConfigError as exc:
            log.error("config reload refused, keeping the running configuration: %s", "; ".join(map(str, exc.issues)))
            return False
        self.reload(new)
        return True

    def channel_for(self, user: User) -> str:
        """The channel a notice to ``user`` goes to (the one rule, ``bot.channels.choice``): the first enabled
        channel in registry order that reaches them, else ``choice.UNREACHABLE`` (recorded as undeliverable)."""
        return choice.channel_for(user, self.channels, (p.name for p in self.plugins))

    async def start(self) -> None:
        await self._load_calendar()
        self.pipeline.start()
        # Replies a killed predecessor was delivering go out now, not when its leases run out.
        await self.outbox.reclaim_dead_owners()
        self.outbox.start()
        await self.pipeline.recover()
        for service in self.services:
            await service.start()
        # Deadlines missed while the bot was down are caught up at once (one notice per missed level).
        await self.escalator.sweep()
        self.escalator.start()
        self.digest_push.start()
        # Periodic jobs' missed periods are caught up in the background (once each across replicas).
        self.jobs.start()
        self._started = True

    async def stop(self) -> None:
        for service in reversed(self.services):
            await service.stop()
        await self.escalator.stop()
        await self.jobs.stop()
        await self.pipeline.stop()
        await self.outbox.stop()
        self._started = False

    async def close(self) -> None:
        await self.calendar_loaded()
        if self._started:
            await self.stop()
        for channel in self.channels.values():
            if isinstance(channel, Closing):
                await channel.close()
        await self.db.dispose()

    # ---- imported holiday calendar ----------------------------------------------------------------------------

    async def _load_calendar(self) -> None:
        """Read the imported official days (``calendar_days``) and attach them to ``settings.calendar``; on a
        database error keep what was loaded before (deadlines then use the package's data) and log it."""
        from bot.calendar.official import load_official_days

        try:
            self.calendar_days = await load_official_days(self.db)
        except Exception as exc:
            log.error("imported holiday calendar not loaded, keeping the previous one: %s", exc.__class__.__name__)
        self._apply_calendar()
        if self.calendar_days:
            log.info("imported holiday calendar: years %s", ", ".join(map(str, sorted(self.calendar_days.years))))

    def _apply_calendar(self) -> None:
        cfg = with_official_days(self.settings.calendar, self.calendar_days)
        self.settings = self.settings.model_copy(update={"calendar": cfg})

    def _reload_calendar(self) -> None:
        """On reload: keep the loaded days on the new config at once, then re-read them (a new import)."""
        self._apply_calendar()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not inside the server's loop: the days loaded at start stay
        task = loop.create_task(self._load_calendar())
        self._calendar_tasks.add(task)
        task.add_done_callback(self._calendar_tasks.discard)

    async def calendar_loaded(self) -> None:
        """Wait until a reload's re-read of the imported days is done (tests; close)."""
        while self._calendar_tasks:
            await asyncio.gather(*self._calendar_tasks)

    async def settle(self, rounds: int = 50) -> None:
        """Wait until every accepted event is handled and every due message delivered (tests, benchmarks)."""
        for _ in range(rounds):
            await self.pipeline.join()
            delivered = await self.outbox.drain()
            if delivered == 0 and self.pipeline.pending == 0:
                return
            await asyncio.sleep(0)
        raise RuntimeError("runtime did not settle")
