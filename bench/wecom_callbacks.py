"""Benchmark: WeCom text callbacks through the bot's full path, side by side with a bare crypto-only aiohttp handler.

Run from the repository root (about a minute):

    python bench/wecom_callbacks.py [--requests 4000] [--bare-requests 10000] [--concurrency 32] [--rate 200]
                                    [--seconds 10] [--users 50] [--warmup 50] [--profile DIR] [--keep]

Servers run as subprocesses on 127.0.0.1; the load generator is this process:

* ``bare-aiohttp`` (``python bench/wecom_callbacks.py --serve-baseline PORT``): POST /wecom/callback reads the
  body, takes ``<Encrypt>`` out of the outer XML (the bot's ``parse_xml``), verifies the msg_signature and decrypts
  with ``bot.channels.wecom.crypto.WeComCrypto``, then seals a passive text reply (encrypt + signature) and answers
  it. No database, no directory, no pipeline.
* ``salesbot`` (``python -m bot.cli serve``) with WeCom enabled on a SQLite file with 50 reps imported (``db
  upgrade`` + ``import org`` once, the file copied for every bot process), its API pointed at a fake WeCom
  (``python -m tests.fakes.wecom``). The ack path: verify, decrypt, parse, directory lookup (cached), persist the
  event (group commit), answer 200 with an empty body; then the pipeline handles ``帮助`` and the outbox sends the
  reply to the fake.

Phases (the bot gets a fresh process, database copy and fake for each, so that no phase inherits another's backlog
or per-user send budget; the bare handler runs both of its phases in one process):

1. max throughput: closed loop, C keep-alive connections, N callbacks → acknowledged req/s, p50/p99 latency;
2. (salesbot only) end to end: 29 callbacks per user, closed loop → replies delivered per second at the fake, from
   the first request until the fake has delivered every reply;
3. fixed rate: R req/s open loop for S seconds, latency counted from each request's scheduled send time (a stalled
   server cannot hide behind a stalled generator) → p50/p99/max and errors.

Every process first gets ``--warmup`` callbacks that are not counted (for the bot: until their replies arrived).
Callbacks are the text ``帮助`` from 50 users (u01…u50) round robin, with unique MsgIds. They are sealed (AES,
signature) and laid out as raw HTTP/1.1 requests before timing; the generator writes them on keep-alive connections
and reads status line, headers and Content-Length body, so that it needs little CPU.

WeCom drops what exceeds 30 messages per user and minute, and the bot throttles itself below that. Phase 2 stays
within that budget so that every reply can be awaited. Phases 1 and 3 cross it (80 and 40 callbacks per user): the
replies beyond it are deferred by the throttle: the background work then has a different mix (a deferral instead of
an API call), the ack path they measure is the same.
Exit status 1 if any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

SCRIPT = Path(__file__).resolve()
# bench/ for crash_wecom.py and procs.py: sys.path[0] when this file is run as a script, not when it is loaded by path.
if str(SCRIPT.parent) not in sys.path:
    sys.path.insert(0, str(SCRIPT.parent))

import aiohttp  # noqa: E402
from crash_wecom import (  # noqa: E402
    AES_KEY,
    AGENT_ID,
    CALLBACK_PATH,
    CALLBACK_TOKEN,
    CORP_ID,
    db_state,
    fake_stats,
    start_bot,
    start_fake,
    wecom_userids,
    write_config,
    write_org,
)
from procs import HOST, DbReader, Proc, cli, free_port, spawn, wait_healthy  # noqa: E402

from tests.fakes.wecom_callbacks import WeComSigner, cdata  # noqa: E402

COMMAND = "帮助"
PER_USER_PER_MINUTE = 30  # WeCom's limit, and the cap of [wecom] per_user_per_minute
TARGET_RATIO = 0.5
TARGET_P99_MS = 50.0
RAISED_PER_USER = 1_000_000  # per-person budget of the bot in the e2e and sustained phases
APP_CALLS_PER_MINUTE = 10_000  # WeCom's limit per API and corp (the bot's default 3,000 would cap sends at 50/s)
LATE_MS = 20.0  # an open-loop request sent later than this after its time means the machine stalled


# ---- the bare baseline server ---------------------------------------------------------------------------------


def serve_baseline(port: int) -> None:
    """aiohttp + the bot's WeComCrypto only: verify and decrypt the callback, seal a reply, answer it."""
    from aiohttp import web

    from bot.channels.wecom.crypto import CallbackRejected, WeComCrypto
    from bot.channels.wecom.parse import parse_xml

    crypto = WeComCrypto(CALLBACK_TOKEN, AES_KEY, CORP_ID)

    async def receive(request: web.Request) -> web.Response:
        q = request.query
        try:
            body = await request.read()
            encrypt = parse_xml(body.decode("utf-8")).get("Encrypt")
            if not isinstance(encrypt, str):
                raise CallbackRejected(400, "no Encrypt element")
            crypto.decrypt(q["msg_signature"], q["timestamp"], q["nonce"], encrypt.strip())
        except CallbackRejected as exc:
            return web.Response(status=exc.status, text=exc.reason)
        except (KeyError, UnicodeDecodeError):
            return web.Response(status=400)
        timestamp = str(int(time.time()))
        inner = (
            f"<xml><ToUserName>{cdata('u01')}</ToUserName><FromUserName>{cdata(CORP_ID)}</FromUserName>"
            f"<CreateTime>{timestamp}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content>{cdata('收到')}</Content></xml>"
        )
        sealed, signature = crypto.encrypt(inner, q["nonce"], timestamp)
        reply = (
            f"<xml><Encrypt>{cdata(sealed)}</Encrypt><MsgSignature>{cdata(signature)}</MsgSignature>"
            f"<TimeStamp>{timestamp}</TimeStamp><Nonce>{cdata(q['nonce'])}</Nonce></xml>"
        )
        return web.Response(text=reply, content_type="application/xml")

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application(client_max_size=65536)
    app.router.add_post(CALLBACK_PATH, receive)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host=HOST, port=port, print=None, access_log=None)


