"""Attachments between DingTalk and WeCom (issue 13): a photo sent on one reaches a person on the other as a
picture uploaded there, after the first platform has forgotten it. Both fakes on real servers, real signed and
encrypted callbacks; SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.core.intents import SendMedia
from bot.infra.clock import FixedClock
from bot.outbox import enqueue
from bot.runtime import Runtime
from storage.models import Attachment
from tests.channels.dingtalk.conftest import APP_SECRET, ROBOT, dingtalk_section, staff
from tests.channels.wecom.conftest import AES_KEY, AGENT, CORP, SECRET, TOKEN, WeComUser, wecom_section
from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.dingtalk_callbacks import DingTalkSigner
from tests.fakes.wecom import FakeWeCom
from tests.fakes.wecom_callbacks import WeComSigner

PHOTO = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00 the reserved kit, photographed" + bytes(range(256))


@pytest.fixture
def wecom(clock: FixedClock) -> FakeWeCom:
    return FakeWeCom(corp_id=CORP, secret=SECRET, agent_id=AGENT, now=lambda: clock.now().timestamp())


@pytest.fixture
async def wecom_server(wecom: FakeWeCom) -> AsyncIterator[TestServer]:
    server = TestServer(wecom.app())
    await server.start_server()
    try:
        yield server
    finally:
        wecom.release_timeouts()
        await server.close()


@pytest.fixture
def settings_overrides(fake_server: TestServer, wecom_server: TestServer) -> dict[str, dict[str, Any]]:
    return {"dingtalk": dingtalk_section(fake_server), "wecom": wecom_section(wecom_server)}


async def only_attachment(rt: Runtime) -> Attachment:
    async with rt.db.read() as s:
        [row] = list(await s.scalars(select(Attachment)))
    return row


async def pass_on(rt: Runtime, channel: str, to: str, row: Attachment) -> None:
    async with rt.db.transaction() as s:
        intent = SendMedia(
            channel=channel, user_ids=(to,), media_id=f"att-{row.token}", source_channel=row.source_channel
        )
        enqueue(s, [intent], rt.clock.now())
    await rt.settle()


async def test_a_dingtalk_photo_reaches_a_wecom_colleague_after_the_download_code_expired(
    bot: Runtime, fake: FakeDingTalk, wecom: FakeWeCom, http: TestClient[Any, Any], clock: FixedClock
) -> None:
    signer = DingTalkSigner(APP_SECRET, ROBOT)
    fake.add_file("dlcode-cross-1", PHOTO)
    doc = signer.picture(staff("log01"), "dlcode-cross-1", int(clock.now().timestamp() * 1000))
    headers, body = signer.signed(doc, int(clock.now().timestamp() * 1000))
    async with http.post("/dingtalk/callback", headers=headers, data=body) as resp:
        assert resp.status == 200
    await bot.settle()
    row = await only_attachment(bot)
    assert (row.source_channel, row.source_media_id) == ("dingtalk", "dlcode-cross-1")

    clock.set(clock.now() + timedelta(hours=3))  # the download code and its URL are long gone
    await pass_on(bot, "wecom", "mgr01", row)

    [upload] = wecom.uploads
    assert (upload.media_type, upload.data) == ("image", PHOTO)
    [photo] = [m for m in wecom.messages_to("mgr01") if m.msgtype == "image"]
    assert photo.body["image"] == {"media_id": upload.media_id}
    assert fake.violations == [] and wecom.violations == []


async def test_a_wecom_photo_reaches_a_dingtalk_colleague_as_an_uploaded_image(
    bot: Runtime, fake: FakeDingTalk, wecom: FakeWeCom, http: TestClient[Any, Any], clock: FixedClock
) -> None:
    sender = WeComUser(
        "log01",
        http=http,
        signer=WeComSigner(TOKEN, AES_KEY, CORP, agent_id=AGENT),
        fake=wecom,
        runtime=bot,
        clock=clock,
        msg_ids=itertools.count(6_100_000_000_000_000_000),
    )
    media_id = wecom.register_media(PHOTO, "IMG_0412.jpg", "image/jpeg")
    assert await sender.deliver(sender.signer.image("log01", media_id, sender.next_msg_id(), sender.now())) == (
        200,
        b"",
    )
    row = await only_attachment(bot)
    assert (row.source_channel, row.source_media_id) == ("wecom", media_id)

    clock.set(clock.now() + timedelta(days=4))  # WeCom's MediaId has expired
    await pass_on(bot, "dingtalk", "rep01", row)

    assert fake.media_to(staff("rep01")) == [("image", "IMG_0412.jpg", PHOTO)]
    [sent] = fake.received(staff("rep01"), "sampleImageMsg")
    assert sent.param["photoURL"] in fake.uploads
    assert fake.violations == [] and wecom.violations == []
