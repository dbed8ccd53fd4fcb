"""Router with filters: each feature module owns a Router; the Dispatcher tries them in one declared order."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.conversation import ConversationState
from bot.core.errors import Denial, DomainError, Msg
from bot.core.events import CardAction, EnterChat, InboundEvent, LocationShared, MediaMessage, TextMessage
from bot.core.intents import Intent, SendCard, SendText, UpdateCard
from bot.infra import i18n
from bot.infra.words import fold_word, normalize_text
from cards.model import Card
from cards.payload import CallbackData, PayloadError, unpack
from storage.models import User

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.core.directory import Directory
    from bot.infra.clock import Clock
    from bot.infra.metrics import Metrics


class Services(Protocol):
    """What handlers use of the running bot (the Runtime is one; a test may pass anything that has
    these): handlers and services never import the runtime."""

    @property
    def settings(self) -> Settings: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def metrics(self) -> Metrics: ...

    @property
    def directory(self) -> Directory: ...

    @property
    def dispatcher(self) -> Dispatcher: ...

    def channel_for(self, user: User) -> str:
        """The channel a notice to ``user`` goes to (``bot.channels.choice``)."""
        ...


log = logging.getLogger(__name__)


@dataclass
class Context:
    """Everything a handler needs for one event; handlers add intents, never call a platform."""

    event: InboundEvent
    user: User
    session: AsyncSession
    conversation: ConversationState
    runtime: Services
    now: datetime
    intents: list[Intent] = field(default_factory=list)
    # Filled by the command filter: the text after the keyword.
    args: str = ""
    # Filled by the tap filter: the unpacked button payload (``tapped``).
    payload: CallbackData | None = None
    _tap_read: bool = field(default=False, repr=False)

    @property
    def locale(self) -> str:
        return i18n.normalize_locale(self.user.locale)

    def tapped(self) -> CallbackData | None:
        """The tapped button's payload, unpacked once per event; None when the event is not a tap or its payload
        is not one we made (forged, mangled, of a retired kind): no tap route takes it, so the fallback answers
        "按钮已过期" (``handlers.help.unknown_button``), never an error."""
        if not self._tap_read:
            self._tap_read = True
            if isinstance(self.event, CardAction):
                try:
                    self.payload = unpack(self.event.payload)
                except PayloadError as exc:
                    # The reason only: the payload itself is whatever the client sent.
                    log.info("unreadable button payload (%s)", type(exc).__name__)
        return self.payload

    @property
    def text(self) -> str:
        return self.event.text if isinstance(self.event, TextMessage) else ""

    def retyped(self, text: str) -> Context:
        """This event as if the sender had typed ``text`` (a suggestion's button): same person, conversation,
        transaction and intents list, so what its route does is part of this event."""
        event = TextMessage(
            channel=self.event.channel, sender=self.event.sender, dedup_key=self.event.dedup_key, text=text
        )
        return replace(self, event=event, args="", payload=None, _tap_read=False)

    def t(self, key: str, **params: Any) -> str:
        return i18n.t(self.locale, key, **params)

    def reply(self, text: str) -> None:
        self.intents.append(SendText(channel=self.event.channel, user_ids=(self.user.id,), text=text))

    def reply_card(self, card: Card) -> None:
        self.intents.append(SendCard(channel=self.event.channel, user_ids=(self.user.id,), card=card))

    def update_card(self, card: Card, user_ids: Sequence[str] | None = None) -> None:
        ids = tuple(user_ids) if user_ids is not None else (self.user.id,)
        self.intents.append(UpdateCard(channel=self.event.channel, user_ids=ids, card=card))

    def notify(self, user: User, text: str) -> None:
        """Send a text to another user on the channel that reaches them (``Runtime.channel_for``: the one rule
        for every notice; not this event's channel)."""
        self.intents.append(SendText(channel=self.runtime.channel_for(user), user_ids=(user.id,), text=text))

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    async def error_text(self, exc: DomainError) -> str:
        """A refusal's message in the user's language (``holder_id`` resolved to a name, ``state_key`` translated)."""
        params = dict(exc.params)
        if "holder_id" in params:
            holder_id = str(params.pop("holder_id"))
            name = await self.session.scalar(select(User.name).where(User.id == holder_id)) if holder_id else None
            params["holder"] = name or ""
        if "state_key" in params:
            params["state"] = self.t(params.pop("state_key"))
        for name, value in params.items():
            if isinstance(value, Msg):
                params[name] = self.t(value.key, **value.params)
        return self.t(exc.key, **params)


Handler = Callable[[Context], Awaitable[None]]
Filter = Callable[[Context], bool]
P = TypeVar("P", bound=CallbackData)
TapHandler = Callable[[Context, P], Awaitable[None]]


@dataclass(frozen=True)
class Route:
    name: str
    handler: Handler
    filters: tuple[Filter, ...]

    def matches(self, ctx: Context) -> bool:
        return all(f(ctx) for f in self.filters)


class Router:
    """A feature's routes, tried in registration order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.routes: list[Route] = []

    def route(self, *filters: Filter) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes.append(Route(f"{self.name}.{handler.__name__}", handler, filters))
            return handler

        return register

    def tap(self, payload: type[P], *filters: Filter) -> Callable[[TapHandler[P]], TapHandler[P]]:
        """A route for taps on buttons of the ``payload`` class; the handler gets the typed payload:
        ``@router.tap(TaskTap) async def tap_task(ctx, tap: TaskTap)``."""

        def register(handler: TapHandler[P]) -> TapHandler[P]:
            async def run(ctx: Context) -> None:
                assert isinstance(ctx.payload, payload)
                await handler(ctx, ctx.payload)

            run.__doc__ = handler.__doc__
            self.routes.append(Route(f"{self.name}.{handler.__name__}", run, (tapped(payload), *filters)))
            return handler

        return register

    def command_words(self) -> frozenset[str]:
        """The command words this router answers (from its ``command`` / ``exact`` filters), case-folded and
        width-normalised: `config check` refuses them as request-type keywords."""
        return frozenset(
            word for route in self.routes for f in route.filters for word in getattr(f, "words", frozenset())
        )

    def commands(self) -> list[CommandWord]:
        """The command words as declared (spelling, whether text may follow, the roles that use them), in
        registration order: what the fallback suggests from (``bot.services.commands``)."""
        return [cw for route in self.routes for f in route.filters for cw in getattr(f, "declared", ())]


class Refused(Exception):
    """A handler's ``DomainError``, turned into its reply: the transaction is rolled back (nothing the handler did
    stays, its conversation change neither) and the pipeline writes only ``reply`` and the ``denial`` audit row, in a
    transaction of their own."""

    def __init__(self, route: str, reply: SendText, denial: Denial | None, actor_id: str) -> None:
        super().__init__(reply.text)
        self.route = route
        self.reply = reply
        self.denial = denial
        self.actor_id = actor_id


class Dispatcher:
    """Picks the first matching route across routers, in the order given once at assembly."""

    def __init__(self, routers: Sequence[Router]) -> None:
        self.routers = list(routers)
        self._commands: tuple[CommandWord, ...] | None = None

    def commands(self) -> tuple[CommandWord, ...]:
        """Every declared command word across the routers, in routing order, each spelling once (the routers are
        fixed at assembly, so this is computed once)."""
        if self._commands is None:
            seen: dict[str, CommandWord] = {}
            for router in self.routers:
                for cw in router.commands():
                    seen.setdefault(fold_word(cw.word), cw)
            self._commands = tuple(seen.values())
        return self._commands

    def resolve(self, ctx: Context) -> Route | None:
        for router in self.routers:
            for route in router.routes:
                if route.matches(ctx):
                    return route
        return None

    async def dispatch(self, ctx: Context) -> Route | None:
        """Run the first matching route. The one place a ``DomainError`` becomes a reply: it is raised on as
        ``Refused`` (the caller rolls back the handler's work and sends only that reply)."""
        route = self.resolve(ctx)
        if route is None:
            return None
        try:
            await route.handler(ctx)
        except DomainError as exc:
            reply = SendText(channel=ctx.event.channel, user_ids=(ctx.user.id,), text=await ctx.error_text(exc))
            raise Refused(route.name, reply, exc.denial, ctx.user.id) from exc
        return route


# ---- filters -------------------------------------------------------------------------------------------------


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff"


def split_command(text: str, keywords: Sequence[str]) -> str | None:
    """If ``text`` starts with one of ``keywords`` as a whole word, return the rest (stripped), else None.

    A Chinese keyword may be glued to Chinese text (``拜访浙一``); an ASCII keyword must end at a
    non-letter (``visit`` but not ``visitor``). The longest keyword wins.
    """
    norm = normalize_text(text)
    low = norm.lower()
    for kw in sorted(keywords, key=len, reverse=True):
        k = kw.lower()
        if not low.startswith(k):
            continue
        rest = norm[len(k) :]
        # A Chinese keyword may be glued to what follows ("拜访浙一", "修改V12"); an ASCII one may not.
        if rest and not (rest[0].isspace() or rest[0] in ":：" or _is_cjk(k[-1])):
            continue
        return rest.lstrip(" :：\t").strip()
    return None


@dataclass(frozen=True)
class CommandWord:
    """A command word as a route declares it: ``word`` as written, ``takes_args`` (``command``: text may follow;
    ``exact``: the whole message), ``roles`` that use it (empty: everyone). The roles are a declaration for help
    and the fallback's suggestions, not a permission: who may do what stays in the filters and services."""

    word: str
    takes_args: bool
    roles: frozenset[str] = frozenset()


class _WordFilter:
    """A text filter that declares the words it answers (``Router.command_words``, ``Router.commands``)."""

    def __init__(
        self, words: Sequence[str], check: Callable[[Context], bool], *, takes_args: bool, roles: Sequence[str]
    ) -> None:
        self.words = frozenset(fold_word(w) for w in words)
        self.declared = tuple(CommandWord(w, takes_args, frozenset(roles)) for w in words)
        self._check = check

    def __call__(self, ctx: Context) -> bool:
        return self._check(ctx)


def command(*keywords: str, roles: Sequence[str] = ()) -> Filter:
    """Text that starts with one of ``keywords``; sets ``ctx.args``. ``roles``: who uses it (``CommandWord``)."""

    def check(ctx: Context) -> bool:
        if not isinstance(ctx.event, TextMessage):
            return False
        rest = split_command(ctx.event.text, keywords)
        if rest is None:
            return False
        ctx.args = rest
        return True

    return _WordFilter(keywords, check, takes_args=True, roles=roles)


def exact(*words: str, roles: Sequence[str] = ()) -> Filter:
    """Text that is exactly one of ``words`` (case-insensitive, width-normalised). ``roles``: who uses it."""
    wanted = {normalize_text(w).lower() for w in words}

    def check(ctx: Context) -> bool:
        return isinstance(ctx.event, TextMessage) and normalize_text(ctx.event.text).lower() in wanted

    return _WordFilter(words, check, takes_args=False, roles=roles)


def tapped(*payloads: type[CallbackData]) -> Filter:
    """A card tap whose payload is of one of the ``payloads`` classes; sets ``ctx.payload`` (``Context.tapped``)."""

    def check(ctx: Context) -> bool:
        return isinstance(ctx.tapped(), payloads)

    return check


def in_flow(flow: str) -> Filter:
    def check(ctx: Context) -> bool:
        return ctx.conversation.flow == flow

    return check


def is_text(ctx: Context) -> bool:
    return isinstance(ctx.event, TextMessage)


def is_location(ctx: Context) -> bool:
    return isinstance(ctx.event, LocationShared)


def is_media(ctx: Context) -> bool:
    return isinstance(ctx.event, MediaMessage)


def is_card_action(ctx: Context) -> bool:
    return isinstance(ctx.event, CardAction)


def is_enter(ctx: Context) -> bool:
    return isinstance(ctx.event, EnterChat)


def has_role(*roles: str) -> Filter:
    def check(ctx: Context) -> bool:
        return bool(set(ctx.user.roles or ()) & set(roles))

    return check
