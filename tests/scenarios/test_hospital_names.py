"""Hospital names as a rep types them (issue 11), on the console and on WeCom, with the demo customers: a hospital
that is not in the directory gets no suggestion that only shares a generic word, and a name several hospitals
answer to is asked, not guessed. The matcher's figures are in tests/services/test_hospital_matching.py."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.runtime import Runtime
from storage.models import Visit
from tests.scenario_driver import button, last_card

ZJU1 = "浙江大学医学院附属第一医院"
ZJU2 = "浙江大学医学院附属第二医院"
SRRSH = "浙江大学医学院附属邵逸夫医院"


async def test_beijing_union_hospital_is_not_found_and_nothing_is_suggested(chat: Any, runtime: Runtime) -> None:
    """Was: "你是不是想找：绍兴和平医院？" (the two names share 医院 and 和)."""
    rep = await chat("rep01")
    await rep.say("拜访 北京协和医院 骨科 张主任 异议:价格")
    texts = await rep.new_texts()
    assert any("找不到医院「北京协和医院」" in t for t in texts), texts
    assert not any("你是不是想找" in t or "绍兴和平医院" in t for t in texts), texts
    assert not any(card.buttons for card in await rep.cards())
    async with runtime.db.read() as s:
        assert list(await s.scalars(select(Visit))) == []


async def test_zheda_hospital_is_asked_not_silently_zheyi(chat: Any, runtime: Runtime) -> None:
    """Was: 浙大医院 resolved to 浙一 (it sounds like 浙一's alias 浙大一院) although 浙二 and 邵逸夫 match too."""
    rep = await chat("rep01")
    await rep.say("拜访 浙大医院 骨科 张主任 异议:价格 下一步:送样")
    texts = await rep.new_texts()
    assert any("可能是以下医院" in t for t in texts), texts
    choice = await last_card(rep)
    for name in (ZJU1, ZJU2, SRRSH):
        button(choice, name)  # offered (WeCom shows it cut: "…邵逸夫医院")
    await rep.tap(ZJU2, choice)  # 浙二 has a 骨科 (邵逸夫 has not: the ward would be asked)
    confirm = await last_card(rep)
    assert confirm.title == "请确认拜访记录"
    assert confirm.fields["医院"] == ZJU2


async def test_zheda_offers_shaoyifu_with_zheyi_and_zheer(chat: Any) -> None:
    """Was: 浙大 offered the hospitals with a 浙大… alias only, not 邵逸夫."""
    rep = await chat("rep01")
    await rep.say("拜访 浙大 骨科 张主任 异议:价格")
    choice = await last_card(rep)
    for name in (ZJU1, ZJU2, SRRSH):
        button(choice, name)
