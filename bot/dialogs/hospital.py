"""The hospital field that every form naming a customer shares (visits, requests; plans next): its state, the
lookup by what the rep typed, and the candidates offered when that is not one hospital."""

from __future__ import annotations

from typing import Generic, TypeVar

from bot.dialogs.engine import FormDialog
from bot.dialogs.state import CustomerRef, DialogState
from cards.payload import parse_id
from storage.models import Customer


class HospitalState(DialogState):
    """A dialog state with a hospital (resolved from the directory)."""

    customer: CustomerRef | None = None


H = TypeVar("H", bound=HospitalState)


class HospitalDialog(FormDialog[H], Generic[H]):
    """A dialog whose form has a ``customer`` field."""

    # The hospital's row as last loaded for this event (validators, rows and submit all ask for it).
    _loaded: Customer | None = None

    async def customer(self) -> Customer | None:
        """The chosen hospital's row, loaded once per event."""
        ref = self.state.customer
        if ref is None:
            return None
        if self._loaded is None or self._loaded.id != ref.id:
            self._loaded = await self.ctx.session.get(Customer, ref.id)
        return self._loaded

    async def set_customer_text(self, text: str) -> None:
        """Resolve ``text`` to one hospital, or say why not and offer the candidates as a choice card."""
        matcher = await self.ctx.runtime.directory.matcher(self.ctx.session)
        result = matcher.match(text)
        if result.best is not None:
            self.set("customer", CustomerRef(id=result.best.id, name=result.best.name))
            return
        self.drop("customer")
        options = [(c.entry.name, str(c.entry.id)) for c in result.candidates]
        if result.status == "ambiguous":
            self.note("visit.choose_customer", text=text)
        else:
            names = "、".join(name for name, _ in options)
            suggest = self.ctx.t("visit.suggest", names=names) if names else ""
            self.note("visit.unknown_customer", text=text, suggest=suggest)
        if options:
            self.offer("customer", options)

    async def tapped(self, key: str, value: str) -> bool:
        """A hospital button carries the customer's id (gone from the directory since: a stale button)."""
        if key != "customer":
            return await super().tapped(key, value)
        customer_id = parse_id(value)
        customer = await self.ctx.session.get(Customer, customer_id) if customer_id is not None else None
        if customer is None:
            return False
        self.set("customer", CustomerRef(id=customer.id, name=customer.name))
        return True

    def shown(self, key: str) -> str:
        if key == "customer":
            return self.state.customer.name if self.state.customer else ""
        return super().shown(key)
