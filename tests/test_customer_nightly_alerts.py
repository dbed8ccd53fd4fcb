"""The customers' nightly job end to end (bot.customer_nightly.run_night): the alerts of the night reach the
customer's rep and their manager through the outbox, once (a rerun of the night sends nothing), and the rep reads
the message in the console."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.customer_nightly import run_night
from bot.infra.clock import FixedClock
from bot.runtime import Runtime
from storage.models import ConsoleFeed, Customer, CustomerAlert, OutboxMessage, Visit

SH = ZoneInfo("Asia/Shanghai")
NIGHT = date(2026, 12, 5)


def at(day: date, hhmm: str) -> datetime:
    hour, minute = (int(x) for x in hhmm.split(":"))
    return datetime.combine(day, time(hour, minute), tzinfo=SH).astimezone(UTC)


@pytest.fixture
def settings_overrides() -> dict[str, dict[str, Any]]:
    # The job itself stays unscheduled (the test runs the night); one rule that needs no score.
    rule = {"kind": "same_objection", "title": "异议反复出现", "visits": 3, "every_days": 14}
    return {"customers": {"enabled": False, "alerts": {"same_objection": rule}}}


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(at(NIGHT, "02:00"))


async def test_the_nights_alerts_reach_the_rep_and_the_manager_once(runtime: Runtime) -> None:
    now = runtime.clock.now()
    async with runtime.db.transaction() as s:
        zhe2 = next(c for c in (await s.scalars(select(Customer))).all() if "浙二" in (c.aliases or []))
        zhe2.rep_id = "rep01"
        for day in (date(2026, 11, 20), date(2026, 11, 27), date(2026, 12, 4)):
            s.add(
                Visit(
                    rep_id="rep01", customer_id=zhe2.id, contacts=[], products=[], objection="价格",
                    visited_at=at(day, "10:00"), source_channel="console", created_at=now, updated_at=now,
                )
            )  # fmt: skip

    _, fired = await run_night(runtime, NIGHT)
    assert fired == 2  # one message to rep01, one to mgr01
    async with runtime.db.read() as s:
        rows = (await s.scalars(select(OutboxMessage).order_by(OutboxMessage.recipient))).all()
        [alert] = (await s.scalars(select(CustomerAlert))).all()
    assert [(r.kind, r.recipient) for r in rows] == [("text", "mgr01"), ("text", "rep01")]
    assert (alert.rule, alert.period, alert.night, alert.rep_id) == ("same_objection", "2026-11-30/14", NIGHT, "rep01")
    mine = rows[1].payload["text"]
    assert mine.startswith("客户提醒（12-05）：1 条新提醒\n🔴 浙二（A 类")
    assert "连续 3 次拜访异议都是「价格」" in mine and mine.endswith("发送「客户 浙二」查看详情")
    assert "【王磊】\n🔴 浙二" in rows[0].payload["text"]

    # The rep reads it in the console.
    await runtime.outbox.drain()
    async with runtime.db.read() as s:
        feed = (await s.scalars(select(ConsoleFeed).where(ConsoleFeed.user_id == "rep01"))).all()
    assert [f.body.get("text") for f in feed] == [mine]

    # The night again (a run taken over after a crash): nothing sent twice; the next night is in the period.
    assert (await run_night(runtime, NIGHT))[1] == 0
    assert (await run_night(runtime, date(2026, 12, 6)))[1] == 0
    async with runtime.db.read() as s:
        assert len((await s.scalars(select(OutboxMessage))).all()) == 2
