"""Escalation in plain words (issue 11): the sentences of 升级记录, the next step, 升级策略 in hours and people,
how long a notice has waited. Pure functions: rows, people and settings in, text out."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.config import EscalationLevelConfig, RequestTypeConfig, Settings, parse_settings
from bot.infra import i18n
from bot.services import escalation as esc
from bot.services import escalation_words as words
from bot.services.escalation_words import Person, Words
from cards.escalation import fmt_duration
from storage.models import TaskCard, User
from storage.vocab import CardEvent

ROOT = Path(__file__).resolve().parents[1]
SH = ZoneInfo("Asia/Shanghai")
T = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai

PEOPLE = {
    "rep01": Person("王磊"),
    "log01": Person("吴敏"),
    "log02": Person("郑浩"),
    "log_head": Person("周涛", "head"),
    "dir01": Person("赵强", "director"),
}


@dataclass
class Row:
    """An audit row as 升级记录 reads it."""

    action: str
    actor_id: str | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    at: datetime = T


def zh() -> Words:
    return Words(i18n.ZH, SH, PEOPLE)


def en() -> Words:
    return Words(i18n.EN, SH, PEOPLE)


def settings() -> Settings:
    return parse_settings({}, "<test>")


# One row per action, shaped as the code writes it.
SAMPLES: dict[CardEvent, Row] = {
    CardEvent.CREATE: Row("task.create", "rep01", {"request_id": 1, "department": "logistics"}),
    CardEvent.CLAIM: Row("task.claim", "log01", {"state": "claimed", "holder": "log01"}),
    CardEvent.DONE: Row("task.done", "log01", {"state": "done", "holder": "log01", "attachments": 2}),
    CardEvent.REJECT: Row("task.reject", "log01", {"reason": "库存不足"}),
    CardEvent.NEED_INFO: Row("task.need_info", "log01", {"question": "几点开台？"}),
    CardEvent.ANSWER: Row("task.answer", "rep01", {"answer": "8点"}),
    CardEvent.ATTACH: Row("task.attach", "log01", {"kind": "image", "media_id": "m1"}),
    CardEvent.DENIED: Row("task.denied", "rep01", {"department": "logistics", "event": "tap"}),
    CardEvent.RESUBMITTED: Row("task.resubmitted", "rep01", {"as": 4}),
    CardEvent.REMIND: Row("escalation.remind", None, {"level": 0, "targets": ["log01"], "trigger": "not_done"}),
    CardEvent.LEVEL: Row("escalation.level", None, {"level": 1, "targets": ["log_head"], "trigger": "not_claimed"}),
    CardEvent.REPEAT: Row("escalation.repeat", None, {"level": 2, "targets": ["dir01"], "trigger": "not_done"}),
    CardEvent.TAKEOVER: Row("escalation.takeover", "log_head", {"holder": [None, "log_head"], "state": "claimed"}),
    CardEvent.REASSIGN: Row("escalation.reassign", "log_head", {"holder": [None, "log01"], "state": "claimed"}),
    CardEvent.SNOOZE: Row("escalation.snooze", "dir01", {"until": "2026-11-23T11:00:00+00:00", "reason": "盘点"}),
    CardEvent.ESCALATION_DENIED: Row("escalation.denied", "log01", {"op": "take"}),
}


# ---- every action the code can write has its sentence -----------------------------------------------------------


def test_every_audit_action_the_code_can_write_has_a_sentence() -> None:
    assert set(words.SENTENCES) == set(CardEvent)
    assert set(SAMPLES) == set(CardEvent)
    for event, row in SAMPLES.items():
        for w in (zh(), en()):
            said = words.sentence(w, row)
            assert said and said != words.sentence(w, Row("x.unknown", row.actor_id)), (event, said)
            # No internal codes: neither the action, nor ids of people the sentence names, nor a bare level code.
            assert event.value not in said and "task." not in said and "escalation." not in said, said
            assert not any(uid in said for uid in PEOPLE), said


def _audit_calls() -> list[tuple[str, int, ast.Call]]:
    """Every call in the bot's code that writes an audit row about a task card (or prepares one)."""
    found = []
    for package in ("bot", "handlers", "cards", "storage"):
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                    if name in ("audit_card", "_audit", "Denial", "record", "Trail"):
                        found.append((f"{path.relative_to(ROOT)}:{node.lineno}", name, node))
    return found


