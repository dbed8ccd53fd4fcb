"""Attachments on DingTalk (issue 13): a photo or file sent to the robot is downloaded into the bot's store when it
arrives (messageFiles/download, then the temporary URL) and outlives DingTalk's short-lived download code; a stored
file passed on to a DingTalk person is uploaded with oapi media/upload and arrives as an image or file message.
Real signed callbacks in (tests/fakes/dingtalk_callbacks.py), the fake DingTalk API out, the console over HTTP;
SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.channels.base import MediaFetchError
from bot.channels.dingtalk.channel import DingTalkChannel
from bot.channels.dingtalk.client import DingTalkError
from bot.core.intents import SendMedia
from bot.infra.clock import Clock, FixedClock
from bot.infra.filestore import FileStore
from bot.outbox import enqueue
from bot.runtime import Runtime
from storage.models import Attachment, AttachmentGrant, AttachmentUpload, TaskCard
from tests.channels.dingtalk.conftest import APP_SECRET, ROBOT, staff
from tests.console_driver import ConsoleUser
from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.dingtalk_callbacks import DingTalkSigner

SURGERY = "跟台 浙一 骨科 2026-11-26 器械:脊柱A包 备注:王主任主刀"
PHOTO = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00 the reserved kit, photographed" + bytes(range(256))
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture(autouse=True)
def no_violations(fake: FakeDingTalk) -> Iterator[None]:
    yield
    assert fake.violations == []


@pytest.fixture
def signer() -> DingTalkSigner:
    return DingTalkSigner(APP_SECRET, ROBOT)


def now_ms(clock: Clock) -> int:
    return int(clock.now().timestamp() * 1000)


async def callback(http: TestClient[Any, Any], bot: Runtime, signer: DingTalkSigner, doc: dict[str, Any]) -> None:
    headers, body = signer.signed(doc, now_ms(bot.clock))
    async with http.post("/dingtalk/callback", headers=headers, data=body) as resp:
        assert resp.status == 200, await resp.text()
    await bot.settle()


def link(param: dict[str, Any], label: str) -> str:
    n = next(i for i in range(1, 6) if param.get(f"actionTitle{i}") == label)
    return urlsplit(param[f"actionURL{n}"]).path


async def claimed_by_log01(bot: Runtime, fake: FakeDingTalk, console: Any, http: TestClient[Any, Any]) -> TaskCard:
    """rep01 raises a 跟台 request on the console; log01 claims the logistics card with its DingTalk link."""
    rep = await console("rep01")
    await rep.send(SURGERY)
    await rep.refresh()
    await rep.tap("提交")
    await bot.settle()
    [card] = fake.action_cards_to(staff("log01"))
    async with http.get(link(card, "认领")) as resp:
        assert resp.status == 200
    await bot.settle()
    return await logistics_row(bot)


async def logistics_row(rt: Runtime) -> TaskCard:
    async with rt.db.read() as s:
        return (await s.scalars(select(TaskCard).where(TaskCard.department == "logistics"))).one()


async def attachment_rows(rt: Runtime) -> list[Attachment]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(Attachment).order_by(Attachment.id)))


async def get(user: ConsoleUser, url: str) -> tuple[int, bytes]:
    async with user.session.get(user.server.make_url(url)) as r:
        return r.status, await r.read()


def replies(fake: FakeDingTalk, user: str) -> list[str]:
    return fake.texts_to(staff(user))


async def test_a_dingtalk_photo_outlives_the_download_code_and_reaches_others_as_a_file(
    bot: Runtime,
    fake: FakeDingTalk,
    console: Any,
    http: TestClient[Any, Any],
    signer: DingTalkSigner,
    clock: FixedClock,
) -> None:
    await claimed_by_log01(bot, fake, console, http)
    fake.add_file("dlcode-photo-1", PHOTO)

    await callback(http, bot, signer, signer.picture(staff("log01"), "dlcode-photo-1", now_ms(clock)))

    assert replies(fake, "log01")[-1].startswith("📎 已附加到卡片")
    [row] = await attachment_rows(bot)
    assert (row.source_channel, row.source_media_id, row.owner_id) == ("dingtalk", "dlcode-photo-1", "log01")
    assert (row.content_type, row.size) == ("image/jpeg", len(PHOTO))
    assert FileStore(bot.settings.attachments.dir).path(row.storage_key).read_bytes() == PHOTO
    card = await logistics_row(bot)
    assert [(a["kind"], a["media_id"]) for a in card.attachments] == [("image", f"att-{row.token}")]
    [download] = [r for r in fake.requests if r.endpoint == "download"]
    assert download.body == {"downloadCode": "dlcode-photo-1", "robotCode": ROBOT}
    assert fake.calls["file_get"] == 1
    channel = bot.channels["dingtalk"]
    assert isinstance(channel, DingTalkChannel)
    # The download call is an API call of the month; the GET of its URL is not (nor is the token).
    assert channel.counter.this_month == fake.api_calls

    # Two hours later DingTalk has forgotten the download code ...
    clock.set(clock.now() + timedelta(hours=2))
    with pytest.raises(DingTalkError) as gone:
        await channel.client.download_url("dlcode-photo-1", ROBOT)
    assert gone.value.code == "resource.not.found"
    # ... and a console user of the department still opens the photo; someone outside it gets a 404.
    url = f"/console/media/{row.token}"
    assert await get(await console("log02"), url) == (200, PHOTO)
    assert (await get(await console("rep02"), url))[0] == 404

    # Passed on to mgr01 on DingTalk after the expiry: uploaded from the store, sent as an image message.
    async with bot.db.transaction() as s:
        photo = SendMedia(
            channel="dingtalk", user_ids=("mgr01",), media_id=f"att-{row.token}", source_channel="dingtalk"
        )
        enqueue(s, [photo], bot.clock.now())
    await bot.settle()
    [received] = fake.received(staff("mgr01"), "sampleImageMsg")
    [(media_id, (kind, name, data))] = fake.uploads.items()
    assert received.param == {"photoURL": media_id}
    assert (kind, data) == ("image", PHOTO) and name.endswith(".jpg")
    assert fake.media_to(staff("mgr01")) == [("image", name, PHOTO)]


async def test_a_dingtalk_file_keeps_its_name_and_a_rich_text_picture_is_stored(
    bot: Runtime,
    fake: FakeDingTalk,
    console: Any,
    http: TestClient[Any, Any],
    signer: DingTalkSigner,
    clock: FixedClock,
) -> None:
    await claimed_by_log01(bot, fake, console, http)
    fake.add_file("dlcode-file-1", PDF)
    fake.add_file("dlcode-rich-1", PHOTO)

    await callback(http, bot, signer, signer.file(staff("log01"), "dlcode-file-1", "授权书 2026.pdf", now_ms(clock)))
    parts = [{"text": "备货照片"}, {"type": "picture", "downloadCode": "dlcode-rich-1"}]
    await callback(http, bot, signer, signer.rich_text(staff("log01"), parts, now_ms(clock)))

    pdf, photo = await attachment_rows(bot)
    assert (pdf.filename, pdf.content_type, pdf.source_media_id) == (
        "授权书 2026.pdf",
        "application/pdf",
        "dlcode-file-1",
    )
    assert (photo.content_type, photo.source_media_id) == ("image/jpeg", "dlcode-rich-1")
    card = await logistics_row(bot)
    assert [a["media_id"] for a in card.attachments] == [f"att-{pdf.token}", f"att-{photo.token}"]

    # The file passed on to rep01 on DingTalk: a sampleFile with the uploaded media id and the sender's name.
    async with bot.db.transaction() as s:
        intent = SendMedia(
            channel="dingtalk", user_ids=("rep01",), media_id=f"att-{pdf.token}", media_type="file", caption="授权书"
        )
        enqueue(s, [intent], bot.clock.now())
    await bot.settle()
    [sent] = fake.received(staff("rep01"), "sampleFile")
    assert sent.param["fileName"] == "授权书 2026.pdf" and sent.param["fileType"] == "pdf"
    assert fake.uploads[sent.param["mediaId"]] == ("file", "授权书 2026.pdf", PDF)
    async with bot.db.read() as s:
        grants = [(g.attachment_token, g.user_id) for g in await s.scalars(select(AttachmentGrant))]
    assert (pdf.token, "rep01") in grants


async def test_a_console_upload_reaches_the_dingtalk_rep_as_an_uploaded_image(
    bot: Runtime, fake: FakeDingTalk, console: Any, http: TestClient[Any, Any], clock: FixedClock
) -> None:
    card = await claimed_by_log01(bot, fake, console, http)
    on_pc = await console("log01")
    await on_pc.upload("kit.jpg", PHOTO)
    [row] = await attachment_rows(bot)
    assert row.source_channel == "console" and row.card_id == card.id
    clock.set(clock.now() + timedelta(minutes=1))
    now = [c for c in fake.action_cards_to(staff("log01")) if "完成" in c.values()][-1]
    async with http.get(link(now, "完成")) as resp:
        assert resp.status == 200
    await bot.settle()

    assert fake.media_to(staff("rep01")) == [("image", "kit.jpg", PHOTO)]
    [sent] = fake.received(staff("rep01"), "sampleImageMsg")
    async with bot.db.read() as s:
        [recorded] = list(await s.scalars(select(AttachmentUpload)))
    assert (recorded.channel, recorded.platform_media_id) == ("dingtalk", sent.param["photoURL"])
    assert recorded.expires_at - recorded.uploaded_at == timedelta(days=1)
    [upload] = [r for r in fake.requests if r.endpoint == "batchSend" and r.body["msgKey"] == "sampleImageMsg"]
    assert upload.body["userIds"] == [staff("rep01")]
    # media/upload counts as an API call of the month (the token does not).
    assert fake.calls["media_upload"] == 1
    channel = bot.channels["dingtalk"]
    assert isinstance(channel, DingTalkChannel)
    assert channel.counter.this_month == fake.api_calls


async def send_stored(bot: Runtime, token: str, to: str) -> None:
    async with bot.db.transaction() as s:
        intent = SendMedia(channel="dingtalk", user_ids=(to,), media_id=f"att-{token}", source_channel="console")
        enqueue(s, [intent], bot.clock.now())
    await bot.settle()


async def test_an_upload_is_reused_while_an_hour_of_its_day_is_left(
    bot: Runtime, fake: FakeDingTalk, console: Any, clock: FixedClock
) -> None:
    await (await console("rep01")).upload("脊柱A包 照片.jpg", PHOTO)
    [row] = await attachment_rows(bot)

    await send_stored(bot, row.token, "mgr01")
    assert [name for _, name, _ in fake.uploads.values()] == ["脊柱A包 照片.jpg"]
    clock.set(clock.now() + timedelta(hours=22, minutes=59))  # 1 h 1 min left
    await send_stored(bot, row.token, "admin01")
    assert len(fake.uploads) == 1
    clock.set(clock.now() + timedelta(minutes=2))  # 59 min left: uploaded afresh
    await send_stored(bot, row.token, "log02")

    first, second = fake.uploads
    sent = [m.param["photoURL"] for u in ("mgr01", "admin01", "log02") for m in fake.received(staff(u))]
    assert sent == [first, first, second]


async def test_a_type_dingtalk_cannot_show_and_a_foreign_media_id_go_as_their_caption(
    bot: Runtime, fake: FakeDingTalk, console: Any
) -> None:
    await (await console("rep01")).upload("notes.txt", "备货清单：脊柱A包".encode(), "text/plain")
    [row] = await attachment_rows(bot)
    async with bot.db.transaction() as s:
        enqueue(
            s,
            [
                SendMedia(channel="dingtalk", user_ids=("mgr01",), media_id=f"att-{row.token}", caption="📎 备货清单"),
                SendMedia(
                    channel="dingtalk",
                    user_ids=("mgr01",),
                    media_id="MEDIA_wecom_1",
                    source_channel="wecom",
                    caption="📎 照片",
                ),
            ],
            bot.clock.now(),
        )
    await bot.settle()
    assert sorted(fake.texts_to(staff("mgr01"))) == ["📎 备货清单", "📎 照片"]
    assert fake.uploads == {}


async def test_a_download_failure_does_not_lose_the_message(
    bot: Runtime,
    fake: FakeDingTalk,
    console: Any,
    http: TestClient[Any, Any],
    signer: DingTalkSigner,
    clock: FixedClock,
) -> None:
    """The code is unknown (expired before the bot got to it): not retried, the card keeps DingTalk's code."""
    await claimed_by_log01(bot, fake, console, http)
    await callback(http, bot, signer, signer.picture(staff("log01"), "dlcode-never-registered", now_ms(clock)))

    assert replies(fake, "log01")[-1].startswith("📎 已附加到卡片")
    assert await attachment_rows(bot) == []
    assert [(a["media_id"], a["channel"]) for a in (await logistics_row(bot)).attachments] == [
        ("dlcode-never-registered", "dingtalk")
    ]
    assert len([r for r in fake.requests if r.endpoint == "download"]) == 1


