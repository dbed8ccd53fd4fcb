"""Import the org directory and the customer directory from CSV (UTF-8, UTF-8 BOM, GB18030) or XLSX files.

Every row is validated before anything is written. Valid rows are written in batches, one transaction per
batch; a batch the database still rejects is retried row by row, so one bad row never rolls back the others
(``bot.imports.batches``; reading the file: ``bot.imports.table``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import partial
from pathlib import Path
from typing import Any, Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import channels
from bot.imports.batches import Outcome, audit_changes, start, write_and_record
from bot.imports.refs import Reps, load_reps
from bot.imports.table import (
    Column,
    ImportFileError,
    ImportReport,
    Record,
    RowError,
    RowErrors,
    coordinates,
    duplicates,
    read_table,
    required,
    split_list,
    text,
)
from bot.infra import audit
from bot.services.grades import cycle_start, grade_in_force
from storage import vocab
from storage.db import Database
from storage.models import Customer, User, UserIdentity
from storage.vocab import Role

__all__ = ["ImportFileError", "ImportReport", "RowError", "import_customers", "import_org", "read_table"]

log = logging.getLogger(__name__)

ROLES = tuple(role.value for role in Role)
GRADES = ("A", "B", "C")
LOCALES = ("zh-CN", "en")
DEFAULT_LOCALE = "zh-CN"
# Roles that only make sense inside a department.
DEPARTMENT_ROLES = tuple(role.value for role in Role if role in vocab.DEPARTMENT_ROLES)

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
_CONTACT_PARTS = re.compile(r"[/／]")

# Org-CSV column → the channel whose ``user_identities`` it fills (each channel plug-in names its column).
IDENTITY_COLUMNS: dict[str, str] = {spec.column: channel for channel, spec in channels.identity_columns()}
_IDENTITY_LABELS: dict[str, str] = {spec.column: spec.label for _, spec in channels.identity_columns()}

ORG_COLUMNS = (
    Column("user_id", "用户ID", ("用户ID", "工号"), required=True),
    Column("name", "姓名", ("姓名",), required=True),
    Column("roles", "角色", ("角色",), required=True),
    Column("department", "部门", ("部门",)),
    Column("manager", "上级", ("上级", "经理")),
    *(Column(spec.column, spec.label, spec.aliases) for _, spec in channels.identity_columns()),
    Column("locale", "语言", ("语言",)),
)

CUSTOMER_COLUMNS = (
    Column("name", "名称", ("名称", "医院", "客户", "客户名称", "医院名称"), required=True),
    Column("aliases", "别名", ("别名",)),
    Column("grade", "等级", ("等级",)),
    Column("address", "地址", ("地址",)),
    Column("latitude", "纬度", ("纬度", "lat")),
    Column("longitude", "经度", ("经度", "lon", "lng")),
    Column("wards", "科室", ("科室",)),
    Column("contacts", "联系人", ("联系人",)),
    Column("rep", "负责代表", ("负责代表", "代表")),
)


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


# ------------------------------------------------------------------------------------------- org rows


def _roles(errors: RowErrors, raw: str) -> list[str]:
    found = set()
    for token in split_list(raw):
        role = _ROLE_ALIASES.get(token.lower())
        if role is None:
            errors.add("roles", f"角色 '{token}' 无效，可选: {_ROLE_CHOICES}")
        else:
            found.add(role)
    if not found and not errors.has("roles"):
        errors.add("roles", f"请至少填写一个角色，可选: {_ROLE_CHOICES}")
    # Canonical order, so a re-import listing the same roles differently counts as unchanged.
    return [role for role in ROLES if role in found]


def _department(errors: RowErrors, raw: str, departments: dict[str, str]) -> str | None:
    if not raw:
        return None
    key = departments.get(raw.lower())
    if key is None:
        choices = ", ".join(departments.values()) or "（尚未配置任何部门）"
        errors.add("department", f"部门 '{raw}' 不存在，可选: {choices}")
    return key


def _locale(errors: RowErrors, raw: str) -> str:
    if not raw:
        return DEFAULT_LOCALE
    locale = _LOCALE_ALIASES.get(raw.lower())
    if locale is None:
        errors.add("locale", f"语言 '{raw}' 无效，可选: {', '.join(LOCALES)}（或留空，默认 zh-CN）")
        return DEFAULT_LOCALE
    return locale


def _user_values(errors: RowErrors, cells: dict[str, str], departments: dict[str, str]) -> dict[str, Any]:
    """The fields to set, only for columns the file has (a missing column leaves the stored value alone)."""
    values: dict[str, Any] = {
        "name": required(errors, cells, "name", "姓名", 100),
        "roles": _roles(errors, cells["roles"]),
    }
    if "department" in cells:
        values["department"] = _department(errors, cells["department"], departments)
    if "manager" in cells:
        values["manager_id"] = text(errors, cells, "manager", "上级", 64)
    for column, label in _IDENTITY_LABELS.items():
        if column in cells:
            values[column] = text(errors, cells, column, label, 64)
    if "locale" in cells:
        values["locale"] = _locale(errors, cells["locale"])
    return values


def _parse_user(record: Record, departments: dict[str, str]) -> tuple[_Item | None, list[RowError]]:
    errors = RowErrors(record.row)
    user_id = required(errors, record.cells, "user_id", "用户ID", 64)
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
    records: list[Record],
    key: str,
    label: str,
    parse: Callable[[Record], tuple[_Item | None, list[RowError]]],
    errors: list[RowError],
) -> list[_Item]:
    """The rows parsed one by one, after refusing every row whose ``key`` repeats another's."""
    repeated = duplicates(records, key, label)
    errors.extend(repeated)
    duplicate_rows = {e.row for e in repeated}
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
    records: list[Record], departments: dict[str, str], directory: _Directory, errors: list[RowError]
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


