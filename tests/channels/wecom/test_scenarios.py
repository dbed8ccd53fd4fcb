"""End-to-end WeCom scenarios: encrypted callbacks into the bot's real HTTP endpoint, replies out through the API to a
FakeWeCom that validates every request like WeCom does. Assertions are on what the fake received and delivered."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import xmltodict
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bot.channels.wecom import webhook
from bot.channels.wecom.crypto import WeComCrypto
from bot.infra.clock import FixedClock
from bot.runtime import Runtime
from cards.wecom import strip_dedup_tag
from storage.models import Customer, InboundEvent, Visit
from tests.channels.wecom.conftest import (
    AES_KEY,
    AGENT,
    CORP,
    SECRET,
    TOKEN,
    AnswerLoss,
    WeComUser,
    outbox_rows,
    settle_until_delivered,
)
from tests.fakes.wecom import FakeWeCom
from tests.fakes.wecom_callbacks import WeComSigner

User = Callable[[str], WeComUser]
ONE_LINE_VISIT = "拜访 浙一 骨科 张主任 异议:价格 下一步:送样"
ZJU1 = "浙江大学医学院附属第一医院"
ZJU2 = "浙江大学医学院附属第二医院"


# Every scenario ends with the fake having seen no request that breaks WeCom's documented rules.
pytestmark = pytest.mark.usefixtures("no_violations")


# ---- helpers ----------------------------------------------------------------------------------------------------


async def stored_visits(rt: Runtime) -> list[tuple[Visit, str]]:
    async with rt.db.read() as s:
        rows = await s.execute(select(Visit, Customer.name).join(Customer).order_by(Visit.id))
        return [(v, name) for v, name in rows.all()]


async def inbound(rt: Runtime) -> list[InboundEvent]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(InboundEvent).order_by(InboundEvent.id)))


async def inbound_count(rt: Runtime) -> int:
    async with rt.db.read() as s:
        return int(await s.scalar(select(func.count()).select_from(InboundEvent)) or 0)


def updates_of(fake: FakeWeCom, task_id: str) -> list[Any]:
    return [u for u in fake.updates if u.task_id == task_id]


def requests_to(fake: FakeWeCom, endpoint: str) -> list[Any]:
    return [r for r in fake.requests if r.endpoint == endpoint]


def button_texts(card: dict[str, Any]) -> list[str]:
    return [b["text"] for b in card.get("button_list", [])]


def assert_settled(user: WeComUser, card: dict[str, Any], *, shows: str) -> None:
    """The card was replaced in place: its buttons are greyed out (replace_text) and it shows ``shows``."""
    state = user.current(card)
    assert state["replace_text"], state
    live = {b["key"] for b in card["button_list"]}
    assert not live & {b["key"] for b in state["button_list"]}, "an answered card still offers its buttons"
    assert shows in state["main_title"].get("desc", "") + state["replace_text"], state


async def healthz(http: TestClient[Any, Any]) -> tuple[int, dict[str, Any]]:
    async with http.get("/healthz") as resp:
        return resp.status, await resp.json()


# ---- 1. URL verification ------------------------------------------------------------------------------------------


async def test_url_verification(
    http: TestClient[Any, Any], signer: WeComSigner, clock: FixedClock, fake: FakeWeCom
) -> None:
    now = int(clock.now().timestamp())
    query = signer.url_verification("6190873564237501921", now, "1700000001")
    async with http.get(webhook.PATH, params=query) as resp:
        assert resp.status == 200
        assert await resp.read() == b"6190873564237501921"
    # Signed with another app's token: refused, and the echo is not revealed.
    other = WeComSigner("another-token", AES_KEY, CORP, agent_id=AGENT)
    async with http.get(webhook.PATH, params=other.url_verification("42", now, "1700000002")) as resp:
        assert resp.status == 403
        assert await resp.text() != "42"
    assert fake.requests == []


# ---- 2. help ------------------------------------------------------------------------------------------------------


async def test_help_gets_exactly_one_text(wecom_user: User, fake: FakeWeCom) -> None:
    rep = wecom_user("rep01")
    assert await rep.send("帮助") == 200
    texts = rep.texts()
    assert len(texts) == 1
    assert "拜访" in texts[0]
    assert [(d.touser, d.msgtype) for d in fake.delivered] == [(["rep01"], "text")]
    body = fake.delivered[0].body
    assert body["agentid"] == AGENT
    assert "enable_duplicate_check" not in body  # a first attempt is not flagged as a possible duplicate
    assert [r.endpoint for r in fake.requests] == ["gettoken", "message/send"]


# ---- 3. one-line visit --------------------------------------------------------------------------------------------


async def test_one_line_visit_confirmed_by_tap(wecom_user: User, bot: Runtime, fake: FakeWeCom) -> None:
    rep = wecom_user("rep01")
    await rep.send(ONE_LINE_VISIT)
    assert rep.texts() == []
    [card] = rep.cards()
    assert card["card_type"] == "button_interaction"
    assert button_texts(card) == ["提交", "修改", "取消"]
    shown = {h["keyname"]: h["value"] for h in card["horizontal_content_list"]}
    assert ZJU1[:29] in shown["医院"]
    assert "骨科" in shown.values()
    assert await stored_visits(bot) == []

    code = await rep.tap(card, "提交")

    [(visit, customer)] = await stored_visits(bot)
    assert (customer, visit.ward, visit.contacts, visit.objection, visit.next_step) == (
        ZJU1,
        "骨科",
        ["张主任"],
        "价格",
        "送样",
    )
    assert (visit.rep_id, visit.source_channel) == ("rep01", "wecom")
    [upd] = updates_of(fake, card["task_id"])
    assert upd.response_code == code
    assert upd.userids == ["rep01"]
    assert upd.body["userids"] == ["rep01"]
    assert_settled(rep, card, shows="已提交")
    [saved] = rep.texts()
    assert "拜访已记录" in saved
    assert f"V{visit.id}" in saved
    # The confirmation was updated in place; the only other card is the offer of a linked request.
    confirm, offer = rep.cards()
    assert confirm["task_id"] == card["task_id"]
    assert [b["key"] for b in offer["button_list"]] == [f"rq|surgery_support|{visit.id}", f"rq|demo_unit|{visit.id}"]


# ---- 4. guided visit ----------------------------------------------------------------------------------------------


async def test_guided_visit_through_card_buttons(wecom_user: User, bot: Runtime, fake: FakeWeCom) -> None:
    rep = wecom_user("rep01")
    await rep.send("拜访")
    assert rep.cards() == []
    [ask] = rep.texts()
    assert "医院" in ask

    await rep.send("浙二")
    [ward_card] = rep.cards()
    assert button_texts(ward_card) == ["骨科", "脊柱外科", "手术室"]
    answered: list[tuple[dict[str, Any], str, str]] = []

    code = await rep.tap(ward_card, "脊柱外科")
    answered.append((ward_card, code, "脊柱外科"))
    cards = rep.cards()
    if len(cards) == 2:  # contacts offered as buttons
        contacts_card = cards[1]
        assert "刘主任" in button_texts(contacts_card)
        answered.append((contacts_card, await rep.tap(contacts_card, "刘主任"), "刘主任"))
    else:
        assert len(cards) == 1
        await rep.send("刘主任")

    objection_card = rep.last_card()
    assert objection_card["task_id"] not in {c["task_id"] for c, _, _ in answered}
    assert button_texts(objection_card) == ["价格", "交付", "资质", "其他"]
    answered.append((objection_card, await rep.tap(objection_card, "价格"), "价格"))
    next_step_card = rep.last_card()
    assert button_texts(next_step_card) == ["跳过"]
    answered.append((next_step_card, await rep.tap(next_step_card, "跳过"), "已跳过"))

    confirm = rep.last_card()
    assert button_texts(confirm) == ["提交", "修改", "取消"]
    submit_code = await rep.tap(confirm, "提交")

    [(visit, customer)] = await stored_visits(bot)
    assert (customer, visit.ward, visit.contacts, visit.objection) == (ZJU2, "脊柱外科", ["刘主任"], "价格")
    for card, tap_code, answer in [*answered, (confirm, submit_code, "已提交")]:
        [upd] = updates_of(fake, card["task_id"])
        assert upd.response_code == tap_code, f"{card['task_id']} not updated with its tap's code"
        assert upd.userids == ["rep01"]
        assert_settled(rep, card, shows=answer)
    # One card per question and the confirmation, none re-sent; then the offer of a linked request.
    assert len(rep.cards()) == len(answered) + 2
    assert rep.cards()[-1]["button_list"][0]["key"].startswith("rq|")
    assert "拜访已记录" in rep.texts()[-1]


# ---- 5. retry storm of one message --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sequential", "concurrent"])
async def test_retried_message_is_handled_once(
    mode: str, wecom_user: User, bot: Runtime, fake: FakeWeCom, clock: FixedClock
) -> None:
    rep = wecom_user("rep01")
    inner = rep.text_callback("帮助")  # one MsgId; each delivery gets a fresh timestamp and nonce
    if mode == "sequential":
        answers = []
        for _ in range(4):
            answers.append(await rep.deliver(inner))
            clock.set(clock.now() + timedelta(seconds=5))
    else:
        answers = list(await asyncio.gather(*(rep.post(inner) for _ in range(4))))
        await bot.settle()
    assert answers == [(200, b"")] * 4
    assert await inbound_count(bot) == 1
    assert len(rep.texts()) == 1
    assert len(requests_to(fake, "message/send")) == 1


# ---- 6. retry storm of one tap ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sequential", "concurrent"])
async def test_retried_tap_has_one_effect(
    mode: str, wecom_user: User, bot: Runtime, fake: FakeWeCom, clock: FixedClock
) -> None:
    rep = wecom_user("rep01")
    await rep.send(ONE_LINE_VISIT)
    [card] = rep.cards()
    inner, code = rep.tap_callback(card, "提交")  # WeCom resends the same event: same CreateTime and ResponseCode
    if mode == "sequential":
        answers = []
        for _ in range(4):
            answers.append(await rep.deliver(inner))
            clock.set(clock.now() + timedelta(seconds=5))
    else:
        answers = list(await asyncio.gather(*(rep.post(inner) for _ in range(4))))
        await bot.settle()
    assert answers == [(200, b"")] * 4
    assert len(await stored_visits(bot)) == 1
    assert [e.kind for e in await inbound(bot)] == ["text", "card_action"]
    [upd] = updates_of(fake, card["task_id"])
    assert upd.response_code == code
    assert fake.rejected_codes == []
    texts = rep.texts()
    assert len(texts) == 1
    assert "拜访已记录" in texts[0]


# ---- 7. token expiry ----------------------------------------------------------------------------------------------


async def test_expired_token_is_refetched_once(wecom_user: User, bot: Runtime, fake: FakeWeCom) -> None:
    rep = wecom_user("rep01")
    for i in range(3):
        await rep.send(f"问题{i}")
    assert len(rep.texts()) == 3
    assert fake.token_fetches == 1

    fake.expire_tokens()
    await rep.send("帮助")

    assert fake.token_fetches == 2
    last = fake.requests[-3:]
    assert [r.endpoint for r in last] == ["message/send", "gettoken", "message/send"]
    assert last[0].query["access_token"] != last[2].query["access_token"]
    texts = rep.texts()
    assert len(texts) == 4
    assert "拜访" in texts[-1]
    # The client retried inside one delivery: the outbox saw no failure.
    assert [(r.status, r.attempts) for r in await outbox_rows(bot)] == [("sent", 1)] * 4


# ---- 8. random API faults -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("wecom_overrides", [{"request_timeout_seconds": 0.2}], ids=["client-timeout-0.2s"])
@pytest.mark.parametrize(
    "extra_overrides",
    # Retries every ≤ 4 s of test clock; 12 attempts make 12 faults in a row (0.3**12) practically impossible.
    [{"outbox": {"max_attempts": 12, "backoff_max_seconds": 4.0}}],
    ids=["fast-backoff"],
)
async def test_every_reply_arrives_once_despite_random_faults(
    wecom_user: User,
    bot: Runtime,
    fake: FakeWeCom,
    clock: FixedClock,
    answer_loss: AnswerLoss,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.outbox")
    fake.fail_randomly("message/send", 0.3, [-1, 45009, 45033, "timeout", 500], seed=20261123)
    # And some sends that did reach the user but whose answer was lost: the resend must not show twice.
    answer_loss.lose(["message/send", "message/update_template_card"], 0.15, ["502", "hang"], seed=7)
    people = {uid: wecom_user(uid) for uid in ("rep01", "rep02", "mgr01", "admin01", "mkt02")}
    commands: list[tuple[WeComUser, str]] = []
    for uid, user in people.items():
        commands.append((user, "help" if uid == "mkt02" else "帮助"))
    for i in range(33):  # distinct texts, so that every reply has distinct content
        uid = list(people)[i % len(people)]
        commands.append((people[uid], f"question {i}" if uid == "mkt02" else f"问题{i}"))
    for user, text in commands:
        assert await user.send(text) == 200
    await settle_until_delivered(bot, clock, step_seconds=5, rounds=40)

    # Two more commands: a one-line visit from each of two reps (a card), tapped once it has arrived.
    reps = [people["rep01"], people["rep02"]]
    for rep in reps:
        assert await rep.send(ONE_LINE_VISIT) == 200
    await settle_until_delivered(bot, clock, step_seconds=5, rounds=40)
    for rep in reps:
        await rep.tap(rep.last_card(), "提交")
    await settle_until_delivered(bot, clock, step_seconds=5, rounds=40)

    assert len(commands) + len(reps) == 40
    rows = await outbox_rows(bot)
    assert {r.status for r in rows} == {"sent"}
    assert fake.faults_served["message/send"] >= 5, "the fault injection did not bite"
    assert max(r.attempts for r in rows) > 1
    # What each person sees: every text reply exactly once, every card exactly once.
    expected = Counter((r.recipient, r.payload["text"]) for r in rows if r.kind == "text")
    seen = Counter(
        (u, strip_dedup_tag(d.body["text"]["content"])) for d in fake.delivered if d.msgtype == "text" for u in d.touser
    )
    assert seen == expected
    assert sum(expected.values()) == len(commands) + len(reps)  # 38 replies, 2 visit-saved texts
    for uid, user in people.items():
        cards = [c["task_id"] for c in user.cards()]
        # A rep who logged a visit: its confirmation, then the offer of a linked request.
        assert len(cards) == len(set(cards)) == (2 if user in reps else 0), uid
    for rep in reps:
        assert_settled(rep, rep.cards()[0], shows="已提交")
    assert len(await stored_visits(bot)) == 2
    assert fake.silently_dropped == 0
    failures = "\n".join(r.getMessage() for r in caplog.records)
    for kind in ("WeCom timeout", "WeCom http_500", "WeCom http_502"):
        assert kind in failures
    assert answer_loss.lost["502"] and answer_loss.lost["hang"]
    # Each send whose answer was lost was sent again, flagged, and WeCom dropped the copy. (At least: on a loaded
    # machine a real answer may also miss the 0.2 s client timeout.)
    assert fake.suppressed_duplicates >= answer_loss.lost_on["message/send"] > 0
    # An update whose answer was lost spent its code: the retry is refused (60140) and redone with another code.
    assert len(fake.rejected_codes) >= answer_loss.lost_on["message/update_template_card"]
    # Every rep's confirmation was updated; an update lost twice in a row ends as "already applied", so the
    # count of valid updates is only bounded below by the reps.
    assert len(fake.updates) >= len(reps)


# ---- 9. unregistered sender ---------------------------------------------------------------------------------------


async def test_unregistered_sender_gets_a_passive_reply_only(wecom_user: User, bot: Runtime, fake: FakeWeCom) -> None:
    stranger = wecom_user("stranger42")
    status, answer = await stranger.deliver(stranger.text_callback("帮助"))
    assert status == 200
    outer = xmltodict.parse(answer.decode())["xml"]
    crypto = WeComCrypto(TOKEN, AES_KEY, CORP)
    reply = xmltodict.parse(crypto.decrypt(outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"], outer["Encrypt"]))
    reply = reply["xml"]
    assert (reply["ToUserName"], reply["FromUserName"], reply["MsgType"]) == ("stranger42", CORP, "text")
    assert "联系管理员" in reply["Content"]
    assert await inbound_count(bot) == 0
    assert await outbox_rows(bot) == []
    assert fake.requests == []


# ---- 10. per-recipient throttle -----------------------------------------------------------------------------------


@pytest.mark.parametrize("wecom_overrides", [{"per_user_per_minute": 3}], ids=["3-per-minute"])
async def test_per_recipient_throttle_defers_instead_of_dropping(
    wecom_user: User, bot: Runtime, fake: FakeWeCom, clock: FixedClock
) -> None:
    rep = wecom_user("rep01")
    t0 = clock.now()
    for i in range(6):  # one command every 10 s: all six inside one minute
        clock.set(t0 + timedelta(seconds=10 * i))
        assert await rep.send(f"问题{i}") == 200
    assert len(rep.texts()) == 3
    await bot.settle()
    assert len(rep.texts()) == 3

    for _ in range(20):
        if len(rep.texts()) == 6:
            break
        clock.set(clock.now() + timedelta(seconds=10))
        await bot.settle()
    assert [t.split("「")[1].split("」")[0] for t in rep.texts()] == [f"问题{i}" for i in range(6)]
    assert clock.now() - t0 >= timedelta(seconds=60)
    stamps = [d.at for d in fake.messages_to("rep01")]
    for at in stamps:
        assert sum(1 for s in stamps if at - 60 < s <= at) <= 3, stamps
    assert fake.silently_dropped == 0
    # A deferral is not a failed attempt.
    assert [(r.status, r.attempts) for r in await outbox_rows(bot)] == [("sent", 1)] * 6


# ---- 11. card JSON limits -----------------------------------------------------------------------------------------


async def test_long_fields_are_cut_to_the_card_limits(wecom_user: User, bot: Runtime, fake: FakeWeCom) -> None:
    topics = ("关节置换术后康复方案讨论与新品介绍" * 20)[:300]
    next_step = ("携带新品样品演示并收集反馈意见" * 20)[:200]
    rep = wecom_user("rep01")
    await rep.send(f"拜访 浙一 骨科 张主任 异议:价格 主题:{topics} 下一步:{next_step}")
    [card] = rep.cards()
    assert fake.violations == []
    values = [h["value"] for h in card["horizontal_content_list"]]
    assert len(values) <= 6
    assert all(len(v) <= 30 for v in values)
    cut = [v for v in values if v.endswith("…")]
    assert len(cut) == 2
    assert topics.startswith(cut[0][:-1])
    assert next_step.startswith(cut[1][:-1])
    assert len(card.get("sub_title_text", "")) <= 160
    assert all(len(h["keyname"]) <= 5 for h in card["horizontal_content_list"])

    await rep.tap(card, "提交")
    [(visit, _)] = await stored_visits(bot)
    assert (visit.topics, visit.next_step) == (topics, next_step)  # only the card was cut, not the record
    [upd] = updates_of(fake, card["task_id"])
    assert all(len(h["value"]) <= 30 for h in upd.body["template_card"]["horizontal_content_list"])
    assert "拜访已记录" in rep.texts()[-1]


# ---- 12. configuration error --------------------------------------------------------------------------------------


@pytest.mark.parametrize("wecom_overrides", [{"secret": "not-the-app-secret"}], ids=["wrong-secret"])
async def test_wrong_secret_degrades_health_and_keeps_the_message(
    wecom_user: User, bot: Runtime, fake: FakeWeCom, clock: FixedClock, http: TestClient[Any, Any]
) -> None:
    rep = wecom_user("rep01")
    assert await rep.send("帮助") == 200
    assert fake.delivered == []
    assert len(requests_to(fake, "gettoken")) == 1
    status, health = await healthz(http)
    assert status == 200
    assert health["status"] == "degraded"
    assert health["wecom"]["errcode"] == 40001
    assert "secret" in health["wecom"]["error"]
    assert "not-the-app-secret" not in str(health) and SECRET not in str(health)

    for minute in range(10):  # ten minutes misconfigured: WeCom asked about once a minute, the message kept
        clock.set(clock.now() + timedelta(seconds=61))
        await bot.settle()
        assert [r.status for r in await outbox_rows(bot)] == ["pending"], f"after {minute + 1} min"
        assert len(requests_to(fake, "gettoken")) <= minute + 2
    assert requests_to(fake, "message/send") == []

    fake.secret = "not-the-app-secret"  # the operator makes WeCom and the bot agree again
    await settle_until_delivered(bot, clock, step_seconds=61, rounds=10)
    [text] = rep.texts()
    assert "拜访" in text
    assert [r.status for r in await outbox_rows(bot)] == ["sent"]
    status, health = await healthz(http)
    assert (status, health["status"]) == (200, "ok")
    assert "wecom" not in health
