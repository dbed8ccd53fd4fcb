"""Trials and academic events logged in chat (issue 14, docs/imports.md), run on the console, WeCom and DingTalk:
a rep logs a trial and an event, a repeat is "already logged", an unknown hospital is said, the marketing
department may log and logistics may not, every created row is audited with the chat channel and the actor.

The clock stands at Monday 2026-11-23 10:00 in Shanghai (tests/conftest.py T0).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select

from bot.runtime import Runtime
from storage.models import AuditLog, CustomerEvent, CustomerTrial
from tests.scenario_driver import button, last_card

ZJU1 = "浙江大学医学院附属第一医院"
ZJU2 = "浙江大学医学院附属第二医院"


async def trials(rt: Runtime) -> list[CustomerTrial]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(CustomerTrial).order_by(CustomerTrial.id)))


async def events(rt: Runtime) -> list[CustomerEvent]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(CustomerEvent).order_by(CustomerEvent.id)))


async def audits(rt: Runtime, entity: str) -> list[AuditLog]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(AuditLog).where(AuditLog.entity == entity).order_by(AuditLog.id)))


async def test_a_rep_logs_a_trial_once(chat: Any, runtime: Runtime, channel: str) -> None:
    rep = await chat("rep01")
    await rep.say("试用 浙一 超声刀X1")
    [saved] = await rep.new_texts()
    assert saved == f"✅ 已记录试用：{ZJU1} · 超声刀X1（11-23）", saved
    [row] = await trials(runtime)
    assert (row.product, row.day, row.source) == ("超声刀X1", date(2026, 11, 23), "chat")
    [entry] = await audits(runtime, "customer_trial")
    assert entry.entity_id == str(row.id) and entry.actor_id == "rep01" and entry.channel == channel
    assert entry.action == "chat.create" and entry.changes["product"] == [None, "超声刀X1"]
    await rep.say("试用 浙一 超声刀X1 今天")
    [again] = await rep.new_texts()
    assert "已记录过" in again and "没有重复记录" in again, again
    assert len(await trials(runtime)) == 1 and len(await audits(runtime, "customer_trial")) == 1
    await rep.say("试用 浙一 超声刀X1 昨天")
    [other_day] = await rep.new_texts()
    assert other_day.endswith("（11-22）"), other_day
    assert len(await trials(runtime)) == 2


async def test_a_rep_logs_an_event_with_attendees(chat: Any, runtime: Runtime, channel: str) -> None:
    rep = await chat("rep01")
    await rep.say("学术 浙二 骨科沙龙 参会:3 11-20")
    [saved] = await rep.new_texts()
    assert saved == f"✅ 已记录学术活动：{ZJU2} · 骨科沙龙，参会 3 人（11-20）", saved
    [row] = await events(runtime)
    assert (row.event, row.day, row.attendees, row.source) == ("骨科沙龙", date(2026, 11, 20), 3, "chat")
    [entry] = await audits(runtime, "customer_event")
    assert entry.actor_id == "rep01" and entry.channel == channel and entry.changes["attendees"] == [None, 3]
    await rep.say("学术 浙二 骨科沙龙 参会5人 11-20")
    [again] = await rep.new_texts()
    assert "这场活动已记录过" in again, again
    assert [e.attendees for e in await events(runtime)] == [3]


async def test_bad_lines_say_what_is_wrong(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    await rep.say("试用 火星医院 超声刀X1")
    [unknown] = await rep.new_texts()
    assert "没有找到医院「火星医院」" in unknown, unknown
    await rep.say("学术 浙二 骨科沙龙 参会:三")
    [bad_count] = await rep.new_texts()
    assert "参会人数「参会:三」不对" in bad_count, bad_count
    await rep.say("试用 浙一 超声刀X1 13-45")
    [bad_day] = await rep.new_texts()
    assert "日期「13-45」看不懂" in bad_day, bad_day
    assert await trials(runtime) == [] and await events(runtime) == []


async def test_marketing_may_log_and_logistics_may_not(chat: Any, runtime: Runtime) -> None:
    mkt = await chat("mkt01")
    await mkt.say("学术 浙一 处方点评 参会者沙龙 人数：12")
    [saved] = await mkt.new_texts()
    assert saved == f"✅ 已记录学术活动：{ZJU1} · 处方点评 参会者沙龙，参会 12 人（11-23）", saved
    logistics = await chat("log01")
    await logistics.say("试用 浙一 超声刀X1")
    [refused] = await logistics.new_texts()
    assert refused == "你没有权限执行此操作。", refused
    manager = await chat("mgr01")
    await manager.say("学术 浙一 骨科沙龙 参会:3")
    [refused_too] = await manager.new_texts()
    assert refused_too == "你没有权限执行此操作。", refused_too
    assert await trials(runtime) == [] and len(await events(runtime)) == 1


async def test_help_lists_the_commands_for_reps_and_marketing(chat: Any) -> None:
    for user in ("rep01", "mkt01"):
        person = await chat(user)
        await person.say("帮助")
        [text] = await person.new_texts()
        assert "试用 浙一 超声刀X1" in text and "学术 浙二 骨科沙龙" in text, (user, text)
    logistics = await chat("log01")
    await logistics.say("帮助")
    [text] = await logistics.new_texts()
    assert "试用" not in text, text


async def test_an_ambiguous_hospital_is_asked_with_buttons(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    await rep.say("学术 浙大 骨科沙龙 参会:4")
    choice = await last_card(rep)
    assert "「浙大」可能是以下医院" in choice.title, choice
    for name in (ZJU1, ZJU2):
        button(choice, name)
    assert await events(runtime) == []
    await rep.tap(ZJU2, choice)
    texts = await rep.new_texts()
    assert f"✅ 已记录学术活动：{ZJU2} · 骨科沙龙，参会 4 人（11-23）" in texts, texts
    [row] = await events(runtime)
    assert row.attendees == 4


async def test_missing_parts_are_asked_through_the_dialog(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    await rep.say("试用")
    texts = await rep.new_texts()
    assert texts and texts[-1].startswith("哪家医院的试用？"), texts
    await rep.say("浙大")
    choice = await last_card(rep)
    assert "「浙大」可能是以下医院" in choice.title, choice
    await rep.tap(ZJU1, choice)
    texts = await rep.new_texts()
    assert any(t.startswith("试用的是什么产品？") for t in texts), texts
    await rep.say("超声刀X1")
    texts = await rep.new_texts()
    assert f"✅ 已记录试用：{ZJU1} · 超声刀X1（11-23）" in texts, texts
    [row] = await trials(runtime)
    assert row.source == "chat"
    await rep.say("学术 浙二 骨科沙龙 昨天")
    texts = await rep.new_texts()
    assert any(t.startswith("这家医院有几人参会？") for t in texts), texts
    await rep.say("三个")
    texts = await rep.new_texts()
    assert any("参会人数「三个」不对" in t for t in texts), texts
    assert await events(runtime) == []
    await rep.say("3")
    texts = await rep.new_texts()
    assert f"✅ 已记录学术活动：{ZJU2} · 骨科沙龙，参会 3 人（11-22）" in texts, texts
