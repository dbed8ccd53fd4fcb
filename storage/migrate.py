"""Schema migrations (Alembic), run programmatically: `salesbot db upgrade`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from storage.db import Database

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Alembic itself is imported only by the commands that migrate: `serve` checks the revision without it (importing
# it costs about 0.4 s of every start, and after a crash the replies owed wait for the restart).
_REVISION = re.compile(r"^revision\b[^=]*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\b[^=]*=\s*(None|['\"]([^'\"]+)['\"])", re.MULTILINE)


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


async def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (default: the newest)."""

    from alembic import command

    def run(conn: Connection) -> None:
        command.upgrade(alembic_config(conn), revision)

    async with db.engine.begin() as conn:
        await conn.run_sync(run)


async def current_revision(db: Database) -> str | None:
    """The revision the database is at (None for an empty database), read from Alembic's ``alembic_version``."""
    async with db.engine.connect() as conn:
        try:
            versions = list(await conn.scalars(text("SELECT version_num FROM alembic_version")))
        except DBAPIError:  # no such table: never migrated
            return None
    if len(versions) > 1:
        raise RuntimeError(f"the database has several schema heads {sorted(versions)}; run `salesbot db upgrade`")
    return versions[0] if versions else None


def head_revision() -> str | None:
    """The newest revision in ``migrations/versions`` (the one no other revision builds on), read from the files'
    ``revision`` / ``down_revision`` lines; Alembic decides when that is not one linear history."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        source = path.read_text(encoding="utf-8")
        rev, down = _REVISION.search(source), _DOWN_REVISION.search(source)
        if rev is None or down is None:
            return _alembic_head()
        revisions.add(rev.group(1))
        if down.group(2):
            parents.add(down.group(2))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else _alembic_head()


def _alembic_head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def autogenerate(db: Database, message: str, rev_id: str) -> None:
    """Developer aid: write a new revision from the difference between the models and ``db``."""
    from alembic import command

    def run(conn: Connection) -> None:
        command.revision(alembic_config(conn), message=message, autogenerate=True, rev_id=rev_id)

    async with db.engine.begin() as conn:
        await conn.run_sync(run)
