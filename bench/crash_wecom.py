"""Crash test of the WeCom channel: callbacks keep coming while the bot is killed with SIGKILL and restarted.

Run from the repository root (about a minute on 2 cores):

    python bench/crash_wecom.py [--seed 1] [--callbacks 1000] [--users 50] [--concurrency 20] [--kills 2]
                                [--db URL] [--lease SECONDS] [--keep]

Everything runs as real processes on 127.0.0.1:

* the fake WeCom API (``python -m tests.fakes.wecom``), which counts what reaches each user and suppresses a copy
  sent with ``enable_duplicate_check=1`` (as WeCom does);
* the bot (``python -m bot.cli serve``) with WeCom enabled, its API pointed at the fake, on a SQLite file (or the
  PostgreSQL database ``--db`` names, created fresh and dropped at the end), after ``db upgrade`` and ``import org``
  of a generated directory of reps whose WeCom userids are u01, u02, …;
* the driver in this process, playing WeCom's callback side: it sends the text callbacks (``帮助`` and ``我的拜访``
  alternating per user, unique MsgIds) with the given concurrency, and replays every callback that got no 200
  (connection error, timeout, non-200) like WeCom does: same MsgId, fresh timestamp and nonce.

Kill 1 happens in the middle of the callback load, at a random callback (seeded) whose first attempt has sent
half its body when the bot dies: at least that callback is in flight at the kill and is replayed. Kill 2 happens
while the restarted bot is delivering replies: once the fake has received a random share (10-70%) of all replies and
the outbox has at least 5 rows claimed (``sending``). After each kill the bot is started again at once. The bot runs
with the default outbox lease (``--lease`` overrides it): the restarted process reclaims its dead predecessor's rows
at start. When every callback has been acknowledged, the driver waits until the outbox is drained (read-only reads of
the database) and checks:

(a) every acknowledged MsgId has exactly one ``inbound_events`` row, with status ``done``;
(b) per user and per command, the replies the fake delivered (suppressed duplicates excluded) equal the commands;
(c) every extra ``message/send`` beyond one per reply is a call that reached the fake but was not recorded as sent
    at a kill (in flight), and each was suppressed by WeCom's duplicate check (so it carried the flag);
(d) no outbox row is dead (and no inbound event failed, no fake violation, nothing dropped by rate limits).

It also times the recovery: per kill, every reply owed at that moment (a command stored in ``inbound_events`` whose
reply had not reached the fake) is timed from the restart (the new process spawned) to its arrival at the fake;
the report gives the max and the p99 (``Report.restart_delays``).

The exit status is 1 on any violation. ``run_crash_test()`` does the same from Python (tests/test_crash_wecom.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parents[1]
# The repository root for bot, cards and tests; bench/ for procs.py, which is sys.path[0] only when this file is run
# as a script (tests/test_crash_wecom.py loads it by path).
for _path in (ROOT, SCRIPT.parent):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from procs import (  # noqa: E402
    COMMANDS,
    HOST,
    DbReader,
    Delays,
    Proc,
    claimed_owed,
    classify_reply,
    cli,
    free_port,
    pg_database,
    scratch_database_url,
    spawn,
    time_kills,
    together,
    wait_healthy,
)

from cards.wecom import strip_dedup_tag  # noqa: E402
from tests.fakes.wecom_callbacks import WeComSigner  # noqa: E402

CORP_ID = "wwcrashcorp0001"
AGENT_ID = 1000002
APP_SECRET = "crash-app-secret"
CALLBACK_TOKEN = "crashToken"
# 43 base64 characters (the EncodingAESKey of the app).
AES_KEY = "CrashTestEncodingAesKey0123456789abcdefghij"
CALLBACK_PATH = "/wecom/callback"
# WeCom gives up on a callback after 5 s.
CALLBACK_TIMEOUT = 5.0


# ---- the deployment under test --------------------------------------------------------------------------------


def wecom_userids(users: int) -> list[str]:
    width = max(2, len(str(users)))
    return [f"u{i:0{width}d}" for i in range(1, users + 1)]


def write_org(path: Path, userids: list[str]) -> None:
    """The org directory: one rep per WeCom user (directory id ``rep-uNN``, WeCom userid ``uNN``)."""
    lines = ["user_id,name,roles,wecom_userid"]
    lines += [f"rep-{u},代表{u[1:]},rep,{u}" for u in userids]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def outbox_section(lease: float | None) -> str:
    """The ``[outbox]`` section: the default lease unless ``lease`` overrides it."""
    return "" if lease is None else f"[outbox]\nlease_seconds = {lease}\n"


def write_config(
    path: Path, *, db_url: str, port: int, fake_port: int, lease: float | None = None, extra: str = ""
) -> None:
    path.write_text(
        f"""[server]
