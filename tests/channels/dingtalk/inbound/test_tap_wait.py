"""``Pipeline.handled``: what a tap's answer waits for — the intents an event's handling committed, or None once
the bound has passed (the event is handled all the same)."""

from __future__ import annotations

import asyncio

from bot.core.events import TextMessage
from bot.core.intents import SendText
from bot.runtime import Runtime


def _text(n: int, sender: str = "staff-rep01", text: str = "帮助") -> TextMessage:
    return TextMessage(channel="dingtalk", sender=sender, dedup_key=f"msg:wait{n}", text=text)


async def test_the_committed_intents_of_the_event(dt_runtime: Runtime) -> None:
    result = await dt_runtime.pipeline.ingest(_text(1))
    assert result.event_id is not None
    intents = await dt_runtime.pipeline.handled(result.event_id, 10)
    assert intents is not None and intents
    assert all(isinstance(i, SendText) and i.user_ids == ("rep01",) for i in intents)


async def test_none_past_the_bound_and_the_event_is_handled_anyway(dt_runtime: Runtime) -> None:
    result = await dt_runtime.pipeline.ingest(_text(2))
    assert result.event_id is not None
    assert await dt_runtime.pipeline.handled(result.event_id, 0) is None
    await dt_runtime.pipeline.join()
    # Asked again later, nothing is pending for it any more: the wait simply runs out.
    assert await dt_runtime.pipeline.handled(result.event_id, 0.01) is None


async def test_events_handled_together_each_get_their_own(dt_runtime: Runtime) -> None:
    async def tap_like(event: TextMessage) -> set[str]:
        # As the tap route does: ingest, then at once (no await in between) wait for the outcome.
        result = await dt_runtime.pipeline.ingest(event)
        assert result.event_id is not None
        intents = await dt_runtime.pipeline.handled(result.event_id, 10)
        assert intents is not None
        return {u for i in intents for u in i.user_ids}

    waited = await asyncio.gather(tap_like(_text(3)), tap_like(_text(4, "staff-mgr01")), tap_like(_text(5)))
    assert waited == [{"rep01"}, {"mgr01"}, {"rep01"}]
