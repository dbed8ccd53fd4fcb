"""The hospital matcher as it was before issue 11 (bot/parsing/customer_match.py at 1dad03f), kept verbatim as the
baseline of bench/hospital_match.py. Not used by the bot."""

from __future__ import annotations

import math
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from rapidfuzz import fuzz, process
from rapidfuzz.distance import LCSseq

MatchStatus = Literal["exact", "unique", "ambiguous", "none"]

# Fuzzy-stage thresholds (all scores are 0..100).
UNIQUE_MIN_SCORE = 85.0  # a fuzzy best must reach this to resolve on its own ...
UNIQUE_MARGIN = 8.0  # ... and lead the runner-up entry by this many points,
UNIQUE_MIN_MARGIN = 5.0  # ... or by at least this many while being UNIQUE_DISTANCE_RATIO times
UNIQUE_DISTANCE_RATIO = 1.8  # closer to 100 than the runner-up (one typo vs two in a long name)
AMBIGUOUS_MIN_SCORE = 70.0  # "ambiguous" needs >= 2 entries scoring at least this ...
AMBIGUOUS_WINDOW = 15.0  # ... and within this many points of the best; otherwise "none"
SUGGESTION_MIN_SCORE = 45.0  # suggestions returned with status "none"
MAX_SUGGESTIONS = 3
MAX_AMBIGUOUS = 5

# Scores used to rank candidates inside the set-based stages (the stage decides the status).
_EXACT_SCORE = 100.0
_SOUNDS_LIKE_SCORE = 95.0
_SUBSTRING_BASE = 80.0  # + up to 15 for coverage of the key
_INITIALS_PREFIX_BASE = 75.0  # + up to 15 for coverage of the key
_SUBSEQUENCE_BASE = 65.0  # + up to 25 for coverage, compactness and a shared first character

# Fuzzy-stage weights: sound keys should only win when homophones are involved, and initials are
# so short that one letter moves the ratio a lot, so both count a little less than text.
_SOUND_WEIGHT = 0.95
_INITIALS_WEIGHT = 0.9

_SEP = "\x1f"  # never survives normalize(), so it safely separates keys inside a haystack
_MIN_SUBSTRING_LEN = 2
_MIN_ASCII_SUBSTRING_LEN = 3
_SHORT_QUERY_LEN = 3  # WRatio's partial matching is noise for 1-3 character queries: use ratio
_SHORTLIST = 40  # keys fetched per rapidfuzz pass before rescoring / aggregating per entry
_SCAN_CAP = 200  # max keys a subsequence scan inspects (keys are scanned shortest first)

# A deliberately tiny English → pinyin glossary; word order must match the Chinese name.
_ENGLISH_TO_PINYIN: dict[str, str] = {
    "hospital": "yiyuan",
    "people": "renmin",
    "peoples": "renmin",
    "provincial": "sheng",
    "province": "sheng",
    "municipal": "shi",
    "city": "shi",
    "first": "diyi",
    "second": "dier",
    "third": "disan",
    "affiliated": "fushu",
    "university": "daxue",
    "medical": "yixue",
    "the": "",
    "of": "",
    "s": "",
}
_ASCII_WORD_RE = re.compile(r"[a-z0-9]+")
_LONE_DIGIT_RE = re.compile(r"(?<![0-9])[1-9](?![0-9])")  # 浙大1院 → 浙大一院; leaves 117 alone
_CHINESE_DIGITS = "〇一二三四五六七八九"
_NON_HAN = "\x00"  # marks chunks pypinyin could not convert (digits, Latin letters)
# "Sound keys" spell a name as one private-use character per pinyin syllable, so homophones compare
# equal while a different syllable costs a whole character (like in the Chinese text itself).
_SYLLABLE_CODE_BASE = 0xF0000  # Supplementary Private Use Area-A; normalize() drops such characters
_UNKNOWN_SYLLABLE = "\ufffd"  # a syllable no key uses; a symbol, so never inside a normalized key


@dataclass(frozen=True)
class CustomerEntry:
    """One customer (hospital) in the directory, with optional aliases / abbreviations."""

    id: int
    name: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Candidate:
    """A scored match; ``matched`` is the name, alias or pinyin key that produced the score (0..100)."""

    entry: CustomerEntry
    score: float
    matched: str


