"""Benchmark: DingTalk robot callbacks through the bot's ack path, side by side with a bare signed-request handler.

Run from the repository root (about 30 s):

    python bench/dingtalk_callbacks.py [--phases max,rate] [--requests 10000] [--bare-requests 25000]
                                       [--concurrency 32] [--rate 200] [--seconds 10] [--users 50] [--warmup 50]
                                       [--profile DIR] [--keep]

Servers run as subprocesses on 127.0.0.1; the load generator is this process (the raw HTTP/1.1 keep-alive client,
closed and open loops of ``bench/wecom_callbacks.py``, imported from there):

* ``bare-aiohttp`` (``python bench/dingtalk_callbacks.py --serve-baseline PORT``): POST /dingtalk/callback checks
  the ``timestamp`` and ``sign`` headers and the replay window, reads the body (size limit), verifies the signature
  (the bot's ``bot.channels.dingtalk.sign``), parses the JSON (the bot's ``load_json``) and answers
  ``{"msgtype":"empty"}``. No database, no directory, no pipeline.
* ``salesbot`` (``python -m bot.cli serve``) with ``[dingtalk]`` enabled (HTTP mode) on a SQLite file with 50 reps
  imported with DingTalk staff ids (``db upgrade`` + ``import org`` once, the file copied for every bot process).
  The ack path: headers, replay window, body, signature, JSON, robotCode, parse, directory lookup (cached), persist
  the event (group commit), answer 200 ``{"msgtype":"empty"}``; then the pipeline handles ``帮助``.

The DingTalk delivery side is not part of this benchmark (the bot has none yet on this branch): the replies the
pipeline writes to the outbox for the ``dingtalk`` channel cannot be delivered, and the outbox records them as dead
("channel 'dingtalk' is not enabled", one warning in the log each). The script reports the outbox rows by channel
and status at the end of each phase and checks that the bot is still up and healthy.

Phases (the bot gets a fresh process and database copy for each; the bare handler runs both in one process):

1. max throughput: closed loop, C keep-alive connections, N callbacks → acknowledged req/s, p50/p99 latency, and
   the server's CPU time per callback (``/proc``; less disturbed by a busy machine than a rate);
2. fixed rate: R req/s open loop for S seconds, latency counted from each request's scheduled send time (a stalled
   server cannot hide behind a stalled generator) → p50/p99/max and errors.

Before timing, each server must refuse a callback with a forged ``sign`` (403) and acknowledge a good one; then every
process gets ``--warmup`` callbacks that are not counted (for the bot: until they are handled).
Callbacks are the text ``帮助`` from 50 users (staff ids ``dt-u01``…) round robin in single chats, with unique
msgIds, built and signed (``timestamp`` in ms, ``sign``) by ``tests.fakes.dingtalk_callbacks.DingTalkSigner`` and
laid out as raw HTTP/1.1 requests before timing. They are signed a few seconds before they are sent: well inside
the replay window (1 h by default).
Exit status 1 if any request failed or the bot was not healthy after a phase.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

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
PHASES = ("max", "rate")


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


# ---- the deployment under test --------------------------------------------------------------------------------


def staff_ids(users: int) -> list[str]:
    width = max(2, len(str(users)))
    return [f"dt-u{i:0{width}d}" for i in range(1, users + 1)]


def write_org(path: Path, staff: list[str]) -> None:
    """The org directory: one rep per DingTalk user (directory id ``rep-<staff id>``, column ``dingtalk_staff_id``)."""
    lines = ["user_id,name,roles,dingtalk_staff_id"]
    lines += [f"rep-{s},代表{s[4:]},rep,{s}" for s in staff]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_config(path: Path, *, db_url: str, port: int) -> None:
    """DingTalk in HTTP mode, its API on a closed port (nothing here calls it: there is no delivery side)."""
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
api_base_url = "http://{HOST}:1"
oapi_base_url = "http://{HOST}:1"
replay_window_seconds = {REPLAY_WINDOW_S}

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
    write_config(config, db_url=f"sqlite+aiosqlite:///{db}", port=free_port())
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


@dataclass
class BotRig:
    bot: Proc
    db: Path

    @property
    def reader(self) -> DbReader:
        return DbReader(f"sqlite:///{self.db}")

    def stop(self) -> None:
        # The measurement is over and a backlog may be left: no graceful shutdown needed.
        self.bot.kill()


async def start_rig(tmp: Path, tag: str, template: Path) -> BotRig:
    d = tmp / tag
    d.mkdir()
    port = free_port()
    config, db = d / "bench.toml", d / "bench.db"
    shutil.copy(template, db)
    write_config(config, db_url=f"sqlite+aiosqlite:///{db}", port=port)
    bot = spawn("salesbot", ["-m", "bot.cli", "serve", "--config", str(config)], port, d / "salesbot.log")
    await wait_healthy(bot)
    return BotRig(bot, db)


@dataclass
class BotState:
    """What the bot's database holds after a phase, and whether the bot still answers /healthz."""

    inbound: dict[str, int]
    outbox: dict[tuple[str, str], int]  # (channel, status) → rows
    alive: bool
    health: str
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
    return BotState(inbound, outbox, alive, health, str(errors[0][0]) if errors else "")


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


