"""The attachment store: content-addressed files written atomically, the limits, sniffing over claims, hostile
names, and the rows on SQLite and PostgreSQL (one per platform media id, shared files)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from bot.config import AttachmentsConfig
from bot.infra.clock import FixedClock
from bot.infra.filestore import FileStore, token_of
from bot.services import attachments
from bot.services.attachments import AttachmentRefused
from bot.services.console_media import DOCX, PPTX, XLSX, sniff
from storage.db import Database
from tests.conftest import T0

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00 a kit photo"
PDF = b"%PDF-1.7\n1 0 obj << >> endobj\n%%EOF\n"


def ooxml(folder: str) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr(f"{folder}/document.xml", "<x/>")
    return buf.getvalue()


# ---- the folder -------------------------------------------------------------------------------------------------


async def test_same_bytes_are_stored_once_under_their_checksum(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    first = await store.put(JPEG)
    again = await store.put(JPEG)
    sha = hashlib.sha256(JPEG).hexdigest()
    assert (first.key, first.sha256, first.created) == (f"{sha[:2]}/{sha}", sha, True)
    assert (again.key, again.created) == (first.key, False)
    assert (tmp_path / first.key).read_bytes() == JPEG
    assert await store.read(first.key) == JPEG
    assert sorted(p.name for p in (tmp_path / sha[:2]).iterdir()) == [sha]  # no temp file left


async def test_only_the_bots_user_may_read_the_store(tmp_path: Path) -> None:
    """Photos and documents of customers: like the SQLite file, nobody but the bot's own user reads them."""
    root = tmp_path / "data" / "attachments"
    stored = await FileStore(root).put(JPEG)
    assert (root / stored.key).stat().st_mode & 0o777 == 0o600
    assert root.stat().st_mode & 0o777 == 0o700
    assert (root / stored.key).parent.stat().st_mode & 0o777 == 0o700


async def test_a_failed_write_leaves_no_file_and_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FileStore(tmp_path)

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError):
        await store.put(JPEG)
    sha = hashlib.sha256(JPEG).hexdigest()
    assert not (tmp_path / sha[:2] / sha).exists()
    assert list((tmp_path / sha[:2]).iterdir()) == []


@pytest.mark.parametrize("key", ["../../etc/passwd", "ab/../../x", "/etc/passwd", "AB/" + "A" * 64, ""])
async def test_only_keys_of_the_store_are_read(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError):
        await FileStore(tmp_path).read(key)


def test_store_media_ids() -> None:
    assert token_of("att-" + "a" * 32) == "a" * 32
    for other in ("console-" + "a" * 32, "att-../x", "att-", "MEDIA_1", "att-" + "a" * 65):
        assert token_of(other) is None


# ---- limits and sniffing ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (JPEG, "image/jpeg"),
        (PDF, "application/pdf"),
        (ooxml("word"), DOCX),
        (ooxml("xl"), XLSX),
        (ooxml("ppt"), PPTX),
        (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00", "video/mp4"),
        (b"#!AMR\n\x3c\x48", "audio/amr"),
        (b"\x02#!SILK_V3\x0c\x00", "audio/silk"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00", "audio/mpeg"),
        ("拜访记录：王主任\n".encode(), "text/plain"),
        ("拜访记录".encode("gb18030"), "text/plain"),
        (b"PK\x03\x04 not a zip", "application/octet-stream"),
        (b"<svg onload=alert(1)>", "application/octet-stream"),
        (b"MZ\x90\x00 an exe", "application/octet-stream"),
    ],
)
def test_sniffing(data: bytes, kind: str) -> None:
    assert sniff(data) == kind


def test_sniffing_beats_the_claimed_type_and_name() -> None:
    checked = attachments.check(PDF, "photo.jpg", AttachmentsConfig(), "zh-CN")
    assert checked.content_type == "application/pdf"
    assert checked.filename == "photo.jpg"  # shown as sent; served and passed on as what it is


