"""`salesbot customers report` through click's CliRunner on the data set of tests/customer_report_data.py: the text
in zh-CN (English with the org's default locale), the JSON document docs/customers.md lists, bad arguments (exit 2)
and a database without scores (exit 1, one clear line)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bot.cli import main
from storage.db import Database
from storage.migrate import upgrade
from tests.customer_report_data import seed

pytestmark = pytest.mark.usefixtures("clean_env", "keep_logging")

DOC = Path(__file__).resolve().parent.parent / "docs" / "customers.md"
LATER = "2027-01-15T10:00+08:00"


def _database(tmp_path: Path, with_data: bool) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'report.db'}"

    async def build() -> None:
        db = Database(url)
        try:
            await upgrade(db)
            if with_data:
                await seed(db)
        finally:
            await db.dispose()

    asyncio.run(build())
    return url


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"SALESBOT__DATABASE__URL": _database(tmp_path, with_data=True)}


def run(env: dict[str, str], *args: str, now: str = LATER) -> Result:
    return CliRunner().invoke(main, ["customers", "report", "--now", now, *args], env=env, catch_exceptions=False)


def test_text_in_chinese_with_the_verdict(env: dict[str, str]) -> None:
    result = run(env, "--since", "2026-06-01")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "模型效果：2026-06-01 至 2026-06-30 的推荐，看之后 182 天（今天 2027-01-15）"
    assert lines[1] == "推荐客户 4 家，转化 75.0%；其他 6 家，转化 33.3%；高出 41.7 个百分点（目标 ≥ 15）✓"
    assert lines[2] == "推荐客户：采购增长 2 家，试用新品 1 家；平均采购增长 ¥25，平均试用新品 0.25 个"
    assert lines[3] == "其他客户：采购增长 1 家，试用新品 1 家；平均采购增长 -¥10，平均试用新品 0.17 个"
    assert "注意" not in result.stdout  # every window is over


def test_text_partial_team_and_a_failed_target(env: dict[str, str]) -> None:
    result = run(env, "--since", "2026-06-01", "--team", "m9", "--points", "101", now="2026-12-04T10:00+08:00")
    assert result.exit_code == 2 and "目标「101」无效" in result.stderr
    result = run(env, "--since", "2026-06-01", "--flag-days", "30", "--window", "182", now="2026-12-04T10:00+08:00")
    assert result.exit_code == 0, result.output
    assert "注意：观察期要到 2026-12-18 才结束（今天 2026-12-04），以上是截至今天的数字。" in result.stdout
    result = run(env, "--since", "2026-06-01", "--team", "m9", "--points", "100")
    assert result.exit_code == 0, result.output
    assert "范围：周经理（m9）的团队" in result.stdout
    assert "推荐客户 1 家，转化 100.0%；其他 1 家，转化 0.0%；高出 100.0 个百分点（目标 ≥ 100）✓" in result.stdout


def test_english_with_the_org_locale(env: dict[str, str]) -> None:
    result = run({**env, "SALESBOT__ORG__DEFAULT_LOCALE": "en"}, "--since", "2026-06-01", "--points", "50")
    assert result.exit_code == 0, result.output
    assert (
        "recommended: 4 customers, 75.0% converted; others: 6, 33.3% converted; "
        "41.7 points higher (target ≥ 50)✗" in result.stdout
    )


def documented_keys() -> set[str]:
    """The keys of the JSON table in docs/customers.md "Measuring the model" (`recommended.customers` …)."""
    section = DOC.read_text().split("## Measuring the model", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_.]+)` \|", section, re.M))


def test_json_has_exactly_the_documented_keys(env: dict[str, str]) -> None:
    result = run(env, "--since", "2026-06-01", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    keys = {f"{k}.{inner}" for k, v in doc.items() if isinstance(v, dict) for inner in v}
    keys |= {k for k, v in doc.items() if not isinstance(v, dict)}
    assert keys == documented_keys()
    assert (doc["recommended"]["conversion_rate"], doc["others"]["conversion_rate"]) == (0.75, 0.3333)
    assert (doc["difference_points"], doc["pass"], doc["partial"]) == (41.67, True, False)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "请用 --since 给出起始日期"),
        (("--since", "6月1日"), "起始日期「6月1日」无效：请写成 年-月-日，例如 2026-06-01。"),
        (("--since", "2026-06-01", "--window", "half a year"), "观察期「half a year」无效：请写 31 到 1096 之间的天数"),
        (("--since", "2026-06-01", "--flag-days", "400"), "推荐期「400」无效"),
        (("--since", "2026-06-01", "--team", "nobody"), "没有这个人：nobody。"),
        (("--since", "2027-06-01"), "起始日期 2027-06-01 在今天（2027-01-15）之后"),
    ],
)
def test_bad_arguments_exit_2_with_what_to_fix(env: dict[str, str], args: tuple[str, ...], message: str) -> None:
    result = run(env, *args)
    assert result.exit_code == 2
    assert message in result.stderr and result.stdout == ""
    assert "Traceback" not in result.output


def test_bad_now_exits_2(env: dict[str, str]) -> None:
    result = run(env, "--since", "2026-06-01", now="yesterday")
    assert result.exit_code == 2 and "时间「yesterday」无效" in result.stderr


def test_an_empty_database_says_there_are_no_scores(tmp_path: Path) -> None:
    env = {"SALESBOT__DATABASE__URL": _database(tmp_path, with_data=False)}
    for extra in ((), ("--json",)):
        result = run(env, "--since", "2026-06-01", *extra)
        assert result.exit_code == 1
        assert result.stderr.strip() == (
            "2026-06-01 至 2026-06-30 没有客户评分，无法衡量：请等每晚评分跑过，或换一个有评分的起始日期。"
        )
        assert result.stdout == ""


def test_a_database_never_migrated_is_told_to_upgrade(tmp_path: Path) -> None:
    env = {"SALESBOT__DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"}
    result = run(env, "--since", "2026-06-01")
    assert result.exit_code == 1 and "salesbot db upgrade" in result.stderr
