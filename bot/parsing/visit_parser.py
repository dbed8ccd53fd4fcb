"""Parse a one-line hospital visit log ("拜访 浙一 骨科 张主任 主题:脊柱耗材新品 异议:价格").

Pure code: the current moment and the configured objection set are passed in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from bot.config import VISIT_FIELDS
from bot.infra import i18n
from bot.parsing.when import normalise, parse_when

__all__ = [
    "KEYWORDS",
    "KEY_ALIASES",
    "VISIT_FIELDS",
    "Objection",
    "ParseIssue",
    "ParsedVisit",
    "VisitNotes",
    "other_objection",
    "parse_field_value",
    "parse_objection",
    "parse_visit_line",
    "resolve_key",
    "strip_keyword",
]

KEYWORDS = ("拜访", "visit")

_LIST_FIELDS = frozenset({"contacts", "products"})

KEY_ALIASES: dict[str, tuple[str, ...]] = {
    "customer": ("客户", "医院", "客户名称", "customer", "hospital", "account"),
    "ward": ("科室", "ward", "dept", "department"),
    "contacts": ("联系人", "对象", "拜访对象", "contact", "contacts"),
    "topics": ("主题", "话题", "内容", "沟通内容", "拜访内容", "拜访主题", "topic", "topics", "subject"),
    "products": ("产品", "product", "products"),
    "objection": ("异议", "objection", "objections"),
    "commitments": ("承诺", "commitment", "commitments"),
    "next_step": ("下一步", "后续", "下步", "next", "next_step", "nextstep", "followup", "follow_up"),
    "attitude": ("态度", "客户态度", "attitude"),
    "visited_at": ("时间", "日期", "拜访时间", "拜访日期", "time", "when", "date"),
}


# The labels the confirmation card shows (both languages) name their field too: what a card shows is a key.
def _labels(name: str) -> tuple[str, ...]:
    return tuple(i18n.t(locale, f"field.{name}") for locale in (i18n.ZH, i18n.EN))


_KEYS: dict[str, str] = {
    " ".join(normalise(word).casefold().split()).replace("-", "_"): name
    for name, aliases in KEY_ALIASES.items()
    for word in (*aliases, *_labels(name))
}
# Longest first so "客户态度" is found as a suffix before "态度".
_KEYS_BY_LENGTH = sorted(_KEYS, key=len, reverse=True)

_CONTACT_TITLES = tuple(
    sorted(
        (
            "主任",
            "副主任",
            "主任医师",
            "医生",
            "医师",
            "大夫",
            "院长",
            "副院长",
            "书记",
            "护士长",
            "护士",
            "科长",
            "处长",
            "部长",
            "主管",
            "总监",
            "教授",
            "老师",
            "经理",
            "药师",
            "技师",
            "工程师",
        ),
        key=len,
        reverse=True,
    )
)
_HONORIFIC_RE = re.compile(r"(?:dr|prof|mr|mrs|ms)(?:\.\s*|\s+)\S", re.IGNORECASE)
_HONORIFICS = frozenset({"dr", "dr.", "prof", "prof.", "mr", "mr.", "mrs", "mrs.", "ms", "ms."})
_CUSTOMER_SUFFIXES = ("医院", "院", "卫生服务中心", "医学中心", "医疗中心", "疾控中心", "诊所")
_WARD_SUFFIXES = ("科", "室", "中心", "部", "病区", "门诊", "病房", "急诊")
_WARD_WORDS = frozenset(
    {
        "icu",
        "ccu",
        "nicu",
        "picu",
        "eicu",
        "sicu",
        "er",
        "lab",
        "laboratory",
        "orthopedics",
        "orthopaedics",
        "surgery",
        "pharmacy",
        "emergency",
        "pediatrics",
        "paediatrics",
        "obstetrics",
    }
)

# A key is a run of letters (CJK or Latin, no digits so "下午3:00" is never a key) that starts a token or
# directly follows another key's colon, then optional spaces and ":".
_KEY_RE = re.compile(r"(?:^|(?<=[\s,;、。:]))([^\W\d](?:[^\W\d]|-)*)\s*:")
_TOKEN_SEP_RE = re.compile(r"[\s,;、。]+")
# Separators of a list value (after NFKC, "，；" are ",;"). Spaces are not among them: "张 主任", "Dr. Wang Li" and
# "欧阳 娜娜" are one person each (see _split_contact for the words 和 / 及 / and, and docs/visits.md).
_LIST_SEP_RE = re.compile(r"[、,;/+&]")
_AND_RE = re.compile(r"和|及|\s+and\s+", re.IGNORECASE)
_CJK_GAP_RE = re.compile(r"(?<=[\u3400-\u9fff\uf900-\ufaff])\s+(?=[\u3400-\u9fff\uf900-\ufaff])")
# Between an objection word and its note: "其他 医院在走招标流程", "其他:…", "其他(…)", "其他，…".
_NOTE_SEP = " \t,;、。:(-—"
# The catch-all objection is the one named (or aliased) so; free text is stored under it with the text as its note.
_OTHER_WORDS = frozenset({"其他", "其它", "other", "others"})
# Not an objection at all: refused (the rep picks one) rather than stored as 其他（无）.
_NO_OBJECTION_WORDS = frozenset({"无", "没有", "暂无", "none", "no", "n/a", "-"})
_EDGE_CHARS = " \t\r\n,;、。"
_MAX_WHEN_TOKENS = 4
_INSTITUTION_WORDS = frozenset({"hospital", "clinic"})
_LATIN_WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9'.&-]*")


@dataclass(frozen=True)
class ParseIssue:
    """A problem found while parsing; `field` is None when the key itself is unknown."""

    field: str | None
    code: str
    value: str


class Objection(NamedTuple):
    """An objection as parsed: its canonical name (what statistics count) and what the rep said about it."""

    name: str
    note: str | None = None


@dataclass(kw_only=True)
class VisitNotes:
    """The visit's fields that are plain text or lists of it, alike in a parsed line and in a draft (the hospital
    and the time are not: raw text and a datetime there, resolved and JSON-safe here). Keyword-only, here and in
    the subclasses: a subclass's own fields come after these."""

    ward: str | None = None
    contacts: list[str] = field(default_factory=list)
    topics: str | None = None
    products: list[str] = field(default_factory=list)
    objection: str | None = None
    # What the rep said about the objection ("医院在走招标流程" for 其他), shown as 其他（医院在走招标流程）.
    objection_note: str | None = None
    commitments: str | None = None
    next_step: str | None = None
    attitude: str | None = None


