"""The ledger (台账) screens: upload a ledger, map its columns, read the check, commit it, and
export the people list. The names below are those of the URLs (``registry:<name>``).

- ``ledger`` (/registry/ledger/): the upload form (for those who may change base data), the
  imports the user may see, newest first, and the export form of the people list.
- ``ledger_upload``: stores the file and checks every row (``ledger.importer.ledger_check``, a
  dry run). A file that is no ledger (an HTML page named .xlsx, a damaged workbook, a file over
  ``GRIDGOV_LEDGER_MAX_MB``) answers the upload page again with the reason and a 4xx status;
  nothing is stored.
- ``ledger_import``: the check result: the counts (rows, valid, with problems, new, updated),
  the first problems (row, column, value masked, problem), the error sheet to download, the
  column mapping (one select per column, the suggestion marked; posted to ``ledger_check``, which
  checks again with it, and the importer remembers it for ledgers with the same headers), and
  the commit button, only when the check found no problem. After the commit: what was created
  and updated, and links to the grids the people went to.
- ``ledger_progress``: a small fragment polled by htmx while a check or commit runs (rows
  processed so far); the page that is waiting for its form's answer polls it by the form's
  token, an import page opened while the import runs polls it by the import and reloads when
  it is done.
- ``ledger_export``: the people list in the user's scope (filters: region, person type, tag)
  as xlsx or csv, masked, logged (``ledger.exporter.ledger_export``).

Reads go through ``imports_visible_to``/``import_get`` (another grid's import is "not found"),
writes through the importer's functions. The check and the commit run outside any request
transaction (they write their progress as they go), so double submissions are caught by the
form's one-time token, claimed before the work starts and released when it is refused; a
second submission of the same form is sent to where the first one led.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, cast
from uuid import UUID

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import IntegrityError, transaction
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from gridgov.accounts.models import User
from gridgov.accounts.selectors import current_user
from gridgov.core.errors import DomainError, NotFound, PermissionDenied, ValidationFailed
from gridgov.core.models import IdempotencyRecord
from gridgov.geo.models import Level, Region
from gridgov.privacy.models import Channel

from . import actions, selectors
from .ledger.columns import PERSON_FIELDS
from .ledger.exporter import FORMATS, ledger_export
from .ledger.importer import (
    BUSY,
    import_get,
    import_progress,
    import_size,
    imports_visible_to,
    ledger_check,
    ledger_commit,
    ledger_preview,
    ledger_recheck,
    max_upload_bytes,
    runs_in_background,
)
from .models import ImportStatus, LedgerImport, PersonType, RecordChange, RecordType

PAGE_SIZE = 20
#: Problems listed on the check result (the error sheet has them all).
PROBLEMS_SHOWN = 20
#: Regions offered in a select at most.
REGION_CHOICES = 1000
#: An import in one of these states is still being worked on.
#: an import whose step has not ended (the page polls its progress)
RUNNING = frozenset({ImportStatus.UPLOADED, *BUSY})
#: Seconds between two polls of the progress fragment.
POLL_SECONDS = 1
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ACCEPT = ".xlsx,.xls,.csv," + XLSX_TYPE + ",application/vnd.ms-excel,text/csv"

#: The registry fields a ledger column can be mapped to, as the mapping step names them.
FIELD_LABELS: dict[str, Any] = {
    "street": gettext_lazy("Street"),
    "community": gettext_lazy("Community"),
    "grid_code": gettext_lazy("Grid (code or name)"),
    "estate": gettext_lazy("Estate"),
    "building": gettext_lazy("Building"),
    "unit": gettext_lazy("Unit"),
    "room": gettext_lazy("Room"),
    "floor": gettext_lazy("Floor"),
    "room_use": gettext_lazy("Room use"),
    "name": gettext_lazy("Name"),
    "sex": gettext_lazy("Sex"),
    "birth_date": gettext_lazy("Date of birth"),
    "id_number": gettext_lazy("Id number"),
    "phone": gettext_lazy("Phone"),
    "ethnicity": gettext_lazy("Ethnicity"),
    "person_type": gettext_lazy("Person type"),
    "relation": gettext_lazy("Relation to the head"),
    "household_number": gettext_lazy("Household number"),
    "verification": gettext_lazy("Verification"),
    "moved_in_on": gettext_lazy("Moved in on"),
    "tags": gettext_lazy("Tags"),
    "note": gettext_lazy("Note"),
}


def field_label(field: str | None) -> str:
    if not field:
        return _("(not imported)")
    return str(FIELD_LABELS.get(field, field))


# --- forms --------------------------------------------------------------------------------------


def _set_choices(form: forms.Form, name: str, choices: list[tuple[str, Any]]) -> None:
    cast(forms.ChoiceField, form.fields[name]).choices = choices


def _region_choices(regions: list[Region], blank: str) -> list[tuple[str, str]]:
    return [("", blank)] + [(r.code, f"{r.get_level_display()} · {r.name}") for r in regions]


class UploadForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("Ledger file"),
        error_messages={
            "required": gettext_lazy("Choose a ledger file (.xlsx, .xls or .csv)."),
            "empty": gettext_lazy("The file is empty: choose the ledger again."),
        },
        widget=forms.ClearableFileInput(attrs={"accept": ACCEPT}),
    )
    region = forms.ChoiceField(
        label=gettext_lazy("Import into"),
        required=False,
        help_text=gettext_lazy(
            "Rows outside this region are refused; rows naming no grid are placed here."
        ),
    )
    token = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)

    def __init__(self, *args: Any, regions: list[Region], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _set_choices(self, "region", _region_choices(regions, _("All your regions")))
        self.fields["file"].help_text = _(
            "Excel (.xlsx, .xls) or CSV in UTF-8 or GBK, at most %(mb)d MB. The first sheet is "
            "read; a title row above the column headers is fine."
        ) % {"mb": max_upload_bytes() // 2**20}


class ExportForm(forms.Form):
    region = forms.ChoiceField(label=gettext_lazy("Region"), required=False)
    person_type = forms.ChoiceField(label=gettext_lazy("Person type"), required=False)
    tag = forms.ChoiceField(label=gettext_lazy("Tag"), required=False)
    format = forms.ChoiceField(
        label=gettext_lazy("Format"),
        choices=[("xlsx", "Excel (.xlsx)"), ("csv", "CSV (UTF-8)")],
        initial="xlsx",
        widget=forms.RadioSelect,
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _set_choices(self, "region", _region_choices(_export_regions(user), _("All your regions")))
        _set_choices(self, "person_type", [("", _("Everyone")), *PersonType.choices])
        tags = selectors.tag_types_visible_to(user).order_by("order", "pk")
        _set_choices(self, "tag", [("", _("Any or none")), *((t.code, t.name) for t in tags)])


def _mapping_fields(headers: list[str], current: dict[str, str | None]) -> list[dict[str, Any]]:
    """One entry per ledger column: its name and the field it is mapped to."""
    return [{"index": i, "header": h, "field": current.get(h) or ""} for i, h in enumerate(headers)]


def _posted_mapping(request: HttpRequest, headers: list[str]) -> dict[str, str | None]:
    """The mapping the form sent: ``column-<i>`` holds the field of the i-th column."""
    mapping: dict[str, str | None] = {}
    for i, header in enumerate(headers):
        value = (request.POST.get(f"column-{i}") or "").strip()[:40]
        mapping[header] = value or None
    return mapping


# --- helpers ------------------------------------------------------------------------------------


def _screen(request: HttpRequest) -> str:
    match = request.resolver_match
    return match.view_name if match is not None else request.path[:200]


def _error_page(request: HttpRequest, exc: DomainError) -> HttpResponse:
    context = {"message": exc.message, "status": exc.status}
    return render(request, "core/error.html", context, status=exc.status)


def _import_regions(user: User) -> list[Region]:
    """Grids and communities the user may import into."""
    scope = actions.edit_scope(user)
    if scope.is_empty:
        return []
    qs = Region.objects.filter(scope.q("code"), level__in=[Level.GRID, Level.COMMUNITY])
    return list(qs.order_by("code").only("code", "name", "level")[:REGION_CHOICES])


def _export_regions(user: User) -> list[Region]:
    """Regions the user sees base data of (for the export's region filter)."""
    scope = selectors.registry_scope(user)
    if scope.is_empty:
        return []
    qs = Region.objects.filter(scope.q("code")).order_by("code").only("code", "name", "level")
    return list(qs[:REGION_CHOICES])


def _may_change(user: User, li: LedgerImport) -> bool:
    """Whether the user may check the import again or commit it (the importer decides too)."""
    scope = actions.edit_scope(user)
    if scope.is_empty:
        return False
    if li.created_by_id == user.pk or scope.everything:
        return True
    return bool(li.region_code) and scope.covers(li.region_code)


def _import_url(li: LedgerImport) -> str:
    return reverse("registry:ledger_import", args=[li.uuid])


def _status_class(status: str) -> str:
    if status in (ImportStatus.CHECKED, ImportStatus.IMPORTED):
        return "status status--active"
    if status in RUNNING:
        return "status status--expired"
    return "badge badge--danger"


# --- one-time form tokens -----------------------------------------------------------------------

_FORM_KEY = "registry-ledger-form:"


class _AlreadyDone(Exception):
    """The form was sent before: its token is taken. ``where`` is where the first one led."""

    def __init__(self, where: str) -> None:
        super().__init__(where)
        self.where = where


def new_token() -> str:
    return uuid.uuid4().hex


def _token_hash(token: str) -> str:
    return hashlib.sha256((_FORM_KEY + token[:64]).encode("utf-8")).hexdigest()


def _local_path(path: str) -> str | None:
    ok = path.startswith("/") and url_has_allowed_host_and_scheme(path, allowed_hosts=None)
    return path if ok else None


def _claim(user: User, token: str, where: str) -> IdempotencyRecord | None:
    """Claim the form's token (in its own small transaction); ``_AlreadyDone`` when the form
    was sent before. A blank token claims nothing."""
    if not token:
        return None
    key_hash = _token_hash(token)
    record = IdempotencyRecord(
        user=user,
        key_hash=key_hash,
        fingerprint=key_hash,
        method="POST",
        path=where[:300],
        status_code=303,
        expires_at=timezone.now() + timedelta(hours=settings.GRIDGOV_IDEMPOTENCY_HOURS),
    )
    try:
        with transaction.atomic():
            record.save(force_insert=True)
    except IntegrityError:
        first = IdempotencyRecord.objects.filter(user=user, key_hash=key_hash).first()
        raise _AlreadyDone(
            (_local_path(first.path) if first is not None else None) or where
        ) from None
    return record


def _point(record: IdempotencyRecord | None, where: str) -> None:
    """Remember where the form led (a second submission, and the progress poll, go there)."""
    if record is not None and record.pk is not None and record.path != where:
        record.path = where[:300]
        IdempotencyRecord.objects.filter(pk=record.pk).update(path=record.path)


def _release(record: IdempotencyRecord | None) -> None:
    """A refused submission changed nothing: the form may be sent again with its token."""
    if record is not None and record.pk is not None:
        IdempotencyRecord.objects.filter(pk=record.pk).delete()


@contextmanager
def _once(user: User, token: str, where: str) -> Iterator[IdempotencyRecord | None]:
    """Do the block once per form: claim the form's token (``_AlreadyDone`` when the form was
    sent before) and release it when the block is refused or fails, so that the form may be
    sent again."""
    record = _claim(user, token, where)
    try:
        yield record
    except BaseException:
        _release(record)
        raise


def _done_already(request: HttpRequest, exc: _AlreadyDone) -> HttpResponse:
    messages.info(request, _("This form was sent already; here is where it led."))
    return redirect(exc.where)


def _import_of_token(user: User, token: str) -> LedgerImport | None:
    """The import a form with this token started (once the importer has created it)."""
    record = IdempotencyRecord.objects.filter(user=user, key_hash=_token_hash(token)).first()
    if record is None:
        return None
    try:
        match = resolve(record.path)
    except Resolver404:
        return None
    if match.view_name != "registry:ledger_import":
        return None
    key = match.kwargs.get("key")
    return imports_visible_to(user).filter(uuid=key).first() if key else None


# --- the ledger page ----------------------------------------------------------------------------


def _ledger_page(
    request: HttpRequest,
    user: User,
    *,
    upload_form: UploadForm | None = None,
    upload_error: str = "",
    export_form: ExportForm | None = None,
    export_error: str = "",
    status: int = 200,
) -> HttpResponse:
    regions = _import_regions(user)
    may_import = bool(regions) or actions.edit_scope(user).everything
    if upload_form is None and may_import:
        initial = {"token": new_token(), "region": (request.GET.get("region") or "")[:15]}
        upload_form = UploadForm(initial=initial, regions=regions)
    elif upload_form is not None:
        # a refused upload keeps its choices but gets a fresh token
        upload_form = UploadForm(
            initial={"token": new_token(), "region": upload_form.data.get("region", "")},
            regions=regions,
        )
    if export_form is None:
        export_form = ExportForm(initial={"format": "xlsx"}, user=user)
    imports = imports_visible_to(user).order_by("-created_at", "-pk")
    page = Paginator(imports, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "may_import": may_import,
        "upload_form": upload_form if may_import else None,
        "one_region": len(regions) <= 1 and not actions.edit_scope(user).everything,
        "upload_error": upload_error,
        "export_form": export_form,
        "export_error": export_error,
        "page": page,
        "rows": [(li, _status_class(li.status)) for li in page.object_list],
        "query": "",
        "max_bytes": max_upload_bytes(),
        "poll_seconds": POLL_SECONDS,
    }
    return render(request, "registry/ledger_home.html", context, status=status)


@never_cache
@login_required
@require_GET
def ledger(request: HttpRequest) -> HttpResponse:
    """Import a ledger, the imports so far, and the export of the people list."""
    user = current_user(request)
    if selectors.registry_scope(user).is_empty:
        return render(request, "registry/no_access.html")
    return _ledger_page(request, user)


@login_required
@require_POST
def ledger_upload(request: HttpRequest) -> HttpResponseBase:
    """Store an uploaded ledger and check every row (nothing changes in the registry)."""
    user = current_user(request)
    region = (request.POST.get("region") or request.GET.get("region") or "").strip()[:15]
    if region and (
        not selectors.registry_scope(user).covers(region)
        or not Region.objects.filter(code=region).exists()
    ):
        return _error_page(
            request,
            NotFound(_("no region with code %(code)s is visible to you") % {"code": region}),
        )
    scope = actions.edit_scope(user)
    if scope.is_empty or (region and not scope.covers(region)):
        return _error_page(request, PermissionDenied(_("you may not import base data here")))
    regions = _import_regions(user)
    form = UploadForm(request.POST, request.FILES, regions=regions)
    if region:  # a region in scope that the select does not list (a street, a district)
        choices = _region_choices(regions, _("All your regions"))
        _set_choices(form, "region", [*choices, (region, region)])
    if not form.is_valid():
        problems = [str(e) for errors in form.errors.values() for e in errors]
        return _ledger_page(
            request, user, upload_form=form, upload_error=" ".join(problems), status=400
        )
    upload = form.cleaned_data["file"]
    try:
        with _once(user, form.cleaned_data.get("token") or "", reverse("registry:ledger")) as once:
            li = ledger_check(
                actor=user,
                file=upload,
                file_name=upload.name or "",
                region=region or None,
                background=runs_in_background(upload.size or 0),
                # the first progress report names the import: the waiting page's poll finds it
                on_progress=lambda started: _point(once, _import_url(started)),
            )
    except _AlreadyDone as exc:
        return _done_already(request, exc)
    except DomainError as exc:
        return _ledger_page(
            request, user, upload_form=form, upload_error=exc.message, status=exc.status
        )
    _point(once, _import_url(li))
    return redirect(_import_url(li), permanent=False)


# --- an import ----------------------------------------------------------------------------------


def _problems(li: LedgerImport) -> list[dict[str, Any]]:
    return [
        {
            "row": p.get("row"),
            "column": p.get("column", ""),
            "value": p.get("value", ""),
            "message": p.get("message", ""),
        }
        for p in (li.error_summary or [])[:PROBLEMS_SHOWN]
    ]


def _grids_of(user: User, li: LedgerImport) -> list[Region]:
    """The grids (or communities) the people of a committed import are in."""
    codes = set(
        selectors.people_visible_to(user)
        .filter(import_batch=li)
        .order_by()
        .values_list("region_code", flat=True)
        .distinct()[:50]
    )
    codes |= set(
        RecordChange.objects.filter(import_batch=li, record_type=RecordType.PERSON)
        .filter(selectors.registry_scope(user).q("region_code"))
        .order_by()
        .values_list("region_code", flat=True)
        .distinct()[:50]
    )
    return list(
        Region.objects.filter(code__in=codes, level__in=[Level.GRID, Level.COMMUNITY]).order_by(
            "code"
        )
    )


def _import_page(
    request: HttpRequest,
    user: User,
    li: LedgerImport,
    *,
    mapping: dict[str, str | None] | None = None,
    mapping_error: str = "",
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    li = LedgerImport.objects.select_related("created_by", "template").get(pk=li.pk)
    may_change = _may_change(user, li)
    running = li.status in RUNNING
    columns: list[dict[str, Any]] = []
    samples: list[dict[str, Any]] = []
    suggested: dict[str, str | None] = {}
    if may_change and not running and li.status != ImportStatus.IMPORTED:
        try:
            preview = ledger_preview(actor=user, ledger_import=li)
        except DomainError:
            preview = None
        if preview is not None:
            headers = list(preview["headers"])
            suggested = dict(preview["suggested"])
            columns = _mapping_fields(headers, mapping or dict(preview["mapping"]))
            for column in columns:
                column["suggested"] = suggested.get(column["header"]) or ""
                column["suggested_label"] = field_label(column["suggested"])
                column["samples"] = [
                    row["cells"][column["index"]]
                    for row in preview["rows"][:2]
                    if column["index"] < len(row["cells"]) and row["cells"][column["index"]]
                ]
            samples = preview["rows"]
    problems = _problems(li)
    context = {
        "li": li,
        "status_class": _status_class(li.status),
        "running": running,
        "done": import_progress(li),
        "may_change": may_change,
        "may_commit": may_change and li.status == ImportStatus.CHECKED,
        "problems": problems,
        "more_problems": max(0, len(li.error_summary or []) - len(problems)),
        "columns": columns,
        "samples": samples,
        "fields": [(f, field_label(f)) for f in PERSON_FIELDS],
        "mapping_open": bool(mapping_error) or li.status == ImportStatus.FAILED_CHECK,
        "mapping_error": mapping_error,
        "error": error,
        "grids": _grids_of(user, li) if li.status == ImportStatus.IMPORTED else [],
        "template_name": (li.template.name or li.template.signature[:12]) if li.template else "",
        "check_token": new_token(),
        "commit_token": new_token(),
        "poll_seconds": POLL_SECONDS,
    }
    response = render(request, "registry/ledger_import.html", context, status=status)
    response["Cache-Control"] = "private, no-store"
    return response


def _posted_token(request: HttpRequest) -> str:
    return (request.POST.get("token") or "")[:64]


def _visible_import(request: HttpRequest, key: UUID) -> tuple[User, LedgerImport]:
    user = current_user(request)
    return user, import_get(user, key)


@never_cache
@login_required
@require_GET
def ledger_import(request: HttpRequest, key: UUID) -> HttpResponse:
    """An import: its check (counts, first problems, error sheet), its columns, its commit."""
    try:
        user, li = _visible_import(request, key)
    except DomainError as exc:
        return _error_page(request, exc)
    return _import_page(request, user, li)


@login_required
@require_POST
def ledger_recheck_view(request: HttpRequest, key: UUID) -> HttpResponseBase:
    """Check the stored ledger again with the columns mapped as the form says."""
    try:
        user, li = _visible_import(request, key)
        headers = list(ledger_preview(actor=user, ledger_import=li)["headers"])
    except DomainError as exc:
        return _error_page(request, exc)
    mapping = _posted_mapping(request, headers)
    try:
        with _once(user, _posted_token(request), _import_url(li)):
            ledger_recheck(
                actor=user,
                ledger_import=li,
                mapping=mapping,
                background=runs_in_background(import_size(li)),
            )
    except _AlreadyDone as exc:
        return _done_already(request, exc)
    except ValidationFailed as exc:
        return _import_page(
            request, user, li, mapping=mapping, mapping_error=exc.message, status=exc.status
        )
    except DomainError as exc:
        return _import_page(request, user, li, error=exc.message, status=exc.status)
    return redirect(_import_url(li))


@login_required
@require_POST
def ledger_commit_view(request: HttpRequest, key: UUID) -> HttpResponseBase:
    """Import a checked ledger, all or nothing."""
    try:
        user, li = _visible_import(request, key)
    except DomainError as exc:
        return _error_page(request, exc)
    try:
        with _once(user, _posted_token(request), _import_url(li)):
            done = ledger_commit(
                actor=user, ledger_import=li, background=runs_in_background(import_size(li))
            )
    except _AlreadyDone as exc:
        return _done_already(request, exc)
    except DomainError as exc:
        return _import_page(request, user, li, error=exc.message, status=exc.status)
    # the import page says what was imported, or why nothing was
    return redirect(_import_url(done))


@never_cache
@login_required
@require_GET
def ledger_errors(request: HttpRequest, key: UUID) -> HttpResponseBase:
    """The error sheet of a check (xlsx: row, column, value masked, problem)."""
    try:
        _user, li = _visible_import(request, key)
        if not li.error_sheet:
            raise NotFound(_("this import has no error sheet"))
        handle = li.error_sheet.open("rb")
    except DomainError as exc:
        return _error_page(request, exc)
    except OSError:
        return _error_page(request, NotFound(_("the error sheet of this import is gone")))
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=f"{Path(li.file_name).stem}-errors.xlsx",
        content_type=XLSX_TYPE,
    )
    response["Cache-Control"] = "private, no-store"
    return response


@never_cache
@require_GET
def ledger_progress(request: HttpRequest) -> HttpResponse:
    """How far a check or commit has come: ``?import=<uuid>`` (with ``reload=1`` the page is
    reloaded once the import is no longer running) or ``?token=<form token>`` (the import a
    form started, once the importer has created it). Polled by htmx; an anonymous caller (a
    session that expired) gets 401, so that nothing is swapped into the page."""
    if not request.user.is_authenticated:
        return HttpResponse(status=401)
    user = current_user(request)
    li: LedgerImport | None = None
    key = (request.GET.get("import") or "").strip()
    if key:
        try:
            li = import_get(user, key)
        except DomainError as exc:
            return HttpResponse(exc.message, status=exc.status, content_type="text/plain")
    else:
        token = (request.GET.get("token") or "").strip()[:64]
        li = _import_of_token(user, token) if token else None
    context = {
        "li": li,
        "done": import_progress(li) if li is not None else 0,
        "running": li is None or li.status in RUNNING,
    }
    response = render(request, "registry/ledger_progress.html", context)
    if li is not None and li.status not in RUNNING and request.GET.get("reload") == "1":
        response["HX-Refresh"] = "true"
    return response


# --- export -------------------------------------------------------------------------------------


@never_cache
@login_required
@require_GET
def ledger_export_view(request: HttpRequest) -> HttpResponseBase:
    """The people in the user's scope matching the filters, as xlsx or csv; id and phone
    numbers masked, tags above the user's clearance left out; logged (who, filter, count)."""
    user = current_user(request)
    if selectors.registry_scope(user).is_empty:
        return render(request, "registry/no_access.html")
    form = ExportForm(request.GET, user=user)
    if not form.is_valid():
        problems = [str(e) for errors in form.errors.values() for e in errors]
        return _ledger_page(
            request, user, export_form=form, export_error=" ".join(problems), status=422
        )
    data = form.cleaned_data
    fmt = data["format"] if data["format"] in FORMATS else "xlsx"
    chosen = {key: data[key] for key in ("region", "person_type", "tag") if data.get(key)}
    try:
        export = ledger_export(
            actor=user,
            kind="people",
            filter=chosen,
            fmt=fmt,
            channel=Channel.WEB,
            screen=_screen(request),
        )
    except DomainError as exc:
        return _ledger_page(
            request, user, export_form=form, export_error=exc.message, status=exc.status
        )
    return export.response()
