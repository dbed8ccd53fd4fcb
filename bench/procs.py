"""Process helpers shared by the bench scripts: servers started as subprocesses on 127.0.0.1 and waited for.

Not a script. The bench scripts import it as ``procs``: run as ``python bench/<name>.py`` the bench directory is
``sys.path[0]``; loaded by file path (``tests/test_crash_wecom.py`` loads ``bench/crash_wecom.py`` with
``importlib.util.spec_from_file_location``) it is not, so each script puts its own directory on ``sys.path`` before
the import.

* ``free_port()``: a free TCP port on ``HOST``;
* ``Proc``: a started subprocess with its port and log file (base URL, log tail, SIGKILL, graceful stop, peak RSS);
* ``spawn()``: start ``python ARGS`` from the repository root, stdout and stderr appended to a log file;
* ``wait_healthy()`` / ``wait_exit()``: wait until a server answers 200, or until a process has exited with 0;
* ``cli()``: run ``python -m bot.cli ARGS --config CONFIG`` to completion;
* ``vm_hwm_mb()``: the peak resident set size (VmHWM) of a process, from ``/proc``;
* ``DbReader``: read-only queries against the bot's database (the SQLite file, or PostgreSQL through asyncpg);
* ``pg_database()``: create (fresh) or drop the PostgreSQL database a URL names;
* ``COMMANDS`` / ``classify_reply()``: the crash tests' two commands and which one a reply answers;
* ``epoch()``: a timestamp column read back (SQLite text or a datetime) as seconds since the epoch;
* ``owed_delays()`` / ``claimed_owed()`` / ``Delays``: the crash tests' latency figure, per reply owed at a kill
  (or only those claimed at it) the delay from the restart to its delivery (max, p99).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on ``HOST`` that is free now (the OS picks it; another process may take it before it is used)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def vm_hwm_mb(pid: int | str = "self") -> float | None:
    """Peak resident set size (``VmHWM`` of ``/proc/PID/status``) in MB; None where there is no such file."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int | str = "self") -> float | None:
    """User + system CPU time of a process (``/proc/PID/stat`` fields 14 and 15) in seconds; None where there is
    no such file."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Proc:
    """A subprocess started by ``spawn()``: ``port`` is where it listens (0: nowhere), ``log`` its output."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    stop_signal: int = signal.SIGINT  # what ``stop()`` sends first

    @property
    def base(self) -> str:
        """The server's base URL, ``http://HOST:PORT``."""
        return f"http://{HOST}:{self.port}"

    def tail(self, n: int = 30) -> str:
        """The last ``n`` lines of the log ("" if it cannot be read)."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL, no chance to clean up."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Graceful stop: ``stop_signal``, then SIGKILL if the process has not exited within 10 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(self.stop_signal)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) the process has used so far, in seconds; None once it has exited or off
        Linux. A figure per unit of work that a busy machine disturbs much less than a rate."""
        return cpu_seconds(self.proc.pid)

    def peak_rss_mb(self) -> float | None:
        """The process's peak RSS (VmHWM) in MB; None once it has exited or off Linux."""
        return vm_hwm_mb(self.proc.pid)


def spawn(
    name: str,
    args: list[str],
    port: int,
    log: Path,
    *,
    env: dict[str, str] | None = None,
    stop_signal: int = signal.SIGINT,
) -> Proc:
    """Start ``python ARGS`` (this interpreter) in the repository root, stdout and stderr appended to ``log``.

    ``env`` is added to this process's environment; ``stop_signal`` is what ``Proc.stop()`` sends first.
    """
    out = log.open("ab")
    proc = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    out.close()
    return Proc(name, proc, port, log, stop_signal)


