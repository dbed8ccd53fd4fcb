"""The manager's advice for a customer as read back (docs/customers.md "Seeing a customer"): the newest per
customer, for 客户 and for the plan lists (the morning reminder, 我的计划). Writing it is ``customer_view.advise``."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.infra import i18n
from cards.customer import AdviceLine, one_line
from storage.models import CustomerAdvice, User


async def newest_advice(session: AsyncSession, customer_ids: Iterable[int]) -> dict[int, AdviceLine]:
    """Each customer's newest advice (the highest id: two written in the same instant keep their order), with its
    author's name; one query for any number of customers."""
    ids = sorted(set(customer_ids))
    if not ids:
        return {}
    newest = (
        select(func.max(CustomerAdvice.id))
        .where(CustomerAdvice.customer_id.in_(ids))
        .group_by(CustomerAdvice.customer_id)
        .scalar_subquery()
    )
    rows = await session.execute(
        select(CustomerAdvice, User.name)
        .outerjoin(User, User.id == CustomerAdvice.author_id)
        .where(CustomerAdvice.id.in_(newest))
    )
    return {a.customer_id: AdviceLine(a.text, name or a.author_id, a.created_at) for a, name in rows.all()}


def advice_line(advice: AdviceLine | None, locale: str, limit: int = 40) -> str | None:
    """The one line a plan list shows under a customer: 💡 经理建议：… (cut to one line)."""
    if advice is None:
        return None
    return i18n.t(locale, "customer.plan_advice", text=one_line(advice.text, limit))
