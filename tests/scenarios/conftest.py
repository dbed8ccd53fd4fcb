"""Scenario suites written once against ``tests.scenario_driver.Chat`` and run on every channel.

``chat("rep01")`` gives that person's driver on the channel under test: the console (over its HTTP API) or WeCom
(encrypted callbacks into the bot's endpoint, replies read back from the fake WeCom API, which validates every
request like WeCom). A module sets ``scenario_overrides`` for its config sections.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import build_app
from bot.infra.clock import FixedClock
from bot.runtime import Runtime
from tests.channels.wecom.conftest import (  # noqa: F401  (fixtures, re-exported for this package)
    WeComUser,
    answer_loss,
    fake,
    fake_server,
    signer,
    wecom_section,
)
from tests.fakes.wecom import FakeWeCom
from tests.fakes.wecom_callbacks import WeComSigner
from tests.scenario_driver import Chat, ConsoleChat, WeComChat

CHANNELS = ("console", "wecom")


@pytest.fixture(params=CHANNELS)
def channel(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def scenario_overrides() -> dict[str, dict[str, Any]]:
    """Per module: config sections of the scenarios (the channel's own section is added here)."""
    return {}


@pytest.fixture
def settings_overrides(
    channel: str,
    scenario_overrides: dict[str, dict[str, Any]],
    fake_server: TestServer,  # noqa: F811  (the fixture; the console runs do not use it)
) -> dict[str, dict[str, Any]]:
    if channel == "console":
        return dict(scenario_overrides)
    return {"wecom": wecom_section(fake_server), **scenario_overrides}


@pytest.fixture
async def chat(
    channel: str,
    runtime: Runtime,
    clock: FixedClock,
    console: Any,
    fake: FakeWeCom,  # noqa: F811  (the fixture)
    signer: WeComSigner,  # noqa: F811  (the fixture)
) -> AsyncIterator[Callable[[str], Awaitable[Chat]]]:
    """``await chat("rep01")`` → that person's driver on the channel under test (one per person)."""
    people: dict[str, Chat] = {}
    if channel == "console":

        async def on_console(user_id: str) -> Chat:
            if user_id not in people:
                people[user_id] = ConsoleChat(await console(user_id))
            return people[user_id]

        yield on_console
        return
    msg_ids = itertools.count(7_000_000_000_000_000_000)
    async with TestClient(TestServer(build_app(runtime, manage_runtime=False))) as http:

        async def on_wecom(user_id: str) -> Chat:
            if user_id not in people:
                user = WeComUser(
                    user_id, http=http, signer=signer, fake=fake, runtime=runtime, clock=clock, msg_ids=msg_ids
                )
                people[user_id] = WeComChat(user)
            return people[user_id]

        yield on_wecom
        assert fake.violations == [], "the bot sent WeCom a request that breaks its documented rules"
