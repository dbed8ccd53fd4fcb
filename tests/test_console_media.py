"""Console uploads (📎) as an attacker would try them: stored XSS, counted ids, reading other people's files, filling
the disk. Served over the real HTTP endpoints, on SQLite and PostgreSQL.

The clock stands at Monday 2026-11-23 10:00 in Shanghai (conftest T0).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import aiohttp
import pytest
from sqlalchemy import func, select
from yarl import URL

from bot.infra.clock import FixedClock
from bot.runtime import Runtime
from storage.models import Attachment, ConsoleMedia, InboundEvent
from tests.console_driver import ConsoleUser

SURGERY = "跟台 浙一 骨科 2026-11-25 器械:脊柱A包 备注:王主任主刀"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00 a kit photo"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR a png"
GIF = b"GIF89a\x01\x00\x01\x00 a gif"
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 a webp"
PDF = b"%PDF-1.7\n1 0 obj << >> endobj\n%%EOF\n"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>fetch("/console/api/me")</script></svg>'
HTML = b"<!doctype html><script>fetch('/console/api/me').then(r => r.text()).then(alert)</script>"
TOKEN_URL = re.compile(r"/console/media/[A-Za-z0-9_-]{32}")
MEDIA_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'none'; sandbox"


async def upload(user: ConsoleUser, name: str, data: bytes, content_type: str) -> aiohttp.ClientResponse:
    """POST a file as the page's 📎 does; returns the (read) response without asserting its status."""
    url = user.server.make_url("/console/api/media").with_query(client_id=uuid.uuid4().hex, name=name)
    async with user.session.post(url, data=data, headers={"Content-Type": content_type}) as r:
        await r.read()
        return r


async def upload_ok(user: ConsoleUser, name: str, data: bytes, content_type: str = "image/jpeg") -> str:
    """Upload and return the file's URL (from the stored row: the uploader's own echo carries the media id)."""
    r = await upload(user, name, data, content_type)
    assert r.status == 200, await r.text()
    await user.runtime.settle()
    await user.refresh()
    [echo] = [i for i in user.items if i.get("media_id") and i.get("from") == "user"][-1:]
    media_id = echo["media_id"]
    # New uploads go to the attachment store (docs/attachments.md): ``att-<token>``.
    assert re.fullmatch(r"att-[A-Za-z0-9_-]{32}", media_id)
    return f"/console/media/{media_id.removeprefix('att-')}"


async def get(user: ConsoleUser, url: str) -> tuple[int, bytes, Any]:
    async with user.session.get(user.server.make_url(url)) as r:
        return r.status, await r.read(), r.headers


async def counts(rt: Runtime) -> tuple[int, int]:
    async with rt.db.read() as s:
        media = int(await s.scalar(select(func.count()).select_from(ConsoleMedia)) or 0)
        media += int(await s.scalar(select(func.count()).select_from(Attachment)) or 0)
        events = int(await s.scalar(select(func.count()).select_from(InboundEvent)) or 0)
    return media, events


def assert_media_headers(headers: Any) -> None:
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cross-Origin-Resource-Policy"] == "same-origin"
    assert headers["Cache-Control"] == "private, no-store"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert "script" not in headers["Content-Security-Policy"]


# ---- stored XSS ----------------------------------------------------------------------------------------------


MARKUP = [
    ("evil.svg", SVG, "image/svg+xml"),
    ("evil.html", HTML, "text/html"),
    ("evil.jpg", HTML, "image/jpeg"),  # the client lies about the type
    ("evil.xml", b'<?xml version="1.0"?><x:script xmlns:x="http://www.w3.org/1999/xhtml"/>', "text/xml"),
    ("notes.txt", b"<script>alert(1)</script>", "text/plain"),
]
MARKUP_IDS = ["svg", "html", "html-claimed-jpeg", "xhtml-in-xml", "text"]


