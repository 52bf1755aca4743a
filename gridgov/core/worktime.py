"""The working-time calendar: which days are worked, at which hours, and deadline arithmetic.

Sources, strongest first:

1. **override**: an administrator's ``CalendarOverride`` for the date (a holiday, or a working
   day with the default or its own hours);
2. **chinese-calendar**: the PyPI package's public holidays and the weekend days made working
   days (调休) for the years it knows (2004–2026 in version 1.11);
3. **fallback**: for any other year, Monday–Friday are working days and Saturday/Sunday are not.
   Nothing here ever raises for an unknown year; ``year_covered`` tells whether the package
   covers a year so that screens can warn.

Working hours of a working day come from ``settings.GRIDGOV_WORKING_HOURS`` (default
``"08:30-12:00,13:30-17:30"``), local time ``settings.TIME_ZONE`` (Asia/Shanghai), unless a
workday override gives its own hours.

Semantics (every function takes and returns timezone-aware datetimes; naive ones raise
``ValueError``; results are expressed in the platform's local time zone):

* A working period is the half-open interval ``[start, end)``: 08:30 is inside working time,
  12:00 and 17:30 are not.
* ``next_working_instant(dt)`` is ``dt`` itself when it lies in a period, else the start of the
  next period (17:30 on a Friday → 08:30 on the next working day).
* ``add_working_time(start, span)`` with ``span > 0`` is the *earliest* instant ``t`` such that
  the working time in ``[start, t)`` equals ``span``. A deadline therefore either lies strictly
  inside a period or exactly at a period's end (17:30 stays 17:30, it never rolls over to 08:30
  the next day); it never lands on any other non-working instant. With ``span == 0`` it returns
  ``next_working_instant(start)``. Negative spans raise ``ValueError``.
* A span of working **days** is a number of full *standard* working days (the length of the
  configured hours, 7.5 h by default): "1 working day" from Tuesday 10:00 is 10:00 on the next
  working day. Days, hours and minutes add up into one working-time span.
* ``working_time_between(a, b)`` is the working time in ``[a, b)`` (negative when ``b < a``),
  so ``working_time_between(s, add_working_time(s, span)) == span`` for every start ``s``.

Deadlines iterate per day (a handful of periods each), never per minute; day kinds are cached per
year. The database-backed calendar (``current_calendar()``) is rebuilt when the ``core.calendar``
version stamp moves, checked at most every ``GRIDGOV_INDEX_CHECK_SECONDS``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from datetime import time as dtime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from gridgov.core.stamps import StampedCache

WORKDAY = "workday"
HOLIDAY = "holiday"
WEEKEND = "weekend"
MAKEUP_WORKDAY = "makeup_workday"
WORKING_KINDS = frozenset({WORKDAY, MAKEUP_WORKDAY})

SOURCE_PACKAGE = "chinese-calendar"
SOURCE_OVERRIDE = "override"
SOURCE_FALLBACK = "fallback"

KIND_LABELS = {
    WORKDAY: gettext_lazy("working day"),
    HOLIDAY: gettext_lazy("holiday"),
    WEEKEND: gettext_lazy("weekend"),
    MAKEUP_WORKDAY: gettext_lazy("make-up working day"),
}
SOURCE_LABELS = {
    SOURCE_PACKAGE: gettext_lazy("official calendar (chinese-calendar)"),
    SOURCE_OVERRIDE: gettext_lazy("administrator override"),
    SOURCE_FALLBACK: gettext_lazy("fallback (Monday–Friday)"),
}
# Holiday names as chinese-calendar spells them.
HOLIDAY_NAMES = {
    "New Year's Day": gettext_lazy("New Year's Day"),
    "Spring Festival": gettext_lazy("Spring Festival"),
    "Tomb-sweeping Day": gettext_lazy("Tomb-sweeping Day"),
    "Labour Day": gettext_lazy("Labour Day"),
    "Dragon Boat Festival": gettext_lazy("Dragon Boat Festival"),
    "National Day": gettext_lazy("National Day"),
    "Mid-autumn Festival": gettext_lazy("Mid-autumn Festival"),
    "Anti-Fascist 70th Day": gettext_lazy("Anti-Fascist War Victory Day"),
}

CALENDAR_STAMP = "core.calendar"
MAX_SCAN_DAYS = 366 * 20  # a calendar without a working day for 20 years is a broken calendar

Hours = tuple[tuple[dtime, dtime], ...]
Period = tuple[datetime, datetime]


# --- hours -------------------------------------------------------------------------------


def _parse_clock(text: str) -> dtime:
    hh, sep, mm = text.strip().partition(":")
    if not sep or not hh.isdigit() or not mm.isdigit() or len(mm) != 2 or len(hh) > 2:
        raise ValueError(_("%(value)s is not a time of day (HH:MM)") % {"value": text.strip()})
    hour, minute = int(hh), int(mm)
    if hour > 23 or minute > 59:
        raise ValueError(_("%(value)s is not a time of day (HH:MM)") % {"value": text.strip()})
    return dtime(hour, minute)


def parse_hours(text: str) -> Hours:
    """``"08:30-12:00,13:30-17:30"`` → ordered, non-overlapping periods; ValueError if invalid."""
    periods: list[tuple[dtime, dtime]] = []
    for chunk in (text or "").split(","):
        chunk = chunk.strip()
        if not chunk:
            continue
        start_text, sep, end_text = chunk.partition("-")
        if not sep:
            raise ValueError(
                _("%(value)s is not a period: write it as HH:MM-HH:MM") % {"value": chunk}
            )
        start, end = _parse_clock(start_text), _parse_clock(end_text)
        if end <= start:
            raise ValueError(_("the period %(value)s ends before it starts") % {"value": chunk})
        if periods and start < periods[-1][1]:
            raise ValueError(
                _("the period %(value)s overlaps or precedes the one before it") % {"value": chunk}
            )
        periods.append((start, end))
    if not periods:
        raise ValueError(_("working hours need at least one period, e.g. 08:30-12:00"))
    return tuple(periods)


def format_hours(hours: Iterable[tuple[dtime, dtime]]) -> str:
    return ",".join(f"{s:%H:%M}-{e:%H:%M}" for s, e in hours)


def hours_length(hours: Iterable[tuple[dtime, dtime]]) -> timedelta:
    total = timedelta()
    for s, e in hours:
        total += datetime.combine(date.min, e) - datetime.combine(date.min, s)
    return total


def default_hours() -> Hours:
    raw = getattr(settings, "GRIDGOV_WORKING_HOURS", "08:30-12:00,13:30-17:30")
    try:
        return parse_hours(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"GRIDGOV_WORKING_HOURS={raw!r}: {exc}") from exc


# --- spans -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkSpan:
    """A working-time span: ``days`` are full standard working days (see the module doc)."""

    minutes: float = 0
    hours: float = 0
    days: float = 0

    def to_timedelta(self, day_length: timedelta) -> timedelta:
        return timedelta(minutes=self.minutes, hours=self.hours) + day_length * self.days


# --- chinese-calendar --------------------------------------------------------------------


@lru_cache(maxsize=256)
def year_covered(year: int) -> bool:
    """Whether chinese-calendar knows ``year`` (else the Monday–Friday fallback applies)."""
    import chinese_calendar

    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except (NotImplementedError, ValueError, OverflowError):
        return False
    return True


@lru_cache(maxsize=64)
def _base_year(year: int) -> dict[date, tuple[str, str, str]]:
    """``{day: (kind, source, holiday name)}`` for a year, without overrides."""
    days: dict[date, tuple[str, str, str]] = {}
    first = date(year, 1, 1)
    count = (date(year + 1, 1, 1) - first).days if year < 9999 else 365
    if year_covered(year):
        from chinese_calendar.constants import holidays, workdays

        for i in range(count):
            d = first + timedelta(days=i)
            if d in workdays:
                days[d] = (MAKEUP_WORKDAY, SOURCE_PACKAGE, str(workdays[d]))
            elif d in holidays:
                days[d] = (HOLIDAY, SOURCE_PACKAGE, str(holidays[d]))
            elif d.weekday() >= 5:
                days[d] = (WEEKEND, SOURCE_PACKAGE, "")
            else:
                days[d] = (WORKDAY, SOURCE_PACKAGE, "")
    else:
        for i in range(count):
            d = first + timedelta(days=i)
            kind = WEEKEND if d.weekday() >= 5 else WORKDAY
            days[d] = (kind, SOURCE_FALLBACK, "")
    return days


# --- the calendar ------------------------------------------------------------------------


@dataclass(frozen=True)
class Override:
    """An administrator's entry for one date: ``kind`` is "holiday" or "workday"."""

    kind: str
    hours: Hours | None = None
    note: str = ""


