"""Attachments across channels (issue 13): a photo sent on WeCom is downloaded into the bot's store when it arrives
and outlives WeCom's 3-day media id; a console upload reaches a WeCom user as a WeCom image uploaded with
media/upload. Real encrypted callbacks in, the fake WeCom API out, the console over HTTP; SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.channels.wecom.channel import WeComChannel
from bot.channels.wecom.client import WeComError
from bot.core.events import MediaMessage
from bot.core.intents import SendMedia
from bot.infra.clock import FixedClock
from bot.infra.filestore import FileStore
from bot.outbox import enqueue
from bot.runtime import Runtime
from storage.models import Attachment, AttachmentGrant, AttachmentUpload, InboundEvent, TaskCard
from tests.channels.wecom.conftest import WeComUser
from tests.console_driver import ConsoleUser
from tests.fakes.wecom import FakeWeCom

User = Callable[[str], WeComUser]
pytestmark = pytest.mark.usefixtures("no_violations")

SURGERY = "跟台 浙一 骨科 2026-11-26 器械:脊柱A包 备注:王主任主刀"
PHOTO = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00 the reserved kit, photographed" + bytes(range(256))


async def logistics_card_claimed(wecom_user: User, fake: FakeWeCom) -> tuple[WeComUser, WeComUser, dict[str, Any]]:
    """rep01 submits a 跟台 request on WeCom; log01 claims the logistics card there."""
    rep, log01 = wecom_user("rep01"), wecom_user("log01")
    await rep.send(SURGERY)
    await rep.tap(rep.last_card(), "提交")
    card = next(c for c in log01.cards() if c["task_id"].startswith("task-") and "-logistics" in c["task_id"])
    await log01.tap(card, "认领")
    return rep, log01, card


async def send_photo(user: WeComUser, media_id: str) -> None:
    inner = user.signer.image(user.userid, media_id, user.next_msg_id(), user.now())
    assert await user.deliver(inner) == (200, b"")


async def logistics_row(rt: Runtime) -> TaskCard:
    async with rt.db.read() as s:
        return (await s.scalars(select(TaskCard).where(TaskCard.department == "logistics"))).one()


async def attachment_rows(rt: Runtime) -> list[Attachment]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(Attachment).order_by(Attachment.id)))


async def get(user: ConsoleUser, url: str) -> tuple[int, bytes]:
    async with user.session.get(user.server.make_url(url)) as r:
        return r.status, await r.read()


async def test_wecom_photo_outlives_the_media_id_and_a_console_colleague_opens_it(
    wecom_user: User, fake: FakeWeCom, bot: Runtime, clock: FixedClock, console: Any
) -> None:
    _, log01, _ = await logistics_card_claimed(wecom_user, fake)
    media_id = fake.register_media(PHOTO, "IMG_0412.jpg", "image/jpeg")

    await send_photo(log01, media_id)

    assert log01.texts()[-1].startswith("📎 已附加到卡片")
    [row] = await attachment_rows(bot)
    assert (row.source_channel, row.source_media_id, row.owner_id) == ("wecom", media_id, "log01")
    assert (row.content_type, row.size, row.filename) == ("image/jpeg", len(PHOTO), "IMG_0412.jpg")
    assert FileStore(bot.settings.attachments.dir).path(row.storage_key).read_bytes() == PHOTO
    card = await logistics_row(bot)
    # From arrival on, the card (and its audit trail, and any outbox row) names the store's id.
    assert [(a["kind"], a["media_id"]) for a in card.attachments] == [("image", f"att-{row.token}")]
    assert row.card_id == card.id
    [get_call] = [r for r in fake.requests if r.endpoint == "media/get"]
    assert get_call.query["media_id"] == media_id

    # Four days later WeCom has forgotten the media id ...
    clock.set(clock.now() + timedelta(days=4))
    channel = bot.channels["wecom"]
    assert isinstance(channel, WeComChannel)
    with pytest.raises(WeComError) as gone:
        await channel.client.get_media(media_id, 1024 * 1024)
    assert gone.value.errcode == 40007
    # ... and a console user of the department still opens the photo; someone outside it gets a 404.
    log02 = await console("log02")
    url = f"/console/media/{row.token}"
    assert await get(log02, url) == (200, PHOTO)
    status, body = await get(await console("rep02"), url)
    assert status == 404 and PHOTO not in body

    # Passed on to rep02 on the console after the expiry: a feed item with the file, which they may now open.
    async with bot.db.transaction() as s:
        photo = SendMedia(channel="console", user_ids=("rep02",), media_id=f"att-{row.token}", source_channel="wecom")
        enqueue(s, [photo], bot.clock.now())
    await bot.settle()
    rep02_pc = await console("rep02")
    await rep02_pc.refresh()
    [item] = [i for i in rep02_pc.items if i.get("media_url")]
    assert (item["media_url"], item["media_type"]) == (url, "image")
    assert await get(rep02_pc, url) == (200, PHOTO)


async def test_a_platform_retry_of_the_photo_is_stored_once(wecom_user: User, fake: FakeWeCom, bot: Runtime) -> None:
    _, log01, _ = await logistics_card_claimed(wecom_user, fake)
    media_id = fake.register_media(PHOTO)
    inner = log01.signer.image(log01.userid, media_id, log01.next_msg_id(), log01.now())
    assert await log01.deliver(inner) == (200, b"")
    assert await log01.deliver(inner) == (200, b"")  # WeCom's retry: the same MsgId
    assert len(await attachment_rows(bot)) == 1
    assert len([r for r in fake.requests if r.endpoint == "media/get"]) == 1


async def test_console_upload_reaches_the_wecom_rep_as_an_uploaded_image(
    wecom_user: User, fake: FakeWeCom, bot: Runtime, clock: FixedClock, console: Any
) -> None:
    rep, log01, card = await logistics_card_claimed(wecom_user, fake)
    # log01 attaches the photo from the console on the PC (the card is held on WeCom: same person, same card).
    on_pc = await console("log01")
    await on_pc.upload("kit.jpg", PHOTO)
    [row] = await attachment_rows(bot)
    assert row.source_channel == "console" and row.card_id is not None
    clock.set(clock.now() + timedelta(minutes=1))
    await log01.tap(log01.current(card) | {"task_id": card["task_id"]}, "完成")

    [photo] = [m for m in fake.messages_to("rep01") if m.msgtype == "image"]
    [upload] = fake.uploads
    assert photo.body["image"] == {"media_id": upload.media_id}
    assert (upload.media_type, upload.data, upload.filename) == ("image", PHOTO, "kit.jpg")
    assert upload.content_type == "image/jpeg"
    async with bot.db.read() as s:
        [recorded] = list(await s.scalars(select(AttachmentUpload)))
        grants = [(g.attachment_token, g.user_id) for g in await s.scalars(select(AttachmentGrant))]
    assert (recorded.channel, recorded.platform_media_id) == ("wecom", upload.media_id)
    assert recorded.expires_at - recorded.uploaded_at == timedelta(days=3)
    assert grants == [(row.token, "rep01")]
    # The rep may open it on the console too; someone else may not.
    assert await get(await console("rep01"), f"/console/media/{row.token}") == (200, PHOTO)
    assert (await get(await console("rep02"), f"/console/media/{row.token}"))[0] == 404
    del rep


async def send_stored(bot: Runtime, token: str, to: str) -> None:
    async with bot.db.transaction() as s:
        intent = SendMedia(channel="wecom", user_ids=(to,), media_id=f"att-{token}", source_channel="console")
        enqueue(s, [intent], bot.clock.now())
    await bot.settle()


async def test_an_upload_is_reused_while_an_hour_of_it_is_left(
    wecom_user: User, fake: FakeWeCom, bot: Runtime, clock: FixedClock, console: Any
) -> None:
    await (await console("rep01")).upload("脊柱A包 照片.jpg", PHOTO)
    [row] = await attachment_rows(bot)

    await send_stored(bot, row.token, "mgr01")
    # The name arrives as it is (UTF-8, not percent-encoded): it is what the recipient sees.
    assert fake.uploads[0].filename == "脊柱A包 照片.jpg"
    clock.set(clock.now() + timedelta(days=2, hours=22, minutes=59))  # 1 h 1 min left
    await send_stored(bot, row.token, "dir01")
    assert len(fake.uploads) == 1
    clock.set(clock.now() + timedelta(minutes=2))  # 59 min left: uploaded afresh
    await send_stored(bot, row.token, "admin01")

    assert len(fake.uploads) == 2
    sent = [m.body["image"]["media_id"] for u in ("mgr01", "dir01", "admin01") for m in fake.messages_to(u)]
    assert sent == [fake.uploads[0].media_id, fake.uploads[0].media_id, fake.uploads[1].media_id]
    # A grant each: whoever was sent the file may open it on the console.
    assert (await get(await console("dir01"), f"/console/media/{row.token}")) == (200, PHOTO)


async def test_a_busy_media_get_is_retried_with_backoff(wecom_user: User, fake: FakeWeCom, bot: Runtime) -> None:
    _, log01, _ = await logistics_card_claimed(wecom_user, fake)
    pauses: list[float] = []

    async def pause(seconds: float) -> None:
        pauses.append(seconds)

    bot.pipeline.media_sleep = pause
    fake.fail_next("media/get", -1, "timeout")
    await send_photo(log01, fake.register_media(PHOTO))

    assert pauses == [1.0, 2.0]
    [row] = await attachment_rows(bot)
    assert [a["media_id"] for a in (await logistics_row(bot)).attachments] == [f"att-{row.token}"]


async def test_a_media_id_wecom_no_longer_knows_is_handled_with_a_placeholder(
    wecom_user: User, fake: FakeWeCom, bot: Runtime
) -> None:
    """The download fails for good: the message is not lost, the card keeps WeCom's id (as before the store)."""
    _, log01, _ = await logistics_card_claimed(wecom_user, fake)
    await send_photo(log01, "MEDIA_never_registered")

    assert log01.texts()[-1].startswith("📎 已附加到卡片")
    assert await attachment_rows(bot) == []
    assert [(a["media_id"], a["channel"]) for a in (await logistics_row(bot)).attachments] == [
        ("MEDIA_never_registered", "wecom")
    ]
    assert len([r for r in fake.requests if r.endpoint == "media/get"]) == 1  # 40007 is not retried


