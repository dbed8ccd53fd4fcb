"""``sqlite+inline://``: SQLite for SQLAlchemy's asyncio engine without a helper thread.

aiosqlite runs every call (cursor, execute, fetch, close, commit) on its own thread and hands results back through
the event loop: about 20 thread hand-offs for one handled event, which cost more than the SQL itself. SQLite on a
local file in WAL mode answers in microseconds, so this driver calls the standard ``sqlite3`` module directly from
the event loop. Writers inside one process are serialised by ``storage.db.Database`` anyway; waits on another
process's lock are bounded by ``busy_timeout``. Everything else is SQLAlchemy's own aiosqlite dialect, unchanged.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.util.concurrency import await_


async def _yield_nothing() -> None:
    return None


class _Cursor:
    """A sqlite3 cursor plus the one coroutine SQLAlchemy's asyncio layer awaits on cursors."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        object.__setattr__(self, "_cursor", cursor)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._cursor, name, value)

    def __iter__(self) -> Any:
        return iter(self._cursor)

    def execute(self, operation: str, parameters: Any = ()) -> Any:
        # SQLAlchemy's AsyncConnection.execute insists that an await happened; one greenlet switch, no thread.
        await_(_yield_nothing())
        return self._cursor.execute(operation, parameters)

    def executemany(self, operation: str, seq_of_parameters: Any) -> Any:
        await_(_yield_nothing())
        return self._cursor.executemany(operation, seq_of_parameters)

    async def _async_soft_close(self) -> None:
        """Rows are fetched eagerly by sqlite3's cursor API; nothing is pending."""


class InlineConnection:
    """The DBAPI connection SQLAlchemy's aiosqlite dialect expects, backed by a plain sqlite3 connection."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def cursor(self, server_side: bool = False) -> _Cursor:
        return _Cursor(self._connection.cursor())

    def execute(self, operation: str, parameters: Any = ()) -> _Cursor:
        cursor = self.cursor()
        cursor.execute(operation, parameters)
        return cursor

    def commit(self) -> None:
        self._connection.commit()

    def rollback(self) -> None:
        self._connection.rollback()

    def close(self) -> None:
        self._connection.close()

    def terminate(self) -> None:
        self._connection.close()

    def create_function(self, *args: Any, **kw: Any) -> None:
        self._connection.create_function(*args, **kw)

    @property
    def isolation_level(self) -> str | None:
        return self._connection.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._connection.isolation_level = value  # type: ignore[assignment]


class _InlineDBAPI:
    """Module-like object: sqlite3's names, with ``connect`` returning an InlineConnection."""

    paramstyle = "qmark"
    has_stop = True

    def __init__(self) -> None:
        self.sqlite = sqlite3
        for name in (
            "DatabaseError",
            "Error",
            "IntegrityError",
            "NotSupportedError",
            "OperationalError",
            "ProgrammingError",
            "InterfaceError",
            "InternalError",
            "DataError",
            "Warning",
            "sqlite_version",
            "sqlite_version_info",
            "PARSE_COLNAMES",
            "PARSE_DECLTYPES",
            "Binary",
        ):
            setattr(self, name, getattr(sqlite3, name))

    def connect(self, *args: Any, **kw: Any) -> InlineConnection:
        kw.pop("async_creator_fn", None)
        # The pool may hand a connection to a finalizer on another thread at shutdown.
        kw["check_same_thread"] = False
        return InlineConnection(sqlite3.connect(*args, **kw))


class SQLiteDialect_inline(SQLiteDialect_aiosqlite):
    """SQLAlchemy dialect for ``sqlite+inline://`` (registered in storage.db)."""

    driver = "inline"
    supports_statement_cache = True
    supports_server_side_cursors = False

    @classmethod
    def import_dbapi(cls) -> Any:
        return _InlineDBAPI()

    def retrieve_dbapi_version(self, dbapi: Any) -> Any:
        return None


dialect = SQLiteDialect_inline
