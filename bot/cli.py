"""The `salesbot` command line: serve, demo, db upgrade, import, config, calendar, digest, customers, and each
channel's commands."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from aiohttp import web

from bot.config import ConfigError, Settings, load_settings, parse_settings, resolve_config_path
from bot.infra.logging_setup import setup_logging

if TYPE_CHECKING:
    from bot.calendar.workcal import OfficialDays

log = logging.getLogger("salesbot.cli")
T = TypeVar("T")
DEMO_DATA = Path(__file__).parent / "demo_data"

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML config file (default: $SALESBOT_CONFIG, else built-in defaults).",
)


def _command_words() -> frozenset[str]:
    """The words built-in commands answer, as the routers declare them (refused as request-type keywords)."""
    from handlers import command_words

    return command_words()


def _checked_settings(path: str | None) -> Settings:
    """The config at ``path`` with every check, the routers' command words included (configuration sits below the
    handlers, so the composition root passes them)."""
    return load_settings(path, reserved=_command_words())


def _load(config_path: str | None, overrides: dict[str, Any] | None = None) -> Settings:
    path = resolve_config_path(config_path)
    try:
        settings = _checked_settings(path)
        if overrides:
            data = settings.model_dump(mode="python")
            _merge(data, overrides)
            _unwrap_secrets(data)
            settings = parse_settings(data, path or "<defaults>", _command_words())
    except ConfigError as exc:
        _print_config_errors(exc)
        sys.exit(1)
    setup_logging(settings.logging.level, settings.logging.json_format)
    from storage import audit_chain

    audit_chain.configure(settings.audit.key_bytes())
    return settings


def _merge(data: dict[str, Any], overrides: dict[str, Any]) -> None:
    for key, value in overrides.items():
        if isinstance(value, dict):
            _merge(data.setdefault(key, {}), value)
        else:
            data[key] = value


def _unwrap_secrets(data: Any) -> None:
    from pydantic import SecretStr

    if isinstance(data, dict):
        for k, v in data.items():
            if isinstance(v, SecretStr):
                data[k] = v.get_secret_value()
            else:
                _unwrap_secrets(v)


def _print_config_errors(exc: ConfigError) -> None:
    click.echo(f"配置错误 / configuration errors in {exc.source}:", err=True)
    for issue in exc.issues:
        click.echo(f"  - {issue}", err=True)


def _run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await coro_fn()

    return asyncio.run(main())


@click.group()
@click.version_option(package_name="salesbot")
def main() -> None:
    """salesbot — chat-ops for field sales teams (chat platforms and a web console)."""


# ---- serve / demo -------------------------------------------------------------------------------------------


def _serve(settings: Settings, config_path: str | None = None, sock: socket.socket | None = None) -> None:
    from bot.app import build_app, freeze_startup_heap
    from bot.runtime import Runtime

    async def make() -> web.Application:
        runtime = Runtime(settings)
        path = resolve_config_path(config_path)

        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, lambda: runtime.reload_from(path))
        app = build_app(runtime)
        app.on_startup.append(freeze_startup_heap)  # after the runtime's start (cleanup_ctx runs first)
        return app

    # Bind before anything else: start-up recovery (pending events, leases, escalation catch-up) must not run
    # for a process that cannot serve.
    sock = sock or _bind(settings.server.host, settings.server.port)
    if settings.server.pid_file:
        Path(settings.server.pid_file).write_text(f"{os.getpid()}\n", encoding="ascii")

    from bot import channels

    where = f"http://{settings.server.host}:{settings.server.port}"
    pages = "".join(f" — {p.name}: {where}{p.home}" for p in channels.enabled(settings) if p.home)
    click.echo(f"salesbot serving on {where}{pages}")
    web.run_app(make(), sock=sock, print=None)


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, or one clear line and exit 1 (port taken, address not on this machine …)."""
    try:
        return socket.create_server((host, port), backlog=1024)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            click.echo(
                f"端口 {port} 已被占用（{host}:{port} address already in use）：请先停止占用它的程序，"
                "或用 --port 换一个端口（make demo PORT=8081）。",
                err=True,
            )
        elif exc.errno == errno.EACCES:
            click.echo(f"没有权限监听端口 {port}（{host}:{port} permission denied）：请用 1024 以上的端口。", err=True)
        else:
            click.echo(f"无法监听 {host}:{port}（cannot listen: {exc.strerror or exc}）。", err=True)
        sys.exit(1)


