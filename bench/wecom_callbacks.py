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
from procs import HOST, Proc, cli, free_port, spawn, wait_healthy  # noqa: E402

from tests.fakes.wecom_callbacks import WeComSigner, cdata  # noqa: E402

COMMAND = "帮助"
PER_USER_PER_MINUTE = 30  # WeCom's limit, and the cap of [wecom] per_user_per_minute
TARGET_RATIO = 0.5
TARGET_P99_MS = 50.0
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
        now = int(time.time())
        out = []
        for _ in range(n):
            inner = self.signer.text(next(self.users), COMMAND, next(self.msg_ids), now)
            query, body = self.signer.envelope(inner, now, str(secrets.randbelow(10**10)))
            target = f"{CALLBACK_PATH}?msg_signature={query['msg_signature']}&timestamp={now}&nonce={query['nonce']}"
            head = (
                f"POST {target} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\nContent-Type: text/xml\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            out.append(head.encode() + body)
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
    started: float = 0.0  # perf_counter of the first request
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
            t0 = time.perf_counter()
            try:
                status = await conn.request(raw)
            except (OSError, asyncio.IncompleteReadError, RuntimeError) as exc:
                result.fail(repr(exc))
                return
            result.latencies.append(time.perf_counter() - t0)
            if status != 200:
                result.fail(f"HTTP {status}")

    cpu0 = time.process_time()
    result.started = time.perf_counter()
    try:
        await asyncio.gather(*(worker(c) for c in conns))
    finally:
        result.elapsed = time.perf_counter() - result.started
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
        result.latencies.append(time.perf_counter() - due)
        idle.append(conn)
        if status != 200:
            result.fail(f"HTTP {status}")

    cpu0 = time.process_time()
    start = result.started = time.perf_counter()
    for i, raw in enumerate(reqs):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        result.max_lag_ms = max(result.max_lag_ms, (time.perf_counter() - due) * 1000)
        tasks.append(asyncio.create_task(one(raw, due)))
    await asyncio.gather(*tasks)
    result.elapsed = time.perf_counter() - start
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
    write_config(config, db=db, port=free_port(), fake_port=free_port())
    org = d / "org.csv"
    write_org(org, userids)
    await asyncio.to_thread(cli, config, "db", "upgrade")
    await asyncio.to_thread(cli, config, "import", "org", str(org))
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db


async def start_rig(tmp: Path, tag: str, userids: list[str], template: Path) -> BotRig:
    """A fresh fake WeCom and a fresh bot on a copy of the template database."""
    d = tmp / tag
    d.mkdir()
    fake = start_fake(d, userids)
    port = free_port()
    config = d / "bench.toml"
    db = d / "bench.db"
    shutil.copy(template, db)
    write_config(config, db=db, port=port, fake_port=fake.port)
    bot = start_bot(config, port, d / "salesbot.log")
    await asyncio.gather(wait_healthy(fake, path="/_fake/stats"), wait_healthy(bot))
    return BotRig(fake, bot, db)


async def delivered_count(http: aiohttp.ClientSession, fake: Proc) -> int:
    return int((await fake_stats(http, fake))["delivered_messages"])


async def wait_delivered(http: aiohttp.ClientSession, rig: BotRig, total: int, limit_s: float) -> float:
    """perf_counter when the fake has delivered ``total`` messages (polled every 20 ms)."""
    deadline = time.monotonic() + limit_s
    while True:
        n = await delivered_count(http, rig.fake)
        if n >= total:
            return time.perf_counter()
        if time.monotonic() > deadline:
            state = await asyncio.to_thread(db_state, rig.db)
            raise RuntimeError(f"only {n}/{total} replies delivered after {limit_s:.0f}s; db {state}")
        await asyncio.sleep(0.02)


def rss_mb(proc: Proc) -> float | None:
    return proc.peak_rss_mb()


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
    max: Result
    rate: Result
    rss_mb: float | None = None
    e2e: Result | None = None  # salesbot: the closed-loop run whose replies are awaited
    e2e_s: float | None = None  # first request → every reply delivered by the fake
    rate_handled: int | None = None  # salesbot, end of the fixed-rate phase: events handled
    rate_delivered: int | None = None  # ... replies delivered by the fake
    max_handled: int | None = None  # salesbot, end of the max phase: events handled

    @property
    def e2e_per_s(self) -> float | None:
        return self.e2e.ok / self.e2e_s if self.e2e is not None and self.e2e_s else None


async def bench(args: argparse.Namespace, tmp: Path) -> int:
    userids = wecom_userids(args.users)
    e2e_n = (PER_USER_PER_MINUTE - 1) * len(userids) - args.warmup
    n_rate = int(args.rate * args.seconds)
    load_before = os.getloadavg()[0]
    print(
        f"max: {args.requests} callbacks closed loop ({args.bare_requests} for bare) at concurrency "
        f"{args.concurrency}; e2e: {e2e_n} callbacks; "
        f"fixed rate: {args.rate:.0f} req/s for {args.seconds:.0f}s ({n_rate} callbacks); {len(userids)} users, "
        f"warm-up {args.warmup}; python {sys.version.split()[0]}, {os.cpu_count()} cpu, "
        f"load average {load_before:.2f}",
        file=sys.stderr,
    )

    # ---- bare-aiohttp: one process, both phases.
    port = free_port()
    bare = spawn("bare-aiohttp", [str(SCRIPT), "--serve-baseline", str(port)], port, tmp / "bare.log")
    try:
        await wait_healthy(bare)
        b = Builder(port, userids)
        await closed_loop("warm-up", port, b.build(args.warmup), min(args.concurrency, args.warmup))
        bare_max = await closed_loop("bare-aiohttp", port, b.build(args.bare_requests), args.concurrency)
        print(f"bare-aiohttp: {bare_max.rate:.0f} req/s closed loop", file=sys.stderr)
        bare_rate = await open_loop("bare-aiohttp", port, b.build(n_rate), args.rate)
        print(f"bare-aiohttp: p99 {bare_rate.pct(99):.1f} ms at {args.rate:.0f} req/s", file=sys.stderr)
        bare_fig = Figures(bare_max, bare_rate, rss_mb(bare))
    finally:
        bare.stop()

    template = await template_db(tmp, userids)
    rss: list[float | None] = []

    async def warm(rig: BotRig, b: Builder) -> None:
        await closed_loop("warm-up", rig.bot.port, b.build(args.warmup), min(args.concurrency, args.warmup))
        await wait_delivered(http, rig, args.warmup, limit_s=60)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        # ---- salesbot 1: max throughput of the ack path (replies beyond 30 per user and minute are deferred).
        rig = await start_rig(tmp, "max", userids, template)
        try:
            b = Builder(rig.bot.port, userids)
            await warm(rig, b)
            reqs = b.build(args.requests)
            async with profiled(args.profile, rig.bot, "max"):
                bot_max = await closed_loop("salesbot", rig.bot.port, reqs, args.concurrency)
            max_handled = (await asyncio.to_thread(db_state, rig.db)).inbound.get("done", 0) - args.warmup
            print(f"salesbot: {bot_max.rate:.0f} req/s closed loop", file=sys.stderr)
            rss.append(rss_mb(rig.bot))
        finally:
            rig.stop()
        # ---- salesbot 2: end to end, within the per-user budget: every reply must reach the fake.
        rig = await start_rig(tmp, "e2e", userids, template)
        try:
            b = Builder(rig.bot.port, userids)
            await warm(rig, b)
            bot_e2e = await closed_loop("salesbot", rig.bot.port, b.build(e2e_n), args.concurrency, phase="e2e")
            t_done = await wait_delivered(http, rig, args.warmup + bot_e2e.ok, limit_s=120)
            e2e_s = t_done - bot_e2e.started
            print(f"salesbot: {bot_e2e.ok / e2e_s:.0f} replies/s delivered end to end", file=sys.stderr)
            rss.append(rss_mb(rig.bot))
        finally:
            rig.stop()
        # ---- salesbot 3: fixed rate, open loop.
        rig = await start_rig(tmp, "rate", userids, template)
        try:
            b = Builder(rig.bot.port, userids)
            await warm(rig, b)
            reqs = b.build(n_rate)
            async with profiled(args.profile, rig.bot, "rate"):
                bot_rate = await open_loop("salesbot", rig.bot.port, reqs, args.rate)
            print(f"salesbot: p99 {bot_rate.pct(99):.1f} ms at {args.rate:.0f} req/s", file=sys.stderr)
            rate_delivered = await delivered_count(http, rig.fake) - args.warmup
            rate_handled = (await asyncio.to_thread(db_state, rig.db)).inbound.get("done", 0) - args.warmup
            rss.append(rss_mb(rig.bot))
        finally:
            rig.stop()
    known = [x for x in rss if x is not None]
    bot_fig = Figures(
        bot_max,
        bot_rate,
        max(known) if known else None,
        e2e=bot_e2e,
        e2e_s=e2e_s,
        rate_handled=rate_handled,
        rate_delivered=rate_delivered,
        max_handled=max_handled,
    )
    return report(args, bare_fig, bot_fig, load_before)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(args: argparse.Namespace, bare: Figures, bot: Figures, load_before: float) -> int:
    def fmt(x: float | None, d: int = 0) -> str:
        return "-" if x is None else f"{x:.{d}f}"

    def ratio(a: float | None, b: float | None) -> str:
        return "-" if not a or b is None else f"{b / a:.2f}"

    thr_ratio = bot.max.rate / bare.max.rate if bare.max.rate else 0.0
    thr_ok = thr_ratio >= TARGET_RATIO
    p99_ok = bot.rate.pct(99) < TARGET_P99_MS and bot.rate.errors == 0
    c, r = args.concurrency, f"{args.rate:.0f}/s"

    def row(label: str, a: float | None, b: float | None, d: int = 0, target: str = "") -> tuple[str, ...]:
        return (label, fmt(a, d), fmt(b, d), ratio(a, b), target)

    rows = [
        row(f"max throughput req/s (C={c})", bare.max.rate, bot.max.rate, 0, f">= {TARGET_RATIO}x: {verdict(thr_ok)}"),
        row(f"  p50 ms (C={c})", bare.max.pct(50), bot.max.pct(50), 1),
        row(f"  p99 ms (C={c})", bare.max.pct(99), bot.max.pct(99), 1),
        row(f"p50 ms at {r}", bare.rate.pct(50), bot.rate.pct(50), 1),
        row(f"p99 ms at {r}", bare.rate.pct(99), bot.rate.pct(99), 1, f"< {TARGET_P99_MS:.0f} ms: {verdict(p99_ok)}"),
        row(f"max ms at {r}", bare.rate.pct(100), bot.rate.pct(100), 1),
        (f"errors at {r}", str(bare.rate.errors), str(bot.rate.errors), "-", ""),
        ("replies delivered/s (e2e)", "-", fmt(bot.e2e_per_s), "-", ""),
        row("server peak RSS MB", bare.rss_mb, bot.rss_mb),
    ]
    print()
    print(f"{'metric':<30}{'bare-aiohttp':>14}{'salesbot':>10}{'ratio':>7}  target")
    for label, a, b, q, t in rows:
        print(f"{label:<30}{a:>14}{b:>10}{q:>7}  {t}")
    print()
    print(
        f"salesbot max: {bot.max.ok}/{bot.max.requests} acknowledged in {bot.max.elapsed:.1f}s, "
        f"{bot.max_handled} of them handled by then"
    )
    if bot.e2e is not None:
        print(
            f"salesbot e2e: {bot.e2e.ok}/{bot.e2e.requests} acknowledged in {bot.e2e.elapsed:.1f}s "
            f"({bot.e2e.rate:.0f} req/s); every reply delivered by the fake {bot.e2e_s:.1f}s after the first request"
        )
    print(
        f"salesbot {r}: {bot.rate.ok}/{bot.rate.requests} acknowledged in {bot.rate.elapsed:.1f}s "
        f"(generator at worst {bot.rate.max_lag_ms:.1f} ms late); by the end {bot.rate_handled} handled and "
        f"{bot.rate_delivered} replies delivered (at most {PER_USER_PER_MINUTE} per user and minute)"
    )
    print(
        f"bare-aiohttp: {bare.max.ok}/{bare.max.requests} in {bare.max.elapsed:.1f}s closed loop; "
        f"{bare.rate.ok}/{bare.rate.requests} at {r} (generator at worst {bare.rate.max_lag_ms:.1f} ms late)"
    )
    print(
        f"load generator CPU: {100 * bare.max.client_cpu / bare.max.elapsed:.0f}% of a core during bare max, "
        f"{100 * bot.max.client_cpu / bot.max.elapsed:.0f}% during salesbot max; "
        f"1-min load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
    )
    for res in (bare.rate, bot.rate):
        if res.max_lag_ms > LATE_MS:
            print(
                f"warning: the generator was {res.max_lag_ms:.0f} ms late during {res.name} at {r}: the machine "
                "stalled (other work?); do not quote this run"
            )
    for res in (bare.max, bare.rate, bot.max, bot.rate, bot.e2e):
        if res is not None and res.errors:
            print(f"{res.name} {res.phase} first error: {res.first_error}")
    failed = sum(x.errors for x in (bare.max, bare.rate, bot.max, bot.rate, bot.e2e) if x is not None)
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
    ap.add_argument("--users", type=int, default=50, help="WeCom users u01… (default 50)")
    ap.add_argument("--warmup", type=int, default=50, help="unmeasured callbacks first, per process (default 50)")
    ap.add_argument("--serve-baseline", type=int, metavar="PORT", help=argparse.SUPPRESS)
    ap.add_argument("--profile", type=Path, metavar="DIR", help="sample the bot with py-spy into DIR (raw stacks)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (db, server logs)")
    args = ap.parse_args()
    if args.serve_baseline:
        serve_baseline(args.serve_baseline)
        return
    counts = (args.requests, args.bare_requests, args.concurrency, args.warmup, args.users)
    if min(counts) < 1 or args.rate <= 0 or args.seconds <= 0:
        ap.error("all counts must be positive")
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
