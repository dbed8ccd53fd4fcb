"""Resolve a hospital / customer name typed in chat against the customer directory.

Pure and in-memory: build a CustomerMatcher once per directory, call match() per message. An exact name/alias
(or, typed in Latin letters, its pinyin or initials) decides at once. Otherwise a Chinese query collects candidates
from the set-based stages together — substring of a name/alias (also of the query without its trailing 医院),
same pronunciation (邵一夫), same characters swapped (州温中医院), characters in order (浙大一院) — and only when
none of them finds anything, from rapidfuzz scores. A candidate must share the query's *distinctive* part (what
is left once generic words such as 医院, 人民, 第一, 中医, 市 are removed), so 北京协和医院 suggests nothing; one that
leads the others by less than a margin is never picked silently: the rep is asked, with every close candidate
(at most ``MAX_CHOICES``).
Measured on 255 real Zhejiang hospitals by bench/hospital_match.py; the choices are in docs/hospital_matching.md.
"""

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
# The choice list: WeCom's template card shows at most 6 buttons (cards.wecom.MAX_BUTTONS), and a rep can still
# read six hospital names at a glance. Close candidates beyond it are left out (best and directory order first).
MAX_CHOICES = 6
SET_MARGIN = 5.0  # set-based stages: a runner-up within this many points of the best makes the query ambiguous
MIN_DISTINCTIVE_COVERAGE = 0.6  # share of the query's distinctive syllables a candidate must have

# Words that say what kind of hospital or place a name is, not which one: a candidate sharing only these with the
# query is no match (北京协和医院 / 绍兴和平医院 share 医院 and 和). The longest word found at a position wins.
GENERIC_WORDS: tuple[str, ...] = (
    *("社区卫生服务中心", "卫生服务中心", "精神卫生中心", "中西医结合", "妇幼保健院", "中医药大学", "医科大学"),
    *("妇幼保健", "医疗中心", "卫生中心", "自治县", "医学院", "总医院", "卫生院", "门诊部", "住院部", "妇产科"),
    *("人民", "医院", "中医", "妇幼", "妇女", "儿童", "妇儿", "妇产", "保健", "妇保", "儿保", "中心"),
    *("肿瘤", "口腔", "眼科", "骨科", "康复", "精神", "卫生", "专科", "门诊", "院区", "分院", "总院", "省立"),
    *("市立", "县立", "大学", "学院", "附属", "附一", "附二", "附三", "一附", "二附", "三附", "人医", "医疗"),
    *(f"第{n}" for n in "一二三四五六七八九十"),
    *(f"{n}院" for n in "一二三四五六七八九十"),
    *("自治区", "省", "市", "县", "区", "院", "医"),
)
_GENERIC_RE = re.compile("|".join(re.escape(word) for word in sorted(GENERIC_WORDS, key=len, reverse=True)))

# Short forms of university names inside hospital names (浙江大学医学院附属邵逸夫医院 → 浙大邵逸夫医院): indexed
# as extra keys, so 浙大 finds every 浙江大学 hospital through one kind of evidence. Word order as in the name.
UNIVERSITY_SHORT_NAMES: dict[str, str] = {
    "浙江大学医学院": "浙大",
    "浙江大学": "浙大",
    "温州医科大学": "温医大",
    "宁波大学": "宁大",
    "浙江中医药大学": "浙中医大",
    "杭州师范大学": "杭师大",
    "北京大学": "北大",
    "复旦大学": "复旦",
    "上海交通大学": "交大",
    "中山大学": "中大",
    "四川大学": "川大",
    "南京医科大学": "南医大",
    "苏州大学": "苏大",
    "郑州大学": "郑大",
}

