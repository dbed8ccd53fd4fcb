"""Start-up and operations: bind before recovery, one clear line for a taken port, private database files.

Regression tests for issue 9 ("Start-up and operations").
"""

from __future__ import annotations

import shutil
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bot.cli import main
from storage.db import Database

# No SALESBOT_* variable from the developer's shell leaks in; the CLI's logging set-up is undone.
pytestmark = pytest.mark.usefixtures("clean_env", "keep_logging")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port some other program listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_serve_on_a_taken_port_says_so_in_one_line(tmp_path: Path, taken_port: int) -> None:
    env = {"SALESBOT__DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"}
    assert run("db", "upgrade", env=env).exit_code == 0
    result = run("serve", "--port", str(taken_port), env=env)
    assert result.exit_code == 1
    assert f"端口 {taken_port} 已被占用" in result.output
    assert "Traceback" not in result.output


def test_demo_on_a_taken_port_stops_before_touching_the_database(tmp_path: Path, taken_port: int) -> None:
    db = tmp_path / "demo.db"
    result = run("demo", "--port", str(taken_port), "--db", str(db))
    assert result.exit_code == 1
    assert f"端口 {taken_port} 已被占用" in result.output
    assert not db.exists()  # no migration, no demo import, no recovery for a process that cannot serve


async def test_a_new_sqlite_database_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "new" / "salesbot.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        await db.ping()
        async with db.transaction() as s:
            await s.connection()
    finally:
        await db.dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


async def test_an_existing_world_readable_database_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    path.touch(mode=0o644)
    path.chmod(0o644)
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_demo_takes_a_port_and_a_database_file() -> None:
    out = subprocess.run(
        ["make", "-n", "-o", ".venv/.installed-stamp", "demo", "PORT=8081", "DB=/tmp/try.db"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "salesbot demo --config config.example.toml --port 8081 --db /tmp/try.db" in out
