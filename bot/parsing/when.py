"""Relative and absolute date/time parsing for zh-CN and English chat text.

Pure functions: the current moment is always passed in, never read from a clock.
A bare "3点" (no 上午/下午, no am/pm) with an hour of 1-6 is read as afternoon (working hours).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

__all__ = ["normalise", "parse_date", "parse_date_time", "parse_when"]

# Hour used when only a date (other than today) is given.
DEFAULT_HOUR = 10

# A year-less date resolves to the latest occurrence no later than this many days after today:
# visits are logged after the fact, but a near-future slip is kept so the caller can reject it
# explicitly instead of silently landing a year back.
_MONTH_DAY_LOOKAHEAD = 90
_DAY_ONLY_LOOKAHEAD = 7

DateSpec = Callable[[date], date | None]

_CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_NUM = r"(?:\d{1,2}|[零〇一二两三四五六七八九十]{1,3})"

_RELATIVE_DAYS = {
    "大前天": -3,
    "前天": -2,
    "昨天": -1,
    "昨日": -1,
    "yesterday": -1,
    "今天": 0,
    "今日": 0,
    "today": 0,
    "明天": 1,
    "明日": 1,
    "tomorrow": 1,
    "后天": 2,
    "大后天": 3,
}

# Words that carry both a day and a part of the day.
_COMPOUNDS = {
    "昨晚": (-1, "晚上"),
    "今早": (0, "早上"),
    "今晚": (0, "晚上"),
    "明早": (1, "早上"),
    "明晚": (1, "晚上"),
    "tonight": (0, "evening"),
    "last night": (-1, "evening"),
    "this morning": (0, "morning"),
    "this afternoon": (0, "afternoon"),
    "this evening": (0, "evening"),
}

# Part of day -> (default hour, how an explicit hour is shifted).
_PERIODS = {
    "早上": (8, "am"),
    "早晨": (8, "am"),
    "上午": (9, "am"),
    "morning": (9, "am"),
    "中午": (12, "noon"),
    "noon": (12, "noon"),
    "下午": (15, "pm"),
    "afternoon": (15, "pm"),
    "傍晚": (18, "pm"),
    "晚上": (19, "night"),
    "晚间": (19, "night"),
    "evening": (19, "night"),
}

_NOW_WORDS = frozenset({"现在", "刚才", "刚刚", "now", "just now", "right now"})

_CN_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "七": 6}
_EN_WEEKDAYS = {
    "monday": 0,
    "mon": 0,
    "tuesday": 1,
    "tues": 1,
    "tue": 1,
    "wednesday": 2,
    "wed": 2,
    "thursday": 3,
    "thurs": 3,
    "thur": 3,
    "thu": 3,
    "friday": 4,
    "fri": 4,
    "saturday": 5,
    "sat": 5,
    "sunday": 6,
    "sun": 6,
}
_CN_WEEK_OFFSETS = {"上上": -14, "上": -7, "本": 0, "这": 0, "下": 7, "下下": 14}


def _alternation(words: Iterable[str]) -> str:
    # Longest first so that e.g. "大前天" wins over "前天" and "sunday" over "sun".
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_SEP_RE = re.compile(r"\s+|,|(?:at|on)(?![a-z])|(?<=\d)t(?=\d)|左右|前后")
_YMD_RE = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})|(\d{4})年(\d{1,2})月(\d{1,2})[日号]?")
_COMPOUND_RE = re.compile(_alternation(_COMPOUNDS))
_RELATIVE_RE = re.compile(_alternation(_RELATIVE_DAYS))
_CN_WEEKDAY_RE = re.compile(r"(上上|下下|上|下|本|这)?个?(?:周|星期|礼拜)([一二三四五六日天七1-7])")
_EN_WEEKDAY_RE = re.compile(rf"(?:(last|this|next)\s+)?({_alternation(_EN_WEEKDAYS)})")
_CN_MONTH_DAY_RE = re.compile(rf"({_NUM})月({_NUM})[日号]?")
_MONTH_DAY_RE = re.compile(r"(\d{1,2})[-/](\d{1,2})")
_DAY_RE = re.compile(rf"({_NUM})[日号]")
_CLOCK_RE = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s*(am|pm|a\.m\.|p\.m\.))?")
_AMPM_RE = re.compile(r"(\d{1,2})\s*(am|pm|a\.m\.|p\.m\.)")
_DIAN_RE = re.compile(rf"({_NUM})(?:点钟?|时)(?:(半)|(一刻)|(三刻)|({_NUM})分?)?整?")
_PERIOD_RE = re.compile(_alternation(_PERIODS))


@dataclass
class _Clock:
    hour: int
    minute: int
    ampm: str | None  # "am" / "pm" when written explicitly
    dian: bool  # written as "3点" (no 24h colon form)


@dataclass
class _Parts:
    date: DateSpec | None = None
    period: str | None = None
    clock: _Clock | None = None


def normalise(text: str) -> str:
    """NFKC-normalise (full-width digits, colons, spaces) and trim."""
    return unicodedata.normalize("NFKC", text).replace("\u200b", "").strip()


def _cn_int(text: str) -> int | None:
    if text.isascii() and text.isdigit():
        return int(text)
    if "十" in text:
        left, _, right = text.partition("十")
        if len(left) > 1 or len(right) > 1 or left in ("零", "〇", "两"):
            return None
        tens = 1 if not left else _CN_DIGITS.get(left)
        ones = 0 if not right else _CN_DIGITS.get(right)
        if tens is None or ones is None:
            return None
        return tens * 10 + ones
    if len(text) == 1:
        return _CN_DIGITS.get(text)
    if len(text) == 2 and text[0] in "零〇":
        return _CN_DIGITS.get(text[1])
    return None


def _shift(day: date, days: int) -> date | None:
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return None


def _relative(days: int) -> DateSpec:
    return lambda today: _shift(today, days)


def _cn_weekday(prefix: str | None, weekday: int) -> DateSpec:
    def resolve(today: date) -> date | None:
        if prefix is None:
            return _shift(today, -((today.weekday() - weekday) % 7))
        # Chinese weeks run Monday..Sunday, so 上周三 is the Wednesday of the previous such week.
        return _shift(today, _CN_WEEK_OFFSETS[prefix] + weekday - today.weekday())

    return resolve


def _en_weekday(prefix: str | None, weekday: int) -> DateSpec:
    def resolve(today: date) -> date | None:
        if prefix == "last":
            return _shift(today, -((today.weekday() - weekday - 1) % 7 + 1))
        if prefix == "next":
            return _shift(today, (weekday - today.weekday() - 1) % 7 + 1)
        if prefix == "this":
            return _shift(today, weekday - today.weekday())
        return _shift(today, -((today.weekday() - weekday) % 7))

    return resolve


def _absolute(year: int, month: int, day: int) -> DateSpec:
    def resolve(_today: date) -> date | None:
        try:
            return date(year, month, day)
        except ValueError:
            return None

    return resolve


def _month_day(month: int, day: int) -> DateSpec:
    def resolve(today: date) -> date | None:
        if not (1 <= month <= 12 and 1 <= day <= 31):
            return None
        limit = _shift(today, _MONTH_DAY_LOOKAHEAD) or today
        # Five years back is enough to find a 29 February.
        for year in range(limit.year, limit.year - 5, -1):
            try:
                candidate = date(year, month, day)
            except ValueError:
                continue
            if candidate <= limit:
                return candidate
        return None

    return resolve


def _day_only(day: int) -> DateSpec:
    def resolve(today: date) -> date | None:
        if not 1 <= day <= 31:
            return None
        limit = _shift(today, _DAY_ONLY_LOOKAHEAD) or today
        year, month = limit.year, limit.month
        for _ in range(12):
            try:
                candidate = date(year, month, day)
            except ValueError:
                candidate = None
            if candidate is not None and candidate <= limit:
                return candidate
            year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        return None

    return resolve


def _ascii_boundary(text: str, end: int) -> bool:
    """False when a match ending in a Latin letter runs straight into another one ("sunny")."""
    if end >= len(text) or end == 0:
        return True
    return not (_latin_letter(text[end - 1]) and _latin_letter(text[end]))


def _latin_letter(char: str) -> bool:
    return char.isascii() and char.isalpha()


def _match_date(text: str, pos: int) -> tuple[int, DateSpec, str | None] | None:
    """Match one date token at pos; returns (end, spec, implied period)."""
    m = _YMD_RE.match(text, pos)
    if m:
        y, mo, d = (int(g) for g in (m.groups()[:3] if m.group(1) else m.groups()[3:]))
        return m.end(), _absolute(y, mo, d), None
    m = _COMPOUND_RE.match(text, pos)
    if m and _ascii_boundary(text, m.end()):
        days, period = _COMPOUNDS[m.group(0)]
        return m.end(), _relative(days), period
    m = _RELATIVE_RE.match(text, pos)
    if m and _ascii_boundary(text, m.end()):
        return m.end(), _relative(_RELATIVE_DAYS[m.group(0)]), None
    m = _CN_WEEKDAY_RE.match(text, pos)
    if m:
        raw = m.group(2)
        weekday = int(raw) - 1 if raw.isdigit() else _CN_WEEKDAYS[raw]
        return m.end(), _cn_weekday(m.group(1), weekday), None
    m = _EN_WEEKDAY_RE.match(text, pos)
    if m and _ascii_boundary(text, m.end()):
        return m.end(), _en_weekday(m.group(1), _EN_WEEKDAYS[m.group(2)]), None
    m = _CN_MONTH_DAY_RE.match(text, pos)
    if m:
        month, day = _cn_int(m.group(1)), _cn_int(m.group(2))
        if month is None or day is None:
            return None
        return m.end(), _month_day(month, day), None
    m = _MONTH_DAY_RE.match(text, pos)
    if m:
        return m.end(), _month_day(int(m.group(1)), int(m.group(2))), None
    m = _DAY_RE.match(text, pos)
    if m:
        day = _cn_int(m.group(1))
        if day is None:
            return None
        return m.end(), _day_only(day), None
    return None


def _ampm(raw: str | None) -> str | None:
    return None if raw is None else raw.replace(".", "")


def _match_clock(text: str, pos: int) -> tuple[int, _Clock] | None:
    m = _CLOCK_RE.match(text, pos)
    if m:
        if m.group(3) is not None and int(m.group(3)) > 59:
            return None
        return m.end(), _Clock(int(m.group(1)), int(m.group(2)), _ampm(m.group(4)), dian=False)
    m = _AMPM_RE.match(text, pos)
    if m:
        return m.end(), _Clock(int(m.group(1)), 0, _ampm(m.group(2)), dian=False)
    m = _DIAN_RE.match(text, pos)
    if m:
        hour = _cn_int(m.group(1))
        if m.group(2):
            minute: int | None = 30
        elif m.group(3):
            minute = 15
        elif m.group(4):
            minute = 45
        elif m.group(5):
            minute = _cn_int(m.group(5))
        else:
            minute = 0
        if hour is None or minute is None:
            return None
        return m.end(), _Clock(hour, minute, None, dian=True)
    return None


def _scan(text: str) -> _Parts | None:
    """Split text into at most one date, one part-of-day and one clock time; None if anything is left."""
    parts = _Parts()
    pos = 0
    while pos < len(text):
        sep = _SEP_RE.match(text, pos)
        if sep and sep.end() > pos and _ascii_boundary(text, sep.end()):
            pos = sep.end()
            continue
        matched_date = _match_date(text, pos)
        if matched_date is not None:
            end, spec, period = matched_date
            if parts.date is not None or (period is not None and parts.period is not None):
                return None
            parts.date, parts.period, pos = spec, period or parts.period, end
            continue
        matched_clock = _match_clock(text, pos)
        if matched_clock is not None:
            if parts.clock is not None:
                return None
            pos, parts.clock = matched_clock
            continue
        m = _PERIOD_RE.match(text, pos)
        if m and _ascii_boundary(text, m.end()):
            if parts.period is not None:
                return None
            parts.period, pos = m.group(0), m.end()
            continue
        return None
    return parts


def _resolve_clock(clock: _Clock, period: str | None) -> tuple[int, int] | None:
    hour, minute = clock.hour, clock.minute
    if clock.ampm is not None:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if clock.ampm == "pm" else 0)
    elif period is not None:
        kind = _PERIODS[period][1]
        if kind == "am" and hour > 12:
            return None
        if kind == "noon" and 1 <= hour <= 5:
            hour += 12
        if kind in ("pm", "night") and 1 <= hour < 12:
            hour += 12
        if kind == "night" and hour == 12:
            # "晚上12点" is midnight of the next day; too ambiguous to guess.
            return None
    elif clock.dian and 1 <= hour <= 6:
        # Bare "3点" in a working day means 15:00; nobody visits a hospital at 3 a.m.
        hour += 12
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None
    return hour, minute


def parse_when(text: str, now: datetime) -> datetime | None:
    """Parse a zh-CN/English date and/or time relative to the aware `now`; None if it is not one.

    A date alone keeps now's time of day when it is today (a visit logged "today" just happened),
    otherwise it gets 10:00; a part of day alone (上午/下午/中午/晚上) gets 09:00/15:00/12:00/19:00;
    a time alone is today. Bare weekdays and year-less dates resolve to the recent past.
    """
    norm = normalise(text).lower()
    if not norm:
        return None
    if norm in _NOW_WORDS:
        return now
    parts = _scan(norm)
    if parts is None or (parts.date is None and parts.period is None and parts.clock is None):
        return None
    today = now.date()
    day = parts.date(today) if parts.date is not None else today
    if day is None:
        return None
    if parts.clock is not None:
        resolved = _resolve_clock(parts.clock, parts.period)
        if resolved is None:
            return None
        hour, minute = resolved
    elif parts.period is not None:
        hour, minute = _PERIODS[parts.period][0], 0
    elif day == today:
        return now
    else:
        hour, minute = DEFAULT_HOUR, 0
    return datetime.combine(day, time(hour, minute), tzinfo=now.tzinfo)


def parse_date(text: str, today: date) -> date | None:
    """Parse a date-only value with the same grammar as parse_when; any time-of-day part → None."""
    norm = normalise(text).lower()
    parts = _scan(norm) if norm else None
    if parts is None or parts.date is None or parts.period is not None or parts.clock is not None:
        return None
    return parts.date(today)


_SPACED_DIAN_RE = re.compile(rf"({_NUM})\s+(点|时)")


def parse_date_time(text: str, today: date) -> tuple[date | None, time | None] | None:
    """A date with an optional time of day (``后天 8:00``, ``12-05 上午``, ``下午 2 点``): (date, time); the date is
    None when only a time is given, the time None when only a date is. None when it is neither. A part of day alone
    gets the hour ``parse_when`` gives it (上午 09:00, 下午 15:00); a bare 1-6 点 is the afternoon."""
    norm = _SPACED_DIAN_RE.sub(r"\1\2", normalise(text).lower())
    parts = _scan(norm) if norm else None
    if parts is None or (parts.date is None and parts.period is None and parts.clock is None):
        return None
    day = parts.date(today) if parts.date is not None else None
    if parts.date is not None and day is None:
        return None
    if parts.clock is not None:
        resolved = _resolve_clock(parts.clock, parts.period)
        if resolved is None:
            return None
        return day, time(*resolved)
    if parts.period is not None:
        return day, time(_PERIODS[parts.period][0], 0)
    return day, None
