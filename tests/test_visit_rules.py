"""Visit rules through the console: time limits, customer/ward/objection validation, location policy,
the correction lock with its audit trail, my visits, stale buttons, English users, help per role, expiry."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.infra.clock import FixedClock, as_utc
from bot.runtime import Runtime
from storage.models import AuditLog, Customer, Visit

ZJU1_NAME = "浙江大学医学院附属第一医院"
ZJU2_NAME = "浙江大学医学院附属第二医院"
SRRSH_NAME = "浙江大学医学院附属邵逸夫医院"
ZJU1 = (30.2556, 120.1775)
ZJU2 = (30.2570, 120.1856)
OBJECTIONS = ["价格", "交付", "资质", "其他"]


async def visits(rt: Runtime) -> list[Visit]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(Visit).order_by(Visit.id)))


async def customer_id(rt: Runtime, name: str) -> int:
    async with rt.db.read() as s:
        found = await s.scalar(select(Customer.id).where(Customer.name == name))
    assert found is not None, name
    return int(found)


async def audit_rows(rt: Runtime, action: str) -> list[AuditLog]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)))


def fields_of(card: dict[str, Any]) -> dict[str, str]:
    return {f["label"]: f["value"] for f in card["fields"]}


def labels_of(card: dict[str, Any]) -> list[str]:
    return [b["text"] for b in card["buttons"]]


async def tap_old(user: Any, card: dict[str, Any], label: str) -> dict[str, Any]:
    """Tap a button as it was on ``card`` when that snapshot was taken (e.g. a second tap on a stale screen)."""
    button = next(b for b in card["buttons"] if b["text"] == label)
    body = {"client_id": uuid.uuid4().hex, "payload": button["key"], "card_ref": card["ref"]}
    return await user.post("/console/api/action", body)


async def log_visit(user: Any, line: str = "拜访 浙一 骨科 张主任 异议:价格 下一步:送样") -> int:
    """Send a one-line visit, submit it, and return the new visit's id (from the submitted card status)."""
    await user.send(line)
    await user.refresh()
    card = user.last_card()
    assert labels_of(card) == ["提交", "修改", "取消"], card
    await user.tap("提交")
    await user.refresh()
    status = user.card(card["ref"])["status"]
    assert status.startswith("已提交 V"), status
    return int(status.removeprefix("已提交 V"))


# ---- visit time -----------------------------------------------------------------------------------------------


async def test_future_visit_time_is_refused_with_clear_message(console, runtime: Runtime) -> None:
    rep = await console("rep01")
    await rep.send("拜访 浙一 骨科 张主任 异议:价格 时间:明天")
    replies = await rep.replies()
    assert any("在未来" in r for r in replies), replies
    # The bad time is dropped: the card falls back to now instead of showing tomorrow.
    assert fields_of(rep.last_card())["拜访时间"] == "11-23 10:00"
    assert await visits(runtime) == []


async def test_visit_older_than_backdate_limit_is_refused(console, runtime: Runtime) -> None:
    rep = await console("rep01")
    await rep.send("拜访 浙一 骨科 张主任 异议:价格 时间:11月19日")
    replies = await rep.replies()
    assert any("补录期限" in r and "3 天" in r for r in replies), replies
    assert fields_of(rep.last_card())["拜访时间"] == "11-23 10:00"
    assert await visits(runtime) == []


async def test_visit_three_days_ago_is_accepted(console, runtime: Runtime) -> None:
    rep = await console("rep01")
    await rep.send("拜访 浙一 骨科 张主任 异议:价格 时间:11月20日")
    replies = await rep.replies()
    assert not any("补录期限" in r for r in replies), replies
    assert fields_of(rep.last_card())["拜访时间"] == "11-20 10:00"
    await rep.tap("提交")
    [visit] = await visits(runtime)
    assert as_utc(visit.visited_at) == runtime.clock.now() - timedelta(days=3)


# ---- customer resolution --------------------------------------------------------------------------------------


async def test_unknown_customer_is_explained(console, runtime: Runtime) -> None:
    rep = await console("rep01")
    await rep.send("拜访 协和医院 骨科 张主任 异议:价格")
    replies = await rep.replies()
    assert any("找不到医院" in r and "协和医院" in r for r in replies), replies
    assert not any(c["title"] == "请确认拜访记录" for c in rep.cards().values())
    assert await visits(runtime) == []


