"""How typed words are compared: width-normalised (NFKC), trimmed; command words also case-folded with spaces
collapsed. Routers, the config check and the parsers use the same two functions."""

from __future__ import annotations

import unicodedata


def normalize_text(text: str) -> str:
    """NFKC (full-width → half-width) and trimmed: the form every text filter compares."""
    return unicodedata.normalize("NFKC", text).strip()


def fold_word(word: str) -> str:
    """A command word as routers and `config check` compare it: width-normalised, case-folded, spaces collapsed."""
    return " ".join(normalize_text(word).casefold().split())
