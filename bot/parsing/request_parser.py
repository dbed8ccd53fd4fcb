"""Parse a one-line support request ("跟台 浙一 骨科 2026-12-03 器械:脊柱A包 备注:王主任主刀").

Same conventions as visit lines: ``key:value`` pairs in any order (Chinese or ASCII colons, full-width folded),
positional tokens before the first key. Pure code: the request type's fields and today's date are passed in.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, time, timedelta

from bot.config import RequestFieldConfig, RequestTypeConfig
from bot.parsing.when import normalise, parse_date, parse_date_time

_KEY_RE = re.compile(r"(?:^|(?<=[\s,;、。:]))([^\W\d][\w-]*)\s*:")
_TOKEN_SEP_RE = re.compile(r"[\s,;、。]+")
_EDGE = " \t\r\n,;、。"
_BARE_WEEKDAY_RE = re.compile(
    r"(?:周|星期|礼拜)[一二三四五六日天1-7]|(?:mon|tues?|wed(?:nes)?|thu(?:rs)?|fri|sat(?:ur)?|sun)(?:day)?\.?",
    re.IGNORECASE,
)
_WARD_SUFFIXES = ("科", "室", "中心", "部", "病区", "门诊", "病房", "急诊")


@dataclass(frozen=True)
class RequestIssue:
    """A problem found while parsing; ``field`` is None when the key itself is unknown."""

    field: str | None
    # unknown_key | empty_value | bad_date | past_date | time_without_date | bad_choice | too_long | duplicate_key
    code: str
    value: str
    # The day the value was checked against (``past_date``: the message names today, not the date refused).
    today: str = ""


@dataclass
class ParsedRequest:
    """Raw field values found in a line (customer and ward still need the directory), and the problems."""

    values: dict[str, str] = field(default_factory=dict)
    # Positional tokens not yet placed: the caller decides (after resolving the customer) which is the ward.
    loose: list[str] = field(default_factory=list)
    issues: list[RequestIssue] = field(default_factory=list)


def _fold(text: str) -> str:
    return " ".join(normalise(text).casefold().split())


def key_index(rt: RequestTypeConfig) -> dict[str, str]:
    """Every word that names a field (key, labels, aliases), folded → field key."""
    index: dict[str, str] = {}
    for f in rt.fields:
        for word in (f.key, f.label_zh, f.label_en, *f.aliases):
            index.setdefault(_fold(word).replace(" ", "_"), f.key)
    return index


def field_by_key(rt: RequestTypeConfig, key: str) -> RequestFieldConfig | None:
    return next((f for f in rt.fields if f.key == key), None)


def parse_future_date(text: str, today: date) -> date | None:
    """A date that leans to the future: a bare weekday (周三) means the coming one, not the last one."""
    day = parse_date(text, today)
    if day is not None and day < today and _BARE_WEEKDAY_RE.fullmatch(normalise(text).strip()):
        later = parse_date(text, today + timedelta(days=6))
        if later is not None and later >= today:
            return later
    return day


def _parse_day_time(text: str, today: date) -> tuple[date | None, time | None] | None:
    """A date with an optional time of day, leaning to the future like ``parse_future_date`` (周三 8:00)."""
    found = parse_date_time(text, today)
    if found is None or found[0] is None or found[0] >= today:
        return found
    if _BARE_WEEKDAY_RE.match(normalise(text).strip()):
        later = parse_date_time(text, today + timedelta(days=6))
        if later is not None and later[0] is not None and later[0] >= today:
            return later
    return found


def split_day_time(value: str) -> tuple[str, str]:
    """A stored date value ``2026-12-05 08:00`` as (``2026-12-05``, ``08:00``); the time is empty when none."""
    day, _, hhmm = value.strip().partition(" ")
    return day, hhmm.strip()


def parse_value(f: RequestFieldConfig, raw: str, today: date) -> tuple[str | None, RequestIssue | None]:
    """Validate one field's value; dates come back as ISO yyyy-mm-dd (``yyyy-mm-dd HH:MM`` with a time of day, for
    the field that takes one), choices as the configured choice."""
    text = " ".join(normalise(raw).split()).strip(_EDGE)
    if not text:
        return None, RequestIssue(f.key, "empty_value", raw.strip())
    if f.type == "date":
        clock: time | None = None
        if f.time_of_day:
            found = _parse_day_time(text, today)
            if found is not None and found[0] is None:
                return None, RequestIssue(f.key, "time_without_date", text)
            day, clock = found if found is not None else (None, None)
        else:
            day = parse_future_date(text, today)
        if day is None:
            return None, RequestIssue(f.key, "bad_date", text)
        if f.not_before_today and day < today:
            return None, RequestIssue(f.key, "past_date", day.isoformat(), today.isoformat())
        return (f"{day.isoformat()} {clock:%H:%M}" if clock is not None else day.isoformat()), None
    if f.type == "choice":
        wanted = _fold(text)
        choice = next((c for c in f.choices if _fold(c) == wanted), None)
        if choice is None:
            return None, RequestIssue(f.key, "bad_choice", text)
        return choice, None
    if len(text) > f.max_length:
        return None, RequestIssue(f.key, "too_long", str(f.max_length))
    return text, None


def looks_like_ward(token: str) -> bool:
    return token.endswith(_WARD_SUFFIXES)


def _find_keys(body: str, index: dict[str, str]) -> list[tuple[int, int, str]]:
    found: list[tuple[int, int, str]] = []
    for m in _KEY_RE.finditer(body):
        key, start = m.group(1), m.start(1)
        # A label of two words ("Surgery date:") names its field as a whole.
        before = re.search(r"([^\W\d]+)\s+$", body[:start])
        if before is not None and _fold(f"{before.group(1)} {key}").replace(" ", "_") in index:
            start, key = before.start(1), body[before.start(1) : m.end(1)]
        elif _fold(key) not in index:
            # A known key glued to the previous value ("脊柱A包备注:…") is split off.
            for alias in sorted(index, key=len, reverse=True):
                if len(key) > len(alias) and _fold(key).endswith(alias) and not alias.isascii():
                    start, key = m.end(1) - len(alias), key[-len(alias) :]
                    break
        found.append((start, m.end(), key))
    return found


def parse_request_line(rt: RequestTypeConfig, body: str, today: date) -> ParsedRequest:
    """Parse the text after the keyword (never raises).

    Positional tokens: a date fills the first empty date field; the first other token is the customer; the rest
    stay ``loose`` for the caller, who knows the customer's wards (``place_loose``). ``key:value`` pairs fill the
    field they name; a value runs until the next key.
    """
    parsed = ParsedRequest()
    body = normalise(body)
    index = key_index(rt)
    keys = _find_keys(body, index)
    head = body[: keys[0][0]] if keys else body
    dates = [f for f in rt.fields if f.type == "date"]
    tokens = [t for t in _TOKEN_SEP_RE.split(head) if t]
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        empty_date = next((f for f in dates if f.key not in parsed.values), None)
        if empty_date is not None and parse_future_date(token, today) is not None:
            if empty_date.time_of_day:
                # The time of day may follow in the next words (后天 8:00, 12-05 上午, 后天 下午 2 点).
                for j in range(min(len(tokens), i + 3), i, -1):
                    tail = parse_date_time(" ".join(tokens[i:j]), today)
                    joined = " ".join(tokens[i - 1 : j])
                    if tail is not None and tail[0] is None and _parse_day_time(joined, today) is not None:
                        token, i = joined, j
                        break
            value, issue = parse_value(empty_date, token, today)
            if issue is not None:
                parsed.issues.append(issue)
                parsed.values.setdefault(empty_date.key, "")  # the date was given, if wrong: don't reuse the slot
            elif value is not None:
                parsed.values[empty_date.key] = value
        elif "customer" not in parsed.values:
            parsed.values["customer"] = token
        else:
            parsed.loose.append(token)
    for i, (_, value_start, key) in enumerate(keys):
        value_end = keys[i + 1][0] if i + 1 < len(keys) else len(body)
        raw = body[value_start:value_end].strip(_EDGE)
        name = index.get(_fold(key).replace(" ", "_"))
        if name is None:
            parsed.issues.append(RequestIssue(None, "unknown_key", key))
            continue
        f = field_by_key(rt, name)
        assert f is not None
        if parsed.values.get(name):
            parsed.issues.append(RequestIssue(name, "duplicate_key", raw))
        if f.type in ("customer", "ward"):
            parsed.values[name] = " ".join(raw.split())
            continue
        value, issue = parse_value(f, raw, today)
        if issue is not None:
            parsed.issues.append(issue)
        elif value is not None:
            parsed.values[name] = value
    parsed.values = {k: v for k, v in parsed.values.items() if v}
    return parsed


def place_loose(
    rt: RequestTypeConfig, parsed: ParsedRequest, is_ward: Sequence[str] | None, today: date
) -> list[RequestIssue]:
    """Put the loose tokens into fields: a ward of the customer (``is_ward`` = its wards) or a word ending in 科/室
    fills the ward; then each token fills the next empty required choice it matches, else the next empty required
    text field; words beyond those join the last text field filled this way (optional fields need their key)."""
    issues: list[RequestIssue] = []
    placed: list[str] = []
    has_ward = any(f.key == "ward" for f in rt.fields)
    for token in parsed.loose:
        if has_ward and "ward" not in parsed.values and (looks_like_ward(token) or (is_ward and token in is_ward)):
            parsed.values["ward"] = token
            continue
        target = next(
            (
                f
                for f in rt.fields
                if f.key not in parsed.values
                and f.required
                and (f.type == "text" or (f.type == "choice" and _fold(token) in {_fold(c) for c in f.choices}))
            ),
            None,
        )
        if target is None:
            if placed:
                # A kit name with a space ("脊柱 A包") is one value.
                parsed.values[placed[-1]] = f"{parsed.values[placed[-1]]} {token}"
            else:
                issues.append(RequestIssue(None, "extra_word", token))
            continue
        value, issue = parse_value(target, token, today)
        if issue is not None:
            issues.append(issue)
        elif value is not None:
            parsed.values[target.key] = value
            if target.type == "text":
                placed.append(target.key)
    parsed.loose = []
    return issues
