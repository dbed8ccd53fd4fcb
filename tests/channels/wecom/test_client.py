"""WeComClient against the FakeWeCom on a real server: token caching and refetch, error classification, fail-fast
on configuration errors, and the call-rate limiter (driven by an injected monotonic time, no real waiting)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from bot.channels.wecom.client import CONFIG_BACKOFF_SECONDS, TOKEN_MARGIN_SECONDS, RateLimiter, WeComClient, WeComError
from tests.fakes.wecom import TOKEN_LIFETIME, FakeWeCom

CORP = "wwclientcorp01"
SECRET = "client-app-secret"
AGENT = 1000002
FAKE_TIMEOUT = 1.0
# The timeout test uses a short one; the others a long one, so that a loaded machine does not make them flaky.
SHORT_TIMEOUT = 0.2
CLIENT_TIMEOUT = 5.0


class Tick:
    """Monotonic seconds under the test's control, shared by the client and the fake."""

    def __init__(self) -> None:
        self.t = 10_000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def tick() -> Tick:
    return Tick()


@pytest.fixture
def fake(tick: Tick) -> FakeWeCom:
    return FakeWeCom(corp_id=CORP, secret=SECRET, agent_id=AGENT, now=tick, timeout_seconds=FAKE_TIMEOUT)


@pytest.fixture
async def server(fake: FakeWeCom) -> AsyncIterator[TestServer]:
    srv = TestServer(fake.app())
    await srv.start_server()
    try:
        yield srv
    finally:
        fake.release_timeouts()
        await srv.close()


ClientFactory = Callable[..., WeComClient]


@pytest.fixture
async def make_client(server: TestServer, tick: Tick) -> AsyncIterator[ClientFactory]:
    clients: list[WeComClient] = []

    def make(**kw: Any) -> WeComClient:
        options: dict[str, Any] = {
            "base_url": str(server.make_url("/cgi-bin/")),
            "corp_id": CORP,
            "secret": SECRET,
            "timeout": CLIENT_TIMEOUT,
            "monotonic": tick,
        }
        c = WeComClient(**(options | kw))
        clients.append(c)
        return c

    yield make
    for c in clients:
        await c.close()


@pytest.fixture
def client(make_client: ClientFactory) -> WeComClient:
    return make_client()


@pytest.fixture(autouse=True)
def no_violations(fake: FakeWeCom) -> Any:
    yield
    assert fake.violations == []


def text(content: str, touser: str = "rep01") -> dict[str, Any]:
    return {"touser": touser, "msgtype": "text", "agentid": AGENT, "text": {"content": content}}


def endpoints(fake: FakeWeCom) -> list[str]:
    return [r.endpoint for r in fake.requests]


# ---- token ----------------------------------------------------------------------------------------------------


async def test_token_is_fetched_once_for_twenty_concurrent_callers(client: WeComClient, fake: FakeWeCom) -> None:
    tokens = await asyncio.gather(*(client.token() for _ in range(20)))
    assert len(set(tokens)) == 1
    assert fake.token_fetches == client.token_fetches == 1
    await asyncio.gather(*(client.post("message/send", text(f"m{i}")) for i in range(20)))
    assert fake.token_fetches == 1
    assert len(fake.texts_to("rep01")) == 20
    assert {r.query["access_token"] for r in fake.requests if r.endpoint == "message/send"} == {tokens[0]}


async def test_token_is_refreshed_before_it_expires(client: WeComClient, fake: FakeWeCom, tick: Tick) -> None:
    first = await client.token()
    tick.advance(TOKEN_LIFETIME - TOKEN_MARGIN_SECONDS - 1)
    assert await client.token() == first
    tick.advance(2)
    second = await client.token()
    assert second != first
    assert fake.token_fetches == 2
    await client.post("message/send", text("after refresh"))
    assert fake.texts_to("rep01") == ["after refresh"]
    assert fake.token_fetches == 2  # WeCom never had to reject a stale token


@pytest.mark.parametrize("code", [40014, 42001, 41001])
async def test_token_error_refetches_once_then_succeeds(client: WeComClient, fake: FakeWeCom, code: int) -> None:
    await client.post("message/send", text("one"))
    fake.fail_next("message/send", code)
    data = await client.post("message/send", text("two"))
    assert data["errcode"] == 0
    assert fake.token_fetches == 2
    assert endpoints(fake) == ["gettoken", "message/send", "message/send", "gettoken", "message/send"]
    assert fake.texts_to("rep01") == ["one", "two"]


async def test_expired_token_is_refetched_once_for_concurrent_senders(client: WeComClient, fake: FakeWeCom) -> None:
    await client.post("message/send", text("warm up"))
    fake.expire_tokens()  # a real 42001 from the fake for every call with the old token
    await asyncio.gather(*(client.post("message/send", text(f"m{i}")) for i in range(20)))
    assert fake.token_fetches == 2
    assert len(fake.texts_to("rep01")) == 21


