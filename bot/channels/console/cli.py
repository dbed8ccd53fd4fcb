"""The console's commands: ``salesbot console token USER`` (a sign-in token) and ``salesbot console revoke USER``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from bot.channels.base import CliSupport
    from bot.config import Settings


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


def group(cli: CliSupport) -> click.Group:
    """The ``console`` command group (built on demand: it uses the main CLI's config loading)."""
    _load, _run, config_option = cli.load, cli.run, cli.config_option

    @click.group()
    def console() -> None:
        """Web console channel."""

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
        from bot.infra.clock import SystemClock

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
        from bot.infra.clock import SystemClock

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

    return console
