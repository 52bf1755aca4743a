"""The working-time calendar: properties of deadline arithmetic, and the holidays of 2026/2027."""

from __future__ import annotations

from collections.abc import Generator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from chinese_calendar.constants import holidays as cc_holidays
from chinese_calendar.constants import workdays as cc_workdays
from hypothesis import given, settings
from hypothesis import strategies as st

from gridgov.core import actions, worktime
from gridgov.core.errors import DomainError, NotFound
from gridgov.core.worktime import (
    HOLIDAY,
    MAKEUP_WORKDAY,
    SOURCE_FALLBACK,
    SOURCE_OVERRIDE,
    SOURCE_PACKAGE,
    WEEKEND,
    WORKDAY,
    Override,
    WorkCalendar,
    WorkSpan,
    parse_hours,
)

SH = ZoneInfo("Asia/Shanghai")


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SH)


@pytest.fixture(autouse=True)
def _fresh_calendar() -> Generator[None, None, None]:
    """The per-process calendar must not carry overrides from an earlier (rolled back) test."""
    worktime.invalidate_local()
    yield
    worktime.invalidate_local()


# A calendar with overrides of every kind, across the year chinese-calendar does not know.
CAL = WorkCalendar(
    hours=parse_hours("08:30-12:00,13:30-17:30"),
    overrides={
        date(2027, 1, 1): Override(kind=HOLIDAY, note="New Year"),
        date(2026, 12, 26): Override(kind=WORKDAY, hours=parse_hours("09:00-11:00")),
        date(2027, 1, 13): Override(kind=WORKDAY, hours=parse_hours("14:00-15:15")),
    },
    tz=SH,
)

starts = st.datetimes(
    min_value=datetime(2026, 9, 1), max_value=datetime(2027, 3, 1), timezones=st.just(SH)
)
utc_starts = st.datetimes(
    min_value=datetime(2026, 9, 1), max_value=datetime(2027, 3, 1), timezones=st.just(UTC)
)
spans = st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=7.5 * 25))


def in_or_at_end_of_period(cal: WorkCalendar, dt: datetime) -> bool:
    return any(s <= dt <= e for s, e in cal.working_periods(dt.astimezone(SH).date()))


# --- properties --------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(start=starts, span=spans)
def test_elapsed_working_time_round_trips_for_any_start(start: datetime, span: timedelta) -> None:
    due = CAL.add_working_time(start, span)
    assert CAL.working_time_between(start, due) == span
    assert due >= start


@settings(max_examples=200, deadline=None)
@given(start=starts, span=spans)
def test_elapsed_working_time_round_trips_for_starts_in_working_time(
    start: datetime, span: timedelta
) -> None:
    start = CAL.next_working_instant(start)
    assert CAL.is_within_working_time(start)
    assert CAL.working_time_between(start, CAL.add_working_time(start, span)) == span


@settings(max_examples=200, deadline=None)
@given(start=utc_starts, span=spans)
def test_a_deadline_never_falls_in_non_working_time(start: datetime, span: timedelta) -> None:
    due = CAL.add_working_time(start, span)
    assert in_or_at_end_of_period(CAL, due)
    if span:
        # the earliest such instant: nothing of the span is left a moment before
        assert CAL.working_time_between(start, due - timedelta(microseconds=1)) < span
    else:
        assert CAL.is_within_working_time(due)


@settings(max_examples=200, deadline=None)
@given(start=starts, a=spans, b=spans)
def test_a_bigger_span_never_gives_an_earlier_deadline(
    start: datetime, a: timedelta, b: timedelta
) -> None:
    small, big = sorted((a, b))
    assert CAL.add_working_time(start, small) <= CAL.add_working_time(start, big)


@settings(max_examples=100, deadline=None)
@given(start=starts, days=st.integers(min_value=0, max_value=30))
def test_working_days_are_standard_day_lengths(start: datetime, days: int) -> None:
    due = CAL.add_working_time(start, WorkSpan(days=days))
    assert CAL.working_time_between(start, due) == timedelta(hours=7.5) * days


@settings(max_examples=100, deadline=None)
@given(a=starts, b=starts)
def test_elapsed_time_is_antisymmetric_and_additive(a: datetime, b: datetime) -> None:
    assert CAL.working_time_between(a, b) == -CAL.working_time_between(b, a)
    mid = min(a, b) + (max(a, b) - min(a, b)) / 2
    lo, hi = min(a, b), max(a, b)
    assert CAL.working_time_between(lo, hi) == (
        CAL.working_time_between(lo, mid) + CAL.working_time_between(mid, hi)
    )


# --- the official calendar -------------------------------------------------------------------