@pytest.mark.parametrize("code", [40014, 42001, 41001])
async def test_second_token_error_in_a_row_is_a_retryable_error(
    client: WeComClient, fake: FakeWeCom, code: int
) -> None:
    fake.fail_next("message/send", code, code)
    with pytest.raises(WeComError) as caught:
        await client.post("message/send", text("x"))
    assert caught.value.errcode == code
    assert caught.value.retryable
    assert fake.token_fetches == 2  # refetched once, not in a loop
    assert endpoints(fake) == ["gettoken", "message/send", "gettoken", "message/send"]
    assert fake.delivered == []
    await client.post("message/send", text("later"))
    assert fake.texts_to("rep01") == ["later"]


# ---- error classes --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "errcode"),
    [(-1, -1), (45009, 45009), (45033, 45033), (500, "http_500"), (502, "http_502"), (503, "http_503")],
)
async def test_transient_errors_are_retryable(
    client: WeComClient, fake: FakeWeCom, fault: int, errcode: int | str
) -> None:
    fake.fail_next("message/send", fault)
    with pytest.raises(WeComError) as caught:
        await client.post("message/send", text("x"))
    assert (caught.value.errcode, caught.value.retryable) == (errcode, True)
    assert fake.delivered == []
    await client.post("message/send", text("retry"))
    assert fake.texts_to("rep01") == ["retry"]
    assert fake.token_fetches == 1
    assert client.config_problem is None


async def test_timeout_is_retryable_and_does_not_wait_for_the_server(
    make_client: ClientFactory, fake: FakeWeCom
) -> None:
    client = make_client(timeout=SHORT_TIMEOUT)
    await client.token()
    fake.fail_next("message/send", "timeout")
    started = time.perf_counter()
    with pytest.raises(WeComError) as caught:
        await client.post("message/send", text("x"))
    elapsed = time.perf_counter() - started
    assert (caught.value.errcode, caught.value.retryable) == ("timeout", True)
    assert SHORT_TIMEOUT * 0.9 <= elapsed < FAKE_TIMEOUT
    await client.post("message/send", text("retry"))
    assert fake.texts_to("rep01") == ["retry"]


async def test_all_recipients_invalid_is_not_retryable(make_client: ClientFactory, server: TestServer) -> None:
    fake_known = FakeWeCom(corp_id=CORP, secret=SECRET, agent_id=AGENT, known_users=["rep01"])
    srv = TestServer(fake_known.app())
    await srv.start_server()
    try:
        c = make_client(base_url=str(srv.make_url("/cgi-bin/")))
        with pytest.raises(WeComError) as caught:
            await c.post("message/send", text("x", touser="ghost01|ghost02"))
        assert (caught.value.errcode, caught.value.retryable) == (81013, False)
        data = await c.post("message/send", text("y", touser="rep01|ghost01"))
        assert data["invaliduser"] == "ghost01"  # partly invalid is a success that names the missing users
        assert fake_known.texts_to("rep01") == ["y"]
        assert fake_known.violations == []
    finally:
        await srv.close()


@pytest.mark.parametrize("code", [81013, 45002])
async def test_permanent_errors_are_not_retryable(client: WeComClient, fake: FakeWeCom, code: int) -> None:
    fake.fail_next("message/send", code)
    with pytest.raises(WeComError) as caught:
        await client.post("message/send", text("x"))
    assert (caught.value.errcode, caught.value.retryable) == (code, False)
    assert fake.token_fetches == 1
    assert client.config_problem is None


# ---- configuration errors -------------------------------------------------------------------------------------


async def test_wrong_secret_is_reported_and_fails_fast(make_client: ClientFactory, fake: FakeWeCom, tick: Tick) -> None:
    client = make_client(secret="wrong-secret")
    with pytest.raises(WeComError) as caught:
        await client.post("message/send", text("x"))
    assert caught.value.errcode == 40001
    assert caught.value.retryable  # the outbox keeps the message for after the fix
    problem = client.config_problem
    assert problem is not None
    assert problem.errcode == 40001
    assert "secret" in problem.hint
    assert "wrong-secret" not in str(caught.value) + problem.hint
    asked = len(fake.requests)

    tick.advance(CONFIG_BACKOFF_SECONDS - 1)
    for _ in range(5):
        with pytest.raises(WeComError) as again:
            await client.post("message/send", text("x"))
        assert again.value.errcode == 40001
    assert len(fake.requests) == asked  # failed fast, WeCom not asked again

    fake.secret = "wrong-secret"  # fixed on WeCom's side
    tick.advance(2)
    await client.post("message/send", text("fixed"))
    assert client.config_problem is None
    assert fake.texts_to("rep01") == ["fixed"]


