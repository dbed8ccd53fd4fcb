"""`salesbot digest` through click's CliRunner on the data set of tests/digest_data.py: text as the chat shows it,
JSON with exactly the fields docs/digest.md documents."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bot.cli import main
from storage.db import Database
from storage.migrate import upgrade
from tests.digest_data import seed

pytestmark = pytest.mark.usefixtures("clean_env", "keep_logging")

DOC = Path(__file__).resolve().parent.parent / "docs" / "digest.md"
NOW = "2026-12-01T18:00+08:00"


def documented_fields() -> set[str]:
    """The field paths of the JSON table in docs/digest.md (`totals.visits`, `reps[].name` …)."""
    section = DOC.read_text().split("## JSON document", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z0-9_.\[\]]+)` \|", section, re.M))


def fields_of(value: Any, prefix: str = "") -> set[str]:
    if isinstance(value, dict):
        out: set[str] = set()
        for key, inner in value.items():
            path = f"{prefix}.{key}" if prefix else key
            nested = fields_of(inner, path)
            out |= nested or {path}
        return out
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return set().union(*(fields_of(v, prefix + "[]") for v in value))
    return set()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    url = f"sqlite+aiosqlite:///{tmp_path / 'digest.db'}"

    async def build() -> None:
        db = Database(url)
        try:
            await upgrade(db)
            await seed(db)
        finally:
            await db.dispose()

    asyncio.run(build())
    path = tmp_path / "salesbot.toml"
    path.write_text(f'[database]\nurl = "{url}"\n\n[plans]\nfrequency = {{A = 2, B = 1, C = 1}}\n')
    return path


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["digest", "--config", str(config), "--now", NOW, *args], catch_exceptions=False)


def test_json_has_exactly_the_documented_fields_and_the_figures(config: Path) -> None:
    result = run(config, "--user", "m1", "--date", "2026-12-01", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    documented = documented_fields()
    assert len(documented) == 53
    # open_followups and the customer alerts are empty here: their fields are documented, the rest must match.
    empty = ("open_followups", "alerts", "alert_lines")
    assert fields_of(doc) == {f for f in documented if not f.startswith(tuple(e + "[]" for e in empty))} | set(empty)
    assert doc["alerts_since"] == "2026-12-01"
    assert doc["scope"] == {
        "user": "m1",
        "period": "day",
        "start": "2026-12-01",
        "end": "2026-12-01",
        "reps": ["r1", "r2", "r3", "r4"],
    }
    totals = doc["totals"]
    assert (totals["visits"], totals["plan_items"], totals["plan_done"], totals["no_location"]) == (6, 5, 3, 2)
    assert totals["plan_completion"] == pytest.approx(0.6) and totals["a_coverage"] == pytest.approx(2 / 7)
    assert doc["top_objections"][0] == {"objection": "价格", "count": 3}
    assert doc["a_customers_not_visited"][0] == {"customer": "庚医院", "days_since_last_visit": None}
    assert doc["departments"][0]["first_response_median_minutes"] == 52.5


def test_json_week_and_one_rep(config: Path) -> None:
    result = run(config, "--user", "m1", "--date", "2026-12-03", "--period", "week", "--rep", "r1", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["scope"]["start"], doc["scope"]["end"], doc["scope"]["reps"]) == ("2026-11-30", "2026-12-06", ["r1"])
    assert (doc["totals"]["plan_items"], doc["totals"]["plan_done"]) == (4, 2)


def test_text_is_the_chat_digest(config: Path) -> None:
    result = run(config, "--user", "m1", "--date", "2026-12-01")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("日报 2026-12-01（周二） · 团队 4 人")
    assert "完成率 60%（3/5）" in out and "王磊 50%（1/2）" in out and "李娜 50%（1/2）" in out
    assert "2 次拜访没有定位" in out and "3 家 A 类客户超过 30 天未拜访" in out
    assert "物流 首次响应 中位 53 分钟，P90 2.5 小时，2 小时内 60%" in out
    assert "价格 3 次" in out
    # The first screen has no per-rep table: 张伟 (on no plan) is not named.
    assert "张伟" not in out


def test_text_detail_lists_every_rep(config: Path) -> None:
    result = run(config, "--user", "m1", "--date", "2026-12-01", "--detail")
    assert result.exit_code == 0, result.output
    assert "代表：张伟，拜访：2，计划完成：0/0，完成率：—，无定位：1" in result.stdout


def test_someone_outside_the_scope_is_refused(config: Path) -> None:
    result = run(config, "--user", "m1", "--rep", "r5")
    assert result.exit_code == 2
    assert "孙丽 不在你的团队里" in result.stderr


def test_an_unknown_user_is_refused(config: Path) -> None:
    result = run(config, "--user", "nobody")
    assert result.exit_code == 1 and "nobody" in result.stderr
