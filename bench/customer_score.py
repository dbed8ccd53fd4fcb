"""The nightly customer health score (issue 14): ``compute_night`` over 100k customers × 3 years of activity on
SQLite and PostgreSQL, next to the bare aggregate SQL over the same windows, at 1/4, 1/2 and all of the customers.

Run from the repository root:

    python bench/customer_score.py [--customers 100000] [--backends sqlite,postgresql] [--runs 5]
                                   [--pg-url URL] [--keep] [--quick]

Each backend gets a fresh database: a SQLite file in a temporary directory, or a scratch PostgreSQL database
``salesbot_bench_score_<random>`` created on ``--pg-url`` and dropped afterwards (the database named in the URL is
only used to create and drop it). The schema comes from the app's migrations (``storage.migrate``).

The data, generated in SQL (``INSERT … SELECT`` from a recursive CTE of ids crossed with the months: no Python
rows), in three steps of customers (1/4, +1/4, +1/2 of ``--customers``), each followed by ``ANALYZE``:

* customers with grades A 20 %, B 30 %, C 50 %;
* purchases: one row per customer and month over the 36 months Jan 2024 – Dec 2026 (100k customers: 3.6M rows),
  amounts 100–100,000 yuan (pseudo-random, skewed: one customer in ten buys ten times more), cents included;
* new-product trials: a month has one with probability 10 % (≈ 3.6 per customer over 3 years: 360k rows);
* academic events: a month has one with probability 20 %, 5–44 attendees (≈ 7.2 per customer: 720k rows).

The night is 2026-12-04 with the default ``[customers.score]`` (3 months of purchases, 90 days of trials and
events, percentile). At each step, after one warm-up of each (medians of ``--runs``):

* **bare SQL** (baseline): the three ``GROUP BY customer_id`` aggregates of ``bot.services.scoring.AGGREGATES``
  over the night's windows, every row fetched;
* **compute_night**: ``bot.services.scoring.compute_night`` in its own transaction, committed; the night's rows are
  deleted before each run (untimed; on PostgreSQL followed by ``VACUUM customer_scores``, as autovacuum would
  between two nights), so every run writes the night afresh as the nightly job writes a new night.

The table gives ms, ms per 1,000 activity rows (all of the tables' rows: the history grows with the customers),
the ratio compute/bare (target ≤ 2) and the per-row cost against the first step's (linear: stays near 1). The
query plan of the score statement is printed. Exit status 1 when a target is missed or a check fails (the rows
written must match the bare aggregates).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parents[1]
for path in (ROOT, SCRIPT.parent):  # the app, and bench/procs.py's helpers
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from procs import pg_admin  # noqa: E402
from sqlalchemy import bindparam, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncConnection  # noqa: E402

from bot.config import Settings, parse_settings  # noqa: E402
from bot.services import scoring  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import UTCDateTime  # noqa: E402

NIGHT = date(2026, 12, 4)
NOW = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)
FIRST_MONTH = (2024, 1)
MONTHS = 36
TARGET_RATIO = 2.0
TARGET_LINEAR = 1.5  # per-row cost at the full size against the 1/4 size
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
ACTIVITY = ("customer_purchases", "customer_trials", "customer_events")


def settings_for(url: str) -> Settings:
    return parse_settings(
        {"database": {"url": url}, "logging": {"level": "WARNING"}, "customers": {"enabled": True}}, "<bench>"
    )


# ---- generation ---------------------------------------------------------------------------------------------------


def months() -> list[date]:
    y, m = FIRST_MONTH
    out = []
    for k in range(MONTHS):
        idx = y * 12 + m - 1 + k
        out.append(date(idx // 12, idx % 12 + 1, 1))
    return out


def _ids_cte(sqlite: bool) -> str:
    """``ids(id)``: the customer ids in [:lo, :hi)."""
    if sqlite:
        return "ids(id) AS (SELECT :lo UNION ALL SELECT id + 1 FROM ids WHERE id + 1 < :hi)"
    return "ids(id) AS (SELECT generate_series(:lo, :hi - 1))"


def _months_cte(sqlite: bool) -> str:
    """``ms(k, month)``: the 36 months (k = 0 … 35)."""
    lit = (lambda d: f"'{d.isoformat()}'") if sqlite else (lambda d: f"DATE '{d.isoformat()}'")
    values = ", ".join(f"({k}, {lit(d)})" for k, d in enumerate(months()))
    return f"ms(k, month) AS (VALUES {values})"


def _day(sqlite: bool, salt: int) -> str:
    """A day of ``ms.month`` (1st-28th) from a hash of (id, k)."""
    offset = f"((ids.id * 31 + ms.k * 17 + {salt}) % 28)"
    if sqlite:
        return f"date(ms.month, '+' || {offset} || ' days')"
    return f"(ms.month + {offset})"


def generation_sql(sqlite: bool) -> dict[str, str]:
    """table -> INSERT … SELECT of the rows of the customers [:lo, :hi)."""
    ids, ms = _ids_cte(sqlite), _months_cte(sqlite)
    rec = "WITH RECURSIVE" if sqlite else "WITH"
    # A pseudo-random 0..999 per (customer, month): a multiplicative hash, the same on both backends.
    h = "((ids.id * 2654435761 + ms.k * 40503) % 1000)"
    amount = f"ROUND(({h} * 97 + 100) * (CASE WHEN ids.id % 10 = 0 THEN 10 ELSE 1 END) / 10.0 + ({h} % 100) / 100.0, 2)"
    return {
        "customers": f"""
            INSERT INTO customers (id, name, aliases, grade, rep_id, wards, contacts, created_at, updated_at)
            {rec} {ids}
            SELECT id, 'bench-hospital-' || id, '[]', CASE WHEN id % 10 < 2 THEN 'A' WHEN id % 10 < 5 THEN 'B'
                   ELSE 'C' END, NULL, '[]', '[]', :now, :now FROM ids""",
        "customer_purchases": f"""
            INSERT INTO customer_purchases (customer_id, month, amount, source, created_at, updated_at)
            {rec} {ids}, {ms}
            SELECT ids.id, ms.month, {amount}, 'import', :now, :now FROM ids CROSS JOIN ms ORDER BY ids.id, ms.k""",
        "customer_trials": f"""
            INSERT INTO customer_trials (customer_id, product, day, source, created_at, updated_at)
            {rec} {ids}, {ms}
            SELECT ids.id, '新品X', {_day(sqlite, 3)}, 'import', :now, :now FROM ids CROSS JOIN ms
            WHERE ((ids.id * 7919 + ms.k * 104729) % 100) < 10 ORDER BY ids.id, ms.k""",
        "customer_events": f"""
            INSERT INTO customer_events (customer_id, event, day, attendees, source, created_at, updated_at)
            {rec} {ids}, {ms}
            SELECT ids.id, '骨科沙龙', {_day(sqlite, 11)}, 5 + (ids.id + ms.k) % 40, 'import', :now, :now
            FROM ids CROSS JOIN ms WHERE ((ids.id * 6151 + ms.k * 12289) % 100) < 20 ORDER BY ids.id, ms.k""",
    }


async def generate(db: Database, lo: int, hi: int) -> dict[str, int]:
    """Customers [lo, hi) and their 3 years of activity; returns the rows written per table."""
    out: dict[str, int] = {}
    async with db.core_transaction() as conn:
        for table, sql in generation_sql(db.is_sqlite).items():
            stmt = text(sql).bindparams(bindparam("now", type_=UTCDateTime()))
            result = await conn.execute(stmt, {"lo": lo, "hi": hi, "now": NOW})
            out[table] = int(result.rowcount or 0)
        if not db.is_sqlite:
            await conn.execute(
                text("SELECT setval(pg_get_serial_sequence('customers', 'id'), (SELECT max(id) FROM customers))")
            )
    await analyze(db)
    return out


async def analyze(db: Database) -> None:
    async with db.engine.connect() as conn:
        if db.is_sqlite:
            await conn.exec_driver_sql("ANALYZE")
            await conn.commit()
        else:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await auto.execute(text("VACUUM ANALYZE"))


async def counts(db: Database) -> dict[str, int]:
    async with db.engine.connect() as conn:
        return {
            t: int((await conn.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one())
            for t in ("customers", *ACTIVITY)
        }


# ---- the two measured things ------------------------------------------------------------------------------------


@dataclass
class Bare:
    purchases: dict[int, Decimal]
    trials: dict[int, int]
    events: dict[int, int]


async def bare(conn: AsyncConnection, settings: Settings) -> Bare:
    """The three aggregates of the night's windows, every row fetched."""
    params = scoring.windows(settings.customers.score, NIGHT)
    out = []
    for sql in scoring.AGGREGATES.values():
        stmt = scoring.typed(sql)
        used = {k: v for k, v in params.items() if f":{k}" in sql}
        out.append((await conn.execute(stmt, used)).all())
    p, t, e = out
    return Bare(
        {c: Decimal(str(v)).quantize(Decimal("0.01")) for c, v in p},
        {c: int(v) for c, v in t},
        {c: int(v) for c, v in e},
    )