@dataclass(kw_only=True)
class ParsedVisit(VisitNotes):
    """Fields recognised in a visit line; customer/ward are raw text, objection is canonical."""

    customer: str | None = None
    visited_at: datetime | None = None
    issues: list[ParseIssue] = field(default_factory=list)

    def present(self) -> set[str]:
        """Names of the fields that hold a value."""
        return {name for name in VISIT_FIELDS if getattr(self, name) not in (None, [])}


def _fold(text: str) -> str:
    return " ".join(normalise(text).casefold().split())


def _clean(text: str) -> str:
    return " ".join(text.split()).strip(_EDGE_CHARS)


def _is_cjk(char: str) -> bool:
    return "\u3400" <= char <= "\u9fff" or "\uf900" <= char <= "\ufaff"


def strip_keyword(text: str) -> tuple[bool, str]:
    """Remove a leading command keyword; returns (had_keyword, NFKC-normalised rest).

    "visit" must be a whole word ("visitor" is not a keyword); "拜访" may be glued to what follows
    ("拜访浙一"), since Chinese has no word spacing.
    """
    norm = normalise(text)
    for keyword in KEYWORDS:
        if norm[: len(keyword)].casefold() != keyword:
            continue
        rest = norm[len(keyword) :]
        if keyword.isascii() and rest and (rest[0].isascii() and (rest[0].isalnum() or rest[0] in "_-")):
            continue
        return True, rest.lstrip(_EDGE_CHARS + ":")
    return False, norm


def resolve_key(key: str) -> str | None:
    """Map a zh/en key ("异议", "Next", "next-step") to its field name, or None if unknown."""
    return _KEYS.get(_fold(key).replace("-", "_"))


