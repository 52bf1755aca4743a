from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from gridgov.accounts.selectors import user_scope
from gridgov.core.errors import DomainError
from gridgov.geo import selectors
from gridgov.geo.api import region_detail_data, staff_data


def _error_page(request: HttpRequest, exc: DomainError) -> HttpResponse:
    context = {"message": exc.message, "status": exc.status}
    return render(request, "core/error.html", context, status=exc.status)


@login_required
def map_view(request: HttpRequest) -> HttpResponse:
    """The map of the regions and grids the user may see; ``?focus=CODE`` zooms to one."""
    scope = user_scope(request.user)
    focus = request.GET.get("focus", "")
    if not focus and not scope.everything and len(scope.prefixes) == 1:
        focus = scope.prefixes[0]
    return render(request, "geo/map.html", {"focus": focus})


@login_required
def region_view(request: HttpRequest, code: str) -> HttpResponse:
    try:
        region = selectors.region_get(user=request.user, code=code)
    except DomainError as exc:
        return _error_page(request, exc)
    data = region_detail_data(request, region, geometry=False)
    children = selectors.regions_visible_to(request.user).filter(parent=region).order_by("code")
    return render(
        request, "geo/region.html", {"region": region, "data": data, "children": children}
    )


@login_required
def staff_view(request: HttpRequest, code: str) -> HttpResponse:
    try:
        region = selectors.region_staff_access(user=request.user, code=code)
    except DomainError as exc:
        return _error_page(request, exc)
    return render(request, "geo/staff.html", {"region": region, "data": staff_data(region)})
