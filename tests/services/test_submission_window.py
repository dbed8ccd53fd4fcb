"""The monthly submission window (`[visits] submission_cutoff_day`, issue 15): the cut-off instant in the org's
time zone, next to the backdate limit, corrections and the admin's unlock. Injected clock: every ``now`` is given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.config import VisitsConfig
from bot.services import visits as svc
from bot.services.visits import VisitError
from storage.models import User, Visit

SH = ZoneInfo("Asia/Shanghai")
# Backdating is not what is tested here: allow two months of it so the window is the rule that bites.
CFG = VisitsConfig(backdate_days=60, correction_window_hours=24 * 30)
REP = User(id="rep01", name="王小明")


def at(y: int, m: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, s, tzinfo=SH)


def visit(visited: datetime, created: datetime, *, unlocked_until: datetime | None = None) -> Visit:
    return Visit(
        id=12,
        rep_id=REP.id,
        source_channel="console",
        visited_at=visited,
        created_at=created,
        unlocked_until=unlocked_until,
    )


def refusal(exc: pytest.ExceptionInfo[VisitError]) -> tuple[str, dict[str, object]]:
    return exc.value.key, dict(exc.value.params)


@pytest.mark.parametrize(
    ("visited", "closes"),
    [
        (at(2026, 11, 30, 15), at(2026, 12, 11)),
        (at(2026, 11, 1), at(2026, 12, 11)),
        (at(2026, 12, 31, 23, 59), at(2027, 1, 11)),  # December → 10 January
        (at(2027, 1, 1), at(2027, 2, 11)),
        (at(2027, 1, 31), at(2027, 2, 11)),  # any day of the month, the same cut-off
    ],
)
def test_deadline_is_the_end_of_the_cutoff_day_of_the_next_month(visited: datetime, closes: datetime) -> None:
    assert svc.submission_deadline(visited, 10, SH) == closes


def test_month_is_the_org_time_zone_s() -> None:
    # 2026-11-30 17:00 UTC is already 1 December in Shanghai: a December visit, open until 10 January.
    assert svc.submission_deadline(datetime(2026, 11, 30, 17, 0, tzinfo=UTC), 10, SH) == at(2027, 1, 11)


def test_window_off() -> None:
    assert svc.submission_deadline(at(2026, 1, 5), 0, SH) is None
    svc.check_window(at(2026, 1, 5), at(2026, 12, 1), VisitsConfig(submission_cutoff_day=0), SH)


def test_create_until_the_cutoff_instant_then_refused() -> None:
    november = at(2026, 11, 30, 15)
    svc.check_window(november, at(2026, 12, 10, 23, 59, 59), CFG, SH)  # the last second of 10 December
    for now in (at(2026, 12, 11), at(2026, 12, 11, 0, 0, 1)):  # the cut-off instant, one second after
        with pytest.raises(VisitError) as exc:
            svc.check_window(november, now, CFG, SH)
        assert refusal(exc) == ("visit.window_closed", {"month": 11, "cutoff": "12-10"})


def test_december_until_10_january() -> None:
    december = at(2026, 12, 31, 18)
    svc.check_window(december, at(2027, 1, 10, 23, 59, 59), CFG, SH)
    with pytest.raises(VisitError) as exc:
        svc.check_window(december, at(2027, 1, 11), CFG, SH)
    assert refusal(exc) == ("visit.window_closed", {"month": 12, "cutoff": "01-10"})


def test_backdate_and_window_both_apply_the_stricter_wins() -> None:
    strict = VisitsConfig(backdate_days=3)  # backdate stricter: 11-30 on 12-05 is 5 days old, window still open
    with pytest.raises(VisitError) as exc:
        svc.check_time(at(2026, 11, 30, 15), at(2026, 12, 5, 10), strict, SH)
    assert exc.value.key == "visit.too_old"
    svc.check_window(at(2026, 11, 30, 15), at(2026, 12, 5, 10), strict, SH)
    loose = VisitsConfig(backdate_days=30)  # window stricter: within 30 days but after 12-10
    svc.check_time(at(2026, 11, 30, 15), at(2026, 12, 11, 10), loose, SH)
    with pytest.raises(VisitError):
        svc.check_window(at(2026, 11, 30, 15), at(2026, 12, 11, 10), loose, SH)


def test_correction_until_the_cutoff_then_refused_naming_it() -> None:
    v = visit(at(2026, 11, 30, 15), created=at(2026, 11, 30, 16))
    svc.may_correct(v, REP, at(2026, 12, 10, 23, 59, 59), CFG, SH)
    for now in (at(2026, 12, 11), at(2026, 12, 11, 0, 0, 1)):
        with pytest.raises(VisitError) as exc:
            svc.may_correct(v, REP, now, CFG, SH)
        assert refusal(exc) == ("visit.window_closed_edit", {"month": 11, "cutoff": "12-10", "no": "V12"})


def test_inside_the_correction_window_but_past_the_cutoff_is_refused() -> None:
    cfg = VisitsConfig(backdate_days=60, correction_window_hours=24)
    v = visit(at(2026, 11, 30, 15), created=at(2026, 12, 10, 23, 0))  # created an hour before the cut-off
    with pytest.raises(VisitError) as exc:
        svc.may_correct(v, REP, at(2026, 12, 11, 0, 30), cfg, SH)
    assert exc.value.key == "visit.window_closed_edit"


def test_an_unlock_reopens_a_visit_past_the_cutoff() -> None:
    now = at(2026, 12, 20, 9)
    v = visit(at(2026, 11, 30, 15), created=at(2026, 11, 30, 16), unlocked_until=now + timedelta(hours=24))
    svc.may_correct(v, REP, now, CFG, SH)
    svc.may_correct(v, REP, now + timedelta(hours=24), CFG, SH)  # the unlock's last instant
    with pytest.raises(VisitError) as exc:  # the unlock has run out: closed again
        svc.may_correct(v, REP, now + timedelta(hours=24, seconds=1), CFG, SH)
    assert exc.value.key == "visit.window_closed_edit"


def test_the_correction_window_still_refuses_first() -> None:
    cfg = VisitsConfig(backdate_days=60, correction_window_hours=24)
    v = visit(at(2026, 11, 10, 15), created=at(2026, 11, 10, 16))
    with pytest.raises(VisitError) as exc:
        svc.may_correct(v, REP, at(2026, 12, 20), cfg, SH)
    assert exc.value.key == "visit.locked"
