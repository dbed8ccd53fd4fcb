"""The `salesbot` command line through click's CliRunner: config check, db upgrade, imports, console tokens."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bot.channels.console.auth import read_token
from bot.cli import main
from storage.migrate import head_revision

# No SALESBOT_* variable from the developer's shell leaks in; the CLI's logging set-up is undone.
pytestmark = pytest.mark.usefixtures("clean_env", "keep_logging")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.toml"
DEMO = ROOT / "bot" / "demo_data"
SECRET = "cli-test-console-secret-0123456789abcdef"  # console.token_secret: 32+ bytes


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def db_env(tmp_path: Path) -> dict[str, str]:
    """Environment pointing the CLI at a fresh SQLite file, already upgraded to head."""
    env = {"SALESBOT__DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"}
    result = run("db", "upgrade", env=env)
    assert result.exit_code == 0, result.output
    return env


def rows(env: dict[str, str], sql: str) -> list[tuple[object, ...]]:
    path = env["SALESBOT__DATABASE__URL"].removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(path) as conn:
        return list(conn.execute(sql))


# ---- config check -----------------------------------------------------------------------------------------------


def test_config_check_accepts_the_example() -> None:
    result = run("config", "check", str(EXAMPLE))
    assert result.exit_code == 0, result.output
    assert "OK" in result.stdout


def test_config_check_reports_every_error_with_its_path(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text(
        "[server]\n"
        "prot = 1\n"
        'port = "x"\n'
        "[visits]\n"
        'required_fields = ["foo"]\n'
        "[org]\n"
        'timezone = "Mars/Base"\n'
        "[wecom]\n"
        "enabled = true\n",
        encoding="utf-8",
    )
    result = run("config", "check", str(broken))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    for path, words in (
        ("server.prot", "unknown key"),
        ("server.port", "integer"),
        ("visits.required_fields", "foo"),
        ("org.timezone", "Mars/Base"),
        ("wecom", "missing"),
    ):
        matching = [line for line in lines if line.strip().startswith(f"- {path}:")]
        assert len(matching) == 1, (path, result.stderr)
        assert words in matching[0], (path, matching[0])
    assert "OK" not in result.stdout


def test_config_check_reports_toml_syntax_error(tmp_path: Path) -> None:
    broken = tmp_path / "syntax.toml"
    broken.write_text("[server\nport = 8080\n", encoding="utf-8")
    result = run("config", "check", str(broken))
    assert result.exit_code == 1
    assert "TOML syntax error" in result.stderr
    assert "Traceback" not in result.output


def test_config_check_reports_missing_file(tmp_path: Path) -> None:
    result = run("config", "check", str(tmp_path / "nope.toml"))
    assert result.exit_code == 1
    assert "file not found" in result.stderr


def test_env_override_is_validated_at_its_path() -> None:
    result = run("config", "check", str(EXAMPLE), env={"SALESBOT__SERVER__PORT": "abc"})
    assert result.exit_code == 1
    assert any(line.strip().startswith("- server.port:") for line in result.stderr.splitlines()), result.stderr


def test_env_override_wins_over_the_file() -> None:
    result = run("config", "check", str(EXAMPLE), env={"SALESBOT__CONSOLE__ENABLED": "true"})
    # Console outside demo mode without a token secret: refused, which proves the variable was applied.
    assert result.exit_code == 1
    assert "token_secret" in result.stderr
    ok = run(
        "config",
        "check",
        str(EXAMPLE),
        env={"SALESBOT__CONSOLE__ENABLED": "true", "SALESBOT__CONSOLE__TOKEN_SECRET": SECRET},
    )
    assert ok.exit_code == 0, ok.output
    assert "console" in ok.stdout


# ---- db upgrade and imports -------------------------------------------------------------------------------------


def test_db_upgrade_reaches_head(tmp_path: Path) -> None:
    env = {"SALESBOT__DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"}
    result = run("db", "upgrade", env=env)
    assert result.exit_code == 0, result.output
    assert f"database at revision {head_revision()}" in result.stdout
    again = run("db", "upgrade", env=env)
    assert again.exit_code == 0, again.output


def test_import_demo_org_and_customers_then_reimport_creates_nothing(db_env: dict[str, str]) -> None:
    org = run("import", "org", str(DEMO / "org.csv"), env=db_env)
    assert org.exit_code == 0, org.output
    assert "org: 14 rows — 14 created, 0 updated, 0 unchanged, 0 with errors" in org.stdout
    customers = run("import", "customers", str(DEMO / "customers.csv"), env=db_env)
    assert customers.exit_code == 0, customers.output
    assert "customers: 8 rows — 8 created, 0 updated, 0 unchanged, 0 with errors" in customers.stdout
    assert rows(db_env, "SELECT count(*) FROM users") == [(14,)]
    assert rows(db_env, "SELECT count(*) FROM customers") == [(8,)]

    org_again = run("import", "org", str(DEMO / "org.csv"), env=db_env)
    assert org_again.exit_code == 0, org_again.output
    assert "0 created, 0 updated, 14 unchanged" in org_again.stdout
    customers_again = run("import", "customers", str(DEMO / "customers.csv"), env=db_env)
    assert customers_again.exit_code == 0, customers_again.output
    assert "0 created, 0 updated, 8 unchanged" in customers_again.stdout
    assert rows(db_env, "SELECT count(*) FROM customers") == [(8,)]


def test_import_with_bad_row_keeps_valid_rows_and_exits_2(db_env: dict[str, str], tmp_path: Path) -> None:
    csv_file = tmp_path / "customers.csv"
    csv_file.write_text(
        "name,grade,latitude,longitude,wards\n"
        "甲医院,A,30.1,120.1,骨科\n"
        "乙医院,Z,30.2,120.2,骨科\n"
        "丙医院,B,30.3,120.3,检验科\n",
        encoding="utf-8",
    )
    result = run("import", "customers", str(csv_file), env=db_env)
    assert result.exit_code == 2, result.output
    assert "3 rows — 2 created" in result.stdout and "1 with errors" in result.stdout
    [error] = [line for line in result.stderr.splitlines() if "第" in line]
    assert "第 3 行" in error and "[grade]" in error and "'Z'" in error
    assert rows(db_env, "SELECT name FROM customers ORDER BY name") == [("丙医院",), ("甲医院",)]


def test_import_unreadable_file_exits_1(db_env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "customers.txt"
    bad.write_text("name\n甲医院\n", encoding="utf-8")
    result = run("import", "customers", str(bad), env=db_env)
    assert result.exit_code == 1
    assert "cannot read" in result.stderr
    assert rows(db_env, "SELECT count(*) FROM customers") == [(0,)]


# ---- console tokens ---------------------------------------------------------------------------------------------


def test_console_token_printed_with_secret() -> None:
    result = run("console", "token", "rep01", env={"SALESBOT__CONSOLE__TOKEN_SECRET": SECRET})
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    claims = read_token(SECRET, token)
    assert claims is not None and claims.user_id == "rep01"
    assert claims.issued_at is not None and claims.expires_at is not None
    assert claims.expires_at - claims.issued_at == timedelta(days=30)  # [console] token_valid_days
    assert "valid until" in result.stderr and token not in result.stderr


def test_console_token_without_secret_fails() -> None:
    result = run("console", "token", "rep01")
    assert result.exit_code == 1
    assert "token_secret" in result.stderr
    assert result.stdout.strip() == ""


def test_config_check_reports_request_type_problems_with_their_paths(tmp_path: Path) -> None:
    broken = tmp_path / "requests.toml"
    broken.write_text(
        "[request_types.surgery]\n"
        'name_zh = "跟台"\n'
        'name_en = "Surgery"\n'
        'keywords = ["跟台"]\n'
        'fields = [{key = "customer", label_zh = "医院", label_en = "Hospital", type = "customer"}]\n'
        'tasks = [{department = "logistics", title_zh = "备货 {{ customer }}"}]\n'
        "[request_types.repair]\n"
        'name_zh = "维修"\n'
        'name_en = "Repair"\n'
        'keywords = ["跟台", "帮助", "fix"]\n'
        "fields = [\n"
        '  {key = "customer", label_zh = "医院", label_en = "Hospital", type = "customer"},\n'
        '  {key = "part", label_zh = "部件", label_en = "Part"},\n'
        '  {key = "when", label_zh = "日期", label_en = "Date", type = "date", not_before_today = true},\n'
        "]\n"
        "tasks = [\n"
        '  {department = "engineering", title_zh = "维修 {{ part }}"},\n'
        '  {department = "logistics", title_zh = "寄件 {{ prat }}"},\n'
        '  {department = "compliance", title_zh = "审核 {{ part"},\n'
        "]\n",
        encoding="utf-8",
    )
    result = run("config", "check", str(broken))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    for path, words in (
        ("request_types.repair.keywords.0", "already a keyword of surgery"),
        ("request_types.repair.keywords.1", "built-in command"),
        ("request_types.repair.tasks.0.department", "unknown department 'engineering'"),
        ("request_types.repair.tasks.1.title_zh", "'prat' is undefined"),
        ("request_types.repair.tasks.2.title_zh", "template does not render"),
    ):
        matching = [line for line in lines if line.strip().startswith(f"- {path}:")]
        assert len(matching) == 1, (path, result.stderr)
        assert words in matching[0], (path, matching[0])


def test_config_check_reports_bad_request_fields(tmp_path: Path) -> None:
    broken = tmp_path / "fields.toml"
    broken.write_text(
        "[request_types.x]\n"
        'name_zh = "X"\n'
        'name_en = "X"\n'
        'keywords = ["xx"]\n'
        "fields = [\n"
        '  {key = "part", label_zh = "部件", label_en = "Part", type = "choice"},\n'
        "]\n"
        'tasks = [{department = "logistics", title_zh = "x"}]\n',
        encoding="utf-8",
    )
    result = run("config", "check", str(broken))
    assert result.exit_code == 1
    assert "request_types.x.fields.0: a 'choice' field needs a non-empty 'choices' list" in result.stderr
    fixed = broken.read_text(encoding="utf-8").replace('type = "choice"', 'type = "text"')
    broken.write_text(fixed, encoding="utf-8")
    result = run("config", "check", str(broken))
    assert result.exit_code == 1
    assert "request_types.x: a request type needs a field with key 'customer'" in result.stderr


def test_the_example_spells_out_the_built_in_request_types_and_calendar() -> None:
    from bot.config import Settings, load_settings

    example = load_settings(EXAMPLE, environ={})
    assert example.request_types == Settings().request_types
    assert example.calendar == Settings().calendar


def test_the_example_spells_out_the_default_escalation() -> None:
    from bot.config import Settings, load_settings

    assert load_settings(EXAMPLE, environ={}).escalation == Settings().escalation


def test_config_reload_refuses_a_bad_file_and_signals_the_server(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys as _sys

    broken = tmp_path / "broken.toml"
    broken.write_text("[escalation]\nlevels = []\n", encoding="utf-8")
    result = run("config", "reload", str(broken), "--pid", "1")
    assert result.exit_code == 1
    assert "escalation.levels" in result.stderr and "not reloaded" in result.stderr
    # A stand-in server that records SIGHUP, then exits.
    script = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGHUP, lambda *a: (print('reloaded', flush=True), sys.exit(0)))\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    proc = subprocess.Popen([_sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        result = run("config", "reload", str(EXAMPLE), "--pid", str(proc.pid))
        assert result.exit_code == 0, result.output
        assert f"reload sent to process {proc.pid}" in result.stdout
        assert proc.stdout.readline().strip() == "reloaded"
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
