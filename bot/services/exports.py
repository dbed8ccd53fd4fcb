"""Exports for compliance reviewers (docs/exports.md): visits, support requests, task cards, the audit trail and
plan items as CSV or XLSX, streamed row by row.

One ``Kind`` per export: its table, the time column ``--from``/``--to`` filter on (org days, both ends
included), the column naming whose rows a ``--team`` scope keeps, and its columns (Chinese and English header, how
a value is written). The query streams (``session.stream`` with ``yield_per``: a server-side cursor on
PostgreSQL, ``fetchmany`` on SQLite) and each row is written as it arrives, so memory stays flat for millions of
rows: CSV through the ``csv`` module with a UTF-8 BOM (Excel on Chinese Windows reads BOM-less UTF-8 as GBK),
XLSX through openpyxl's write-only workbook.

Cells are made safe for spreadsheets: a text starting with ``= + - @`` (or a tab / carriage return) gets a
leading ``'`` (OWASP CSV injection), NUL and the other control characters Excel refuses are dropped, and a text
longer than Excel's cell limit (32,767 characters) is cut there.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import IO, Any, Protocol

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from bot.config import Settings
from bot.core.errors import Denial, DomainError
from bot.core.intents import Intent, SendMedia, SendText
from bot.infra import audit, i18n
from bot.services import attachments
from bot.services.team import team_members
from storage.models import AuditLog, Customer, PlanItem, SupportRequest, TaskCard, User, Visit
from storage.vocab import Role

EXCEL_CELL_LIMIT = 32767
YIELD_PER = 1000
# Characters Excel (and openpyxl) refuse in a cell: the C0 controls but tab, newline and carriage return.
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class Format(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"


class ExportError(DomainError):
    """A bad export request; ``key`` is an i18n key and ``params`` its values."""


# ---- cell values ------------------------------------------------------------------------------------------------


def safe_text(text: str) -> str:
    """``text`` as a spreadsheet may show it: control characters dropped, a formula start neutralised by a leading
    ``'``, cut at Excel's cell limit."""
    text = _ILLEGAL.sub("", text)
    if text.startswith(_FORMULA_START):
        text = "'" + text
    return text[:EXCEL_CELL_LIMIT]


def safe_cell(value: Any) -> Any:
    """A value for a cell: numbers stay numbers, None is empty, everything else is safe text."""
    if type(value) is str:
        return safe_text(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return value
    return safe_text(str(value))


@dataclass(frozen=True)
class Ctx:
    """What formatting needs: the org's zone, the language, the settings (request type names)."""

    settings: Settings
    lang: str

    @property
    def en(self) -> bool:
        return self.lang == "en"

    def when(self, value: datetime | None) -> str:
        if value is None:
            return ""
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(self.settings.org.tz).strftime("%Y-%m-%d %H:%M")

    def word(self, key: str, fallback: str) -> str:
        return i18n.t(self.lang, key) if key in i18n.CATALOG else fallback


def _compact(value: Any) -> str:
    if value is None or value == [] or value == {}:
        return ""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "; ".join(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str)


Getter = Callable[[Any, Ctx], Any]


def _raw(name: str) -> Getter:
    return lambda row, _ctx: getattr(row, name)


def _when(name: str) -> Getter:
    return lambda row, ctx: ctx.when(getattr(row, name))


def _day(name: str) -> Getter:
    return lambda row, _ctx: "" if getattr(row, name) is None else getattr(row, name).isoformat()


def _json(name: str) -> Getter:
    return lambda row, _ctx: _compact(getattr(row, name))


def _auto(name: str) -> Getter:
    """By the value's type: a time in the org's zone, a day, JSON as compact text, anything else as it is."""

    def get(row: Any, ctx: Ctx) -> Any:
        value = getattr(row, name)
        if isinstance(value, datetime):
            return ctx.when(value)
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, dict | list):
            return _compact(value)
        return value

    return get


def _yes_no(name: str) -> Getter:
    return lambda row, ctx: ctx.word("export.yes" if getattr(row, name) else "export.no", "")


