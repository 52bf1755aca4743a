"""Export of the registry as a ledger: people, households, buildings or organisations.

``ledger_export(actor=…, kind=…, filter=…, fmt="xlsx" | "csv")`` writes the records the actor
may see (``gridgov.registry.selectors``) that match the filter into a temporary file and
answers an ``ExportFile`` (open handle, download name, content type, row count):

- id and phone numbers only as their stored masks (the encrypted columns are never read);
  tags above the actor's clearance are left out;
- every text cell through ``gridgov.formats.cells.safe_text``, so that nothing a record holds
  runs as a formula when the file is opened;
- the export is logged (``gridgov.privacy.actions.access_log_export``): who, which kind, the
  filter (personal values masked), how many rows, which columns;
- at most ``GRIDGOV_REGISTRY_EXPORT_MAX_ROWS`` rows (and never more than a sheet holds): a
  larger export is refused with a message asking for narrower filters, never cut short.

Rows are read in key order in chunks (``pk > last``), written one at a time: xlsxwriter in
``constant_memory`` mode, CSV in UTF-8 with a byte order mark so that Excel reads the Chinese.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, Any

import xlsxwriter
from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.http import FileResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from gridgov.cases.exports import XLSX_TYPE
from gridgov.core.errors import DomainError, PermissionDenied
from gridgov.core.scope import prefix_q
from gridgov.core.worktime import local_zone
from gridgov.formats.cells import safe_text
from gridgov.privacy.actions import access_log_export
from gridgov.privacy.errors import ValidationFailed
from gridgov.privacy.models import Channel, SubjectType

from ..models import (
    Building,
    BuildingType,
    ClosedReason,
    Household,
    Organisation,
    OrganisationKind,
    Person,
    PersonTag,
    PersonType,
    Relation,
    Sex,
    Verification,
    normalise_address,
)
from ..selectors import (
    buildings_visible_to,
    households_visible_to,
    organisations_visible_to,
    people_visible_to,
    registry_scope,
    tag_level,
    tag_types_visible_to,
)

#: The most rows one export holds (``GRIDGOV_REGISTRY_EXPORT_MAX_ROWS`` overrides it).
MAX_ROWS = 1_000_000
#: A sheet's rows below the header.
XLSX_MAX_ROWS = 1_048_575
CHUNK = 5000
CSV_TYPE = "text/csv; charset=utf-8"
KINDS = ("people", "households", "buildings", "organisations")
FORMATS = ("xlsx", "csv")

#: Filter keys each kind accepts (all take region, q and include_closed).
_COMMON = frozenset({"region", "q", "include_closed"})
FILTERS: dict[str, frozenset[str]] = {
    "people": _COMMON | {"person_type", "sex", "tag", "verification", "relation"},
    "households": _COMMON,
    "buildings": _COMMON | {"kind"},
    "organisations": _COMMON | {"kind"},
}


@dataclass
class ExportFile:
    """An export written to a temporary file: hand ``handle`` to the response (it closes it)."""

    handle: IO[bytes]
    file_name: str
    content_type: str
    count: int

    def close(self) -> None:
        self.handle.close()

    def response(self) -> FileResponse:
        """The download: an attachment, private and never stored, its rows in ``X-Rows``."""
        response = FileResponse(
            self.handle,
            as_attachment=True,
            filename=self.file_name,
            content_type=self.content_type,
        )
        response["Cache-Control"] = "private, no-store"
        response["X-Rows"] = str(self.count)
        return response


@dataclass(frozen=True)
class Column:
    key: str
    title: Any
    width: int = 14
    kind: str = "text"  # text | date | number


def _max_rows(fmt: str) -> int:
    limit = int(getattr(settings, "GRIDGOV_REGISTRY_EXPORT_MAX_ROWS", MAX_ROWS))
    return min(limit, XLSX_MAX_ROWS) if fmt == "xlsx" else limit


# --------------------------------------------------------------------------- filters


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _choice(problems: dict[str, str], key: str, value: Any, choices: Any) -> str:
    text = str(value or "").strip()
    if text and text not in choices.values:
        problems[key] = _("%(value)s is not one of %(choices)s") % {
            "value": text[:30],
            "choices": ", ".join(choices.values),
        }
    return text


def clean_filter(actor: Any, kind: str, raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """The filter with known keys only and valid values; ValidationFailed otherwise."""
    if kind not in KINDS:
        message = _("choose what to export: %(kinds)s") % {"kinds": ", ".join(KINDS)}
        raise ValidationFailed(message, detail={"kind": message})
    given = {k: v for k, v in (raw or {}).items() if v not in (None, "", [], False)}
    problems: dict[str, str] = {}
    unknown = sorted(set(given) - FILTERS[kind])
    if unknown:
        problems["filter"] = _("unknown filter %(keys)s; use %(known)s") % {
            "keys": ", ".join(unknown),
            "known": ", ".join(sorted(FILTERS[kind])),
        }
    clean: dict[str, Any] = {}
    if "region" in given:
        code = str(given["region"]).strip()
        if not code.isdigit() or len(code) > 15:
            problems["region"] = _("a region code is up to 15 digits")
        clean["region"] = code
    if "q" in given:
        clean["q"] = str(given["q"]).strip()[:100]
    if "include_closed" in given:
        clean["include_closed"] = _flag(given["include_closed"])
    choices = {
        "person_type": PersonType,
        "sex": Sex,
        "verification": Verification,
        "relation": Relation,
        "kind": BuildingType if kind == "buildings" else OrganisationKind,
    }
    for key, table in choices.items():
        if key in given and key in FILTERS[kind]:
            clean[key] = _choice(problems, key, given[key], table)
    if "tag" in given and kind == "people":
        code = str(given["tag"]).strip()
        if not tag_types_visible_to(actor, include_inactive=True).filter(code=code).exists():
            problems["tag"] = _("no tag %(code)s") % {"code": code[:40]}
        clean["tag"] = code
    if problems:
        raise ValidationFailed(
            _("please correct the filter: %(problems)s")
            % {"problems": "; ".join(problems.values())},
            detail=problems,
        )
    return clean


def _queryset(actor: Any, kind: str, f: dict[str, Any]) -> QuerySet[Any]:
    closed = bool(f.get("include_closed"))
    qs: QuerySet[Any]
    if kind == "people":
        qs = people_visible_to(actor, include_closed=closed)
        for key in ("person_type", "sex", "verification", "relation"):
            if f.get(key):
                qs = qs.filter(**{key: f[key]})
        if f.get("tag"):
            qs = qs.filter(
                tags__tag_type__code=f["tag"], tags__tag_type__sensitivity__lte=tag_level(actor)
            )
        if f.get("q"):
            qs = qs.filter(name__contains=f["q"])
    elif kind == "households":
        qs = households_visible_to(actor, include_closed=closed)
        if f.get("q"):
            qs = qs.filter(number__contains=f["q"])
    elif kind == "buildings":
        qs = buildings_visible_to(actor, include_closed=closed)
        if f.get("kind"):
            qs = qs.filter(kind=f["kind"])
        if f.get("q"):
            qs = qs.filter(address_key__contains=normalise_address(f["q"]))
    else:
        qs = organisations_visible_to(actor, include_closed=closed)
        if f.get("kind"):
            qs = qs.filter(kind=f["kind"])
        if f.get("q"):
            qs = qs.filter(name__contains=f["q"])
    if f.get("region"):
        qs = qs.filter(prefix_q("region_code", f["region"]))
    return qs


# --------------------------------------------------------------------------- columns and rows


def _labels(choices: Any) -> dict[str, str]:
    return {c.value: str(c.label) for c in choices}


PEOPLE_COLUMNS = (
    Column("uuid", gettext_lazy("Record id"), 36),
    Column("name", gettext_lazy("Name"), 12),
    Column("sex", gettext_lazy("Sex"), 6),
    Column("birth_date", gettext_lazy("Date of birth"), 11, "date"),
    Column("id_number", gettext_lazy("Id number (masked)"), 20),
    Column("phone", gettext_lazy("Phone (masked)"), 14),
    Column("ethnicity", gettext_lazy("Ethnicity"), 8),
    Column("person_type", gettext_lazy("Person type"), 12),
    Column("relation", gettext_lazy("Relation to the head"), 10),
    Column("verification", gettext_lazy("Verification"), 10),
    Column("moved_in_on", gettext_lazy("Moved in on"), 11, "date"),
    Column("grid_code", gettext_lazy("Grid code"), 17),
    Column("estate", gettext_lazy("Estate"), 16),
    Column("building", gettext_lazy("Building"), 8),
    Column("unit", gettext_lazy("Unit"), 6),
    Column("room", gettext_lazy("Room"), 8),
    Column("household_number", gettext_lazy("Household number"), 14),
    Column("tags", gettext_lazy("Tags"), 20),
    Column("closed", gettext_lazy("Closed"), 10),
)
HOUSEHOLD_COLUMNS = (
    Column("uuid", gettext_lazy("Record id"), 36),
    Column("number", gettext_lazy("Household number"), 14),
    Column("head", gettext_lazy("Head of household"), 12),
    Column("grid_code", gettext_lazy("Grid code"), 17),
    Column("estate", gettext_lazy("Estate"), 16),
    Column("building", gettext_lazy("Building"), 8),
    Column("unit", gettext_lazy("Unit"), 6),
    Column("room", gettext_lazy("Room"), 8),
    Column("members", gettext_lazy("Members"), 8, "number"),
    Column("closed", gettext_lazy("Closed"), 10),
)
BUILDING_COLUMNS = (
    Column("uuid", gettext_lazy("Record id"), 36),
    Column("estate", gettext_lazy("Estate"), 16),
    Column("number", gettext_lazy("Building"), 8),
    Column("address", gettext_lazy("Standard address"), 24),
    Column("kind", gettext_lazy("Type"), 10),
    Column("floors", gettext_lazy("Floors"), 6, "number"),
    Column("grid_code", gettext_lazy("Grid code"), 17),
    Column("community_code", gettext_lazy("Community code"), 14),
    Column("lon", gettext_lazy("Longitude"), 11, "number"),
    Column("lat", gettext_lazy("Latitude"), 11, "number"),
    Column("closed", gettext_lazy("Closed"), 10),
)
ORGANISATION_COLUMNS = (
    Column("uuid", gettext_lazy("Record id"), 36),
    Column("name", gettext_lazy("Name"), 24),
    Column("kind", gettext_lazy("Kind"), 12),
    Column("credit_code", gettext_lazy("Unified social credit code"), 20),
    Column("legal_rep", gettext_lazy("Legal representative"), 12),
    Column("contact_name", gettext_lazy("Contact"), 12),
    Column("contact_phone", gettext_lazy("Contact phone (masked)"), 14),
    Column("staff_count", gettext_lazy("Staff"), 8, "number"),
    Column("address", gettext_lazy("Address"), 24),
    Column("grid_code", gettext_lazy("Grid code"), 17),
    Column("closed", gettext_lazy("Closed"), 10),
)
COLUMNS = {
    "people": PEOPLE_COLUMNS,
    "households": HOUSEHOLD_COLUMNS,
    "buildings": BUILDING_COLUMNS,
    "organisations": ORGANISATION_COLUMNS,
}
SUBJECTS = {
    "people": SubjectType.PERSON,
    "households": SubjectType.HOUSEHOLD,
    "buildings": "",
    "organisations": SubjectType.ORGANISATION,
}


def _chunks(qs: QuerySet[Any], fields: tuple[str, ...]) -> Iterator[list[tuple[Any, ...]]]:
    """``values_list(pk, *fields)`` in key order, ``CHUNK`` rows at a time (keyset paging)."""
    last = 0
    base = qs.order_by("pk")
    while True:
        rows = list(base.filter(pk__gt=last).values_list("pk", *fields)[:CHUNK])
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _closed(labels: dict[str, str], at: Any, reason: str) -> str:
    if at is None:
        return ""
    return labels.get(reason, reason) or _("closed")


def _people_rows(actor: Any, qs: QuerySet[Person]) -> Iterator[dict[str, Any]]:
    sexes, types = _labels(Sex), _labels(PersonType)
    relations, checks = _labels(Relation), _labels(Verification)
    closed = _labels(ClosedReason)
    level = tag_level(actor)
    english = _is_english()
    fields = (
        "uuid",
        "name",
        "sex",
        "birth_date",
        "id_number_mask",
        "phone_mask",
        "ethnicity",
        "person_type",
        "relation",
        "verification",
        "moved_in_on",
        "region_code",
        "household__room__building__estate",
        "household__room__building__number",
        "household__room__unit",
        "household__room__number",
        "household__number",
        "closed_at",
        "closed_reason",
    )
    for chunk in _chunks(qs, fields):
        tags: dict[int, list[str]] = {}
        names = (
            PersonTag.objects.filter(
                person_id__in=[r[0] for r in chunk], tag_type__sensitivity__lte=level
            )
            .order_by("tag_type__sensitivity", "tag_type__order", "tag_type__code")
            .values_list("person_id", "tag_type__name_zh", "tag_type__name_en")
        )
        for person_id, name_zh, name_en in names:
            tags.setdefault(person_id, []).append(name_en if english and name_en else name_zh)
        for r in chunk:
            yield {
                "uuid": str(r[1]),
                "name": r[2],
                "sex": sexes.get(r[3], r[3]),
                "birth_date": r[4],
                "id_number": r[5],
                "phone": r[6],
                "ethnicity": r[7],
                "person_type": types.get(r[8], r[8]),
                "relation": relations.get(r[9], r[9]),
                "verification": checks.get(r[10], r[10]),
                "moved_in_on": r[11],
                "grid_code": r[12],
                "estate": r[13] or "",
                "building": r[14] or "",
                "unit": r[15] or "",
                "room": r[16] or "",
                "household_number": r[17] or "",
                "tags": "、".join(tags.get(r[0], [])),
                "closed": _closed(closed, r[18], r[19]),
            }


def _is_english() -> bool:
    from django.utils import translation

    return (translation.get_language() or "").startswith("en")


def _household_rows(actor: Any, qs: QuerySet[Household]) -> Iterator[dict[str, Any]]:
    closed = _labels(ClosedReason)
    counted = qs.annotate(n=Count("members", filter=Q(members__closed_at__isnull=True)))
    fields = (
        "uuid",
        "number",
        "head__name",
        "region_code",
        "room__building__estate",
        "room__building__number",
        "room__unit",
        "room__number",
        "n",
        "closed_at",
        "closed_reason",
    )
    for chunk in _chunks(counted, fields):
        for r in chunk:
            yield {
                "uuid": str(r[1]),
                "number": r[2],
                "head": r[3] or "",
                "grid_code": r[4],
                "estate": r[5] or "",
                "building": r[6] or "",
                "unit": r[7] or "",
                "room": r[8] or "",
                "members": r[9],
                "closed": _closed(closed, r[10], r[11]),
            }


def _building_rows(actor: Any, qs: QuerySet[Building]) -> Iterator[dict[str, Any]]:
    closed, kinds = _labels(ClosedReason), _labels(BuildingType)
    fields = (
        "uuid",
        "estate",
        "number",
        "address",
        "kind",
        "floors",
        "region_code",
        "community_code",
        "lon",
        "lat",
        "closed_at",
        "closed_reason",
    )
    for chunk in _chunks(qs, fields):
        for r in chunk:
            yield {
                "uuid": str(r[1]),
                "estate": r[2],
                "number": r[3],
                "address": r[4],
                "kind": kinds.get(r[5], r[5]),
                "floors": r[6],
                "grid_code": r[7],
                "community_code": r[8],
                "lon": r[9],
                "lat": r[10],
                "closed": _closed(closed, r[11], r[12]),
            }


def _organisation_rows(actor: Any, qs: QuerySet[Organisation]) -> Iterator[dict[str, Any]]:
    closed, kinds = _labels(ClosedReason), _labels(OrganisationKind)
    fields = (
        "uuid",
        "name",
        "kind",
        "credit_code",
        "legal_rep",
        "contact_name",
        "contact_phone_mask",
        "staff_count",
        "address",
        "region_code",
        "closed_at",
        "closed_reason",
    )
    for chunk in _chunks(qs, fields):
        for r in chunk:
            yield {
                "uuid": str(r[1]),
                "name": r[2],
                "kind": kinds.get(r[3], r[3]),
                "credit_code": r[4],
                "legal_rep": r[5],
                "contact_name": r[6],
                "contact_phone": r[7],
                "staff_count": r[8],
                "address": r[9],
                "grid_code": r[10],
                "closed": _closed(closed, r[11], r[12]),
            }


ROWS: dict[str, Callable[[Any, QuerySet[Any]], Iterator[dict[str, Any]]]] = {
    "people": _people_rows,
    "households": _household_rows,
    "buildings": _building_rows,
    "organisations": _organisation_rows,
}


# --------------------------------------------------------------------------- writing


def _cell_text(column: Column, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return timezone.localtime(value, local_zone()).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if column.kind == "number":
        return str(value)
    return safe_text(str(value))


def write_csv(
    rows: Iterator[dict[str, Any]], columns: tuple[Column, ...], target: IO[bytes]
) -> int:
    text = io.TextIOWrapper(target, encoding="utf-8-sig", newline="", write_through=True)
    try:
        writer = csv.writer(text)
        writer.writerow([safe_text(str(c.title)) for c in columns])
        count = 0
        for row in rows:
            writer.writerow([_cell_text(c, row[c.key]) for c in columns])
            count += 1
        text.flush()
    finally:
        text.detach()
    return count


def write_xlsx(
    rows: Iterator[dict[str, Any]], columns: tuple[Column, ...], target: IO[bytes], title: str
) -> int:
    workbook = xlsxwriter.Workbook(
        target,
        {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        },
    )
    try:
        sheet = workbook.add_worksheet(title[:31])
        bold = workbook.add_format({"bold": True, "bg_color": "#E8F0FA", "border": 1})
        day = workbook.add_format({"num_format": "yyyy-mm-dd"})
        for col, column in enumerate(columns):
            sheet.set_column(col, col, column.width)
            sheet.write_string(0, col, safe_text(str(column.title)), bold)
        sheet.freeze_panes(1, 2)
        count = 0
        for count, row in enumerate(rows, start=1):
            for col, column in enumerate(columns):
                value = row[column.key]
                if value is None or value == "":
                    continue
                if column.kind == "date" and isinstance(value, date):
                    sheet.write_datetime(
                        count, col, datetime(value.year, value.month, value.day), day
                    )
                elif column.kind == "number" and isinstance(value, int | float):
                    sheet.write_number(count, col, value)
                else:
                    sheet.write_string(count, col, _cell_text(column, value))
        sheet.autofilter(0, 0, max(count, 1), len(columns) - 1)
    finally:
        workbook.close()
    return count


_TITLES = {
    "people": gettext_lazy("People"),
    "households": gettext_lazy("Households"),
    "buildings": gettext_lazy("Buildings"),
    "organisations": gettext_lazy("Organisations"),
}


def ledger_export(
    *,
    actor: Any,
    kind: str,
    filter: Mapping[str, Any] | None = None,
    fmt: str = "xlsx",
    channel: str = Channel.EXPORT,
    screen: str = "",
) -> ExportFile:
    """The records of ``kind`` the actor sees that match ``filter``, masked, as a file; logged.

    ``kind``: people, households, buildings or organisations; ``fmt``: xlsx or csv;
    ``channel``/``screen``: where the export was asked for (for the access log). Raises
    ``ValidationFailed`` for an unknown kind, format or filter and ``DomainError`` (422) when
    more rows match than an export holds.
    """
    if fmt not in FORMATS:
        message = _("choose the format: xlsx or csv")
        raise ValidationFailed(message, detail={"format": message})
    if registry_scope(actor).is_empty:
        raise PermissionDenied(_("you may not see base data"))
    f = clean_filter(actor, kind, filter)
    qs = _queryset(actor, kind, f)
    count = qs.count()
    limit = _max_rows(fmt)
    if count > limit:
        raise DomainError(
            _(
                "%(count)s records match these filters; an export holds at most %(limit)s. "
                "Narrow the filters (for example the region) and export again."
            )
            % {"count": f"{count:,}", "limit": f"{limit:,}"},
            status=422,
            detail={"count": count, "limit": limit},
        )
    columns = COLUMNS[kind]
    handle = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller
    try:
        rows = ROWS[kind](actor, qs)
        if fmt == "csv":
            written = write_csv(rows, columns, handle)
        else:
            written = write_xlsx(rows, columns, handle, str(_TITLES[kind]))
        handle.seek(0)
    except BaseException:
        handle.close()
        raise
    access_log_export(
        actor=actor,
        subject_type=SUBJECTS[kind],
        filter={"kind": kind, "format": fmt, **f},
        count=written,
        channel=channel,
        screen=screen,
        fields=[c.key for c in columns],
        region_code=str(f.get("region", "")),
    )
    stamp = timezone.localtime(timezone.now(), local_zone()).strftime("%Y%m%d-%H%M")
    return ExportFile(
        handle=handle,
        file_name=f"{kind}-{stamp}.{fmt}",
        content_type=XLSX_TYPE if fmt == "xlsx" else CSV_TYPE,
        count=written,
    )
