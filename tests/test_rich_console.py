"""A formatted message (SendRich) in the console: one feed item of escaped, server-rendered HTML plus its plain
text."""

from __future__ import annotations

from typing import Any

from bot.core.intents import SendRich
from bot.outbox import enqueue
from bot.runtime import Runtime
from cards.rich import Line, RichText, Section, Table


async def test_a_rich_message_is_one_escaped_feed_item(console: Any, runtime: Runtime) -> None:
    mgr = await console("mgr01")
    rich = RichText(
        title="销售日报 <script>alert(1)</script>",
        sections=(
            Section(
                title="低于计划",
                lines=(Line.of("王磊 60%", bullet=True),),
                table=Table(header=("代表",), rows=(("<img src=x>",),)),
            ),
        ),
    )
    async with runtime.db.transaction() as s:
        enqueue(s, [SendRich(channel="console", user_ids=("mgr01",), rich=rich)], runtime.clock.now())
    await runtime.settle()
    [item] = [i for i in await mgr.refresh() if i.get("kind") == "rich"]
    assert item["html"].startswith('<div class="rich"><h3>销售日报 &lt;script&gt;')
    assert "<script>" not in item["html"] and "<img" not in item["html"]
    assert "<li>王磊 60%</li>" in item["html"]
    assert item["text"].startswith("销售日报 <script>alert(1)</script>\n\n【低于计划】")
