"""Grade changes with a reason (issue 14, docs/customers.md "Grades"), on the console, WeCom and DingTalk: a rep
asks (调级 浙二 A 原因:…), their manager confirms or rejects on a card (a rejection with its reason), the rep is
told; a director changes directly; scope (a rep's own customers, a manager's team), duplicates and self-approval
are refused; every step is audited with the old and new grade.

The org: 王磊 (rep01) and 李娜 (rep02) report to 陈静 (mgr01), who reports to 赵强 (dir01); added here: 刘洋
(mgr02, manager, reporting to dir01) with 周敏 (rep03). 浙二 is 王磊's (grade B, score 82 → suggests A), 浙一 李娜's
(A), 邵逸夫 周敏's (A). The clock stands at Monday 2026-11-23 10:00 in Shanghai (tests/conftest.py T0).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from bot.infra.clock import FixedClock
from bot.runtime import Runtime
from storage.models import AuditLog, Customer, CustomerScore, GradeChange, User
from tests.scenario_driver import Chat, SeenCard, card_with

ZJU1 = "浙江大学医学院附属第一医院"
ZJU2 = "浙江大学医学院附属第二医院"
SRRSH = "浙江大学医学院附属邵逸夫医院"
DAY = date(2026, 11, 23)


@pytest.fixture(autouse=True)
async def org(runtime: Runtime) -> None:
    now = runtime.clock.now()
    async with runtime.db.transaction() as s:
        for uid, name, roles, manager in (("mgr02", "刘洋", ["manager"], "dir01"), ("rep03", "周敏", ["rep"], "mgr02")):
            user = User(id=uid, name=name, roles=roles, manager_id=manager, created_at=now, updated_at=now)
            user.set_channel_id("wecom", uid, now)
            s.add(user)
        customers = {c.name: c for c in await s.scalars(select(Customer))}
        customers[ZJU2].rep_id, customers[ZJU2].grade = "rep01", "B"
        customers[ZJU1].rep_id = "rep02"
        customers[SRRSH].rep_id = "rep03"
        s.add(
            CustomerScore(
                customer_id=customers[ZJU2].id, night=date(2026, 11, 22), score=82.0, purchases=90.0, trials=60.0,
                events=95.0, purchases_amount=Decimal("120000"), trials_count=2, attendees=18, grade="B",
                suggested_grade="A", computed_at=now,
            )
        )  # fmt: skip


async def customer(rt: Runtime, name: str) -> Customer:
    async with rt.db.read() as s:
        row = await s.scalar(select(Customer).where(Customer.name == name))
        assert row is not None
        return row


async def changes(rt: Runtime) -> list[GradeChange]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(GradeChange).order_by(GradeChange.id)))


async def audits(rt: Runtime, entity: str) -> list[AuditLog]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(AuditLog).where(AuditLog.entity == entity).order_by(AuditLog.id)))


async def current(person: Chat, card: SeenCard) -> SeenCard:
    [now] = [c for c in await person.cards() if c.ref == card.ref]
    return now


async def grade_cards(person: Chat) -> list[SeenCard]:
    return [c for c in await person.cards() if c.title.startswith("调级申请")]


async def test_a_rep_asks_the_manager_confirms_on_the_card(
    chat: Any, runtime: Runtime, channel: str, clock: FixedClock
) -> None:
    rep, mgr = await chat("rep01"), await chat("mgr01")
    await rep.say("调级 浙二 A 原因:新品试用量大，学术活动积极")
    [sent] = await rep.new_texts()
    assert sent == f"✅ 已提交调级申请 G1：{ZJU2} B → A，等待 陈静 确认。", sent
    [change] = await changes(runtime)
    assert (change.state, change.old_grade, change.new_grade, change.approver_id) == ("pending", "B", "A", "mgr01")
    assert (await customer(runtime, ZJU2)).grade == "B"

    card = await card_with(mgr, "同意")
    assert card.title == f"调级申请：{ZJU2} B → A", card
    assert card.buttons == ["同意", "驳回"]
    assert card.fields["调整"] == "B → A" and card.fields["负责代表"] == "王磊"
    assert card.fields["健康分"] == "82 分，建议 A 类"
    assert card.fields["申请人"] == "王磊" and card.fields["原因"].startswith("新品试用量大")
    assert await grade_cards(await chat("dir01")) == []

    await mgr.tap("同意", card)
    settled = await current(mgr, card)
    assert settled.buttons == [] and "陈静 已同意" in settled.status, settled
    assert any(t.startswith("✅ 已同意调级 G1") for t in await mgr.new_texts())
    told = await rep.new_texts()
    assert any(t.startswith("✅ 你的调级申请 G1 已通过（陈静）") and "下个月起按 A 类" in t for t in told), told

    row = await customer(runtime, ZJU2)
    assert (row.grade, row.previous_grade, row.grade_since) == ("A", "B", DAY)
    [change] = await changes(runtime)
    assert (change.state, change.decided_by) == ("confirmed", "mgr01")
    steps = await audits(runtime, "grade_change")
    assert [(a.action, a.actor_id, a.channel) for a in steps] == [
        ("grade.request", "rep01", channel),
        ("grade.confirm", "mgr01", channel),
    ]
    assert steps[0].changes["grade"] == ["B", "A"] and steps[0].changes["reason"].startswith("新品试用量大")
    [applied] = [a for a in await audits(runtime, "customer") if a.action == "grade.change"]
    assert applied.entity_id == str(row.id) and applied.actor_id == "mgr01"
    assert applied.changes == {"grade": ["B", "A"], "previous_grade": [None, "B"], "grade_since": [None, "2026-11-23"]}

    # A second tap a minute later (a screen that had not caught up): already decided, nothing changes twice. (The
    # same tap at the same instant is the platform's retry, dropped as a duplicate before any handler.)
    clock.set(clock.now() + timedelta(minutes=1))
    await mgr.tap_stale("同意", card)
    again = await mgr.new_texts()
    assert any("已由 陈静 同意" in t for t in again), again
    assert len(await audits(runtime, "grade_change")) == 2
    assert len([a for a in await audits(runtime, "customer") if a.action == "grade.change"]) == 1


async def test_the_manager_rejects_with_a_reason(chat: Any, runtime: Runtime) -> None:
    rep, mgr = await chat("rep01"), await chat("mgr01")
    await rep.say("调级 浙二 A 原因：客户量增长")
    card = await card_with(mgr, "驳回")
    await mgr.tap("驳回", card)
    assert (await mgr.new_texts())[-1] == "请直接输入驳回 G1 的原因。"
    assert (await changes(runtime))[0].state == "pending"
    # A command typed meanwhile is that command, not the reason.
    await mgr.say("日报")
    await mgr.new_texts()
    assert (await changes(runtime))[0].state == "pending"
    await mgr.say("采购数据还不够，下季度再看")
    settled = await current(mgr, card)
    assert settled.buttons == [] and "陈静 已驳回" in settled.status, settled
    assert settled.fields["驳回原因"] == "采购数据还不够，下季度再看"
    told = await rep.new_texts()
    assert any("G1（浙江大学医学院附属第二医院 B → A）被 陈静 驳回" in t and "采购数据还不够" in t for t in told), told
    assert (await customer(runtime, ZJU2)).grade == "B"
    [change] = await changes(runtime)
    assert (change.state, change.decision_reason) == ("rejected", "采购数据还不够，下季度再看")
    reject = (await audits(runtime, "grade_change"))[-1]
    assert reject.action == "grade.reject" and reject.changes["reason"] == "采购数据还不够，下季度再看"
    assert [a for a in await audits(runtime, "customer") if a.action == "grade.change"] == []
    # After the decision a new request may be opened.
    await rep.say("调级 浙二 A 原因:新品试用三次")
    assert (await rep.new_texts())[-1].startswith("✅ 已提交调级申请 G2")


async def test_a_typed_decision_works_like_the_buttons(chat: Any, runtime: Runtime) -> None:
    rep, mgr = await chat("rep01"), await chat("mgr01")
    await rep.say("调级 浙二 A 原因:新品试用量大")
    card = await card_with(mgr, "同意")
    await mgr.say("驳回调级 G1 原因:再观察一个月")
    assert (await mgr.new_texts())[-1].startswith("已驳回调级申请 G1")
    assert (await current(mgr, card)).buttons == []
    assert (await changes(runtime))[0].decision_reason == "再观察一个月"
    await mgr.say("同意调级 G1")
    assert "已由 陈静 驳回" in (await mgr.new_texts())[-1]
    await rep.say("调级 浙二 A 原因:新品试用三次")
    await mgr.say("驳回调级 G2")
    assert (await mgr.new_texts())[-1] == "请直接输入驳回 G2 的原因。"
    await mgr.say("同意调级 G2")
    assert (await mgr.new_texts())[-1].startswith("✅ 已同意调级 G2")
    assert (await customer(runtime, ZJU2)).grade == "A"
    # No reason is awaited any more: the next message is not taken for one.
    await mgr.say("好的")
    assert not any("G2" in t for t in await mgr.new_texts())
    assert [c.state for c in await changes(runtime)] == ["rejected", "confirmed"]


async def test_a_director_may_decide_a_request_waiting_for_the_manager(chat: Any, runtime: Runtime) -> None:
    rep, mgr, director = await chat("rep01"), await chat("mgr01"), await chat("dir01")
    await rep.say("调级 浙二 A 原因:新品试用量大")
    card = await card_with(mgr, "同意")
    await director.say("同意调级 G1")
    assert (await director.new_texts())[-1].startswith("✅ 已同意调级 G1")
    # The manager's card is settled in place, saying who decided.
    settled = await current(mgr, card)
    assert settled.buttons == [] and "赵强 已同意" in settled.status, settled
    assert any("G1 已通过（赵强）" in t for t in await rep.new_texts())


async def test_a_director_changes_directly(chat: Any, runtime: Runtime, channel: str) -> None:
    director, rep02 = await chat("dir01"), await chat("rep02")
    await director.say("调级 浙一 B 原因:年度评估下调")
    [done] = await director.new_texts()
    assert done.startswith(f"✅ 已调级 G1：{ZJU1} A → B，已生效"), done
    row = await customer(runtime, ZJU1)
    assert (row.grade, row.previous_grade, row.grade_since) == ("B", "A", DAY)
    [change] = await changes(runtime)
    assert (change.state, change.decided_by, change.approver_id) == ("direct", "dir01", None)
    assert any(f"你负责的客户 {ZJU1} 等级已调整：A → B（赵强，G1）" in t for t in await rep02.new_texts())
    [step] = await audits(runtime, "grade_change")
    assert (step.action, step.actor_id, step.channel, step.changes["grade"]) == (
        "grade.direct",
        "dir01",
        channel,
        ["A", "B"],
    )
    [applied] = [a for a in await audits(runtime, "customer") if a.action == "grade.change"]
    assert applied.changes["grade"] == ["A", "B"]
    assert await grade_cards(await chat("mgr01")) == []


async def test_scope_a_rep_their_own_customers_a_manager_their_team(chat: Any, runtime: Runtime) -> None:
    rep01 = await chat("rep01")
    await rep01.say("调级 浙一 B 原因:试试")
    [refused] = await rep01.new_texts()
    assert refused == f"你只能为自己负责的客户调级，{ZJU1} 不是你负责的客户。", refused
    mgr02 = await chat("mgr02")
    await mgr02.say("调级 浙二 A 原因:试试")
    [refused] = await mgr02.new_texts()
    assert refused == f"你只能为团队代表负责的客户调级，{ZJU2} 不在你的团队。", refused
    logistics = await chat("log01")
    await logistics.say("调级 浙二 A 原因:试试")
    [refused] = await logistics.new_texts()
    assert refused.startswith("你没有权限调级"), refused
    assert await changes(runtime) == []
    denials = [a for a in await audits(runtime, "customer") if a.action == "grade.denied"]
    assert [d.changes["actor"] for d in denials] == ["rep01", "mgr02"]
    # mgr02's own team: 邵逸夫 of 周敏, confirmed by mgr02's manager 赵强.
    await mgr02.say("调级 邵逸夫 B 原因:科室合并")
    assert (await mgr02.new_texts())[-1] == f"✅ 已提交调级申请 G1：{SRRSH} A → B，等待 赵强 确认。"


async def test_bad_grade_same_grade_and_an_open_request_are_refused(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    await rep.say("调级 浙二 E 原因:试试")
    texts = await rep.new_texts()
    assert "等级「E」不存在，可选：A、B、C。" in texts[0], texts
    assert (await card_with(rep, "A")).title.startswith(f"{ZJU2} 调到哪个等级？")
    await rep.say("取消")
    assert await rep.new_texts() == ["已取消。"]
    await rep.say("调级 浙二 B 原因:试试")
    texts = await rep.new_texts()
    assert f"{ZJU2} 现在就是 B 类，不用调。" in texts[0], texts
    await rep.say("取消")
    await rep.new_texts()
    await rep.say("调级 浙二 A 原因:新品试用量大")
    assert (await rep.new_texts())[-1].startswith("✅ 已提交调级申请 G1")
    await rep.say("调级 浙二 C 原因:再改")
    [refused] = await rep.new_texts()
    assert refused == f"{ZJU2} 已有一个待确认的调级申请 G1，请等它处理完再提。", refused
    mgr = await chat("mgr01")
    await mgr.say("调级 浙二 C 原因:再改")
    assert "已有一个待确认的调级申请 G1" in (await mgr.new_texts())[-1]
    assert len(await changes(runtime)) == 1


async def test_nobody_approves_their_own_request(chat: Any, runtime: Runtime) -> None:
    mgr, director, rep = await chat("mgr01"), await chat("dir01"), await chat("rep01")
    await mgr.say("调级 浙二 A 原因:新品试用量大")
    assert (await mgr.new_texts())[-1] == f"✅ 已提交调级申请 G1：{ZJU2} B → A，等待 赵强 确认。"
    assert await grade_cards(mgr) == []
    await mgr.say("同意调级 G1")
    assert (await mgr.new_texts())[-1] == "G1 是你自己提的调级申请，需要由你的上级确认。"
    await rep.say("同意调级 G1")
    assert (await rep.new_texts())[-1] == "调级申请 G1 不由你确认。"
    assert (await changes(runtime))[0].state == "pending"
    card = await card_with(director, "同意")
    assert card.fields["申请人"] == "陈静"
    await director.tap("同意", card)
    assert (await customer(runtime, ZJU2)).grade == "A"
    # The requester and the rep (another person) are both told.
    assert any("G1 已通过（赵强）" in t for t in await mgr.new_texts())
    assert any(f"你负责的客户 {ZJU2} 等级已调整：B → A（赵强，G1）" in t for t in await rep.new_texts())


async def test_a_manager_without_a_manager_goes_to_the_directors(chat: Any, runtime: Runtime) -> None:
    async with runtime.db.transaction() as s:
        mgr = await s.get(User, "mgr01")
        assert mgr is not None
        mgr.manager_id = None
    person = await chat("mgr01")
    await person.say("调级 浙二 A 原因:新品试用量大")
    assert (await person.new_texts())[-1].endswith("等待 赵强 确认。")
    [change] = await changes(runtime)
    assert change.approver_id is None
    director = await chat("dir01")
    await director.tap("同意", await card_with(director, "同意"))
    assert (await customer(runtime, ZJU2)).grade == "A"


async def test_what_the_line_misses_is_asked(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    await rep.say("调级 浙二 A")
    assert (await rep.new_texts())[-1].startswith("调级的原因是什么？")
    await rep.say("新品试用量大")
    assert (await rep.new_texts())[-1].startswith("✅ 已提交调级申请 G1")
    assert (await changes(runtime))[0].reason == "新品试用量大"


async def test_the_guided_dialog_asks_hospital_grade_and_reason(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    await rep.say("调级")
    assert (await rep.new_texts())[-1].startswith("调哪家医院的等级？")
    await rep.say("浙大")
    choice = await card_with(rep, ZJU2)
    assert "「浙大」可能是以下医院" in choice.title, choice
    await rep.tap(ZJU2, choice)
    grades = await card_with(rep, "A")
    assert grades.title.startswith(f"{ZJU2} 调到哪个等级？") and grades.buttons == ["A", "C"], grades
    await rep.tap("A", grades)
    assert any(t.startswith("调级的原因是什么？") for t in await rep.new_texts())
    await rep.say("学术活动参与积极")
    assert (await rep.new_texts())[-1].startswith(f"✅ 已提交调级申请 G1：{ZJU2} B → A")


async def test_an_unknown_hospital_is_said(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    await rep.say("调级 火星医院 A 原因:试试")
    assert any("没有找到医院「火星医院」" in t for t in await rep.new_texts())
    assert await changes(runtime) == []


async def test_help_lists_grade_changes(chat: Any) -> None:
    for user, line in (("rep01", "调级 浙二 A 原因:"), ("mgr01", "同意调级 G3"), ("dir01", "直接调整客户等级")):
        person = await chat(user)
        await person.say("帮助")
        assert line in (await person.new_texts())[-1], user


async def test_the_english_words_work_too(chat: Any, runtime: Runtime) -> None:
    rep, mgr = await chat("rep01"), await chat("mgr01")
    await rep.say("grade 浙二 a reason: many new-product trials")
    assert (await rep.new_texts())[-1].startswith(f"✅ 已提交调级申请 G1：{ZJU2} B → A")
    await mgr.say("approve grade G1")
    assert (await mgr.new_texts())[-1].startswith("✅ 已同意调级 G1")
    assert (await customer(runtime, ZJU2)).grade == "A"
    assert (await changes(runtime))[0].reason == "many new-product trials"
