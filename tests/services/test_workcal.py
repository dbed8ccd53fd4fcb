"""Working calendar: working hours, Chinese public holidays and 调休, config dates, fallback, quiet hours."""

from __future__ import annotations

import random
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from bot.calendar.workcal import (
    OfficialDay,
    OfficialDays,
    WorkCalendar,
    WorkCalendarConfig,
    add_hours,
    coverage_warning,
    get_calendar,
    holiday_data_years,
    official_days,
    special_days,
    with_official_days,
)
from bot.config import Settings

ROOT = Path(__file__).resolve().parents[2]
TZ = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
FAR_FUTURE = 2099  # no holiday library will have data this far ahead


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=TZ)


def cal(**kwargs: Any) -> WorkCalendar:
    return WorkCalendar(WorkCalendarConfig(**kwargs), TZ)


@pytest.fixture
def wc() -> WorkCalendar:
    return cal()


# ---- working days -------------------------------------------------------------------------------------------------

# The official 2025/2026 schedules (State Council notices), checked against the installed chinese-calendar.
HOLIDAYS_2026 = [
    *(date(2026, 1, d) for d in (1, 2, 3)),
    *(date(2026, 2, d) for d in range(15, 24)),
    *(date(2026, 4, d) for d in (4, 5, 6)),
    *(date(2026, 5, d) for d in range(1, 6)),
    *(date(2026, 6, d) for d in (19, 20, 21)),
    *(date(2026, 9, d) for d in (25, 26, 27)),
    *(date(2026, 10, d) for d in range(1, 8)),
]
MAKEUP_2026 = [
    date(2026, 1, 4),
    date(2026, 2, 14),
    date(2026, 2, 28),
    date(2026, 5, 9),
    date(2026, 9, 20),
    date(2026, 10, 10),
]
HOLIDAYS_2025_NATIONAL = [date(2025, 10, d) for d in range(1, 9)]
MAKEUP_2025_NATIONAL = [date(2025, 9, 28), date(2025, 10, 11)]


@pytest.mark.parametrize("day", HOLIDAYS_2026 + HOLIDAYS_2025_NATIONAL)
def test_public_holidays_are_closed(wc: WorkCalendar, day: date) -> None:
    assert not wc.is_working_day(day)


@pytest.mark.parametrize("day", MAKEUP_2026 + MAKEUP_2025_NATIONAL)
def test_makeup_weekend_days_are_open(wc: WorkCalendar, day: date) -> None:
    assert day.isoweekday() in (6, 7)
    assert wc.is_working_day(day)


def test_whole_2026_matches_the_official_list(wc: WorkCalendar) -> None:
    day, closed, opened = date(2026, 1, 1), set(HOLIDAYS_2026), set(MAKEUP_2026)
    while day.year == 2026:
        expected = day in opened or (day.isoweekday() <= 5 and day not in closed)
        assert wc.is_working_day(day) is expected, day
        day += timedelta(days=1)


def test_ordinary_weekdays_and_weekends(wc: WorkCalendar) -> None:
    assert wc.is_working_day(date(2026, 3, 13))  # Friday
    assert not wc.is_working_day(date(2026, 3, 14))  # Saturday
    assert not wc.is_working_day(date(2026, 3, 15))  # Sunday
    assert wc.is_working_day(datetime(2026, 3, 16, 10, tzinfo=TZ))  # a datetime is read as its date


def test_holidays_off_uses_plain_weekdays() -> None:
    c = cal(use_chinese_holidays=False)
    assert c.is_working_day(date(2026, 10, 1))  # Thursday, National Day
    assert not c.is_working_day(date(2026, 10, 10))  # Saturday, make-up day ignored


def test_custom_weekdays_still_honour_holidays() -> None:
    c = cal(weekdays=[1, 2, 3, 4, 5, 6])
    assert c.is_working_day(date(2026, 3, 14))  # an ordinary Saturday now works
    assert not c.is_working_day(date(2026, 10, 3))  # but National Day's Saturday is still off
    assert not c.is_working_day(date(2026, 3, 15))


# ---- the core deadlines -------------------------------------------------------------------------------------------


def test_friday_1700_plus_two_working_hours_is_monday_1000(wc: WorkCalendar) -> None:
    due = wc.add_working_hours(at(2026, 3, 13, 17), 2)
    assert due == at(2026, 3, 16, 10)
    assert due.tzinfo is UTC


