"""Visit logging, written once and run on the console and on WeCom (``tests/scenario_driver.py``): the one-line
visit, the guided dialog (questions, choice cards, the confirmation card, ``字段:值`` corrections, cancel, stale
buttons), location evidence, ``我的拜访``, ``修改 V1 …`` after submit, and global commands inside a dialog.

The clock stands at Monday 2026-11-23 10:00 in Shanghai (tests/conftest.py T0).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot.infra.clock import FixedClock
from bot.infra.i18n import fmt_distance
from bot.runtime import Runtime
from storage.models import AuditLog, SupportRequest, Visit
from tests.scenario_driver import Chat, SeenCard, last_card

ZJU1 = "浙江大学医学院附属第一医院"
ZJU2 = "浙江大学医学院附属第二医院"
# 浙一 as in the demo customers.
ZJU1_AT = (30.2556, 120.1775)
VISIT = "拜访 浙一 骨科 张主任 异议:价格"
SURGERY = "跟台 浙一 骨科 2026-11-25 器械:脊柱A包"
CONFIRM = ["提交", "修改", "取消"]
EXPIRED = "这个按钮已过期，请重新发起。"


async def visits(rt: Runtime) -> list[Visit]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(Visit).order_by(Visit.id)))


async def requests(rt: Runtime) -> list[SupportRequest]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(SupportRequest).order_by(SupportRequest.id)))


async def now_of(chat: Chat, card: SeenCard) -> SeenCard:
    """``card`` as ``chat`` sees it now."""
    [current] = [c for c in await chat.cards() if c.ref == card.ref]
    return current


async def confirm_card(chat: Chat, line: str) -> SeenCard:
    """Type ``line``; the confirmation card it brings (asserted to be one)."""
    await chat.say(line)
    card = await last_card(chat)
    assert card.buttons == CONFIRM, card
    return card


async def live_cards(chat: Chat) -> list[SeenCard]:
    return [c for c in await chat.cards() if c.buttons]


async def submit_visit(chat: Chat, line: str = VISIT) -> None:
    await chat.tap("提交", await confirm_card(chat, line))
    await chat.new_texts()


async def submit_visit_seen(rep: Chat) -> None:
    """Submit the one-line visit, leaving its replies unread."""
    await rep.tap("提交", await confirm_card(rep, VISIT))


# ---- one line -----------------------------------------------------------------------------------------------------


async def test_one_line_visit_confirm_and_submit(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    card = await confirm_card(rep, "拜访 浙一 骨科 张主任 主题:脊柱耗材新品 异议:价格 下一步:送样")
    assert card.title == "请确认拜访记录"
    facts = card.fields
    assert (facts["医院"], facts["科室"], facts["联系人"], facts["异议"]) == (ZJU1, "骨科", "张主任", "价格")
    assert (facts["主题"], facts["下一步"], facts["拜访时间"]) == ("脊柱耗材新品", "送样", "11-23 10:00")
    assert await rep.new_texts() == []  # the card says it all
    assert await visits(runtime) == []  # nothing stored before the rep confirms

    await rep.tap("提交", card)

    [saved] = await rep.new_texts()
    assert saved.startswith(f"✅ 拜访已记录：V1 {ZJU1} 骨科。未收到定位，已标记「无定位」"), saved
    settled = await now_of(rep, card)
    assert settled.buttons == [] and settled.status == "已提交 V1"
    # Then the offer of a linked request.
    offer = await last_card(rep)
    assert offer.title == "需要跟台或其他支持吗？" and offer.buttons == ["手术跟台", "样机申请"]
    [visit] = await visits(runtime)
    assert (visit.ward, visit.contacts, visit.topics, visit.objection, visit.next_step) == (
        "骨科",
        ["张主任"],
        "脊柱耗材新品",
        "价格",
        "送样",
    )
    assert (visit.rep_id, visit.source_channel, visit.location_status, visit.locked) == (
        "rep01",
        rep.channel,
        "missing",
        True,
    )
    async with runtime.db.read() as s:
        [audit] = list(await s.scalars(select(AuditLog).where(AuditLog.action == "visit.create")))
    assert (audit.actor_id, audit.channel, audit.entity_id) == ("rep01", rep.channel, str(visit.id))


async def test_a_line_with_mistakes_says_what_is_wrong_and_asks_again(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    await rep.say("拜访 浙一 骨科 张主任 异议:无")  # no objection at all (free text would be 其他 with a note)
    said = await rep.new_texts()
    assert any("异议「无」不在可选范围" in t for t in said), said
    question = await last_card(rep)
    assert question.buttons == ["价格", "交付", "资质", "其他"]
    await rep.tap("价格", question)
    await rep.tap("跳过")  # a dialog that asks questions asks for the next step too
    assert (await last_card(rep)).buttons == CONFIRM


# ---- guided -------------------------------------------------------------------------------------------------------


async def test_guided_visit_asks_only_for_what_is_missing(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    await rep.say("拜访")
    [ask] = await rep.new_texts()
    assert ask.startswith("拜访了哪家医院？") and await rep.cards() == []

    await rep.say("浙二")
    assert (await rep.new_texts())[0] == f"✓ 医院：{ZJU2}"  # said back resolved, not as typed
    ward = await last_card(rep)
    assert ward.title.startswith("哪个科室") and ward.buttons == ["骨科", "脊柱外科", "手术室"]

    await rep.tap("脊柱外科", ward)
    answered = await now_of(rep, ward)
    assert answered.buttons == [] and answered.status == "✓ 脊柱外科"  # the answer cannot be tapped again
    contacts = await last_card(rep)
    assert contacts.title.startswith("见了谁") and "刘主任" in contacts.buttons
    await rep.tap("刘主任", contacts)
    objection = await last_card(rep)
    assert objection.buttons == ["价格", "交付", "资质", "其他"]
    await rep.tap("交付", objection)
    step = await last_card(rep)
    assert step.title.startswith("下一步计划？") and step.buttons == ["跳过"]
    await rep.tap("跳过", step)
    confirm = await last_card(rep)
    assert confirm.title == "请确认拜访记录" and confirm.buttons == CONFIRM
    assert (confirm.fields["医院"], confirm.fields["科室"], confirm.fields["联系人"]) == (ZJU2, "脊柱外科", "刘主任")

    await rep.tap("提交", confirm)
    [visit] = await visits(runtime)
    assert (visit.ward, visit.contacts, visit.objection) == ("脊柱外科", ["刘主任"], "交付")
    # Every question and the confirmation are settled; only the offer of a linked request is live.
    assert [c.title for c in await live_cards(rep)] == ["需要跟台或其他支持吗？"]


async def test_typed_answers_and_corrections_fill_several_fields(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    await rep.say("拜访 浙一 骨科")
    await rep.say("异议:资质 联系人:李医生")  # a correction answers several questions at once
    await rep.tap("跳过")  # the next step
    confirm = await last_card(rep)
    assert confirm.buttons == CONFIRM
    assert (confirm.fields["联系人"], confirm.fields["异议"]) == ("李医生", "资质")
    await rep.tap("提交", confirm)
    [visit] = await visits(runtime)
    assert (visit.contacts, visit.objection) == (["李医生"], "资质")


async def test_typing_the_cards_own_label_corrects_it_and_settles_the_old_card(chat: Any, runtime: Runtime) -> None:
    """`拜访时间:昨天 15:00` at the visit card used to restart the dialog (拜访 is a command) and lose the draft."""
    rep = await chat("rep01")
    old = await confirm_card(rep, VISIT)
    await rep.new_texts()
    await rep.say("拜访时间:昨天 15:00")
    assert await rep.new_texts() == ["✓ 拜访时间：11-22 15:00"]
    fresh = await last_card(rep)
    assert fresh.ref != old.ref and fresh.buttons == CONFIRM
    assert (fresh.fields["拜访时间"], fresh.fields["医院"], fresh.fields["科室"]) == ("11-22 15:00", ZJU1, "骨科")
    settled = await now_of(rep, old)
    assert settled.buttons == [] and settled.status == "已修改，见下方新卡"
    assert settled.fields["拜访时间"] == "11-23 10:00"  # the old card is left as it was

    await rep.tap_stale("提交", old)  # a screen, or a tap in flight, that still shows the old card
    assert await rep.new_texts() == [EXPIRED]
    assert await visits(runtime) == []
    await rep.tap("提交", fresh)
    [visit] = await visits(runtime)
    assert visit.visited_at.astimezone(runtime.settings.org.tz).strftime("%m-%d %H:%M") == "11-22 15:00"


async def test_a_correction_that_cannot_be_taken_says_why_and_keeps_the_card(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    card = await confirm_card(rep, VISIT)
    await rep.new_texts()
    await rep.say("异议:无")  # not an objection (any other text would be 其他 with a note)
    [why] = await rep.new_texts()
    assert "异议「无」不在可选范围" in why
    assert (await last_card(rep)).ref == card.ref and (await now_of(rep, card)).buttons == CONFIRM
    await rep.tap("修改", card)
    assert (await rep.new_texts())[-1].startswith("请发送要修改的内容，格式「字段:值」")
    await rep.say("下一步:送资料")
    assert await rep.new_texts() == ["✓ 下一步：送资料"]
    await rep.tap("提交")
    [visit] = await visits(runtime)
    assert visit.next_step == "送资料"


async def test_cards_of_a_cancelled_replaced_or_expired_dialog_are_settled(
    chat: Any, runtime: Runtime, clock: FixedClock
) -> None:
    rep = await chat("rep01")
    # Typed 取消 while a question card is open.
    await rep.say("拜访 浙一")
    question = await last_card(rep)
    await rep.new_texts()
    await rep.say("取消")
    assert await rep.new_texts() == ["已取消。"]
    settled = await now_of(rep, question)
    assert settled.buttons == [] and settled.status == "已取消"
    await rep.say("随便说点什么")  # no dialog any more
    assert any("没听懂" in t for t in await rep.new_texts())
    # The confirmation card's own 取消.
    card = await confirm_card(rep, VISIT)
    await rep.tap("取消", card)
    assert (await now_of(rep, card)).status == "已取消"
    # Replaced by another dialog: a visit by a request.
    card = await confirm_card(rep, VISIT)
    request = await confirm_card(rep, SURGERY)
    settled = await now_of(rep, card)
    assert settled.buttons == [] and settled.status == "未提交，已重新开始"
    # A request by a new request.
    again = await confirm_card(rep, SURGERY)
    settled = await now_of(rep, request)
    assert again.ref != request.ref and settled.buttons == [] and settled.status == "未提交，已重新开始"
    # Left to expire.
    clock.set(clock.now() + timedelta(minutes=runtime.settings.conversation.expiry_minutes + 1))
    await rep.say("帮助")
    settled = await now_of(rep, again)
    assert settled.buttons == [] and settled.status == "已超时，未提交"
    assert await live_cards(rep) == []
    assert await visits(runtime) == [] and await requests(runtime) == []


async def test_the_ward_and_contacts_are_asked_again_when_the_hospital_changes(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    card = await confirm_card(rep, "拜访 浙一 检验科 李医生 异议:价格")
    await rep.new_texts()
    await rep.say("医院:浙二")  # 浙二 has no 检验科, and 李医生 works at 浙一
    said = await rep.new_texts()
    assert said[0].startswith(f"✓ 医院：{ZJU2}")
    assert any("没有科室「检验科」" in t and "骨科、脊柱外科、手术室" in t for t in said), said
    assert any("李医生 不是 浙江大学医学院附属第二医院 的联系人" in t for t in said), said
    ward = await last_card(rep)
    assert (await now_of(rep, card)).buttons == [] and ward.buttons == ["骨科", "脊柱外科", "手术室"]
    await rep.tap("脊柱外科", ward)
    assert (await now_of(rep, ward)).status == "✓ 脊柱外科"
    contacts = await last_card(rep)
    assert contacts.title.startswith("见了谁")
    await rep.tap("刘主任", contacts)
    await rep.tap("跳过")  # the next step
    confirm = await last_card(rep)
    facts = confirm.fields
    assert (facts["医院"], facts["科室"], facts["联系人"], facts["异议"]) == (ZJU2, "脊柱外科", "刘主任", "价格")

    # A hospital picked from candidates after the ward was typed is checked the same way.
    await rep.say("取消")
    await rep.say("拜访 浙江大学医学院附属 检验科 李医生 异议:价格")
    await rep.new_texts()
    await rep.tap(ZJU2)
    assert any("没有科室「检验科」" in t for t in await rep.new_texts())
    assert (await last_card(rep)).title.startswith("哪个科室")


# ---- global commands inside a dialog ------------------------------------------------------------------------------


async def test_global_commands_work_inside_a_visit_dialog(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    await rep.say("拜访 浙一")
    question = await last_card(rep)
    await rep.new_texts()
    await rep.say("我的申请")  # used to answer "找不到医院「我的申请」"
    [mine] = await rep.new_texts()
    assert mine.startswith("你还没有")
    assert (await now_of(rep, question)).buttons != []  # the open question stays open
    await rep.say("帮助")
    [help_text] = await rep.new_texts()
    assert help_text.startswith("你好") and "拜访" in help_text
    await rep.tap("骨科", question)
    assert (await last_card(rep)).title.startswith("见了谁")


async def test_a_visit_line_at_a_request_card_starts_the_visit(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    await rep.say("跟台 浙一 骨科")
    assert (await rep.new_texts())[-1].startswith("请输入手术日期")
    await rep.say("我的拜访")  # a global command while the request asks
    assert await rep.new_texts() == ["本周还没有拜访记录。发「拜访」开始记录。"]
    await rep.say("后天")  # the request dialog goes on where it was
    await rep.say("脊柱A包")
    request = await last_card(rep)
    assert (request.fields["手术日期"], request.fields["器械"]) == ("2026-11-25", "脊柱A包")
    await rep.say("拜访 浙二 骨科 刘主任 异议:交付")
    visit = await last_card(rep)
    assert visit.title == "请确认拜访记录" and visit.fields["医院"] == ZJU2
    settled = await now_of(rep, request)
    assert settled.buttons == [] and settled.status == "未提交，已重新开始"
    await rep.tap("提交", visit)
    assert len(await visits(runtime)) == 1 and await requests(runtime) == []


# ---- location -----------------------------------------------------------------------------------------------------


async def test_a_location_shared_before_the_visit_attaches_with_its_distance(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    await rep.location(ZJU1_AT[0] + 0.001, ZJU1_AT[1])  # about 111 m north of 浙一
    [kept] = await rep.new_texts()
    assert kept.startswith("📍 已收到位置。")
    await submit_visit_seen(rep)
    [saved] = (await rep.texts())[-1:]
    assert saved.startswith(f"✅ 拜访已记录：V1 {ZJU1} 骨科。定位已关联（距医院 1"), saved
    [visit] = await visits(runtime)
    assert visit.location_status == "ok" and visit.distance_m is not None and 100 < visit.distance_m < 120


async def test_a_location_shared_after_the_visit_attaches_within_the_window(
    chat: Any, runtime: Runtime, clock: FixedClock
) -> None:
    rep = await chat("rep01")
    await submit_visit_seen(rep)
    assert any("无定位" in t for t in await rep.new_texts())
    clock.set(clock.now() + timedelta(minutes=30))
    await rep.location(*ZJU1_AT)
    [attached] = await rep.new_texts()
    assert attached.startswith(f"📍 位置已关联到拜访 V1（{ZJU1}，距医院 "), attached
    [visit] = await visits(runtime)
    assert visit.location_status == "ok" and visit.distance_m is not None and visit.distance_m < 1


async def test_a_location_far_from_the_hospital_is_kept_but_questioned(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    await submit_visit_seen(rep)
    await rep.new_texts()
    await rep.location(30.30, 120.30)  # across town
    said = await rep.new_texts()
    assert any(f"⚠️ 该位置距 {ZJU1} 12.8 公里，请确认是否在医院。" in t for t in said), said
    [visit] = await visits(runtime)
    assert visit.distance_m is not None and visit.distance_m > 5000


# ---- after submit: listing, corrections, unlock -------------------------------------------------------------------


async def test_my_visits_lists_today_and_this_week(chat: Any, runtime: Runtime, clock: FixedClock) -> None:
    rep = await chat("rep01")
    await rep.say("我的拜访")
    assert await rep.new_texts() == ["本周还没有拜访记录。发「拜访」开始记录。"]
    await submit_visit(rep)
    clock.set(clock.now() + timedelta(days=2))  # Wednesday
    await submit_visit(rep, "拜访 浙二 脊柱外科 刘主任 异议:交付 拜访时间:今天 9:30")
    await rep.say("我的拜访")
    [listing] = await rep.new_texts()
    assert listing.splitlines() == [
        "今天（1）",
        f"V2 11-25 09:30 {ZJU2} 脊柱外科 刘主任 异议：交付 ⚠️无定位",
        "本周早些时候（1）",
        f"V1 11-23 10:00 {ZJU1} 骨科 张主任 异议：价格 ⚠️无定位",
    ], listing
    # Another rep sees only their own.
    other = await chat("rep02")
    await other.say("我的拜访")
    assert await other.new_texts() == ["本周还没有拜访记录。发「拜访」开始记录。"]


async def test_a_submitted_visit_is_corrected_within_the_window_then_locked_until_unlocked(
    chat: Any, runtime: Runtime, clock: FixedClock
) -> None:
    rep, other, admin = await chat("rep01"), await chat("rep02"), await chat("admin01")
    await submit_visit(rep)
    await rep.say("修改 V1 下一步:送资料")
    [corrected] = await rep.new_texts()
    assert corrected == "已更正拜访 V1：下一步 → 送资料"
    await other.say("修改 V1 下一步:别的")
    assert await other.new_texts() == ["拜访 V1 不是你的记录，不能修改。"]
    await rep.say("修改 V9 下一步:送资料")
    assert await rep.new_texts() == ["找不到拜访 V9。请用「我的拜访」查看编号。"]
    # 修改 V1 医院:浙二 is refused while the ward on file is not at the new hospital.
    await rep.say("修改 V1 科室:检验科")
    await rep.new_texts()
    await rep.say("修改 V1 医院:浙二")
    assert any("没有科室「检验科」" in t for t in await rep.new_texts())
    [visit] = await visits(runtime)
    assert (visit.next_step, visit.ward, visit.customer_id) == ("送资料", "检验科", 1)

    clock.set(clock.now() + timedelta(hours=runtime.settings.visits.correction_window_hours, minutes=1))
    await rep.say("修改 V1 下一步:再次拜访")
    [locked] = await rep.new_texts()
    assert locked.startswith("拜访 V1 已锁定"), locked
    await rep.say("解锁 V1")
    assert await rep.new_texts() == ["你没有权限执行此操作。"]
    await admin.say("解锁 V1")
    [unlocked] = await admin.new_texts()
    assert unlocked.startswith("已解锁拜访 V1"), unlocked
    [notice] = await rep.new_texts()
    assert notice.startswith("管理员已解锁你的拜访 V1"), notice
    await rep.say("修改 V1 下一步:再次拜访")
    assert (await rep.new_texts())[0].startswith("已更正拜访 V1")
    [visit] = await visits(runtime)
    assert visit.next_step == "再次拜访"
    async with runtime.db.read() as s:
        actions = list(await s.scalars(select(AuditLog.action).where(AuditLog.entity == "visit").order_by(AuditLog.id)))
    assert actions.count("visit.correct") == 3 and "visit.unlock" in actions, actions


# ---- rough edges (issue 11) ---------------------------------------------------------------------------------------

# About 793 m north of 浙一.
NEAR_ZJU1 = (ZJU1_AT[0] + 0.00713, ZJU1_AT[1])
TENDER = "医院在走招标流程"


async def test_objection_other_could_not_say_what_it_was(chat: Any, runtime: Runtime) -> None:
    """`异议:医院在走招标流程` was refused; free text is 其他 with a note, in a line, the guided dialog and 修改."""
    rep = await chat("rep01")
    card = await confirm_card(rep, f"拜访 浙一 骨科 张主任 异议:{TENDER}")
    assert card.fields["异议"] == f"其他（{TENDER}）"
    await rep.tap("提交", card)
    await rep.new_texts()
    assert (await now_of(rep, card)).fields["异议"] == f"其他（{TENDER}）"
    card = await confirm_card(rep, f"拜访 浙二 骨科 刘主任 异议:其他 {TENDER}")
    await rep.tap("提交", card)
    await rep.new_texts()
    assert [(v.objection, v.objection_note) for v in await visits(runtime)] == [("其他", TENDER)] * 2

    await rep.say("我的拜访")
    [listing] = await rep.new_texts()
    assert all(line.endswith(f"异议：其他（{TENDER}） ⚠️无定位") for line in listing.splitlines()[1:]), listing

    await rep.say("修改 V1 异议:价格 比竞品贵两成")
    assert await rep.new_texts() == ["已更正拜访 V1：异议 → 价格（比竞品贵两成）"]
    await rep.say("修改 V2 异议:交付")
    assert await rep.new_texts() == ["已更正拜访 V2：异议 → 交付"]
    first, second = await visits(runtime)
    assert (first.objection, first.objection_note, second.objection, second.objection_note) == (
        "价格",
        "比竞品贵两成",
        "交付",
        None,  # a new objection does not keep the old one's note
    )


async def test_guided_other_objection_asks_what_it_was_and_may_be_skipped(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    await rep.say("拜访 浙一 骨科 张主任")
    objection = await last_card(rep)
    await rep.tap("其他", objection)
    assert (await now_of(rep, objection)).status == "✓ 其他"
    what = await last_card(rep)
    assert what.title.startswith("「其他」具体是什么异议？") and what.buttons == ["跳过"]
    await rep.say(TENDER)
    assert (await now_of(rep, what)).status == f"✓ 其他（{TENDER}）"
    await rep.tap("跳过")  # the next step
    confirm = await last_card(rep)
    assert confirm.buttons == CONFIRM and confirm.fields["异议"] == f"其他（{TENDER}）"
    await rep.tap("提交", confirm)
    [visit] = await visits(runtime)
    assert (visit.objection, visit.objection_note) == ("其他", TENDER)

    await rep.say("拜访 浙一 骨科 张主任")
    await rep.tap("其他")
    what = await last_card(rep)
    await rep.tap("跳过", what)
    assert (await now_of(rep, what)).status == "已跳过"
    assert (await last_card(rep)).title.startswith("下一步计划？")  # not asked again: on to the next step


async def test_guided_visit_never_asked_for_the_next_step(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    await rep.say("拜访 浙二 脊柱外科 刘主任")
    await rep.tap("交付")
    step = await last_card(rep)
    assert step.title.startswith("下一步计划？") and step.buttons == ["跳过"]
    await rep.say("下周送样")
    assert (await now_of(rep, step)).status == "✓ 下周送样"
    confirm = await last_card(rep)
    assert confirm.buttons == CONFIRM and confirm.fields["下一步"] == "下周送样"
    await rep.tap("提交", confirm)

    # Skipped by typing 无 (or 跳过): no next step, not asked again.
    await rep.say("拜访 浙二 脊柱外科 刘主任")
    await rep.tap("交付")
    step = await last_card(rep)
    await rep.say("无")
    assert (await now_of(rep, step)).status == "已跳过"
    confirm = await last_card(rep)
    assert confirm.buttons == CONFIRM and "下一步" not in confirm.fields
    await rep.tap("提交", confirm)
    assert [v.next_step for v in await visits(runtime)] == ["下周送样", None]

    # A line that gives every required field goes straight to the card.
    card = await confirm_card(rep, VISIT)
    assert "下一步" not in card.fields


async def test_visit_card_said_another_distance_than_the_reply(chat: Any, runtime: Runtime) -> None:
    """The card said 48.0 公里 while the reply and the database said 793 m: one distance, one format everywhere."""
    rep = await chat("rep01")
    await rep.location(*NEAR_ZJU1)
    await rep.new_texts()
    card = await confirm_card(rep, VISIT)
    assert card.fields["定位"] == "已定位，距医院 793 米"
    await rep.tap("提交", card)
    [saved] = [t for t in await rep.new_texts() if t.startswith("✅")]
    assert "定位已关联（距医院 793 米）" in saved, saved
    assert (await now_of(rep, card)).fields["定位"] == "已定位，距医院 793 米"
    [visit] = await visits(runtime)
    assert visit.distance_m is not None and round(visit.distance_m) == 793
    # A new hospital: the distance is recomputed, and the reply shows it as the card would.
    await rep.say("修改 V1 医院:浙二 联系人:刘主任")
    [corrected] = await rep.new_texts()
    [visit] = await visits(runtime)
    assert visit.distance_m is not None and visit.distance_m > 500
    distance = fmt_distance(visit.distance_m, "zh-CN")
    assert corrected == f"已更正拜访 V1：医院 → {ZJU2}；联系人 → 刘主任；定位 → 已定位，距医院 {distance}"


async def test_my_visits_showed_a_heading_with_nothing_under_it(chat: Any, runtime: Runtime, clock: FixedClock) -> None:
    """Only today's visit: "本周（1）" came with nothing under it. Each heading now counts what it lists; the week
    starts on Monday 00:00 in the org's time zone."""
    rep = await chat("rep01")
    await submit_visit(rep, "拜访 浙一 骨科 张主任 异议:价格 拜访时间:昨天 23:30")  # Sunday: last week
    await submit_visit(rep, "拜访 浙二 脊柱外科 刘主任 异议:交付 拜访时间:今天 0:30")  # Monday, just after midnight
    await rep.say("我的拜访")
    [listing] = await rep.new_texts()
    assert listing.splitlines() == ["今天（1）", f"V2 11-23 00:30 {ZJU2} 脊柱外科 刘主任 异议：交付 ⚠️无定位"]

    clock.set(clock.now() + timedelta(days=2))  # Wednesday
    await submit_visit(rep, "拜访 浙一 检验科 李医生 异议:资质")
    await rep.say("我的拜访")
    [listing] = await rep.new_texts()
    assert listing.splitlines() == [
        "今天（1）",
        f"V3 11-25 10:00 {ZJU1} 检验科 李医生 异议：资质 ⚠️无定位",
        "本周早些时候（1）",
        f"V2 11-23 00:30 {ZJU2} 脊柱外科 刘主任 异议：交付 ⚠️无定位",
    ], listing

    clock.set(clock.now() + timedelta(days=5))  # the Monday after: last week's visits are gone
    await rep.say("我的拜访")
    assert await rep.new_texts() == ["本周还没有拜访记录。发「拜访」开始记录。"]


