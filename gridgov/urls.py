"""One URL map for the whole site."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from gridgov.api.main import api
from gridgov.core import views as core_views

urlpatterns = [
    path("", core_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("metrics", core_views.metrics, name="metrics"),
    path("accounts/", include("gridgov.accounts.urls")),
    path("notifications/", include("gridgov.notifications.urls")),
    path("cases/", include("gridgov.cases.urls")),
    path("registry/", include("gridgov.registry.urls")),
    path("", include("gridgov.geo.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("api/open311/v2/", include("gridgov.api.open311")),
    path("favicon.ico", RedirectView.as_view(url="/static/gridgov/favicon.svg"), name="favicon"),
    path("api/docs", RedirectView.as_view(url="/api/v1/docs", permanent=False), name="api_docs"),
]

if settings.GRIDGOV_BENCH_ENDPOINTS:  # bench/bench_intake.py only: never routed otherwise
    from gridgov.core import bench_views

    urlpatterns.append(path("bench/insert", bench_views.bench_insert, name="bench_insert"))