host = "{HOST}"
port = {port}

[database]
url = "{db_url}"

{outbox_section(lease)}
[wecom]
enabled = true
corp_id = "{CORP_ID}"
agent_id = {AGENT_ID}
secret = "{APP_SECRET}"
token = "{CALLBACK_TOKEN}"
encoding_aes_key = "{AES_KEY}"
api_base_url = "http://{HOST}:{fake_port}/cgi-bin/"
replay_window_seconds = 300
per_user_per_minute = 30
per_user_per_hour = 1000

[logging]
level = "WARNING"
{extra}""",
        encoding="utf-8",
    )


def start_fake(tmp: Path, userids: list[str]) -> Proc:
    port = free_port()
    args = ["-m", "tests.fakes.wecom", "--port", str(port), "--corp-id", CORP_ID, "--secret", APP_SECRET]
    args += ["--agent-id", str(AGENT_ID), "--known-users", ",".join(userids)]
    return spawn("fake-wecom", args, port, tmp / "fake_wecom.log")


def start_bot(config: Path, port: int, log: Path) -> Proc:
    return spawn("salesbot", ["-m", "bot.cli", "serve", "--config", str(config)], port, log)


async def fake_stats(http: aiohttp.ClientSession, fake: Proc) -> dict[str, Any]:
    async with http.get(f"{fake.base}/_fake/stats") as r:
        r.raise_for_status()
        data: dict[str, Any] = await r.json()
        return data


async def fake_delivered(http: aiohttp.ClientSession, fake: Proc) -> list[dict[str, Any]]:
    async with http.get(f"{fake.base}/_fake/delivered") as r:
        r.raise_for_status()
        data: list[dict[str, Any]] = await r.json()
        return data


# ---- reading the database (read-only) -------------------------------------------------------------------------


@dataclass
class DbState:
    inbound: dict[str, int]
    outbox: dict[str, int]

    @property
    def outbox_open(self) -> int:
        return self.outbox.get("pending", 0) + self.outbox.get("sending", 0)


async def db_state(db: DbReader) -> DbState:
    inbound = dict(await db.rows("SELECT status, count(*) FROM inbound_events GROUP BY status"))
    outbox = dict(await db.rows("SELECT status, count(*) FROM outbox GROUP BY status"))
    return DbState({str(k): int(v) for k, v in inbound.items()}, {str(k): int(v) for k, v in outbox.items()})


async def stored_commands(db: DbReader) -> Counter[str]:
    """Inbound events stored per sender (each command is owed one reply)."""
    return Counter(
        {str(u): int(n) for u, n in await db.rows("SELECT sender, count(*) FROM inbound_events GROUP BY sender")}
    )


# ---- callbacks ------------------------------------------------------------------------------------------------


@dataclass
class Callback:
    index: int
    user: str
    text: str
    msg_id: int
    create_time: int
    attempts: int = 0
    acked: bool = False
    failures: list[str] = field(default_factory=list)


def plan_callbacks(userids: list[str], n: int, rng: random.Random) -> list[Callback]:
    """``n`` text callbacks, round robin over the users, each user alternating between the two commands."""
    base = rng.randrange(10**18, 9 * 10**18)  # MsgIds are 64-bit integers, unique per message
    now = int(time.time())
    return [Callback(i, userids[i % len(userids)], COMMANDS[(i // len(userids)) % 2], base + i, now) for i in range(n)]


class Sealer:
    """WeCom's side of the callback: seal a text message with a fresh timestamp and nonce (as each retry does)."""

    def __init__(self) -> None:
        self.signer = WeComSigner(CALLBACK_TOKEN, AES_KEY, CORP_ID, AGENT_ID)

    def seal(self, cb: Callback) -> tuple[dict[str, str], bytes]:
        inner = self.signer.text(cb.user, cb.text, cb.msg_id, cb.create_time)
        return self.signer.envelope(inner, int(time.time()), str(secrets.randbelow(10**10)))


