"""Visit logging through the console channel, end to end (HTTP → pipeline → handler → outbox → feed): restarts and
duplicate deliveries. The visit scenarios are written once for both channels in tests/scenarios/test_visits.py."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from bot.infra.clock import FixedClock
from bot.runtime import Runtime
from storage.models import InboundEvent, Visit


async def visits(rt: Runtime) -> list[Visit]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(Visit).order_by(Visit.id)))


async def test_dialog_survives_restart(console, runtime: Runtime, db_url: str, clock: FixedClock) -> None:
    rep = await console("rep01")
    await rep.send("拜访 浙一")
    await runtime.stop()
    restarted = Runtime(runtime.settings, clock=clock)
    await restarted.start()
    try:
        from aiohttp.test_utils import TestServer

        from bot.app import build_app
        from tests.console_driver import ConsoleUser

        server = TestServer(build_app(restarted, manage_runtime=False))
        await server.start_server()
        again = await ConsoleUser(server, restarted, "rep01").open()
        await again.send("骨科")
        await again.send("张主任")
        await again.send("价格")
        await again.send("无")  # no next step
        await again.refresh()
        await again.tap("提交")
        [visit] = await visits(restarted)
        assert (visit.ward, visit.contacts, visit.objection) == ("骨科", ["张主任"], "价格")
        await again.close()
        await server.close()
    finally:
        await restarted.close()


async def test_duplicate_inbound_event_is_handled_once(console, runtime: Runtime) -> None:
    rep = await console("rep01")
    first = await rep.send("帮助", client_id="retry-0001")
    second = await rep.send("帮助", client_id="retry-0001")
    assert (first["duplicate"], second["duplicate"]) == (False, True)
    replies = await rep.replies()
    assert len([r for r in replies if r.startswith("你好")]) == 1
    async with runtime.db.read() as s:
        assert await s.scalar(select(func.count()).select_from(InboundEvent)) == 1


async def test_concurrent_retries_of_one_event_are_stored_once(runtime: Runtime) -> None:
    from bot.core.events import TextMessage

    event = TextMessage(channel="console", sender="rep01", dedup_key="rep01:same-msg", text="帮助")
    others = [TextMessage(channel="console", sender="rep02", dedup_key=f"rep02:m{i}", text="帮助") for i in range(5)]
    results = await asyncio.gather(*(runtime.pipeline.ingest(e) for e in [event] * 4 + others))
    assert [r.duplicate for r in results] == [False, True, True, True] + [False] * 5
    async with runtime.db.read() as s:
        assert await s.scalar(select(func.count()).select_from(InboundEvent)) == 6