async def test_customer_typo_resolves_to_the_hospital(console, runtime: Runtime) -> None:
    rep = await console("rep01")
    await rep.send("拜访 浙江大学医学院附属第一医完 骨科 张主任 异议:价格")
    await rep.refresh()
    card = rep.last_card()
    assert card["title"] == "请确认拜访记录"
    assert fields_of(card)["医院"] == ZJU1_NAME


async def test_ambiguous_customer_offers_candidates_and_tap_continues(console, runtime: Runtime) -> None:
    rep = await console("rep01")
    await rep.send("拜访 浙江大学医学院附属 骨科 张主任 异议:价格")
    replies = await rep.replies()
    assert any("可能是以下医院" in r for r in replies), replies
    choice = rep.last_card()
    assert set(labels_of(choice)) == {ZJU1_NAME, ZJU2_NAME, SRRSH_NAME}
    await rep.tap(ZJU2_NAME)
    await rep.refresh()
    assert rep.card(choice["ref"])["buttons"] == []
    await rep.tap("跳过")  # the next step (asked once the dialog asks questions)
    await rep.refresh()
    confirm = rep.last_card()
    assert confirm["title"] == "请确认拜访记录"
    # What the first line said besides the hospital is kept.
    assert fields_of(confirm) | {"拜访时间": "", "定位": ""} == {
        "医院": ZJU2_NAME,
        "科室": "骨科",
        "联系人": "张主任",
        "异议": "价格",
        "拜访时间": "",
        "定位": "",
    }
    await rep.tap("提交")
    [visit] = await visits(runtime)
    assert visit.ward == "骨科" and visit.contacts == ["张主任"]


# ---- objection and ward -----------------------------------------------------------------------------------------


async def test_bad_objection_lists_choices_and_keeps_the_rest(console, runtime: Runtime) -> None:
    rep = await console("rep01")
    await rep.send("拜访 浙一 骨科 张主任 异议:没有 下一步:送样")  # free text would be 其他 with a note
    replies = await rep.replies()
    assert any("「没有」" in r and all(o in r for o in OBJECTIONS) for r in replies), replies
    ask = rep.last_card()
    assert ask["title"].startswith("客户有什么异议")
    assert labels_of(ask) == OBJECTIONS
    await rep.tap("价格")
    await rep.refresh()
    confirm = rep.last_card()
    fields = fields_of(confirm)
    assert (fields["医院"], fields["科室"], fields["联系人"], fields["异议"], fields["下一步"]) == (
        ZJU1_NAME,
        "骨科",
        "张主任",
        "价格",
        "送样",
    )


async def test_unknown_ward_lists_the_customers_wards(console, runtime: Runtime) -> None:
    rep = await console("rep01")
    await rep.send("拜访 浙一 心内科 张主任 异议:价格")
    replies = await rep.replies()
    assert any("心内科" in r and "骨科、检验科、器械科" in r for r in replies), replies
    ask = rep.last_card()
    assert ask["title"].startswith("哪个科室")
    assert labels_of(ask) == ["骨科", "检验科", "器械科"]
    await rep.tap("检验科")
    await rep.refresh()
    await rep.tap("跳过")  # the next step
    await rep.refresh()
    assert fields_of(rep.last_card())["科室"] == "检验科"


# ---- location policy "reject" ---------------------------------------------------------------------------------


@pytest.mark.parametrize("settings_overrides", [{"visits": {"no_location_policy": "reject"}}], ids=["reject"])
async def test_reject_policy_requires_location_before_submit(console, runtime: Runtime) -> None:
    rep = await console("rep01")
    await rep.send("拜访 浙一 骨科 张主任 异议:价格")
    await rep.refresh()
    await rep.tap("提交")
    replies = await rep.replies()
    assert any("需要定位凭证" in r for r in replies), replies
    assert await visits(runtime) == []

    await rep.location(*ZJU1)
    await rep.refresh()
    assert fields_of(rep.last_card())["定位"].startswith("已定位")
    await rep.tap("提交")
    assert any("拜访已记录" in r for r in await rep.replies())
    [visit] = await visits(runtime)
    assert visit.location_status == "ok"


# ---- correction window, lock, unlock, audit --------------------------------------------------------------------