async def compute(db: Database, settings: Settings) -> int:
    async with db.transaction() as s:
        return await scoring.compute_night(s, settings, NIGHT, NOW)


def select_only(settings: Settings, dialect: str) -> tuple[Any, dict[str, Any]]:
    """The score statement's SELECT (the CTEs, the percentiles, the weighted sum, the grade), counted, not written:
    how much of compute_night is the computing and how much the writing."""
    stmt, params = scoring.score_statement(settings, dialect)
    sql = str(stmt.text)
    body = "WITH p AS" + sql.split("WITH p AS", 1)[1].split("ON CONFLICT", 1)[0]
    # Every column summed: a count alone would let PostgreSQL skip computing the ones it does not return.
    cols = "sum(score), sum(purchases), sum(trials), sum(events), sum(amount), sum(length(suggested))"
    body = body.replace(
        "SELECT customer_id, :night, score, pc, tc, ec, pv, tv, ev, grade,",
        "SELECT customer_id, score, pc AS purchases, tc AS trials, ec AS events, pv AS amount, grade,",
    )
    body = body.replace(", :now FROM scored", " AS suggested FROM scored")
    return scoring.typed(f"SELECT count(*), {cols} FROM ({body}) q"), params


async def compute_select(db: Database, settings: Settings) -> int:
    stmt, params = select_only(settings, "sqlite" if db.is_sqlite else "postgresql")
    params.update(scoring.windows(settings.customers.score, NIGHT), now=NOW)
    async with db.read() as s:
        if not db.is_sqlite:  # as compute_night does
            await s.execute(text(f"SET LOCAL work_mem = '{scoring.WORK_MEM}'"))
            await s.execute(text("SET LOCAL jit = off"))
        n = int((await s.execute(stmt, params)).one()[0])
        await s.rollback()
        return n


