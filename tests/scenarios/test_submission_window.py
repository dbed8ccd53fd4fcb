"""The monthly submission window in chat (issue 15): a November visit is logged and corrected up to the end of
10 December (Shanghai); from 11 December a new November visit and a correction are refused naming the cut-off,
until an admin's 解锁 reopens that one visit."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.infra.clock import FixedClock
from bot.runtime import Runtime
from storage.models import Visit
from tests.scenario_driver import last_card

SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def scenario_overrides() -> dict[str, dict[str, Any]]:
    # Backdating up to 30 days, so that the window is the rule that bites.
    return {"visits": {"backdate_days": 30, "submission_cutoff_day": 10}}


async def test_november_closes_at_the_end_of_10_december_unless_unlocked(
    chat: Any, runtime: Runtime, clock: FixedClock
) -> None:
    clock.set(datetime(2026, 12, 10, 23, 59, 0, tzinfo=SH))
    rep, admin = await chat("rep01"), await chat("admin01")
    await rep.say("拜访 浙一 骨科 张主任 异议:价格 下一步:送样 时间:2026-11-30 15:00")
    await rep.tap("提交", await last_card(rep))
    async with runtime.db.read() as s:
        [visit] = await s.scalars(select(Visit))
    no = f"V{visit.id}"
    await rep.new_texts()

    clock.set(datetime(2026, 12, 10, 23, 59, 59, tzinfo=SH))  # the last second: still open
    await rep.say(f"修改 {no} 下一步:送资料")
    assert (await rep.new_texts())[0].startswith(f"已更正拜访 {no}")

    clock.set(datetime(2026, 12, 11, 0, 0, 0, tzinfo=SH))  # the cut-off
    await rep.say(f"修改 {no} 下一步:开会")
    assert await rep.new_texts() == [f"11 月的拜访已于 12-10 截止提交，如需修改请联系管理员解锁 {no}。"]
    await rep.say("拜访 浙一 骨科 张主任 异议:价格 下一步:送样 时间:2026-11-29 15:00")
    assert any("11 月的拜访已于 12-10 截止提交，如需补录请联系管理员。" in t for t in await rep.new_texts())

    await admin.say(f"解锁 {no}")
    assert (await admin.new_texts())[0].startswith(f"已解锁拜访 {no}")
    await rep.new_texts()
    await rep.say(f"修改 {no} 下一步:开会")
    assert (await rep.new_texts())[0].startswith(f"已更正拜访 {no}")
    async with runtime.db.read() as s:
        stored = await s.get(Visit, visit.id)
        count = len(list(await s.scalars(select(Visit.id))))
    assert stored is not None and stored.next_step == "开会"
    assert count == 1


async def test_a_correction_cannot_move_a_visit_into_a_closed_month(
    chat: Any, runtime: Runtime, clock: FixedClock
) -> None:
    clock.set(datetime(2026, 12, 11, 9, 0, tzinfo=SH))
    rep = await chat("rep01")
    await rep.say("拜访 浙一 骨科 张主任 异议:价格 下一步:送样 时间:2026-12-01 15:00")
    await rep.tap("提交", await last_card(rep))
    async with runtime.db.read() as s:
        [visit] = await s.scalars(select(Visit))
    no = f"V{visit.id}"
    await rep.new_texts()
    await rep.say(f"修改 {no} 时间:2026-11-30 15:00")
    assert await rep.new_texts() == [f"11 月的拜访已于 12-10 截止提交，如需修改请联系管理员解锁 {no}。"]
    await rep.say(f"修改 {no} 时间:2026-12-02 15:00")  # inside an open month: fine
    assert (await rep.new_texts())[0].startswith(f"已更正拜访 {no}")
