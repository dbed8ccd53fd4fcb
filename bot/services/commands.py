"""What each role is offered: the shortcut chips of the console, and the fallback's "did you mean" among the
command words of the sender's own roles (docs/console.md)."""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from rapidfuzz.distance import Indel

from bot.config import RequestTypeConfig
from bot.core.routing import CommandWord
from bot.infra import i18n
from bot.infra.words import fold_word, normalize_text
from storage.vocab import Role

# The order roles' chips come in for a person with several: their own field work first, then the department's
# queue, then supervision, then administration. 帮助 always closes the row.
ROLE_ORDER = (Role.REP, Role.MEMBER, Role.HEAD, Role.MANAGER, Role.DIRECTOR, Role.ADMIN)
REQUEST = "request"  # the chip that starts the first configured request type (跟台 by default)
HELP_WORD = "帮助"

# Each chip: (catalog key of its label, the command word it sends). The word is the Chinese one every locale's
# router answers; the label is in the person's language. The queue words (我的任务 …) are another feature's.
_CHIP_WORDS: dict[str, str] = {
    "chip.visit": "拜访",
    "chip.my_requests": "我的申请",
    "chip.my_visits": "我的拜访",
    "chip.my_tasks": "我的任务",
    "chip.unclaimed": "待认领",
    "chip.department_todo": "部门待办",
    "chip.overdue": "超时",
    "chip.policy": "升级策略",
    "chip.admin_help": "管理帮助",
    "chip.digest": "日报",
}
# A manager's and a director's chip is their team's digest (日报); there is no team view yet (docs/console.md).
_ROLE_CHIPS: dict[str, tuple[str, ...]] = {
    Role.REP: ("chip.visit", REQUEST, "chip.my_requests", "chip.my_visits"),
    Role.MEMBER: ("chip.my_tasks", "chip.unclaimed"),
    Role.HEAD: ("chip.department_todo", "chip.overdue"),
    Role.MANAGER: ("chip.digest",),
    Role.DIRECTOR: ("chip.digest", "chip.policy"),
    Role.ADMIN: ("chip.policy", "chip.admin_help"),
}

# A typed word is "close" to a command word at this similarity (0..1, Indel: 1 - edits / total length), on the
# characters or on the toneless pinyin (a homophone picked from the input method: 拜方 → 拜访). Two-character
# words with one character wrong score 0.5 on characters, so only a homophone or near-homophone suggests them.
CHAR_SCORE = 0.75
PINYIN_SCORE = 0.85


@dataclass(frozen=True)
class Chip:
    """A shortcut under the chat: ``label`` shown, ``text`` sent as if typed."""

    label: str
    text: str


@dataclass(frozen=True)
class Fallback:
    """What to say to a text no route took: a suggestion (the whole text to send instead), else the role's
    commands to list."""

    suggestion: str | None
    commands: tuple[str, ...]


def roles_of(roles: Sequence[str] | None) -> list[str]:
    """A person's roles; someone without any is treated as a rep (as ``帮助`` does)."""
    return list(roles or [Role.REP])


def _ordered(roles: Sequence[str] | None) -> list[str]:
    mine = set(roles_of(roles))
    return [r for r in ROLE_ORDER if r in mine]


def chips(roles: Sequence[str] | None, locale: str, request_types: Mapping[str, RequestTypeConfig]) -> list[Chip]:
    """The shortcut chips of a person with ``roles``: each role's in ``ROLE_ORDER``, each once, then 帮助."""
    first_type = next(iter(request_types.values()), None)
    out: dict[str, Chip] = {}
    for role in _ordered(roles):
        for key in _ROLE_CHIPS.get(role, ()):
            if key == REQUEST:
                if first_type is None:
                    continue
                word = first_type.keywords[0]
                label = first_type.name_en if i18n.normalize_locale(locale) == i18n.EN else word
                out.setdefault(word, Chip(label, word))
            else:
                word = _CHIP_WORDS[key]
                out.setdefault(word, Chip(i18n.t(locale, key), word))
    out.setdefault(HELP_WORD, Chip(i18n.t(locale, "chip.help"), HELP_WORD))
    return list(out.values())