@dataclass(frozen=True)
class MatchResult:
    """Outcome of a lookup; ``candidates`` are ordered best first."""

    status: MatchStatus
    candidates: tuple[Candidate, ...]

    @property
    def best(self) -> CustomerEntry | None:
        """The resolved entry when the status is ``exact`` or ``unique``, else None."""
        if self.status in ("exact", "unique") and self.candidates:
            return self.candidates[0].entry
        return None


def normalize(text: str) -> str:
    """NFKC-fold (full-width → half-width), lowercase, drop whitespace, punctuation and symbols."""
    folded = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] not in "PZSC")


def _has_non_ascii(text: str) -> bool:
    return not text.isascii()


def _pinyin_keys(text: str) -> tuple[str, str, tuple[str, ...]]:
    """Full toneless pinyin, pinyin initials and syllable tokens of ``text`` (one pypinyin call).

    Initials are the first letter of each syllable, i.e. what ``Style.FIRST_LETTER`` yields.
    Non-Chinese chunks (digits, Latin) stay whole in both keys and become ``_NON_HAN + char`` tokens.
    """
    # Imported on first use: pypinyin's dictionaries take about 0.3 s to load, which every start (and the replies
    # owed after a crash) would otherwise wait for; the first matcher built pays it instead.
    from pypinyin import lazy_pinyin

    full: list[str] = []
    initials: list[str] = []
    tokens: list[str] = []
    for syllable in lazy_pinyin(text, errors=lambda chunk: _NON_HAN + chunk):
        if syllable.startswith(_NON_HAN):
            chunk = syllable[1:]
            full.append(chunk)
            initials.append(chunk)
            tokens.extend(_NON_HAN + ch for ch in chunk)
        elif syllable:
            full.append(syllable)
            initials.append(syllable[0])
            tokens.append(syllable)
    return "".join(full), "".join(initials), tuple(tokens)


def _english_to_pinyin(query: str) -> str | None:
    """Translate a multi-word English query with the glossary; None when no word was translated."""
    words = _ASCII_WORD_RE.findall(unicodedata.normalize("NFKC", query).lower())
    if len(words) < 2 or not any(word in _ENGLISH_TO_PINYIN for word in words):
        return None
    return "".join(_ENGLISH_TO_PINYIN.get(word, word) for word in words) or None


_Hits = dict[int, tuple[float, str]]  # entry index -> (best score, matched label)


def _keep_best(hits: _Hits, owner: int, score: float, label: str) -> None:
    previous = hits.get(owner)
    if previous is None or score > previous[0]:
        hits[owner] = (score, label)


class _KeySet:
    """Normalized keys (shortest first) with owning entry index, display label and a haystack."""

    def __init__(self, rows: Iterable[tuple[str, int, str]]) -> None:
        unique: dict[tuple[str, int], str] = {}
        for key, owner, label in rows:
            if key:
                unique.setdefault((key, owner), label)
        ordered = sorted(unique.items(), key=lambda item: (len(item[0][0]), item[0][1]))
        self.keys: list[str] = [key for (key, _owner), _label in ordered]
        self.owners: list[int] = [owner for (_key, owner), _label in ordered]
        self.labels: list[str] = [label for _pair, label in ordered]
        self.exact: dict[str, list[int]] = {}
        for idx, key in enumerate(self.keys):
            self.exact.setdefault(key, []).append(idx)
        # Haystack "<SEP>key0<SEP>key1...": one C-level str.find / regex scan instead of a Python loop.
        self.haystack = "".join(_SEP + key for key in self.keys)
        self._starts: list[int] = []
        pos = 0
        for key in self.keys:
            self._starts.append(pos)
            pos += len(key) + 1

    def key_at(self, haystack_pos: int) -> int:
        """Index of the key whose slot (separator included) contains ``haystack_pos``."""
        return bisect_right(self._starts, haystack_pos) - 1

    def exact_hits(self, key: str, score: float) -> _Hits:
        hits: _Hits = {}
        for idx in self.exact.get(key, ()):
            _keep_best(hits, self.owners[idx], score, self.labels[idx])
        return hits

    def substring_hits(self, needle: str, base: float, want: int, hits: _Hits) -> None:
        """Add owners of keys containing ``needle``; stop after ``want`` distinct owners.

        Keys are sorted shortest first, so the owners found first are the best scored ones.
        """
        q_len = len(needle.lstrip(_SEP))
        found: set[int] = set()
        haystack = self.haystack
        pos = haystack.find(needle)
        while pos >= 0 and len(found) < want:
            idx = self.key_at(pos)
            owner = self.owners[idx]
            found.add(owner)
            _keep_best(hits, owner, base + 15.0 * q_len / len(self.keys[idx]), self.labels[idx])
            next_slot = self._starts[idx + 1] if idx + 1 < len(self._starts) else len(haystack)
            pos = haystack.find(needle, next_slot if needle.startswith(_SEP) else next_slot + 1)


