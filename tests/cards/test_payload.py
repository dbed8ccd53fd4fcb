"""Typed button payloads (issue 10 §5): one codec packs and unpacks every kind; the wire form is the one cards
already sent carry (a tap on an old card still works); a forged or mangled payload is a PayloadError."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import pytest

from cards import payload
from cards.activity import ActivityChoice, ActivityConfirm
from cards.escalation import AssignTo, EscalationOp, EscalationTap
from cards.grades import GradeChoice, GradeConfirm, GradeOp, GradeTap
from cards.payload import MAX_PAYLOAD_BYTES, CallbackData, PayloadError, unpack
from cards.plans import PlanChoice, PlanConfirm
from cards.suggest import SuggestedText
from cards.tasks import RequestChoice, RequestConfirm, RequestOffer, Resubmit, TaskOp, TaskTap
from cards.visits import ConfirmOp, VisitChoice, VisitConfirm


def old_pack(action: str, *args: str) -> str:
    """The format of the positional ``ButtonPayload(action, args)`` this codec replaced, written out again."""
    return "|".join([action, *(quote(a, safe="") for a in args)])


CASES: list[tuple[CallbackData, str]] = [
    (TaskTap(12, TaskOp.CLAIM), old_pack("tk", "12", "claim")),
    (TaskTap(7, TaskOp.DONE), old_pack("tk", "7", "done")),
    (TaskTap(7, TaskOp.REJECT), old_pack("tk", "7", "reject")),
    (TaskTap(7, TaskOp.INFO), old_pack("tk", "7", "info")),
    (RequestOffer("surgery_support", 3), old_pack("rq", "surgery_support", "3")),
    (EscalationTap(5, EscalationOp.TAKE), old_pack("te", "5", "take")),
    (EscalationTap(5, EscalationOp.REASSIGN), old_pack("te", "5", "reassign")),
    (EscalationTap(5, EscalationOp.SNOOZE_1H), old_pack("te", "5", "snooze_1h")),
    (EscalationTap(5, EscalationOp.SNOOZE_4H), old_pack("te", "5", "snooze_4h")),
    (EscalationTap(5, EscalationOp.SNOOZE_TOMORROW), old_pack("te", "5", "snooze_tomorrow")),
    (AssignTo(5, "log01"), old_pack("ta", "5", "log01")),
    (VisitChoice("a1b2", "customer", "浙一|骨科 100%"), old_pack("vf", "a1b2", "customer", "浙一|骨科 100%")),
    (VisitConfirm("a1b2", ConfirmOp.SUBMIT), old_pack("vc", "a1b2", "submit")),
    (VisitConfirm("a1b2", ConfirmOp.EDIT), old_pack("vc", "a1b2", "edit")),
    (VisitConfirm("a1b2", ConfirmOp.CANCEL), old_pack("vc", "a1b2", "cancel")),
    (RequestChoice("a1b2", "ward", "骨科"), old_pack("rf", "a1b2", "ward", "骨科")),
    (RequestConfirm("a1b2", ConfirmOp.SUBMIT), old_pack("rc", "a1b2", "submit")),
    (SuggestedText("拜访 浙一 骨科"), old_pack("sg", "拜访 浙一 骨科")),
    (Resubmit(3), old_pack("rs", "3")),
    (PlanChoice("a1b2", "customers", "12"), old_pack("pf", "a1b2", "customers", "12")),
    (PlanConfirm("a1b2", ConfirmOp.SUBMIT), old_pack("pc", "a1b2", "submit")),
    (ActivityChoice("a1b2", "customer", "12"), old_pack("af", "a1b2", "customer", "12")),
    (ActivityConfirm("a1b2", ConfirmOp.SUBMIT), old_pack("ac", "a1b2", "submit")),
    (GradeTap(3, GradeOp.APPROVE), old_pack("gd", "3", "ok")),
    (GradeTap(3, GradeOp.REJECT), old_pack("gd", "3", "no")),
    (GradeChoice("a1b2", "grade", "A"), old_pack("gf", "a1b2", "grade", "A")),
    (GradeConfirm("a1b2", ConfirmOp.SUBMIT), old_pack("gk", "a1b2", "submit")),
]


@pytest.mark.parametrize(("data", "wire"), CASES, ids=[f"{type(d).__name__}-{i}" for i, (d, _) in enumerate(CASES)])
def test_each_payload_packs_to_the_old_wire_format_and_back(data: CallbackData, wire: str) -> None:
    assert data.pack() == wire
    assert unpack(wire) == data
    assert type(unpack(wire)) is type(data)
    assert type(data).unpack(wire) == data


def test_every_registered_kind_is_covered_by_the_wire_format_test() -> None:
    assert {type(d) for d, _ in CASES} == set(payload.prefixes().values())


def test_fields_are_typed_after_unpacking() -> None:
    tap = unpack("tk|12|claim")
    assert isinstance(tap, TaskTap) and tap.card_id == 12 and tap.op is TaskOp.CLAIM
    assert isinstance(unpack("vc|t|submit"), VisitConfirm)


@pytest.mark.parametrize(
    "wire",
    [
        "",
        "tk",
        "tk|12",
        "tk|12|claim|extra",
        "tk|-1|claim",
        "tk|12a|claim",
        "tk|１２|claim",
        "tk|1234567890123456789|claim",
        "tk|12|steal",
        "tk||claim",
        "te|5|snooze_1d",
        "vc|t|submit%FF",
        "vc|t|publish",
        "zz|1|2",
        "tk%7C12|claim",
        "x" * (MAX_PAYLOAD_BYTES + 1),
    ],
)
def test_forged_or_mangled_payload_is_a_payload_error(wire: str) -> None:
    with pytest.raises(PayloadError):
        unpack(wire)


def test_unpack_on_a_class_refuses_another_kind() -> None:
    with pytest.raises(PayloadError):
        TaskTap.unpack("te|5|take")


def test_pack_checks_the_length_and_the_field_types() -> None:
    VisitChoice("t", "note", "x" * 1000).pack()
    with pytest.raises(PayloadError, match="limit 1024"):
        VisitChoice("t", "note", "x" * 1020).pack()
    with pytest.raises(PayloadError):
        TaskTap(-1, TaskOp.CLAIM).pack()
    with pytest.raises(PayloadError):
        TaskTap(1, "steal").pack()  # type: ignore[arg-type]


def test_optional_fields_pack_none_as_empty() -> None:
    @dataclass(frozen=True)
    class Probe(CallbackData, prefix="test.probe"):
        card_id: int | None
        note: str | None

    try:
        assert Probe(None, None).pack() == "test.probe||"
        assert unpack("test.probe|3|x") == Probe(3, "x")
        assert unpack("test.probe||") == Probe(None, None)
        with pytest.raises(PayloadError):
            unpack("test.probe|x|")
    finally:
        del CallbackData._by_prefix["test.probe"]


def test_a_prefix_is_taken_once() -> None:
    with pytest.raises(TypeError, match="taken"):

        @dataclass(frozen=True)
        class Again(CallbackData, prefix="tk"):
            card_id: int


# ---- department queues (issue 11): 上一页 / 下一页 and 打开 ----------------------------------------------------------

from cards.queue import QueueKind, QueueOpen, QueuePage  # noqa: E402

QUEUE_CASES: list[tuple[CallbackData, str]] = [
    (QueuePage(QueueKind.MINE, 0), "qp|mine|0"),
    (QueuePage(QueueKind.DEPARTMENT, 3), "qp|dept|3"),
    (QueuePage(QueueKind.ALL, 12), "qp|all|12"),
    (QueueOpen(12), "qo|12"),
]
# A new list (the parametrized wire-format test above keeps its own): the coverage test reads this one.
CASES = [*CASES, *QUEUE_CASES]


@pytest.mark.parametrize(("data", "wire"), QUEUE_CASES, ids=[w for _, w in QUEUE_CASES])
def test_queue_payloads_pack_and_unpack(data: CallbackData, wire: str) -> None:
    assert data.pack() == wire and unpack(wire) == data


@pytest.mark.parametrize("wire", ["qp|mine", "qp|everything|0", "qp|mine|-1", "qp|mine|x", "qo|", "qo|1|2"])
def test_a_forged_queue_payload_is_a_payload_error(wire: str) -> None:
    with pytest.raises(PayloadError):
        unpack(wire)


# ---- the digest's follow-up cards (issue 12): 已复盘 / 备注 ----------------------------------------------------------

from cards.followup import FollowupOp, FollowupTap  # noqa: E402

FOLLOWUP_CASES: list[tuple[CallbackData, str]] = [
    (FollowupTap(7, FollowupOp.REVIEWED), "fu|7|done"),
    (FollowupTap(7, FollowupOp.NOTE), "fu|7|note"),
]
CASES = [*CASES, *FOLLOWUP_CASES]


@pytest.mark.parametrize(("data", "wire"), FOLLOWUP_CASES, ids=[w for _, w in FOLLOWUP_CASES])
def test_followup_payloads_pack_and_unpack(data: CallbackData, wire: str) -> None:
    assert data.pack() == wire and unpack(wire) == data


@pytest.mark.parametrize("wire", ["fu|7", "fu|x|done", "fu|7|maybe"])
def test_a_forged_followup_payload_is_a_payload_error(wire: str) -> None:
    with pytest.raises(PayloadError):
        unpack(wire)
