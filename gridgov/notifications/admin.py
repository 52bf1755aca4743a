"""Admin: notifications and deliveries are records (read-only); preferences may be changed."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from gridgov.notifications.models import Delivery, Notification, NotificationPreference


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "recipient", "kind", "title", "read_at", "delivery_state"]
    list_filter = ["delivery_state", "kind"]
    search_fields = ["recipient__username", "title", "subject_ref", "kind"]
    list_select_related = ["recipient"]
    date_hierarchy = "created_at"
    exclude = ["claim_token", "claimed_at"]


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "recipient",
        "channel",
        "to",
        "status",
        "is_digest",
        "notification_count",
    ]
    list_filter = ["channel", "status", "is_digest"]
    search_fields = ["recipient__username"]
    list_select_related = ["recipient"]
    raw_id_fields = ["notification"]
    date_hierarchy = "created_at"


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    list_display = ["user", "email", "sms", "digest_threshold", "updated_at"]
    list_filter = ["email", "sms"]
    search_fields = ["user__username", "user__display_name"]
    autocomplete_fields = ["user"]
    readonly_fields = ["next_digest_at", "updated_at"]
