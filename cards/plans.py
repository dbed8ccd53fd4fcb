"""Button payloads of the plan dialog (its choice card: which hospital an ambiguous name meant)."""

from __future__ import annotations

from dataclasses import dataclass

from cards.visits import DialogChoice, DialogConfirm


@dataclass(frozen=True)
class PlanChoice(DialogChoice, prefix="pf"):
    pass


@dataclass(frozen=True)
class PlanConfirm(DialogConfirm, prefix="pc"):
    """Declared for the engine; a plan is saved as soon as it is complete, so no card carries it today."""