async def clear_night(db: Database) -> None:
    async with db.core_transaction() as conn:
        await conn.execute(
            text("DELETE FROM customer_scores WHERE night = :night").bindparams(
                bindparam("night", type_=scoring.Date())
            ),
            {"night": NIGHT},
        )
    if not db.is_sqlite:
        # What autovacuum does between two nights: the deleted rows' index entries are gone, as when the job
        # writes a new night (new keys), not the same night over the dead versions of the previous runs.
        async with db.engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await auto.execute(text("VACUUM customer_scores"))


async def check(db: Database, settings: Settings, customers: int) -> list[str]:
    """The rows compute_night wrote against the bare aggregates and the customer count."""
    problems = []
    async with db.engine.connect() as conn:
        b = await bare(conn, settings)
        stmt = text(
            "SELECT customer_id, purchases_amount, trials_count, attendees, score FROM customer_scores"
            " WHERE night = :night"
        ).bindparams(bindparam("night", type_=scoring.Date()))
        rows = (await conn.execute(stmt, {"night": NIGHT})).all()
    if len(rows) != customers:
        problems.append(f"{len(rows)} score rows for {customers} customers")
    zero = Decimal("0.00")
    for cid, amount, trials, attendees, score in rows:
        got = (Decimal(str(amount)).quantize(Decimal("0.01")), int(trials), int(attendees))
        want = (b.purchases.get(cid, zero), b.trials.get(cid, 0), b.events.get(cid, 0))
        if got != want or not 0 <= float(score) <= 100:
            problems.append(f"customer {cid}: {got} score {score}, bare {want}")
            break
    return problems


