"""Typed button payloads, packed and unpacked by one codec with a hard length check.

Each kind of button is a frozen dataclass subclass of ``CallbackData`` declaring its ``prefix`` and its fields::

    @dataclass(frozen=True)
    class TaskTap(CallbackData, prefix="tk"):
        card_id: int
        op: TaskOp

The wire form is ``prefix|field|field…``, each field percent-escaped; a packed payload is at most 1,024 bytes (the
smallest button-key limit of the supported platforms; a platform's own, smaller limits are its renderer's business).
Fields may be ``int`` (ASCII digits that fit a BIGINT), ``str``, a ``StrEnum`` or any of these ``| None`` (``None``
is the empty field). ``unpack`` converts and validates every field: a forged or mangled tap raises ``PayloadError``.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Callable
from enum import Enum
from types import NoneType, UnionType
from typing import Any, ClassVar, Self
from urllib.parse import quote, unquote

MAX_PAYLOAD_BYTES = 1024
_SEP = "|"
_PREFIX = re.compile(r"[A-Za-z0-9_.]+")
_ID = re.compile(r"[0-9]{1,18}")


def parse_id(text: str) -> int | None:
    """A row id carried in a payload: ASCII digits that fit a BIGINT, else None (a forged or mangled tap)."""
    return int(text) if _ID.fullmatch(text) else None


class PayloadError(ValueError):
    """A payload that cannot be packed or was not produced by us."""


# A field's codec: (pack a value to its wire text, unpack wire text to a value or raise PayloadError).
_Codec = tuple[Callable[[Any], str], Callable[[str], Any]]


def _int_from(text: str) -> int:
    value = parse_id(text)
    if value is None:
        raise PayloadError("not an id")
    return value


def _int_to(value: Any) -> str:
    if not isinstance(value, int) or isinstance(value, bool) or not _ID.fullmatch(str(value)):
        raise PayloadError(f"{value!r} is not an id")
    return str(value)


def _str_to(value: Any) -> str:
    if not isinstance(value, str):
        raise PayloadError(f"{value!r} is not a string")
    return value


def _codec_for(hint: Any) -> _Codec:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (UnionType, typing.Union) and NoneType in args:
        rest = [a for a in args if a is not NoneType]
        if len(rest) != 1:
            raise TypeError(f"unsupported payload field type {hint!r}")
        to, from_ = _codec_for(rest[0])
        return (lambda v: "" if v is None else to(v)), (lambda s: None if s == "" else from_(s))
    if hint is int:
        return _int_to, _int_from
    if hint is str:
        return _str_to, str
    if isinstance(hint, type) and issubclass(hint, Enum) and issubclass(hint, str):
        enum: type[Enum] = hint

        def enum_to(value: Any) -> str:
            try:
                return str(enum(value).value)
            except ValueError:
                raise PayloadError(f"{value!r} is not a {enum.__name__}") from None

        def enum_from(text: str) -> Any:
            try:
                return enum(text)
            except ValueError:
                raise PayloadError(f"unknown {enum.__name__} {text!r}") from None

        return enum_to, enum_from
    raise TypeError(f"unsupported payload field type {hint!r}")


class CallbackData:
    """Base of every button payload; subclasses are frozen dataclasses declaring ``prefix=`` and typed fields.

    A subclass without a prefix is a shared shape (its own subclasses give the prefix)."""

    prefix: ClassVar[str] = ""
    _by_prefix: ClassVar[dict[str, type[CallbackData]]] = {}
    _codecs: ClassVar[list[tuple[str, _Codec]] | None] = None

    def __init_subclass__(cls, prefix: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._codecs = None
        if not prefix:
            cls.prefix = ""
            return
        if not _PREFIX.fullmatch(prefix):
            raise TypeError(f"bad payload prefix {prefix!r}")
        if prefix in CallbackData._by_prefix:
            raise TypeError(f"payload prefix {prefix!r} is taken by {CallbackData._by_prefix[prefix].__name__}")
        cls.prefix = prefix
        CallbackData._by_prefix[prefix] = cls

    @classmethod
    def _fields(cls) -> list[tuple[str, _Codec]]:
        # Resolved on first use: the dataclass decorator runs after ``__init_subclass__``.
        if cls._codecs is None:
            hints = typing.get_type_hints(cls)
            cls._codecs = [(f.name, _codec_for(hints[f.name])) for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        return cls._codecs

    def pack(self) -> str:
        cls = type(self)
        if not cls.prefix:
            raise PayloadError(f"{cls.__name__} has no prefix")
        parts = [cls.prefix, *(quote(to(getattr(self, name)), safe="") for name, (to, _) in cls._fields())]
        packed = _SEP.join(parts)
        size = len(packed.encode())
        if size > MAX_PAYLOAD_BYTES:
            raise PayloadError(f"payload is {size} bytes, limit {MAX_PAYLOAD_BYTES}")
        return packed

    @classmethod
    def unpack(cls, packed: str) -> Self:
        """``packed`` as an instance of this class (or, on the base class, of whichever class its prefix names)."""
        found = unpack(packed)
        if not isinstance(found, cls):
            raise PayloadError(f"not a {cls.__name__} payload")
        return found


def unpack(packed: str) -> CallbackData:
    """The payload ``packed`` names by its prefix, every field converted and validated; else ``PayloadError``."""
    if not packed or len(packed.encode()) > MAX_PAYLOAD_BYTES:
        raise PayloadError("empty or oversized payload")
    prefix, *parts = packed.split(_SEP)
    cls = CallbackData._by_prefix.get(prefix)
    if cls is None:
        raise PayloadError("unknown payload prefix")
    fields = cls._fields()
    if len(parts) != len(fields):
        raise PayloadError(f"{cls.__name__} takes {len(fields)} fields, got {len(parts)}")
    try:
        texts = [unquote(part, errors="strict") for part in parts]
    except UnicodeDecodeError:
        raise PayloadError("bad escape in payload") from None
    return cls(**{name: from_(text) for (name, (_, from_)), text in zip(fields, texts, strict=True)})


def prefixes() -> dict[str, type[CallbackData]]:
    """Every registered payload class by its prefix."""
    return dict(CallbackData._by_prefix)
