"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection

from storage.db import Database
from storage.migrate import current_revision, head_revision, upgrade
from storage.models import Base


def _diff(conn: Connection) -> list[object]:
    ctx = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(ctx, Base.metadata))


async def test_sqlite_migrations_match_models(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    try:
        assert await current_revision(db) is None
        await upgrade(db)
        assert await current_revision(db) == head_revision()
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
        await upgrade(db)  # idempotent
    finally:
        await db.dispose()


async def test_postgresql_migrations_match_models(pg_url: str | None) -> None:
    if pg_url is None:
        pytest.skip("PostgreSQL not reachable (set SALESBOT_TEST_PG_URL or run one on 127.0.0.1:5432)")
    db = Database(pg_url)
    try:
        assert await current_revision(db) == head_revision()
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
            zone = await conn.scalar(
                text(
                    "SELECT data_type FROM information_schema.columns "
                    "WHERE table_name = 'visits' AND column_name = 'visited_at'"
                )
            )
        assert zone == "timestamp with time zone"
    finally:
        await db.dispose()


def test_the_head_read_from_the_files_is_alembics_head() -> None:
    """`serve` checks the schema without importing Alembic (start-up time); it must name the same head."""
    from alembic.script import ScriptDirectory

    from storage.migrate import alembic_config

    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head() == "0006"


async def test_the_revision_is_alembics_before_and_after_upgrade(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}")
    try:
        assert await current_revision(db) is None  # no alembic_version table
        await upgrade(db, "0002")
        async with db.engine.connect() as conn:
            alembic_says = await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())
        assert await current_revision(db) == alembic_says == "0002"
    finally:
        await db.dispose()


async def test_0005_copies_channel_ids_and_the_wecom_throttle_ledger(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'i.db'}")
    try:
        await upgrade(db, "0004")
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO users (id, name, roles, locale, active, created_at, updated_at, wecom_userid,"
                    " dingtalk_staff_id) VALUES ('rep01', '王小明', '[]', 'zh-CN', 1, '2026-12-01 00:00:00',"
                    " '2026-12-01 00:00:00', 'wx-rep01', NULL), ('rep02', '李雷', '[]', 'zh-CN', 1,"
                    " '2026-12-01 00:00:00', '2026-12-01 00:00:00', NULL, 'dt-rep02')"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO wecom_sends (recipient, outbox_id, sent_at) VALUES ('rep01', 7, '2026-12-01 08:00:00')"
                )
            )
        await upgrade(db)
        async with db.engine.connect() as conn:
            identities = (
                await conn.execute(text("SELECT user_id, channel, external_id FROM user_identities ORDER BY user_id"))
            ).all()
            sends = (await conn.execute(text("SELECT channel, recipient, outbox_id FROM channel_sends"))).all()
        assert [tuple(r) for r in identities] == [("rep01", "wecom", "wx-rep01"), ("rep02", "dingtalk", "dt-rep02")]
        assert [tuple(r) for r in sends] == [("wecom", "rep01", 7)]
        from alembic import command

        from storage.migrate import alembic_config

        async with db.engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0004"))
        assert await current_revision(db) == "0004"
        await upgrade(db)
        assert await current_revision(db) == "0006"
    finally:
        await db.dispose()
