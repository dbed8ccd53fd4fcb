"""Fixtures for the DingTalk delivery tests: a FakeDingTalk on a real server, a runtime with DingTalk enabled (and
nothing else but the console), DingTalk staff ids for some demo people, and helpers to queue intents."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.app import build_app
from bot.channels.dingtalk.channel import DingTalkChannel
from bot.channels.dingtalk.client import forget_tokens
from bot.core import outbound
from bot.core.intents import Intent
from bot.infra.clock import FixedClock
from bot.runtime import Runtime
from storage.models import OutboxMessage, User
from tests.fakes.dingtalk import FakeDingTalk

APP_KEY = "dingscenarioappkey01"
APP_SECRET = "scenario-dingtalk-app-secret-0123456789abcdef"
ROBOT = "dingscenariorobot01"
TEMPLATE = "tpl-salesbot-task.schema"
ROUTE_KEY = "salesbot-card"
API_SECRET = "scenario-dingtalk-card-api-secret-0123456789"
PUBLIC = "https://bot.example.com"
FAKE_TIMEOUT_SECONDS = 1.0
CLIENT_TIMEOUT_SECONDS = 2.0
# Demo people with a DingTalk staff id in these tests.
PEOPLE = ("rep01", "rep02", "mgr01", "admin01", "log01", "log02")


@pytest.fixture(autouse=True)
def _fresh_tokens() -> None:
    forget_tokens()


def staff(user_id: str) -> str:
    return f"dt{user_id}"


@pytest.fixture
def fake(clock: FixedClock) -> FakeDingTalk:
    return FakeDingTalk(
        app_key=APP_KEY,
        app_secret=APP_SECRET,
        robot_code=ROBOT,
        templates=(TEMPLATE,),
        now=lambda: clock.now().timestamp(),
        timeout_seconds=FAKE_TIMEOUT_SECONDS,
    )


@pytest.fixture
async def fake_server(fake: FakeDingTalk) -> AsyncIterator[TestServer]:
    server = TestServer(fake.app())
    await server.start_server()
    try:
        yield server
    finally:
        fake.release_timeouts()
        await server.close()


@pytest.fixture
def dingtalk_overrides() -> dict[str, Any]:
    """Per test (``@pytest.mark.parametrize("dingtalk_overrides", [...])``): changes to the dingtalk section."""
    return {}


def dingtalk_section(fake_server: TestServer) -> dict[str, Any]:
    return {
        "enabled": True,
        "app_key": APP_KEY,
        "app_secret": APP_SECRET,
        "robot_code": ROBOT,
        "api_base_url": str(fake_server.make_url("")).rstrip("/"),
        "oapi_base_url": str(fake_server.make_url("")).rstrip("/"),
        "public_base_url": PUBLIC,
        "request_timeout_seconds": CLIENT_TIMEOUT_SECONDS,
    }


WITH_TEMPLATE = {"card_template_id": TEMPLATE, "card_callback_route_key": ROUTE_KEY, "card_api_secret": API_SECRET}


@pytest.fixture
def settings_overrides(fake_server: TestServer, dingtalk_overrides: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {"dingtalk": dingtalk_section(fake_server) | dingtalk_overrides}


@pytest.fixture
async def bot(runtime: Runtime, clock: FixedClock) -> Runtime:
    """The runtime with DingTalk enabled and staff ids for ``PEOPLE``."""
    assert isinstance(runtime.channels.get("dingtalk"), DingTalkChannel)
    async with runtime.db.transaction() as s:
        for user in await s.scalars(select(User).where(User.id.in_(PEOPLE))):
            user.set_channel_id("dingtalk", staff(user.id), clock.now())
    return runtime


@pytest.fixture
async def http(bot: Runtime) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(build_app(bot, manage_runtime=False))) as client:
        yield client


async def queue(rt: Runtime, intents: Sequence[Intent]) -> None:
    async with rt.db.transaction() as s:
        outbound.enqueue(s, intents, rt.clock.now())


async def outbox_rows(rt: Runtime) -> list[OutboxMessage]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
