"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.db import Database
from storage.migrate import current_revision, head_revision, upgrade
from storage.models import Base
from tests.conftest import _pg_admin_url


def _diff(conn: Connection) -> list[object]:
    ctx = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(ctx, Base.metadata))


async def _insert_customer(conn: AsyncConnection, stamp: str) -> None:
    """One hospital (浙一) for the data migrations' rows to refer to."""
    await conn.execute(
        text(
            "INSERT INTO customers (name, aliases, wards, contacts, created_at, updated_at)"
            f" VALUES ('浙一', '[]', '[]', '[]', {stamp}, {stamp})"
        )
    )


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

    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head() == "0017"


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
        assert await current_revision(db) == head_revision()
    finally:
        await db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def scratch_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of its own (the session's PostgreSQL database stays at head for the other tests)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'd.db'}"
        return
    admin = _pg_admin_url()
    if admin is None:
        pytest.skip("PostgreSQL not reachable (set SALESBOT_TEST_PG_URL or run one on 127.0.0.1:5432)")
    import asyncpg

    u = make_url(admin)
    name = f"salesbot_mig_{uuid.uuid4().hex[:10]}"

    async def admin_exec(sql: str) -> None:
        conn = await asyncpg.connect(
            host=u.host, port=u.port or 5432, user=u.username, password=u.password, database=u.database
        )
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin_exec(f'CREATE DATABASE "{name}"'))
    try:
        yield u.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _rows(db: Database, sql: str) -> list[tuple[Any, ...]]:
    async with db.engine.connect() as conn:
        return [tuple(r) for r in (await conn.execute(text(sql))).all()]


async def test_0006_drops_the_per_platform_columns_and_the_downgrade_restores_them(scratch_url: str) -> None:
    from alembic import command

    from storage.migrate import alembic_config

    db = Database(scratch_url)
    stamp = "'2026-12-01 00:00:00'"
    try:
        await upgrade(db, "0005")
        async with db.engine.begin() as conn:
            for uid, wecom, dingtalk in (("rep01", "'wx-rep01'", "NULL"), ("rep02", "NULL", "'dt-rep02'")):
                await conn.execute(
                    text(
                        "INSERT INTO users (id, name, roles, locale, active, created_at, updated_at, wecom_userid,"
                        f" dingtalk_staff_id) VALUES ('{uid}', '{uid}', '[]', 'zh-CN', TRUE, {stamp}, {stamp},"
                        f" {wecom}, {dingtalk})"
                    )
                )
            # 0005 copied the columns; an id written to a column after it (an older process) is copied by 0006.
            await conn.execute(
                text(
                    "INSERT INTO users (id, name, roles, locale, active, created_at, updated_at, wecom_userid)"
                    f" VALUES ('rep03', 'rep03', '[]', 'zh-CN', TRUE, {stamp}, {stamp}, 'wx-rep03')"
                )
            )
            await _insert_customer(conn, stamp)
            # A visit refers to rep01: rebuilding the users table (SQLite) must keep both it and the identities.
            await conn.execute(
                text(
                    "INSERT INTO visits (rep_id, customer_id, contacts, products, visited_at, location_status,"
                    f" locked, source_channel, created_at, updated_at) SELECT 'rep01', id, '[]', '[]', {stamp},"
                    f" 'missing', TRUE, 'wecom', {stamp}, {stamp} FROM customers"
                )
            )
        await upgrade(db)
        assert await current_revision(db) == head_revision()
        expected = [("rep01", "wecom", "wx-rep01"), ("rep02", "dingtalk", "dt-rep02"), ("rep03", "wecom", "wx-rep03")]
        identities = "SELECT user_id, channel, external_id FROM user_identities ORDER BY user_id"
        assert await _rows(db, identities) == expected
        assert await _rows(db, "SELECT rep_id FROM visits") == [("rep01",)]
        async with db.engine.connect() as conn:
            columns = await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns("users")})
            assert not {"wecom_userid", "dingtalk_staff_id"} & columns
            assert await conn.run_sync(_diff) == []
            if db.is_sqlite:
                assert (await conn.execute(text("PRAGMA foreign_key_check"))).all() == []
                assert await conn.scalar(text("PRAGMA foreign_keys")) == 1  # back on for the pooled connection

        async with db.engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0005"))
        assert await _rows(db, "SELECT id, wecom_userid, dingtalk_staff_id FROM users ORDER BY id") == [
            ("rep01", "wx-rep01", None),
            ("rep02", None, "dt-rep02"),
            ("rep03", "wx-rep03", None),
        ]
        assert await _rows(db, identities) == expected
        assert await _rows(db, "SELECT rep_id FROM visits") == [("rep01",)]

        await upgrade(db)  # and up again: nothing doubled
        assert await _rows(db, identities) == expected
    finally:
        await db.dispose()


