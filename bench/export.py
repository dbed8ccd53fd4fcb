"""Exports (issue 15, docs/exports.md): ``salesbot export visits`` of 100k and 1M visits to CSV and XLSX on SQLite
and PostgreSQL, the peak RSS of each run side by side (flat memory: 1M must not need more than 100k) and rows/s.

Run from the repository root:

    python bench/export.py [--rows 1000000] [--backends sqlite,postgresql] [--pg-url URL] [--keep]

Each backend gets a fresh database: a SQLite file in a temporary directory, or a scratch PostgreSQL database
``salesbot_bench_export_<random>`` created on ``--pg-url`` and dropped afterwards (the database the URL names is only
used to create and drop it; never ``test``). Schema from the migrations, the demo org and customers imported, then
``--rows`` visits generated in SQL (``INSERT … SELECT`` from a recursive CTE: no Python rows), 10,000 a day from
2026-01-01 (UTC), reps and customers round robin, a topic of 60 characters, contacts and products as JSON.

Each export runs in a child process (``python bench/export.py --child …``) so its peak RSS (``VmHWM``) is its own:
the org days 2026-01-01..01-10 hold 100k visits, ..(rows / 10,000 days) all of them. The child streams through
``bot.services.exports.write_export`` into a file, as ``salesbot export`` does. Exit status 1 when the 1M run's
peak RSS is more than 1.5 × the 100k run's (not flat) or a row count is wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parents[1]
for path in (ROOT, SCRIPT.parent):  # the app, and bench/procs.py's helpers
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from procs import pg_database, vm_hwm_mb  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bot.config import Settings, parse_settings  # noqa: E402
from bot.imports import org as importer  # noqa: E402
from bot.services import exports  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402

DEMO = ROOT / "bot" / "demo_data"
PER_DAY = 10_000
FIRST = date(2026, 1, 1)
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
FLAT = 1.5
# The first org day's midnight in Shanghai (the demo org's zone), in UTC: 10,000 visits in each org day.
START_UTC = "2025-12-31 16:00:00"


def settings_for(url: str) -> Settings:
    return parse_settings({"database": {"url": url}, "logging": {"level": "WARNING"}}, "<bench>")


def generation_sql(sqlite: bool) -> str:
    """INSERT … SELECT of visits 0 ≤ n < :rows, ``PER_DAY`` an org day from ``FIRST``."""
    step = 86400 / PER_DAY
    if sqlite:
        # The text SQLAlchemy writes (microseconds included): the bounds compare as text on SQLite.
        shift = f"'+' || CAST(n * {step} AS INTEGER) || ' seconds'"
        at = f"strftime('%Y-%m-%d %H:%M:%S', '{START_UTC}', {shift}) || '.000000'"
        true, json_list = "1", "'[\"张主任\"]'"
        products = "'[\"超声刀X1\"]'"
    else:
        at = f"TIMESTAMPTZ '{START_UTC}+00' + n * INTERVAL '{step} seconds'"
        true, json_list = "true", "'[\"张主任\"]'::json"
        products = "'[\"超声刀X1\"]'::json"
    return f"""
        WITH RECURSIVE ns(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM ns WHERE n + 1 < :rows),
        reps(k, id) AS (SELECT 0, 'rep01' UNION ALL SELECT 1, 'rep02'),
        cs AS (SELECT MIN(id) AS lo, COUNT(*) AS c FROM customers)
        INSERT INTO visits (rep_id, customer_id, ward, contacts, topics, products, objection, commitments,
                            next_step, visited_at, location_status, locked, source_channel, created_at, updated_at)
        SELECT reps.id, cs.lo + n % cs.c, '骨科', {json_list},
               '新品介绍与临床反馈，讨论下季度的试用安排和培训需求，客户希望尽快安排样品送达科室。', {products},
               '价格', '下周送样', '安排培训', {at}, 'ok', {true}, 'wecom', {at}, {at}
        FROM ns JOIN reps ON reps.k = n % 2 CROSS JOIN cs
    """


async def prepare(url: str, rows: int) -> None:
    db = Database(url)
    try:
        await upgrade(db)
        now = datetime(2026, 1, 1, tzinfo=UTC)
        await importer.import_org(db, DEMO / "org.csv", now=now, departments=["logistics", "marketing", "compliance"])
        await importer.import_customers(db, DEMO / "customers.csv", now=now)
        sqlite = url.startswith("sqlite")
        started = time.perf_counter()
        async with db.engine.begin() as conn:
            if sqlite:
                await conn.exec_driver_sql("PRAGMA recursive_triggers = OFF")
            await conn.execute(text(generation_sql(sqlite)), {"rows": rows})
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql("ANALYZE")
        print(f"  generated {rows:,} visits in {time.perf_counter() - started:.1f} s", flush=True)
    finally:
        await db.dispose()


async def child(url: str, fmt: str, days: int, out: str) -> dict[str, float | int]:
    """One export in this process: the org days FIRST .. FIRST + days - 1."""
    settings = settings_for(url)
    spec = exports.make_spec("visits", FIRST.isoformat(), (FIRST + timedelta(days=days - 1)).isoformat(), fmt)
    db = Database(settings.database.url)
    try:
        base = vm_hwm_mb() or 0.0
        started = time.perf_counter()
        async with db.read() as session:
            with open(out, "wb") as f:  # noqa: ASYNC230 - the bench's only work
                n = await exports.write_export(session, settings, spec, f)
        seconds = time.perf_counter() - started
    finally:
        await db.dispose()
    return {
        "rows": n,
        "seconds": seconds,
        "peak_mb": vm_hwm_mb() or 0.0,
        "start_mb": base,
    }


def run_child(url: str, fmt: str, days: int, tmp: Path) -> dict[str, float | int]:
    out = tmp / f"export_{days}.{fmt}"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--child", url, fmt, str(days), str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    got: dict[str, float | int] = json.loads(done.stdout.strip().splitlines()[-1])
    got["bytes"] = out.stat().st_size
    out.unlink()
    return got


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default=os.environ.get("SALESBOT_BENCH_PG_URL", DEFAULT_PG))
    parser.add_argument("--formats", default="csv,xlsx")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--child", nargs=4, metavar=("URL", "FORMAT", "DAYS", "OUT"))
    args = parser.parse_args()
    if args.child:
        url, fmt, days, out = args.child
        print(json.dumps(asyncio.run(child(url, fmt, int(days), out))))
        return 0
    failed = False
    small_days, all_days = max(1, args.rows // PER_DAY // 10), max(1, args.rows // PER_DAY)
    results: list[tuple[str, str, int, dict[str, float | int]]] = []
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory() as tmpdir:
            tmp = Path(tmpdir)
            if backend == "sqlite":
                url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
            else:
                name = f"salesbot_bench_export_{uuid.uuid4().hex[:8]}"
                url = make_url(args.pg_url).set(database=name).render_as_string(hide_password=False)
                asyncio.run(pg_database(url, create=True))
            print(f"{backend}:", flush=True)
            try:
                asyncio.run(prepare(url, args.rows))
                for fmt in args.formats.split(","):
                    for days in (small_days, all_days):
                        got = run_child(url, fmt, days, tmp)
                        results.append((backend, fmt, days, got))
                        print(
                            f"  {fmt:4} {got['rows']:>9,} rows  {got['seconds']:7.1f} s  "
                            f"{got['rows'] / got['seconds']:>8,.0f} rows/s  peak RSS {got['peak_mb']:6.1f} MB "
                            f"(at start {got['start_mb']:.1f})  file {got['bytes'] / 1e6:.0f} MB",
                            flush=True,
                        )
                        if got["rows"] != days * PER_DAY:
                            print(f"  wrong row count: {got['rows']} != {days * PER_DAY}")
                            failed = True
                    small, full = results[-2][3], results[-1][3]
                    ratio = float(full["peak_mb"]) / float(small["peak_mb"])
                    print(f"  {fmt:4} peak RSS {full['rows']:,} / {small['rows']:,} rows: {ratio:.2f}", flush=True)
                    failed = failed or ratio > FLAT
            finally:
                if backend != "sqlite" and not args.keep:
                    asyncio.run(pg_database(url, create=False))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
