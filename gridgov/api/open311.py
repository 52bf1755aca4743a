"""Open311 GeoReport v2 service discovery: the categories as services, public like the spec.

Mounted at ``/api/open311/v2/`` (``gridgov/urls.py``):

- ``services.json``: every active minor category as a service (``service_code`` is
  ``<scheme>:<code>``, e.g. ``legacy:0102``; ``group`` is the major's name);
- ``services/<service_code>.json``: the service definition (the Open311 attributes);
- ``discovery.json``: the service discovery document.

JSON only (XML answers 400); names follow the request's language (Accept-Language). One
jurisdiction is served, so ``jurisdiction_id`` is accepted and ignored. Errors answer the
spec's shape, ``[{"code": 404, "description": "..."}]``.
"""

from __future__ import annotations

import json
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from gridgov.cases.catalogue import display_code, service_code
from gridgov.cases.models import Category, CategoryClass

app_name = "open311"

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CACHE_SECONDS = 300


def _answer(data: Any, status: int = 200) -> HttpResponse:
    response = HttpResponse(
        json.dumps(data, ensure_ascii=False),
        content_type="application/json; charset=utf-8",
        status=status,
    )
    response["Access-Control-Allow-Origin"] = "*"
    if status == 200:
        response["Cache-Control"] = f"public, max-age={CACHE_SECONDS}"
    response["Vary"] = "Accept-Language"
    return response


def _error(status: int, description: str) -> HttpResponse:
    return _answer([{"code": status, "description": description}], status=status)


def _format_error(fmt: str) -> HttpResponse | None:
    if fmt == "json":
        return None
    return _error(
        400,
        _("format %(format)s is not supported: this server answers JSON, use .json")
        % {"format": fmt[:10]},
    )


def _services() -> QuerySet[Category]:
    return (
        Category.objects.filter(is_active=True, parent__isnull=False, parent__is_active=True)
        .select_related("parent")
        .prefetch_related("attributes")
        .order_by("scheme", "parent__order", "parent__code", "order", "code")
    )


def service_out(c: Category) -> dict[str, Any]:
    major = c.parent
    klass = str(CategoryClass(c.klass).label) if c.klass in CategoryClass.values else c.klass
    group = major.name if major is not None else ""
    words = [display_code(c), c.name_zh, c.name_en]
    if major is not None:
        words += [major.name_zh, major.name_en]
    return {
        "service_code": service_code(c),
        "service_name": c.name,
        "description": _("%(klass)s %(code)s %(name)s (%(group)s)")
        % {"klass": klass, "code": display_code(c), "name": c.name, "group": group},
        "metadata": bool(c.attributes.all()),
        "type": "realtime",
        "keywords": ", ".join(dict.fromkeys(w for w in words if w)),
        "group": group,
    }


def attribute_out(a: Any) -> dict[str, Any]:
    return {
        "variable": a.variable,
        "code": a.code,
        "datatype": a.datatype,
        "required": a.required,
        "datatype_description": a.datatype_description or None,
        "order": a.order,
        "description": a.description,
        "values": [
            {"key": str(v.get("key", "")), "name": str(v.get("name", ""))}
            for v in a.values or []
            if isinstance(v, dict)
        ],
    }


@require_GET
def services(request: HttpRequest, fmt: str) -> HttpResponse:
    """GET Service List."""
    problem = _format_error(fmt)
    if problem is not None:
        return problem
    return _answer([service_out(c) for c in _services()])


@require_GET
def service_definition(request: HttpRequest, code: str, fmt: str) -> HttpResponse:
    """GET Service Definition of one service_code (``scheme:code``)."""
    problem = _format_error(fmt)
    if problem is not None:
        return problem
    scheme, sep, bare = code.partition(":")
    query = _services()
    matches = list(query.filter(scheme=scheme, code=bare)[:1]) if sep else []
    if not sep:
        matches = list(query.filter(code=code)[:2])
        if len(matches) > 1:
            return _error(
                400,
                _("service_code %(code)s exists in several schemes: write scheme:code")
                % {"code": code[:20]},
            )
    if not matches:
        return _error(404, _("service_code %(code)s was not found") % {"code": code[:40]})
    found = matches[0]
    return _answer(
        {
            "service_code": service_code(found),
            "attributes": [
                attribute_out(a)
                for a in sorted(found.attributes.all(), key=lambda a: (a.order, a.code))
            ],
        }
    )


@require_GET
def discovery(request: HttpRequest, fmt: str) -> HttpResponse:
    """The Open311 Service Discovery document of this endpoint."""
    problem = _format_error(fmt)
    if problem is not None:
        return problem
    latest = Category.objects.order_by("-updated_at").values_list("updated_at", flat=True).first()
    changeset = latest.isoformat() if latest else None
    base = request.build_absolute_uri(reverse("open311:services", args=["json"]))
    return _answer(
        {
            "changeset": changeset,
            "contact": "",
            "key_service": "",
            "endpoints": [
                {
                    "specification": SPECIFICATION,
                    "url": base.rsplit("/", 1)[0],
                    "changeset": changeset,
                    "type": "production",
                    "formats": ["application/json"],
                }
            ],
        }
    )


urlpatterns = [
    path("discovery.<str:fmt>", discovery, name="discovery"),
    path("services.<str:fmt>", services, name="services"),
    path("services/<str:code>.<str:fmt>", service_definition, name="service_definition"),
]