@main.command()
@config_option
@click.option("--host", default=None, help="Override [server] host.")
@click.option("--port", type=int, default=None, help="Override [server] port.")
def serve(config_path: str | None, host: str | None, port: int | None) -> None:
    """Run the bot (web endpoints, inbound pipeline, outbox worker)."""
    overrides: dict[str, Any] = {"server": {}}
    if host:
        overrides["server"]["host"] = host
    if port:
        overrides["server"]["port"] = port
    settings = _load(config_path, overrides)
    sock = _bind(settings.server.host, settings.server.port)
    _run(lambda: _check_schema(settings))
    _serve(settings, config_path, sock)


async def _check_schema(settings: Settings) -> None:
    from storage.db import Database
    from storage.migrate import current_revision, head_revision

    db = Database(settings.database.url)
    try:
        rev = await current_revision(db)
    finally:
        await db.dispose()
    if rev != head_revision():
        click.echo(
            f"database is at revision {rev}, code expects {head_revision()}: run `salesbot db upgrade`",
            err=True,
        )
        sys.exit(1)


@main.command()
@config_option
@click.option("--port", type=int, default=None, help="Override [server] port.")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), default="salesbot-demo.db", show_default=True)
def demo(config_path: str | None, port: int | None, db_path: str) -> None:
    """Try everything on a laptop: SQLite, demo org and customers, console in demo mode."""
    overrides: dict[str, Any] = {
        "org": {"demo": True},
        "console": {"enabled": True},
        "database": {"url": f"sqlite+aiosqlite:///{Path(db_path).resolve()}"},
    }
    if port:
        overrides["server"] = {"port": port}
    settings = _load(config_path, overrides)

    async def prepare() -> None:
        from storage.db import Database
        from storage.migrate import upgrade

        db = Database(settings.database.url)
        try:
            await upgrade(db)
            org = await _import(db, settings, "org", DEMO_DATA / "org.csv", quiet=True)
            customers = await _import(db, settings, "customers", DEMO_DATA / "customers.csv", quiet=True)
            from bot import demo_activity
            from bot.infra.clock import SystemClock

            now = SystemClock().now()
            await demo_activity.seed(db, settings, now.astimezone(settings.org.tz).date(), now)
        finally:
            await db.dispose()
        click.echo(f"demo data: {org.total} people, {customers.total} customers ({db_path})")

    sock = _bind(settings.server.host, settings.server.port)
    _run(prepare)
    _serve(settings, sock=sock)


# ---- db -----------------------------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@config_option
@click.option("--revision", default="head", show_default=True)
def db_upgrade(config_path: str | None, revision: str) -> None:
    """Apply migrations up to REVISION."""
    settings = _load(config_path)

    async def go() -> str | None:
        from storage.db import Database
        from storage.migrate import current_revision, upgrade

        database = Database(settings.database.url)
        try:
            await upgrade(database, revision)
            return await current_revision(database)
        finally:
            await database.dispose()

    click.echo(f"database at revision {_run(go)}")


# ---- import -------------------------------------------------------------------------------------------------


@main.group("import")
def import_() -> None:
    """Load the org or customer directory, visit plans, historic visits or customer activity from CSV/XLSX."""


async def _import(db: Any, settings: Settings, kind: str, path: Path, quiet: bool = False) -> Any:
    from bot.imports import org as importer
    from bot.imports.activity import import_activity
    from bot.imports.plans import import_plans
    from bot.imports.table import read_table
    from bot.imports.visits import import_visits
    from bot.infra.clock import SystemClock

    now = SystemClock().now()
    total = len(read_table(path)[1])
    with click.progressbar(length=total, label=f"importing {kind}", file=io.StringIO() if quiet else None) as bar:
        done = 0

        def progress(n: int) -> None:
            nonlocal done
            bar.update(n - done)
            done = n

        if kind == "org":
            return await importer.import_org(
                db, path, now=now, departments=settings.departments.keys(), progress=progress
            )
        if kind == "plans":
            return await import_plans(db, path, now=now, tz=settings.org.tz, progress=progress)
        if kind == "visits":
            return await import_visits(db, path, now=now, cfg=settings.visits, tz=settings.org.tz, progress=progress)
        if kind in ("purchases", "trials", "events"):
            return await import_activity(db, kind, path, now=now, progress=progress)  # type: ignore[arg-type]
        return await importer.import_customers(db, path, now=now, tz=settings.org.tz, progress=progress)


