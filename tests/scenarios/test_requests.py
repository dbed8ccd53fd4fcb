"""Support requests and department task cards, written once and run on the console and on WeCom
(``tests/scenario_driver.py``): the one-line and the guided request, the task card shared by each receiving
department, claim / need info / done with a photo / reject with a reason, every copy updated in place, the rep told;
forged, stale and outsiders' taps refused.

The clock stands at Monday 2026-11-23 10:00 in Shanghai (tests/conftest.py T0).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from bot.infra.clock import FixedClock
from bot.runtime import Runtime
from storage.models import AuditLog, InboundEvent, SupportRequest, TaskCard
from tests.scenario_driver import Chat, SeenCard, card_with, last_card

ZJU1 = "浙江大学医学院附属第一医院"
ZJU2 = "浙江大学医学院附属第二医院"
SURGERY = "跟台 浙一 骨科 2026-11-25 器械:脊柱A包 备注:王主任主刀"
CONFIRM = ["提交", "修改", "取消"]
OPEN = ["认领", "需补充", "驳回"]
CLAIMED = ["完成", "需补充", "驳回"]
PEOPLE = {
    "marketing": ("mkt01", "mkt02", "mkt_head"),
    "logistics": ("log01", "log02", "log_head"),
    "compliance": ("cmp01", "cmp02", "cmp_head"),
}
# The cards of R1 in the order they are made: T1 marketing, T2 logistics, T3 compliance.
TITLES = {
    "marketing": f"跟台资料：{ZJU1} 脊柱A包",
    "logistics": "备器械 脊柱A包（2026-11-25）",
    "compliance": f"授权审核：{ZJU1}",
}
DEPT_ZH = {"marketing": "市场", "logistics": "物流", "compliance": "合规"}
EXPIRED = "这个按钮已过期，请重新发起。"


async def db_cards(rt: Runtime) -> dict[str, TaskCard]:
    async with rt.db.read() as s:
        return {c.department: c for c in await s.scalars(select(TaskCard).order_by(TaskCard.id))}


async def db_cards_all(rt: Runtime) -> list[TaskCard]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(TaskCard).order_by(TaskCard.id)))


async def db_requests(rt: Runtime) -> list[SupportRequest]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(SupportRequest).order_by(SupportRequest.id)))


async def audit_count(rt: Runtime, action: str) -> int:
    async with rt.db.read() as s:
        return int(await s.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == action)) or 0)


async def now_of(chat: Chat, card: SeenCard) -> SeenCard:
    [current] = [c for c in await chat.cards() if c.ref == card.ref]
    return current


async def task_card(chat: Chat, department: str) -> SeenCard:
    """The department's card of R1 as ``chat`` sees it now."""
    [card] = [c for c in await chat.cards() if c.title.startswith(f"{DEPT_ZH[department]}｜")]
    return card


async def submit(chat: Any, line: str = SURGERY) -> Chat:
    """rep01 types the request and taps 提交; every text so far read."""
    rep: Chat = await chat("rep01")
    await rep.say(line)
    confirm = await last_card(rep)
    assert confirm.buttons == CONFIRM, confirm
    await rep.tap("提交", confirm)
    await rep.new_texts()
    return rep


async def members(chat: Any, department: str) -> list[Chat]:
    people = [await chat(uid) for uid in PEOPLE[department]]
    for person in people:
        await person.new_texts()
    return people


# ---- the request ----------------------------------------------------------------------------------------------


