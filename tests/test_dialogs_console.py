"""The dialog engine through the console (issue 10 §3): one regression test per defect it fixes, and the rules the
visit and request dialogs now share. The clock stands at Monday 2026-11-23 10:00 in Shanghai (conftest T0)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot.infra import i18n
from bot.infra.clock import FixedClock
from bot.runtime import Runtime
from handlers.requests import request_form
from handlers.visits import visit_form
from storage.models import Conversation, SupportRequest, Visit
from tests.console_driver import ConsoleUser

ZJU1 = "浙江大学医学院附属第一医院"
ZJU2 = "浙江大学医学院附属第二医院"
VISIT = "拜访 浙一 骨科 张主任 异议:价格"
SURGERY = "跟台 浙一 骨科 2026-11-25 器械:脊柱A包"
UPDATED = "已修改，见下方新卡"


def fields_of(card: dict[str, Any]) -> dict[str, str]:
    return {f["label"]: f["value"] for f in card["fields"]}


def buttons(card: dict[str, Any]) -> list[str]:
    return [b["text"] for b in card["buttons"]]


async def visits(rt: Runtime) -> list[Visit]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(Visit).order_by(Visit.id)))


async def requests(rt: Runtime) -> list[SupportRequest]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(SupportRequest).order_by(SupportRequest.id)))


async def tap_old(user: ConsoleUser, card: dict[str, Any], label: str) -> None:
    """Tap a button as it was on ``card`` when that snapshot was taken (a stale screen)."""
    button = next(b for b in card["buttons"] if b["text"] == label)
    await user.post(
        "/console/api/action", {"client_id": uuid.uuid4().hex, "payload": button["key"], "card_ref": card["ref"]}
    )


async def confirm_card(user: ConsoleUser, line: str) -> dict[str, Any]:
    await user.send(line)
    await user.refresh()
    card = user.last_card()
    assert buttons(card) == ["提交", "修改", "取消"], card
    return card


# ---- defect 1: the card's own label ---------------------------------------------------------------------------


async def test_typing_the_confirmation_cards_own_label_corrects_the_field(console: Any, runtime: Runtime) -> None:
    """`拜访时间:昨天 15:00` at the visit card used to restart the dialog (拜访 is a command) and lose the draft."""
    rep = await console("rep01")
    card = await confirm_card(rep, VISIT)
    assert "拜访时间" in fields_of(card)
    await rep.send("拜访时间:昨天 15:00")
    assert await rep.replies() == ["✓ 拜访时间：11-22 15:00"]
    fresh = rep.last_card()
    assert fields_of(fresh) | {"定位": ""} == {
        "医院": ZJU1,
        "科室": "骨科",
        "联系人": "张主任",
        "异议": "价格",
        "拜访时间": "11-22 15:00",
        "定位": "",
    }
    await rep.tap("提交", fresh["ref"])
    [visit] = await visits(runtime)
    assert visit.visited_at.astimezone(runtime.settings.org.tz).strftime("%m-%d %H:%M") == "11-22 15:00"


def test_every_label_a_card_shows_is_a_correction_key(runtime: Runtime) -> None:
    """Labels and aliases come from one spec: every row label of either card, in either language, names its field."""
    settings = runtime.settings
    forms = [visit_form(settings.visits.required_fields)] + [request_form(rt) for rt in settings.request_types.values()]
    for form in forms:
        for f in form.fields:
            for locale in (i18n.ZH, i18n.EN):
                label = f.label(locale)
                assert form.key_for(label) == f.key, label
                assert form.correction(f"{label}:x") == "direct", label


# ---- defect 2: global commands inside any dialog -----------------------------------------------------------------


async def test_global_commands_work_inside_a_request_dialog(console: Any, runtime: Runtime) -> None:
    rep = await console("rep01")
    visit_card = await confirm_card(rep, VISIT)
    await rep.tap("提交", visit_card["ref"])
    await rep.replies()
    await rep.send("跟台 浙一 骨科")
    assert (await rep.replies())[-1].startswith("请输入手术日期")
    await rep.send("我的拜访")  # used to answer "找不到医院「我的拜访」"
    [listing] = await rep.replies()
    assert listing.startswith("今天（1）") and "V1" in listing
    await rep.send("后天")  # the request dialog goes on where it was
    await rep.send("脊柱A包")
    await rep.refresh()
    request_card = rep.last_card()
    assert fields_of(request_card)["手术日期"] == "2026-11-25"
    # At the request's card, a visit line starts a visit (it used to get only the edit hint).
    await rep.send("拜访 浙二 骨科 刘主任 异议:交付")
    await rep.refresh()
    visit_confirm = rep.last_card()
    assert visit_confirm["title"] == "请确认拜访记录" and fields_of(visit_confirm)["医院"] == ZJU2
    settled = rep.card(request_card["ref"])
    assert settled["buttons"] == [] and settled["status"] == "未提交，已重新开始"
    await rep.tap("提交", visit_confirm["ref"])
    assert len(await visits(runtime)) == 2 and await requests(runtime) == []


async def test_global_commands_work_inside_a_visit_dialog(console: Any, runtime: Runtime) -> None:
    rep = await console("rep01")
    await rep.send("拜访 浙一")
    await rep.refresh()
    question = rep.last_card()
    await rep.send("我的申请")
    assert (await rep.replies())[0].startswith("你还没有")
    assert rep.card(question["ref"])["buttons"] != []  # the open question stays open
    await rep.tap("骨科", question["ref"])
    await rep.refresh()
    assert rep.last_card()["title"].startswith("见了谁")


async def test_an_answer_that_begins_with_a_command_word_is_the_answer(console: Any, runtime: Runtime) -> None:
    """While a question waits, a command word run into Chinese is part of the answer (`拜访时带的样品包` as the kit);
    the same word set apart (`拜访 浙二 …`) is the command."""
    rep = await console("rep01")
    await rep.send("跟台 浙一 骨科 后天")
    assert (await rep.replies())[-1].startswith("请输入器械")
    await rep.send("拜访时带的样品包")
    await rep.refresh()
    assert fields_of(rep.last_card())["器械"] == "拜访时带的样品包"


# ---- defect 3: what was understood, resolved; a correction at the card --------------------------------------------


async def test_each_answer_is_echoed_resolved(console: Any, runtime: Runtime) -> None:
    rep = await console("rep01")
    await rep.send("跟台")
    await rep.replies()
    await rep.send("浙大一院")
    replies = await rep.replies()
    assert replies[0] == f"✓ 医院：{ZJU1}"  # not "✓ 浙大一院"
    ward = rep.last_card()
    await rep.send("骨")  # typed, close to one of the hospital's wards
    await rep.refresh()
    assert rep.card(ward["ref"])["status"] == "✓ 骨科"  # the answered card shows the ward understood
    await rep.send("下周三")
    assert (await rep.replies())[0] == "✓ 手术日期：2026-12-02"

    visit_rep = await console("rep02")
    await visit_rep.send("拜访")
    await visit_rep.replies()
    await visit_rep.send("浙二")
    assert (await visit_rep.replies())[0] == f"✓ 医院：{ZJU2}"


async def test_a_correction_at_confirm_replies_and_sends_a_fresh_card_settling_the_old(
    console: Any, runtime: Runtime
) -> None:
    rep = await console("rep01")
    old = await confirm_card(rep, VISIT)
    await rep.send("科室:检验科")
    assert await rep.replies() == ["✓ 科室：检验科"]  # visible, short
    fresh = rep.last_card()
    assert fresh["ref"] != old["ref"] and fields_of(fresh)["科室"] == "检验科"
    assert buttons(fresh) == ["提交", "修改", "取消"]
    settled = rep.card(old["ref"])
    assert settled["buttons"] == [] and settled["status"] == UPDATED
    assert fields_of(settled)["科室"] == "骨科"  # the old card is left as it was, settled
    await tap_old(rep, old, "提交")  # a screen that still shows the old card
    assert await rep.replies() == ["这个按钮已过期，请重新发起。"]
    await rep.tap("提交", fresh["ref"])
    [visit] = await visits(runtime)
    assert visit.ward == "检验科"

    # A correction that cannot be taken says why and leaves the card as it is.
    card = await confirm_card(rep, VISIT)
    await rep.send("异议:太贵了")
    [why] = await rep.replies()
    assert "太贵了" in why and rep.last_card()["ref"] == card["ref"] and buttons(rep.card(card["ref"])) != []
    await rep.send("取消")

    # The same for a request.
    req = await confirm_card(rep, SURGERY)
    await rep.send("器械:关节B包")
    assert await rep.replies() == ["✓ 器械：关节B包"]
    assert rep.card(req["ref"])["status"] == UPDATED and fields_of(rep.last_card())["器械"] == "关节B包"


# ---- defect 4: cards of a cancelled or replaced dialog ----------------------------------------------------------


async def test_cards_of_a_cancelled_dialog_are_settled(console: Any, runtime: Runtime, clock: FixedClock) -> None:
    rep = await console("rep01")
    # Typed 取消 while a question card is open.
    await rep.send("拜访 浙一")
    await rep.refresh()
    question = rep.last_card()
    await rep.send("取消")
    assert await rep.replies() == ["已取消。"]
    assert rep.card(question["ref"])["buttons"] == [] and rep.card(question["ref"])["status"] == "已取消"
    # Typed 取消 at the confirmation card.
    card = await confirm_card(rep, SURGERY)
    await rep.send("取消")
    await rep.refresh()
    assert rep.card(card["ref"])["buttons"] == [] and rep.card(card["ref"])["status"] == "已取消"
    # The card's own 取消.
    card = await confirm_card(rep, VISIT)
    await rep.tap("取消", card["ref"])
    await rep.refresh()
    assert rep.card(card["ref"])["status"] == "已取消"
    # Replaced by another dialog: a visit by a request, a request by a new request.
    card = await confirm_card(rep, VISIT)
    request = await confirm_card(rep, SURGERY)
    assert rep.card(card["ref"])["buttons"] == [] and rep.card(card["ref"])["status"] == "未提交，已重新开始"
    again = await confirm_card(rep, SURGERY)
    assert rep.card(request["ref"])["buttons"] == [] and again["ref"] != request["ref"]
    # Left to expire.
    clock.set(clock.now() + timedelta(minutes=runtime.settings.conversation.expiry_minutes + 1))
    await rep.send("随便说点什么")
    await rep.refresh()
    assert rep.card(again["ref"])["buttons"] == [] and rep.card(again["ref"])["status"] == "已超时，未提交"
    live = [c for c in rep.cards().values() if c["buttons"]]
    assert live == [], live
    assert await visits(runtime) == [] and await requests(runtime) == []


# ---- defect 5: a field that depends on another ------------------------------------------------------------------


async def test_ward_is_revalidated_when_the_hospital_changes_on_every_path(console: Any, runtime: Runtime) -> None:
    rep = await console("rep01")
    # Text: a correction of the hospital at the visit card; 浙二 has no 检验科.
    await confirm_card(rep, "拜访 浙一 检验科 李医生 异议:价格")
    await rep.send("医院:浙二")
    replies = await rep.replies()
    assert replies[0].startswith(f"✓ 医院：{ZJU2}")
    assert any("没有科室「检验科」" in r and "骨科、脊柱外科、手术室" in r for r in replies), replies
    ward = rep.last_card()
    assert ward["title"].startswith("哪个科室") and buttons(ward) == ["骨科", "脊柱外科", "手术室"]
    await rep.send("取消")

    # Button: the hospital picked from candidates after the ward was typed.
    await rep.send("拜访 浙江大学医学院附属 检验科 李医生 异议:价格")
    await rep.refresh()
    await rep.tap(ZJU2)
    replies = await rep.replies()
    assert any("没有科室「检验科」" in r for r in replies), replies
    assert rep.last_card()["title"].startswith("哪个科室")
    await rep.send("取消")

    # A typed answer to the hospital question, in a request (the ward was given first).
    await rep.send("跟台 科室:检验科 器械:X 日期:后天")
    await rep.replies()
    await rep.send("浙二")
    replies = await rep.replies()
    assert any("没有科室「检验科」" in r for r in replies), replies
    assert rep.last_card()["title"].startswith("请选择科室")
    await rep.send("取消")

    # A correction in a request at its card.
    req = await confirm_card(rep, "跟台 浙一 检验科 2026-11-25 器械:脊柱A包")
    await rep.send("医院:浙二")
    assert any("没有科室「检验科」" in r for r in await rep.replies())
    assert rep.card(req["ref"])["buttons"] == [] and rep.last_card()["title"].startswith("请选择科室")
    await rep.send("取消")

    # After submit: 修改 V1 医院:浙二 is refused while the ward on file is not at the new hospital.
    card = await confirm_card(rep, "拜访 浙一 检验科 李医生 异议:价格")
    await rep.tap("提交", card["ref"])
    await rep.replies()
    [visit] = await visits(runtime)
    await rep.send(f"修改 V{visit.id} 医院:浙二")
    assert any("没有科室「检验科」" in r for r in await rep.replies())
    [visit] = await visits(runtime)
    assert visit.ward == "检验科"


async def test_contacts_of_the_old_hospital_are_dropped_when_the_hospital_changes(
    console: Any, runtime: Runtime
) -> None:
    rep = await console("rep01")
    await confirm_card(rep, VISIT)  # 张主任 is on file at 浙一, not at 浙二
    await rep.send("医院:浙二")
    replies = await rep.replies()
    assert any("张主任 不是 浙江大学医学院附属第二医院 的联系人" in r for r in replies), replies
    contacts = rep.last_card()
    assert contacts["title"].startswith("见了谁") and "刘主任" in buttons(contacts)
    await rep.tap("刘主任", contacts["ref"])
    await rep.refresh()
    fields = fields_of(rep.last_card())
    assert (fields["医院"], fields["科室"], fields["联系人"]) == (ZJU2, "骨科", "刘主任")


# ---- stored state of an older version ---------------------------------------------------------------------------


async def test_a_dialog_stored_in_an_older_shape_starts_afresh_with_a_short_message(
    console: Any, runtime: Runtime
) -> None:
    rep = await console("rep01")
    await rep.send("帮助")
    await rep.replies()
    old_visit = {"token": "ab12cd34", "draft": {"customer_id": 1}, "stage": "collect", "awaiting": "ward", "seq": 1}
    async with runtime.db.transaction() as s:
        now = runtime.clock.now()
        s.add(Conversation(channel="console", user_id="rep01", flow="visit", data=old_visit, updated_at=now,
                           expires_at=now + timedelta(minutes=30), version=1))  # fmt: skip
    await rep.send("骨科")
    assert await rep.replies() == [i18n.t("zh-CN", "dialog.stale_state")]
    await rep.post("/console/api/action", {"client_id": uuid.uuid4().hex, "payload": "vf|ab12cd34|ward|骨科"})
    assert await rep.replies() == ["这个按钮已过期，请重新发起。"]
    await confirm_card(rep, VISIT)  # and a new dialog works

    old_request = {"token": "ef56", "type": "surgery_support", "values": {"customer": "x"}, "stage": "confirm"}
    async with runtime.db.transaction() as s:
        row = await s.get(Conversation, ("console", "rep01"))
        assert row is not None
        row.flow, row.data = "request", old_request
    await rep.send("器械:关节B包")
    assert await rep.replies() == [i18n.t("zh-CN", "dialog.stale_state")]