async def test_new_hospital_was_accepted_with_the_old_hospitals_contact(chat: Any, runtime: Runtime) -> None:
    """`修改 V1 医院:浙二` took 浙二 while 张主任 is 浙一's; and the reply named the field, not its new value."""
    rep = await chat("rep01")
    await submit_visit(rep)
    await rep.say("修改 V1 医院:浙二")
    assert await rep.new_texts() == [
        f"医院没有改：张主任 是 {ZJU1} 的联系人，不在 {ZJU2}。要换医院，请把联系人一起改，"
        "例如「修改 V1 医院:浙二 联系人:刘主任」。"
    ]
    [visit] = await visits(runtime)
    assert (visit.customer_id, visit.contacts) == (1, ["张主任"])
    await rep.say("修改 V1 医院:浙二 联系人:刘主任")
    assert await rep.new_texts() == [f"已更正拜访 V1：医院 → {ZJU2}；联系人 → 刘主任"]
    [visit] = await visits(runtime)
    assert (visit.customer_id, visit.ward, visit.contacts) == (2, "骨科", ["刘主任"])

    # The ward too: both said at once, with one example that changes both.
    await submit_visit(rep, "拜访 浙一 检验科 李医生 异议:价格")
    await rep.say("修改 V2 医院:浙二")
    [refused] = await rep.new_texts()
    reason = f"医院没有改：{ZJU2} 没有科室「检验科」（可选：骨科、脊柱外科、手术室），李医生 也不是它的联系人"
    assert refused.startswith(reason), refused
    assert "「修改 V2 医院:浙二 科室:骨科 联系人:刘主任」" in refused, refused
    await rep.say("修改 V2 医院:浙二 科室:脊柱外科 联系人:刘主任")
    assert await rep.new_texts() == [f"已更正拜访 V2：医院 → {ZJU2}；科室 → 脊柱外科；联系人 → 刘主任"]


async def test_guided_contact_with_a_space_became_two_contacts(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    card = await confirm_card(rep, "拜访 浙一 骨科 欧阳 娜娜 异议:价格")
    assert card.fields["联系人"] == "欧阳娜娜"
    await rep.say("取消")
    await rep.say("拜访 浙一 骨科")
    await rep.new_texts()
    await rep.say("Dr. Wang Li")
    assert await rep.new_texts() == ["✓ 联系人：Dr. Wang Li"]
    await rep.tap("价格")
    await rep.tap("跳过")
    await rep.tap("提交")
    [visit] = await visits(runtime)
    assert visit.contacts == ["Dr. Wang Li"]