async def test_correction_within_window_is_applied_and_audited(console, runtime: Runtime) -> None:
    rep = await console("rep01")
    visit_id = await log_visit(rep)
    await rep.send(f"修改 V{visit_id} 下一步:送资料")
    replies = await rep.replies()
    assert any(f"已更正拜访 V{visit_id}" in r and "下一步" in r for r in replies), replies
    [visit] = await visits(runtime)
    assert visit.next_step == "送资料"
    [row] = await audit_rows(runtime, "visit.correct")
    assert (row.entity, row.entity_id, row.actor_id) == ("visit", str(visit_id), "rep01")
    assert row.changes == {"next_step": ["送样", "送资料"]}


async def test_visit_locks_after_correction_window(console, runtime: Runtime, clock: FixedClock) -> None:
    rep = await console("rep01")
    visit_id = await log_visit(rep)
    clock.set(clock.now() + timedelta(hours=25))
    await rep.send(f"修改 V{visit_id} 下一步:送资料")
    replies = await rep.replies()
    assert any("已锁定" in r for r in replies), replies
    [visit] = await visits(runtime)
    assert visit.next_step == "送样"
    assert await audit_rows(runtime, "visit.correct") == []


async def test_another_rep_cannot_edit_a_visit(console, runtime: Runtime) -> None:
    rep = await console("rep01")
    other = await console("rep02")
    visit_id = await log_visit(rep)
    await other.send(f"修改 V{visit_id} 下一步:送资料")
    replies = await other.replies()
    assert any("不是你的" in r for r in replies), replies
    [visit] = await visits(runtime)
    assert visit.next_step == "送样"


async def test_admin_unlock_notifies_rep_and_reopens_correction(console, runtime: Runtime, clock: FixedClock) -> None:
    rep = await console("rep01")
    admin = await console("admin01")
    visit_id = await log_visit(rep)
    clock.set(clock.now() + timedelta(hours=25))
    await rep.send(f"修改 V{visit_id} 下一步:送资料")
    assert any("已锁定" in r for r in await rep.replies())

    await admin.send(f"解锁 V{visit_id}")
    assert any(f"已解锁拜访 V{visit_id}" in r for r in await admin.replies())
    notices = await rep.replies()
    assert any("管理员已解锁你的拜访" in r and f"V{visit_id}" in r for r in notices), notices
    [unlock] = await audit_rows(runtime, "visit.unlock")
    assert unlock.actor_id == "admin01" and unlock.entity_id == str(visit_id)

    await rep.send(f"修改 V{visit_id} 下一步:送资料")
    assert any(f"已更正拜访 V{visit_id}" in r for r in await rep.replies())
    [visit] = await visits(runtime)
    assert visit.next_step == "送资料"


async def test_non_admin_cannot_unlock(console, runtime: Runtime, clock: FixedClock) -> None:
    rep = await console("rep01")
    visit_id = await log_visit(rep)
    clock.set(clock.now() + timedelta(hours=25))
    await rep.send(f"解锁 V{visit_id}")
    replies = await rep.replies()
    assert any("没有权限" in r for r in replies), replies
    [visit] = await visits(runtime)
    assert visit.unlocked_until is None
    assert await audit_rows(runtime, "visit.unlock") == []


# ---- my visits --------------------------------------------------------------------------------------------------


async def test_my_visits_lists_todays_visits_with_numbers_and_flags(console, runtime: Runtime) -> None:
    rep = await console("rep01")
    other = await console("rep02")
    await rep.location(*ZJU2)  # shared before the visit: evidence for it, and used up by it
    located = await log_visit(rep, "拜访 浙二 脊柱外科 刘主任 异议:交付")
    unlocated = await log_visit(rep, "拜访 浙一 骨科 张主任 异议:价格")
    foreign = await log_visit(other, "拜访 浙一 检验科 李医生 异议:资质")
    await rep.replies()

    await rep.send("我的拜访")
    [listing] = await rep.replies()
    lines = listing.splitlines()
    assert lines[0] == "今天（2）"
    by_no = {line.split()[0]: line for line in lines if line.startswith("V")}
    assert set(by_no) == {f"V{unlocated}", f"V{located}"}
    assert f"V{foreign}" not in by_no
    assert ZJU1_NAME in by_no[f"V{unlocated}"] and by_no[f"V{unlocated}"].endswith("⚠️无定位")
    assert ZJU2_NAME in by_no[f"V{located}"] and "无定位" not in by_no[f"V{located}"]


# ---- stale buttons ---------------------------------------------------------------------------------------------