def serve_fake(port: int) -> None:
    """A lean fake WeCom API for the end-to-end phases: gettoken and message/send, each delivery recorded as
    (touser, time.monotonic()) without validation, duplicate checks or per-person limits (tests.fakes.wecom has
    those; here the fake's own cost should stay small next to the servers it measures)."""
    from aiohttp import web

    delivered: list[tuple[str, float]] = []

    async def gettoken(_request: web.Request) -> web.Response:
        return web.json_response({"errcode": 0, "errmsg": "ok", "access_token": "bench-token", "expires_in": 7200})

    async def send(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        delivered.append((str(body["touser"]), time.monotonic()))
        return web.json_response({"errcode": 0, "errmsg": "ok", "invaliduser": "", "msgid": f"m{len(delivered)}"})

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response({"delivered_messages": len(delivered)})

    async def listing(_request: web.Request) -> web.Response:
        return web.json_response(delivered)

    app = web.Application()
    app.router.add_get("/cgi-bin/gettoken", gettoken)
    app.router.add_post("/cgi-bin/message/send", send)
    app.router.add_get("/_fake/stats", stats)
    app.router.add_get("/_fake/delivered", listing)
    web.run_app(app, host=HOST, port=port, print=None, access_log=None)


def serve_baseline_e2e(port: int, fake_port: int, db: Path) -> None:
    """The bare end-to-end pipeline: verify and decrypt, parse, one SQLite INSERT (dedup key) and COMMIT, answer
    200, then POST one reply to the fake API. No directory, router, dialog state or outbox."""
    from aiohttp import web

    from bot.channels.wecom.crypto import CallbackRejected, WeComCrypto
    from bot.channels.wecom.parse import parse_xml

    crypto = WeComCrypto(CALLBACK_TOKEN, AES_KEY, CORP_ID)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, dedup_key TEXT UNIQUE, sender TEXT, payload TEXT,"
        " received_at REAL)"
    )
    replies: set[asyncio.Task[None]] = set()
    http: list[aiohttp.ClientSession] = []
    send_url = f"http://{HOST}:{fake_port}/cgi-bin/message/send?access_token=bench-token"

    async def reply(sender: str) -> None:
        body = {"touser": sender, "msgtype": "text", "agentid": AGENT_ID, "text": {"content": "收到"}}
        async with http[0].post(send_url, json=body) as r:
            await r.read()

    async def receive(request: web.Request) -> web.Response:
        q = request.query
        try:
            body = await request.read()
            encrypt = parse_xml(body.decode("utf-8")).get("Encrypt")
            if not isinstance(encrypt, str):
                raise CallbackRejected(400, "no Encrypt element")
            inner = parse_xml(crypto.decrypt(q["msg_signature"], q["timestamp"], q["nonce"], encrypt.strip()))
        except CallbackRejected as exc:
            return web.Response(status=exc.status, text=exc.reason)
        except (KeyError, UnicodeDecodeError):
            return web.Response(status=400)
        sender = str(inner["FromUserName"])
        conn.execute("BEGIN IMMEDIATE")
        cur = conn.execute(
            "INSERT INTO events (dedup_key, sender, payload, received_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (str(inner.get("MsgId")), sender, json.dumps(inner, ensure_ascii=False), time.time()),
        )
        conn.execute("COMMIT")
        if cur.rowcount:
            task = asyncio.create_task(reply(sender))
            replies.add(task)
            task.add_done_callback(replies.discard)
        return web.Response()

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def session(_app: web.Application) -> AsyncIterator[None]:
        http.append(aiohttp.ClientSession())
        yield
        await http[0].close()

    app = web.Application(client_max_size=65536)
    app.router.add_post(CALLBACK_PATH, receive)
    app.router.add_get("/healthz", healthz)
    app.cleanup_ctx.append(session)
    web.run_app(app, host=HOST, port=port, print=None, access_log=None)


