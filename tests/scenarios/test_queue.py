"""Department queues, written once and run on the console and on WeCom (``tests/scenario_driver.py``): a member's
我的任务 lists their open cards, 打开 sends a live copy they can claim from, the queue then shows who holds it; a head
sees the department, a director every department; pages of four turn in place; others are told what to use.

The clock stands at Monday 2026-11-23 10:00 in Shanghai (tests/conftest.py T0).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.infra.clock import FixedClock
from tests.scenario_driver import Chat, SeenCard, last_card

SH = ZoneInfo("Asia/Shanghai")
SURGERY = "跟台 浙一 骨科 2026-11-25 器械:脊柱A包 备注:王主任主刀"  # T1 marketing, T2 logistics, T3 compliance
STOCK = "备货 省人民 骨钉 20 2026-11-30"  # one logistics card
OPEN = ["认领", "需补充", "驳回"]
CLAIMED = ["完成", "需补充", "驳回"]


async def raise_request(chat: Any, line: str) -> None:
    rep: Chat = await chat("rep01")
    await rep.say(line)
    await rep.tap("提交", await last_card(rep))
    await rep.new_texts()


async def ask(person: Chat, words: str) -> SeenCard:
    """``person`` sends ``words``; the queue card they get back."""
    before = len(await person.cards())
    await person.say(words)
    cards = await person.cards()
    assert len(cards) == before + 1, (words, await person.new_texts())
    return cards[-1]


async def now_of(person: Chat, card: SeenCard) -> SeenCard:
    [current] = [c for c in await person.cards() if c.ref == card.ref]
    return current


async def test_a_member_opens_a_task_from_the_queue_claims_it_and_the_queue_shows_them_holding_it(chat: Any) -> None:
    await raise_request(chat, SURGERY)
    await raise_request(chat, STOCK)
    log01, log02 = await chat("log01"), await chat("log02")

    queue = await ask(log01, "我的任务")

    assert queue.title == "我的任务（2）"
    assert list(queue.fields) == ["T2", "T4"]  # by deadline: the surgery's kit is due first
    assert queue.fields["T2"].startswith("截止11-24 10:00｜待认领｜手术跟台 浙一"), queue.fields
    assert queue.fields["T4"].startswith("截止") and "备货 省人民" in queue.fields["T4"], queue.fields
    assert queue.buttons == ["打开 T2", "打开 T4"]

    await log01.tap("打开 T2", queue)
    opened = await last_card(log01)
    assert opened.ref != queue.ref and opened.title.startswith("物流｜备器械 脊柱A包")
    assert opened.buttons == OPEN and opened.fields["编号"] == "T2 / R1"

    await log01.tap("认领", opened)

    assert (await log01.new_texts())[-1] == "你已认领卡片 T2：备器械 脊柱A包（2026-11-25）"
    assert (await now_of(log01, opened)).buttons == CLAIMED  # the opened copy follows the card
    for person in (log01, log02):  # and so does the card the department got
        [shared] = [c for c in await person.cards() if c.title.startswith("物流｜备器械") and c.ref != opened.ref]
        assert shared.buttons == CLAIMED, person.user_id
    mine = await ask(log01, "待办")
    assert mine.title == "我的任务（2）" and mine.fields["T2"].startswith("截止11-24 10:00｜处理中·吴敏")
    theirs = await ask(log02, "我的任务")
    assert theirs.title == "我的任务（1）" and list(theirs.fields) == ["T4"]  # held by someone else: not theirs


async def test_a_head_sees_the_whole_department_and_who_holds_what(chat: Any) -> None:
    await raise_request(chat, STOCK)  # T1
    await raise_request(chat, SURGERY)  # T2 marketing, T3 logistics, T4 compliance
    log01, head = await chat("log01"), await chat("log_head")
    await log01.tap("认领", await last_card(log01))  # T3, the surgery's kit

    for words in ("部门待办", "我的任务"):
        queue = await ask(head, words)
        assert queue.title == "物流待办（2）", words
        assert list(queue.fields) == ["T3", "T1"], words  # by deadline: the kit is due tomorrow
        assert "处理中·吴敏" in queue.fields["T3"] and "待认领" in queue.fields["T1"], queue.fields
    unclaimed = await ask(head, "待认领")
    assert unclaimed.title == "物流待认领（1）" and list(unclaimed.fields) == ["T1"]


async def test_a_director_sees_every_department_and_may_open_any_card(chat: Any) -> None:
    await raise_request(chat, SURGERY)
    director = await chat("dir01")

    queue = await ask(director, "部门待办")

    assert queue.title == "各部门待办（3）"
    assert queue.buttons == ["打开 T1", "打开 T2", "打开 T3"]  # oldest first (made together: by number)
    assert [queue.fields[no].split("｜")[0] for no in ("T1", "T2", "T3")] == ["市场", "物流", "合规"]
    await director.tap("打开 T3", queue)
    opened = await last_card(director)
    assert opened.title.startswith("合规｜授权审核") and opened.buttons == OPEN


async def test_the_queue_shows_four_cards_a_page_and_turns_pages_in_place(chat: Any) -> None:
    for n in range(5):
        await raise_request(chat, f"备货 省人民 骨钉{n} 20 2026-11-30")
    log01 = await chat("log01")

    queue = await ask(log01, "我的任务")

    assert queue.title == "我的任务（5）" and list(queue.fields) == ["T1", "T2", "T3", "T4"]
    assert queue.buttons == ["打开 T1", "打开 T2", "打开 T3", "打开 T4", "下一页"]
    cards = len(await log01.cards())

    await log01.tap("下一页", queue)
    second = await now_of(log01, queue)
    assert list(second.fields) == ["T5"] and second.buttons == ["打开 T5", "上一页"]
    await log01.tap("上一页", second)
    assert list((await now_of(log01, queue)).fields) == ["T1", "T2", "T3", "T4"]
    assert len(await log01.cards()) == cards  # turned in place: no wall of cards


async def test_overdue_lists_the_late_cards_by_the_injected_clock(chat: Any, clock: FixedClock) -> None:
    await raise_request(chat, SURGERY)
    await raise_request(chat, STOCK)
    log01 = await chat("log01")
    await log01.say("超时")
    assert await log01.new_texts() == ["✅ 目前没有待处理的任务。"]

    clock.set(datetime(2026, 11, 24, 13, 0, tzinfo=SH))
    late = await ask(log01, "超时")

    assert late.title == "我的超时任务（1）" and list(late.fields) == ["T2"]
    assert late.fields["T2"].startswith("超时3小时｜待认领")
    clock.set(clock.now() + timedelta(days=30))
    assert set((await ask(log01, "超时")).fields) == {"T2", "T4"}


async def test_someone_without_a_department_role_is_told_what_to_use_instead(chat: Any) -> None:
    for user_id in ("rep01", "mgr01"):
        person = await chat(user_id)
        await person.say("我的任务")
        [answer] = await person.new_texts()
        assert "部门同事" in answer and "我的申请" in answer, answer
        assert await person.cards() == []


async def test_help_tells_members_heads_and_directors_about_their_queue(chat: Any) -> None:
    for user_id, words in (("log01", "我的任务"), ("log_head", "部门待办"), ("dir01", "部门待办"), ("rep01", None)):
        person = await chat(user_id)
        await person.say("帮助")
        [text] = await person.new_texts()
        if words is None:
            assert "我的任务" not in text and "部门待办" not in text, text
        else:
            assert words in text and "超时" in text, (user_id, text)