@dataclass(frozen=True)
class DayInfo:
    day: date
    kind: str
    source: str
    hours: Hours
    name: str = ""
    note: str = ""

    @property
    def is_working(self) -> bool:
        return self.kind in WORKING_KINDS

    @property
    def kind_label(self) -> str:
        return str(KIND_LABELS[self.kind])

    @property
    def source_label(self) -> str:
        return str(SOURCE_LABELS[self.source])

    @property
    def name_label(self) -> str:
        return str(HOLIDAY_NAMES.get(self.name, self.name))

    @property
    def hours_text(self) -> str:
        return format_hours(self.hours)


def _aware_utc(dt: datetime) -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("working-time arithmetic needs timezone-aware datetimes, got a naive one")
    return dt.astimezone(UTC)


@dataclass
class WorkCalendar:
    """A working calendar: default hours, overrides by date, and the platform's time zone.

    Pure (no database): ``current_calendar()`` builds one from the settings and the stored
    overrides. Day information is cached per year inside the object.
    """

    hours: Hours = field(default_factory=default_hours)
    overrides: Mapping[date, Override] = field(default_factory=dict)
    tz: tzinfo = field(default_factory=lambda: ZoneInfo(settings.TIME_ZONE))
    version: int = 0
    _years: dict[int, dict[date, DayInfo]] = field(default_factory=dict, repr=False)
    _periods: dict[date, tuple[Period, ...]] = field(default_factory=dict, repr=False)

    @property
    def day_length(self) -> timedelta:
        """The length of one standard working day (the configured hours)."""
        return hours_length(self.hours)

    # days

    def _year(self, year: int) -> dict[date, DayInfo]:
        cached = self._years.get(year)
        if cached is not None:
            return cached
        built: dict[date, DayInfo] = {}
        for d, (kind, source, name) in _base_year(year).items():
            override = self.overrides.get(d)
            if override is None:
                hours = self.hours if kind in WORKING_KINDS else ()
                built[d] = DayInfo(d, kind, source, hours, name)
            elif override.kind == HOLIDAY:
                built[d] = DayInfo(d, HOLIDAY, SOURCE_OVERRIDE, (), name, override.note)
            else:
                # A working day made of a weekend day or a holiday is a make-up working day.
                new_kind = WORKDAY if kind == WORKDAY else MAKEUP_WORKDAY
                built[d] = DayInfo(
                    d, new_kind, SOURCE_OVERRIDE, override.hours or self.hours, name, override.note
                )
        self._years[year] = built
        return built

    def day(self, d: date) -> DayInfo:
        return self._year(d.year)[d]

    def day_kind(self, d: date) -> tuple[str, str]:
        """``(kind, source)``: kind is workday/holiday/weekend/makeup_workday."""
        info = self.day(d)
        return info.kind, info.source

    def is_working_day(self, d: date) -> bool:
        return self.day(d).is_working

    def days(self, start: date, end: date) -> list[DayInfo]:
        """Every day from ``start`` to ``end`` inclusive."""
        # counted, not stepped past ``end``: the day after 9999-12-31 does not exist
        return [self.day(start + timedelta(days=i)) for i in range((end - start).days + 1)]

    def _utc_periods(self, d: date) -> tuple[Period, ...]:
        cached = self._periods.get(d)
        if cached is None:
            cached = tuple(
                (
                    datetime.combine(d, s, tzinfo=self.tz).astimezone(UTC),
                    datetime.combine(d, e, tzinfo=self.tz).astimezone(UTC),
                )
                for s, e in self.day(d).hours
            )
            self._periods[d] = cached
        return cached

    def working_periods(self, d: date) -> list[Period]:
        """The day's working periods ``[(start, end), ...]`` as aware local datetimes."""
        return [(s.astimezone(self.tz), e.astimezone(self.tz)) for s, e in self._utc_periods(d)]

    # instants

    def _local_date(self, utc: datetime) -> date:
        return utc.astimezone(self.tz).date()

    def is_within_working_time(self, dt: datetime) -> bool:
        """Whether ``dt`` lies in a period ``[start, end)`` (a period's end is outside)."""
        x = _aware_utc(dt)
        return any(s <= x < e for s, e in self._utc_periods(self._local_date(x)))

    def next_working_instant(self, dt: datetime) -> datetime:
        """``dt`` if it is in working time, else the start of the next working period."""
        x = _aware_utc(dt)
        d = self._local_date(x)
        for _i in range(MAX_SCAN_DAYS):
            for s, e in self._utc_periods(d):
                if x < e:
                    return max(x, s).astimezone(self.tz)
            d += timedelta(days=1)
        raise RuntimeError("the working calendar has no working day for 20 years")

    def span(self, span: timedelta | WorkSpan) -> timedelta:
        if isinstance(span, WorkSpan):
            return span.to_timedelta(self.day_length)
        return span

    def add_working_time(self, start: datetime, span: timedelta | WorkSpan) -> datetime:
        """The deadline ``span`` of working time after ``start`` (see the module doc)."""
        remaining = self.span(span)
        if remaining < timedelta(0):
            raise ValueError("a working-time span cannot be negative")
        if not remaining:
            return self.next_working_instant(start)
        x = _aware_utc(start)
        d = self._local_date(x)
        for _i in range(MAX_SCAN_DAYS):
            for s, e in self._utc_periods(d):
                if e <= x:
                    continue
                begin = max(s, x)
                available = e - begin
                if remaining <= available:
                    return (begin + remaining).astimezone(self.tz)
                remaining -= available
            d += timedelta(days=1)
        raise RuntimeError("the working calendar has no working day for 20 years")

    def working_time_between(self, a: datetime, b: datetime) -> timedelta:
        """Working time in ``[a, b)``; negative when ``b`` is before ``a``."""
        x, y = _aware_utc(a), _aware_utc(b)
        if y < x:
            return -self.working_time_between(b, a)
        total = timedelta()
        d, last = self._local_date(x), self._local_date(y)
        while d <= last:
            for s, e in self._utc_periods(d):
                overlap = min(e, y) - max(s, x)
                if overlap > timedelta(0):
                    total += overlap
            d += timedelta(days=1)
        return total