@dataclass
class Figures:
    max: Result | None = None
    rate: Result | None = None
    rss_mb: float | None = None
    max_cpu_ms: float | None = None  # server CPU time per acknowledged callback during the max phase
    states: dict[str, BotState] = field(default_factory=dict)  # salesbot: phase → state after it


async def bench(args: argparse.Namespace, tmp: Path) -> int:
    staff = staff_ids(args.users)
    n_rate = int(args.rate * args.seconds)
    load_before = os.getloadavg()[0]
    busy0, own0, wall0 = machine_busy_s(), own_cpu_s(), time.monotonic()
    print(
        f"phases {','.join(args.phases)}; max: {args.requests} callbacks closed loop ({args.bare_requests} for "
        f"bare) at concurrency {args.concurrency}; fixed rate: {args.rate:.0f} req/s for {args.seconds:.0f}s "
        f"({n_rate} callbacks); {len(staff)} users, warm-up {args.warmup}; python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cpu, load average {load_before:.2f}",
        file=sys.stderr,
    )
    bare_fig, bot_fig = Figures(), Figures()
    warm_c = min(args.concurrency, args.warmup)

    # ---- bare-aiohttp: one process, both phases.
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
            bare_fig.rate = await open_loop("bare-aiohttp", port, b.build(n_rate), args.rate)
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
            rig = await start_rig(tmp, phase, template)
            try:
                b = Builder(rig.bot.port, staff)
                await preflight("salesbot", rig.bot.port, b)
                await closed_loop("warm-up", rig.bot.port, b.build(args.warmup), warm_c)
                await wait_handled(rig, 1 + args.warmup, limit_s=60)
                if phase == "max":
                    reqs = b.build(args.requests)
                    async with profiled(args.profile, rig.bot, phase):
                        cpu0 = rig.bot.cpu_seconds()
                        bot_fig.max = await closed_loop("salesbot", rig.bot.port, reqs, args.concurrency)
                        bot_fig.max_cpu_ms = cpu_per_request(cpu0, rig.bot.cpu_seconds(), bot_fig.max)
                    print(f"salesbot: {bot_fig.max.rate:.0f} req/s closed loop", file=sys.stderr)
                else:
                    reqs = b.build(n_rate)
                    async with profiled(args.profile, rig.bot, phase):
                        bot_fig.rate = await open_loop("salesbot", rig.bot.port, reqs, args.rate)
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
    load_before: float,
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
    if bare.rss_mb is not None or bot.rss_mb is not None:
        rows.append(row("server peak RSS MB", bare.rss_mb, bot.rss_mb))
    print()
    print(f"{'metric':<30}{'bare-aiohttp':>14}{'salesbot':>10}{'ratio':>7}  target (WeCom's)")
    for label, a, b, q, t in rows:
        print(f"{label:<30}{a:>14}{b:>10}{q:>7}  {t}")
    print()
    for phase, res in (("max", bot.max), ("rate", bot.rate)):
        state = bot.states.get(phase)
        if res is None or state is None:
            continue
        print(
            f"salesbot {phase}: {res.ok}/{res.requests} acknowledged in {res.elapsed:.1f}s"
            + (f" (generator at worst {res.max_lag_ms:.1f} ms late)" if phase == "rate" else "")
            + f"; by the end {state.handled - 1 - args.warmup} handled (inbound {state.inbound}); outbox: "
            f"{state.outbox_text()}; bot {'up' if state.alive else 'DOWN'}, /healthz {state.health}"
        )
        if state.last_error:
            print(f"  outbox last_error: {state.last_error[:120]}")
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
    print(f"1-min load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    if others_cpu_s is not None:
        print(
            f"other processes on the machine: {others_cpu_s:.1f} CPU-s in the {wall_s:.0f}s of the run (this script "
            "and its servers excluded)"
        )
    results = [x for x in (bare.max, bare.rate, bot.max, bot.rate) if x is not None]
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
    return 1 if sum(x.errors for x in results) or unhealthy else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=10000, help="closed-loop callbacks to salesbot (default 10000)")
    ap.add_argument(
        "--bare-requests", type=int, default=25000, help="closed-loop callbacks for the bare handler (default 25000)"
    )
    ap.add_argument("--concurrency", type=int, default=32, help="closed-loop connections (default 32)")
    ap.add_argument("--rate", type=float, default=200.0, help="open-loop requests per second (default 200)")
    ap.add_argument("--seconds", type=float, default=10.0, help="open-loop duration (default 10)")
    ap.add_argument("--users", type=int, default=50, help="DingTalk users dt-u01… (default 50)")
    ap.add_argument("--warmup", type=int, default=50, help="unmeasured callbacks first, per process (default 50)")
    ap.add_argument(
        "--phases",
        type=lambda v: [x for x in v.split(",") if x],
        default=list(PHASES),
        help=f"phases to run, comma-separated (default {','.join(PHASES)})",
    )
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