def test_add_hours_with_real_settings_friday_to_monday() -> None:
    due = add_hours(Settings(), at(2026, 3, 13, 17), 2, calendar=False)
    assert due == at(2026, 3, 16, 10)
    assert due.tzinfo is UTC


def test_national_day_2026_pauses_until_after_the_holiday(wc: WorkCalendar) -> None:
    # Wednesday 30 Sep 17:00: one hour that day, the rest on Thursday 8 Oct.
    assert wc.add_working_hours(at(2026, 9, 30, 17), 2) == at(2026, 10, 8, 10)


def test_national_day_2026_makeup_saturday_counts(wc: WorkCalendar) -> None:
    # Friday 9 Oct 17:00 + 2h continues on the make-up Saturday 10 Oct, not Monday.
    assert wc.add_working_hours(at(2026, 10, 9, 17), 2) == at(2026, 10, 10, 10)
    # A card created on the make-up Saturday itself counts from its working hours.
    assert wc.add_working_hours(at(2026, 10, 10, 9, 30), 1) == at(2026, 10, 10, 10, 30)
    assert wc.working_hours_between(at(2026, 10, 10, 9), at(2026, 10, 10, 18)) == 8


def test_national_day_2025_and_its_makeup_days(wc: WorkCalendar) -> None:
    assert wc.add_working_hours(at(2025, 9, 30, 17), 2) == at(2025, 10, 9, 10)  # 10/1–10/8 off
    assert wc.add_working_hours(at(2025, 9, 27, 10), 1) == at(2025, 9, 28, 10)  # Sat → make-up Sunday 9/28
    assert wc.add_working_hours(at(2025, 10, 10, 17, 30), 1) == at(2025, 10, 11, 9, 30)  # make-up Saturday


def test_spring_festival_2026_makeup_days(wc: WorkCalendar) -> None:
    assert wc.add_working_hours(at(2026, 2, 13, 17), 2) == at(2026, 2, 14, 10)  # Sat 2/14 is a working day
    assert wc.add_working_hours(at(2026, 2, 14, 17), 2) == at(2026, 2, 24, 10)  # 2/15–2/23 off


def test_new_year_2026_makeup_sunday(wc: WorkCalendar) -> None:
    assert wc.add_working_hours(at(2025, 12, 31, 17), 2) == at(2026, 1, 4, 10)  # 1/1–1/3 off, Sun 1/4 works


# ---- lunch, fractions, odd starts ---------------------------------------------------------------------------------


def test_lunch_break_pauses_the_clock(wc: WorkCalendar) -> None:
    assert wc.add_working_hours(at(2026, 3, 16, 11, 30), 1) == at(2026, 3, 16, 13, 30)
    assert wc.add_working_hours(at(2026, 3, 16, 12, 30), 0.5) == at(2026, 3, 16, 13, 30)  # starts in lunch
    assert wc.add_working_hours(at(2026, 3, 16, 11), 1) == at(2026, 3, 16, 12)  # ends right at lunch
    assert wc.add_working_hours(at(2026, 3, 16, 9), 8) == at(2026, 3, 16, 18)  # a full day is 8h
    assert wc.working_hours_between(at(2026, 3, 16, 0), at(2026, 3, 17, 0)) == 8


def test_without_lunch_break() -> None:
    c = cal(lunch_start=None, lunch_end=None)
    assert c.add_working_hours(at(2026, 3, 16, 11, 30), 1) == at(2026, 3, 16, 12, 30)
    assert c.working_hours_between(at(2026, 3, 16, 0), at(2026, 3, 17, 0)) == 9


def test_fractional_hours(wc: WorkCalendar) -> None:
    assert wc.add_working_hours(at(2026, 3, 16, 9), 0.25) == at(2026, 3, 16, 9, 15)
    assert wc.add_working_hours(at(2026, 3, 13, 17), 1.5) == at(2026, 3, 16, 9, 30)
    assert wc.add_working_hours(at(2026, 3, 16, 9), 2.75) == at(2026, 3, 16, 11, 45)
    assert wc.add_working_hours(at(2026, 3, 16, 11, 50), 1 / 3) == at(2026, 3, 16, 13, 10)


