"""cards/grades.py: the grade-change card while pending (fields, 同意 / 驳回) and settled (who decided, a rejection's
reason), in both languages; its WeCom body passes the fake WeCom's validator with a long reason."""

from __future__ import annotations

from dataclasses import replace

from cards import wecom
from cards.grades import GradeOp, GradeTap, GradeView, grade_card
from cards.payload import unpack
from tests.fakes.wecom import validate_send

ZJU2 = "浙江大学医学院附属第二医院"
VIEW = GradeView(
    change_id=3, customer=ZJU2, rep="王磊", old_grade="B", new_grade="A", reason="新品试用量大",
    requested_by="王磊", state="pending", score=82.4, suggested="A",
)  # fmt: skip


def test_a_pending_card_shows_the_change_the_score_and_two_buttons() -> None:
    card = grade_card(VIEW, "zh-CN")
    assert card.ref == "grade-3" and card.title == f"调级申请：{ZJU2} B → A"
    fields = {f.label: f.value for f in card.fields}
    assert fields == {
        "客户": ZJU2,
        "调整": "B → A",
        "负责代表": "王磊",
        "健康分": "82 分，建议 A 类",
        "原因": "新品试用量大",
        "申请人": "王磊",
        "编号": "G3",
    }
    assert [b.text for b in card.buttons] == ["同意", "驳回"]
    assert [unpack(b.key) for b in card.buttons] == [GradeTap(3, GradeOp.APPROVE), GradeTap(3, GradeOp.REJECT)]


def test_without_a_score_or_an_old_grade() -> None:
    card = grade_card(replace(VIEW, score=None, suggested=None, old_grade=None), "zh-CN")
    assert "健康分" not in {f.label for f in card.fields} and card.title.endswith("无 → A")


def test_settled_cards_say_who_decided_and_why_not() -> None:
    rejected = grade_card(replace(VIEW, state="rejected", decided_by="陈静", decision_reason="再观察"), "zh-CN")
    assert rejected.buttons == [] and rejected.status == "陈静 已驳回"
    assert {f.label: f.value for f in rejected.fields}["驳回原因"] == "再观察"
    confirmed = grade_card(replace(VIEW, state="confirmed", decided_by="陈静"), "en")
    assert confirmed.status == "Confirmed by 陈静" and confirmed.tone == "success"
    assert confirmed.title == f"Grade change: {ZJU2} B → A"


def test_the_wecom_body_is_valid_with_a_long_reason() -> None:
    card = grade_card(replace(VIEW, reason="客户新品试用量大，学术活动参与积极，" * 20), "zh-CN")
    body = wecom.render_send_card(card, touser=["mgr01"], agent_id=1000002, duplicate_check_seconds=None)
    assert validate_send(body) == []
