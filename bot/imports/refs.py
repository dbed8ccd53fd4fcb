"""What an import row points at: a rep by user id, a customer by name or alias (resolved as in chat)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from bot.imports.table import RowError, RowErrors
from bot.parsing.customer_match import CustomerEntry, CustomerMatcher
from storage.db import Database
from storage.models import Customer, User
from storage.vocab import Role

# The headers of the columns naming a rep (a user id) and a customer in the plan and visit files.
REP_ALIASES = ("代表", "销售代表", "代表ID")
CUSTOMER_ALIASES = ("客户", "医院", "客户名称", "医院名称")


@dataclass(frozen=True)
class Reps:
    """Who is in the directory (user id → roles), to check a ``rep`` cell."""

    roles: dict[str, list[str]]

    def check(self, errors: RowErrors, key: str, label: str, raw: str) -> str | None:
        """The user id when it names an existing user with the rep role; else a row error and None."""
        roles = self.roles.get(raw)
        if roles is None:
            errors.add(key, f"{label} '{raw}' 不存在，请填写系统中代表的用户ID（组织架构里的 user_id）")
            return None
        if Role.REP.value not in roles:
            errors.add(key, f"用户 '{raw}' 不是代表（角色：{'、'.join(roles) or '无'}），请填写代表的用户ID")
            return None
        return raw


async def load_reps(db: Database) -> Reps:
    async with db.read() as session:
        rows = await session.execute(select(User.id, User.roles))
        return Reps({user_id: list(roles or []) for user_id, roles in rows.all()})


class Customers:
    """The customer directory and the chat's matcher over it: a cell resolves as the same text typed in chat
    would (name, alias, abbreviation, pinyin, small typo); ambiguous or unknown text is that row's error."""

    def __init__(self, customers: Iterable[Customer]) -> None:
        self._by_id = {c.id: c for c in customers}
        self._matcher = CustomerMatcher(
            CustomerEntry(id=c.id, name=c.name, aliases=tuple(c.aliases or ())) for c in self._by_id.values()
        )
        # A file names the same hospitals again and again: text → (customer or None, the problem, matched exactly).
        self._seen: dict[str, tuple[Customer | None, str, bool]] = {}

    def resolve(self, errors: RowErrors, key: str, raw: str) -> Customer | None:
        """The customer ``raw`` means, or None with the reason (naming the candidates) added to ``errors``."""
        if raw not in self._seen:
            self._seen[raw] = self._match(raw)
        customer, problem, _ = self._seen[raw]
        if customer is None:
            errors.add(key, problem)
        return customer

    def guess_note(self, row: int, key: str, raw: str) -> RowError | None:
        """A note for a row whose hospital was resolved but not by its exact name or alias (a typo, pinyin, an
        abbreviation): in chat the rep sees the hospital on the confirmation card; here the admin reads it."""
        customer, _, exact = self._seen.get(raw) or self._match(raw)
        if customer is None or exact:
            return None
        return RowError(row, key, f"「{raw}」按「{customer.name}」导入，如不对请改成全称后重新导入")

    def _match(self, raw: str) -> tuple[Customer | None, str, bool]:
        match = self._matcher.match(raw)
        if match.best is not None:
            return self._by_id[match.best.id], "", match.status == "exact"
        names = "、".join(f"「{c.entry.name}」" for c in match.candidates)
        if match.status == "ambiguous":
            return None, f"医院「{raw}」不明确，可能是：{names}，请写全称", False
        if names:
            return None, f"找不到医院「{raw}」，是否是：{names}？请写全称", False
        return None, f"找不到医院「{raw}」，请检查名称或先导入客户（salesbot import customers）", False


async def load_customers(db: Database) -> Customers:
    async with db.read() as session:
        return Customers(await session.scalars(select(Customer)))
