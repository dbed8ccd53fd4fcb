"""Escalation sweep cost against the number of open task cards: 1,000 due cards among N open ones.

Run from the repository root (about 4-5 minutes on 2 cores with the defaults: 10k, 100k and 1M open cards on
SQLite and PostgreSQL):

    python bench/escalation_sweep.py [--sizes 10000,100000,1000000] [--backends sqlite,postgresql]
                                     [--repeats 3] [--pg-url URL] [--profile DIR] [--keep]

For every backend and every N the script builds a fresh database (a SQLite file in a temporary directory, or a
scratch PostgreSQL database created on ``--pg-url`` and dropped afterwards), migrates it with
``storage.migrate.upgrade``, loads the demo org and customers (``bot/demo_data``), and bulk-inserts N/3 support
requests (``surgery_support``) with 3 task cards each (marketing, logistics, compliance): N open cards. Their
policies are frozen with ``bot.services.escalation.freeze_policy`` from the default configuration, as
``requests.create`` does. Exactly 1,000 cards, spread evenly over the id range, are due at the benchmark's instant
(``next_due_at`` up to ~22 minutes earlier, next step: level 1, ``not_claimed`` → the department head). The others
were created in the last 83 minutes and are due later (their first reminder). The rows are written with
``sqlite3`` ``executemany`` in large transactions, or PostgreSQL ``COPY`` through asyncpg (then ``VACUUM ANALYZE``,
the state autovacuum would reach after such a load).

Measured on each database, each round starting from the same 1,000 due cards (the due rows are reset and the
outbox and escalation audit rows deleted before each round; one warm-up round is not counted):

* **sweep s**: ``Runtime(...).escalator.sweep()`` with a ``FixedClock`` - the real path: due select (``FOR UPDATE
  SKIP LOCKED`` on PostgreSQL), ``advance``, rendering of the notice cards, outbox rows, audit rows, commit, in
  batches of ``[escalation] batch_size`` (200). The script checks that every round advanced 1,000 cards, wrote
  1,000 notices and 1,000 outbox rows and left no card due.
* **due-select ms** (baseline): ``escalation.due_card_ids(limit=1000)`` alone - the indexed query the sweep starts
  each batch with.
* **naive scan ms** (baseline): what the sweep would cost without the index: read ``(id, next_due_at)`` of every
  card that is not closed and pick the due ones in Python (a lower bound of a naive sweep: it reads two columns,
  not whole cards).

The table gives medians; ``ratio to 10k`` divides a sweep by the sweep of the smallest N on the same backend.
PASS when the largest N (1M by default) costs at most 1.5x the smallest (10k). The exit status is 1 on FAIL or if
a check failed. Only loopback is used; every case is bounded by ``--case-timeout``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import bindparam, delete, event, func, literal_column, select, text, update  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bot.config import Settings, parse_settings  # noqa: E402
from bot.imports import org as importer  # noqa: E402
from bot.infra.clock import FixedClock  # noqa: E402
from bot.runtime import Runtime  # noqa: E402
from bot.services import escalation as esc  # noqa: E402
from bot.services.requests import deadlines, department_people  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import AuditLog, Customer, OutboxMessage, TaskCard, User  # noqa: E402
from storage.vocab import RequestStatus, TaskState  # noqa: E402

DEMO = ROOT / "bot" / "demo_data"
# Monday 2026-11-23 10:00 in Asia/Shanghai: a working hour, outside quiet hours.
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
DUE = 1000
TEMPLATES = 1000  # distinct creation instants among the cards that are not due
DEPARTMENTS = ("marketing", "logistics", "compliance")
TITLE_PREFIX = ("跟台资料：", "备器械 ", "授权审核：")
KITS = ("脊柱A包", "关节B包", "创伤C包", "脊柱D包")
WARDS = ("骨科", "脊柱外科", "关节外科", "检验科")
REQUEST_TYPE = "surgery_support"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
CARD_COLUMNS = (
    "id",
    "request_id",
    "department",
    "ref",
    "title",
    "state",
    "require_claim",
    "evidence",
    "first_response_hours",
    "complete_hours",
    "respond_by",
    "due_at",
    "attachments",
    "questions",
    "recipients",
    "version",
    "created_at",
    "state_since",
    "updated_at",
    "policy",
    "esc_step",
    "next_due_at",
    "notices",
    "watchers",
)
REQUEST_COLUMNS = (
    "id",
    "type_key",
    "rep_id",
    "customer_id",
    "ward",
    "fields",
    "status",
    "source_channel",
    "created_at",
    "updated_at",
)


def settings_for(url: str) -> Settings:
    return parse_settings(
        {
            "database": {"url": url},
            "org": {"demo": True},
            "console": {"enabled": True},
            "logging": {"level": "WARNING"},
        },
        "<bench>",
    )


# ---- the cards ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    created: datetime
    respond_by: datetime
    due_at: datetime
    policy: str  # JSON text
    esc_step: int
    next_due: datetime


@dataclass
class Org:
    reps: list[str]
    customers: list[tuple[int, str]]
    recipients: list[str]  # JSON text per department
    evidence: list[str]


def templates(settings: Settings) -> tuple[list[Template], list[Template]]:
    """(not due, due): policies frozen like ``requests.create`` does, one per creation instant."""
    rt = settings.request_types[REQUEST_TYPE]
    task = rt.tasks[0]

    def make(created: datetime, due: bool) -> Template:
        policy = esc.freeze_policy(
            settings, rt, REQUEST_TYPE, task.department, created, task.first_response_hours, task.complete_hours
        )
        steps = policy["steps"]
        dues = [datetime.fromisoformat(s["due"]) for s in steps]
        if due:
            # The reminder before level 1 has fired; level 1 is due, the next step is hours away.
            step = next(i for i, s in enumerate(steps) if s["kind"] == "level")
            assert dues[step] <= NOW < dues[step + 1], "due template does not fire exactly one level"
        else:
            step = next(i for i, d in enumerate(dues) if d > NOW)
        dl = deadlines(settings, rt, created, task.first_response_hours, task.complete_hours)
        return Template(created, dl.respond_by, dl.due_at, json.dumps(policy), step, dues[step])

    open_ = [make(NOW - timedelta(seconds=5 * j), due=False) for j in range(TEMPLATES)]
    due = [make(NOW - timedelta(hours=2, minutes=5, seconds=k), due=True) for k in range(DUE)]
    return open_, due


def due_step(n: int) -> int:
    return n // DUE


def is_due(i: int, n: int) -> bool:
    return i % due_step(n) == 0


def template_of(i: int, n: int, open_: list[Template], due: list[Template]) -> Template:
    return due[i // due_step(n)] if is_due(i, n) else open_[(i // 3) % TEMPLATES]


def request_rows(n: int, org: Org, open_: list[Template]) -> Iterator[tuple[Any, ...]]:
    for r in range(n // 3 + (1 if n % 3 else 0)):
        created = open_[r % TEMPLATES].created
        fields = {"ward": WARDS[r % 4], "surgery_date": "2026-11-25", "kit": KITS[r % 4], "note": ""}
        yield (
            r + 1,
            REQUEST_TYPE,
            org.reps[r % len(org.reps)],
            org.customers[r % len(org.customers)][0],
            WARDS[r % 4],
            json.dumps(fields),
            RequestStatus.OPEN.value,
            "console",
            created,
            created,
        )


def card_rows(n: int, org: Org, open_: list[Template], due: list[Template]) -> Iterator[tuple[Any, ...]]:
    for i in range(n):
        r, d = i // 3, i % 3
        t = template_of(i, n, open_, due)
        yield (
            i + 1,
            r + 1,
            DEPARTMENTS[d],
            f"task-{r + 1}-{DEPARTMENTS[d]}-{i:06x}",
            f"{TITLE_PREFIX[d]}{org.customers[r % len(org.customers)][1]} {KITS[r % 4]}",
            TaskState.OPEN.value,
            True,
            org.evidence[d],
            2.0,
            24.0,
            t.respond_by,
            t.due_at,
            "[]",
            "[]",
            org.recipients[d],
            0,
            t.created,
            t.created,
            t.created,
            t.policy,
            t.esc_step,
            t.next_due,
            0,
            "[]",
        )


# ---- building a database --------------------------------------------------------------------------------------


def sqlite_dt(value: datetime) -> str:
    """How ``storage.models.UTCDateTime`` stores an instant on SQLite (naive UTC, microseconds always)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def to_sqlite(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(sqlite_dt(v) if isinstance(v, datetime) else (int(v) if isinstance(v, bool) else v) for v in row)


async def load_org(db: Database, settings: Settings) -> Org:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    await importer.import_org(db, DEMO / "org.csv", now=now, departments=list(DEPARTMENTS))
    await importer.import_customers(db, DEMO / "customers.csv", now=now)
    async with db.read() as s:
        users = list(await s.scalars(select(User).order_by(User.id)))
        customers = [(c.id, c.name) for c in await s.scalars(select(Customer).order_by(Customer.id))]
        recipients = [json.dumps([u.id for u in await department_people(s, d)]) for d in DEPARTMENTS]
    reps = [u.id for u in users if "rep" in (u.roles or [])]
    by_dept = {t.department: t.evidence for t in settings.request_types[REQUEST_TYPE].tasks}
    return Org(reps, customers, recipients, [by_dept[d] for d in DEPARTMENTS])


def seed_sqlite(path: Path, n: int, org: Org, open_: list[Template], due: list[Template]) -> None:
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA cache_size=-262144")  # 256 MB for the load only
        for table, columns, rows in (
            ("support_requests", REQUEST_COLUMNS, request_rows(n, org, open_)),
            ("task_cards", CARD_COLUMNS, card_rows(n, org, open_, due)),
        ):
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            chunk: list[tuple[Any, ...]] = []
            for row in rows:
                chunk.append(to_sqlite(row))
                if len(chunk) == 100_000:
                    con.execute("BEGIN")
                    con.executemany(sql, chunk)
                    con.execute("COMMIT")
                    chunk.clear()
            if chunk:
                con.execute("BEGIN")
                con.executemany(sql, chunk)
                con.execute("COMMIT")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()


def pg_kwargs(url: str) -> dict[str, Any]:
    u = make_url(url)
    return {"host": u.host, "port": u.port or 5432, "user": u.username or "postgres", "password": u.password}


async def pg_admin(admin_url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(database=make_url(admin_url).database or "postgres", **pg_kwargs(admin_url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def seed_pg(url: str, n: int, org: Org, open_: list[Template], due: list[Template]) -> None:
    import asyncpg

    conn = await asyncpg.connect(database=make_url(url).database, **pg_kwargs(url))
    try:
        for table, columns, rows in (
            ("support_requests", REQUEST_COLUMNS, request_rows(n, org, open_)),
            ("task_cards", CARD_COLUMNS, card_rows(n, org, open_, due)),
        ):
            await conn.copy_records_to_table(table, records=rows, columns=list(columns))
            await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        await conn.execute("VACUUM ANALYZE support_requests, task_cards")
    finally:
        await conn.close()


async def db_size_mb(db: Database, path: Path | None) -> float:
    if path is not None:
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1e6
    async with db.read() as s:
        return float(await s.scalar(text("SELECT pg_database_size(current_database())"))) / 1e6


async def due_plan(db: Database) -> str:
    """The plan of the sweep's due select, condensed to one line."""
    where = "next_due_at IS NOT NULL AND next_due_at <= :now ORDER BY next_due_at LIMIT 1000"
    params = {"now": sqlite_dt(NOW) if db.is_sqlite else NOW}
    async with db.transaction() as s:
        if db.is_sqlite:
            rows = await s.execute(text(f"EXPLAIN QUERY PLAN SELECT id FROM task_cards WHERE {where}"), params)
            return "; ".join(str(r[-1]) for r in rows)
        sql = f"EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) SELECT id FROM task_cards WHERE {where} FOR UPDATE SKIP LOCKED"
        lines = [str(r[0]).strip() for r in await s.execute(text(sql), params)]
        return " | ".join(x for x in lines if not x.startswith(("Planning", "Buffers: shared hit=0")))


# ---- one case -------------------------------------------------------------------------------------------------


@dataclass
class Case:
    backend: str
    n: int
    seed_s: float = 0.0
    db_mb: float = 0.0
    sweeps: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # this process's CPU during the sweep
    statements: list[int] = field(default_factory=list)  # SQL statements the sweep sent
    selects: list[float] = field(default_factory=list)
    scans: list[float] = field(default_factory=list)
    plan: str = ""
    errors: list[str] = field(default_factory=list)


async def reset_due(db: Database, due_ids: list[int], due_next: dict[int, datetime]) -> None:
    """Put the due cards back where the sweep found them; drop what the last sweep wrote."""
    table = TaskCard.__table__
    stmt = (
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(
            esc_step=bindparam("b_step"),
            next_due_at=bindparam("b_due"),
            notices=0,
            watchers=literal_column("'[]'"),
            notice_log=literal_column("'[]'"),
            repeat_at=None,
            repeat_step=None,
        )
    )
    async with db.transaction() as s:
        await s.execute(stmt, [{"b_id": i, "b_step": 1, "b_due": due_next[i]} for i in due_ids])
        await s.execute(delete(OutboxMessage))
        await s.execute(delete(AuditLog).where(AuditLog.action.like("escalation.%")))


async def naive_due(db: Database) -> list[int]:
    async with db.read() as s:
        stmt = select(TaskCard.id, TaskCard.next_due_at).where(TaskCard.state.not_in(esc.CLOSED))
        rows = (await s.execute(stmt)).all()
    due = sorted((d, i) for i, d in rows if d is not None and d <= NOW)
    return [i for _, i in due[:DUE]]


async def run_case(
    backend: str, n: int, args: argparse.Namespace, tmp: Path, open_: list[Template], due: list[Template]
) -> Case:
    case = Case(backend, n)
    path: Path | None = None
    pg_name = ""
    if backend == "sqlite":
        path = tmp / f"sweep_{n}.db"
        url = f"sqlite+aiosqlite:///{path}"
    else:
        pg_name = f"salesbot_bench_sweep_{uuid.uuid4().hex[:8]}"
        await pg_admin(args.pg_url, f'CREATE DATABASE "{pg_name}"')
        url = make_url(args.pg_url).set(database=pg_name).render_as_string(hide_password=False)
    try:
        settings = settings_for(url)
        t0 = time.perf_counter()
        db = Database(url)
        try:
            await upgrade(db)
            org = await load_org(db, settings)
        finally:
            await db.dispose()
        if path is not None:
            await asyncio.to_thread(seed_sqlite, path, n, org, open_, due)
        else:
            await seed_pg(url, n, org, open_, due)
        case.seed_s = time.perf_counter() - t0
        await _measure(case, settings, path, n, args, open_, due)
    finally:
        if pg_name and not args.keep:
            await pg_admin(args.pg_url, f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
        elif pg_name:
            print(f"  kept PostgreSQL database {pg_name}")
        if path is not None and not args.keep:
            for p in path.parent.glob(path.name + "*"):
                p.unlink()
    return case


async def _measure(
    case: Case,
    settings: Settings,
    path: Path | None,
    n: int,
    args: argparse.Namespace,
    open_: list[Template],
    due: list[Template],
) -> None:
    due_ids = [i + 1 for i in range(n) if is_due(i, n)]
    due_next = {i + 1: template_of(i, n, open_, due).next_due for i in range(n) if is_due(i, n)}
    rt = Runtime(settings, clock=FixedClock(NOW))
    sent = [0]

    def count(*_: Any) -> None:
        sent[0] += 1

    event.listen(rt.db.engine.sync_engine, "before_cursor_execute", count)
    try:
        case.db_mb = await db_size_mb(rt.db, path)
        async with rt.db.read() as s:
            is_open = TaskCard.state == TaskState.OPEN
            open_count = await s.scalar(select(func.count()).select_from(TaskCard).where(is_open))
        if open_count != n:
            case.errors.append(f"{open_count} open cards, expected {n}")
        case.plan = await due_plan(rt.db)
        for rnd in range(1 + args.repeats):
            warm = rnd == 0
            await reset_due(rt.db, due_ids, due_next)
            async with rt.db.transaction() as s:
                t = time.perf_counter()
                ids = await esc.due_card_ids(s, NOW, DUE, postgres=not rt.db.is_sqlite)
                dt_select = time.perf_counter() - t
            if sorted(ids) != due_ids:
                case.errors.append(f"due select found {len(ids)} cards, not the {DUE} due ones")
            if not warm:
                t = time.perf_counter()
                naive = await naive_due(rt.db)
                case.scans.append(time.perf_counter() - t)
                if sorted(naive) != due_ids:
                    case.errors.append(f"naive scan found {len(naive)} cards")
            prof = cProfile.Profile() if args.profile and rnd == args.repeats else None
            t, c, sent[0] = time.perf_counter(), os.times(), 0
            if prof is not None:
                prof.enable()
            stats = await rt.escalator.sweep()
            if prof is not None:
                prof.disable()
            dt_sweep, c2, statements = time.perf_counter() - t, os.times(), sent[0]
            dt_cpu, dt_sys = c2.user + c2.system - c.user - c.system, c2.system - c.system
            if prof is not None:
                args.profile.mkdir(parents=True, exist_ok=True)
                prof.dump_stats(args.profile / f"sweep_{case.backend}_{n}.pstats")
            async with rt.db.read() as s:
                outbox_rows = await s.scalar(select(func.count()).select_from(OutboxMessage))
                left = await esc.due_card_ids(s, NOW, DUE, postgres=False)
            if (stats.cards, stats.notices, stats.conflicts, outbox_rows, len(left)) != (DUE, DUE, 0, DUE, 0):
                case.errors.append(
                    f"round {rnd}: cards {stats.cards}, notices {stats.notices}, conflicts {stats.conflicts}, "
                    f"outbox rows {outbox_rows}, still due {len(left)}"
                )
            if not warm:
                case.sweeps.append(dt_sweep)
                case.cpu.append(dt_cpu)
                case.statements.append(statements)
                case.selects.append(dt_select)
            scan = "" if warm else f", naive scan {case.scans[-1] * 1e3:.0f} ms"
            print(
                f"  {case.backend} N={n} round {rnd}{' (warm-up)' if warm else ''}: sweep {dt_sweep:.3f} s"
                f" (CPU {dt_cpu:.2f} s, sys {dt_sys:.2f} s; {statements} SQL statements),"
                f" due select {dt_select * 1e3:.1f} ms{scan}",
                flush=True,
            )
    finally:
        await rt.close()


# ---- report ---------------------------------------------------------------------------------------------------


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def label(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


def report(cases: list[Case], limit: float) -> bool:
    print()
    head = (
        f"{'N':>6} {'backend':<10} {'seed s':>7} {'DB MB':>7} {'sweep s':>8} {'min-max s':>12}"
        f" {'CPU s':>6} {'stmts':>6}"
        f" {'due-select ms':>14} {'naive scan ms':>14} {'ratio to ' + label(min(c.n for c in cases)):>12}"
    )
    print(head)
    ok = True
    for backend in dict.fromkeys(c.backend for c in cases):
        rows = sorted((c for c in cases if c.backend == backend), key=lambda c: c.n)
        base = med(rows[0].sweeps)
        for c in rows:
            s = med(c.sweeps)
            spread = f"{min(c.sweeps):.2f}-{max(c.sweeps):.2f}" if c.sweeps else "-"
            print(
                f"{label(c.n):>6} {backend:<10} {c.seed_s:7.1f} {c.db_mb:7.0f} {s:8.3f} {spread:>12}"
                f" {med(c.cpu):6.2f} {max(c.statements, default=0):6d}"
                f" {med(c.selects) * 1e3:14.1f} {med(c.scans) * 1e3:14.0f} {s / base:12.2f}"
            )
    print()
    for backend in dict.fromkeys(c.backend for c in cases):
        rows = sorted((c for c in cases if c.backend == backend), key=lambda c: c.n)
        lo, hi = rows[0], rows[-1]
        ratio = med(hi.sweeps) / med(lo.sweeps)
        verdict = "PASS" if ratio <= limit else "FAIL"
        ok &= ratio <= limit
        note = "" if (lo.n, hi.n) == (10_000, 1_000_000) else " (not the acceptance sizes 10k/1M)"
        cpu = med(hi.cpu) / med(lo.cpu)
        print(
            f"{backend}: sweep {label(hi.n)} / {label(lo.n)} = {ratio:.2f} (target <= {limit}) {verdict}{note};"
            f" CPU of this process {cpu:.2f}"
        )
    print("\ndue-select plans:")
    for c in cases:
        print(f"  {c.backend} {label(c.n)}: {c.plan}")
    for c in cases:
        for e in c.errors:
            print(f"CHECK FAILED {c.backend} {label(c.n)}: {e}")
            ok = False
    return ok


async def main_async(args: argparse.Namespace, tmp: Path) -> int:
    settings = settings_for("sqlite+aiosqlite:///unused.db")
    open_, due = templates(settings)
    cases: list[Case] = []
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    for backend in args.backends:
        for n in args.sizes:
            print(f"{backend}: N={n} ({DUE} due)", flush=True)
            case = await asyncio.wait_for(run_case(backend, n, args, tmp, open_, due), args.case_timeout)
            print(f"  seeded in {case.seed_s:.1f} s, {case.db_mb:.0f} MB", flush=True)
            cases.append(case)
    ok = report(cases, args.limit)
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if ok else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="10000,100000,1000000", help="open cards per database, comma separated")
    p.add_argument("--backends", default="sqlite,postgresql")
    p.add_argument("--repeats", type=int, default=3, help="measured rounds per database (plus one warm-up)")
    p.add_argument("--pg-url", default=os.environ.get("SALESBOT_BENCH_PG_URL", DEFAULT_PG))
    p.add_argument("--limit", type=float, default=1.5, help="largest N may cost this many times the smallest")
    p.add_argument("--case-timeout", type=float, default=900.0, help="seconds per backend and N")
    p.add_argument("--profile", type=Path, default=None, help="write a cProfile of the last sweep per case here")
    p.add_argument("--keep", action="store_true", help="keep the SQLite files and PostgreSQL databases")
    args = p.parse_args(argv)
    args.sizes = sorted({int(x) for x in args.sizes.split(",") if x.strip()})
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if any(n < 2 * DUE or n % DUE for n in args.sizes):
        p.error(f"sizes must be multiples of {DUE}, at least {2 * DUE}")
    if set(args.backends) - {"sqlite", "postgresql"}:
        p.error("backends: sqlite, postgresql")
    if "postgresql" in args.backends and make_url(args.pg_url).host not in LOOPBACK:
        p.error("--pg-url must point at loopback")
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="salesbot-sweep-"))
    try:
        return asyncio.run(main_async(args, tmp))
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            with contextlib.suppress(OSError):
                shutil.rmtree(tmp)


if __name__ == "__main__":
    sys.exit(main())
