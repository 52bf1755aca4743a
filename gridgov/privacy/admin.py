"""The access log (read-only, for administrators) and the clearance of each role (editable)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from .models import AccessLog, Clearance
from .selectors import forget_clearance

ACCESS_FIELDS = (
    "at",
    "user",
    "kind",
    "subject_type",
    "subject_uuid",
    "region_code",
    "fields",
    "channel",
    "screen",
    "reason",
    "filter",
    "count",
)


@admin.register(AccessLog)
class AccessLogAdmin(admin.ModelAdmin):
    """Append-only: nobody adds, changes or deletes entries here."""

    list_display = [
        "at",
        "user",
        "kind",
        "subject_type",
        "subject_uuid",
        "shown_fields",
        "channel",
        "screen",
        "count",
    ]
    list_filter = ["kind", "channel", "subject_type", ("at", admin.DateFieldListFilter)]
    search_fields = ["=subject_uuid", "user__username", "screen", "region_code"]
    list_select_related = ["user"]
    date_hierarchy = "at"
    fields = ACCESS_FIELDS
    readonly_fields = ACCESS_FIELDS
    show_full_result_count = False

    @admin.display(description=_("fields"))
    def shown_fields(self, obj: AccessLog) -> str:
        return ", ".join(obj.fields or [])

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Clearance)
class ClearanceAdmin(admin.ModelAdmin):
    list_display = ["role", "level", "may_reveal"]
    list_editable = ["level", "may_reveal"]
    ordering = ["role"]

    def save_model(self, request: HttpRequest, obj: Clearance, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        forget_clearance(request.user)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
