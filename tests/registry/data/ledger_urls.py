"""URLs for the ledger API tests: the project's, with the ledger router at its place.

Until the router is mounted in ``gridgov.api.main`` (at ``/api/v1/registry/ledger``), the tests
mount it on an API of their own at the same path, with the project's authentication and error
handlers; once it is mounted, these are simply the project's URLs.
"""

from __future__ import annotations

from django.urls import path
from ninja import NinjaAPI

from gridgov.api.main import TokenAuth, TokenHeaderAuth, api
from gridgov.registry.api_ledger import router
from gridgov.urls import urlpatterns as project_urls

MOUNTED = any(r is router for _prefix, r in api._routers)

if MOUNTED:
    urlpatterns = list(project_urls)
else:
    from ninja.security import django_auth

    ledger_api = NinjaAPI(
        title="ledger (tests)",
        auth=[TokenAuth(), TokenHeaderAuth(), django_auth],
        urls_namespace="ledger_tests",
        docs_url=None,
        openapi_url=None,
    )
    ledger_api._exception_handlers.update(api._exception_handlers)
    ledger_api.add_router("/registry/ledger", router)
    urlpatterns = [path("api/v1/", ledger_api.urls), *project_urls]
