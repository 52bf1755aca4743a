"""Ledger (台账) API: upload and check, the mapping step, progress, the error sheet, commit, export.

Mounted at ``/api/v1/registry/ledger``:

- ``POST /imports`` (multipart: ``file``; optional ``mapping`` as JSON, ``template``,
  ``region``) stores the ledger and checks every row — nothing changes in the registry. A file
  that is no spreadsheet (an HTML page named .xlsx, a PDF…), a damaged or encrypted workbook, a
  zip bomb or a file over ``GRIDGOV_LEDGER_MAX_MB`` answers 4xx naming the problem and nothing
  is stored. The answer is the import: ``checked`` (ready to commit) or ``failed_check`` with
  its message and first problems (values masked).
- ``GET /imports``, ``GET /imports/{uuid}`` (status and ``progress``, rows processed, while a
  check or commit runs), ``GET /imports/{uuid}/preview`` (headers, mapping, suggested mapping,
  the first rows masked), ``POST /imports/{uuid}/check`` (check again with another
  ``mapping``/``template``), ``GET /imports/{uuid}/errors`` (the error sheet, xlsx),
  ``POST /imports/{uuid}/commit`` (all or nothing; 409 unless checked).
- ``GET /export?kind=people&format=csv&…`` the records in the caller's scope, masked, logged.
- ``GET /templates`` the remembered column mappings.

Writes take an ``Idempotency-Key``; they run outside the request's transaction (a check and a
commit write their progress as they go) and claim the key when done.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from django.http import FileResponse, HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import File, Form, Query, Router, Schema, UploadedFile
from pydantic import Field

from gridgov.accounts.selectors import current_user
from gridgov.api.responses import render
from gridgov.core.errors import Conflict, NotFound
from gridgov.core.idempotency import idempotent, write_phase
from gridgov.core.input_guard import InputRefused, parse_json_body
from gridgov.privacy.errors import ValidationFailed
from gridgov.privacy.models import Channel

from .actions import edit_scope
from .ledger.columns import PERSON_FIELDS
from .ledger.exporter import FILTERS, FORMATS, KINDS, ledger_export
from .ledger.importer import (
    import_get,
    import_progress,
    import_size,
    imports_visible_to,
    ledger_check,
    ledger_commit,
    ledger_preview,
    ledger_recheck,
    runs_in_background,
)
from .models import ImportStatus, LedgerImport, LedgerTemplate

router = Router()

MAX_PAGE = 200
#: The export filters asked for by name (``building_kind`` is the filter ``kind``).
EXPORT_FILTERS = frozenset().union(*FILTERS.values()) - {"kind"}
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# --- schemas ----------------------------------------------------------------------------------


class ProblemOut(Schema):
    row: int
    column: str
    value: str = Field(description="id and phone numbers masked")
    message: str


class ImportOut(Schema):
    uuid: UUID
    kind: str
    file_name: str
    status: str = Field(
        description="uploaded, checking, checked, failed_check, importing, imported or failed"
    )
    status_label: str
    encoding: str
    region_code: str = Field(description="rows outside this region are refused")
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    template: str | None
    mapping: dict[str, str | None] = Field(description="ledger header → registry field")
    rows_total: int
    rows_ok: int
    rows_bad: int
    created: int
    updated: int
    progress: int = Field(description="rows processed so far by the running check or commit")
    message: str
    problems: list[ProblemOut] = Field(description="the first problems (the error sheet has all)")
    error_sheet: bool


class ImportList(Schema):
    count: int
    items: list[ImportOut]


class PreviewRow(Schema):
    row: int
    cells: list[str]


class PreviewOut(Schema):
    headers: list[str]
    mapping: dict[str, str | None]
    suggested: dict[str, str | None]
    fields: list[str]
    sheet: str
    header_row: int
    rows: list[PreviewRow]


class CheckIn(Schema):
    mapping: dict[str, str | None] | None = Field(
        None, description="ledger header → registry field (or null to ignore the column)"
    )
    template: str | None = Field(None, max_length=200, description="a template's name")


class TemplateOut(Schema):
    name: str
    signature: str
    kind: str
    mapping: dict[str, str | None]
    header_row: int
    last_used_at: datetime | None


class PageQuery(Schema):
    limit: int = Field(50, ge=1, le=MAX_PAGE)
    offset: int = Field(0, ge=0, le=1_000_000)


class ExportQuery(Schema):
    kind: str = Field("people", description=", ".join(KINDS))
    format: str = Field("xlsx", description=" or ".join(FORMATS))
    region: str | None = Field(None, max_length=15, pattern=r"^\d*$")
    q: str | None = Field(None, max_length=100)
    person_type: str | None = Field(None, max_length=20)
    sex: str | None = Field(None, max_length=10)
    tag: str | None = Field(None, max_length=40)
    verification: str | None = Field(None, max_length=20)
    relation: str | None = Field(None, max_length=20)
    building_kind: str | None = Field(
        None, max_length=30, description="the kind of building or organisation"
    )
    include_closed: bool = False


# --- helpers ----------------------------------------------------------------------------------


def import_out(li: LedgerImport) -> dict[str, Any]:
    return {
        "uuid": li.uuid,
        "kind": li.kind,
        "file_name": li.file_name,
        "status": li.status,
        "status_label": str(li.get_status_display()),
        "encoding": li.encoding,
        "region_code": li.region_code,
        "created_by": li.created_by.username,
        "created_at": li.created_at,
        "started_at": li.started_at,
        "finished_at": li.finished_at,
        "template": (li.template.name or li.template.signature[:12]) if li.template else None,
        "mapping": {str(k): (str(v) if v else None) for k, v in (li.mapping or {}).items()},
        "rows_total": li.rows_total,
        "rows_ok": li.rows_ok,
        "rows_bad": li.rows_bad,
        "created": li.created,
        "updated": li.updated,
        "progress": import_progress(li),
        "message": li.message,
        "problems": list(li.error_summary or []),
        "error_sheet": bool(li.error_sheet),
    }


def _mapping_field(text: str) -> dict[str, str | None] | None:
    if not text:
        return None
    try:  # the API's own JSON rules: no NUL, not nested 100,000 levels deep (a RecursionError)
        value = parse_json_body(text.encode("utf-8"))
    except InputRefused as exc:
        message = _("the mapping is not usable: %(problem)s") % {"problem": exc.message}
        raise ValidationFailed(message, detail={"mapping": message}) from None
    if not isinstance(value, dict):
        message = _('the mapping must be a JSON object {"header": "field", …}')
        raise ValidationFailed(message, detail={"mapping": message})
    return {str(k): (str(v) if v else None) for k, v in value.items()}


def _fresh(request: HttpRequest, uuid: UUID) -> LedgerImport:
    li = import_get(current_user(request), uuid)
    return LedgerImport.objects.select_related("created_by", "template").get(pk=li.pk)


def _answer(request: HttpRequest, li: LedgerImport, status: int) -> HttpResponse:
    li = LedgerImport.objects.select_related("created_by", "template").get(pk=li.pk)
    response = render(request, ImportOut, import_out(li), status=status)
    write_phase(request, response)
    return response


# --- endpoints --------------------------------------------------------------------------------


@router.post(
    "/imports",
    response={201: ImportOut},
    summary="Upload a ledger and check every row (a dry run)",
    description=(
        "Multipart: `file` (.xlsx, .xls or .csv in UTF-8 or GBK, at most GRIDGOV_LEDGER_MAX_MB); "
        "optional `mapping` (JSON: ledger header → field, fields: "
        + ", ".join(PERSON_FIELDS)
        + "), `template` (a remembered mapping's name) and `region` (a region code in your "
        "scope: rows elsewhere are refused; rows naming no grid go to it). Without a mapping, "
        "the one remembered for the same headers is used, else a suggestion. Nothing changes "
        "in the registry until `POST /imports/{uuid}/commit`. A ledger larger than "
        "GRIDGOV_LEDGER_INLINE_MB is checked by the background worker: the import is then "
        "`check_queued`; poll `GET /imports/{uuid}` until it is `checked` or `failed_check`."
    ),
    url_name="registry_ledger_upload",
)
@idempotent(deferred=True)
def ledger_upload(
    request: HttpRequest,
    file: File[UploadedFile],
    mapping: Form[str] = "",
    template: Form[str] = "",
    region: Form[str] = "",
) -> HttpResponse:
    user = current_user(request)
    li = ledger_check(
        actor=user,
        file=file,
        file_name=file.name or "",
        mapping=_mapping_field(mapping),
        template=template or None,
        region=region or None,
        background=runs_in_background(file.size or 0),
    )
    return _answer(request, li, 201)


@router.get("/imports", response=ImportList, summary="Imports you may see, newest first")
def ledger_imports(request: HttpRequest, page: Query[PageQuery]) -> dict[str, Any]:
    qs = imports_visible_to(current_user(request)).order_by("-created_at", "-pk")
    items = list(qs[page.offset : page.offset + page.limit])
    return {"count": qs.count(), "items": [import_out(li) for li in items]}


@router.get(
    "/imports/{uuid}",
    response=ImportOut,
    summary="An import: status, progress, counts, first problems",
    url_name="registry_ledger_import",
)
def ledger_import_detail(request: HttpRequest, uuid: UUID) -> dict[str, Any]:
    return import_out(_fresh(request, uuid))


@router.get(
    "/imports/{uuid}/preview",
    response=PreviewOut,
    summary="The ledger's headers, its mapping and its first rows (masked)",
)
def ledger_import_preview(request: HttpRequest, uuid: UUID) -> dict[str, Any]:
    return ledger_preview(actor=current_user(request), ledger_import=_fresh(request, uuid))


@router.post(
    "/imports/{uuid}/check",
    response={200: ImportOut, 202: ImportOut},
    summary="Check the stored ledger again with another mapping or template",
)
@idempotent(deferred=True)
def ledger_import_recheck(request: HttpRequest, uuid: UUID, payload: CheckIn) -> HttpResponse:
    user = current_user(request)
    li = _fresh(request, uuid)
    li = ledger_recheck(
        actor=user,
        ledger_import=li,
        mapping=payload.mapping,
        template=payload.template,
        background=runs_in_background(import_size(li)),
    )
    return _answer(request, li, 202 if li.status == ImportStatus.CHECK_QUEUED else 200)


@router.get(
    "/imports/{uuid}/errors",
    summary="The error sheet of a check (xlsx: row, column, value masked, problem)",
    response={200: None},
    url_name="registry_ledger_errors",
)
def ledger_import_errors(request: HttpRequest, uuid: UUID) -> FileResponse:
    li = _fresh(request, uuid)
    if not li.error_sheet:
        raise NotFound(_("this import has no error sheet"))
    response = FileResponse(
        li.error_sheet.open("rb"),
        as_attachment=True,
        filename=f"{Path(li.file_name).stem}-errors.xlsx",
        content_type=XLSX_TYPE,
    )
    response["Cache-Control"] = "private, no-store"
    return response


@router.post(
    "/imports/{uuid}/commit",
    response={200: ImportOut, 202: ImportOut},
    summary="Import a checked ledger, all or nothing",
    description=(
        "Only a `checked` import can be committed (else 409). The rows are checked again; if "
        "the registry changed meanwhile so that a row no longer passes, nothing is imported, "
        "the import is `failed` and the answer is 409 with the message naming the row. A "
        "ledger larger than GRIDGOV_LEDGER_INLINE_MB is imported by the background worker: "
        "the answer is then 202 with the import `commit_queued`; poll `GET /imports/{uuid}` "
        "(`importing`, `progress`, then `imported` or `failed`)."
    ),
)
@idempotent(deferred=True)
def ledger_import_commit(request: HttpRequest, uuid: UUID) -> HttpResponse:
    user = current_user(request)
    li = _fresh(request, uuid)
    li = ledger_commit(actor=user, ledger_import=li, background=runs_in_background(import_size(li)))
    if li.status == ImportStatus.COMMIT_QUEUED:
        return _answer(request, li, 202)
    if li.status != ImportStatus.IMPORTED:
        raise Conflict(li.message, detail={"status": li.status, "uuid": str(li.uuid)})
    return _answer(request, li, 200)


@router.get(
    "/export",
    summary="Export people, households, buildings or organisations (xlsx or csv), masked",
    response={200: None},
    description=(
        "The records in your scope matching the filters; id and phone numbers masked; tags "
        "above your clearance left out. The export is logged (who, filter, count)."
    ),
    url_name="registry_ledger_export",
)
def ledger_export_file(request: HttpRequest, query: Query[ExportQuery]) -> FileResponse:
    export = ledger_export(
        actor=current_user(request),
        kind=query.kind,
        filter={
            **query.model_dump(include=set(EXPORT_FILTERS)),
            "kind": query.building_kind,  # blank filters are left out
        },
        fmt=query.format,
        channel=Channel.API,
        screen=request.path[:200],
    )
    return export.response()


@router.get("/templates", response=list[TemplateOut], summary="Remembered column mappings")
def ledger_templates(request: HttpRequest) -> list[dict[str, Any]]:
    if edit_scope(current_user(request)).is_empty:
        return []
    return [
        {
            "name": t.name,
            "signature": t.signature,
            "kind": t.kind,
            "mapping": dict(t.mapping or {}),
            "header_row": t.header_row,
            "last_used_at": t.last_used_at,
        }
        for t in LedgerTemplate.objects.order_by("-last_used_at", "name")[:MAX_PAGE]
    ]
