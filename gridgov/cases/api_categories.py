"""Categories API: the catalogue for every signed-in user; import and export for administrators.

Mounted at ``/api/v1/categories`` (``gridgov.api.main``). The catalogue is the same for the
whole platform, so changing it (import) takes an administrator of every region; any
administrator may export it.
"""

from __future__ import annotations

from typing import Any, Literal

from django.conf import settings
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from ninja import File, Query, Router, Schema, UploadedFile
from pydantic import Field

from gridgov.accounts.selectors import current_user, require_administrator
from gridgov.core.errors import DomainError, NotFound, PermissionDenied
from gridgov.core.idempotency import idempotent

from . import catalogue
from .deadlines import step_limit
from .models import Category, CategoryClass, Scheme
from .workflow import Step

router = Router()

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class ValueOut(Schema):
    key: str
    name: str


class AttributeOut(Schema):
    """An Open311 GeoReport v2 attribute."""

    code: str
    variable: bool = Field(description="true: the reporter answers it")
    datatype: str = Field(
        description="string, number, datetime, text, singlevaluelist or multivaluelist"
    )
    required: bool
    description: str = Field(description="the question shown to the reporter")
    datatype_description: str
    order: int
    values: list[ValueOut]


class LimitsOut(Schema):
    """Working-time limits per step, written like 30m, 4h, 1d."""

    register_limit: str
    urgent_register_limit: str
    sign_limit: str
    handle_limit: str
    check_limit: str


class MajorOut(Schema):
    code: str
    display_code: str
    name_zh: str
    name_en: str


class CategoryOut(Schema):
    scheme: str
    code: str = Field(description="the stored code; events of the standard schemes carry an E")
    display_code: str = Field(description="the code as the standard writes it")
    service_code: str = Field(description="the Open311 service_code: scheme:code")
    klass: str = Field(alias="class", description="component or event")
    class_label: str
    major: MajorOut | None = Field(description="the major category; null for a major")
    name: str = Field(description="the name in the request's language")
    name_zh: str
    name_en: str
    default_unit_kind: str
    limits: LimitsOut = Field(description="the category's own limits; empty: the major's")
    effective_limits: LimitsOut = Field(
        description="the limits a case of this category runs against (own, major's, default)"
    )
    urgency_levels: list[str]
    closing_criteria: str = Field(description="立结案标准; the major's when the category has none")
    duplicate_radius_m: int
    duplicate_window_hours: int
    is_active: bool
    order: int
    attributes: list[AttributeOut]


_STEPS = {
    "register": Step.REGISTER,
    "sign": Step.SIGN,
    "handle": Step.HANDLE,
    "check": Step.CHECK,
}


def category_out(c: Category) -> dict[str, Any]:
    """One category for the API (``parent`` selected and ``attributes`` prefetched)."""
    major = c.parent
    effective = {f"{name}_limit": step_limit(c, step) for name, step in _STEPS.items()}
    effective["urgent_register_limit"] = step_limit(c, Step.REGISTER, emergency=True)
    return {
        "scheme": c.scheme,
        "code": c.code,
        "display_code": catalogue.display_code(c),
        "service_code": catalogue.service_code(c),
        "class": c.klass,
        "class_label": str(CategoryClass(c.klass).label) if c.klass in CategoryClass.values else "",
        "major": {
            "code": major.code,
            "display_code": catalogue.display_code(major),
            "name_zh": major.name_zh,
            "name_en": major.name_en,
        }
        if major is not None
        else None,
        "name": c.name,
        "name_zh": c.name_zh,
        "name_en": c.name_en,
        "default_unit_kind": c.default_unit_kind,
        "limits": {name: getattr(c, name) for name in catalogue.LIMIT_FIELDS},
        "effective_limits": effective,
        "urgency_levels": [str(u) for u in c.urgency_levels or []],
        "closing_criteria": c.closing_criteria or (major.closing_criteria if major else ""),
        "duplicate_radius_m": c.duplicate_radius_m,
        "duplicate_window_hours": c.duplicate_window_hours,
        "is_active": c.is_active,
        "order": c.order,
        "attributes": [
            {
                "code": a.code,
                "variable": a.variable,
                "datatype": a.datatype,
                "required": a.required,
                "description": a.description,
                "datatype_description": a.datatype_description,
                "order": a.order,
                "values": [
                    {"key": str(v.get("key", "")), "name": str(v.get("name", ""))}
                    for v in a.values or []
                    if isinstance(v, dict)
                ],
            }
            for a in sorted(c.attributes.all(), key=lambda a: (a.order, a.code))
        ],
    }


def categories_query() -> QuerySet[Category]:
    return Category.objects.select_related("parent").prefetch_related("attributes")


class CategoryQuery(Schema):
    scheme: Scheme | None = Field(None, description="legacy, gbt47678 or social")
    klass: CategoryClass | None = Field(None, alias="class", description="component or event")
    q: str | None = Field(
        None, max_length=100, description="a code (with or without E) or part of a name"
    )
    active: bool | None = Field(None, description="true: categories in use only")
    level: Literal["major", "minor"] | None = Field(None, description="majors or minors only")


