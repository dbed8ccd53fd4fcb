"""The fake WeCom server: tokens, validation, response codes, duplicate suppression, silent drops, faults."""

from __future__ import annotations

import asyncio
import io
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from cards import wecom
from cards.model import Button, Card, CardField
from cards.visits import VisitChoice
from tests.fakes.wecom import FakeWeCom

AGENT = 1000002
ROOT = Path(__file__).resolve().parents[2]
ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


class Clock:
    """Injectable monotonic time for the fake."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> FakeWeCom:
    return FakeWeCom(agent_id=AGENT, now=clock)


@pytest.fixture
async def client(fake: FakeWeCom, aiohttp_client: ClientFactory) -> TestClient[Any, Any]:
    return await aiohttp_client(fake.app())


async def get_token(client: TestClient[Any, Any], fake: FakeWeCom) -> str:
    resp = await client.get("/cgi-bin/gettoken", params={"corpid": fake.corp_id, "corpsecret": fake.secret})
    data = await resp.json()
    assert data["errcode"] == 0
    return str(data["access_token"])


async def post(client: TestClient[Any, Any], path: str, token: str, body: Any) -> dict[str, Any]:
    resp = await client.post(f"/cgi-bin/{path}", params={"access_token": token}, json=body)
    assert resp.status == 200
    data: dict[str, Any] = await resp.json()
    return data


def text_body(text: str, touser: str = "rep01", **extra: Any) -> dict[str, Any]:
    return {"touser": touser, "msgtype": "text", "agentid": AGENT, "text": {"content": text}, **extra}


def make_card(ref: str = "vc-t1-1", buttons: int = 2) -> Card:
    return Card(
        ref=ref,
        title="请确认拜访记录",
        fields=[CardField(label="客户", value="北京协和医院")],
        buttons=[Button.of(f"选项{i}", VisitChoice("t1", "ward", str(i))) for i in range(buttons)],
    )


def card_body(ref: str = "vc-t1-1", touser: str = "rep01", dup: int | None = None) -> dict[str, Any]:
    return wecom.render_send_card(make_card(ref), touser=touser.split("|"), agent_id=AGENT, duplicate_check_seconds=dup)


# ---- tokens ---------------------------------------------------------------------------------------------------


async def test_gettoken_checks_corp_id_and_secret(client: TestClient[Any, Any], fake: FakeWeCom) -> None:
    bad_corp = await client.get("/cgi-bin/gettoken", params={"corpid": "nope", "corpsecret": fake.secret})
    bad_secret = await client.get("/cgi-bin/gettoken", params={"corpid": fake.corp_id, "corpsecret": "nope"})
    assert (await bad_corp.json())["errcode"] == 40013
    assert (await bad_secret.json())["errcode"] == 40001
    good = {"corpid": fake.corp_id, "corpsecret": fake.secret}
    ok = await (await client.get("/cgi-bin/gettoken", params=good)).json()
    assert ok["expires_in"] == 7200
    assert ok["access_token"] != await get_token(client, fake)
    assert fake.token_fetches == 2


async def test_expired_unknown_and_missing_tokens(client: TestClient[Any, Any], fake: FakeWeCom, clock: Clock) -> None:
    token = await get_token(client, fake)
    assert (await post(client, "message/send", token, text_body("hi")))["errcode"] == 0
    fake.expire_tokens()
    assert (await post(client, "message/send", token, text_body("hi")))["errcode"] == 42001
    assert (await post(client, "message/send", "made-up", text_body("hi")))["errcode"] == 40014
    resp = await client.post("/cgi-bin/message/send", json=text_body("hi"))
    assert (await resp.json())["errcode"] == 41001
    fresh = await get_token(client, fake)
    clock.t += 7200
    assert (await post(client, "message/send", fresh, text_body("hi")))["errcode"] == 42001
    assert fake.texts_to("rep01") == ["hi"]
    assert fake.violations == []


# ---- message/send ---------------------------------------------------------------------------------------------


async def test_a_text_is_delivered_and_recorded(client: TestClient[Any, Any], fake: FakeWeCom) -> None:
    token = await get_token(client, fake)
    data = await post(client, "message/send", token, text_body("拜访已记录", touser="rep01|Mgr01"))
    assert data["errcode"] == 0
    assert data["invaliduser"] == ""
    assert data["msgid"]
    assert "response_code" not in data
    assert fake.texts_to("rep01") == fake.texts_to("mgr01") == ["拜访已记录"]
    assert fake.delivered[0].touser == ["rep01", "Mgr01"]
    assert [r.endpoint for r in fake.requests] == ["gettoken", "message/send"]
    assert fake.requests[1].body == text_body("拜访已记录", touser="rep01|Mgr01")


async def test_unknown_users_are_listed_and_all_unknown_is_81013(aiohttp_client: ClientFactory, clock: Clock) -> None:
    fake = FakeWeCom(agent_id=AGENT, known_users=["rep01"], now=clock)
    client = await aiohttp_client(fake.app())
    token = await get_token(client, fake)
    data = await post(client, "message/send", token, text_body("hi", touser="rep01|Ghost|bad user"))
    assert data["errcode"] == 0
    assert data["invaliduser"] == "ghost|bad user"
    assert fake.delivered[0].touser == ["rep01"]
    data = await post(client, "message/send", token, text_body("hi", touser="ghost"))
    assert data["errcode"] == 81013
    assert len(fake.delivered) == 1
    assert fake.violations == []


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        (text_body("协" * 683), 45002),  # 2049 bytes
        (text_body(""), 44004),
        (text_body("hi", touser=""), 82001),
        ({**text_body("hi"), "msgtype": "news"}, 40008),
        ({**text_body("hi"), "agentid": "1000002"}, 40056),
        ({**text_body("hi"), "agentid": 42}, 301002),
        ({**text_body("hi"), "markdown": {"content": "x"}}, 40058),
        (text_body("hi", enable_duplicate_check=1, duplicate_check_interval=4 * 3600 + 1), 40058),
        ({"touser": "rep01", "msgtype": "markdown", "agentid": AGENT, "markdown": {"content": "#" * 2049}}, 45002),
    ],
)
async def test_a_bad_send_answers_the_documented_errcode_and_is_recorded(
    client: TestClient[Any, Any], fake: FakeWeCom, body: dict[str, Any], errcode: int
) -> None:
    token = await get_token(client, fake)
    assert (await post(client, "message/send", token, body))["errcode"] == errcode
    assert fake.delivered == []
    assert fake.violations and fake.violations[0].startswith(f"message/send: {errcode} ")


def break_card(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    body = card_body()
    change(body["template_card"])
    return body


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        (break_card(lambda tc: tc.update(task_id="has space")), 42014),
        (break_card(lambda tc: tc.update(task_id="a" * 129)), 42014),
        (break_card(lambda tc: tc.pop("task_id")), 42014),
        (break_card(lambda tc: tc["main_title"].update(title="长" * 37)), 45002),
        (break_card(lambda tc: tc["main_title"].update(desc="长" * 45)), 45002),
        (break_card(lambda tc: tc.update(sub_title_text="长" * 161)), 45002),
        (break_card(lambda tc: tc["horizontal_content_list"][0].update(keyname="六个字的标签")), 45002),
        (break_card(lambda tc: tc["horizontal_content_list"][0].update(value="长" * 31)), 45002),
        (break_card(lambda tc: tc.update(horizontal_content_list=[{"keyname": "k", "value": "v"}] * 7)), 40058),
        (break_card(lambda tc: tc.update(button_list=[{"text": "b", "key": f"k{i}"} for i in range(7)])), 40058),
        (break_card(lambda tc: tc["button_list"][1].update(key=tc["button_list"][0]["key"])), 42018),
        (break_card(lambda tc: tc["button_list"][0].update(key="k" * 1025)), 42018),
        (break_card(lambda tc: tc["button_list"][0].pop("key")), 42019),
        (break_card(lambda tc: tc["button_list"][0].update(text="十一个字的按钮文案呀")), 0),
        (break_card(lambda tc: tc["button_list"][0].update(text="十一个字的按钮文案呀！")), 45002),
        (break_card(lambda tc: tc["button_list"][0].update(style=5)), 40058),
        (break_card(lambda tc: tc.pop("button_list")), 40058),
        (break_card(lambda tc: tc.update(card_type="fancy")), 40058),
    ],
)
async def test_template_card_limits(
    client: TestClient[Any, Any], fake: FakeWeCom, body: dict[str, Any], errcode: int
) -> None:
    token = await get_token(client, fake)
    assert (await post(client, "message/send", token, body))["errcode"] == errcode
    assert bool(fake.violations) == (errcode != 0)


async def test_a_multiple_interaction_card_is_checked_too(client: TestClient[Any, Any], fake: FakeWeCom) -> None:
    token = await get_token(client, fake)
    select = {"question_key": "q1", "option_list": [{"id": f"o{i}", "text": f"选项{i}"} for i in range(3)]}
    card = {
        "card_type": "multiple_interaction",
        "task_id": "multi-1",
        "main_title": {"title": "选择科室和联系人"},
        "select_list": [select, {**select, "question_key": "q2"}],
        "submit_button": {"text": "提交", "key": "submit"},
    }
    body = {"touser": "rep01", "msgtype": "template_card", "agentid": AGENT, "template_card": card}
    data = await post(client, "message/send", token, body)
    assert data["errcode"] == 0
    assert data["response_code"]
    too_many = {**card, "task_id": "multi-2", "select_list": [select] * 4}
    assert (await post(client, "message/send", token, {**body, "template_card": too_many}))["errcode"] == 40058


async def test_a_task_id_is_used_once_per_app(client: TestClient[Any, Any], fake: FakeWeCom) -> None:
    token = await get_token(client, fake)
    assert (await post(client, "message/send", token, card_body("vc-t1-1")))["errcode"] == 0
    assert (await post(client, "message/send", token, card_body("vc-t1-1", touser="mgr01")))["errcode"] == 42014
    assert fake.violations == ["message/send: 42014 task_id 'vc-t1-1' was already used by this app"]
    assert len(fake.cards_to("rep01")) == 1
    assert fake.cards_to("mgr01") == []


# ---- response codes and updates -------------------------------------------------------------------------------


async def test_a_rendered_card_round_trip(client: TestClient[Any, Any], fake: FakeWeCom) -> None:
    token = await get_token(client, fake)
    sent = await post(client, "message/send", token, card_body("vc-t1-1"))
    settled = make_card("vc-t1-1", buttons=0).model_copy(update={"status": "已提交 V12"})
    update = wecom.render_update(settled, userids=["rep01"], agent_id=AGENT, response_code=sent["response_code"])
    assert await post(client, "message/update_template_card", token, update) == {
        "errcode": 0,
        "errmsg": "ok",
        "invaliduser": [],
    }
    state = fake.card_state("vc-t1-1", "rep01")
    assert state is not None
    assert state["replace_text"] == "已提交 V12"
    assert [u.task_id for u in fake.updates] == ["vc-t1-1"]
    assert fake.violations == []


async def test_a_response_code_works_once(client: TestClient[Any, Any], fake: FakeWeCom) -> None:
    token = await get_token(client, fake)
    code = (await post(client, "message/send", token, card_body()))["response_code"]
    body = {"userids": ["rep01"], "agentid": AGENT, "response_code": code, "button": {"replace_name": "已处理"}}
    assert (await post(client, "message/update_template_card", token, body))["errcode"] == 0
    assert (await post(client, "message/update_template_card", token, body))["errcode"] == 60140
    unknown = {**body, "response_code": "never-issued"}
    assert (await post(client, "message/update_template_card", token, unknown))["errcode"] == 60140
    assert fake.rejected_codes == [code, "never-issued"]
    assert fake.violations == []
    state = fake.card_state("vc-t1-1", "rep01")
    assert state is not None and state["replace_text"] == "已处理"


async def test_a_tap_code_is_registered_by_the_test_and_expires(
    client: TestClient[Any, Any], fake: FakeWeCom, clock: Clock
) -> None:
    token = await get_token(client, fake)
    await post(client, "message/send", token, card_body())
    tap = fake.issue_response_code("vc-t1-1", "rep01")
    late = fake.issue_response_code("vc-t1-1", "rep01")
    body = {"userids": ["rep01"], "agentid": AGENT, "button": {"replace_name": "已处理"}}
    assert (await post(client, "message/update_template_card", token, {**body, "response_code": tap}))["errcode"] == 0
    clock.t += 72 * 3600
    token = await get_token(client, fake)
    late_body = {**body, "response_code": late}
    assert (await post(client, "message/update_template_card", token, late_body))["errcode"] == 60140


async def test_a_malformed_update_is_a_violation(client: TestClient[Any, Any], fake: FakeWeCom) -> None:
    token = await get_token(client, fake)
    code = fake.issue_response_code("vc-t1-1", "rep01")
    both = {"userids": ["rep01"], "agentid": AGENT, "response_code": code, "button": {"replace_name": "x"}}
    both["template_card"] = wecom.render_template_card(make_card())
    assert (await post(client, "message/update_template_card", token, both))["errcode"] == 40058
    no_users = {"userids": [], "agentid": AGENT, "response_code": code, "button": {"replace_name": "x"}}
    assert (await post(client, "message/update_template_card", token, no_users))["errcode"] == 82001
    assert len(fake.violations) == 2
    assert fake.updates == []


# ---- duplicate suppression ------------------------------------------------------------------------------------


async def test_a_flagged_identical_message_inside_the_interval_is_not_delivered_again(
    client: TestClient[Any, Any], fake: FakeWeCom, clock: Clock
) -> None:
    token = await get_token(client, fake)
    body = text_body("日报已提交", enable_duplicate_check=1, duplicate_check_interval=600)
    first = await post(client, "message/send", token, body)
    again = await post(client, "message/send", token, body)
    assert first["errcode"] == again["errcode"] == 0
    assert again["msgid"] == first["msgid"]
    assert fake.suppressed_duplicates == 1
    assert fake.texts_to("rep01") == ["日报已提交"]
    other_user = await post(client, "message/send", token, {**body, "touser": "rep02"})
    assert other_user["errcode"] == 0
    clock.t += 600
    await post(client, "message/send", token, body)
    assert fake.texts_to("rep01") == ["日报已提交", "日报已提交"]
    assert fake.texts_to("rep02") == ["日报已提交"]


async def test_unflagged_identical_messages_are_both_delivered(client: TestClient[Any, Any], fake: FakeWeCom) -> None:
    token = await get_token(client, fake)
    await post(client, "message/send", token, text_body("帮助"))
    await post(client, "message/send", token, text_body("帮助"))
    assert fake.texts_to("rep01") == ["帮助", "帮助"]
    assert fake.suppressed_duplicates == 0


async def test_a_flagged_resend_of_an_unflagged_card_is_suppressed(
    client: TestClient[Any, Any], fake: FakeWeCom
) -> None:
    token = await get_token(client, fake)
    first = await post(client, "message/send", token, card_body())
    resend = await post(client, "message/send", token, card_body(dup=1800))
    assert resend["errcode"] == 0  # not 42014: the duplicate check comes first
    assert resend["msgid"] == first["msgid"]
    assert resend["response_code"] not in ("", first["response_code"])
    assert len(fake.cards_to("rep01")) == 1
    assert fake.violations == []


async def test_strict_duplicate_check_only_compares_flagged_messages(
    aiohttp_client: ClientFactory, clock: Clock
) -> None:
    fake = FakeWeCom(agent_id=AGENT, now=clock, dedupe_against_unflagged=False)
    client = await aiohttp_client(fake.app())
    token = await get_token(client, fake)
    await post(client, "message/send", token, text_body("hi"))
    await post(client, "message/send", token, text_body("hi", enable_duplicate_check=1))
    await post(client, "message/send", token, text_body("hi", enable_duplicate_check=1))
    assert fake.texts_to("rep01") == ["hi", "hi"]
    assert fake.suppressed_duplicates == 1


# ---- per-user rate reality ------------------------------------------------------------------------------------


async def test_beyond_30_a_minute_messages_vanish_silently(
    client: TestClient[Any, Any], fake: FakeWeCom, clock: Clock
) -> None:
    token = await get_token(client, fake)
    answers = [await post(client, "message/send", token, text_body(f"m{i}", touser="rep01|rep02")) for i in range(30)]
    answers.append(await post(client, "message/send", token, text_body("m30", touser="rep01")))
    assert {a["errcode"] for a in answers} == {0}
    assert len(fake.texts_to("rep01")) == 30
    assert fake.silently_dropped == 1
    assert fake.dropped_to == {"rep01": 1}
    clock.t += 60
    await post(client, "message/send", token, text_body("m31", touser="rep01"))
    assert fake.texts_to("rep01")[-1] == "m31"


async def test_beyond_1000_an_hour_messages_vanish_silently(
    client: TestClient[Any, Any], fake: FakeWeCom, clock: Clock
) -> None:
    token = await get_token(client, fake)
    for minute in range(34):
        for i in range(30):
            await post(client, "message/send", token, text_body(f"{minute}-{i}"))
        clock.t += 60
    assert len(fake.texts_to("rep01")) == 1000
    assert fake.silently_dropped == 20
    clock.t += 3600 - 34 * 60
    token = await get_token(client, fake)
    await post(client, "message/send", token, text_body("next hour"))
    assert fake.texts_to("rep01")[-1] == "next hour"


# ---- fault injection ------------------------------------------------------------------------------------------


async def test_fail_next_serves_faults_in_order(client: TestClient[Any, Any], fake: FakeWeCom) -> None:
    token = await get_token(client, fake)
    fake.fail_next("message/send", -1, 500, 45009)
    fake.fail_next("gettoken", 45033)
    answers = []
    for _ in range(4):
        resp = await client.post("/cgi-bin/message/send", params={"access_token": token}, json=text_body("x"))
        answers.append(resp.status if resp.status != 200 else (await resp.json())["errcode"])
    assert answers == [-1, 500, 45009, 0]
    bad = await client.get("/cgi-bin/gettoken", params={"corpid": fake.corp_id, "corpsecret": fake.secret})
    assert (await bad.json())["errcode"] == 45033
    assert fake.texts_to("rep01") == ["x"]
    assert fake.faults_served == {"message/send": 3, "gettoken": 1}
    assert fake.violations == []


async def test_a_timeout_outlasts_the_client_and_ends_on_release(client: TestClient[Any, Any], fake: FakeWeCom) -> None:
    token = await get_token(client, fake)
    fake.fail_next("message/send", "timeout", "timeout")
    with pytest.raises(TimeoutError):
        await client.post(
            "/cgi-bin/message/send",
            params={"access_token": token},
            json=text_body("x"),
            timeout=aiohttp.ClientTimeout(total=0.2),
        )
    held = asyncio.create_task(post(client, "message/send", token, text_body("y")))
    for _ in range(1000):  # until the fake holds the second call (5 s at most)
        if sum(1 for r in fake.requests if r.endpoint == "message/send") == 2:
            break
        await asyncio.sleep(0.005)
    assert not held.done()
    started = time.monotonic()
    fake.release_timeouts()
    assert (await held)["errcode"] == -1
    assert time.monotonic() - started < 5
    assert fake.delivered == []


async def test_fail_randomly_is_seeded(aiohttp_client: ClientFactory) -> None:
    patterns = []
    for _ in range(2):
        fake = FakeWeCom(agent_id=AGENT)
        client = await aiohttp_client(fake.app())
        token = await get_token(client, fake)
        fake.fail_randomly("message/send", 0.3, [-1, 45009, 500], seed=42)
        pattern = []
        for i in range(200):
            # One user per message keeps the 30/min rate limit out of the picture.
            body = text_body(str(i), touser=f"rep{i}")
            resp = await client.post("/cgi-bin/message/send", params={"access_token": token}, json=body)
            pattern.append(resp.status if resp.status != 200 else (await resp.json())["errcode"])
        patterns.append(pattern)
        assert len(fake.delivered) == pattern.count(0)
    assert patterns[0] == patterns[1]
    assert 40 <= 200 - patterns[0].count(0) <= 80
    assert set(patterns[0]) == {0, -1, 45009, 500}


def test_faults_and_endpoints_are_checked() -> None:
    fake = FakeWeCom()
    with pytest.raises(ValueError):
        fake.fail_next("message/sned", -1)
    with pytest.raises(ValueError):
        fake.fail_next("message/send", "boom")
    with pytest.raises(ValueError):
        fake.fail_randomly("/cgi-bin/message/send", 1.5, [-1], seed=1)


# ---- other processes ------------------------------------------------------------------------------------------


async def test_stats_delivered_and_control_routes(client: TestClient[Any, Any], fake: FakeWeCom) -> None:
    token = await get_token(client, fake)
    await post(client, "message/send", token, text_body("hi", touser="rep01|rep02"))
    await post(client, "message/send", token, text_body("", touser="rep01"))
    control = await client.post("/_fake/control", json={"op": "fail_next", "endpoint": "message/send", "faults": [-1]})
    assert control.status == 200
    assert (await post(client, "message/send", token, text_body("x")))["errcode"] == -1
    stats = await (await client.get("/_fake/stats")).json()
    assert stats["delivered"] == {"rep01": 1, "rep02": 1}
    assert stats["requests"] == {"gettoken": 1, "message/send": 3}
    assert stats["faults"] == {"message/send": 1}
    assert stats["violations"] == ["message/send: 44004 text.content is empty"]
    delivered = await (await client.get("/_fake/delivered")).json()
    assert delivered[0]["touser"] == ["rep01", "rep02"]
    issue = {"op": "issue_response_code", "task_id": "t", "userid": "u"}
    code = await (await client.post("/_fake/control", json=issue)).json()
    assert code["response_code"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_runs_standalone() -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "tests.fakes.wecom", "--port", str(port), "--corp-id", "wwstandalone"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/_fake/stats") as resp:
                        stats = await resp.json()
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("the standalone fake did not start")
            params = {"corpid": "wwstandalone", "corpsecret": "fake-app-secret"}
            async with http.get(f"http://127.0.0.1:{port}/cgi-bin/gettoken", params=params) as resp:
                assert (await resp.json())["errcode"] == 0
        assert stats["delivered_messages"] == 0
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)


# ---- temporary media (media/get, media/upload) ----------------------------------------------------------------

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00 a photo"


async def upload(
    client: TestClient[Any, Any],
    token: str,
    media_type: str,
    data: bytes,
    *,
    filename: str | None = "kit.jpg",
    field: str = "media",
    content_type: str = "image/jpeg",
) -> dict[str, Any]:
    form = aiohttp.FormData(quote_fields=False)
    form.add_field(field, io.BytesIO(data), filename=filename, content_type=content_type)
    resp = await client.post("/cgi-bin/media/upload", params={"access_token": token, "type": media_type}, data=form)
    assert resp.status == 200
    answer: dict[str, Any] = await resp.json()
    return answer


async def test_media_get_serves_a_members_media_for_three_days(
    client: TestClient[Any, Any], fake: FakeWeCom, clock: Clock
) -> None:
    token = await get_token(client, fake)
    media_id = fake.register_media(JPEG, "IMG_1.jpg", "image/jpeg")
    resp = await client.get("/cgi-bin/media/get", params={"access_token": token, "media_id": media_id})
    assert (resp.status, await resp.read()) == (200, JPEG)
    assert resp.headers["Content-Type"] == "image/jpeg"
    assert resp.content_disposition is not None and resp.content_disposition.filename == "IMG_1.jpg"
    clock.t += 3 * 24 * 3600
    fresh = await get_token(client, fake)
    resp = await client.get("/cgi-bin/media/get", params={"access_token": fresh, "media_id": media_id})
    assert (await resp.json())["errcode"] == 40007
    resp = await client.get("/cgi-bin/media/get", params={"access_token": fresh, "media_id": "nope"})
    assert (await resp.json())["errcode"] == 40007
    assert fake.violations == []


async def test_media_upload_returns_a_media_id_message_send_accepts_until_it_expires(
    client: TestClient[Any, Any], fake: FakeWeCom, clock: Clock
) -> None:
    token = await get_token(client, fake)
    answer = await upload(client, token, "image", JPEG)
    assert (answer["errcode"], answer["type"]) == (0, "image")
    assert answer["created_at"] == str(int(clock.t))
    body = {"touser": "rep01", "msgtype": "image", "agentid": AGENT, "image": {"media_id": answer["media_id"]}}
    assert (await post(client, "message/send", token, body))["errcode"] == 0
    assert [m.msgtype for m in fake.messages_to("rep01")] == ["image"]
    clock.t += 3 * 24 * 3600
    fresh = await get_token(client, fake)
    assert (await post(client, "message/send", fresh, body))["errcode"] == 40007


@pytest.mark.parametrize(
    ("media_type", "data", "kwargs", "errcode"),
    [
        ("sticker", JPEG, {}, 40004),
        ("image", b"GIF89a a gif", {}, 40005),  # image: JPG or PNG only
        ("voice", JPEG, {}, 40005),  # voice: AMR only
        ("image", JPEG[:5], {}, 40006),  # more than 5 bytes
        ("image", JPEG + b"\x00" * (10 * 1024 * 1024), {}, 40009),
        ("voice", b"#!AMR\n" + b"\x00" * (2 * 1024 * 1024), {"filename": "v.amr"}, 40010),
        ("file", b"x" * (20 * 1024 * 1024 + 1), {"filename": "big.bin"}, 40006),
        ("image", JPEG, {"field": "file"}, 44001),  # the part must be called "media"
        ("file", b"a note!", {"filename": "a:notes.txt"}, 40058),
    ],
    ids=["type", "gif-image", "jpeg-voice", "tiny", "image-size", "voice-size", "file-size", "field", "filename"],
)
async def test_media_upload_checks_the_documented_limits(
    client: TestClient[Any, Any], fake: FakeWeCom, media_type: str, data: bytes, kwargs: dict[str, Any], errcode: int
) -> None:
    token = await get_token(client, fake)
    answer = await upload(client, token, media_type, data, **kwargs)
    assert answer["errcode"] == errcode
    assert fake.uploads == []
    assert fake.violations and fake.violations[0].startswith(f"media/upload: {errcode}")


async def test_media_endpoints_take_injected_faults(client: TestClient[Any, Any], fake: FakeWeCom) -> None:
    token = await get_token(client, fake)
    fake.fail_next("media/get", -1)
    fake.fail_next("media/upload", 45009)
    media_id = fake.register_media(JPEG)
    resp = await client.get("/cgi-bin/media/get", params={"access_token": token, "media_id": media_id})
    assert (await resp.json())["errcode"] == -1
    assert (await upload(client, token, "image", JPEG))["errcode"] == 45009
    resp = await client.get("/cgi-bin/media/get", params={"access_token": token, "media_id": media_id})
    assert await resp.read() == JPEG
