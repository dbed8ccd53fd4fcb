"""Console uploads (📎): random tokens, the file type sniffed from the bytes, the per-person daily quota, and the
link to the task card a file is attached to. No HTTP here (see ``bot/channels/console/media.py``).

Who may read a file is decided by ``bot.services.requests.may_see_file`` (the request/card visibility rule)."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import ConsoleConfig
from bot.infra.i18n import t
from storage.models import ConsoleMedia, User

# Media ids of console uploads, as they travel in events, attachments and outbox rows: ``console-<token>``.
PREFIX = "console-"
TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
FILENAME_MAX = 200

# Types a browser may show inline from our origin: raster images and PDF (no SVG: it can carry scripts).
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
INLINE_TYPES = IMAGE_TYPES | {"application/pdf"}
OCTET_STREAM = "application/octet-stream"


def media_id(token: str) -> str:
    return f"{PREFIX}{token}"


def token_of(media_id: str) -> str | None:
    """The token of a console media id, or None for anything else (another platform's media id, a forged or old id)."""
    if not media_id.startswith(PREFIX):
        return None
    token = media_id[len(PREFIX) :]
    return token if TOKEN.fullmatch(token) else None


def sniff(data: bytes) -> str:
    """The content type the bytes really are, for the types shown inline; everything else is octet-stream."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    return OCTET_STREAM


def clean_filename(name: str) -> str:
    """A display name safe for the database and for headers: no control characters (NUL, CR, LF…) or path
    separators, no lone surrogates, at most ``FILENAME_MAX`` characters; ``file`` when nothing is left."""
    kept = []
    for ch in name[: FILENAME_MAX * 4]:
        if ch in "/\\":
            kept.append("_")
        elif unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            kept.append(ch)
    cleaned = "".join(kept).strip().lstrip(".")[:FILENAME_MAX].strip()
    return cleaned or "file"


# ---- quota ----------------------------------------------------------------------------------------------------


class UploadRefused(Exception):
    """An upload the person may not make now; ``kind`` is ``too_large``, ``empty`` or ``quota``, ``message`` is
    the short text they see."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def _size(n: int) -> str:
    """``5 MB``, ``1.5 MB``, ``200 KB``: how people say file sizes."""
    if n >= 1024 * 1024:
        mb = n / (1024 * 1024)
        return f"{mb:.0f} MB" if mb >= 10 or mb == int(mb) else f"{mb:.1f} MB"
    return f"{max(1, round(n / 1024))} KB"


def too_large(cfg: ConsoleConfig, locale: str | None) -> UploadRefused:
    return UploadRefused("too_large", t(locale, "upload.too_large", size=_size(cfg.upload_max_bytes)))


def empty_file(locale: str | None) -> UploadRefused:
    return UploadRefused("empty", t(locale, "upload.empty"))


def _quota_refused(cfg: ConsoleConfig, locale: str | None, by_count: bool) -> UploadRefused:
    if by_count:
        return UploadRefused("quota", t(locale, "upload.quota_count", n=cfg.uploads_per_day))
    return UploadRefused("quota", t(locale, "upload.quota_bytes", size=_size(cfg.upload_bytes_per_day)))


def day_start(now: datetime, tz: ZoneInfo) -> datetime:
    """The start of ``now``'s calendar day in the org zone, as an instant."""
    local = now.astimezone(tz)
    return datetime.combine(local.date(), time(0), tzinfo=tz)


async def used_today(session: AsyncSession, user_id: str, now: datetime, tz: ZoneInfo) -> tuple[int, int]:
    """Files and bytes ``user_id`` uploaded since the start of today (org zone); index ix_console_media_user_at."""
    start = day_start(now, tz)
    row = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(ConsoleMedia.size), 0)).where(
                ConsoleMedia.user_id == user_id,
                ConsoleMedia.created_at >= start,
            )
        )
    ).one()
    return int(row[0]), int(row[1])


async def store(
    session: AsyncSession,
    user: User,
    filename: str,
    data: bytes,
    now: datetime,
    cfg: ConsoleConfig,
    tz: ZoneInfo,
    *,
    lock_user: bool,
) -> ConsoleMedia:
    """Check the quota and store the upload (in the caller's write transaction); raises ``UploadRefused``.

    ``lock_user`` (PostgreSQL) locks the person's row first, so two uploads at once cannot both pass the check;
    SQLite serialises writers anyway."""
    if not data:
        raise empty_file(user.locale)
    if len(data) > cfg.upload_max_bytes:
        raise too_large(cfg, user.locale)
    if lock_user:
        await session.execute(select(User.id).where(User.id == user.id).with_for_update())
    count, total = await used_today(session, user.id, now, tz)
    if count + 1 > cfg.uploads_per_day:
        raise _quota_refused(cfg, user.locale, by_count=True)
    if total + len(data) > cfg.upload_bytes_per_day:
        raise _quota_refused(cfg, user.locale, by_count=False)
    row = ConsoleMedia(
        user_id=user.id,
        filename=clean_filename(filename),
        content_type=sniff(data),
        size=len(data),
        data=data,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    return row


async def store_made(session: AsyncSession, user_id: str, filename: str, data: bytes, now: datetime) -> ConsoleMedia:
    """A file the bot made for ``user_id`` (the digest's chart), in the caller's transaction: stored as theirs, so
    only they may read it (``may_see_file``: they are its owner, as for an upload; it is never attached to a card).
    Not an upload, so no size check; the same bytes under the same name already stored for them are reused (asking
    日报 again without anything new stores nothing)."""
    name = clean_filename(filename)
    same = await session.scalars(
        select(ConsoleMedia).where(
            ConsoleMedia.user_id == user_id, ConsoleMedia.filename == name, ConsoleMedia.size == len(data)
        )
    )
    for row in same:
        if row.data == data and row.card_id is None:
            return row
    row = ConsoleMedia(
        user_id=user_id, filename=name, content_type=sniff(data), size=len(data), data=data, created_at=now
    )
    session.add(row)
    await session.flush()
    return row


# ---- reading and linking --------------------------------------------------------------------------------------


async def by_token(session: AsyncSession, token: str) -> ConsoleMedia | None:
    if not TOKEN.fullmatch(token):
        return None
    return (await session.scalars(select(ConsoleMedia).where(ConsoleMedia.token == token))).first()


async def link_to_card(session: AsyncSession, media_id: str, card_id: int, uploader_id: str) -> None:
    """Record that the upload ``media_id`` is attached to ``card_id`` (only the uploader's own file: a forged
    media id cannot expose someone else's upload to the card's readers)."""
    token = token_of(media_id)
    if token is None:
        return
    await session.execute(
        update(ConsoleMedia)
        .where(ConsoleMedia.token == token, ConsoleMedia.user_id == uploader_id)
        .values(card_id=card_id)
    )
