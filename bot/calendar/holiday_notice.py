"""Reading a year's official holiday arrangement: the State Council notice text, or a TOML/CSV list of days.

The notice (国务院办公厅关于 20XX 年部分节假日安排的通知) has one line per holiday, e.g.
``二、春节：1月28日（农历除夕、周二）至2月4日（农历正月初七、周二）放假调休，共8天。1月26日（周日）、2月8日（周六）上班。``:
the dates before 放假 are closed, the dates before 上班 are make-up working days (调休). The year comes from the title
(``2025年`` or ``二〇二五年``) or from the caller. Pure functions: no database, no command line. Every problem is
data (:class:`Problem`, bilingual, with its line number); :func:`parse_file` never raises for bad content.
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

__all__ = [
    "NAME_MAX",
    "Arrangement",
    "NoticeDay",
    "Problem",
    "decode",
    "describe_days",
    "parse_csv",
    "parse_file",
    "parse_notice",
    "parse_toml",
]

Kind = Literal["closed", "open"]
Form = Literal["notice", "toml", "csv"]
# The calendar_days.name column.
NAME_MAX = 32
WEEKDAYS_ZH = "一二三四五六日"
WEEKDAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class NoticeDay:
    """One day of the arrangement: ``closed`` (放假) or ``open`` (a make-up working day, 调休上班)."""

    day: date
    kind: Kind
    name: str
    line: int  # 1-based line of the file it came from


@dataclass(frozen=True)
class Problem:
    """An error or warning, in Chinese and English; ``line`` 0 means the whole file."""

    line: int
    zh: str
    en: str

    def __str__(self) -> str:
        where = f"第 {self.line} 行 / line {self.line}: " if self.line else ""
        return f"{where}{self.zh} / {self.en}"


@dataclass
class Arrangement:
    """What a file says: the year, its days in date order, and what was wrong with it."""

    form: Form
    year: int | None = None
    days: list[NoticeDay] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, line: int, zh: str, en: str) -> None:
        self.errors.append(Problem(line, zh, en))

    def warn(self, line: int, zh: str, en: str) -> None:
        self.warnings.append(Problem(line, zh, en))


# ---- numbers, dates, text -----------------------------------------------------------------------------------------

_CN_DIGIT = {"〇": 0, "零": 0, "○": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_NUM = r"[0-9〇零○一二三四五六七八九十两]+"


def _number(text: str) -> int | None:
    """``2025``, ``二〇二五`` (digit by digit), ``八`` or ``十一`` → int; None when it is not a number."""
    text = text.strip().replace("两", "二")
    if text.isascii() and text.isdigit():
        return int(text)
    if not text or any(c not in _CN_DIGIT and c != "十" for c in text):
        return None
    if "十" not in text:
        return int("".join(str(_CN_DIGIT[c]) for c in text))
    tens, _, ones = text.partition("十")
    if len(tens) > 1 or len(ones) > 1:
        return None
    return (_CN_DIGIT[tens] if tens else 1) * 10 + (_CN_DIGIT[ones] if ones else 0)


def _zh_day(day: date) -> str:
    return f"{day.month}月{day.day}日（周{WEEKDAYS_ZH[day.weekday()]}）"


def describe_days(days: Iterable[date]) -> str:
    """``2月6日（周六）至2月13日（周六）、2月20日（周六）``: runs of consecutive days written as ranges."""
    ordered = sorted(set(days))
    runs: list[tuple[date, date]] = []
    for day in ordered:
        if runs and runs[-1][1] + timedelta(days=1) == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return "、".join(_zh_day(a) if a == b else f"{_zh_day(a)}至{_zh_day(b)}" for a, b in runs)


def decode(data: bytes) -> str:
    """A file's text: UTF-8 (with or without BOM), else GB18030 as saved by Chinese Windows editors."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("gb18030", errors="replace")


# ---- the State Council notice -------------------------------------------------------------------------------------