def _import_command(kind: str) -> Callable[..., None]:
    def command(config_path: str | None, file: str) -> None:
        settings = _load(config_path)

        async def go() -> Any:
            from bot.imports.table import ImportFileError
            from storage.db import Database

            database = Database(settings.database.url)
            try:
                return await _import(database, settings, kind, Path(file))
            except ImportFileError as exc:
                click.echo(f"无法读取文件 / cannot read {file}: {exc}", err=True)
                sys.exit(1)
            finally:
                await database.dispose()

        report = _run(go)
        click.echo(
            f"{kind}: {report.total} rows — {report.created} created, {report.updated} updated, "
            f"{report.unchanged} unchanged, {len(report.errors)} with errors"
        )
        for err in report.errors:
            column = f" [{err.column}]" if err.column else ""
            click.echo(f"  第 {err.row} 行{column}: {err.message}", err=True)
        for warning in report.warnings:  # written all the same
            column = f" [{warning.column}]" if warning.column else ""
            click.echo(f"  提示 / note: 第 {warning.row} 行{column}: {warning.message}", err=True)
        if report.errors:
            sys.exit(2)

    command.__name__ = f"import_{kind}"
    return command


_IMPORT_HELP = {
    "org": "Import the people (org directory) from FILE (CSV or XLSX); re-import updates by user_id, never duplicates.",
    "customers": "Import the customer directory from FILE (CSV or XLSX); re-import updates by name, never duplicates.",
    "plans": "Import visit plans from FILE (CSV or XLSX); re-import updates by (rep, customer, period, day).",
    "visits": "Import historic visits from FILE (CSV or XLSX); re-import updates by (rep, customer, visited_at).",
    "purchases": "Import purchases per customer and month from FILE (CSV or XLSX); re-import replaces the amount.",
    "trials": "Import new-product trials from FILE (CSV or XLSX); keyed by (customer, product, date).",
    "events": "Import academic events from FILE (CSV or XLSX); re-import updates attendees by (customer, event, date).",
}
for _kind, _help in _IMPORT_HELP.items():
    import_.command(_kind, help=_help)(
        click.argument("file", type=click.Path(exists=True, dir_okay=False))(config_option(_import_command(_kind)))
    )


# ---- config -------------------------------------------------------------------------------------------------


@main.group()
def config() -> None:
    """Configuration."""


@config.command("check")
@click.argument("path", required=False, type=click.Path(dir_okay=False))
@config_option
def config_check(path: str | None, config_path: str | None) -> None:
    """Validate a config file; print every error with its TOML path (exit 1 on errors)."""
    target = path or resolve_config_path(config_path)
    try:
        settings = _checked_settings(target)
    except ConfigError as exc:
        _print_config_errors(exc)
        sys.exit(1)
    from bot import channels

    names = [p.name for p in channels.enabled(settings)]
    _calendar_coverage(settings)
    click.echo(f"{target or '<defaults>'}: OK (channels: {', '.join(names) or 'none'})")


@config.command("reload")
@click.argument("path", required=False, type=click.Path(dir_okay=False))
@config_option
@click.option("--pid", type=int, default=None, help="The server's process id (default: read [server] pid_file).")
def config_reload(path: str | None, config_path: str | None, pid: int | None) -> None:
    """Check the config, then tell the running server to load it (SIGHUP); a bad config changes nothing."""
    target = path or resolve_config_path(config_path)
    try:
        settings = _checked_settings(target)
    except ConfigError as exc:
        _print_config_errors(exc)
        click.echo("not reloaded: the server keeps its running configuration", err=True)
        sys.exit(1)
    if pid is None:
        pid_file = settings.server.pid_file
        if not pid_file or not Path(pid_file).exists():
            click.echo("no server pid: pass --pid or set [server] pid_file", err=True)
            sys.exit(2)
        pid = int(Path(pid_file).read_text(encoding="ascii").strip())
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        click.echo(f"no process {pid}", err=True)
        sys.exit(2)
    click.echo(f"{target or '<defaults>'}: OK, reload sent to process {pid}")


# ---- calendar -----------------------------------------------------------------------------------------------


@main.group()
def calendar() -> None:
    """Official holidays and make-up working days (调休) of the working calendar."""


def _official_days_or_reason(settings: Settings) -> tuple[OfficialDays | None, str | None]:
    """The imported days of the configured database, or None and why they could not be read."""
    from sqlalchemy.engine import make_url

    from bot.calendar.official import load_official_days
    from storage.db import Database

    url = make_url(settings.database.url)
    sqlite_file = url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:"
    if sqlite_file and not Path(str(url.database)).exists():  # connecting would create an empty file
        return None, f"database file {url.database} does not exist"

    async def go() -> OfficialDays:
        database = Database(settings.database.url)
        try:
            return await asyncio.wait_for(load_official_days(database), 10)
        finally:
            await database.dispose()

    try:
        return _run(go), None
    except Exception as exc:  # unreachable, not migrated, wrong password …: say so, never a traceback
        return None, f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}".rstrip(": ")


