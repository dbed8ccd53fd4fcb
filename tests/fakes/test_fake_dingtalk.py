"""The fake DingTalk API refuses what DingTalk documents as malformed (and records it), and plays its faults."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.fakes.dingtalk import FakeDingTalk

ROBOT = "dingfakerobot01"
TEMPLATE = "tpl-fake"


@pytest.fixture
def fake() -> FakeDingTalk:
    return FakeDingTalk(app_key="dingfakekey", app_secret="s" * 40, robot_code=ROBOT, templates=(TEMPLATE,))


@pytest.fixture
async def client(fake: FakeDingTalk) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(fake.app())) as c:
        yield c


async def _token(client: TestClient[Any, Any]) -> str:
    async with client.post("/v1.0/oauth2/accessToken", json={"appKey": "dingfakekey", "appSecret": "s" * 40}) as r:
        assert r.status == 200
        return str((await r.json())["accessToken"])


def _send(**over: Any) -> dict[str, Any]:
    body = {"robotCode": ROBOT, "userIds": ["u1"], "msgKey": "sampleText", "msgParam": json.dumps({"content": "x"})}
    return body | over


def _create(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "cardTemplateId": TEMPLATE,
        "outTrackId": "sb-1",
        "cardData": {"cardParamMap": {"title": "t"}},
        "openSpaceId": "dtv1.card//IM_ROBOT.u1;IM_ROBOT.u2",
        "imRobotOpenDeliverModel": {"spaceType": "IM_ROBOT", "robotCode": ROBOT},
        "callbackType": "HTTP",
        "callbackRouteKey": "rk",
    }
    return body | over


async def test_the_same_token_is_returned_inside_its_validity(client: TestClient[Any, Any]) -> None:
    assert await _token(client) == await _token(client)
    async with client.post("/v1.0/oauth2/accessToken", json={"appKey": "dingfakekey", "appSecret": "wrong"}) as r:
        assert r.status == 400 and (await r.json())["code"] == "invalidClientIdOrSecret"


async def test_a_call_without_a_token_header_is_refused(client: TestClient[Any, Any], fake: FakeDingTalk) -> None:
    async with client.post("/v1.0/robot/oToMessages/batchSend", json=_send()) as r:
        assert r.status == 400
    async with client.post(
        "/v1.0/robot/oToMessages/batchSend", json=_send(), headers={"x-acs-dingtalk-access-token": "forged"}
    ) as r:
        assert r.status == 400 and (await r.json())["code"] == "InvalidAuthentication"


@pytest.mark.parametrize(
    "body",
    [
        _send(msgParam={"content": "x"}),
        _send(msgParam="not json"),
        _send(userIds=[f"u{i}" for i in range(21)]),
        _send(userIds=[]),
        _send(robotCode="someone-else"),
        _send(msgKey="sampleNothing"),
        _send(msgKey="sampleMarkdown", msgParam=json.dumps({"title": "t"})),
        _send(
            msgKey="sampleActionCard",
            msgParam=json.dumps({"title": "t", "text": "x", "singleTitle": "a", "singleURL": "ftp://x"}),
        ),
    ],
)
async def test_malformed_batch_sends_are_refused(
    client: TestClient[Any, Any], fake: FakeDingTalk, body: dict[str, Any]
) -> None:
    headers = {"x-acs-dingtalk-access-token": await _token(client)}
    async with client.post("/v1.0/robot/oToMessages/batchSend", json=body, headers=headers) as r:
        assert r.status == 400
    assert fake.violations and fake.messages == {}


@pytest.mark.parametrize(
    "body",
    [
        _create(cardData={"cardParamMap": {"n": 1}}),
        _create(cardData={"cardParamMap": {"big": "字" * 400}}),
        _create(openSpaceId="IM_ROBOT.u1"),
        _create(openSpaceId="dtv1.card//ROBOT.u1"),
        _create(openSpaceId="dtv1.card//" + ";".join(f"IM_ROBOT.u{i}" for i in range(21))),
        _create(imRobotOpenDeliverModel={"spaceType": "IM_ROBOT", "robotCode": "someone-else"}),
        _create(imRobotOpenDeliverModel=None),
        _create(callbackRouteKey=None),
        _create(callbackType="http"),
    ],
)
async def test_malformed_cards_are_refused(
    client: TestClient[Any, Any], fake: FakeDingTalk, body: dict[str, Any]
) -> None:
    headers = {"x-acs-dingtalk-access-token": await _token(client)}
    async with client.post("/v1.0/card/instances/createAndDeliver", json=body, headers=headers) as r:
        assert r.status == 400
    assert fake.violations and fake.cards == {}


async def test_a_card_is_created_updated_by_key_and_unknown_ones_are_refused(
    client: TestClient[Any, Any], fake: FakeDingTalk
) -> None:
    headers = {"x-acs-dingtalk-access-token": await _token(client)}
    async with client.post("/v1.0/card/instances/createAndDeliver", json=_create(), headers=headers) as r:
        assert r.status == 200
        assert [d["spaceId"] for d in (await r.json())["result"]["deliverResults"]] == ["u1", "u2"]
    update = {
        "outTrackId": "sb-1",
        "cardData": {"cardParamMap": {"status": "完成"}},
        "cardUpdateOptions": {"updateCardDataByKey": True},
    }
    async with client.put("/v1.0/card/instances", json=update, headers=headers) as r:
        assert r.status == 200
    assert fake.card_state("sb-1", "u2") == {"title": "t", "status": "完成"}
    async with client.put("/v1.0/card/instances", json=update | {"outTrackId": "nope"}, headers=headers) as r:
        assert (await r.json())["code"] == "param.cardNotExist"
    async with client.put("/v1.0/card/instances", json={"outTrackId": "sb-1"}, headers=headers) as r:
        assert r.status == 400
    async with client.post(
        "/v1.0/card/instances/createAndDeliver", json=_create(cardTemplateId="unknown"), headers=headers
    ) as r:
        assert (await r.json())["code"] == "param.templateNotExist"


async def test_faults_and_flow_control(client: TestClient[Any, Any], fake: FakeDingTalk) -> None:
    headers = {"x-acs-dingtalk-access-token": await _token(client)}
    fake.fail("batchSend", "throttle")
    async with client.post("/v1.0/robot/oToMessages/batchSend", json=_send(), headers=headers) as r:
        assert r.status == 403 and (await r.json())["code"] == "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"
    fake.fail("batchSend", "quota")
    async with client.post("/v1.0/robot/oToMessages/batchSend", json=_send(), headers=headers) as r:
        assert (await r.json())["code"] == "Forbidden.AccessDenied.ApiCountLimitForOrg"
    fake.flow_control("u2")
    async with client.post("/v1.0/robot/oToMessages/batchSend", json=_send(userIds=["u1", "u2"]), headers=headers) as r:
        answer = await r.json()
    assert answer["flowControlledStaffIdList"] == ["u2"] and answer["processQueryKey"]
    assert fake.texts_to("u1") == ["x"] and fake.texts_to("u2") == []
    assert fake.api_calls == 3


async def test_callback_registration_and_file_download(client: TestClient[Any, Any], fake: FakeDingTalk) -> None:
    headers = {"x-acs-dingtalk-access-token": await _token(client)}
    reg = {"callbackRouteKey": "rk", "callbackUrl": "https://bot.example.com/dingtalk/card", "apiSecret": "k"}
    async with client.post("/v1.0/card/callbacks/register", json=reg, headers=headers) as r:
        assert r.status == 200
    async with client.post("/v1.0/card/callbacks/register", json=reg, headers=headers) as r:
        assert (await r.json())["code"] == "param.callbackRouteKeyExist"
    async with client.post("/v1.0/card/callbacks/register", json=reg | {"forceUpdate": True}, headers=headers) as r:
        assert r.status == 200
    async with client.post("/v1.0/card/callbacks/register", json={"callbackRouteKey": "rk"}, headers=headers) as r:
        assert r.status == 400
    fake.add_file("dl-1", b"\x89PNG photo")
    async with client.post(
        "/v1.0/robot/messageFiles/download", json={"downloadCode": "dl-1", "robotCode": ROBOT}, headers=headers
    ) as r:
        url = (await r.json())["downloadUrl"]
    async with client.session.get(url) as r:
        assert await r.read() == b"\x89PNG photo"
    async with client.post(
        "/v1.0/robot/messageFiles/download", json={"downloadCode": "dl-1", "robotCode": "other"}, headers=headers
    ) as r:
        assert r.status == 400


async def test_what_a_person_sees_is_served_to_other_processes(
    client: TestClient[Any, Any], fake: FakeDingTalk
) -> None:
    headers = {"x-acs-dingtalk-access-token": await _token(client)}
    async with client.post("/v1.0/robot/oToMessages/batchSend", json=_send(), headers=headers) as r:
        assert r.status == 200
    async with client.post("/v1.0/card/instances/createAndDeliver", json=_create(), headers=headers) as r:
        assert r.status == 200
    async with client.get("/_fake/received/u1") as r:
        seen = await r.json()
    assert seen["messages"][0]["param"] == {"content": "x"}
    assert seen["cards"] == [{"outTrackId": "sb-1", "cardParamMap": {"title": "t"}}]
    async with client.get("/_fake/stats") as r:
        stats = await r.json()
    assert (stats["api_calls"], stats["messages"], stats["calls"]["batchSend"]) == (2, 1, 1)


async def test_oapi_token_and_media_upload(client: TestClient[Any, Any], fake: FakeDingTalk) -> None:
    async with client.get("/gettoken", params={"appkey": "dingfakekey", "appsecret": "s" * 40}) as r:
        token = (await r.json())["access_token"]
    assert token == await _token(client), "the same token on both hosts"
    form = aiohttp.FormData()
    form.add_field("type", "image")
    form.add_field("media", b"\x89PNG...", filename="kit.png", content_type="image/png")
    async with client.post("/media/upload", params={"access_token": token}, data=form) as r:
        answer = await r.json()
    assert answer["errcode"] == 0 and fake.uploads[answer["media_id"]] == ("image", "kit.png", b"\x89PNG...")
    bad = aiohttp.FormData()
    bad.add_field("type", "image")
    bad.add_field("media", b"MZ", filename="run.exe")
    async with client.post("/media/upload", params={"access_token": token}, data=bad) as r:
        assert (await r.json())["errcode"] == 40004
    async with client.post("/media/upload", params={"access_token": "forged"}, data=form) as r:
        assert (await r.json())["errcode"] == 40014


async def test_download_codes_and_urls_expire_and_media_messages_name_uploads() -> None:
    now = [1_000_000.0]
    fake = FakeDingTalk(app_key="k", app_secret="s" * 40, robot_code=ROBOT, now=lambda: now[0])
    async with TestClient(TestServer(fake.app())) as c:
        async with c.post("/v1.0/oauth2/accessToken", json={"appKey": "k", "appSecret": "s" * 40}) as r:
            headers = {"x-acs-dingtalk-access-token": (await r.json())["accessToken"]}
        fake.add_file("dl-1", b"\x89PNG photo")
        body = {"downloadCode": "dl-1", "robotCode": ROBOT}
        async with c.post("/v1.0/robot/messageFiles/download", json=body, headers=headers) as r:
            url = (await r.json())["downloadUrl"]
        now[0] += 3601
        async with c.session.get(url) as r:
            assert r.status == 403
        async with c.post("/v1.0/robot/messageFiles/download", json=body, headers=headers) as r:
            assert (r.status, (await r.json())["code"]) == (400, "resource.not.found")
        # An image or file message must name an upload (or, for a picture, an http(s) URL).
        for key, param in (
            ("sampleImageMsg", {"photoURL": "@unknown"}),
            ("sampleFile", {"mediaId": "@x", "fileName": "a.pdf", "fileType": "pdf"}),
        ):
            send = _send(msgKey=key, msgParam=json.dumps(param))
            async with c.post("/v1.0/robot/oToMessages/batchSend", json=send, headers=headers) as r:
                assert r.status == 400
        assert len(fake.violations) == 2
        fake.uploads["@kit"] = ("image", "kit.png", b"\x89PNG")
        send = _send(msgKey="sampleImageMsg", msgParam=json.dumps({"photoURL": "@kit"}))
        async with c.post("/v1.0/robot/oToMessages/batchSend", json=send, headers=headers) as r:
            assert r.status == 200
        assert fake.media_to("u1") == [("image", "kit.png", b"\x89PNG")]
