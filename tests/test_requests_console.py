"""Support requests and task cards through the console channel, end to end (HTTP → pipeline → outbox → feed).

The clock stands at Monday 2026-11-23 10:00 in Shanghai (conftest T0).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import aiohttp
from sqlalchemy import func, select

from bot.runtime import Runtime
from storage.models import AuditLog, InboundEvent, SupportRequest, TaskCard
from tests.console_driver import ConsoleUser

SURGERY = "跟台 浙一 骨科 2026-11-25 器械:脊柱A包 备注:王主任主刀"
DEPARTMENTS = {"marketing": ("mkt01", "mkt02", "mkt_head"), "logistics": ("log01", "log02", "log_head")}
DEPARTMENTS["compliance"] = ("cmp01", "cmp02", "cmp_head")


def fields_of(card: dict[str, Any]) -> dict[str, str]:
    return {f["label"]: f["value"] for f in card["fields"]}


def buttons(card: dict[str, Any]) -> list[str]:
    return [b["text"] for b in card["buttons"]]


async def cards_in_db(rt: Runtime) -> list[TaskCard]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(TaskCard).order_by(TaskCard.id)))


async def audit_count(rt: Runtime, action: str) -> int:
    async with rt.db.read() as s:
        return int(await s.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == action)) or 0)


async def submit_surgery(console: Any, text: str = SURGERY) -> ConsoleUser:
    rep: ConsoleUser = await console("rep01")
    await rep.send(text)
    await rep.refresh()
    await rep.tap("提交")
    return rep


async def task_card_of(user: ConsoleUser, department_title: str) -> dict[str, Any]:
    await user.refresh()
    return next(c for c in user.cards().values() if c["title"].startswith(department_title))


async def test_surgery_request_fans_out_three_cards(console: Any, runtime: Runtime) -> None:
    rep = await console("rep01")
    await rep.send(SURGERY)
    await rep.refresh()
    confirm = rep.last_card()
    assert fields_of(confirm) == {
        "医院": "浙江大学医学院附属第一医院",
        "科室": "骨科",
        "手术日期": "2026-11-25",
        "器械": "脊柱A包",
        "备注": "王主任主刀",
    }
    assert await cards_in_db(runtime) == []  # nothing before the rep confirms
    await rep.tap("提交")
    [submitted] = await rep.replies()
    assert submitted.startswith("✅ 申请已提交 R1") and "市场、物流、合规" in submitted
    assert rep.card(confirm["ref"])["status"] == "已提交 R1"

    cards = await cards_in_db(runtime)
    assert [c.department for c in cards] == ["marketing", "logistics", "compliance"]
    for card in cards:
        assert card.state == "open" and sorted(card.recipients) == sorted(DEPARTMENTS[card.department])
    # Every member and head sees their department's card, with what they need to act.
    for department, people in DEPARTMENTS.items():
        for uid in people:
            user = await console(uid)
            await user.refresh()
            [shown] = user.cards().values()
            assert shown["ref"] == next(c.ref for c in cards if c.department == department)
            facts = fields_of(shown)
            assert facts["医院"] == "浙江大学医学院附属第一医院" and facts["手术日期"] == "2026-11-25"
            assert facts["申请人"] == "王磊" and facts["编号"].endswith("/ R1") and "截止" in facts
            assert buttons(shown) == ["认领", "需补充", "驳回"]
    # Nobody outside the departments got a card.
    rep02 = await console("rep02")
    await rep02.refresh()
    assert rep02.cards() == {}


async def test_claim_updates_every_copy_and_tells_the_rep(console: Any, runtime: Runtime) -> None:
    rep = await submit_surgery(console)
    await rep.replies()
    log01, log02, head = await console("log01"), await console("log02"), await console("log_head")
    card = await task_card_of(log01, "物流")
    await log01.tap("认领", card["ref"])
    assert await log01.replies() == ["你已认领卡片 T2：备器械 脊柱A包（2026-11-25）"]
    for user in (log01, log02, head):
        await user.refresh()
        shown = user.card(card["ref"])
        assert fields_of(shown)["状态"].startswith("处理中 · 吴敏")
        assert buttons(shown) == ["完成", "需补充", "驳回"]
    assert await rep.replies() == ["R1 物流：吴敏 已认领「备器械 脊柱A包（2026-11-25）」。"]
    [stored] = [c for c in await cards_in_db(runtime) if c.department == "logistics"]
    assert (stored.state, stored.holder_id, stored.first_response_at) == ("claimed", "log01", runtime.clock.now())


async def test_done_needs_the_photo_then_the_rep_gets_it(console: Any, runtime: Runtime) -> None:
    rep = await submit_surgery(console)
    await rep.replies()
    log01 = await console("log01")
    card = await task_card_of(log01, "物流")
    await log01.tap("完成", card["ref"]) if "完成" in buttons(card) else None
    await log01.tap("认领", card["ref"])
    await log01.replies()
    await log01.tap("完成", card["ref"])
    assert await log01.replies() == ["卡片 T2 完成前需要上传照片：直接把照片发给我，再点「完成」。"]
    assert [c.state for c in await cards_in_db(runtime) if c.department == "logistics"] == ["claimed"]

    await log01.upload("kit.jpg", b"\xff\xd8\xff\xe0 a kit photo", "image/jpeg")
    assert await log01.replies() == ["📎 已附加到卡片 T2（共 1 个附件）。"]
    await log01.tap("完成", card["ref"])
    assert await log01.replies() == ["卡片 T2 已完成。"]
    done = log01.card(card["ref"])
    assert done["buttons"] == [] and done["status"].startswith("✅ 吴敏 已完成")
    notices = await rep.replies()
    assert notices[-2:] == [
        "✅ R1 物流 已完成「备器械 脊柱A包（2026-11-25）」，附件 1 个：照片×1",
        "📎 T2 的附件（照片）",
    ]
    # The photo itself is shown to the rep, served to signed-in users only.
    [photo] = [i for i in rep.items if i.get("media_url")]
    assert photo["media_type"] == "image"
    assert re.fullmatch(r"/console/media/[A-Za-z0-9_-]{32}", photo["media_url"])  # random, not a counted id
    async with rep.session.get(rep.server.make_url(photo["media_url"])) as r:
        assert (r.status, await r.read()) == (200, b"\xff\xd8\xff\xe0 a kit photo")
        assert r.content_type == "image/jpeg"
    async with aiohttp.ClientSession() as anonymous, anonymous.get(rep.server.make_url(photo["media_url"])) as r:
        assert r.status == 401
    [stored] = [c for c in await cards_in_db(runtime) if c.department == "logistics"]
    assert stored.done_at == runtime.clock.now() and stored.attachments[0]["kind"] == "image"


async def test_need_info_round_trip_and_return_to_previous_state(console: Any, runtime: Runtime) -> None:
    rep = await submit_surgery(console)
    await rep.replies()
    mkt01 = await console("mkt01")
    card = await task_card_of(mkt01, "市场")
    await mkt01.tap("认领", card["ref"])
    await mkt01.tap("需补充", card["ref"])
    assert (await mkt01.replies())[-1].startswith("请输入需要代表补充的内容（卡片 T1")
    await mkt01.send("需要几份彩页？")
    assert await mkt01.replies() == ["问题已转给代表，收到回复后会通知你。"]
    assert fields_of(mkt01.card(card["ref"]))["问题"] == "需要几份彩页？"
    [asked] = [r for r in await rep.replies() if r.startswith("❓")]
    assert "需要几份彩页？" in asked and "补充 T1" in asked
    assert [c.state for c in await cards_in_db(runtime) if c.department == "marketing"] == ["need_info"]

    await rep.send("20份，周三前")
    assert await rep.replies() == ["已转给市场：20份，周三前"]
    assert await mkt01.replies() == ["💬 T1 代表 王磊 回复：20份，周三前"]
    shown = mkt01.card(card["ref"])
    assert fields_of(shown)["回复"] == "20份，周三前" and buttons(shown) == ["完成", "需补充", "驳回"]
    [stored] = [c for c in await cards_in_db(runtime) if c.department == "marketing"]
    assert (stored.state, stored.holder_id) == ("claimed", "mkt01")


async def test_reject_asks_for_a_reason_and_tells_the_rep(console: Any, runtime: Runtime) -> None:
    rep = await submit_surgery(console)
    await rep.replies()
    cmp01 = await console("cmp01")
    card = await task_card_of(cmp01, "合规")
    await cmp01.tap("驳回", card["ref"])
    assert (await cmp01.replies())[-1].startswith("请输入驳回卡片 T3 的原因")
    await cmp01.send("授权书已过期，请先更新")
    assert await cmp01.replies() == ["卡片 T3 已驳回，已通知代表。"]
    shown = cmp01.card(card["ref"])
    assert shown["buttons"] == [] and fields_of(shown)["驳回原因"] == "授权书已过期，请先更新"
    assert (await rep.replies())[
        -1
    ] == "⛔ R1 合规 驳回了「授权审核：浙江大学医学院附属第一医院」：授权书已过期，请先更新"
    # A closed card refuses further taps and changes nothing.
    await cmp01.tap("驳回", card["ref"]) if buttons(shown) else None
    await cmp01.post(
        "/console/api/action",
        {"client_id": uuid.uuid4().hex, "payload": "tk|3|claim", "card_ref": card["ref"]},
    )
    assert await cmp01.replies() == ["卡片 T3 已关闭（已驳回），无需再操作。"]
    assert await audit_count(runtime, "task.claim") == 0


async def test_concurrent_claims_have_exactly_one_winner(console: Any, runtime: Runtime) -> None:
    await submit_surgery(console)
    people = [await console(uid) for uid in ("log01", "log02", "log_head")]
    card = await task_card_of(people[0], "物流")
    payload = next(b["key"] for b in card["buttons"] if b["text"] == "认领")

    async def tap(user: ConsoleUser) -> None:
        body = {"client_id": uuid.uuid4().hex, "payload": payload, "card_ref": card["ref"]}
        await user.post("/console/api/action", body, settle=False)

    await asyncio.gather(*(tap(u) for u in people * 3))  # nine taps at once
    await runtime.settle()
    [stored] = [c for c in await cards_in_db(runtime) if c.department == "logistics"]
    assert stored.state == "claimed"
    assert await audit_count(runtime, "task.claim") == 1
    winner_name = {"log01": "吴敏", "log02": "郑浩", "log_head": "周涛"}[stored.holder_id or ""]
    for user in people:
        replies = await user.replies()
        if user.user_id == stored.holder_id:
            assert replies[0].startswith("你已认领卡片 T2") and replies[1:] == ["卡片 T2 已由你认领。"] * 2
        else:
            assert replies == [f"卡片 T2 已由 {winner_name} 认领处理。"] * 3


async def test_outsiders_cannot_act_and_are_logged(console: Any, runtime: Runtime) -> None:
    await submit_surgery(console)
    log01 = await console("log01")
    card = await task_card_of(log01, "物流")
    claim = next(b["key"] for b in card["buttons"] if b["text"] == "认领")
    for uid in ("rep02", "cmp01", "mgr01"):
        outsider = await console(uid)
        await outsider.post("/console/api/action", {"client_id": uuid.uuid4().hex, "payload": claim})
        assert await outsider.replies() == ["你不是该部门成员，不能处理卡片 T2。"]
    assert [c.state for c in await cards_in_db(runtime)] == ["open", "open", "open"]
    assert await audit_count(runtime, "task.denied") == 3
    # A director may act on any department's card.
    director = await console("dir01")
    await director.post("/console/api/action", {"client_id": uuid.uuid4().hex, "payload": claim})
    assert (await director.replies())[0].startswith("你已认领卡片 T2")


async def test_past_surgery_date_is_refused_and_asked_again(console: Any, runtime: Runtime) -> None:
    rep = await console("rep01")
    await rep.send("跟台 浙一 骨科 2026-11-20 器械:脊柱A包")
    replies = await rep.replies()
    assert replies[0] == "手术日期不能早于今天（2026-11-20）。请填写今天或以后的日期。"
    assert replies[1].startswith("请输入手术日期")
    await rep.send("后天")
    await rep.refresh()
    assert fields_of(rep.last_card())["手术日期"] == "2026-11-25"
    async with runtime.db.read() as s:
        assert await s.scalar(select(func.count()).select_from(SupportRequest)) == 0


async def test_guided_request_asks_only_for_what_is_missing(console: Any, runtime: Runtime) -> None:
    rep = await console("rep01")
    await rep.send("跟台")
    assert (await rep.replies())[0].startswith("请输入医院")
    await rep.send("浙二")
    await rep.refresh()
    ward = rep.last_card()
    assert ward["title"].startswith("请选择科室") and buttons(ward) == ["骨科", "脊柱外科", "手术室"]
    await rep.tap("脊柱外科")
    assert (await rep.replies())[0].startswith("请输入手术日期")
    await rep.send("器械:关节B包")  # a correction-style answer out of order is taken too
    understood, ask = await rep.replies()
    assert understood == "✓ 器械：关节B包" and ask.startswith("请输入手术日期")  # said back (issue 10 §3)
    await rep.send("明天")
    await rep.refresh()
    confirm = rep.last_card()
    assert fields_of(confirm) == {
        "医院": "浙江大学医学院附属第二医院",
        "科室": "脊柱外科",
        "手术日期": "2026-11-24",
        "器械": "关节B包",
    }
    await rep.send("器械:关节C包")
    assert await rep.replies() == ["✓ 器械：关节C包"]
    # A fresh card at the bottom, the old one settled (issue 10 §3; it used to change in place far up the history).
    fresh = rep.last_card()
    assert fields_of(fresh)["器械"] == "关节C包" and rep.card(confirm["ref"])["buttons"] == []
    await rep.send("取消")
    assert await rep.replies() == ["已取消。"]


async def test_request_from_a_just_logged_visit_is_linked(console: Any, runtime: Runtime) -> None:
    rep = await console("rep01")
    await rep.send("拜访 浙一 骨科 张主任 异议:价格 下一步:送样")
    await rep.refresh()
    await rep.tap("提交")
    await rep.refresh()
    offer = rep.last_card()
    assert offer["title"] == "需要跟台或其他支持吗？" and buttons(offer) == ["手术跟台", "样机申请"]
    await rep.tap("手术跟台", offer["ref"])
    replies = await rep.replies()
    assert replies[0].startswith("已关联拜访 V1")
    assert rep.card(offer["ref"])["buttons"] == []
    await rep.send("后天")
    await rep.send("脊柱A包")
    await rep.refresh()
    await rep.tap("提交")
    async with runtime.db.read() as s:
        [request] = list(await s.scalars(select(SupportRequest)))
    assert (request.visit_id, request.ward, request.fields["kit"]) == (1, "骨科", "脊柱A包")


async def test_my_requests_and_progress_respect_who_may_see(console: Any, runtime: Runtime) -> None:
    rep = await submit_surgery(console)
    log01 = await console("log01")
    card = await task_card_of(log01, "物流")
    await log01.tap("认领", card["ref"])
    await rep.replies()
    await rep.send("我的申请")
    [listing] = await rep.replies()
    assert "R1 手术跟台 浙江大学医学院附属第一医院" in listing
    assert "物流：处理中 · 吴敏" in listing and "市场：待认领" in listing
    await rep.send("进度 R1")
    [progress] = await rep.replies()
    assert "器械：脊柱A包" in progress and "合规：待认领" in progress
    # The rep's manager sees it; another rep does not.
    manager, other = await console("mgr01"), await console("rep02")
    await manager.send("进度 R1")
    assert "物流：处理中 · 吴敏" in (await manager.replies())[0]
    await other.send("进度 R1")
    assert await other.replies() == ["你没有权限查看申请 R1。"]
    await other.send("进度 R99")
    assert await other.replies() == ["找不到申请 R99。发「我的申请」查看编号。"]


async def test_forged_card_taps_get_a_clear_answer_and_change_nothing(console: Any, runtime: Runtime) -> None:
    await submit_surgery(console)
    log01 = await console("log01")
    await log01.refresh()
    forged = ["tk|²|claim", "tk|99999999999999999999|claim", "tk|2|explode", "tk|2", "te|²|take", "ta|²|log02",
              "rq|surgery_support|٣", "rf|x|customer|1", "rc|x|submit"]  # fmt: skip
    for payload in forged:
        await log01.post("/console/api/action", {"client_id": uuid.uuid4().hex, "payload": payload})
        assert await log01.replies() == ["这个按钮已过期，请重新发起。"], payload
    # A well-formed reassign by someone who may not reassign is refused as such.
    await log01.post("/console/api/action", {"client_id": uuid.uuid4().hex, "payload": "ta|2|log02"})
    assert await log01.replies() == ["你不能处理卡片 T2 的升级。"]
    assert [c.state for c in await cards_in_db(runtime)] == ["open", "open", "open"]
    async with runtime.db.read() as s:
        failed = await s.scalar(select(func.count()).select_from(InboundEvent).where(InboundEvent.status == "failed"))
    assert failed == 0