# --- the database-backed calendar ----------------------------------------------------------


def _build(version: int) -> WorkCalendar:
    from gridgov.core.models import CalendarOverride

    overrides: dict[date, Override] = {}
    for row in CalendarOverride.objects.all():
        hours = parse_hours(row.hours) if row.kind == WORKDAY and row.hours else None
        overrides[row.date] = Override(kind=row.kind, hours=hours, note=row.note)
    return WorkCalendar(hours=default_hours(), overrides=overrides, version=version)


def _working_hours_setting() -> str:
    return str(getattr(settings, "GRIDGOV_WORKING_HOURS", ""))


_cache: StampedCache[WorkCalendar] = StampedCache(
    CALENDAR_STAMP, _build, context=_working_hours_setting
)


def current_calendar() -> WorkCalendar:
    """The platform calendar (settings + stored overrides), rebuilt when the overrides change."""
    return _cache.get()


def invalidate_local() -> None:
    _cache.invalidate()


def calendar_changed() -> None:
    """Call inside the transaction that changed overrides: other processes see the stamp move."""
    _cache.changed()


# --- module-level shortcuts on the platform calendar -----------------------------------------


def day_info(d: date) -> DayInfo:
    return current_calendar().day(d)


def day_kind(d: date) -> tuple[str, str]:
    """``(kind, source)`` of a date: kind in workday/holiday/weekend/makeup_workday, source in
    chinese-calendar/override/fallback."""
    return current_calendar().day_kind(d)


def is_working_day(d: date) -> bool:
    return current_calendar().is_working_day(d)


def working_periods(d: date) -> list[Period]:
    return current_calendar().working_periods(d)


def add_working_time(start: datetime, span: timedelta | WorkSpan) -> datetime:
    return current_calendar().add_working_time(start, span)


def working_time_between(a: datetime, b: datetime) -> timedelta:
    return current_calendar().working_time_between(a, b)


def next_working_instant(dt: datetime) -> datetime:
    return current_calendar().next_working_instant(dt)


def is_within_working_time(dt: datetime) -> bool:
    return current_calendar().is_within_working_time(dt)


def local_zone() -> tzinfo:
    return ZoneInfo(settings.TIME_ZONE)


def as_aware(dt: datetime) -> datetime:
    """A naive datetime read from a user is local time (Asia/Shanghai); aware ones pass."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        return dt.replace(tzinfo=local_zone())
    return dt


def describe(info: DayInfo) -> dict[str, Any]:
    return {
        "date": info.day,
        "kind": info.kind,
        "source": info.source,
        "working": info.is_working,
        "hours": info.hours_text,
        "name": info.name,
        "note": info.note,
        "covered": year_covered(info.day.year),
    }
