"""The one domain error: a service refuses by raising it; the dispatcher turns it into the actor's reply."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Msg:
    """A parameter that is itself a text of the catalog, rendered in the same locale as the message around it."""

    key: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Denial:
    """An audit row a refusal leaves behind (who tried what), written although the rest is rolled back."""

    action: str
    entity: str
    entity_id: str | int | None
    changes: dict[str, Any] = field(default_factory=dict)


class DomainError(Exception):
    """A refusal carrying the message the user sees: an i18n key and its parameters, rendered in the actor's
    locale by the dispatcher (``bot.core.routing.Dispatcher.dispatch``), which also discards the handler's work.

    Parameters resolved when rendered: ``holder_id`` becomes ``holder`` (the person's name), ``state_key`` becomes
    ``state`` (the translated key), a ``Msg`` its text. ``denial`` is audited in the refusal's own transaction."""

    def __init__(self, key: str, *, denial: Denial | None = None, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params
        self.denial = denial