# Scores of the set-based stages. Chinese queries: every stage's hits are pooled, so the tiers are what decide
# (a substring or a homophone beats a subsequence; two hits in one tier make the query ambiguous).
_EXACT_SCORE = 100.0
_CORE_EXACT_SCORE = 95.0  # the query without its trailing 医院 is a name/alias (浙二医院 → 浙二)
_SOUNDS_LIKE_SCORE = 90.0
_ANAGRAM_SCORE = 88.0  # the same syllables in another order: two characters swapped
# The query without its 医院 inside a key: 余杭医院 is any 余杭… hospital, as good as 余杭中医院 is through the
# subsequence stage (which skips 中), so a tie; below a substring of the whole query.
_CORE_SUBSTRING_SCORE = 84.0
_NUMERAL_BONUS = 6.0  # rapidfuzz: a candidate naming the query's numeral (浙大一附院 → 浙一, not 浙大妇院)
_LATIN_SOUNDS_LIKE_SCORE = 95.0
_CHINESE_SUBSTRING_SCORE = 90.0  # flat: how much of a long name the query covers says nothing about which one
_SUBSEQUENCE_TOP = 85.0  # less what the match skips (see CustomerMatcher._subsequence); below every substring
_SUBSEQUENCE_FLOOR = 60.0
# Latin-letter queries keep the first-stage-decides order, with coverage in the score.
_SUBSTRING_BASE = 80.0  # + up to 15 for coverage of the key
_INITIALS_PREFIX_BASE = 75.0  # + up to 15 for coverage of the key
_WIDE_SUBSTRING = 60  # distinct owners a Chinese substring scan collects before ranking (浙大: 9 hospitals)

# Fuzzy-stage weights: sound keys should only win when homophones are involved, and initials are
# so short that one letter moves the ratio a lot, so both count a little less than text.
_SOUND_WEIGHT = 0.95
_INITIALS_WEIGHT = 0.9

_SEP = "\x1f"  # never survives normalize(), so it safely separates keys inside a haystack
_MIN_SUBSTRING_LEN = 2
_MIN_SOUND_SUBSEQUENCE_LEN = 3
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


_NUMERALS = frozenset("一二三四五六七八九十")


def _numerals(key: str) -> set[str]:
    return {ch for ch in key if ch in _NUMERALS}


@dataclass(frozen=True)
class _Support:
    """What a Chinese query's candidates must share with it: at least MIN_DISTINCTIVE_COVERAGE of its distinctive
    sound codes (codes of generic characters it typed out of place, 浙人江民医院, count only when shared), one of
    its code pairs when it has any, and a numeral when both name one."""

    codes: list[str]
    pairs: set[tuple[str, str]]
    numerals: frozenset[str]
    generic_codes: frozenset[str]


def _in_order(text: str, needle: str, start: int, end: int) -> list[int] | None:
    """Earliest positions of ``needle``'s characters, in order, inside ``text[start:end]``; None if not all there."""
    positions: list[int] = []
    pos = start - 1
    for ch in needle:
        pos = text.find(ch, pos + 1, end)
        if pos < 0:
            return None
        positions.append(pos)
    return positions


def _pairs(runs: Iterable[str], reach: int = 2) -> set[tuple[str, str]]:
    """Unordered pairs of codes up to ``reach`` apart inside each run: a swapped or dropped character keeps one."""
    out: set[tuple[str, str]] = set()
    for run in runs:
        for i, code in enumerate(run):
            for other in run[i + 1 : i + 1 + reach]:
                out.add((code, other) if code <= other else (other, code))
    return out


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

    def start_of(self, idx: int) -> int:
        """Haystack position of the first character of key ``idx``."""
        return self._starts[idx] + 1

    def key_at(self, haystack_pos: int) -> int:
        """Index of the key whose slot (separator included) contains ``haystack_pos``."""
        return bisect_right(self._starts, haystack_pos) - 1

    def exact_hits(self, key: str, score: float) -> _Hits:
        hits: _Hits = {}
        for idx in self.exact.get(key, ()):
            _keep_best(hits, self.owners[idx], score, self.labels[idx])
        return hits

    def substring_hits(self, needle: str, base: float, want: int, hits: _Hits, coverage_bonus: float = 15.0) -> None:
        """Add owners of keys containing ``needle`` (score ``base`` + ``coverage_bonus`` × share of the key);
        stop after ``want`` distinct owners. Keys are sorted shortest first: the owners found first score best.
        """
        q_len = len(needle.lstrip(_SEP))
        found: set[int] = set()
        haystack = self.haystack
        pos = haystack.find(needle)
        while pos >= 0 and len(found) < want:
            idx = self.key_at(pos)
            owner = self.owners[idx]
            found.add(owner)
            _keep_best(hits, owner, base + coverage_bonus * q_len / len(self.keys[idx]), self.labels[idx])
            next_slot = self._starts[idx + 1] if idx + 1 < len(self._starts) else len(haystack)
            pos = haystack.find(needle, next_slot if needle.startswith(_SEP) else next_slot + 1)


