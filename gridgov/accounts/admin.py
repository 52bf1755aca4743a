from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from gridgov.accounts.models import ApiToken, RoleAssignment, Unit, User


class RoleAssignmentInline(admin.TabularInline):
    model = RoleAssignment
    extra = 0
    autocomplete_fields = ["region", "unit"]


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    inlines = [RoleAssignmentInline]
    list_display = ["username", "display_name", "is_active", "last_login"]
    search_fields = ["username", "display_name"]
    fieldsets = (
        *(BaseUserAdmin.fieldsets or ()),
        ("gridgov", {"fields": ("display_name", "work_phone")}),
    )


@admin.register(Unit)
class UnitAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "kind", "is_active"]
    list_filter = ["kind", "is_active"]
    search_fields = ["code", "name"]
    filter_horizontal = ["regions"]


@admin.register(RoleAssignment)
class RoleAssignmentAdmin(admin.ModelAdmin):
    list_display = ["user", "role", "region", "unit"]
    list_filter = ["role"]
    search_fields = ["user__username", "user__display_name", "region__code", "region__name"]
    autocomplete_fields = ["user", "region", "unit"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "user",
        "prefix",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    readonly_fields = ["prefix", "key_hash", "last_used_at"]
    search_fields = ["name", "user__username", "prefix"]
