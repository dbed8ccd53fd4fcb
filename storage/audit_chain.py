"""The tamper-evident audit chain (issue 15, docs/audit.md).

Every ``audit_log`` row carries ``seq`` (1, 2, 3 … with no gap), ``prev_hash`` (the previous row's ``row_hash``;
64 zeros for the first row) and ``row_hash``: SHA-256 (HMAC-SHA-256 when ``[audit] chain_key`` is set) of the
canonical encoding of the row (``canonical``). ``audit_chain_head`` holds the last (seq, hash) and is the lock
every appender takes: a ``before_flush`` hook on the ORM session chains every new ``AuditLog`` in the flush, after
locking the head row in the flushing transaction (``UPDATE … RETURNING`` locks the row on PostgreSQL and takes the
write lock on SQLite, so the head is read only once no other writer can move it).

``link_rows`` is the same step for Core writers (a list of row dicts about to be inserted on a connection).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, UOWTransaction

GENESIS = "0" * 64
KEY_ENV = "SALESBOT__AUDIT__CHAIN_KEY"
MIN_KEY_BYTES = 32

_key: bytes | None = None
_key_set = False


def configure(key: str | bytes | None) -> None:
    """Set the process's chain key (``[audit] chain_key``; None: plain SHA-256). Called by the runtime and CLI."""
    global _key, _key_set
    _key = key.encode() if isinstance(key, str) else key
    _key = _key or None
    _key_set = True


def current_key() -> bytes | None:
    """The configured key, else ``$SALESBOT__AUDIT__CHAIN_KEY`` (a migration run outside the CLI), else None."""
    if _key_set:
        return _key
    env = os.environ.get(KEY_ENV)
    return env.encode() if env else None


def canonical_at(at: datetime) -> str:
    """The instant as UTC ISO text with microseconds (a naive value is UTC, as SQLite returns it)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(
    seq: int,
    at: datetime,
    actor_id: str | None,
    channel: str | None,
    action: str,
    entity: str,
    entity_id: str | None,
    changes: Any,
    prev_hash: str,
) -> bytes:
    """The bytes a row's hash covers: a JSON array of its fields in this fixed order (UTF-8)."""
    fields = [seq, canonical_at(at), actor_id, channel, action, entity, entity_id, changes, prev_hash]
    return canonical_json(fields).encode()


def row_hash(payload: bytes, key: bytes | None = None) -> str:
    if key:
        return hmac.new(key, payload, hashlib.sha256).hexdigest()
    return hashlib.sha256(payload).hexdigest()


def hash_fields(fields: dict[str, Any], seq: int, prev_hash: str, key: bytes | None) -> str:
    """``row_hash`` of one row given as a dict of its columns."""
    payload = canonical(
        seq,
        fields["at"],
        fields.get("actor_id"),
        fields.get("channel"),
        fields["action"],
        fields["entity"],
        fields.get("entity_id"),
        fields.get("changes") if fields.get("changes") is not None else {},
        prev_hash,
    )
    return row_hash(payload, key)


# The head's statements go straight to the DB-API cursor: through ``Connection.execute`` they cost more Python time
# than the audit INSERT itself (bench/audit_append.py). SQLite takes ``?`` parameters, asyncpg ``$n``.
_LOCK = "UPDATE audit_chain_head SET seq = seq WHERE id = 1 RETURNING seq, hash"
_CREATE = {
    "qmark": "INSERT INTO audit_chain_head (id, seq, hash) VALUES (1, 0, ?) ON CONFLICT DO NOTHING",
    "numeric_dollar": "INSERT INTO audit_chain_head (id, seq, hash) VALUES (1, 0, $1) ON CONFLICT DO NOTHING",
}
_MOVE = {
    "qmark": "UPDATE audit_chain_head SET seq = ?, hash = ? WHERE id = 1",
    "numeric_dollar": "UPDATE audit_chain_head SET seq = $1, hash = $2 WHERE id = 1",
}


def _run(conn: Connection, sql: str | dict[str, str], params: tuple[Any, ...] = ()) -> Any:
    """One statement on the connection's DB-API cursor (in the connection's transaction); the first row or None."""
    style = conn.dialect.paramstyle
    statement = sql if isinstance(sql, str) else sql.get(style)
    if statement is None:  # another driver: the slower, portable way
        portable = sql if isinstance(sql, str) else sql["numeric_dollar"].replace("$1", ":a").replace("$2", ":b")
        result = conn.execute(text(portable), dict(zip(("a", "b"), params, strict=False)))
        return result.first() if result.returns_rows else None
    cursor = conn.connection.cursor()
    try:
        cursor.execute(statement, params)
        return cursor.fetchone() if cursor.description else None
    finally:
        cursor.close()


def _lock_head(conn: Connection) -> tuple[int, str]:
    """Lock the head row in this transaction and read it (creates it on a database that lacks it)."""
    row = _run(conn, _LOCK)
    if row is None:
        _run(conn, _CREATE, (GENESIS,))
        row = _run(conn, _LOCK)
    return int(row[0]), str(row[1])


def link_rows(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Give each row dict (in order) its ``seq``, ``prev_hash`` and ``row_hash`` and move the head past them.
    The caller inserts them in the same transaction."""
    if not rows:
        return
    key = current_key()
    seq, prev = _lock_head(conn)
    for fields in rows:
        if fields.get("changes") is None:
            fields["changes"] = {}
        # What the JSON column gives back when read: the hash must be over that, not over tuples or int keys.
        fields["changes"] = json.loads(json.dumps(fields["changes"]))
        seq += 1
        fields["seq"] = seq
        fields["prev_hash"] = prev
        fields["row_hash"] = prev = hash_fields(fields, seq, prev, key)
    _run(conn, _MOVE, (seq, prev))


_COLUMNS = ("at", "actor_id", "channel", "action", "entity", "entity_id", "changes")


def _before_flush(session: Session, _ctx: UOWTransaction, _instances: Any) -> None:
    from sqlalchemy import inspect

    from storage.models import AuditLog

    new = [obj for obj in session.new if isinstance(obj, AuditLog) and obj.seq is None]
    if not new:
        return
    new.sort(key=lambda obj: inspect(obj).insert_order or 0)
    rows = [{name: getattr(obj, name) for name in _COLUMNS} for obj in new]
    link_rows(session.connection(), rows)
    for obj, fields in zip(new, rows, strict=True):
        obj.changes = fields["changes"]
        obj.seq = fields["seq"]
        obj.prev_hash = fields["prev_hash"]
        obj.row_hash = fields["row_hash"]


def install() -> None:
    """Chain every ORM session's audit rows (idempotent)."""
    if not event.contains(Session, "before_flush", _before_flush):
        event.listen(Session, "before_flush", _before_flush)


install()