def _grade(errors: RowErrors, raw: str) -> str | None:
    if not raw:
        return None
    grade = raw.upper()
    if grade not in GRADES:
        errors.add("grade", f"等级 '{raw}' 无效，可选: {', '.join(GRADES)}（或留空）")
        return None
    return grade


def _contacts(errors: RowErrors, raw: str) -> list[dict[str, str | None]]:
    contacts = []
    for token in split_list(raw):
        parts = [part.strip() for part in _CONTACT_PARTS.split(token)]
        if len(parts) > 3 or not parts[0]:
            errors.add("contacts", f"联系人 '{token}' 格式错误，应为 姓名/科室/职务，如 张主任/骨科/主任")
            continue
        parts += [""] * (3 - len(parts))
        contacts.append({"name": parts[0], "ward": parts[1] or None, "title": parts[2] or None})
    return contacts


def _wards_and_contacts(errors: RowErrors, cells: dict[str, str]) -> dict[str, list[Any]]:
    values: dict[str, list[Any]] = {}
    wards = split_list(cells.get("wards", ""))
    if "contacts" in cells:
        values["contacts"] = _contacts(errors, cells["contacts"])
        # A contact's ward must be selectable as a ward of the customer too.
        wards += [c["ward"] for c in values["contacts"] if c["ward"] and c["ward"] not in wards]
    if "wards" in cells or wards:
        values["wards"] = list(dict.fromkeys(wards))
    return values


def _parse_customer(record: Record, reps: Reps) -> tuple[_Item | None, list[RowError]]:
    errors = RowErrors(record.row)
    cells = record.cells
    name = required(errors, cells, "name", "客户名称", 200)
    values: dict[str, Any] = {}
    if "aliases" in cells:
        values["aliases"] = [alias for alias in split_list(cells["aliases"]) if alias != name]
    if "grade" in cells:
        values["grade"] = _grade(errors, cells["grade"])
    if "address" in cells:
        values["address"] = text(errors, cells, "address", "地址", 300)
    values |= coordinates(errors, cells)
    values |= _wards_and_contacts(errors, cells)
    if "rep" in cells:
        # The rep responsible for the customer; an empty cell clears it, a file without the column leaves it alone.
        values["rep_id"] = reps.check(errors, "rep", "负责代表", cells["rep"]) if cells["rep"] else None
    if errors.items or name is None:
        return None, errors.items
    return _Item(record.row, name, values), []