def test_exact_end_of_day_stays_at_1800(wc: WorkCalendar) -> None:
    assert wc.add_working_hours(at(2026, 3, 13, 16), 2) == at(2026, 3, 13, 18)


@pytest.mark.parametrize(
    ("start", "expected_begin"),
    [
        (at(2026, 3, 12, 20), at(2026, 3, 13, 9)),  # Thursday evening
        (at(2026, 3, 16, 7), at(2026, 3, 16, 9)),  # early morning
        (at(2026, 3, 16, 18), at(2026, 3, 17, 9)),  # 18:00 sharp is already closed
        (at(2026, 3, 14, 11), at(2026, 3, 16, 9)),  # Saturday
        (at(2026, 3, 15, 23, 59), at(2026, 3, 16, 9)),  # Sunday night
        (at(2026, 10, 3, 10), at(2026, 10, 8, 9)),  # National Day holiday
        (at(2026, 5, 1, 9), at(2026, 5, 6, 9)),  # Labour Day holiday
        (at(2026, 3, 16, 12, 15), at(2026, 3, 16, 13)),  # lunch
    ],
)
def test_start_outside_working_hours_counts_from_next_start(
    wc: WorkCalendar, start: datetime, expected_begin: datetime
) -> None:
    assert wc.next_working_start(start) == expected_begin
    assert wc.add_working_hours(start, 1) == expected_begin + timedelta(hours=1)
    assert wc.add_working_hours(start, 0) == expected_begin


def test_next_working_start_inside_hours_is_the_instant_itself(wc: WorkCalendar) -> None:
    got = wc.next_working_start(at(2026, 3, 16, 10, 17))
    assert got == at(2026, 3, 16, 10, 17)
    assert got.tzinfo is UTC


def test_a_start_in_another_zone_is_read_in_the_org_zone(wc: WorkCalendar) -> None:
    # 01:00 UTC on Monday is 09:00 in Shanghai.
    assert wc.add_working_hours(datetime(2026, 3, 16, 1, tzinfo=UTC), 1) == at(2026, 3, 16, 10)


# ---- calendar-hour mode and the settings entry point -------------------------------------------------------------


def test_calendar_hours_ignore_the_working_calendar() -> None:
    due = add_hours(Settings(), at(2026, 3, 13, 17), 2, calendar=True)
    assert due == at(2026, 3, 13, 19)
    assert due.tzinfo is UTC
    assert add_hours(Settings(), at(2026, 9, 30, 17), 48, calendar=True) == at(2026, 10, 2, 17)


def test_calendar_hours_are_elapsed_time_across_dst() -> None:
    settings = cast(Any, SimpleNamespace(org=SimpleNamespace(tz=BERLIN)))
    start = datetime(2026, 3, 28, 12, tzinfo=BERLIN)  # the night after has only 23 hours
    assert add_hours(settings, start, 24, calendar=True) == datetime(2026, 3, 29, 13, tzinfo=BERLIN)


def test_add_hours_reads_settings_calendar() -> None:
    settings = cast(
        Any, SimpleNamespace(org=SimpleNamespace(tz=TZ), calendar=WorkCalendarConfig(extra_open=[date(2026, 3, 14)]))
    )
    assert add_hours(settings, at(2026, 3, 13, 17), 2, calendar=False) == at(2026, 3, 14, 10)


def test_add_hours_refuses_naive_start() -> None:
    with pytest.raises(ValueError, match="aware"):
        add_hours(Settings(), datetime(2026, 3, 13, 17), 2, calendar=False)


def test_calendar_is_cached_per_config() -> None:
    assert get_calendar(WorkCalendarConfig(), TZ) is get_calendar(WorkCalendarConfig(), TZ)
    assert get_calendar(WorkCalendarConfig(), TZ) is not get_calendar(WorkCalendarConfig(work_end="17:00"), TZ)
    assert get_calendar(WorkCalendarConfig(), TZ) is not get_calendar(WorkCalendarConfig(), BERLIN)


# ---- config dates -------------------------------------------------------------------------------------------------


def test_extra_closed_date() -> None:
    c = cal(extra_closed=[date(2026, 3, 16)])  # company outing on Monday
    assert not c.is_working_day(date(2026, 3, 16))
    assert c.add_working_hours(at(2026, 3, 13, 17), 2) == at(2026, 3, 17, 10)


