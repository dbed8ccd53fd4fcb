"""Working calendar for SLA and escalation deadlines.

A deadline "in working hours" only runs while the organisation is at work: on working days, between
``work_start`` and ``work_end`` in the org time zone, minus the optional lunch break. Outside those hours it pauses.

Which days are working days, highest priority first:

1. ``extra_open`` dates from the config are open, ``extra_closed`` dates are closed;
2. when ``use_chinese_holidays`` is on and the ``chinese-calendar`` package has data for the year, its public
   holidays (法定节假日) are closed and its make-up working days (调休上班) are open;
3. otherwise the configured ISO ``weekdays`` (Mon–Fri by default) are open.

The holiday data of any library ends at some year. For a year outside it (or when the package is missing) the
calendar quietly falls back to rule 3 plus the configured dates, never raising; :func:`coverage_warning` tells an
operator ahead of time so ``config check`` and ``/healthz`` can say so.

Every instant returned by this module is an aware UTC :class:`~datetime.datetime`; every instant taken must be aware.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING, Self
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

try:  # the package is optional at import time: without it the calendar falls back to weekdays
    import chinese_calendar as _cc
except ImportError:  # pragma: no cover - exercised only where the package is not installed
    _cc = None

if TYPE_CHECKING:
    from bot.config import Settings

__all__ = [
    "MAX_HOURS",
    "SEARCH_DAYS",
    "WorkCalendar",
    "WorkCalendarConfig",
    "add_hours",
    "coverage_warning",
    "get_calendar",
    "holiday_data_years",
]

# A calendar with no working day in this many consecutive days is treated as broken instead of looping forever.
SEARCH_DAYS = 2 * 366
# Deadlines longer than this many hours (about ten years of office time) are refused as a configuration mistake.
MAX_HOURS = 25_000.0

_HHMM = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$")
DEFAULT_TZ = ZoneInfo("Asia/Shanghai")


def _parse_hhmm(value: str) -> time:
    hour, minute = value.split(":")
    return time(int(hour), int(minute))


class WorkCalendarConfig(BaseModel):
    """The ``[calendar]`` config section: working hours, working days, holidays and quiet hours.

    Times are ``HH:MM`` wall-clock times in the org time zone; ``weekdays`` are ISO numbers (1 = Monday … 7 = Sunday).
    Quiet hours (for non-urgent notifications) apply every day and may wrap midnight (21:00–08:00 by default).
    """

    model_config = ConfigDict(extra="forbid")

    work_start: str = "09:00"
    work_end: str = "18:00"
    lunch_start: str | None = "12:00"
    lunch_end: str | None = "13:00"
    weekdays: list[int] = [1, 2, 3, 4, 5]
    use_chinese_holidays: bool = True
    extra_closed: list[date] = []
    extra_open: list[date] = []
    quiet_start: str = "21:00"
    quiet_end: str = "08:00"

    @field_validator("work_start", "work_end", "lunch_start", "lunch_end", "quiet_start", "quiet_end")
    @classmethod
    def _hhmm(cls, v: str | None) -> str | None:
        if v is not None and not _HHMM.match(v):
            raise ValueError(f"must be a 24-hour time written HH:MM, e.g. 09:00 (got {v!r})")
        return v

    @field_validator("weekdays")
    @classmethod
    def _iso_weekdays(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("must list at least one ISO weekday (1 = Monday … 7 = Sunday)")
        bad = [d for d in v if not 1 <= d <= 7]
        if bad:
            raise ValueError(f"ISO weekdays are 1 (Monday) to 7 (Sunday); got {bad}")
        return sorted(set(v))

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        start, end = _parse_hhmm(self.work_start), _parse_hhmm(self.work_end)
        if start >= end:
            raise ValueError(f"work_start ({self.work_start}) must be earlier than work_end ({self.work_end})")
        if (self.lunch_start is None) != (self.lunch_end is None):
            raise ValueError("set both lunch_start and lunch_end, or neither (no lunch break)")
        if self.lunch_start is not None and self.lunch_end is not None:
            ls, le = _parse_hhmm(self.lunch_start), _parse_hhmm(self.lunch_end)
            if ls >= le:
                raise ValueError(f"lunch_start ({self.lunch_start}) must be earlier than lunch_end ({self.lunch_end})")
            if not (start < ls and le < end):
                raise ValueError(
                    f"the lunch break {self.lunch_start}–{self.lunch_end} must lie strictly inside working hours "
                    f"{self.work_start}–{self.work_end}"
                )
        if self.quiet_start == self.quiet_end:
            raise ValueError(f"quiet_start and quiet_end must differ (both are {self.quiet_start})")
        both = sorted(set(self.extra_closed) & set(self.extra_open))
        if both:
            listed = ", ".join(d.isoformat() for d in both)
            raise ValueError(f"a date cannot be in both extra_closed and extra_open: {listed}")
        return self


# ---- holiday data -------------------------------------------------------------------------------------------------


def _library_version() -> str | None:
    return None if _cc is None else str(getattr(_cc, "__version__", "unknown version"))


@functools.lru_cache(maxsize=256)
def _library_covers(year: int) -> bool:
    """Whether chinese-calendar has holiday data for ``year`` (it raises NotImplementedError outside its data)."""
    if _cc is None or not 1 <= year <= 9999:
        return False
    try:
        _cc.get_holiday_detail(date(year, 6, 30))
    except NotImplementedError:
        return False
    return True


def holiday_data_years() -> tuple[int, int] | None:
    """First and last year of the installed chinese-calendar data, or None when the package is missing or empty."""
    if _cc is None:
        return None
    days = list(getattr(_cc, "holidays", {}) or {})
    if days:
        return min(days).year, max(days).year
    return None  # pragma: no cover - an unexpected package layout


def _official(day: date) -> bool | None:
    """True for an official make-up working day, False for a public holiday, None for an ordinary day or no data."""
    if not _library_covers(day.year):
        return None
    try:
        on_holiday, name = _cc.get_holiday_detail(day)
    except NotImplementedError:  # pragma: no cover - guarded by _library_covers
        return None
    if name is None:
        return None  # an ordinary weekday or weekend: the configured weekdays decide
    return not on_holiday


def coverage_warning(cfg: WorkCalendarConfig, today: date) -> str | None:
    """An English warning when the holiday data does not cover ``today``'s year or the next one, else None.

    Nothing to warn about when ``use_chinese_holidays`` is off: the calendar then never uses the data.
    """
    if not cfg.use_chinese_holidays:
        return None
    days = ", ".join(str(d) for d in cfg.weekdays)
    fallback = (
        f"working-hour deadlines then count ISO weekdays {days} plus calendar.extra_closed/extra_open only, "
        "without public holidays or make-up working days"
    )
    if _cc is None:
        return (
            "calendar.use_chinese_holidays is on but the chinese-calendar package is not installed: "
            f"{fallback}. Install chinese-calendar."
        )
    missing = [y for y in (today.year, today.year + 1) if not _library_covers(y)]
    if not missing:
        return None
    span = holiday_data_years()
    covers = f"covers {span[0]}–{span[1]}" if span else "has no holiday data"
    years = " and ".join(str(y) for y in missing)
    return (
        f"Chinese public holiday data (chinese-calendar {_library_version()}) {covers}; {years} "
        f"{'is' if len(missing) == 1 else 'are'} not covered: {fallback}. Upgrade chinese-calendar once the "
        "official schedule is out, or list that year's holidays in calendar.extra_closed and its make-up days "
        "in calendar.extra_open."
    )


# ---- the calendar -------------------------------------------------------------------------------------------------


def _require_aware(dt: datetime, name: str = "dt") -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime (got naive {dt.isoformat()})")
    return dt


class WorkCalendar:
    """Working days and hours of one :class:`WorkCalendarConfig` in one time zone.

    Build it through :func:`get_calendar` to share one instance per config. All arguments must be aware datetimes;
    all results are aware UTC datetimes.
    """

    def __init__(self, cfg: WorkCalendarConfig, tz: tzinfo = DEFAULT_TZ) -> None:
        self.cfg = cfg
        self.tz = tz
        start, end = _parse_hhmm(cfg.work_start), _parse_hhmm(cfg.work_end)
        if cfg.lunch_start is not None and cfg.lunch_end is not None:
            self._spans = [(start, _parse_hhmm(cfg.lunch_start)), (_parse_hhmm(cfg.lunch_end), end)]
        else:
            self._spans = [(start, end)]
        self._weekdays = frozenset(cfg.weekdays)
        self._closed = frozenset(cfg.extra_closed)
        self._open = frozenset(cfg.extra_open)
        self._quiet_start = _parse_hhmm(cfg.quiet_start)
        self._quiet_end = _parse_hhmm(cfg.quiet_end)
        self._day_cache: dict[date, bool] = {}

    def __repr__(self) -> str:
        return f"WorkCalendar(tz={self.tz!s}, cfg={self.cfg!r})"

    # -- days --

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` (a date in the org time zone) is a working day; never raises for years without data."""
        if isinstance(day, datetime):
            day = day.date()
        cached = self._day_cache.get(day)
        if cached is None:
            cached = self._decide(day)
            if len(self._day_cache) > 20_000:
                self._day_cache.clear()
            self._day_cache[day] = cached
        return cached

    def _decide(self, day: date) -> bool:
        if day in self._open:
            return True
        if day in self._closed:
            return False
        if self.cfg.use_chinese_holidays:
            official = _official(day)
            if official is not None:
                return official
        return day.isoweekday() in self._weekdays

    def _intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """Working intervals of ``day`` as UTC [start, end) pairs; empty on a closed day."""
        if not self.is_working_day(day):
            return []
        out = []
        for a, b in self._spans:
            start = datetime.combine(day, a, tzinfo=self.tz).astimezone(UTC)
            end = datetime.combine(day, b, tzinfo=self.tz).astimezone(UTC)
            if end > start:  # a DST jump could in theory swallow a short span
                out.append((start, end))
        return out

    def _working_intervals_from(self, dt: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working intervals that end after ``dt`` (UTC), in order; ValueError after SEARCH_DAYS days without one."""
        day = dt.astimezone(self.tz).date() - timedelta(days=1)  # one day back is harmless and covers odd offsets
        idle = 0
        while True:
            found = False
            for a, b in self._intervals(day):
                found = True
                if b > dt:
                    yield a, b
            idle = 0 if found else idle + 1
            if idle > SEARCH_DAYS:
                raise ValueError(
                    f"the working calendar has no working day in the {SEARCH_DAYS} days after {day - timedelta(idle)}:"
                    " check calendar.weekdays and calendar.extra_closed"
                )
            day += timedelta(days=1)

    # -- instants --

    def next_working_start(self, dt: datetime) -> datetime:
        """``dt`` itself when it is inside working hours, else the start of the next working period (UTC)."""
        at = _require_aware(dt).astimezone(UTC)
        for a, _b in self._working_intervals_from(at):
            return max(a, at)
        raise AssertionError("unreachable")  # pragma: no cover - the generator raises or yields

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """The instant ``hours`` working hours after ``start`` (UTC); time outside working hours does not count.

        A start outside working hours begins counting at the next working start. A deadline that ends exactly at
        the end of a working period (e.g. 18:00) stays there rather than moving to the next morning.
        """
        at = _require_aware(start, "start").astimezone(UTC)
        if not math.isfinite(hours) or hours < 0 or hours > MAX_HOURS:
            raise ValueError(f"hours must be a finite number between 0 and {MAX_HOURS:g} (got {hours!r})")
        left = timedelta(hours=hours)
        for a, b in self._working_intervals_from(at):
            begin = max(a, at)
            if left <= b - begin:
                return begin + left
            left -= b - begin
        raise AssertionError("unreachable")  # pragma: no cover

    def working_hours_between(self, a: datetime, b: datetime) -> float:
        """Working hours from ``a`` to ``b`` (negative when ``b`` is before ``a``); inverse of add_working_hours."""
        lo = _require_aware(a, "a").astimezone(UTC)
        hi = _require_aware(b, "b").astimezone(UTC)
        if hi < lo:
            return -self.working_hours_between(b, a)
        total = timedelta()
        day = lo.astimezone(self.tz).date() - timedelta(days=1)
        last = hi.astimezone(self.tz).date() + timedelta(days=1)
        while day <= last:
            for s, e in self._intervals(day):
                overlap = min(e, hi) - max(s, lo)
                if overlap > timedelta():
                    total += overlap
            day += timedelta(days=1)
        return total / timedelta(hours=1)

    def in_quiet_hours(self, dt: datetime) -> bool:
        """Whether ``dt`` falls in the quiet hours (every day, wall-clock in the org zone; may wrap midnight)."""
        t = _require_aware(dt).astimezone(self.tz).time().replace(tzinfo=None)
        qs, qe = self._quiet_start, self._quiet_end
        if qs < qe:
            return qs <= t < qe
        return t >= qs or t < qe

    def next_non_quiet(self, dt: datetime) -> datetime:
        """``dt`` itself (UTC) when outside quiet hours, else the instant the quiet hours end."""
        at = _require_aware(dt).astimezone(UTC)
        if not self.in_quiet_hours(at):
            return at
        local = at.astimezone(self.tz)
        end = datetime.combine(local.date(), self._quiet_end, tzinfo=self.tz)
        if end <= local:
            end = datetime.combine(local.date() + timedelta(days=1), self._quiet_end, tzinfo=self.tz)
        return end.astimezone(UTC)


@functools.lru_cache(maxsize=32)
def _cached_calendar(cfg_json: str, tz: tzinfo) -> WorkCalendar:
    return WorkCalendar(WorkCalendarConfig.model_validate_json(cfg_json), tz)


def get_calendar(cfg: WorkCalendarConfig, tz: tzinfo = DEFAULT_TZ) -> WorkCalendar:
    """The shared :class:`WorkCalendar` for ``cfg`` in ``tz`` (cached on the config's content, so cheap to call)."""
    return _cached_calendar(cfg.model_dump_json(), tz)


def add_hours(settings: Settings, start: datetime, hours: float, *, calendar: bool) -> datetime:
    """The deadline ``hours`` after ``start`` as an aware UTC datetime.

    ``calendar=True`` counts plain elapsed hours; otherwise working hours of ``settings.calendar`` in the org time
    zone ``settings.org.tz`` (the defaults of :class:`WorkCalendarConfig` when the section is absent).
    """
    _require_aware(start, "start")
    if calendar:
        return start.astimezone(UTC) + timedelta(hours=hours)
    cfg = getattr(settings, "calendar", None) or WorkCalendarConfig()
    return get_calendar(cfg, settings.org.tz).add_working_hours(start, hours)