class CustomerMatcher:
    """Precomputed index over the customer directory; :meth:`match` is pure and fast."""

    def __init__(self, entries: Iterable[CustomerEntry]) -> None:
        """Index normalized name/aliases plus their full pinyin and pinyin initials."""
        self._entries: tuple[CustomerEntry, ...] = tuple(entries)
        text_rows: list[tuple[str, int, str]] = []
        pinyin_rows: list[tuple[str, int, str]] = []
        initials_rows: list[tuple[str, int, str]] = []
        sound_rows: list[tuple[str, int, str]] = []
        self._syllable_codes: dict[str, str] = {}
        pinyin_cache: dict[str, tuple[str, str, tuple[str, ...]]] = {}
        for owner, entry in enumerate(self._entries):
            for raw in (entry.name, *entry.aliases):
                key = normalize(raw)
                if not key:
                    continue
                text_rows.append((key, owner, raw))
                if _has_non_ascii(key):  # ASCII keys (English aliases) are their own "pinyin"
                    if key not in pinyin_cache:
                        pinyin_cache[key] = _pinyin_keys(key)
                    full, initials, tokens = pinyin_cache[key]
                    for token in tokens:
                        if not token.startswith(_NON_HAN) and token not in self._syllable_codes:
                            self._syllable_codes[token] = chr(_SYLLABLE_CODE_BASE + len(self._syllable_codes))
                    pinyin_rows.append((full, owner, full))
                    initials_rows.append((initials, owner, initials))
                    sound_rows.append((self._sound_key(tokens), owner, raw))
        self._text = _KeySet(text_rows)
        self._ascii_text = _KeySet(row for row in text_rows if row[0].isascii())
        self._pinyin = _KeySet(pinyin_rows)
        self._initials = _KeySet(initials_rows)
        self._sounds = _KeySet(sound_rows)

    def _sound_key(self, tokens: Iterable[str]) -> str:
        """One character per syllable (homophones share it); non-Chinese characters stay as they are."""
        codes = self._syllable_codes
        return "".join(
            token[1:] if token.startswith(_NON_HAN) else codes.get(token, _UNKNOWN_SYLLABLE) for token in tokens
        )

    def __len__(self) -> int:
        """Number of customers in the directory."""
        return len(self._entries)

    def match(self, query: str, limit: int = 5) -> MatchResult:
        """Resolve ``query``; ``limit`` caps ambiguous candidates (2..5) and suggestions (<= 3)."""
        if limit < 1:
            raise ValueError("limit must be >= 1")
        q = normalize(query)
        if not q:
            return MatchResult("none", ())
        ascii_query = not _has_non_ascii(q)
        cap = max(2, min(limit, MAX_AMBIGUOUS))

        # 1. Exact normalized name/alias; ASCII queries then exact full pinyin, then exact initials.
        hits = self._exact(q, ascii_query)
        if hits:
            return self._decide_set(hits, "exact", cap)
        if not ascii_query:
            q_cn = _LONE_DIGIT_RE.sub(lambda digit: _CHINESE_DIGITS[int(digit.group())], q)
            if q_cn != q:  # reps type 浙大1院; names spell numbers in Chinese
                q = q_cn
                hits = self._exact(q, ascii_query)
                if hits:
                    return self._decide_set(hits, "unique", cap)

        # 2. Substring of a name/alias; ASCII also inside full pinyin or at the start of initials.
        hits = self._substring(q, ascii_query, cap)
        if hits:
            return self._decide_set(hits, "unique", cap)

        # 3. Same pronunciation: syllables of a Chinese query (邵一夫 → 邵逸夫), or for an English query
        #    its glossary pinyin ("Zhejiang Provincial People's Hospital" → zhejiangshengrenminyiyuan).
        sounds_like = self._sound_key(_pinyin_keys(q)[2]) if not ascii_query else _english_to_pinyin(query)
        if sounds_like:
            key_set = self._pinyin if ascii_query else self._sounds
            hits = key_set.exact_hits(sounds_like, _SOUNDS_LIKE_SCORE)
            if hits:
                return self._decide_set(hits, "unique", cap)

        # 4. Chinese abbreviation habit: query characters appear in order in one name/alias.
        if not ascii_query and len(q) >= _MIN_SUBSTRING_LEN:
            hits = self._subsequence(q)
            if hits:
                return self._decide_set(hits, "unique", cap)

        # 5. Typos: rapidfuzz scores with thresholds and a margin.
        return self._decide_fuzzy(self._fuzzy(q, ascii_query, sounds_like), cap, limit)

    # -- stages -------------------------------------------------------------------------------------------

    def _exact(self, q: str, ascii_query: bool) -> _Hits:
        """Exact normalized name/alias; for ASCII queries then full pinyin, then initials."""
        hits = self._text.exact_hits(q, _EXACT_SCORE)
        if hits or not ascii_query:
            return hits
        return self._pinyin.exact_hits(q, _EXACT_SCORE) or self._initials.exact_hits(q, _EXACT_SCORE)

    def _substring(self, q: str, ascii_query: bool, cap: int) -> _Hits:
        """Query inside a name/alias; ASCII also inside full pinyin or at the start of initials."""
        hits: _Hits = {}
        if len(q) >= _MIN_SUBSTRING_LEN:
            self._text.substring_hits(q, _SUBSTRING_BASE, cap, hits)
        if ascii_query and len(q) >= _MIN_ASCII_SUBSTRING_LEN:
            self._pinyin.substring_hits(q, _SUBSTRING_BASE, cap, hits)
            self._initials.substring_hits(_SEP + q, _INITIALS_PREFIX_BASE, cap, hits)
        return hits

    def _subsequence(self, q: str) -> _Hits:
        """All query characters appear in order inside one name/alias (Chinese abbreviation habit)."""
        gap = f"[^{_SEP}]*?"
        pattern = re.compile(gap.join(re.escape(ch) for ch in q))
        keys = self._text
        hits: _Hits = {}
        last_idx = -1
        scanned = 0
        for found in pattern.finditer(keys.haystack):
            idx = keys.key_at(found.start())
            if idx == last_idx:
                continue
            last_idx = idx
            scanned += 1
            if scanned > _SCAN_CAP:
                break
            key = keys.keys[idx]
            coverage = len(q) / len(key)
            compactness = len(q) / (found.end() - found.start())
            first_char = 5.0 if key[0] == q[0] else 0.0
            score = _SUBSEQUENCE_BASE + 15.0 * coverage + 5.0 * compactness + first_char
            _keep_best(hits, keys.owners[idx], score, keys.labels[idx])
        return hits

    def _fuzzy(self, q: str, ascii_query: bool, sounds_like: str | None) -> _Hits:
        """rapidfuzz passes over precomputed keys; the best score per entry wins."""
        hits: _Hits = {}
        if ascii_query:
            self._fuzzy_text(self._ascii_text, q, hits)
            self._fuzzy_ratio(self._pinyin, q, 1.0, hits)
            self._fuzzy_ratio(self._initials, q, _INITIALS_WEIGHT, hits)
            if sounds_like and sounds_like != q:  # glossary translation: as good as typed pinyin
                self._fuzzy_ratio(self._pinyin, sounds_like, 1.0, hits)
        else:
            self._fuzzy_text(self._text, q, hits)
            if sounds_like:
                self._fuzzy_ratio(self._sounds, sounds_like, _SOUND_WEIGHT, hits)
        return hits

    @staticmethod
    def _fuzzy_ratio(keys: _KeySet, needle: str, weight: float, hits: _Hits) -> None:
        if not keys.keys:
            return
        cutoff = min(100.0, SUGGESTION_MIN_SCORE / weight)
        for _key, score, idx in process.extract(
            needle, keys.keys, scorer=fuzz.ratio, limit=_SHORTLIST, score_cutoff=cutoff
        ):
            _keep_best(hits, keys.owners[idx], float(score) * weight, keys.labels[idx])

    @staticmethod
    def _fuzzy_text(keys: _KeySet, q: str, hits: _Hits) -> None:
        """fuzz.WRatio, computed only on a shortlist from two cheap C passes (ratio and LCS length)."""
        if not keys.keys:
            return
        if len(q) <= _SHORT_QUERY_LEN:
            CustomerMatcher._fuzzy_ratio(keys, q, 1.0, hits)
            return
        shortlist = {
            idx
            for _key, _score, idx in process.extract(
                q, keys.keys, scorer=fuzz.ratio, limit=_SHORTLIST, score_cutoff=SUGGESTION_MIN_SCORE
            )
        }
        min_common = max(2, math.ceil(len(q) / 2))
        shortlist.update(
            idx
            for _key, _score, idx in process.extract(
                q, keys.keys, scorer=LCSseq.similarity, limit=_SHORTLIST, score_cutoff=min_common
            )
        )
        for idx in shortlist:
            score = fuzz.WRatio(q, keys.keys[idx], score_cutoff=SUGGESTION_MIN_SCORE)
            if score:
                _keep_best(hits, keys.owners[idx], score, keys.labels[idx])

    # -- decisions ----------------------------------------------------------------------------------------

    def _ranked(self, hits: _Hits) -> list[Candidate]:
        order = sorted(hits.items(), key=lambda item: (-item[1][0], item[0]))
        return [
            Candidate(entry=self._entries[owner], score=round(min(score, 100.0), 2), matched=label)
            for owner, (score, label) in order
        ]

    def _decide_set(self, hits: _Hits, single: Literal["exact", "unique"], cap: int) -> MatchResult:
        """A set-based stage matched: one entry resolves, several are ambiguous."""
        ranked = self._ranked(hits)
        if len(ranked) == 1:
            return MatchResult(single, (ranked[0],))
        return MatchResult("ambiguous", tuple(ranked[:cap]))

    def _decide_fuzzy(self, hits: _Hits, cap: int, limit: int) -> MatchResult:
        """Clear winner → unique; several close high scores → ambiguous; else none + suggestions."""
        ranked = self._ranked(hits)
        if not ranked:
            return MatchResult("none", ())
        best = ranked[0].score
        second = ranked[1].score if len(ranked) > 1 else 0.0
        if _is_clear_winner(best, second):
            return MatchResult("unique", (ranked[0],))
        close = [c for c in ranked if c.score >= AMBIGUOUS_MIN_SCORE and c.score >= best - AMBIGUOUS_WINDOW]
        if len(close) >= 2:
            return MatchResult("ambiguous", tuple(close[:cap]))
        suggestions = [c for c in ranked if c.score >= SUGGESTION_MIN_SCORE]
        return MatchResult("none", tuple(suggestions[: min(MAX_SUGGESTIONS, limit)]))


def _is_clear_winner(best: float, second: float) -> bool:
    """Best fuzzy score is high enough and clearly ahead of the runner-up entry."""
    if best < UNIQUE_MIN_SCORE:
        return False
    gap = best - second
    if gap >= UNIQUE_MARGIN:
        return True
    return gap >= UNIQUE_MIN_MARGIN and (100.0 - second) >= UNIQUE_DISTANCE_RATIO * (100.0 - best)


__all__ = [
    "Candidate",
    "CustomerEntry",
    "CustomerMatcher",
    "MatchResult",
    "MatchStatus",
    "normalize",
]