def test_extra_open_date_on_weekend_and_holiday() -> None:
    c = cal(extra_open=[date(2026, 3, 14), date(2026, 10, 1)])
    assert c.add_working_hours(at(2026, 3, 13, 17), 2) == at(2026, 3, 14, 10)
    assert c.add_working_hours(at(2026, 9, 30, 17), 2) == at(2026, 10, 1, 10)
    assert not c.is_working_day(date(2026, 10, 2))


def test_extra_closed_beats_a_makeup_day() -> None:
    c = cal(extra_closed=[date(2026, 10, 10)])
    assert c.add_working_hours(at(2026, 10, 9, 17), 2) == at(2026, 10, 12, 10)


def test_config_dates_parse_from_strings() -> None:
    cfg = WorkCalendarConfig.model_validate({"extra_closed": ["2026-03-16"], "extra_open": ["2026-03-14"]})
    assert cfg.extra_closed == [date(2026, 3, 16)]
    assert cfg.extra_open == [date(2026, 3, 14)]


# ---- years outside the holiday data -------------------------------------------------------------------------------


def test_year_outside_the_data_falls_back_to_weekdays() -> None:
    c = cal()
    span = holiday_data_years()
    assert span is not None and span[1] < FAR_FUTURE
    new_year = date(FAR_FUTURE, 1, 1)
    assert new_year.isoweekday() == 4
    assert c.is_working_day(new_year)  # no holiday data: a Thursday is a Thursday
    assert not c.is_working_day(date(FAR_FUTURE, 1, 3))  # Saturday
    friday = datetime(FAR_FUTURE, 1, 2, 17, tzinfo=TZ)
    assert c.add_working_hours(friday, 2) == datetime(FAR_FUTURE, 1, 5, 10, tzinfo=TZ)


def test_year_outside_the_data_still_honours_config_dates() -> None:
    c = cal(extra_closed=[date(FAR_FUTURE, 1, 1)], extra_open=[date(FAR_FUTURE, 1, 3)])
    assert not c.is_working_day(date(FAR_FUTURE, 1, 1))
    assert c.is_working_day(date(FAR_FUTURE, 1, 3))


def test_deadline_running_off_the_end_of_the_data_does_not_crash() -> None:
    span = holiday_data_years()
    assert span is not None
    last = span[1]
    start = datetime(last, 12, 30, 10, tzinfo=TZ)
    due = cal().add_working_hours(start, 8 * 15)
    assert due.year == last + 1


def test_coverage_warning_for_a_year_outside_the_data() -> None:
    msg = coverage_warning(WorkCalendarConfig(), date(FAR_FUTURE, 5, 1))
    assert msg is not None
    assert str(FAR_FUTURE) in msg and str(FAR_FUTURE + 1) in msg
    assert "not covered" in msg
    assert "chinese-calendar" in msg


def test_coverage_warning_looks_one_year_ahead() -> None:
    span = holiday_data_years()
    assert span is not None
    first, last = span
    assert first <= 2025 and last >= 2026  # the installed package must know the 2025/2026 schedules
    msg = coverage_warning(WorkCalendarConfig(), date(last, 11, 1))
    assert msg is not None
    assert f"{last + 1} is not covered" in msg
    assert coverage_warning(WorkCalendarConfig(), date(last - 1, 11, 1)) is None
    assert coverage_warning(WorkCalendarConfig(), date(2025, 6, 1)) is None


def test_no_coverage_warning_when_holidays_are_off() -> None:
    assert coverage_warning(WorkCalendarConfig(use_chinese_holidays=False), date(FAR_FUTURE, 1, 1)) is None