# ---- the run --------------------------------------------------------------------------------------------------


@dataclass
class Kill:
    number: int
    reason: str
    at_s: float  # seconds since the first callback
    callbacks_started: int
    callbacks_acked: int
    callbacks_in_flight: int
    db: DbState
    sends_at_fake: int  # message/send requests the fake had received when the process was dead
    unrecorded: int  # sends at the fake minus outbox rows marked sent (frozen at the kill)
    in_flight_sends: int  # of which new at this kill: API calls in flight (reached the fake, not recorded)
    restart_s: float  # SIGKILL → /healthz 200 of the new process
    # Per user, replies owed at the kill (commands stored minus replies delivered); timed against the deliveries.
    owed: dict[str, int] = field(default_factory=dict)
    t_kill: float = 0.0  # time.monotonic() of the SIGKILL (the fake's clock too)
    t_restart: float = 0.0  # time.monotonic() when the new process was spawned
    delays: Delays = field(default_factory=Delays)
    # The same for the replies claimed at the kill (outbox rows sending): what the leases held back.
    owed_outbox: dict[str, int] = field(default_factory=dict)
    outbox_delays: Delays = field(default_factory=Delays)


@dataclass
class Report:
    seed: int
    callbacks: int
    users: int
    backend: str = "sqlite"
    lease: float | None = None
    kills: list[Kill] = field(default_factory=list)
    acked: int = 0
    replays: int = 0  # callback attempts beyond the first
    failures_by_kind: dict[str, int] = field(default_factory=dict)
    inbound_rows: int = 0
    inbound_done: int = 0
    outbox_rows: int = 0
    outbox_sent: int = 0
    outbox_dead: int = 0
    send_requests: int = 0
    delivered_messages: int = 0
    suppressed_duplicates: int = 0
    flagged_deliveries: int = 0  # deliveries carrying enable_duplicate_check=1 (the first copy never arrived)
    reclaimed: int = 0  # outbox rows whose API call was in flight at a kill
    silently_dropped: int = 0
    fake_violations: list[str] = field(default_factory=list)
    load_s: float = 0.0
    drain_s: float = 0.0
    total_s: float = 0.0
    violations: list[str] = field(default_factory=list)

    @property
    def restart_delays(self) -> Delays:
        """Every kill's owed replies together: seconds from the restart to delivery."""
        return together(k.delays for k in self.kills)

    @property
    def outbox_restart_delays(self) -> Delays:
        """The same for the replies that were claimed (outbox rows sending) at a kill."""
        return together(k.outbox_delays for k in self.kills)

    def summary(self) -> str:
        lease = "default lease" if self.lease is None else f"lease {self.lease:g}s"
        lines = [
            f"seed {self.seed}: {self.callbacks} callbacks from {self.users} users, {len(self.kills)} SIGKILL(s), "
            f"{self.backend}, {lease}",
        ]
        for k in self.kills:
            lines.append(
                f"  kill {k.number} ({k.reason}) at {k.at_s:.1f}s: callbacks started {k.callbacks_started}, "
                f"acked {k.callbacks_acked}, in flight {k.callbacks_in_flight}; "
                f"inbound {_fmt(k.db.inbound)}; outbox {_fmt(k.db.outbox)}; "
                f"sends at fake {k.sends_at_fake}, API calls in flight {k.in_flight_sends}; "
                f"back up after {k.restart_s:.1f}s; {k.delays.text()} (of which claimed at the kill: "
                f"{k.outbox_delays.text()})"
            )
        fails = ", ".join(f"{n} {kind}" for kind, n in sorted(self.failures_by_kind.items())) or "none"
        lines += [
            f"  callbacks: {self.acked}/{self.callbacks} acknowledged, {self.replays} replays (failed attempts: "
            f"{fails})",
            f"  inbound_events: {self.inbound_rows} rows, {self.inbound_done} done",
            f"  outbox: {self.outbox_rows} rows, {self.outbox_sent} sent, {self.outbox_dead} dead",
            f"  fake WeCom: {self.send_requests} message/send calls, {self.delivered_messages} delivered "
            f"({self.flagged_deliveries} of them with enable_duplicate_check=1), {self.suppressed_duplicates} "
            f"suppressed as duplicates, {self.silently_dropped} dropped by rate limit, "
            f"{len(self.fake_violations)} violations",
            f"  extra sends: {self.send_requests - self.outbox_rows}, API calls in flight at the kills: "
            f"{sum(k.in_flight_sends for k in self.kills)}; rows with a call in flight at a kill (resent with "
            f"enable_duplicate_check=1): {self.reclaimed}",
            f"  replies lost (suppressed although never delivered): "
            f"{max(0, self.outbox_rows - self.delivered_messages)}",
            f"  after the restarts: {self.restart_delays.text()}",
            f"  of which claimed (outbox rows sending) at a kill: {self.outbox_restart_delays.text()}",
            f"  time: load {self.load_s:.1f}s, drain {self.drain_s:.1f}s, total {self.total_s:.1f}s",
        ]
        if self.violations:
            lines.append(f"FAIL: {len(self.violations)} violation(s)")
            lines += [f"  - {v}" for v in self.violations[:30]]
        else:
            lines.append("PASS")
        return "\n".join(lines)