def _names_an_event(node: ast.expr) -> bool:
    """``CardEvent.X``, ``CardEvent(…)``, a lookup in a table of them, or a parameter passed on (typed CardEvent)."""
    if isinstance(node, ast.Attribute):
        return isinstance(node.value, ast.Name) and node.value.id == "CardEvent"
    if isinstance(node, ast.Call):
        return isinstance(node.func, ast.Name) and node.func.id == "CardEvent"
    if isinstance(node, ast.Subscript):
        return isinstance(node.value, ast.Name) and node.value.id.endswith("_EVENTS")
    return isinstance(node, ast.Name)


def test_audit_rows_about_task_cards_take_their_action_from_the_vocabulary() -> None:
    """A new action written as a string would escape ``CardEvent`` (and 升级记录 would show its code): the code
    writes card audit rows through ``audit_card`` / ``Denial`` with a ``CardEvent`` only."""
    checked = 0
    for where, name, call in _audit_calls():
        args = call.args
        if name == "audit_card" and len(args) >= 3:
            assert _names_an_event(args[2]), where
            checked += 1
        elif name == "_audit" and len(args) >= 6:
            assert _names_an_event(args[5]), where
            checked += 1
        elif name == "Denial" and len(args) >= 2 and ast.unparse(args[1]) in ("CARD_ENTITY", "'task_card'"):
            assert _names_an_event(args[0]), where
            checked += 1
        entity = next((k.value for k in call.keywords if k.arg == "entity"), None)
        if name in ("record", "Trail") and entity is not None:
            # Written directly: only by audit_card itself (entity=CARD_ENTITY, action=event.value).
            assert ast.unparse(entity) != "'task_card'", where
    # create, _audit and its six transitions, two denials, the sweep, snooze, hand-over: 13 calls today.
    assert checked >= 13
    # The entity's name is spelled once.
    spelled = [
        str(p.relative_to(ROOT))
        for package in ("bot", "handlers", "cards", "storage")
        for p in (ROOT / package).rglob("*.py")
        if 'task_card"' in p.read_text(encoding="utf-8") and "/migrations/" not in str(p)
    ]
    assert spelled == ["storage/vocab.py"]


def test_an_action_outside_the_vocabulary_is_refused_when_written() -> None:
    class Session:
        def __init__(self) -> None:
            self.added: list[Any] = []

        def add(self, row: Any) -> None:
            self.added.append(row)

    session: Any = Session()
    with pytest.raises(ValueError):
        esc.audit_card(session, 1, "task.teleport", {}, at=T, actor_id=None, channel=None)  # type: ignore[arg-type]
    row = esc.audit_card(session, 1, CardEvent.CLAIM, {}, at=T, actor_id="log01", channel="console")
    assert (row.action, row.entity, row.entity_id) == ("task.claim", "task_card", "1")


# ---- the sentences ------------------------------------------------------------------------------------------------


def test_history_sentences_say_who_did_what() -> None:
    said = {event: words.sentence(zh(), row) for event, row in SAMPLES.items()}
    assert said[CardEvent.CREATE] == "王磊 提交申请"
    assert said[CardEvent.CLAIM] == "吴敏 认领"
    assert said[CardEvent.DONE] == "吴敏 完成（附件 2 个）"
    assert said[CardEvent.REJECT] == "吴敏 驳回：库存不足"
    assert said[CardEvent.NEED_INFO] == "吴敏 请代表补充：几点开台？"
    assert said[CardEvent.ANSWER] == "王磊 补充：8点"
    assert said[CardEvent.ATTACH] == "吴敏 上传了照片"
    assert said[CardEvent.REMIND] == "系统提醒 吴敏：完成期限快到了"
    assert said[CardEvent.LEVEL] == "第1级升级：超时未认领，已通知 周涛（部门负责人）"
    assert said[CardEvent.REPEAT] == "仍未完成，再次通知 赵强（总监）"
    assert said[CardEvent.TAKEOVER] == "周涛 接手了任务"
    assert said[CardEvent.REASSIGN] == "周涛 转派给 吴敏"
    assert said[CardEvent.SNOOZE] == "赵强 把升级暂缓到 11-23 19:00：盘点"
    assert words.history_line(zh(), SAMPLES[CardEvent.CLAIM]) == "11-23 10:00 吴敏 认领"


