"""历史 (issue 15): a record's audit trail in chat, oldest first: a visit created then corrected shows both values;
its rep, their manager and compliance see it; another rep gets the same refusal as for a number that does not
exist."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.runtime import Runtime
from storage.models import Visit
from tests.scenario_driver import last_card


async def visit_no(runtime: Runtime) -> str:
    async with runtime.db.read() as s:
        [visit] = await s.scalars(select(Visit))
    return f"V{visit.id}"


async def test_a_corrected_visit_shows_both_values_to_those_who_may_see_it(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    await rep.say("拜访 浙一 骨科 张主任 异议:价格 下一步:送样")
    await rep.tap("提交", await last_card(rep))
    no = await visit_no(runtime)
    await rep.say(f"修改 {no} 下一步:送资料")
    await rep.new_texts()

    await rep.say(f"历史 {no}")
    [text] = await rep.new_texts()
    lines = text.split("\n")
    assert lines[0] == f"拜访 {no} 的历史（从早到晚）："
    created = next(i for i, line in enumerate(lines) if "提交拜访" in line)
    corrected = next(i for i, line in enumerate(lines) if "修改拜访" in line)
    assert created < corrected
    assert lines[created].startswith("11-23 10:00 · 王磊 · ")
    assert "    下一步：送样" in lines[created + 1 : corrected]
    assert "    医院：浙江大学医学院附属第一医院" in lines[created + 1 : corrected]
    assert lines[corrected + 1 :] == ["    下一步：送样 → 送资料"]

    for reader in ("mgr01", "dir01", "cmp01", "admin01"):
        person = await chat(reader)
        await person.say(f"历史 {no}")
        assert (await person.new_texts())[0] == text, reader


async def test_others_and_unknown_numbers_get_the_same_refusal(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    await rep.say("拜访 浙一 骨科 张主任 异议:价格 下一步:送样")
    await rep.tap("提交", await last_card(rep))
    no = await visit_no(runtime)
    other = await chat("rep02")
    await other.say(f"历史 {no}")
    assert await other.new_texts() == [f"找不到 {no}，或你没有权限查看它的历史。请检查编号。"]
    await other.say("历史 V999")
    assert await other.new_texts() == ["找不到 V999，或你没有权限查看它的历史。请检查编号。"]
    await other.say("历史 浙一")
    assert (await other.new_texts())[0].startswith("格式：历史 <编号>")
