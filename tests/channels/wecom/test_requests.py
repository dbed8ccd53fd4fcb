"""End-to-end WeCom scenarios for support requests and department task cards.

A rep types a one-line request (``跟台 浙一 骨科 …``), confirms it, and one shared task card per department fans out
(one message/send per department, every member and the head in ``touser``). The departments then claim, ask for
information, attach a photo, finish or reject through encrypted ``template_card_event`` callbacks; each transition
updates every recipient's copy with one update_template_card call. Assertions are on what the FakeWeCom received
and shows each person, plus the database rows (requests, cards, audit) where the effect is not visible on WeCom.
What a person sees, the same on every channel, is in tests/scenarios/test_requests.py; this module holds the WeCom
protocol side (sends, touser, response codes, limits, retries, the throttle).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.infra.clock import FixedClock
from bot.parsing.when import normalise
from bot.runtime import Runtime
from cards import wecom as limits
from storage.models import AuditLog, Customer, SupportRequest, TaskCard
from tests.channels.wecom.conftest import WeComUser
from tests.fakes.wecom import FakeWeCom, validate_send, validate_update

User = Callable[[str], WeComUser]

# The test clock's today is Monday 2026-11-23 (10:00 Asia/Shanghai, tests/conftest.py T0).
SURGERY_DAY = "2026-11-26"
ZJU1 = "浙江大学医学院附属第一医院"
KIT = "脊柱A包"
NOTE = "王主任主刀"
# Calendar hours (surgery support): created 11-23 10:00, done within 24 h.
DUE = "11-24 10:00"
SINCE = "11-23 10:00"

DEPARTMENTS = ("marketing", "logistics", "compliance")
DEPT_ZH = {"marketing": "市场", "logistics": "物流", "compliance": "合规"}
PEOPLE = {
    "marketing": ("mkt01", "mkt02", "mkt_head"),
    "logistics": ("log01", "log02", "log_head"),
    "compliance": ("cmp01", "cmp02", "cmp_head"),
}
NAMES = {"rep01": "王磊", "log01": "吴敏", "log02": "郑浩", "log_head": "周涛", "mkt01": "何斌", "cmp01": "韩雪"}
TITLES = {
    "marketing": f"跟台资料：{ZJU1} {KIT}",
    "logistics": f"备器械 {KIT}（{SURGERY_DAY}）",
    "compliance": f"授权审核：{ZJU1}",
}


# Every scenario ends with the fake having seen no request that breaks WeCom's documented rules.
pytestmark = pytest.mark.usefixtures("no_violations")


# ---- factories ----------------------------------------------------------------------------------------------


def make_request_line(
    *, hospital: str = "浙一", ward: str = "骨科", day: str = SURGERY_DAY, kit: str = KIT, note: str | None = NOTE
) -> str:
    """A one-line surgery-support request as a rep types it."""
    line = f"跟台 {hospital} {ward} {day} 器械:{kit}"
    return f"{line} 备注:{note}" if note is not None else line


def make_image_callback(user: WeComUser, media_id: str) -> str:
    """The inner XML of an image message (MsgType image, MediaId) from ``user``."""
    return user.signer.image(user.userid, media_id, user.next_msg_id(), user.now())


def make_foreign_tap(user: WeComUser, card: dict[str, Any], button_text: str) -> tuple[str, str]:
    """(inner XML, response code) of a tap by ``user`` on a button of a card they may never have received: the
    key is read from the card as sent, as a forged or replayed callback would carry it."""
    keys = [b["key"] for b in card["button_list"] if b["text"] == button_text]
    assert len(keys) == 1, card["button_list"]
    code = user.fake.issue_response_code(card["task_id"], user.userid)
    return user.signer.card_event(user.userid, keys[0], card["task_id"], code, user.now()), code


async def make_customer(rt: Runtime, name: str, alias: str, wards: list[str]) -> None:
    """Add a hospital to the directory (before the first lookup, so the matcher sees it)."""
    now = datetime(2026, 11, 1, tzinfo=UTC)
    async with rt.db.transaction() as s:
        s.add(Customer(name=name, aliases=[alias], wards=wards, contacts=[], created_at=now, updated_at=now))


# ---- helpers ------------------------------------------------------------------------------------------------


def button_texts(card: dict[str, Any]) -> list[str]:
    return [b["text"] for b in card.get("button_list", [])]


def shown(card: dict[str, Any]) -> dict[str, str]:
    """keyname → value of the card's horizontal content."""
    return {h["keyname"]: h["value"] for h in card.get("horizontal_content_list", [])}


