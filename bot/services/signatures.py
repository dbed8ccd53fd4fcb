"""Signed approvals (21 CFR Part 11 §11.50, issue 15; docs/compliance.md).

An action that means approval carries a ``signature`` object in its audit row's ``changes``: the meaning of the
signature (what the signer approved, in the org's words), the signer's id and name and the time. The record's
views show it (``Signed`` and ``line``): the task card and 进度 R…, the decided grade-change card, the unlock
replies, 历史. The three approvals: compliance's 完成 on a request's review task (审核通过), a manager's 同意 on
a grade change (同意调级), an admin's 解锁 of a visit (解锁).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.infra import i18n
from storage.models import AuditLog, User

# The department whose 完成 is an authorisation review (合规审核).
COMPLIANCE = "compliance"

REVIEW = "审核通过"
GRADE = "同意调级"
UNLOCK = "解锁"
# The stored meaning (the record's words) → the key it is shown by in the reader's language.
_SHOWN = {REVIEW: "sig.meaning.review", GRADE: "sig.meaning.grade", UNLOCK: "sig.meaning.unlock"}


def sign(meaning: str, signer: User, at: datetime) -> dict[str, Any]:
    """The ``signature`` object of an audit row."""
    return {"meaning": meaning, "signer_id": signer.id, "signer_name": signer.name, "at": at.isoformat()}


@dataclass(frozen=True)
class Signed:
    """A signature as views show it."""

    meaning: str
    signer_name: str
    at: datetime

    @classmethod
    def of(cls, sig: Any) -> Signed | None:
        if not isinstance(sig, dict) or not isinstance(sig.get("at"), str):
            return None
        try:
            at = datetime.fromisoformat(sig["at"])
        except ValueError:
            return None
        return cls(str(sig.get("meaning") or ""), str(sig.get("signer_name") or sig.get("signer_id") or ""), at)

    def meaning_in(self, locale: str) -> str:
        key = _SHOWN.get(self.meaning)
        return i18n.t(locale, key) if key else self.meaning

    def value(self, locale: str, tz: tzinfo) -> str:
        """许峰「审核通过」 11-23 10:00."""
        when = i18n.fmt_when(self.at, tz)
        return i18n.t(locale, "sig.value", name=self.signer_name, meaning=self.meaning_in(locale), when=when)

    def line(self, locale: str, tz: tzinfo) -> str:
        """✍ 签名：许峰「审核通过」 11-23 10:00."""
        return i18n.t(locale, "sig.line", value=self.value(locale, tz))


async def latest(session: AsyncSession, entity: str, entity_id: int | str, action: str) -> Signed | None:
    """The newest signature on ``entity``'s rows of ``action`` (e.g. the card's ``task.done``)."""
    rows = await session.scalars(
        select(AuditLog)
        .where(AuditLog.entity == entity, AuditLog.entity_id == str(entity_id), AuditLog.action == action)
        .order_by(AuditLog.id.desc())
    )
    for row in rows:
        signed = Signed.of((row.changes or {}).get("signature"))
        if signed is not None:
            return signed
    return None


# ---- the second factor: a one-time code ----------------------------------------------------------------------------

CODE_MINUTES = 5
# Wrong codes allowed before the approval must be started again (a fresh 完成 tap, a fresh code).
CODE_TRIES = 3


def new_code() -> str:
    """A one-time 6-digit code."""
    return f"{secrets.randbelow(10**6):06d}"


def code_digest(code: str, card_id: int, user_id: str) -> str:
    """What the conversation keeps of the code: its hash, bound to the card and the signer (never the code)."""
    return hashlib.sha256(f"{card_id}:{user_id}:{code}".encode()).hexdigest()


def code_expires(now: datetime) -> datetime:
    return now + timedelta(minutes=CODE_MINUTES)


def code_matches(typed: str, digest: str, card_id: int, user_id: str) -> bool:
    return hmac.compare_digest(code_digest(typed, card_id, user_id), digest)
