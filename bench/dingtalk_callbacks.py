"""Benchmark: DingTalk robot callbacks (ack path, replies at a fake DingTalk API) next to bare baselines.

Run from the repository root (about 40 s):

    python bench/dingtalk_callbacks.py [--phases max,e2e,rate] [--requests 10000] [--bare-requests 25000]
                                       [--e2e-requests N] [--concurrency 32] [--rate 200] [--seconds 10]
                                       [--users 50] [--warmup 50] [--profile DIR] [--keep]

Servers run as subprocesses on 127.0.0.1; the load generator is this process (the raw HTTP/1.1 keep-alive client,
closed and open loops of ``bench/wecom_callbacks.py``, imported from there):

* ``bare-aiohttp`` (``python bench/dingtalk_callbacks.py --serve-baseline PORT``): POST /dingtalk/callback checks
  the ``timestamp`` and ``sign`` headers and the replay window, reads the body (size limit), verifies the signature
  (the bot's ``bot.channels.dingtalk.sign``), parses the JSON (the bot's ``load_json``) and answers
  ``{"msgtype":"empty"}``. No database, no directory, no pipeline.
* ``bare-pipeline`` (``--serve-baseline-e2e PORT``, the e2e phase's baseline): the same checks, one SQLite INSERT
  (msgId as dedup key) and COMMIT, the answer, then one ``batchSend`` of a text to the sender at the fake DingTalk
  (access token fetched once at start). No directory, router, dialog state, outbox, throttle or call counting.
* ``salesbot`` (``python -m bot.cli serve``) with ``[dingtalk]`` enabled (HTTP mode) on a SQLite file with 50 reps
  imported with DingTalk staff ids (``db upgrade`` + ``import org`` once, the file copied for every bot process),
  both API base URLs (``api_base_url``, ``oapi_base_url``) pointed at the fake DingTalk (``python -m
  tests.fakes.dingtalk``, on its own: it validates every request against the documented shapes, records every robot
  message and serves its counters at ``GET /_fake/stats``). The ack path: headers, replay window, body, signature,
  JSON, robotCode, parse, directory lookup (cached), persist the event (group commit), answer 200
  ``{"msgtype":"empty"}``; then the pipeline handles ``帮助`` and the outbox sends the reply (``batchSend``, one
  ``sampleText``) to the fake. ``monthly_call_quota`` is set far above what a run spends.

Phases (the bot gets a fresh process, database copy and fake for each, so that no phase inherits another's backlog
or per-person budget; the bare handler runs both ack phases in one process):

1. max throughput: closed loop, C keep-alive connections, N callbacks → acknowledged req/s, p50/p99 latency, and
   the server's CPU time per callback (``/proc``; less disturbed by a busy machine than a rate);
2. end to end (bare-pipeline, then salesbot, each with its own fake): closed loop of ``--e2e-requests`` callbacks →
   replies delivered per second at the fake, from the first request until the fake has recorded every reply (its
   counters polled over HTTP every 20 ms), the server's CPU time per reply and the DingTalk API calls the fake
   counted per reply (batching; the token's call is not counted, as DingTalk does not count it);
3. fixed rate: R req/s open loop for S seconds, latency counted from each request's scheduled send time (a stalled
   server cannot hide behind a stalled generator) → p50/p99/max and errors.

The bot allows each person ``PER_USER_PER_MINUTE`` (20) DingTalk messages a minute (``bot/channels/dingtalk/
channel.py``) and defers the rest by up to a minute. Phase 2 stays within it so that every reply can be awaited: by
default as many callbacks as fit after the preflight's and the warm-up's replies (18 per user for 50 users and a
warm-up of 50: 900); a larger ``--e2e-requests`` is refused. Phases 1 and 3 cross it (200 and 40 callbacks per
user): the replies beyond it are deferred (they stay ``pending`` in the outbox); the ack path they measure is the
same. The script reports the outbox rows by channel and status, what the fake received at the end of each phase, and
checks that the bot is still up and healthy.

Before timing, each server must refuse a callback with a forged ``sign`` (403) and acknowledge a good one; then every
process gets ``--warmup`` callbacks that are not counted (for the bot: until they are handled and their replies are
at the fake, one message per reply, checked).
Callbacks are the text ``帮助`` from 50 users (staff ids ``dt-u01``…) round robin in single chats, with unique
msgIds, built and signed (``timestamp`` in ms, ``sign``) by ``tests.fakes.dingtalk_callbacks.DingTalkSigner`` and
laid out as raw HTTP/1.1 requests before timing. They are signed a few seconds before they are sent: well inside
the replay window (1 h by default).
Exit status 1 if any request failed, the fake refused a request as malformed, or the bot was not healthy after a
phase.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parents[1]
# The repository root for bot and tests; bench/ for wecom_callbacks.py and procs.py (sys.path[0] only when this file
# is run as a script, not when tests/test_bench_dingtalk.py loads it by path).
for _path in (ROOT, SCRIPT.parent):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402
from procs import HOST, DbReader, Proc, cli, free_port, spawn, wait_healthy  # noqa: E402
from wecom_callbacks import Conn, Result, closed_loop, open_loop, profiled, verdict  # noqa: E402

from tests.fakes.dingtalk_callbacks import DingTalkSigner  # noqa: E402

CALLBACK_PATH = "/dingtalk/callback"
COMMAND = "帮助"
APP_KEY = "dingbenchappkey0001"
# The AppSecret signs every robot callback; the bot wants at least 32 bytes.
APP_SECRET = "bench-dingtalk-app-secret-0123456789abcdef"
ROBOT_CODE = "dingbenchrobot0001"
REPLAY_WINDOW_S = 3600  # [dingtalk] replay_window_seconds, the default
MAX_BODY = 64 * 1024  # [server] max_body_bytes, the default
# The same targets as the WeCom callbacks (docs/benchmarks.md); issue 13 sets none of its own.
TARGET_RATIO = 0.5
TARGET_P99_MS = 50.0
LATE_MS = 20.0  # an open-loop request sent later than this after its time means the machine stalled
# [dingtalk] monthly_call_quota: far above what a run spends, so that the 80 % warning path stays out of the figures.
MONTHLY_CALL_QUOTA = 10_000_000
PHASES = ("max", "e2e", "rate")
TOKEN_PATH = "/v1.0/oauth2/accessToken"
BATCH_SEND = "/v1.0/robot/oToMessages/batchSend"


# ---- the bare baseline server ---------------------------------------------------------------------------------


def baseline_app() -> web.Application:
    """aiohttp + the bot's DingTalk signature functions only: check the headers and the replay window, read the
    body, verify the sign, parse the JSON, answer ``{"msgtype":"empty"}``."""
    from bot.channels.dingtalk import sign
    from bot.channels.dingtalk.parse import load_json
    from bot.channels.dingtalk.sign import CallbackRejected

    empty = {"msgtype": "empty"}

    async def receive(request: web.Request) -> web.Response:
        try:
            timestamp = sign.header(request.headers.get(sign.ROBOT_TIMESTAMP), sign.ROBOT_TIMESTAMP)
            signature = sign.header(request.headers.get(sign.ROBOT_SIGN), sign.ROBOT_SIGN)
            sign.check_timestamp(timestamp, time.time(), REPLAY_WINDOW_S)
            if request.content_length is not None and request.content_length > MAX_BODY:
                raise CallbackRejected(413, "body too large")
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:
                raise CallbackRejected(413, "body too large") from None
            sign.check_robot(timestamp, signature, APP_SECRET)
            load_json(body)
        except CallbackRejected as exc:
            return web.Response(status=exc.status, text=exc.reason)
        return web.json_response(empty)

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post(CALLBACK_PATH, receive)
    app.router.add_get("/healthz", healthz)
    return app


def serve_baseline(port: int) -> None:
    web.run_app(baseline_app(), host=HOST, port=port, print=None, access_log=None)


def baseline_e2e_app(fake_base: str, db: Path) -> web.Application:
    """The bare end-to-end pipeline: the baseline's checks, one SQLite INSERT (msgId dedup key) and COMMIT, answer
    ``{"msgtype":"empty"}``, then one batchSend of a text to the sender at the fake DingTalk (the access token
    fetched once at start). No directory, router, dialog state, outbox, throttle or call counting."""
    from bot.channels.dingtalk import sign
    from bot.channels.dingtalk.parse import load_json
    from bot.channels.dingtalk.sign import CallbackRejected

    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, dedup_key TEXT UNIQUE, sender TEXT, payload TEXT,"
        " received_at REAL)"
    )
    http: list[aiohttp.ClientSession] = []
    headers: dict[str, str] = {}
    replies: set[asyncio.Task[None]] = set()
    empty = {"msgtype": "empty"}
    param = json.dumps({"content": "收到"}, ensure_ascii=False)

    async def reply(sender: str) -> None:
        body = {"robotCode": ROBOT_CODE, "userIds": [sender], "msgKey": "sampleText", "msgParam": param}
        async with http[0].post(f"{fake_base}{BATCH_SEND}", json=body, headers=headers) as r:
            await r.read()

    async def receive(request: web.Request) -> web.Response:
        try:
            timestamp = sign.header(request.headers.get(sign.ROBOT_TIMESTAMP), sign.ROBOT_TIMESTAMP)
            signature = sign.header(request.headers.get(sign.ROBOT_SIGN), sign.ROBOT_SIGN)
            sign.check_timestamp(timestamp, time.time(), REPLAY_WINDOW_S)
            body = await request.read()
            sign.check_robot(timestamp, signature, APP_SECRET)
            doc = load_json(body)
        except CallbackRejected as exc:
            return web.Response(status=exc.status, text=exc.reason)
        sender = str(doc.get("senderStaffId"))
        conn.execute("BEGIN IMMEDIATE")
        cur = conn.execute(
            "INSERT INTO events (dedup_key, sender, payload, received_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (str(doc.get("msgId")), sender, body.decode(), time.time()),
        )
        conn.execute("COMMIT")
        if cur.rowcount:
            task = asyncio.create_task(reply(sender))
            replies.add(task)
            task.add_done_callback(replies.discard)
        return web.json_response(empty)

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def session(_app: web.Application) -> AsyncIterator[None]:
        http.append(aiohttp.ClientSession())
        async with http[0].post(f"{fake_base}{TOKEN_PATH}", json={"appKey": APP_KEY, "appSecret": APP_SECRET}) as r:
            r.raise_for_status()
            headers["x-acs-dingtalk-access-token"] = str((await r.json())["accessToken"])
        yield
        await asyncio.gather(*replies, return_exceptions=True)  # the replies still on their way
        await http[0].close()

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post(CALLBACK_PATH, receive)
    app.router.add_get("/healthz", healthz)
    app.cleanup_ctx.append(session)
    return app


def serve_baseline_e2e(port: int, fake_port: int, db: Path) -> None:
    app = baseline_e2e_app(f"http://{HOST}:{fake_port}", db)
    web.run_app(app, host=HOST, port=port, print=None, access_log=None)


# ---- the deployment under test --------------------------------------------------------------------------------


def staff_ids(users: int) -> list[str]:
    width = max(2, len(str(users)))
    return [f"dt-u{i:0{width}d}" for i in range(1, users + 1)]


def write_org(path: Path, staff: list[str]) -> None:
    """The org directory: one rep per DingTalk user (directory id ``rep-<staff id>``, column ``dingtalk_staff_id``)."""
    lines = ["user_id,name,roles,dingtalk_staff_id"]
    lines += [f"rep-{s},代表{s[4:]},rep,{s}" for s in staff]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_config(path: Path, *, db_url: str, port: int, fake_port: int) -> None:
    """DingTalk in HTTP mode, both API hosts (api. and oapi.) pointed at the fake DingTalk on ``fake_port``."""
    path.write_text(
        f"""[server]
