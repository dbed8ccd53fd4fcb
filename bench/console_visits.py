"""Benchmark: visits logged per second through the console channel's inbound path (SQLite), against a bare baseline.

Run from the repository root:

    python bench/console_visits.py [--requests N] [--concurrency C] [--users U]

Two servers run as subprocesses on 127.0.0.1, one after the other is measured by the load generator in this process:

* ``bare-aiohttp``: an aiohttp handler that only parses the request (JSON body, the console's ``_Send`` pydantic
  shape) and answers ``{"accepted": true, "duplicate": false}``; no database, no cookie check
  (``python bench/console_visits.py --serve-baseline PORT``).
* ``salesbot``: ``python -m bot.cli demo`` on a fresh SQLite file: every POST /console/api/send is checked for the
  session cookie, persisted with its dedup key, echoed to the console feed and acknowledged; the pipeline workers
  and the outbox worker then parse the one-line visit, match the hospital, keep the dialog state, put the
  confirmation card in the outbox and deliver it to the rep's console feed.

Reported per server: acknowledged requests/s and POST latency percentiles; for salesbot also the end-to-end rate
(first measured request → every event handled and every outbox row delivered, read from the SQLite file read-only)
and for both the server's peak RSS (VmHWM).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

SCRIPT = Path(__file__).resolve()
# bench/ for procs.py: sys.path[0] when this file is run as a script, not when it is loaded by path.
if str(SCRIPT.parent) not in sys.path:
    sys.path.insert(0, str(SCRIPT.parent))

from procs import HOST, Proc, cli, free_port, spawn, wait_healthy  # noqa: E402

CLIENT_ID_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"  # as bot/channels/console/web.py

# One-line visits that need no follow-up question: hospital alias, a ward of it, a contact of that ward.
VISITS = [
    ("浙一", "骨科", "张主任"),
    ("浙一", "检验科", "李医生"),
    ("浙一", "器械科", "王科长"),
    ("浙二", "脊柱外科", "刘主任"),
    ("浙二", "手术室", "陈护士长"),
    ("邵逸夫", "关节外科", "黄主任"),
    ("邵逸夫", "心内科", "杨医生"),
    ("省人民", "骨科", "吴主任"),
    ("省人民", "检验科", "徐医生"),
]
TOPICS = ["脊柱耗材新品", "关节产品培训", "试剂采购", "耗材续约"]
OBJECTIONS = ["价格", "交付", "资质"]
NEXT_STEPS = ["送样", "报价", "下周回访"]


def visit_text(i: int) -> str:
    hospital, ward, contact = VISITS[i % len(VISITS)]
    return (
        f"拜访 {hospital} {ward} {contact} 主题:{TOPICS[i % len(TOPICS)]} "
        f"异议:{OBJECTIONS[i % len(OBJECTIONS)]} 下一步:{NEXT_STEPS[i % len(NEXT_STEPS)]}"
    )


# ---- the bare baseline server ---------------------------------------------------------------------------------


def serve_baseline(port: int) -> None:
    """aiohttp + pydantic only: parse and validate the body like the console does, answer like the console does."""
    from aiohttp import web
    from pydantic import BaseModel, Field, ValidationError

    class Send(BaseModel):
        client_id: str = Field(pattern=CLIENT_ID_PATTERN)
        text: str = Field(min_length=1, max_length=2000)

    async def send(request: web.Request) -> web.Response:
        try:
            data = await request.json()
        except ValueError:
            return web.json_response({"error": "body must be JSON"}, status=400)
        try:
            Send.model_validate(data)
        except ValidationError:
            return web.json_response({"error": "invalid fields"}, status=400)
        return web.json_response({"accepted": True, "duplicate": False})

    async def login(request: web.Request) -> web.Response:
        resp = web.json_response({"user": {"id": "bench"}})
        resp.set_cookie("salesbot_console", "bench", httponly=True, samesite="Strict")
        return resp

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application(client_max_size=65536)
    app.router.add_post("/console/api/send", send)
    app.router.add_post("/console/api/login", login)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host=HOST, port=port, print=None, access_log=None)


# ---- load generator -------------------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    requests: int
    elapsed: float
    latencies: list[float] = field(default_factory=list)
    client_cpu: float = 0.0  # CPU seconds this (load generator) process used during the run
    started: float = 0.0  # perf_counter() when the first request was sent
    errors: int = 0
    duplicates: int = 0
    first_error: str = ""

    @property
    def accepted(self) -> int:
        return self.requests - self.errors - self.duplicates

    @property
    def rate(self) -> float:
        return self.accepted / self.elapsed if self.elapsed else 0.0

    def pct(self, p: float) -> float:
        xs = sorted(self.latencies)
        if not xs:
            return float("nan")
        return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))] * 1000


async def sign_in(base: str, user_id: str, connections: int = 1) -> aiohttp.ClientSession:
    session = aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True),
        timeout=aiohttp.ClientTimeout(total=30),
        connector=aiohttp.TCPConnector(limit=connections),
    )
    async with session.post(f"{base}/console/api/login", json={"user_id": user_id}) as r:
        if r.status != 200:
            await session.close()
            raise RuntimeError(f"login as {user_id} failed: {r.status} {await r.text()}")
    return session


async def load(name: str, base: str, users: list[str], n: int, concurrency: int, offset: int) -> Result:
    """``n`` POST /console/api/send from ``concurrency`` workers, each its own signed-in session (users round robin)."""
    sessions = [await sign_in(base, users[i % len(users)]) for i in range(concurrency)]
    counter = itertools.count(offset)
    stop_at = offset + n
    result = Result(name, n, 0.0)
    url = f"{base}/console/api/send"

    async def worker(session: aiohttp.ClientSession) -> None:
        while (i := next(counter)) < stop_at:
            body = {"client_id": f"b{uuid.uuid4().hex}", "text": visit_text(i)}
            t0 = time.perf_counter()
            try:
                async with session.post(url, json=body) as r:
                    data = await r.json(content_type=None)
                    ok = r.status == 200 and data.get("accepted") is True
            except Exception as exc:  # counted and reported
                ok, data = False, {"error": repr(exc)}
            result.latencies.append(time.perf_counter() - t0)
            if not ok:
                result.errors += 1
                result.first_error = result.first_error or str(data)[:200]
            elif data.get("duplicate"):
                result.duplicates += 1

    try:
        cpu0 = time.process_time()
        result.started = time.perf_counter()
        await asyncio.gather(*(worker(s) for s in sessions))
        result.elapsed = time.perf_counter() - result.started
        result.client_cpu = time.process_time() - cpu0
    finally:
        for s in sessions:
            await s.close()
    return result


# ---- end-to-end progress, read from the SQLite file -----------------------------------------------------------


@dataclass
class Progress:
    handled: int  # inbound events no longer pending
    failed: int
    outbox_open: int  # outbox rows pending or sending
    outbox_sent: int
    outbox_dead: int


def progress(db: Path) -> Progress:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        inbound = dict(conn.execute("SELECT status, count(*) FROM inbound_events GROUP BY status").fetchall())
        out = dict(conn.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall())
    finally:
        conn.close()
    return Progress(
        handled=sum(v for k, v in inbound.items() if k != "pending"),
        failed=inbound.get("failed", 0),
        outbox_open=out.get("pending", 0) + out.get("sending", 0),
        outbox_sent=out.get("sent", 0),
        outbox_dead=out.get("dead", 0),
    )


async def wait_settled(db: Path, handled: int, limit_s: float) -> tuple[float, Progress]:
    """Poll until ``handled`` events are done and the outbox is empty; returns (perf_counter when seen, progress)."""
    deadline = time.monotonic() + limit_s
    while True:
        p = progress(db)
        if p.handled >= handled and p.outbox_open == 0:
            return time.perf_counter(), p
        if time.monotonic() > deadline:
            raise RuntimeError(f"not settled after {limit_s:.0f}s: {p}")
        await asyncio.sleep(0.05)


# ---- sustained load: delivery lag per visit ---------------------------------------------------------------


def write_extra_reps(path: Path, n: int) -> list[str]:
    """Reps rep03… beyond the demo's two, so that the sustained phase has ``n`` reps in all."""
    ids = [f"rep{i:02d}" for i in range(3, n + 1)]
    lines = ["user_id,name,roles"] + [f"{u},代表{u[3:]},rep" for u in ids]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return ids