def _validate_customers(records: list[Record], reps: Reps, errors: list[RowError]) -> list[_Item]:
    return _parse_unique(records, "name", "客户名称", lambda r: _parse_customer(r, reps), errors)


# ------------------------------------------------------------------------------------------------ writing


async def _write_batch(
    target: _Target[_Model],
    session: AsyncSession,
    items: Sequence[_Item],
    *,
    now: datetime,
    actor_id: str | None,
    tz: tzinfo | None = None,
) -> list[Outcome]:
    """Create or update each item by key, with one audit row per created/updated record. ``tz``: the org's zone (the
    day a customer's grade changed)."""
    key_column = getattr(target.model, target.key_field)
    found = await session.scalars(select(target.model).where(key_column.in_([i.key for i in items])))
    existing = {getattr(obj, target.key_field): obj for obj in found}
    outcomes: list[Outcome] = []
    audited: list[tuple[_Model, str, dict[str, Any]]] = []
    for item in items:
        obj = existing.get(item.key)
        values = item.values
        if isinstance(obj, Customer) and "grade" in values and values["grade"] != obj.grade:
            # A grade changed by the file follows the cycle rule of 调级 (bot.services.grades): the grade in force
            # this month stays in force until the next; the audit row shows grade, previous_grade and grade_since.
            today = now.astimezone(tz or UTC).date()
            values = {**values, "previous_grade": grade_in_force(obj, cycle_start(today)), "grade_since": today}
        # A person's channel ids go to user_identities; the audit names them by their CSV column, as before.
        plain = {name: value for name, value in values.items() if name not in IDENTITY_COLUMNS}
        ids = {name: value for name, value in values.items() if name in IDENTITY_COLUMNS}
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
        changes = audit.diff(before, values)
        if not changes:
            outcomes.append("unchanged")
            continue
        for name, value in plain.items():
            setattr(obj, name, value)
        _set_identities(obj, ids, now)
        obj.updated_at = now
        audited.append((obj, "import.update", changes))
        outcomes.append("updated")
    await audit_changes(session, target.entity, audited, now=now, actor_id=actor_id)
    return outcomes


def _set_identities(obj: User | Customer, ids: dict[str, str | None], now: datetime) -> None:
    if isinstance(obj, User):
        for column, external_id in ids.items():
            obj.set_channel_id(IDENTITY_COLUMNS[column], external_id, now)


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
    table, report = start(path, ORG_COLUMNS, "org", now)
    if report.errors:
        return report
    directory = await _load_directory(db)
    known_departments = {key.lower(): key for key in departments}
    items = _validate_users(table.records, known_departments, directory, report.errors)
    write = partial(_write_batch, _USERS, now=now, actor_id=actor_id)
    return await write_and_record(
        db, "user", write, table.records, items, report, path, now=now, actor_id=actor_id, progress=progress
    )


async def import_customers(
    db: Database,
    path: Path,
    *,
    now: datetime,
    actor_id: str | None = None,
    tz: tzinfo | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Create or update customers (keyed by name) from the customer file; valid rows are written regardless. The
    optional ``rep`` column must name a user with the rep role (it sets ``Customer.rep_id``). A changed ``grade`` is
    an admin's bulk change: applied like a director's 调级 (``previous_grade``, ``grade_since`` on the day in ``tz``)
    and audited (``import.update`` with the old and new values); no request, no card.

    Raises ImportFileError if the file is unreadable.
    """
    table, report = start(path, CUSTOMER_COLUMNS, "customers", now)
    if report.errors:
        return report
    items = _validate_customers(table.records, await load_reps(db), report.errors)
    write = partial(_write_batch, _CUSTOMERS, now=now, actor_id=actor_id, tz=tz)
    return await write_and_record(
        db, "customer", write, table.records, items, report, path, now=now, actor_id=actor_id, progress=progress
    )
