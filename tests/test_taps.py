"""Button taps end to end through the console: a tap carrying the wire form of cards sent before the typed
payloads still works; a forged or mangled payload is answered "按钮已过期" and changes nothing (never an error)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from bot.runtime import Runtime
from storage.models import InboundEvent, TaskCard
from tests.console_driver import ConsoleUser

SURGERY = "跟台 浙一 骨科 2026-11-25 器械:脊柱A包 备注:王主任主刀"
STALE = "这个按钮已过期，请重新发起。"


async def raw_tap(user: ConsoleUser, payload: str, card_ref: str) -> None:
    await user.post("/console/api/action", {"client_id": uuid.uuid4().hex, "payload": payload, "card_ref": card_ref})


async def logistics_card(console: Any, runtime: Runtime) -> tuple[ConsoleUser, TaskCard]:
    rep = await console("rep01")
    await rep.send(SURGERY)
    await rep.refresh()
    await rep.tap("提交")
    async with runtime.db.read() as s:
        card = await s.scalar(select(TaskCard).where(TaskCard.department == "logistics"))
    assert card is not None
    log01 = await console("log01")
    await log01.replies()
    return log01, card


@pytest.mark.parametrize(
    "forged",
    [
        "tk|{id}|steal",
        "tk|{id}x|claim",
        "tk|{id}",
        "tk|{id}|claim|more",
        "tk|999999|claim",
        "zz|{id}|claim",
        "tk|%FF|claim",
    ],
)
async def test_forged_tap_is_answered_stale_and_changes_nothing(forged: str, console: Any, runtime: Runtime) -> None:
    log01, card = await logistics_card(console, runtime)
    await raw_tap(log01, forged.format(id=card.id), card.ref)
    assert await log01.replies() == [STALE]
    async with runtime.db.read() as s:
        after = await s.get(TaskCard, card.id)
        statuses = set(await s.scalars(select(InboundEvent.status)))
    assert after is not None and (after.state, after.holder_id) == ("open", None)
    assert statuses == {"done"}


async def test_tap_in_the_old_wire_format_still_claims(console: Any, runtime: Runtime) -> None:
    log01, card = await logistics_card(console, runtime)
    await raw_tap(log01, f"tk|{card.id}|claim", card.ref)
    [reply] = await log01.replies()
    assert reply.startswith(f"你已认领卡片 T{card.id}")
    async with runtime.db.read() as s:
        after = await s.get(TaskCard, card.id)
    assert after is not None and (after.state, after.holder_id) == ("claimed", "log01")
