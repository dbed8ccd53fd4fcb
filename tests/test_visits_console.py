"""Visit logging through the console channel, end to end (HTTP → pipeline → handler → outbox → feed)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from bot.infra.clock import FixedClock
from bot.runtime import Runtime
from storage.models import AuditLog, InboundEvent, Visit

# 浙一 (浙江大学医学院附属第一医院) as in the demo customers.
ZJU1 = (30.2556, 120.1775)


async def visits(rt: Runtime) -> list[Visit]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(Visit).order_by(Visit.id)))


async def test_one_line_visit_confirm_and_submit(console, runtime: Runtime) -> None:
    rep = await console("rep01")
    await rep.send("拜访 浙一 骨科 张主任 主题:脊柱耗材新品 异议:价格 下一步:送样")
    await rep.refresh()
    card = rep.last_card()
    fields = {f["label"]: f["value"] for f in card["fields"]}
    assert fields["医院"] == "浙江大学医学院附属第一医院"
    assert fields["科室"] == "骨科"
    assert fields["联系人"] == "张主任"
    assert fields["异议"] == "价格"
    assert [b["text"] for b in card["buttons"]] == ["提交", "修改", "取消"]
    assert await visits(runtime) == []  # nothing stored before the rep confirms

    await rep.tap("提交")
    replies = await rep.replies()
    assert any("拜访已记录" in r for r in replies), replies
    settled = rep.card(card["ref"])
    assert settled["buttons"] == [] and settled["status"].startswith("已提交 V")
    [visit] = await visits(runtime)
    assert (visit.ward, visit.contacts, visit.objection, visit.next_step) == (
        "骨科",
        ["张主任"],
        "价格",
        "送样",
    )
    assert visit.rep_id == "rep01" and visit.location_status == "missing" and visit.locked


async def test_guided_visit_asks_only_for_missing_fields(console, runtime: Runtime) -> None:
    rep = await console("rep01")
    await rep.send("拜访 浙二")
    await rep.refresh()
    ward_card = rep.last_card()
    assert ward_card["title"].startswith("哪个科室")
    await rep.tap(ward_card["buttons"][0]["text"])
    await rep.refresh()
    assert rep.card(ward_card["ref"])["buttons"] == []  # the answered question cannot be tapped again
    contacts_card = rep.last_card()
    assert contacts_card["title"].startswith("见了谁")
    await rep.send("李医生")
    await rep.refresh()
    objection_card = rep.last_card()
    assert [b["text"] for b in objection_card["buttons"]] == ["价格", "交付", "资质", "其他"]
    await rep.tap("交付")
    await rep.refresh()
    confirm = rep.last_card()
    assert confirm["title"] == "请确认拜访记录"
    await rep.tap("提交")
    [visit] = await visits(runtime)
    assert visit.contacts == ["李医生"] and visit.objection == "交付"


async def test_cancel_and_correction_inside_dialog(console, runtime: Runtime) -> None:
    rep = await console("rep01")
    await rep.send("拜访 浙一 骨科")
    await rep.send("异议:资质 联系人:王医生")  # a correction answers several questions at once
    await rep.refresh()
    confirm = rep.last_card()
    fields = {f["label"]: f["value"] for f in confirm["fields"]}
    assert fields["联系人"] == "王医生" and fields["异议"] == "资质"
    await rep.send("科室:检验科")
    await rep.refresh()
    # The correction gets a fresh card at the bottom; the old one is settled (issue 10 §3).
    fresh = rep.last_card()
    assert fresh["ref"] != confirm["ref"] and rep.card(confirm["ref"])["buttons"] == []
    assert {f["label"]: f["value"] for f in fresh["fields"]}["科室"] == "检验科"
    await rep.send("取消")
    assert "已取消。" in await rep.replies()
    await rep.send("随便说点什么")
    assert any("没听懂" in r for r in await rep.replies())
    assert await visits(runtime) == []


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


async def test_location_before_visit_attaches_with_distance(console, runtime: Runtime) -> None:
    rep = await console("rep01")
    await rep.location(ZJU1[0] + 0.001, ZJU1[1])
    await rep.send("拜访 浙一 骨科 张主任 异议:价格")
    await rep.refresh()
    await rep.tap("提交")
    [visit] = await visits(runtime)
    assert visit.location_status == "ok"
    assert visit.distance_m is not None and 100 < visit.distance_m < 120


async def test_location_after_visit_attaches_within_window(console, runtime: Runtime, clock: FixedClock) -> None:
    rep = await console("rep01")
    await rep.send("拜访 浙一 骨科 张主任 异议:价格")
    await rep.refresh()
    await rep.tap("提交")
    assert any("无定位" in r for r in await rep.replies())
    clock.set(clock.now() + timedelta(minutes=30))
    await rep.location(*ZJU1)
    assert any("位置已关联到拜访" in r for r in await rep.replies())
    [visit] = await visits(runtime)
    assert visit.location_status == "ok" and visit.distance_m is not None and visit.distance_m < 1


async def test_audit_row_for_created_visit(console, runtime: Runtime) -> None:
    rep = await console("rep01")
    await rep.send("拜访 浙一 骨科 张主任 异议:价格")
    await rep.refresh()
    await rep.tap("提交")
    async with runtime.db.read() as s:
        rows = list(await s.scalars(select(AuditLog).where(AuditLog.action == "visit.create")))
    assert len(rows) == 1 and rows[0].actor_id == "rep01" and rows[0].channel == "console"


async def test_concurrent_retries_of_one_event_are_stored_once(runtime: Runtime) -> None:
    from bot.core.events import TextMessage

    event = TextMessage(channel="console", sender="rep01", dedup_key="rep01:same-msg", text="帮助")
    others = [TextMessage(channel="console", sender="rep02", dedup_key=f"rep02:m{i}", text="帮助") for i in range(5)]
    results = await asyncio.gather(*(runtime.pipeline.ingest(e) for e in [event] * 4 + others))
    assert [r.duplicate for r in results] == [False, True, True, True] + [False] * 5
    async with runtime.db.read() as s:
        assert await s.scalar(select(func.count()).select_from(InboundEvent)) == 6