def card_text(card: dict[str, Any]) -> str:
    """Everything a person can read on the card."""
    title = card.get("main_title", {})
    parts = [
        title.get("title", ""),
        title.get("desc", ""),
        card.get("sub_title_text", ""),
        card.get("replace_text", ""),
    ]
    parts += [f"{k}:{v}" for k, v in shown(card).items()]
    return "\n".join(parts)


def updates_of(fake: FakeWeCom, task_id: str) -> list[Any]:
    return [u for u in fake.updates if u.task_id == task_id]


def sends(fake: FakeWeCom) -> list[Any]:
    return [r for r in fake.requests if r.endpoint == "message/send"]


def card_sends(fake: FakeWeCom) -> list[dict[str, Any]]:
    """Bodies of every message/send that carried a template card."""
    return [r.body for r in sends(fake) if r.body and r.body.get("msgtype") == "template_card"]


def task_cards(fake: FakeWeCom) -> dict[str, dict[str, Any]]:
    """The task card sent for each department (as sent), keyed by department; the card's ref names it."""
    found: dict[str, dict[str, Any]] = {}
    for d in fake.delivered:
        tc = d.body.get("template_card")
        if tc is None or not tc["task_id"].startswith("task-"):
            continue
        department = tc["task_id"].split("-")[2]
        assert department not in found, f"a second card for {department}"
        found[department] = tc
    return found


def assert_card_limits(card: dict[str, Any]) -> None:
    """The documented WeCom limits, checked again field by field."""
    title = card["main_title"]
    assert len(title["title"]) <= limits.TITLE_MAX_CHARS, title
    assert len(title.get("desc", "")) <= limits.TITLE_DESC_MAX_CHARS, title
    assert len(card.get("sub_title_text", "")) <= limits.SUB_TITLE_MAX_CHARS, card.get("sub_title_text")
    items = card.get("horizontal_content_list", [])
    assert len(items) <= limits.MAX_HORIZONTAL
    for h in items:
        assert 0 < len(h["keyname"]) <= limits.KEYNAME_MAX_CHARS, h
        assert len(h["value"]) <= limits.VALUE_MAX_CHARS, h
    assert len(card["button_list"]) <= limits.MAX_BUTTONS
    assert all(len(b["text"]) <= limits.BUTTON_TEXT_MAX_CHARS for b in card["button_list"])


async def db_cards(rt: Runtime) -> dict[str, TaskCard]:
    async with rt.db.read() as s:
        return {c.department: c for c in await s.scalars(select(TaskCard).order_by(TaskCard.id))}


def snapshot(card: TaskCard) -> tuple[Any, ...]:
    """What a refused action must leave untouched."""
    return (card.state, card.holder_id, card.version, card.updated_at, card.state_since, card.attachments)


async def db_requests(rt: Runtime) -> list[SupportRequest]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(SupportRequest).order_by(SupportRequest.id)))


async def audit_rows(rt: Runtime, action: str) -> list[AuditLog]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)))


async def send_image(user: WeComUser, media_id: str) -> None:
    status, body = await user.deliver(make_image_callback(user, media_id))
    assert (status, body) == (200, b"")


def new_texts(user: WeComUser, before: int) -> list[str]:
    return user.texts()[before:]


