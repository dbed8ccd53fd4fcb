"""Working calendar for SLA and escalation deadlines.

A deadline "in working hours" only runs while the organisation is at work: on working days, between
``work_start`` and ``work_end`` in the org time zone, minus the optional lunch break. Outside those hours it pauses.

Which days are working days, highest priority first:

1. ``extra_open`` dates from the config are open, ``extra_closed`` dates are closed;
2. when ``use_chinese_holidays`` is on and a year's official arrangement was imported (``salesbot calendar
   import``, the ``calendar_days`` table, attached to the config with :func:`with_official_days`), its closed days
   are closed and its make-up working days are open, and that year's other days follow rule 4: an imported year
   replaces the package's data for that year;
3. when ``use_chinese_holidays`` is on and the ``chinese-calendar`` package has data for the year, its public
   holidays (法定节假日) are closed and its make-up working days (调休上班) are open;
4. otherwise the configured ISO ``weekdays`` (Mon–Fri by default) are open.

The holiday data of any library ends at some year. For a year outside it (or when the package is missing) and not
imported, the calendar quietly falls back to rule 4 plus the configured dates, never raising;
:func:`coverage_warning` tells an operator ahead of time so ``config check`` and ``/healthz`` can say so.

Every instant returned by this module is an aware UTC :class:`~datetime.datetime`; every instant taken must be aware.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Literal, Protocol, Self
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, PrivateAttr, field_validator, model_validator

try:  # the package is optional at import time: without it the calendar falls back to weekdays
    import chinese_calendar as _cc
except ImportError:  # pragma: no cover - exercised only where the package is not installed
    _cc = None

__all__ = [
    "MAX_HOURS",
    "SEARCH_DAYS",
    "DayRule",
    "OfficialDay",
    "OfficialDays",
    "WorkCalendar",
    "WorkCalendarConfig",
    "add_hours",
    "coverage_warning",
    "get_calendar",
    "holiday_data_years",
    "official_days",
    "special_days",
    "with_official_days",
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


@dataclass(frozen=True)
class OfficialDay:
    """One imported day of an official arrangement: closed (放假) or a make-up working day (调休上班).

    ``year`` is the arrangement's year, which differs from ``day.year`` for a New Year holiday that starts in the
    last days of December.
    """

    day: date
    closed: bool
    year: int
    name: str = ""
    source: str = ""


class OfficialDays:
    """The imported official days, by date, and the arrangement years they cover. Immutable and hashable, so a
    :class:`WorkCalendar` can be cached on it."""

    __slots__ = ("_days", "_hash", "years")

    def __init__(self, days: Iterable[OfficialDay] = ()) -> None:
        self._days = {d.day: d for d in sorted(days, key=lambda d: d.day)}
        self.years = frozenset(d.year for d in self._days.values())
        self._hash = hash(tuple(self._days.values()))

    def get(self, day: date) -> OfficialDay | None:
        """The imported row for ``day``, or None."""
        return self._days.get(day)

    def covers(self, year: int) -> bool:
        """Whether an arrangement for ``year`` was imported (it then replaces the package's data for that year)."""
        return year in self.years

    def __iter__(self) -> Iterator[OfficialDay]:
        return iter(self._days.values())

    def __len__(self) -> int:
        return len(self._days)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OfficialDays) and self._days == other._days

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"OfficialDays({len(self)} days, years={sorted(self.years)})"


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
    # Not a config key: the imported official days the running process attached (see with_official_days).
    _official: OfficialDays | None = PrivateAttr(default=None)

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


def with_official_days(cfg: WorkCalendarConfig, days: OfficialDays | None) -> WorkCalendarConfig:
    """A copy of ``cfg`` carrying the imported official days; every calendar built from it uses them."""
    out = cfg.model_copy()
    out._official = days
    return out


def official_days(cfg: WorkCalendarConfig) -> OfficialDays | None:
    """The imported official days attached to ``cfg``, or None."""
    return cfg._official


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