def serve_bot(config: Path) -> None:
    """``bot.cli serve`` with the per-person WeCom budget raised: the config caps it at WeCom's 30/min and 1000/h,
    and at 50 events/s from 16 users every reply would be deferred by it; the phases that use this measure the
    pipeline, not the throttle."""
    from aiohttp import web

    from bot.app import build_app, freeze_startup_heap
    from bot.config import load_settings
    from bot.infra.logging_setup import setup_logging
    from bot.runtime import Runtime

    settings = load_settings(str(config))
    setup_logging(settings.logging.level, settings.logging.json_format)
    wecom = settings.wecom.model_copy(
        update={
            "per_user_per_minute": RAISED_PER_USER,
            "per_user_per_hour": RAISED_PER_USER,
            "app_calls_per_minute": APP_CALLS_PER_MINUTE,
        }
    )
    settings = settings.model_copy(update={"wecom": wecom})

    async def make() -> web.Application:
        app = build_app(Runtime(settings))
        app.on_startup.append(freeze_startup_heap)
        return app

    web.run_app(make(), host=settings.server.host, port=settings.server.port, print=None)


# ---- prebuilt requests ----------------------------------------------------------------------------------------


class Builder:
    """Sealed callbacks as raw HTTP/1.1 requests: unique MsgIds, users round robin."""

    def __init__(self, port: int, userids: list[str]) -> None:
        self.port = port
        self.userids = userids
        self.signer = WeComSigner(CALLBACK_TOKEN, AES_KEY, CORP_ID, AGENT_ID)
        self.msg_ids = itertools.count(7_000_000_000_000_000_000 + secrets.randbelow(10**15) * 1000)
        self.users = itertools.cycle(userids)

    def build(self, n: int) -> list[bytes]:
        return [raw for _, raw in self.build_for(n)]

    def build_for(self, n: int) -> list[tuple[str, bytes]]:
        """(sender, raw request) pairs."""
        now = int(time.time())
        out = []
        for _ in range(n):
            user = next(self.users)
            inner = self.signer.text(user, COMMAND, next(self.msg_ids), now)
            query, body = self.signer.envelope(inner, now, str(secrets.randbelow(10**10)))
            target = f"{CALLBACK_PATH}?msg_signature={query['msg_signature']}&timestamp={now}&nonce={query['nonce']}"
            head = (
                f"POST {target} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\nContent-Type: text/xml\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            out.append((user, head.encode() + body))
        return out


# ---- a minimal HTTP/1.1 keep-alive client -------------------------------------------------------------------

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Conn:
        reader, writer = await asyncio.open_connection(HOST, port)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> int:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        m = _CONTENT_LENGTH.search(head)
        if m is None:
            raise RuntimeError(f"no Content-Length in {head[:200]!r}")
        n = int(m.group(1))
        if n:
            await self.reader.readexactly(n)
        return status

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


@dataclass
class Result:
    name: str
    phase: str
    requests: int
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    client_cpu: float = 0.0
    started: float = 0.0  # time.monotonic() of the first request
    max_lag_ms: float = 0.0  # open loop: how late the generator sent a request, at worst

    @property
    def ok(self) -> int:
        return self.requests - self.errors

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    def pct(self, p: float) -> float:
        xs = sorted(self.latencies)
        if not xs:
            return float("nan")
        return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))] * 1000

    def fail(self, what: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or what


async def closed_loop(name: str, port: int, reqs: list[bytes], concurrency: int, phase: str = "max") -> Result:
    """Every connection sends its next request as soon as the previous answer is read."""
    conns = [await Conn.open(port) for _ in range(concurrency)]
    result = Result(name, phase, len(reqs))
    it = iter(reqs)

    async def worker(conn: Conn) -> None:
        for raw in it:
            t0 = time.monotonic()
            try:
                status = await conn.request(raw)
            except (OSError, asyncio.IncompleteReadError, RuntimeError) as exc:
                result.fail(repr(exc))
                return
            result.latencies.append(time.monotonic() - t0)
            if status != 200:
                result.fail(f"HTTP {status}")

    cpu0 = time.process_time()
    result.started = time.monotonic()
    try:
        await asyncio.gather(*(worker(c) for c in conns))
    finally:
        result.elapsed = time.monotonic() - result.started
        result.client_cpu = time.process_time() - cpu0
        for c in conns:
            await c.close()
    return result


async def open_loop(name: str, port: int, reqs: list[bytes], rate: float) -> Result:
    """Request i is sent at start + i/rate on an idle connection (a new one if none is idle), whatever the
    server's pace; its latency runs from that scheduled time."""
    result = Result(name, "rate", len(reqs))
    idle: list[Conn] = [await Conn.open(port) for _ in range(16)]
    all_conns = list(idle)
    tasks: list[asyncio.Task[None]] = []

    async def one(raw: bytes, due: float) -> None:
        conn = idle.pop() if idle else None
        try:
            if conn is None:
                conn = await Conn.open(port)
                all_conns.append(conn)
            status = await conn.request(raw)
        except (OSError, asyncio.IncompleteReadError, RuntimeError) as exc:
            result.fail(repr(exc))
            return
        result.latencies.append(time.monotonic() - due)
        idle.append(conn)
        if status != 200:
            result.fail(f"HTTP {status}")

    cpu0 = time.process_time()
    # The lean fake stamps deliveries with time.monotonic(): one clock for every process on the machine.
    start = result.started = time.monotonic()
    for i, raw in enumerate(reqs):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        result.max_lag_ms = max(result.max_lag_ms, (time.monotonic() - due) * 1000)
        tasks.append(asyncio.create_task(one(raw, due)))
    await asyncio.gather(*tasks)
    result.elapsed = time.monotonic() - start
    result.client_cpu = time.process_time() - cpu0
    for c in all_conns:
        await c.close()
    return result


# ---- servers --------------------------------------------------------------------------------------------------


@dataclass
class BotRig:
    fake: Proc
    bot: Proc
    db: Path

    def stop(self) -> None:
        # The measurement is over and a backlog may be left: no graceful shutdown needed.
        self.bot.kill()
        self.fake.stop()


async def template_db(tmp: Path, userids: list[str]) -> Path:
    """A migrated SQLite file with the reps imported (``db upgrade`` + ``import org``), copied for every bot."""
    d = tmp / "template"
    d.mkdir()
    db = d / "bench.db"
    config = d / "bench.toml"
    write_config(config, db_url=f"sqlite+aiosqlite:///{db}", port=free_port(), fake_port=free_port())
    org = d / "org.csv"
    write_org(org, userids)
    await asyncio.to_thread(cli, config, "db", "upgrade")
    await asyncio.to_thread(cli, config, "import", "org", str(org))
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db


async def start_rig(tmp: Path, tag: str, userids: list[str], template: Path, lean: bool = False) -> BotRig:
    """A fresh fake WeCom and a fresh bot on a copy of the template database. ``lean``: the lean fake API and the
    bot with the per-person budget raised (``--serve-fake``, ``--serve-bot``), for the end-to-end phases."""
    d = tmp / tag
    d.mkdir()
    if lean:
        fake_port = free_port()
        fake = spawn("fake-api", [str(SCRIPT), "--serve-fake", str(fake_port)], fake_port, d / "fake_api.log")
    else:
        fake = start_fake(d, userids)
    port = free_port()
    config = d / "bench.toml"
    db = d / "bench.db"
    shutil.copy(template, db)
    write_config(config, db_url=f"sqlite+aiosqlite:///{db}", port=port, fake_port=fake.port)
    if lean:
        bot = spawn("salesbot", [str(SCRIPT), "--serve-bot", str(config)], port, d / "salesbot.log")
    else:
        bot = start_bot(config, port, d / "salesbot.log")
    await asyncio.gather(wait_healthy(fake, path="/_fake/stats"), wait_healthy(bot))
    return BotRig(fake, bot, db)


async def delivered_count(http: aiohttp.ClientSession, fake: Proc) -> int:
    return int((await fake_stats(http, fake))["delivered_messages"])


async def wait_delivered(http: aiohttp.ClientSession, rig: BotRig, total: int, limit_s: float) -> float:
    """time.monotonic() when the fake has delivered ``total`` messages (polled every 20 ms)."""
    deadline = time.monotonic() + limit_s
    while True:
        n = await delivered_count(http, rig.fake)
        if n >= total:
            return time.monotonic()
        if time.monotonic() > deadline:
            state = await db_state(DbReader(f"sqlite:///{rig.db}"))
            raise RuntimeError(f"only {n}/{total} replies delivered after {limit_s:.0f}s; db {state}")
        await asyncio.sleep(0.02)


def rss_mb(proc: Proc) -> float | None:
    return proc.peak_rss_mb()


async def wait_fake(http: aiohttp.ClientSession, fake: Proc, total: int, limit_s: float) -> float:
    """time.monotonic() when the fake has recorded ``total`` deliveries (RuntimeError after ``limit_s``)."""
    deadline = time.monotonic() + limit_s
    while (n := await delivered_count(http, fake)) < total:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {n}/{total} replies delivered after {limit_s:.0f}s")
        await asyncio.sleep(0.02)
    return time.monotonic()


async def fake_deliveries(http: aiohttp.ClientSession, fake: Proc) -> list[tuple[str, float]]:
    """The lean fake's deliveries in arrival order: (touser, time.monotonic() at the fake)."""
    async with http.get(f"{fake.base}/_fake/delivered") as r:
        r.raise_for_status()
        return [(str(u), float(t)) for u, t in await r.json()]


@dataclass
class EndToEnd:
    """Closed loop whose replies are awaited at the lean fake."""

    load: Result
    seconds: float  # first request → every reply delivered by the fake

    @property
    def per_s(self) -> float:
        return self.load.ok / self.seconds if self.seconds else 0.0


@dataclass
class Sustained:
    """Open loop at ``rate`` for a while; lags from each request's scheduled send time to its reply at the fake."""

    rate: float
    load: Result
    handled_at_end: int  # events handled when the last request had been answered
    lags: list[float] = field(default_factory=list)  # seconds
    missing: int = 0  # replies that never arrived within the limit

    def lag(self, p: float) -> float:
        xs = sorted(self.lags)
        if not xs:
            return float("nan")
        return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def match_lags(sent: list[tuple[str, float]], arrived: list[tuple[str, float]]) -> tuple[list[float], int]:
    """Per user, the n-th reply answers the n-th request (the bot keeps each person's order): the lags, and how
    many requests got no reply."""
    by_user: dict[str, list[float]] = {}
    for user, at in arrived:
        by_user.setdefault(user, []).append(at)
    seen: dict[str, int] = {}
    lags, missing = [], 0
    for user, due in sent:
        k = seen.get(user, 0)
        seen[user] = k + 1
        ats = by_user.get(user, [])
        if k < len(ats):
            lags.append(ats[k] - due)
        else:
            missing += 1
    return lags, missing


async def bare_end_to_end(
    args: argparse.Namespace, tmp: Path, userids: list[str], http: aiohttp.ClientSession
) -> EndToEnd:
    """The bare pipeline (``--serve-baseline-e2e``) against its own lean fake."""
    d = tmp / "bare-e2e"
    d.mkdir()
    fake_port, port = free_port(), free_port()
    fake = spawn("fake-api", [str(SCRIPT), "--serve-fake", str(fake_port)], fake_port, d / "fake_api.log")
    bare = spawn(
        "bare-pipeline",
        [str(SCRIPT), "--serve-baseline-e2e", str(port), "--fake-port", str(fake_port), "--db", str(d / "bare.db")],
        port,
        d / "bare.log",
    )
    try:
        await asyncio.gather(wait_healthy(fake, path="/_fake/stats"), wait_healthy(bare))
        b = Builder(port, userids)
        await closed_loop("warm-up", port, b.build(args.warmup), min(args.concurrency, args.warmup))
        await wait_fake(http, fake, args.warmup, limit_s=60)
        load = await closed_loop("bare-pipeline", port, b.build(args.e2e_requests), args.concurrency, phase="e2e")
        done = await wait_fake(http, fake, args.warmup + load.ok, limit_s=120)
    finally:
        bare.stop()
        fake.stop()
    e2e = EndToEnd(load, done - load.started)
    print(f"bare-pipeline: {e2e.per_s:.0f} replies/s delivered end to end", file=sys.stderr)
    return e2e


async def bot_end_to_end(
    args: argparse.Namespace, tmp: Path, userids: list[str], template: Path, http: aiohttp.ClientSession
) -> EndToEnd:
    rig = await start_rig(tmp, "e2e", userids, template, lean=True)
    try:
        b = Builder(rig.bot.port, userids)
        await closed_loop("warm-up", rig.bot.port, b.build(args.warmup), min(args.concurrency, args.warmup))
        await wait_fake(http, rig.fake, args.warmup, limit_s=60)
        cpu_start = rig.bot.cpu_seconds()
        async with profiled(args.profile, rig.bot, "e2e"):
            load = await closed_loop("salesbot", rig.bot.port, b.build(args.e2e_requests), args.concurrency, "e2e")
            done = await wait_fake(http, rig.fake, args.warmup + load.ok, limit_s=300)
        cpu_end = rig.bot.cpu_seconds()
    finally:
        rig.stop()
    e2e = EndToEnd(load, done - load.started)
    print(f"salesbot: {e2e.per_s:.0f} replies/s delivered end to end", file=sys.stderr)
    if cpu_start is not None and cpu_end is not None and load.ok:
        # Less disturbed by a busy machine than the rate: the bot's own CPU time per handled callback.
        print(f"salesbot e2e: server CPU {(cpu_end - cpu_start) * 1000 / load.ok:.2f} ms per callback", file=sys.stderr)
    return e2e


async def sustained(
    args: argparse.Namespace, tmp: Path, template: Path, http: aiohttp.ClientSession, rate: float
) -> Sustained:
    """``rate`` callbacks/s for ``--sustained-seconds`` from ``--sustained-users`` users (open loop), then wait for
    every reply: the delivery lag of each, from its scheduled send time to its arrival at the fake."""
    users = wecom_userids(args.users)[: args.sustained_users]
    rig = await start_rig(tmp, f"sustained-{rate:.0f}", users, template, lean=True)
    try:
        b = Builder(rig.bot.port, users)
        await closed_loop("warm-up", rig.bot.port, b.build(args.warmup), min(args.concurrency, args.warmup))
        await wait_fake(http, rig.fake, args.warmup, limit_s=60)
        planned = b.build_for(int(rate * args.sustained_seconds))
        async with profiled(args.profile, rig.bot, f"sustained-{rate:.0f}"):
            load = await open_loop("salesbot", rig.bot.port, [raw for _, raw in planned], rate)
        handled = (await db_state(DbReader(f"sqlite:///{rig.db}"))).inbound.get("done", 0) - args.warmup
        with contextlib.suppress(RuntimeError):
            await wait_fake(http, rig.fake, args.warmup + load.ok, limit_s=300)
        arrived = (await fake_deliveries(http, rig.fake))[args.warmup :]
    finally:
        rig.stop()
    sent = [(user, load.started + i / rate) for i, (user, _) in enumerate(planned)]
    lags, missing = match_lags(sent, arrived)
    result = Sustained(rate, load, handled, lags, missing)
    print(
        f"salesbot at {rate:.0f}/s: delivery lag p50 {result.lag(50):.2f}s p99 {result.lag(99):.2f}s "
        f"max {result.lag(100):.2f}s",
        file=sys.stderr,
    )
    return result


# ---- the run --------------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def profiled(outdir: Path | None, proc: Proc, phase: str) -> AsyncIterator[None]:
    """With ``--profile DIR``: py-spy samples the bot during the phase (collapsed stacks in DIR/<phase>.txt)."""
    if outdir is None:
        yield
        return
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out = outdir / f"{phase}.txt"
    cmd = [spy, "record", "--pid", str(proc.proc.pid), "--rate", "250", "--format", "raw", "--output", str(out)]
    with (outdir / f"{phase}.py-spy.log").open("wb") as log:
        sampler = await asyncio.create_subprocess_exec(*cmd, stdout=log, stderr=subprocess.STDOUT)
    await asyncio.sleep(1.0)  # py-spy attaches
    try:
        yield
    finally:
        sampler.send_signal(signal.SIGINT)
        await sampler.wait()
        print(f"profile of the {phase} phase: {out}", file=sys.stderr)


@dataclass
class Figures:
    max: Result | None = None
    rate: Result | None = None
    rss_mb: float | None = None
    e2e: EndToEnd | None = None
    rate_handled: int | None = None  # salesbot, end of the fixed-rate phase: events handled
    rate_delivered: int | None = None  # ... replies delivered by the fake
    max_handled: int | None = None  # salesbot, end of the max phase: events handled
    sustained: list[Sustained] = field(default_factory=list)


PHASES = ("max", "e2e", "rate", "sustained")


async def bench(args: argparse.Namespace, tmp: Path) -> int:
    userids = wecom_userids(args.users)
    n_rate = int(args.rate * args.seconds)
    load_before = os.getloadavg()[0]
    print(
        f"phases {','.join(args.phases)}; max: {args.requests} callbacks closed loop ({args.bare_requests} for "
        f"bare) at concurrency {args.concurrency}; e2e: {args.e2e_requests} callbacks; fixed rate: "
        f"{args.rate:.0f} req/s for {args.seconds:.0f}s ({n_rate} callbacks); sustained: "
        f"{','.join(f'{r:.0f}' for r in args.sustained_rates)}/s for {args.sustained_seconds:.0f}s from "
        f"{args.sustained_users} users; {len(userids)} users, warm-up {args.warmup}; python "
        f"{sys.version.split()[0]}, {os.cpu_count()} cpu, load average {load_before:.2f}",
        file=sys.stderr,
    )
    bare_fig, bot_fig = Figures(), Figures()
    rss: list[float | None] = []

    # ---- bare-aiohttp: one process, both ack phases.
    if "max" in args.phases or "rate" in args.phases:
        port = free_port()
        bare = spawn("bare-aiohttp", [str(SCRIPT), "--serve-baseline", str(port)], port, tmp / "bare.log")
        try:
            await wait_healthy(bare)
            b = Builder(port, userids)
            await closed_loop("warm-up", port, b.build(args.warmup), min(args.concurrency, args.warmup))
            if "max" in args.phases:
                bare_fig.max = await closed_loop("bare-aiohttp", port, b.build(args.bare_requests), args.concurrency)
                print(f"bare-aiohttp: {bare_fig.max.rate:.0f} req/s closed loop", file=sys.stderr)
            if "rate" in args.phases:
                bare_fig.rate = await open_loop("bare-aiohttp", port, b.build(n_rate), args.rate)
                print(f"bare-aiohttp: p99 {bare_fig.rate.pct(99):.1f} ms at {args.rate:.0f} req/s", file=sys.stderr)
            bare_fig.rss_mb = rss_mb(bare)
        finally:
            bare.stop()

    template = await template_db(tmp, userids)

    async def warm(rig: BotRig, b: Builder) -> None:
        await closed_loop("warm-up", rig.bot.port, b.build(args.warmup), min(args.concurrency, args.warmup))
        await wait_delivered(http, rig, args.warmup, limit_s=60)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        # ---- salesbot 1: max throughput of the ack path (replies beyond 30 per user and minute are deferred).
        if "max" in args.phases:
            rig = await start_rig(tmp, "max", userids, template)
            try:
                b = Builder(rig.bot.port, userids)
                await warm(rig, b)
                reqs = b.build(args.requests)
                async with profiled(args.profile, rig.bot, "max"):
                    bot_fig.max = await closed_loop("salesbot", rig.bot.port, reqs, args.concurrency)
                done = (await db_state(DbReader(f"sqlite:///{rig.db}"))).inbound.get("done", 0)
                bot_fig.max_handled = done - args.warmup
                print(f"salesbot: {bot_fig.max.rate:.0f} req/s closed loop", file=sys.stderr)
                rss.append(rss_mb(rig.bot))
            finally:
                rig.stop()
        # ---- 2: end to end, both through the lean fake API, every reply awaited.
        if "e2e" in args.phases:
            bare_fig.e2e = await bare_end_to_end(args, tmp, userids, http)
            bot_fig.e2e = await bot_end_to_end(args, tmp, userids, template, http)
        # ---- salesbot 3: fixed rate, open loop.
        if "rate" in args.phases:
            rig = await start_rig(tmp, "rate", userids, template)
            try:
                b = Builder(rig.bot.port, userids)
                await warm(rig, b)
                reqs = b.build(n_rate)
                async with profiled(args.profile, rig.bot, "rate"):
                    bot_fig.rate = await open_loop("salesbot", rig.bot.port, reqs, args.rate)
                print(f"salesbot: p99 {bot_fig.rate.pct(99):.1f} ms at {args.rate:.0f} req/s", file=sys.stderr)
                bot_fig.rate_delivered = await delivered_count(http, rig.fake) - args.warmup
                done = (await db_state(DbReader(f"sqlite:///{rig.db}"))).inbound.get("done", 0)
                bot_fig.rate_handled = done - args.warmup
                rss.append(rss_mb(rig.bot))
            finally:
                rig.stop()
        # ---- 4: sustained load from few users, delivery lag per reply.
        if "sustained" in args.phases:
            for rate in args.sustained_rates:
                bot_fig.sustained.append(await sustained(args, tmp, template, http, rate))
    known = [x for x in rss if x is not None]
    bot_fig.rss_mb = max(known) if known else None
    return report(args, bare_fig, bot_fig, load_before)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(args: argparse.Namespace, bare: Figures, bot: Figures, load_before: float) -> int:
    def fmt(x: float | None, d: int = 0) -> str:
        return "-" if x is None else f"{x:.{d}f}"

    def ratio(a: float | None, b: float | None) -> str:
        return "-" if not a or b is None else f"{b / a:.2f}"

    c, r = args.concurrency, f"{args.rate:.0f}/s"

    def row(label: str, a: float | None, b: float | None, d: int = 0, target: str = "") -> tuple[str, ...]:
        return (label, fmt(a, d), fmt(b, d), ratio(a, b), target)

    rows = []
    if bare.max is not None and bot.max is not None:
        thr_ratio = bot.max.rate / bare.max.rate if bare.max.rate else 0.0
        thr = f">= {TARGET_RATIO}x: {verdict(thr_ratio >= TARGET_RATIO)}"
        rows += [
            row(f"max throughput req/s (C={c})", bare.max.rate, bot.max.rate, 0, thr),
            row(f"  p50 ms (C={c})", bare.max.pct(50), bot.max.pct(50), 1),
            row(f"  p99 ms (C={c})", bare.max.pct(99), bot.max.pct(99), 1),
        ]
    if bare.rate is not None and bot.rate is not None:
        p99_ok = bot.rate.pct(99) < TARGET_P99_MS and bot.rate.errors == 0
        rows += [
            row(f"p50 ms at {r}", bare.rate.pct(50), bot.rate.pct(50), 1),
            row(
                f"p99 ms at {r}", bare.rate.pct(99), bot.rate.pct(99), 1, f"< {TARGET_P99_MS:.0f} ms: {verdict(p99_ok)}"
            ),
            row(f"max ms at {r}", bare.rate.pct(100), bot.rate.pct(100), 1),
            (f"errors at {r}", str(bare.rate.errors), str(bot.rate.errors), "-", ""),
        ]
    if bare.e2e is not None and bot.e2e is not None:
        e2e_ok = bot.e2e.per_s >= TARGET_RATIO * bare.e2e.per_s
        rows.append(
            row("replies delivered/s (e2e)", bare.e2e.per_s, bot.e2e.per_s, 0, f">= {TARGET_RATIO}x: {verdict(e2e_ok)}")
        )
    if bare.rss_mb is not None or bot.rss_mb is not None:
        rows.append(row("server peak RSS MB", bare.rss_mb, bot.rss_mb))
    print()
    print(f"{'metric':<30}{'bare':>14}{'salesbot':>10}{'ratio':>7}  target")
    for label, a, b, q, t in rows:
        print(f"{label:<30}{a:>14}{b:>10}{q:>7}  {t}")
    if bot.sustained:
        print()
        print(
            f"sustained load: {args.sustained_users} users, open loop for {args.sustained_seconds:.0f}s, lean fake "
            "API, per-person budget raised; lag = scheduled send -> reply at the fake"
        )
        print(
            f"{'rate/s':>7}{'ack p99 ms':>12}{'handled by end':>16}{'lag p50 s':>11}{'lag p99 s':>11}{'lag max s':>11}"
        )
        for x in bot.sustained:
            print(
                f"{x.rate:>7.0f}{x.load.pct(99):>12.1f}{f'{x.handled_at_end}/{x.load.ok}':>16}"
                f"{x.lag(50):>11.2f}{x.lag(99):>11.2f}{x.lag(100):>11.2f}"
                + (f"  ({x.missing} replies missing)" if x.missing else "")
            )
    print()
    if bot.max is not None:
        print(
            f"salesbot max: {bot.max.ok}/{bot.max.requests} acknowledged in {bot.max.elapsed:.1f}s, "
            f"{bot.max_handled} of them handled by then"
        )
    for name, e in (("bare-pipeline", bare.e2e), ("salesbot", bot.e2e)):
        if e is not None:
            print(
                f"{name} e2e: {e.load.ok}/{e.load.requests} acknowledged in {e.load.elapsed:.1f}s "
                f"({e.load.rate:.0f} req/s); every reply delivered by the fake {e.seconds:.1f}s after the first request"
            )
    if bot.rate is not None:
        print(
            f"salesbot {r}: {bot.rate.ok}/{bot.rate.requests} acknowledged in {bot.rate.elapsed:.1f}s "
            f"(generator at worst {bot.rate.max_lag_ms:.1f} ms late); by the end {bot.rate_handled} handled and "
            f"{bot.rate_delivered} replies delivered (at most {PER_USER_PER_MINUTE} per user and minute)"
        )
    if bare.max is not None and bare.rate is not None:
        print(
            f"bare-aiohttp: {bare.max.ok}/{bare.max.requests} in {bare.max.elapsed:.1f}s closed loop; "
            f"{bare.rate.ok}/{bare.rate.requests} at {r} (generator at worst {bare.rate.max_lag_ms:.1f} ms late)"
        )
    if bare.max is not None and bot.max is not None:
        print(
            f"load generator CPU: {100 * bare.max.client_cpu / bare.max.elapsed:.0f}% of a core during bare max, "
            f"{100 * bot.max.client_cpu / bot.max.elapsed:.0f}% during salesbot max"
        )
    print(f"1-min load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    results = [bare.max, bare.rate, bot.max, bot.rate]
    results += [e.load for e in (bare.e2e, bot.e2e) if e is not None] + [x.load for x in bot.sustained]
    for res in results:
        if res is not None and res.phase == "rate" and res.max_lag_ms > LATE_MS:
            print(
                f"warning: the generator was {res.max_lag_ms:.0f} ms late during {res.name} {res.phase}: the machine "
                "stalled (other work?); do not quote this run"
            )
    for res in results:
        if res is not None and res.errors:
            print(f"{res.name} {res.phase} first error: {res.first_error}")
    failed = sum(x.errors for x in results if x is not None) + sum(x.missing for x in bot.sustained)
    return 1 if failed else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=4000, help="closed-loop callbacks per server (default 4000)")
    ap.add_argument(
        "--bare-requests", type=int, default=10000, help="closed-loop callbacks for the bare handler (default 10000)"
    )
    ap.add_argument("--concurrency", type=int, default=32, help="closed-loop connections (default 32)")
    ap.add_argument("--rate", type=float, default=200.0, help="open-loop requests per second (default 200)")
    ap.add_argument("--seconds", type=float, default=10.0, help="open-loop duration (default 10)")
    ap.add_argument("--e2e-requests", type=int, default=2000, help="end-to-end callbacks per server (default 2000)")
    ap.add_argument(
        "--sustained-rates",
        type=lambda v: [float(x) for x in v.split(",")],
        default=[50.0, 65.0],
        help="sustained-load rates, comma-separated (default 50,65)",
    )
    ap.add_argument("--sustained-seconds", type=float, default=30.0, help="sustained-load duration (default 30)")
    ap.add_argument("--sustained-users", type=int, default=16, help="sustained-load users (default 16)")
    ap.add_argument("--users", type=int, default=50, help="WeCom users u01… (default 50)")
    ap.add_argument("--warmup", type=int, default=50, help="unmeasured callbacks first, per process (default 50)")
    ap.add_argument(
        "--phases",
        type=lambda v: [x for x in v.split(",") if x],
        default=list(PHASES),
        help=f"phases to run, comma-separated (default {','.join(PHASES)})",
    )
    ap.add_argument("--serve-baseline", type=int, metavar="PORT", help=argparse.SUPPRESS)
    ap.add_argument("--serve-baseline-e2e", type=int, metavar="PORT", help=argparse.SUPPRESS)
    ap.add_argument("--serve-fake", type=int, metavar="PORT", help=argparse.SUPPRESS)
    ap.add_argument("--serve-bot", type=Path, metavar="CONFIG", help=argparse.SUPPRESS)
    ap.add_argument("--fake-port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--profile", type=Path, metavar="DIR", help="sample the bot with py-spy into DIR (raw stacks)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (db, server logs)")
    args = ap.parse_args()
    if args.serve_baseline:
        serve_baseline(args.serve_baseline)
        return
    if args.serve_baseline_e2e:
        serve_baseline_e2e(args.serve_baseline_e2e, args.fake_port, args.db)
        return
    if args.serve_fake:
        serve_fake(args.serve_fake)
        return
    if args.serve_bot:
        serve_bot(args.serve_bot)
        return
    counts = (args.requests, args.bare_requests, args.concurrency, args.warmup, args.users, args.e2e_requests)
    if min(counts) < 1 or args.rate <= 0 or args.seconds <= 0 or args.sustained_seconds <= 0:
        ap.error("all counts must be positive")
    if unknown := set(args.phases) - set(PHASES):
        ap.error(f"unknown phases {sorted(unknown)}; known: {', '.join(PHASES)}")
    if not 1 <= args.sustained_users <= args.users:
        ap.error("--sustained-users must be between 1 and --users")
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    if args.keep:
        tmp = Path(tempfile.mkdtemp(prefix="salesbot-bench-wecom-"))
        print(f"keeping {tmp}", file=sys.stderr)
        sys.exit(asyncio.run(bench(args, tmp)))
    with tempfile.TemporaryDirectory(prefix="salesbot-bench-wecom-") as d:
        code = asyncio.run(bench(args, Path(d)))
    sys.exit(code)


if __name__ == "__main__":
    main()
