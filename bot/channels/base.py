"""The channel plug-in interface: what every ``bot/channels/<name>/`` implements, and the delivery side's types.

A plug-in (``ChannelPlugin``) is the static description of a channel: its name, its config section, whether it is
enabled, the org-CSV column that feeds its identities, the routes it mounts and the delivery ``Channel`` it builds for
a runtime. The built channel holds the per-runtime state (API clients, throttle budgets) and may report its health
(``HealthReporting``) and release resources (``Closing``). ``bot.channels`` lists the plug-ins; the runtime, the web
app and the CLI iterate over the enabled ones and never name a platform. See docs/architecture.md, "Add a channel".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import User

if TYPE_CHECKING:
    import click
    from aiohttp import web
    from pydantic import BaseModel

    from bot.config import Settings
    from bot.core.events import InboundEvent
    from bot.core.intents import Intent
    from bot.infra.ackfirst import AckFirst
    from bot.infra.clock import Clock
    from bot.infra.metrics import Metrics
    from storage.db import Database
    from storage.models import Base


class IngestResult(Protocol):
    """What ``Host.pipeline.ingest`` answers: the stored event's id, or that the platform re-delivered one."""

    @property
    def event_id(self) -> int | None: ...

    @property
    def duplicate(self) -> bool: ...


class Ingest(Protocol):
    async def ingest(self, event: InboundEvent, extras: Sequence[Base] = ()) -> IngestResult:
        """Store the event (and ``extras``, channel bookkeeping rows, in the same commit) before the platform is
        acknowledged; the dispatcher handles it after the commit."""
        ...

    async def handled(self, event_id: int, within: float) -> Sequence[Intent] | None:
        """What handling the stored event committed (its intents), or None after ``within`` seconds; call it right
        after ``ingest`` returned the id (a card tap answered with the tapper's new card)."""
        ...


class Registry(Protocol):
    async def is_registered(self, db: Database, channel: str, sender: str, ttl: float = 60.0) -> bool:
        """Whether ``sender`` on ``channel`` is a person of the directory (cached for ``ttl`` seconds)."""
        ...


class Host(Protocol):
    """What a channel uses of the running bot: ``bot.runtime.Runtime`` is the one implementation. Channels sit below
    the composition root and name only this (no import of the runtime, no import circle)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def db(self) -> Database: ...

    @property
    def metrics(self) -> Metrics: ...

    @property
    def ack_first(self) -> AckFirst: ...

    @property
    def pipeline(self) -> Ingest: ...

    @property
    def directory(self) -> Registry: ...

    @property
    def channels(self) -> Mapping[str, Channel]: ...


@dataclass(frozen=True)
class OutboxItem:
    """A claimed outbox row, detached from the session: what to deliver and to whom."""

    id: int
    channel: str
    kind: str
    payload: dict[str, Any]
    card_ref: str | None
    attempts: int
    recipients: tuple[User, ...]
    # The message may already have reached the platform (an earlier call timed out, or a worker died while a call
    # was in flight): channels that can (WeCom enable_duplicate_check) make the platform show it once.
    resend: bool = False
    created_at: datetime | None = None
    # Call right before the platform request: records that a call is in flight (survives a crash).
    announce: Callable[[], Awaitable[None]] | None = field(default=None, compare=False)

    async def starting_call(self) -> None:
        if self.announce is not None:
            await self.announce()


@dataclass(frozen=True)
class Delivery:
    """What the platform answered, kept on the outbox row (for card updates later)."""

    platform_msg_id: str | None = None
    # The platform's token for updating the message later, if it returned one (kept in the outbox row).
    platform_token: str | None = None
    # Messages that reached each recipient (a long text goes out in parts; a card update is none): the throttle's.
    messages: int = 0

    def row_values(self) -> dict[str, str | None]:
        """The outbox row's columns for what the platform answered."""
        return {"platform_msg_id": self.platform_msg_id, "platform_response_code": self.platform_token}


