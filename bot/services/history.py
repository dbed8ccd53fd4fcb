"""历史 V12 / R3 / T5 / G3: a record's audit trail as people read it (issue 15, docs/compliance.md).

``trail`` finds the record, checks that the reader may see it and collects its audit rows (a request's with its
cards'), oldest first; ``lines`` renders them: when (org time zone), who, through which channel, what, and every
changed field as 旧值 → 新值, plus the signature of an approval. Unknown and not-visible records get the same
refusal, so the answer does not tell whether a number exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.errors import DomainError
from bot.infra import audit, i18n
from bot.services import escalation_words as words
from bot.services import requests as req
from bot.services.plans import reports_to
from bot.services.signatures import COMPLIANCE, Signed
from storage.models import AuditLog, Customer, GradeChange, SupportRequest, TaskCard, User, Visit
from storage.vocab import CARD_ENTITY, DEPARTMENT_ROLES, SUPERVISORS, CardEvent

_REF = re.compile(r"^([VvRrTtGg])(\d{1,12})$")
_KIND = {"v": "visit", "r": "request", "t": CARD_ENTITY, "g": "grade_change"}


@dataclass(frozen=True)
class Trail:
    """The record (``no``: V12 …), its audit rows oldest first, and the people and customers they name."""

    no: str
    kind: str
    rows: list[AuditLog]
    people: dict[str, User]
    customers: dict[int, str]


def is_compliance(user: User) -> bool:
    return user.department == COMPLIANCE and bool(DEPARTMENT_ROLES & set(user.roles or []))


def sees_everything(user: User) -> bool:
    """Directors, admins and the compliance department see every record's history."""
    return bool(SUPERVISORS & set(user.roles or [])) or is_compliance(user)


async def _owner_or_above(session: AsyncSession, user: User, owner_id: str | None) -> bool:
    """The record's rep, or one of their managers up the chain."""
    if owner_id is None:
        return False
    if owner_id == user.id:
        return True
    owner = await session.get(User, owner_id)
    return owner is not None and await reports_to(session, owner, user.id)


async def _visit_rows(session: AsyncSession, user: User, record_id: int) -> list[AuditLog] | None:
    visit = await session.get(Visit, record_id)
    if visit is None or not (sees_everything(user) or await _owner_or_above(session, user, visit.rep_id)):
        return None
    return await audit.history(session, "visit", record_id)


async def _request_visible(session: AsyncSession, user: User, request: SupportRequest) -> bool:
    return await req.may_view(session, user, request) or await _owner_or_above(session, user, request.rep_id)


async def _request_rows(session: AsyncSession, user: User, record_id: int) -> list[AuditLog] | None:
    request = await session.get(SupportRequest, record_id)
    if request is None or not (sees_everything(user) or await _request_visible(session, user, request)):
        return None
    rows = await audit.history(session, "request", record_id)
    for card in await req.cards_of(session, record_id):
        rows += await audit.history(session, CARD_ENTITY, card.id)
    return sorted(rows, key=lambda r: (r.at, r.id))


async def _card_rows(session: AsyncSession, user: User, record_id: int) -> list[AuditLog] | None:
    card = await session.get(TaskCard, record_id)
    request = await session.get(SupportRequest, card.request_id) if card is not None else None
    if card is None or request is None:
        return None
    if not (sees_everything(user) or req.may_act(user, card) or await _request_visible(session, user, request)):
        return None
    return await audit.history(session, CARD_ENTITY, record_id)


async def _grade_rows(session: AsyncSession, user: User, record_id: int) -> list[AuditLog] | None:
    change = await session.get(GradeChange, record_id)
    if change is None:
        return None
    customer = await session.get(Customer, change.customer_id)
    involved = user.id in {change.requested_by, change.approver_id, change.decided_by}
    owner = customer.rep_id if customer is not None else None
    if not (sees_everything(user) or involved or await _owner_or_above(session, user, owner)):
        return None
    return await audit.history(session, "grade_change", record_id)


_ROWS = {"visit": _visit_rows, "request": _request_rows, CARD_ENTITY: _card_rows, "grade_change": _grade_rows}


async def trail(session: AsyncSession, user: User, args: str) -> Trail:
    """The audit trail of the record ``args`` names (V12, R3, T5, G3), for a reader who may see the record."""
    text = args.split(" ", 1)[0].strip() if args else ""
    m = _REF.match(text)
    if m is None:
        raise DomainError("hist.usage")
    no = f"{m.group(1).upper()}{m.group(2)}"
    kind = _KIND[m.group(1).lower()]
    rows = await _ROWS[kind](session, user, int(m.group(2)))
    if rows is None:
        raise DomainError("hist.not_found", no=no)
    ids = words.user_ids(rows) | {str(s.get("signer_id")) for s in (signature_of(r) for r in rows) if s}
    found = await session.scalars(select(User).where(User.id.in_(ids - {"", "None"})))
    customer_ids = {int(c) for r in rows for c in _customer_ids(r.changes)}
    names = await session.execute(select(Customer.id, Customer.name).where(Customer.id.in_(customer_ids)))
    return Trail(no, kind, rows, {u.id: u for u in found}, {int(i): n for i, n in names.all()})


def _customer_ids(changes: dict[str, Any]) -> list[int]:
    out: list[int] = []
    for key in ("customer_id", "customer"):
        value = changes.get(key)
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, int):
                out.append(v)
    return out


