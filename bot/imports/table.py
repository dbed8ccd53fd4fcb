"""Reading an import file into rows, and what an import reports: the machinery every ``salesbot import`` shares.

A file is CSV (UTF-8, UTF-8 BOM, GB18030) or XLSX. Its header row is mapped to canonical column keys (English
names, Chinese aliases, case, spaces, ``_`` and ``-`` ignored); each non-blank data row becomes a ``Record``. Row
errors are zh-CN sentences naming the spreadsheet row (header = 1) and the column.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import re
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from bot.infra.sanitize import clean_text

log = logging.getLogger(__name__)

LAT_RANGE = (3.0, 54.0)
LON_RANGE = (73.0, 136.0)
# Excel users separate list items with whatever is at hand; Alt+Enter puts a newline inside a cell.
_LIST_SEPARATORS = re.compile(r"[;；,，、\n]")
_HEADER_NOISE = re.compile(r"[\s_\-\ufeff]+")
# 2026-12-01, 2026/12/1, 2026.12.01, 2026年12月1日, 20261201; then optionally a time (15:30, 15:30:00, 15时30分):
# an XLSX date or date-time cell reads "2026-12-01 00:00:00".
_DATE = r"(\d{4})(?:[-/.年](\d{1,2})[-/.月](\d{1,2})日?|(\d{2})(\d{2}))"
_TIME = r"(\d{1,2})[:：时](\d{1,2})(?:[:：](\d{1,2})(?:\.\d+)?)?分?"
_DATE_TIME_RE = re.compile(rf"^{_DATE}(?:\s*[T\s]\s*{_TIME})?$")

Kind = Literal["org", "customers", "plans", "visits", "purchases", "trials", "events"]


class ImportFileError(Exception):
    """The file cannot be read at all (unknown type, corrupt, undecodable); ``message`` is zh-CN."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class RowError:
    """One problem in one row. ``row`` is the spreadsheet row (header = 1); ``column`` the canonical key."""

    row: int
    column: str | None
    message: str


@dataclass
class ImportReport:
    """What an import did: counts per outcome, every row error (sorted by row) and the warnings about rows that
    were written all the same (a visit's location far from its hospital)."""

    kind: Kind
    total: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    warnings: list[RowError] = field(default_factory=list)


@dataclass(frozen=True)
class Column:
    """A column an import understands: its key (the English header), its Chinese label and the headers it also
    accepts."""

    key: str
    label: str
    aliases: tuple[str, ...]
    required: bool = False


@dataclass(frozen=True)
class Record:
    """A non-empty data row: canonical column → stripped cell, only for columns present in the file."""

    row: int
    cells: dict[str, str]


@dataclass(frozen=True)
class Table:
    """The file's data rows, or the header problems that stop the import before any row is read."""

    records: list[Record]
    header_errors: list[RowError]


class RowErrors:
    """Collects the errors of one row."""

    def __init__(self, row: int) -> None:
        self.row = row
        self.items: list[RowError] = []

    def add(self, column: str | None, message: str) -> None:
        self.items.append(RowError(self.row, column, message))

    def has(self, column: str) -> bool:
        return any(e.column == column for e in self.items)


# ---------------------------------------------------------------------------------------------- reading


def read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """Headers and data rows of a .csv or .xlsx file as stripped strings; blank rows are kept (as blanks).

    Raises ImportFileError when the file cannot be read or has an unsupported extension.
    """
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows = _read_csv(path)
    elif suffix in (".xlsx", ".xlsm"):
        rows = _read_xlsx(path)
    elif suffix == ".xls":
        raise ImportFileError("不支持旧版 .xls 文件，请在 Excel 中另存为 .xlsx 或 CSV UTF-8")
    else:
        raise ImportFileError(f"不支持的文件类型 '{suffix or path.name}'，请使用 .csv 或 .xlsx")
    if not rows:
        return [], []
    # The same rule as for chat input: NUL and other control characters never reach the database.
    rows = [[clean_text(cell) for cell in row] for row in rows]
    return rows[0], rows[1:]


