"""Visit plans in chat (issue 12, docs/plans.md), written once and run on the console and on WeCom: plan → visit →
我的计划 shows ✓; a manager plans for a rep and the rep is told; cancel; an ambiguous hospital is asked.

The clock stands at Monday 2026-11-23 10:00 in Shanghai (tests/conftest.py T0).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot.runtime import Runtime
from storage.models import AuditLog, PlanItem
from tests.scenario_driver import button, last_card

ZJU1 = "浙江大学医学院附属第一医院"
ZJU2 = "浙江大学医学院附属第二医院"
SRRSH = "浙江大学医学院附属邵逸夫医院"
PROVINCIAL = "浙江省人民医院"


async def items(rt: Runtime) -> list[PlanItem]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(PlanItem).order_by(PlanItem.id)))


async def test_plan_then_visit_then_my_plan_shows_it_done(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    await rep.say("计划 今天 浙一 浙二")
    [saved] = await rep.new_texts()
    assert saved.startswith("✅ 已计划 今天（11-23 周一）"), saved
    assert ZJU1 in saved and ZJU2 in saved
    assert not [c for c in await rep.cards() if c.buttons]  # saved at once: no card to confirm
    await rep.say("拜访 浙一 骨科 张主任 异议:价格")
    await rep.tap("提交", await last_card(rep))
    texts = await rep.new_texts()
    assert any(f"✓ 完成计划：{ZJU1}（今天" in t for t in texts), texts
    await rep.say("我的计划")
    [view] = await rep.new_texts()
    first, second = (await items(runtime))[:2]
    assert f"✓ P{first.id} {ZJU1}" in view, view
    assert f"○ P{second.id} {ZJU2}" in view, view
    assert "今天 11-23 周一（完成 1/2）" in view, view


async def test_a_week_item_and_a_duplicate(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    await rep.say("计划 本周 省人民 目的:新品试用")
    [saved] = await rep.new_texts()
    assert "已计划 本周" in saved and PROVINCIAL in saved and "目的：新品试用" in saved, saved
    await rep.say("计划 本周 省人民")
    [again] = await rep.new_texts()
    assert "都已在计划中，没有新增" in again, again
    assert len(await items(runtime)) == 1
    await rep.say("我的计划")
    [view] = await rep.new_texts()
    assert f"{PROVINCIAL}（本周内）" in view, view


async def test_a_manager_plans_for_a_rep_and_the_rep_is_told(chat: Any, runtime: Runtime) -> None:
    mgr = await chat("mgr01")
    rep = await chat("rep01")
    await mgr.say("计划 王磊 明天 浙一")
    [saved] = await mgr.new_texts()
    assert saved.startswith("✅ 已为 王磊 计划 明天（11-24 周二）"), saved
    told = await rep.new_texts()
    assert any(t.startswith(f"陈静 为你安排了计划：明天（11-24 周二） {ZJU1}") for t in told), told
    [item] = await items(runtime)
    assert (item.rep_id, item.source, item.created_by) == ("rep01", "manager", "mgr01")
    await mgr.say("我的计划 王磊")
    [view] = await mgr.new_texts()
    assert "王磊的计划" in view and f"○ P{item.id} {ZJU1}（11-24 周二）" in view, view


async def test_someone_outside_the_line_cannot_plan_for_a_rep(chat: Any, runtime: Runtime) -> None:
    member = await chat("log01")
    await member.say("计划 王磊 明天 浙一")
    assert await member.new_texts() == ["你没有权限执行此操作。"]
    assert await items(runtime) == []


async def test_cancel_by_name_and_by_number(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    await rep.say("计划 明天 浙一 浙二")
    await rep.new_texts()
    first, second = await items(runtime)
    await rep.say("取消计划 浙一 明天")
    assert await rep.new_texts() == [f"已取消计划：P{first.id} {ZJU1}（明天（11-24 周二））"]
    await rep.say(f"取消计划 P{second.id}")
    [text] = await rep.new_texts()
    assert text.startswith(f"已取消计划：P{second.id} {ZJU2}"), text
    assert [i.status for i in await items(runtime)] == ["cancelled", "cancelled"]
    async with runtime.db.read() as s:
        actions = list(await s.scalars(select(AuditLog.action).where(AuditLog.entity == "plan_item")))
    assert actions.count("plan.cancel") == 2
    await rep.say("我的计划")
    assert "还没有计划" in (await rep.new_texts())[0]


async def test_an_ambiguous_hospital_is_asked_with_buttons(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    await rep.say("计划 明天 浙大 省人民")
    choice = await last_card(rep)
    assert "「浙大」可能是以下医院" in choice.title, choice
    for name in (ZJU1, ZJU2, SRRSH):
        button(choice, name)
    assert await items(runtime) == []
    await rep.tap(ZJU2, choice)
    texts = await rep.new_texts()
    assert any(t.startswith("✅ 已计划 明天") and ZJU2 in t and PROVINCIAL in t for t in texts), texts
    assert len(await items(runtime)) == 2


async def test_a_past_day_is_refused_with_today(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    await rep.say("计划 昨天 浙一")
    texts = await rep.new_texts()
    assert any("11-22 周日 已经过去" in t and "今天是 11-23 周一" in t for t in texts), texts
    assert await items(runtime) == []


async def test_a_plan_without_a_day_asks_for_it_and_takes_a_correction(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    await rep.say("计划 浙一")
    texts = await rep.new_texts()
    assert any(t.startswith("计划哪天？") for t in texts), texts
    await rep.say("医院:浙二")  # a correction while the question waits
    assert any("✓ 医院：" + ZJU2 in t for t in await rep.new_texts())
    await rep.say("周三")
    *_, saved = await rep.new_texts()
    assert saved.startswith(f"✅ 已计划 11-25 周三：{ZJU2}"), saved
    [item] = await items(runtime)
    assert item.day.isoformat() == "2026-11-25"


async def test_a_manager_without_a_name_is_told_how_to_see_a_reps_plan(chat: Any) -> None:
    mgr = await chat("mgr01")
    await mgr.say("我的计划")
    assert await mgr.new_texts() == ["发「我的计划 王磊」查看下属的计划。"]
    await mgr.say("计划 明天 浙一")
    assert await mgr.new_texts() == ["请写明为谁安排，例如：计划 王磊 明天 浙一"]


async def test_an_unknown_hospital_is_said_and_the_others_are_planned(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    await rep.say("计划 明天 浙一 北京协和医院")
    texts = await rep.new_texts()
    assert any("找不到医院「北京协和医院」，没有计划它。" in t for t in texts), texts
    assert any(t.startswith(f"✅ 已计划 明天（11-24 周二）：{ZJU1}") for t in texts), texts
    assert len(await items(runtime)) == 1


async def test_a_manager_sending_a_bare_plan_is_asked_whose_before_any_question(chat: Any) -> None:
    mgr = await chat("mgr01")
    await mgr.say("计划")
    assert await mgr.new_texts() == ["请写明为谁安排，例如：计划 王磊 明天 浙一"]


async def test_help_names_the_plan_commands_for_reps_and_managers(chat: Any) -> None:
    rep, mgr = await chat("rep01"), await chat("mgr01")
    await rep.say("帮助")
    [text] = await rep.new_texts()
    assert "计划 明天 浙一 浙二 目的:新品试用" in text and "我的计划" in text and "取消计划 P12" in text
    await mgr.say("帮助")
    [text] = await mgr.new_texts()
    assert "计划 王磊 明天 浙一" in text and "我的计划 王磊" in text


async def test_a_visit_any_day_of_the_week_completes_a_week_item(chat: Any, clock: Any) -> None:
    rep = await chat("rep01")
    await rep.say("计划 本周 浙一")
    await rep.new_texts()
    clock.set(clock.now() + timedelta(days=2))  # Wednesday
    await rep.say("拜访 浙一 骨科 张主任 异议:价格")
    await rep.tap("提交", await last_card(rep))
    assert any(f"✓ 完成计划：{ZJU1}（本周）" in t for t in await rep.new_texts())
