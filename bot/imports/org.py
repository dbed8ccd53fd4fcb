"""Import the org directory and the customer directory from CSV (UTF-8, UTF-8 BOM, GB18030) or XLSX files.

Every row is validated before anything is written. Valid rows are written in batches, one transaction per
batch; a batch the database still rejects is retried row by row, so one bad row never rolls back the others.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import re
import zipfile
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from bot import channels
from bot.infra import audit
from bot.infra.sanitize import clean_text
from storage import vocab
from storage.db import Database
from storage.models import Customer, User, UserIdentity
from storage.vocab import Role

log = logging.getLogger(__name__)

ROLES = tuple(role.value for role in Role)
GRADES = ("A", "B", "C")
LOCALES = ("zh-CN", "en")
DEFAULT_LOCALE = "zh-CN"
BATCH_SIZE = 200
# Roles that only make sense inside a department.
DEPARTMENT_ROLES = tuple(role.value for role in Role if role in vocab.DEPARTMENT_ROLES)
LAT_RANGE = (3.0, 54.0)
LON_RANGE = (73.0, 136.0)

_ROLE_ALIASES = {role: role for role in ROLES} | {
    "代表": Role.REP.value,
    "销售代表": Role.REP.value,
    "经理": Role.MANAGER.value,
    "销售经理": Role.MANAGER.value,
    "总监": Role.DIRECTOR.value,
    "成员": Role.MEMBER.value,
    "部门成员": Role.MEMBER.value,
    "负责人": Role.HEAD.value,
    "部门负责人": Role.HEAD.value,
    "管理员": Role.ADMIN.value,
}
_ROLE_CHOICES = f"{', '.join(ROLES)}（或 代表、经理、总监、成员、负责人、管理员）"
_LOCALE_ALIASES = {
    "zh-cn": "zh-CN",
    "zh_cn": "zh-CN",
    "zh": "zh-CN",
    "中文": "zh-CN",
    "简体中文": "zh-CN",
    "en": "en",
    "en-us": "en",
    "en_us": "en",
    "english": "en",
    "英文": "en",
    "英语": "en",
}
# Excel users separate list items with whatever is at hand; Alt+Enter puts a newline inside a cell.
_LIST_SEPARATORS = re.compile(r"[;；,，、\n]")
_CONTACT_PARTS = re.compile(r"[/／]")
_HEADER_NOISE = re.compile(r"[\s_\-\ufeff]+")

Outcome = Literal["created", "updated", "unchanged"]


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
    """What an import did: counts per outcome plus every row error, sorted by row."""

    kind: Literal["org", "customers"]
    total: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)


@dataclass(frozen=True)
class _Column:
    key: str
    label: str
    aliases: tuple[str, ...]
    required: bool = False


# Org-CSV column → the channel whose ``user_identities`` it fills (each channel plug-in names its column).
IDENTITY_COLUMNS: dict[str, str] = {spec.column: channel for channel, spec in channels.identity_columns()}
_IDENTITY_LABELS: dict[str, str] = {spec.column: spec.label for _, spec in channels.identity_columns()}

ORG_COLUMNS = (
    _Column("user_id", "用户ID", ("用户ID", "工号"), required=True),
    _Column("name", "姓名", ("姓名",), required=True),
    _Column("roles", "角色", ("角色",), required=True),
    _Column("department", "部门", ("部门",)),
    _Column("manager", "上级", ("上级", "经理")),
    *(_Column(spec.column, spec.label, spec.aliases) for _, spec in channels.identity_columns()),
    _Column("locale", "语言", ("语言",)),
)

CUSTOMER_COLUMNS = (
    _Column("name", "名称", ("名称", "医院", "客户", "客户名称", "医院名称"), required=True),
    _Column("aliases", "别名", ("别名",)),
    _Column("grade", "等级", ("等级",)),
    _Column("address", "地址", ("地址",)),
    _Column("latitude", "纬度", ("纬度", "lat")),
    _Column("longitude", "经度", ("经度", "lon", "lng")),
    _Column("wards", "科室", ("科室",)),
    _Column("contacts", "联系人", ("联系人",)),
)


@dataclass(frozen=True)
class _Record:
    """A non-empty data row: canonical column → stripped cell, only for columns present in the file."""

    row: int
    cells: dict[str, str]


@dataclass(frozen=True)
class _Table:
    records: list[_Record]
    header_errors: list[RowError]


@dataclass(frozen=True)
class _Item:
    """A validated row ready to write: the record key and the fields to set."""

    row: int
    key: str
    values: dict[str, Any]


_Model = TypeVar("_Model", User, Customer)


@dataclass(frozen=True)
class _Target(Generic[_Model]):
    entity: str
    model: type[_Model]
    key_field: str


_USERS = _Target("user", User, "id")
_CUSTOMERS = _Target("customer", Customer, "name")


@dataclass(frozen=True)
class _Directory:
    """Who already exists in the DB, and which channel ids they hold (org-CSV column → channel id → user id)."""

    ids: frozenset[str]
    channel_ids: dict[str, dict[str, str]]


class _RowErrors:
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


def _map_headers(headers: Sequence[str], columns: Sequence[_Column]) -> tuple[dict[int, str], list[RowError]]:
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


def _records(rows: Sequence[Sequence[str]], mapping: dict[int, str]) -> list[_Record]:
    records = []
    for row_number, row in enumerate(rows, start=2):
        if not any(row):
            continue
        cells = {key: row[index] if index < len(row) else "" for index, key in mapping.items()}
        records.append(_Record(row_number, cells))
    return records


def _load(path: Path, columns: Sequence[_Column]) -> _Table:
    headers, rows = read_table(path)
    mapping, header_errors = _map_headers(headers, columns)
    return _Table(_records(rows, mapping), header_errors)


# ------------------------------------------------------------------------------------------- cell parsing


def _split(raw: str) -> list[str]:
    """List items of a cell, stripped, without blanks or repeats, in order."""
    return list(dict.fromkeys(part.strip() for part in _LIST_SEPARATORS.split(raw) if part.strip()))


def _text(errors: _RowErrors, cells: dict[str, str], key: str, label: str, max_len: int) -> str | None:
    value = cells.get(key, "")
    if not value:
        return None
    if len(value) > max_len:
        errors.add(key, f"{label}超过 {max_len} 个字符，请缩短")
        return None
    return value


def _required(errors: _RowErrors, cells: dict[str, str], key: str, label: str, max_len: int) -> str | None:
    if not cells.get(key):
        errors.add(key, f"{label}不能为空，请填写")
        return None
    return _text(errors, cells, key, label, max_len)


def _duplicates(records: Sequence[_Record], key: str, label: str) -> list[RowError]:
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


# ------------------------------------------------------------------------------------------- org rows


def _roles(errors: _RowErrors, raw: str) -> list[str]:
    found = set()
    for token in _split(raw):
        role = _ROLE_ALIASES.get(token.lower())
        if role is None:
            errors.add("roles", f"角色 '{token}' 无效，可选: {_ROLE_CHOICES}")
        else:
            found.add(role)
    if not found and not errors.has("roles"):
        errors.add("roles", f"请至少填写一个角色，可选: {_ROLE_CHOICES}")
    # Canonical order, so a re-import listing the same roles differently counts as unchanged.
    return [role for role in ROLES if role in found]


def _department(errors: _RowErrors, raw: str, departments: dict[str, str]) -> str | None:
    if not raw:
        return None
    key = departments.get(raw.lower())
    if key is None:
        choices = ", ".join(departments.values()) or "（尚未配置任何部门）"
        errors.add("department", f"部门 '{raw}' 不存在，可选: {choices}")
    return key


def _locale(errors: _RowErrors, raw: str) -> str:
    if not raw:
        return DEFAULT_LOCALE
    locale = _LOCALE_ALIASES.get(raw.lower())
    if locale is None:
        errors.add("locale", f"语言 '{raw}' 无效，可选: {', '.join(LOCALES)}（或留空，默认 zh-CN）")
        return DEFAULT_LOCALE
    return locale


def _user_values(errors: _RowErrors, cells: dict[str, str], departments: dict[str, str]) -> dict[str, Any]:
    """The fields to set, only for columns the file has (a missing column leaves the stored value alone)."""
    values: dict[str, Any] = {
        "name": _required(errors, cells, "name", "姓名", 100),
        "roles": _roles(errors, cells["roles"]),
    }
    if "department" in cells:
        values["department"] = _department(errors, cells["department"], departments)
    if "manager" in cells:
        values["manager_id"] = _text(errors, cells, "manager", "上级", 64)
    for column, label in _IDENTITY_LABELS.items():
        if column in cells:
            values[column] = _text(errors, cells, column, label, 64)
    if "locale" in cells:
        values["locale"] = _locale(errors, cells["locale"])
    return values


def _parse_user(record: _Record, departments: dict[str, str]) -> tuple[_Item | None, list[RowError]]:
    errors = _RowErrors(record.row)
    user_id = _required(errors, record.cells, "user_id", "用户ID", 64)
    values = _user_values(errors, record.cells, departments)
    needs_department = [role for role in values["roles"] if role in DEPARTMENT_ROLES]
    if needs_department and not values.get("department") and not errors.has("department"):
        errors.add("department", f"角色 {'/'.join(needs_department)} 必须填写部门")
    if user_id is not None and values.get("manager_id") == user_id:
        errors.add("manager", "上级不能是本人，请填写其他用户ID或留空")
    if errors.items or user_id is None:
        return None, errors.items
    return _Item(record.row, user_id, values), []


def _check_channel_ids(items: list[_Item], directory: _Directory, errors: list[RowError]) -> list[_Item]:
    """Drop rows whose id on a channel (企业微信ID, 钉钉ID …) belongs to another user (in the DB or an earlier row)."""
    claimed: dict[str, dict[str, int]] = {column: {} for column in _IDENTITY_LABELS}
    kept = []
    for item in items:
        problems = []
        for column, label in _IDENTITY_LABELS.items():
            owners = directory.channel_ids.get(column, {})
            value = item.values.get(column)
            owner = owners.get(value) if value else None
            if owner is not None and owner != item.key:
                message = f"{label} '{value}' 已被用户 '{owner}' 使用，请先清空该用户的{label}"
                problems.append(RowError(item.row, column, message))
            elif value and value in claimed[column]:
                message = f"{label} '{value}' 与第 {claimed[column][value]} 行重复，每人须唯一"
                problems.append(RowError(item.row, column, message))
        if problems:
            errors.extend(problems)
            continue
        for column, taken in claimed.items():
            if item.values.get(column):
                taken[item.values[column]] = item.row
        kept.append(item)
    return kept


def _manager_known(item: _Item, ids: frozenset[str]) -> bool:
    manager = item.values.get("manager_id")
    return manager is None or manager in ids


def _check_managers(items: list[_Item], known_ids: frozenset[str], errors: list[RowError]) -> list[_Item]:
    """Drop rows whose manager is neither in the DB nor a valid row of the file (repeat: drops cascade)."""
    kept = items
    while True:
        ids = known_ids | {item.key for item in kept}
        bad = [item for item in kept if not _manager_known(item, ids)]
        if not bad:
            return kept
        for item in bad:
            message = f"上级 '{item.values['manager_id']}' 不存在，请填写本文件或系统中已有的用户ID"
            errors.append(RowError(item.row, "manager", message))
        bad_rows = {item.row for item in bad}
        kept = [item for item in kept if item.row not in bad_rows]


def _parse_unique(
    records: list[_Record],
    key: str,
    label: str,
    parse: Callable[[_Record], tuple[_Item | None, list[RowError]]],
    errors: list[RowError],
) -> list[_Item]:
    """The rows parsed one by one, after refusing every row whose ``key`` repeats another's."""
    duplicates = _duplicates(records, key, label)
    errors.extend(duplicates)
    duplicate_rows = {e.row for e in duplicates}
    items = []
    for record in records:
        if record.row in duplicate_rows:
            continue
        item, row_errors = parse(record)
        errors.extend(row_errors)
        if item is not None:
            items.append(item)
    return items