def test_history_sentences_in_english_for_english_readers() -> None:
    assert words.sentence(en(), SAMPLES[CardEvent.CREATE]) == "王磊 submitted the request"
    assert words.sentence(en(), SAMPLES[CardEvent.LEVEL]) == "Level 1: not claimed in time, 周涛 (department head) told"
    assert words.sentence(en(), SAMPLES[CardEvent.REASSIGN]) == "周涛 handed it to 吴敏"


def test_a_take_over_from_someone_names_them() -> None:
    row = Row("escalation.takeover", "log_head", {"holder": ["log01", "log_head"]})
    assert words.sentence(zh(), row) == "周涛 从 吴敏 手中接手了任务"


def test_levels_written_before_the_trigger_was_recorded_still_read_right() -> None:
    unclaimed = Row("escalation.level", None, {"level": 1, "targets": ["log_head"], "holder": None})
    held = Row("escalation.level", None, {"level": 2, "targets": ["dir01", "log_head"], "holder": "log01"})
    assert words.sentence(zh(), unclaimed) == "第1级升级：超时未认领，已通知 周涛（部门负责人）"
    assert words.sentence(zh(), held) == "第2级升级：超时未完成，已通知 赵强（总监）、周涛（部门负责人）"


def test_a_row_of_an_unknown_action_says_so_without_its_code() -> None:
    assert words.sentence(zh(), Row("task.teleport", "log01")) == "吴敏 做了其他操作"


def test_people_are_named_by_their_role_for_the_cards_department() -> None:
    def user(roles: list[str], department: str | None) -> User:
        return User(id="u", name="甲", roles=roles, department=department)

    assert words.person_of(user(["head"], "logistics"), "logistics") == Person("甲", "head")
    assert words.person_of(user(["head"], "marketing"), "logistics") == Person("甲")
    assert words.person_of(user(["director"], None), "logistics") == Person("甲", "director")
    assert words.person_of(user(["member"], "logistics"), "logistics") == Person("甲")


# ---- how long a notice has waited ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("span", "zh_text", "en_text"),
    [
        (timedelta(seconds=20), "不到 1 分钟", "under a minute"),
        (timedelta(minutes=45, seconds=59), "45 分钟", "45 min"),
        (timedelta(hours=2), "2 小时", "2 h"),
        (timedelta(hours=2, minutes=15), "2 小时 15 分钟", "2 h 15 min"),
        (timedelta(hours=23, minutes=59), "23 小时 59 分钟", "23 h 59 min"),
        (timedelta(hours=49, minutes=30), "2 天 1 小时", "2 d 1 h"),
        (timedelta(days=3), "3 天", "3 d"),
        (timedelta(seconds=-5), "不到 1 分钟", "under a minute"),
    ],
)
def test_waits_read_in_minutes_then_hours_then_days(span: timedelta, zh_text: str, en_text: str) -> None:
    assert fmt_duration(span, i18n.ZH) == zh_text
    assert fmt_duration(span, i18n.EN) == en_text


# ---- the next step -----------------------------------------------------------------------------------------------


def stock_card(**kw: Any) -> TaskCard:
    """A 备货 card created at 10:00 with the scenario policy: remind at 50 %, L1 not claimed at the first response
    (12:00) → head, L2 not done 4 working hours after creation (15:00) → director, every hour."""
    cfg = settings().model_copy(
        update={
            "escalation": settings().escalation.model_validate(
                {
                    "remind_at": 0.5,
                    "levels": [
                        {"trigger": "not_claimed", "after_sla": "first_response", "notify": ["head"]},
                        {"trigger": "not_done", "after_hours": 4, "notify": ["director"], "repeat_every_hours": 1},
                    ],
                }
            )
        }
    )
    rt: RequestTypeConfig = cfg.request_types["stock_reservation"]
    policy = esc.freeze_policy(cfg, rt, "stock_reservation", "logistics", T, 2.0, 24.0)
    card = TaskCard(
        id=1,
        department="logistics",
        state=kw.pop("state", "open"),
        holder_id=kw.pop("holder_id", None),
        created_at=T,
        respond_by=T + timedelta(hours=2),
        due_at=datetime(2026, 11, 26, 2, 0, tzinfo=UTC),
        policy=policy,
        esc_step=kw.pop("esc_step", 0),
        repeat_at=kw.pop("repeat_at", None),
        repeat_step=kw.pop("repeat_step", None),
        snoozed_until=kw.pop("snoozed_until", None),
        first_response_at=kw.pop("first_response_at", None),
    )
    assert not kw
    return card


