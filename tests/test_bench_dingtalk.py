"""The DingTalk callback benchmark (``bench/dingtalk_callbacks.py``) keeps working: its signed requests are what the
bot accepts, its bare handlers accept them and refuse forgeries, the bare pipeline's replies pass the fake DingTalk's
checks, the end-to-end phase stays inside the per-person budget, and the whole script runs at a tiny size."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from bot.app import build_app
from bot.runtime import Runtime
from storage.models import InboundEvent, User
from tests.conftest import T0
from tests.fakes.dingtalk import FakeDingTalk

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "dingtalk_callbacks.py"
NOW_MS = int(T0.timestamp() * 1000)


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_dingtalk_callbacks", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


bench = load_bench()


def split(raw: bytes) -> tuple[dict[str, str], bytes]:
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")[1:]
    return {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}, body


def test_requests_are_signed_round_robin_with_unique_msg_ids() -> None:
    staff = bench.staff_ids(3)
    reqs = bench.Builder(8080, staff).build(7)
    docs = []
    for raw in reqs:
        assert raw.startswith(b"POST /dingtalk/callback HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n")
        headers, body = split(raw)
        assert int(headers["content-length"]) == len(body)
        # The bot's own check of DingTalk's signature (key and message: appSecret, f"{timestamp}\n{appSecret}").
        from bot.channels.dingtalk.sign import check_robot

        check_robot(headers["timestamp"], headers["sign"], bench.APP_SECRET)
        docs.append(json.loads(body))
    assert [d["senderStaffId"] for d in docs] == [*staff, *staff, staff[0]]
    assert len({d["msgId"] for d in docs}) == 7
    assert {d["text"]["content"] for d in docs} == {"帮助"}
    assert {d["robotCode"] for d in docs} == {bench.ROBOT_CODE}


@pytest.fixture
async def bare() -> AsyncIterator[TestServer]:
    server = TestServer(bench.baseline_app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()


async def test_bare_handler_acknowledges_signed_callbacks_and_refuses_forgeries(bare: TestServer) -> None:
    port = bare.port
    assert port is not None
    b = bench.Builder(port, bench.staff_ids(5))
    result = await bench.closed_loop("bare", port, b.build(20), 4)
    assert (result.ok, result.errors) == (20, 0)

    conn = await bench.Conn.open(port)
    try:
        good = b.build(1)[0]
        assert await conn.request(bench.forged(good)) == 403
        stale = b.build(1, now_ms=NOW_MS)[0]  # signed correctly, but days ago: outside the replay window
        assert await conn.request(stale) == 403
        unsigned = good.replace(b"\r\nsign: ", b"\r\nx-sign: ", 1)
        assert await conn.request(unsigned) == 401
        assert await conn.request(good) == 200
    finally:
        await conn.close()


def test_the_end_to_end_phase_fits_in_the_per_person_budget() -> None:
    from bot.channels.dingtalk.channel import PER_USER_PER_MINUTE

    # The preflight and the warm-up gave every user one reply (dt-u01 two: the preflight's and the 50th warm-up's).
    assert bench.e2e_fit(50, 50) == 50 * (PER_USER_PER_MINUTE - 2)
    assert bench.e2e_fit(50, 49) == 50 * (PER_USER_PER_MINUTE - 1)
    assert bench.e2e_fit(5, 5) == 5 * (PER_USER_PER_MINUTE - 2)
    assert bench.e2e_fit(1, 10 * PER_USER_PER_MINUTE) == 0
    # The --e2e-requests help states the default for the defaults (without importing the bot's channel module).
    assert (PER_USER_PER_MINUTE, bench.e2e_fit(50, 50)) == (20, 900)


async def test_the_bare_pipeline_replies_through_the_fake_dingtalk(tmp_path: Path) -> None:
    fake = FakeDingTalk(app_key=bench.APP_KEY, app_secret=bench.APP_SECRET, robot_code=bench.ROBOT_CODE)
    api = TestServer(fake.app(), host="127.0.0.1")
    await api.start_server()
    try:
        server = TestServer(bench.baseline_e2e_app(str(api.make_url("")).rstrip("/"), tmp_path / "bare.db"))
        await server.start_server()
        try:
            assert server.port is not None
            b = bench.Builder(server.port, bench.staff_ids(3))
            reqs = b.build(6)
            conn = await bench.Conn.open(server.port)
            try:
                assert await conn.request(bench.forged(reqs[0])) == 403
                for raw in [*reqs, reqs[0]]:  # the last one a re-delivery: stored and answered once
                    assert await conn.request(raw) == 200
            finally:
                await conn.close()
        finally:
            await server.close()  # waits for the replies sent after the acknowledgements
        async with aiohttp.ClientSession() as http:
            stats = await bench.fake_stats(http, str(api.make_url("")).rstrip("/"))
    finally:
        await api.close()
    assert fake.violations == []
    assert (stats.messages, stats.api_calls, stats.calls) == (6, 6, {"accessToken": 1, "batchSend": 6})
    assert fake.texts_to("dt-u01") == ["收到", "收到"]


@pytest.fixture
def settings_overrides() -> dict[str, dict[str, Any]]:
    return {
        "dingtalk": {
            "enabled": True,
            "app_key": bench.APP_KEY,
            "app_secret": bench.APP_SECRET,
            "robot_code": bench.ROBOT_CODE,
            "api_base_url": "http://127.0.0.1:1",
            "oapi_base_url": "http://127.0.0.1:1",
        }
    }


async def test_the_bot_acknowledges_the_benchmark_requests_and_stores_them(runtime: Runtime) -> None:
    staff = {"rep01": "dt-u01", "rep02": "dt-u02"}
    async with runtime.db.transaction() as s:
        for user_id, staff_id in staff.items():
            user = await s.scalar(select(User).where(User.id == user_id))
            assert user is not None
            user.set_channel_id("dingtalk", staff_id, T0)
    server = TestServer(build_app(runtime, manage_runtime=False), host="127.0.0.1")
    await server.start_server()
    try:
        assert server.port is not None
        reqs = bench.Builder(server.port, list(staff.values())).build(4, now_ms=NOW_MS)
        conn = await bench.Conn.open(server.port)
        try:
            for raw in reqs:
                assert await conn.request(raw) == 200
            assert await conn.request(reqs[0]) == 200  # a re-delivery: acknowledged, stored once
        finally:
            await conn.close()
    finally:
        await server.close()
    async with runtime.db.read() as s:
        events = list(await s.scalars(select(InboundEvent).order_by(InboundEvent.id)))
    assert [(e.channel, e.sender, e.payload["text"]) for e in events] == [
        ("dingtalk", s, "帮助") for s in ["dt-u01", "dt-u02", "dt-u01", "dt-u02"]
    ]


@pytest.mark.slow
def test_the_script_runs_at_a_tiny_size() -> None:
    tiny = ["--requests", "60", "--bare-requests", "60", "--concurrency", "4", "--rate", "40", "--seconds", "1"]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *tiny, "--users", "5", "--warmup", "5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "max throughput req/s (C=4)" in out and "errors at 40/s" in out
    assert "salesbot max: 60/60 acknowledged" in out and "salesbot rate: 40/40 acknowledged" in out
    # The e2e default for 5 users: as many as fit in the budget, every reply one batchSend.
    n = bench.e2e_fit(5, 5)
    assert f"salesbot e2e: {n}/{n} acknowledged" in out and f"the fake counted batchSend {n} " in out
    assert "replies delivered/s (e2e)" in out and "/healthz 200 ok" in out