def test_it_follows_chinese_calendar_around_national_day_2026() -> None:
    cal = WorkCalendar(tz=SH)
    for offset in range(-20, 20):
        day = date(2026, 10, 1) + timedelta(days=offset)
        kind, source = cal.day_kind(day)
        assert source == SOURCE_PACKAGE
        if day in cc_workdays:
            assert kind == MAKEUP_WORKDAY
        elif day in cc_holidays:
            assert kind == HOLIDAY
        else:
            assert kind == (WEEKEND if day.weekday() >= 5 else WORKDAY)
    assert all(cal.day_kind(date(2026, 10, n)) == (HOLIDAY, SOURCE_PACKAGE) for n in range(1, 8))
    makeups = [d for d in cc_workdays if d.year == 2026 and cc_workdays[d] == "National Day"]
    assert makeups and all(d.weekday() >= 5 for d in makeups)
    assert all(cal.is_working_day(d) for d in makeups)
    # 30 Sep 17:00 plus one working hour: Oct 1–7 are skipped, the make-up Saturday is worked
    oct10 = date(2026, 10, 10)
    assert oct10 in makeups
    assert cal.add_working_time(at(2026, 9, 30, 17), timedelta(hours=1)) == at(2026, 10, 8, 9)
    assert cal.add_working_time(at(2026, 10, 9, 17), timedelta(hours=1)) == at(2026, 10, 10, 9)


def test_it_skips_the_spring_festival_2026() -> None:
    cal = WorkCalendar(tz=SH)
    festival = sorted(
        d for d in cc_holidays if d.year == 2026 and cc_holidays[d] == "Spring Festival"
    )
    assert all(not cal.is_working_day(d) for d in festival)
    before = festival[0] - timedelta(days=1)
    while not cal.is_working_day(before):
        before -= timedelta(days=1)
    after = festival[-1] + timedelta(days=1)
    while not cal.is_working_day(after):
        after += timedelta(days=1)
    start = datetime.combine(before, time(16, 30), tzinfo=SH)
    assert cal.add_working_time(start, timedelta(hours=2)) == datetime.combine(
        after, time(9, 30), tzinfo=SH
    )
    # the Saturday before the festival is a make-up working day
    assert cal.day_kind(date(2026, 2, 14)) == (MAKEUP_WORKDAY, SOURCE_PACKAGE)


def test_30_working_minutes_from_11_50_skip_lunch() -> None:
    cal = WorkCalendar(tz=SH)
    assert cal.add_working_time(at(2026, 11, 24, 11, 50), timedelta(minutes=30)) == at(
        2026, 11, 24, 13, 50
    )


def test_24_working_hours_from_friday_16_00() -> None:
    cal = WorkCalendar(tz=SH)
    # Fri 1.5 h, Mon 7.5 h, Tue 7.5 h, Wed 7.5 h: the deadline is Wednesday's closing time
    assert cal.add_working_time(at(2026, 11, 20, 16), timedelta(hours=24)) == at(
        2026, 11, 25, 17, 30
    )


def test_a_deadline_at_closing_time_stays_there_and_zero_moves_to_working_time() -> None:
    cal = WorkCalendar(tz=SH)
    assert cal.add_working_time(at(2026, 11, 24, 17), timedelta(minutes=30)) == at(
        2026, 11, 24, 17, 30
    )
    assert cal.add_working_time(at(2026, 11, 24, 17, 30), timedelta(0)) == at(2026, 11, 25, 8, 30)
    assert cal.add_working_time(at(2026, 11, 24, 12), timedelta(0)) == at(2026, 11, 24, 13, 30)
    assert cal.add_working_time(at(2026, 11, 24, 10), timedelta(0)) == at(2026, 11, 24, 10)
    assert not cal.is_within_working_time(at(2026, 11, 24, 17, 30))
    assert cal.is_within_working_time(at(2026, 11, 24, 8, 30))


def test_one_working_day_from_tuesday_10_00_is_wednesday_10_00() -> None:
    cal = WorkCalendar(tz=SH)
    assert cal.add_working_time(at(2026, 11, 24, 10), WorkSpan(days=1)) == at(2026, 11, 25, 10)
    assert cal.add_working_time(at(2026, 11, 24, 10), WorkSpan(days=20)) == at(2026, 12, 22, 10)


def test_it_works_in_utc_and_answers_in_local_time() -> None:
    cal = WorkCalendar(tz=SH)
    due = cal.add_working_time(datetime(2026, 11, 24, 2, 0, tzinfo=UTC), timedelta(minutes=30))
    assert due == at(2026, 11, 24, 10, 30)
    assert due.utcoffset() == timedelta(hours=8)
    with pytest.raises(ValueError):
        cal.add_working_time(datetime(2026, 11, 24, 10), timedelta(minutes=1))
    with pytest.raises(ValueError):
        cal.add_working_time(at(2026, 11, 24, 10), timedelta(minutes=-1))


# --- 2027: the fallback ----------------------------------------------------------------------


def test_2027_is_not_covered_and_never_raises() -> None:
    assert worktime.year_covered(2026)
    assert not worktime.year_covered(2027)
    cal = WorkCalendar(tz=SH)
    assert cal.day_kind(date(2027, 1, 1)) == (WORKDAY, SOURCE_FALLBACK)
    assert cal.day_kind(date(2027, 1, 2)) == (WEEKEND, SOURCE_FALLBACK)
    assert cal.day_kind(date(2026, 12, 31)) == (WORKDAY, SOURCE_PACKAGE)
    # far future, far past: the fallback again
    assert cal.day_kind(date(2090, 3, 6))[1] == SOURCE_FALLBACK
    assert cal.day_kind(date(1999, 3, 6))[1] == SOURCE_FALLBACK


