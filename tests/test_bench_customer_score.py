"""The nightly score benchmark (``bench/customer_score.py``) keeps working: its generator writes the sizes it
promises, compute_night's rows match its bare aggregates, and the whole script runs in ``--quick`` mode."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from storage.db import Database
from storage.migrate import upgrade

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench" / "customer_score.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_customer_score", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


async def test_generator_sizes_and_the_score_matches_the_bare_aggregates(tmp_path: Path) -> None:
    bench = load_bench()
    url = f"sqlite+aiosqlite:///{tmp_path / 'bench.db'}"
    db = Database(url)
    try:
        await upgrade(db)
        await bench.generate(db, 1, 101)
        await bench.generate(db, 101, 201)
        counts = await bench.counts(db)
        assert counts["customers"] == 200 and counts["customer_purchases"] == 200 * bench.MONTHS
        # About 10 % and 20 % of the customer-months.
        assert 0.05 < counts["customer_trials"] / (200 * bench.MONTHS) < 0.15
        assert 0.15 < counts["customer_events"] / (200 * bench.MONTHS) < 0.25
        settings = bench.settings_for(url)
        assert await bench.compute(db, settings) == 200
        assert await bench.compute_select(db, settings) == 200
        assert await bench.check(db, settings, 200) == []
        async with db.engine.connect() as conn:
            bare = await bench.bare(conn, settings)
        assert len(bare.purchases) == 200 and bare.trials and bare.events
    finally:
        await db.dispose()


@pytest.mark.slow
def test_the_script_runs_in_quick_mode() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--backends", "sqlite"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(--quick: not judged)" in done.stdout and "CHECK FAILED" not in done.stdout
    assert "plan of the score statement on sqlite" in done.stdout