async def test_second_tap_on_submitted_card_is_stale(console, runtime: Runtime) -> None:
    rep = await console("rep01")
    await rep.send("拜访 浙一 骨科 张主任 异议:价格")
    await rep.refresh()
    on_screen = rep.last_card()
    await tap_old(rep, on_screen, "提交")
    assert any("拜访已记录" in r for r in await rep.replies())
    await tap_old(rep, on_screen, "提交")
    replies = await rep.replies()
    assert any("按钮已过期" in r for r in replies), replies
    assert len(await visits(runtime)) == 1


# ---- English ----------------------------------------------------------------------------------------------------


async def test_help_in_english_for_english_user(console, runtime: Runtime) -> None:
    user = await console("mkt02")
    await user.send("help")
    [text] = await user.replies()
    assert text.startswith("Hi ") and "Here is what you can do" in text
    assert "department task cards" in text
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in text.replace("林晓雯", ""))


async def test_visit_dialog_in_english(console, runtime: Runtime) -> None:
    user = await console("mkt02")
    await user.send("visit 浙一 骨科 张主任 objection:price")
    await user.refresh()
    card = user.last_card()
    assert card["title"] == "Please confirm the visit"
    assert labels_of(card) == ["Submit", "Edit", "Cancel"]
    fields = fields_of(card)
    assert (fields["Hospital"], fields["Ward"], fields["Contacts"], fields["Objection"]) == (
        ZJU1_NAME,
        "骨科",
        "张主任",
        "price",  # the English label of 价格, as on the buttons
    )
    await user.tap("Submit")
    replies = await user.replies()
    assert any(r.startswith("✅ Visit logged") and "no location" in r for r in replies), replies
    [visit] = await visits(runtime)
    assert visit.rep_id == "mkt02" and visit.objection == "价格"


async def test_english_error_messages(console, runtime: Runtime) -> None:
    user = await console("mkt02")
    await user.send("visit 浙一 骨科 张主任 objection:none")
    replies = await user.replies()
    assert any("is not one of" in r for r in replies), replies
    card = user.last_card()
    assert card["title"].startswith("What did the customer object to?")
    assert [b["text"] for b in card["buttons"]] == ["price", "delivery", "qualification", "other"]
    await user.tap("delivery")
    await user.refresh()
    assert user.last_card()["title"].startswith("What is the next step?")
    await user.tap("Skip")
    await user.refresh()
    fields = {f["label"]: f["value"] for f in user.last_card()["fields"]}
    assert fields["Objection"] == "delivery"
    await user.tap("Submit")
    [visit] = await visits(runtime)
    assert visit.objection == "交付"  # stored canonical, whatever the label


# ---- help per role ---------------------------------------------------------------------------------------------


async def test_rep_help_mentions_visit_logging(console, runtime: Runtime) -> None:
    rep = await console("rep01")
    await rep.send("帮助")
    [text] = await rep.replies()
    assert "拜访" in text and "我的拜访" in text and "修改" in text
    assert "解锁" not in text


async def test_admin_help_mentions_unlock(console, runtime: Runtime) -> None:
    admin = await console("admin01")
    await admin.send("帮助")
    [text] = await admin.replies()
    assert "解锁" in text


async def test_logistics_member_help_mentions_task_cards(console, runtime: Runtime) -> None:
    member = await console("log01")
    await member.send("帮助")
    [text] = await member.replies()
    assert "任务卡片" in text
    assert "解锁" not in text


# ---- conversation expiry ---------------------------------------------------------------------------------------


async def test_expired_dialog_is_reported_and_not_continued(console, runtime: Runtime, clock: FixedClock) -> None:
    rep = await console("rep01")
    await rep.send("拜访 浙一")
    await rep.refresh()
    assert rep.last_card()["title"].startswith("哪个科室")
    expiry = runtime.settings.conversation.expiry_minutes
    clock.set(clock.now() + timedelta(minutes=expiry + 1))
    await rep.send("骨科")
    replies = await rep.replies()
    assert any("上一次的对话已超时" in r for r in replies), replies
    await rep.send("张主任")
    assert not any("超时" in r for r in await rep.replies())  # reported once, not on every message
    assert await visits(runtime) == []


async def test_dialog_within_expiry_continues(console, runtime: Runtime, clock: FixedClock) -> None:
    rep = await console("rep01")
    await rep.send("拜访 浙一")
    expiry = runtime.settings.conversation.expiry_minutes
    clock.set(clock.now() + timedelta(minutes=expiry - 1))
    await rep.send("骨科")
    replies = await rep.replies()
    assert not any("超时" in r for r in replies), replies
    assert rep.last_card()["title"].startswith("见了谁")