class Scenario:
    """The demo org on WeCom: the rep rep01, the three departments, and their cards once a request is in."""

    def __init__(self, wecom_user: User, bot: Runtime, fake: FakeWeCom, clock: FixedClock) -> None:
        self.bot, self.fake, self.clock = bot, fake, clock
        self.rep = wecom_user("rep01")
        self.users = {uid: wecom_user(uid) for dept in PEOPLE.values() for uid in dept}
        self.users |= {"rep01": self.rep, "rep02": wecom_user("rep02")}
        self.cards: dict[str, dict[str, Any]] = {}
        self.ids: dict[str, int] = {}

    def __getitem__(self, userid: str) -> WeComUser:
        return self.users[userid]

    async def submit(self, line: str | None = None) -> dict[str, Any]:
        """Type the request, tap 提交 on its confirmation; returns the confirmation card."""
        await self.rep.send(line or make_request_line())
        confirm = self.rep.last_card()
        assert button_texts(confirm) == ["提交", "修改", "取消"], confirm
        await self.rep.tap(confirm, "提交")
        self.cards = task_cards(self.fake)
        self.ids = {d: c.id for d, c in (await db_cards(self.bot)).items()}
        return confirm

    def later(self, seconds: float) -> None:
        """Move the clock on: people take time between taps."""
        self.clock.set(self.clock.now() + timedelta(seconds=seconds))

    def no(self, department: str) -> str:
        return f"T{self.ids[department]}"

    def state(self, department: str, userid: str) -> dict[str, Any]:
        """The department's card as ``userid`` sees it now."""
        return self[userid].current(self.cards[department])

    def recipients(self, department: str) -> list[WeComUser]:
        return [self[u] for u in PEOPLE[department]]


@pytest.fixture
def org(wecom_user: User, bot: Runtime, fake: FakeWeCom, clock: FixedClock) -> Scenario:
    return Scenario(wecom_user, bot, fake, clock)


@pytest.fixture
async def submitted(org: Scenario) -> Scenario:
    """A surgery-support request R1 submitted by rep01; the three task cards delivered."""
    await org.submit()
    return org


# ---- 1. request → confirmation → three task cards -------------------------------------------------------------


async def test_request_fans_out_one_shared_card_per_department(org: Scenario, bot: Runtime, fake: FakeWeCom) -> None:
    rep = org.rep
    await rep.send(make_request_line())
    [confirm] = rep.cards()
    assert rep.texts() == []
    assert confirm["main_title"]["title"] == "请确认手术跟台申请"
    assert shown(confirm) == {"医院": ZJU1, "科室": "骨科", "手术日期": SURGERY_DAY, "器械": KIT, "备注": NOTE}
    assert await db_requests(bot) == []
    assert task_cards(fake) == {}

    code = await rep.tap(confirm, "提交")

    [request] = await db_requests(bot)
    assert (request.rep_id, request.type_key, request.status) == ("rep01", "surgery_support", "open")
    assert request.fields == {"ward": "骨科", "surgery_date": SURGERY_DAY, "kit": KIT, "note": NOTE}
    # The confirmation is settled in place with the tap's code; the rep is told the number.
    [upd] = updates_of(fake, confirm["task_id"])
    assert (upd.response_code, upd.userids) == (code, ["rep01"])
    assert "已提交 R1" in rep.current(confirm)["replace_text"]
    [submitted_text] = rep.texts()
    assert "申请已提交 R1" in submitted_text
    assert all(DEPT_ZH[d] in submitted_text for d in DEPARTMENTS)

    # One message/send per department, to every member and the head at once, one task_id per card.
    bodies = [b for b in card_sends(fake) if b["template_card"]["task_id"].startswith("task-")]
    assert len(bodies) == 3
    by_dept = {b["template_card"]["task_id"].split("-")[2]: b for b in bodies}
    assert set(by_dept) == set(DEPARTMENTS)
    assert len({b["template_card"]["task_id"] for b in bodies}) == 3
    stored = await db_cards(bot)
    for dept, body in by_dept.items():
        assert sorted(body["touser"].split("|")) == sorted(PEOPLE[dept]), body["touser"]
        assert body["touser"].count("|") == 2
        assert validate_send(body) == []
        card = body["template_card"]
        assert_card_limits(card)
        assert card["main_title"]["title"] == f"{DEPT_ZH[dept]}｜{TITLES[dept]}"[: limits.TITLE_MAX_CHARS]
        assert button_texts(card) == ["认领", "需补充", "驳回"]
        facts = shown(card)
        assert facts["医院"] == ZJU1
        assert facts["手术日期"] == SURGERY_DAY
        assert facts["器械"] == KIT
        assert facts["申请人"] == "王磊"
        text = card_text(card)
        assert f"截止：{DUE}" in text
        assert f"编号：T{stored[dept].id} / R1" in text
        assert f"待认领（{SINCE}）" in text
        # Everyone sees the same card; nobody else got one.
        for uid in PEOPLE[dept]:
            assert [c["task_id"] for c in fake.cards_to(uid)] == [card["task_id"]]
        assert sorted(stored[dept].recipients) == sorted(PEOPLE[dept])
    for outsider in ("rep02", "mgr01", "dir01", "admin01"):
        assert fake.messages_to(outsider) == []
    assert len(await audit_rows(bot, "task.create")) == 3


