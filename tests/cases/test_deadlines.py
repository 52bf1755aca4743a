"""Step limits in working time: parsing, the clock a step starts, the 80 % point, urgent limits,
extensions, suspension, the turn of the year, and where a category's limits come from."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from gridgov.cases.actions import Inputs, case_act
from gridgov.cases.deadlines import (
    NO_CLOCK,
    clock_effect,
    extend_clock,
    light_of,
    parse_limit,
    start_clock,
    step_limit,
    validate_limit,
)
from gridgov.cases.models import Case, Category, CategoryClass, Scheme
from gridgov.cases.workflow import KEEP, STOP, State, Step
from gridgov.core.actions import calendar_override_set
from gridgov.core.worktime import WorkSpan, current_calendar, day_kind, local_zone
from tests.cases.factories import category, report
from tests.cases.test_transitions import case_in
from tests.world import World

pytestmark = pytest.mark.django_db

ZONE = local_zone()


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZONE)


def categories(
    *,
    minor: dict[str, str] | None = None,
    major: dict[str, str] | None = None,
    code: str = "99001",
) -> Category:
    """A major (``code[:2]``) and its minor with the given limits (nothing else set)."""
    parent = Category.objects.create(
        scheme=Scheme.SOCIAL,
        code=code[:2],
        name_zh="其他",
        klass=CategoryClass.EVENT,
        **(major or {}),
    )
    return Category.objects.create(
        scheme=Scheme.SOCIAL,
        code=code,
        name_zh="其他事件",
        klass=CategoryClass.EVENT,
        parent=parent,
        **(minor or {}),
    )


# --- parse_limit ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("30m", WorkSpan(minutes=30)),
        ("4h", WorkSpan(hours=4)),
        ("1d", WorkSpan(days=1)),
        ("1.5d", WorkSpan(days=1.5)),
        (" 2H ", WorkSpan(hours=2)),
        ("365d", WorkSpan(days=365)),
        ("1m", WorkSpan(minutes=1)),
    ],
)
def test_a_limit_is_a_number_and_m_h_or_d(text: str, span: WorkSpan) -> None:
    assert parse_limit(text) == span
    validate_limit(text)


@pytest.mark.parametrize(
    "text",
    ["", "4", "h", "-1h", "0m", "0.0h", "366d", "8761h", "4x", "1h30m", "1,5d", "abc", "1 d 2"],
)
def test_a_malformed_or_out_of_range_limit_is_refused_with_a_reason(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_limit(text)
    assert caught.value.messages and repr(text) in caught.value.messages[0]


def test_a_blank_limit_is_valid_in_a_form_but_not_as_a_limit() -> None:
    validate_limit("")
    with pytest.raises(ValidationError):
        parse_limit(None)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        validate_limit("soon")


# --- the clock a step starts ------------------------------------------------------------------


def test_a_four_hour_clock_skips_the_lunch_break() -> None:
    cat = categories(minor={"handle_limit": "4h"})
    clock = start_clock(cat, Step.HANDLE, local(2026, 11, 23, 10, 0))  # a Monday
    assert (clock.step, clock.limit) == (Step.HANDLE, "4h")
    assert clock.started_at == local(2026, 11, 23, 10, 0)
    assert clock.due_at == local(2026, 11, 23, 15, 30)
    # 80 % of 4 h is 3 h 12 min: 2 h before lunch, 1 h 12 min after
    assert clock.due_soon_at == local(2026, 11, 23, 14, 42)
    assert clock.columns()["light"] == "green"


def test_a_clock_started_on_friday_afternoon_runs_out_on_monday() -> None:
    cat = categories(minor={"handle_limit": "1d"})
    clock = start_clock(cat, Step.HANDLE, local(2026, 11, 27, 16, 0))  # a Friday
    # 1.5 h on Friday, 3.5 h on Monday morning, 2.5 h after lunch
    assert clock.due_at == local(2026, 11, 30, 16, 0)


def test_a_clock_started_at_night_starts_counting_at_the_next_morning() -> None:
    cat = categories(minor={"handle_limit": "30m"})
    clock = start_clock(cat, Step.HANDLE, local(2026, 11, 21, 23, 0))  # a Saturday night
    assert clock.due_at == local(2026, 11, 23, 9, 0)


def test_a_deadline_that_uses_up_a_period_exactly_falls_on_its_end() -> None:
    cat = categories(minor={"handle_limit": "3.5h"})
    clock = start_clock(cat, Step.HANDLE, local(2026, 11, 23, 8, 30))
    assert clock.due_at == local(2026, 11, 23, 12, 0)  # not 13:30
    cal = current_calendar()
    assert not cal.is_within_working_time(clock.due_at)
    assert (local(2026, 11, 23, 8, 30), clock.due_at) in cal.working_periods(date(2026, 11, 23))


@pytest.mark.parametrize("limit", ["10m", "45m", "2h", "3.5h", "1d", "2.5d", "7d"])
def test_every_due_time_lies_in_working_time_or_at_the_end_of_a_period(limit: str) -> None:
    cal = current_calendar()
    cat = categories(minor={"handle_limit": limit})
    start = local(2026, 11, 20, 0, 7)  # a Friday; the starts run through a weekend
    for i in range(0, 4 * 24 * 60, 53):
        at = start + timedelta(minutes=i)
        clock = start_clock(cat, Step.HANDLE, at)
        assert clock.due_at is not None and clock.due_soon_at is not None
        for instant in (clock.due_at, clock.due_soon_at):
            local_instant = instant.astimezone(ZONE)
            ends = [end for _s, end in cal.working_periods(local_instant.date())]
            assert cal.is_within_working_time(instant) or local_instant in ends, (at, instant)
        assert cal.working_time_between(at, clock.due_at) == cal.span(parse_limit(limit))
        assert cal.working_time_between(at, clock.due_soon_at) == cal.span(parse_limit(limit)) * 0.8


def test_a_report_starts_the_register_clock_and_urgency_shortens_it(
    world: World, settings: Any
) -> None:
    at = local(2026, 11, 23, 9, 0)
    normal = report(world.grid_worker_a, at=at)
    assert (normal.step, normal.step_limit) == (Step.REGISTER, "30m")
    assert normal.due_at == local(2026, 11, 23, 9, 30)
    assert normal.due_soon_at == local(2026, 11, 23, 9, 24)
    urgent = report(world.grid_worker_a, urgency="urgent", at=at)
    assert urgent.step_limit == "10m" and urgent.due_at == local(2026, 11, 23, 9, 10)
    settings.GRIDGOV_CASE_URGENT_REGISTER_LIMIT = "5m"
    critical = report(world.grid_worker_a, urgency="critical", at=at)
    assert critical.step_limit == "5m" and critical.due_at == local(2026, 11, 23, 9, 5)


def test_a_category_may_set_its_own_urgent_register_limit(settings: Any) -> None:
    settings.GRIDGOV_CASE_URGENT_REGISTER_LIMIT = "10m"
    settings.GRIDGOV_CASE_REGISTER_LIMIT = "30m"
    own = categories(minor={"urgent_register_limit": "3m", "register_limit": "20m"})
    assert step_limit(own, Step.REGISTER, emergency=True) == "3m"
    assert step_limit(own, Step.REGISTER) == "20m"
    at = local(2026, 11, 23, 9, 0)
    assert start_clock(own, Step.REGISTER, at, emergency=True).due_at == local(2026, 11, 23, 9, 3)
    # the emergency flag only shortens registration
    assert step_limit(own, Step.SIGN, emergency=True) == step_limit(own, Step.SIGN)


# --- where limits come from -------------------------------------------------------------------


def test_a_minor_category_uses_its_own_limit_then_its_majors_then_the_setting(
    settings: Any,
) -> None:
    settings.GRIDGOV_CASE_HANDLE_LIMIT = "6h"
    minor = categories(minor={"handle_limit": "2h"}, major={"handle_limit": "3h"})
    assert step_limit(minor, Step.HANDLE) == "2h"
    minor.handle_limit = ""
    assert step_limit(minor, Step.HANDLE) == "3h"
    assert minor.parent is not None
    minor.parent.handle_limit = ""
    assert step_limit(minor, Step.HANDLE) == "6h"
    settings.GRIDGOV_CASE_HANDLE_LIMIT = "1d"
    assert step_limit(minor, Step.HANDLE) == "1d"


def test_each_step_reads_its_own_category_field_or_setting(settings: Any) -> None:
    settings.GRIDGOV_CASE_SIGN_LIMIT = "24h"
    settings.GRIDGOV_CASE_VERIFY_LIMIT = "1h"
    settings.GRIDGOV_CASE_CLOSE_LIMIT = "45m"
    plain = categories()
    assert step_limit(plain, Step.SIGN) == "24h"
    assert step_limit(plain, Step.CLOSE) == "45m"
    checked = categories(minor={"check_limit": "2h"}, major={"sign_limit": "8h"}, code="98001")
    assert step_limit(checked, Step.SIGN) == "8h"
    # checking, reviewing a self-handling and verifying on site all use the check limit
    assert {step_limit(checked, s) for s in (Step.CHECK, Step.REVIEW, Step.VERIFY)} == {"2h"}
    assert step_limit(checked, Step.CLOSE) == "45m"


# --- effects: keep, stop, extend, suspend -------------------------------------------------------


def test_a_transition_keeps_stops_or_starts_the_clock() -> None:
    cat = categories(minor={"check_limit": "1h"})
    at = local(2026, 11, 23, 9, 0)
    assert clock_effect(KEEP, cat, at) is None
    assert clock_effect(STOP, cat, at) is NO_CLOCK
    assert NO_CLOCK.columns() == {
        "step": "",
        "step_started_at": None,
        "step_limit": "",
        "due_soon_at": None,
        "due_at": None,
        "light": "",
    }
    started = clock_effect(Step.CHECK, cat, at)
    assert started is not None and started.due_at == local(2026, 11, 23, 10, 0)


def test_the_light_is_green_then_yellow_at_80_percent_then_red() -> None:
    soon, due = local(2026, 11, 23, 14, 42), local(2026, 11, 23, 15, 30)
    assert light_of(None, None, due) == ""
    assert light_of(soon, due, local(2026, 11, 23, 10, 0)) == "green"
    assert light_of(soon, due, soon) == "yellow"
    assert light_of(soon, due, local(2026, 11, 23, 15, 29)) == "yellow"
    assert light_of(soon, due, due) == "red"
    assert light_of(soon, due, local(2026, 11, 24, 9, 0)) == "red"


def test_an_extension_moves_the_due_time_by_its_span_of_working_time() -> None:
    cal = current_calendar()
    started = local(2026, 11, 23, 10, 0)
    case = Case(step_started_at=started, due_at=local(2026, 11, 23, 15, 30))
    moved = extend_clock(case, "2h")
    assert moved["due_at"] == local(2026, 11, 23, 17, 30)  # the end of the day, not 08:30
    assert moved["light"] == "green"
    # the yellow point is 80 % of the whole (4 h + 2 h = 6 h: 4 h 48 min)
    soon = moved["due_soon_at"]
    assert isinstance(soon, datetime) and soon == local(2026, 11, 23, 16, 18)
    assert cal.working_time_between(started, soon) == timedelta(hours=4.8)
    over_night = extend_clock(case, "3h")
    assert over_night["due_at"] == local(2026, 11, 24, 9, 30)
    assert extend_clock(Case(), "2h") == {}


def test_approving_an_extension_moves_the_case_due_time(world: World) -> None:
    case = case_in(world, "handling+extension")
    assert case.pending_params == {"span": "2h"}
    due = case.due_at
    assert due is not None
    done = case_act(
        case=case.number, actor=world.dispatcher, action="approve_extension", version=case.version
    )
    assert done.due_at == current_calendar().add_working_time(due, timedelta(hours=2))
    assert done.extension_count == 1


def _act_at(case: Case, actor: Any, action: str, at: datetime, **inputs: Any) -> Case:
    case.refresh_from_db()
    return case_act(
        case=case.number,
        actor=actor,
        action=action,
        version=case.version,
        inputs=Inputs(**inputs),
        at=at,
    )


def test_a_suspension_stops_the_clock_and_resuming_restarts_it(world: World) -> None:
    case = case_in(world, State.HANDLING)
    case = _act_at(
        case, world.unit_handler, "request_suspension", local(2026, 12, 1, 9, 0), reason="汛期"
    )
    assert case.due_at is not None  # asking does not stop it
    case = _act_at(case, world.dispatcher, "approve_suspension", local(2026, 12, 1, 10, 0))
    assert (case.state, case.step, case.step_started_at, case.due_at) == (
        State.SUSPENDED,
        "",
        None,
        None,
    )
    case = _act_at(case, world.shift_leader, "resume", local(2026, 12, 3, 14, 0))
    assert (case.state, case.step, case.step_limit) == (State.HANDLING, Step.HANDLE, "2h")
    assert case.step_started_at == local(2026, 12, 3, 14, 0)
    assert case.due_at == local(2026, 12, 3, 16, 0)  # the whole limit again, from the resume


# --- the turn of the year (the package knows 2026, not 2027) --------------------------------


def test_a_clock_started_on_2026_12_30_runs_into_2027_on_the_fallback_calendar() -> None:
    assert day_kind(date(2026, 12, 31)) == ("workday", "chinese-calendar")
    assert day_kind(date(2027, 1, 1)) == ("workday", "fallback")
    assert day_kind(date(2027, 1, 2)) == ("weekend", "fallback")
    cat = categories(minor={"handle_limit": "3d"})
    clock = start_clock(cat, Step.HANDLE, local(2026, 12, 30, 10, 0))  # a Wednesday
    # Thursday the 31st, Friday 1 January (a working day for the fallback), Monday the 4th
    assert clock.due_at == local(2027, 1, 4, 10, 0)
    # a day's clock started at the close of 31 December ends at the close of 1 January
    cat.handle_limit = "1d"
    late = start_clock(cat, Step.HANDLE, local(2026, 12, 31, 17, 30))
    assert late.due_at == local(2027, 1, 1, 17, 30)


def test_an_administrators_holiday_on_new_years_day_2027_moves_the_deadline() -> None:
    calendar_override_set(day=date(2027, 1, 1), kind="holiday", note="元旦")
    cat = categories(minor={"handle_limit": "3d"})
    clock = start_clock(cat, Step.HANDLE, local(2026, 12, 30, 10, 0))
    assert clock.due_at == local(2027, 1, 5, 10, 0)


def test_a_case_reported_on_new_years_eve_evening_is_due_in_2027(world: World) -> None:
    case = report(world.grid_worker_a, at=local(2026, 12, 31, 17, 20))
    # 10 minutes on the 31st, 20 on Friday 1 January 2027 (fallback working day)
    assert case.due_at == local(2027, 1, 1, 8, 50)
    assert case.number.split("-")[1] == "20261231"


def test_a_category_made_in_the_factory_has_a_two_hour_handling_limit() -> None:
    assert step_limit(category(), Step.HANDLE) == "2h"