@pytest.mark.parametrize("endpoint", ["gettoken", "message/send"])
async def test_untrusted_ip_is_reported_and_fails_fast(
    client: WeComClient, fake: FakeWeCom, tick: Tick, endpoint: str
) -> None:
    if endpoint == "message/send":
        await client.post("message/send", text("warm up"))  # 60020 arrives with a valid cached token
    fake.fail_next(endpoint, 60020)
    with pytest.raises(WeComError) as caught:
        await client.post("message/send", text("x"))
    assert (caught.value.errcode, caught.value.retryable) == (60020, True)
    assert client.config_problem is not None
    assert client.config_problem.errcode == 60020
    assert "IP" in client.config_problem.hint
    asked = len(fake.requests)

    tick.advance(CONFIG_BACKOFF_SECONDS / 2)
    with pytest.raises(WeComError) as again:
        await client.post("message/send", text("x"))
    assert again.value.errcode == 60020
    assert len(fake.requests) == asked

    tick.advance(CONFIG_BACKOFF_SECONDS / 2 + 1)
    await client.post("message/send", text("allowed again"))
    assert client.config_problem is None
    assert fake.texts_to("rep01")[-1] == "allowed again"


# ---- rate limiter ---------------------------------------------------------------------------------------------


class _FakeSleep:
    """``asyncio.sleep`` for the limiter: moves ``tick`` on by the delay instead of waiting."""

    def __init__(self, tick: Tick) -> None:
        self.tick = tick
        self.slept: list[float] = []
        self._real = asyncio.sleep

    async def __call__(self, delay: float, result: Any = None) -> Any:
        self.slept.append(delay)
        self.tick.advance(delay)
        await self._real(0)
        return result


@pytest.fixture
def fake_sleep(tick: Tick) -> _FakeSleep:
    """Injected into the limiter and the client: waiting moves the fake clock instead of the real one."""
    return _FakeSleep(tick)


def assert_at_most(stamps: list[float], n: int, per: float, burst: int) -> None:
    """Token bucket shape: no more than ``burst + n * (window / per)`` calls in any window."""
    for i, start in enumerate(stamps):
        for end in stamps[i:]:
            allowed = burst + n * (end - start) / per
            count = sum(1 for s in stamps if start <= s <= end)
            assert count <= allowed + 1e-9, (start, end, stamps)


async def test_rate_limiter_spaces_a_sequential_burst(tick: Tick, fake_sleep: _FakeSleep) -> None:
    limiter = RateLimiter(3, 60.0, tick, fake_sleep)
    t0 = tick()
    stamps = []
    started = time.perf_counter()
    for _ in range(9):
        await limiter.acquire()
        stamps.append(tick() - t0)
    assert time.perf_counter() - started < 0.5  # no real waiting
    assert stamps == pytest.approx([0, 0, 0, 20, 40, 60, 80, 100, 120])
    assert_at_most(stamps, 3, 60.0, burst=3)


async def test_rate_limiter_spaces_a_concurrent_burst(tick: Tick, fake_sleep: _FakeSleep) -> None:
    limiter = RateLimiter(3, 60.0, tick, fake_sleep)
    t0 = tick()
    stamps: list[float] = []

    async def call() -> None:
        await limiter.acquire()
        stamps.append(tick() - t0)

    await asyncio.gather(*(call() for _ in range(9)))
    assert sorted(stamps) == pytest.approx([0, 0, 0, 20, 40, 60, 80, 100, 120])


async def test_rate_limiter_refills_while_idle_up_to_its_capacity(tick: Tick, fake_sleep: _FakeSleep) -> None:
    limiter = RateLimiter(3, 60.0, tick, fake_sleep)
    for _ in range(3):
        await limiter.acquire()
    tick.advance(3600)  # an idle hour refills 3 tokens, not 180
    t0 = tick()
    for _ in range(4):
        await limiter.acquire()
    assert tick() - t0 == pytest.approx(20)
    assert fake_sleep.slept == [pytest.approx(20)]


async def test_client_calls_go_through_the_rate_limiter(
    make_client: ClientFactory, fake: FakeWeCom, tick: Tick, fake_sleep: _FakeSleep
) -> None:
    client = make_client(calls_per_minute=2, sleep=fake_sleep)
    t0 = tick()
    for i in range(5):
        await client.post("message/send", text(f"m{i}"))
    stamps = [r.at - t0 for r in fake.requests]
    assert endpoints(fake) == ["gettoken"] + ["message/send"] * 5  # the token fetch is a call too
    assert stamps == pytest.approx([0, 0, 30, 60, 90, 120])
    assert len(fake.texts_to("rep01")) == 5