async def test_a_busy_download_is_retried_with_backoff(
    bot: Runtime,
    fake: FakeDingTalk,
    console: Any,
    http: TestClient[Any, Any],
    signer: DingTalkSigner,
    clock: FixedClock,
) -> None:
    await claimed_by_log01(bot, fake, console, http)
    pauses: list[float] = []

    async def pause(seconds: float) -> None:
        pauses.append(seconds)

    bot.pipeline.media_sleep = pause
    fake.fail("download", "5xx", times=2)
    fake.add_file("dlcode-busy", PHOTO)
    await callback(http, bot, signer, signer.picture(staff("log01"), "dlcode-busy", now_ms(clock)))

    assert pauses == [1.0, 2.0]
    [row] = await attachment_rows(bot)
    assert [a["media_id"] for a in (await logistics_row(bot)).attachments] == [f"att-{row.token}"]


async def test_a_file_over_the_limit_is_refused(bot: Runtime, fake: FakeDingTalk) -> None:
    channel = bot.channels["dingtalk"]
    assert isinstance(channel, DingTalkChannel)
    fake.add_file("dlcode-big", PHOTO * 20)
    with pytest.raises(MediaFetchError) as refused:
        await channel.fetch_media("image", "dlcode-big", 1024)
    assert refused.value.too_large
    assert (await channel.fetch_media("image", "dlcode-big", 1024 * 1024)).data == PHOTO * 20


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd.pdf", "..\\..\\boot.pdf", "\u202efdp.exe", ".hidden.pdf"],
    ids=["path", "backslash", "bidi", "dot"],
)
async def test_a_hostile_file_name_from_dingtalk_is_neutralised(
    bot: Runtime,
    fake: FakeDingTalk,
    console: Any,
    http: TestClient[Any, Any],
    signer: DingTalkSigner,
    clock: FixedClock,
    name: str,
) -> None:
    await claimed_by_log01(bot, fake, console, http)
    fake.add_file("dlcode-hostile", PDF)
    await callback(http, bot, signer, signer.file(staff("log01"), "dlcode-hostile", name, now_ms(clock)))

    [row] = await attachment_rows(bot)
    assert "/" not in row.filename and "\\" not in row.filename and "\u202e" not in row.filename
    assert not row.filename.startswith(".")
    assert FileStore(bot.settings.attachments.dir).path(row.storage_key).read_bytes() == PDF