@pytest.mark.parametrize("extra_overrides", [{"attachments": {"max_bytes": 2048}}])
async def test_a_file_over_the_limit_is_refused_with_a_message_and_nothing_stored(
    wecom_user: User, fake: FakeWeCom, bot: Runtime
) -> None:
    _, log01, _ = await logistics_card_claimed(wecom_user, fake)
    await send_photo(log01, fake.register_media(PHOTO * 20))

    assert log01.texts()[-1] == "文件超过 2 KB，没有收下，请压缩后再发。"
    assert await attachment_rows(bot) == []
    assert (await logistics_row(bot)).attachments == []
    async with bot.db.read() as s:
        [event] = list(await s.scalars(select(InboundEvent).where(InboundEvent.kind == "media")))
    assert event.status == "done"


async def test_a_file_of_a_type_not_kept_is_refused_with_a_message(
    wecom_user: User, fake: FakeWeCom, bot: Runtime
) -> None:
    _, log01, _ = await logistics_card_claimed(wecom_user, fake)
    page = b"<html><script>alert(1)</script></html>"
    await send_photo(log01, fake.register_media(page, "photo.jpg", "image/jpeg"))  # WeCom's type is not asked

    assert log01.texts()[-1].startswith("这种文件收不了")
    assert await attachment_rows(bot) == []
    assert (await logistics_row(bot)).attachments == []