def _validate_users(
    records: list[_Record], departments: dict[str, str], directory: _Directory, errors: list[RowError]
) -> list[_Item]:
    items = _parse_unique(records, "user_id", "用户ID", lambda r: _parse_user(r, departments), errors)
    items = _check_channel_ids(items, directory, errors)
    return _check_managers(items, directory.ids, errors)


async def _load_directory(db: Database) -> _Directory:
    columns = {channel: column for column, channel in IDENTITY_COLUMNS.items()}
    async with db.read() as session:
        ids = frozenset(await session.scalars(select(User.id)))
        identities = await session.execute(
            select(UserIdentity.channel, UserIdentity.external_id, UserIdentity.user_id).where(
                UserIdentity.channel.in_(list(columns))
            )
        )
        channel_ids: dict[str, dict[str, str]] = {column: {} for column in IDENTITY_COLUMNS}
        for channel, external_id, user_id in identities.all():
            channel_ids[columns[channel]][external_id] = user_id
    return _Directory(ids=ids, channel_ids=channel_ids)


# -------------------------------------------------------------------------------------- customer rows


def _grade(errors: _RowErrors, raw: str) -> str | None:
    if not raw:
        return None
    grade = raw.upper()
    if grade not in GRADES:
        errors.add("grade", f"等级 '{raw}' 无效，可选: {', '.join(GRADES)}（或留空）")
        return None
    return grade


