"""Follow-ups of the digest (issue 12; docs/digest.md): for each rep below the plan threshold at the digest time,
one card to their manager (``digest_followups``, unique per rep and day), handled with 已复盘 / 备注; the open
ones are listed in the next digest (``bot.services.digest``)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import and_, not_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.errors import DomainError
from bot.infra import audit
from bot.services.digest_model import Digest
from bot.services.plan_rule import done_clause
from cards.followup import FollowupView, followup_ref
from storage.models import Customer, DigestFollowup, PlanItem, User
from storage.vocab import SUPERVISORS, PlanPeriod, PlanStatus

OPEN, REVIEWED = "open", "reviewed"
ENTITY = "digest_followup"


async def open_items(session: AsyncSession, rep_id: str, day: date) -> list[str]:
    """The customers of the rep's plan for ``day`` not visited (yet): what the manager reviews."""
    rows = await session.scalars(
        select(Customer.name)
        .join(PlanItem, PlanItem.customer_id == Customer.id)
        .where(
            and_(
                PlanItem.rep_id == rep_id,
                PlanItem.day == day,
                PlanItem.period == PlanPeriod.DAY,
                PlanItem.status == PlanStatus.OPEN,
                not_(done_clause()),
            )
        )
        .order_by(PlanItem.id)
    )
    return list(rows)


async def create(
    session: AsyncSession, manager: User, digest: Digest, day: date, now: datetime, channel: str
) -> list[FollowupView]:
    """One follow-up per rep below the threshold who reports to ``manager`` directly (a nested manager gets their
    own reps'); a rep who has one for ``day`` already gets none again (unique per rep and day)."""
    below = {r.user: r for r in digest.below_threshold()}
    if not below:
        return []
    reps = (await session.scalars(select(User).where(User.id.in_(below), User.manager_id == manager.id))).all()
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else pg_insert
    made: list[FollowupView] = []
    for rep in sorted(reps, key=lambda u: u.id):
        line = below[rep.id]
        followup_id = await session.scalar(
            insert(DigestFollowup)
            .values(
                rep_id=rep.id,
                manager_id=manager.id,
                day=day,
                plan_items=line.plan_items,
                plan_done=line.plan_done,
                ref="",
                status=OPEN,
                created_at=now,
            )
            .on_conflict_do_nothing()
            .returning(DigestFollowup.id)
        )
        if followup_id is None:
            continue
        row = await session.get(DigestFollowup, followup_id)
        assert row is not None
        row.ref = followup_ref(followup_id)
        audit.record(
            session,
            at=now,
            action="followup.create",
            entity=ENTITY,
            entity_id=followup_id,
            channel=channel,
            changes={"rep": rep.id, "day": day.isoformat(), "done": line.plan_done, "items": line.plan_items},
        )
        made.append(
            FollowupView(
                followup_id, rep.name, day, line.plan_items, line.plan_done, await open_items(session, rep.id, day)
            )
        )
    return made


async def _load(session: AsyncSession, user: User, followup_id: int) -> DigestFollowup:
    row = await session.get(DigestFollowup, followup_id, with_for_update=True)
    if row is None:
        raise DomainError("stale_button")
    if row.manager_id != user.id and not SUPERVISORS & set(user.roles or []):
        raise DomainError("followup.not_yours")
    return row


async def view(session: AsyncSession, row: DigestFollowup) -> FollowupView:
    people = {
        u.id: u.name for u in await session.scalars(select(User).where(User.id.in_({row.rep_id, row.handled_by or ""})))
    }
    return FollowupView(
        row.id,
        people.get(row.rep_id, row.rep_id),
        row.day,
        row.plan_items,
        row.plan_done,
        await open_items(session, row.rep_id, row.day),
        reviewed_by=people.get(row.handled_by or "", row.handled_by) if row.status == REVIEWED else None,
        note=row.note,
    )


async def review(session: AsyncSession, user: User, followup_id: int, now: datetime, channel: str) -> FollowupView:
    """已复盘: once; a second tap says who did it."""
    row = await _load(session, user, followup_id)
    if row.status == REVIEWED:
        shown = await view(session, row)
        raise DomainError("followup.already", who=shown.reviewed_by or "")
    row.status, row.handled_by, row.handled_at = REVIEWED, user.id, now
    audit.record(
        session, at=now, action="followup.reviewed", entity=ENTITY, entity_id=row.id, actor_id=user.id, channel=channel
    )
    return await view(session, row)


async def add_note(
    session: AsyncSession, user: User, followup_id: int, text: str, now: datetime, channel: str
) -> FollowupView:
    """备注: the manager's note on the review (replaces an earlier one; the trail keeps both)."""
    text = text.strip()
    if not text:
        raise DomainError("followup.empty_note")
    row = await _load(session, user, followup_id)
    audit.record(
        session,
        at=now,
        action="followup.note",
        entity=ENTITY,
        entity_id=row.id,
        actor_id=user.id,
        channel=channel,
        changes={"note": [row.note, text[:2000]]},
    )
    row.note = text[:2000]
    return await view(session, row)