class CustomerMatcher:
    """Precomputed index over the customer directory; :meth:`match` is pure and fast."""

    def __init__(self, entries: Iterable[CustomerEntry]) -> None:
        """Index normalized name/aliases (plus short university forms of names), their full pinyin, pinyin
        initials, sound keys and sorted sound keys, and per entry the syllables of its names."""
        self._entries: tuple[CustomerEntry, ...] = tuple(entries)
        self._owner_of = {entry.id: owner for owner, entry in enumerate(self._entries)}
        self._syllable_codes: dict[str, str] = {}
        pinyin_cache: dict[str, tuple[str, str, tuple[str, ...]]] = {}

        def tokens_of(key: str) -> tuple[str, ...]:
            if key not in pinyin_cache:
                pinyin_cache[key] = _pinyin_keys(key)
            tokens = pinyin_cache[key][2]
            for token in tokens:
                if not token.startswith(_NON_HAN) and token not in self._syllable_codes:
                    self._syllable_codes[token] = chr(_SYLLABLE_CODE_BASE + len(self._syllable_codes))
            return tokens

        # Generic words are also found by their sound (肿留 is 肿瘤 typed with the wrong character), except the
        # one-character ones: 医/一, 区/衢, 县/仙 would eat real names.
        generic_sounds = [self._sound_key(tokens_of(word)) for word in GENERIC_WORDS if len(word) > 1]
        self._generic_sound_re = re.compile("|".join(re.escape(s) for s in sorted(generic_sounds, key=len)[::-1]))
        self._generic_codes = frozenset(self._sound_key(tokens_of("".join(GENERIC_WORDS))))

        text_rows: list[tuple[str, int, str]] = []
        pinyin_rows: list[tuple[str, int, str]] = []
        initials_rows: list[tuple[str, int, str]] = []
        sound_rows: list[tuple[str, int, str]] = []
        anagram_rows: list[tuple[str, int, str]] = []
        # Per entry: every sound code of its keys, the unordered pairs of codes one or two apart (邵逸夫 → 邵逸,
        # 逸夫, 邵夫: a swapped or dropped character keeps one) and the numerals its keys contain.
        self._codes: list[frozenset[str]] = []
        self._code_pairs: list[frozenset[tuple[str, str]]] = []
        self._numerals: list[frozenset[str]] = []
        self._distinct_pairs: list[frozenset[tuple[str, str]]] = []
        masks: dict[str, str] = {}
        sound_texts: dict[str, tuple[str, str]] = {}
        for owner, entry in enumerate(self._entries):
            codes: set[str] = set()
            pairs: set[tuple[str, str]] = set()
            distinct_pairs: set[tuple[str, str]] = set()
            numerals: set[str] = set()
            for raw, derived in self._keys_of(entry):
                key = normalize(raw)
                if not key:
                    continue
                text_rows.append((key, owner, raw))
                numerals.update(_numerals(key))
                if not _has_non_ascii(key):  # ASCII keys (English aliases) are their own "pinyin"
                    masks[key] = "d" * len(key)
                    continue
                tokens = tokens_of(key)
                full, initials, _tokens = pinyin_cache[key]
                if not derived:  # pinyin of the names as written; derived keys only serve Chinese queries
                    pinyin_rows.append((full, owner, full))
                    initials_rows.append((initials, owner, initials))
                sound = self._sound_key(tokens)
                sound_rows.append((sound, owner, raw))
                anagram_rows.append(("".join(sorted(sound)), owner, raw))
                codes.update(sound)
                pairs.update(_pairs((sound,)))
                mask = self._generic_mask(key, sound, numerals=True)
                masks[key] = mask
                if len(sound) == len(key):
                    sound_texts.setdefault(sound, (key, mask))
                runs = "".join(c if m == "d" else " " for c, m in zip(sound, mask, strict=True)).split()
                distinct_pairs.update(_pairs(runs, reach=1))
            self._codes.append(frozenset(codes))
            self._code_pairs.append(frozenset(pairs))
            self._distinct_pairs.append(frozenset(distinct_pairs))
            self._numerals.append(frozenset(numerals))
        self._text = _KeySet(text_rows)
        self._ascii_text = _KeySet(row for row in text_rows if row[0].isascii())
        self._pinyin = _KeySet(pinyin_rows)
        self._initials = _KeySet(initials_rows)
        self._sounds = _KeySet(sound_rows)
        self._anagrams = _KeySet(anagram_rows)
        # "g"/"d" (generic / distinctive) for every character of the text haystack: the subsequence stage charges
        # a skipped distinctive character (萧山 in 杭州市萧山区第一人民医院 for 杭州一院) more than a generic one.
        self._text_mask = "".join("g" + masks[key] for key in self._text.keys)
        self._sound_mask = "".join("g" + sound_texts.get(key, (key, "d" * len(key)))[1] for key in self._sounds.keys)
        self._sound_text = "".join(_SEP + sound_texts.get(key, (key, ""))[0] for key in self._sounds.keys)
        # Keys without their last 院 (省中医院 → 省中医): a query that is one is as good as the key.
        self._cores: dict[str, list[int]] = {}
        for key, owner in zip(self._text.keys, self._text.owners, strict=True):
            core = key.removesuffix("院")
            if core != key and len(core) >= _MIN_SUBSTRING_LEN and owner not in self._cores.get(core, ()):
                self._cores.setdefault(core, []).append(owner)

    @staticmethod
    def _keys_of(entry: CustomerEntry) -> list[tuple[str, bool]]:
        """(key, derived): the name, the aliases, and the name with university names shortened (浙大邵逸夫医院)."""
        keys = [(entry.name, False), *((alias, False) for alias in entry.aliases)]
        for long, short in UNIVERSITY_SHORT_NAMES.items():
            if long in entry.name:
                shortened = entry.name.replace(long, short)
                keys.append((shortened, True))
                plain = shortened.replace("医学院", "").replace("附属", "")
                if plain != shortened:
                    keys.append((plain, True))
                break
        return keys

    def _sound_key(self, tokens: Iterable[str]) -> str:
        """One character per syllable (homophones share it); non-Chinese characters stay as they are."""
        codes = self._syllable_codes
        return "".join(
            token[1:] if token.startswith(_NON_HAN) else codes.get(token, _UNKNOWN_SYLLABLE) for token in tokens
        )

    def _generic_mask(self, key: str, sound: str, numerals: bool = False) -> str:
        """One letter per character of ``key``: "g" inside a generic word (by text, or by sound where the text
        found none: 肿留 is 肿瘤 mistyped), else "d"; with ``numerals``, "n" for a numeral."""
        mask = ["d"] * len(key)
        spans = [m.span() for m in _GENERIC_RE.finditer(key)]
        if len(sound) == len(key):
            blanked = list(sound)
            for start, end in spans:
                blanked[start:end] = " " * (end - start)
            spans.extend(m.span() for m in self._generic_sound_re.finditer("".join(blanked)))
        for start, end in spans:
            mask[start:end] = "g" * (end - start)
        if numerals:
            for pos, ch in enumerate(key):
                if ch in _NUMERALS:
                    mask[pos] = "n"
        return "".join(mask)

    def __len__(self) -> int:
        """Number of customers in the directory."""
        return len(self._entries)

    def match(self, query: str, limit: int = MAX_CHOICES) -> MatchResult:
        """Resolve ``query``; ``limit`` caps ambiguous candidates (2..MAX_CHOICES) and suggestions (<= 3)."""
        if limit < 1:
            raise ValueError("limit must be >= 1")
        q = normalize(query)
        if not q:
            return MatchResult("none", ())
        ascii_query = not _has_non_ascii(q)
        cap = max(2, min(limit, MAX_CHOICES))

        # 1. Exact normalized name/alias; ASCII queries then exact full pinyin, then exact initials.
        hits = self._exact(q, ascii_query)
        if hits:
            return self._decide_set(hits, "exact", cap)
        if ascii_query:
            return self._match_latin(q, query, cap, limit)
        q_cn = _LONE_DIGIT_RE.sub(lambda digit: _CHINESE_DIGITS[int(digit.group())], q)
        if q_cn != q:  # reps type 浙大1院; names spell numbers in Chinese
            q = q_cn
            hits = self._exact(q, ascii_query)
            if hits:
                return self._decide_set(hits, "unique", cap)
        return self._match_chinese(q, cap, limit)

    def _match_chinese(self, q: str, cap: int, limit: int) -> MatchResult:
        """Pool the set-based stages, keep the candidates that share the query's distinctive part, decide by tier
        and margin; rapidfuzz only when no stage found anything."""
        sound = self._sound_key(_pinyin_keys(q)[2])
        mask = self._generic_mask(q, sound)
        distinct = [code for code, kind in zip(sound, mask, strict=False) if kind == "d"]
        runs = [run for run in "".join(c if k == "d" else " " for c, k in zip(sound, mask, strict=False)).split()]
        support = _Support(distinct, _pairs(runs), frozenset(_numerals(q)), self._generic_codes)
        # The query without its generic ending, unless that cuts a word (金华市中医院 → 金华市中医, not 金华市中).
        ending = [m for m in _GENERIC_RE.finditer(q) if m.end() == len(q)]
        core = q[: ending[0].start()] if ending and ending[0].group() in ("医院", "院") else ""
        core = core if len(core) >= _MIN_SUBSTRING_LEN else ""
        hits: _Hits = {}
        if core:  # 浙二医院 → 浙二
            for owner, hit in self._text.exact_hits(core, _CORE_EXACT_SCORE).items():
                _keep_best(hits, owner, *hit)
        for owner in self._cores.get(q, ()):  # 省中医 → 省中医院
            _keep_best(hits, owner, _CORE_EXACT_SCORE, q)
        # Same pronunciation (邵一夫), or the same characters in another order (州温中医院): unless the numerals
        # differ (浙大医院 is not 浙大一院, 杭儿 not 杭二).
        wanted_numerals = support.numerals
        for keys, needle, score in (
            (self._sounds, sound, _SOUNDS_LIKE_SCORE),
            (self._anagrams, "".join(sorted(sound)), _ANAGRAM_SCORE),
        ):
            for idx in keys.exact.get(needle, ()):
                if _numerals(normalize(keys.labels[idx])) == wanted_numerals:
                    _keep_best(hits, keys.owners[idx], score, keys.labels[idx])
        # Only generic words (人民医院, 第三医院): an alias of them (省肿留 → 省肿瘤), or no hospital in particular.
        if not distinct:
            return self._decide_pooled(hits, cap) if hits else MatchResult("none", ())

        self._text.substring_hits(q, _CHINESE_SUBSTRING_SCORE, _WIDE_SUBSTRING, hits, coverage_bonus=0.0)
        if core:  # 浙大医院: every 浙大… hospital, below what the whole query finds
            self._text.substring_hits(core, _CORE_SUBSTRING_SCORE, _WIDE_SUBSTRING, hits, coverage_bonus=0.0)
        # In order inside a key: by sound from 3 characters on (杭州一远, 浙打附二; a text match is one too), by
        # text for two (邵医: 绍…医 by sound is everywhere). One regex per query: compiling it is most of the cost.
        if len(q) >= _MIN_SOUND_SUBSEQUENCE_LEN:
            subsequence = self._subsequence(self._sounds, self._sound_mask, self._sound_text, sound, q)
        elif len(q) >= _MIN_SUBSTRING_LEN:
            subsequence = self._subsequence(self._text, self._text_mask, self._text.haystack, q, q)
        else:
            subsequence = {}
        for owner, hit in subsequence.items():
            _keep_best(hits, owner, *hit)
        hits = {
            owner: hit for owner, hit in hits.items() if hit[0] >= _CORE_EXACT_SCORE or self._supports(support, owner)
        }
        if hits:
            return self._decide_pooled(hits, cap)
        fuzzy = {
            owner: (hit[0] + (_NUMERAL_BONUS if support.numerals & self._numerals[owner] else 0.0), hit[1])
            for owner, hit in self._fuzzy(q, False, sound).items()
            if self._supports(support, owner)
        }
        result = self._decide_fuzzy(fuzzy, cap, limit)
        if result.status == "none":  # a suggestion must share two distinctive syllables in a row, not one
            owner_of = self._owner_of
            kept = (c for c in result.candidates if self._supports(support, owner_of[c.entry.id], strong=True))
            return MatchResult("none", tuple(kept))
        return result

    def _supports(self, support: _Support, owner: int, strong: bool = False) -> bool:
        """Whether entry ``owner`` has the query's distinctive syllables (see :class:`_Support`)."""
        mine = self._codes[owner]
        shared = sum(1 for code in support.codes if code in mine)
        counted = sum(1 for code in support.codes if code in mine or code not in support.generic_codes)
        if not shared or shared < MIN_DISTINCTIVE_COVERAGE * counted:
            return False
        if support.numerals and self._numerals[owner] and support.numerals.isdisjoint(self._numerals[owner]):
            return False  # 浙江中医药大学附属第一医院 is not 第三医院
        if strong:  # two distinctive syllables side by side in one of its names (not 中…山 across 萧山区中医院)
            return shared >= 2 and not support.pairs.isdisjoint(self._distinct_pairs[owner])
        return not support.pairs or not support.pairs.isdisjoint(self._code_pairs[owner])

    def _match_latin(self, q: str, query: str, cap: int, limit: int) -> MatchResult:
        """Pinyin, initials and English: the first stage that finds anything decides."""
        # 2. Inside full pinyin or at the start of initials (or inside an English alias).
        hits = self._substring(q, True, cap)
        if hits:
            return self._decide_set(hits, "unique", cap)
        # 3. An English query's glossary pinyin ("Zhejiang Provincial People's Hospital" → zhejiangshengrenminyiyuan).
        sounds_like = _english_to_pinyin(query)
        if sounds_like:
            hits = self._pinyin.exact_hits(sounds_like, _LATIN_SOUNDS_LIKE_SCORE)
            if hits:
                return self._decide_set(hits, "unique", cap)
        # 4. Typos: rapidfuzz scores with thresholds and a margin.
        return self._decide_fuzzy(self._fuzzy(q, True, sounds_like), cap, limit)

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

    def _subsequence(self, keys: _KeySet, mask: str, text: str, needle: str, q: str) -> _Hits:
        """All characters of ``needle`` appear in order inside one key (the Chinese abbreviation habit).

        ``keys`` are the text keys (``needle`` is the query) or the sound keys (``needle`` is its sound key);
        ``mask`` and ``text`` run along the haystack: g/d/n per character (generic, distinctive, numeral) and the
        text behind it. A skipped character costs 1 (generic), 3 (distinctive) or 5 (a numeral: 第三 in
        温州市第三人民医院 for 温州人医); a generic word of the query the key lacks costs 5 (中医院 → 中心医院).
        Matched through another character of the same sound costs 1 more, and the matched characters must then
        name the query's numerals (浙大医院 is not 浙大一院)."""
        gap = f"[^{_SEP}]*?"
        pattern = re.compile(gap.join(re.escape(ch) for ch in needle))  # no groups: compiling them costs more
        words = [m.group() for m in _GENERIC_RE.finditer(q) if len(m.group()) > 1]
        wanted = _numerals(q)
        hits: _Hits = {}
        last_idx = -1
        scanned = 0
        haystack = keys.haystack
        for found in pattern.finditer(haystack):
            idx = keys.key_at(found.start())
            if idx == last_idx:
                continue
            last_idx = idx
            scanned += 1
            if scanned > _SCAN_CAP:
                break
            key_start = keys.start_of(idx)
            key_end = key_start + len(keys.keys[idx])
            matched = _in_order(text, q, key_start, key_end)  # the same characters, where the key has them
            penalty = 0.0
            if matched is None:  # only by sound: the lazy gaps took the earliest of each, find() gives the same
                matched = _in_order(haystack, needle, found.start(), found.end())
                if matched is None or {text[p] for p in matched if text[p] in _NUMERALS} != wanted:
                    continue
                penalty = 1.0
            start, end = matched[0], matched[-1] + 1
            in_mask = [mask[pos] for pos in matched]
            skipped_d = mask.count("d", start, end) - in_mask.count("d")
            skipped_n = mask.count("n", start, end) - in_mask.count("n")
            skipped_g = end - start - len(needle) - skipped_d - skipped_n
            key_text = text[key_start:key_end]
            lacking = sum(1 for word in words if word not in key_text)
            cost = skipped_g + 3.0 * skipped_d + 5.0 * skipped_n + 5.0 * lacking + penalty
            _keep_best(hits, keys.owners[idx], max(_SUBSEQUENCE_FLOOR, _SUBSEQUENCE_TOP - cost), keys.labels[idx])
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

    def _decide_pooled(self, hits: _Hits, cap: int) -> MatchResult:
        """Pooled set-based hits: the best resolves unless others are within SET_MARGIN; then all those are asked,
        best first and in directory order within a score."""
        ranked = self._ranked(hits)
        close = [c for c in ranked if c.score > ranked[0].score - SET_MARGIN]
        if len(close) == 1:
            return MatchResult("unique", (close[0],))
        return MatchResult("ambiguous", tuple(close[:cap]))

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
    "GENERIC_WORDS",
    "MAX_CHOICES",
    "UNIVERSITY_SHORT_NAMES",
    "Candidate",
    "CustomerEntry",
    "CustomerMatcher",
    "MatchResult",
    "MatchStatus",
    "normalize",
]
