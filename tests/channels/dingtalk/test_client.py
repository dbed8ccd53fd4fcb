"""DingTalkClient against the FakeDingTalk on a real server: the process-wide token (one fetch for concurrent
callers and for every client of the app, refetched once on InvalidAuthentication), error classification (throttle,
5xx, timeout, quota, configuration) and the count of API calls (token calls exempt)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from bot.channels.dingtalk.client import (
    CONFIG_BACKOFF_SECONDS,
    QUOTA_CODE,
    THROTTLE_BACKOFF_SECONDS,
    DingTalkClient,
    DingTalkError,
)
from tests.fakes.dingtalk import FakeDingTalk

APP_KEY = "dingclienttest01"
SECRET = "client-test-dingtalk-secret-0123456789abcdef"
ROBOT = "dingclientrobot01"
BATCH = "/v1.0/robot/oToMessages/batchSend"


class Tick:
    def __init__(self) -> None:
        self.t = 50_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def tick() -> Tick:
    return Tick()


@pytest.fixture
def fake(tick: Tick) -> FakeDingTalk:
    return FakeDingTalk(app_key=APP_KEY, app_secret=SECRET, robot_code=ROBOT, now=tick, timeout_seconds=1.0)


@pytest.fixture
async def server(fake: FakeDingTalk) -> AsyncIterator[TestServer]:
    srv = TestServer(fake.app())
    await srv.start_server()
    try:
        yield srv
    finally:
        fake.release_timeouts()
        await srv.close()


class Month:
    def __init__(self) -> None:
        self.value = "2026-11"

    def __call__(self) -> str:
        return self.value


@pytest.fixture
async def make(server: TestServer, tick: Tick) -> AsyncIterator[Callable[..., DingTalkClient]]:
    clients: list[DingTalkClient] = []

    def factory(**kw: Any) -> DingTalkClient:
        kw.setdefault("timeout", 5.0)
        c = DingTalkClient(
            base_url=str(server.make_url("")),
            app_key=kw.pop("app_key", APP_KEY),
            app_secret=kw.pop("secret", SECRET),
            monotonic=tick,
            **kw,
        )
        clients.append(c)
        return c

    yield factory
    for c in clients:
        await c.close()


def send_body(users: list[str] | None = None) -> dict[str, Any]:
    return {"robotCode": ROBOT, "userIds": users or ["u1"], "msgKey": "sampleText", "msgParam": '{"content":"hi"}'}


async def test_the_token_is_fetched_once_for_concurrent_callers_and_every_client_of_the_app(
    make: Callable[..., DingTalkClient], fake: FakeDingTalk
) -> None:
    a, b = make(), make()
    tokens = await asyncio.gather(*(c.token() for c in (a, b, a, b, a)))
    assert len(set(tokens)) == 1
    assert fake.calls["accessToken"] == 1
    await a.post(BATCH, send_body())
    await b.post(BATCH, send_body())
    assert fake.calls["accessToken"] == 1
    assert fake.requests[-1].token == tokens[0]


async def test_a_revoked_token_is_refetched_once_and_the_call_succeeds(
    make: Callable[..., DingTalkClient], fake: FakeDingTalk
) -> None:
    client = make()
    await client.post(BATCH, send_body())
    fake.revoke_tokens()
    data = await client.post(BATCH, send_body())
    assert "processQueryKey" in data
    assert fake.calls["accessToken"] == 2
    assert fake.texts_to("u1") == ["hi", "hi"]


async def test_a_token_rejected_twice_is_an_error_not_a_loop(
    make: Callable[..., DingTalkClient], fake: FakeDingTalk
) -> None:
    client = make()
    fake.fail("batchSend", "invalid_token", times=2)
    with pytest.raises(DingTalkError) as err:
        await client.post(BATCH, send_body())
    assert err.value.code == "InvalidAuthentication"
    assert fake.calls["batchSend"] == 2


@pytest.mark.parametrize(
    ("fault", "retryable", "unknown"),
    [("throttle", True, False), ("5xx", True, True), ((400, "invalidParameter.msgParam.tooLong"), False, False)],
)
async def test_errors_are_classified(
    make: Callable[..., DingTalkClient], fake: FakeDingTalk, fault: Any, retryable: bool, unknown: bool
) -> None:
    client = make()
    fake.fail("batchSend", fault)
    with pytest.raises(DingTalkError) as err:
        await client.post(BATCH, send_body())
    assert (err.value.retryable, err.value.unknown, err.value.config, err.value.quota) == (
        retryable,
        unknown,
        False,
        False,
    )
    if retryable:
        assert err.value.retry_after >= THROTTLE_BACKOFF_SECONDS
    assert client.config_problem is None


async def test_a_timeout_is_retryable_and_may_have_reached_dingtalk(
    make: Callable[..., DingTalkClient], fake: FakeDingTalk
) -> None:
    client = make(timeout=0.2)
    await client.token()
    fake.fail("batchSend", "timeout")
    with pytest.raises(DingTalkError) as err:
        await client.post(BATCH, send_body())
    assert (err.value.code, err.value.retryable, err.value.unknown) == ("timeout", True, True)


async def test_a_configuration_error_is_reported_and_fails_fast_until_the_backoff_passes(
    make: Callable[..., DingTalkClient], fake: FakeDingTalk, tick: Tick
) -> None:
    client = make()
    fake.fail("batchSend", "ip")
    with pytest.raises(DingTalkError) as err:
        await client.post(BATCH, send_body())
    assert err.value.config
    assert client.config_problem is not None
    assert client.config_problem.code == "Forbidden.AccessDenied.IpNotInWhiteList"
    calls = fake.calls["batchSend"]
    with pytest.raises(DingTalkError):
        await client.post(BATCH, send_body())
    assert fake.calls["batchSend"] == calls, "failed fast, DingTalk not asked"
    tick.t += CONFIG_BACKOFF_SECONDS + 1
    await client.post(BATCH, send_body())
    assert client.config_problem is None


async def test_a_wrong_secret_is_a_configuration_error(make: Callable[..., DingTalkClient]) -> None:
    client = make(app_key="dingclienttest02", secret="not-the-secret-of-this-app-0123456789")
    with pytest.raises(DingTalkError) as err:
        await client.token()
    assert err.value.config
    assert client.config_problem is not None and client.config_problem.code == "invalidClientIdOrSecret"


async def test_a_spent_quota_stops_calls_until_next_month(
    make: Callable[..., DingTalkClient], fake: FakeDingTalk
) -> None:
    month = Month()
    client = make(month=month)
    fake.quota_spent = True
    with pytest.raises(DingTalkError) as err:
        await client.post(BATCH, send_body())
    assert err.value.quota and err.value.code == QUOTA_CODE
    assert client.quota_exhausted == "2026-11"
    calls = fake.calls["batchSend"]
    with pytest.raises(DingTalkError):
        await client.post(BATCH, send_body())
    assert fake.calls["batchSend"] == calls, "not retried this month"
    fake.quota_spent = False
    month.value = "2026-12"
    await client.post(BATCH, send_body())
    assert client.quota_exhausted is None


async def test_every_api_call_is_counted_but_the_token_calls(
    make: Callable[..., DingTalkClient], fake: FakeDingTalk
) -> None:
    seen: list[str] = []
    client = make(on_call=seen.append)
    await client.post(BATCH, send_body())
    fake.revoke_tokens()
    await client.post(BATCH, send_body())
    fake.fail("batchSend", "throttle")
    with pytest.raises(DingTalkError):
        await client.post(BATCH, send_body())
    assert fake.calls["accessToken"] == 2
    assert seen == [BATCH] * 4
    assert fake.api_calls == 4