# After NFKC full-width punctuation is ASCII: （）→(), ：→:, ，→, and ；→; (、 and 。 stay).
_TITLE_YEAR = (
    re.compile(rf"关于\s*({_NUM})\s*年\s*(?:部分)?节假日"),
    re.compile(rf"({_NUM})\s*年\s*(?:部分)?节假日安排"),
    re.compile(rf"现将\s*({_NUM})\s*年"),
)
# An item starts at a line start or after a sentence: 一、 二、 … (not 初七、 inside a note).
_ITEM_SPLIT = re.compile(r"(?<![\u4e00-\u9fff])(?=[一二三四五六七八九十]{1,3}、)")
_ITEM = re.compile(
    r"^\s*(?:[一二三四五六七八九十]{1,3}、|\d{1,2}\s*[.、)]|\(\s*[一二三四五六七八九十\d]{1,3}\s*\))?\s*"
    r"(?P<name>[\u4e00-\u9fff][\u4e00-\u9fff、,与和及\s]{0,30}?)\s*:\s*(?P<body>.*)$"
)
_DATE = re.compile(
    r"(?:(?P<y>[0-9〇零○一二三四五六七八九]{4})\s*年\s*)?(?:(?P<m>\d{1,2})\s*月\s*)?(?P<d>\d{1,2})\s*日"
    r"(?:\s*\((?P<note>[^()]*)\))?"
)
_NOTE_WEEKDAY = re.compile(r"(?:周|星期|礼拜)([一二三四五六日天])")
_RANGE_SEP = re.compile(r"^\s*(?:至|到|-|~|—|–|―)\s*$")
_COUNT = re.compile(rf"(?:共|放假)\s*({_NUM})\s*天")
_SENTENCE = re.compile(r"[。;.]")
_KEYWORD = re.compile(r"放假|上班")


@dataclass
class _DateRef:
    year: int | None
    month: int | None
    day: int
    weekday: int | None  # 0 = Monday, from the note in parentheses
    start: int
    end: int
    text: str


def _date_refs(segment: str) -> list[_DateRef]:
    refs = []
    for m in _DATE.finditer(segment):
        weekday = None
        note = m.group("note")
        if note:
            w = _NOTE_WEEKDAY.search(note)
            if w:
                weekday = WEEKDAYS_ZH.index(w.group(1).replace("天", "日"))
        year = _number(m.group("y")) if m.group("y") else None
        month = int(m.group("m")) if m.group("m") else None
        refs.append(_DateRef(year, month, int(m.group("d")), weekday, m.start(), m.end(), m.group(0).strip()))
    return refs