@router.get(
    "",
    response=list[CategoryOut],
    by_alias=True,
    summary="The category catalogue",
    description="Every category with its limits, closing criteria and Open311 attributes, "
    "ordered by scheme and code.",
)
def category_list(request: HttpRequest, filters: Query[CategoryQuery]) -> list[dict[str, Any]]:
    query = categories_query()
    if filters.scheme:
        query = query.filter(scheme=filters.scheme)
    if filters.klass:
        query = query.filter(klass=filters.klass)
    if filters.active is not None:
        query = query.filter(is_active=filters.active)
    if filters.level:
        query = query.filter(parent__isnull=filters.level == "major")
    text = (filters.q or "").strip()
    if text:
        query = query.filter(
            Q(code__icontains=text)
            | Q(code__iexact=catalogue.EVENT_PREFIX + text)
            | Q(name_zh__icontains=text)
            | Q(name_en__icontains=text)
        )
    return [category_out(c) for c in query.order_by("scheme", "code")]


@router.get(
    "/export",
    summary="Export the catalogue (administrators)",
    description="The catalogue as a JSON file or an xlsx workbook (sheets categories and "
    "attributes) that the import reads back unchanged.",
)
def categories_export(
    request: HttpRequest,
    format: Literal["json", "xlsx"] = "json",
    scheme: Scheme | None = None,
) -> HttpResponse:
    require_administrator(current_user(request))
    rows = catalogue.catalogue_export(scheme=scheme)
    return export_response(rows, file_format=format, scheme=scheme)


def export_response(
    rows: list[dict[str, Any]], *, file_format: str, scheme: str | None
) -> HttpResponse:
    """A download of ``rows`` as JSON or xlsx, named after the scheme and the day."""
    if file_format == "xlsx":
        response = HttpResponse(catalogue.catalogue_to_xlsx(rows), content_type=XLSX_TYPE)
    else:
        response = HttpResponse(
            catalogue.catalogue_to_json(rows), content_type="application/json; charset=utf-8"
        )
    name = catalogue.export_file_name(scheme=scheme, extension=file_format)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def require_catalogue_administrator(user: Any) -> None:
    """Administrators of every region (the catalogue is shared by the whole platform)."""
    scope = require_administrator(user)
    if not scope.everything and not getattr(user, "is_superuser", False):
        raise PermissionDenied(
            _("only administrators of every region may change the category catalogue")
        )


def report_answer(report: catalogue.ImportReport) -> dict[str, Any]:
    """The import report, or 422 with it in ``detail`` when the file has problems."""
    if not report.ok:
        raise DomainError(
            ngettext(
                "the import has %(count)s error; nothing was written",
                "the import has %(count)s errors; nothing was written",
                len(report.problems),
            )
            % {"count": len(report.problems)},
            detail=report.as_dict(),
            status=422,
        )
    return report.as_dict()


class ImportOut(Schema):
    ok: bool
    dry_run: bool
    written: bool
    rows: int
    created: int
    changed: int
    unchanged: int
    kept: int
    errors: list[dict[str, Any]]
    changes: list[dict[str, Any]]


@router.post(
    "/import",
    response=ImportOut,
    summary="Import categories (administrators of every region)",
    description=(
        "Send the catalogue as a multipart upload `file` (xlsx or JSON, told apart by content) "
        'or as a JSON body (a list of rows, or `{"categories": [...]}`). `dry_run=true` '
        "(in the query, or as a form field of the upload) reports what would change and "
        "writes nothing. All-or-nothing: 422 with every problem (row, field, message) in "
        "`detail.errors`; 413 for a file that is too large."
    ),
)
@idempotent
def categories_import(
    request: HttpRequest,
    file: File[UploadedFile | None] = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    from gridgov.geo.bulk import read_upload

    require_catalogue_administrator(current_user(request))
    if file is not None:
        # a multipart client may send dry_run as a form field, as the geo imports take it
        dry_run = dry_run or request.POST.get("dry_run", "").lower() in ("true", "1", "on")
        data = read_upload(file)
        rows = catalogue.catalogue_read(data, file.name or "")
    else:
        if not request.content_type or "json" not in request.content_type:
            raise DomainError(
                _("send the catalogue as the multipart form field 'file' or as a JSON body"),
                status=400,
            )
        body = request.body
        limit = int(settings.GRIDGOV_UPLOAD_MAX_BYTES)
        if len(body) > limit:
            raise DomainError(
                _("the file is larger than %(limit)s bytes") % {"limit": f"{limit:,}"},
                status=413,
            )
        rows = catalogue.catalogue_from_json(body)
    return report_answer(catalogue.catalogue_import(rows, dry_run=dry_run))


@router.get(
    "/{scheme}/{code}",
    response=CategoryOut,
    by_alias=True,
    summary="One category",
    description="`code` is the stored code (an event of the standard schemes with its E, "
    "e.g. `legacy/E0102`).",
)
def category_detail(request: HttpRequest, scheme: str, code: str) -> dict[str, Any]:
    found = categories_query().filter(scheme=scheme, code=code).first()
    if found is None:
        raise NotFound(
            _("no category %(scheme)s:%(code)s") % {"scheme": scheme[:20], "code": code[:20]},
            detail={"scheme": scheme[:20], "code": code[:20]},
        )
    return category_out(found)