async def test_a_photo_pending_at_a_restart_is_downloaded_at_recovery(
    wecom_user: User, fake: FakeWeCom, bot: Runtime
) -> None:
    """The process died after acknowledging the photo's callback: recover() queues it, and it is downloaded then."""
    _, log01, _ = await logistics_card_claimed(wecom_user, fake)
    media_id = fake.register_media(PHOTO)
    event = MediaMessage(channel="wecom", sender="log01", dedup_key="6000000000000000999", media_id=media_id)
    async with bot.db.transaction() as s:
        s.add(
            InboundEvent(
                channel="wecom",
                dedup_key=event.dedup_key,
                sender="log01",
                kind="media",
                payload=event.model_dump(mode="json"),
                received_at=bot.clock.now(),
            )
        )
    assert await bot.pipeline.recover() == 1
    await bot.settle()

    [row] = await attachment_rows(bot)
    assert row.source_media_id == media_id
    assert [a["media_id"] for a in (await logistics_row(bot)).attachments] == [f"att-{row.token}"]
    assert log01.texts()[-1].startswith("📎 已附加到卡片")


# (CR, LF and NUL cannot travel in a header at all: aiohttp refuses to send them, and so does any HTTP server.)
@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "..\\..\\boot.ini", "\u202egpj.exe", ".hidden"],
    ids=["path", "backslash", "bidi", "dot"],
)
async def test_a_hostile_file_name_from_wecom_is_neutralised(
    wecom_user: User, fake: FakeWeCom, bot: Runtime, name: str
) -> None:
    _, log01, _ = await logistics_card_claimed(wecom_user, fake)
    await send_photo(log01, fake.register_media(PHOTO, name, "image/jpeg"))

    [row] = await attachment_rows(bot)
    assert "/" not in row.filename and "\\" not in row.filename and "\u202e" not in row.filename
    assert not row.filename.startswith(".")
    # Stored by checksum, whatever the name said.
    assert FileStore(bot.settings.attachments.dir).path(row.storage_key).read_bytes() == PHOTO


async def test_media_get_refetches_an_expired_token_once(wecom_user: User, fake: FakeWeCom, bot: Runtime) -> None:
    _, log01, _ = await logistics_card_claimed(wecom_user, fake)
    fetches = fake.token_fetches
    fake.expire_tokens()
    await send_photo(log01, fake.register_media(PHOTO))

    assert len(await attachment_rows(bot)) == 1
    assert fake.token_fetches == fetches + 1
