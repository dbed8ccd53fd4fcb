"""PIPL anonymisation of a departed employee (docs/audit.md "Anonymisation"), an admin operation
(``salesbot audit anonymise USER``) that keeps the records and their chain valid.

The person's directory row keeps its id (a pseudonym the visits, requests and audit rows point to) and loses the
name and the channel ids; the audit rows about that person (entity ``user``) have their personal values replaced
by a placeholder. Those rows no longer match their hashes, so one ``audit.redact`` row is appended to the chain
naming each redacted row's seq, its hash (unchanged, so the next row still links), the hash of its redacted
content and the fields blanked: ``verify`` accepts a row that does not match its hash only when a chained redaction
row names it with that hash and its content matches the redacted hash.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.infra import audit
from storage import audit_chain
from storage.models import AuditLog, User, UserIdentity

REDACTED = "[已匿名]"
REDACT_ACTION = "audit.redact"
# What an audit row about a person may keep: org structure, not personal data.
KEEP = frozenset({"id", "roles", "department", "manager_id", "locale", "active", "file", "row"})


class UnknownUser(LookupError):
    pass


async def anonymise_user(session: AsyncSession, user_id: str, *, now: datetime, actor_id: str | None) -> int:
    """Anonymise one person; returns the number of audit rows redacted."""
    user = await session.get(User, user_id)
    if user is None:
        raise UnknownUser(user_id)
    user.name = f"已离职员工 {user_id}"
    user.active = False
    user.updated_at = now
    await session.execute(delete(UserIdentity).where(UserIdentity.user_id == user_id))
    rows = await session.scalars(
        select(AuditLog)
        .where(AuditLog.entity == "user", AuditLog.entity_id == user_id, AuditLog.action != REDACT_ACTION)
        .order_by(AuditLog.seq)
    )
    redacted: list[dict[str, Any]] = []
    for row in rows:
        fields = sorted(k for k, v in (row.changes or {}).items() if k not in KEEP and v != [REDACTED, REDACTED])
        if not fields:
            continue
        row.changes = {k: ([REDACTED, REDACTED] if k in fields else v) for k, v in row.changes.items()}
        # The hash of the redacted content: a later edit of a redacted row is still found.
        content = {name: getattr(row, name) for name in ("at", "actor_id", "channel", "action", "entity", "entity_id")}
        content["changes"] = row.changes
        redacted_hash = audit_chain.hash_fields(content, row.seq or 0, row.prev_hash or "", audit_chain.current_key())
        redacted.append({"seq": row.seq, "row_hash": row.row_hash, "redacted_hash": redacted_hash, "fields": fields})
    audit.record(
        session,
        at=now,
        action=REDACT_ACTION,
        entity="user",
        entity_id=user_id,
        actor_id=actor_id,
        changes={"reason": "PIPL", "rows": redacted},
    )
    return len(redacted)
