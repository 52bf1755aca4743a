from django.contrib import admin

from gridgov.core.models import Stamp


@admin.register(Stamp)
class StampAdmin(admin.ModelAdmin):
    list_display = ["key", "version", "updated_at"]
    readonly_fields = ["key", "version", "updated_at"]


# --- the working calendar ----------------------------------------------------------------

import calendar as _pycalendar  # noqa: E402
from datetime import date as _date  # noqa: E402
from typing import Any  # noqa: E402

from django import forms  # noqa: E402
from django.core.exceptions import PermissionDenied as _AdminPermissionDenied  # noqa: E402
from django.db.models import QuerySet  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.template.response import TemplateResponse  # noqa: E402
from django.urls import URLPattern, path, reverse  # noqa: E402
from django.utils import timezone  # noqa: E402
from django.utils.translation import gettext  # noqa: E402

from gridgov.core import actions as core_actions  # noqa: E402
from gridgov.core import worktime  # noqa: E402
from gridgov.core.errors import DomainError  # noqa: E402
from gridgov.core.models import CalendarOverride  # noqa: E402


class CalendarOverrideForm(forms.ModelForm):
    class Meta:
        model = CalendarOverride
        fields = ["date", "kind", "hours", "note"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        day = data.get("date") or (self.instance.date if self.instance.pk else None)
        if day is not None and data.get("kind"):
            try:
                kind, hours, note = core_actions.override_clean(
                    day=day, kind=data["kind"], hours=data.get("hours"), note=data.get("note", "")
                )
            except DomainError as exc:
                raise forms.ValidationError(exc.message) from exc
            data.update(kind=kind, hours=hours, note=note)
        return data


@admin.register(CalendarOverride)
class CalendarOverrideAdmin(admin.ModelAdmin):
    """Overrides are saved and deleted through ``core.actions`` (which bump the calendar stamp)."""

    form = CalendarOverrideForm
    change_list_template = "admin/core/calendaroverride/change_list.html"
    list_display = ["date", "kind", "hours", "note", "updated_at"]
    list_filter = ["kind"]
    search_fields = ["note"]
    date_hierarchy = "date"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["date"] if obj is not None and obj.pk else []

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        saved = core_actions.calendar_override_set(
            day=obj.date, kind=obj.kind, hours=obj.hours, note=obj.note
        )
        obj.pk = saved.pk
        obj.created_at, obj.updated_at = saved.created_at, saved.updated_at

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        core_actions.calendar_override_delete(day=obj.date)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for day in list(queryset.values_list("date", flat=True)):
            core_actions.calendar_override_delete(day=day)

    def get_urls(self) -> list[URLPattern]:
        custom = [
            path(
                "working-calendar/",
                self.admin_site.admin_view(self.working_calendar_view),
                name="core_calendaroverride_calendar",
            ),
        ]
        return custom + super().get_urls()

    def working_calendar_view(self, request: HttpRequest) -> HttpResponse:
        """A read-only month grid: kinds, sources, and a warning for years without data."""
        if not self.has_view_permission(request):
            raise _AdminPermissionDenied
        today = timezone.localdate()
        year, month = today.year, today.month
        raw = request.GET.get("month", "")
        try:
            y_text, m_text = raw.split("-")
            year, month = int(y_text), int(m_text)
            _date(year, month, 1)
            if not core_actions.FIRST_YEAR <= year <= core_actions.LAST_YEAR:
                raise ValueError(raw)
        except ValueError:
            year, month = today.year, today.month
        cal = worktime.current_calendar()
        weeks: list[list[dict[str, Any]]] = []
        for week in _pycalendar.Calendar(firstweekday=0).monthdatescalendar(year, month):
            weeks.append(
                [
                    {"info": cal.day(d), "in_month": d.month == month, "today": d == today}
                    for d in week
                ]
            )
        first = _date(year, month, 1)
        previous = _date(year - 1, 12, 1) if month == 1 else _date(year, month - 1, 1)
        following = _date(year + 1, 1, 1) if month == 12 else _date(year, month + 1, 1)
        month_days: list[worktime.DayInfo] = [
            c["info"] for week in weeks for c in week if c["in_month"]
        ]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext("Working calendar"),
            "month": first,
            "month_text": f"{year:04d}-{month:02d}",
            "previous_month": f"{previous:%Y-%m}",
            "next_month": f"{following:%Y-%m}",
            "weeks": weeks,
            "weekdays": [
                gettext("Mon"),
                gettext("Tue"),
                gettext("Wed"),
                gettext("Thu"),
                gettext("Fri"),
                gettext("Sat"),
                gettext("Sun"),
            ],
            "covered": worktime.year_covered(year),
            "working_days": sum(1 for i in month_days if i.is_working),
            "default_hours": worktime.format_hours(cal.hours),
            "changelist_url": reverse("admin:core_calendaroverride_changelist"),
        }
        return TemplateResponse(request, "admin/core/working_calendar.html", context)
