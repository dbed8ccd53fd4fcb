"""The `salesbot` command line: serve, demo, db upgrade, import, config check, console tokens."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from aiohttp import web

from bot.config import ConfigError, Settings, load_settings, parse_settings, resolve_config_path
from bot.logging_setup import setup_logging

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


def _load(config_path: str | None, overrides: dict[str, Any] | None = None) -> Settings:
    path = resolve_config_path(config_path)
    try:
        settings = load_settings(path)
        if overrides:
            data = settings.model_dump(mode="python")
            _merge(data, overrides)
            _unwrap_secrets(data)
            settings = parse_settings(data, path or "<defaults>")
    except ConfigError as exc:
        _print_config_errors(exc)
        sys.exit(1)
    setup_logging(settings.logging.level, settings.logging.json_format)
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
    """salesbot — chat-ops for field sales teams (WeCom, DingTalk, web console)."""


# ---- serve / demo -------------------------------------------------------------------------------------------


def _serve(settings: Settings, config_path: str | None = None) -> None:
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

    if settings.server.pid_file:
        Path(settings.server.pid_file).write_text(f"{os.getpid()}\n", encoding="ascii")

    where = f"http://{settings.server.host}:{settings.server.port}"
    click.echo(f"salesbot serving on {where}" + (f" — console: {where}/console" if settings.console_enabled else ""))
    web.run_app(make(), host=settings.server.host, port=settings.server.port, print=None)


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
    _run(lambda: _check_schema(settings))
    _serve(settings, config_path)


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
        finally:
            await db.dispose()
        click.echo(f"demo data: {org.total} people, {customers.total} customers ({db_path})")

    _run(prepare)
    _serve(settings)


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
    """Load the org or customer directory from CSV/XLSX."""


async def _import(db: Any, settings: Settings, kind: str, path: Path, quiet: bool = False) -> Any:
    from bot.clock import SystemClock
    from bot.services import importer

    now = SystemClock().now()
    total = len(importer.read_table(path)[1])
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
        return await importer.import_customers(db, path, now=now, progress=progress)


def _import_command(kind: str) -> Callable[..., None]:
    def command(config_path: str | None, file: str) -> None:
        settings = _load(config_path)

        async def go() -> Any:
            from bot.services.importer import ImportFileError
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
        if report.errors:
            sys.exit(2)

    command.__name__ = f"import_{kind}"
    return command


for _kind in ("org", "customers"):
    import_.command(
        _kind,
        help=f"Import the {_kind} directory from FILE (CSV or XLSX); re-import updates, never duplicates.",
    )(click.argument("file", type=click.Path(exists=True, dir_okay=False))(config_option(_import_command(_kind))))


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
        settings = load_settings(target)
    except ConfigError as exc:
        _print_config_errors(exc)
        sys.exit(1)
    channels = ["console"] if settings.console_enabled else []
    channels += [c for c in ("wecom", "dingtalk") if getattr(settings, c).enabled]
    from datetime import datetime

    from bot.services.workcal import coverage_warning

    warning = coverage_warning(settings.calendar, datetime.now(settings.org.tz).date())
    if warning:
        click.echo(f"warning: calendar: {warning}", err=True)
    click.echo(f"{target or '<defaults>'}: OK (channels: {', '.join(channels) or 'none'})")


@config.command("reload")
@click.argument("path", required=False, type=click.Path(dir_okay=False))
@config_option
@click.option("--pid", type=int, default=None, help="The server's process id (default: read [server] pid_file).")
def config_reload(path: str | None, config_path: str | None, pid: int | None) -> None:
    """Check the config, then tell the running server to load it (SIGHUP); a bad config changes nothing."""
    target = path or resolve_config_path(config_path)
    try:
        settings = load_settings(target)
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


# ---- console ------------------------------------------------------------------------------------------------


@main.group()
def console() -> None:
    """Web console channel."""


def _console_secret(settings: Settings) -> str:
    from bot.config import MIN_SECRET_BYTES

    if settings.console.token_secret is None:
        click.echo("console.token_secret is not set (SALESBOT__CONSOLE__TOKEN_SECRET)", err=True)
        sys.exit(1)
    secret = settings.console.token_secret.get_secret_value()
    if len(secret.encode()) < MIN_SECRET_BYTES:
        click.echo(
            f"console.token_secret must be at least {MIN_SECRET_BYTES} bytes; generate one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(48))'",
            err=True,
        )
        sys.exit(1)
    return secret


@console.command("token")
@click.argument("user_id")
@click.option(
    "--valid",
    default=None,
    metavar="DURATION",
    help="How long it works: 30m, 12h, 7d (default: [console] token_valid_days).",
)
@config_option
def console_token(user_id: str, valid: str | None, config_path: str | None) -> None:
    """Print a console sign-in token for USER_ID (HMAC-signed with console.token_secret, with an expiry)."""
    from datetime import timedelta

    from bot.channels.console.auth import make_token, parse_validity
    from bot.clock import SystemClock

    settings = _load(config_path)
    secret = _console_secret(settings)
    try:
        lifetime = timedelta(days=settings.console.token_valid_days) if valid is None else parse_validity(valid)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--valid") from None
    now = SystemClock().now()
    expires = now + lifetime
    click.echo(make_token(secret, user_id, now, expires))
    local = expires.astimezone(settings.org.tz).strftime("%Y-%m-%d %H:%M")
    click.echo(f"有效期至 / valid until {local} ({settings.org.timezone})", err=True)


@console.command("revoke")
@click.argument("user_id")
@config_option
def console_revoke(user_id: str, config_path: str | None) -> None:
    """Sign USER_ID out everywhere: end all their console sessions and void every token issued before now."""
    from bot.channels.console.auth import Revocation, SessionPolicy, revoke_user
    from bot.clock import SystemClock

    settings = _load(config_path)

    async def go() -> Revocation | None:
        from storage.db import Database

        database = Database(settings.database.url)
        try:
            return await revoke_user(
                database, SystemClock().now(), user_id, SessionPolicy.from_config(settings.console)
            )
        finally:
            await database.dispose()

    done = _run(go)
    if done is None:
        click.echo(f"没有此人 / no such user: {user_id}", err=True)
        sys.exit(1)
    before = done.tokens_before.astimezone(settings.org.tz).strftime("%Y-%m-%d %H:%M:%S")
    click.echo(
        f"{user_id}: {done.sessions} 个有效会话已注销，{before} 之前签发的登录令牌已作废 / "
        f"{done.sessions} live sessions revoked, sign-in tokens issued before {before} ({settings.org.timezone}) "
        "are void"
    )


if __name__ == "__main__":
    logging.captureWarnings(True)
    main()
