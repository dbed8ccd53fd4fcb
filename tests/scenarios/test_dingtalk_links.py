"""The request/claim flow on DingTalk without a card template (the fallback until an admin imports it): every card
is an action card whose buttons are each person's signed, single-use links (``GET /dingtalk/act/<token>``,
bot/channels/dingtalk/actions.py). The same flow as tests/scenarios/test_requests.py, through the same driver
(``DingTalkChat`` in link mode): a rep submits, a logistics member claims, every member's card shows it, the rep is
told; a link opened again changes nothing, another member's link to the old state is answered with who holds it.

The clock stands at Monday 2026-11-23 10:00 in Shanghai (tests/conftest.py T0).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from bot.runtime import Runtime
from tests.scenario_driver import DingTalkChat, last_card
from tests.scenarios.test_requests import CLAIMED, CONFIRM, OPEN, SURGERY, db_cards, task_card


@pytest.fixture
def channel() -> str:
    return "dingtalk"


@pytest.fixture
def dingtalk_links() -> bool:
    return True


async def test_without_a_template_links_submit_and_claim_once(chat: Any, runtime: Runtime) -> None:
    rep: DingTalkChat = await chat("rep01")
    assert rep.links
    await rep.say(SURGERY)
    confirm = await last_card(rep)
    assert confirm.buttons == CONFIRM and confirm.fields["器械"] == "脊柱A包"
    await rep.tap("提交", confirm)
    [submitted] = await rep.new_texts()
    assert submitted.startswith("✅ 申请已提交 R1"), submitted
    settled = [c for c in await rep.cards() if c.ref == confirm.ref]
    assert settled and settled[0].buttons == [] and settled[0].status == "已提交 R1", settled

    log01, log02, head = [await chat(uid) for uid in ("log01", "log02", "log_head")]
    for person in (log01, log02, head):
        card = await task_card(person, "logistics")
        assert card.buttons == OPEN, (person.user_id, card)
    mine, theirs = await task_card(log01, "logistics"), await task_card(log02, "logistics")
    assert mine.keys["认领"] != theirs.keys["认领"], "each person's own links"

    await log01.tap("认领", mine)

    assert await log01.new_texts() == ["你已认领卡片 T2：备器械 脊柱A包（2026-11-25）"]
    for person in (log01, log02, head):
        card = await task_card(person, "logistics")
        assert card.fields["状态"].startswith("处理中 · 吴敏"), (person.user_id, card.fields)
        assert card.buttons == CLAIMED, person.user_id
    assert await rep.new_texts() == ["R1 物流：吴敏 已认领「备器械 脊柱A包（2026-11-25）」。"]
    stored = (await db_cards(runtime))["logistics"]
    assert (stored.state, stored.holder_id) == ("claimed", "log01")

    # The same link again (a second tap, a reload): refused at the door, nothing changes.
    async with log01.http.get(urlsplit(mine.keys["认领"]).path) as resp:
        assert resp.status == 409
    await runtime.settle()
    # log02's link to the card as it was: a first use, so it is handled, and the card says who holds it.
    before = await task_card(log02, "logistics")
    await log02.tap_stale("认领", theirs)
    stored = (await db_cards(runtime))["logistics"]
    assert (stored.state, stored.holder_id) == ("claimed", "log01")
    assert (await task_card(log02, "logistics")).buttons == before.buttons == CLAIMED
    assert await log02.new_texts() == ["卡片 T2 已由 吴敏 认领处理。"]
