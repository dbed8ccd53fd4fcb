"""Engine and transactions. SQLite (WAL) is the embedded default; PostgreSQL via asyncpg by URL."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.dialects import registry
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

registry.register("sqlite.inline", "storage.sqlite_inline", "SQLiteDialect_inline")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


class Database:
    """Owns the engine. ``transaction()`` is the unit of work: one commit for domain rows and outbox rows."""

    def __init__(self, url: str, echo: bool = False, pool_size: int = 5, sqlite_inline: bool = True) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite and sqlite_inline and parsed.drivername == "sqlite+aiosqlite":
            # Same database, same SQL; no helper thread (see storage/sqlite_inline.py).
            url = parsed.set(drivername="sqlite+inline").render_as_string(hide_password=False)
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            # Sessions always end with their own COMMIT or ROLLBACK; the pool's extra rollback is a wasted round
            # trip to aiosqlite's thread on every checkout.
            kwargs.update(pool_reset_on_return=None)
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite allows one writer; serialising writers in-process avoids SQLITE_BUSY on lock upgrades.
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside BEGIN … COMMIT (rolled back on error)."""
        if self._write_lock is None:
            async with self.sessionmaker() as session, session.begin():
                yield session
            return
        async with self._write_lock, self.sessionmaker() as session, session.begin():
            yield session

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only (no write lock taken)."""
        async with self.sessionmaker() as session:
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
