"""Exports in chat (issue 15, docs/exports.md) on the console, WeCom and DingTalk: an admin's 导出 拜访 本月 comes
back as a file (on the console a download link only they can open), a compliance member may export the audit
trail, a rep is refused in words, a period the bot cannot read is said; every export and refusal is audited.

The clock stands at Monday 2026-11-23 10:00 in Shanghai (tests/conftest.py T0).
"""

from __future__ import annotations

import io
from typing import Any

from openpyxl import load_workbook
from sqlalchemy import select

from bot.runtime import Runtime
from storage.models import AuditLog
from tests.scenario_driver import ConsoleChat


async def audits(rt: Runtime) -> list[AuditLog]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(AuditLog).where(AuditLog.entity == "export").order_by(AuditLog.id)))


async def test_an_admin_gets_this_months_visits_as_a_file(chat: Any, runtime: Runtime, channel: str) -> None:
    rep = await chat("rep01")
    await rep.say("拜访 浙一 骨科 张主任 异议:价格")
    admin = await chat("admin01")
    await admin.say("导出 拜访 本月")
    assert await admin.media() == ["file"]
    [entry] = await audits(runtime)
    assert (entry.actor_id, entry.channel, entry.entity_id) == ("admin01", channel, "visits")
    assert entry.changes["from"] == "2026-11-01" and entry.changes["to"] == "2026-11-30"
    assert entry.changes["format"] == "xlsx" and entry.changes["scope"] == "all"
    if isinstance(admin, ConsoleChat):
        await admin.user.refresh()
        [item] = [i for i in admin.user.items if i.get("media_url")]
        assert item["text"].startswith("拜访导出（2026-11-01 至 2026-11-30）"), item["text"]
        async with admin.user.session.get(admin.user.server.make_url(item["media_url"])) as r:
            assert r.status == 200
            data = await r.read()
        sheet = load_workbook(io.BytesIO(data), read_only=True).active
        assert sheet is not None
        table = list(sheet.iter_rows(values_only=True))
        assert table[0][:4] == ("编号", "拜访时间", "代表账号", "代表")
        assert len(table) == 1 + entry.changes["rows"]
        # Nobody else opens it: the rep whose visits it holds gets the answer of a missing file.
        other = await chat("rep01")
        assert isinstance(other, ConsoleChat)
        async with other.user.session.get(other.user.server.make_url(item["media_url"])) as r:
            assert r.status == 404


async def test_compliance_exports_the_audit_trail_and_a_rep_is_refused(chat: Any, runtime: Runtime) -> None:
    cmp = await chat("cmp01")
    await cmp.say("导出 审计 2026-11")
    assert await cmp.media() == ["file"]
    rep = await chat("rep01")
    await rep.say("导出 拜访 本月")
    assert await rep.new_texts() == ["只有管理员和合规部可以导出记录。如需数据，请联系合规部。"]
    assert await rep.media() == []
    entries = await audits(runtime)
    assert [(e.action, e.actor_id) for e in entries] == [("export", "cmp01"), ("export.denied", "rep01")]


async def test_a_period_or_kind_the_bot_cannot_read_is_said(chat: Any) -> None:
    admin = await chat("admin01")
    await admin.say("导出 拜访 下下月")
    assert await admin.new_texts() == ["看不懂时间「下下月」。可以写：本月、上月、本周、2026-11、11-01~11-30"]
    await admin.say("导出 客户 本月")
    [usage] = await admin.new_texts()
    assert usage.startswith("请这样写：导出 拜访|申请|任务|审计|计划"), usage
