"""The bot's own attachments (issue 13): every photo and file is kept in the attachment store when it arrives, so
it outlives the platform's media id, and is uploaded again to whichever platform it is passed on to.

Rules here, no HTTP and no platform: the limits (size, the sniffed type among ``[attachments] allowed_types``),
the rows (``attachments``; one per (source channel, source media id)), who may read a file (its owner, the readers
of the card it is attached to, the people it was sent to), and the bookkeeping of uploads to platforms (reused
while the platform keeps them). The bytes are in ``bot.infra.filestore``. See docs/attachments.md."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import AttachmentsConfig, Settings
from bot.infra.filestore import MEDIA_PREFIX, TOKEN, FileStore, StoredFile, media_id, token_of
from bot.infra.i18n import t
from bot.services import console_media
from bot.services.console_media import clean_filename, sniff
from storage.models import Attachment, AttachmentGrant, AttachmentUpload, User

__all__ = [
    "MEDIA_PREFIX",
    "TOKEN",
    "AttachmentRefused",
    "Checked",
    "add",
    "by_source",
    "by_token",
    "check",
    "link_to_card",
    "may_read",
    "media_id",
    "record_upload",
    "store_for",
    "store_made",
    "token_of",
    "valid_upload",
]

# The extension a file gets when its name has none (or a wrong one): what the platform shows and opens it with.
EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "application/pdf": ".pdf",
    console_media.DOCX: ".docx",
    console_media.XLSX: ".xlsx",
    console_media.PPTX: ".pptx",
    "text/plain": ".txt",
    "video/mp4": ".mp4",
    "audio/amr": ".amr",
    "audio/silk": ".silk",
    "audio/mpeg": ".mp3",
}


class AttachmentRefused(Exception):
    """A file the store does not keep: ``kind`` is ``too_large``, ``type`` or ``empty``; ``message`` is the short
    text the sender sees (in their locale)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class Checked:
    """Bytes the store accepts: their real type and a safe display name (with the type's extension)."""

    content_type: str
    filename: str


def store_for(settings: Settings) -> FileStore:
    return FileStore(settings.attachments.dir)


def check(data: bytes, filename: str, cfg: AttachmentsConfig, locale: str | None) -> Checked:
    """The limits: not empty, at most ``max_bytes``, a sniffed type among ``allowed_types`` (what the sender or the
    platform claimed is never asked); raises ``AttachmentRefused``."""
    if not data:
        raise AttachmentRefused("empty", t(locale, "upload.empty"))
    if len(data) > cfg.max_bytes:
        raise AttachmentRefused(
            "too_large", t(locale, "attachment.too_large", size=console_media.size_text(cfg.max_bytes))
        )
    kind = sniff(data)
    if kind not in cfg.allowed_types:
        raise AttachmentRefused("type", t(locale, "attachment.type_refused"))
    return Checked(kind, display_name(filename, kind))


def display_name(filename: str, content_type: str) -> str:
    """The sender's name made safe (no path, no control characters, ≤ 200 characters); a name without an
    extension gets the one of the type the bytes really are (platforms open files by it)."""
    name = clean_filename(filename)
    ext = EXTENSIONS.get(content_type, "")
    if ext and "." not in name.rsplit("/", 1)[-1]:
        name = name[: console_media.FILENAME_MAX - len(ext)] + ext
    return name


def add(
    session: AsyncSession,
    stored: StoredFile,
    checked: Checked,
    *,
    owner_id: str,
    source_channel: str,
    source_media_id: str | None,
    now: datetime,
) -> Attachment:
    """The row for bytes already in the store (``FileStore.put`` returned before this transaction commits)."""
    row = Attachment(
        sha256=stored.sha256,
        content_type=checked.content_type,
        size=stored.size,
        filename=checked.filename,
        storage_key=stored.key,
        owner_id=owner_id,
        source_channel=source_channel,
        source_media_id=source_media_id[:256] if source_media_id else None,
        created_at=now,
    )
    session.add(row)
    return row


# What the bot makes itself (the digest's chart) is stored under this source channel.
MADE = "bot"


