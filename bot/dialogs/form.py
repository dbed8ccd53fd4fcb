"""A form: the fields a dialog collects, each with the words that name it.

The labels a card shows and the aliases a rep may type come from the same ``FieldSpec``, so whatever the
confirmation card calls a field is always accepted as the key of a ``字段:值`` correction.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bot.infra import i18n

# A field's hooks receive the running dialog (bot.dialogs.engine.FormDialog) and return what they found.
Parser = Callable[[Any, str], Awaitable[None]]
Validator = Callable[[Any], Awaitable[None]]
Choices = Callable[[Any], Awaitable[list[tuple[str, str]]]]


def fold(word: str) -> str:
    """How a key is compared: NFKC (full width → half width), case-folded, spaces collapsed."""
    return " ".join(unicodedata.normalize("NFKC", word).casefold().replace("_", " ").replace("-", " ").split())


def _is_cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"


@dataclass(frozen=True)
class FieldSpec:
    """One field: its key, its label per language, the other words that name it, and its rules.

    ``parse`` turns a typed answer into the field's value (or notes why not); ``choices`` gives the buttons of its
    question; ``validate`` checks a value that depends on other fields (``depends_on``), and runs again whenever one
    of them changes, whatever the path (typed answer, button, correction). A ``skippable`` field that is not required
    is asked too, after the required ones, in a dialog that asks questions at all, with a 跳过 button (typing 跳过 or
    无 skips it as well); a line that gave every required field goes straight to the card."""

    key: str
    label_zh: str
    label_en: str
    aliases: tuple[str, ...] = ()
    required: bool = False
    depends_on: tuple[str, ...] = ()
    parse: Parser | None = None
    choices: Choices | None = None
    validate: Validator | None = None
    skippable: bool = False

    def label(self, locale: str) -> str:
        return self.label_en if i18n.normalize_locale(locale) == i18n.EN else self.label_zh

    @property
    def words(self) -> tuple[str, ...]:
        return (self.key, self.label_zh, self.label_en, *self.aliases)


class Form:
    """The ordered fields of a dialog and the index of the words that name them."""

    def __init__(self, fields: Sequence[FieldSpec]) -> None:
        self.fields = list(fields)
        self._by_key = {f.key: f for f in self.fields}
        self._index: dict[str, str] = {}
        for f in self.fields:
            for word in f.words:
                self._index.setdefault(fold(word), f.key)
        self._cjk_words = sorted((w for w in self._index if w and _is_cjk(w[-1])), key=len, reverse=True)

    def field(self, key: str) -> FieldSpec:
        return self._by_key[key]

    def has(self, key: str) -> bool:
        return key in self._by_key

    def key_for(self, word: str) -> str | None:
        """The field ``word`` names (a key, a label in either language, an alias), or None."""
        return self._index.get(fold(word))

    def words(self) -> dict[str, str]:
        """Every folded word that names a field → the field key (what the line parsers accept before a colon)."""
        return dict(self._index)

    def dependents(self, changed: set[str]) -> list[FieldSpec]:
        """Fields with a validator that must run again: changed themselves, or depending on a changed one
        (transitively), in form order."""
        affected = set(changed)
        grew = True
        while grew:
            grew = False
            for f in self.fields:
                if f.key not in affected and affected.intersection(f.depends_on):
                    affected.add(f.key)
                    grew = True
        return [f for f in self.fields if f.key in affected and f.validate is not None]

    def correction(self, text: str) -> Literal["direct", "pairs"] | None:
        """Whether ``text`` is a ``字段:值`` correction of this form: "direct" when the text starts with a field's
        word and a colon (``拜访时间:昨天 15:00``), "pairs" when a field's word comes before the first colon later
        in the line (``浙二 科室:骨科``), else None."""
        norm = unicodedata.normalize("NFKC", text).strip()
        if ":" not in norm:
            return None
        head = norm.split(":", 1)[0].strip()
        if not head:
            return None
        if self.key_for(head) is not None:
            return "direct"
        tokens = head.split()
        for n in range(1, len(tokens)):
            if self.key_for(" ".join(tokens[n:])) is not None:
                return "pairs"
        last = fold(tokens[-1])
        # A key glued to the value before it ("价格下一步:送样").
        if any(len(last) > len(w) and last.endswith(w) for w in self._cjk_words):
            return "pairs"
        return None
