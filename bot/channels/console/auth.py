"""Console sign-in and sessions (no aiohttp here): expiring, revocable sign-in tokens signed with the configured
secret, and server-side session rows behind a random cookie.

Demo mode lets anyone pick a person; the session that follows is the same kind of row.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import raiseload

from bot.config import ConsoleConfig
from bot.infra import audit
from storage.db import Database
from storage.models import ConsoleSession, User

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TOKEN_PURPOSE = "console-token-v2"
# The first format (``user_id.mac``, no expiry): still accepted, with a warning, until the person is revoked.
_LEGACY_PURPOSE = "console-token"
_INSTANT = re.compile(r"^[0-9]{1,13}$")  # milliseconds since 1970; 13 digits reach the year 2286
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_COOKIE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)
MAX_TOKEN_CHARS = 200
# last_seen_at is written at most this often per session: a long-poll or a chatty page does not write on every
# request (SQLite serialises writers). The idle end is therefore known to within this interval.
SEEN_WRITE_INTERVAL = timedelta(minutes=1)
# Ended sessions stay this long (who signed in from where), then go at the person's next sign-in.
KEEP_ENDED = timedelta(days=30)


# ---- sign-in tokens ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenClaims:
    """What a correctly signed token says. ``issued_at``/``expires_at`` are None for the old format."""

    user_id: str
    issued_at: datetime | None
    expires_at: datetime | None

    @property
    def legacy(self) -> bool:
        return self.issued_at is None


def _ms(when: datetime) -> int:
    return (when.astimezone(UTC) - _EPOCH) // timedelta(milliseconds=1)


def _from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def _token_mac(secret: str, user_id: str, issued_ms: int, expires_ms: int) -> str:
    message = f"{_TOKEN_PURPOSE}|{user_id}|{issued_ms}|{expires_ms}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _legacy_mac(secret: str, user_id: str) -> str:
    return hmac.new(secret.encode(), f"{_LEGACY_PURPOSE}|{user_id}".encode(), hashlib.sha256).hexdigest()[:32]


def make_token(secret: str, user_id: str, issued_at: datetime, expires_at: datetime) -> str:
    """The sign-in token an admin hands to ``user_id`` (``salesbot console token USER``):
    ``user_id.issued.expires.mac`` — instants in Unix milliseconds, HMAC-SHA256 over all three."""
    issued, expires = _ms(issued_at), _ms(expires_at)
    return f"{user_id}.{issued}.{expires}.{_token_mac(secret, user_id, issued, expires)}"


def read_token(secret: str, token: str) -> TokenClaims | None:
    """The claims of a token signed with ``secret``, else None. Checks the signature only (constant time), not
    expiry or revocation: see :func:`check_sign_in`."""
    token = token.strip()
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    parts = token.rsplit(".", 3)
    if len(parts) == 4 and _HEX64.fullmatch(parts[3]):
        user_id, issued, expires, mac = parts
        if not user_id or not _INSTANT.fullmatch(issued) or not _INSTANT.fullmatch(expires):
            return None
        expected = _token_mac(secret, user_id, int(issued), int(expires))
        if not hmac.compare_digest(mac.encode(), expected.encode()):
            return None
        return TokenClaims(user_id, _from_ms(int(issued)), _from_ms(int(expires)))
    user_id, _, mac = token.rpartition(".")
    if not user_id or not _HEX32.fullmatch(mac):
        return None
    if not hmac.compare_digest(mac.encode(), _legacy_mac(secret, user_id).encode()):
        return None
    return TokenClaims(user_id, None, None)


async def check_sign_in(db: Database, now: datetime, secret: str, token: str) -> User | None:
    """The active person a sign-in token lets in at ``now``, else None — one answer for a wrong, expired or revoked
    token, so the caller cannot tell which."""
    claims = read_token(secret, token)
    if claims is None:
        return None
    async with db.read() as s:
        user = await s.get(User, claims.user_id)
    if user is None or not user.active:
        return None
    revoked_before = user.console_tokens_after
    if claims.issued_at is None or claims.expires_at is None:
        if revoked_before is not None:
            return None
        log.warning(
            "console sign-in with an old-format token (no expiry) for user %s: deprecated, reissue it with "
            "`salesbot console token %s`",
            user.id,
            user.id,
        )
        return user
    if now >= claims.expires_at or claims.issued_at >= claims.expires_at:
        return None
    if revoked_before is not None and claims.issued_at < revoked_before:
        return None
    return user


def parse_validity(text: str) -> timedelta:
    """``30m``, ``12h``, ``7d`` (also ``1.5d``) → a positive timedelta of at most ten years; ValueError otherwise."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([mhd])\s*", text)
    if match is None:
        raise ValueError(f"{text!r}: expected a number and a unit m/h/d, e.g. 30m, 12h, 7d")
    amount = float(match.group(1))
    unit = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}[match.group(2)]
    if amount <= 0 or amount * unit > timedelta(days=3650):
        raise ValueError(f"{text!r}: must be more than 0 and at most 3650d")
    return amount * unit