def _calendar_coverage(settings: Settings) -> None:
    """`config check`: warn when neither the package nor an imported arrangement covers this year or the next."""
    from datetime import datetime

    from bot.calendar.workcal import coverage_warning, with_official_days

    today = datetime.now(settings.org.tz).date()
    warning = coverage_warning(settings.calendar, today)
    if warning is None:
        return
    days, reason = _official_days_or_reason(settings)
    if days is not None:
        warning = coverage_warning(with_official_days(settings.calendar, days), today)
    if warning:
        click.echo(f"warning: calendar: {warning}", err=True)
    if reason:
        click.echo(
            f"warning: calendar: could not check the imported holiday days in the database ({reason}); "
            "the check above counts the chinese-calendar package only",
            err=True,
        )


@calendar.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--year", type=click.IntRange(1900, 2999), default=None, help="The year (when the text has no title).")
@click.option("--replace", is_flag=True, help="Replace the year's imported days instead of adding to them.")
@config_option
def calendar_import(file: str, year: int | None, replace: bool, config_path: str | None) -> None:
    """Import a year's official holidays from FILE: the State Council notice text, or TOML/CSV of days."""
    from bot.calendar.holiday_notice import parse_file
    from bot.calendar.official import import_arrangement
    from bot.infra.clock import SystemClock
    from storage.db import Database

    settings = _load(config_path)
    path = Path(file)
    arr = parse_file(path.name, path.read_bytes(), year)
    for problem in arr.warnings:
        click.echo(f"警告 / warning: {problem}", err=True)
    if not arr.ok or arr.year is None:
        for problem in arr.errors:
            click.echo(f"错误 / error: {problem}", err=True)
        click.echo(f"未导入任何日期 / nothing imported ({len(arr.errors)} errors)", err=True)
        sys.exit(1)
    _run(lambda: _check_schema(settings))

    async def go() -> Any:
        database = Database(settings.database.url)
        try:
            source = f"{arr.form}: {path.name}"
            return await import_arrangement(database, arr, source=source, now=SystemClock().now(), replace=replace)
        finally:
            await database.dispose()

    result = _run(go)
    if not result.ok:
        for problem in result.conflicts:
            click.echo(f"错误 / error: {problem}", err=True)
        click.echo(f"未导入任何日期 / nothing imported ({len(result.conflicts)} conflicts)", err=True)
        sys.exit(1)
    closed = sum(1 for d in arr.days if d.kind == "closed")
    click.echo(
        f"{arr.year}: {closed} 天放假 / closed, {len(arr.days) - closed} 天调休上班 / make-up working days "
        f"from {path.name} ({arr.form}) — {result.added} added, {result.unchanged} unchanged"
        + (f", {result.replaced} replaced" if replace else "")
        + (f", {result.kept} other stored days of {arr.year} kept (--replace drops them)" if result.kept else "")
    )
    for line in _holiday_lines([(d.name, d.kind == "closed", d.day) for d in arr.days]):
        click.echo(f"  {line}")
    click.echo("运行中的服务：salesbot config reload 后生效 / a running server: run salesbot config reload")


def _holiday_lines(days: list[tuple[str, bool, Any]]) -> list[str]:
    """``春节：放假 2月6日（周六）至2月13日（周六）（8 天）；上班 2月20日（周六）``, one per holiday in date order."""
    from bot.calendar.holiday_notice import describe_days

    groups: dict[str, tuple[list[Any], list[Any]]] = {}
    for name, closed, day in sorted(days, key=lambda d: d[2]):
        groups.setdefault(name, ([], []))[0 if closed else 1].append(day)
    lines = []
    for name, (off, on) in groups.items():
        parts = [f"放假 / closed {describe_days(off)}（{len(off)} 天）"] if off else []
        parts += [f"上班 / open {describe_days(on)}"] if on else []
        lines.append(f"{name or '—'}：{'；'.join(parts)}")
    return lines


