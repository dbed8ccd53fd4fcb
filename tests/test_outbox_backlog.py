"""A person's backlog of held-back rows (behind one that failed or was deferred) does not keep other people's rows
from being claimed, however long that backlog is compared with the claim's batch size."""

from __future__ import annotations

from typing import Any

import pytest

from bot.runtime import Runtime
from tests.test_outbox import FlakyChannel, _send

BATCH = 5


@pytest.fixture
def settings_overrides() -> dict[str, dict[str, Any]]:
    return {"outbox": {"batch_size": BATCH}}


async def test_a_held_back_backlog_longer_than_a_batch_does_not_starve_other_people(runtime: Runtime) -> None:
    channel = FlakyChannel(failures=1, only={"第一条"})
    runtime.channels["flaky"] = channel
    # rep01's first message fails (retried later); the BATCH after it wait for it, due but held back.
    await _send(runtime, "第一条", *(f"后面{i}" for i in range(BATCH)))
    await _send(runtime, "别人的", user="rep02")
    await runtime.outbox.drain()
    assert channel.delivered == ["别人的"]