@pytest.mark.parametrize(("name", "data", "claimed"), MARKUP, ids=MARKUP_IDS)
async def test_uploaded_markup_is_refused_by_the_store(
    console: Any, runtime: Runtime, name: str, data: bytes, claimed: str
) -> None:
    rep = await console("rep01")
    before = await counts(runtime)
    r = await upload(rep, name, data, claimed)
    assert r.status == 415
    assert (await r.json())["error"].startswith("这种文件收不了")
    assert await counts(runtime) == before


@pytest.mark.parametrize(("name", "data", "claimed"), MARKUP, ids=MARKUP_IDS)
async def test_old_console_upload_of_markup_is_served_as_attachment_not_inline(
    console: Any, runtime: Runtime, name: str, data: bytes, claimed: str
) -> None:
    """A console_media row stored before the attachment store (any bytes were kept then) is still served, safely."""
    rep = await console("rep01")
    async with runtime.db.transaction() as s:
        row = ConsoleMedia(
            user_id="rep01",
            filename=name,
            content_type=claimed,
            size=len(data),
            data=data,
            created_at=runtime.clock.now(),
        )
        s.add(row)
        await s.flush()
        url = f"/console/media/{row.token}"
    status, body, headers = await get(rep, url)
    assert (status, body) == (200, data)
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Disposition"].startswith("attachment;")
    assert headers["Content-Security-Policy"] == MEDIA_CSP
    assert_media_headers(headers)
    assert (await get(await console("rep02"), url))[0] == 404


async def test_plain_text_is_kept_and_served_as_attachment(console: Any) -> None:
    rep = await console("rep01")
    url = await upload_ok(rep, "备注.txt", "库存：脊柱A包 2 套\n".encode(), "text/html")
    status, body, headers = await get(rep, url)
    assert (status, body) == (200, "库存：脊柱A包 2 套\n".encode())
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Disposition"].startswith("attachment;")
    assert_media_headers(headers)


@pytest.mark.parametrize(
    ("data", "sniffed"),
    [(JPEG, "image/jpeg"), (PNG, "image/png"), (GIF, "image/gif"), (WEBP, "image/webp"), (PDF, "application/pdf")],
    ids=["jpeg", "png", "gif", "webp", "pdf"],
)
async def test_images_and_pdf_are_shown_inline_with_their_sniffed_type(console: Any, data: bytes, sniffed: str) -> None:
    rep = await console("rep01")
    url = await upload_ok(rep, "scan", data, "application/octet-stream")  # the client's type does not matter
    status, body, headers = await get(rep, url)
    assert (status, body) == (200, data)
    assert headers["Content-Type"] == sniffed
    assert headers["Content-Disposition"].startswith("inline;")
    assert_media_headers(headers)
    # Chromium's PDF viewer will not open a sandboxed document; images keep the sandbox.
    assert ("sandbox" in headers["Content-Security-Policy"]) is (sniffed != "application/pdf")


async def test_upload_media_type_follows_the_bytes_not_the_client(console: Any, runtime: Runtime) -> None:
    rep = await console("rep01")
    await upload_ok(rep, "a.jpg", PDF, "image/jpeg")
    await upload_ok(rep, "b.bin", PNG, "application/octet-stream")
    async with runtime.db.read() as s:
        events = list(await s.scalars(select(InboundEvent).order_by(InboundEvent.id)))
        rows = list(await s.scalars(select(Attachment).order_by(Attachment.id)))
    assert [e.payload["media_type"] for e in events] == ["file", "image"]
    assert [r.content_type for r in rows] == ["application/pdf", "image/png"]


