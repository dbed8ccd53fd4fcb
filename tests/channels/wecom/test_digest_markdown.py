"""A 60-rep digest with long names reaches WeCom as markdown parts each within 2,048 bytes, every one accepted by
the fake API (which checks WeCom's documented rules)."""

from __future__ import annotations

from bot.core.intents import SendRich
from bot.outbox import enqueue
from bot.runtime import Runtime
from bot.services.digest_render import render_digest
from tests.digest_data import long_name, make_digest
from tests.fakes.wecom import FakeWeCom


async def test_a_60_rep_digest_arrives_in_parts_within_the_limit(bot: Runtime, fake: FakeWeCom) -> None:
    rich = render_digest(make_digest(60), bot.settings, "zh-CN", detail=True)
    async with bot.db.transaction() as s:
        enqueue(s, [SendRich(channel="wecom", user_ids=("mgr01",), rich=rich)], bot.clock.now())
    await bot.settle()
    parts = fake.markdowns_to("mgr01")
    assert len(parts) > 2 and all(len(p.encode()) <= 2048 for p in parts)
    assert all(long_name(i) in "\n".join(parts) for i in range(60))
    assert fake.violations == []