def _number(errors: _RowErrors, key: str, label: str, raw: str, bounds: tuple[float, float]) -> float | None:
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


def _coordinates(errors: _RowErrors, cells: dict[str, str]) -> dict[str, float | None]:
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


def _contacts(errors: _RowErrors, raw: str) -> list[dict[str, str | None]]:
    contacts = []
    for token in _split(raw):
        parts = [part.strip() for part in _CONTACT_PARTS.split(token)]
        if len(parts) > 3 or not parts[0]:
            errors.add("contacts", f"联系人 '{token}' 格式错误，应为 姓名/科室/职务，如 张主任/骨科/主任")
            continue
        parts += [""] * (3 - len(parts))
        contacts.append({"name": parts[0], "ward": parts[1] or None, "title": parts[2] or None})
    return contacts


def _wards_and_contacts(errors: _RowErrors, cells: dict[str, str]) -> dict[str, list[Any]]:
    values: dict[str, list[Any]] = {}
    wards = _split(cells.get("wards", ""))
    if "contacts" in cells:
        values["contacts"] = _contacts(errors, cells["contacts"])
        # A contact's ward must be selectable as a ward of the customer too.
        wards += [c["ward"] for c in values["contacts"] if c["ward"] and c["ward"] not in wards]
    if "wards" in cells or wards:
        values["wards"] = list(dict.fromkeys(wards))
    return values


