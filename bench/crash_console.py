"""Crash test of the console channel: commands keep coming while the bot is killed with SIGKILL and restarted.

Run from the repository root (about 20 s on 2 cores):

    python bench/crash_console.py [--seed 1] [--commands 600] [--users 20] [--concurrency 16] [--kills 2]
                                  [--db URL] [--lease SECONDS] [--keep]

The console twin of ``bench/crash_wecom.py``, through the console's own endpoints:

* the bot (``python -m bot.cli serve``, ``[org] demo = true`` so that the console signs people in by user id) on a
  SQLite file or the PostgreSQL database ``--db`` names (created fresh, dropped at the end), after ``db upgrade`` and
  ``import org`` of a generated directory of reps c01, c02, …;
* the driver in this process: one signed-in session per rep (the session survives restarts, it is a row), sending
  ``帮助`` and ``我的拜访`` alternately through ``POST /console/api/send`` with the given concurrency, each with its
  own ``client_id``; a send that got no 200 is repeated with the same ``client_id`` (the console's dedup key) once
  the bot answers ``/healthz`` again.

Kill 1 comes at a seeded random send between the first quarter and the half; kill 2 while the restarted bot is
delivering (a seeded 10-70 % of the replies are in the feed and some outbox rows are ``sending``). A console round
is over in milliseconds (its feed rows go in the round's outcome commit), so the driver makes sure of the moment:
once rows are ``sending`` it holds them (``ClaimHold``: SQLite's write lock, or the rows' locks on PostgreSQL, the
way a slow disk would hold the commit) and kills the bot while the round waits to record them. The console
channel delivers by writing ``console_feed`` rows, idempotent per (outbox row, user), so a redelivery after a crash
never shows twice. Once every send is acknowledged and the outbox is drained, the driver checks:

(a) every acknowledged send has exactly one ``inbound_events`` row, ``done``;
(b) per user and command, the bot's replies in the feed equal the commands sent;
(c) one feed row per outbox row (nothing doubled), and (d) every outbox row ``sent``, none dead.

Per kill, every reply owed at that moment (a command stored whose reply was not yet in the feed) is timed from the
restart (the new process spawned) to its feed row's ``created_at``: max and p99. Exit status 1 on any violation.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parents[1]
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
    epoch,
    free_port,
    pg_database,
    pg_kwargs,
    scratch_database_url,
    spawn,
    time_kills,
    together,
    wait_healthy,
)

SEND_TIMEOUT = 10.0
# Replies are bot rows of the feed (the user's own echo has no outbox row).
FEED_REPLIES = "SELECT user_id, body, created_at, outbox_id FROM console_feed WHERE outbox_id IS NOT NULL"


def write_setup(tmp: Path, *, db_url: str, port: int, users: list[str], lease: float | None) -> tuple[Path, Path]:
    config, org = tmp / "crash.toml", tmp / "org.csv"
    outbox = "" if lease is None else f"[outbox]\nlease_seconds = {lease}\n"
    config.write_text(
        f'[server]\nhost = "{HOST}"\nport = {port}\n\n[database]\nurl = "{db_url}"\n\n{outbox}\n'
        '[org]\ndemo = true\n\n[logging]\nlevel = "WARNING"\n',
        encoding="utf-8",
    )
    rows = ["user_id,name,roles"] + [f"{u},代表{u[1:]},rep" for u in users]
    org.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return config, org


@dataclass
class Send:
    user: str
    text: str
    client_id: str
    attempts: int = 0
    acked: bool = False


class ClaimHold:
    """Holds outbox rows in ``sending`` so that a kill finds a round mid-way: on SQLite the database's write lock
    (``BEGIN IMMEDIATE`` on a connection of this process: the round's outcome commit waits for it), on PostgreSQL
    the claimed rows' locks (``FOR UPDATE NOWAIT``: the round's UPDATE of those rows waits). ``take()`` is True when
    rows in ``sending`` are held; ``release()`` lets go (before the restart, so the new process is not blocked)."""

    def __init__(self, db: DbReader) -> None:
        self.db = db
        self._sqlite: sqlite3.Connection | None = None
        self._pg: Any = None

    async def take(self) -> bool:
        if self.db.is_sqlite:
            return await asyncio.to_thread(self._take_sqlite)
        return await self._take_pg()

    def _take_sqlite(self) -> bool:
        conn = sqlite3.connect(self.db.sqlite_path, timeout=0.02, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:  # the bot is writing: try again
            conn.close()
            return False
        if conn.execute("SELECT count(*) FROM outbox WHERE status = 'sending'").fetchone()[0] > 0:
            self._sqlite = conn
            return True
        conn.execute("ROLLBACK")
        conn.close()
        return False

    async def _take_pg(self) -> bool:
        import asyncpg
        from sqlalchemy.engine import make_url

        conn = await asyncpg.connect(database=make_url(self.db.url).database, **pg_kwargs(self.db.url))
        tx = conn.transaction()
        await tx.start()
        try:
            held = await conn.fetch("SELECT id FROM outbox WHERE status = 'sending' FOR UPDATE NOWAIT")
        except asyncpg.LockNotAvailableError:  # the round is recording them right now: try again
            held = []
        if held:
            self._pg = (conn, tx)
            return True
        await tx.rollback()
        await conn.close()
        return False

    async def release(self) -> None:
        if self._sqlite is not None:
            conn, self._sqlite = self._sqlite, None
            await asyncio.to_thread(conn.close)
        if self._pg is not None:
            (conn, tx), self._pg = self._pg, None
            with contextlib.suppress(Exception):
                await tx.rollback()
            await conn.close()


@dataclass
class Kill:
    number: int
    reason: str
    at_s: float
    outbox: dict[str, int]
    restart_s: float
    owed: dict[str, int]
    t_kill: float  # time.time(): the feed's created_at is wall time
    t_restart: float
    delays: Delays = field(default_factory=Delays)
    owed_outbox: dict[str, int] = field(default_factory=dict)  # replies claimed (outbox rows sending) at the kill
    outbox_delays: Delays = field(default_factory=Delays)


@dataclass
class Report:
    seed: int
    commands: int
    users: int
    backend: str
    lease: float | None
    kills: list[Kill] = field(default_factory=list)
    acked: int = 0
    replays: int = 0
    inbound_done: int = 0
    outbox_rows: int = 0
    outbox_sent: int = 0
    outbox_dead: int = 0
    feed_replies: int = 0
    total_s: float = 0.0
    violations: list[str] = field(default_factory=list)

    @property
    def restart_delays(self) -> Delays:
        return together(k.delays for k in self.kills)

    @property
    def outbox_restart_delays(self) -> Delays:
        return together(k.outbox_delays for k in self.kills)

    def summary(self) -> str:
        lease = "default lease" if self.lease is None else f"lease {self.lease:g}s"
        lines = [
            f"seed {self.seed}: {self.commands} console commands from {self.users} users, {len(self.kills)} "
            f"SIGKILL(s), {self.backend}, {lease}"
        ]
        for k in self.kills:
            outbox = " ".join(f"{s}={n}" for s, n in sorted(k.outbox.items()))
            lines.append(
                f"  kill {k.number} ({k.reason}) at {k.at_s:.1f}s: outbox {outbox}; back up after {k.restart_s:.1f}s; "
                f"{k.delays.text()} (of which claimed at the kill: {k.outbox_delays.text()})"
            )
        lines += [
            f"  sends: {self.acked}/{self.commands} acknowledged, {self.replays} repeated",
            f"  inbound_events: {self.inbound_done} done; outbox: {self.outbox_rows} rows, {self.outbox_sent} sent, "
            f"{self.outbox_dead} dead; feed replies: {self.feed_replies}",
            f"  after the restarts: {self.restart_delays.text()}",
            f"  of which claimed (outbox rows sending) at a kill: {self.outbox_restart_delays.text()}",
            f"  time: total {self.total_s:.1f}s",
        ]
        lines += [f"FAIL: {len(self.violations)} violation(s)"] if self.violations else ["PASS"]
        lines += [f"  - {v}" for v in self.violations[:30]]
        return "\n".join(lines)


class CrashRun:
    def __init__(
        self,
        tmp: Path,
        *,
        seed: int,
        commands: int,
        users: int,
        concurrency: int,
        kills: int,
        db_url: str | None,
        lease: float | None,
    ) -> None:
        self.tmp = tmp
        self.rng = random.Random(seed)
        self.users = [f"c{i:02d}" for i in range(1, users + 1)]
        self.n = commands
        self.concurrency = concurrency
        self.kills_wanted = kills
        self.db_url = db_url or f"sqlite+aiosqlite:///{tmp / 'crash.db'}"
        self.db = DbReader(self.db_url)
        self.lease = lease
        self.report = Report(seed, commands, users, "sqlite" if self.db.is_sqlite else "postgresql", lease)
        self.sends = [
            Send(self.users[i % users], COMMANDS[(i // users) % 2], f"k{uuid.UUID(int=self.rng.getrandbits(128)).hex}")
            for i in range(commands)
        ]
        self.kill1_at = self.rng.randint(commands // 4, commands // 2)
        self.kill1_due = asyncio.Event()
        self.load_done = asyncio.Event()
        self.up = asyncio.Event()
        self.started = 0
        self.bot: Proc | None = None
        self.bot_starts = 0
        self.port = free_port()
        self.config = tmp / "crash.toml"
        self.t0 = 0.0

    def say(self, msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    async def start_bot(self) -> None:
        self.bot_starts += 1
        args = ["-m", "bot.cli", "serve", "--config", str(self.config)]
        self.bot = spawn("salesbot", args, self.port, self.tmp / f"salesbot-{self.bot_starts}.log")
        await wait_healthy(self.bot)
        self.up.set()

    async def outbox_counts(self) -> dict[str, int]:
        return {str(s): int(n) for s, n in await self.db.rows("SELECT status, count(*) FROM outbox GROUP BY status")}

    async def kill_and_restart(self, reason: str, before_restart: Callable[[], Awaitable[None]] | None = None) -> None:
        assert self.bot is not None
        self.up.clear()
        t_kill_mono, t_kill = time.monotonic(), time.time()
        self.bot.kill()
        outbox = await self.outbox_counts()
        stored = dict(await self.db.rows("SELECT sender, count(*) FROM inbound_events GROUP BY sender"))
        replied = Counter(str(u) for u, *_ in await self.db.rows(FEED_REPLIES))
        open_rows = await self.db.rows(
            "SELECT recipient, count(*) FROM outbox WHERE status = 'sending' GROUP BY recipient"
        )
        owed = {str(u): int(n) - replied[str(u)] for u, n in stored.items()}
        if before_restart is not None:
            await before_restart()
        t_restart = time.time()
        await self.start_bot()
        kill = Kill(
            number=len(self.report.kills) + 1,
            reason=reason,
            at_s=t_kill_mono - self.t0,
            outbox=outbox,
            restart_s=time.monotonic() - t_kill_mono,
            owed=owed,
            t_kill=t_kill,
            t_restart=t_restart,
            owed_outbox=claimed_owed({str(r): int(n) for r, n in open_rows}, owed),
        )
        self.report.kills.append(kill)
        self.say(f"kill {kill.number} ({reason}): outbox {outbox}; restarted in {kill.restart_s:.1f}s")

    async def chaos(self) -> None:
        if self.kills_wanted < 1:
            return
        await self.kill1_due.wait()
        await asyncio.sleep(self.rng.uniform(0, 0.05))
        await self.kill_and_restart(f"during the load, at send {self.started}")
        for number in range(2, self.kills_wanted + 1):
            target = self.rng.randint(self.n // 10, self.n * 7 // 10)
            base = len(await self.db.rows(FEED_REPLIES))
            deadline = time.monotonic() + 30
            what = "outbox idle"
            hold = ClaimHold(self.db)
            while time.monotonic() < deadline:
                replies = len(await self.db.rows(FEED_REPLIES))
                counts = await self.outbox_counts()
                if replies >= max(target, base + 20) and counts.get("pending", 0) + counts.get("sending", 0) > 0:
                    # Hold the next rows the worker claims before its round records them, then kill.
                    if await hold.take():
                        what = "while delivering replies"
                        break
                    continue
                if self.load_done.is_set() and counts.get("pending", 0) + counts.get("sending", 0) == 0:
                    unhandled = await self.db.rows("SELECT count(*) FROM inbound_events WHERE status = 'pending'")
                    if not unhandled[0][0]:
                        break  # nothing left to deliver: kill anyway (reported as such)
                await asyncio.sleep(0.005)
            try:
                await self.kill_and_restart(f"{what} (kill {number})", before_restart=hold.release)
            finally:
                await hold.release()

    async def send(self, http: aiohttp.ClientSession, s: Send) -> None:
        for attempt in range(10):
            await asyncio.wait_for(self.up.wait(), 60)
            s.attempts += 1
            try:
                body = {"client_id": s.client_id, "text": s.text}
                async with http.post(f"http://{HOST}:{self.port}/console/api/send", json=body) as r:
                    data = await r.json(content_type=None)
                    if r.status == 200 and data.get("accepted") is True:
                        s.acked = True
                        return
                if r.status == 401:  # a session that did not survive the restart (older releases): sign in again
                    await self.log_in(http, s.user)
            except (TimeoutError, aiohttp.ClientError, json.JSONDecodeError):
                pass
            await asyncio.sleep(min(0.05 * 2**attempt, 1.0))

    async def load(self, sessions: dict[str, aiohttp.ClientSession]) -> None:
        it = iter(self.sends)

        async def worker() -> None:
            for s in it:
                self.started += 1
                if self.started >= self.kill1_at:
                    self.kill1_due.set()
                await self.send(sessions[s.user], s)

        await asyncio.gather(*(worker() for _ in range(self.concurrency)))
        self.load_done.set()

    async def sign_in(self, user: str) -> aiohttp.ClientSession:
        http = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=aiohttp.ClientTimeout(total=SEND_TIMEOUT)
        )
        await self.log_in(http, user)
        return http

    async def log_in(self, http: aiohttp.ClientSession, user: str) -> None:
        async with http.post(f"http://{HOST}:{self.port}/console/api/login", json={"user_id": user}) as r:
            if r.status != 200:
                raise RuntimeError(f"sign-in as {user} failed: {r.status} {await r.text()}")

    async def wait_drained(self, limit_s: float) -> None:
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            inbound = dict(await self.db.rows("SELECT status, count(*) FROM inbound_events GROUP BY status"))
            counts = await self.outbox_counts()
            if not inbound.get("pending") and not counts.get("pending") and not counts.get("sending"):
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"not drained after {limit_s:.0f}s")

    async def run(self) -> Report:
        t_start = time.monotonic()
        sessions: dict[str, aiohttp.ClientSession] = {}
        try:
            if not self.db.is_sqlite:
                await pg_database(self.db_url, create=True)
            _, org = write_setup(self.tmp, db_url=self.db_url, port=self.port, users=self.users, lease=self.lease)
            await asyncio.to_thread(cli, self.config, "db", "upgrade")
            self.say(await asyncio.to_thread(cli, self.config, "import", "org", str(org)))
            await self.start_bot()
            sessions = {u: await self.sign_in(u) for u in self.users}
            self.say(f"sending {self.n} commands from {len(self.users)} users, concurrency {self.concurrency}")
            self.t0 = time.monotonic()
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.chaos())
                tg.create_task(self.load(sessions))
            # Generous: with a 60 s lease (the old default) the reclaimed rows alone wait a minute per kill.
            await self.wait_drained(limit_s=240)
            await self.verify()
        finally:
            for http in sessions.values():
                await http.close()
            if self.bot is not None:
                self.bot.stop()
            await self.db.close()
            if not self.db.is_sqlite:
                await pg_database(self.db_url, create=False)
        self.report.total_s = time.monotonic() - t_start
        return self.report

    async def verify(self) -> None:
        r, v = self.report, self.report.violations
        acked = [s for s in self.sends if s.acked]
        r.acked = len(acked)
        r.replays = sum(s.attempts for s in self.sends) - len(self.sends)
        v += [f"send {s.client_id} from {s.user} never acknowledged" for s in self.sends if not s.acked]
        inbound = await self.db.rows("SELECT dedup_key, status FROM inbound_events")
        by_key: dict[str, list[str]] = {}
        for key, status in inbound:
            by_key.setdefault(str(key), []).append(str(status))
        r.inbound_done = sum(1 for _, status in inbound if status == "done")
        for s in acked:  # (a)
            if by_key.get(f"{s.user}:{s.client_id}") != ["done"]:
                v.append(f"(a) {s.user}:{s.client_id}: inbound rows {by_key.get(f'{s.user}:{s.client_id}')}")
        outbox = await self.db.rows("SELECT id, status FROM outbox")
        r.outbox_rows = len(outbox)
        r.outbox_sent = sum(1 for _, status in outbox if status == "sent")
        r.outbox_dead = sum(1 for _, status in outbox if status == "dead")
        if r.outbox_sent != r.outbox_rows or r.outbox_rows != len(acked):  # (d)
            v.append(f"(d) outbox {Counter(str(s) for _, s in outbox)} for {len(acked)} acknowledged commands")
        feed = await self.db.rows(FEED_REPLIES)
        r.feed_replies = len(feed)
        per_row = Counter(int(outbox_id) for *_, outbox_id in feed)
        if doubled := [i for i, n in per_row.items() if n > 1]:  # (c)
            v.append(f"(c) {len(doubled)} outbox rows shown twice, e.g. {doubled[:3]}")
        expected = Counter((s.user, s.text) for s in acked)
        got: Counter[tuple[str, str]] = Counter()
        for user, body, _, _ in feed:
            text = (json.loads(body) if isinstance(body, str) else body).get("text", "")
            got[(str(user), classify_reply(str(text)))] += 1
        wrong = [(k, got[k], expected[k]) for k in sorted(set(expected) | set(got)) if got[k] != expected[k]]
        if wrong:  # (b)
            v.append(f"(b) {len(wrong)} (user, command) pairs wrong, e.g. {wrong[:5]}")
        arrivals = [(str(user), epoch(at)) for user, _, at, _ in feed]
        time_kills(r.kills, arrivals, v)


def run_crash_test(
    workdir: Path | None = None,
    *,
    seed: int = 1,
    commands: int = 600,
    users: int = 20,
    concurrency: int = 16,
    kills: int = 2,
    db_url: str | None = None,
    lease: float | None = None,
) -> Report:
    """Run the whole console crash test; ``workdir`` keeps the files (else a temporary directory is removed)."""

    def go(tmp: Path) -> Report:
        run = CrashRun(
            tmp,
            seed=seed,
            commands=commands,
            users=users,
            concurrency=concurrency,
            kills=kills,
            db_url=db_url,
            lease=lease,
        )
        return asyncio.run(run.run())

    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        return go(workdir)
    with tempfile.TemporaryDirectory(prefix="salesbot-crash-console-") as d:
        return go(Path(d))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--commands", type=int, default=600)
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--kills", type=int, default=2)
    ap.add_argument(
        "--db",
        help="a PostgreSQL server URL: the test works in a scratch database it creates there and drops; default SQLite",
    )
    ap.add_argument("--lease", type=float, help="[outbox] lease_seconds (default: the config default)")
    ap.add_argument("--keep", action="store_true", help="keep the working directory (db, logs)")
    args = ap.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="salesbot-crash-console-")) if args.keep else None
    if workdir is not None:
        print(f"keeping {workdir}", file=sys.stderr)
    report = run_crash_test(
        workdir,
        seed=args.seed,
        commands=args.commands,
        users=args.users,
        concurrency=args.concurrency,
        kills=args.kills,
        db_url=scratch_database_url(args.db, "salesbot_crash") if args.db else None,
        lease=args.lease,
    )
    print(report.summary())
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
