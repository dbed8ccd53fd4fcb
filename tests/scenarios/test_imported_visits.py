"""Imported visits in chat (issue 12), written once and run on the console and on WeCom: they are listed like any
visit, their rep cannot 修改 them (not even right after the import, inside the correction window) and an admin's
解锁 is refused, each with a zh-CN reason; nothing is changed or unlocked.

The clock stands at Monday 2026-11-23 10:00 in Shanghai (tests/conftest.py T0).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.imports.visits import import_visits
from bot.infra.clock import FixedClock
from bot.runtime import Runtime
from storage.models import AuditLog, Visit

FILE = (
    "代表,医院,科室,联系人,拜访时间,异议,下一步\n"
    "rep01,浙一,骨科,张主任,2026-11-23 09:00,价格,送样\n"  # this morning
)


async def imported(runtime: Runtime, clock: FixedClock, tmp_path: Path) -> Visit:
    path = tmp_path / "visits.csv"
    path.write_text(FILE, encoding="utf-8")
    settings = runtime.settings
    report = await import_visits(runtime.db, path, now=clock.now(), cfg=settings.visits, tz=settings.org.tz)
    assert report.errors == []
    async with runtime.db.read() as session:
        [visit] = await session.scalars(select(Visit))
    return visit


async def test_imported_visit_cannot_be_edited_or_unlocked_in_chat(
    chat: Any, runtime: Runtime, clock: FixedClock, tmp_path: Path
) -> None:
    visit = await imported(runtime, clock, tmp_path)
    no = f"V{visit.id}"
    rep, admin = await chat("rep01"), await chat("admin01")

    await rep.say("我的拜访")
    [listing] = await rep.new_texts()
    assert "浙江大学医学院附属第一医院" in listing and "无定位" in listing, listing

    await rep.say(f"修改 {no} 下一步:送资料")
    assert await rep.new_texts() == [
        f"拜访 {no} 是从表格导入的历史记录，不能在聊天里修改。如需更正，请联系管理员修改表格后重新导入。"
    ]
    await admin.say(f"解锁 {no}")
    assert await admin.new_texts() == [
        f"拜访 {no} 是从表格导入的历史记录，不能解锁。如需更正，请修改表格后重新导入（salesbot import visits）。"
    ]
    assert await rep.new_texts() == []  # no unlock notice
    await rep.say(f"修改 {no} 下一步:送资料")
    assert (await rep.new_texts())[0].startswith(f"拜访 {no} 是从表格导入的历史记录")

    async with runtime.db.read() as session:
        stored = await session.get(Visit, visit.id)
        actions = list(await session.scalars(select(AuditLog.action).where(AuditLog.entity == "visit")))
    assert stored is not None
    assert (stored.next_step, stored.unlocked_until) == ("送样", None)
    assert actions == ["visit.import"]