# ---- 2. claim ---------------------------------------------------------------------------------------------------


async def test_claim_updates_every_recipients_copy(submitted: Scenario, bot: Runtime, fake: FakeWeCom) -> None:
    org = submitted
    card = org.cards["logistics"]
    rep_texts = len(org.rep.texts())

    code = await org["log01"].tap(card, "认领")

    [upd] = updates_of(fake, card["task_id"])
    assert upd.response_code == code
    assert sorted(upd.userids) == sorted(PEOPLE["logistics"])
    assert upd.body["userids"] == upd.userids
    for user in org.recipients("logistics"):
        state = user.current(card)
        assert "认领" not in button_texts(state), user.userid
        assert button_texts(state) == ["完成", "需补充", "驳回"]
        assert shown(state)["申请人"] == "王磊"
        assert "处理中 · 吴敏" in card_text(state)
        assert state["sub_title_text"].startswith("完成前需上传照片")  # logistics needs a photo before 完成
    [notice] = new_texts(org.rep, rep_texts)
    assert notice == f"R1 物流：吴敏 已认领「{TITLES['logistics']}」。"
    [ok] = org["log01"].texts()
    assert f"你已认领卡片 {org.no('logistics')}" in ok
    # The other departments' cards did not move.
    assert updates_of(fake, org.cards["marketing"]["task_id"]) == []
    stored = (await db_cards(bot))["logistics"]
    assert (stored.state, stored.holder_id) == ("claimed", "log01")
    assert [a.actor_id for a in await audit_rows(bot, "task.claim")] == ["log01"]


# ---- 3. need info round trip ----------------------------------------------------------------------------------


@pytest.mark.parametrize("reply_as", ["plain", "command"])
async def test_need_info_round_trip(reply_as: str, submitted: Scenario, bot: Runtime, fake: FakeWeCom) -> None:
    org = submitted
    card = org.cards["marketing"]
    mkt01, rep = org["mkt01"], org.rep
    before = org.state("marketing", "mkt01")
    rep_texts = len(rep.texts())
    question = "请确认主刀医生和开台时间"
    answer = "王主任主刀，早上8点开台"

    code = await mkt01.tap(card, "需补充")
    [ask] = mkt01.texts()
    assert "请输入需要代表补充的内容" in ask and org.no("marketing") in ask
    assert updates_of(fake, card["task_id"]) == []  # nothing changes until the question is typed

    await mkt01.send(question)
    [upd] = updates_of(fake, card["task_id"])
    assert upd.response_code == code  # the 需补充 tap's code serves the update after the question
    assert sorted(upd.userids) == sorted(PEOPLE["marketing"])
    waiting = org.state("marketing", "mkt02")
    assert "待补充" in card_text(waiting)
    assert question in card_text(waiting)
    assert button_texts(waiting) == ["驳回"]
    assert "问题已转给代表" in mkt01.texts()[-1]
    [notice] = new_texts(rep, rep_texts)
    assert notice.startswith(f"❓ R1 市场 的 何斌 需要你补充：{question}")

    # A plain text is the answer to the one open question; `补充 T1 …` names the card.
    await rep.send(answer if reply_as == "plain" else f"补充 {org.no('marketing')} {answer}")

    if reply_as == "command":
        answer = normalise(answer)  # a command's arguments are read with full-width punctuation folded
    assert rep.texts()[-1] == f"已转给市场：{answer}"
    assert mkt01.texts()[-1] == f"💬 {org.no('marketing')} 代表 王磊 回复：{answer}"
    assert len(updates_of(fake, card["task_id"])) == 2
    for user in org.recipients("marketing"):
        after = user.current(card)
        text = card_text(after)
        assert answer[: limits.VALUE_MAX_CHARS - 1] in text, user.userid
        assert "待认领" in text and "待补充" not in text
        assert button_texts(after) == button_texts(before) == ["认领", "需补充", "驳回"]
    stored = (await db_cards(bot))["marketing"]
    assert (stored.state, stored.holder_id, stored.resume_state) == ("open", None, None)
    assert [(q["q"], q["a"], q["by"]) for q in stored.questions] == [(question, answer, "mkt01")]