def test_a_deadline_from_2026_12_30_crosses_into_2027_on_the_fallback(db: None) -> None:
    start = at(2026, 12, 30, 10)
    assert worktime.add_working_time(start, WorkSpan(days=1)) == at(2026, 12, 31, 10)
    # 2027-01-01 is a Friday: with no override the fallback counts it as a working day
    assert worktime.day_kind(date(2027, 1, 1)) == (WORKDAY, SOURCE_FALLBACK)
    assert worktime.add_working_time(start, WorkSpan(days=2)) == at(2027, 1, 1, 10)
    assert worktime.add_working_time(at(2026, 12, 31, 10), WorkSpan(days=1)) == at(2027, 1, 1, 10)
    assert worktime.add_working_time(start, WorkSpan(days=5)) == at(2027, 1, 6, 10)


def test_an_override_for_new_year_2027_is_skipped_at_once(db: None) -> None:
    start = at(2026, 12, 30, 10)
    assert worktime.add_working_time(start, WorkSpan(days=2)) == at(2027, 1, 1, 10)
    actions.calendar_override_set(day=date(2027, 1, 1), kind="holiday", note="元旦")
    assert worktime.day_kind(date(2027, 1, 1)) == (HOLIDAY, SOURCE_OVERRIDE)
    assert worktime.add_working_time(start, WorkSpan(days=2)) == at(2027, 1, 4, 10)
    assert worktime.add_working_time(at(2026, 12, 31, 17), timedelta(hours=1)) == at(2027, 1, 4, 9)
    actions.calendar_override_delete(day=date(2027, 1, 1))
    assert worktime.add_working_time(start, WorkSpan(days=2)) == at(2027, 1, 1, 10)


def test_a_make_up_saturday_with_its_own_hours_is_worked(db: None) -> None:
    saturday = date(2027, 2, 20)
    assert worktime.day_kind(saturday) == (WEEKEND, SOURCE_FALLBACK)
    actions.calendar_override_set(day=saturday, kind="workday", hours="09:00-11:00", note="调休")
    assert worktime.day_kind(saturday) == (MAKEUP_WORKDAY, SOURCE_OVERRIDE)
    assert worktime.working_periods(saturday) == [(at(2027, 2, 20, 9), at(2027, 2, 20, 11))]
    assert worktime.add_working_time(at(2027, 2, 19, 17), timedelta(hours=1)) == at(
        2027, 2, 20, 9, 30
    )
    assert worktime.add_working_time(at(2027, 2, 19, 17), timedelta(hours=3)) == at(2027, 2, 22, 9)


def test_overrides_reach_other_processes_through_the_stamp(db: None, settings: object) -> None:
    cal = worktime.current_calendar()
    assert cal.day_kind(date(2027, 3, 1)) == (WORKDAY, SOURCE_FALLBACK)
    actions.calendar_override_set(day=date(2027, 3, 1), kind="holiday", note="")
    # another process still holds the old calendar; once its check interval is over it sees the
    # stamp move and rebuilds
    worktime._current = cal
    worktime._checked_at = 0.0
    fresh = worktime.current_calendar()
    assert fresh.version > cal.version
    assert fresh.day_kind(date(2027, 3, 1)) == (HOLIDAY, SOURCE_OVERRIDE)


def test_the_configured_hours_come_from_settings(db: None, settings: object) -> None:
    settings.GRIDGOV_WORKING_HOURS = "09:00-17:00"  # type: ignore[attr-defined]
    assert worktime.working_periods(date(2026, 11, 24)) == [
        (at(2026, 11, 24, 9), at(2026, 11, 24, 17))
    ]
    assert worktime.add_working_time(at(2026, 11, 24, 10), WorkSpan(days=1)) == at(2026, 11, 25, 10)


@pytest.mark.parametrize(
    "text",
    ["", "8-12", "08:30-12:00,11:00-13:00", "12:00-08:00", "25:00-26:00", "08:30-12:00;13:30-17"],
)
def test_bad_hours_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_hours(text)


def test_override_actions_validate(db: None, english: None) -> None:
    with pytest.raises(DomainError, match="choose holiday or workday"):
        actions.calendar_override_set(day=date(2027, 1, 1), kind="party", note="")
    with pytest.raises(DomainError, match="a holiday has no working hours"):
        actions.calendar_override_set(day=date(2027, 1, 1), kind="holiday", hours="09:00-10:00")
    with pytest.raises(DomainError, match="invalid working hours"):
        actions.calendar_override_set(day=date(2027, 1, 1), kind="workday", hours="9-10")
    with pytest.raises(NotFound, match="no calendar override"):
        actions.calendar_override_delete(day=date(2027, 1, 1))
    o = actions.calendar_override_set(day=date(2027, 1, 1), kind="WORKDAY", hours=" 9:00-10:00 ")
    assert (o.kind, o.hours) == ("workday", "09:00-10:00")
