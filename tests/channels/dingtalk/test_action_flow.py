"""The no-template fallback end to end: a rep raises a request on the console, the logistics task card reaches the
department's DingTalk members as action cards, a member's link claims it (once), and every recipient sees the new
state; with a template, the same card is one interactive card for both members, updated in place."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.runtime import Runtime
from cards import dingtalk as render
from storage.models import TaskCard
from tests.channels.dingtalk.conftest import WITH_TEMPLATE, staff
from tests.fakes.dingtalk import FakeDingTalk

SURGERY = "跟台 浙一 骨科 2026-11-25 器械:脊柱A包 备注:王主任主刀"


async def _raise_request(console: Any, bot: Runtime) -> TaskCard:
    rep = await console("rep01")
    await rep.send(SURGERY)
    await rep.refresh()
    await rep.tap("提交")
    await bot.settle()
    async with bot.db.read() as s:
        card = await s.scalar(select(TaskCard).where(TaskCard.department == "logistics"))
    assert card is not None
    return card


def _url(param: dict[str, Any], label: str) -> str:
    n = next(i for i in range(1, 6) if param.get(f"actionTitle{i}") == label)
    return urlsplit(param[f"actionURL{n}"]).path


async def test_a_link_claims_the_task_once_and_every_member_sees_it(
    bot: Runtime, fake: FakeDingTalk, console: Any, http: TestClient[Any, Any]
) -> None:
    card = await _raise_request(console, bot)
    [mine] = fake.action_cards_to(staff("log01"))
    [theirs] = fake.action_cards_to(staff("log02"))
    assert mine["actionURL1"] != theirs["actionURL1"], "each person's own links"
    async with http.get(_url(mine, "认领")) as resp:
        assert resp.status == 200
    await bot.settle()
    async with bot.db.read() as s:
        after = await s.get(TaskCard, card.id)
    assert after is not None and (after.state, after.holder_id) == ("claimed", "log01")
    # Both members get the card's new state; the holder's copy offers 完成 now.
    for user in ("log01", "log02"):
        first, now = fake.action_cards_to(staff(user))
        assert (first["actionTitle1"], now["actionTitle1"]) == ("认领", "完成"), user
    [notice] = fake.texts_to(staff("rep01"))
    assert "吴敏 已认领" in notice
    async with http.get(_url(theirs, "认领")) as resp:
        assert resp.status == 200  # a different person's first use of their own link: the card says who holds it
    async with http.get(_url(mine, "认领")) as resp:
        assert resp.status == 409
    await bot.settle()
    async with bot.db.read() as s:
        final = await s.get(TaskCard, card.id)
    assert final is not None and final.holder_id == "log01"
    assert fake.violations == []


@pytest.mark.parametrize("dingtalk_overrides", [WITH_TEMPLATE])
async def test_with_a_template_the_task_card_is_one_instance_for_the_department(
    bot: Runtime, fake: FakeDingTalk, console: Any
) -> None:
    card = await _raise_request(console, bot)
    track = render.out_track_id(card.ref)
    creates = [r for r in fake.requests if r.endpoint == "createAndDeliver" and r.body["outTrackId"] == track]
    assert len(creates) == 1
    assert sorted(fake.cards[track].users) == sorted(staff(u) for u in ("log01", "log02"))
    assert fake.action_cards_to(staff("log01")) == []
    assert fake.violations == []


@pytest.mark.parametrize("dingtalk_overrides", [WITH_TEMPLATE])
async def test_a_tap_on_the_interactive_card_updates_every_copy(
    bot: Runtime, fake: FakeDingTalk, console: Any, http: TestClient[Any, Any]
) -> None:
    """The acceptance: a member taps 认领 (the real card callback, signed as DingTalk signs it); the answer carries
    the tapper's new card, and the other member's copy is updated through PUT /v1.0/card/instances."""
    import json

    from bot.channels.dingtalk import webhook
    from tests.channels.dingtalk.conftest import API_SECRET, APP_SECRET, ROBOT
    from tests.fakes.dingtalk_callbacks import DingTalkSigner

    card = await _raise_request(console, bot)
    track = render.out_track_id(card.ref)
    state = fake.card_state(track, staff("log01"))
    assert state is not None
    [claim] = [b["key"] for b in json.loads(state["buttons"]) if b["text"] == "认领"]
    signer = DingTalkSigner(APP_SECRET, ROBOT, API_SECRET)
    headers, body = signer.signed_card(
        signer.card_tap(staff("log01"), track, claim), int(bot.clock.now().timestamp() * 1000)
    )
    async with http.post(webhook.CARD_PATH, headers=headers, data=body) as resp:
        assert resp.status == 200
        answer = await resp.json()
    tapped = answer["cardData"]["cardParamMap"]
    assert "完成" in [b["text"] for b in json.loads(tapped["buttons"])]
    await bot.settle()
    async with bot.db.read() as s:
        after = await s.get(TaskCard, card.id)
    assert after is not None and (after.state, after.holder_id) == ("claimed", "log01")
    for user in ("log01", "log02"):
        seen = fake.card_state(track, staff(user))
        assert seen is not None and seen["buttons"] == tapped["buttons"], user
    assert [r.endpoint for r in fake.requests].count("updateCard") >= 1
    assert [r.endpoint for r in fake.requests].count("createAndDeliver") == 1
    assert fake.violations == []
