"""Fan-out of support-request task cards through the outbox to a fake WeCom API, next to a bare aiohttp sender.

Run from the repository root (about a minute on 2 cores with the defaults):

    python bench/fanout_wecom.py [--requests 1000] [--reps 50] [--members 10] [--db URL] [--keep]

Everything runs as real processes on 127.0.0.1:

* the fake WeCom API: ``tests.fakes.wecom`` started by this script (``--serve-fake``). It is the stock fake with two
  changes for this benchmark: the per-person budget (WeCom: 30 messages/min, 1000/h per person, beyond that silently
  dropped) is raised to ``--per-user-per-minute`` / ``--per-user-per-hour``, and an app-level budget of
  ``--app-calls-per-minute`` API calls in any 60 s (WeCom: 10,000/min per API per corp) answers 45009 beyond it and
  counts a violation;
* salesbot (``--run-bot``): a ``bot.runtime.Runtime`` built from the same config as ``bot.cli serve`` (pipeline and
  outbox worker running, no web server: nothing comes in), its WeCom API pointed at the fake. The per-person budget
  of ``[wecom]`` is raised the same way (the config caps it at WeCom's 30/min, 1000/h). In that process the
  requests are created like the request dialog's 提交 (``RequestDialog.submit``): one write transaction per request
  with ``bot.services.requests.create`` (request, 3 task cards: marketing, logistics, compliance),
  ``handlers.requests.send_task_card`` for each card (one shared card per department: its head and members) and
  ``bot.outbox.enqueue``, then the worker is woken. The outbox worker delivers the 3,000 cards while requests are
  still being created; the process reports its timings and exits;
* the baseline (``--run-baseline``): one aiohttp session that posts the same 3,000 message/send bodies (rendered
  from the salesbot run's outbox rows with the bot's renderer, same touser lists) to a fresh fake, under the bot
  client's token bucket at the same app budget, in as many ordered streams as the outbox has (one per department).
  No database, no outbox.

Checks (exit status 1): every card delivered exactly once at the fake (one message per task_id, to every person of
its department), 3,000 outbox rows sent, none dead, no fake violation, nothing dropped by the per-person limit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parents[1]
# The repository root for bot, cards, handlers, storage and tests; bench/ for procs.py, which is sys.path[0] only
# when this file is run as a script (not when it is loaded by path).
for _path in (ROOT, SCRIPT.parent):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from procs import (  # noqa: E402
    HOST,
    Proc,
    cli,
    free_port,
    scratch_database_url,
    spawn,
    vm_hwm_mb,
    wait_exit,
    wait_healthy,
)

CORP_ID = "wwfanoutcorp001"
AGENT_ID = 1000002
APP_SECRET = "fanout-app-secret"
CALLBACK_TOKEN = "fanoutToken"
AES_KEY = "FanoutBenchEncodingAesKey0123456789abcdefgh"  # 43 characters
DEPARTMENTS = ("marketing", "logistics", "compliance")
REQUEST_TYPE = "surgery_support"
KITS = ("脊柱A包", "关节B包", "创伤C包", "脊柱D包")
WARDS = ("骨科", "脊柱外科", "关节外科", "检验科")
# Bounded waits.
BOT_LIMIT_S = 600.0
BASELINE_LIMIT_S = 300.0
CLI_LIMIT_S = 300.0  # db upgrade and the imports (PostgreSQL included)
HEALTHY_LIMIT_S = 30.0


# ---- the fake WeCom, with the benchmark's budgets ------------------------------------------------------------


def serve_fake(argv: list[str]) -> None:
    """``--serve-fake``: the stock fake with raised per-person limits and an app-level budget of API calls."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--serve-fake", type=int, required=True, dest="port")
    ap.add_argument("--per-user-per-minute", type=int, required=True)
    ap.add_argument("--per-user-per-hour", type=int, required=True)
    ap.add_argument("--app-calls-per-minute", type=int, required=True)
    args = ap.parse_args(argv)
    from aiohttp import web

    from tests.fakes import wecom as fw

    # _take_rate reads these module globals on every delivery.
    fw.PER_USER_PER_MINUTE = args.per_user_per_minute
    fw.PER_USER_PER_HOUR = args.per_user_per_hour
    fake = fw.FakeWeCom(corp_id=CORP_ID, secret=APP_SECRET, agent_id=AGENT_ID)
    calls: deque[float] = deque()

    @web.middleware
    async def app_budget(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/cgi-bin/"):
            now = time.monotonic()
            while calls and now - calls[0] >= 60:
                calls.popleft()
            if len(calls) >= args.app_calls_per_minute:
                fake.violations.append(f"{request.path}: 45009 more than {args.app_calls_per_minute} calls in 60 s")
                return web.json_response({"errcode": 45009, "errmsg": fw.ERRMSG[45009]})
            calls.append(now)
        resp: web.StreamResponse = await handler(request)
        return resp

    app = fake.app()
    app.middlewares.append(app_budget)
    web.run_app(app, host=HOST, port=args.port, print=None, access_log=None)


async def fake_get(base: str, what: str) -> Any:
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as http, http.get(f"{base}/_fake/{what}") as r:
        r.raise_for_status()
        return await r.json()


# ---- the deployment -------------------------------------------------------------------------------------------


def write_org(path: Path, reps: int, members: int) -> dict[str, list[str]]:
    """Reps rep001…, and per department a head and ``members`` members; WeCom userid = directory id."""
    lines = ["user_id,name,roles,department,manager,wecom_userid,dingtalk_staff_id,locale"]
    lines += [f"rep{i:03d},代表{i:03d},rep,,,rep{i:03d},,zh-CN" for i in range(1, reps + 1)]
    people: dict[str, list[str]] = {}
    for d in DEPARTMENTS:
        head = f"{d[:3]}_head"
        ids = [head] + [f"{d[:3]}{i:03d}" for i in range(1, members + 1)]
        people[d] = ids
        lines.append(f"{head},{d}主管,head,{d},,{head},,zh-CN")
        lines += [f"{u},{d}成员{u[3:]},member,{d},{head},{u},,zh-CN" for u in ids[1:]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return people


def write_config(path: Path, *, db_url: str, fake_port: int, app_calls_per_minute: int) -> None:
    path.write_text(
        f"""[server]
host = "{HOST}"
port = {free_port()}

[database]
url = "{db_url}"

[wecom]
enabled = true
corp_id = "{CORP_ID}"
agent_id = {AGENT_ID}
secret = "{APP_SECRET}"
token = "{CALLBACK_TOKEN}"
encoding_aes_key = "{AES_KEY}"
api_base_url = "http://{HOST}:{fake_port}/cgi-bin/"
app_calls_per_minute = {app_calls_per_minute}

[logging]
level = "WARNING"
""",
        encoding="utf-8",
    )


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


# ---- salesbot: create the requests and let the outbox deliver the cards --------------------------------------


async def bot_main(args: argparse.Namespace) -> None:
    from datetime import timedelta

    from sqlalchemy import func, select

    from bot import outbox
    from bot.channels.wecom.channel import WeComChannel
    from bot.config import load_settings
    from bot.core.conversation import ConversationState
    from bot.core.events import TextMessage
    from bot.core.routing import Context
    from bot.infra.logging_setup import setup_logging
    from bot.runtime import Runtime
    from bot.services import requests as svc
    from handlers.requests import send_task_card
    from storage.models import Customer, OutboxMessage, User

    settings = load_settings(args.run_bot)
    with contextlib.suppress(Exception):
        setup_logging(settings.logging.level, settings.logging.json_format)
    # The config caps the per-person budget at WeCom's 30/min and 1000/h: raised for the benchmark only.
    wecom = settings.wecom.model_copy(
        update={"per_user_per_minute": args.per_user_per_minute, "per_user_per_hour": args.per_user_per_hour}
    )
    settings = settings.model_copy(update={"wecom": wecom})
    rt = Runtime(settings)
    async with rt.db.read() as s:
        reps = list(await s.scalars(select(User.id).where(User.id.like("rep%")).order_by(User.id)))
        customers = list(await s.scalars(select(Customer.id).order_by(Customer.id)))
    await rt.start()
    # Fetch the token before the clock starts (the first send would otherwise pay for it).
    channel = rt.channels["wecom"]
    assert isinstance(channel, WeComChannel)
    await channel.client.token()
    rss_idle = vm_hwm_mb()
    surgery_date = (rt.clock.now() + timedelta(days=3)).astimezone(settings.org.tz).date().isoformat()

    t0 = time.monotonic()
    tx_ms: list[float] = []
    for i in range(args.requests):
        t_tx = time.monotonic()
        async with rt.db.transaction() as s:
            now = rt.clock.now()
            rep = await s.get(User, reps[i % len(reps)])
            customer = await s.get(Customer, customers[i % len(customers)])
            assert rep is not None and customer is not None
            kit, ward = KITS[i % len(KITS)], WARDS[i % len(WARDS)]
            event = TextMessage(
                channel="wecom",
                sender=rep.channel_id("wecom") or rep.id,
                dedup_key=f"fanout:{i}",
                text=f"跟台 {customer.name} {ward} {surgery_date} 器械:{kit}",
            )
            conv = ConversationState("wecom", rep.id)
            ctx = Context(event=event, user=rep, session=s, conversation=conv, runtime=rt, now=now)
            values = {"customer": customer.name, "ward": ward, "surgery_date": surgery_date, "kit": kit}
            request, cards = await svc.create(
                s,
                settings=settings,
                type_key=REQUEST_TYPE,
                values=values,
                customer=customer,
                rep=rep,
                visit_id=None,
                now=now,
                channel="wecom",
            )
            for card, people in cards:
                if people:
                    await send_task_card(ctx, card, request)
            outbox.enqueue(s, ctx.intents, now)
        rt.outbox.wake()
        tx_ms.append((time.monotonic() - t_tx) * 1000)
    created_s = time.monotonic() - t0

    deadline = time.monotonic() + args.limit
    open_rows = -1
    while time.monotonic() < deadline:
        async with rt.db.read() as s:
            open_rows = int(
                await s.scalar(
                    select(func.count())
                    .where(OutboxMessage.status.in_(("pending", "sending")))
                    .select_from(OutboxMessage)
                )
                or 0
            )
        if open_rows == 0:
            break
        await asyncio.sleep(0.02)
    drained_s = time.monotonic() - t0
    await rt.stop()

    async with rt.db.read() as s:
        rows = (await s.execute(select(OutboxMessage.status, OutboxMessage.created_at, OutboxMessage.sent_at))).all()
    statuses = Counter(st for st, _, _ in rows)
    lat = [(sent - created).total_seconds() * 1000 for st, created, sent in rows if st == "sent" and sent]
    first = min(c for _, c, _ in rows)
    last = max((sent for st, _, sent in rows if st == "sent" and sent), default=first)
    metric = rt.metrics.outbox_sent

    def count(result: str) -> float:
        return float(metric.labels("wecom", result)._value.get())

    result = {
        "rows": len(rows),
        "statuses": dict(statuses),
        "open_rows": open_rows,
        "created_s": created_s,
        "drained_s": drained_s,
        "first_enqueue_to_last_sent_s": (last - first).total_seconds(),
        "tx_ms_p50": pct(tx_ms, 0.5),
        "tx_ms_p99": pct(tx_ms, 0.99),
        "lat_ms_p50": pct(lat, 0.5),
        "lat_ms_p99": pct(lat, 0.99),
        "lat_ms_max": max(lat, default=float("nan")),
        "deferred": count("deferred"),
        "retry": count("retry"),
        "dead": count("dead"),
        "released": count("released"),
        "rss_idle_mb": rss_idle,
        "rss_peak_mb": vm_hwm_mb(),
        "cpu_s": sum(os.times()[:2]),
    }
    await rt.close()
    await asyncio.to_thread(Path(args.out).write_text, json.dumps(result), encoding="utf-8")


# ---- baseline: a bare aiohttp sender ---------------------------------------------------------------------------


async def baseline_main(args: argparse.Namespace) -> None:
    from bot.channels.wecom.client import RateLimiter

    bodies: list[dict[str, Any]] = json.loads(
        await asyncio.to_thread(Path(args.run_baseline).read_text, encoding="utf-8")
    )
    base = args.fake.rstrip("/") + "/cgi-bin/"
    limiter = RateLimiter(args.app_calls_per_minute, 60.0)
    errors: Counter[int] = Counter()
    lat: list[float] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        async with http.get(base + "gettoken", params={"corpid": CORP_ID, "corpsecret": APP_SECRET}) as r:
            token = (await r.json())["access_token"]
        rss_idle = vm_hwm_mb()
        # One ordered stream per first recipient, as the outbox chains them.
        streams: dict[str, list[dict[str, Any]]] = {}
        for b in bodies:
            streams.setdefault(b["touser"].split("|")[0], []).append(b)
        t0 = time.monotonic()

        async def stream(items: list[dict[str, Any]]) -> None:
            for body in items:
                await limiter.acquire()
                async with http.post(base + "message/send", params={"access_token": token}, json=body) as r:
                    data = await r.json(content_type=None)
                code = int(data.get("errcode", -1))
                if code:
                    errors[code] += 1
                lat.append((time.monotonic() - t0) * 1000)

        await asyncio.gather(*(stream(items) for items in streams.values()))
        elapsed = time.monotonic() - t0
    result = {
        "sent": len(lat),
        "errors": dict(errors),
        "elapsed_s": elapsed,
        "lat_ms_p50": pct(lat, 0.5),
        "lat_ms_p99": pct(lat, 0.99),
        "lat_ms_max": max(lat, default=float("nan")),
        "rss_idle_mb": rss_idle,
        "rss_peak_mb": vm_hwm_mb(),
        "cpu_s": sum(os.times()[:2]),
        "streams": len(streams),
    }
    await asyncio.to_thread(Path(args.out).write_text, json.dumps(result), encoding="utf-8")


# ---- the driver ------------------------------------------------------------------------------------------------


@dataclass
class FakeReport:
    sends: int
    delivered: list[dict[str, Any]]
    stats: dict[str, Any]

    @property
    def rate(self) -> float:
        ats = [d["at"] for d in self.delivered]
        return (len(ats) - 1) / (max(ats) - min(ats)) if len(ats) > 1 and max(ats) > min(ats) else float("nan")


async def collect(fake: Proc) -> FakeReport:
    stats = await fake_get(fake.base, "stats")
    delivered = await fake_get(fake.base, "delivered")
    return FakeReport(int(stats["requests"].get("message/send", 0)), delivered, stats)


def check_fake(name: str, rep: FakeReport, expected: dict[str, list[str]], v: list[str]) -> None:
    """Exactly one delivered message per task_id, to exactly the department's people."""
    got: Counter[str] = Counter(d["body"].get("template_card", {}).get("task_id", "?") for d in rep.delivered)
    twice = [t for t, n in got.items() if n > 1]
    missing = [t for t in expected if t not in got]
    extra = [t for t in got if t not in expected]
    if twice:
        v.append(f"{name}: {len(twice)} cards delivered more than once, e.g. {twice[:3]}")
    if missing:
        v.append(f"{name}: {len(missing)} cards never delivered, e.g. {missing[:3]}")
    if extra:
        v.append(f"{name}: {len(extra)} unexpected messages, e.g. {extra[:3]}")
    wrong = [
        d
        for d in rep.delivered
        if sorted(d["touser"]) != sorted(expected.get(d["body"]["template_card"]["task_id"], []))
    ]
    if wrong:
        v.append(f"{name}: {len(wrong)} cards reached other people than the department's")
    if rep.stats["violations"]:
        v.append(f"{name}: {len(rep.stats['violations'])} fake violations, e.g. {rep.stats['violations'][:3]}")
    if rep.stats["silently_dropped"]:
        v.append(f"{name}: {rep.stats['silently_dropped']} deliveries dropped by the per-person limit")
    if rep.sends != len(expected):
        v.append(f"{name}: {rep.sends} message/send calls for {len(expected)} cards")


async def outbox_cards(db_url: str) -> tuple[dict[str, list[str]], list[dict[str, Any]], float]:
    """task_id → touser of every outbox card, the message/send bodies the bot's renderer makes, the DB size MB."""
    from sqlalchemy import select, text

    from cards import wecom as render
    from cards.model import Card
    from storage.db import Database
    from storage.models import OutboxMessage, User

    db = Database(db_url)
    try:
        async with db.read() as s:
            users = {u.id: u.channel_id("wecom") for u in await s.scalars(select(User))}
            rows = (await s.execute(select(OutboxMessage.payload).order_by(OutboxMessage.id))).scalars().all()
            size_mb = float("nan")
            if not db.is_sqlite:
                size_mb = float(await s.scalar(text("SELECT pg_database_size(current_database())")) or 0) / 2**20
    finally:
        await db.dispose()
    expected: dict[str, list[str]] = {}
    bodies: list[dict[str, Any]] = []
    for payload in rows:
        card = Card.model_validate(payload["card"])
        touser = [str(users[u]) for u in payload["user_ids"]]
        body = render.render_send_card(card, touser=touser, agent_id=AGENT_ID, duplicate_check_seconds=None)
        expected[body["template_card"]["task_id"]] = [t.lower() for t in touser]
        bodies.append(body)
    return expected, bodies, size_mb


async def create_pg(url: str, drop: bool) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    conn = await asyncpg.connect(
        host=u.host or HOST,
        port=u.port or 5432,
        user=u.username or "postgres",
        password=u.password,
        database="postgres",
    )
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{u.database}"')
        if not drop:
            await conn.execute(f'CREATE DATABASE "{u.database}"')
    finally:
        await conn.close()


def fmt(x: float | None, digits: int = 0) -> str:
    if x is None or x != x:
        return "-"
    return f"{x:.{digits}f}"


def run(args: argparse.Namespace, tmp: Path) -> int:
    pg = args.db is not None and not args.db.startswith("sqlite")
    db_file = tmp / "fanout.db"
    db_url = scratch_database_url(args.db, "salesbot_fanout") if pg else args.db or f"sqlite+aiosqlite:///{db_file}"
    if pg:
        asyncio.run(create_pg(db_url, drop=False))
    fakes: list[Proc] = []
    try:
        return _run(args, tmp, db_url, db_file, pg, fakes)
    finally:
        for f in fakes:
            f.stop()
        if pg and not args.keep:
            asyncio.run(create_pg(db_url, drop=True))


def start_fake(args: argparse.Namespace, tmp: Path, name: str) -> Proc:
    port = free_port()
    fake_args = [str(SCRIPT), "--serve-fake", str(port), "--app-calls-per-minute", str(args.app_calls_per_minute)]
    fake_args += ["--per-user-per-minute", str(args.per_user_per_minute)]
    fake_args += ["--per-user-per-hour", str(args.per_user_per_hour)]
    return spawn(name, fake_args, port, tmp / f"{name}.log", stop_signal=signal.SIGTERM)


def _run(args: argparse.Namespace, tmp: Path, db_url: str, db_file: Path, pg: bool, fakes: list[Proc]) -> int:
    say = print
    org = tmp / "org.csv"
    people = write_org(org, args.reps, args.members)
    fake = start_fake(args, tmp, "fake-wecom")
    fakes.append(fake)
    config = tmp / "salesbot.toml"
    write_config(config, db_url=db_url, fake_port=fake.port, app_calls_per_minute=args.app_calls_per_minute)
    cli(config, "db", "upgrade", timeout=CLI_LIMIT_S)
    cli(config, "import", "org", str(org), timeout=CLI_LIMIT_S)
    cli(config, "import", "customers", str(ROOT / "bot" / "demo_data" / "customers.csv"), timeout=CLI_LIMIT_S)
    asyncio.run(wait_healthy(fake, limit_s=HEALTHY_LIMIT_S, path="/_fake/stats"))
    n_people = sum(len(p) for p in people.values())
    say(
        f"salesbot: {args.requests} requests x 3 task cards, {args.reps} reps, 3 departments of {args.members + 1} "
        f"people ({n_people}); db {'postgresql' if pg else 'sqlite'}; budgets: app {args.app_calls_per_minute} "
        f"calls/min, per person {args.per_user_per_minute}/min {args.per_user_per_hour}/h (raised, see --help)"
    )

    # ---- salesbot
    bot_out = tmp / "bot.json"
    bot_args = [str(SCRIPT), "--run-bot", str(config), "--requests", str(args.requests), "--out", str(bot_out)]
    bot_args += ["--per-user-per-minute", str(args.per_user_per_minute)]
    bot_args += ["--per-user-per-hour", str(args.per_user_per_hour), "--limit", str(args.limit)]
    t = time.monotonic()
    wait_exit(spawn("salesbot", bot_args, 0, tmp / "salesbot.log", stop_signal=signal.SIGTERM), BOT_LIMIT_S)
    say(f"  salesbot run took {time.monotonic() - t:.1f}s")
    bot = json.loads(bot_out.read_text())
    bot_fake = asyncio.run(collect(fake))
    expected, bodies, pg_size = asyncio.run(outbox_cards(db_url))
    db_mb = pg_size if pg else sum(p.stat().st_size for p in tmp.glob("fanout.db*")) / 2**20
    violations: list[str] = []
    cards = args.requests * len(DEPARTMENTS)
    if bot["rows"] != cards or bot["statuses"].get("sent", 0) != cards:
        violations.append(f"salesbot: outbox rows {bot['statuses']} for {cards} cards ({bot['open_rows']} open)")
    check_fake("salesbot", bot_fake, expected, violations)

    # ---- baseline, on a fresh fake (task_ids are single use)
    fake2 = start_fake(args, tmp, "fake-wecom-baseline")
    fakes.append(fake2)
    asyncio.run(wait_healthy(fake2, limit_s=HEALTHY_LIMIT_S, path="/_fake/stats"))
    bodies_file = tmp / "bodies.json"
    bodies_file.write_text(json.dumps(bodies, ensure_ascii=False), encoding="utf-8")
    base_out = tmp / "baseline.json"
    base_args = [str(SCRIPT), "--run-baseline", str(bodies_file), "--fake", fake2.base, "--out", str(base_out)]
    base_args += ["--app-calls-per-minute", str(args.app_calls_per_minute)]
    wait_exit(spawn("baseline", base_args, 0, tmp / "baseline.log", stop_signal=signal.SIGTERM), BASELINE_LIMIT_S)
    base = json.loads(base_out.read_text())
    base_fake = asyncio.run(collect(fake2))
    if base["errors"]:
        violations.append(f"baseline: errcodes {base['errors']}")
    check_fake("baseline", base_fake, expected, violations)

    # ---- the table
    b_time, s_time = base["elapsed_s"], bot["first_enqueue_to_last_sent_s"]
    table: list[tuple[str, float | None, float | None, int]] = [
        ("time to deliver all cards s", b_time, s_time, 2),
        ("cards delivered/s", cards / b_time, cards / s_time, 0),
        ("message/send calls/s at the fake", base_fake.rate, bot_fake.rate, 0),
        ("p50 enqueue->delivered ms", base["lat_ms_p50"], bot["lat_ms_p50"], 0),
        ("p99 enqueue->delivered ms", base["lat_ms_p99"], bot["lat_ms_p99"], 0),
        ("max enqueue->delivered ms", base["lat_ms_max"], bot["lat_ms_max"], 0),
        ("process CPU s", base["cpu_s"], bot["cpu_s"], 1),
        ("RSS before the run MB", base["rss_idle_mb"], bot["rss_idle_mb"], 0),
        ("peak RSS (VmHWM) MB", base["rss_peak_mb"], bot["rss_peak_mb"], 0),
    ]
    say("")
    say(f"{'metric':36} {'baseline':>10} {'salesbot':>10} {'ratio':>7}")
    for name, b, s, d in table:
        ratio = s / b if b and s is not None and b == b and s == s else None
        say(f"{name:36} {fmt(b, d):>10} {fmt(s, d):>10} {fmt(ratio, 2):>7}")
    say("")
    say(
        f"salesbot: {args.requests} requests created in {bot['created_s']:.1f}s "
        f"({args.requests / bot['created_s']:.0f}/s; transaction p50 {bot['tx_ms_p50']:.1f} ms, "
        f"p99 {bot['tx_ms_p99']:.1f} ms), outbox empty {bot['drained_s']:.1f}s after the first; "
        f"outbox rows {bot['statuses']}"
    )
    say(
        f"  deferred by the per-person throttle: {bot['deferred']:.0f}, retried: {bot['retry']:.0f}, "
        f"dead: {bot['dead']:.0f}, released (order kept after a failure): {bot['released']:.0f}"
    )
    say(f"  database after the run: {db_mb:.1f} MB ({'pg_database_size' if pg else 'SQLite file + WAL'})")
    for name, rep in (("baseline", base_fake), ("salesbot", bot_fake)):
        st = rep.stats
        say(
            f"  fake ({name}): {rep.sends} message/send, {st['requests'].get('gettoken', 0)} gettoken, "
            f"{st['delivered_messages']} delivered, {st['suppressed_duplicates']} suppressed, "
            f"{st['silently_dropped']} dropped, {len(st['violations'])} violations"
        )
    say(f"  baseline: {base['streams']} ordered streams (one per first recipient, like the outbox's chains)")
    load = os.getloadavg()[0]
    say(f"  load average (1 min) at the end: {load:.2f}")
    if violations:
        say(f"FAIL: {len(violations)} violation(s)")
        for x in violations[:20]:
            say(f"  - {x}")
        return 1
    say("PASS: every card delivered exactly once at the fake, no violation")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--serve-fake" in argv:
        serve_fake(argv)
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=1000, help="support requests (3 task cards each)")
    ap.add_argument("--reps", type=int, default=50, help="reps creating the requests (round robin)")
    ap.add_argument("--members", type=int, default=10, help="members per department (plus one head)")
    ap.add_argument(
        "--db",
        default=None,
        help="database URL (default: a fresh SQLite file); for PostgreSQL, a scratch database is created on the "
        "server the URL names and dropped (never the database in the URL)",
    )
    ap.add_argument("--app-calls-per-minute", type=int, default=10000, help="app API budget (WeCom: 10,000/min)")
    ap.add_argument(
        "--per-user-per-minute",
        type=int,
        default=100000,
        help="per-person budget at the fake and the bot (WeCom: 30; a department person gets every card)",
    )
    ap.add_argument("--per-user-per-hour", type=int, default=100000, help="per-person hourly budget (WeCom: 1000)")
    ap.add_argument("--limit", type=float, default=300.0, help="seconds to wait for the outbox to drain")
    ap.add_argument("--keep", action="store_true", help="keep the working directory (db, logs)")
    ap.add_argument("--run-bot", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--run-baseline", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--fake", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.run_bot:
        asyncio.run(bot_main(args))
        return 0
    if args.run_baseline:
        asyncio.run(baseline_main(args))
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="salesbot-fanout-"))
    try:
        return run(args, tmp)
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