@pytest.fixture
async def file_host() -> AsyncIterator[tuple[TestServer, list[dict[str, str]]]]:
    """Another host serving download URLs (DingTalk's are on an object store): records the headers it got."""
    seen: list[dict[str, str]] = []

    async def serve(request: web.Request) -> web.StreamResponse:
        seen.append(dict(request.headers))
        where = request.match_info["name"]
        if where == "to-file-scheme":
            raise web.HTTPFound("file:///etc/passwd")
        if where == "to-http":
            raise web.HTTPFound("/files/photo")
        if where == "loop":
            raise web.HTTPFound("/files/loop")
        if where == "gone":
            raise web.HTTPForbidden(text="Request has expired")
        return web.Response(body=PHOTO, content_type="image/jpeg")

    app = web.Application()
    app.router.add_get("/files/{name}", serve)
    server = TestServer(app)
    await server.start_server()
    try:
        yield server, seen
    finally:
        await server.close()


async def test_a_download_url_gets_no_token_and_redirects_only_to_http(
    bot: Runtime, file_host: tuple[TestServer, list[dict[str, str]]]
) -> None:
    server, seen = file_host
    channel = bot.channels["dingtalk"]
    assert isinstance(channel, DingTalkChannel)
    client = channel.client

    assert await client.fetch_url(str(server.make_url("/files/to-http")), 1024 * 1024) == PHOTO
    assert all("x-acs-dingtalk-access-token" not in {k.lower() for k in h} for h in seen)
    with pytest.raises(DingTalkError) as bad:
        await client.fetch_url(str(server.make_url("/files/to-file-scheme")), 1024 * 1024)
    assert (bad.value.code, bad.value.retryable) == ("bad_url", False)
    with pytest.raises(DingTalkError) as looping:
        await client.fetch_url(str(server.make_url("/files/loop")), 1024 * 1024)
    assert looping.value.code == "redirects"
    # An expired URL: asking again (a new downloadUrl) may help.
    with pytest.raises(DingTalkError) as gone:
        await client.fetch_url(str(server.make_url("/files/gone")), 1024 * 1024)
    assert (gone.value.code, gone.value.retryable) == ("http_403", True)
    with pytest.raises(DingTalkError):
        await client.fetch_url("ftp://example.com/x", 1024)