# ---- 4. done with a photo -------------------------------------------------------------------------------------


async def test_done_needs_a_photo_then_reports_the_attachment(
    submitted: Scenario, bot: Runtime, fake: FakeWeCom
) -> None:
    org = submitted
    card = org.cards["logistics"]
    log01, rep = org["log01"], org.rep
    await log01.tap(card, "认领")
    claimed = org.state("logistics", "log02")
    stored_before = snapshot((await db_cards(bot))["logistics"])
    rep_texts = len(rep.texts())

    await log01.tap(card, "完成")

    refused = log01.texts()[-1]
    assert refused.startswith(f"卡片 {org.no('logistics')} 完成前需要上传照片")
    for user in org.recipients("logistics"):
        assert user.current(card) == claimed, user.userid  # shown again as it is, nothing changed
    stored = (await db_cards(bot))["logistics"]
    assert snapshot(stored) == stored_before
    assert (stored.state, stored.attachments, stored.done_at) == ("claimed", [], None)
    assert await audit_rows(bot, "task.done") == []
    assert new_texts(rep, rep_texts) == []

    await send_image(log01, "MEDIA_photo_kit_001")

    assert log01.texts()[-1] == f"📎 已附加到卡片 {org.no('logistics')}（共 1 个附件）。"
    stored = (await db_cards(bot))["logistics"]
    assert [(a["kind"], a["media_id"], a["by"]) for a in stored.attachments] == [
        ("image", "MEDIA_photo_kit_001", "log01")
    ]
    assert "附件：1" in card_text(org.state("logistics", "log_head"))
    assert new_texts(rep, rep_texts) == []

    # A minute later (a second tap on the same button in the same second would be taken for WeCom's retry).
    org.later(60)
    await log01.tap(card, "完成")

    for user in org.recipients("logistics"):
        state = user.current(card)
        assert state["replace_text"].startswith("✅"), state
        assert state["main_title"]["desc"] == "✅ 吴敏 已完成（11-23 10:01）"
        assert [b["key"] for b in state["button_list"]] == [limits.SETTLED_KEY]
    [done] = new_texts(rep, rep_texts)
    assert done == f"✅ R1 物流 已完成「{TITLES['logistics']}」，附件 1 个：照片×1"
    # The photo itself reaches the rep: an image message with the member's MediaId.
    [photo] = [m for m in fake.messages_to("rep01") if m.msgtype == "image"]
    assert photo.body["image"] == {"media_id": "MEDIA_photo_kit_001"}
    assert log01.texts()[-1] == f"卡片 {org.no('logistics')} 已完成。"
    stored = (await db_cards(bot))["logistics"]
    assert stored.state == "done"
    assert [a.actor_id for a in await audit_rows(bot, "task.done")] == ["log01"]


# ---- 5. reject with a reason ----------------------------------------------------------------------------------


async def test_reject_with_reason(submitted: Scenario, bot: Runtime, fake: FakeWeCom) -> None:
    org = submitted
    card = org.cards["compliance"]
    cmp01, rep = org["cmp01"], org.rep
    rep_texts = len(rep.texts())
    reason = "该医院授权书已过期，请先更新授权"

    code = await cmp01.tap(card, "驳回")
    assert "请输入驳回卡片" in cmp01.texts()[-1]
    await cmp01.send(reason)

    [upd] = updates_of(fake, card["task_id"])
    assert upd.response_code == code
    assert sorted(upd.userids) == sorted(PEOPLE["compliance"])
    for user in org.recipients("compliance"):
        state = user.current(card)
        assert state["replace_text"].startswith("⛔"), state
        assert "韩雪 已驳回" in state["main_title"]["desc"]
        assert [b["key"] for b in state["button_list"]] == [limits.SETTLED_KEY]
        assert reason[: limits.VALUE_MAX_CHARS - 1] in card_text(state)
    # The rep's notice is a card with the reason and the 重新提交 button (docs/requests.md).
    assert new_texts(rep, rep_texts) == []
    [notice] = [b["template_card"] for b in card_sends(fake) if b["template_card"]["task_id"].endswith("-rj")]
    assert notice["main_title"]["title"] == "⛔ R1 合规驳回了申请"
    assert [b["text"] for b in notice["button_list"]] == ["重新提交"]
    assert {h["keyname"]: h["value"] for h in notice["horizontal_content_list"]}["驳回原因"] == reason
    assert cmp01.texts()[-1] == f"卡片 {org.no('compliance')} 已驳回，已通知代表。"
    stored = (await db_cards(bot))["compliance"]
    assert (stored.state, stored.holder_id, stored.reject_reason) == ("rejected", "cmp01", reason)
    [request] = await db_requests(bot)
    assert request.status == "open"  # the other departments are still at work