@pytest.mark.parametrize(
    "name",
    ['a"; filename=evil.html', "报价\r\nSet-Cookie: x=1.pdf", "../../etc/passwd", "\x00\x01\u202etxt.exe", "x" * 5000],
    ids=["quote-param", "crlf", "path", "controls-and-bidi", "absurd-length"],
)
async def test_hostile_filename_cannot_inject_into_content_disposition(console: Any, name: str) -> None:
    rep = await console("rep01")
    url = await upload_ok(rep, name, b"a note, served as a download", "image/svg+xml")
    status, _, headers = await get(rep, url)
    assert status == 200
    assert "Set-Cookie" not in headers
    disposition = headers["Content-Disposition"]
    kind, plain, star = (p.strip() for p in disposition.split(";"))
    assert kind == "attachment"
    assert re.fullmatch(r'filename="[\x20-\x7e]*"', plain) and '"' not in plain[len('filename="') : -1]
    assert star.startswith("filename*=UTF-8''")
    shown = unquote(star.removeprefix("filename*=UTF-8''"))
    assert not any(ord(c) < 32 or c in "/\\\u202e" for c in shown) and 0 < len(shown) <= 200


async def test_chinese_filename_is_rfc5987_encoded(console: Any) -> None:
    rep = await console("rep01")
    url = await upload_ok(rep, "手术方案 v2.pdf", b"not really a pdf", "application/pdf")
    _, _, headers = await get(rep, url)
    assert headers["Content-Disposition"] == (
        "attachment; filename=\"____ v2.pdf\"; filename*=UTF-8''%E6%89%8B%E6%9C%AF%E6%96%B9%E6%A1%88%20v2.pdf"
    )


# ---- ids that cannot be counted ------------------------------------------------------------------------------


async def test_numeric_media_ids_are_gone_urls_carry_a_random_token(console: Any) -> None:
    rep = await console("rep01")
    url = await upload_ok(rep, "kit.jpg", JPEG)
    assert TOKEN_URL.fullmatch(url)
    for guess in ("/console/media/1", "/console/media/0", "/console/media/2"):
        status, body, headers = await get(rep, guess)
        assert status == 404 and b"kit photo" not in body
        assert_media_headers(headers)


@pytest.mark.parametrize(
    "token",
    [
        "99999999999999999999999",  # was OverflowError → 500
        "1" * 30,
        "-1",
        "short",
        "a" * 65,
        "%00",
        "%E2%98%83" * 20,
        "abc%2F..%2F" + "a" * 20,
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  # well-formed, unknown
    ],
    ids=["overflow", "30-digits", "negative", "short", "long", "nul", "unicode", "slash", "unknown"],
)
async def test_malformed_media_token_is_404_never_500(console: Any, token: str) -> None:
    rep = await console("rep01")
    url = URL(str(rep.server.make_url("/")).rstrip("/") + f"/console/media/{token}", encoded=True)
    async with rep.session.get(url) as r:
        assert r.status == 404, await r.text()
        assert_media_headers(r.headers)


async def test_media_without_sign_in_is_401(console: Any) -> None:
    rep = await console("rep01")
    url = await upload_ok(rep, "kit.jpg", JPEG)
    async with aiohttp.ClientSession() as anonymous, anonymous.get(rep.server.make_url(url)) as r:
        assert r.status == 401
        assert r.headers["X-Content-Type-Options"] == "nosniff"


# ---- who may read a file -------------------------------------------------------------------------------------


async def test_unattached_upload_is_readable_by_its_uploader_only(console: Any) -> None:
    rep = await console("rep01")
    url = await upload_ok(rep, "kit.jpg", JPEG)
    assert (await get(rep, url))[0] == 200
    for other in ("rep02", "mgr01", "log01", "dir01", "admin01"):
        status, body, _ = await get(await console(other), url)
        assert (status, b"kit photo" in body) == (404, False), other