host = "{HOST}"
port = {port}

[database]
url = "{db_url}"

[dingtalk]
enabled = true
app_key = "{APP_KEY}"
app_secret = "{APP_SECRET}"
robot_code = "{ROBOT_CODE}"
api_base_url = "http://{HOST}:{fake_port}"
oapi_base_url = "http://{HOST}:{fake_port}"
replay_window_seconds = {REPLAY_WINDOW_S}
monthly_call_quota = {MONTHLY_CALL_QUOTA}

[logging]
level = "WARNING"
""",
        encoding="utf-8",
    )


async def template_db(tmp: Path, staff: list[str]) -> Path:
    """A migrated SQLite file with the reps imported (``db upgrade`` + ``import org``), copied for every bot."""
    d = tmp / "template"
    d.mkdir()
    db = d / "bench.db"
    config = d / "bench.toml"
    write_config(config, db_url=f"sqlite+aiosqlite:///{db}", port=free_port(), fake_port=free_port())
    org = d / "org.csv"
    write_org(org, staff)
    await asyncio.to_thread(cli, config, "db", "upgrade")
    await asyncio.to_thread(cli, config, "import", "org", str(org))
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        n = conn.execute("SELECT count(*) FROM user_identities WHERE channel = 'dingtalk'").fetchone()[0]
    if n != len(staff):
        raise RuntimeError(f"import org gave {n} DingTalk identities, expected {len(staff)}")
    return db


def start_fake(d: Path) -> Proc:
    """The fake DingTalk API on its own (``python -m tests.fakes.dingtalk``): it validates every request against the
    documented shapes and records every robot message; ``GET /_fake/stats`` exposes its counters."""
    port = free_port()
    args = ["-m", "tests.fakes.dingtalk", "--port", str(port), "--app-key", APP_KEY, "--app-secret", APP_SECRET]
    args += ["--robot-code", ROBOT_CODE]
    return spawn("fake-dingtalk", args, port, d / "fake_dingtalk.log")


@dataclass
class FakeStats:
    """The fake DingTalk's counters (``GET /_fake/stats``)."""

    calls: dict[str, int]  # endpoint → requests, the token's included
    api_calls: int  # what DingTalk counts against the monthly quota (all but the token's)
    messages: int  # robot messages recorded: one per recipient and message
    violations: list[str]

    def calls_text(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(self.calls.items())) or "none"


