"""Support-request rules people hit in their first week (issue 11): the request's status after a rejection and
重新提交, deadlines capped by the needed-by date, the surgery's time of day, confirmation titles, the past-date
message. Chat-level resubmission runs on every channel in tests/scenarios/test_requests.py.

The clock stands at Monday 2026-11-23 10:00 in Shanghai (tests/conftest.py T0) unless a test moves it.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.config import ConfigError, Settings, parse_settings
from bot.infra import i18n
from bot.infra.clock import FixedClock
from bot.parsing.request_parser import parse_request_line, parse_value
from bot.runtime import Runtime
from bot.services.requests import progress_of
from cards.tasks import confirm_title
from storage.models import AuditLog, SupportRequest, TaskCard
from storage.vocab import RequestStatus
from tests.console_driver import ConsoleUser

SH = ZoneInfo("Asia/Shanghai")
TYPES = Settings().request_types
SURGERY = "跟台 浙一 骨科 2026-11-25 器械:脊柱A包 备注:王主任主刀"
# One complete line per configured request type (a new type must be added here: see the title test).
LINES = {
    "surgery_support": SURGERY,
    "demo_unit": "样机 浙一 骨科 型号:X1",
    "material": "资料 浙一 内容:新品彩页",
    "stock_reservation": "备货 省人民 骨钉 20 2026-11-30",
}


def sh(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SH)


async def db_cards(rt: Runtime) -> list[TaskCard]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(TaskCard).order_by(TaskCard.id)))


async def db_request(rt: Runtime) -> SupportRequest:
    async with rt.db.read() as s:
        [request] = (await s.scalars(select(SupportRequest))).all()
        return request


async def audit_count(rt: Runtime, action: str) -> int:
    async with rt.db.read() as s:
        return int(await s.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == action)) or 0)


async def submit(console: Any, line: str) -> ConsoleUser:
    rep: ConsoleUser = await console("rep01")
    await rep.send(line)
    await rep.refresh()
    await rep.tap("提交")
    await rep.replies()
    return rep


async def task_card_of(user: ConsoleUser, department: str) -> dict[str, Any]:
    await user.refresh()
    return [c for c in user.cards().values() if c["title"].startswith(f"{department}｜")][-1]


def fields(card: dict[str, Any]) -> dict[str, str]:
    return {f["label"]: f["value"] for f in card["fields"]}


async def reject(console: Any, member: str, department: str, reason: str) -> None:
    person: ConsoleUser = await console(member)
    await person.tap("驳回", (await task_card_of(person, department))["ref"])
    await person.send(reason)


# ---- 1. after a rejection: the status rule and 重新提交 --------------------------------------------------------


def card(card_id: int, department: str, state: str, supersedes: int | None = None) -> TaskCard:
    return TaskCard(id=card_id, department=department, state=state, supersedes_id=supersedes)


def test_request_status_after_a_rejection_names_the_department_while_others_continue() -> None:
    working = [card(1, "marketing", "open"), card(2, "logistics", "claimed"), card(3, "compliance", "rejected")]
    p = progress_of(working)
    assert (p.status, p.rejected, p.open) == (RequestStatus.OPEN, ("compliance",), True)
    settled = [card(1, "marketing", "done"), card(2, "logistics", "done"), card(3, "compliance", "rejected")]
    p = progress_of(settled)
    assert (p.status, p.rejected, p.open) == (RequestStatus.REJECTED, ("compliance",), False)
    # Resubmitted: the new card replaces the rejected one; the request is open again, then done when it is.
    again = [*settled, card(4, "compliance", "open", supersedes=3)]
    p = progress_of(again)
    assert (p.status, p.rejected, p.open) == (RequestStatus.OPEN, (), True)
    p = progress_of([*settled, card(4, "compliance", "done", supersedes=3)])
    assert (p.status, p.rejected) == (RequestStatus.DONE, ())


async def test_my_requests_says_rejected_by_the_department_while_others_continue(
    console: Any, runtime: Runtime
) -> None:
    rep = await submit(console, SURGERY)
    await reject(console, "cmp01", "合规", "授权书已过期")
    await rep.send("我的申请")
    [mine] = await rep.replies()
    assert mine.splitlines()[1].endswith("— 已驳回（合规），其余处理中"), mine
    for member, department in (("mkt01", "市场"), ("log01", "物流")):
        await reject(console, member, department, "不做了")
    await rep.send("我的申请")
    [mine] = await rep.replies()
    assert mine.splitlines()[1].endswith("— 已驳回（市场、物流、合规）"), mine
    assert (await db_request(runtime)).status == "rejected"


async def test_the_rejection_notice_gives_the_reason_and_how_to_resubmit(console: Any, runtime: Runtime) -> None:
    rep = await submit(console, SURGERY)
    await reject(console, "cmp01", "合规", "授权书已过期，请先更新")
    await rep.refresh()
    notice = rep.card_with("重新提交")
    assert notice["title"] == "⛔ R1 合规驳回了申请"
    assert fields(notice) == {"事项": "授权审核：浙江大学医学院附属第一医院", "驳回原因": "授权书已过期，请先更新"}
    assert "重新提交 R1 器械:脊柱B包" in notice["description"]


async def test_only_the_requests_rep_may_resubmit(console: Any, runtime: Runtime) -> None:
    rep = await submit(console, SURGERY)
    await reject(console, "cmp01", "合规", "授权书已过期")
    await rep.refresh()
    notice_key = next(b["key"] for b in rep.card_with("重新提交")["buttons"] if b["text"] == "重新提交")
    for uid in ("rep02", "mgr01", "cmp01"):
        other: ConsoleUser = await console(uid)
        await other.replies()
        await other.send("重新提交 R1")
        assert await other.replies() == ["只有申请人本人可以重新提交申请 R1。"], uid
        await other.post("/console/api/action", {"client_id": uuid.uuid4().hex, "payload": notice_key})
        assert (await other.replies())[-1] == "只有申请人本人可以重新提交申请 R1。", uid
    assert len(await db_cards(runtime)) == 3 and await audit_count(runtime, "request.resubmit") == 0


async def test_a_duplicate_resubmit_does_nothing_twice(console: Any, runtime: Runtime) -> None:
    rep = await submit(console, SURGERY)
    await reject(console, "cmp01", "合规", "授权书已过期")
    await rep.refresh()
    notice = rep.card_with("重新提交")
    await rep.send("重新提交 R1")
    [done] = await rep.replies()
    assert done == "🔁 已重新提交 R1 的合规部分，手术日期 2026-11-25：新卡片 T4（原 T3 已驳回）。已通知合规。"
    # The notice's button (tapped on a screen not yet updated) and the command again: told, nothing new.
    button = next(b for b in notice["buttons"] if b["text"] == "重新提交")
    await rep.post("/console/api/action", {"client_id": uuid.uuid4().hex, "payload": button["key"]})
    await rep.send("重新提交 R1")
    assert await rep.replies() == ["T3 已重新提交为 T4，无需再次提交。发「进度 R1」查看进度。"] * 2
    cards = await db_cards(runtime)
    assert [(c.id, c.department, c.state, c.supersedes_id) for c in cards[2:]] == [
        (3, "compliance", "rejected", None),
        (4, "compliance", "open", 3),
    ]
    assert await audit_count(runtime, "request.resubmit") == 1
    assert await audit_count(runtime, "task.resubmitted") == 1
    assert (await db_request(runtime)).status == "open"


async def test_resubmit_with_a_correction_changes_the_request_and_the_new_card(console: Any, runtime: Runtime) -> None:
    rep = await submit(console, SURGERY)
    await reject(console, "log01", "物流", "脊柱A包没货了")
    await rep.send("重新提交 R1 器械:脊柱B包")
    replies = await rep.replies()
    assert replies == ["🔁 已重新提交 R1 的物流部分，手术日期 2026-11-25：新卡片 T4（原 T2 已驳回）。已通知物流。",
                       "已更正：器械：脊柱B包"], replies  # fmt: skip
    request = await db_request(runtime)
    assert request.fields["kit"] == "脊柱B包"
    new = (await db_cards(runtime))[3]
    assert (new.title, new.supersedes_id) == ("备器械 脊柱B包（2026-11-25）", 2)
    async with runtime.db.read() as s:
        row = await s.scalar(select(AuditLog).where(AuditLog.action == "request.resubmit"))
    assert row is not None and row.changes["corrections"] == {"kit": ["脊柱A包", "脊柱B包"]}
    # Marketing, still at work, sees the corrected kit on its card.
    assert fields(await task_card_of(await console("mkt01"), "市场"))["器械"] == "脊柱B包"


async def test_resubmit_refuses_a_request_without_a_rejected_part(console: Any, runtime: Runtime) -> None:
    rep = await submit(console, SURGERY)
    await rep.send("重新提交 R1")
    assert await rep.replies() == ["申请 R1 没有被驳回的部分，无需重新提交。发「进度 R1」查看进度。"]
    await rep.send("重新提交")
    assert await rep.replies() == ["格式：重新提交 <申请编号> [字段:值]，例如 重新提交 R12 器械:脊柱B包"]
    await rep.send("重新提交 R99")
    assert await rep.replies() == ["找不到申请 R99。发「我的申请」查看编号。"]


async def test_help_lists_resubmit_for_reps(console: Any, runtime: Runtime) -> None:
    rep: ConsoleUser = await console("rep01")
    await rep.send("帮助")
    [shown] = await rep.replies()
    assert "· 重新提交 <申请编号> [字段:值]" in shown


# ---- 2. needed-by dates cap the deadline -----------------------------------------------------------------------


async def test_a_needed_by_date_earlier_than_the_sla_sets_the_card_deadline(
    console: Any, runtime: Runtime, clock: FixedClock
) -> None:
    clock.set(sh(12, 2, 10))  # Wednesday; the 24 working hours of the SLA end on Monday 12-07 10:00
    await submit(console, "备货 省人民 骨钉 20 需要日期:12-03")
    [stored] = await db_cards(runtime)
    assert stored.due_at == sh(12, 2, 18)  # the end of work on 12-03, one day ahead (lead_hours = 24)
    assert (stored.needed_at, stored.lead_hours) == (sh(12, 3, 18), 24.0)
    shown = fields(await task_card_of(await console("log01"), "物流"))
    assert shown["截止"] == "12-02 18:00（需在 12-03 前备好，提前 1 天）"


async def test_the_sla_deadline_stays_when_the_needed_by_date_is_later(
    console: Any, runtime: Runtime, clock: FixedClock
) -> None:
    clock.set(sh(12, 2, 10))
    await submit(console, "备货 省人民 骨钉 20 需要日期:12-20")
    [stored] = await db_cards(runtime)
    assert (stored.due_at, stored.needed_at) == (sh(12, 7, 10), None)
    assert fields(await task_card_of(await console("log01"), "物流"))["截止"] == "12-07 10:00"


async def test_a_needed_by_deadline_on_a_weekend_moves_back_into_working_hours(
    console: Any, runtime: Runtime, clock: FixedClock
) -> None:
    clock.set(sh(12, 2, 10))
    await submit(console, "备货 省人民 骨钉 20 需要日期:12-07")  # Monday: a day ahead is Sunday 18:00
    [stored] = await db_cards(runtime)
    assert stored.due_at == sh(12, 4, 18)  # Friday's end of work


async def test_a_needed_by_date_already_too_close_is_due_now(console: Any, runtime: Runtime, clock: FixedClock) -> None:
    clock.set(sh(12, 2, 19))  # after work; the day ahead of 12-03 18:00 has passed
    await submit(console, "备货 省人民 骨钉 20 需要日期:明天")
    [stored] = await db_cards(runtime)
    assert stored.due_at == sh(12, 2, 19) and stored.respond_by == sh(12, 2, 19)


COMPLETE_LEVEL = {"trigger": "not_done", "after_sla": "complete", "notify": ["head"]}


@pytest.mark.parametrize(
    "settings_overrides", [{"escalation": {"remind_at": 0, "levels": [COMPLETE_LEVEL]}}], ids=["complete-level"]
)
async def test_escalation_uses_the_needed_by_deadline(console: Any, runtime: Runtime, clock: FixedClock) -> None:
    clock.set(sh(12, 2, 10))
    await submit(console, "备货 省人民 骨钉 20 需要日期:12-03")
    head: ConsoleUser = await console("log_head")
    await head.refresh()
    before = len(head.cards())
    clock.set(sh(12, 2, 17, 59))
    await runtime.escalator.sweep()
    await runtime.settle()
    await head.refresh()
    assert len(head.cards()) == before
    clock.set(sh(12, 2, 18))
    await runtime.escalator.sweep()
    await runtime.settle()
    await head.refresh()
    notices = [c for c in head.cards().values() if c["ref"].endswith("-e1")]
    assert len(notices) == 1, head.cards()
    assert fields(notices[0])["完成截止"] == "12-02 18:00（需在 12-03 前备好，提前 1 天）"
    assert await audit_count(runtime, "escalation.level") == 1


@pytest.mark.parametrize(
    ("value", "why"),
    [(-1, "lead_hours must be between 0 and 720"), (721, "lead_hours must be between 0 and 720"), ("x", "number")],
)
def test_lead_hours_is_validated_in_config_with_a_clear_error(value: Any, why: str) -> None:
    stock = TYPES["stock_reservation"].model_dump()
    stock["lead_hours"] = value
    with pytest.raises(ConfigError) as err:
        parse_settings({"request_types": {"stock_reservation": stock}})
    [issue] = err.value.issues
    assert issue.path == "request_types.stock_reservation.lead_hours" and why in issue.message, issue


def config_problems(stock: dict[str, Any]) -> list[str]:
    try:
        parse_settings({"request_types": {"stock_reservation": stock}})
    except ConfigError as err:
        return [str(issue) for issue in err.issues]
    return []


def test_the_needed_by_field_is_one_date_and_time_of_day_needs_it() -> None:
    stock = TYPES["stock_reservation"].model_dump()
    stock["fields"][1].update(type="date", needed_by=True)
    assert config_problems(stock) == [
        "request_types.stock_reservation: only one field may be the needed-by date (needed_by = true): product,"
        " needed_by"
    ]
    stock["fields"][1].update(type="text")
    [problem] = config_problems(stock)
    assert "'needed_by' only applies to fields of type 'date'" in problem, problem
    stock = TYPES["stock_reservation"].model_dump()
    stock["fields"][3]["time_of_day"] = True
    assert config_problems(stock) == []  # on the needed-by date: fine
    stock["fields"][1]["time_of_day"] = True
    [problem] = config_problems(stock)
    assert "'time_of_day' only applies to the needed-by date" in problem, problem


# ---- 3. the surgery's time of day -------------------------------------------------------------------------------

TODAY = date(2026, 12, 1)  # a Tuesday


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("浙一 骨科 后天 8:00 器械:脊柱A包", "2026-12-03 08:00"),
        ("浙一 骨科 12-05 上午 器械:脊柱A包", "2026-12-05 09:00"),
        ("浙一 骨科 后天 下午 2 点 器械:脊柱A包", "2026-12-03 14:00"),
        ("浙一 骨科 手术日期:12-05 下午2点 器械:脊柱A包", "2026-12-05 14:00"),
        ("浙一 骨科 周四 7:30 器械:脊柱A包", "2026-12-03 07:30"),
        ("浙一 骨科 后天 器械:脊柱A包", "2026-12-03"),
    ],
)
def test_surgery_accepts_a_time_of_day(line: str, expected: str) -> None:
    parsed = parse_request_line(TYPES["surgery_support"], line, TODAY)
    assert parsed.issues == [] and parsed.values["surgery_date"] == expected, parsed
    assert parsed.loose == ["骨科"]


def test_a_time_without_a_date_is_refused_with_a_hint() -> None:
    [f] = [f for f in TYPES["surgery_support"].fields if f.key == "surgery_date"]
    value, issue = parse_value(f, "下午 2 点", TODAY)
    assert value is None and issue is not None and (issue.code, issue.value) == ("time_without_date", "下午 2 点")


async def test_the_surgery_time_is_stored_and_shown_on_every_card_and_reply(console: Any, runtime: Runtime) -> None:
    rep: ConsoleUser = await console("rep01")
    await rep.send("跟台 浙一 骨科 后天 8:00 器械:脊柱A包")
    await rep.refresh()
    assert fields(rep.card_with("提交"))["手术日期"] == "2026-11-25 08:00"
    await rep.tap("提交")
    [submitted] = await rep.replies()
    assert "手术跟台，浙江大学医学院附属第一医院，手术日期 2026-11-25 08:00。" in submitted, submitted
    request = await db_request(runtime)
    assert request.needed_at == sh(11, 25, 8) and request.needed_at.tzinfo is not None
    assert request.fields["surgery_date"] == "2026-11-25"  # the date stays an ISO date
    for member, department in (("mkt01", "市场"), ("log01", "物流"), ("cmp01", "合规")):
        shown = await task_card_of(await console(member), department)
        assert fields(shown)["手术日期"] == "2026-11-25 08:00", (member, shown)
    assert (await db_cards(runtime))[1].title == "备器械 脊柱A包（2026-11-25 08:00）"
    await rep.send("进度 R1")
    assert "手术日期：2026-11-25 08:00" in (await rep.replies())[0]


async def test_a_surgery_time_before_the_sla_sets_the_deadline(console: Any, runtime: Runtime) -> None:
    await submit(console, "跟台 浙一 骨科 明天 8:00 器械:脊柱A包")  # the SLA (24 h) would be 11-24 10:00
    stored = await db_cards(runtime)
    assert {c.due_at for c in stored} == {sh(11, 24, 8)}
    shown = fields(await task_card_of(await console("log01"), "物流"))
    assert shown["截止"] == "11-24 08:00（需在 11-24 08:00 前备好）"


# ---- 4. confirmation titles ---------------------------------------------------------------------------------------


def test_every_configured_request_type_has_a_line_here() -> None:
    assert set(LINES) == set(TYPES)


@pytest.mark.parametrize("type_key", sorted(LINES))
async def test_confirm_title_does_not_double_the_request_type_name(
    console: Any, runtime: Runtime, type_key: str
) -> None:
    rep: ConsoleUser = await console("rep01")
    await rep.send(LINES[type_key])
    await rep.refresh()
    title = rep.card_with("提交")["title"]
    name = runtime.settings.request_types[type_key].name_zh
    assert "申请申请" not in title and title == (f"请确认{name}" if name.endswith("申请") else f"请确认{name}申请")
    for rt in runtime.settings.request_types.values():
        assert "申请申请" not in confirm_title(i18n.ZH, rt.name_zh)
        assert "request request" not in confirm_title(i18n.EN, rt.name_en + " request").casefold()


# ---- 5. the past-date message names today ------------------------------------------------------------------------


def test_a_past_date_issue_names_today_not_the_date_given() -> None:
    [f] = [f for f in TYPES["surgery_support"].fields if f.key == "surgery_date"]
    _, issue = parse_value(f, "昨天", date(2026, 12, 2))
    assert issue is not None and (issue.code, issue.value, issue.today) == ("past_date", "2026-12-01", "2026-12-02")


async def test_a_past_surgery_date_is_refused_naming_today(console: Any, runtime: Runtime, clock: FixedClock) -> None:
    clock.set(sh(12, 2, 10))
    rep: ConsoleUser = await console("rep01")
    await rep.send("跟台 浙一 骨科 昨天 器械:脊柱A包")
    refusal = (await rep.replies())[0]
    assert refusal == "手术日期不能早于今天（2026-12-02），你填的是 2026-12-01。请填写今天或以后的日期。"
