"""Support requests and task cards through the console channel, end to end (HTTP → pipeline → outbox → feed): what
is the console's own (serving a passed-on photo; simultaneous taps over HTTP). The scenarios themselves are written
once for both channels in tests/scenarios/test_requests.py.

The clock stands at Monday 2026-11-23 10:00 in Shanghai (conftest T0).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import aiohttp
from sqlalchemy import func, select

from bot.runtime import Runtime
from storage.models import AuditLog, TaskCard
from tests.console_driver import ConsoleUser

SURGERY = "跟台 浙一 骨科 2026-11-25 器械:脊柱A包 备注:王主任主刀"


def buttons(card: dict[str, Any]) -> list[str]:
    return [b["text"] for b in card["buttons"]]


async def cards_in_db(rt: Runtime) -> list[TaskCard]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(TaskCard).order_by(TaskCard.id)))


async def audit_count(rt: Runtime, action: str) -> int:
    async with rt.db.read() as s:
        return int(await s.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == action)) or 0)


async def submit_surgery(console: Any, text: str = SURGERY) -> ConsoleUser:
    rep: ConsoleUser = await console("rep01")
    await rep.send(text)
    await rep.refresh()
    await rep.tap("提交")
    return rep


async def task_card_of(user: ConsoleUser, department_title: str) -> dict[str, Any]:
    await user.refresh()
    return next(c for c in user.cards().values() if c["title"].startswith(department_title))


async def test_done_needs_the_photo_then_the_rep_gets_it(console: Any, runtime: Runtime) -> None:
    rep = await submit_surgery(console)
    await rep.replies()
    log01 = await console("log01")
    card = await task_card_of(log01, "物流")
    await log01.tap("完成", card["ref"]) if "完成" in buttons(card) else None
    await log01.tap("认领", card["ref"])
    await log01.replies()
    await log01.tap("完成", card["ref"])
    assert await log01.replies() == ["卡片 T2 完成前需要上传照片：直接把照片发给我，再点「完成」。"]
    assert [c.state for c in await cards_in_db(runtime) if c.department == "logistics"] == ["claimed"]

    await log01.upload("kit.jpg", b"\xff\xd8\xff\xe0 a kit photo", "image/jpeg")
    assert await log01.replies() == ["📎 已附加到卡片 T2（共 1 个附件）。"]
    await log01.tap("完成", card["ref"])
    assert await log01.replies() == ["卡片 T2 已完成。"]
    done = log01.card(card["ref"])
    assert done["buttons"] == [] and done["status"].startswith("✅ 吴敏 已完成")
    notices = await rep.replies()
    assert notices[-2:] == [
        "✅ R1 物流 已完成「备器械 脊柱A包（2026-11-25）」，附件 1 个：照片×1",
        "📎 T2 的附件（照片）",
    ]
    # The photo itself is shown to the rep, served to signed-in users only.
    [photo] = [i for i in rep.items if i.get("media_url")]
    assert photo["media_type"] == "image"
    assert re.fullmatch(r"/console/media/[A-Za-z0-9_-]{32}", photo["media_url"])  # random, not a counted id
    async with rep.session.get(rep.server.make_url(photo["media_url"])) as r:
        assert (r.status, await r.read()) == (200, b"\xff\xd8\xff\xe0 a kit photo")
        assert r.content_type == "image/jpeg"
    async with aiohttp.ClientSession() as anonymous, anonymous.get(rep.server.make_url(photo["media_url"])) as r:
        assert r.status == 401
    [stored] = [c for c in await cards_in_db(runtime) if c.department == "logistics"]
    assert stored.done_at == runtime.clock.now() and stored.attachments[0]["kind"] == "image"


async def test_concurrent_claims_have_exactly_one_winner(console: Any, runtime: Runtime) -> None:
    await submit_surgery(console)
    people = [await console(uid) for uid in ("log01", "log02", "log_head")]
    card = await task_card_of(people[0], "物流")
    payload = next(b["key"] for b in card["buttons"] if b["text"] == "认领")

    async def tap(user: ConsoleUser) -> None:
        body = {"client_id": uuid.uuid4().hex, "payload": payload, "card_ref": card["ref"]}
        await user.post("/console/api/action", body, settle=False)

    await asyncio.gather(*(tap(u) for u in people * 3))  # nine taps at once
    await runtime.settle()
    [stored] = [c for c in await cards_in_db(runtime) if c.department == "logistics"]
    assert stored.state == "claimed"
    assert await audit_count(runtime, "task.claim") == 1
    winner_name = {"log01": "吴敏", "log02": "郑浩", "log_head": "周涛"}[stored.holder_id or ""]
    for user in people:
        replies = await user.replies()
        if user.user_id == stored.holder_id:
            assert replies[0].startswith("你已认领卡片 T2") and replies[1:] == ["卡片 T2 已由你认领。"] * 2
        else:
            assert replies == [f"卡片 T2 已由 {winner_name} 认领处理。"] * 3