# ---- sessions ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionPolicy:
    """How long a session lives: ``idle`` after its last request, ``absolute`` after sign-in at the most."""

    idle: timedelta
    absolute: timedelta

    @classmethod
    def from_config(cls, cfg: ConsoleConfig) -> SessionPolicy:
        return cls(idle=timedelta(hours=cfg.session_idle_hours), absolute=timedelta(days=cfg.session_max_days))

    def alive(self, row: ConsoleSession, now: datetime) -> bool:
        return row.revoked_at is None and now < row.expires_at and now < row.last_seen_at + self.idle


@dataclass(frozen=True)
class NewSession:
    """A session just started: ``cookie`` is its secret (the browser's copy is the only one), ``max_age`` its
    absolute lifetime in seconds."""

    cookie: str
    expires_at: datetime
    max_age: int


def _hash(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def _printable(text: str, limit: int) -> str:
    # PostgreSQL refuses NUL in text; other control characters are no use in a user agent either.
    return "".join(c for c in text if c.isprintable())[:limit]


async def start_session(
    db: Database, now: datetime, user_id: str, policy: SessionPolicy, user_agent: str = ""
) -> NewSession:
    """A new session row for ``user_id`` with a fresh random cookie; only the cookie's SHA-256 is stored."""
    cookie = secrets.token_urlsafe(32)
    expires_at = now + policy.absolute
    async with db.transaction() as s:
        await s.execute(
            delete(ConsoleSession).where(
                ConsoleSession.user_id == user_id, ConsoleSession.expires_at < now - KEEP_ENDED
            )
        )
        s.add(
            ConsoleSession(
                id_hash=_hash(cookie),
                user_id=user_id,
                created_at=now,
                last_seen_at=now,
                expires_at=expires_at,
                revoked_at=None,
                user_agent=_printable(user_agent, 200),
            )
        )
    return NewSession(cookie, expires_at, int(policy.absolute.total_seconds()))


# Built once (this runs on every console request; building the statement cost more than running it). The
# console knows people by their user id: their other channels' ids are not needed here (one query per request
# instead of two); reading them from the returned object is a bug, and raises.
_SESSION_USER = (
    select(ConsoleSession, User)
    .join(User, User.id == ConsoleSession.user_id)
    .where(ConsoleSession.id_hash == bindparam("key"))
    .options(raiseload(User.identities))
)


async def session_user(db: Database, now: datetime, cookie: str | None, policy: SessionPolicy) -> User | None:
    """The active person whose live session ``cookie`` is, else None; refreshes the session's last request
    (at most once per SEEN_WRITE_INTERVAL)."""
    if not cookie or not _COOKIE.fullmatch(cookie):
        return None
    # Looked up by the hash of the secret: the database never sees the cookie, and a timing difference in the
    # index lookup says nothing about a value the attacker does not already have.
    key = _hash(cookie)
    async with db.read() as s:
        found = (await s.execute(_SESSION_USER, {"key": key})).first()
    if found is None:
        return None
    row, user = found
    if not policy.alive(row, now) or not user.active:
        return None
    if now - row.last_seen_at >= SEEN_WRITE_INTERVAL:
        async with db.transaction() as s:
            await s.execute(
                update(ConsoleSession)
                .where(ConsoleSession.id_hash == key, ConsoleSession.revoked_at.is_(None))
                .values(last_seen_at=now)
            )
    return user


async def end_session(db: Database, now: datetime, cookie: str | None) -> bool:
    """Sign out: revoke the session ``cookie`` belongs to. True when a live row was revoked."""
    if not cookie or not _COOKIE.fullmatch(cookie):
        return False
    async with db.transaction() as s:
        result = await s.execute(
            update(ConsoleSession)
            .where(ConsoleSession.id_hash == _hash(cookie), ConsoleSession.revoked_at.is_(None))
            .values(revoked_at=now)
        )
    return bool(getattr(result, "rowcount", 0))


@dataclass(frozen=True)
class Revocation:
    """What ``salesbot console revoke`` did: live sessions ended, and the instant before which tokens are void."""

    user_id: str
    sessions: int
    tokens_before: datetime


async def revoke_user(db: Database, now: datetime, user_id: str, policy: SessionPolicy) -> Revocation | None:
    """Revoke every session of ``user_id`` and every sign-in token issued before ``now`` (audited).
    None when there is no such person."""
    # Token instants have millisecond precision: a token issued in the same millisecond as the revocation is kept.
    cutoff = now.replace(microsecond=now.microsecond // 1000 * 1000)
    async with db.transaction() as s:
        user = await s.get(User, user_id)
        if user is None:
            return None
        open_rows = list(
            await s.scalars(
                select(ConsoleSession).where(ConsoleSession.user_id == user_id, ConsoleSession.revoked_at.is_(None))
            )
        )
        live = sum(policy.alive(r, now) for r in open_rows)
        for r in open_rows:
            r.revoked_at = now
        previous = user.console_tokens_after
        user.console_tokens_after = cutoff
        audit.record(
            s,
            at=now,
            action="console.revoke",
            entity="user",
            entity_id=user_id,
            channel="cli",
            changes={
                "sessions_revoked": live,
                "console_tokens_after": [
                    None if previous is None else previous.isoformat(),
                    cutoff.isoformat(),
                ],
            },
        )
    return Revocation(user_id, live, cutoff)
