"""Fixtures for the WeCom end-to-end scenarios: a FakeWeCom API on a real server, the bot's app on another, and a
``WeComUser`` driver that plays WeCom's side of the callbacks (encrypted, signed, with fresh MsgId and nonce)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.app import build_app
from bot.channels.wecom import webhook
from bot.channels.wecom.channel import WeComChannel
from bot.infra.clock import FixedClock
from bot.runtime import Runtime
from storage.models import OutboxMessage
from tests.fakes.wecom import FakeWeCom, validate_send, validate_update
from tests.fakes.wecom_callbacks import WeComSigner

CORP = "wwscenariocorp01"
AGENT = 1000002
SECRET = "scenario-app-secret"
TOKEN = "scenario-token"
AES_KEY = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
# How long a "timeout" fault holds a request at the fake; the bot's client gives up much earlier (see below).
FAKE_TIMEOUT_SECONDS = 1.0
CLIENT_TIMEOUT_SECONDS = 2.0


@pytest.fixture
def fake(clock: FixedClock) -> FakeWeCom:
    """The fake WeCom API; its time (rate limits, token lifetime, code TTL) is the bot's FixedClock."""
    return FakeWeCom(
        corp_id=CORP,
        secret=SECRET,
        agent_id=AGENT,
        now=lambda: clock.now().timestamp(),
        timeout_seconds=FAKE_TIMEOUT_SECONDS,
    )


class AnswerLoss:
    """WeCom did the work but its HTTP answer never arrived: a middleware in front of the fake that, for a share of
    the successful calls, replaces the answer by a 502 or holds it past the client's timeout."""

    def __init__(self) -> None:
        self.endpoints: frozenset[str] = frozenset()
        self.rate = 0.0
        self.kinds: list[str] = []
        self.rng = random.Random(0)
        self.lost: Counter[str] = Counter()
        self.lost_on: Counter[str] = Counter()
        self._release = asyncio.Event()

    def lose(self, endpoints: list[str], rate: float, kinds: list[str], seed: int) -> None:
        assert set(kinds) <= {"502", "hang"}
        self.endpoints, self.rate, self.kinds, self.rng = frozenset(endpoints), rate, kinds, random.Random(seed)

    def release(self) -> None:
        self._release.set()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        endpoint = request.path.removeprefix("/cgi-bin/")
        if endpoint not in self.endpoints or not isinstance(response, web.Response) or response.status != 200:
            return response
        if json.loads(response.body)["errcode"] != 0 or self.rng.random() >= self.rate:  # type: ignore[arg-type]
            return response
        kind = self.rng.choice(self.kinds)
        self.lost[kind] += 1
        self.lost_on[endpoint] += 1
        if kind == "hang":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), FAKE_TIMEOUT_SECONDS)
        return web.Response(status=502, text="bad gateway")


@pytest.fixture
def answer_loss() -> AnswerLoss:
    return AnswerLoss()


@pytest.fixture
async def fake_server(fake: FakeWeCom, answer_loss: AnswerLoss) -> AsyncIterator[TestServer]:
    app = fake.app()
    app.middlewares.append(answer_loss.middleware)
    server = TestServer(app)
    await server.start_server()
    try:
        yield server
    finally:
        fake.release_timeouts()
        answer_loss.release()
        await server.close()


@pytest.fixture
def wecom_overrides() -> dict[str, Any]:
    """Per test (``@pytest.mark.parametrize("wecom_overrides", [...])``): changes to the wecom section."""
    return {}


@pytest.fixture
def extra_overrides() -> dict[str, dict[str, Any]]:
    """Per test: other config sections, e.g. ``{"outbox": {"max_attempts": 12}}``."""
    return {}


def wecom_section(fake_server: TestServer) -> dict[str, Any]:
    """The ``[wecom]`` section of a bot that talks to ``fake_server`` (this app's corp, secret, token and key)."""
    return {
        "enabled": True,
        "corp_id": CORP,
        "agent_id": AGENT,
        "secret": SECRET,
        "token": TOKEN,
        "encoding_aes_key": AES_KEY,
        "api_base_url": str(fake_server.make_url("/cgi-bin/")),
        "replay_window_seconds": 300,
        "request_timeout_seconds": CLIENT_TIMEOUT_SECONDS,
    }


