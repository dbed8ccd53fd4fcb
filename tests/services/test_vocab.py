"""The shared vocabulary (issue 10 §5): states, statuses and roles defined once, their stored strings unchanged."""

from __future__ import annotations

from bot.imports import org as importer
from bot.infra import i18n
from bot.services import escalation, requests
from storage.models import SupportRequest, TaskCard
from storage.vocab import DEPARTMENT_ROLES, SUPERVISORS, TASK_CLOSED, RequestStatus, Role, TaskState


def test_stored_strings_are_unchanged() -> None:
    assert [s.value for s in TaskState] == ["open", "claimed", "need_info", "done", "rejected"]
    assert [s.value for s in RequestStatus] == ["open", "done", "rejected"]
    assert [r.value for r in Role] == ["rep", "manager", "director", "member", "head", "admin"]
    assert TaskCard.__table__.c.state.default.arg == "open"
    assert SupportRequest.__table__.c.status.default.arg == "open"


def test_every_user_takes_the_one_definition() -> None:
    assert requests.CLOSED is TASK_CLOSED and escalation.CLOSED is TASK_CLOSED
    assert (requests.OPEN, requests.NEED_INFO) == (TaskState.OPEN, TaskState.NEED_INFO)
    assert tuple(Role) == importer.ROLES and set(importer.DEPARTMENT_ROLES) == DEPARTMENT_ROLES
    assert {"director", "admin"} == SUPERVISORS and {"done", "rejected"} == TASK_CLOSED


def test_members_equal_their_strings_as_rows_read_back() -> None:
    assert TaskState.NEED_INFO == "need_info" and "done" in TASK_CLOSED and f"{TaskState.OPEN}" == "open"
    assert {"member"} & DEPARTMENT_ROLES == {"member"}


def test_every_state_and_status_has_its_words() -> None:
    for state in TaskState:
        for locale in (i18n.ZH, i18n.EN):
            assert i18n.t(locale, f"task.state.{state}") != f"task.state.{state}"
    for status in RequestStatus:
        assert i18n.t(i18n.EN, f"request.status.{status}") != f"request.status.{status}"
