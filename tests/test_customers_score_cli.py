"""`salesbot customers score [--night YYYY-MM-DD]` through click's CliRunner: a night computed on demand (a
backfill), re-running it replaces the night's rows, a bad date is refused with a message saying how to write it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bot.cli import main

pytestmark = pytest.mark.usefixtures("clean_env", "keep_logging")

DEMO = Path(__file__).resolve().parent.parent / "bot" / "demo_data"


def run(*args: str, env: dict[str, str]) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def rows(env: dict[str, str], sql: str) -> list[tuple[object, ...]]:
    path = env["SALESBOT__DATABASE__URL"].removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(path) as conn:
        return list(conn.execute(sql))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = {"SALESBOT__DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"}
    for args in (("db", "upgrade"), ("import", "customers", str(DEMO / "customers.csv"))):
        result = run(*args, env=env)
        assert result.exit_code == 0, result.output
    path = env["SALESBOT__DATABASE__URL"].removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO customer_purchases (customer_id, month, amount, source, created_at, updated_at)"
            " SELECT id, '2026-11-01', 1000.5, 'import', '2026-12-01 00:00:00', '2026-12-01 00:00:00'"
            " FROM customers WHERE name = '浙江大学医学院附属第二医院'"
        )
    return env


def test_a_night_is_computed_on_demand_and_rerunning_it_replaces_it(env: dict[str, str]) -> None:
    result = run("customers", "score", "--night", "2026-12-04", env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "2026-12-04：已为 8 个客户计算健康分"
    again = run("customers", "score", "--night", "2026-12-04", env=env)
    assert again.exit_code == 0, again.output
    assert rows(env, "SELECT night, count(*) FROM customer_scores GROUP BY night") == [("2026-12-04", 8)]
    # The only buyer: top of the purchases percentile, 0.4 × 100; November counts on 2026-12-04.
    assert rows(
        env,
        "SELECT s.score, s.purchases, s.purchases_amount, s.suggested_grade FROM customer_scores s"
        " JOIN customers c ON c.id = s.customer_id WHERE c.name = '浙江大学医学院附属第二医院'",
    ) == [(40.0, 100.0, 1000.5, "C")]
    # Another night is a backfill beside it.
    assert run("customers", "score", "--night", "2026-08-31", env=env).exit_code == 0
    assert rows(env, "SELECT night, count(*) FROM customer_scores GROUP BY night ORDER BY night") == [
        ("2026-08-31", 8),
        ("2026-12-04", 8),
    ]


def test_without_a_night_today_is_computed(env: dict[str, str]) -> None:
    result = run("customers", "score", env=env)
    assert result.exit_code == 0, result.output
    assert "已为 8 个客户计算健康分" in result.stdout
    assert len(rows(env, "SELECT DISTINCT night FROM customer_scores")) == 1


def test_a_bad_night_is_refused(env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["customers", "score", "--night", "12/04"], env=env)
    assert result.exit_code == 2
    assert "日期「12/04」无效，请写成 2026-12-04 这样" in result.stderr
    assert rows(env, "SELECT count(*) FROM customer_scores") == [(0,)]
