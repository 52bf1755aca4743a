from django.contrib import admin

from gridgov.registry.models import Building


@admin.register(Building)
class BuildingAdmin(admin.ModelAdmin):
    list_display = ["address", "kind", "households", "community_code", "grid"]
    list_filter = ["kind"]
    search_fields = ["address", "estate", "community_code"]
    raw_id_fields = ["grid"]