class DeliveryError(Exception):
    """A failed delivery. ``retryable`` decides between backoff and giving up at once."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        code: str | int | None = None,
        outcome_unknown: bool = False,
        retry_after: float = 0.0,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.code = code
        # The request may have reached the platform (timeout, connection lost, 5xx).
        self.outcome_unknown = outcome_unknown
        # The platform wants at least this many seconds before the next try (a throttle): the backoff's floor.
        self.retry_after = retry_after


class DeliveryDeferred(Exception):
    """Not now, and not a failure: e.g. the recipient's rate budget is used up. Retried at ``retry_at``
    without counting an attempt."""

    def __init__(self, reason: str, retry_at: datetime) -> None:
        super().__init__(reason)
        self.retry_at = retry_at


class Channel(Protocol):
    """Delivers outbox items on one platform."""

    name: str

    def can_reach(self, user: User) -> bool:
        """Whether ``user`` has an identity on this channel."""
        ...

    async def deliver(self, item: OutboxItem) -> Delivery: ...


@runtime_checkable
class HealthReporting(Protocol):
    """A channel that can be misconfigured while the bot runs (a rejected secret …): /healthz shows it."""

    def health(self) -> dict[str, Any] | None:
        """None when fine; else what /healthz shows under the channel's name (the status becomes "degraded",
        unless the dict says ``"ok": True``: figures shown while fine)."""
        ...


@runtime_checkable
class Closing(Protocol):
    """A channel holding resources (an HTTP session …), released when the runtime closes."""

    async def close(self) -> None: ...


@runtime_checkable
class Service(Protocol):
    """A background task a channel runs while the runtime does (DingTalk's Stream connection): started once the
    pipeline takes events, stopped before it stops."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class IdentityColumn:
    """The org-CSV column holding people's ids on a channel (stored in ``user_identities`` under the channel's
    name), with its zh-CN label and the header names accepted for it."""

    column: str
    label: str
    aliases: tuple[str, ...]


class ChannelPlugin:
    """One channel as a plug-in. Subclass it in ``bot/channels/<name>/plugin.py`` as ``PLUGIN`` and list the module
    in ``bot.channels.PLUGIN_MODULES``. Everything but ``name``, ``section`` and ``enabled`` has a default."""

    # The channel's name: inbound events, outbox rows, conversations and ``user_identities.channel`` carry it.
    name: ClassVar[str]
    # Its config section (``[wecom]`` …): ``Settings.<section>``.
    section: ClassVar[str]
    # Where its ids come from in the org CSV (None: the channel knows people by their user id, as the console does).
    identity: ClassVar[IdentityColumn | None] = None
    # A page for people to open in a browser (the root URL redirects to the first enabled one), or None.
    home: ClassVar[str | None] = None

    def config(self, settings: Settings) -> BaseModel:
        """This channel's config section."""
        section: BaseModel = getattr(settings, self.section)
        return section

    def enabled(self, settings: Settings) -> bool:
        return bool(getattr(self.config(settings), "enabled", False))

    @property
    def identity_is_user_id(self) -> bool:
        """People are known on this channel by their users.id (no ``user_identities`` rows)."""
        return self.identity is None

    def build(self, runtime: Host) -> Channel | None:
        """The delivery channel for ``runtime`` (None: the channel has no delivery side yet)."""
        return None

    def setup(self, app: web.Application) -> None:
        """Mount the channel's routes (callbacks, pages) on the web app; ``app[keys.RUNTIME]`` is the runtime."""

    def services(self, runtime: Host) -> Sequence[Service]:
        """Background tasks the runtime starts and stops with its workers (e.g. an outgoing callback connection)."""
        return ()

    def commands(self, cli: CliSupport) -> Sequence[click.Command]:
        """Commands the channel adds to the ``salesbot`` CLI (``salesbot console token`` …), whether or not it is
        enabled; built when the CLI is, with what the CLI lends them (``cli``)."""
        return ()


@dataclass(frozen=True)
class CliSupport:
    """What the main CLI (``bot.cli``) lends a channel's commands: its ``--config`` option (a click decorator that
    passes ``config_path``), config loading with every check and its error report (exits 1 on a bad file), and how
    it runs a coroutine."""

    config_option: Callable[[Any], Any]
    load: Callable[[str | None], Settings]
    run: Callable[[Callable[[], Awaitable[Any]]], Any]


@runtime_checkable
class RoundAware(Protocol):
    """A channel that prepares for an outbox round (one read for every row claimed, instead of one per row) and
    writes its own bookkeeping in the transaction that records the round's outcomes."""

    async def prepare(self, items: Sequence[OutboxItem]) -> None:
        """Called once per round with the claimed items for this channel, before any of them is delivered."""
        ...

    async def record(self, session: AsyncSession, sent: Sequence[tuple[OutboxItem, Delivery]], now: datetime) -> None:
        """Called inside the outcome commit with the items that reached the platform."""
        ...

    def committed(self, sent: Sequence[tuple[OutboxItem, Delivery]]) -> None:
        """Called once that commit is done (e.g. wake whoever waits for what ``record`` wrote)."""
        ...


@dataclass(frozen=True)
class FetchedMedia:
    """A received photo or file, downloaded from its platform: the bytes, the name the platform gave it (may be
    empty) and the type it claimed (a hint only: the store sniffs the bytes)."""

    data: bytes
    filename: str = ""
    content_type_hint: str = ""


class MediaFetchError(Exception):
    """A download failed. ``retryable``: the platform may still hand it out (busy, timeout); otherwise it is gone
    (expired, unknown id) or too large (``too_large``: more than the ``max_bytes`` asked for)."""

    def __init__(self, message: str, *, retryable: bool, too_large: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.too_large = too_large


@runtime_checkable
class MediaFetching(Protocol):
    """A channel whose inbound media are ids on the platform (WeCom ``media/get``, DingTalk
    ``messageFiles/download``): the pipeline downloads each into the attachment store before handling the event
    (docs/attachments.md)."""

    async def fetch_media(self, media_type: str, media_id: str, max_bytes: int) -> FetchedMedia:
        """The bytes of ``media_id``; ``MediaFetchError`` when they cannot be had (or exceed ``max_bytes``)."""
        ...