def test_the_next_step_says_what_it_is() -> None:
    card = stock_card()
    step = esc.upcoming(card)
    assert step is not None and (step.at, step.kind) == (T + timedelta(hours=1), "remind")
    said = words.next_step(zh(), step, ["log01", "log02"], None)
    assert said == "提醒部门成员（首次响应 11-23 12:00 到期）"
    assert [s.get("deadline") for s in card.policy["steps"] if s["kind"] == "level"] == ["first_response", "complete"]

    card.esc_step = 1
    step = esc.upcoming(card)
    assert step is not None and step.kind == "level"
    assert words.next_step(zh(), step, ["log_head"], None) == "第1级升级：若仍未认领，通知 周涛（部门负责人）"


def test_the_next_step_passes_over_steps_that_no_longer_apply() -> None:
    # Claimed at 10:30: the claim reminder and L1 will be skipped; next is the completion reminder… after L2.
    card = stock_card(state="claimed", holder_id="log01", first_response_at=T + timedelta(minutes=30))
    step = esc.upcoming(card)
    assert step is not None and step.kind == "level" and step.level == 2
    assert step.at == datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # 15:00: 4 working hours, lunch excluded
    assert words.next_step(zh(), step, ["dir01"], "log01") == "第2级升级：若仍未完成，通知 赵强（总监）"


def test_the_next_step_waits_for_a_snooze_and_says_so() -> None:
    until = T + timedelta(hours=9)
    card = stock_card(esc_step=3, repeat_step=2, repeat_at=T + timedelta(hours=6), snoozed_until=until)
    step = esc.upcoming(card)
    assert step is not None and (step.kind, step.at, step.snoozed) == ("repeat", until, True)
    assert words.next_step(zh(), step, ["dir01"], None) == "若仍未完成，再次通知 赵强（总监）（暂缓到此时）"


def test_a_reminder_to_the_holder_names_them() -> None:
    card = stock_card(state="claimed", holder_id="log01", first_response_at=T, esc_step=3)
    step = esc.upcoming(card)
    assert step is not None and step.kind == "remind" and step.deadline_kind == "complete"
    assert words.next_step(zh(), step, ["log01"], "log01") == "提醒处理人 吴敏（完成期限 11-26 10:00 到期）"


def test_closed_and_paused_cards_have_no_next_step() -> None:
    assert esc.upcoming(stock_card(state="done")) is None
    assert esc.upcoming(stock_card(state="need_info")) is None


# ---- 升级策略: names as people write them ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("物流", ("logistics", "")),
        ("物流部", ("logistics", "")),
        ("logistics", ("logistics", "")),
        ("Logistics", ("logistics", "")),
        ("跟台", ("", "surgery_support")),
        ("手术跟台", ("", "surgery_support")),
        ("surgery_support", ("", "surgery_support")),
        ("Surgery support", ("", "surgery_support")),
        ("物流 跟台", ("logistics", "surgery_support")),
        ("跟台 物流部", ("logistics", "surgery_support")),
        ("logistics surgery_support", ("logistics", "surgery_support")),
        ("ＳＴＯＣＫ　市场", ("marketing", "stock_reservation")),
        ("", ("", "")),
    ],
)
def test_policy_takes_names_as_people_write_them(text: str, expected: tuple[str, str]) -> None:
    assert esc.match_policy_words(settings(), text) == expected


def test_an_unknown_policy_name_lists_the_names_that_work() -> None:
    with pytest.raises(esc.PolicyNameUnknown) as caught:
        esc.match_policy_words(settings(), "物流 仓库")
    text = i18n.t(i18n.ZH, caught.value.key, **caught.value.params)
    assert text == (
        "不认识「仓库」。部门：物流、市场、合规；申请类型：手术跟台（跟台）、样机申请（样机）、资料申请（资料）、备货。"
        "例如：升级策略 物流 跟台"
    )
    assert "Logistics, Marketing, Compliance" in i18n.t(i18n.EN, caught.value.key, **caught.value.params)