def _read_csv(path: Path) -> list[list[str]]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFileError(f"无法读取文件：{exc.strerror or exc}") from exc
    text = _decode(data).replace("\x00", "")  # csv refuses NUL outright ("line contains NUL")
    try:
        return [[cell.strip() for cell in row] for row in csv.reader(io.StringIO(text, newline=""))]
    except csv.Error as exc:
        raise ImportFileError(f"CSV 格式错误：{exc}，请用 Excel 重新导出") from exc


def _decode(data: bytes) -> str:
    # utf-8-sig also reads plain UTF-8; GB18030 (superset of GBK) is what Chinese Excel writes by default.
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportFileError("无法识别文件编码，请另存为 UTF-8 编码的 CSV")


def _read_xlsx(path: Path) -> list[list[str]]:
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (OSError, zipfile.BadZipFile, InvalidFileException, KeyError, ValueError) as exc:
        raise ImportFileError("无法读取 Excel 文件，请确认是未加密的 .xlsx 文件") from exc
    try:
        if not workbook.worksheets:
            return []
        sheet = workbook.worksheets[0]
        # Some generators write a wrong <dimension>; without this, rows past it would be silently dropped.
        sheet.reset_dimensions()
        return [[_render(value) for value in row] for row in sheet.iter_rows(values_only=True)]
    finally:
        workbook.close()


