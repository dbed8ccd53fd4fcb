"""The audit chain's append cost (issue 15): one visit-like audit row per transaction, with and without chaining,
side by side in one run, on SQLite and PostgreSQL.

Run from the repository root:

    python bench/audit_append.py [--rate 200] [--seconds 10] [--concurrency 8] [--backends sqlite,postgresql]
                                 [--pg-url URL] [--quick]

Each backend gets a fresh database (a SQLite file in a temporary directory; a scratch PostgreSQL database
``salesbot_bench_audit_<random>`` created on ``--pg-url`` and dropped afterwards), migrated to head. Two phases,
each run for both modes in alternating blocks of one second (so drift of the machine hits both alike):

* **fixed rate**: ``--rate`` transactions per second, open loop (the WeCom callback benchmark's fixed-rate load is
  200 req/s; each callback writes at most one audit row), each a ``db.transaction()`` holding one
  ``audit.record`` of a visit snapshot (Chinese text, ~600 bytes of JSON) and its commit; the latency of each;
* **closed loop**: ``--concurrency`` tasks appending as fast as they can for the same time: rows per second.

"plain" removes the chaining hook (``storage.audit_chain``) for its blocks: that is the audit insert as it was
before 0017. The script prints the table and the ratio, verifies the chain at the end, and exits 1 when the
fixed-rate mean or p50 with chaining is more than 10 % above plain.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parents[1]
for path in (ROOT, SCRIPT.parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from procs import pg_database, scratch_database_url  # noqa: E402
from sqlalchemy import event  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from bot.infra import audit  # noqa: E402
from storage import audit_chain  # noqa: E402
from storage.audit_verify import verify  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402

AT = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)
SNAPSHOT: dict[str, Any] = {
    "customer_id": 17,
    "ward": "骨科",
    "contacts": ["张主任", "李医生"],
    "topics": "新品关节假体的临床数据，术后随访方案",
    "products": ["髋关节假体", "膝关节假体"],
    "objection": "价格太高",
    "objection_note": "院内招标价格低于我们报价约 8%",
    "commitments": "下周带样机给科室演示",
    "next_step": "跟台",
    "attitude": "积极",
    "visited_at": "2026-12-04T02:00:00+00:00",
    "location_status": "ok",
    "latitude": 30.2556,
    "longitude": 120.1775,
    "distance_m": 83.0,
}


def chaining(on: bool) -> None:
    if on:
        audit_chain.install()
    elif event.contains(Session, "before_flush", audit_chain._before_flush):
        event.remove(Session, "before_flush", audit_chain._before_flush)


async def one(db: Database, i: int) -> float:
    start = time.perf_counter()
    async with db.transaction() as s:
        audit.record(
            s,
            at=AT + timedelta(microseconds=i),
            action="visit.create",
            entity="visit",
            entity_id=i,
            actor_id=f"rep{i % 50:02d}",
            channel="wecom",
            changes=SNAPSHOT,
        )
    return time.perf_counter() - start


async def fixed_rate(db: Database, rate: float, seconds: float, counter: list[int]) -> list[float]:
    latencies: list[float] = []
    tasks = []
    t0 = time.perf_counter()
    n = int(rate * seconds)
    for k in range(n):
        due = t0 + k / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        counter[0] += 1

        async def timed(i: int, due: float) -> None:
            await one(db, i)
            latencies.append(time.perf_counter() - due)

        tasks.append(asyncio.create_task(timed(counter[0], due)))
    await asyncio.gather(*tasks)
    return latencies


async def closed_loop(db: Database, concurrency: int, seconds: float, counter: list[int]) -> int:
    end = time.perf_counter() + seconds
    done = 0

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < end:
            counter[0] += 1
            await one(db, counter[0])
            done += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


async def bench(url: str, args: argparse.Namespace) -> tuple[dict[str, dict[str, float]], bool]:
    db = Database(url)
    await upgrade(db)
    counter = [0]
    lat: dict[bool, list[float]] = {True: [], False: []}
    rows: dict[bool, int] = {True: 0, False: 0}
    for on in (True, False):  # warm-up
        chaining(on)
        await fixed_rate(db, args.rate, 0.5, counter)
    blocks = max(1, int(args.seconds))
    for b in range(blocks):
        for on in (True, False) if b % 2 == 0 else (False, True):
            chaining(on)
            lat[on] += await fixed_rate(db, args.rate, args.seconds / blocks, counter)
    for b in range(blocks):
        for on in (True, False) if b % 2 == 0 else (False, True):
            chaining(on)
            rows[on] += await closed_loop(db, args.concurrency, args.seconds / blocks, counter)
    chaining(True)
    # The plain rows have no seq: verify the chained ones only.
    from sqlalchemy import text

    async with db.engine.begin() as conn:
        await conn.execute(text("DELETE FROM audit_log WHERE seq IS NULL"))
    report = await verify(db)
    await db.dispose()
    out = {}
    for on in (False, True):
        xs = lat[on]
        out["chained" if on else "plain"] = {
            "mean_ms": statistics.fmean(xs) * 1000,
            "p50_ms": pct(xs, 0.5) * 1000,
            "p99_ms": pct(xs, 0.99) * 1000,
            "rows_per_s": rows[on] / args.seconds,
        }
    return out, report.ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--quick", action="store_true", help="2 s per phase: a smoke run, target not judged")
    args = parser.parse_args()
    if args.quick:
        args.seconds = 2.0
    failed = False
    for backend in args.backends.split(","):
        if backend == "sqlite":
            tmp = tempfile.TemporaryDirectory()
            url = f"sqlite+aiosqlite:///{Path(tmp.name) / 'audit.db'}"
            result, ok = asyncio.run(bench(url, args))
            tmp.cleanup()
        else:
            url = scratch_database_url(args.pg_url, "salesbot_bench_audit")
            asyncio.run(pg_database(url, create=True))
            try:
                result, ok = asyncio.run(bench(url, args))
            finally:
                asyncio.run(pg_database(url, create=False))
        plain, chained = result["plain"], result["chained"]
        print(
            f"\n{backend}: {args.rate:.0f} tx/s fixed rate, {args.concurrency} closed-loop tasks, {args.seconds:.0f} s"
        )
        print(f"{'':10} {'mean ms':>9} {'p50 ms':>9} {'p99 ms':>9} {'rows/s':>9}")
        for name, r in (("plain", plain), ("chained", chained)):
            print(f"{name:10} {r['mean_ms']:9.2f} {r['p50_ms']:9.2f} {r['p99_ms']:9.2f} {r['rows_per_s']:9.0f}")
        ratio_mean = chained["mean_ms"] / plain["mean_ms"] - 1
        ratio_p50 = chained["p50_ms"] / plain["p50_ms"] - 1
        ratio_rows = chained["rows_per_s"] / plain["rows_per_s"] - 1
        print(f"chained vs plain: mean {ratio_mean:+.1%}, p50 {ratio_p50:+.1%}, closed-loop rows/s {ratio_rows:+.1%}")
        print(f"chain verifies: {ok}")
        if not ok or (not args.quick and max(ratio_mean, ratio_p50) > 0.10):
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
