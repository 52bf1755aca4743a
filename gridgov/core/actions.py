"""Writes of the core app: the working calendar's administrator overrides."""

from __future__ import annotations

from datetime import date

from django.db import transaction
from django.utils.translation import gettext as _

from gridgov.core import worktime
from gridgov.core.errors import DomainError, NotFound
from gridgov.core.models import CalendarOverride

OVERRIDE_KINDS = (CalendarOverride.Kind.HOLIDAY.value, CalendarOverride.Kind.WORKDAY.value)
NOTE_MAX = 200
FIRST_YEAR, LAST_YEAR = 2000, 2100


def override_clean(*, day: date, kind: str, hours: str | None, note: str) -> tuple[str, str, str]:
    """Validate an override; returns ``(kind, hours, note)`` normalised, or raises DomainError."""
    if not isinstance(day, date):
        raise DomainError(_("the date must be a calendar date (YYYY-MM-DD)"), status=422)
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise DomainError(
            _("the date %(day)s is outside the calendar (years %(first)s to %(last)s)")
            % {"day": day.isoformat(), "first": FIRST_YEAR, "last": LAST_YEAR},
            status=422,
        )
    kind = (kind or "").strip().lower()
    if kind not in OVERRIDE_KINDS:
        raise DomainError(
            _("unknown kind %(kind)s: choose holiday or workday") % {"kind": kind or "''"},
            detail={"kind": kind},
            status=422,
        )
    hours_text = (hours or "").strip()
    if hours_text and kind == CalendarOverride.Kind.HOLIDAY:
        raise DomainError(_("a holiday has no working hours: leave the hours empty"), status=422)
    if hours_text:
        try:
            hours_text = worktime.format_hours(worktime.parse_hours(hours_text))
        except ValueError as exc:
            raise DomainError(
                _("invalid working hours: %(problem)s") % {"problem": exc}, status=422
            ) from exc
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise DomainError(
            _("the note is too long: at most %(max)s characters") % {"max": NOTE_MAX}, status=422
        )
    return kind, hours_text, note


@transaction.atomic
def calendar_override_set(
    *, day: date, kind: str, hours: str | None = None, note: str = ""
) -> CalendarOverride:
    """Make ``day`` a holiday or a working day (with optional own hours), replacing any entry."""
    kind, hours_text, note = override_clean(day=day, kind=kind, hours=hours, note=note)
    override, _created = CalendarOverride.objects.update_or_create(
        date=day, defaults={"kind": kind, "hours": hours_text, "note": note}
    )
    worktime.calendar_changed()
    return override


@transaction.atomic
def calendar_override_delete(*, day: date) -> None:
    """Remove the override of ``day``; the date follows chinese-calendar (or the fallback) again."""
    deleted, _detail = CalendarOverride.objects.filter(date=day).delete()
    if not deleted:
        raise NotFound(
            _("there is no calendar override on %(day)s") % {"day": day.isoformat()},
            detail={"date": day.isoformat()},
        )
    worktime.calendar_changed()
