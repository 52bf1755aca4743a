"""The registry screens (mounted under /registry/)."""

from django.urls import path

from gridgov.registry import views, views_ledger

app_name = "registry"

urlpatterns = [
    path("", views.home, name="home"),
    path("search/", views.search, name="search"),
    path("stats/", views.statistics, name="stats"),
    path("access-log/", views.access_log, name="access_log"),
    path("ledger/", views_ledger.ledger, name="ledger"),
    path("ledger/upload/", views_ledger.ledger_upload, name="ledger_upload"),
    path("ledger/progress/", views_ledger.ledger_progress, name="ledger_progress"),
    path("ledger/export/", views_ledger.ledger_export_view, name="ledger_export"),
    path("ledger/<uuid:key>/", views_ledger.ledger_import, name="ledger_import"),
    path("ledger/<uuid:key>/check/", views_ledger.ledger_recheck_view, name="ledger_check"),
    path("ledger/<uuid:key>/commit/", views_ledger.ledger_commit_view, name="ledger_commit"),
    path("ledger/<uuid:key>/errors/", views_ledger.ledger_errors, name="ledger_errors"),
    path("grid/<str:code>/", views.grid, name="grid"),
    path("grid/<str:code>/buildings.geojson", views.grid_buildings, name="grid_buildings"),
    path("grid/<str:code>/buildings/new/", views.building_new, name="building_new"),
    path("grid/<str:code>/organisations/", views.organisations, name="organisations"),
    path("grid/<str:code>/organisations/new/", views.organisation_new, name="organisation_new"),
    path("grid/<str:code>/components/", views.components, name="components"),
    path("grid/<str:code>/components/new/", views.component_new, name="component_new"),
    path("building/<uuid:key>/", views.building, name="building"),
    path("building/<uuid:key>/edit/", views.building_edit, name="building_edit"),
    path("building/<uuid:key>/rooms/new/", views.room_new, name="room_new"),
    path("room/<uuid:key>/", views.room, name="room"),
    path("room/<uuid:key>/edit/", views.room_edit, name="room_edit"),
    path("room/<uuid:key>/households/new/", views.household_new, name="household_new"),
    path("household/<uuid:key>/", views.household, name="household"),
    path("household/<uuid:key>/edit/", views.household_edit, name="household_edit"),
    path("household/<uuid:key>/people/new/", views.person_new, name="person_new"),
    path("person/<uuid:key>/", views.person, name="person"),
    path("person/<uuid:key>/edit/", views.person_edit, name="person_edit"),
    path("person/<uuid:key>/reveal/", views.person_reveal, name="person_reveal"),
    path("person/<uuid:key>/tags/", views.person_tag_add, name="person_tag_add"),
    path(
        "person/<uuid:key>/tags/<slug:tag>/remove/",
        views.person_tag_remove,
        name="person_tag_remove",
    ),
    path("organisation/<uuid:key>/", views.organisation, name="organisation"),
    path("organisation/<uuid:key>/edit/", views.organisation_edit, name="organisation_edit"),
    path("component/<uuid:key>/", views.component, name="component"),
    path("component/<uuid:key>/edit/", views.component_edit, name="component_edit"),
    path("<str:kind>/<uuid:key>/close/", views.record_close, name="close"),
    path("<str:kind>/<uuid:key>/reopen/", views.record_reopen, name="reopen"),
]