def signature_of(row: AuditLog) -> dict[str, Any] | None:
    """The signature an approval's audit row carries (``changes["signature"]``), if any."""
    sig = (row.changes or {}).get("signature")
    return sig if isinstance(sig, dict) else None


# ---- rendering ---------------------------------------------------------------------------------------------------

# Audit fields → the label key people know them by (visit fields as on the card; request and card words).
_LABELS = {
    "customer_id": "field.customer",
    "customer": "field.customer",
    "ward": "field.ward",
    "contacts": "field.contacts",
    "topics": "field.topics",
    "products": "field.products",
    "objection": "field.objection",
    "objection_note": "field.objection_note",
    "commitments": "field.commitments",
    "next_step": "field.next_step",
    "attitude": "field.attitude",
    "visited_at": "field.visited_at",
    "location_status": "field.location",
    "distance_m": "hist.field.distance_m",
    "unlocked_until": "hist.field.unlocked_until",
    "state": "hist.field.state",
    "holder": "hist.field.holder",
    "grade": "hist.field.grade",
    "reason": "hist.field.reason",
    "needed_at": "hist.field.needed_at",
    "dictated": "hist.field.dictated",
    "department": "hist.field.department",
}
# Fields not worth a line: ids the header already names, and the machinery's own bookkeeping.
_SKIPPED = {"signature", "request_id", "recipients", "visit_id", "type", "fields", "as", "file", "row", "trigger"}
# Actions whose changes are the record's values (a list is a value, not a pair of old and new).
_SNAPSHOTS = {"visit.create", "visit.import", "request.create", CardEvent.CREATE.value}


@dataclass(frozen=True)
class Reader:
    """The reader's language and the org's time zone; department key → its name in that language."""

    locale: str
    tz: tzinfo
    departments: dict[str, str] = field(default_factory=dict)

    def t(self, key: str, **params: Any) -> str:
        return i18n.t(self.locale, key, **params)


def _value(r: Reader, key: str, value: Any, trail_: Trail) -> str:
    if value is None or value == "" or value == []:
        return r.t("hist.empty")
    if key in ("customer_id", "customer") and isinstance(value, int):
        return trail_.customers.get(value, r.t("hist.empty"))
    if key == "holder" and isinstance(value, str):
        user = trail_.people.get(value)
        return user.name if user is not None else value
    if key == "state" and isinstance(value, str):
        for prefix in ("task.state.", "grade.state."):
            if f"{prefix}{value}" in i18n.CATALOG:
                return r.t(f"{prefix}{value}")
    if key == "location_status" and isinstance(value, str):
        return r.t("hist.location.ok" if value == "ok" else "hist.location.missing")
    if key == "distance_m" and isinstance(value, int | float):
        return i18n.fmt_distance(float(value), r.locale)
    if key == "department" and isinstance(value, str):
        return r.departments.get(value, value)
    if key == "dictated":
        return r.t("hist.yes")
    if isinstance(value, bool):
        return r.t("hist.yes" if value else "hist.no")
    if isinstance(value, str) and key in ("visited_at", "unlocked_until", "needed_at"):
        try:
            return i18n.fmt_when(datetime.fromisoformat(value), r.tz)
        except ValueError:
            return value
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    return str(value)


def _field_lines(r: Reader, row: AuditLog, trail_: Trail) -> list[str]:
    out: list[str] = []
    for key, value in (row.changes or {}).items():
        if key in _SKIPPED or key not in _LABELS:
            continue
        label = r.t(_LABELS[key])
        if row.action not in _SNAPSHOTS and isinstance(value, list) and len(value) == 2:
            old, new = value
            out.append(f"    {label}：{_value(r, key, old, trail_)} → {_value(r, key, new, trail_)}")
        elif value not in (None, "", []):
            out.append(f"    {label}：{_value(r, key, value, trail_)}")
    return out


def _what(r: Reader, row: AuditLog, trail_: Trail) -> str:
    key = f"hist.action.{row.action}"
    if key in i18n.CATALOG:
        return r.t(key)
    try:
        CardEvent(row.action)
    except ValueError:
        return r.t("hist.action.other")
    people = {uid: words.person_of(u, "") for uid, u in trail_.people.items()}
    return words.sentence(words.Words(r.locale, r.tz, people), row)


def lines(r: Reader, trail_: Trail) -> list[str]:
    """The trail as a readable list, oldest first."""
    out = [r.t(f"hist.header.{trail_.no[0].lower()}", no=trail_.no)]
    if not trail_.rows:
        out.append(r.t("hist.no_rows"))
    for row in trail_.rows:
        user = trail_.people.get(row.actor_id or "")
        who = user.name if user is not None else (row.actor_id or r.t("escw.system"))
        # Each channel (and the import) has its name in the catalog (hist.channel.<name>); anything else: 系统.
        key = f"hist.channel.{row.channel}"
        channel = r.t(key) if key in i18n.CATALOG else r.t("hist.channel.system")
        # In a request's trail, each card's rows say which card (T3).
        card = f"T{row.entity_id} " if trail_.kind == "request" and row.entity == CARD_ENTITY else ""
        out.append(f"{i18n.fmt_when(row.at, r.tz)} · {who} · {channel} · {card}{_what(r, row, trail_)}")
        out += _field_lines(r, row, trail_)
        signed = Signed.of(signature_of(row))
        if signed is not None:
            out.append("    " + signed.line(r.locale, r.tz))
    return out