def _render(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _normalise_header(header: str) -> str:
    return _HEADER_NOISE.sub("", header).lower()


def _map_headers(headers: Sequence[str], columns: Sequence[Column]) -> tuple[dict[int, str], list[RowError]]:
    lookup = {_normalise_header(name): col for col in columns for name in (col.key, *col.aliases)}
    mapping: dict[int, str] = {}
    errors: list[RowError] = []
    for index, header in enumerate(headers):
        col = lookup.get(_normalise_header(header))
        if col is None:
            if header:
                log.debug("import: ignoring unknown column %s", header)
            continue
        if col.key in mapping.values():
            errors.append(RowError(1, col.key, f"列 '{header}' 重复（都表示{col.label}），请只保留一列"))
            continue
        mapping[index] = col.key
    for col in columns:
        if col.required and col.key not in mapping.values():
            also = "、".join(col.aliases)
            errors.append(RowError(1, col.key, f"缺少必填列 '{col.key}'（也可写作 {also}），请在第 1 行添加"))
    return mapping, errors


def _records(rows: Sequence[Sequence[str]], mapping: dict[int, str]) -> list[Record]:
    records = []
    for row_number, row in enumerate(rows, start=2):
        if not any(row):
            continue
        cells = {key: row[index] if index < len(row) else "" for index, key in mapping.items()}
        records.append(Record(row_number, cells))
    return records


def refused_headers(headers: Sequence[str], words: Sequence[str]) -> list[str]:
    """The headers containing one of ``words`` (compared as headers are: case, spaces, ``_`` and ``-`` ignored)."""
    needles = [_normalise_header(word) for word in words]
    return [h for h in headers if any(needle in _normalise_header(h) for needle in needles)]


def load_table(
    path: Path, columns: Sequence[Column], refuse: Callable[[Sequence[str]], RowError | None] | None = None
) -> Table:
    """The file's records under ``columns`` (unknown columns ignored), or its header errors. ``refuse`` may turn
    the whole file down by its header row alone: then no row is looked at.

    Raises ImportFileError when the file cannot be read."""
    headers, rows = read_table(path)
    if refuse is not None and (refusal := refuse(headers)) is not None:
        return Table([], [refusal])
    mapping, header_errors = _map_headers(headers, columns)
    return Table(_records(rows, mapping), header_errors)


# ------------------------------------------------------------------------------------------- cell parsing


def split_list(raw: str) -> list[str]:
    """List items of a cell, stripped, without blanks or repeats, in order."""
    return list(dict.fromkeys(part.strip() for part in _LIST_SEPARATORS.split(raw) if part.strip()))


def text(errors: RowErrors, cells: dict[str, str], key: str, label: str, max_len: int) -> str | None:
    """The cell's text (None when empty); an error when it is longer than ``max_len``."""
    value = cells.get(key, "")
    if not value:
        return None
    if len(value) > max_len:
        errors.add(key, f"{label}超过 {max_len} 个字符，请缩短")
        return None
    return value


def required(errors: RowErrors, cells: dict[str, str], key: str, label: str, max_len: int) -> str | None:
    """As ``text``, and an error when the cell is empty."""
    if not cells.get(key):
        errors.add(key, f"{label}不能为空，请填写")
        return None
    return text(errors, cells, key, label, max_len)


def duplicates(records: Sequence[Record], key: str, label: str) -> list[RowError]:
    """An error on every later row repeating an earlier row's key."""
    first_row: dict[str, int] = {}
    errors = []
    for record in records:
        value = record.cells.get(key, "")
        if not value:
            continue
        if value in first_row:
            message = f"{label} '{value}' 与第 {first_row[value]} 行重复，请删除或合并其中一行"
            errors.append(RowError(record.row, key, message))
        else:
            first_row[value] = record.row
    return errors


def _number(errors: RowErrors, key: str, label: str, raw: str, bounds: tuple[float, float]) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        errors.add(key, f"{label} '{raw}' 不是数字，请填写小数度数，如 30.2556")
        return None
    low, high = bounds
    if not math.isfinite(value) or not low <= value <= high:
        errors.add(key, f"{label} {raw} 超出中国境内范围 {low:g}–{high:g}，请检查是否与另一坐标填反")
        return None
    return value


def coordinates(errors: RowErrors, cells: dict[str, str]) -> dict[str, float | None]:
    """``{latitude, longitude}`` from the two columns: both numbers inside China, or both None when both cells are
    empty; ``{}`` when the file has neither column (or on an error)."""
    if "latitude" not in cells and "longitude" not in cells:
        return {}
    lat_raw, lon_raw = cells.get("latitude", ""), cells.get("longitude", "")
    if not lat_raw and not lon_raw:
        return {"latitude": None, "longitude": None}
    if not lon_raw:
        errors.add("longitude", "填写了纬度但缺少经度，请两者都填或都留空")
        return {}
    if not lat_raw:
        errors.add("latitude", "填写了经度但缺少纬度，请两者都填或都留空")
        return {}
    return {
        "latitude": _number(errors, "latitude", "纬度", lat_raw, LAT_RANGE),
        "longitude": _number(errors, "longitude", "经度", lon_raw, LON_RANGE),
    }


def _date_time(raw: str) -> tuple[date, time | None] | None:
    m = _DATE_TIME_RE.match(raw.strip())
    if m is None:
        return None
    year, month, day, month_compact, day_compact, hour, minute, second = m.groups()
    try:
        day_part = date(int(year), int(month or month_compact), int(day or day_compact))
        if hour is None:
            return day_part, None
        return day_part, time(int(hour), int(minute), int(second or 0))
    except ValueError:
        return None


def parse_day(errors: RowErrors, key: str, label: str, raw: str) -> date | None:
    """A calendar day (2026-12-01, 2026/12/1, 2026年12月1日, 20261201; a time after it is ignored)."""
    parsed = _date_time(raw)
    if parsed is None:
        errors.add(key, f"{label} '{raw}' 无法识别，请写成 2026-12-01 这样的日期")
        return None
    return parsed[0]


def parse_local_time(errors: RowErrors, key: str, label: str, raw: str, tz: ZoneInfo) -> datetime | None:
    """An instant written in org local time (``2026-11-20 15:30``; also ``/``, ``年月日``, seconds, or an ISO time
    with its own offset), aware. A day without a time is refused: the visit's moment is what identifies it."""
    parsed = _date_time(raw)
    if parsed is not None and parsed[1] is not None:
        return datetime.combine(parsed[0], parsed[1], tzinfo=tz)
    try:
        with_offset = datetime.fromisoformat(raw.strip())
    except ValueError:
        with_offset = None
    if with_offset is not None and with_offset.tzinfo is not None:
        return with_offset
    if parsed is not None:
        errors.add(key, f"{label} '{raw}' 缺少时刻，请写成 2026-11-20 15:30（当地时间）")
    else:
        errors.add(key, f"{label} '{raw}' 无法识别，请写成 2026-11-20 15:30（当地时间）")
    return None
