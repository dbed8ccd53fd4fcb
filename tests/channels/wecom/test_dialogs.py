"""The dialog engine's fixed defects on WeCom (issue 10 §3), as the console tests in tests/test_dialogs_console.py:
what the fake received and what each card shows now."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.infra.clock import FixedClock
from bot.runtime import Runtime
from storage.models import SupportRequest, Visit
from tests.channels.wecom.conftest import WeComUser

User = Callable[[str], WeComUser]
ZJU1 = "浙江大学医学院附属第一医院"
ZJU2 = "浙江大学医学院附属第二医院"
VISIT = "拜访 浙一 骨科 张主任 异议:价格"
SURGERY = "跟台 浙一 骨科 2026-11-25 器械:脊柱A包"

pytestmark = pytest.mark.usefixtures("no_violations")


def shown(card: dict[str, Any]) -> dict[str, str]:
    return {h["keyname"]: h["value"] for h in card.get("horizontal_content_list", [])}


def button_texts(card: dict[str, Any]) -> list[str]:
    return [b["text"] for b in card.get("button_list", [])]


def settled(user: WeComUser, card: dict[str, Any]) -> str:
    """What the settled card says (its buttons greyed out); "" while it is live."""
    return str(user.current(card).get("replace_text") or "")


async def stored(rt: Runtime, model: Any) -> list[Any]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(model)))


async def test_typing_the_confirmation_cards_own_label_corrects_the_field(wecom_user: User, bot: Runtime) -> None:
    rep = wecom_user("rep01")
    await rep.send(VISIT)
    old = rep.last_card()
    await rep.send("拜访时间:昨天 15:00")
    assert rep.texts()[-1] == "✓ 拜访时间：11-22 15:00"
    fresh = rep.last_card()
    assert fresh["task_id"] != old["task_id"]
    assert shown(fresh)["拜访时间"] == "11-22 15:00" and shown(fresh)["医院"] == ZJU1
    assert settled(rep, old)
    await rep.tap(fresh, "提交")
    [visit] = await stored(bot, Visit)
    assert visit.ward == "骨科"


async def test_global_commands_work_inside_a_request_dialog(wecom_user: User, bot: Runtime) -> None:
    rep = wecom_user("rep01")
    await rep.send("跟台 浙一 骨科 2026-11-25")
    await rep.send("我的拜访")
    assert rep.texts()[-1].startswith("本周还没有") or "（0）" in rep.texts()[-1], rep.texts()
    await rep.send("脊柱A包")
    request_card = rep.last_card()
    assert shown(request_card)["器械"] == "脊柱A包"
    await rep.send("拜访 浙二 骨科 刘主任 异议:交付")
    visit_card = rep.last_card()
    assert shown(visit_card)["医院"] == ZJU2 and button_texts(visit_card) == ["提交", "修改", "取消"]
    assert settled(rep, request_card) == "未提交，已重新开始"


async def test_each_answer_is_echoed_resolved(wecom_user: User) -> None:
    rep = wecom_user("rep01")
    await rep.send("拜访")
    await rep.send("浙大一院")
    assert f"✓ 医院：{ZJU1}" in rep.texts()


async def test_a_correction_at_confirm_replies_and_sends_a_fresh_card_settling_the_old(
    wecom_user: User, bot: Runtime
) -> None:
    rep = wecom_user("rep01")
    await rep.send(SURGERY)
    old = rep.last_card()
    await rep.send("器械:关节B包")
    assert rep.texts()[-1] == "✓ 器械：关节B包"
    fresh = rep.last_card()
    assert fresh["task_id"] != old["task_id"] and shown(fresh)["器械"] == "关节B包"
    assert settled(rep, old) == "已修改，见下方新卡"
    await rep.tap(fresh, "提交")
    [request] = await stored(bot, SupportRequest)
    assert request.fields["kit"] == "关节B包"


async def test_cards_of_a_cancelled_dialog_are_settled(wecom_user: User, bot: Runtime, clock: FixedClock) -> None:
    rep = wecom_user("rep01")
    await rep.send("拜访 浙一")
    question = rep.last_card()
    await rep.send("取消")
    assert settled(rep, question) == "已取消"
    await rep.send(VISIT)
    card = rep.last_card()
    await rep.send(SURGERY)
    assert settled(rep, card) == "未提交，已重新开始"
    request = rep.last_card()
    clock.set(clock.now() + timedelta(minutes=bot.settings.conversation.expiry_minutes + 1))
    await rep.send("帮助")
    assert settled(rep, request) == "已超时，未提交"
    assert all(settled(rep, c) for c in rep.cards())


async def test_ward_is_revalidated_when_the_hospital_changes_on_every_path(wecom_user: User) -> None:
    rep = wecom_user("rep01")
    await rep.send("拜访 浙一 检验科 李医生 异议:价格")
    card = rep.last_card()
    await rep.send("医院:浙二")
    assert any("没有科室「检验科」" in t for t in rep.texts())
    ward = rep.last_card()
    assert settled(rep, card) and button_texts(ward) == ["骨科", "脊柱外科", "手术室"]
    await rep.tap(ward, "脊柱外科")
    assert settled(rep, ward) == "✓ 脊柱外科"
    # 李医生 is a contact of 浙一: asked again at 浙二.
    assert any("李医生 不是 浙江大学医学院附属第二医院 的联系人" in t for t in rep.texts())
