"""Engine and transactions. SQLite (WAL) is the embedded default; PostgreSQL via asyncpg by URL."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.dialects import registry
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

import storage.audit_chain  # noqa: F401  (chains every session's audit rows at flush time)

registry.register("sqlite.inline", "storage.sqlite_inline", "SQLiteDialect_inline")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


class PriorityLock:
    """An asyncio lock whose urgent waiters go first (acknowledging the platform beats background work)."""

    def __init__(self) -> None:
        self._locked = False
        self._urgent: collections.deque[asyncio.Future[None]] = collections.deque()
        self._normal: collections.deque[asyncio.Future[None]] = collections.deque()

    @contextlib.asynccontextmanager
    async def hold(self, urgent: bool = False) -> AsyncIterator[None]:
        await self._acquire(urgent)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, urgent: bool) -> None:
        if not self._locked and not self._urgent and not self._normal:
            self._locked = True
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._urgent if urgent else self._normal
        queue.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self._release()  # ownership was handed to us just as we were cancelled
            else:
                queue.remove(fut)
            raise

    def _release(self) -> None:
        for queue in (self._urgent, self._normal):
            while queue:
                fut = queue.popleft()
                if not fut.done():
                    fut.set_result(None)  # ownership passes on; the lock stays taken
                    return
        self._locked = False


def secure_sqlite_file(database: str | None) -> None:
    """Create the SQLite file readable by its owner only (0600; its -wal and -shm files take the same mode), and
    take group/other access away from an existing one: it holds every visit, upload and conversation."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    except OSError:
        return  # not ours to create (read-only place): SQLite will report it when it opens the file
    try:
        mode = os.fstat(fd).st_mode
        if mode & 0o077:
            os.fchmod(fd, mode & 0o700)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm"):
        side = Path(f"{database}{suffix}")
        with contextlib.suppress(OSError):
            if side.stat().st_mode & 0o077:
                side.chmod(side.stat().st_mode & 0o700)


# Connections kept open on a SQLite file (see Database.__init__).
SQLITE_POOL_SIZE = 32


class Database:
    """Owns the engine. ``transaction()`` is the unit of work: one commit for domain rows and outbox rows."""

    def __init__(self, url: str, echo: bool = False, pool_size: int = 5, sqlite_inline: bool = True) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite:
            secure_sqlite_file(parsed.database)
        if self.is_sqlite and sqlite_inline and parsed.drivername == "sqlite+aiosqlite":
            # Same database, same SQL; no helper thread (see storage/sqlite_inline.py).
            url = parsed.set(drivername="sqlite+inline").render_as_string(hide_password=False)
        kwargs: dict[str, Any] = {"echo": echo}
        in_memory = parsed.database in (None, "", ":memory:")
        if self.is_sqlite:
            # Sessions always end with their own COMMIT or ROLLBACK; the pool's extra rollback is a wasted round
            # trip to aiosqlite's thread on every checkout.
            kwargs.update(pool_reset_on_return=None)
            # Reads run concurrently (one per console request, one per handling batch): keep enough connections
            # that none is opened and closed per request (opening one costs the pragmas and the file open).
            if not in_memory:
                kwargs.update(pool_size=max(pool_size, SQLITE_POOL_SIZE), max_overflow=SQLITE_POOL_SIZE)
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite allows one writer; serialising writers in-process avoids SQLITE_BUSY on lock upgrades.
        self._write_lock = PriorityLock() if self.is_sqlite else None

    @contextlib.asynccontextmanager
    async def transaction(self, urgent: bool = False) -> AsyncIterator[AsyncSession]:
        """A session inside BEGIN … COMMIT (rolled back on error). ``urgent`` writers (persisting an event before
        it is acknowledged) get the SQLite write lock before background work."""
        if self._write_lock is None:
            async with self.sessionmaker() as session, session.begin():
                yield session
            return
        async with self._write_lock.hold(urgent), self.sessionmaker() as session, session.begin():
            yield session

    @contextlib.asynccontextmanager
    async def core_transaction(self, urgent: bool = False) -> AsyncIterator[AsyncConnection]:
        """Like ``transaction()``, for Core statements only: a connection inside BEGIN … COMMIT, no ORM session."""
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock.hold(urgent), self.engine.begin() as conn:
            yield conn

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