def test_missing_package_falls_back_and_warns() -> None:
    # A fresh interpreter in which the package cannot be imported, as on a machine without it.
    script = (
        "import sys; sys.modules['chinese_calendar'] = None\n"
        "from datetime import date\n"
        "from bot.calendar.workcal import WorkCalendar, WorkCalendarConfig, coverage_warning, holiday_data_years\n"
        "from zoneinfo import ZoneInfo\n"
        "c = WorkCalendar(WorkCalendarConfig(), ZoneInfo('Asia/Shanghai'))\n"
        "print(c.is_working_day(date(2026, 10, 1)), holiday_data_years())\n"
        "print(coverage_warning(WorkCalendarConfig(), date(2026, 1, 1)))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    first, warning = out.stdout.splitlines()
    assert first == "True None"  # no data: National Day is just a Thursday
    assert "not installed" in warning


# ---- inverse property ---------------------------------------------------------------------------------------------


def _random_instants(n: int, seed: int) -> list[datetime]:
    rng = random.Random(seed)
    base = at(2025, 1, 1)
    span = int((at(2026, 12, 20) - base).total_seconds())
    return [base + timedelta(seconds=rng.randrange(span)) for _ in range(n)]


def test_working_hours_between_inverts_add_working_hours(wc: WorkCalendar) -> None:
    rng = random.Random(20260101)
    for start in _random_instants(400, seed=7):
        hours = rng.choice([0.0, 0.5, 1.0, 2.0, 8.0, 24.0, 40.0]) + round(rng.random() * 10, 3)
        due = wc.add_working_hours(start, hours)
        assert due >= start
        assert wc.working_hours_between(start, due) == pytest.approx(hours, abs=1e-6), (start, hours)
        assert wc.next_working_start(due) == due or due.astimezone(TZ).time().hour in (12, 18), due


def test_add_working_hours_inverts_working_hours_between(wc: WorkCalendar) -> None:
    for a, b in zip(_random_instants(300, seed=1), _random_instants(300, seed=2), strict=True):
        lo, hi = min(a, b), max(a, b)
        target = wc.next_working_start(hi)  # a working instant, so the inverse lands exactly on it
        if target.year > 2026:
            continue
        h = wc.working_hours_between(lo, target)
        due = wc.add_working_hours(lo, h)
        # A target at the start of a period is reached at the end of the previous one (18:00 or 12:00 sharp):
        # the same amount of working time, and no working time lies between the two.
        assert wc.next_working_start(due) == target, (lo, target)
        assert wc.working_hours_between(due, target) == 0
        inside = target + timedelta(minutes=1)
        if wc.next_working_start(inside) == inside:  # still within the same working period
            assert wc.add_working_hours(lo, wc.working_hours_between(lo, inside)) == inside
        assert wc.working_hours_between(target, lo) == -h


def test_working_hours_between_counts_a_week(wc: WorkCalendar) -> None:
    assert wc.working_hours_between(at(2026, 3, 16), at(2026, 3, 23)) == 40
    # 9/28–9/30, then 10/1–10/7 off, then 10/8, 10/9 and the make-up Saturday 10/10; Sunday 10/11 is off.
    assert wc.working_hours_between(at(2026, 9, 28), at(2026, 10, 12)) == 8 * 6
    assert wc.working_hours_between(at(2026, 10, 12), at(2026, 9, 28)) == -8 * 6


# ---- other zones --------------------------------------------------------------------------------------------------


def test_other_zone_across_dst_change() -> None:
    c = WorkCalendar(WorkCalendarConfig(use_chinese_holidays=False), BERLIN)
    friday = datetime(2026, 3, 27, 17, tzinfo=BERLIN)  # CET, UTC+1; Monday is CEST, UTC+2
    due = c.add_working_hours(friday, 2)
    assert due == datetime(2026, 3, 30, 8, tzinfo=UTC)
    assert due.astimezone(BERLIN).hour == 10


# ---- quiet hours --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hour", "minute", "quiet"),
    [(20, 59, False), (21, 0, True), (23, 30, True), (0, 0, True), (7, 59, True), (8, 0, False), (12, 0, False)],
)
def test_quiet_hours_wrap_midnight(wc: WorkCalendar, hour: int, minute: int, quiet: bool) -> None:
    assert wc.in_quiet_hours(at(2026, 3, 16, hour, minute)) is quiet


def test_next_non_quiet(wc: WorkCalendar) -> None:
    assert wc.next_non_quiet(at(2026, 3, 16, 22)) == at(2026, 3, 17, 8)
    assert wc.next_non_quiet(at(2026, 3, 17, 2)) == at(2026, 3, 17, 8)
    noon = wc.next_non_quiet(at(2026, 3, 17, 12))
    assert noon == at(2026, 3, 17, 12)
    assert noon.tzinfo is UTC


