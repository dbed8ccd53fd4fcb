"""Escalation scenarios with an injected clock, written once and run on the console and on WeCom
(``tests/scenario_driver.py``).

The clock starts on Monday 2026-11-23 10:00 in Shanghai (a working day; 09:00–18:00 with lunch 12:00–13:00). The
test policy: remind at 50 % of the deadline; L1 not claimed after the first-response SLA (备货: 2 working hours)
→ department head; L2 not done after 4 working hours → director, repeating every working hour.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, func, select

from bot.infra.clock import FixedClock
from bot.runtime import Runtime
from cards.wecom import task_id_for
from storage.models import AuditLog, OutboxMessage, TaskCard, User
from tests.scenario_driver import Chat, SeenCard, last_card

SH = ZoneInfo("Asia/Shanghai")
STOCK = "备货 省人民 骨钉 20 2026-11-30"
LEVELS = [
    {"trigger": "not_claimed", "after_sla": "first_response", "notify": ["head"]},
    {"trigger": "not_done", "after_hours": 4, "notify": ["director"], "repeat_every_hours": 1},
]
ESCALATION = {"sweep_interval_seconds": 3600, "remind_at": 0.5, "levels": LEVELS}


@pytest.fixture
def scenario_overrides() -> dict[str, dict[str, Any]]:
    return {"escalation": dict(ESCALATION)}


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SH)


async def travel(rt: Runtime, clock: FixedClock, when: datetime) -> None:
    """Move the clock, run the sweep as the scheduler would, deliver what it wrote."""
    clock.set(when)
    await rt.escalator.sweep()
    await rt.settle()


async def raise_stock_request(chat: Any) -> Chat:
    rep: Chat = await chat("rep01")
    await rep.say(STOCK)
    await rep.tap("提交")
    await rep.new_texts()
    return rep


async def escalation_cards(user: Chat) -> list[SeenCard]:
    # A notice's ref is its card's ref plus -e<n>; a card's own ref ends in 6 random hex digits, which can read
    # "-e12345" by chance, so the pattern anchors on both.
    return [c for c in await user.cards() if re.search(r"-[0-9a-f]{6}-e\d+$", c.ref)]


async def card_by_ref(user: Chat, ref: str) -> SeenCard:
    [card] = [c for c in await user.cards() if c.ref in (ref, task_id_for(ref))]
    return card


async def the_card(rt: Runtime) -> TaskCard:
    async with rt.db.read() as s:
        [card] = list(await s.scalars(select(TaskCard)))
        return card


async def the_cards(rt: Runtime) -> list[TaskCard]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(TaskCard).order_by(TaskCard.id)))


async def audit_actions(rt: Runtime) -> list[str]:
    async with rt.db.read() as s:
        rows = await s.scalars(
            select(AuditLog.action).where(AuditLog.action.like("escalation.%")).order_by(AuditLog.id)
        )
        return list(rows)


async def test_reminder_then_levels_then_repeats(chat: Any, runtime: Runtime, clock: FixedClock) -> None:
    await raise_stock_request(chat)
    log01, head, director = await chat("log01"), await chat("log_head"), await chat("dir01")
    for u in (log01, head, director):
        await u.new_texts()
    card = await the_card(runtime)
    assert card.next_due_at == at(23, 11)  # the reminder at 50 % of the 2-hour first response

    await travel(runtime, clock, at(23, 10, 59))
    assert await log01.new_texts() == [] and await audit_actions(runtime) == []

    await travel(runtime, clock, at(23, 11))
    [reminder] = await log01.new_texts()
    assert reminder.startswith("⏰ 卡片 T1「备货 骨钉 × 20」还没人认领") and "11-23 12:00" in reminder
    assert await escalation_cards(head) == []

    await travel(runtime, clock, at(23, 12))  # L1: 2 working hours, not claimed
    [level1] = await escalation_cards(head)
    assert level1.title.startswith("⚠️ 第1级升级·物流")
    facts = level1.fields
    assert facts["已等待"] == "2 小时" and facts["处理人"] == "无人认领" and facts["编号"] == "T1 / R1"
    assert level1.buttons == ["接手", "转派", "暂缓1小时", "暂缓4小时", "明早9点"]
    assert await escalation_cards(director) == []

    # Lunch does not count: 4 working hours from 10:00 is 15:00, not 14:00.
    await travel(runtime, clock, at(23, 14, 59))
    assert await escalation_cards(director) == []
    await travel(runtime, clock, at(23, 15))
    [level2] = await escalation_cards(director)
    assert level2.title.startswith("⚠️ 第2级升级")

    await travel(runtime, clock, at(23, 16))
    await travel(runtime, clock, at(23, 16, 30))  # nothing new half-way
    await travel(runtime, clock, at(23, 17))
    repeats = [c for c in await escalation_cards(director) if c.title.startswith("⏰ 仍未处理")]
    assert len(repeats) == 2
    assert await audit_actions(runtime) == [
        "escalation.remind",
        "escalation.level",
        "escalation.level",
        "escalation.repeat",
        "escalation.repeat",
    ]


async def test_handled_before_a_level_sends_nothing(chat: Any, runtime: Runtime, clock: FixedClock) -> None:
    await raise_stock_request(chat)
    log01, head = await chat("log01"), await chat("log_head")
    clock.set(at(23, 10, 30))
    [card] = await log01.cards()
    await log01.tap("认领", card)
    await travel(runtime, clock, at(23, 12, 30))
    assert await escalation_cards(head) == []
    stored = await the_card(runtime)
    assert stored.esc_step == 2  # the reminder and L1 were looked at and skipped
    # Done before L2: the card leaves the sweep for good.
    await log01.tap("完成", await card_by_ref(log01, card.ref))
    assert (await the_card(runtime)).next_due_at is None
    await travel(runtime, clock, at(24, 12))
    assert await audit_actions(runtime) == []


async def test_downtime_catches_up_one_notice_per_level(chat: Any, runtime: Runtime, clock: FixedClock) -> None:
    await raise_stock_request(chat)
    head, director = await chat("log_head"), await chat("dir01")
    # The bot was down for two days: one sweep catches up, each missed level once, no storm of repeats.
    await travel(runtime, clock, at(25, 11))
    assert len(await escalation_cards(head)) == 1
    assert len(await escalation_cards(director)) == 1
    # The first-response reminder came too late to help and is dropped; the completion reminder still helps.
    assert await audit_actions(runtime) == ["escalation.level", "escalation.level", "escalation.remind"]
    stored = await the_card(runtime)
    assert stored.next_due_at == at(25, 12)  # the next repeat is an hour (working) after the catch-up


async def test_overlapping_sweeps_send_each_step_once(chat: Any, runtime: Runtime, clock: FixedClock) -> None:
    await raise_stock_request(chat)
    clock.set(at(23, 12))
    await asyncio.gather(*(runtime.escalator.sweep() for _ in range(5)))
    await runtime.settle()
    # At 12:00 the first-response deadline is here: too late for its reminder, time for L1.
    assert await audit_actions(runtime) == ["escalation.level"]
    head = await chat("log_head")
    assert len(await escalation_cards(head)) == 1


async def test_take_over_from_the_notice(chat: Any, runtime: Runtime, clock: FixedClock) -> None:
    rep = await raise_stock_request(chat)
    head, log01 = await chat("log_head"), await chat("log01")
    await travel(runtime, clock, at(23, 12))
    [notice] = await escalation_cards(head)
    await head.tap("接手", notice)
    assert (await head.new_texts())[-1] == "你已接手卡片 T1：备货 骨钉 × 20"
    assert (await card_by_ref(head, notice.ref)).buttons == []
    stored = await the_card(runtime)
    assert (stored.state, stored.holder_id) == ("claimed", "log_head")
    task = await card_by_ref(log01, stored.ref)
    assert task.fields["状态"].startswith("处理中 · 周涛")
    assert (await rep.new_texts())[-1] == "R1 物流：周涛 接手了「备货 骨钉 × 20」。"
    assert "escalation.takeover" in await audit_actions(runtime)


async def test_reassign_to_a_member(chat: Any, runtime: Runtime, clock: FixedClock) -> None:
    await raise_stock_request(chat)
    head, log02 = await chat("log_head"), await chat("log02")
    await travel(runtime, clock, at(23, 12))
    [notice] = await escalation_cards(head)
    await head.tap("转派", notice)
    choose = await last_card(head)
    assert choose.buttons == ["吴敏", "郑浩"]
    await head.tap("郑浩", choose)
    assert (await head.new_texts())[-1] == "卡片 T1 已转派给 郑浩。"
    assert (await log02.new_texts())[-1] == "📌 周涛 把卡片 T1「备货 骨钉 × 20」转派给你，请尽快处理。"
    stored = await the_card(runtime)
    assert (stored.state, stored.holder_id) == ("claimed", "log02")
    assert "escalation.reassign" in await audit_actions(runtime)


async def test_snooze_with_a_reason_silences_until_then(chat: Any, runtime: Runtime, clock: FixedClock) -> None:
    await raise_stock_request(chat)
    director = await chat("dir01")
    await travel(runtime, clock, at(23, 15))
    [notice] = await escalation_cards(director)
    await director.tap("暂缓4小时", notice)
    assert (await director.new_texts())[-1].startswith("请输入暂缓原因（卡片 T1，暂缓到 11-23 19:00")
    await director.say("仓库盘点中，晚上处理")
    assert (await director.new_texts())[-1] == "卡片 T1 的升级已暂缓到 11-23 19:00：仓库盘点中，晚上处理"
    await travel(runtime, clock, at(23, 17))
    assert len(await escalation_cards(director)) == 1  # the 16:00 and 17:00 repeats wait for the snooze
    await travel(runtime, clock, at(23, 19))
    assert len(await escalation_cards(director)) == 2
    assert (await audit_actions(runtime)).count("escalation.snooze") == 1


async def test_outsiders_cannot_act_on_a_notice(chat: Any, runtime: Runtime, clock: FixedClock) -> None:
    await raise_stock_request(chat)
    head, log01 = await chat("log_head"), await chat("log01")
    await travel(runtime, clock, at(23, 12))
    [notice] = await escalation_cards(head)
    await log01.forge_tap(notice.keys["接手"], notice)
    assert (await log01.new_texts())[-1] == "你不能处理卡片 T1 的升级。"
    assert (await the_card(runtime)).holder_id is None


async def test_config_reload_mid_flight_keeps_old_cards_policy(chat: Any, runtime: Runtime, clock: FixedClock) -> None:
    await raise_stock_request(chat)
    old = await the_card(runtime)
    stricter = dict(ESCALATION, levels=[{"trigger": "not_claimed", "after_hours": 0.5, "notify": ["director"]}])
    escalation = type(runtime.settings.escalation).model_validate(stricter)
    restart = runtime.reload(runtime.settings.model_copy(update={"escalation": escalation}))
    assert restart == []
    rep = await chat("rep01")
    await rep.say("备货 浙二 骨板 5 2026-11-30")
    await rep.tap("提交")
    async with runtime.db.read() as s:
        old_now, new = list(await s.scalars(select(TaskCard).order_by(TaskCard.id)))
    assert old_now.policy == old.policy  # frozen at creation
    assert [st["kind"] for st in new.policy["steps"]] == ["level", "remind", "remind"]
    await travel(runtime, clock, at(23, 10, 30))
    director = await chat("dir01")
    # Half an hour later only the new card escalates (to the director); the old one waits for its own L1 at 12:00.
    [notice] = await escalation_cards(director)
    assert notice.ref in (f"{new.ref}-e1", task_id_for(f"{new.ref}-e1"))
    assert (await the_cards(runtime))[0].esc_step == 0


async def test_calendar_hour_types_escalate_at_night(chat: Any, runtime: Runtime, clock: FixedClock) -> None:
    clock.set(at(27, 20))  # Friday evening
    rep = await chat("rep01")
    await rep.say("跟台 浙一 骨科 2026-11-28 器械:脊柱A包")
    await rep.tap("提交")
    head = await chat("mkt_head")
    # 跟台 counts calendar hours: the 2-hour first response is due at 22:00 the same night, not on Monday.
    await travel(runtime, clock, at(27, 22))
    assert len(await escalation_cards(head)) == 1


async def test_history_and_policy_commands(chat: Any, runtime: Runtime, clock: FixedClock) -> None:
    await raise_stock_request(chat)
    await travel(runtime, clock, at(23, 11))
    await travel(runtime, clock, at(23, 12))
    head = await chat("log_head")
    await head.new_texts()
    await head.say("升级记录 T1")
    [history] = await head.new_texts()
    assert "王磊 提交申请" in history and "系统提醒" in history and "第1级升级：超时未认领" in history
    assert "下一步：11-23 15:00 第2级升级" in history
    admin = await chat("admin01")
    await admin.say("升级策略 logistics stock_reservation")
    [policy] = await admin.new_texts()
    assert "第1级：首次响应到期时（提交后 2 小时）仍未认领 → 通知 部门负责人（周涛）" in policy
    assert "每 1 小时再通知一次" in policy
    rep = await chat("rep01")
    await rep.say("升级策略")
    assert (await rep.new_texts())[-1] == "你没有权限执行此操作。"


# ---- issue 11: escalation in plain words ------------------------------------------------------------------------

STOCK_POLICY = [
    "备货（物流）：首次响应 2 小时、完成 24 小时（工作时间）",
    "· 时限过去 50% 时提醒处理人（还没人认领时提醒部门成员）",
    "· 第1级：首次响应到期时（提交后 2 小时）仍未认领 → 通知 部门负责人（周涛）",
    "· 第2级：提交后 4 小时仍未完成 → 通知 总监（赵强），之后每 1 小时再通知一次",
]


async def test_policy_answered_in_english_codes_now_in_chinese_hours_and_people(chat: Any) -> None:
    head = await chat("log_head")
    await head.say("升级策略 备货")
    [policy] = await head.new_texts()
    assert policy.split("\n") == STOCK_POLICY
    assert not re.search(r"not_claimed|first_response|→ head|L1|remind @", policy)


async def test_policy_took_only_english_keys_now_names_as_people_write_them(chat: Any) -> None:
    admin = await chat("admin01")
    for words in ("物流 备货", "物流部 备货", "logistics stock_reservation", "备货 物流", "Logistics stock"):
        await admin.say(f"升级策略 {words}")
        [policy] = await admin.new_texts()
        assert policy.split("\n") == STOCK_POLICY, words
    await admin.say("升级策略 仓库")
    [refused] = await admin.new_texts()
    assert refused.startswith("不认识「仓库」。部门：物流、市场、合规；申请类型：手术跟台（跟台）")


async def test_policy_answers_an_english_reader_in_english(chat: Any, runtime: Runtime) -> None:
    async with runtime.db.transaction() as s:
        admin_row = await s.get(User, "admin01")
        assert admin_row is not None
        admin_row.locale = "en"
    admin = await chat("admin01")
    await admin.say("policy logistics stock")
    [policy] = await admin.new_texts()
    assert policy.split("\n")[0] == "Stock reservation (Logistics): first response 2 h, done 24 h (working hours)"
    assert "→ tell department head (周涛)" in policy


async def test_history_showed_audit_codes_now_sentences(chat: Any, runtime: Runtime, clock: FixedClock) -> None:
    await raise_stock_request(chat)
    head = await chat("log_head")
    await travel(runtime, clock, at(23, 11))
    await travel(runtime, clock, at(23, 12))
    [notice] = await escalation_cards(head)
    clock.set(at(23, 12, 5))
    await head.tap("转派", notice)
    await head.tap("郑浩", await last_card(head))
    await head.new_texts()
    await head.say("升级记录 T1")
    [history] = await head.new_texts()
    assert history.split("\n") == [
        "卡片 T1「备货 骨钉 × 20」的记录：",
        "11-23 10:00 王磊 提交申请",
        "11-23 11:00 系统提醒 吴敏、郑浩、周涛（部门负责人）：还没人认领，首次响应快到期了",
        "11-23 12:00 第1级升级：超时未认领，已通知 周涛（部门负责人）",
        "11-23 12:05 周涛 转派给 郑浩",
        "下一步：11-23 15:00 第2级升级：若仍未完成，通知 赵强（总监）",
    ]


async def test_history_next_step_gave_a_time_only_now_what_it_is(
    chat: Any, runtime: Runtime, clock: FixedClock
) -> None:
    await raise_stock_request(chat)
    head = await chat("log_head")
    await head.new_texts()
    await head.say("升级记录 T1")
    [history] = await head.new_texts()
    assert history.split("\n")[-1] == "下一步：11-23 11:00 提醒部门成员（首次响应 11-23 12:00 到期）"
    # Snoozed: the next step waits for the snooze and says so.
    director = await chat("dir01")
    await travel(runtime, clock, at(23, 15))
    await director.tap("暂缓4小时", (await escalation_cards(director))[-1])
    await director.say("等仓库回复")
    await director.new_texts()
    await director.say("升级记录 T1")
    [history] = await director.new_texts()
    assert "11-23 15:00 赵强 把升级暂缓到 11-23 19:00：等仓库回复" in history
    assert history.split("\n")[-1] == "下一步：11-23 19:00 若仍未完成，再次通知 赵强（总监）（暂缓到此时）"


async def test_notice_showed_the_completion_deadline_for_a_first_response_level(
    chat: Any, runtime: Runtime, clock: FixedClock
) -> None:
    await raise_stock_request(chat)
    head, director = await chat("log_head"), await chat("dir01")
    await travel(runtime, clock, at(23, 12))
    [level1] = await escalation_cards(head)
    assert level1.fields["响应截止"] == "11-23 12:00" and "完成截止" not in level1.fields
    await travel(runtime, clock, at(23, 15))
    [level2] = await escalation_cards(director)
    # L2 is about getting it done: the completion deadline, 24 working hours after Monday 10:00.
    assert level2.fields["完成截止"] == "11-26 10:00" and "响应截止" not in level2.fields


async def test_notice_wait_read_49_hours_0_min_now_2_days_1_hour(
    chat: Any, runtime: Runtime, clock: FixedClock
) -> None:
    """已等待 is the wall time since submission at the sweep's instant, in minutes, hours and minutes, then days
    (before: "2 小时 0 分", "49 小时 0 分"; under a minute it said "0 分钟", now "不到 1 分钟")."""
    await raise_stock_request(chat)
    head, director = await chat("log_head"), await chat("dir01")
    await travel(runtime, clock, at(23, 12))
    assert [c.fields["已等待"] for c in await escalation_cards(head)] == ["2 小时"]
    await travel(runtime, clock, at(23, 15, 20))  # L2 (due 15:00) taken at the sweep of 15:20
    assert [c.fields["已等待"] for c in await escalation_cards(director)] == ["5 小时 20 分钟"]
    await travel(runtime, clock, at(25, 11))  # two days later, wall time
    repeats = [c for c in await escalation_cards(director) if c.title.startswith("⏰ 仍未处理")]
    assert [c.fields["已等待"] for c in repeats] == ["2 天 1 小时"]


async def test_rep_was_told_the_new_holder_claimed_now_who_reassigned_it(
    chat: Any, runtime: Runtime, clock: FixedClock
) -> None:
    rep = await raise_stock_request(chat)
    head, log02 = await chat("log_head"), await chat("log02")
    await travel(runtime, clock, at(23, 12))
    await head.tap("转派", (await escalation_cards(head))[-1])
    await head.tap("郑浩", await last_card(head))
    assert (await rep.new_texts())[-1] == "R1 物流：周涛 把「备货 骨钉 × 20」转派给了 郑浩。"
    assert (await log02.new_texts())[-1] == "📌 周涛 把卡片 T1「备货 骨钉 × 20」转派给你，请尽快处理。"


async def test_rep_was_told_the_head_claimed_now_who_took_it_over_and_the_old_holder_is_told(
    chat: Any, runtime: Runtime, clock: FixedClock
) -> None:
    rep = await raise_stock_request(chat)
    log01, director = await chat("log01"), await chat("dir01")
    clock.set(at(23, 10, 30))
    await log01.tap("认领", (await log01.cards())[-1])
    await log01.new_texts()
    await rep.new_texts()
    await travel(runtime, clock, at(23, 15))  # L2: claimed but not done → director
    await director.tap("接手", (await escalation_cards(director))[-1])
    assert (await rep.new_texts())[-1] == "R1 物流：赵强 接手了「备货 骨钉 × 20」。"
    assert (await log01.new_texts())[-1] == "ℹ️ 赵强 接手了你处理的卡片 T1「备货 骨钉 × 20」，你不用再跟进了。"
    await director.say("升级记录 T1")
    assert "11-23 15:00 赵强 从 吴敏 手中接手了任务" in (await director.new_texts())[-1]


async def test_escalation_notices_go_through_the_outbox(chat: Any, runtime: Runtime, clock: FixedClock) -> None:
    await raise_stock_request(chat)
    await travel(runtime, clock, at(23, 12))
    async with runtime.db.read() as s:
        rows = (await s.scalars(select(OutboxMessage).where(OutboxMessage.card_ref.like("%-e1")))).all()
        sent = await s.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status != "sent"))
    assert [r.payload["user_ids"] for r in rows] == [["log_head"]]
    assert sent == 0
    assert runtime.metrics.registry.get_sample_value("salesbot_escalations_total", {"kind": "level"}) == 1
    assert timedelta(0) < (await the_card(runtime)).next_due_at - at(23, 12)  # type: ignore[operator]


async def test_reminders_wait_out_quiet_hours(
    chat: Any, runtime: Runtime, clock: FixedClock, settings_overrides: dict[str, Any]
) -> None:
    runtime.reload(
        runtime.settings.model_copy(
            update={"escalation": runtime.settings.escalation.model_copy(update={"remind_at": 0.25})}
        )
    )
    clock.set(at(27, 17))  # Friday 17:00; 跟台 counts calendar hours (complete: 24 h)
    rep = await chat("rep01")
    await rep.say("跟台 浙一 骨科 2026-11-29 器械:脊柱A包")
    await rep.tap("提交")
    mkt01 = await chat("mkt01")
    await travel(runtime, clock, at(27, 17, 30))  # 25 % of the 2 h first response: before quiet hours, sent
    assert (await mkt01.new_texts())[-1].startswith("⏰ 卡片 T1")
    await travel(runtime, clock, at(27, 23))  # 25 % of the 24 h completion falls at 23:00: quiet hours
    assert await mkt01.new_texts() == []
    async with runtime.db.read() as s:
        card = await s.get(TaskCard, 1)
    assert card is not None and card.next_due_at == at(28, 8)
    await travel(runtime, clock, at(28, 8))
    [reminder] = await mkt01.new_texts()
    assert reminder.startswith("⏰ 卡片 T1「跟台资料") and "将于 11-28 17:00 到期" in reminder


async def test_reload_from_a_file_applies_it_or_keeps_the_old_one(
    runtime: Runtime, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "salesbot.toml"
    path.write_text("[escalation]\nlevels = []\n", encoding="utf-8")
    before = runtime.settings
    assert runtime.reload_from(str(path)) is False
    assert runtime.settings is before
    assert "config reload refused" in caplog.text and "escalation.levels" in caplog.text
    path.write_text(
        '[escalation]\nremind_at = 0.5\n[server]\nport = 9999\n[database]\nurl = "sqlite+aiosqlite:///x.db"\n'
    )
    assert runtime.reload_from(str(path)) is True
    assert runtime.settings.escalation.remind_at == 0.5
    # Sections that need a restart keep their running values.
    assert runtime.settings.database.url == before.database.url and runtime.settings.server.port == before.server.port
    assert "takes effect after a restart" in caplog.text


async def test_a_level_with_nobody_to_tell_goes_to_directors_and_admins(
    chat: Any, runtime: Runtime, clock: FixedClock
) -> None:
    async with runtime.db.transaction() as s:
        head = await s.get(User, "log_head")
        assert head is not None
        head.active = False  # the head left; nobody else holds the role
    await raise_stock_request(chat)
    await travel(runtime, clock, at(23, 12))
    for uid in ("dir01", "admin01"):
        assert len(await escalation_cards(await chat(uid))) == 1


async def test_help_tells_heads_and_admins_about_escalations(chat: Any, runtime: Runtime) -> None:
    for uid, shown in (("log_head", True), ("admin01", True), ("dir01", True), ("rep01", False), ("log01", False)):
        user = await chat(uid)
        await user.say("帮助")
        [text] = await user.new_texts()
        assert ("升级记录 <卡片编号>" in text) is shown, uid


async def test_notices_lose_their_buttons_when_the_card_closes(chat: Any, runtime: Runtime, clock: FixedClock) -> None:
    await raise_stock_request(chat)
    head, log01 = await chat("log_head"), await chat("log01")
    await travel(runtime, clock, at(23, 12))
    [notice] = await escalation_cards(head)
    assert notice.buttons
    clock.set(at(23, 12, 10))
    task = next(c for c in await log01.cards() if c.title.startswith("物流"))
    await log01.tap("认领", task)
    await log01.tap("完成", await card_by_ref(log01, task.ref))
    [settled] = await escalation_cards(head)
    assert settled.ref == notice.ref and settled.buttons == []
    assert settled.status == "✅ 吴敏 已完成（11-23 12:10）"


async def test_a_sweep_that_catches_up_two_levels_sends_two_distinct_notices(
    chat: Any, runtime: Runtime, clock: FixedClock
) -> None:
    """Found by running this suite on WeCom: both notices of one catch-up sweep were numbered -e2, so WeCom refused
    the second (task_id used twice: the director's notice was lost) and closing the card could not settle the head's
    notice on the console."""
    await raise_stock_request(chat)
    head, director, log01 = await chat("log_head"), await chat("dir01"), await chat("log01")
    await travel(runtime, clock, at(25, 11))
    [level1], [level2] = await escalation_cards(head), await escalation_cards(director)
    card = await the_card(runtime)
    assert (level1.ref, level2.ref) == (task_id_for(f"{card.ref}-e1"), task_id_for(f"{card.ref}-e2"))
    task = next(c for c in await log01.cards() if c.title.startswith("物流"))
    await log01.tap("认领", task)
    await log01.tap("完成", await card_by_ref(log01, task.ref))
    for user, notice in ((head, level1), (director, level2)):
        assert (await card_by_ref(user, notice.ref)).buttons == [], user.user_id


async def test_closing_a_card_settles_its_notices_from_the_cards_own_state(
    chat: Any, runtime: Runtime, clock: FixedClock
) -> None:
    """Which notices to settle is the card's own state (notice_log), not a read of the audit log (issue 10 §4)."""
    await raise_stock_request(chat)
    head, log01 = await chat("log_head"), await chat("log01")
    await travel(runtime, clock, at(23, 12))
    [notice] = await escalation_cards(head)
    assert (await the_card(runtime)).notice_log == [{"n": 1, "targets": ["log_head"]}]
    async with runtime.db.transaction() as s:  # an export or retention job may move audit rows elsewhere
        await s.execute(delete(AuditLog).where(AuditLog.action.like("escalation.%")))
    task = next(c for c in await log01.cards() if c.title.startswith("物流"))
    await log01.tap("认领", task)
    await log01.tap("完成", await card_by_ref(log01, task.ref))
    assert (await card_by_ref(head, notice.ref)).buttons == []
