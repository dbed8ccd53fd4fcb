"""Shared fixtures: a migrated database per test (SQLite always, PostgreSQL when reachable), a runtime with the
demo org loaded and an injected clock, and a console driver that talks to the real HTTP endpoints."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.config import Settings, parse_settings
from bot.imports import org as importer
from bot.infra.clock import FixedClock
from bot.runtime import Runtime
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Base

DEMO = Path(__file__).resolve().parent.parent / "bot" / "demo_data"
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
# Monday 2026-11-23 10:00 in Asia/Shanghai.
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def _pg_admin_url() -> str | None:
    """The PostgreSQL to test against: $SALESBOT_TEST_PG_URL, else the local default if it answers."""
    url = os.environ.get("SALESBOT_TEST_PG_URL") or DEFAULT_PG_URL

    async def probe() -> bool:
        import asyncpg

        u = make_url(url)
        try:
            conn = await asyncio.wait_for(
                asyncpg.connect(
                    host=u.host,
                    port=u.port or 5432,
                    user=u.username,
                    password=u.password,
                    database=u.database,
                ),
                3,
            )
        except (OSError, TimeoutError, asyncpg.PostgresError):
            return False
        await conn.close()
        return True

    return url if asyncio.run(probe()) else None


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str | None]:
    """A fresh PostgreSQL database for this test session (dropped at the end), or None."""
    admin = _pg_admin_url()
    if admin is None:
        yield None
        return
    import asyncpg

    u = make_url(admin)
    name = f"salesbot_test_{uuid.uuid4().hex[:10]}"
    kw: dict[str, Any] = {"host": u.host, "port": u.port or 5432, "user": u.username, "password": u.password}

    async def admin_exec(sql: str) -> None:
        conn = await asyncpg.connect(database=u.database, **kw)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin_exec(f'CREATE DATABASE "{name}"'))
    url = u.set(database=name).render_as_string(hide_password=False)
    asyncio.run(_migrate(url))
    yield url
    asyncio.run(admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _migrate(url: str) -> None:
    db = Database(url)
    try:
        await upgrade(db)
    finally:
        await db.dispose()


async def _load_demo(db: Database) -> None:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    await importer.import_org(db, DEMO / "org.csv", now=now, departments=["logistics", "marketing", "compliance"])
    await importer.import_customers(db, DEMO / "customers.csv", now=now)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file with the demo org and customers, copied for each test."""
    path = tmp_path_factory.mktemp("template") / "template.db"

    async def build() -> None:
        db = Database(f"sqlite+aiosqlite:///{path}")
        try:
            await upgrade(db)
            await _load_demo(db)
            async with db.engine.connect() as conn:
                await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            await db.dispose()

    asyncio.run(build())
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def db_url(backend: str, tmp_path: Path, sqlite_template: Path, pg_url: str | None) -> AsyncIterator[str]:
    """A database holding the schema and the demo directory, empty otherwise."""
    if backend == "sqlite":
        path = tmp_path / "salesbot.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    if pg_url is None:
        pytest.skip("PostgreSQL not reachable (set SALESBOT_TEST_PG_URL or run one on 127.0.0.1:5432)")
    db = Database(pg_url)
    try:
        async with db.engine.begin() as conn:
            tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        await _load_demo(db)
    finally:
        await db.dispose()
    yield pg_url


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    """The test's database (SQLite and PostgreSQL, the demo directory loaded); modules with their own seed
    override it."""
    database = Database(db_url)
    yield database
    await database.dispose()


def make_settings(db_url: str, **sections: dict[str, Any]) -> Settings:
    """Settings for tests: demo mode console on the given database, plus overrides per section. The scheduled
    digest pushes and the customers' nightly job are off unless a test turns them on (a clock standing after 18:00
    would send them at start)."""
    data: dict[str, Any] = {
        "database": {"url": db_url},
        "org": {"demo": True},
        "console": {"enabled": True},
        "digest": {"enabled": False},
        "customers": {"enabled": False},
        # A fresh attachment store per runtime (created on first use), never the working directory's data/.
        "attachments": {"dir": os.path.join(tempfile.gettempdir(), f"salesbot-att-{secrets.token_hex(8)}")},
    }
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    return parse_settings(data, "<test>")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def settings_overrides() -> dict[str, dict[str, Any]]:
    """Override per test module/class to change config sections."""
    return {}


@pytest.fixture
async def runtime(
    db_url: str, clock: FixedClock, settings_overrides: dict[str, dict[str, Any]]
) -> AsyncIterator[Runtime]:
    rt = Runtime(make_settings(db_url, **settings_overrides), clock=clock)
    await rt.start()
    try:
        yield rt
    finally:
        await rt.close()


@pytest.fixture
async def console(runtime: Runtime) -> AsyncIterator[Any]:
    """``await console("rep01")`` → a signed-in ConsoleUser on a real HTTP server around the runtime."""
    from aiohttp.test_utils import TestServer

    from bot.app import build_app
    from tests.console_driver import ConsoleUser

    server = TestServer(build_app(runtime, manage_runtime=False))
    await server.start_server()
    users: list[ConsoleUser] = []

    async def sign_in(user_id: str) -> ConsoleUser:
        user = await ConsoleUser(server, runtime, user_id).open()
        users.append(user)
        return user

    try:
        yield sign_in
    finally:
        for u in users:
            await u.close()
        await server.close()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SALESBOT_* variable from the developer's shell leaks into a test of the command line."""
    for key in list(os.environ):
        if key.startswith("SALESBOT_"):
            monkeypatch.delenv(key)


@pytest.fixture
def keep_logging() -> Iterator[None]:
    """The CLI configures the root logger for the process; put the test process's logging back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