@calendar.command("show")
@click.argument("year", type=click.IntRange(1900, 2999))
@config_option
def calendar_show(year: int, config_path: str | None) -> None:
    """Print YEAR's closed days and make-up working days, grouped by holiday, with where each comes from."""
    from bot.calendar.workcal import special_days, with_official_days

    settings = _load(config_path)
    days, reason = _official_days_or_reason(settings)
    if reason:
        click.echo(f"warning: could not read the imported days from the database ({reason})", err=True)
    cfg = with_official_days(settings.calendar, days)
    rules = special_days(cfg, year)
    imported = days is not None and days.covers(year)
    click.echo(f"{year} 年节假日安排 / holiday arrangement for {year}")
    if not settings.calendar.use_chinese_holidays:
        click.echo("  calendar.use_chinese_holidays = false: 法定节假日不计 / public holidays are not used")
    labels = {
        "imported": "导入 / imported",
        "chinese-calendar": "chinese-calendar 软件包 / package",
        "config": "配置 / config extra",
    }
    for source in ("imported", "chinese-calendar", "config"):
        mine = [r for r in rules if r.source == source]
        if not mine:
            continue
        details = sorted({r.detail for r in mine})
        click.echo(f"{labels[source]} ({', '.join(details)}):")
        # Config dates are grouped by their key (extra_closed / extra_open).
        for line in _holiday_lines([(r.name or r.detail, r.closed, r.day) for r in mine]):
            click.echo(f"  {line}")
    if imported:
        from bot.calendar.workcal import holiday_data_years

        span = holiday_data_years()
        if span and span[0] <= year <= span[1]:
            click.echo(f"  导入的日期取代软件包的 {year} 年数据 / the imported days replace the package's {year} data")
    if not any(r.source != "config" for r in rules) and settings.calendar.use_chinese_holidays:
        weekdays = ", ".join(map(str, settings.calendar.weekdays))
        click.echo(
            f"{year} 年没有节假日数据 / no holiday data for {year}: working-hour deadlines count ISO weekdays "
            f"{weekdays} only (plus config extras). Import the State Council notice: salesbot calendar import FILE"
        )


# ---- digest -------------------------------------------------------------------------------------------------


