"""Scheduled sends that go out once per person, kind and day (``digest_sends``): the claim is written in the same
transaction as the outbox rows it guards, so a run retried or taken over after it had sent (killed before its
``job_runs`` done mark), a restart or a second replica never sends the same thing twice."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import DigestSend


async def claim(session: AsyncSession, user_id: str, kind: str, day: date, now: datetime) -> bool:
    """This person's send of ``kind`` (≤ 16 characters: "daily", "objections", "plan-morning" …) for ``day``: True
    if nobody made it yet; the row commits with the caller's transaction."""
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else pg_insert
    made = await session.scalar(
        insert(DigestSend)
        .values(user_id=user_id, kind=kind, day=day, sent_at=now)
        .on_conflict_do_nothing()
        .returning(DigestSend.id)
    )
    return made is not None


async def made(session: AsyncSession, user_id: str, kind: str, day: date) -> bool:
    """Whether this person's send of ``kind`` for ``day`` was made already (a read; ``claim`` decides)."""
    found = await session.scalar(
        select(DigestSend.id).where(DigestSend.user_id == user_id, DigestSend.kind == kind, DigestSend.day == day)
    )
    return found is not None