# ---- 6. concurrent claim --------------------------------------------------------------------------------------


async def test_concurrent_claims_have_one_winner(submitted: Scenario, bot: Runtime, fake: FakeWeCom) -> None:
    org = submitted
    card = org.cards["logistics"]
    claimants = org.recipients("logistics")
    taps = [user.tap_callback(card, "认领") for user in claimants]

    answers = await asyncio.gather(*(user.post(inner) for user, (inner, _) in zip(claimants, taps, strict=True)))
    await bot.settle()

    assert list(answers) == [(200, b"")] * 3
    [claim] = await audit_rows(bot, "task.claim")
    winner = claim.actor_id
    assert winner in PEOPLE["logistics"]
    stored = (await db_cards(bot))["logistics"]
    assert (stored.state, stored.holder_id) == ("claimed", winner)
    for user in claimants:
        [reply] = user.texts()
        if user.userid == winner:
            assert reply.startswith(f"你已认领卡片 {org.no('logistics')}")
        else:
            assert reply == f"卡片 {org.no('logistics')} 已由 {NAMES[winner]} 认领处理。"
        state = user.current(card)
        assert f"处理中 · {NAMES[winner]}" in card_text(state)
        assert "认领" not in button_texts(state)
    [notice] = org.rep.texts()[1:]
    assert notice.startswith(f"R1 物流：{NAMES[winner]} 已认领")


# ---- 7. unauthorised tap --------------------------------------------------------------------------------------


@pytest.mark.parametrize("intruder", ["rep02", "cmp01"])
async def test_tap_by_outsider_is_refused_and_audited(
    intruder: str, submitted: Scenario, bot: Runtime, fake: FakeWeCom
) -> None:
    org = submitted
    card = org.cards["logistics"]
    before = {u.userid: u.current(card) for u in org.recipients("logistics")}
    stored_before = snapshot((await db_cards(bot))["logistics"])
    inner, _ = make_foreign_tap(org[intruder], card, "认领")

    status, body = await org[intruder].deliver(inner)

    assert (status, body) == (200, b"")
    [reply] = org[intruder].texts()
    assert reply == f"你不是该部门成员，不能处理卡片 {org.no('logistics')}。"
    assert updates_of(fake, card["task_id"]) == []
    assert {u.userid: u.current(card) for u in org.recipients("logistics")} == before
    stored = (await db_cards(bot))["logistics"]
    assert snapshot(stored) == stored_before
    assert (stored.state, stored.holder_id) == ("open", None)
    [denied] = await audit_rows(bot, "task.denied")
    assert (denied.actor_id, denied.entity, denied.entity_id) == (intruder, "task_card", str(stored.id))
    assert await audit_rows(bot, "task.claim") == []
    assert len(org.rep.texts()) == 1  # only "申请已提交"