def cli(config: Path, *args: str, timeout: float = 120.0) -> str:
    """Run ``python -m bot.cli ARGS --config CONFIG`` to completion; its output, or RuntimeError."""
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", *args, "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bot.cli {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout.strip()


async def wait_healthy(proc: Proc, limit_s: float = 60.0, path: str = "/healthz", poll_s: float = 0.05) -> None:
    """Poll ``GET path`` every ``poll_s`` until it answers 200; RuntimeError (with the log tail) if the process
    exits or ``limit_s`` passes first."""
    deadline = time.monotonic() + limit_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as s:
        while time.monotonic() < deadline:
            if proc.proc.poll() is not None:
                raise RuntimeError(f"{proc.name} exited with {proc.proc.returncode}:\n{proc.tail()}")
            with contextlib.suppress(TimeoutError, aiohttp.ClientError):
                async with s.get(f"{proc.base}{path}") as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(poll_s)
    raise RuntimeError(f"{proc.name} not healthy after {limit_s:.0f}s:\n{proc.tail()}")


def wait_exit(proc: Proc, limit_s: float) -> None:
    """Wait for the process to exit with status 0; RuntimeError (with the log tail) otherwise, stopping it first
    if it is still running after ``limit_s``."""
    try:
        proc.proc.wait(timeout=limit_s)
    except subprocess.TimeoutExpired:
        proc.stop()
        raise RuntimeError(f"{proc.name} did not finish within {limit_s:.0f}s:\n{proc.tail()}") from None
    if proc.proc.returncode != 0:
        raise RuntimeError(f"{proc.name} exited with {proc.proc.returncode}:\n{proc.tail()}")


# ---- the bot's database, read from outside ---------------------------------------------------------------------


def pg_kwargs(url: str) -> dict[str, Any]:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return {"host": u.host or HOST, "port": u.port or 5432, "user": u.username or "postgres", "password": u.password}


class DbReader:
    """Read-only queries on the bot's database while it runs or is dead: a SQLite file opened ``mode=ro``, or one
    asyncpg connection to PostgreSQL. ``rows(sql)`` returns plain tuples; the SQL must suit both backends."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._pg: Any = None

    @property
    def sqlite_path(self) -> str:
        return self.url.split(":///", 1)[1]

    async def rows(self, sql: str) -> list[tuple[Any, ...]]:
        if self.is_sqlite:
            return await asyncio.to_thread(self._sqlite_rows, sql)
        if self._pg is None:
            import asyncpg
            from sqlalchemy.engine import make_url

            self._pg = await asyncpg.connect(database=make_url(self.url).database, **pg_kwargs(self.url))
        return [tuple(r) for r in await self._pg.fetch(sql)]

    def _sqlite_rows(self, sql: str) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(f"file:{self.sqlite_path}?mode=ro", uri=True, timeout=10)
        try:
            return [tuple(r) for r in conn.execute(sql).fetchall()]
        finally:
            conn.close()

    async def close(self) -> None:
        if self._pg is not None:
            await self._pg.close()
            self._pg = None


def scratch_database_url(url: str, prefix: str) -> str:
    """A PostgreSQL URL on the server ``url`` points at, naming a new database ``<prefix>_<random>``: a bench creates
    and drops only that one, never the database its user named (``--db postgresql://…/test`` once dropped ``test``)."""
    import secrets

    from sqlalchemy.engine import make_url

    return make_url(url).set(database=f"{prefix}_{secrets.token_hex(5)}").render_as_string(hide_password=False)


async def pg_admin(admin_url: str, sql: str) -> None:
    """Run one statement (CREATE / DROP DATABASE …) on the database ``admin_url`` names (default ``postgres``)."""
    import asyncpg
    from sqlalchemy.engine import make_url

    conn = await asyncpg.connect(database=make_url(admin_url).database or "postgres", **pg_kwargs(admin_url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def pg_database(url: str, *, create: bool) -> None:
    """Drop the database ``url`` names, then (``create``) create it empty; connects to the server's ``postgres``."""
    import asyncpg
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    conn = await asyncpg.connect(database="postgres", **pg_kwargs(url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


# ---- crash tests: what is sent, and how long the replies owed at a kill waited ------------------------------------

# Each user alternates between these (bench/crash_wecom.py, bench/crash_console.py); each gets exactly one reply.
COMMANDS = ("帮助", "我的拜访")


def classify_reply(text: str) -> str:
    """Which command a reply answers (the zh-CN texts of bot/infra/i18n.py)."""
    from bot.infra import i18n

    if text.startswith(i18n.t("zh-CN", "help.header", name="\0").split("\0")[0]):
        return COMMANDS[0]
    if text == i18n.t("zh-CN", "visit.list_empty"):
        return COMMANDS[1]
    return f"unexpected reply {text[:40]!r}"


def epoch(value: Any) -> float:
    """A UTC timestamp column as read back: SQLite's naive text (``2026-12-02 10:00:00.123456``) or a datetime."""
    from datetime import UTC, datetime

    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def percentile(xs: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank) of ``xs``; NaN when empty."""
    ys = sorted(xs)
    if not ys:
        return float("nan")
    return ys[min(len(ys) - 1, max(0, math.ceil(p / 100 * len(ys)) - 1))]


@dataclass
class Delays:
    """Per reply owed at a kill, seconds from the restart (the new process spawned) to its delivery. Replies still
    owed at the next kill are ``carried`` to it (and counted there); after the last kill none may be left."""

    owed: int = 0
    seconds: list[float] = field(default_factory=list)
    carried: int = 0

    @property
    def missing(self) -> int:
        return self.owed - len(self.seconds) - self.carried

    @property
    def max_s(self) -> float:
        return max(self.seconds, default=0.0)

    @property
    def p99_s(self) -> float:
        return percentile(self.seconds, 99) if self.seconds else 0.0

    def text(self) -> str:
        if not self.owed:
            return "no reply owed"
        out = f"{self.owed} replies owed, {len(self.seconds)} delivered max {self.max_s:.2f}s p99 {self.p99_s:.2f}s "
        out += "after the restart"
        if self.carried:
            out += f", {self.carried} still owed at the next kill"
        if self.missing:
            out += f", {self.missing} never delivered"
        return out


def claimed_owed(claimed: dict[str, int], owed: dict[str, int]) -> dict[str, int]:
    """Per user, the owed replies that were claimed (outbox rows ``sending``) at the kill: they come first in the
    user's order; a claimed row whose call had already reached the platform is not owed."""
    return {u: min(n, owed.get(u, 0)) for u, n in claimed.items()}


class _Kill(Protocol):
    number: int
    t_kill: float
    t_restart: float
    owed: dict[str, int]
    owed_outbox: dict[str, int]
    delays: Delays
    outbox_delays: Delays


def time_kills(kills: Sequence[_Kill], arrivals: list[tuple[str, float]], violations: list[str]) -> None:
    """Time every kill's owed replies (all of them, and those claimed in the outbox at the kill) against the
    deliveries; a reply owed at a kill but not delivered by the next one is carried to it."""
    for k, after in zip(kills, [*kills[1:], None], strict=True):
        before = math.inf if after is None else after.t_kill
        timing = {"after": k.t_kill, "restart_at": k.t_restart, "before": before}
        k.delays = owed_delays(k.owed, arrivals, **timing)
        k.outbox_delays = owed_delays(k.owed_outbox, arrivals, **timing)
        if k.delays.missing:
            violations.append(f"kill {k.number}: {k.delays.missing} owed replies never delivered")


def together(parts: Iterable[Delays]) -> Delays:
    """Several kills' delays as one (a carried reply is owed again at the next kill, so it counts once)."""
    d = Delays()
    for part in parts:
        d.owed += part.owed - part.carried
        d.seconds += part.seconds
    return d


def owed_delays(
    owed: dict[str, int],
    deliveries: Iterable[tuple[str, float]],
    *,
    after: float,
    restart_at: float,
    before: float = math.inf,
) -> Delays:
    """``owed``: per user, the replies owed at the kill (commands stored minus replies delivered, frozen at the kill);
    ``deliveries``: (user, instant) of every delivery. A user's owed replies are their first ``owed[user]``
    deliveries after ``after`` (the kill; the outbox keeps each person's order), timed from ``restart_at``; those
    not delivered by ``before`` (the next kill) are carried to it."""
    per_user: dict[str, list[float]] = {}
    for user, at in deliveries:
        if at > after:
            per_user.setdefault(user, []).append(at)
    d = Delays(owed=sum(n for n in owed.values() if n > 0))
    for user, n in owed.items():
        if n <= 0:
            continue
        mine = sorted(per_user.get(user, []))[:n]
        in_time = [at for at in mine if at <= before]
        d.seconds += [at - restart_at for at in in_time]
        if before != math.inf:
            d.carried += n - len(in_time)
    return d
