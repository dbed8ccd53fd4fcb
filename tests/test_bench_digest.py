"""The digest benchmark's generator and bare SQL at a tiny size on SQLite, so ``bench/digest.py`` keeps working."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from sqlalchemy import func, select

from bot.services.plan_rule import span, week_start
from storage.db import Database
from storage.migrate import upgrade
from storage.models import PlanItem, Visit
from storage.vocab import PlanPeriod

BENCH = Path(__file__).resolve().parents[1] / "bench" / "digest.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_digest", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


async def test_generator_writes_the_sizes_asked_and_the_bare_digest_counts_them(tmp_path: Path) -> None:
    bench = load_bench()
    sizes = bench.Sizes.for_visits(2000)
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'bench.db'}")
    try:
        await upgrade(db)
        counter, org = await bench.generate(db, sizes, seed=3)
        counts = await bench.table_counts(db)
        assert (counts["visits"], counts["task_cards"], counts["plan_items"]) == (2000, 400, 600)
        assert counts["support_requests"] == 200
        assert counts == dict(counter.rows)
        assert len(org.reps) == 600 and len(org.managers) == 40
        async with db.read() as s:
            items = list(await s.scalars(select(PlanItem)))
            _, start, end = span(PlanPeriod.DAY, bench.DAY, bench.TZ)
            today = await s.scalar(
                select(func.count()).select_from(Visit).where(Visit.visited_at >= start, Visit.visited_at < end)
            )
            last = await s.scalar(select(func.max(Visit.visited_at)))
        # Spans are the plan rule's; week items sit on their Monday; nothing after the benchmark's instant.
        for item in items:
            assert (item.day, item.starts_at, item.ends_at) == span(item.period, item.day, bench.TZ)
            if item.period == PlanPeriod.WEEK:
                assert item.day == week_start(item.day)
        assert {i.period for i in items} == {"day", "week"}
        assert last is not None and last < bench.NOW
        async with db.engine.connect() as conn:
            director = await bench.bare_digest(conn, bench.DIRECTOR)
            manager = await bench.bare_digest(conn, bench.ONE_MANAGER)
        assert director.visits == today > 0
        assert 0 <= director.plan_done <= director.plan_items
        assert manager.visits <= director.visits
        # The bare queries read through indexes, never a whole history table.
        assert not [name for name, _, scan in await bench.explain(db, bench.DIRECTOR) if scan]
    finally:
        await db.dispose()


def test_scope_of_a_manager_includes_the_teams_below() -> None:
    bench = load_bench()
    rows = [
        ("dir01", None, ["director"]),
        ("mgr01", "dir01", ["manager"]),
        ("mgr02", "mgr01", ["manager"]),
        ("rep1", "mgr01", ["rep"]),
        ("rep2", "mgr02", ["rep"]),
        ("rep3", "dir01", ["rep"]),
    ]
    assert bench.scope_of(rows, "mgr01") == ["rep1", "rep2"]
    assert bench.scope_of(rows, "mgr02") == ["rep2"]
    assert bench.scope_of(rows, "dir01") == ["rep1", "rep2", "rep3"]