class _LineReader:
    """Turns the date references of one notice line into days, reporting into the arrangement."""

    def __init__(self, arr: Arrangement, year: int, line: int) -> None:
        self.arr, self.year, self.line = arr, year, line

    def make(self, ref: _DateRef, year: int, month: int) -> date | None:
        try:
            day = date(year, month, ref.day)
        except ValueError:
            self.arr.error(
                self.line,
                f"日期不存在：{year}年{month}月{ref.day}日",
                f"no such date: {year}-{month:02d}-{ref.day:02d} ({ref.text})",
            )
            return None
        if ref.weekday is not None and ref.weekday != day.weekday():
            self.arr.error(
                self.line,
                f"{year}年{month}月{ref.day}日是星期{WEEKDAYS_ZH[day.weekday()]}，通知写的是周{WEEKDAYS_ZH[ref.weekday]}"
                "（年份不对？）",
                f"{day.isoformat()} is a {WEEKDAYS_EN[day.weekday()]} but the notice says "
                f"{WEEKDAYS_EN[ref.weekday]} (wrong year?)",
            )
            return None
        return day

    def closed_days(self, segment: str) -> list[date]:
        """The days before 放假: single days, ranges (``A至B``), or several separated by 、."""
        refs = _date_refs(segment)
        out: list[date] = []
        i, month = 0, None
        while i < len(refs):
            ref = refs[i]
            nxt = refs[i + 1] if i + 1 < len(refs) else None
            if nxt is not None and _RANGE_SEP.match(segment[ref.end : nxt.start]):
                days = self.range(ref, nxt, month)
                i += 2
            else:
                one = self.single(ref, month)
                days = [one] if one else []
                i += 1
            if days:
                out.extend(days)
                month = days[-1].month
            elif self.arr.errors:
                return []
        return out

    def single(self, ref: _DateRef, month: int | None) -> date | None:
        month = ref.month or month
        if month is None:
            self.arr.error(self.line, f"日期缺少月份：{ref.text}", f"date without a month: {ref.text}")
            return None
        return self.make(ref, ref.year or self.year, month)

    def range(self, a: _DateRef, b: _DateRef, month: int | None) -> list[date]:
        start_month = a.month or month
        if start_month is None:
            self.arr.error(self.line, f"日期缺少月份：{a.text}", f"date without a month: {a.text}")
            return []
        end_month = b.month or start_month
        start_year = a.year or self.year
        end_year = b.year or start_year
        if b.year is None and (end_month, b.day) < (start_month, a.day) and start_month == 12 and end_month == 1:
            # Across the year end (元旦 from late December): a notice for year N means December of N-1.
            if a.year is None:
                start_year = self.year - 1
            end_year = start_year + 1
        start = self.make(a, start_year, start_month)
        end = self.make(b, end_year, end_month)
        if start is None or end is None:
            return []
        if end < start:
            self.arr.error(
                self.line,
                f"区间的结束早于开始：{a.text}至{b.text}",
                f"the range ends before it starts: {start.isoformat()} to {end.isoformat()}",
            )
            return []
        return [start + timedelta(days=n) for n in range((end - start).days + 1)]

    def open_days(self, segment: str) -> list[date]:
        out: list[date] = []
        month = None
        for ref in _date_refs(segment):
            day = self.single(ref, month)
            if day is not None:
                out.append(day)
                month = day.month
        return out


def _notice_year(text: str) -> int | None:
    for pattern in _TITLE_YEAR:
        m = pattern.search(text)
        if m:
            n = _number(m.group(1))
            if n is not None and 1900 <= n <= 2999:
                return n
    return None


def parse_notice(text: str, year: int | None = None) -> Arrangement:
    """Parse the State Council notice; ``year`` (``--year``) is needed when the text has no title."""
    arr = Arrangement("notice")
    norm = unicodedata.normalize("NFKC", text)
    found = _notice_year(norm)
    if year is not None and found is not None and year != found:
        arr.error(
            0,
            f"年份不一致：通知标题是 {found} 年，--year 是 {year}",
            f"year mismatch: the notice is for {found}, --year says {year}",
        )
        return arr
    arr.year = year if year is not None else found
    if arr.year is None:
        arr.error(
            0, "找不到年份（标题里的“20XX年”）：请用 --year 指定", "no year found (the title's 20XX年): pass --year"
        )
        return arr
    items = 0
    for number, raw in enumerate(norm.splitlines(), start=1):
        for piece in _ITEM_SPLIT.split(raw):
            m = _ITEM.match(piece)
            if not m or "放假" not in m.group("body"):
                continue
            items += 1
            name = re.sub(r"\s+", "", m.group("name")).replace(",", "、")[:NAME_MAX]
            _parse_item(arr, _LineReader(arr, arr.year, number), name, m.group("body"))
    if items == 0:
        arr.error(
            0,
            "没有找到节假日安排行（如“春节：2月5日至11日放假调休，共7天。”）",
            "no holiday line found (like 春节：2月5日至11日放假调休，共7天。)",
        )
    _validate(arr)
    return arr


