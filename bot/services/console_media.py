"""Console uploads (📎): the one sniffer of file types (also the attachment store's, ``bot.services.attachments``),
file names made safe, the per-person daily quota, and the console_media rows uploaded before the attachment store
(still served and linked to cards). No HTTP here (see ``bot/channels/console/media.py``).

Who may read a file is decided by ``bot.services.requests.may_see_file`` (the request/card visibility rule)."""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from datetime import datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import ConsoleConfig
from bot.infra.i18n import t
from storage.models import Attachment, ConsoleMedia, User

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


DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
# The part folder that tells an OOXML package's kind (ECMA-376 part 2: every package is a zip).
_OOXML_PARTS = (("word/", DOCX), ("xl/", XLSX), ("ppt/", PPTX))


def sniff(data: bytes) -> str:
    """The content type the bytes really are (magic numbers, never a file name or a claimed type); anything not
    recognised is octet-stream. Whether it may be shown inline is ``INLINE_TYPES``'s business."""
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
    if data.startswith(b"PK\x03\x04"):
        return _ooxml(data)
    if len(data) >= 12 and data[4:8] == b"ftyp":
        return "video/mp4"
    if data.startswith(b"#!AMR\n"):
        return "audio/amr"
    # WeChat's SILK voice carries a 0x02 before the SILK header.
    if data.startswith((b"#!SILK_V3", b"\x02#!SILK_V3")):
        return "audio/silk"
    if data.startswith(b"ID3") or (len(data) >= 2 and data[0] == 0xFF and data[1] & 0xE6 in (0xE2, 0xE4, 0xE6)):
        return "audio/mpeg"
    if _is_text(data):
        return "text/plain"
    return OCTET_STREAM


def _ooxml(data: bytes) -> str:
    """A Word, Excel or PowerPoint file by the parts its zip holds (only the central directory is read)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, ValueError, OSError, RuntimeError):
        return OCTET_STREAM
    if "[Content_Types].xml" in names:
        for folder, kind in _OOXML_PARTS:
            if any(n.startswith(folder) for n in names):
                return kind
    return OCTET_STREAM


def _is_text(data: bytes) -> bool:
    """UTF-8 (or GB18030, what Chinese Windows writes) without control characters but tab, CR, LF, FF, and not
    markup."""
    if not data or b"\x00" in data:
        return False
    for encoding in ("utf-8", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        # Markup (HTML, SVG, XML) is not plain text: it is code a browser would run.
        if text.lstrip("\ufeff \t\r\n").startswith("<"):
            return False
        return not any(unicodedata.category(c) == "Cc" and c not in "\t\r\n\f" for c in text)
    return False


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


def size_text(n: int) -> str:
    """``5 MB``, ``1.5 MB``, ``200 KB``: how people say file sizes."""
    if n >= 1024 * 1024:
        mb = n / (1024 * 1024)
        return f"{mb:.0f} MB" if mb >= 10 or mb == int(mb) else f"{mb:.1f} MB"
    return f"{max(1, round(n / 1024))} KB"


def too_large(cfg: ConsoleConfig, locale: str | None) -> UploadRefused:
    return UploadRefused("too_large", t(locale, "upload.too_large", size=size_text(cfg.upload_max_bytes)))


def empty_file(locale: str | None) -> UploadRefused:
    return UploadRefused("empty", t(locale, "upload.empty"))


def _quota_refused(cfg: ConsoleConfig, locale: str | None, by_count: bool) -> UploadRefused:
    if by_count:
        return UploadRefused("quota", t(locale, "upload.quota_count", n=cfg.uploads_per_day))
    return UploadRefused("quota", t(locale, "upload.quota_bytes", size=size_text(cfg.upload_bytes_per_day)))


def day_start(now: datetime, tz: ZoneInfo) -> datetime:
    """The start of ``now``'s calendar day in the org zone, as an instant."""
    local = now.astimezone(tz)
    return datetime.combine(local.date(), time(0), tzinfo=tz)


async def used_today(session: AsyncSession, user_id: str, now: datetime, tz: ZoneInfo) -> tuple[int, int]:
    """Files and bytes ``user_id`` uploaded since the start of today (org zone): the attachment store's console
    uploads plus rows of the old console_media table (indexes ix_attachments_owner_at, ix_console_media_user_at)."""
    start = day_start(now, tz)
    old = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(ConsoleMedia.size), 0)).where(
                ConsoleMedia.user_id == user_id,
                ConsoleMedia.created_at >= start,
            )
        )
    ).one()
    new = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(Attachment.size), 0)).where(
                Attachment.owner_id == user_id,
                Attachment.created_at >= start,
                Attachment.source_channel == "console",
            )
        )
    ).one()
    return int(old[0]) + int(new[0]), int(old[1]) + int(new[1])


def check_size(data: bytes, cfg: ConsoleConfig, locale: str | None) -> None:
    """Refuse an empty upload or one over ``upload_max_bytes`` (``UploadRefused``)."""
    if not data:
        raise empty_file(locale)
    if len(data) > cfg.upload_max_bytes:
        raise too_large(cfg, locale)


async def check_quota(
    session: AsyncSession,
    user: User,
    size: int,
    now: datetime,
    cfg: ConsoleConfig,
    tz: ZoneInfo,
    *,
    lock_user: bool,
) -> None:
    """Refuse an upload of ``size`` bytes beyond today's quota (``UploadRefused``); in the caller's write
    transaction. ``lock_user`` (PostgreSQL) locks the person's row first, so two uploads at once cannot both pass
    the check; SQLite serialises writers anyway."""
    if lock_user:
        await session.execute(select(User.id).where(User.id == user.id).with_for_update())
    count, total = await used_today(session, user.id, now, tz)
    if count + 1 > cfg.uploads_per_day:
        raise _quota_refused(cfg, user.locale, by_count=True)
    if total + size > cfg.upload_bytes_per_day:
        raise _quota_refused(cfg, user.locale, by_count=False)


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