async def store_made(
    session: AsyncSession, settings: Settings, owner_id: str, filename: str, data: bytes, now: datetime
) -> Attachment:
    """A file the bot made for ``owner_id`` (the digest's chart), in the caller's transaction: the bytes written
    to the store first (before the commit; a rollback leaves an unreferenced file, harmless), the row owned by
    them, so only they (and whoever it is sent to) may read it. Not an upload: no limits. The same bytes under the
    same name already stored for them are reused (asking 日报 again without anything new stores nothing)."""
    stored = await store_for(settings).put(data)
    name = display_name(filename, sniff(data))
    same = await session.scalars(
        select(Attachment).where(
            Attachment.owner_id == owner_id,
            Attachment.sha256 == stored.sha256,
            Attachment.filename == name,
            Attachment.source_channel == MADE,
        )
    )
    row = same.first()
    if row is not None:
        return row
    row = add(
        session,
        stored,
        Checked(sniff(data), name),
        owner_id=owner_id,
        source_channel=MADE,
        source_media_id=None,
        now=now,
    )
    await session.flush()
    return row


async def by_source(session: AsyncSession, channel: str, source_media_id: str) -> Attachment | None:
    """The attachment already downloaded from ``channel``'s ``source_media_id`` (a platform retry, a restart)."""
    stmt = select(Attachment).where(
        Attachment.source_channel == channel, Attachment.source_media_id == source_media_id[:256]
    )
    return (await session.scalars(stmt)).first()


async def by_token(session: AsyncSession, token: str) -> Attachment | None:
    if not TOKEN.fullmatch(token):
        return None
    return (await session.scalars(select(Attachment).where(Attachment.token == token))).first()


async def link_to_card(session: AsyncSession, media_id: str, card_id: int, uploader_id: str) -> None:
    """Record that the attachment ``media_id`` is on ``card_id`` (only the attacher's own file: a forged media id
    cannot expose someone else's file to the card's readers)."""
    token = token_of(media_id)
    if token is None:
        return
    await session.execute(
        update(Attachment).where(Attachment.token == token, Attachment.owner_id == uploader_id).values(card_id=card_id)
    )


async def may_read(session: AsyncSession, user: User, row: Attachment) -> bool:
    """Its owner, the people who may see the card it is attached to (``requests.may_see_file``), and the people it
    was sent to (``attachment_grants``, written with the outbox row that sent it)."""
    from bot.services.requests import may_see_file

    if await may_see_file(session, user, row.owner_id, row.card_id):
        return True
    granted = await session.scalar(
        select(AttachmentGrant.id)
        .where(AttachmentGrant.attachment_token == row.token, AttachmentGrant.user_id == user.id)
        .limit(1)
    )
    return granted is not None


# ---- uploads to platforms ---------------------------------------------------------------------------------------


async def valid_upload(
    session: AsyncSession, attachment_id: int, channel: str, now: datetime, margin: timedelta
) -> str | None:
    """The platform media id of an earlier upload that stays valid for at least ``margin``, if any."""
    row = (
        await session.scalars(
            select(AttachmentUpload).where(
                AttachmentUpload.attachment_id == attachment_id, AttachmentUpload.channel == channel
            )
        )
    ).first()
    if row is None or row.expires_at - now < margin:
        return None
    return row.platform_media_id


async def record_upload(
    session: AsyncSession,
    attachment_id: int,
    channel: str,
    platform_media_id: str,
    uploaded_at: datetime,
    ttl: timedelta,
) -> None:
    """Remember the upload (replacing an expired one of the same channel)."""
    row = (
        await session.scalars(
            select(AttachmentUpload).where(
                AttachmentUpload.attachment_id == attachment_id, AttachmentUpload.channel == channel
            )
        )
    ).first()
    if row is None:
        row = AttachmentUpload(attachment_id=attachment_id, channel=channel)
        session.add(row)
    row.platform_media_id = platform_media_id[:256]
    row.uploaded_at = uploaded_at
    row.expires_at = uploaded_at + ttl