def _package_rule(day: date) -> bool | None:
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

    A year counts as covered when the chinese-calendar package has it or when its official arrangement was
    imported (the :class:`OfficialDays` attached to ``cfg``). Nothing to warn about when ``use_chinese_holidays``
    is off: the calendar then never uses the data.
    """
    if not cfg.use_chinese_holidays:
        return None
    imported = cfg._official or OfficialDays()
    days = ", ".join(str(d) for d in cfg.weekdays)
    fallback = (
        f"working-hour deadlines then count ISO weekdays {days} plus calendar.extra_closed/extra_open only, "
        "without public holidays or make-up working days"
    )
    remedy = (
        "Import the State Council notice with `salesbot calendar import FILE` (then `salesbot config reload`), "
        "upgrade chinese-calendar once the official schedule is out, or list that year's holidays in "
        "calendar.extra_closed and its make-up days in calendar.extra_open."
    )
    missing = [y for y in (today.year, today.year + 1) if not (imported.covers(y) or _library_covers(y))]
    if not missing:
        return None
    years = " and ".join(str(y) for y in missing)
    if _cc is None:
        return (
            "calendar.use_chinese_holidays is on but the chinese-calendar package is not installed and no "
            f"arrangement for {years} was imported: {fallback}. Install chinese-calendar or {remedy[0].lower()}"
            f"{remedy[1:]}"
        )
    span = holiday_data_years()
    covers = f"covers {span[0]}–{span[1]}" if span else "has no holiday data"
    also = f" (imported: {', '.join(map(str, sorted(imported.years)))})" if imported.years else ""
    return (
        f"Chinese public holiday data (chinese-calendar {_library_version()}) {covers}{also}; {years} "
        f"{'is' if len(missing) == 1 else 'are'} not covered: {fallback}. {remedy}"
    )


Source = Literal["imported", "chinese-calendar", "config"]


@dataclass(frozen=True)
class DayRule:
    """A day of a year that the weekday rule does not decide, and what decides it (for ``salesbot calendar show``)."""

    day: date
    closed: bool
    name: str
    source: Source
    detail: str = ""  # the imported file, or the package version


def _package_name(value: object) -> str:
    """The Chinese name of a chinese-calendar holiday (its detail gives the English enum value)."""
    try:
        return str(_cc.Holiday(value).chinese)
    except (AttributeError, ValueError):  # pragma: no cover - an unexpected package layout
        return str(value)


def special_days(cfg: WorkCalendarConfig, year: int) -> list[DayRule]:
    """Every day of arrangement ``year`` decided by something other than the weekday rule, in date order.

    Follows the same precedence as :meth:`WorkCalendar.is_working_day`: config dates, then imported days (an
    imported year hides the package's data for that year), then the chinese-calendar package.
    """
    imported = cfg._official or OfficialDays()
    days: set[date] = {d.day for d in imported if d.year == year}
    day = date(year, 1, 1)
    while day.year == year:
        days.add(day)
        day += timedelta(days=1)
    opened, closed = set(cfg.extra_open), set(cfg.extra_closed)
    version = f"chinese-calendar {_library_version()}"
    out: list[DayRule] = []
    for day in sorted(days):
        if day in opened or day in closed:
            out.append(DayRule(day, day in closed, "", "config", "extra_closed" if day in closed else "extra_open"))
            continue
        if not cfg.use_chinese_holidays:
            continue
        row = imported.get(day)
        if row is not None:
            out.append(DayRule(day, row.closed, row.name, "imported", row.source))
        elif imported.covers(day.year) or not _library_covers(day.year):
            continue
        else:
            on_holiday, name = _cc.get_holiday_detail(day)
            if name is not None:
                out.append(DayRule(day, bool(on_holiday), _package_name(name), "chinese-calendar", version))
    return out


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

    def __init__(self, cfg: WorkCalendarConfig, tz: tzinfo = DEFAULT_TZ, official: OfficialDays | None = None) -> None:
        self.cfg = cfg
        self.tz = tz
        # Imported official days: given explicitly (the shared cache) or attached to the config.
        self.official = official if official is not None else cfg._official
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
            if self.official is not None:
                row = self.official.get(day)
                if row is not None:
                    return not row.closed
                if self.official.covers(day.year):  # an imported year replaces the package's data for that year
                    return day.isoweekday() in self._weekdays
            official = _package_rule(day)
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

    def last_working_instant(self, dt: datetime) -> datetime:
        """``dt`` itself (UTC) when it is inside working hours, else the end of the last working period before it."""
        at = _require_aware(dt).astimezone(UTC)
        day = at.astimezone(self.tz).date() + timedelta(days=1)
        for _ in range(SEARCH_DAYS):
            for a, b in reversed(self._intervals(day)):
                if a <= at:
                    return min(at, b)
            day -= timedelta(days=1)
        raise ValueError(f"the working calendar has no working day in the {SEARCH_DAYS} days before {at.isoformat()}")

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
def _cached_calendar(cfg_json: str, official: OfficialDays | None, tz: tzinfo) -> WorkCalendar:
    return WorkCalendar(WorkCalendarConfig.model_validate_json(cfg_json), tz, official)


def get_calendar(cfg: WorkCalendarConfig, tz: tzinfo = DEFAULT_TZ) -> WorkCalendar:
    """The shared :class:`WorkCalendar` for ``cfg`` in ``tz`` (cached on the config's content and its imported
    official days, so cheap to call)."""
    return _cached_calendar(cfg.model_dump_json(), cfg._official, tz)


class _OrgZone(Protocol):
    @property
    def tz(self) -> tzinfo: ...


class CalendarSettings(Protocol):
    """What ``add_hours`` reads of the settings (``bot.config.Settings`` is one)."""

    @property
    def calendar(self) -> WorkCalendarConfig: ...

    @property
    def org(self) -> _OrgZone: ...


def add_hours(settings: CalendarSettings, start: datetime, hours: float, *, calendar: bool) -> datetime:
    """The deadline ``hours`` after ``start`` as an aware UTC datetime.

    ``calendar=True`` counts plain elapsed hours; otherwise working hours of ``settings.calendar`` in the org time
    zone ``settings.org.tz`` (the defaults of :class:`WorkCalendarConfig` when the section is absent).
    """
    _require_aware(start, "start")
    if calendar:
        return start.astimezone(UTC) + timedelta(hours=hours)
    cfg = getattr(settings, "calendar", None) or WorkCalendarConfig()
    return get_calendar(cfg, settings.org.tz).add_working_hours(start, hours)