def _is_contact(token: str) -> bool:
    return token.endswith(_CONTACT_TITLES) or _HONORIFIC_RE.match(token) is not None


def _is_customer(token: str) -> bool:
    folded = token.casefold()
    return token.endswith(_CUSTOMER_SUFFIXES) or "hospital" in folded or "clinic" in folded


def _is_ward(token: str) -> bool:
    folded = token.casefold()
    return token.endswith(_WARD_SUFFIXES) or folded in _WARD_WORDS or folded.endswith("ology")


def _dedupe(items: list[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for item in items:
        key = item.casefold()
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _is_titled_name(token: str) -> bool:
    """A whole person on its own: a name with a title (张主任, not the bare 主任) or an honorific with a name."""
    if _HONORIFIC_RE.match(token) is not None:
        return True
    return any(token.endswith(title) and len(token) > len(title) for title in _CONTACT_TITLES)


def _tidy_name(name: str) -> str:
    """One person's name: spaces between Chinese characters dropped (张 主任 → 张主任), Latin words kept apart."""
    return _CJK_GAP_RE.sub("", " ".join(name.split()))


def _split_contact(item: str) -> list[str]:
    """One item of a contact list (already split at 、,;/+&) into people. The words 和 / 及 / and separate when
    every piece is a person by itself (titled, or at least two characters: 张三和李四, not 张和平); spaces separate
    only titled people (张主任 李医生), never the parts of one name (张 主任, Dr. Wang Li, 欧阳 娜娜)."""
    pieces = [p.strip() for p in _AND_RE.split(item)]
    if len(pieces) > 1 and all(_is_titled_name(p) or len(p) >= 2 for p in pieces):
        return [name for p in pieces for name in _split_contact(p)]
    words = item.split()
    if len(words) > 1 and all(_is_titled_name(w) for w in words):
        return words
    return [_tidy_name(item)]


def _split_list(value: str, contacts: bool) -> list[str]:
    items: list[str] = []
    for raw in _LIST_SEP_RE.split(value):
        item = _clean(raw)
        if item:
            items.extend(_split_contact(item) if contacts else [item])
    return _dedupe(items)


def _match_objection(value: str, objections: Mapping[str, Sequence[str]]) -> str | None:
    wanted = _fold(value)
    for canonical, aliases in objections.items():
        if wanted == _fold(canonical) or any(wanted == _fold(alias) for alias in aliases):
            return canonical
    return None


def other_objection(objections: Mapping[str, Sequence[str]]) -> str | None:
    """The configured catch-all objection (named or aliased 其他 / 其它 / other), or None when there is none."""
    for canonical, aliases in objections.items():
        if any(_fold(word) in _OTHER_WORDS for word in (canonical, *aliases)):
            return canonical
    return None


def _note(text: str) -> str | None:
    note = text.strip(_NOTE_SEP + ")")
    return note or None


def parse_objection(text: str, objections: Mapping[str, Sequence[str]]) -> Objection | None:
    """An objection with what the rep said about it: a configured word alone (价格, price, 贵); a word then a note
    (其他 医院在走招标流程, 价格：比竞品贵, 其他(…); a word of two characters or more may be run into its note:
    价格太高); any other text is the catch-all's note (医院在走招标流程 → 其他, note). None when the text is no
    objection (无, none) or there is no catch-all to hold free text."""
    text = _clean(normalise(text))
    canonical = _match_objection(text, objections)
    if canonical is not None:
        return Objection(canonical)
    if _fold(text) in _NO_OBJECTION_WORDS:
        return None
    folded = text.casefold()
    words = [(word, c) for c, aliases in objections.items() for word in (c, *aliases)]
    words.sort(key=lambda w: len(w[0]), reverse=True)
    for word, canonical in words:
        head = word.casefold()
        if not head or not folded.startswith(head) or len(text) == len(head):
            continue
        rest = text[len(head) :]
        glued_ok = len(head) >= 2 and _is_cjk(head[-1]) and _is_cjk(rest[0])
        if rest[0] in _NOTE_SEP or glued_ok:
            return Objection(canonical, _note(rest))
    other = other_objection(objections)
    return Objection(other, text) if other is not None else None


def parse_field_value(
    field: str, value: str, now: datetime, objections: Mapping[str, Sequence[str]]
) -> tuple[object | None, ParseIssue | None]:
    """Parse one field's answer (also used by the guided dialog); returns (value, issue).

    Lists come back as list[str], visited_at as datetime, objection as an ``Objection`` (canonical name, note).
    Raises ValueError for a field name not in VISIT_FIELDS.
    """
    if field not in VISIT_FIELDS:
        raise ValueError(f"unknown visit field: {field!r}")
    text = _clean(normalise(value))
    if not text:
        return None, ParseIssue(field, "empty_value", value.strip())
    if field == "visited_at":
        when = parse_when(text, now)
        return (when, None) if when is not None else (None, ParseIssue(field, "bad_time", text))
    if field == "objection":
        objection = parse_objection(text, objections)
        if objection is None:
            return None, ParseIssue(field, "bad_objection", text)
        return objection, None
    if field in _LIST_FIELDS:
        items = _split_list(text, contacts=field == "contacts")
        return (items, None) if items else (None, ParseIssue(field, "empty_value", text))
    return text, None


def _find_keys(body: str) -> list[tuple[int, int, str]]:
    """Locate `key:` markers as (key start, value start, key text)."""
    found: list[tuple[int, int, str]] = []
    for m in _KEY_RE.finditer(body):
        key, start = m.group(1), m.start(1)
        # A label of two words ("Next step:", "Visit time:") names its field as a whole.
        before = re.search(r"([^\W\d]+)\s+$", body[:start])
        if before is not None and resolve_key(f"{before.group(1)} {key}") is not None:
            start, key = before.start(1), body[before.start(1) : m.end(1)]
        elif resolve_key(key) is None:
            # A key glued to the previous value ("价格下一步:送样") is split off; a Latin key only
            # when it follows CJK, so "xnext" stays one unknown word.
            for alias in _KEYS_BY_LENGTH:
                if len(key) > len(alias) and key.casefold().endswith(alias):
                    glued = key[-len(alias) - 1]
                    if not alias.isascii() or _is_cjk(glued):
                        start, key = m.end(1) - len(alias), key[-len(alias) :]
                        break
        found.append((start, m.end(), key))
    return found


def _positional_tokens(region: str) -> list[str]:
    tokens = [t for t in _TOKEN_SEP_RE.split(region) if t]
    merged: list[str] = []
    i = 0
    while i < len(tokens):
        if tokens[i].casefold() in _HONORIFICS and i + 1 < len(tokens):
            merged.append(f"{tokens[i]} {tokens[i + 1]}")
            i += 2
        else:
            merged.append(tokens[i])
            i += 1
    return merged


def _join_english_names(tokens: list[str], now: datetime) -> list[str]:
    """Glue "Ruijin Hospital" / "Zhejiang University First Hospital" back into one token."""
    out: list[str] = []
    for token in tokens:
        if token.casefold() in _INSTITUTION_WORDS:
            start = len(out)
            while start > 0 and _is_name_word(out[start - 1], now):
                start -= 1
            if start < len(out):
                out[start:] = [" ".join([*out[start:], token])]
                continue
        out.append(token)
    return out


def _is_name_word(token: str, now: datetime) -> bool:
    return (
        _LATIN_WORD_RE.fullmatch(token) is not None
        and not _is_contact(token)
        and not _is_ward(token)
        and parse_when(token, now) is None
    )


def _people(candidates: list[tuple[int, str]]) -> list[str]:
    """The contacts among the positional tokens, ``(position, token)`` in order. Tokens next to each other that are
    parts of one name are one person: a bare title after a name (张 主任), names without a title (欧阳 娜娜), Latin
    words after an honorific (Dr. Wang Li); titled people side by side stay apart (张主任 李医生)."""
    runs: list[tuple[int, str]] = []
    for at, token in candidates:
        if runs and runs[-1][0] == at - 1 and _continues_name(runs[-1][1], token):
            runs[-1] = (at, f"{runs[-1][1]} {token}")
        else:
            runs.append((at, token))
    return [person for _, run in runs for person in _split_list(run, contacts=True)]


def _continues_name(name: str, token: str) -> bool:
    if _HONORIFIC_RE.match(name) is not None:
        return name.isascii() and _LATIN_WORD_RE.fullmatch(token) is not None and not _is_contact(token)
    if _is_contact(name):
        return False  # 张主任 is a whole person already
    return token in _CONTACT_TITLES or not _is_contact(token)


def _parse_positional(region: str, now: datetime, visit: ParsedVisit) -> None:
    """Classify tokens before the first key (see parse_visit_line)."""
    tokens = _join_english_names(_positional_tokens(region), now)
    wards: list[str] = []
    customer_hints: list[tuple[int, str]] = []
    others: list[tuple[int, str]] = []
    people: list[tuple[int, str]] = []
    i = 0
    while i < len(tokens):
        # Greedy so "昨天 下午 3点" is one moment, not three.
        for j in range(min(len(tokens), i + _MAX_WHEN_TOKENS), i, -1):
            when = parse_when(" ".join(tokens[i:j]), now)
            if when is not None:
                if visit.visited_at is not None:
                    visit.issues.append(ParseIssue("visited_at", "duplicate_key", " ".join(tokens[i:j])))
                visit.visited_at = when
                i = j
                break
        else:
            token = tokens[i]
            if _is_contact(token):
                people.append((i, token))
            elif _is_customer(token):
                customer_hints.append((i, token))
            elif _is_ward(token):
                wards.append(token)
            else:
                others.append((i, token))
            i += 1
    if customer_hints:
        visit.customer = customer_hints[0][1]
        others = customer_hints[1:] + others
    if wards:
        visit.ward = " ".join(wards)
    for at, token in others:
        if visit.customer is None:
            visit.customer = token
        elif visit.ward is None:
            visit.ward = token
        else:
            people.append((at, token))
    visit.contacts = _dedupe(_people(sorted(people)))


def parse_visit_line(text: str, now: datetime, objections: Mapping[str, Sequence[str]]) -> ParsedVisit:
    """Parse "[拜访|visit] <positional tokens> key:value ..." into a ParsedVisit (never raises).

    A value runs until the next `key:`. Positional tokens: date/time → visited_at; titled name (张主任,
    Dr.Zhang) → contacts; hospital suffix (医院/院/医学中心) → customer; ward suffix or word (科/室/中心/
    部/病区/门诊, ICU, lab) → ward; remaining tokens in order → customer, then ward if empty, else contacts.
    A repeated field is reported as duplicate_key and the later value wins if it parses.
    """
    _, body = strip_keyword(text)
    visit = ParsedVisit()
    keys = _objection_words_are_values(body, _find_keys(body))
    _parse_positional(body[: keys[0][0]] if keys else body, now, visit)
    given = visit.present()
    for index, (_, value_start, key) in enumerate(keys):
        value_end = keys[index + 1][0] if index + 1 < len(keys) else len(body)
        raw = _clean(body[value_start:value_end])
        name = resolve_key(key)
        if name is None:
            visit.issues.append(ParseIssue(None, "unknown_key", key))
            continue
        if name in given:
            visit.issues.append(ParseIssue(name, "duplicate_key", raw))
        given.add(name)
        parsed, issue = parse_field_value(name, raw, now, objections)
        if issue is not None:
            visit.issues.append(issue)
        if isinstance(parsed, Objection):
            visit.objection, visit.objection_note = parsed
        elif parsed is not None:
            setattr(visit, name, parsed)
    return visit


def _objection_words_are_values(body: str, keys: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """``异议:其他:医院在走招标流程``: an unknown word with a colon right after the objection's key is the start of its
    value (the objection and its note), not a field of its own."""
    kept: list[tuple[int, int, str]] = []
    for key in keys:
        after_objection = bool(kept) and resolve_key(kept[-1][2]) == "objection"
        if after_objection and resolve_key(key[2]) is None and not body[kept[-1][1] : key[0]].strip():
            continue
        kept.append(key)
    return kept
