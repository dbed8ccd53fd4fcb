"""日报 / 周报 / 月报 on demand, written once and run on the console and on WeCom: a manager's team with the rep
below the plan threshold first, one rep, detail, other days and periods; a rep's own; refusals.

The clock stands at Monday 2026-11-23 10:00 in Shanghai (tests/conftest.py T0). The demo org: mgr01 manages rep01
王磊 and rep02 李娜; dir01 赵强 is the director. Plans are stored directly (planning in chat is another feature);
the visit is logged in chat.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select

from bot.runtime import Runtime
from bot.services.plan_rule import span
from storage.models import Customer, PlanItem
from storage.vocab import PlanPeriod
from tests.scenario_driver import Chat, last_card

MONDAY = date(2026, 11, 23)


async def plan(rt: Runtime, rep: str, *customers: str) -> None:
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        for alias in customers:
            customer = (await s.scalars(select(Customer))).all()
            [c] = [c for c in customer if alias in (c.aliases or [])]
            first, starts, ends = span(PlanPeriod.DAY, MONDAY, rt.settings.org.tz)
            s.add(
                PlanItem(
                    rep_id=rep,
                    customer_id=c.id,
                    period="day",
                    day=first,
                    starts_at=starts,
                    ends_at=ends,
                    status="open",
                    source="chat",
                    created_at=now,
                    updated_at=now,
                )
            )


async def team_with_a_visit(chat: Any, runtime: Runtime) -> Chat:
    """王磊 plans 浙一 and 浙二 and visits 浙一 (no location shared); 李娜 plans 邵逸夫 and visits nobody."""
    await plan(runtime, "rep01", "浙一", "浙二")
    await plan(runtime, "rep02", "邵逸夫")
    rep = await chat("rep01")
    await rep.say("拜访 浙一 骨科 张主任 异议:价格 下一步:送样")
    await rep.tap("提交", await last_card(rep))
    return await chat("mgr01")


async def ask(person: Chat, words: str) -> str:
    """``person`` sends ``words``; the digest they get back, every part of it, as read."""
    before = len(await person.rich())
    await person.say(words)
    got = await person.rich()
    assert len(got) > before, (words, await person.new_texts())
    return "\n".join(got[before:])


async def test_a_managers_digest_shows_the_rep_below_the_threshold_first_and_the_exceptions(
    chat: Any, runtime: Runtime
) -> None:
    mgr = await team_with_a_visit(chat, runtime)
    text = await ask(mgr, "日报")
    assert "日报 2026-11-23（周一） · 团队 2 人" in text
    assert "完成率 33%（1/3）" in text
    # Below 92 %: 李娜 (0 %) before 王磊 (50 %).
    assert text.index("李娜 0%（0/1）") < text.index("王磊 50%（1/2）")
    assert "1 次拜访没有定位" in text and "价格 1 次" in text
    assert "日报 详情" in text


async def test_one_rep_detail_other_days_and_periods(chat: Any, runtime: Runtime) -> None:
    mgr = await team_with_a_visit(chat, runtime)
    one = await ask(mgr, "日报 王磊")
    assert "日报 2026-11-23（周一） · 王磊" in one and "完成率 50%（1/2）" in one and "李娜" not in one
    detail = await ask(mgr, "日报 详情")
    assert "李娜" in detail and "每位代表" in detail and "日报 详情" not in detail.split("每位代表")[1]
    yesterday = await ask(mgr, "日报 昨天")
    assert "日报 2026-11-22（周日）" in yesterday and "这段时间没有拜访计划" in yesterday
    assert "日报 2026-11-20（周五）" in await ask(mgr, "日报 2026-11-20")
    assert "周报 2026-11-23 至 11-29" in await ask(mgr, "周报")
    assert "月报 2026-11" in await ask(mgr, "月报")


async def test_a_teams_day_digest_is_followed_by_the_chart(chat: Any, runtime: Runtime, channel: str) -> None:
    mgr = await team_with_a_visit(chat, runtime)
    await ask(mgr, "日报")
    caption = "计划完成率图：近7个工作日，2 人低于 92%"  # 李娜 0/1 and 王磊 1/2 over the 7 working days
    # A picture on every channel that shows images (WeCom: uploaded from the attachment store with media/upload).
    assert await mgr.media() == ["image"]
    seen = (await mgr.media(), (await mgr.texts()).count(caption))
    # One rep's digest, a week, a rep's own: no chart.
    await ask(mgr, "日报 王磊")
    await ask(mgr, "周报")
    await ask(await chat("rep01"), "日报")
    assert (await mgr.media(), (await mgr.texts()).count(caption)) == seen
    assert await (await chat("rep01")).media() == []


async def test_a_rep_gets_their_own_and_nobody_sees_another_team(chat: Any, runtime: Runtime) -> None:
    await team_with_a_visit(chat, runtime)
    rep = await chat("rep01")
    own = await ask(rep, "日报")
    assert "· 王磊" in own and "李娜" not in own
    await rep.new_texts()
    await rep.say("日报 李娜")
    assert await rep.new_texts() == ["你的团队里没有「李娜」。发「日报」看整个团队，或「日报 王磊」看一位代表。"]
    mgr = await chat("mgr01")
    await mgr.new_texts()
    await mgr.say("日报 赵强")
    assert (await mgr.new_texts())[-1].startswith("你的团队里没有「赵强」")
    member = await chat("log01")
    await member.say("日报")
    assert await member.new_texts() == ["日报只对代表、经理和总监开放。"]


async def test_help_tells_a_manager_about_the_digest(chat: Any) -> None:
    mgr = await chat("mgr01")
    await mgr.say("帮助")
    [help_text] = await mgr.new_texts()
    assert "日报 / 周报 / 月报" in help_text and "即将上线" not in help_text