def test_policy_scopes_follow_what_was_asked() -> None:
    s = settings()
    assert esc.policy_scopes(s, "logistics", "surgery_support", "") == [("logistics", "surgery_support")]
    # A type alone: the asker's department if it gets one, else each department it goes to.
    assert esc.policy_scopes(s, "", "surgery_support", "logistics") == [("logistics", "surgery_support")]
    assert esc.policy_scopes(s, "", "surgery_support", "") == [
        ("marketing", "surgery_support"),
        ("logistics", "surgery_support"),
        ("compliance", "surgery_support"),
    ]
    # A department (or one's own): each request type it receives.
    assert esc.policy_scopes(s, "", "", "logistics") == [
        ("logistics", "surgery_support"),
        ("logistics", "demo_unit"),
        ("logistics", "stock_reservation"),
    ]
    assert esc.policy_scopes(s, "", "", "") == [("", "")]


def _view(levels: list[EscalationLevelConfig], **kw: Any) -> esc.PolicyView:
    head = User(id="log_head", name="周涛", roles=["head"], department="logistics")
    director = User(id="dir01", name="赵强", roles=["director"])
    admin = User(id="admin01", name="孙悦", roles=["admin"])
    people = {"head": [head], "director": [director], "role:admin": [admin], "department": [head]}
    defaults: dict[str, Any] = {
        "department": "logistics",
        "type_key": "surgery_support",
        "levels": levels,
        "remind_at": 0.75,
        "first_response_hours": 2.0,
        "complete_hours": 24.0,
        "calendar_hours": True,
        "people": people,
    }
    return esc.PolicyView(**{**defaults, **kw})


def test_policy_reads_in_hours_and_people() -> None:
    lines = words.policy_lines(zh(), settings(), _view(settings().escalation.levels))
    assert lines == [
        "手术跟台（物流）：首次响应 2 小时、完成 24 小时（日历时间，夜间和节假日也计时）",
        "· 时限过去 75% 时提醒处理人（还没人认领时提醒部门成员）",
        "· 第1级：首次响应到期时（提交后 2 小时）仍未认领 → 通知 部门负责人（周涛）",
        "· 第2级：完成期限到期时（提交后 24 小时）仍未完成 → 通知 部门负责人（周涛）",
        "· 第3级：完成期限到期后 8 小时（提交后 32 小时）仍未完成 → 通知 总监（赵强），之后每 8 小时再通知一次",
    ]


def test_policy_in_english_for_english_readers() -> None:
    lines = words.policy_lines(en(), settings(), _view(settings().escalation.levels, calendar_hours=False))
    assert lines[0] == "Surgery support (Logistics): first response 2 h, done 24 h (working hours)"
    assert lines[2] == (
        "· level 1: still unclaimed at the first response deadline (2 h after submission) → tell department head (周涛)"
    )


def test_policy_says_who_is_told_when_a_department_has_no_head() -> None:
    level = EscalationLevelConfig(trigger="not_claimed", after_hours=0.5, notify=["head"])
    view = _view([level], remind_at=0.0, people={"head": [], "director": [], "role:admin": []})
    assert words.policy_lines(zh(), settings(), view)[1:] == [
        "· 不发到期提醒",
        "· 第1级：提交后 30 分钟仍未认领 → 通知 部门负责人（暂无）（暂无此人时改为通知 总监（暂无）、管理员（暂无））",
    ]


def test_policy_without_a_request_type_titles_the_department_or_the_default() -> None:
    levels = settings().escalation.levels
    assert words.policy_lines(zh(), settings(), _view(levels, type_key=""))[0] == "物流："
    assert words.policy_lines(zh(), settings(), _view(levels, type_key="", department=""))[0] == "默认升级策略："
    no_sla = words.policy_lines(zh(), settings(), _view(levels, type_key="", first_response_hours=None))
    assert no_sla[2] == "· 第1级：首次响应到期时仍未认领 → 通知 部门负责人（周涛）"


def test_a_resubmitted_card_reads_as_a_sentence_both_ways() -> None:
    old = words.sentence(zh(), Row("task.resubmitted", "rep01", {"as": 4}))
    new = words.sentence(zh(), Row("task.create", "rep01", {"request_id": 1, "supersedes": 3}))
    assert "重新提交为 T4" in old and "王磊" in old
    assert "替代被驳回的 T3" in new and "王磊" in new