# ---- 8. a tap retried by WeCom --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sequential", "concurrent"])
async def test_retried_claim_tap_has_one_effect(
    mode: str, submitted: Scenario, bot: Runtime, fake: FakeWeCom, clock: FixedClock
) -> None:
    org = submitted
    card = org.cards["logistics"]
    log01 = org["log01"]
    inner, code = log01.tap_callback(card, "认领")  # WeCom resends the same event: same CreateTime, ResponseCode
    if mode == "sequential":
        answers = []
        for _ in range(4):
            answers.append(await log01.deliver(inner))
            clock.set(clock.now() + timedelta(seconds=5))
    else:
        answers = list(await asyncio.gather(*(log01.post(inner) for _ in range(4))))
        await bot.settle()

    assert answers == [(200, b"")] * 4
    assert len(await audit_rows(bot, "task.claim")) == 1
    [upd] = updates_of(fake, card["task_id"])
    assert upd.response_code == code
    assert fake.rejected_codes == []
    [reply] = log01.texts()
    assert reply.startswith(f"你已认领卡片 {org.no('logistics')}")
    assert len(org.rep.texts()) == 2  # 申请已提交, then one claim notice
    assert [u.texts() for u in org.recipients("logistics")][1:] == [[], []]


# ---- 9. validation: long fields ---------------------------------------------------------------------------------


async def test_long_hospital_name_and_remark_stay_within_card_limits(
    org: Scenario, bot: Runtime, fake: FakeWeCom
) -> None:
    hospital = "浙江省杭州市西湖区中西医结合骨科与脊柱外科专科医院附属第三分院康复医学中心"
    assert len(hospital) > limits.TITLE_MAX_CHARS
    note = ("王主任主刀，需提前一天送达手术室并安排跟台工程师现场支持，" * 20)[:300]
    await make_customer(bot, hospital, "长名医院", ["骨科", "脊柱外科"])

    confirm = await org.submit(make_request_line(hospital="长名医院", note=note))

    [request] = await db_requests(bot)
    assert request.fields["note"] == normalise(note)  # only the cards are cut (full-width punctuation folded)
    assert_card_limits(confirm)
    cards = task_cards(fake)
    assert set(cards) == set(DEPARTMENTS)
    for dept, card in cards.items():
        assert_card_limits(card)
        facts = shown(card)
        assert facts["医院"] == hospital[: limits.VALUE_MAX_CHARS - 1] + "…"
        assert facts["备注"] == normalise(note)[: limits.VALUE_MAX_CHARS - 1] + "…"
        assert card["main_title"]["title"].startswith(f"{DEPT_ZH[dept]}｜")
        assert f"编号：{org.no(dept)} / R1" in card["sub_title_text"]
    assert cards["marketing"]["main_title"]["title"].endswith("…")
    # A transition re-renders the card: still within the limits.
    await org["mkt01"].tap(cards["marketing"], "认领")
    [upd] = updates_of(fake, cards["marketing"]["task_id"])
    assert_card_limits(upd.body["template_card"])
    assert validate_update(upd.body) == []


# ---- shared cards and the per-person throttle -----------------------------------------------------------------


def logistics_cards(fake: FakeWeCom, userid: str) -> list[Any]:
    cards = [m.body["template_card"] for m in fake.messages_to(userid) if m.msgtype == "template_card"]
    return [c for c in cards if "logistics" in c["task_id"]]


@pytest.mark.parametrize("wecom_overrides", [{"per_user_per_minute": 3}], ids=["3-per-minute"])
async def test_shared_cards_count_against_every_recipients_budget(
    org: Scenario, wecom_user: User, bot: Runtime, fake: FakeWeCom
) -> None:
    requesters = [wecom_user(uid) for uid in ("rep01", "rep02", "mgr01", "dir01")]  # each within their own budget

    async def stock(n: int) -> None:
        rep = requesters[n]
        await rep.send(f"备货 浙一 骨钉{n} 20 2026-11-30")
        await rep.tap(rep.last_card(), "提交")
        org.later(5)

    # Three requests: every logistics person gets three shared cards inside one minute, the budget of 3.
    for n in range(3):
        await stock(n)
    assert len(logistics_cards(fake, "log02")) == 3  # log02 is not the first recipient of the shared cards
    # A fourth waits (deferred, not dropped) until the oldest of the three is a minute old.
    await stock(3)
    await bot.settle()
    assert len(logistics_cards(fake, "log02")) == 3
    for _ in range(10):
        org.later(15)
        await bot.settle()
    assert len(logistics_cards(fake, "log02")) == 4
    assert fake.silently_dropped == 0
    stamps = [d.at for d in fake.messages_to("log02")]
    for at in stamps:
        assert sum(1 for s in stamps if at - 60 < s <= at) <= 3, stamps
