"""A bot with DingTalk enabled (HTTP mode) around the shared ``runtime`` fixture; rep01 and mgr01 have DingTalk
staff ids. The DingTalk API is never reached by these tests (inbound only): its base URL is a closed port."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.app import build_app
from bot.channels.dingtalk import webhook
from bot.runtime import Runtime
from storage.models import InboundEvent, OutboxMessage, User
from tests.conftest import T0
from tests.fakes.dingtalk_callbacks import DingTalkSigner

APP_SECRET = "dt-app-secret-0123456789abcdefghij"
CARD_SECRET = "dt-card-secret-0123456789abcdefghi"
ROBOT = "dingrobotsalesbot01"
NOW_MS = int(T0.timestamp() * 1000)
LIMIT = 64 * 1024
STAFF = {"rep01": "staff-rep01", "mgr01": "staff-mgr01"}


def dingtalk_section(**overrides: Any) -> dict[str, Any]:
    section = {
        "enabled": True,
        "app_key": "dingappkeysalesbot",
        "app_secret": APP_SECRET,
        "robot_code": ROBOT,
        "card_template_id": "b3a1c7e0-salesbot.schema",
        "card_callback_route_key": "salesbot",
        "card_api_secret": CARD_SECRET,
        "api_base_url": "http://127.0.0.1:1",
        "oapi_base_url": "http://127.0.0.1:1",
    }
    return {**section, **overrides}


@pytest.fixture
def settings_overrides() -> dict[str, dict[str, Any]]:
    return {"dingtalk": dingtalk_section(), "server": {"max_body_bytes": LIMIT}}


@pytest.fixture
def dt() -> DingTalkSigner:
    return DingTalkSigner(APP_SECRET, ROBOT, CARD_SECRET)


@pytest.fixture
async def dt_runtime(runtime: Runtime) -> Runtime:
    """The runtime, with DingTalk staff ids for rep01 and mgr01 (as the org CSV's 钉钉ID column gives them)."""
    async with runtime.db.transaction() as s:
        for user_id, staff_id in STAFF.items():
            user = await s.scalar(select(User).where(User.id == user_id))
            assert user is not None
            user.set_channel_id("dingtalk", staff_id, T0)
    return runtime


@pytest.fixture
async def client(dt_runtime: Runtime) -> AsyncIterator[TestClient[Any, Any]]:
    app = build_app(dt_runtime, manage_runtime=False)
    webhook.setup(app)  # idempotent: build_app mounted it already
    async with TestClient(TestServer(app)) as c:
        yield c


async def count(rt: Runtime) -> int:
    async with rt.db.read() as s:
        return int(await s.scalar(select(func.count()).select_from(InboundEvent)) or 0)


async def rows(rt: Runtime) -> list[InboundEvent]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(InboundEvent).order_by(InboundEvent.id)))


async def outbox(rt: Runtime) -> list[OutboxMessage]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


async def post(client: TestClient[Any, Any], path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
    # Large bodies as a stream (aiohttp warns that raw bytes that big would hold the loop).
    data: bytes | io.BytesIO = io.BytesIO(body) if len(body) > 1024 * 1024 else body
    async with client.post(path, headers=headers, data=data) as resp:
        raw = await resp.read()
        if resp.content_type == "application/json":
            return resp.status, json.loads(raw)
        return resp.status, raw