def feed_times(db: Path) -> dict[str, list[float]]:
    """Per user, the wall-clock instants (Unix seconds) of the bot's messages in their console feed, oldest first."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute(
            "SELECT user_id, created_at FROM console_feed WHERE outbox_id IS NOT NULL ORDER BY id"
        ).fetchall()
    finally:
        conn.close()
    out: dict[str, list[float]] = {}
    for user, at in rows:
        out.setdefault(user, []).append(datetime.fromisoformat(at).replace(tzinfo=UTC).timestamp())
    return out


@dataclass
class Sustained:
    rate: float
    load: Result
    handled_at_end: int
    lags: list[float] = field(default_factory=list)  # seconds: scheduled send → confirmation card in the feed
    missing: int = 0

    def lag(self, p: float) -> float:
        xs = sorted(self.lags)
        if not xs:
            return float("nan")
        return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


async def open_load(name: str, base: str, users: list[str], n: int, rate: float) -> tuple[Result, list[float]]:
    """Request i (a visit by ``users[i % len(users)]``) is sent at start + i/rate, whatever the server's pace;
    its latency runs from that scheduled time. Returns the result and the scheduled instants (Unix seconds)."""
    sessions = {u: await sign_in(base, u, connections=4) for u in users}
    result = Result(name, n, 0.0)
    url = f"{base}/console/api/send"
    due_wall: list[float] = []

    async def one(i: int, due: float) -> None:
        body = {"client_id": f"s{uuid.uuid4().hex}", "text": visit_text(i)}
        try:
            async with sessions[users[i % len(users)]].post(url, json=body) as r:
                data = await r.json(content_type=None)
                ok = r.status == 200 and data.get("accepted") is True
        except Exception as exc:  # counted and reported
            ok, data = False, {"error": repr(exc)}
        result.latencies.append(time.perf_counter() - due)
        if not ok:
            result.errors += 1
            result.first_error = result.first_error or str(data)[:200]

    tasks = []
    try:
        start = result.started = time.perf_counter()
        wall0 = time.time() - start
        for i in range(n):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            due_wall.append(wall0 + due)
            tasks.append(asyncio.create_task(one(i, due)))
        await asyncio.gather(*tasks)
        result.elapsed = time.perf_counter() - start
    finally:
        for s in sessions.values():
            await s.close()
    return result, due_wall


async def sustained(args: argparse.Namespace, tmp: Path, rate: float) -> Sustained:
    """A fresh demo server with ``--sustained-users`` reps; visits at ``rate``/s for ``--sustained-seconds``
    (request i by rep i mod U), then every confirmation card awaited: lag = scheduled send → card in the feed."""
    d = tmp / f"sustained-{rate:.0f}"
    d.mkdir()
    db = d / "bench.db"
    config = d / "bench.toml"
    config.write_text(
        f'[org]\ndemo = true\n[database]\nurl = "sqlite+aiosqlite:///{db}"\n[logging]\nlevel = "WARNING"\n',
        encoding="utf-8",
    )
    extra = write_extra_reps(d / "reps.csv", args.sustained_users)
    await asyncio.to_thread(cli, config, "db", "upgrade")
    await asyncio.to_thread(cli, config, "import", "org", str(d / "reps.csv"))
    port = free_port()
    bot = spawn(
        "salesbot",
        ["-m", "bot.cli", "demo", "--config", str(config), "--port", str(port), "--db", str(db)],
        port,
        d / "salesbot.log",
    )
    users = ["rep01", "rep02", *extra][: args.sustained_users]
    n = int(rate * args.sustained_seconds)
    try:
        await wait_healthy(bot, poll_s=0.1)
        await load("warm-up", bot.base, users, args.warmup, min(len(users), args.warmup), 0)
        _, before = await wait_settled(db, args.warmup, limit_s=120)
        skip = {u: len(ts) for u, ts in (await asyncio.to_thread(feed_times, db)).items()}
        result, due_wall = await open_load("salesbot", bot.base, users, n, rate)
        handled = progress(db).handled - before.handled
        await wait_settled(db, before.handled + result.accepted, limit_s=300)
        arrived = await asyncio.to_thread(feed_times, db)
    finally:
        bot.stop()
    lags, missing, seen = [], 0, dict.fromkeys(users, 0)
    for i, due in enumerate(due_wall):
        u = users[i % len(users)]
        k = skip.get(u, 0) + seen[u]
        seen[u] += 1
        if k < len(arrived.get(u, [])):
            lags.append(arrived[u][k] - due)
        else:
            missing += 1
    out = Sustained(rate, result, handled, lags, missing)
    print(
        f"salesbot at {rate:.0f}/s: delivery lag p50 {out.lag(50):.2f}s p99 {out.lag(99):.2f}s max {out.lag(100):.2f}s",
        file=sys.stderr,
    )
    return out


# ---- the run --------------------------------------------------------------------------------------------------


async def bench(args: argparse.Namespace, tmp: Path) -> None:
    db = tmp / "bench.db"
    config = tmp / "bench.toml"
    config.write_text('[org]\ndemo = true\n[logging]\nlevel = "WARNING"\n', encoding="utf-8")
    servers: list[Proc] = []
    try:
        bare_port, bot_port = free_port(), free_port()
        bare = spawn("bare-aiohttp", [str(SCRIPT), "--serve-baseline", str(bare_port)], bare_port, tmp / "bare.log")
        servers.append(bare)
        bot = spawn(
            "salesbot",
            ["-m", "bot.cli", "demo", "--config", str(config), "--port", str(bot_port), "--db", str(db)],
            bot_port,
            tmp / "salesbot.log",
        )
        servers.append(bot)
        await asyncio.gather(wait_healthy(bare, poll_s=0.1), wait_healthy(bot, poll_s=0.1))

        async with aiohttp.ClientSession() as http, http.get(f"{bot.base}/console/api/users") as resp:
            reps = [u["id"] for u in (await resp.json())["users"] if "rep" in u["roles"]]
        if not reps:
            raise RuntimeError("no demo reps found")
        users = reps[: max(1, args.users)]
        if args.users > len(reps):
            print(f"note: only {len(reps)} demo reps ({', '.join(reps)}); using them", file=sys.stderr)
        load_before = os.getloadavg()[0]
        print(
            f"{args.requests} requests, concurrency {args.concurrency}, users {', '.join(users)}, "
            f"warm-up {args.warmup}; python {sys.version.split()[0]}, {os.cpu_count()} cpu, "
            f"load average {load_before:.2f}",
            file=sys.stderr,
        )

        # Baseline: warm-up, then the measured run.
        await load("warm-up", bare.base, users, args.warmup, min(args.concurrency, args.warmup), 0)
        r_bare = await load("bare-aiohttp", bare.base, users, args.requests, args.concurrency, 0)
        print(f"bare-aiohttp: {r_bare.rate:.0f} req/s", file=sys.stderr)

        # salesbot: warm-up and let it settle, so the measured window starts from an idle server.
        await load("warm-up", bot.base, users, args.warmup, min(args.concurrency, args.warmup), 0)
        _, before = await wait_settled(db, args.warmup, limit_s=120)
        cpu_start = bot.cpu_seconds()
        r_bot = await load("salesbot", bot.base, users, args.requests, args.concurrency, args.warmup)
        print(f"salesbot: {r_bot.rate:.0f} req/s acknowledged; waiting for the pipeline and outbox", file=sys.stderr)
        # The e2e window: from the first measured request until every event is handled and every row delivered.
        t_settled, after = await wait_settled(
            db, before.handled + r_bot.accepted, limit_s=max(120.0, args.requests / 10)
        )
        e2e = t_settled - r_bot.started
        cpu_end = bot.cpu_seconds()
        rss = {s.name: s.peak_rss_mb() for s in servers}
        alive = {s.name: s.proc.poll() is None for s in servers}
    finally:
        for s in servers:
            s.stop()

    handled = after.handled - before.handled
    sent = after.outbox_sent - before.outbox_sent
    rows: list[tuple[str, str, str, str]] = []

    def fmt(x: float | None, d: int = 0) -> str:
        return "-" if x is None else f"{x:.{d}f}"

    def ratio(a: float | None, b: float | None) -> str:
        return "-" if not a or b is None else f"{b / a:.2f}"

    rows.append(("requests/s (ack)", fmt(r_bare.rate), fmt(r_bot.rate), ratio(r_bare.rate, r_bot.rate)))
    for p in (50, 90, 99):
        a, b = r_bare.pct(p), r_bot.pct(p)
        rows.append((f"p{p} latency ms", fmt(a, 1), fmt(b, 1), ratio(a, b)))
    rows.append(("handled visits/s (e2e)", "-", fmt(handled / e2e if e2e else None), "-"))
    cpu_ms = None if cpu_start is None or cpu_end is None or not handled else (cpu_end - cpu_start) * 1000 / handled
    rows.append(("server CPU ms per visit", "-", fmt(cpu_ms, 2), "-"))
    rows.append(
        (
            "server peak RSS MB",
            fmt(rss["bare-aiohttp"]),
            fmt(rss["salesbot"]),
            ratio(rss["bare-aiohttp"], rss["salesbot"]),
        )
    )

    print()
    print(f"{'metric':<26}{'bare-aiohttp':>14}{'salesbot':>12}{'ratio':>8}")
    for label, col1, col2, col3 in rows:
        print(f"{label:<26}{col1:>14}{col2:>12}{col3:>8}")
    print()
    print(
        f"salesbot: {r_bot.accepted} accepted, {r_bot.duplicates} duplicate, {r_bot.errors} errors "
        f"in {r_bot.elapsed:.1f}s; all handled {e2e:.1f}s after the first request "
        f"({handled} events, {after.failed - before.failed} failed; {sent} outbox rows delivered, "
        f"{after.outbox_dead - before.outbox_dead} dead)"
    )
    print(f"bare-aiohttp: {r_bare.accepted} accepted, {r_bare.errors} errors in {r_bare.elapsed:.1f}s")
    print(
        f"load generator CPU: {100 * r_bare.client_cpu / r_bare.elapsed:.0f}% of a core during bare-aiohttp, "
        f"{100 * r_bot.client_cpu / r_bot.elapsed:.0f}% during salesbot; "
        f"1-min load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
    )
    runs = [await sustained(args, tmp, rate) for rate in args.sustained_rates]
    if runs:
        print()
        print(
            f"sustained load: {args.sustained_users} reps, open loop for {args.sustained_seconds:.0f}s; "
            "lag = scheduled send -> confirmation card in the rep's feed"
        )
        print(
            f"{'rate/s':>7}{'ack p99 ms':>12}{'handled by end':>16}{'lag p50 s':>11}{'lag p99 s':>11}{'lag max s':>11}"
        )
        for x in runs:
            print(
                f"{x.rate:>7.0f}{x.load.pct(99):>12.1f}{f'{x.handled_at_end}/{x.load.accepted}':>16}"
                f"{x.lag(50):>11.2f}{x.lag(99):>11.2f}{x.lag(100):>11.2f}"
                + (f"  ({x.missing} cards missing)" if x.missing else "")
            )
    for res in (r_bare, r_bot, *(x.load for x in runs)):
        if res.errors:
            print(f"{res.name} first error: {res.first_error}")
    if not all(alive.values()):
        print(f"warning: a server exited during the run: {alive}")
    if r_bare.errors or r_bot.errors or handled != r_bot.accepted or any(x.load.errors or x.missing for x in runs):
        sys.exit(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=2000, help="measured requests per server (default 2000)")
    ap.add_argument("--concurrency", type=int, default=16, help="concurrent client workers (default 16)")
    ap.add_argument("--users", type=int, default=2, help="demo reps to spread the workers over (default 2)")
    ap.add_argument("--warmup", type=int, default=50, help="unmeasured requests first, per server (default 50)")
    ap.add_argument(
        "--sustained-rates",
        type=lambda v: [float(x) for x in v.split(",") if x],
        default=[50.0, 65.0],
        help="sustained-load rates, comma-separated; '' skips the phase (default 50,65)",
    )
    ap.add_argument("--sustained-seconds", type=float, default=30.0, help="sustained-load duration (default 30)")
    ap.add_argument("--sustained-users", type=int, default=16, help="reps in the sustained phase (default 16)")
    ap.add_argument("--serve-baseline", type=int, metavar="PORT", help=argparse.SUPPRESS)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (db, server logs)")
    args = ap.parse_args()
    if args.serve_baseline:
        serve_baseline(args.serve_baseline)
        return
    if args.requests < 1 or args.concurrency < 1 or args.warmup < 1:
        ap.error("--requests, --concurrency and --warmup must be positive")
    if args.sustained_users < 2 or args.sustained_seconds <= 0:
        ap.error("--sustained-users must be at least 2 and --sustained-seconds positive")
    if args.keep:
        tmp = Path(tempfile.mkdtemp(prefix="salesbot-bench-"))
        print(f"keeping {tmp}", file=sys.stderr)
        asyncio.run(bench(args, tmp))
    else:
        with tempfile.TemporaryDirectory(prefix="salesbot-bench-") as d:
            asyncio.run(bench(args, Path(d)))


if __name__ == "__main__":
    main()