@main.command()
@config_option
@click.option("--user", "user_id", required=True, help="Whose digest: their user id (mgr01).")
@click.option("--date", "day", default=None, help="Any day of the period, YYYY-MM-DD (default: today, org time).")
@click.option("--period", type=click.Choice(["day", "week", "month"]), default="day", show_default=True)
@click.option("--rep", "rep_id", default=None, help="Only this rep of the user's scope (user id).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--detail", is_flag=True, help="Text: per rep and per department too (as 日报 详情).")
@click.option("--now", "now_text", default=None, help="The instant to compute at, ISO 8601 (default: now).")
def digest(
    config_path: str | None,
    user_id: str,
    day: str | None,
    period: str,
    rep_id: str | None,
    fmt: str,
    detail: bool,
    now_text: str | None,
) -> None:
    """Print the digest USER would receive (JSON: the stable document of docs/digest.md)."""
    from datetime import UTC, date, datetime
    from typing import cast

    from bot.core.errors import DomainError
    from bot.infra import i18n
    from bot.infra.clock import SystemClock
    from bot.services.digest import compute_digest
    from bot.services.digest_model import Period
    from bot.services.digest_render import render_digest
    from cards.rich import to_plain
    from storage.db import Database
    from storage.models import User

    settings = _load(config_path)
    try:
        now = datetime.fromisoformat(now_text) if now_text else SystemClock().now()
        if now.tzinfo is None:
            now = now.replace(tzinfo=settings.org.tz)
        now = now.astimezone(UTC)
        wanted = date.fromisoformat(day) if day else now.astimezone(settings.org.tz).date()
    except ValueError as exc:
        click.echo(f"日期无效 / bad date: {exc}", err=True)
        sys.exit(1)
    _run(lambda: _check_schema(settings))

    async def go() -> tuple[Any, str]:
        database = Database(settings.database.url)
        try:
            async with database.read() as session:
                user = await session.get(User, user_id)
                if user is None:
                    click.echo(f"没有这个账号 / no such user: {user_id}", err=True)
                    sys.exit(1)
                result = await compute_digest(
                    session, settings, user, period=cast(Period, period), day=wanted, now=now, rep_id=rep_id
                )
                return result, user.locale
        except DomainError as exc:
            click.echo(i18n.t(settings.org.default_locale, exc.key, **exc.params), err=True)
            sys.exit(2)
        finally:
            await database.dispose()

    result, locale = _run(go)
    if fmt == "json":
        click.echo(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
    else:
        click.echo(to_plain(render_digest(result, settings, locale, detail=detail)))


# ---- customers ----------------------------------------------------------------------------------------------


@main.group()
def customers() -> None:
    """Customers: the nightly health score, the model's report (docs/customers.md)."""


# ---- customers score ----------------------------------------------------------------------------------------


@customers.command("score")
@config_option
@click.option(
    "--night", "night_text", default=None, help="The night to compute, YYYY-MM-DD (default: today, org time)."
)
def customers_score(config_path: str | None, night_text: str | None) -> None:
    """Compute the health scores of every customer for one night now (a backfill, or a night the job missed);
    re-running a night replaces its scores. No alerts are sent."""
    from datetime import date

    from bot.infra.clock import SystemClock
    from bot.services import scoring
    from storage.db import Database

    settings = _load(config_path)
    now = SystemClock().now()
    try:
        night = date.fromisoformat(night_text) if night_text else now.astimezone(settings.org.tz).date()
    except ValueError:
        english = settings.org.default_locale == "en"
        click.echo(
            f"bad date {night_text!r}: use YYYY-MM-DD"
            if english
            else f"日期「{night_text}」无效，请写成 2026-12-04 这样",
            err=True,
        )
        sys.exit(2)
    _run(lambda: _check_schema(settings))

    async def go() -> int:
        database = Database(settings.database.url)
        try:
            async with database.transaction() as session:
                return await scoring.compute_night(session, settings, night, now)
        finally:
            await database.dispose()

    scored = _run(go)
    english = settings.org.default_locale == "en"
    click.echo(
        f"scored {scored} customers for {night.isoformat()}"
        if english
        else f"{night.isoformat()}：已为 {scored} 个客户计算健康分"
    )


# ---- customers report ---------------------------------------------------------------------------------------


@customers.command("report")
@config_option
@click.option("--since", default=None, help="First night of the flag period, YYYY-MM-DD (required).")
@click.option("--window", default=None, help="Outcome window in days after the flag date (default 182).")
@click.option("--flag-days", "flag_days", default=None, help="Length of the flag period in days (default 30).")
@click.option("--points", default=None, help="Target: recommended converts at least this many points better (15).")
@click.option("--team", default=None, help="Only customers whose rep reports to this manager (user id).")
@click.option("--json", "as_json", is_flag=True, help="Machine output: the stable JSON document of docs/customers.md.")
@click.option("--now", "now_text", default=None, help="The instant to compute at, ISO 8601 (default: now).")
def customers_report(
    config_path: str | None,
    since: str | None,
    window: str | None,
    flag_days: str | None,
    points: str | None,
    team: str | None,
    as_json: bool,
    now_text: str | None,
) -> None:
    """Did the customers the model recommended convert better than the others (docs/customers.md)?"""
    from datetime import UTC, datetime

    from bot.infra import i18n
    from bot.infra.clock import SystemClock
    from bot.services.customer_report import ReportError, customer_report, parse_params, render_report
    from storage.db import Database

    settings = _load(config_path)
    locale = settings.org.default_locale
    try:
        params = parse_params(since, window, flag_days, points, team)
        try:
            now = datetime.fromisoformat(now_text) if now_text else SystemClock().now()
        except ValueError:
            raise ReportError("customer_report.bad_now", value=now_text) from None
    except ReportError as exc:
        click.echo(i18n.t(locale, exc.key, **exc.params), err=True)
        sys.exit(2)
    if now.tzinfo is None:
        now = now.replace(tzinfo=settings.org.tz)
    now = now.astimezone(UTC)
    _run(lambda: _check_schema(settings))

    async def go() -> Any:
        database = Database(settings.database.url)
        try:
            async with database.read() as session:
                return await customer_report(session, settings, now, params)
        except ReportError as exc:
            click.echo(i18n.t(locale, exc.key, **exc.params), err=True)
            sys.exit(2)
        finally:
            await database.dispose()

    report = _run(go)
    if report.empty:
        click.echo(render_report(report, locale), err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        click.echo(render_report(report, locale))


# ---- audit (the tamper-evident chain, docs/audit.md) ------------------------------------------------------------


@main.group()
def audit() -> None:
    """The audit trail: verify its chain, write an anchor (docs/audit.md)."""


_BREAK_ZH = {
    "edited": "记录被改动（内容与哈希不符）",
    "deleted": "记录被删除（序号缺失）",
    "reordered": "记录顺序被调换或插入（与上一条的哈希不衔接）",
    "truncated": "最新的记录被截掉或重写（与锚点/链头不符）",
    "forged": "伪造的记录（哈希对不上，或不在链中）",
}
_BREAK_EN = {
    "edited": "a row was edited (content does not match its hash)",
    "deleted": "a row was deleted (gap in seq)",
    "reordered": "rows were reordered or inserted (prev_hash does not link)",
    "truncated": "the newest rows were cut off or rewritten (anchor / head mismatch)",
    "forged": "a forged row (hash matches nothing, or outside the chain)",
}


def _seq_or_date(text: str | None, settings: Settings, end: bool) -> int | datetime | None:
    """``--from`` / ``--to``: a seq (digits) or a local day YYYY-MM-DD (``--to`` includes that day)."""
    from datetime import date, timedelta

    if text is None:
        return None
    if text.isdigit():
        return int(text)
    try:
        day = date.fromisoformat(text)
    except ValueError:
        english = settings.org.default_locale == "en"
        click.echo(
            f"bad --from/--to {text!r}: a seq number or YYYY-MM-DD"
            if english
            else f"「{text}」无效：请写序号（如 1200）或日期（如 2026-12-04）",
            err=True,
        )
        sys.exit(2)
    if end:
        day += timedelta(days=1)
    return datetime.combine(day, datetime.min.time(), tzinfo=settings.org.tz)


@audit.command("verify")
@config_option
@click.option("--from", "start_text", default=None, help="First row: a seq or a day YYYY-MM-DD (default: the first).")
@click.option("--to", "end_text", default=None, help="Last row: a seq or a day YYYY-MM-DD (default: the head).")
@click.option(
    "--anchors",
    "anchor_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A JSON-lines anchor file (salesbot audit anchor / [audit] anchors); repeatable.",
)
def audit_verify(
    config_path: str | None, start_text: str | None, end_text: str | None, anchor_files: tuple[str, ...]
) -> None:
    """Recompute the audit chain and report the first break; exit 1 on any break."""
    from storage import audit_chain
    from storage import audit_verify as av
    from storage.db import Database

    settings = _load(config_path)
    english = settings.org.default_locale == "en"
    start = _seq_or_date(start_text, settings, end=False)
    end = _seq_or_date(end_text, settings, end=True)
    anchors = av.read_anchors(Path(f) for f in anchor_files)
    _run(lambda: _check_schema(settings))

    async def go() -> av.Report:
        database = Database(settings.database.url)
        try:
            low, high = await av.seq_range(database, start, end)
            total = await av.count_rows(database, low, high)
            label = "verifying" if english else "校验中"
            with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
                return await av.verify(
                    database,
                    low,
                    None if end is None else high,
                    anchors,
                    key=audit_chain.current_key(),
                    progress=bar.update,
                )
        finally:
            await database.dispose()

    report = _run(go)
    if report.ok:
        if english:
            click.echo(
                f"audit chain intact: {report.rows} rows (seq {report.first_seq or 0}–{report.last_seq or 0}), "
                f"{report.anchors_checked} anchors matched, head {report.head_hash or '-'}"
            )
        else:
            click.echo(
                f"审计链完整：共 {report.rows} 条（序号 {report.first_seq or 0}–{report.last_seq or 0}），"
                f"核对锚点 {report.anchors_checked} 个，链头哈希 {report.head_hash or '-'}"
            )
        return
    first = report.breaks[0]
    where = f"seq {first.seq}" if first.seq is not None else f"id {first.row_id}"
    if english:
        click.echo(f"audit chain BROKEN at {where}: {_BREAK_EN[first.kind]} [{first.kind}] {first.detail}".rstrip())
        click.echo(f"{report.rows} rows verified before the break", err=True)
    else:
        zh_where = f"序号 {first.seq}" if first.seq is not None else f"记录 id {first.row_id}"
        click.echo(f"审计链断裂，位置：{zh_where}：{_BREAK_ZH[first.kind]} [{first.kind}] {first.detail}".rstrip())
        click.echo(f"断点之前已核对 {report.rows} 条", err=True)
    sys.exit(1)


@audit.command("anchor")
@config_option
@click.option(
    "--to",
    "places",
    multiple=True,
    help='Where to write it: "file:/path/anchors.jsonl" or "log" (default: [audit] anchors; else print only).',
)
def audit_anchor_cmd(config_path: str | None, places: tuple[str, ...]) -> None:
    """Write the chain's head (seq, hash, row count, time) now, and print it as a JSON line."""
    from bot import audit_anchor
    from bot.infra.clock import SystemClock
    from storage.db import Database

    settings = _load(config_path)
    _run(lambda: _check_schema(settings))

    async def go() -> dict[str, Any]:
        database = Database(settings.database.url)
        try:
            chosen = list(places) if places else settings.audit.anchors
            return await audit_anchor.anchor_now(database, settings, SystemClock().now(), chosen)
        finally:
            await database.dispose()

    anchor = _run(go)
    click.echo(json.dumps(anchor, ensure_ascii=False, sort_keys=True))


@audit.command("anonymise")
@config_option
@click.argument("user_id")
def audit_anonymise(config_path: str | None, user_id: str) -> None:
    """PIPL: anonymise a departed employee (name, channel ids, personal values in the audit rows about them); the
    chain stays valid through an appended audit.redact row (docs/audit.md)."""
    from bot.infra.clock import SystemClock
    from bot.services import anonymise
    from storage.db import Database

    settings = _load(config_path)
    english = settings.org.default_locale == "en"
    _run(lambda: _check_schema(settings))

    async def go() -> int:
        database = Database(settings.database.url)
        try:
            async with database.transaction() as session:
                return await anonymise.anonymise_user(session, user_id, now=SystemClock().now(), actor_id=None)
        finally:
            await database.dispose()

    try:
        redacted = _run(go)
    except anonymise.UnknownUser:
        click.echo(f"no user {user_id!r}" if english else f"找不到用户「{user_id}」，请检查用户 ID", err=True)
        sys.exit(2)
    click.echo(
        f"{user_id} anonymised; {redacted} audit rows redacted"
        if english
        else f"已匿名化 {user_id}，审计记录中 {redacted} 条已去除个人信息（审计链仍然完整）"
    )


# ---- end of audit -----------------------------------------------------------------------------------------------


# ---- export ---------------------------------------------------------------------------------------------------------


@main.command("export")
@click.argument("kind", required=False)
@click.option("--from", "start", default=None, help="First org day, YYYY-MM-DD (required).")
@click.option("--to", "end", default=None, help="Last org day, YYYY-MM-DD, included (required).")
@click.option("--format", "fmt", default="xlsx", show_default=True, help="csv (UTF-8 with BOM) or xlsx.")
@click.option("--team", default=None, help="Only this manager's team: the manager and everyone below (user id).")
@click.option("--lang", default=None, help="Header and value language: zh (default) or en.")
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Output file (default: <kind>_<from>_<to>.<format> in the current directory).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@config_option
def export(
    kind: str | None,
    start: str | None,
    end: str | None,
    fmt: str,
    team: str | None,
    lang: str | None,
    out_path: str | None,
    quiet: bool,
    config_path: str | None,
) -> None:
    """Export KIND (visits | requests | cards | audit | plans) of the org days --from..--to as CSV or XLSX,
    streamed (docs/exports.md). Every export is itself audited."""
    import getpass

    from bot.infra import i18n
    from bot.infra.clock import SystemClock
    from bot.services import exports
    from storage.db import Database
    from storage.models import User

    settings = _load(config_path)
    locale = lang or settings.org.default_locale
    try:
        if not kind:
            raise exports.ExportError("export.bad_kind", value="", kinds=" | ".join(exports.KINDS))
        if start is None or end is None:
            raise exports.ExportError("export.bad_date", value=start or end or "")
        spec = exports.make_spec(kind, start, end, fmt.lower(), team, locale)
    except exports.ExportError as exc:
        click.echo(i18n.t(locale, exc.key, **exc.params), err=True)
        sys.exit(2)
    path = Path(out_path or spec.default_filename())
    _run(lambda: _check_schema(settings))

    async def go() -> int:
        database = Database(settings.database.url)
        try:
            async with database.read() as session:
                if team is not None and await session.get(User, team) is None:
                    click.echo(i18n.t(locale, "export.no_team", value=team), err=True)
                    sys.exit(2)
                total = await exports.count_rows(session, settings, spec)
                with (
                    path.open("wb") as out,  # noqa: ASYNC230 - the CLI has nothing else to do meanwhile
                    click.progressbar(length=total, label=path.name, file=sys.stderr, hidden=quiet) as bar,
                ):
                    written = await exports.write_export(session, settings, spec, out, progress=bar.update)
            async with database.transaction() as session:
                exports.record_export(
                    session,
                    at=SystemClock().now(),
                    spec=spec,
                    row_count=written,
                    actor_id=None,
                    channel="cli",
                    by=getpass.getuser(),
                )
            return written
        finally:
            await database.dispose()

    written = _run(go)
    click.echo(f"{path}: {written} rows" if spec.lang == "en" else f"{path}：{written} 行")


def _channel_commands() -> None:
    """Each channel plug-in's own commands (``ChannelPlugin.commands``), e.g. ``salesbot console token``."""
    from bot import channels
    from bot.channels.base import CliSupport

    support = CliSupport(config_option=config_option, load=_load, run=_run)
    for plugin in channels.available():
        for command in plugin.commands(support):
            main.add_command(command)


_channel_commands()


if __name__ == "__main__":
    logging.captureWarnings(True)
    main()
