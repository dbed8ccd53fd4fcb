"""One rule for text that comes from outside (a platform, a browser, a file), applied at the inbound boundary.

PostgreSQL refuses NUL in text and invalid UTF-8 (a lone surrogate cannot be encoded); SQLite stores both; neither
is something a person meant to type. ``clean_text`` removes them, with the other invisible control characters,
so that both backends store the same thing and nothing reaches a handler that a database would refuse.
"""

from __future__ import annotations

import re
from typing import Any

# C0 controls except tab and newline, DEL, C1 controls, lone surrogates, the two noncharacters at the end of the
# BMP, and the bidirectional overrides/isolates (they let a name display as something else: "Trojan Source").
_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff\u202a-\u202e\u2066-\u2069]")


def clean_text(value: str) -> str:
    """``value`` without characters no database should store or no person means: NUL and other control
    characters, lone surrogates, bidi overrides. Line breaks become ``\\n``; tabs stay."""
    if value.isascii() and value.isprintable():
        return value  # the common case, without a regex pass
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return _UNSAFE.sub("", value)


def clean_tree(value: Any) -> Any:
    """``clean_text`` applied to every string in a JSON-like tree (dict keys included)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_tree(k): clean_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(clean_tree(v) for v in value)
    return value
