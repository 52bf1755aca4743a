"""The case list as a spreadsheet (xlsx) or CSV, with the list's filters.

- Only the cases the user may see (``selectors.cases_filtered``), at most ``MAX_ROWS``: a larger
  export is refused with a message asking for narrower filters (never silently cut short).
- The xlsx is written by xlsxwriter in ``constant_memory`` mode (one row in memory at a time)
  into a temporary file that is then streamed; the CSV is streamed row by row (UTF-8 with a byte
  order mark, so that Excel reads the Chinese text).
- Text that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab
  or a carriage return) is prefixed with an apostrophe; reporters' phones are masked.
- Every label is translated before the response is returned: the rows are produced later, while
  the server streams them.
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import xlsxwriter
from django.conf import settings
from django.db.models import QuerySet
from django.http import FileResponse, StreamingHttpResponse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from gridgov.core.errors import DomainError
from gridgov.core.masking import mask_phone
from gridgov.core.worktime import local_zone
from gridgov.formats.cells import safe_text

from .deadlines import light_of
from .models import Case, Category, Light, Source, Urgency
from .selectors import CaseFilter, cases_filtered
from .workflow import State, Step

#: The most rows one export holds (``GRIDGOV_CASE_EXPORT_MAX_ROWS`` overrides it).
MAX_ROWS = 100_000
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_CHUNK = 2000

#: (key, English header, column width in the sheet)
COLUMNS: tuple[tuple[str, Any, int], ...] = (
    ("number", gettext_lazy("Case number"), 24),
    ("state", gettext_lazy("State"), 12),
    ("category_code", gettext_lazy("Category code"), 10),
    ("category", gettext_lazy("Category"), 20),
    ("urgency", gettext_lazy("Urgency"), 8),
    ("emergency", gettext_lazy("Emergency path"), 8),
    ("source", gettext_lazy("Source"), 10),
    ("grid_code", gettext_lazy("Grid code"), 17),
    ("grid", gettext_lazy("Grid"), 18),
    ("address", gettext_lazy("Address"), 24),
    ("description", gettext_lazy("Description"), 40),
    ("lat", gettext_lazy("Latitude"), 11),
    ("lon", gettext_lazy("Longitude"), 11),
    ("reporter", gettext_lazy("Reporter"), 12),
    ("reporter_phone", gettext_lazy("Reporter's phone (masked)"), 14),
    ("lead_unit", gettext_lazy("Lead unit"), 20),
    ("assisting_units", gettext_lazy("Assisting units"), 24),
    ("step", gettext_lazy("Open step"), 12),
    ("due_at", gettext_lazy("Due at"), 17),
    ("light", gettext_lazy("Light"), 8),
    ("reported_at", gettext_lazy("Reported at"), 17),
    ("registered_at", gettext_lazy("Registered at"), 17),
    ("dispatched_at", gettext_lazy("Dispatched at"), 17),
    ("closed_at", gettext_lazy("Closed at"), 17),
    ("rework_count", gettext_lazy("Reworks"), 8),
    ("send_back_count", gettext_lazy("Send-backs"), 8),
    ("extension_count", gettext_lazy("Extensions"), 8),
    ("supervised", gettext_lazy("Supervised"), 8),
    ("rating", gettext_lazy("Rating"), 7),
)
_DATES = frozenset({"due_at", "reported_at", "registered_at", "dispatched_at", "closed_at"})
_NUMBERS = frozenset({"lat", "lon", "rework_count", "send_back_count", "extension_count", "rating"})


def max_rows() -> int:
    return int(getattr(settings, "GRIDGOV_CASE_EXPORT_MAX_ROWS", MAX_ROWS))


def export_queryset(user: Any, f: CaseFilter) -> QuerySet[Case]:
    return (
        cases_filtered(user, f)
        .select_related("category", "grid", "lead_unit")
        .prefetch_related("assisting_units")
    )


def _checked(user: Any, f: CaseFilter) -> QuerySet[Case]:
    qs = export_queryset(user, f)
    count = qs.count()
    limit = max_rows()
    if count > limit:
        raise DomainError(
            _(
                "%(count)s cases match these filters; an export holds at most %(limit)s. "
                "Narrow the filters (for example the dates) and export again."
            )
            % {"count": f"{count:,}", "limit": f"{limit:,}"},
            status=422,
            detail={"count": count, "limit": limit},
        )
    return qs


class _Labels:
    """Every translated word an export needs, fixed while the request's language is active."""

    def __init__(self) -> None:
        self.headers = [str(header) for _key, header, _width in COLUMNS]
        self.states = {s.value: str(s.label) for s in State}
        self.steps = {s.value: str(s.label) for s in Step}
        self.sources = {s.value: str(s.label) for s in Source}
        self.urgencies = {u.value: str(u.label) for u in Urgency}
        self.lights = {lt.value: str(lt.label) for lt in Light if lt.value}
        self.yes, self.no = _("yes"), _("no")
        self.english = (translation.get_language() or "").startswith("en")

    def category(self, category: Category) -> str:
        if self.english and category.name_en:
            return category.name_en
        return category.name_zh