def _parse_customer(record: _Record) -> tuple[_Item | None, list[RowError]]:
    errors = _RowErrors(record.row)
    cells = record.cells
    name = _required(errors, cells, "name", "客户名称", 200)
    values: dict[str, Any] = {}
    if "aliases" in cells:
        values["aliases"] = [alias for alias in _split(cells["aliases"]) if alias != name]
    if "grade" in cells:
        values["grade"] = _grade(errors, cells["grade"])
    if "address" in cells:
        values["address"] = _text(errors, cells, "address", "地址", 300)
    values |= _coordinates(errors, cells)
    values |= _wards_and_contacts(errors, cells)
    if errors.items or name is None:
        return None, errors.items
    return _Item(record.row, name, values), []


def _validate_customers(records: list[_Record], errors: list[RowError]) -> list[_Item]:
    return _parse_unique(records, "name", "客户名称", _parse_customer, errors)


# ------------------------------------------------------------------------------------------------ writing


async def _write_batch(
    session: AsyncSession,
    target: _Target[_Model],
    items: Sequence[_Item],
    *,
    now: datetime,
    actor_id: str | None,
) -> list[Outcome]:
    """Create or update each item by key, with one audit row per created/updated record."""
    key_column = getattr(target.model, target.key_field)
    found = await session.scalars(select(target.model).where(key_column.in_([i.key for i in items])))
    existing = {getattr(obj, target.key_field): obj for obj in found}
    outcomes: list[Outcome] = []
    audited: list[tuple[_Model, str, dict[str, Any]]] = []
    for item in items:
        obj = existing.get(item.key)
        # A person's channel ids go to user_identities; the audit names them by their CSV column, as before.
        plain = {name: value for name, value in item.values.items() if name not in IDENTITY_COLUMNS}
        ids = {name: value for name, value in item.values.items() if name in IDENTITY_COLUMNS}
        if obj is None:
            fields = {target.key_field: item.key, **plain}
            obj = target.model(**fields, created_at=now, updated_at=now)
            _set_identities(obj, ids, now)
            session.add(obj)
            audited.append((obj, "import.create", audit.diff({}, {**fields, **ids})))
            outcomes.append("created")
            continue
        before = {name: getattr(obj, name) for name in plain}
        if isinstance(obj, User):
            before |= {name: obj.channel_id(IDENTITY_COLUMNS[name]) for name in ids}
        changes = audit.diff(before, item.values)
        if not changes:
            outcomes.append("unchanged")
            continue
        for name, value in plain.items():
            setattr(obj, name, value)
        _set_identities(obj, ids, now)
        obj.updated_at = now
        audited.append((obj, "import.update", changes))
        outcomes.append("updated")
    await session.flush()  # customer ids exist only after the INSERT
    for obj, action, changes in audited:
        audit.record(
            session,
            at=now,
            action=action,
            entity=target.entity,
            entity_id=obj.id,
            actor_id=actor_id,
            changes=changes,
        )
    return outcomes