async def attached_photo(console: Any) -> tuple[str, int]:
    """rep01 raises a surgery request; log01 claims the logistics card and attaches a photo to it."""
    rep: ConsoleUser = await console("rep01")
    await rep.send(SURGERY)
    await rep.refresh()
    await rep.tap("提交")
    log01: ConsoleUser = await console("log01")
    await log01.refresh()
    card = next(c for c in log01.cards().values() if c["title"].startswith("物流"))
    await log01.tap("认领", card["ref"])
    url = await upload_ok(log01, "kit.jpg", JPEG)
    assert any("已附加到卡片" in str(i.get("text")) for i in log01.items)
    async with log01.runtime.db.read() as s:
        row = (await s.scalars(select(Attachment))).one()
    assert row.card_id is not None
    return url, row.card_id


async def test_attached_file_is_readable_by_the_cards_readers_and_nobody_else(console: Any) -> None:
    url, _ = await attached_photo(console)
    # The card's department, the request's rep and their manager, directors, admins.
    for reader in ("log01", "log02", "log_head", "rep01", "mgr01", "dir01", "admin01"):
        status, body, _ = await get(await console(reader), url)
        assert (status, body) == (200, JPEG), reader
    # Another rep (same manager, not their request) learns nothing, not even that the file exists; nor do other
    # departments, who see the request's progress but not the logistics card's files.
    missing = (await get(await console("rep02"), "/console/media/" + "A" * 32))[1]
    for outsider in ("rep02", "mkt01", "cmp_head"):
        status, body, _ = await get(await console(outsider), url)
        assert (status, body) == (404, missing), outsider


async def test_a_digest_chart_is_readable_by_its_recipient_only(console: Any, runtime: Runtime) -> None:
    from bot.services.plan_rule import span
    from storage.models import Customer, PlanItem
    from storage.vocab import PlanPeriod

    day, starts, ends = span(
        PlanPeriod.DAY, runtime.clock.now().astimezone(runtime.settings.org.tz).date(), runtime.settings.org.tz
    )
    now = runtime.clock.now()
    async with runtime.db.transaction() as s:
        cid = (await s.scalars(select(Customer.id).order_by(Customer.id))).first()
        s.add(
            PlanItem(
                rep_id="rep01", customer_id=cid, period="day", day=day, starts_at=starts, ends_at=ends,
                status="open", source="chat", created_at=now, updated_at=now,
            )
        )  # fmt: skip
    mgr = await console("mgr01")
    await mgr.send("日报")
    await mgr.refresh()
    [chart] = [i for i in mgr.items if i.get("media_url")]
    assert chart["media_type"] == "image" and chart["text"].startswith("计划完成率图")
    url = chart["media_url"]
    assert TOKEN_URL.fullmatch(url)
    status, body, headers = await get(mgr, url)
    assert (status, headers["Content-Type"], body[:8]) == (200, "image/png", b"\x89PNG\r\n\x1a\n")
    assert_media_headers(headers)
    # Everyone else — the team's rep, another manager's director, an admin — gets the answer of a missing file.
    missing = (await get(mgr, "/console/media/" + "A" * 32))[1]
    for other in ("rep01", "rep02", "dir01", "admin01", "log01"):
        status, got, _ = await get(await console(other), url)
        assert (status, got) == (404, missing), other


async def test_forged_media_id_cannot_link_someone_elses_upload(console: Any, runtime: Runtime) -> None:
    from bot.services import console_media

    rep02 = await console("rep02")
    url = await upload_ok(rep02, "private.jpg", JPEG)
    token = url.rsplit("/", 1)[1]
    async with runtime.db.transaction() as s:
        await console_media.link_to_card(s, console_media.media_id(token), 1, uploader_id="log01")
    async with runtime.db.read() as s:
        assert (await s.scalars(select(Attachment.card_id))).one() is None


# ---- quota ---------------------------------------------------------------------------------------------------


@pytest.fixture
def settings_overrides() -> dict[str, dict[str, Any]]:
    return {"console": {"upload_max_bytes": 2048, "uploads_per_day": 3, "upload_bytes_per_day": 4096}}