async def fake_stats(http: aiohttp.ClientSession, base: str) -> FakeStats:
    """The counters of the fake DingTalk at ``base`` (``http://host:port``)."""
    async with http.get(f"{base}/_fake/stats") as r:
        r.raise_for_status()
        data: dict[str, Any] = await r.json()
    calls = {str(k): int(v) for k, v in data["calls"].items()}
    return FakeStats(calls, int(data["api_calls"]), int(data["messages"]), [str(v) for v in data["violations"]])


async def wait_messages(http: aiohttp.ClientSession, fake: Proc, total: int, limit_s: float) -> float:
    """time.monotonic() when the fake has recorded ``total`` robot messages (polled every 20 ms); RuntimeError after
    ``limit_s``."""
    deadline = time.monotonic() + limit_s
    while (n := (await fake_stats(http, fake.base)).messages) < total:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {n}/{total} messages at the fake DingTalk after {limit_s:.0f}s")
        await asyncio.sleep(0.02)
    return time.monotonic()


@dataclass
class BotRig:
    fake: Proc
    bot: Proc
    db: Path

    @property
    def reader(self) -> DbReader:
        return DbReader(f"sqlite:///{self.db}")

    def stop(self) -> None:
        # The measurement is over and a backlog may be left: no graceful shutdown needed.
        self.bot.kill()
        self.fake.stop()