def _set_identities(obj: User | Customer, ids: dict[str, str | None], now: datetime) -> None:
    if isinstance(obj, User):
        for column, external_id in ids.items():
            obj.set_channel_id(IDENTITY_COLUMNS[column], external_id, now)


def _db_reason(exc: SQLAlchemyError) -> str:
    reason = str(exc.orig) if isinstance(exc, DBAPIError) else type(exc).__name__
    return reason[:200]


async def _write_items(
    db: Database, target: _Target[_Model], items: Sequence[_Item], *, now: datetime, actor_id: str | None
) -> tuple[dict[int, Outcome], list[RowError]]:
    """Write one batch; if the DB rejects it, retry row by row and report the rows that still fail."""
    try:
        async with db.transaction() as session:
            outcomes = await _write_batch(session, target, items, now=now, actor_id=actor_id)
        return dict(zip((i.row for i in items), outcomes, strict=True)), []
    except SQLAlchemyError:
        log.warning(
            "import: batch of %s %s rows failed, retrying row by row",
            len(items),
            target.entity,
            exc_info=True,
        )
    results: dict[int, Outcome] = {}
    errors = []
    for item in items:
        try:
            async with db.transaction() as session:
                [results[item.row]] = await _write_batch(session, target, [item], now=now, actor_id=actor_id)
        except SQLAlchemyError as exc:
            log.warning("import: %s row %s rejected by the database: %s", target.entity, item.row, exc)
            message = f"保存失败（数据库拒绝：{_db_reason(exc)}），请检查是否与已有记录冲突"
            errors.append(RowError(item.row, None, message))
    return results, errors