async def plan(db: Database, settings: Settings) -> list[str]:
    stmt, params = scoring.score_statement(settings, "sqlite" if db.is_sqlite else "postgresql")
    params.update(scoring.windows(settings.customers.score, NIGHT), now=NOW)
    sql = str(stmt.text)
    prefix = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN "
    async with db.engine.connect() as conn:
        if not db.is_sqlite:  # as compute_night plans it
            await conn.execute(text(f"SET LOCAL work_mem = '{scoring.WORK_MEM}'"))
            await conn.execute(text("SET LOCAL jit = off"))
        rows = (await conn.execute(scoring.typed(prefix + sql), params)).all()
        await conn.rollback()
    return [str(r[-1]) if db.is_sqlite else str(r[0]) for r in rows]


# ---- measuring ----------------------------------------------------------------------------------------------------


@dataclass
class Step:
    backend: str
    customers: int
    activity: int
    gen_s: float
    bare_ms: list[float] = field(default_factory=list)
    score_ms: list[float] = field(default_factory=list)
    select_ms: list[float] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)


async def measure(db: Database, settings: Settings, step: Step, runs: int) -> None:
    async with db.engine.connect() as conn:
        await bare(conn, settings)  # warm-up
        for _ in range(runs):
            t = time.perf_counter()
            await bare(conn, settings)
            step.bare_ms.append((time.perf_counter() - t) * 1e3)
            await conn.rollback()
    for i in range(runs + 1):
        t = time.perf_counter()
        n = await compute_select(db, settings)
        if i:
            step.select_ms.append((time.perf_counter() - t) * 1e3)
        if n != step.customers:
            step.checks.append(f"the score SELECT gave {n} rows for {step.customers} customers")
    for i in range(runs + 1):
        await clear_night(db)
        t = time.perf_counter()
        scored = await compute(db, settings)
        if i:  # the first one is the warm-up
            step.score_ms.append((time.perf_counter() - t) * 1e3)
        if scored != step.customers:
            step.checks.append(f"compute_night returned {scored} for {step.customers} customers")
    step.checks += await check(db, settings, step.customers)