def _values(case: Case, labels: _Labels, now: datetime) -> dict[str, Any]:
    light = light_of(case.due_soon_at, case.due_at, now)
    return {
        "number": case.number,
        "state": labels.states.get(case.state, case.state),
        "category_code": case.category.code,
        "category": labels.category(case.category),
        "urgency": labels.urgencies.get(case.urgency, case.urgency),
        "emergency": labels.yes if case.emergency else labels.no,
        "source": labels.sources.get(case.source, case.source),
        "grid_code": case.region_code,
        "grid": case.grid.name if case.grid is not None else "",
        "address": case.address,
        "description": case.description,
        "lat": case.lat,
        "lon": case.lon,
        "reporter": case.reporter_name,
        "reporter_phone": mask_phone(case.reporter_phone),
        "lead_unit": case.lead_unit.name if case.lead_unit is not None else "",
        "assisting_units": "、".join(u.name for u in case.assisting_units.all()),
        "step": labels.steps.get(case.step, case.step),
        "due_at": case.due_at,
        "light": labels.lights.get(light, ""),
        "reported_at": case.reported_at,
        "registered_at": case.registered_at,
        "dispatched_at": case.dispatched_at,
        "closed_at": case.closed_at,
        "rework_count": case.rework_count,
        "send_back_count": case.send_back_count,
        "extension_count": case.extension_count,
        "supervised": labels.yes if case.supervised else labels.no,
        "rating": case.rating,
    }


def _local(value: datetime) -> datetime:
    return timezone.localtime(value, local_zone()).replace(tzinfo=None)


def iter_rows(qs: QuerySet[Case], labels: _Labels) -> Iterator[dict[str, Any]]:
    now = timezone.now()
    for case in qs.iterator(chunk_size=_CHUNK):
        yield _values(case, labels, now)


def _filename(extension: str) -> str:
    stamp = timezone.localtime(timezone.now(), local_zone()).strftime("%Y%m%d-%H%M")
    return f"cases-{stamp}.{extension}"


# --- CSV ----------------------------------------------------------------------------------------


class _Echo:
    """A file-like object whose write returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


def _csv_cell(key: str, value: Any) -> str:
    if value is None:
        return ""
    if key in _DATES:
        return _local(value).strftime("%Y-%m-%d %H:%M")
    if key in _NUMBERS:
        return str(value)
    return safe_text(str(value))


def csv_lines(qs: QuerySet[Case], labels: _Labels) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow([safe_text(h) for h in labels.headers])
    keys = [key for key, _header, _width in COLUMNS]
    for row in iter_rows(qs, labels):
        yield writer.writerow([_csv_cell(key, row[key]) for key in keys])


def csv_response(user: Any, f: CaseFilter) -> StreamingHttpResponse:
    """The filtered cases as CSV, streamed; DomainError 422 when there are too many."""
    qs = _checked(user, f)
    response = StreamingHttpResponse(
        csv_lines(qs, _Labels()), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{_filename("csv")}"'
    response["Cache-Control"] = "private, no-store"
    return response


# --- xlsx ---------------------------------------------------------------------------------------


def write_xlsx(qs: QuerySet[Case], labels: _Labels, target: Any) -> int:
    """Write the sheet into ``target`` (a path or a binary file); the number of cases written."""
    workbook = xlsxwriter.Workbook(
        target,
        {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        },
    )
    sheet = workbook.add_worksheet(_("Cases"))
    bold = workbook.add_format({"bold": True, "bg_color": "#E8F0FA", "border": 1})
    when = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    for col, (_key, _header, width) in enumerate(COLUMNS):
        sheet.set_column(col, col, width)
    sheet.freeze_panes(1, 1)
    for col, header in enumerate(labels.headers):
        sheet.write_string(0, col, safe_text(header), bold)
    keys = [key for key, _header, _width in COLUMNS]
    row_number = 0
    for row_number, row in enumerate(iter_rows(qs, labels), start=1):
        for col, key in enumerate(keys):
            value = row[key]
            if value is None or value == "":
                continue
            if key in _DATES:
                sheet.write_datetime(row_number, col, _local(value), when)
            elif key in _NUMBERS:
                sheet.write_number(row_number, col, value)
            else:
                sheet.write_string(row_number, col, safe_text(str(value)))
    sheet.autofilter(0, 0, max(row_number, 1), len(COLUMNS) - 1)
    workbook.close()
    return row_number


def xlsx_response(user: Any, f: CaseFilter) -> FileResponse:
    """The filtered cases as an xlsx workbook; DomainError 422 when there are too many."""
    qs = _checked(user, f)
    handle = tempfile.TemporaryFile(suffix=".xlsx")  # noqa: SIM115 (FileResponse closes it)
    try:
        write_xlsx(qs, _Labels(), handle)
        handle.seek(0)
    except BaseException:
        handle.close()
        raise
    response = FileResponse(
        handle, as_attachment=True, filename=_filename("xlsx"), content_type=XLSX_TYPE
    )
    response["Cache-Control"] = "private, no-store"
    return response
