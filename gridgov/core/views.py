from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from gridgov.accounts.selectors import is_administrator, user_assignments, user_scope
from gridgov.geo.models import Region


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """A home page that fits the user's roles: their places, and what they can open."""
    assignments = user_assignments(request.user)
    scope = user_scope(request.user)
    places = list(
        Region.objects.filter(code__in=[a.region.code for a in assignments if a.region]).order_by(
            "code"
        )
    )
    return render(
        request,
        "core/home.html",
        {
            "assignments": assignments,
            "places": places,
            "scope_everything": scope.everything,
            "is_admin": is_administrator(request.user),
            "demo_history": _demo_history_progress(assignments),
            "demo_registry": _demo_registry_progress(assignments),
        },
    )


def _demo_history_progress(assignments: list[Any]) -> dict[str, int] | None:
    """The demo history's progress while it loads in the background, for staff."""
    from gridgov.accounts.models import Role
    from gridgov.cases.demo import history_progress

    if not any(a.role != Role.RESIDENT for a in assignments):
        return None
    progress = history_progress()
    return {"done": progress[0], "total": progress[1]} if progress else None


def _demo_registry_progress(assignments: list[Any]) -> dict[str, int] | None:
    """The demo residents' progress while they load in the background, for staff."""
    from gridgov.accounts.models import Role
    from gridgov.registry.demo import registry_progress

    if not any(a.role != Role.RESIDENT for a in assignments):
        return None
    progress = registry_progress()
    return {"done": progress[0], "total": progress[1]} if progress else None


def healthz(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
