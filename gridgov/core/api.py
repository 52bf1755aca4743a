"""Core API: the working calendar (days, deadlines) and its administrator overrides."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema, Status

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


class DeadlineQuery(Schema):
    start: datetime
    minutes: float | None = None
    hours: float | None = None
    days: float | None = None


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
