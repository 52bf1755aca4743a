from django.urls import path

from gridgov.geo import views

app_name = "geo"

urlpatterns = [
    path("map/", views.map_view, name="map"),
    path("regions/<str:code>/", views.region_view, name="region"),
    path("regions/<str:code>/staff/", views.staff_view, name="staff"),
]