@contextlib.asynccontextmanager
async def scratch_database(backend: str, tmp: Path, pg_url: str, keep: bool) -> Any:
    if backend == "sqlite":
        path = tmp / f"score_{uuid.uuid4().hex[:8]}.db"
        try:
            yield f"sqlite+aiosqlite:///{path}"
        finally:
            if not keep:
                for p in path.parent.glob(path.name + "*"):
                    p.unlink()
        return
    name = f"salesbot_bench_score_{uuid.uuid4().hex[:8]}"
    assert name != "test"
    await pg_admin(pg_url, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    finally:
        if keep:
            print(f"  kept PostgreSQL database {name}")
        else:
            await pg_admin(pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def steps_of(total: int) -> list[int]:
    """The cumulative customer counts measured: 1/4, 1/2, all."""
    return [total // 4, total // 2, total]


async def run_backend(backend: str, args: argparse.Namespace, tmp: Path) -> tuple[list[Step], list[str]]:
    out: list[Step] = []
    async with scratch_database(backend, tmp, args.pg_url, args.keep) as url:
        settings = settings_for(url)
        db = Database(url)
        try:
            await upgrade(db)
            done = 0
            for n in steps_of(args.customers):
                t = time.perf_counter()
                written = await generate(db, done + 1, n + 1)
                gen_s = time.perf_counter() - t
                done = n
                c = await counts(db)
                step = Step(backend, c["customers"], sum(c[a] for a in ACTIVITY), gen_s)
                print(f"  {backend} {n} customers: +{written} in {gen_s:.1f} s; totals {c}", flush=True)
                if c["customers"] != n or c["customer_purchases"] != n * MONTHS:
                    step.checks.append(f"generated {c}")
                await measure(db, settings, step, args.runs)
                print(
                    f"    bare {med(step.bare_ms):.0f} ms, score SELECT {med(step.select_ms):.0f} ms,"
                    f" compute_night {med(step.score_ms):.0f} ms",
                    flush=True,
                )
                out.append(step)
            plan_lines = await plan(db, settings)
        finally:
            await db.dispose()
    return out, plan_lines


# ---- report -------------------------------------------------------------------------------------------------------


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def report(steps: list[Step], plans: dict[str, list[str]], judge: bool = True) -> bool:
    """Print the table; False when a check failed or (``judge``) a target was missed."""
    ok = True
    print()
    print(
        f"{'backend':<10} {'customers':>9} {'activity':>9} {'bare ms':>8} {'select ms':>9} {'score ms':>9} {'ratio':>6}"
        f" {'bare µs/krow':>12} {'score µs/krow':>13} {'per-row vs 1/4':>14}  target"
    )
    for backend in dict.fromkeys(s.backend for s in steps):
        mine = [s for s in steps if s.backend == backend]
        base = med(mine[0].score_ms) / mine[0].activity
        for s in mine:
            b, c = med(s.bare_ms), med(s.score_ms)
            ratio, per = c / b, (c / s.activity) / base
            met = ratio <= TARGET_RATIO and per <= TARGET_LINEAR
            ok &= met or not judge
            print(
                f"{backend:<10} {s.customers:>9} {s.activity:>9} {b:8.0f} {med(s.select_ms):9.0f} {c:9.0f} {ratio:6.2f}"
                f" {b / s.activity * 1e6:12.0f} {c / s.activity * 1e6:13.0f} {per:14.2f}"
                f"  ratio <= {TARGET_RATIO:.0f}, per-row <= {TARGET_LINEAR}: {'met' if met else 'MISSED'}"
                f"{'' if judge else ' (--quick: not judged)'}"
            )
    print("\n(select ms: the score statement's SELECT alone, counted, nothing written; ratio: score / bare)")
    print("(activity: purchases + trials + events rows in the database; µs/krow: ms per 1,000 of them × 1,000)")
    print("\ngeneration (not the figure):")
    for s in steps:
        print(f"  {s.backend} up to {s.customers} customers: {s.gen_s:.1f} s")
    for backend, lines in plans.items():
        print(f"\nplan of the score statement on {backend}:")
        for line in lines:
            print(f"  {line}")
    for s in steps:
        for e in s.checks:
            print(f"CHECK FAILED {s.backend} {s.customers}: {e}")
            ok = False
    return ok


async def main_async(args: argparse.Namespace, tmp: Path) -> int:
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    steps: list[Step] = []
    plans: dict[str, list[str]] = {}
    for backend in args.backends:
        got, plans[backend] = await run_backend(backend, args, tmp)
        steps += got
    ok = report(steps, plans, judge=not args.quick)
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if ok else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument("--backends", default="sqlite,postgresql")
    p.add_argument("--runs", type=int, default=5, help="measured runs of each (after one warm-up)")
    p.add_argument("--pg-url", default=os.environ.get("SALESBOT_BENCH_PG_URL", DEFAULT_PG))
    p.add_argument("--keep", action="store_true", help="keep the SQLite file and the PostgreSQL database")
    p.add_argument("--quick", action="store_true", help="2,000 customers, 2 runs (a smoke run; targets not judged)")
    args = p.parse_args(argv)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if set(args.backends) - {"sqlite", "postgresql"}:
        p.error("backends: sqlite, postgresql")
    if "postgresql" in args.backends and make_url(args.pg_url).host not in LOOPBACK:
        p.error("--pg-url must point at loopback")
    if args.quick:
        args.customers, args.runs = 2000, 2
    if args.customers < 40 or args.runs < 1:
        p.error("at least 40 customers and one run")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="salesbot-score-"))
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
