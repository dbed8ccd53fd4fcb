"""The scheduled digest (issue 12): at 18:00 on working days each manager and director gets their digest once —
across a second look, a run that is retried after it sent, and days off — and a manager a follow-up card per rep
below the plan threshold; the weekly objections go to marketing once."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from bot.infra.clock import FixedClock
from bot.runtime import Runtime
from bot.services.plan_rule import span
from storage.models import Attachment, Customer, JobRun, OutboxMessage, PlanItem, Visit
from storage.vocab import PlanPeriod

SH = ZoneInfo("Asia/Shanghai")
MONDAY = date(2026, 11, 23)
SATURDAY = date(2026, 11, 28)


@pytest.fixture
def settings_overrides() -> dict[str, dict[str, Any]]:
    return {"digest": {"enabled": True}, "escalation": {"enabled": False}}


def at(day: date, hhmm: str = "18:00") -> datetime:
    hour, minute = (int(x) for x in hhmm.split(":"))
    return datetime.combine(day, time(hour, minute), tzinfo=SH).astimezone(UTC)


async def sent(rt: Runtime, kind: str) -> list[str]:
    """Recipients of the outbox rows of ``kind`` ("rich": digests, "card": cards), oldest first."""
    async with rt.db.read() as s:
        rows = await s.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id))
        return [r.recipient for r in rows]


async def run_digest(rt: Runtime) -> list[str]:
    return [r.outcome for r in await rt.jobs.run_due(["daily-digest"])]


class TestOnAWorkingDay:
    @pytest.fixture
    def clock(self) -> FixedClock:
        return FixedClock(at(MONDAY, "17:00"))  # the start's look finds Sunday's period: a day off, nothing sent

    async def test_each_manager_and_director_gets_the_digest_once(self, runtime: Runtime, clock: FixedClock) -> None:
        await runtime.jobs.idle()
        assert await sent(runtime, "rich") == []
        clock.set(at(MONDAY))
        assert await run_digest(runtime) == ["done"]
        first = await sent(runtime, "rich")
        assert sorted(first) == ["dir01", "mgr01"]
        assert await run_digest(runtime) == ["skipped"]
        # A run retried after it had sent (killed before its done mark): nobody gets it twice.
        async with runtime.db.transaction() as s:
            await s.execute(update(JobRun).where(JobRun.job == "daily-digest").values(status="failed"))
        assert await run_digest(runtime) == ["done"]
        assert await sent(runtime, "rich") == first
        assert await sent(runtime, "card") == []  # nobody had a plan: no follow-ups

    async def test_a_rep_below_plan_gives_their_manager_a_followup_card(
        self, runtime: Runtime, clock: FixedClock
    ) -> None:
        await runtime.jobs.idle()
        # rep01 plans three customers today and visits one: 33 % < 92 %.
        day, start, end = span(PlanPeriod.DAY, MONDAY, SH)
        now = runtime.clock.now()
        async with runtime.db.transaction() as s:
            ids = [c.id for c in (await s.scalars(select(Customer).order_by(Customer.id))).all()[:3]]
            for cid in ids:
                s.add(
                    PlanItem(
                        rep_id="rep01", customer_id=cid, period="day", day=day, starts_at=start, ends_at=end,
                        status="open", source="chat", created_by="rep01", created_at=now, updated_at=now,
                    )
                )  # fmt: skip
            s.add(
                Visit(
                    rep_id="rep01", customer_id=ids[0], contacts=[], products=[], visited_at=at(MONDAY, "09:30"),
                    source_channel="console", created_at=now, updated_at=now,
                )
            )  # fmt: skip
        clock.set(at(MONDAY))
        assert await run_digest(runtime) == ["done"]
        assert await sent(runtime, "card") == ["mgr01"]
        assert await run_digest(runtime) == ["skipped"]
        assert await sent(runtime, "card") == ["mgr01"]

    async def test_the_chart_goes_out_with_each_digest_once(self, runtime: Runtime, clock: FixedClock) -> None:
        await runtime.jobs.idle()
        day, start, end = span(PlanPeriod.DAY, MONDAY, SH)
        now = runtime.clock.now()
        async with runtime.db.transaction() as s:
            cid = (await s.scalars(select(Customer.id).order_by(Customer.id))).first()
            s.add(
                PlanItem(
                    rep_id="rep01", customer_id=cid, period="day", day=day, starts_at=start, ends_at=end,
                    status="open", source="chat", created_by="rep01", created_at=now, updated_at=now,
                )
            )  # fmt: skip
        clock.set(at(MONDAY))
        assert await run_digest(runtime) == ["done"]
        async with runtime.db.transaction() as s:
            await s.execute(update(JobRun).where(JobRun.job == "daily-digest").values(status="failed"))
        assert await run_digest(runtime) == ["done"]  # run again after it had sent
        async with runtime.db.read() as s:
            rows = (await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
            charts = (await s.scalars(select(Attachment).order_by(Attachment.owner_id))).all()
        # Each recipient: the digest, then its chart (their own stored image), once (mgr01's follow-up card after).
        mine = {
            who: [(r.kind, r.payload.get("media_id")) for r in rows if r.recipient == who and r.kind != "card"]
            for who in ("mgr01", "dir01")
        }
        assert [(c.owner_id, c.filename) for c in charts] == [
            ("dir01", "计划完成率-2026-11-23.png"),
            ("mgr01", "计划完成率-2026-11-23.png"),
        ]
        tokens = {c.owner_id: f"att-{c.token}" for c in charts}
        assert mine == {who: [("rich", None), ("media", tokens[who])] for who in ("mgr01", "dir01")}
        [media] = [r for r in rows if r.kind == "media" and r.recipient == "mgr01"]
        assert media.payload["caption"] == "计划完成率图：近7个工作日，1 人低于 92%"


class TestOnADayOff:
    @pytest.fixture
    def clock(self) -> FixedClock:
        return FixedClock(at(SATURDAY))

    async def test_nothing_is_sent_on_a_saturday(self, runtime: Runtime) -> None:
        await runtime.jobs.idle()
        assert await sent(runtime, "rich") == []
        assert await run_digest(runtime) == ["skipped"]  # the period is done: looked at, nothing to send


class TestTheWeeksObjections:
    @pytest.fixture
    def clock(self) -> FixedClock:
        return FixedClock(at(date(2026, 11, 27), "16:00"))  # Friday, before the 17:00 send

    async def test_marketing_gets_the_top_objections_with_examples_once(
        self, runtime: Runtime, clock: FixedClock
    ) -> None:
        await runtime.jobs.idle()
        now = runtime.clock.now()
        async with runtime.db.transaction() as s:
            cid = (await s.scalars(select(Customer.id).order_by(Customer.id))).first()
            said = [("价格", None), ("价格", "比竞品贵 15%"), ("其他", "医院在走招标流程"), ("价格", None)]
            for n, (objection, note) in enumerate(said):
                s.add(
                    Visit(
                        rep_id="rep01", customer_id=cid, contacts=[], products=[], objection=objection,
                        objection_note=note, visited_at=at(date(2026, 11, 23 + n), "10:00"),
                        source_channel="console", created_at=now, updated_at=now,
                    )
                )  # fmt: skip
        clock.set(at(date(2026, 11, 27), "17:00"))
        assert [r.outcome for r in await runtime.jobs.run_due(["weekly-objections"])] == ["done"]
        async with runtime.db.read() as s:
            [row] = (await s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "card"))).all()
        card = row.payload["card"]
        assert card["title"] == "本周客户异议 Top3（11-23 至 11-27）"
        assert [(f["label"], f["value"]) for f in card["fields"]] == [
            ("1. 价格", "3 次，例如：比竞品贵 15%"),
            ("2. 其他", "1 次，例如：医院在走招标流程"),
        ]
        assert sorted(row.payload["user_ids"]) == ["mkt01", "mkt02", "mkt_head"]  # one shared card, the department
        # Run again (a retry after it had sent): marketing is not told twice.
        async with runtime.db.transaction() as s:
            await s.execute(update(JobRun).where(JobRun.job == "weekly-objections").values(status="failed"))
        await runtime.jobs.run_due(["weekly-objections"])
        async with runtime.db.read() as s:
            assert len((await s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "card"))).all()) == 1


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_two_replicas_on_one_postgresql_send_each_digest_once(db_url: str) -> None:
    import asyncio

    from tests.conftest import make_settings

    clock = FixedClock(at(MONDAY))
    settings = make_settings(db_url, digest={"enabled": True}, escalation={"enabled": False})
    a, b = Runtime(settings, clock=clock), Runtime(settings, clock=clock)
    try:
        # Both start at 18:00 at once: the catch-up look of each runs the due period (one of them wins it).
        await asyncio.gather(a.start(), b.start())
        await asyncio.gather(a.jobs.idle(), b.jobs.idle())
        # Both look again at the same moment, and once more after a forced retry: still one digest each.
        await asyncio.gather(a.jobs.run_due(["daily-digest"]), b.jobs.run_due(["daily-digest"]))
        async with a.db.transaction() as s:
            await s.execute(update(JobRun).where(JobRun.job == "daily-digest").values(status="failed"))
        await asyncio.gather(a.jobs.run_due(["daily-digest"]), b.jobs.run_due(["daily-digest"]))
        assert sorted(await sent(a, "rich")) == ["dir01", "mgr01"]
    finally:
        await a.close()
        await b.close()