async def start_rig(tmp: Path, tag: str, template: Path) -> BotRig:
    """A fresh fake DingTalk and a fresh bot on a copy of the template database."""
    d = tmp / tag
    d.mkdir()
    fake = start_fake(d)
    port = free_port()
    config, db = d / "bench.toml", d / "bench.db"
    shutil.copy(template, db)
    write_config(config, db_url=f"sqlite+aiosqlite:///{db}", port=port, fake_port=fake.port)
    bot = spawn("salesbot", ["-m", "bot.cli", "serve", "--config", str(config)], port, d / "salesbot.log")
    try:
        await asyncio.gather(wait_healthy(fake, path="/_fake/stats"), wait_healthy(bot))
    except BaseException:
        bot.kill()
        fake.stop()
        raise
    return BotRig(fake, bot, db)


@dataclass
class BotState:
    """What the bot's database holds after a phase, and whether the bot still answers /healthz."""

    inbound: dict[str, int]
    outbox: dict[tuple[str, str], int]  # (channel, status) → rows
    alive: bool
    health: str
    fake: FakeStats
    last_error: str = ""

    @property
    def handled(self) -> int:
        return self.inbound.get("done", 0)

    def outbox_text(self) -> str:
        return ", ".join(f"{ch} {st} {n}" for (ch, st), n in sorted(self.outbox.items())) or "empty"


async def bot_state(rig: BotRig, http: aiohttp.ClientSession) -> BotState:
    db = rig.reader
    inbound = {str(k): int(v) for k, v in await db.rows("SELECT status, count(*) FROM inbound_events GROUP BY status")}
    outbox = {
        (str(c), str(s)): int(n)
        for c, s, n in await db.rows("SELECT channel, status, count(*) FROM outbox GROUP BY channel, status")
    }
    errors = await db.rows("SELECT last_error FROM outbox WHERE last_error IS NOT NULL ORDER BY id DESC LIMIT 1")
    alive, health = rig.bot.proc.poll() is None, "-"
    if alive:
        try:
            async with http.get(f"{rig.bot.base}/healthz") as r:
                body = await r.json()
                health = (
                    f"{r.status} {body.get('status')} (channels {body.get('channels')}, outbox {body.get('outbox')})"
                )
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            health = repr(exc)
    fake = await fake_stats(http, rig.fake.base)
    return BotState(inbound, outbox, alive, health, fake, str(errors[0][0]) if errors else "")


async def wait_handled(rig: BotRig, total: int, limit_s: float) -> None:
    """Until ``total`` inbound events are done (polled every 20 ms); RuntimeError after ``limit_s``."""
    deadline = time.monotonic() + limit_s
    db = rig.reader
    while True:
        rows = await db.rows("SELECT count(*) FROM inbound_events WHERE status = 'done'")
        if int(rows[0][0]) >= total:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {rows[0][0]}/{total} events handled after {limit_s:.0f}s:\n{rig.bot.tail()}")
        await asyncio.sleep(0.02)


async def wait_settled(rig: BotRig, limit_s: float) -> int:
    """Until the outbox has no row pending or being sent (polled every 20 ms): the rows sent, or RuntimeError after
    ``limit_s``."""
    deadline = time.monotonic() + limit_s
    db = rig.reader
    while True:
        rows = dict(await db.rows("SELECT status, count(*) FROM outbox GROUP BY status"))
        if not rows.get("pending") and not rows.get("sending"):
            return int(rows.get("sent", 0))
        if time.monotonic() > deadline:
            raise RuntimeError(f"outbox not settled after {limit_s:.0f}s: {rows}:\n{rig.bot.tail()}")
        await asyncio.sleep(0.02)


# ---- prebuilt requests ----------------------------------------------------------------------------------------


