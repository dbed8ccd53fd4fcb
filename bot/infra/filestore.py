"""The attachment store's backend: a local folder of content-addressed files (docs/attachments.md).

A file is named by the SHA-256 of its bytes, ``<sha[:2]>/<sha>`` under the store's root, so the same bytes are
stored once whoever sends them how often, and a name never comes from a sender. A new file is written to a temp file
in the same folder, fsynced, renamed into place and the folder fsynced, all before the caller commits the row that
names it: a crash leaves at most an unreferenced file (or a temp file), never a row without its bytes. Files are
never changed in place; the disk work runs in a thread, not on the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

# Media ids of stored attachments, as they travel in events, task cards' attachments and outbox rows:
# ``att-<token>`` (the token of the ``attachments`` row; never the checksum, which would tell who holds a file).
MEDIA_PREFIX = "att-"
TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
# A storage key as this store writes it: nothing a caller passes can point outside the root.
KEY = re.compile(r"[0-9a-f]{2}/[0-9a-f]{64}")


@dataclass(frozen=True)
class StoredFile:
    """Where the bytes are (``key``, relative to the root), their checksum, and whether this call wrote them."""

    key: str
    sha256: str
    size: int
    created: bool


def media_id(token: str) -> str:
    return f"{MEDIA_PREFIX}{token}"


def token_of(media_id: str) -> str | None:
    """The attachment token of a store media id, or None for anything else (a platform's id, a forged id)."""
    if not media_id.startswith(MEDIA_PREFIX):
        return None
    token = media_id[len(MEDIA_PREFIX) :]
    return token if TOKEN.fullmatch(token) else None


def key_for(sha256: str) -> str:
    return f"{sha256[:2]}/{sha256}"


class FileStore:
    """A local folder holding attachments by checksum."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        """The file of ``key``; ``ValueError`` for anything that is not a key of this store."""
        if not KEY.fullmatch(key):
            raise ValueError("not a storage key")
        return self.root / key

    async def put(self, data: bytes) -> StoredFile:
        """Store ``data`` (durably, before this returns); the same bytes stored before are reused."""
        return await asyncio.to_thread(self._put, data)

    async def read(self, key: str) -> bytes:
        """The bytes of ``key``; ``FileNotFoundError`` when the file is gone (a restore without the folder)."""
        return await asyncio.to_thread(self.path(key).read_bytes)

    def _put(self, data: bytes) -> StoredFile:
        sha = hashlib.sha256(data).hexdigest()
        key = key_for(sha)
        final = self.root / key
        if final.is_file() and final.stat().st_size == len(data):
            return StoredFile(key, sha, len(data), created=False)
        folder = final.parent
        # Only the bot's own user may read the store (like the SQLite file: 0600 files, 0700 folders it creates).
        for made in (self.root, folder):
            if not made.is_dir():
                made.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = folder / f".tmp-{secrets.token_hex(8)}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        _fsync_dir(folder)
        return StoredFile(key, sha, len(data), created=True)


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (POSIX: the directory entry is the folder's data)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
