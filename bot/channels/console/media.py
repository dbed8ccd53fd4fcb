"""Console uploads over HTTP: ``POST /console/api/media`` stores a file and tells the bot, ``GET
/console/media/<token>`` serves it to the people who may see it.

A file can never run in the app's origin: its type is sniffed from the bytes (the client's Content-Type is
ignored), only raster images and PDF are shown inline, everything else (HTML, SVG, XML, text, …) is sent as
``application/octet-stream`` with ``Content-Disposition: attachment``, and every answer carries ``nosniff`` and a
CSP without scripts (``bot/channels/console/headers.py``). Someone who may not see a file gets the same 404 as
for a file that does not exist."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from aiohttp import web

from bot.channels import keys
from bot.channels.console.headers import MEDIA_CSP, PDF_CSP
from bot.channels.console.jsonbody import error_response
from bot.core.events import InboundEvent, MediaMessage
from bot.services import attachments, console_media
from bot.services import requests as requests_svc
from bot.services.attachments import AttachmentRefused
from bot.services.console_media import IMAGE_TYPES, INLINE_TYPES, OCTET_STREAM, UploadRefused
from storage.models import User

log = logging.getLogger(__name__)

CurrentUser = Callable[[web.Request], Awaitable[User]]
Ingest = Callable[[web.Request, User, InboundEvent, dict[str, Any] | None], Awaitable[web.Response]]

_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_STATUS = {"too_large": 413, "quota": 429, "empty": 400, "type": 415}
_CHUNK = 64 * 1024


def _not_found() -> web.Response:
    return error_response("unknown file", 404)


def content_disposition(inline: bool, filename: str) -> str:
    """RFC 6266 with the RFC 5987 ``filename*`` (UTF-8, percent-encoded) and a plain-ASCII ``filename`` for old
    clients; nothing from the name can end the header or add a parameter."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;%' else "_" for c in filename)
    encoded = quote(filename, safe="!#$&+^`|")
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback or 'file'}\"; filename*=UTF-8''{encoded}"


class MediaRoutes:
    """The two media endpoints; the session check and the pipeline hand-off come from ``web.py``."""

    def __init__(self, current_user: CurrentUser, ingest: Ingest) -> None:
        self._current_user = current_user
        self._ingest = ingest

    async def upload(self, request: web.Request) -> web.StreamResponse:
        """Upload a photo or file (raw body, ``?client_id=…&name=…``): stored, then sent to the bot like a WeCom
        image. The file goes to the attachment store (docs/attachments.md). Refusals (too large 413, a type the store
        does not keep 415, daily quota 429) carry a short message for the person."""
        rt = request.app[keys.RUNTIME]
        user = await self._current_user(request)
        cfg = rt.settings.console
        client_id = request.query.get("client_id", "")
        if not _CLIENT_ID.fullmatch(client_id):
            return error_response("client_id must be 8-64 of [A-Za-z0-9_-]", 400)
        name = console_media.clean_filename(request.query.get("name", ""))
        if request.content_length is not None and request.content_length > cfg.upload_max_bytes:
            return error_response(console_media.too_large(cfg, user.locale).message, 413)
        data = bytearray()
        async for chunk in request.content.iter_chunked(_CHUNK):
            data.extend(chunk)
            if len(data) > cfg.upload_max_bytes:
                return error_response(console_media.too_large(cfg, user.locale).message, 413)
        data_bytes = bytes(data)
        try:
            console_media.check_size(data_bytes, cfg, user.locale)
            checked = attachments.check(data_bytes, name, rt.settings.attachments, user.locale)
            async with rt.db.transaction() as s:
                await console_media.check_quota(
                    s, user, len(data_bytes), rt.clock.now(), cfg, rt.settings.org.tz, lock_user=not rt.db.is_sqlite
                )
                # Durable on disk before the row that names it commits (a refusal above stores nothing).
                stored = await attachments.store_for(rt.settings).put(data_bytes)
                row = attachments.add(
                    s,
                    stored,
                    checked,
                    owner_id=user.id,
                    source_channel="console",
                    source_media_id=None,
                    now=rt.clock.now(),
                )
                await s.flush()
                token, content_type = row.token, row.content_type
        except UploadRefused as exc:
            log.info("console upload refused for user %s: %s", user.id, exc.kind)
            return error_response(exc.message, _STATUS.get(exc.kind, 400))
        except AttachmentRefused as exc:
            log.info("console upload refused for user %s: %s", user.id, exc.kind)
            return error_response(exc.message, _STATUS.get(exc.kind, 400))
        media_id = attachments.media_id(token)
        event = MediaMessage(
            channel="console",
            sender=user.id,
            dedup_key=f"{user.id}:{client_id}",
            media_type="image" if content_type in IMAGE_TYPES else "file",
            media_id=media_id,
        )
        return await self._ingest(request, user, event, {"from": "user", "text": f"📎 {name}", "media_id": media_id})

    async def serve(self, request: web.Request) -> web.StreamResponse:
        """A stored file (the attachment store, or an old console_media row), for the people who may read it."""
        rt = request.app[keys.RUNTIME]
        user = await self._current_user(request)
        token = request.match_info["token"]
        if not console_media.TOKEN.fullmatch(token):
            return _not_found()
        async with rt.db.read() as s:
            stored = await attachments.by_token(s, token)
            if stored is not None:
                allowed = await attachments.may_read(s, user, stored)
                filename, key = stored.filename, stored.storage_key
                data: bytes | None = None
            else:
                row = await console_media.by_token(s, token)
                allowed = row is not None and await requests_svc.may_see_file(s, user, row.user_id, row.card_id)
                filename, key = (row.filename, "") if row is not None else ("", "")
                data = row.data if row is not None else None
        if not allowed:
            if stored is not None or data is not None:
                log.warning("user %s may not read file %s", user.id, token[:6])
            return _not_found()
        if data is None:
            try:
                data = await attachments.store_for(rt.settings).read(key)
            except (FileNotFoundError, ValueError):
                # The row survived but its file did not (a database restored without the folder): docs/attachments.md.
                log.error("attachment %s: file %s missing from the store", token[:6], key)
                return _not_found()
        # Sniffed again: old console rows carry the client's type, and the file is what counts.
        sniffed = console_media.sniff(data)
        inline = sniffed in INLINE_TYPES
        headers = {
            "Content-Disposition": content_disposition(inline, filename),
            "Content-Security-Policy": PDF_CSP if sniffed == "application/pdf" else MEDIA_CSP,
        }
        return web.Response(body=data, content_type=sniffed if inline else OCTET_STREAM, headers=headers)


def setup(app: web.Application, current_user: CurrentUser, ingest: Ingest) -> None:
    """Mount the upload and download routes."""
    routes = MediaRoutes(current_user, ingest)
    app.router.add_post("/console/api/media", routes.upload)
    app.router.add_get("/console/media/{token}", routes.serve)