async def test_file_over_the_size_limit_is_413_with_a_message_for_the_rep(console: Any, runtime: Runtime) -> None:
    rep = await console("rep01")
    before = await counts(runtime)
    r = await upload(rep, "big.jpg", JPEG + b"x" * 2048, "image/jpeg")
    assert r.status == 413
    assert (await r.json())["error"] == "文件超过 2 KB，请压缩后再发。"
    assert await counts(runtime) == before


def test_size_limit_message_names_the_configured_size() -> None:
    from bot.config import ConsoleConfig
    from bot.services.console_media import too_large

    assert too_large(ConsoleConfig(), "zh-CN").message == "文件超过 5 MB，请压缩后再发。"
    assert too_large(ConsoleConfig(upload_max_bytes=1536 * 1024), "zh-CN").message == "文件超过 1.5 MB，请压缩后再发。"
    assert too_large(ConsoleConfig(), "en").message.startswith("The file is over 5 MB")


async def test_uploads_per_day_is_429_until_the_next_local_day(
    console: Any, runtime: Runtime, clock: FixedClock
) -> None:
    rep = await console("rep01")
    for n in range(3):
        await upload_ok(rep, f"p{n}.jpg", JPEG)
    before = await counts(runtime)
    r = await upload(rep, "p3.jpg", JPEG, "image/jpeg")
    assert r.status == 429
    assert (await r.json())["error"] == "今天已上传 3 个文件，达到每日上限，请明天再发。"
    assert await counts(runtime) == before
    # Another person has their own quota.
    await upload_ok(await console("rep02"), "other.jpg", JPEG)
    # 23:59 in Shanghai is still today; midnight there starts a new day (16:00 UTC). (Signed in again: the
    # session would have gone idle.)
    clock.set(datetime(2026, 11, 23, 15, 59, tzinfo=UTC))
    rep = await console("rep01")
    assert (await upload(rep, "late.jpg", JPEG, "image/jpeg")).status == 429
    clock.set(datetime(2026, 11, 23, 16, 0, tzinfo=UTC))
    await upload_ok(rep, "tomorrow.jpg", JPEG)


async def test_upload_bytes_per_day_is_429(console: Any, runtime: Runtime) -> None:
    rep = await console("rep01")
    await upload_ok(rep, "a.jpg", JPEG + b"x" * 2000)
    await upload_ok(rep, "b.jpg", JPEG + b"x" * 2000)
    before = await counts(runtime)
    r = await upload(rep, "c.jpg", JPEG + b"x" * 200, "image/jpeg")
    assert r.status == 429
    assert (await r.json())["error"] == "今天上传的文件将超过每日 4 KB 上限，请明天再发。"
    assert await counts(runtime) == before


async def test_empty_upload_is_400_and_stores_nothing(console: Any, runtime: Runtime) -> None:
    rep = await console("rep01")
    before = await counts(runtime)
    r = await upload(rep, "empty.jpg", b"", "image/jpeg")
    assert r.status == 400 and "空" in (await r.json())["error"]
    assert await counts(runtime) == before


# ---- the console page and its API ------------------------------------------------------------------------------


async def test_console_page_has_a_csp_without_inline_script(console: Any) -> None:
    rep = await console("rep01")
    status, body, headers = await get(rep, "/console")
    assert status == 200
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    html = body.decode()
    # Nothing a script-src 'self' / style-src 'self' policy would block.
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert not re.search(r"\son[a-z]+\s*=", html) and "style=" not in html and "javascript:" not in html


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/console/api/me"), ("GET", "/console/api/updates?wait=0"), ("POST", "/console/api/send")],
)
async def test_json_api_answers_carry_security_headers(console: Any, method: str, path: str) -> None:
    rep = await console("rep01")
    async with rep.session.request(method, rep.server.make_url(path), data=b"x") as r:
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Cache-Control"] == "private, no-store"
        assert r.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert r.headers["Cross-Origin-Resource-Policy"] == "same-origin"