def test_quiet_hours_without_wrap() -> None:
    c = cal(quiet_start="12:00", quiet_end="14:00")
    assert c.in_quiet_hours(at(2026, 3, 16, 13))
    assert not c.in_quiet_hours(at(2026, 3, 16, 22))
    assert c.next_non_quiet(at(2026, 3, 16, 13)) == at(2026, 3, 16, 14)


# ---- validation and guards ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"work_start": "9:00"}, "HH:MM"),
        ({"work_end": "24:00"}, "HH:MM"),
        ({"quiet_start": "21h"}, "HH:MM"),
        ({"work_start": "18:00", "work_end": "09:00"}, "earlier than work_end"),
        ({"work_start": "09:00", "work_end": "09:00"}, "earlier than work_end"),
        ({"lunch_start": "12:00", "lunch_end": None}, "both lunch_start and lunch_end"),
        ({"lunch_start": "13:00", "lunch_end": "12:00"}, "earlier than lunch_end"),
        ({"lunch_start": "08:00", "lunch_end": "09:30"}, "inside working hours"),
        ({"lunch_start": "17:30", "lunch_end": "19:00"}, "inside working hours"),
        ({"weekdays": []}, "at least one"),
        ({"weekdays": [0, 1]}, "1 \\(Monday\\) to 7"),
        ({"weekdays": [1, 8]}, "1 \\(Monday\\) to 7"),
        ({"extra_closed": [date(2026, 3, 16)], "extra_open": [date(2026, 3, 16)]}, "both extra_closed and extra_open"),
        ({"quiet_start": "08:00", "quiet_end": "08:00"}, "must differ"),
        ({"holidays": True}, "Extra inputs are not permitted"),
    ],
)
def test_config_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        WorkCalendarConfig(**kwargs)


def test_weekdays_are_normalised() -> None:
    assert WorkCalendarConfig(weekdays=[5, 1, 1, 3]).weekdays == [1, 3, 5]


def test_calendar_without_working_days_raises_instead_of_looping() -> None:
    broken = WorkCalendarConfig.model_construct(weekdays=[], use_chinese_holidays=False)
    c = WorkCalendar(broken, TZ)
    with pytest.raises(ValueError, match="no working day"):
        c.add_working_hours(at(2026, 3, 16, 10), 1)
    with pytest.raises(ValueError, match="no working day"):
        c.next_working_start(at(2026, 3, 16, 10))


@pytest.mark.parametrize("hours", [-1.0, float("nan"), float("inf"), 1e9])
def test_bad_hours_are_refused(wc: WorkCalendar, hours: float) -> None:
    with pytest.raises(ValueError, match="hours must be"):
        wc.add_working_hours(at(2026, 3, 16, 10), hours)


def test_naive_datetimes_are_refused(wc: WorkCalendar) -> None:
    with pytest.raises(ValueError, match="aware"):
        wc.add_working_hours(datetime(2026, 3, 16, 10), 1)
    with pytest.raises(ValueError, match="aware"):
        wc.working_hours_between(datetime(2026, 3, 16, 10), at(2026, 3, 16, 11))
    with pytest.raises(ValueError, match="aware"):
        wc.in_quiet_hours(datetime(2026, 3, 16, 10))


# ---- imported official days (salesbot calendar import) ------------------------------------------------------------


def official(*days: tuple[date, bool], year: int | None = None) -> OfficialDays:
    return OfficialDays(OfficialDay(d, closed, year or d.year, "春节", "test") for d, closed in days)


# A made-up 2027 arrangement (the package has no 2027 data): Friday 2027-02-05 off, Saturday 2027-02-20 at work.
FRI_OFF, SAT_ON = date(2027, 2, 5), date(2027, 2, 20)
IMPORTED_2027 = official((FRI_OFF, True), (SAT_ON, False))


def test_imported_days_decide_a_year_the_package_does_not_know() -> None:
    assert cal().is_working_day(FRI_OFF) and not cal().is_working_day(SAT_ON)
    c = get_calendar(with_official_days(WorkCalendarConfig(), IMPORTED_2027), TZ)
    assert not c.is_working_day(FRI_OFF)
    assert c.is_working_day(SAT_ON)
    assert c.is_working_day(date(2027, 2, 4)) and not c.is_working_day(date(2027, 2, 6))  # ordinary days
    # Thursday 17:00 + 2 working hours: Friday is off → Monday 10:00.
    assert c.add_working_hours(at(2027, 2, 4, 17), 2) == at(2027, 2, 8, 10)
    assert c.add_working_hours(at(2027, 2, 19, 17), 2) == at(2027, 2, 20, 10)


