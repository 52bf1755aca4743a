from django.contrib import admin

from gridgov.core.models import Stamp


@admin.register(Stamp)
class StampAdmin(admin.ModelAdmin):
    list_display = ["key", "version", "updated_at"]
    readonly_fields = ["key", "version", "updated_at"]