def test_too_large_and_types_not_kept_are_refused_in_plain_words() -> None:
    cfg = AttachmentsConfig(max_bytes=1024)
    with pytest.raises(AttachmentRefused) as big:
        attachments.check(JPEG * 100, "kit.jpg", cfg, "zh-CN")
    assert (big.value.kind, big.value.message) == ("too_large", "文件超过 1 KB，没有收下，请压缩后再发。")
    with pytest.raises(AttachmentRefused) as exe:
        attachments.check(b"MZ\x90\x00 an exe", "report.pdf", cfg, None)
    assert exe.value.kind == "type" and exe.value.message.startswith("这种文件收不了")
    with pytest.raises(AttachmentRefused) as narrowed:
        attachments.check(PDF, "a.pdf", AttachmentsConfig(allowed_types=("image/jpeg",)), "en")
    assert narrowed.value.message.startswith("This kind of file")


def test_unknown_allowed_type_is_a_config_error() -> None:
    with pytest.raises(ValueError):
        AttachmentsConfig(allowed_types=("text/html",))


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "a\x00b.jpg", "报价\r\nSet-Cookie: x=1.jpg", "\u202egpj.exe", "x" * 5000, ""]
)
def test_hostile_filenames_are_neutralised(name: str) -> None:
    shown = attachments.check(JPEG, name, AttachmentsConfig(), None).filename
    assert "/" not in shown and "\\" not in shown and not shown.startswith(".")
    assert not any(ord(c) < 32 or c == "\u202e" for c in shown)
    assert 0 < len(shown) <= 200


def test_a_name_without_extension_gets_the_real_types() -> None:
    assert attachments.check(JPEG, "", AttachmentsConfig(), None).filename == "file.jpg"
    assert attachments.check(PDF, "报告", AttachmentsConfig(), None).filename == "报告.pdf"


# ---- rows -------------------------------------------------------------------------------------------------------


async def save(db: Database, store: FileStore, data: bytes, source: str | None, owner: str = "rep01") -> str:
    checked = attachments.check(data, "kit.jpg", AttachmentsConfig(), None)
    stored = await store.put(data)
    async with db.transaction() as s:
        row = attachments.add(
            s, stored, checked, owner_id=owner, source_channel="wecom", source_media_id=source, now=T0
        )
        await s.flush()
        return row.storage_key


async def test_one_row_per_platform_media_id_and_files_shared_by_checksum(db_url: str, tmp_path: Path) -> None:
    db, store = Database(db_url), FileStore(tmp_path / "store")
    try:
        first = await save(db, store, JPEG, "MEDIA_1")
        with pytest.raises(IntegrityError):
            await save(db, store, JPEG, "MEDIA_1")
        # Another message with the same bytes, and uploads without a platform id: rows of their own, one file.
        assert await save(db, store, JPEG, "MEDIA_2", owner="log01") == first
        assert await save(db, store, JPEG, None) == await save(db, store, JPEG, None) == first
        async with db.read() as s:
            found = await attachments.by_source(s, "wecom", "MEDIA_1")
            assert found is not None and found.owner_id == "rep01"
            assert await attachments.by_source(s, "wecom", "MEDIA_9") is None
        assert [p.name for p in (tmp_path / "store").rglob("*") if p.is_file()] == [first.split("/")[1]]
    finally:
        await db.dispose()


async def test_upload_is_reused_only_with_an_hour_left(db_url: str, tmp_path: Path) -> None:
    from datetime import timedelta

    db, store = Database(db_url), FileStore(tmp_path / "store")
    clock = FixedClock(T0)
    try:
        await save(db, store, JPEG, "MEDIA_1")
        async with db.transaction() as s:
            row = await attachments.by_source(s, "wecom", "MEDIA_1")
            assert row is not None
            await attachments.record_upload(s, row.id, "wecom", "up-1", clock.now(), timedelta(days=3))
        hour = timedelta(hours=1)
        async with db.read() as s:
            assert await attachments.valid_upload(s, row.id, "wecom", T0 + timedelta(hours=71), hour) == "up-1"
            assert await attachments.valid_upload(s, row.id, "wecom", T0 + timedelta(hours=71, seconds=1), hour) is None
            assert await attachments.valid_upload(s, row.id, "dingtalk", T0, hour) is None
        async with db.transaction() as s:
            await attachments.record_upload(s, row.id, "wecom", "up-2", T0 + timedelta(days=3), timedelta(days=3))
        async with db.read() as s:
            assert await attachments.valid_upload(s, row.id, "wecom", T0 + timedelta(days=4), hour) == "up-2"
    finally:
        await db.dispose()
