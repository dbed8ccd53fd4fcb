"""Signed approvals (issue 15, Part 11 §11.50): compliance's 完成 on the authorisation review, a manager's 同意 on a
grade change and an admin's 解锁 of a visit carry the meaning, the signer's name and the time in their audit row,
and every view of the record shows them (the task card, 进度 R…, the decided grade card, the unlock replies, 历史).

The clock stands at Monday 2026-11-23 10:00 in Shanghai (tests/conftest.py T0)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.runtime import Runtime
from storage.models import AuditLog, Customer, Visit
from tests.scenario_driver import Chat, SeenCard, card_with, last_card

ZJU1 = "浙江大学医学院附属第一医院"
CHANNELS = {"console": "网页端", "wecom": "企业微信", "dingtalk": "钉钉"}
SURGERY = "跟台 浙一 骨科 2026-11-25 器械:脊柱A包 备注:王主任主刀"


async def signature_of(runtime: Runtime, action: str) -> dict[str, Any]:
    async with runtime.db.read() as s:
        [row] = await s.scalars(select(AuditLog).where(AuditLog.action == action))
    return dict(row.changes["signature"])


async def compliance_card(person: Chat) -> SeenCard:
    [card] = [c for c in await person.cards() if c.title.startswith("合规｜")]
    return card


async def test_compliance_done_is_signed_on_the_card_in_progress_and_history(
    chat: Any, runtime: Runtime, channel: str
) -> None:
    rep = await chat("rep01")
    await rep.say(SURGERY)
    await rep.tap("提交", await last_card(rep))
    cmp01 = await chat("cmp01")
    await cmp01.tap("认领", await compliance_card(cmp01))
    await cmp01.tap("完成", await compliance_card(cmp01))
    assert await signature_of(runtime, "task.done") == {
        "meaning": "审核通过",
        "signer_id": "cmp01",
        "signer_name": "韩雪",
        "at": "2026-11-23T02:00:00+00:00",
    }
    for person in (cmp01, await chat("cmp_head")):
        assert (await compliance_card(person)).fields["电子签名"] == "韩雪「审核通过」 11-23 10:00"
    await rep.new_texts()
    await rep.say("进度 R1")
    [progress] = await rep.new_texts()
    assert "    T3 ✍ 签名：韩雪「审核通过」 11-23 10:00" in progress.split("\n"), progress
    await rep.say("历史 R1")
    [history] = await rep.new_texts()
    lines = history.split("\n")
    assert lines[0] == "申请 R1 的历史（含各部门任务，从早到晚）：", lines
    via = CHANNELS[channel]
    assert lines[1:3] == [f"11-23 10:00 · 王磊 · {via} · 提交申请", "    医院：浙江大学医学院附属第一医院"], lines
    assert "    部门：合规" in lines, lines
    done = next(i for i, line in enumerate(lines) if "T3 韩雪 完成" in line)
    assert lines[done].startswith("11-23 10:00 · 韩雪 · "), lines
    assert lines[done + 1 :] == ["    状态：已完成", "    处理人：韩雪", "    ✍ 签名：韩雪「审核通过」 11-23 10:00"]


async def test_other_departments_done_is_not_a_signature(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    await rep.say(SURGERY)
    await rep.tap("提交", await last_card(rep))
    mkt01 = await chat("mkt01")
    [card] = [c for c in await mkt01.cards() if c.title.startswith("市场｜")]
    await mkt01.tap("认领", card)
    [card] = [c for c in await mkt01.cards() if c.title.startswith("市场｜")]
    await mkt01.tap("完成", card)
    async with runtime.db.read() as s:
        [row] = await s.scalars(select(AuditLog).where(AuditLog.action == "task.done"))
    assert "signature" not in row.changes
    [card] = [c for c in await mkt01.cards() if c.title.startswith("市场｜")]
    assert "电子签名" not in card.fields


async def test_a_confirmed_grade_change_is_signed(chat: Any, runtime: Runtime) -> None:
    async with runtime.db.transaction() as s:
        zju2 = await s.scalar(select(Customer).where(Customer.name == "浙江大学医学院附属第二医院"))
        assert zju2 is not None
        zju2.rep_id, zju2.grade = "rep01", "B"
    rep, mgr = await chat("rep01"), await chat("mgr01")
    await rep.say("调级 浙二 A 原因:新品试用量大，学术活动积极")
    card = await card_with(mgr, "同意")
    await mgr.tap("同意", card)
    assert await signature_of(runtime, "grade.confirm") == {
        "meaning": "同意调级",
        "signer_id": "mgr01",
        "signer_name": "陈静",
        "at": "2026-11-23T02:00:00+00:00",
    }
    [settled] = [c for c in await mgr.cards() if c.ref == card.ref]
    assert settled.fields["电子签名"] == "陈静「同意调级」 11-23 10:00", settled
    await rep.say("历史 G1")
    [history] = (await rep.new_texts())[-1:]
    assert "    ✍ 签名：陈静「同意调级」 11-23 10:00" in history.split("\n"), history


async def test_an_unlock_is_signed_in_the_replies_and_history(chat: Any, runtime: Runtime) -> None:
    rep, admin = await chat("rep01"), await chat("admin01")
    await rep.say("拜访 浙一 骨科 张主任 异议:价格 下一步:送样")
    await rep.tap("提交", await last_card(rep))
    async with runtime.db.read() as s:
        [visit] = await s.scalars(select(Visit))
    no = f"V{visit.id}"
    await rep.new_texts()
    await admin.say(f"解锁 {no}")
    [reply] = await admin.new_texts()
    assert reply.split("\n")[-1] == "✍ 签名：孙悦「解锁」 11-23 10:00", reply
    [notice] = await rep.new_texts()
    assert notice.split("\n")[-1] == "✍ 签名：孙悦「解锁」 11-23 10:00", notice
    assert (await signature_of(runtime, "visit.unlock"))["signer_name"] == "孙悦"
    await rep.say(f"历史 {no}")
    [history] = await rep.new_texts()
    lines = history.split("\n")
    unlock = next(i for i, line in enumerate(lines) if "解锁拜访" in line)
    assert lines[unlock].startswith("11-23 10:00 · 孙悦 · "), lines
    assert lines[unlock + 1 :] == ["    解锁至：11-24 10:00", "    ✍ 签名：孙悦「解锁」 11-23 10:00"]
