from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
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
    """Liveness: the process answers. Cheap on purpose (no database): a load balancer calls it
    often, and a database outage must not get every app server restarted."""
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: the database answers, every migration is applied, a worker ran recently and
    the media folder is writable. 200 or 503 naming the failed checks; the details (ages,
    unapplied migrations, error classes) only for operators (``operator_access``)."""
    from gridgov.core.observability import (
        operator_access,
        readiness_body,
        readiness_checks,
        readiness_log,
    )

    checks = readiness_checks()
    readiness_log(checks)
    body, ready = readiness_body(checks, details=operator_access(request))
    return JsonResponse(body, status=200 if ready else 503)


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics, for allowed addresses or the metrics token (403 otherwise)."""
    from gridgov.core.observability import metrics_exposition, operator_access

    if not operator_access(request):
        return HttpResponse("forbidden\n", status=403, content_type="text/plain; charset=utf-8")
    body, content_type = metrics_exposition(request.headers.get("Accept"))
    return HttpResponse(body, content_type=content_type)
