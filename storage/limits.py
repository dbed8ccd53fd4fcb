"""Column limits, checked the same way on every backend before the database sees a value.

SQLite stores a 150-character string in a VARCHAR(100) and a NUL in TEXT; PostgreSQL refuses both. Domain code
asks ``max_length`` to tell the user what fits; ``install`` adds a last check at flush time, so that a value that
slipped past validation fails identically (and with a clear error) on both databases instead of only on one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, event
from sqlalchemy.orm import Mapper


class ValueDoesNotFit(ValueError):
    """A string longer than its column, or one holding NUL, reached the ORM."""


def max_length(model: type[Any], column: str) -> int | None:
    """The declared length of ``model.column`` (None when unbounded)."""
    col = model.__table__.c[column]
    return getattr(col.type, "length", None) if isinstance(col.type, String) else None


_checks: dict[Mapper[Any], list[tuple[str, int | None, str]]] = {}


def _string_columns(mapper: Mapper[Any]) -> list[tuple[str, int | None, str]]:
    found = _checks.get(mapper)
    if found is None:
        found = _checks[mapper] = [
            (mapper.get_property_by_column(c).key, c.type.length, f"{c.table.name}.{c.name}")
            for c in mapper.columns
            if isinstance(c.type, String)
        ]
    return found


def check_row(mapper: Mapper[Any], target: Any) -> None:
    """Raise ValueDoesNotFit when any string attribute of ``target`` would be refused by PostgreSQL."""
    state = target.__dict__
    for key, limit, where in _string_columns(mapper):
        value = state.get(key)
        if not isinstance(value, str):
            continue
        if limit is not None and len(value) > limit:
            raise ValueDoesNotFit(f"{where}: {len(value)} characters, at most {limit}")
        if "\x00" in value:
            raise ValueDoesNotFit(f"{where}: NUL character")


def install(base: type[Any]) -> None:
    """Check every insert and update of ``base``'s mapped classes."""

    def listener(mapper: Mapper[Any], _connection: Any, target: Any) -> None:
        check_row(mapper, target)

    event.listen(base, "before_insert", listener, propagate=True)
    event.listen(base, "before_update", listener, propagate=True)
