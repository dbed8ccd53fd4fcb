"""Button payloads of the activity dialog (试用 / 学术 with parts missing; its choice card: which hospital)."""

from __future__ import annotations

from dataclasses import dataclass

from cards.visits import DialogChoice, DialogConfirm


@dataclass(frozen=True)
class ActivityChoice(DialogChoice, prefix="af"):
    pass


@dataclass(frozen=True)
class ActivityConfirm(DialogConfirm, prefix="ac"):
    """Declared for the engine; a trial or event is saved as soon as it is complete, so no card carries it."""