async def test_a_one_line_request_fans_out_one_shared_card_per_department(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    await rep.say(SURGERY)
    confirm = await last_card(rep)
    assert confirm.title == "请确认手术跟台申请" and confirm.buttons == CONFIRM
    assert confirm.fields == {
        "医院": ZJU1,
        "科室": "骨科",
        "手术日期": "2026-11-25",
        "器械": "脊柱A包",
        "备注": "王主任主刀",
    }
    assert await rep.new_texts() == []
    assert await db_requests(runtime) == [] and await db_cards(runtime) == {}  # nothing before 提交

    await rep.tap("提交", confirm)

    [submitted] = await rep.new_texts()
    assert submitted.startswith("✅ 申请已提交 R1") and "市场、物流、合规" in submitted, submitted
    settled = await now_of(rep, confirm)
    assert settled.buttons == [] and settled.status == "已提交 R1"
    [request] = await db_requests(runtime)
    assert (request.rep_id, request.type_key, request.status) == ("rep01", "surgery_support", "open")
    assert request.fields == {"ward": "骨科", "surgery_date": "2026-11-25", "kit": "脊柱A包", "note": "王主任主刀"}
    stored = await db_cards(runtime)
    assert [(d, c.id, c.state) for d, c in stored.items()] == [
        ("marketing", 1, "open"),
        ("logistics", 2, "open"),
        ("compliance", 3, "open"),
    ]
    # Every member and the head see their department's card, and only that one, with what they need to act.
    for department, people in PEOPLE.items():
        assert sorted(stored[department].recipients) == sorted(people)
        for uid in people:
            [card] = await (await chat(uid)).cards()
            assert card.title == f"{DEPT_ZH[department]}｜{TITLES[department]}"[:36], (uid, card.title)
            facts = card.fields
            assert (facts["医院"], facts["手术日期"], facts["申请人"]) == (ZJU1, "2026-11-25", "王磊"), facts
            assert facts["编号"] == f"T{stored[department].id} / R1" and facts["截止"] == "11-24 10:00", facts
            assert card.buttons == OPEN, (uid, card)
    for outsider in ("rep02", "mgr01", "dir01", "admin01"):
        assert await (await chat(outsider)).cards() == [], outsider
    assert await audit_count(runtime, "task.create") == 3


async def test_the_guided_request_asks_only_for_what_is_missing(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    await rep.say("跟台")
    assert (await rep.new_texts())[0].startswith("请输入医院")
    await rep.say("浙二")
    assert (await rep.new_texts())[0] == f"✓ 医院：{ZJU2}"  # said back resolved
    ward = await last_card(rep)
    assert ward.title.startswith("请选择科室") and ward.buttons == ["骨科", "脊柱外科", "手术室"]
    await rep.tap("脊柱外科", ward)
    assert (await now_of(rep, ward)).status == "✓ 脊柱外科"
    assert (await rep.new_texts())[0].startswith("请输入手术日期")
    await rep.say("器械:关节B包")  # a correction-style answer out of order is taken too
    understood, ask = await rep.new_texts()
    assert understood == "✓ 器械：关节B包" and ask.startswith("请输入手术日期")
    await rep.say("明天")
    confirm = await last_card(rep)
    assert confirm.fields == {"医院": ZJU2, "科室": "脊柱外科", "手术日期": "2026-11-24", "器械": "关节B包"}
    await rep.new_texts()
    await rep.say("器械:关节C包")
    assert await rep.new_texts() == ["✓ 器械：关节C包"]
    # A fresh card at the bottom; the old one settled, and a tap on it (a screen not caught up) is stale.
    fresh = await last_card(rep)
    assert fresh.ref != confirm.ref and fresh.fields["器械"] == "关节C包"
    old = await now_of(rep, confirm)
    assert old.buttons == [] and old.status == "已修改，见下方新卡"
    await rep.tap_stale("提交", confirm)
    assert await rep.new_texts() == [EXPIRED]
    assert await db_requests(runtime) == []
    await rep.tap("提交", fresh)
    [request] = await db_requests(runtime)
    assert (request.ward, request.fields["kit"], request.fields["surgery_date"]) == (
        "脊柱外科",
        "关节C包",
        "2026-11-24",
    )
    assert len(await db_cards(runtime)) == 3


async def test_answers_are_echoed_resolved_and_a_command_word_inside_an_answer_is_the_answer(
    chat: Any, runtime: Runtime
) -> None:
    rep = await chat("rep01")
    await rep.say("跟台")
    await rep.say("浙大一院")
    assert f"✓ 医院：{ZJU1}" in await rep.new_texts()  # not "✓ 浙大一院"
    ward = await last_card(rep)
    await rep.say("骨")  # typed, close to one of the hospital's wards
    assert (await now_of(rep, ward)).status == "✓ 骨科"
    await rep.new_texts()
    await rep.say("下周三")
    assert (await rep.new_texts())[0] == "✓ 手术日期：2026-12-02"
    # While a question waits, a command word run into Chinese is part of the answer.
    await rep.say("拜访时带的样品包")
    card = await last_card(rep)
    assert card.buttons == CONFIRM and card.fields["器械"] == "拜访时带的样品包"


async def test_a_past_surgery_date_is_refused_and_asked_again(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    await rep.say("跟台 浙一 骨科 2026-11-20 器械:脊柱A包")
    refusal, ask = await rep.new_texts()
    assert refusal == "手术日期不能早于今天（2026-11-23），你填的是 2026-11-20。请填写今天或以后的日期。"
    assert ask.startswith("请输入手术日期") and await rep.cards() == []
    await rep.say("昨天")  # the answer is checked too
    refusal, ask = await rep.new_texts()
    assert refusal == "手术日期不能早于今天（2026-11-23），你填的是 2026-11-22。请填写今天或以后的日期。"
    assert ask.startswith("请输入手术日期") and await rep.cards() == []
    await rep.say("后天")
    assert (await last_card(rep)).fields["手术日期"] == "2026-11-25"
    assert await db_requests(runtime) == []


async def test_a_date_that_became_past_overnight_is_refused_on_submit(
    chat: Any, runtime: Runtime, clock: FixedClock
) -> None:
    """A draft for 今天 typed at 23:50 and submitted at 00:10: the date is checked again on 提交."""
    rep = await chat("rep01")
    clock.set(datetime(2026, 11, 23, 23, 50, tzinfo=runtime.settings.org.tz))
    await rep.say("跟台 浙一 骨科 今天 器械:脊柱A包")
    confirm = await last_card(rep)
    assert confirm.fields["手术日期"] == "2026-11-23"
    clock.set(clock.now() + timedelta(minutes=20))

    await rep.tap("提交", confirm)

    refusal, ask = await rep.new_texts()
    assert refusal == "手术日期不能早于今天（2026-11-24），你填的是 2026-11-23。请填写今天或以后的日期。"
    assert ask.startswith("请输入手术日期")
    assert (await now_of(rep, confirm)).buttons == []
    assert await db_requests(runtime) == [] and await db_cards(runtime) == {}
    clock.set(clock.now() + timedelta(seconds=30))
    await rep.say("明天")
    again = await last_card(rep)
    assert again.ref != confirm.ref and again.fields["手术日期"] == "2026-11-25"
    await rep.tap("提交", again)
    [request] = await db_requests(runtime)
    assert request.fields["surgery_date"] == "2026-11-25" and len(await db_cards(runtime)) == 3


async def test_the_ward_is_asked_again_when_the_hospital_of_a_request_changes(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    # A typed answer to the hospital question (the ward was given first); 浙二 has no 检验科.
    await rep.say("跟台 科室:检验科 器械:X 日期:后天")
    await rep.new_texts()
    await rep.say("浙二")
    assert any("没有科室「检验科」" in t for t in await rep.new_texts())
    ward = await last_card(rep)
    assert ward.title.startswith("请选择科室") and ward.buttons == ["骨科", "脊柱外科", "手术室"]
    await rep.say("取消")
    # A correction at the request's card.
    await rep.say("跟台 浙一 检验科 2026-11-25 器械:脊柱A包")
    card = await last_card(rep)
    assert card.buttons == CONFIRM
    await rep.new_texts()
    await rep.say("医院:浙二")
    assert any("没有科室「检验科」" in t for t in await rep.new_texts())
    assert (await now_of(rep, card)).buttons == []
    await rep.tap("手术室", await last_card(rep))
    confirm = await last_card(rep)
    assert (confirm.fields["医院"], confirm.fields["科室"]) == (ZJU2, "手术室")


async def test_a_request_from_a_just_logged_visit_is_linked_to_it(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    await rep.say("拜访 浙一 骨科 张主任 异议:价格 下一步:送样")
    await rep.tap("提交")
    offer = await last_card(rep)
    assert offer.title == "需要跟台或其他支持吗？" and offer.buttons == ["手术跟台", "样机申请"]
    await rep.new_texts()
    await rep.tap("手术跟台", offer)
    assert (await rep.new_texts())[0].startswith("已关联拜访 V1")
    assert (await now_of(rep, offer)).buttons == []
    await rep.say("后天")
    await rep.say("脊柱A包")
    confirm = await last_card(rep)
    assert (confirm.fields["医院"], confirm.fields["科室"]) == (ZJU1, "骨科")  # from the visit
    await rep.tap("提交", confirm)
    [request] = await db_requests(runtime)
    assert (request.visit_id, request.ward, request.fields["kit"]) == (1, "骨科", "脊柱A包")


# ---- the departments ------------------------------------------------------------------------------------------


async def test_a_claim_updates_every_copy_and_tells_the_rep(chat: Any, runtime: Runtime) -> None:
    rep = await submit(chat)
    log01, log02, head = await members(chat, "logistics")
    others = [await task_card(await chat(uid), d) for d, uid in (("marketing", "mkt01"), ("compliance", "cmp01"))]

    await log01.tap("认领", await task_card(log01, "logistics"))

    assert await log01.new_texts() == ["你已认领卡片 T2：备器械 脊柱A包（2026-11-25）"]
    for person in (log01, log02, head):
        card = await task_card(person, "logistics")
        assert card.fields["状态"].startswith("处理中 · 吴敏"), (person.user_id, card.fields)
        assert card.buttons == CLAIMED, person.user_id
        assert await person.cards() == [card]  # updated in place, not sent again
    assert await log02.new_texts() == [] and await head.new_texts() == []
    assert await rep.new_texts() == ["R1 物流：吴敏 已认领「备器械 脊柱A包（2026-11-25）」。"]
    # The other departments' cards did not move.
    assert [await task_card(await chat(uid), d) for d, uid in (("marketing", "mkt01"), ("compliance", "cmp01"))] == (
        others
    )
    stored = (await db_cards(runtime))["logistics"]
    assert (stored.state, stored.holder_id, stored.first_response_at) == ("claimed", "log01", runtime.clock.now())


async def test_done_waits_for_the_photo_then_the_rep_gets_it(chat: Any, runtime: Runtime, clock: FixedClock) -> None:
    rep = await submit(chat)
    log01, log02, head = await members(chat, "logistics")
    await log01.tap("认领", await task_card(log01, "logistics"))
    await log01.new_texts()
    await rep.new_texts()
    claimed = await task_card(log02, "logistics")

    await log01.tap("完成", await task_card(log01, "logistics"))

    assert await log01.new_texts() == ["卡片 T2 完成前需要上传照片：直接把照片发给我，再点「完成」。"]
    assert await task_card(log02, "logistics") == claimed  # nothing changed
    assert (await db_cards(runtime))["logistics"].state == "claimed"
    assert await audit_count(runtime, "task.done") == 0 and await rep.new_texts() == []

    await log01.image("kit.jpg")
    assert await log01.new_texts() == ["📎 已附加到卡片 T2（共 1 个附件）。"]
    assert (await task_card(head, "logistics")).fields["附件"] == "1"
    assert await rep.new_texts() == []

    clock.set(clock.now() + timedelta(minutes=1))
    await log01.tap("完成", await task_card(log01, "logistics"))

    assert await log01.new_texts() == ["卡片 T2 已完成。"]
    for person in (log01, log02, head):
        done = await task_card(person, "logistics")
        assert done.buttons == [] and done.status == "✅ 吴敏 已完成（11-23 10:01）", (person.user_id, done)
    assert await rep.new_texts() == ["✅ R1 物流 已完成「备器械 脊柱A包（2026-11-25）」，附件 1 个：照片×1"]
    assert await rep.media() == ["image"]  # the photo itself
    stored = (await db_cards(runtime))["logistics"]
    assert (stored.state, stored.done_at, [a["kind"] for a in stored.attachments]) == ("done", clock.now(), ["image"])


async def test_need_info_asked_by_a_member_goes_to_the_rep_and_back(chat: Any, runtime: Runtime) -> None:
    rep = await submit(chat)
    mkt01, mkt02, head = await members(chat, "marketing")
    await mkt01.tap("需补充", await task_card(mkt01, "marketing"))
    [ask] = await mkt01.new_texts()
    assert ask.startswith("请输入需要代表补充的内容（卡片 T1"), ask
    assert (await task_card(mkt02, "marketing")).buttons == OPEN  # nothing changes until the question is typed

    await mkt01.say("需要几份彩页？")

    assert await mkt01.new_texts() == ["问题已转给代表，收到回复后会通知你。"]
    for person in (mkt01, mkt02, head):
        waiting = await task_card(person, "marketing")
        assert waiting.buttons == ["驳回"] and waiting.fields["问题"] == "需要几份彩页？", (person.user_id, waiting)
        assert waiting.fields["状态"].startswith("待补充"), waiting.fields
    [asked] = await rep.new_texts()
    assert asked.startswith("❓ R1 市场 的 何斌 需要你补充：需要几份彩页？") and "补充 T1" in asked, asked
    assert (await db_cards(runtime))["marketing"].state == "need_info"

    await rep.say("20份，周三前")  # a plain reply answers the one open question

    assert await rep.new_texts() == ["已转给市场：20份，周三前"]
    assert await mkt01.new_texts() == ["💬 T1 代表 王磊 回复：20份，周三前"]
    for person in (mkt01, mkt02, head):
        back = await task_card(person, "marketing")
        assert back.buttons == OPEN and back.fields["回复"] == "20份，周三前", (person.user_id, back)
    stored = (await db_cards(runtime))["marketing"]
    assert (stored.state, stored.holder_id) == ("open", None)
    assert [(q["q"], q["a"], q["by"]) for q in stored.questions] == [("需要几份彩页？", "20份，周三前", "mkt01")]


async def test_need_info_asked_by_the_holder_returns_to_claimed_and_two_questions_are_answered_by_number(
    chat: Any, runtime: Runtime
) -> None:
    rep = await submit(chat)
    log01, log02, _ = await members(chat, "logistics")
    mkt01 = await chat("mkt01")
    await log01.tap("认领", await task_card(log01, "logistics"))
    await log01.tap("需补充", await task_card(log01, "logistics"))
    await log01.say("器械几点送到手术室？")
    await mkt01.tap("需补充", await task_card(mkt01, "marketing"))
    await mkt01.say("需要几份彩页？")
    await rep.new_texts()
    await log01.new_texts()

    await rep.say("补充 T2 7点半前送到")  # two departments wait: the reply names the card

    assert await rep.new_texts() == ["已转给物流：7点半前送到"]
    assert await log01.new_texts() == ["💬 T2 代表 王磊 回复：7点半前送到"]
    for person in (log01, log02):
        card = await task_card(person, "logistics")
        assert card.fields["状态"].startswith("处理中 · 吴敏") and card.buttons == CLAIMED, card
    assert (await task_card(mkt01, "marketing")).buttons == ["驳回"]  # still waiting for its answer
    stored = await db_cards(runtime)
    assert (stored["logistics"].state, stored["logistics"].holder_id) == ("claimed", "log01")
    assert stored["marketing"].state == "need_info"


async def test_reject_asks_for_a_reason_closes_the_card_and_tells_the_rep(chat: Any, runtime: Runtime) -> None:
    rep = await submit(chat)
    cmp01, cmp02, head = await members(chat, "compliance")
    snapshot = await task_card(cmp02, "compliance")
    await cmp01.tap("驳回", await task_card(cmp01, "compliance"))
    assert (await cmp01.new_texts())[-1].startswith("请输入驳回卡片 T3 的原因")

    await cmp01.say("授权书已过期，请先更新")

    assert await cmp01.new_texts() == ["卡片 T3 已驳回，已通知代表。"]
    for person in (cmp01, cmp02, head):
        closed = await task_card(person, "compliance")
        assert closed.buttons == [] and closed.fields["驳回原因"] == "授权书已过期，请先更新", (person.user_id, closed)
        assert closed.status.startswith("⛔ 韩雪 已驳回"), closed.status
    # The rep gets a notice card: the reason, how to resubmit, the 重新提交 button (see test_a_rejected_part_…).
    assert await rep.new_texts() == []
    notice = await card_with(rep, "重新提交")
    assert notice.title == "⛔ R1 合规驳回了申请" and notice.fields["驳回原因"] == "授权书已过期，请先更新"
    # A tap from a screen that still shows the open card changes nothing and says why.
    await cmp02.tap_stale("认领", snapshot)
    assert await cmp02.new_texts() == ["卡片 T3 已关闭（已驳回），无需再操作。"]
    assert await audit_count(runtime, "task.claim") == 0
    stored = (await db_cards(runtime))["compliance"]
    assert (stored.state, stored.holder_id, stored.reject_reason) == ("rejected", "cmp01", "授权书已过期，请先更新")
    [request] = await db_requests(runtime)
    assert request.status == "open"  # the other departments are still at work


async def test_a_second_claim_is_told_who_holds_the_card(chat: Any, runtime: Runtime) -> None:
    await submit(chat)
    log01, log02, _ = await members(chat, "logistics")
    snapshot = await task_card(log02, "logistics")
    await log01.tap("认领", await task_card(log01, "logistics"))
    await log02.tap_stale("认领", snapshot)  # tapped before the update reached log02
    assert await log02.new_texts() == ["卡片 T2 已由 吴敏 认领处理。"]
    assert await audit_count(runtime, "task.claim") == 1
    assert (await db_cards(runtime))["logistics"].holder_id == "log01"


# ---- refused taps ---------------------------------------------------------------------------------------------


async def test_outsiders_cannot_act_and_are_audited_but_a_director_may(chat: Any, runtime: Runtime) -> None:
    rep = await submit(chat)
    log01, log02, _ = await members(chat, "logistics")
    card = await task_card(log01, "logistics")
    for uid in ("rep02", "cmp01", "mgr01"):
        outsider = await chat(uid)
        await outsider.forge_tap(card.keys["认领"], card)
        assert await outsider.new_texts() == ["你不是该部门成员，不能处理卡片 T2。"], uid
    assert [c.state for c in (await db_cards(runtime)).values()] == ["open", "open", "open"]
    assert await task_card(log02, "logistics") == card
    assert await audit_count(runtime, "task.denied") == 3
    assert await rep.new_texts() == []
    director = await chat("dir01")
    await director.forge_tap(card.keys["认领"], card)
    assert (await director.new_texts())[0].startswith("你已认领卡片 T2")
    assert (await task_card(log02, "logistics")).fields["状态"].startswith("处理中 · 赵强")


async def test_forged_taps_get_a_clear_answer_and_change_nothing(chat: Any, runtime: Runtime) -> None:
    await submit(chat)
    log01 = await chat("log01")
    card = await task_card(log01, "logistics")
    forged = ["tk|²|claim", "tk|99999999999999999999|claim", "tk|2|explode", "tk|2", "te|²|take", "ta|²|log02",
              "rq|surgery_support|٣", "rf|x|customer|1", "rc|x|submit"]  # fmt: skip
    for key in forged:
        await log01.forge_tap(key, card)
        assert await log01.new_texts() == [EXPIRED], key
    # A well-formed reassign by someone who may not reassign is refused as such.
    await log01.forge_tap("ta|2|log02", card)
    assert await log01.new_texts() == ["你不能处理卡片 T2 的升级。"]
    assert [c.state for c in (await db_cards(runtime)).values()] == ["open", "open", "open"]
    assert await task_card(log01, "logistics") == card
    async with runtime.db.read() as s:
        failed = await s.scalar(select(func.count()).select_from(InboundEvent).where(InboundEvent.status == "failed"))
    assert failed == 0


# ---- the rep's views ------------------------------------------------------------------------------------------


async def test_my_requests_and_progress_show_each_department_to_who_may_see(chat: Any, runtime: Runtime) -> None:
    rep = await submit(chat)
    log01, cmp01 = await chat("log01"), await chat("cmp01")
    await log01.tap("认领", await task_card(log01, "logistics"))
    await cmp01.tap("驳回", await task_card(cmp01, "compliance"))
    await cmp01.say("授权书过期")
    await rep.new_texts()

    await rep.say("我的申请")
    [mine] = await rep.new_texts()
    assert mine.splitlines()[1:] == [
        f"R1 手术跟台 {ZJU1} 11-23 10:00 — 已驳回（合规），其余处理中",
        "  · 市场：待认领（11-23 10:00）",
        "  · 物流：处理中 · 吴敏（11-23 10:00）",
        "  · 合规：已驳回 · 韩雪（11-23 10:00）",
    ], mine
    await rep.say("进度 R1")
    [progress] = await rep.new_texts()
    assert progress.startswith(f"R1 手术跟台｜{ZJU1} 骨科") and "申请人 王磊" in progress, progress
    assert "器械：脊柱A包" in progress and "T3 ⛔授权书过期" in progress, progress
    # The rep's manager sees it; another rep does not.
    manager, other = await chat("mgr01"), await chat("rep02")
    await manager.say("进度 R1")
    assert "物流：处理中 · 吴敏" in (await manager.new_texts())[0]
    await other.say("进度 R1")
    assert await other.new_texts() == ["你没有权限查看申请 R1。"]
    await other.say("进度 R99")
    assert await other.new_texts() == ["找不到申请 R99。发「我的申请」查看编号。"]
    await other.say("我的申请")
    assert (await other.new_texts())[0].startswith("你还没有")


# ---- after a rejection: 重新提交 (issue 11) ---------------------------------------------------------------------


async def reject_compliance(chat: Any, reason: str = "授权书已过期，请先更新") -> Chat:
    cmp01 = await chat("cmp01")
    await cmp01.tap("驳回", await task_card(cmp01, "compliance"))
    await cmp01.say(reason)
    await cmp01.new_texts()
    return cmp01


async def test_a_rejected_part_is_resubmitted_from_the_notice_as_a_new_linked_card(
    chat: Any, runtime: Runtime, clock: FixedClock
) -> None:
    rep = await submit(chat)
    await reject_compliance(chat)
    notice = await card_with(rep, "重新提交")
    assert notice.fields["事项"] == f"授权审核：{ZJU1}" and notice.fields["驳回原因"] == "授权书已过期，请先更新"
    clock.set(clock.now() + timedelta(minutes=5))

    await rep.tap("重新提交", notice)

    assert await rep.new_texts() == [
        "🔁 已重新提交 R1 的合规部分，手术日期 2026-11-25：新卡片 T4（原 T3 已驳回）。已通知合规。"
    ]
    settled = await now_of(rep, notice)
    assert settled.buttons == [] and settled.status == "已重新提交为 T4"
    for uid in PEOPLE["compliance"]:
        person = await chat(uid)
        old, new = [c for c in await person.cards() if c.title.startswith("合规｜")]
        assert old.buttons == [] and "已重新提交为 T4" in old.status, (uid, old)
        assert new.buttons == OPEN and new.fields["编号"] == "T4 / R1" and new.fields["重新提交自"] == "T3", new
        assert new.fields["截止"] == "11-24 10:05", new
    # Nothing went to the other departments.
    for uid in ("mkt01", "log01"):
        assert len(await (await chat(uid)).cards()) == 1
    stored = await db_cards_all(runtime)
    assert [(c.id, c.department, c.state, c.supersedes_id) for c in stored] == [
        (1, "marketing", "open", None),
        (2, "logistics", "open", None),
        (3, "compliance", "rejected", None),
        (4, "compliance", "open", 3),
    ]
    assert await audit_count(runtime, "request.resubmit") == 1 and await audit_count(runtime, "task.resubmitted") == 1
    [request] = await db_requests(runtime)
    assert request.status == "open"
    await rep.say("进度 R1")
    [progress] = await rep.new_texts()
    assert "合规：待认领" in progress and "T3 ⛔授权书已过期，请先更新（已重新提交为 T4）" in progress, progress

    # A second tap (a screen that still shows the button) does nothing twice.
    clock.set(clock.now() + timedelta(seconds=30))  # a later event (WeCom events of one instant are one event)
    await rep.tap_stale("重新提交", notice)
    assert await rep.new_texts() == ["T3 已重新提交为 T4，无需再次提交。发「进度 R1」查看进度。"]
    assert len(await db_cards_all(runtime)) == 4 and await audit_count(runtime, "request.resubmit") == 1


async def test_a_rejected_part_is_resubmitted_by_text_with_a_correction(chat: Any, runtime: Runtime) -> None:
    rep = await submit(chat)
    log01 = await chat("log01")
    await log01.tap("驳回", await task_card(log01, "logistics"))
    await log01.say("脊柱A包没货了")
    await rep.new_texts()

    await rep.say("重新提交 R1 器械:脊柱B包")

    assert await rep.new_texts() == [
        "🔁 已重新提交 R1 的物流部分，手术日期 2026-11-25：新卡片 T4（原 T2 已驳回）。已通知物流。",
        "已更正：器械：脊柱B包",
    ]
    new = [c for c in await log01.cards() if c.title.startswith("物流｜")][-1]
    assert new.title == "物流｜备器械 脊柱B包（2026-11-25）"[:36] and new.fields["器械"] == "脊柱B包"
    # The departments still at work see the corrected kit on their card, in place.
    marketing = await task_card(await chat("mkt01"), "marketing")
    assert marketing.fields["器械"] == "脊柱B包"
    [request] = await db_requests(runtime)
    assert request.fields["kit"] == "脊柱B包"


async def test_only_the_requests_rep_may_resubmit_it(chat: Any, runtime: Runtime) -> None:
    rep = await submit(chat)
    await reject_compliance(chat)
    notice = await card_with(rep, "重新提交")
    for uid in ("rep02", "mgr01"):
        other = await chat(uid)
        await other.say("重新提交 R1")
        assert await other.new_texts() == ["只有申请人本人可以重新提交申请 R1。"], uid
        await other.forge_tap(notice.keys["重新提交"], notice)
        assert await other.new_texts() == ["只有申请人本人可以重新提交申请 R1。"], uid
    assert len(await db_cards_all(runtime)) == 3