def _chunks(records: Sequence[_Record], size: int) -> Iterator[Sequence[_Record]]:
    for start in range(0, len(records), size):
        yield records[start : start + size]


async def _write_all(
    db: Database,
    target: _Target[_Model],
    records: Sequence[_Record],
    items: Sequence[_Item],
    report: ImportReport,
    *,
    now: datetime,
    actor_id: str | None,
    progress: Callable[[int], None] | None,
) -> None:
    """Write the valid items in file order, batch by batch, reporting progress for every record."""
    by_row = {item.row: item for item in items}
    done = 0
    for chunk in _chunks(records, BATCH_SIZE):
        batch = [by_row[record.row] for record in chunk if record.row in by_row]
        if batch:
            outcomes, errors = await _write_items(db, target, batch, now=now, actor_id=actor_id)
            report.errors.extend(errors)
            report.created += sum(1 for o in outcomes.values() if o == "created")
            report.updated += sum(1 for o in outcomes.values() if o == "updated")
            report.unchanged += sum(1 for o in outcomes.values() if o == "unchanged")
        for _ in chunk:
            done += 1
            if progress is not None:
                progress(done)


async def _record_summary(
    db: Database, action: str, path: Path, report: ImportReport, *, now: datetime, actor_id: str | None
) -> None:
    changes = {
        "file": path.name,
        "total": report.total,
        "created": report.created,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "errors": len(report.errors),
    }
    async with db.transaction() as session:
        audit.record(session, at=now, action=action, entity="import", actor_id=actor_id, changes=changes)
    log.info("import %s from %s: %s", report.kind, path.name, changes)


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")


# ------------------------------------------------------------------------------------------------ public


async def import_org(
    db: Database,
    path: Path,
    *,
    now: datetime,
    departments: Collection[str],
    actor_id: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Create or update users (keyed by user_id) from the org file; valid rows are written regardless.

    ``departments`` are the configured department keys. Raises ImportFileError if the file is unreadable.
    """
    _require_aware(now)
    table = _load(path, ORG_COLUMNS)
    report = ImportReport(kind="org", total=len(table.records))
    if table.header_errors:
        report.errors.extend(table.header_errors)
        return report
    directory = await _load_directory(db)
    known_departments = {key.lower(): key for key in departments}
    items = _validate_users(table.records, known_departments, directory, report.errors)
    return await _write_and_record(db, _USERS, table, items, report, path, now, actor_id, progress)


async def import_customers(
    db: Database,
    path: Path,
    *,
    now: datetime,
    actor_id: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Create or update customers (keyed by name) from the customer file; valid rows are written regardless.

    Raises ImportFileError if the file is unreadable.
    """
    _require_aware(now)
    table = _load(path, CUSTOMER_COLUMNS)
    report = ImportReport(kind="customers", total=len(table.records))
    if not table.header_errors:
        items = _validate_customers(table.records, report.errors)
        return await _write_and_record(db, _CUSTOMERS, table, items, report, path, now, actor_id, progress)
    report.errors.extend(table.header_errors)
    return report


async def _write_and_record(
    db: Database,
    target: _Target[_Model],
    table: _Table,
    items: Sequence[_Item],
    report: ImportReport,
    path: Path,
    now: datetime,
    actor_id: str | None,
    progress: Callable[[int], None] | None,
) -> ImportReport:
    """Write the valid rows, sort the errors by row, and record the import's summary in the audit trail."""
    await _write_all(db, target, table.records, items, report, now=now, actor_id=actor_id, progress=progress)
    report.errors.sort(key=lambda e: e.row)
    await _record_summary(db, f"import.{report.kind}", path, report, now=now, actor_id=actor_id)
    return report
