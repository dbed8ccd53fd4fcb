"""Typed button payloads with a hard length check: a packed payload is at most 1,024 bytes, the smallest button-key
limit of the supported platforms."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

MAX_PAYLOAD_BYTES = 1024
_SEP = "|"


_ID = re.compile(r"[0-9]{1,18}")


def parse_id(text: str) -> int | None:
    """A row id carried in a payload: ASCII digits that fit a BIGINT, else None (a forged or mangled tap)."""
    return int(text) if _ID.fullmatch(text) else None


class PayloadError(ValueError):
    """A payload that cannot be packed or was not produced by us."""


@dataclass(frozen=True)
class ButtonPayload:
    """``action`` names the handler; ``args`` are its string arguments (escaped on the wire)."""

    action: str
    args: tuple[str, ...] = ()

    def pack(self) -> str:
        if not self.action or not self.action.replace("_", "").replace(".", "").isalnum():
            raise PayloadError(f"bad action name {self.action!r}")
        packed = _SEP.join([self.action, *(quote(a, safe="") for a in self.args)])
        if len(packed.encode()) > MAX_PAYLOAD_BYTES:
            raise PayloadError(f"payload is {len(packed.encode())} bytes, limit {MAX_PAYLOAD_BYTES}")
        return packed

    @classmethod
    def unpack(cls, packed: str) -> ButtonPayload:
        if not packed or len(packed.encode()) > MAX_PAYLOAD_BYTES:
            raise PayloadError("empty or oversized payload")
        action, *args = packed.split(_SEP)
        if not action.replace("_", "").replace(".", "").isalnum():
            raise PayloadError("malformed payload")
        return cls(action, tuple(unquote(a) for a in args))