def _parse_item(arr: Arrangement, reader: _LineReader, name: str, body: str) -> None:
    before = len(arr.errors)
    closed: list[date] = []
    opened: list[date] = []
    count: int | None = None
    for sentence in _SENTENCE.split(body):
        # Each 放假 / 上班 claims the dates written between the previous keyword (or the sentence start) and itself.
        start = 0
        for keyword in _KEYWORD.finditer(sentence):
            segment = sentence[start : keyword.start()]
            start = keyword.end()
            if keyword.group(0) == "上班":
                opened.extend(reader.open_days(segment))
                continue
            closed.extend(reader.closed_days(segment))
            m = _COUNT.search(sentence)
            if m and count is None:
                count = _number(m.group(1))
    if not closed and len(arr.errors) == before:
        arr.error(reader.line, f"“{name}”：放假前没有日期", f"{name}: no date before 放假")
    if len(arr.errors) > before:
        return
    arr.days.extend(NoticeDay(d, "closed", name, reader.line) for d in closed)
    arr.days.extend(NoticeDay(d, "open", name, reader.line) for d in opened)
    if count is not None and count != len(closed):
        arr.warn(
            reader.line,
            f"“{name}”写的是共{count}天，但日期是{len(closed)}天（{describe_days(closed)}）",
            f"{name}: the notice says {count} days but the dates give {len(closed)}",
        )


# ---- TOML and CSV -------------------------------------------------------------------------------------------------

_KINDS: dict[str, Kind] = {
    "closed": "closed",
    "holiday": "closed",
    "off": "closed",
    "放假": "closed",
    "休": "closed",
    "休息": "closed",
    "open": "open",
    "workday": "open",
    "work": "open",
    "上班": "open",
    "班": "open",
    "调休上班": "open",
}
_ISO = re.compile(r"^\s*(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})\s*$")


def _add_row(arr: Arrangement, line: int, raw_day: object, raw_kind: object, raw_name: object) -> None:
    if isinstance(raw_day, date):
        day = raw_day
    else:
        m = _ISO.match(str(raw_day or ""))
        if not m:
            arr.error(
                line, f"日期无法识别：{raw_day!r}（应为 2027-02-06）", f"unreadable date {raw_day!r} (want 2027-02-06)"
            )
            return
        try:
            day = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            arr.error(line, f"日期不存在：{raw_day}", f"no such date: {raw_day}")
            return
    kind = _KINDS.get(str(raw_kind or "").strip().lower())
    if kind is None:
        arr.error(
            line,
            f"类型 {raw_kind!r} 无效：应为 closed（放假）或 open（调休上班）",
            f"kind {raw_kind!r} is not closed (放假) or open (调休上班)",
        )
        return
    name = str(raw_name or "").strip()
    if len(name) > NAME_MAX:
        arr.error(line, f"名称超过 {NAME_MAX} 个字：{name}", f"name longer than {NAME_MAX} characters: {name}")
        return
    arr.days.append(NoticeDay(day, kind, name, line))


def parse_toml(text: str, year: int | None = None) -> Arrangement:
    """``year = 2027`` (optional) and ``[[days]]`` tables with ``date``, ``kind`` (closed/open) and ``name``."""
    arr = Arrangement("toml")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        arr.error(0, f"TOML 语法错误：{exc}", f"TOML syntax error: {exc}")
        return arr
    rows = data.get("days")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        arr.error(0, "缺少 [[days]] 表", "no [[days]] tables")
        return arr
    unknown = sorted(set(data) - {"year", "days"})
    if unknown:
        arr.error(0, f"未知的键：{', '.join(unknown)}", f"unknown keys: {', '.join(unknown)}")
    declared = data.get("year")
    if declared is not None and (not isinstance(declared, int) or isinstance(declared, bool)):
        arr.error(0, f"year 必须是整数：{declared!r}", f"year must be an integer: {declared!r}")
        return arr
    if declared is not None and year is not None and declared != year:
        arr.error(
            0,
            f"年份不一致：文件里是 {declared}，--year 是 {year}",
            f"year mismatch: the file says {declared}, --year says {year}",
        )
        return arr
    # tomllib keeps no positions: the n-th [[days]] header is the n-th row's line.
    headers = [n for n, ln in enumerate(text.splitlines(), start=1) if re.match(r"^\s*\[\[\s*days\s*\]\]", ln)]
    for i, row in enumerate(rows):
        line = headers[i] if len(headers) == len(rows) else 0
        extra = sorted(set(row) - {"date", "kind", "name"})
        if extra:
            arr.error(line, f"未知的键：{', '.join(extra)}", f"unknown keys: {', '.join(extra)}")
            continue
        _add_row(arr, line, row.get("date"), row.get("kind"), row.get("name"))
    arr.year = year if year is not None else declared
    _validate(arr)
    return arr