def _enum(name: str, prefix: str) -> Getter:
    """A stored code as the word people read (``{prefix}.{code}`` in the catalog), the code itself if unknown."""

    def get(row: Any, ctx: Ctx) -> Any:
        code = getattr(row, name)
        return "" if code is None else ctx.word(f"{prefix}.{code}", str(code))

    return get


def _request_type(row: Any, ctx: Ctx) -> str:
    config = ctx.settings.request_types.get(row.type_key)
    if config is None:
        return str(row.type_key)
    return config.name_en if ctx.en else config.name_zh


@dataclass(frozen=True)
class Column:
    zh: str
    en: str
    get: Getter

    def header(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


# ---- the kinds --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """One export: its table and time column, the user column a team scope keeps, the joined names, its columns."""

    key: str
    zh: str
    en: str
    model: Any
    time_column: str
    person_column: str
    columns: Callable[[], Sequence[Column]]
    # (label, user id column) pairs: each adds that user's name to the row as ``<label>_name``.
    people: tuple[tuple[str, str], ...] = ()
    customer: bool = False
    order: tuple[str, ...] = field(default=("id",))

    def name(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


def _visit_columns() -> list[Column]:
    return [
        Column("编号", "ID", _raw("id")),
        Column("拜访时间", "Visited at", _when("visited_at")),
        Column("代表账号", "Rep ID", _raw("rep_id")),
        Column("代表", "Rep", _raw("rep_name")),
        Column("客户编号", "Customer ID", _raw("customer_id")),
        Column("客户", "Customer", _raw("customer_name")),
        Column("科室", "Ward", _raw("ward")),
        Column("联系人", "Contacts", _json("contacts")),
        Column("沟通内容", "Topics", _raw("topics")),
        Column("产品", "Products", _json("products")),
        Column("异议", "Objection", _raw("objection")),
        Column("异议说明", "Objection note", _raw("objection_note")),
        Column("承诺", "Commitments", _raw("commitments")),
        Column("下一步", "Next step", _raw("next_step")),
        Column("客户态度", "Attitude", _raw("attitude")),
        Column("定位", "Location", _enum("location_status", "export.location")),
        Column("距离(米)", "Distance (m)", lambda r, _c: None if r.distance_m is None else round(r.distance_m)),
        Column("已锁定", "Locked", _yes_no("locked")),
        Column("来源渠道", "Channel", _enum("source_channel", "export.channel")),
        Column("创建时间", "Created at", _when("created_at")),
        Column("更新时间", "Updated at", _when("updated_at")),
    ]


def _request_columns() -> list[Column]:
    return [
        Column("编号", "ID", _raw("id")),
        Column("提交时间", "Submitted at", _when("created_at")),
        Column("类型", "Type", _request_type),
        Column("代表账号", "Rep ID", _raw("rep_id")),
        Column("代表", "Rep", _raw("rep_name")),
        Column("客户编号", "Customer ID", _raw("customer_id")),
        Column("客户", "Customer", _raw("customer_name")),
        Column("科室", "Ward", _raw("ward")),
        Column("内容", "Fields", _json("fields")),
        Column("关联拜访", "Visit ID", _raw("visit_id")),
        Column("状态", "Status", _enum("status", "request.status")),
        Column("需要时间", "Needed by", _when("needed_at")),
        Column("来源渠道", "Channel", _enum("source_channel", "export.channel")),
        Column("更新时间", "Updated at", _when("updated_at")),
    ]


def _card_columns() -> list[Column]:
    return [
        Column("编号", "ID", _raw("id")),
        Column("任务号", "Ref", _raw("ref")),
        Column("创建时间", "Created at", _when("created_at")),
        Column("申请编号", "Request ID", _raw("request_id")),
        Column("标题", "Title", _raw("title")),
        Column("部门", "Department", _raw("department")),
        Column("代表账号", "Rep ID", _raw("rep_id")),
        Column("代表", "Rep", _raw("rep_name")),
        Column("状态", "State", _enum("state", "task.state")),
        Column("处理人账号", "Holder ID", _raw("holder_id")),
        Column("处理人", "Holder", _raw("holder_name")),
        Column("响应期限", "Respond by", _when("respond_by")),
        Column("完成期限", "Due at", _when("due_at")),
        Column("首次响应", "First response at", _when("first_response_at")),
        Column("完成时间", "Done at", _when("done_at")),
        Column("关闭时间", "Closed at", _when("closed_at")),
        Column("驳回原因", "Reject reason", _raw("reject_reason")),
        Column("附件", "Attachments", _json("attachments")),
    ]


def _plan_columns() -> list[Column]:
    return [
        Column("编号", "ID", _raw("id")),
        Column("日期", "Day", _day("day")),
        Column("周期", "Period", _enum("period", "export.plan_period")),
        Column("代表账号", "Rep ID", _raw("rep_id")),
        Column("代表", "Rep", _raw("rep_name")),
        Column("客户编号", "Customer ID", _raw("customer_id")),
        Column("客户", "Customer", _raw("customer_name")),
        Column("目的", "Purpose", _raw("purpose")),
        Column("开始", "Starts at", _when("starts_at")),
        Column("结束", "Ends at", _when("ends_at")),
        Column("状态", "Status", _enum("status", "export.plan_status")),
        Column("来源", "Source", _raw("source")),
        Column("创建人", "Created by", _raw("created_by")),
        Column("创建时间", "Created at", _when("created_at")),
    ]


# Headers of the audit trail's columns; a column without one (added later) is exported under its own name.
AUDIT_HEADERS: dict[str, tuple[str, str]] = {
    "id": ("编号", "ID"),
    "at": ("时间", "At"),
    "actor_id": ("操作人账号", "Actor ID"),
    "channel": ("渠道", "Channel"),
    "action": ("操作", "Action"),
    "entity": ("对象类型", "Entity"),
    "entity_id": ("对象编号", "Entity ID"),
    "changes": ("变更内容", "Changes"),
    "seq": ("序号", "Sequence"),
    "prev_hash": ("前一行哈希", "Previous hash"),
    "row_hash": ("本行哈希", "Row hash"),
}


def _audit_columns() -> list[Column]:
    """Every column of ``audit_log`` as the model has it (new columns appear without a change here), the actor's
    name right after the actor's id."""
    out: list[Column] = []
    for col in AuditLog.__table__.columns:
        zh, en = AUDIT_HEADERS.get(col.key, (col.key, col.key))
        get: Getter = _enum("channel", "export.channel") if col.key == "channel" else _auto(col.key)
        out.append(Column(zh, en, get))
        if col.key == "actor_id":
            out.append(Column("操作人", "Actor", _raw("actor_name")))
    return out


KINDS: dict[str, Kind] = {
    "visits": Kind(
        "visits", "拜访", "visits", Visit, "visited_at", "rep_id", _visit_columns, (("rep", "rep_id"),), True
    ),
    "requests": Kind(
        "requests",
        "申请",
        "requests",
        SupportRequest,
        "created_at",
        "rep_id",
        _request_columns,
        (("rep", "rep_id"),),
        True,
    ),
    "cards": Kind(
        "cards",
        "任务",
        "task cards",
        TaskCard,
        "created_at",
        "rep_id",
        _card_columns,
        (("rep", "rep_id"), ("holder", "holder_id")),
    ),
    "audit": Kind("audit", "审计", "audit trail", AuditLog, "at", "actor_id", _audit_columns, (("actor", "actor_id"),)),
    "plans": Kind("plans", "计划", "plans", PlanItem, "day", "rep_id", _plan_columns, (("rep", "rep_id"),), True),
}


def kind_of(key: str) -> Kind:
    try:
        return KINDS[key]
    except KeyError:
        raise ExportError("export.bad_kind", value=key, kinds=" | ".join(KINDS)) from None


# ---- the request ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportSpec:
    """What to export: the kind, the org days ``start``..``end`` (both included), the team of ``team`` (a manager's
    id: the manager and everyone reporting to them, any depth; None: everyone), the format and the language."""

    kind: Kind
    start: date
    end: date
    fmt: Format = Format.CSV
    team: str | None = None
    lang: str = "zh-CN"

    def default_filename(self) -> str:
        return f"{self.kind.key}_{self.start.isoformat()}_{self.end.isoformat()}.{self.fmt.value}"

    def headers(self) -> list[str]:
        return [c.header(self.lang) for c in self.kind.columns()]


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ExportError("export.bad_date", value=text) from None


def make_spec(
    kind: str, start: str, end: str, fmt: str = "csv", team: str | None = None, lang: str = "zh-CN"
) -> ExportSpec:
    """An ``ExportSpec`` from the command line's words (``ExportError`` on a bad one)."""
    first, last = parse_day(start), parse_day(end)
    if last < first:
        raise ExportError("export.bad_range", start=start, end=end)
    try:
        format_ = Format(fmt)
    except ValueError:
        raise ExportError("export.bad_format", value=fmt) from None
    return ExportSpec(
        kind_of(kind), first, last, format_, team, "en" if i18n.normalize_locale(lang) == "en" else "zh-CN"
    )


def _bounds(settings: Settings, spec: ExportSpec) -> tuple[datetime, datetime]:
    tz = settings.org.tz
    start = datetime.combine(spec.start, time(0), tz).astimezone(UTC)
    end = datetime.combine(spec.end + timedelta(days=1), time(0), tz).astimezone(UTC)
    return start, end


def _where(settings: Settings, spec: ExportSpec) -> list[ColumnElement[bool]]:
    table = spec.kind.model.__table__
    col = table.c[spec.kind.time_column]
    if spec.kind.time_column == "day":
        conds: list[ColumnElement[bool]] = [col >= spec.start, col <= spec.end]
    else:
        start, end = _bounds(settings, spec)
        conds = [col >= start, col < end]
    if spec.team is not None:
        person = table.c[spec.kind.person_column]
        conds.append(or_(person == spec.team, person.in_(select(team_members(spec.team).c.id))))
    return conds


def _query(settings: Settings, spec: ExportSpec) -> Select[Any]:
    table = spec.kind.model.__table__
    extra: list[Any] = []
    stmt_joins: list[tuple[Any, Any]] = []
    for label, column in spec.kind.people:
        person = aliased(User)
        extra.append(person.name.label(f"{label}_name"))
        stmt_joins.append((person, person.id == table.c[column]))
    if spec.kind.customer:
        extra.append(Customer.name.label("customer_name"))
        stmt_joins.append((Customer, Customer.id == table.c["customer_id"]))
    stmt = select(*table.c, *extra).select_from(table)
    for target, on in stmt_joins:
        stmt = stmt.outerjoin(target, on)
    order = [table.c[spec.kind.time_column], *(table.c[c] for c in spec.kind.order)]
    return stmt.where(*_where(settings, spec)).order_by(*order)


async def count_rows(session: AsyncSession, settings: Settings, spec: ExportSpec) -> int:
    """How many rows the export will have (one COUNT on the filtered table, no joins)."""
    table = spec.kind.model.__table__
    total = await session.scalar(select(func.count()).select_from(table).where(*_where(settings, spec)))
    return int(total or 0)


async def rows(
    session: AsyncSession, settings: Settings, spec: ExportSpec, limit: int | None = None
) -> AsyncIterator[list[Any]]:
    """The export's rows, formatted and made safe, streamed from the database."""
    ctx = Ctx(settings, spec.lang)
    columns = spec.kind.columns()
    stmt = _query(settings, spec)
    if limit is not None:
        stmt = stmt.limit(limit)
    result = await session.stream(stmt.execution_options(yield_per=YIELD_PER))
    async for row in result:
        yield [safe_cell(c.get(row, ctx)) for c in columns]


# ---- writers ----------------------------------------------------------------------------------------------------


class Writer(Protocol):
    def write(self, row: Sequence[Any]) -> None: ...

    def close(self) -> None: ...


class CsvWriter:
    """CSV in UTF-8 with a BOM (so Excel on Chinese Windows does not read it as GBK), RFC 4180 quoting."""

    def __init__(self, out: IO[bytes]) -> None:
        self._text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="", write_through=False)
        self._csv = csv.writer(self._text)

    def write(self, row: Sequence[Any]) -> None:
        self._csv.writerow(row)

    def close(self) -> None:
        self._text.flush()
        self._text.detach()


class XlsxWriter:
    """XLSX through openpyxl's write-only workbook: each row goes to a temporary file as it is appended."""

    def __init__(self, out: IO[bytes], title: str) -> None:
        from openpyxl import Workbook

        self._out = out
        self._book = Workbook(write_only=True)
        self._sheet = self._book.create_sheet(title[:31] or "export")

    def write(self, row: Sequence[Any]) -> None:
        self._sheet.append(list(row))

    def close(self) -> None:
        self._book.save(self._out)


def writer_for(spec: ExportSpec, out: IO[bytes]) -> Writer:
    return XlsxWriter(out, spec.kind.name(spec.lang)) if spec.fmt is Format.XLSX else CsvWriter(out)


async def write_export(
    session: AsyncSession,
    settings: Settings,
    spec: ExportSpec,
    out: IO[bytes],
    *,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write the export to ``out`` (header row first); returns the number of data rows. ``progress(n)`` is
    called every ``YIELD_PER`` rows and at the end with the rows written since the previous call."""
    writer = writer_for(spec, out)
    writer.write([safe_text(h) for h in spec.headers()])
    count = pending = 0
    async for row in rows(session, settings, spec, limit):
        writer.write(row)
        count += 1
        pending += 1
        if progress is not None and pending >= YIELD_PER:
            progress(pending)
            pending = 0
    writer.close()
    if progress is not None and pending:
        progress(pending)
    return count


def record_export(
    session: AsyncSession,
    *,
    at: datetime,
    spec: ExportSpec,
    row_count: int,
    actor_id: str | None,
    channel: str | None,
    by: str | None = None,
    truncated: bool = False,
) -> None:
    """The audit row of an export: the kind, range, scope, row count, format and who asked."""
    changes: dict[str, Any] = {
        "kind": spec.kind.key,
        "from": spec.start.isoformat(),
        "to": spec.end.isoformat(),
        "scope": f"team:{spec.team}" if spec.team else "all",
        "rows": row_count,
        "format": spec.fmt.value,
        "lang": spec.lang,
    }
    if by:
        changes["by"] = by
    if truncated:
        changes["truncated"] = True
    audit.record(
        session,
        at=at,
        action="export",
        entity="export",
        entity_id=spec.kind.key,
        actor_id=actor_id,
        channel=channel,
        changes=changes,
    )


# ---- in chat ----------------------------------------------------------------------------------------------------

# Rows a chat export holds at most (the file is built in memory and sent as one message); the CLI has no cap.
CHAT_CAP = 200_000
COMPLIANCE = "compliance"
CHAT_KINDS: dict[str, str] = {
    "拜访": "visits",
    "visits": "visits",
    "visit": "visits",
    "申请": "requests",
    "requests": "requests",
    "request": "requests",
    "任务": "cards",
    "cards": "cards",
    "tasks": "cards",
    "审计": "audit",
    "audit": "audit",
    "计划": "plans",
    "plans": "plans",
    "plan": "plans",
}
_MONTH = re.compile(r"^(\d{4})[-/.年](\d{1,2})月?$")
_RANGE = re.compile(r"^(.+?)\s*(?:~|～|至|到|—|--)\s*(.+)$")
_DAY = re.compile(r"^(?:(\d{4})[-/.年])?(\d{1,2})[-/.月](\d{1,2})日?$")


def may_export(user: User) -> bool:
    """Admins and the compliance department (its members and head) may export in chat; they see every row."""
    return Role.ADMIN in (user.roles or []) or user.department == COMPLIANCE


def _month_span(year: int, month: int) -> tuple[date, date]:
    first = date(year, month, 1)
    following = date(year + month // 12, month % 12 + 1, 1)
    return first, following - timedelta(days=1)


def _one_day(text: str, today: date) -> date | None:
    m = _DAY.match(text)
    if m is None:
        return None
    try:
        return date(int(m[1]) if m[1] else today.year, int(m[2]), int(m[3]))
    except ValueError:
        return None


def parse_period(text: str, today: date) -> tuple[date, date] | None:
    """The org days a chat period names: 本月 / 上月 / 本周 / 上周 / 今天 / 2026-11 / 2026-11-05 / 11-01~11-30
    (a day without a year is this year's); nothing is this month. None when it cannot be read."""
    words = text.strip().lower()
    if words in ("", "本月", "这个月", "this month"):
        return _month_span(today.year, today.month)
    if words in ("上月", "上个月", "last month"):
        previous = today.replace(day=1) - timedelta(days=1)
        return _month_span(previous.year, previous.month)
    if words in ("本周", "这周", "this week"):
        monday = today - timedelta(days=today.weekday())
        return monday, monday + timedelta(days=6)
    if words in ("上周", "last week"):
        monday = today - timedelta(days=today.weekday() + 7)
        return monday, monday + timedelta(days=6)
    if words in ("今天", "today"):
        return today, today
    m = _MONTH.match(words)
    if m is not None:
        month = int(m[2])
        return _month_span(int(m[1]), month) if 1 <= month <= 12 else None
    m = _RANGE.match(words)
    if m is not None:
        first, last = _one_day(m[1], today), _one_day(m[2], today)
        if first is None or last is None or last < first:
            return None
        return first, last
    day = _one_day(words, today)
    return None if day is None else (day, day)


async def chat_export(
    session: AsyncSession, settings: Settings, user: User, args: str, channel: str, now: datetime
) -> list[Intent]:
    """``导出 拜访 本月``: the XLSX file (in the attachment store, readable by the asker only, sent as a file) and
    its audit row; refused for anyone but admins and compliance (the refusal audited too)."""
    kind_word, _, period_text = args.strip().partition(" ")
    key = CHAT_KINDS.get(kind_word.strip().lower())
    if not may_export(user):
        raise DomainError("export.denied", denial=Denial("export.denied", "export", key, {"asked": args.strip()[:200]}))
    if key is None:
        raise DomainError("export.usage")
    today = now.astimezone(settings.org.tz).date()
    span = parse_period(period_text, today)
    if span is None:
        raise DomainError("export.bad_period", value=period_text.strip())
    lang = i18n.normalize_locale(user.locale)
    spec = ExportSpec(KINDS[key], span[0], span[1], Format.XLSX, None, "en" if lang == i18n.EN else "zh-CN")
    params = {"kind": spec.kind.name(user.locale), "start": spec.start.isoformat(), "end": spec.end.isoformat()}
    total = await count_rows(session, settings, spec)
    out = io.BytesIO()
    written = await write_export(session, settings, spec, out, limit=CHAT_CAP)
    record_export(
        session, at=now, spec=spec, row_count=written, actor_id=user.id, channel=channel, truncated=total > written
    )
    filename = f"{spec.kind.name(spec.lang)}_{spec.start.isoformat()}_{spec.end.isoformat()}.xlsx"
    row = await attachments.store_made(session, settings, user.id, filename, out.getvalue(), now)
    caption = i18n.t(user.locale, "export.sent", rows=written, filename=row.filename, **params)
    intents: list[Intent] = []
    if written == 0:
        intents.append(
            SendText(channel=channel, user_ids=(user.id,), text=i18n.t(user.locale, "export.empty", **params))
        )
    intents.append(
        SendMedia(
            channel=channel,
            user_ids=(user.id,),
            media_type="file",
            media_id=attachments.media_id(row.token),
            source_channel=attachments.MADE,
            caption=caption,
        )
    )
    if total > written:
        capped = i18n.t(user.locale, "export.capped", cap=CHAT_CAP, total=total, kind=key, **params)
        intents.append(SendText(channel=channel, user_ids=(user.id,), text=capped))
    return intents