@pytest.fixture
def settings_overrides(
    fake_server: TestServer, wecom_overrides: dict[str, Any], extra_overrides: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    return {"wecom": wecom_section(fake_server) | wecom_overrides, **extra_overrides}


@pytest.fixture
def bot(runtime: Runtime, clock: FixedClock) -> Runtime:
    """The runtime with WeCom enabled (its client's token expiry and fail-fast follow the runtime clock)."""
    assert isinstance(runtime.channels.get("wecom"), WeComChannel)
    return runtime


@pytest.fixture
async def http(bot: Runtime) -> AsyncIterator[TestClient[Any, Any]]:
    """An HTTP client for the bot's web app (build_app mounts /wecom/callback when WeCom is enabled)."""
    async with TestClient(TestServer(build_app(bot, manage_runtime=False))) as client:
        yield client


@pytest.fixture
def signer() -> WeComSigner:
    return WeComSigner(TOKEN, AES_KEY, CORP, agent_id=AGENT)


class WeComUser:
    """One WeCom member talking to the bot through WeCom: callbacks in, deliveries read back from the fake."""

    def __init__(
        self,
        userid: str,
        *,
        http: TestClient[Any, Any],
        signer: WeComSigner,
        fake: FakeWeCom,
        runtime: Runtime,
        clock: FixedClock,
        msg_ids: itertools.count[int],
    ) -> None:
        self.userid = userid
        self.http = http
        self.signer = signer
        self.fake = fake
        self.runtime = runtime
        self.clock = clock
        self._msg_ids = msg_ids

    # ---- callbacks ------------------------------------------------------------------------------------------

    def now(self) -> int:
        return int(self.clock.now().timestamp())

    def next_msg_id(self) -> int:
        return next(self._msg_ids)

    async def post(self, inner_xml: str) -> tuple[int, bytes]:
        """Deliver one callback as WeCom does: the current timestamp, a fresh nonce, signed and encrypted."""
        query, body = self.signer.envelope(inner_xml, self.now(), secrets.token_hex(8))
        async with self.http.post(webhook.PATH, params=query, data=body) as resp:
            return resp.status, await resp.read()

    async def deliver(self, inner_xml: str, *, settle: bool = True) -> tuple[int, bytes]:
        answer = await self.post(inner_xml)
        if settle:
            await self.runtime.settle()
        return answer

    def text_callback(self, text: str) -> str:
        return self.signer.text(self.userid, text, self.next_msg_id(), self.now())

    async def send(self, text: str, *, settle: bool = True) -> int:
        """Type ``text``; returns the HTTP status the bot answered WeCom."""
        status, body = await self.deliver(self.text_callback(text), settle=settle)
        assert body == b"", "a registered sender's callback is acknowledged with an empty body"
        return status

    def current(self, card: dict[str, Any]) -> dict[str, Any]:
        """The card as this user sees it now (sent, then updated)."""
        state = self.fake.card_state(card["task_id"], self.userid)
        assert state is not None, f"card {card['task_id']} was never delivered to {self.userid}"
        return state

    def tap_callback(self, card: dict[str, Any], button_text: str) -> tuple[str, str]:
        """(inner XML, response code) of a tap on ``button_text``; the button must still be clickable."""
        state = self.current(card)
        assert not state.get("replace_text"), f"card {card['task_id']} is settled: {state.get('replace_text')!r}"
        keys = [b["key"] for b in state.get("button_list", []) if b["text"] == button_text]
        shown = [b["text"] for b in state.get("button_list", [])]
        assert len(keys) == 1, f"no single button {button_text!r} on card {card['task_id']} (buttons: {shown})"
        code = self.fake.issue_response_code(card["task_id"], self.userid)
        inner = self.signer.card_event(self.userid, keys[0], card["task_id"], code, self.now())
        return inner, code

    async def tap(self, card: dict[str, Any], button_text: str, *, settle: bool = True) -> str:
        """Tap a button; returns the response code the callback carried."""
        inner, code = self.tap_callback(card, button_text)
        status, body = await self.deliver(inner, settle=settle)
        assert (status, body) == (200, b"")
        return code

    async def location(self, latitude: float, longitude: float, label: str = "", *, settle: bool = True) -> int:
        inner = self.signer.location(self.userid, latitude, longitude, label, self.next_msg_id(), self.now())
        status, _ = await self.deliver(inner, settle=settle)
        return status

    # ---- what arrived -------------------------------------------------------------------------------------------

    def texts(self) -> list[str]:
        return self.fake.texts_to(self.userid)

    def cards(self) -> list[dict[str, Any]]:
        return self.fake.cards_to(self.userid)

    def last_card(self) -> dict[str, Any]:
        cards = self.cards()
        assert cards, f"no card delivered to {self.userid}"
        return cards[-1]


@pytest.fixture
def wecom_user(
    http: TestClient[Any, Any], signer: WeComSigner, fake: FakeWeCom, bot: Runtime, clock: FixedClock
) -> Callable[[str], WeComUser]:
    """``wecom_user("rep01")`` → a driver for that WeCom userid (MsgIds are unique across users)."""
    msg_ids = itertools.count(6_000_000_000_000_000_000)

    def make(userid: str) -> WeComUser:
        return WeComUser(userid, http=http, signer=signer, fake=fake, runtime=bot, clock=clock, msg_ids=msg_ids)

    return make


async def outbox_rows(rt: Runtime) -> list[OutboxMessage]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


async def settle_until_delivered(rt: Runtime, clock: FixedClock, *, step_seconds: float, rounds: int = 30) -> int:
    """Move the clock on and settle until no outbox row is pending (and none is dead); returns the rounds taken."""
    for n in range(rounds):
        await rt.settle()
        rows = await outbox_rows(rt)
        dead = [(r.id, r.kind, r.attempts, r.last_error) for r in rows if r.status == "dead"]
        assert not dead, f"outbox rows given up: {dead}"
        if not [r for r in rows if r.status in ("pending", "sending")]:
            return n
        clock.set(clock.now() + timedelta(seconds=step_seconds))
        await asyncio.sleep(0)
    raise AssertionError(f"outbox not delivered after {rounds} rounds: {await outbox_rows(rt)}")


@pytest.fixture
def no_violations(fake: FakeWeCom) -> Iterator[None]:
    """Use in scenario modules: at the end, the fake has seen no request that breaks WeCom's documented rules.

    Bodies are also re-checked here, in case a request slipped past the server's checks (e.g. an update after a
    fault, which the fake answers before validating)."""
    yield
    assert fake.violations == []
    for r in fake.requests:
        if r.endpoint == "message/send" and r.body is not None:
            assert validate_send(r.body) == [], r.body
        if r.endpoint == "message/update_template_card" and r.body is not None:
            assert validate_update(r.body) == [], r.body