_CSV_HEADERS = {
    "date": "date",
    "日期": "date",
    "kind": "kind",
    "type": "kind",
    "类型": "kind",
    "name": "name",
    "holiday": "name",
    "名称": "name",
    "节日": "name",
}


def parse_csv(text: str, year: int | None = None) -> Arrangement:
    """``date,kind,name`` rows (the header is optional; Chinese headers 日期,类型,名称 work too)."""
    arr = Arrangement("csv")
    reader = csv.reader(io.StringIO(text))
    columns = ["date", "kind", "name"]
    first = True
    for row in reader:
        line = reader.line_num
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if first:
            first = False
            mapped = [_CSV_HEADERS.get(c.lower()) for c in cells]
            if all(mapped):
                if "date" not in mapped or "kind" not in mapped:
                    arr.error(line, "表头需要 date 和 kind 两列", "the header needs date and kind columns")
                    return arr
                columns = [m for m in mapped if m]
                continue
        values = dict(zip(columns, cells, strict=False))
        _add_row(arr, line, values.get("date"), values.get("kind"), values.get("name"))
    arr.year = year
    _validate(arr)
    return arr


# ---- checks common to every form ----------------------------------------------------------------------------------


def _validate(arr: Arrangement) -> None:
    """Year, duplicates, closed-and-open conflicts, make-up days on weekends; sorts the days."""
    if arr.errors:
        return
    if not arr.days:
        arr.error(0, "文件里没有任何日期", "the file lists no days")
        return
    if arr.year is None:
        arr.year = Counter(d.day.year for d in arr.days).most_common(1)[0][0]
    year = arr.year
    seen: dict[date, NoticeDay] = {}
    keep: list[NoticeDay] = []
    for d in arr.days:
        # A New Year holiday may start in the last days of December, or (rarely) end in early January.
        if not (
            d.day.year == year
            or (d.day.year == year - 1 and d.day.month == 12)
            or (d.day.year == year + 1 and d.day.month == 1)
        ):
            arr.error(
                d.line, f"{d.day.isoformat()} 不属于 {year} 年", f"{d.day.isoformat()} is not in {year} (year mismatch)"
            )
            continue
        if d.kind == "open" and d.day.isoweekday() < 6:
            arr.error(
                d.line,
                f"调休上班日必须是周六或周日：{_zh_day(d.day)}",
                f"a make-up working day must be a Saturday or Sunday: {d.day.isoformat()} is a "
                f"{WEEKDAYS_EN[d.day.weekday()]}",
            )
            continue
        other = seen.get(d.day)
        if other is None:
            seen[d.day] = d
            keep.append(d)
        elif other.kind != d.kind:
            where = f"第 {other.line} 行 / line {other.line}" if other.line else "earlier"
            arr.error(
                d.line,
                f"{_zh_day(d.day)} 既放假又上班（另见{where}）",
                f"{d.day.isoformat()} is both closed and a working day (see {where})",
            )
        else:
            arr.warn(d.line, f"{_zh_day(d.day)} 重复列出", f"{d.day.isoformat()} is listed twice")
    arr.days = sorted(keep, key=lambda d: d.day)


def parse_file(filename: str, data: bytes, year: int | None = None) -> Arrangement:
    """Parse by the file's form: ``.toml`` and ``.csv`` by name (or a ``[[days]]`` table), else the notice text."""
    text = decode(data)
    lower = filename.lower()
    if lower.endswith(".toml") or re.search(r"^\s*\[\[\s*days\s*\]\]", text, re.M):
        return parse_toml(text, year)
    if lower.endswith(".csv"):
        return parse_csv(text, year)
    return parse_notice(text, year)