def test_an_imported_year_replaces_the_package_data_for_that_year() -> None:
    # 2026-10-01 is National Day in the package; a 2026 import that does not list it makes it a plain Thursday.
    c = WorkCalendar(with_official_days(WorkCalendarConfig(), official((date(2026, 10, 2), True))), TZ)
    assert c.is_working_day(date(2026, 10, 1))
    assert not c.is_working_day(date(2026, 10, 2))
    assert not c.is_working_day(date(2026, 10, 10))  # the package's make-up Saturday is gone too
    assert not c.is_working_day(date(2025, 10, 1))  # other years still use the package


def test_a_new_year_day_in_december_belongs_to_the_next_years_arrangement() -> None:
    days = official((date(2026, 12, 31), True), year=2027)
    c = WorkCalendar(with_official_days(WorkCalendarConfig(), days), TZ)
    assert not c.is_working_day(date(2026, 12, 31))
    assert not c.is_working_day(date(2026, 10, 1))  # 2026 itself is still the package's
    assert days.covers(2027) and not days.covers(2026)


def test_config_dates_win_over_imported_days() -> None:
    cfg = WorkCalendarConfig(extra_open=[FRI_OFF], extra_closed=[SAT_ON])
    c = get_calendar(with_official_days(cfg, IMPORTED_2027), TZ)
    assert c.is_working_day(FRI_OFF) and not c.is_working_day(SAT_ON)


def test_imported_days_are_off_with_the_holidays() -> None:
    c = get_calendar(with_official_days(WorkCalendarConfig(use_chinese_holidays=False), IMPORTED_2027), TZ)
    assert c.is_working_day(FRI_OFF) and not c.is_working_day(SAT_ON)


def test_add_hours_uses_the_days_attached_to_settings() -> None:
    settings = Settings()
    settings = settings.model_copy(update={"calendar": with_official_days(settings.calendar, IMPORTED_2027)})
    assert add_hours(settings, at(2027, 2, 4, 17), 2, calendar=False) == at(2027, 2, 8, 10)
    assert official_days(settings.calendar) is IMPORTED_2027


def test_calendar_cache_tells_imported_tables_apart() -> None:
    plain = get_calendar(WorkCalendarConfig(), TZ)
    with_days = get_calendar(with_official_days(WorkCalendarConfig(), IMPORTED_2027), TZ)
    again = get_calendar(with_official_days(WorkCalendarConfig(), official((FRI_OFF, True), (SAT_ON, False))), TZ)
    assert plain is not with_days
    assert with_days is again  # equal tables share one calendar


def test_coverage_warning_counts_imported_years() -> None:
    span = holiday_data_years()
    assert span is not None
    last = span[1]
    nxt = official((date(last + 1, 1, 1), True))
    assert coverage_warning(WorkCalendarConfig(), date(last, 12, 2)) is not None
    assert coverage_warning(with_official_days(WorkCalendarConfig(), nxt), date(last, 12, 2)) is None
    msg = coverage_warning(with_official_days(WorkCalendarConfig(), nxt), date(last + 1, 6, 1))
    assert msg is not None and f"{last + 2} is not covered" in msg and f"imported: {last + 1}" in msg
    assert "salesbot calendar import" in msg


def test_special_days_say_where_each_day_comes_from() -> None:
    cfg = with_official_days(WorkCalendarConfig(extra_closed=[date(2027, 12, 31)]), IMPORTED_2027)
    rules = special_days(cfg, 2027)
    assert [(r.day, r.closed, r.source) for r in rules] == [
        (FRI_OFF, True, "imported"),
        (SAT_ON, False, "imported"),
        (date(2027, 12, 31), True, "config"),
    ]
    package = special_days(WorkCalendarConfig(), 2026)
    assert {r.source for r in package} == {"chinese-calendar"}
    assert len([r for r in package if r.closed]) == 33 and len([r for r in package if not r.closed]) == 6
    assert next(r.name for r in package if r.day == date(2026, 10, 1)) == "国庆节"