# ---- corrections that change the customer -----------------------------------------------------------------------


async def test_correcting_customer_checks_the_ward_on_file(console, runtime: Runtime) -> None:
    rep = await console("rep01")
    visit_id = await log_visit(rep, "拜访 浙一 检验科 李医生 异议:价格")
    await rep.send(f"修改 V{visit_id} 医院:浙二")  # 浙二 has no 检验科
    replies = await rep.replies()
    assert any("没有科室「检验科」" in r and "骨科、脊柱外科、手术室" in r for r in replies), replies
    [visit] = await visits(runtime)
    assert visit.ward == "检验科" and visit.customer_id == (await customer_id(runtime, ZJU1_NAME))

    await rep.send(f"修改 V{visit_id} 医院:浙二 科室:骨科 联系人:刘主任")  # 李医生 is 浙一's too
    assert any(f"已更正拜访 V{visit_id}" in r for r in await rep.replies())
    [visit] = await visits(runtime)
    assert (visit.customer_id, visit.ward) == (await customer_id(runtime, ZJU2_NAME), "骨科")


async def test_correcting_customer_recomputes_location_distance(console, runtime: Runtime) -> None:
    rep = await console("rep01")
    await rep.location(*ZJU1)
    visit_id = await log_visit(rep)
    [visit] = await visits(runtime)
    assert visit.distance_m is not None and visit.distance_m < 1
    await rep.send(f"修改 V{visit_id} 医院:浙二 联系人:刘主任")
    replies = await rep.replies()
    assert any(f"已更正拜访 V{visit_id}" in r and "医院" in r and "定位" in r for r in replies), replies
    [visit] = await visits(runtime)
    assert visit.distance_m is not None and 700 < visit.distance_m < 1000  # 浙一 → 浙二 is about 850 m
    [row] = await audit_rows(runtime, "visit.correct")
    assert set(row.changes) == {"customer_id", "contacts", "distance_m"}


# ---- visit commands while a dialog is open ----------------------------------------------------------------------


async def test_my_visits_inside_a_dialog_lists_and_keeps_the_dialog(console, runtime: Runtime) -> None:
    rep = await console("rep01")
    visit_id = await log_visit(rep)
    await rep.send("拜访 浙二 骨科")
    await rep.refresh()
    question = rep.last_card()
    assert question["title"].startswith("见了谁")
    await rep.send("我的拜访")
    replies = await rep.replies()
    assert any(r.startswith("今天（1）") and f"V{visit_id}" in r for r in replies), replies
    assert rep.card(question["ref"])["buttons"] != []  # the open question was not answered by the command
    await rep.send("刘主任")
    await rep.refresh()
    await rep.tap("交付")
    await rep.refresh()
    await rep.tap("跳过")  # the next step
    await rep.refresh()
    confirm = rep.last_card()
    assert fields_of(confirm)["联系人"] == "刘主任"


async def test_correcting_a_visit_inside_a_dialog_leaves_the_draft_alone(console, runtime: Runtime) -> None:
    rep = await console("rep01")
    visit_id = await log_visit(rep)
    await rep.send("拜访 浙二 骨科 刘主任 异议:交付")
    await rep.refresh()
    confirm = rep.last_card()
    await rep.send(f"修改 V{visit_id} 下一步:送资料")
    replies = await rep.replies()
    assert any(f"已更正拜访 V{visit_id}" in r for r in replies), replies
    assert fields_of(rep.card(confirm["ref"]))["医院"] == ZJU2_NAME
    await rep.tap("提交")
    first, second = await visits(runtime)
    assert first.next_step == "送资料" and second.customer_id == await customer_id(runtime, ZJU2_NAME)


async def test_edit_keyword_inside_a_dialog_corrects_the_draft(console, runtime: Runtime) -> None:
    rep = await console("rep01")
    await rep.send("拜访 浙一 骨科 张主任 异议:价格")
    await rep.refresh()
    confirm = rep.last_card()
    await rep.send("修改 科室:检验科")
    await rep.refresh()
    # A fresh card at the bottom, the old one settled (issue 10 §3).
    assert rep.card(confirm["ref"])["buttons"] == []
    fields = fields_of(rep.last_card())
    assert (fields["医院"], fields["科室"]) == (ZJU1_NAME, "检验科")
    await rep.send("修改")
    assert any("字段:值" in r for r in await rep.replies())
    await rep.tap("提交")
    [visit] = await visits(runtime)
    assert visit.ward == "检验科"