async def test_0007_gives_existing_cards_their_notices_from_the_audit_log(tmp_path: Path) -> None:
    """Notices sent before the upgrade are still settled when their card closes: 0007 fills notice_log from the
    audit rows that recorded them."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'n.db'}")
    stamp = "'2026-12-01 08:00:00'"
    try:
        await upgrade(db, "0006")
        async with db.engine.begin() as conn:
            await _insert_customer(conn, stamp)
            await conn.execute(
                text(
                    "INSERT INTO users (id, name, roles, locale, active, created_at, updated_at)"
                    f" VALUES ('rep01', '王磊', '[]', 'zh-CN', TRUE, {stamp}, {stamp})"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO support_requests (type_key, rep_id, customer_id, fields, status, source_channel,"
                    f" created_at, updated_at) VALUES ('stock', 'rep01', 1, '{{}}', 'open', 'wecom', {stamp}, {stamp})"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO task_cards (request_id, department, ref, title, state, require_claim, evidence,"
                    " first_response_hours, complete_hours, respond_by, due_at, attachments, questions, recipients,"
                    " version, created_at, state_since, updated_at, policy, watchers, notices) VALUES (1,"
                    f" 'logistics', 'task-1-logistics-abc123', '备货', 'open', 1, 'none', 2, 8, {stamp}, {stamp},"
                    f" '[]', '[]', '[]', 1, {stamp}, {stamp}, {stamp}, '{{}}', '[\"dir01\",\"log_head\"]', 2)"
                )
            )
            for action, changes in (
                ("escalation.remind", '{"level": 0, "targets": ["log01"]}'),
                ("escalation.level", '{"level": 1, "targets": ["log_head"], "notice": 1}'),
                ("escalation.level", '{"level": 2, "targets": ["dir01"], "notice": 2}'),
            ):
                await conn.execute(
                    text(
                        "INSERT INTO audit_log (at, action, entity, entity_id, changes) VALUES"
                        f" ({stamp}, :action, 'task_card', '1', :changes)"
                    ),
                    {"action": action, "changes": changes},
                )
        await upgrade(db)
        async with db.engine.connect() as conn:
            log = await conn.scalar(text("SELECT notice_log FROM task_cards WHERE id = 1"))
        assert json.loads(log) == [{"n": 1, "targets": ["log_head"]}, {"n": 2, "targets": ["dir01"]}]
    finally:
        await db.dispose()


async def test_0008_adds_the_queue_index_and_card_copies_and_goes_back_down(scratch_url: str) -> None:
    """Existing cards get no copies; the downgrade drops the column and the index; up again matches the models."""
    from alembic import command

    from storage.migrate import alembic_config

    db = Database(scratch_url)
    stamp = "'2026-12-01 08:00:00'"
    try:
        await upgrade(db, "0007")
        async with db.engine.begin() as conn:
            await _insert_customer(conn, stamp)
            await conn.execute(
                text(
                    "INSERT INTO users (id, name, roles, locale, active, created_at, updated_at)"
                    f" VALUES ('rep01', '王磊', '[]', 'zh-CN', TRUE, {stamp}, {stamp})"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO support_requests (type_key, rep_id, customer_id, fields, status, source_channel,"
                    f" created_at, updated_at) SELECT 'stock', 'rep01', id, '{{}}', 'open', 'wecom', {stamp}, {stamp}"
                    " FROM customers"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO task_cards (request_id, department, ref, title, state, require_claim, evidence,"
                    " first_response_hours, complete_hours, respond_by, due_at, attachments, questions, recipients,"
                    " version, created_at, state_since, updated_at, policy, watchers, notices) SELECT id,"
                    f" 'logistics', 'task-1-logistics-abc123', '备货', 'open', TRUE, 'none', 2, 8, {stamp}, {stamp},"
                    f" '[]', '[]', '[]', 1, {stamp}, {stamp}, {stamp}, '{{}}', '[]', 0 FROM support_requests"
                )
            )
        await upgrade(db)
        [(copies,)] = await _rows(db, "SELECT copies FROM task_cards")
        assert (json.loads(copies) if isinstance(copies, str) else copies) == []

        def indexes(c: Connection) -> set[str]:
            return {str(i["name"]) for i in inspect(c).get_indexes("task_cards")}

        async with db.engine.connect() as conn:
            assert "ix_task_cards_state_due" in await conn.run_sync(indexes)
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0007"))
        async with db.engine.connect() as conn:
            assert "ix_task_cards_state_due" not in await conn.run_sync(indexes)
            columns = await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns("task_cards")})
            assert "copies" not in columns
        await upgrade(db)
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await db.dispose()
