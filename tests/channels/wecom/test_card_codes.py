"""A tap's ResponseCode stays in the WeCom channel (issue 10 §2): it is committed with the tap's event, before the
acknowledgement, as an unspent ``wecom_card_codes`` row; no event, intent, outbox row or conversation state carries
it; the channel spends it on the next update of the tapped card."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.infra.clock import FixedClock
from bot.runtime import Runtime
from storage.models import Conversation, InboundEvent, OutboxMessage, WeComCardCode
from tests.channels.wecom.conftest import WeComUser
from tests.conftest import make_settings
from tests.fakes.wecom import FakeWeCom

pytestmark = pytest.mark.usefixtures("no_violations")

User = Callable[[str], WeComUser]
SH = ZoneInfo("Asia/Shanghai")
ONE_LINE_VISIT = "拜访 浙一 骨科 张主任 异议:价格 下一步:送样"
STOCK = "备货 省人民 骨钉 20 2026-11-30"
ESCALATION = {
    "sweep_interval_seconds": 3600,
    "remind_at": 0.5,
    "levels": [
        {"trigger": "not_claimed", "after_sla": "first_response", "notify": ["head"]},
        {"trigger": "not_done", "after_hours": 4, "notify": ["director"], "repeat_every_hours": 1},
    ],
}


async def codes(rt: Runtime) -> dict[str, tuple[str, str, bool]]:
    """code → (task_id, source, spent)."""
    async with rt.db.read() as s:
        return {c.code: (c.task_id, c.source, c.spent_at is not None) for c in await s.scalars(select(WeComCardCode))}


async def stored_anywhere(rt: Runtime, code: str) -> list[str]:
    """Where outside the channel's own table ``code`` shows up: events, outbox payloads, conversation state."""
    async with rt.db.read() as s:
        found = [f"event {e.id}" for e in await s.scalars(select(InboundEvent)) if code in str(e.payload)]
        found += [f"outbox {m.id}" for m in await s.scalars(select(OutboxMessage)) if code in str(m.payload)]
        found += [f"conversation {c.user_id}" for c in await s.scalars(select(Conversation)) if code in str(c.data)]
    return found


def updates_of(fake: FakeWeCom, task_id: str) -> list[Any]:
    return [u for u in fake.updates if u.task_id == task_id]


async def test_a_taps_code_is_committed_with_its_event_and_serves_after_a_restart(
    wecom_user: User, bot: Runtime, fake: FakeWeCom, clock: FixedClock, db_url: str, settings_overrides: Any
) -> None:
    rep = wecom_user("rep01")
    await rep.send(ONE_LINE_VISIT)
    [card] = rep.cards()
    # The bot dies after acknowledging the tap, before handling it: nothing runs but the webhook's ingest.
    await bot.stop()
    code = await rep.tap(card, "提交", settle=False)
    assert (await codes(bot))[code] == (card["task_id"], "tap", False)
    assert await stored_anywhere(bot, code) == []
    assert updates_of(fake, card["task_id"]) == []

    successor = Runtime(make_settings(db_url, **settings_overrides), clock=clock)
    await successor.start()  # recovers the acknowledged event and handles it
    try:
        await successor.settle()
        [upd] = updates_of(fake, card["task_id"])
        assert (upd.response_code, upd.userids) == (code, ["rep01"])
        state = rep.current(card)
        assert state["replace_text"] and "已提交" in state["main_title"].get("desc", "") + state["replace_text"]
        assert (await codes(successor))[code] == (card["task_id"], "tap", True)
        assert await stored_anywhere(successor, code) == []
    finally:
        await successor.close()


async def test_a_re_delivered_tap_records_its_code_once(wecom_user: User, bot: Runtime, fake: FakeWeCom) -> None:
    rep = wecom_user("rep01")
    await rep.send(ONE_LINE_VISIT)
    [card] = rep.cards()
    inner, code = rep.tap_callback(card, "提交")
    for _ in range(3):  # the first delivery and WeCom's retries of the same callback
        assert await rep.deliver(inner) == (200, b"")
    [upd] = updates_of(fake, card["task_id"])
    assert upd.response_code == code
    assert [c for c, (_, source, _) in (await codes(bot)).items() if source == "tap"] == [code]


@pytest.fixture
def extra_overrides() -> dict[str, dict[str, Any]]:
    return {"escalation": dict(ESCALATION)}


async def test_snooze_tap_then_reason_settles_the_tapped_notice_in_place(
    wecom_user: User, bot: Runtime, fake: FakeWeCom, clock: FixedClock
) -> None:
    clock.set(datetime(2026, 11, 23, 10, 0, tzinfo=SH))
    rep, director = wecom_user("rep01"), wecom_user("dir01")
    await rep.send(STOCK)
    await rep.tap(rep.last_card(), "提交")
    clock.set(datetime(2026, 11, 23, 15, 0, tzinfo=SH))
    await bot.escalator.sweep()
    await bot.settle()
    notice = director.last_card()
    assert "暂缓4小时" in [b["text"] for b in notice["button_list"]]

    code = await director.tap(notice, "暂缓4小时")
    assert director.texts()[-1].startswith("请输入暂缓原因（卡片 T1，暂缓到 11-23 19:00")
    # Between the two steps the code is the channel's: not in the conversation state, the event or the outbox.
    assert await stored_anywhere(bot, code) == []
    assert (await codes(bot))[code] == (notice["task_id"], "tap", False)
    assert updates_of(fake, notice["task_id"]) == []

    await director.send("仓库盘点中，晚上处理")
    assert director.texts()[-1] == "卡片 T1 的升级已暂缓到 11-23 19:00：仓库盘点中，晚上处理"
    [upd] = updates_of(fake, notice["task_id"])
    assert (upd.response_code, upd.userids) == (code, ["dir01"])
    state = director.current(notice)
    assert state["replace_text"], "the tapped notice was not settled in place"
    assert not {b["key"] for b in notice["button_list"]} & {b["key"] for b in state["button_list"]}
    assert [c["task_id"] for c in director.cards()].count(notice["task_id"]) == 1  # no fresh copy sent
    assert (await codes(bot))[code] == (notice["task_id"], "tap", True)
