"""The second factor of a signed approval (issue 15): with `[request_types.surgery_support]
approval_second_factor = true`, compliance's 完成 sends a one-time code to the signer alone and the review is
approved by `确认 <code>` within 5 minutes; a wrong code, an expired one or three wrong tries approve nothing.

The clock stands at Monday 2026-11-23 10:00 in Shanghai (tests/conftest.py T0)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.config import _default_request_types
from bot.infra.clock import FixedClock
from bot.runtime import Runtime
from storage.models import AuditLog, TaskCard
from tests.scenario_driver import Chat, SeenCard, last_card

SURGERY = "跟台 浙一 骨科 2026-11-25 器械:脊柱A包 备注:王主任主刀"


@pytest.fixture
def scenario_overrides() -> dict[str, dict[str, Any]]:
    types = {k: v.model_dump() for k, v in _default_request_types().items()}
    types["surgery_support"]["approval_second_factor"] = True
    return {"request_types": types}


async def compliance_card(person: Chat) -> SeenCard:
    [card] = [c for c in await person.cards() if c.title.startswith("合规｜")]
    return card


async def review_state(runtime: Runtime) -> tuple[str, list[AuditLog]]:
    async with runtime.db.read() as s:
        card = await s.scalar(select(TaskCard).where(TaskCard.department == "compliance"))
        assert card is not None
        rows = list(await s.scalars(select(AuditLog).where(AuditLog.action == "task.done")))
    return card.state, rows


async def tapped_done(chat: Any) -> tuple[Chat, str]:
    """The request submitted, cmp01 claims the review and taps 完成: the code they were sent."""
    rep = await chat("rep01")
    await rep.say(SURGERY)
    await rep.tap("提交", await last_card(rep))
    cmp01 = await chat("cmp01")
    await cmp01.tap("认领", await compliance_card(cmp01))
    await cmp01.new_texts()
    await cmp01.tap("完成", await compliance_card(cmp01))
    [sent] = await cmp01.new_texts()
    m = re.search(r"验证码 (\d{6})（5 分钟内有效，仅发给你本人）", sent)
    assert m is not None, sent
    assert not any(m.group(1) in t for t in await (await chat("cmp02")).texts())
    return cmp01, m.group(1)


async def test_the_code_approves_and_is_recorded_in_the_signature(chat: Any, runtime: Runtime) -> None:
    cmp01, code = await tapped_done(chat)
    assert (await review_state(runtime)) == ("claimed", [])
    await cmp01.say(f"确认 {code}")
    assert (await cmp01.new_texts())[0] == "卡片 T3 已完成。"
    state, [row] = await review_state(runtime)
    assert state == "done"
    assert row.changes["signature"]["meaning"] == "审核通过"
    assert row.changes["signature"]["second_factor"] == "one_time_code"
    assert code not in str(row.changes)
    assert (await compliance_card(cmp01)).fields["电子签名"] == "韩雪「审核通过」 11-23 10:00"


async def test_wrong_and_expired_codes_approve_nothing(chat: Any, runtime: Runtime, clock: FixedClock) -> None:
    cmp01, code = await tapped_done(chat)
    wrong = "000000" if code != "000000" else "111111"
    await cmp01.say(f"确认 {wrong}")
    assert await cmp01.new_texts() == ["验证码不对，T3 尚未审批。还可再试 2 次，请回复「确认 6位验证码」。"]
    clock.set(clock.now() + timedelta(minutes=5, seconds=1))
    await cmp01.say(f"确认 {code}")
    assert await cmp01.new_texts() == ["验证码已过期，T3 尚未审批。请重新点「完成」获取新的验证码。"]
    assert (await review_state(runtime)) == ("claimed", [])


async def test_three_wrong_codes_end_the_attempt(chat: Any, runtime: Runtime) -> None:
    cmp01, code = await tapped_done(chat)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(2):
        await cmp01.say(f"确认 {wrong}")
    await cmp01.new_texts()
    await cmp01.say(f"确认 {wrong}")
    assert await cmp01.new_texts() == ["验证码错误次数过多，T3 尚未审批。请重新点「完成」获取新的验证码。"]
    await cmp01.say(f"确认 {code}")  # the flow is over: the code no longer approves
    assert (await review_state(runtime)) == ("claimed", [])