def words_for(
    roles: Sequence[str] | None, declared: Iterable[CommandWord], request_types: Mapping[str, RequestTypeConfig]
) -> list[CommandWord]:
    """The command words a person with ``roles`` uses: the declared ones for everyone or for one of their roles,
    and, for a rep, the request types' keywords (from the config, not declared by a route)."""
    mine = set(roles_of(roles))
    words = [cw for cw in declared if not cw.roles or cw.roles & mine]
    if Role.REP in mine:
        rep = frozenset({Role.REP.value})
        words += [CommandWord(kw, True, rep) for rt in request_types.values() for kw in rt.keywords]
    return words


def _has_han(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


@functools.lru_cache(maxsize=4096)
def _pinyin(text: str) -> str:
    # Imported on first use, like the hospital matcher: pypinyin's dictionaries take a while to load.
    from pypinyin import lazy_pinyin

    return "".join(lazy_pinyin(text))


def similarity(typed: str, word: str) -> float:
    """How close ``typed`` is to the command ``word`` (both folded), 0..1: the better of characters and pinyin."""
    chars = Indel.normalized_similarity(typed, word)
    if chars == 1 or not (_has_han(typed) and _has_han(word)):
        return chars
    sound = Indel.normalized_similarity(_pinyin(typed), _pinyin(word))
    return max(chars, sound) if sound >= PINYIN_SCORE else chars


def _readings(tokens: list[str], word: str) -> list[tuple[str, str]]:
    """(what may be the typed command, what follows it) for ``word``: as many words as it has, and, for a Chinese
    word, as many characters of a first word that runs on (拜方浙一: 拜方 + 浙一)."""
    n = len(word.split())
    if len(tokens) < n:
        return []
    out = [(" ".join(tokens[:n]), " ".join(tokens[n:]))]
    first = tokens[0]
    if n == 1 and _has_han(word) and _has_han(first) and len(word) < len(first):
        out.append((first[: len(word)], " ".join([first[len(word) :], *tokens[1:]])))
    return out


def suggest(text: str, words: Iterable[CommandWord]) -> str | None:
    """The text the sender probably meant: the closest command word in place of what they typed first (the rest
    kept), or None when no word is close (``CHAR_SCORE`` / ``PINYIN_SCORE``). An ``exact`` word is suggested only
    for a text with nothing after it; a word of one character never."""
    tokens = normalize_text(text).split()
    if not tokens:
        return None
    folded = [unicodedata.normalize("NFKC", t).casefold() for t in tokens]
    best: tuple[float, str] | None = None
    for cw in words:
        word = fold_word(cw.word)
        if len(word) < 2:
            continue
        for typed, rest in _readings(folded, word):
            if typed == word or (rest and not cw.takes_args):
                continue
            score = similarity(typed, word)
            if score >= CHAR_SCORE and (best is None or score > best[0]):
                # The rest as the sender wrote it (case, width): only the command word is replaced.
                kept = _original_rest(tokens, folded, rest)
                best = (score, f"{cw.word} {kept}".strip())
    return best[1] if best else None


def _original_rest(tokens: list[str], folded: list[str], rest: str) -> str:
    """``rest`` (cut from the folded tokens) in the sender's own spelling."""
    joined, original = " ".join(folded), " ".join(tokens)
    return original[len(joined) - len(rest) :] if rest and len(joined) == len(original) else rest


def fallback(
    text: str,
    roles: Sequence[str] | None,
    declared: Iterable[CommandWord],
    request_types: Mapping[str, RequestTypeConfig],
    locale: str,
) -> Fallback:
    """For a text no route took: the closest command of the sender's own roles, else their chips' words to list
    (帮助 aside, it is named in the hint itself)."""
    found = suggest(text, words_for(roles, declared, request_types))
    listed = tuple(c.label for c in chips(roles, locale, request_types) if c.text != HELP_WORD)
    return Fallback(found, listed)