class Builder:
    """Signed robot callbacks as raw HTTP/1.1 requests: text ``帮助``, unique msgIds, users round robin."""

    def __init__(self, port: int, staff: list[str]) -> None:
        self.port = port
        self.staff = staff
        self.signer = DingTalkSigner(APP_SECRET, ROBOT_CODE)
        self.run = secrets.token_hex(4)
        self.sent = 0

    def build(self, n: int, now_ms: int | None = None) -> list[bytes]:
        """``n`` requests signed at ``now_ms`` (default: now)."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        out = []
        for _ in range(n):
            user = self.staff[self.sent % len(self.staff)]
            msg_id = f"msgBench{self.run}{self.sent:08d}=="
            self.sent += 1
            doc = self.signer.text(user, COMMAND, now_ms, msg_id=msg_id)
            headers, body = self.signer.signed(doc, now_ms)
            head = f"POST {CALLBACK_PATH} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            head += f"Content-Length: {len(body)}\r\n\r\n"
            out.append(head.encode() + body)
        return out


def forged(raw: bytes) -> bytes:
    """The request with its ``sign`` header altered (still well-formed base64 length, wrong value)."""
    return raw.replace(b"\r\nsign: ", b"\r\nsign: A", 1)


async def preflight(name: str, port: int, b: Builder) -> None:
    """Before timing: a forged sign must be refused with 403 and a good request acknowledged, so that neither
    server is measured with the check off."""
    conn = await Conn.open(port)
    try:
        good = b.build(1)[0]
        statuses = (await conn.request(forged(good)), await conn.request(good))
    finally:
        await conn.close()
    if statuses != (403, 200):
        raise RuntimeError(f"{name}: forged sign -> {statuses[0]}, signed -> {statuses[1]} (expected 403, 200)")


def cpu_per_request(before: float | None, after: float | None, result: Result) -> float | None:
    """Server CPU ms per acknowledged request between two readings (None off Linux)."""
    if before is None or after is None or not result.ok:
        return None
    return (after - before) * 1000 / result.ok


def machine_busy_s() -> float | None:
    """CPU time all processes of the machine have used since boot (``/proc/stat``: all but idle and iowait)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    """CPU time of this process and of its children that have exited and been waited for (all the servers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


# ---- the run --------------------------------------------------------------------------------------------------


def e2e_fit(users: int, warmup: int) -> int:
    """The most end-to-end callbacks whose replies fit in every user's per-person budget of the minute
    (``PER_USER_PER_MINUTE`` messages), after the preflight and the warm-up each sent their replies (round robin:
    no user has had more than ceil((1 + warmup) / users)); at one message per reply."""
    from bot.channels.dingtalk.channel import PER_USER_PER_MINUTE  # not at the top: the bare servers skip it

    before = -(-(1 + warmup) // users)
    return users * max(0, PER_USER_PER_MINUTE - before)


@dataclass
class EndToEnd:
    """A closed loop whose replies are awaited at the fake DingTalk."""

    load: Result
    seconds: float  # first request → every reply recorded by the fake
    calls: dict[str, int]  # the fake's requests during the phase, by endpoint (the token's included)
    api_calls: int  # ... those DingTalk counts against the quota
    messages: int  # robot messages the fake recorded during the phase
    cpu_ms: float | None  # server CPU time per callback, from the first request until every reply was recorded
    violations: list[str]

    @property
    def per_s(self) -> float:
        return self.load.ok / self.seconds if self.seconds else 0.0

    @property
    def calls_per_reply(self) -> float | None:
        return self.api_calls / self.load.ok if self.load.ok else None


def delta(after: FakeStats, before: FakeStats) -> dict[str, int]:
    return {k: v - before.calls.get(k, 0) for k, v in after.calls.items() if v - before.calls.get(k, 0)}


async def end_to_end(
    name: str, server: Proc, fake: Proc, b: Builder, args: argparse.Namespace, n: int, http: aiohttp.ClientSession
) -> EndToEnd:
    """Closed loop of ``n`` callbacks to ``server`` (warmed up, every earlier reply at the fake), then until the fake
    has recorded a message for each."""
    before = await fake_stats(http, fake.base)
    reqs = b.build(n)
    cpu0 = server.cpu_seconds()
    async with profiled(args.profile if name == "salesbot" else None, server, "e2e"):
        load = await closed_loop(name, server.port, reqs, args.concurrency, phase="e2e")
        done = await wait_messages(http, fake, before.messages + load.ok, limit_s=300)
    cpu1 = server.cpu_seconds()
    after = await fake_stats(http, fake.base)
    e2e = EndToEnd(
        load,
        done - load.started,
        delta(after, before),
        after.api_calls - before.api_calls,
        after.messages - before.messages,
        cpu_per_request(cpu0, cpu1, load),
        after.violations,
    )
    print(f"{name}: {e2e.per_s:.0f} replies/s delivered end to end", file=sys.stderr)
    return e2e


async def bare_end_to_end(
    args: argparse.Namespace, tmp: Path, staff: list[str], n: int, http: aiohttp.ClientSession
) -> EndToEnd:
    """The bare pipeline (``--serve-baseline-e2e``) against its own fake DingTalk."""
    d = tmp / "bare-e2e"
    d.mkdir()
    fake = start_fake(d)
    bare: Proc | None = None
    try:
        await wait_healthy(fake, path="/_fake/stats")
        port = free_port()
        cmd = [
            str(SCRIPT),
            "--serve-baseline-e2e",
            str(port),
            "--fake-port",
            str(fake.port),
            "--db",
            str(d / "bare.db"),
        ]
        bare = spawn("bare-pipeline", cmd, port, d / "bare.log")
        await wait_healthy(bare)
        b = Builder(port, staff)
        await preflight("bare-pipeline", port, b)
        await closed_loop("warm-up", port, b.build(args.warmup), min(args.concurrency, args.warmup))
        await wait_messages(http, fake, 1 + args.warmup, limit_s=60)
        return await end_to_end("bare-pipeline", bare, fake, b, args, n, http)
    finally:
        if bare is not None:
            bare.stop()
        fake.stop()


@dataclass
class Figures:
    max: Result | None = None
    rate: Result | None = None
    e2e: EndToEnd | None = None
    rss_mb: float | None = None
    max_cpu_ms: float | None = None  # server CPU time per acknowledged callback during the max phase
    rate_cpu_ms: float | None = None  # ... during the fixed-rate phase (for salesbot: its handling and replies too)
    states: dict[str, BotState] = field(default_factory=dict)  # salesbot: phase → state after it


async def bench(args: argparse.Namespace, tmp: Path) -> int:
    staff = staff_ids(args.users)
    n_rate = int(args.rate * args.seconds)
    n_e2e = args.e2e_requests or e2e_fit(args.users, args.warmup)
    load_before = os.getloadavg()
    busy0, own0, wall0 = machine_busy_s(), own_cpu_s(), time.monotonic()
    print(
        f"phases {','.join(args.phases)}; max: {args.requests} callbacks closed loop ({args.bare_requests} for "
        f"bare) at concurrency {args.concurrency}; e2e: {n_e2e} callbacks closed loop; fixed rate: "
        f"{args.rate:.0f} req/s for {args.seconds:.0f}s ({n_rate} callbacks); {len(staff)} users, warm-up "
        f"{args.warmup}; python {sys.version.split()[0]}, {os.cpu_count()} cpu, load averages "
        f"{' '.join(f'{x:.2f}' for x in load_before)}",
        file=sys.stderr,
    )
    bare_fig, bot_fig = Figures(), Figures()
    warm_c = min(args.concurrency, args.warmup)

    # ---- bare-aiohttp: one process, both ack phases.
    if "max" in args.phases or "rate" in args.phases:
        port = free_port()
        bare = spawn("bare-aiohttp", [str(SCRIPT), "--serve-baseline", str(port)], port, tmp / "bare.log")
        try:
            await wait_healthy(bare)
            b = Builder(port, staff)
            await preflight("bare-aiohttp", port, b)
            await closed_loop("warm-up", port, b.build(args.warmup), warm_c)
            if "max" in args.phases:
                reqs, cpu0 = b.build(args.bare_requests), bare.cpu_seconds()
                bare_fig.max = await closed_loop("bare-aiohttp", port, reqs, args.concurrency)
                bare_fig.max_cpu_ms = cpu_per_request(cpu0, bare.cpu_seconds(), bare_fig.max)
                print(f"bare-aiohttp: {bare_fig.max.rate:.0f} req/s closed loop", file=sys.stderr)
            if "rate" in args.phases:
                reqs, cpu0 = b.build(n_rate), bare.cpu_seconds()
                bare_fig.rate = await open_loop("bare-aiohttp", port, reqs, args.rate)
                bare_fig.rate_cpu_ms = cpu_per_request(cpu0, bare.cpu_seconds(), bare_fig.rate)
                print(f"bare-aiohttp: p99 {bare_fig.rate.pct(99):.1f} ms at {args.rate:.0f} req/s", file=sys.stderr)
            bare_fig.rss_mb = bare.peak_rss_mb()
        finally:
            bare.stop()

    template = await template_db(tmp, staff)
    rss: list[float] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        for phase in PHASES:
            if phase not in args.phases:
                continue
            if phase == "e2e":
                bare_fig.e2e = await bare_end_to_end(args, tmp, staff, n_e2e, http)
            rig = await start_rig(tmp, phase, template)
            try:
                b = Builder(rig.bot.port, staff)
                await preflight("salesbot", rig.bot.port, b)
                await closed_loop("warm-up", rig.bot.port, b.build(args.warmup), warm_c)
                await wait_handled(rig, 1 + args.warmup, limit_s=60)
                sent = await wait_settled(rig, limit_s=60)
                warm = await fake_stats(http, rig.fake.base)
                if sent != 1 + args.warmup or warm.messages != sent:
                    raise RuntimeError(
                        f"after the warm-up: {sent} replies sent, {warm.messages} messages at the fake (expected "
                        f"{1 + args.warmup} each: one message per reply)"
                    )
                if phase == "max":
                    reqs = b.build(args.requests)
                    async with profiled(args.profile, rig.bot, phase):
                        cpu0 = rig.bot.cpu_seconds()
                        bot_fig.max = await closed_loop("salesbot", rig.bot.port, reqs, args.concurrency)
                        bot_fig.max_cpu_ms = cpu_per_request(cpu0, rig.bot.cpu_seconds(), bot_fig.max)
                    print(f"salesbot: {bot_fig.max.rate:.0f} req/s closed loop", file=sys.stderr)
                elif phase == "e2e":
                    bot_fig.e2e = await end_to_end("salesbot", rig.bot, rig.fake, b, args, n_e2e, http)
                else:
                    reqs = b.build(n_rate)
                    async with profiled(args.profile, rig.bot, phase):
                        cpu0 = rig.bot.cpu_seconds()
                        bot_fig.rate = await open_loop("salesbot", rig.bot.port, reqs, args.rate)
                        bot_fig.rate_cpu_ms = cpu_per_request(cpu0, rig.bot.cpu_seconds(), bot_fig.rate)
                    print(f"salesbot: p99 {bot_fig.rate.pct(99):.1f} ms at {args.rate:.0f} req/s", file=sys.stderr)
                bot_fig.states[phase] = await bot_state(rig, http)
                if (mb := rig.bot.peak_rss_mb()) is not None:
                    rss.append(mb)
            finally:
                rig.stop()
    bot_fig.rss_mb = max(rss) if rss else None
    busy1 = machine_busy_s()
    others = None if busy0 is None or busy1 is None else max(0.0, (busy1 - busy0) - (own_cpu_s() - own0))
    return report(args, bare_fig, bot_fig, load_before, others, time.monotonic() - wall0)


def report(
    args: argparse.Namespace,
    bare: Figures,
    bot: Figures,
    load_before: tuple[float, float, float],
    others_cpu_s: float | None = None,
    wall_s: float = 0.0,
) -> int:
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
        rows += [
            row(
                f"max throughput req/s (C={c})",
                bare.max.rate,
                bot.max.rate,
                0,
                f">= {TARGET_RATIO}x: {verdict(thr_ratio >= TARGET_RATIO)}",
            ),
            row(f"  p50 ms (C={c})", bare.max.pct(50), bot.max.pct(50), 1),
            row(f"  p99 ms (C={c})", bare.max.pct(99), bot.max.pct(99), 1),
            row("  server CPU ms per callback", bare.max_cpu_ms, bot.max_cpu_ms, 3),
        ]
    if bare.e2e is not None and bot.e2e is not None:
        e2e_ok = bot.e2e.per_s >= TARGET_RATIO * bare.e2e.per_s
        rows += [
            row(
                "replies delivered/s (e2e)", bare.e2e.per_s, bot.e2e.per_s, 0, f">= {TARGET_RATIO}x: {verdict(e2e_ok)}"
            ),
            row("  server CPU ms per reply", bare.e2e.cpu_ms, bot.e2e.cpu_ms, 3),
            row("  DingTalk API calls per reply", bare.e2e.calls_per_reply, bot.e2e.calls_per_reply, 2),
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
            row("  server CPU ms per callback", bare.rate_cpu_ms, bot.rate_cpu_ms, 3),
        ]
    if bare.rss_mb is not None or bot.rss_mb is not None:
        rows.append(row("server peak RSS MB", bare.rss_mb, bot.rss_mb))
    print()
    print(f"{'metric':<31}{'bare':>13}{'salesbot':>10}{'ratio':>7}  target (WeCom's)")
    for label, a, b, q, t in rows:
        print(f"{label:<31}{a:>13}{b:>10}{q:>7}  {t}")
    print()
    for phase, res in (("max", bot.max), ("e2e", bot.e2e.load if bot.e2e else None), ("rate", bot.rate)):
        state = bot.states.get(phase)
        if res is None or state is None:
            continue
        print(
            f"salesbot {phase}: {res.ok}/{res.requests} acknowledged in {res.elapsed:.1f}s"
            + (f" (generator at worst {res.max_lag_ms:.1f} ms late)" if phase == "rate" else "")
            + f"; by the end {state.handled - 1 - args.warmup} handled (inbound {state.inbound}); outbox: "
            f"{state.outbox_text()}; fake DingTalk (warm-up included): {state.fake.messages} messages, calls "
            f"{state.fake.calls_text()}; bot {'up' if state.alive else 'DOWN'}, /healthz {state.health}"
        )
        if state.last_error:
            print(f"  outbox last_error: {state.last_error[:120]}")
    for name, e in (("bare-pipeline", bare.e2e), ("salesbot", bot.e2e)):
        if e is not None:
            print(
                f"{name} e2e: {e.load.ok}/{e.load.requests} acknowledged in {e.load.elapsed:.2f}s "
                f"({e.load.rate:.0f} req/s); every reply at the fake {e.seconds:.2f}s after the first request; the "
                f"fake counted {', '.join(f'{k} {v}' for k, v in sorted(e.calls.items()))} ({e.api_calls} API calls "
                f"for {e.messages} messages)"
            )
    if bare.max is not None:
        print(f"bare-aiohttp max: {bare.max.ok}/{bare.max.requests} in {bare.max.elapsed:.1f}s closed loop")
    if bare.rate is not None:
        print(
            f"bare-aiohttp {r}: {bare.rate.ok}/{bare.rate.requests} (generator at worst "
            f"{bare.rate.max_lag_ms:.1f} ms late)"
        )
    if bare.max is not None and bot.max is not None:
        print(
            f"load generator CPU: {100 * bare.max.client_cpu / bare.max.elapsed:.0f}% of a core during bare max, "
            f"{100 * bot.max.client_cpu / bot.max.elapsed:.0f}% during salesbot max"
        )
    after = os.getloadavg()
    print(
        f"load averages (1, 5, 15 min) {' '.join(f'{x:.2f}' for x in load_before)} before, "
        f"{' '.join(f'{x:.2f}' for x in after)} after"
    )
    if others_cpu_s is not None:
        print(
            f"other processes on the machine: {others_cpu_s:.1f} CPU-s in the {wall_s:.0f}s of the run (this script "
            "and its servers excluded)"
        )
    results = [x for x in (bare.max, bare.rate, bot.max, bot.rate) if x is not None]
    results += [e.load for e in (bare.e2e, bot.e2e) if e is not None]
    for res in results:
        if res.phase == "rate" and res.max_lag_ms > LATE_MS:
            print(
                f"warning: the generator was {res.max_lag_ms:.0f} ms late during {res.name} {res.phase}: the machine "
                "stalled (other work?); do not quote this run"
            )
    for res in results:
        if res.errors:
            print(f"{res.name} {res.phase} first error: {res.first_error}")
    unhealthy = [p for p, s in bot.states.items() if not s.alive or not s.health.startswith("200")]
    for phase in unhealthy:
        print(f"salesbot not healthy after {phase}: {bot.states[phase].health}")
    violations = [f"salesbot {p}: {v}" for p, s in bot.states.items() for v in s.fake.violations]
    violations += [f"bare-pipeline e2e: {v}" for v in (bare.e2e.violations if bare.e2e else [])]
    for v in violations[:10]:
        print(f"fake DingTalk refused a request: {v}")
    return 1 if sum(x.errors for x in results) or unhealthy or violations else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=10000, help="closed-loop callbacks to salesbot (default 10000)")
    ap.add_argument(
        "--bare-requests", type=int, default=25000, help="closed-loop callbacks for the bare handler (default 25000)"
    )
    ap.add_argument("--concurrency", type=int, default=32, help="closed-loop connections (default 32)")
    ap.add_argument("--rate", type=float, default=200.0, help="open-loop requests per second (default 200)")
    ap.add_argument("--seconds", type=float, default=10.0, help="open-loop duration (default 10)")
    ap.add_argument(
        "--e2e-requests",
        type=int,
        default=0,
        help="end-to-end callbacks per server (default: the most whose replies fit in the per-person budget of 20 "
        "messages a minute: 900 for 50 users and a warm-up of 50)",
    )
    ap.add_argument("--users", type=int, default=50, help="DingTalk users dt-u01… (default 50)")
    ap.add_argument("--warmup", type=int, default=50, help="unmeasured callbacks first, per process (default 50)")
    ap.add_argument(
        "--phases",
        type=lambda v: [x for x in v.split(",") if x],
        default=list(PHASES),
        help=f"phases to run, comma-separated (default {','.join(PHASES)})",
    )
    ap.add_argument("--serve-baseline", type=int, metavar="PORT", help=argparse.SUPPRESS)
    ap.add_argument("--serve-baseline-e2e", type=int, metavar="PORT", help=argparse.SUPPRESS)
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
    counts = (args.requests, args.bare_requests, args.concurrency, args.warmup, args.users)
    if min(counts) < 1 or args.rate <= 0 or args.seconds <= 0:
        ap.error("all counts must be positive")
    from bot.channels.dingtalk.channel import PER_USER_PER_MINUTE  # here: the servers above do not need it

    fit = e2e_fit(args.users, args.warmup)
    if args.e2e_requests < 0 or args.e2e_requests > fit or ("e2e" in args.phases and fit < 1):
        ap.error(
            f"--e2e-requests must be at most {fit}: {args.users} users, {PER_USER_PER_MINUTE} replies each a minute, "
            "the preflight and warm-up replies included (beyond it the bot defers replies by a minute)"
        )
    if unknown := set(args.phases) - set(PHASES):
        ap.error(f"unknown phases {sorted(unknown)}; known: {', '.join(PHASES)}")
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    if args.keep:
        tmp = Path(tempfile.mkdtemp(prefix="salesbot-bench-dingtalk-"))
        print(f"keeping {tmp}", file=sys.stderr)
        sys.exit(asyncio.run(bench(args, tmp)))
    with tempfile.TemporaryDirectory(prefix="salesbot-bench-dingtalk-") as d:
        code = asyncio.run(bench(args, Path(d)))
    sys.exit(code)


if __name__ == "__main__":
    main()
