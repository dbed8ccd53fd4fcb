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
from sqlalchemy import select

from bot.app import build_app
from bot.infra.clock import FixedClock
from bot.runtime import Runtime
from storage.models import User
from tests.channels.dingtalk import conftest as dt
from tests.channels.wecom.conftest import (  # noqa: F401  (fixtures, re-exported for this package)
    WeComUser,
    answer_loss,
    fake,
    fake_server,
    signer,
    wecom_section,
)
from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.dingtalk_callbacks import DingTalkSigner
from tests.fakes.wecom import FakeWeCom
from tests.fakes.wecom_callbacks import WeComSigner
from tests.scenario_driver import Chat, ConsoleChat, DingTalkChat, WeComChat

SCENARIO_CLIENT_TIMEOUT_SECONDS = 15.0

CHANNELS = ("console", "wecom", "dingtalk")


@pytest.fixture(params=CHANNELS)
def channel(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def scenario_overrides() -> dict[str, dict[str, Any]]:
    """Per module: config sections of the scenarios (the channel's own section is added here)."""
    return {}


@pytest.fixture
def dingtalk_fake(clock: FixedClock) -> FakeDingTalk:
    """The fake DingTalk API (with the card template the suite uses); its time is the bot's FixedClock."""
    return FakeDingTalk(
        app_key=dt.APP_KEY,
        app_secret=dt.APP_SECRET,
        robot_code=dt.ROBOT,
        templates=(dt.TEMPLATE,),
        now=lambda: clock.now().timestamp(),
        timeout_seconds=dt.FAKE_TIMEOUT_SECONDS,
    )


@pytest.fixture
async def dingtalk_server(channel: str, dingtalk_fake: FakeDingTalk) -> AsyncIterator[TestServer | None]:
    if channel != "dingtalk":
        yield None
        return
    dt.forget_tokens()
    server = TestServer(dingtalk_fake.app())
    await server.start_server()
    try:
        yield server
    finally:
        dingtalk_fake.release_timeouts()
        await server.close()


@pytest.fixture
def dingtalk_links() -> bool:
    """True: the ``[dingtalk]`` section without a card template (action cards with signed links)."""
    return False


@pytest.fixture
def settings_overrides(
    channel: str,
    scenario_overrides: dict[str, dict[str, Any]],
    fake_server: TestServer,  # noqa: F811  (the fixture; the console runs do not use it)
    dingtalk_server: TestServer | None,
    dingtalk_links: bool,
) -> dict[str, dict[str, Any]]:
    if channel == "console":
        return dict(scenario_overrides)
    # No scenario injects a platform fault: a generous client timeout keeps a fake starved of CPU (a loaded CI
    # machine) from turning into a retry that lands after the test looked (the channel suites test timeouts).
    patient = {"request_timeout_seconds": SCENARIO_CLIENT_TIMEOUT_SECONDS}
    if channel == "dingtalk":
        assert dingtalk_server is not None
        section = dt.dingtalk_section(dingtalk_server) | ({} if dingtalk_links else dt.WITH_TEMPLATE)
        return {"dingtalk": section | patient, **scenario_overrides}
    return {"wecom": wecom_section(fake_server) | patient, **scenario_overrides}


@pytest.fixture
async def chat(
    channel: str,
    runtime: Runtime,
    clock: FixedClock,
    console: Any,
    fake: FakeWeCom,  # noqa: F811  (the fixture)
    signer: WeComSigner,  # noqa: F811  (the fixture)
    dingtalk_fake: FakeDingTalk,
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
    if channel == "dingtalk":
        async for on_dingtalk in _dingtalk_people(runtime, clock, dingtalk_fake):
            yield on_dingtalk
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


async def _dingtalk_people(
    runtime: Runtime, clock: FixedClock, dingtalk: FakeDingTalk
) -> AsyncIterator[Callable[[str], Awaitable[Chat]]]:
    """Every person of the org gets a DingTalk staff id (``dt<user id>``, as tests/channels/dingtalk/), so that
    what the bot sends someone who has not spoken yet reaches them on DingTalk."""
    async with runtime.db.transaction() as s:
        for user in await s.scalars(select(User)):
            user.set_channel_id("dingtalk", dt.staff(user.id), clock.now())
    dt_signer = DingTalkSigner(dt.APP_SECRET, dt.ROBOT, dt.API_SECRET)
    people: dict[str, Chat] = {}
    async with TestClient(TestServer(build_app(runtime, manage_runtime=False))) as http:

        async def on_dingtalk(user_id: str) -> Chat:
            if user_id not in people:
                async with runtime.db.transaction() as s:
                    user = await s.get(User, user_id)
                    if user is not None and not user.channel_id("dingtalk"):
                        user.set_channel_id("dingtalk", dt.staff(user_id), clock.now())
                people[user_id] = DingTalkChat(
                    user_id, dt.staff(user_id), http=http, signer=dt_signer, fake=dingtalk, runtime=runtime, clock=clock
                )
            return people[user_id]

        yield on_dingtalk
    assert dingtalk.violations == [], "the bot sent DingTalk a request that breaks its documented rules"
