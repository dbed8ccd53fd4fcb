"""The typed state of a form dialog, stored in ``ConversationState.data``.

Every flow has its own model (``VisitState`` in handlers/visits.py, ``RequestState`` in handlers/requests.py) on top
of ``DialogState``, which holds what the engine itself keeps: the stale-button token, the card counter, the stage,
the field being asked and the cards on screen. ``v`` is the shape's version: a stored dict of another version (a
user mid-dialog while the bot is upgraded) does not load; the engine then says so and starts afresh.
"""

from __future__ import annotations

import secrets
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from bot.core.conversation import EXIT_KEY

VERSION: Literal[1] = 1


class CustomerRef(BaseModel):
    """A hospital resolved from the directory: its id, and its name as shown."""

    model_config = ConfigDict(extra="forbid")

    id: int
    name: str


class Option(BaseModel):
    """One button of a choice card: what it shows, what it means."""

    model_config = ConfigDict(extra="forbid")

    label: str
    value: str


class OpenCard(BaseModel):
    """A card of the dialog on screen: enough to settle it later."""

    model_config = ConfigDict(extra="forbid")

    ref: str
    title: str
    # A confirmation card's rows (label, value) as shown.
    rows: list[list[str]] = []


class DialogState(BaseModel):
    """The engine's part of a dialog's state (a flow's model adds its fields)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    v: Literal[1] = VERSION
    token: str
    seq: int = 0
    stage: Literal["collect", "confirm"] = "collect"
    # The field the open question asks for (a typed answer goes there).
    awaiting: str | None = None
    # The correction hint is shown with the first question only.
    hinted: bool = False
    # Candidates for the awaited field found while parsing (e.g. hospitals matching an ambiguous name).
    options: list[Option] = []
    question: OpenCard | None = None
    confirm: OpenCard | None = None
    # Optional questions the user skipped (not asked again in this dialog).
    skipped: list[str] = []

    @classmethod
    def new_token(cls) -> str:
        return secrets.token_hex(4)

    # A flow's values, by field key (each flow maps them onto its typed fields).
    def get(self, key: str) -> Any:
        raise NotImplementedError

    def put(self, key: str, value: Any) -> None:
        raise NotImplementedError


class CustomerFieldState(DialogState):
    """A flow whose ``customer`` field is a matched hospital, kept as (id, name); its other fields are attributes
    of the same name."""

    customer_id: int | None = None
    customer_name: str | None = None

    def get(self, key: str) -> Any:
        if key == "customer":
            return self.customer_name if self.customer_id is not None else None
        return getattr(self, key)

    def put(self, key: str, value: Any) -> None:
        if key == "customer":
            self.customer_id, self.customer_name = value if value is not None else (None, None)
        else:
            setattr(self, key, value)


S = TypeVar("S", bound=DialogState)


def load(model: type[S], data: dict[str, Any]) -> S | None:
    """The stored state as ``model``, or None when it is of another shape or version (it cannot be continued)."""
    body = {k: v for k, v in data.items() if k != EXIT_KEY}
    if body.get("v") != VERSION:
        return None
    try:
        return model.model_validate(body)
    except ValidationError:
        return None


def dump(state: DialogState) -> dict[str, Any]:
    return state.model_dump(mode="json")