def _fmt(counts: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "empty"


class CrashRun:
    def __init__(
        self,
        tmp: Path,
        *,
        seed: int,
        callbacks: int,
        users: int,
        concurrency: int,
        kills: int,
        db_url: str | None = None,
        lease: float | None = None,
        max_attempts: int = 10,
        log: Any = None,
    ) -> None:
        self.tmp = tmp
        self.rng = random.Random(seed)
        self.userids = wecom_userids(users)
        self.n = callbacks
        self.concurrency = concurrency
        self.kills_wanted = kills
        self.max_attempts = max_attempts
        self.db_url = db_url or f"sqlite+aiosqlite:///{tmp / 'crash.db'}"
        self.db = DbReader(self.db_url)
        self.lease = lease
        self.config = tmp / "crash.toml"
        self.report = Report(seed, callbacks, users, "sqlite" if self.db.is_sqlite else "postgresql", lease)
        self.say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.sealer = Sealer()
        self.calls = plan_callbacks(self.userids, callbacks, self.rng)
        self.started = 0
        self.in_flight = 0
        self.up = asyncio.Event()
        self.bot: Proc | None = None
        self.fake: Proc | None = None
        self.bot_port = 0
        self.bot_starts = 0
        self.t0 = 0.0
        self.load_done = asyncio.Event()
        self.kill1_at = self.rng.randint(self.n // 4, self.n // 2)
        self.kill1_due = asyncio.Event()
        self.kill1_fired = asyncio.Event()

    # ---- setup / teardown --------------------------------------------------------------------------------

    async def setup(self) -> None:
        if not self.db.is_sqlite:
            await pg_database(self.db_url, create=True)
        self.fake = start_fake(self.tmp, self.userids)
        self.bot_port = free_port()
        write_config(self.config, db_url=self.db_url, port=self.bot_port, fake_port=self.fake.port, lease=self.lease)
        org = self.tmp / "org.csv"
        write_org(org, self.userids)
        await asyncio.to_thread(cli, self.config, "db", "upgrade")
        self.say(await asyncio.to_thread(cli, self.config, "import", "org", str(org)))
        await asyncio.gather(wait_healthy(self.fake, path="/_fake/stats"), self.start_bot())

    async def start_bot(self) -> None:
        self.bot_starts += 1
        self.bot = start_bot(self.config, self.bot_port, self.tmp / f"salesbot-{self.bot_starts}.log")
        await wait_healthy(self.bot)
        self.up.set()

    async def teardown(self) -> None:
        for p in (self.bot, self.fake):
            if p is not None:
                p.stop()
        await self.db.close()
        if not self.db.is_sqlite:
            await pg_database(self.db_url, create=False)

    # ---- the chaos -----------------------------------------------------------------------------------------

    async def kill_and_restart(self, http: aiohttp.ClientSession, reason: str) -> None:
        assert self.bot is not None and self.fake is not None
        self.up.clear()
        t_kill = time.monotonic()
        started, acked, in_flight = self.started, sum(c.acked for c in self.calls), self.in_flight
        self.bot.kill()
        self.kill1_fired.set()
        # Frozen now: nothing writes the database. The fake may still be reading a request that left the bot just
        # before the kill: read its counters until two reads 50 ms apart agree.
        stats = await fake_stats(http, self.fake)
        for _ in range(20):
            await asyncio.sleep(0.05)
            again = await fake_stats(http, self.fake)
            if again["requests"] == stats["requests"]:
                break
            stats = again
        state = await db_state(self.db)
        commands = await stored_commands(self.db)
        open_rows = await self.db.rows(
            "SELECT recipient, count(*) FROM outbox WHERE status = 'sending' GROUP BY recipient"
        )
        delivered: Counter[str] = Counter(u.lower() for d in await fake_delivered(http, self.fake) for u in d["touser"])
        sends = int(stats["requests"].get("message/send", 0))
        unrecorded = sends - state.outbox.get("sent", 0)
        previous = self.report.kills[-1].unrecorded if self.report.kills else 0
        owed = {u.lower(): n - delivered[u.lower()] for u, n in commands.items()}
        t_restart = time.monotonic()
        await self.start_bot()
        kill = Kill(
            number=len(self.report.kills) + 1,
            reason=reason,
            at_s=t_kill - self.t0,
            callbacks_started=started,
            callbacks_acked=acked,
            callbacks_in_flight=in_flight,
            db=state,
            sends_at_fake=sends,
            unrecorded=unrecorded,
            in_flight_sends=unrecorded - previous,
            restart_s=time.monotonic() - t_kill,
            owed=owed,
            t_kill=t_kill,
            t_restart=t_restart,
            # Directory ids are rep-<WeCom userid> (write_org).
            owed_outbox=claimed_owed({str(r).removeprefix("rep-").lower(): int(n) for r, n in open_rows}, owed),
        )
        self.report.kills.append(kill)
        self.say(
            f"kill {kill.number} ({reason}) at {kill.at_s:.1f}s: callbacks started {started}, in flight {in_flight}; "
            f"outbox {_fmt(state.outbox)}; {kill.in_flight_sends} API call(s) in flight; "
            f"restarted in {kill.restart_s:.1f}s"
        )

    async def chaos(self, http: aiohttp.ClientSession) -> None:
        assert self.fake is not None
        if self.kills_wanted < 1:
            return
        # Kill 1: at a random callback in the middle of the load (drawn in __init__).
        await self.kill1_due.wait()
        await asyncio.sleep(self.rng.uniform(0, 0.05))
        await self.kill_and_restart(http, f"during the callback load, at callback {self.started}")
        for number in range(2, self.kills_wanted + 1):
            # Later kills: while the restarted bot is delivering replies, once the fake has received a random
            # share (10-70%) of all the replies (at least 20 sends by the restarted bot).
            base = int((await fake_stats(http, self.fake))["requests"].get("message/send", 0))
            target = max(base + 20, self.rng.randint(self.n // 10, self.n * 7 // 10))
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                sends = int((await fake_stats(http, self.fake))["requests"].get("message/send", 0))
                # ... and in the middle of a claimed batch (rows marked sending by the outbox worker).
                if sends >= target and (await db_state(self.db)).outbox.get("sending", 0) >= 5:
                    break
                if self.load_done.is_set() and (await db_state(self.db)).outbox_open == 0:
                    break  # nothing left to deliver: kill anyway (reported as such)
                await asyncio.sleep(0.01)
            state = await db_state(self.db)
            what = "while delivering replies" if state.outbox_open else "outbox idle"
            await self.kill_and_restart(
                http, f"{what}, after {sends - base} sends by the restarted bot (kill {number})"
            )

    # ---- the driver -----------------------------------------------------------------------------------------

    async def straddle(self, cb: Callback) -> None:
        """The first attempt of the kill-1 callback: half its body is written, then kill 1 is due; the bot dies
        while it waits for the rest, so this callback is certainly in flight at the kill and must be replayed.

        (Callbacks merely counted in flight at the kill may already have their 200 in the socket's buffers: a kill
        right after a group commit leaves no callback to replay, and the scenario would not be the one under test.)
        """
        cb.attempts += 1
        query, body = self.sealer.seal(cb)
        target = f"{CALLBACK_PATH}?{urlencode(query)}"
        head = (
            f"POST {target} HTTP/1.1\r\nHost: {HOST}:{self.bot_port}\r\nContent-Type: text/xml\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        reader, writer = await asyncio.open_connection(HOST, self.bot_port)
        try:
            writer.write(head + body[: len(body) // 2])
            await writer.drain()
            self.kill1_due.set()
            await self.kill1_fired.wait()
            status = await reader.readline()  # b"" (closed) or a reset: the bot died before the body was complete
            cb.failures.append(f"cut by the kill ({status.decode(errors='replace').strip() or 'closed'})")
        except OSError as exc:
            cb.failures.append(f"cut by the kill ({exc.__class__.__name__})")
        finally:
            writer.close()

    async def send(self, http: aiohttp.ClientSession, cb: Callback) -> None:
        assert self.bot is not None
        if cb.index == self.kill1_at and self.kills_wanted >= 1:
            await self.straddle(cb)
        for attempt in range(self.max_attempts):
            try:
                await asyncio.wait_for(self.up.wait(), 60)
            except TimeoutError:
                cb.failures.append("bot down")
                continue
            cb.attempts += 1
            query, body = self.sealer.seal(cb)
            url = f"http://{HOST}:{self.bot_port}{CALLBACK_PATH}"
            try:
                async with http.post(url, params=query, data=body) as r:
                    await r.read()
                    if r.status == 200:
                        cb.acked = True
                        return
                    cb.failures.append(f"http {r.status}")
            except TimeoutError:
                cb.failures.append("timeout")
            except aiohttp.ClientError as exc:
                cb.failures.append(exc.__class__.__name__)
            # WeCom retries after a few seconds; compressed here, and the kill handler holds us until /healthz.
            await asyncio.sleep(min(0.05 * 2**attempt, 1.0))

    async def load(self, http: aiohttp.ClientSession) -> None:
        it = iter(self.calls)

        async def worker() -> None:
            for cb in it:
                self.started += 1
                self.in_flight += 1
                try:
                    await self.send(http, cb)
                finally:
                    self.in_flight -= 1

        await asyncio.gather(*(worker() for _ in range(self.concurrency)))
        self.report.load_s = time.monotonic() - self.t0
        self.load_done.set()

    async def wait_drained(self, limit_s: float) -> None:
        """Until no inbound event is pending and no outbox row is pending or sending (polling the file)."""
        deadline = time.monotonic() + limit_s
        while True:
            state = await db_state(self.db)
            if state.inbound.get("pending", 0) == 0 and state.outbox_open == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"not drained after {limit_s:.0f}s: inbound {state.inbound}, outbox {state.outbox}")
            await asyncio.sleep(0.1)

    async def run(self) -> Report:
        t_start = time.monotonic()
        try:
            await self.setup()
            timeout = aiohttp.ClientTimeout(total=CALLBACK_TIMEOUT)
            connector = aiohttp.TCPConnector(limit=self.concurrency + 4)
            async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
                self.say(f"sending {self.n} callbacks from {len(self.userids)} users, concurrency {self.concurrency}")
                self.t0 = time.monotonic()
                # A failed restart ends the load at once (TaskGroup cancels the other task).
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self.chaos(http))
                    tg.create_task(self.load(http))
                t_drain = time.monotonic()
                # Generous: with a 60 s lease (the old default) the reclaimed rows alone wait a minute per kill.
                await self.wait_drained(limit_s=240)
                self.report.drain_s = time.monotonic() - t_drain
                await self.verify(http)
        finally:
            await self.teardown()
        self.report.total_s = time.monotonic() - t_start
        return self.report

    # ---- the checks ----------------------------------------------------------------------------------------

    async def verify(self, http: aiohttp.ClientSession) -> None:
        assert self.fake is not None
        r = self.report
        v = r.violations
        acked = [c for c in self.calls if c.acked]
        r.acked = len(acked)
        r.replays = sum(c.attempts for c in self.calls) - len(self.calls)
        kinds: Counter[str] = Counter(f for c in self.calls for f in c.failures)
        r.failures_by_kind = dict(kinds)
        for c in self.calls:
            if not c.acked:
                v.append(f"callback {c.msg_id} from {c.user} never acknowledged after {c.attempts} attempts")

        inbound = await self.db.rows("SELECT dedup_key, sender, status FROM inbound_events")
        outbox = await self.db.rows("SELECT recipient, status, attempts, calls_started FROM outbox")
        # Rows whose API call was in flight at a kill (more calls started than outcomes recorded): resent with the
        # duplicate check.
        r.reclaimed = sum(1 for _, _, attempts, calls in outbox if calls > max(attempts, 1))
        r.inbound_rows = len(inbound)
        r.inbound_done = sum(1 for _, _, s in inbound if s == "done")
        rows_by_key: dict[str, list[str]] = {}
        for key, _sender, status in inbound:
            rows_by_key.setdefault(key, []).append(status)
        # (a) one inbound row per acknowledged MsgId, handled.
        for c in acked:
            statuses = rows_by_key.get(f"msg:{c.msg_id}", [])
            if statuses != ["done"]:
                v.append(f"(a) MsgId {c.msg_id} from {c.user}: inbound rows {statuses}, expected one 'done'")
        expected_keys = {f"msg:{c.msg_id}" for c in self.calls}
        strays = [k for k in rows_by_key if k not in expected_keys]
        if strays:
            v.append(f"(a) {len(strays)} inbound rows for MsgIds never sent, e.g. {strays[:3]}")
        # One reply per command in the outbox, all sent; (d) none dead.
        r.outbox_rows = len(outbox)
        r.outbox_sent = sum(1 for _, s, _, _ in outbox if s == "sent")
        r.outbox_dead = sum(1 for _, s, _, _ in outbox if s == "dead")
        if r.outbox_dead:
            v.append(f"(d) {r.outbox_dead} outbox rows dead")
        if r.outbox_rows != len(acked):
            v.append(f"outbox holds {r.outbox_rows} rows for {len(acked)} acknowledged commands")
        if r.outbox_sent != r.outbox_rows:
            v.append(
                f"outbox: only {r.outbox_sent} of {r.outbox_rows} rows sent ({Counter(s for _, s, _, _ in outbox)})"
            )
        failed = r.inbound_rows - r.inbound_done
        if failed:
            v.append(f"{failed} inbound events not done: {Counter(s for _, _, s in inbound)}")

        stats = await fake_stats(http, self.fake)
        delivered = await fake_delivered(http, self.fake)
        r.send_requests = int(stats["requests"].get("message/send", 0))
        r.delivered_messages = int(stats["delivered_messages"])
        r.suppressed_duplicates = int(stats["suppressed_duplicates"])
        r.silently_dropped = int(stats["silently_dropped"])
        r.fake_violations = list(stats["violations"])
        r.flagged_deliveries = sum(1 for d in delivered if d["body"].get("enable_duplicate_check") == 1)
        arrivals = [(u.lower(), float(d["at"])) for d in delivered for u in d["touser"]]
        time_kills(r.kills, arrivals, v)
        if r.fake_violations:
            v.append(f"fake WeCom saw {len(r.fake_violations)} violations, e.g. {r.fake_violations[:3]}")
        if r.silently_dropped:
            v.append(f"fake WeCom silently dropped {r.silently_dropped} messages (rate limit)")

        # (b) per user and command: replies delivered == commands acknowledged.
        expected: Counter[tuple[str, str]] = Counter((c.user, c.text) for c in acked)
        got: Counter[tuple[str, str]] = Counter()
        for d in delivered:
            text = strip_dedup_tag(d["body"].get("text", {}).get("content", "")) if d["msgtype"] == "text" else ""
            for u in d["touser"]:
                got[(u.lower(), classify_reply(text))] += 1
        wrong = [(k, got[k], expected[k]) for k in sorted(set(expected) | set(got)) if got[k] != expected[k]]
        if wrong:
            missing = sum(max(0, e - g) for _, g, e in wrong)
            extra_seen = sum(max(0, g - e) for _, g, e in wrong)
            examples = "; ".join(f"{u} {cmd}: {g} delivered for {e} commands" for (u, cmd), g, e in wrong[:5])
            v.append(
                f"(b) {len(wrong)} (user, command) pairs wrong: {missing} replies missing, {extra_seen} seen twice "
                f"(e.g. {examples})"
            )
        # (c) every send beyond one per reply was in flight at a kill and was suppressed as a duplicate.
        extra = r.send_requests - r.outbox_rows
        in_flight = sum(k.in_flight_sends for k in r.kills)
        if extra != in_flight:
            v.append(f"(c) {extra} extra message/send calls, but {in_flight} were in flight at the kills")
        if r.suppressed_duplicates != extra:
            v.append(
                f"(c) {r.suppressed_duplicates} sends suppressed by enable_duplicate_check, {extra} extra sends: "
                "a resend went out without the flag, or a reply that never arrived was suppressed"
            )


def run_crash_test(
    workdir: Path | None = None,
    *,
    seed: int = 1,
    callbacks: int = 1000,
    users: int = 50,
    concurrency: int = 20,
    kills: int = 2,
    db_url: str | None = None,
    lease: float | None = None,
    log: Any = None,
) -> Report:
    """Run the whole crash test; ``workdir`` keeps the files (else a temporary directory is removed). ``db_url``: a
    PostgreSQL database to create, use and drop (default: a SQLite file); ``lease``: ``[outbox] lease_seconds``."""

    def go(tmp: Path) -> Report:
        run = CrashRun(
            tmp,
            seed=seed,
            callbacks=callbacks,
            users=users,
            concurrency=concurrency,
            kills=kills,
            db_url=db_url,
            lease=lease,
            log=log,
        )
        return asyncio.run(run.run())

    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        return go(workdir)
    with tempfile.TemporaryDirectory(prefix="salesbot-crash-") as d:
        return go(Path(d))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=1, help="seeds the kill moments and MsgIds (default 1)")
    ap.add_argument("--callbacks", type=int, default=1000)
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--kills", type=int, default=2, help="SIGKILLs: 1 = during the load, 2 = also while delivering")
    ap.add_argument(
        "--db",
        help="a PostgreSQL server URL: the test works in a scratch database it creates there and drops; default SQLite",
    )
    ap.add_argument("--lease", type=float, help="[outbox] lease_seconds (default: the config default)")
    ap.add_argument("--keep", action="store_true", help="keep the working directory (db, logs)")
    ap.add_argument("--json", action="store_true", help="print the report as JSON too")
    args = ap.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="salesbot-crash-")) if args.keep else None
    if workdir is not None:
        print(f"keeping {workdir}", file=sys.stderr)
    report = run_crash_test(
        workdir,
        seed=args.seed,
        callbacks=args.callbacks,
        users=args.users,
        concurrency=args.concurrency,
        kills=args.kills,
        db_url=scratch_database_url(args.db, "salesbot_crash") if args.db else None,
        lease=args.lease,
    )
    print(report.summary())
    if args.json:
        from dataclasses import asdict

        print(json.dumps(asdict(report), ensure_ascii=False, indent=1))
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
