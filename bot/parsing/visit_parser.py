"""Parse a one-line hospital visit log ("拜访 浙一 骨科 张主任 主题:脊柱耗材新品 异议:价格").

Pure code: the current moment and the configured objection set are passed in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bot.config import VISIT_FIELDS
from bot.infra import i18n
from bot.parsing.when import normalise, parse_when

__all__ = [
    "KEYWORDS",
    "KEY_ALIASES",
    "VISIT_FIELDS",
    "ParseIssue",
    "ParsedVisit",
    "VisitNotes",
    "parse_field_value",
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
_LIST_SEP_RE = re.compile(r"[、,;/+&]")
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


def _split_contact(item: str) -> list[str]:
    # "和"/spaces also occur inside names and phrases, so only split when every piece is a titled name.
    for pieces in (item.split("和"), item.split()):
        if len(pieces) > 1 and all(p and _is_contact(p) for p in pieces):
            return pieces
    return [item]


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


def parse_field_value(
    field: str, value: str, now: datetime, objections: Mapping[str, Sequence[str]]
) -> tuple[object | None, ParseIssue | None]:
    """Parse one field's answer (also used by the guided dialog); returns (value, issue).

    Lists come back as list[str], visited_at as datetime, objection as its canonical name.
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
        canonical = _match_objection(text, objections)
        if canonical is None:
            return None, ParseIssue(field, "bad_objection", text)
        return canonical, None
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


def _parse_positional(region: str, now: datetime, visit: ParsedVisit) -> None:
    """Classify tokens before the first key (see parse_visit_line)."""
    tokens = _join_english_names(_positional_tokens(region), now)
    wards: list[str] = []
    customer_hints: list[str] = []
    others: list[str] = []
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
                visit.contacts.extend(_split_list(token, contacts=True))
            elif _is_customer(token):
                customer_hints.append(token)
            elif _is_ward(token):
                wards.append(token)
            else:
                others.append(token)
            i += 1
    if customer_hints:
        visit.customer = customer_hints[0]
        others = customer_hints[1:] + others
    if wards:
        visit.ward = " ".join(wards)
    for token in others:
        if visit.customer is None:
            visit.customer = token
        elif visit.ward is None:
            visit.ward = token
        else:
            visit.contacts.extend(_split_list(token, contacts=True))
    visit.contacts = _dedupe(visit.contacts)


def parse_visit_line(text: str, now: datetime, objections: Mapping[str, Sequence[str]]) -> ParsedVisit:
    """Parse "[拜访|visit] <positional tokens> key:value ..." into a ParsedVisit (never raises).

    A value runs until the next `key:`. Positional tokens: date/time → visited_at; titled name (张主任,
    Dr.Zhang) → contacts; hospital suffix (医院/院/医学中心) → customer; ward suffix or word (科/室/中心/
    部/病区/门诊, ICU, lab) → ward; remaining tokens in order → customer, then ward if empty, else contacts.
    A repeated field is reported as duplicate_key and the later value wins if it parses.
    """
    _, body = strip_keyword(text)
    visit = ParsedVisit()
    keys = _find_keys(body)
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
        if parsed is not None:
            setattr(visit, name, parsed)
    return visit
