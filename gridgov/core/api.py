"""Core API: the working calendar (days, deadlines) and its administrator overrides."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status
from pydantic import field_validator

from gridgov.accounts.selectors import is_administrator
from gridgov.core import actions, worktime
from gridgov.core.errors import DomainError, PermissionDenied
from gridgov.core.idempotency import idempotent

router = Router()

MAX_DAYS = 400
MAX_SPAN = timedelta(days=3 * 366)  # three years of round-the-clock working time


class DayOut(Schema):
    date: date
    kind: str
    source: str
    working: bool
    hours: str
    name: str
    note: str
    covered: bool


class DaysQuery(Schema):
    start: date
    end: date


#: The largest value of each unit of a span (MAX_SPAN, counting a working day as at least an
#: hour): anything larger is refused (422) before any arithmetic, which would overflow.
_MAX_MINUTES = MAX_SPAN.total_seconds() / 60
_MAX_HOURS = _MAX_MINUTES / 60


#: The years a deadline may start in. Before 1901 Asia/Shanghai had no whole-minute offset
#: (local mean time, +08:05:43, which no RFC 3339 date-time can state); near year 9999 the
#: deadline would fall past the last date Python can count.
FIRST_YEAR, LAST_YEAR = 1970, 2999


class DeadlineQuery(Schema):
    start: datetime = Field(description=f"from {FIRST_YEAR} to {LAST_YEAR}")
    minutes: float | None = Field(None, ge=0, le=_MAX_MINUTES, allow_inf_nan=False)
    hours: float | None = Field(None, ge=0, le=_MAX_HOURS, allow_inf_nan=False)
    days: float | None = Field(None, ge=0, le=_MAX_HOURS, allow_inf_nan=False)

    @field_validator("start")
    @classmethod
    def _start_in_range(cls, value: datetime) -> datetime:
        if not FIRST_YEAR <= value.year <= LAST_YEAR:
            raise ValueError(
                _("start must lie in the years %(first)s to %(last)s")
                % {"first": FIRST_YEAR, "last": LAST_YEAR}
            )
        return value


class DeadlineOut(Schema):
    start: datetime
    due_at: datetime
    working_minutes: float
    covered: bool


class OverrideIn(Schema):
    kind: str
    hours: str | None = None
    note: str = ""


class OverrideOut(Schema):
    date: date
    kind: str
    hours: str
    note: str
    day: DayOut


def _parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise DomainError(
            _("%(value)s is not a date: write YYYY-MM-DD") % {"value": text}, status=422
        ) from exc


def _require_admin(request: HttpRequest) -> None:
    if not is_administrator(request.user):
        raise PermissionDenied(_("only administrators may change the working calendar"))


@router.get("/calendar/days", response=list[DayOut], url_name="calendar_days")
def calendar_days(request: HttpRequest, q: Query[DaysQuery]) -> list[dict[str, Any]]:
    """Every day from ``start`` to ``end`` (inclusive, at most 400 days): kind and source."""
    if q.end < q.start:
        raise DomainError(_("end must not be before start"), status=422)
    count = (q.end - q.start).days + 1
    if count > MAX_DAYS:
        raise DomainError(
            _("at most %(max)s days at a time; you asked for %(count)s")
            % {"max": MAX_DAYS, "count": count},
            detail={"max": MAX_DAYS, "count": count},
            status=422,
        )
    cal = worktime.current_calendar()
    return [worktime.describe(info) for info in cal.days(q.start, q.end)]


@router.get("/calendar/deadline", response=DeadlineOut, url_name="calendar_deadline")
def calendar_deadline(request: HttpRequest, q: Query[DeadlineQuery]) -> dict[str, Any]:
    """The deadline ``minutes`` + ``hours`` + ``days`` of working time after ``start``.

    A naive ``start`` is local time (Asia/Shanghai). A day is one standard working day.
    """
    if q.minutes is None and q.hours is None and q.days is None:
        raise DomainError(_("give minutes, hours or days"), status=422)
    values = [v for v in (q.minutes, q.hours, q.days) if v is not None]
    if any(v < 0 for v in values):
        raise DomainError(_("a working-time span cannot be negative"), status=422)
    cal = worktime.current_calendar()
    span = worktime.WorkSpan(minutes=q.minutes or 0, hours=q.hours or 0, days=q.days or 0)
    length = cal.span(span)
    if length > MAX_SPAN:
        raise DomainError(_("the span is too long"), status=422)
    start = worktime.as_aware(q.start)
    due = cal.add_working_time(start, length)
    return {
        "start": start,
        "due_at": due,
        "working_minutes": length.total_seconds() / 60,
        "covered": worktime.year_covered(due.year),
    }


@router.put("/calendar/overrides/{day}", response=OverrideOut, url_name="calendar_override")
@idempotent
def calendar_override_put(request: HttpRequest, day: str, payload: OverrideIn) -> dict[str, Any]:
    """Make a date a holiday or a working day (administrators only)."""
    _require_admin(request)
    d = _parse_day(day)
    override = actions.calendar_override_set(
        day=d, kind=payload.kind, hours=payload.hours, note=payload.note
    )
    return {
        "date": override.date,
        "kind": override.kind,
        "hours": override.hours,
        "note": override.note,
        "day": worktime.describe(worktime.day_info(d)),
    }


@router.delete("/calendar/overrides/{day}", response={204: None}, url_name="calendar_override")
@idempotent
def calendar_override_delete(request: HttpRequest, day: str) -> Status[None]:
    """Remove a date's override (administrators only); 404 when there is none."""
    _require_admin(request)
    actions.calendar_override_delete(day=_parse_day(day))
    return Status(204, None)
