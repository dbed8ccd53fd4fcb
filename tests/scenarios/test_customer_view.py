"""Seeing a customer and the manager's advice (issue 14, docs/customers.md "Seeing a customer"), run on the console,
WeCom and DingTalk: ``客户 浙二`` shows every part on a fixed data set (scores over ten weeks, alerts, visits with
objections, open and settled requests, plan items, advice); a customer without a score says so; who sees what; the
advice flow (the manager leaves it → the rep is told → it shows in 客户, the morning plan list and 我的计划); the
refusals.

The clock stands at Monday 2026-11-23 10:00 in Shanghai (tests/conftest.py T0): the newest score is the night of
11-23. 浙二 is rep01's (王磊, manager mgr01 陈静), 浙一 rep02's; mgr02 is a manager with nobody below them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.infra.clock import FixedClock
from bot.plan_reminders import MORNING
from bot.runtime import Runtime
from storage.models import (
    AuditLog,
    Customer,
    CustomerAdvice,
    CustomerAlert,
    CustomerScore,
    PlanItem,
    SupportRequest,
    TaskCard,
    User,
    Visit,
)
from tests.scenario_driver import Chat, button, last_card

SH = ZoneInfo("Asia/Shanghai")
ZJU1 = "浙江大学医学院附属第一医院"
ZJU2 = "浙江大学医学院附属第二医院"
NIGHT = date(2026, 11, 23)
# The newest score of each of the eight weeks shown, oldest first (weeks from Monday 10-05 to Monday 11-23).
WEEKLY = [88.0, 86.0, 85.0, 70.0, 64.0, 52.0, 40.0, 75.0]


@pytest.fixture
def scenario_overrides() -> dict[str, dict[str, Any]]:
    return {"plans": {"morning_reminder": "08:30"}}


def local(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SH).astimezone(UTC)


async def ids(rt: Runtime) -> dict[str, int]:
    async with rt.db.read() as s:
        return {c.name: c.id for c in await s.scalars(select(Customer))}


async def seed(rt: Runtime) -> None:
    """The fixed data set (see the module docstring)."""
    by_name = await ids(rt)
    zju2, zju1 = by_name[ZJU2], by_name[ZJU1]
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        for customer_id, rep in ((zju2, "rep01"), (zju1, "rep02")):
            customer = await s.get(Customer, customer_id)
            assert customer is not None
            customer.rep_id = rep
        outsider = User(id="mgr02", name="钱进", roles=["manager"], created_at=now, updated_at=now)
        outsider.set_channel_id("wecom", "mgr02", now)  # as the org file gives everyone (the WeCom runs need it)
        s.add(outsider)
        # Nightly rows from 09-14 (ten weeks and a day): each week's nights score its figure, the week before the
        # eight shown scores 99 (not shown), the newest night carries the components.
        first_week = NIGHT - timedelta(days=7 * 7)
        night = NIGHT - timedelta(days=70)
        while night <= NIGHT:
            week = (night - first_week).days // 7
            score = WEEKLY[week] if week >= 0 else 99.0
            s.add(
                CustomerScore(
                    customer_id=zju2,
                    night=night,
                    score=score,
                    purchases=90.0,
                    trials=30.0,
                    events=100.0,
                    purchases_amount=Decimal("123000"),
                    trials_count=2,
                    attendees=15,
                    grade="A",
                    suggested_grade="B" if night == NIGHT else "A",
                    computed_at=now,
                )
            )
            night += timedelta(days=1)
        for night, title, level, rule in (
            (date(2026, 11, 20), "新品试用停滞", "red", "trials_stalled"),
            (date(2026, 11, 9), "值得开发", "info", "worth_developing"),
            (date(2026, 10, 1), "健康分下滑", "red", "score_drop"),  # older than 30 days: not shown
        ):
            s.add(
                CustomerAlert(
                    customer_id=zju2,
                    rule=rule,
                    kind="component_zero",
                    level=level,
                    title=title,
                    period=f"{night.isoformat()}/7",
                    night=night,
                    rep_id="rep01",
                    detail={},
                    created_at=now,
                )
            )
        for day, objection, note, next_step in (
            (date(2026, 11, 10), "价格", "比竞品贵", "送样"),
            (date(2026, 11, 16), "价格", None, "约科室会"),
            (date(2026, 11, 20), "其他", "医院在走招标流程", "等招标结果"),
        ):
            at = local(day.year, day.month, day.day, 10)
            s.add(
                Visit(
                    rep_id="rep01",
                    customer_id=zju2,
                    ward="脊柱外科",
                    contacts=["刘主任"],
                    topics="新品介绍",
                    objection=objection,
                    objection_note=note,
                    next_step=next_step,
                    visited_at=at,
                    source_channel="console",
                    created_at=at,
                    updated_at=at,
                )
            )
        requests = []
        for status in ("open", "done"):
            request = SupportRequest(
                type_key="surgery_support",
                rep_id="rep01",
                customer_id=zju2,
                ward="骨科",
                fields={},
                status=status,
                source_channel="console",
                created_at=local(2026, 11, 20, 9),
                updated_at=now,
            )
            s.add(request)
            requests.append((request, status))
        await s.flush()
        for request, status in requests:
            s.add(
                TaskCard(
                    request_id=request.id,
                    rep_id="rep01",
                    department="logistics",
                    ref=f"t-view-{request.id}",
                    title="跟台",
                    state="claimed" if status == "open" else "done",
                    first_response_hours=2,
                    complete_hours=24,
                    respond_by=now,
                    due_at=now + timedelta(days=1),
                    created_at=now,
                    state_since=now,
                    updated_at=now,
                )
            )
        day = date(2026, 11, 25)
        s.add(
            PlanItem(
                rep_id="rep01",
                customer_id=zju2,
                period="day",
                day=day,
                purpose="新品试用",
                starts_at=local(2026, 11, 25),
                ends_at=local(2026, 11, 26),
                status="open",
                source="chat",
                created_by="rep01",
                created_at=now,
                updated_at=now,
            )
        )


async def ask(person: Chat, words: str) -> str:
    """``person`` sends ``words``; the customer view they get back, every part of it, as read."""
    before = len(await person.rich())
    await person.say(words)
    got = await person.rich()
    assert len(got) > before, (words, await person.new_texts())
    return "\n".join(got[before:])


async def plan_no(rt: Runtime) -> str:
    async with rt.db.read() as s:
        item = await s.scalar(select(PlanItem).where(PlanItem.day == date(2026, 11, 25)))
        assert item is not None
        return f"P{item.id}"


async def open_request_no(rt: Runtime) -> tuple[str, str]:
    async with rt.db.read() as s:
        rows = list(await s.scalars(select(SupportRequest).order_by(SupportRequest.id)))
        return f"R{rows[0].id}", f"R{rows[1].id}"


async def test_every_part_of_the_view_shows(chat: Any, runtime: Runtime) -> None:
    await seed(runtime)
    rep = await chat("rep01")
    text = await ask(rep, "客户 浙二")
    assert ZJU2 in text, text
    assert "当前 A" in text and "建议 B" in text, text
    assert "负责代表：王磊" in text, text
    assert "75 分" in text and "11-23 夜间计算" in text, text
    assert "采购 90 分 — 近 3 个月采购 ¥12.3 万" in text, text
    assert "试用 30 分 — 近 90 天试用 2 次" in text, text
    assert "学术 100 分 — 近 90 天参会 15 人次" in text, text
    assert "近 8 周：88 86 85 70 64 52 40 75" in text, text
    assert "█▇▇▆▆▅▄▇" in text, text  # the 0–100 scale, one block per eighth
    assert "99" not in text  # the week before the eight is not shown
    assert text.index("新品试用停滞") < text.index("值得开发"), text  # newest first
    assert "（11-20）" in text and "健康分下滑" not in text, text
    assert "11-20 · 王磊 · 脊柱外科 · 刘主任" in text, text
    assert "异议：其他（医院在走招标流程）" in text and "下一步：等招标结果" in text, text
    assert "异议：价格（比竞品贵）" in text and "内容：新品介绍" in text, text
    assert text.index("等招标结果") < text.index("约科室会") < text.index("送样"), text  # newest visit first
    open_no, done_no = await open_request_no(runtime)
    assert f"{open_no} 手术跟台 · 王磊 11-20 提交 · 物流 处理中" in text, text
    assert done_no not in text, text
    assert f"{await plan_no(runtime)} 11-25 周三 · 王磊" in text and "新品试用" in text, text
    assert "经理建议" in text, text


async def test_a_customer_without_a_score_says_when_it_comes(chat: Any, runtime: Runtime) -> None:
    await seed(runtime)
    rep = await chat("rep02")
    text = await ask(rep, "客户 浙一")
    assert "健康分每晚计算，明早可见" in text, text
    assert "当前 A" in text and "建议" not in text.split("健康分每晚计算")[0].split("等级")[1], text
    assert "最近拜访" in text and "暂无" in text, text


async def test_scope_a_rep_their_own_a_manager_the_team_a_director_all(chat: Any, runtime: Runtime) -> None:
    await seed(runtime)
    other = await chat("rep02")
    await other.say("客户 浙二")
    [refused] = await other.new_texts()
    assert refused == f"「{ZJU2}」不是你或你团队负责、拜访或计划过的客户，看不到它的详情。", refused
    async with runtime.db.read() as s:
        denial = await s.scalar(select(AuditLog).where(AuditLog.action == "customer.view_denied"))
        assert denial is not None and denial.actor_id == "rep02"
    for person in ("mgr01", "dir01", "admin01"):
        text = await ask(await chat(person), "客户 浙二")
        assert "近 8 周" in text and "最近拜访" in text and "刘主任" in text, (person, text)
    outsider = await chat("mgr02")
    await outsider.say("客户 浙二")
    [refused_too] = await outsider.new_texts()
    assert "看不到它的详情" in refused_too, refused_too
    # A rep with a plan item for a colleague's customer sees it (covering for them).
    async with runtime.db.transaction() as s:
        now = runtime.clock.now()
        s.add(
            PlanItem(
                rep_id="rep02",
                customer_id=(await ids(runtime))[ZJU2],
                period="week",
                day=date(2026, 11, 23),
                starts_at=local(2026, 11, 23),
                ends_at=local(2026, 11, 30),
                status="open",
                source="chat",
                created_by="rep02",
                created_at=now,
                updated_at=now,
            )
        )
    text = await ask(other, "客户 浙二")
    assert "11-23 起当周 · 李娜" in text, text


async def test_marketing_sees_the_score_and_logistics_nothing(chat: Any, runtime: Runtime) -> None:
    await seed(runtime)
    text = await ask(await chat("mkt01"), "客户 浙二")
    assert "近 8 周" in text and "学术 100 分" in text, text
    assert "最近拜访" not in text and "刘主任" not in text and "进行中的申请" not in text, text
    assert "只对代表及其经理显示" in text, text
    logistics = await chat("log01")
    await logistics.say("客户 浙二")
    [refused] = await logistics.new_texts()
    assert refused == "客户详情只对销售代表、经理、总监和市场部开放。", refused
    await logistics.say("客户 火星医院")
    [same] = await logistics.new_texts()
    assert same == refused  # the same answer whether the hospital exists or not


async def test_unknown_and_ambiguous_hospitals(chat: Any, runtime: Runtime) -> None:
    await seed(runtime)
    rep = await chat("rep01")
    await rep.say("客户 火星医院")
    [unknown] = await rep.new_texts()
    assert "没有找到医院「火星医院」" in unknown, unknown
    await rep.say("客户")
    [usage] = await rep.new_texts()
    assert "客户 浙二" in usage, usage
    await rep.say("客户 浙大")
    choice = await last_card(rep)
    assert "「浙大」可能是以下医院" in choice.title, choice
    button(choice, ZJU2)
    before = len(await rep.rich())
    await rep.tap(ZJU2, choice)
    got = await rep.rich()
    assert len(got) > before and ZJU2 in "\n".join(got[before:])


async def test_the_advice_flow(chat: Any, runtime: Runtime, clock: FixedClock) -> None:
    await seed(runtime)
    await runtime.jobs.idle()  # the start's catch-up look (Monday 10:00: the morning list is past)
    rep = await chat("rep01")
    await rep.say("计划 明天 浙二")
    assert any("已加入计划" in t or "计划" in t for t in await rep.new_texts())
    mgr = await chat("mgr01")
    await mgr.say("建议 浙二 先约刘主任看新品试用，带上临床数据")
    [saved] = await mgr.new_texts()
    assert saved == f"✅ 已给「{ZJU2}」留下建议，已通知 王磊。", saved
    told = await rep.new_texts()
    assert f"💡 陈静给「{ZJU2}」的建议：先约刘主任看新品试用，带上临床数据" in told, told
    async with runtime.db.read() as s:
        [row] = list(await s.scalars(select(CustomerAdvice)))
        assert (row.author_id, row.text) == ("mgr01", "先约刘主任看新品试用，带上临床数据")
        entry = await s.scalar(select(AuditLog).where(AuditLog.entity == "customer_advice"))
        assert entry is not None and entry.actor_id == "mgr01" and entry.entity_id == str(row.id)
        assert entry.changes["text"] == [None, row.text]
    text = await ask(rep, "客户 浙二")
    assert "陈静（11-23）：" in text and "💡 先约刘主任看新品试用，带上临床数据" in text, text
    # A newer advice replaces it in the view.
    await mgr.say("建议 浙二 下周再约")
    await mgr.new_texts()
    text = await ask(rep, "客户 浙二")
    assert "下周再约" in text and "临床数据" not in text, text
    await rep.say("我的计划")
    mine = (await rep.new_texts())[-1]
    assert "💡 经理建议：下周再约" in mine, mine
    # The morning list on Tuesday: under 浙二, the newest advice.
    await rep.new_texts()
    clock.set(datetime(2026, 11, 24, 8, 30, tzinfo=SH))
    [result] = await runtime.jobs.run_due([MORNING])
    assert result.outcome == "done"
    await runtime.settle()
    [morning] = await rep.new_texts()
    assert morning.startswith("☀️ 今天的拜访计划（1 家）"), morning
    lines = morning.splitlines()
    at = next(i for i, line in enumerate(lines) if ZJU2 in line)
    assert lines[at + 1].strip() == "💡 经理建议：下周再约", morning


async def test_advice_refusals(chat: Any, runtime: Runtime) -> None:
    await seed(runtime)
    rep = await chat("rep01")
    await rep.say("建议 浙二 多拜访")
    [refused] = await rep.new_texts()
    assert refused == "只有经理、总监可以给客户留建议。", refused
    # A sentence that merely starts with the word is not the command.
    await rep.say("建议先送样")
    [plain] = await rep.new_texts()
    assert "只有经理" not in plain, plain
    outsider = await chat("mgr02")
    await outsider.say("建议 浙二 多拜访")
    [not_team] = await outsider.new_texts()
    assert not_team == f"「{ZJU2}」不是你团队代表负责的客户，不能给它留建议。", not_team
    mgr = await chat("mgr01")
    await mgr.say("建议 浙二")
    [empty] = await mgr.new_texts()
    assert empty.startswith(f"要给「{ZJU2}」留什么建议？"), empty
    await mgr.say("建议")
    [usage] = await mgr.new_texts()
    assert "建议 浙二 先约刘主任看新品试用" in usage, usage
    async with runtime.db.read() as s:
        assert list(await s.scalars(select(CustomerAdvice))) == []
    # A director may advise on any customer; the rep is told.
    director = await chat("dir01")
    await director.say("建议 浙一 重点跟进")
    [saved] = await director.new_texts()
    assert "已通知 李娜" in saved, saved
    told = await (await chat("rep02")).new_texts()
    assert any("赵强给" in t and "重点跟进" in t for t in told), told


async def test_help_names_the_commands(chat: Any) -> None:
    rep = await chat("rep01")
    await rep.say("帮助")
    [text] = await rep.new_texts()
    assert "客户 浙二" in text and "建议 浙二" not in text, text
    mgr = await chat("mgr01")
    await mgr.say("帮助")
    [text] = await mgr.new_texts()
    assert "客户 浙二" in text and "建议 浙二" in text, text
