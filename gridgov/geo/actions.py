"""Writes to the region tree: division imports, GeoJSON imports and exports, grid generation.

Every write is a keyword-only ``@transaction.atomic`` action. Imports are all-or-nothing: they
check everything first and return a report; when the report has errors nothing is written.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from django.conf import settings
from django.db import transaction
from django.db.models import ProtectedError, RestrictedError
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from shapely.errors import GEOSException
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from gridgov.core.errors import Conflict, DomainError, NotFound, PermissionDenied
from gridgov.geo.checks import Problem, check_children, kind_label, named
from gridgov.geo.codes import (
    LEGACY_GRID_LENGTH,
    LEVEL_LENGTH,
    CodeError,
    community_short_name,
    grid_code,
    level_noun,
    level_of,
    normalise_code,
    parent_code,
)
from gridgov.geo.geometry import (
    MAX_VERTICES,
    GeometryError,
    parse_geometry,
    region_fields_from_geometry,
    validity_problem,
)
from gridgov.geo.geometry import (
    repair as repair_geometry,
)
from gridgov.geo.gridgen import GridGenError, cut_community
from gridgov.geo.index import grids_changed
from gridgov.geo.models import GridType, Level, Region

#: GEOS and pyproj failures on hostile input become a per-feature error, never a crash.
_GEOMETRY_FAILURES = (GeometryError, GEOSException, ValueError, TypeError, OverflowError)
_CHUNK = 2000
#: Features accepted in one GeoJSON import.
MAX_FEATURES = 50_000
MAX_HOUSEHOLDS = 10_000_000
_LEVEL_ORDER = {level: i for i, level in enumerate(("district", "street", "community", "grid"))}
#: A feature's status in a report as words (``FeatureReport.status`` stays the code).
_STATUS_LABELS = {
    "added": gettext_lazy("added"),
    "updated": gettext_lazy("updated"),
    "unchanged": gettext_lazy("unchanged"),
    "error": gettext_lazy("error"),
}
#: The children of a level, as named in a gap warning.
_CHILD_NOUNS = {
    "district": gettext_lazy("streets"),
    "street": gettext_lazy("communities"),
    "community": gettext_lazy("grids"),
}


def _more(shown: str, total: int, limit: int) -> str:
    """``shown`` followed by "and N more" when ``total`` exceeds ``limit``."""
    if total <= limit:
        return shown
    return _("%(shown)s and %(count)s more") % {"shown": shown, "count": total - limit}


def default_grid_name(sequence: int, community_name: str = "") -> str:
    """The name a grid gets when none is given: 长营社区第001网格 (data, not a UI string)."""
    return f"{community_short_name(community_name)}第{sequence:03d}网格"


def _chunks(items: Sequence[str], size: int = _CHUNK) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _existing(codes: Sequence[str]) -> dict[str, Region]:
    found: dict[str, Region] = {}
    for chunk in _chunks(sorted(set(codes))):
        for region in Region.objects.filter(code__in=chunk):
            found[region.code] = region
    return found


def _ids(codes: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(codes))
    ids: dict[str, int] = {}
    for chunk in _chunks(wanted):
        ids.update(Region.objects.filter(code__in=chunk).values_list("code", "id"))
    return ids


# --- divisions ----------------------------------------------------------------------------------


@dataclass
class RowError:
    line: int
    code: str
    message: str
    file: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "code": self.code, "message": self.message}

    def __str__(self) -> str:
        where = (
            f"{self.file}:{self.line}" if self.file else _("line %(line)s") % {"line": self.line}
        )
        code = f" {self.code}" if self.code else ""
        return f"{where}{code}: {self.message}"


@dataclass
class ImportReport:
    """What a divisions import did (or would have done, when it has errors)."""

    files: list[str] = field(default_factory=list)
    layouts: list[str] = field(default_factory=list)
    encodings: list[str] = field(default_factory=list)
    district: str | None = None
    rows: int = 0
    skipped: int = 0
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    added_codes: list[str] = field(default_factory=list)
    changed_codes: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    written: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "layouts": self.layouts,
            "encodings": self.encodings,
            "district": self.district,
            "rows": self.rows,
            "skipped": self.skipped,
            "added": self.added,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "added_codes": self.added_codes,
            "changed_codes": self.changed_codes,
            "errors": [e.as_dict() for e in self.errors],
            "written": self.written,
        }

    def text(self, *, limit: int = 50) -> str:
        lines = []
        for name, layout, encoding in zip(self.files, self.layouts, self.encodings, strict=False):
            lines.append(
                _("%(file)s: %(layout)s layout, %(encoding)s")
                % {"file": name, "layout": layout, "encoding": encoding}
            )
        if self.district:
            lines.append(
                ngettext(
                    "only the subtree of %(district)s; %(count)s row outside it skipped",
                    "only the subtree of %(district)s; %(count)s rows outside it skipped",
                    self.skipped,
                )
                % {"district": self.district, "count": self.skipped}
            )
        if self.errors:
            lines.append(
                ngettext(
                    "%(count)s error; nothing was written:",
                    "%(count)s errors; nothing was written:",
                    len(self.errors),
                )
                % {"count": len(self.errors)}
            )
            lines.extend(f"  {e}" for e in self.errors[:limit])
            if len(self.errors) > limit:
                lines.append(
                    "  " + _("... and %(count)s more") % {"count": len(self.errors) - limit}
                )
            return "\n".join(lines)
        lines.append(
            _("%(added)s added, %(changed)s changed, %(unchanged)s unchanged (%(rows)s rows read)")
            % {
                "added": self.added,
                "changed": self.changed,
                "unchanged": self.unchanged,
                "rows": self.rows,
            }
        )
        if self.changed_codes:
            shown = _more(", ".join(self.changed_codes[:limit]), len(self.changed_codes), limit)
            lines.append(_("changed: %(codes)s") % {"codes": shown})
        return "\n".join(lines)


@dataclass
class _Division:
    file: str
    line: int
    code: str
    name: str
    level: str


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def has_control_characters(text: str) -> bool:
    """True for text holding NUL or another control character (tab and line breaks aside):
    no name holds one, and PostgreSQL cannot store a NUL."""
    return _CONTROL.search(text) is not None


def decode_text(raw: bytes) -> tuple[str, str]:
    """Decode a CSV as UTF-8 (with or without BOM) or else GBK (read as its superset GB18030)."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", errors="strict"), "UTF-8 with BOM"
    try:
        return raw.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("gb18030"), "GBK"
    except UnicodeDecodeError as exc:
        raise DomainError(
            _("the file is neither UTF-8 nor GBK text (undecodable byte at offset %(offset)s)")
            % {"offset": exc.start}
        ) from exc


def _layout(header: list[str]) -> str | None:
    names = {h.strip().lower() for h in header}
    if {"code", "name", "level"} <= names:
        return "gridgov"
    if {"code", "name", "streetcode"} <= names:
        return "china-division villages"
    if {"code", "name", "areacode"} <= names:
        return "china-division streets"
    if {"code", "name", "citycode"} <= names:
        return "china-division areas"
    return None


_LAYOUT_LEVEL = {
    "china-division areas": ("district", "citycode"),
    "china-division streets": ("street", "areacode"),
    "china-division villages": ("community", "streetcode"),
}


def _read_divisions(path: Path, *, district: str | None, report: ImportReport) -> list[_Division]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DomainError(
            _("cannot read %(path)s: %(error)s") % {"path": path, "error": exc.strerror or exc}
        ) from exc
    text, encoding = decode_text(raw)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise DomainError(_("%(file)s is empty") % {"file": path.name})
    layout = _layout(header)
    if layout is None:
        raise DomainError(
            _(
                "%(file)s: unknown header %(header)s; expected code,name,level,parent_code "
                "or a china-division areas.csv / streets.csv / villages.csv"
            )
            % {"file": path.name, "header": repr(",".join(header))}
        )
    report.files.append(path.name)
    report.layouts.append(layout)
    report.encodings.append(encoding)
    columns = {h.strip().lower(): i for i, h in enumerate(header)}
    rows: list[_Division] = []

    def cell(values: list[str], name: str) -> str:
        i = columns.get(name)
        return values[i].strip() if i is not None and i < len(values) else ""

    for values in reader:
        line = reader.line_num
        if not values or all(not v.strip() for v in values):
            continue
        raw_code = cell(values, "code")
        if district and not raw_code.startswith(district):
            report.skipped += 1
            continue
        report.rows += 1

        def fail(message: str, code: str = raw_code, line: int = line) -> None:
            report.errors.append(RowError(line=line, code=code, message=message, file=path.name))

        try:
            code = normalise_code(raw_code)
        except CodeError as exc:
            fail(str(exc))
            continue
        level = level_of(code)
        name = cell(values, "name")
        if layout == "gridgov":
            stated = cell(values, "level").lower()
            if stated != level:
                fail(
                    _(
                        "the level %(stated)s does not match the code, which has %(digits)s "
                        "digits (a %(level)s code)"
                    )
                    % {
                        "stated": repr(stated) if stated else _("(empty)"),
                        "digits": len(code),
                        "level": level_noun(level),
                    }
                )
                continue
            parent_given = cell(values, "parent_code")
        else:
            expected_level, parent_column = _LAYOUT_LEVEL[layout]
            if level != expected_level:
                fail(
                    _("a %(file)s file holds %(expected)s codes, this is a %(level)s code")
                    % {
                        "file": layout.split()[-1],
                        "expected": level_noun(expected_level),
                        "level": level_noun(level),
                    }
                )
                continue
            parent_given = cell(values, parent_column)
        if level == "district":
            if parent_given and not code.startswith(parent_given):
                fail(
                    _("the parent code %(parent)s is not the start of the code")
                    % {"parent": parent_given}
                )
                continue
        else:
            expected_parent = parent_code(code)
            if parent_given and parent_given != expected_parent:
                fail(
                    _(
                        "the parent code %(parent)s does not match the code (its parent is "
                        "%(expected)s)"
                    )
                    % {"parent": parent_given, "expected": expected_parent}
                )
                continue
        if not name:
            fail(_("the name is empty"))
            continue
        if has_control_characters(name):
            fail(_("the name contains control characters (such as NUL); remove them"))
            continue
        if len(name) > 100:
            fail(_("the name has %(count)s characters; at most 100") % {"count": len(name)})
            continue
        rows.append(_Division(file=path.name, line=line, code=code, name=name, level=level))
    return rows


@transaction.atomic
def regions_import_divisions(
    *, path: str | Path | Sequence[str | Path], district: str | None = None
) -> ImportReport:
    """Import administrative divisions (districts, streets, communities) from CSV files.

    Layouts, detected by header: gridgov's ``code,name,level,parent_code`` and the
    ``china-division`` package's ``areas.csv`` (code,name,cityCode,...), ``streets.csv``
    (...,areaCode) and ``villages.csv`` (...,streetCode). Several files can be given at once
    (``areas.csv streets.csv villages.csv``); a parent must be in the files or already in the
    database, otherwise the row is an error (a district is never invented: its name would be
    unknown). City and province codes are not imported. ``district`` keeps only its subtree.

    Idempotent: a second run reports 0 added and 0 changed. All-or-nothing.
    """
    paths = [Path(p) for p in ([path] if isinstance(path, str | Path) else path)]
    if district is not None:
        try:
            district = normalise_code(district, expect_level="district")
        except CodeError as exc:
            raise DomainError(
                _("--district: %(error)s") % {"error": exc}, detail={"district": district}
            ) from exc
    report = ImportReport(district=district)
    rows: list[_Division] = []
    for p in paths:
        rows.extend(_read_divisions(p, district=district, report=report))

    by_code: dict[str, _Division] = {}
    for row in rows:
        first = by_code.get(row.code)
        if first is None:
            by_code[row.code] = row
        elif first.name != row.name:
            report.errors.append(
                RowError(
                    file=row.file,
                    line=row.line,
                    code=row.code,
                    message=_(
                        "the code appears twice with different names: %(where)s %(first)s and "
                        "here %(second)s"
                    )
                    % {
                        "where": f"{first.file}:{first.line}",
                        "first": repr(first.name),
                        "second": repr(row.name),
                    },
                )
            )
    existing = (
        {r.code: r for r in Region.objects.filter(code__startswith=district)}
        if district
        else _existing([*by_code, *(c for c in (parent_code(x) for x in by_code) if c)])
    )
    for row in by_code.values():
        if row.level == "district":
            continue
        parent = parent_code(row.code)
        assert parent is not None
        if parent not in by_code and parent not in existing:
            hint = (
                _("import areas.csv (districts) with it")
                if row.level == "street"
                else _("import its street first, or give streets.csv with it")
            )
            report.errors.append(
                RowError(
                    file=row.file,
                    line=row.line,
                    code=row.code,
                    message=_(
                        "unknown parent %(parent)s: it is neither in the file nor in the "
                        "database; %(hint)s"
                    )
                    % {"parent": parent, "hint": hint},
                )
            )
    report.errors.sort(key=lambda e: (e.file, e.line))
    if report.errors:
        return report

    ordered = sorted(by_code.values(), key=lambda r: (_LEVEL_ORDER[r.level], r.code))
    for level in ("district", "street", "community", "grid"):
        batch = [r for r in ordered if r.level == level]
        if not batch:
            continue
        parents = _ids(p for p in (parent_code(r.code) for r in batch) if p)
        new: list[Region] = []
        changed: list[Region] = []
        for row in batch:
            parent_id = parents.get(parent_code(row.code) or "")
            current = existing.get(row.code)
            if current is None:
                new.append(
                    Region(code=row.code, name=row.name, level=row.level, parent_id=parent_id)
                )
                report.added_codes.append(row.code)
            elif current.name != row.name or current.parent_id != parent_id:
                current.name = row.name
                current.parent_id = parent_id
                current.updated_at = timezone.now()
                changed.append(current)
                report.changed_codes.append(row.code)
            else:
                report.unchanged += 1
        Region.objects.bulk_create(new, batch_size=_CHUNK)
        Region.objects.bulk_update(changed, ["name", "parent", "updated_at"], batch_size=_CHUNK)
    report.added = len(report.added_codes)
    report.changed = len(report.changed_codes)
    report.written = True
    return report


# --- GeoJSON import ----------------------------------------------------------------------------

CODE_KEYS = (
    "code",
    "CODE",
    "Code",
    "grid_code",
    "GRID_CODE",
    "gridCode",
    "gridcode",
    "region_code",
    "adcode",
    "wgbm",
    "WGBM",
    "网格编码",
    "编码",
    "代码",
)
NAME_KEYS = ("name", "NAME", "Name", "grid_name", "gridName", "wgmc", "WGMC", "名称", "网格名称")
_GRID_TYPES = {
    "base": GridType.BASE,
    "基础网格": GridType.BASE,
    "dedicated": GridType.DEDICATED,
    "专属网格": GridType.DEDICATED,
}


@dataclass
class FeatureReport:
    index: int
    code: str = ""
    name: str = ""
    level: str = ""
    status: str = "error"
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    area_m2: float | None = None
    area_change_m2: float | None = None
    area_change_pct: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "code": self.code,
            "name": self.name,
            "level": self.level,
            "status": self.status,
            "problems": self.problems,
            "warnings": self.warnings,
            "notes": self.notes,
            "area_m2": self.area_m2,
            "area_change_m2": self.area_change_m2,
            "area_change_pct": self.area_change_pct,
        }


@dataclass
class GeoImportReport:
    """Per-feature results of a GeoJSON import plus the checks; nothing written on errors."""

    features: list[FeatureReport] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    repair: bool = False
    strict: bool = False
    dry_run: bool = False
    written: bool = False

    @property
    def errors(self) -> list[str]:
        found = [
            f"features[{f.index}] {f.code}: {p}".replace(" :", ":")
            for f in self.features
            for p in f.problems
        ]
        if self.strict:
            found.extend(
                _("warning treated as an error (strict): %(warning)s") % {"warning": w.message}
                for w in self.warnings
            )
        return found

    @property
    def ok(self) -> bool:
        return not self.errors

    def count(self, status: str) -> int:
        return sum(1 for f in self.features if f.status == status)

    def summary(self) -> dict[str, Any]:
        return {
            "features": len(self.features),
            "added": self.count("added"),
            "updated": self.count("updated"),
            "unchanged": self.count("unchanged"),
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "written": self.written,
            "dry_run": self.dry_run,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "features": [f.as_dict() for f in self.features],
            "warnings": [w.as_dict() for w in self.warnings],
            "errors": self.errors,
        }

    def text(self) -> str:
        lines = []
        for f in self.features:
            head = f"features[{f.index}] {f.code or '?'} {f.name}".rstrip()
            status = str(_STATUS_LABELS.get(f.status, f.status))
            lines.append(f"{head}: {status}")
            lines.extend("    " + _("error: %(text)s") % {"text": p} for p in f.problems)
            lines.extend("    " + _("note: %(text)s") % {"text": n} for n in f.notes)
            lines.extend("    " + _("warning: %(text)s") % {"text": w} for w in f.warnings)
        if self.warnings:
            lines.append(_("checks:"))
            lines.extend(f"  {kind_label(w.kind)}: {w.message}" for w in self.warnings)
        s = self.summary()
        lines.append(
            _(
                "%(features)s features: %(added)s added, %(updated)s updated, "
                "%(unchanged)s unchanged; %(errors)s errors, %(warnings)s warnings"
            )
            % s
        )
        if not self.ok:
            lines.append(_("nothing was written (the import is all-or-nothing)"))
            if self.strict and self.warnings:
                lines.append(_("--strict treats warnings as errors"))
        elif self.dry_run:
            lines.append(_("dry run: nothing was written"))
        return "\n".join(lines)


def _reject_constant(name: str) -> Any:
    raise ValueError(_("%(name)s is not a valid JSON number") % {"name": name})


def load_geojson(data: Any = None, path: str | Path | None = None) -> Any:
    """Parse GeoJSON from a mapping, text, bytes or a file; DomainError (400) naming the problem."""
    if (data is None) == (path is None):
        raise DomainError(_("give either the GeoJSON data or a path"))
    if path is not None:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise DomainError(
                _("cannot read %(path)s: %(error)s") % {"path": path, "error": exc.strerror or exc}
            ) from exc
    if isinstance(data, bytes | bytearray):
        try:
            data = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DomainError(
                _(
                    "the file is not UTF-8 text (undecodable byte at offset %(offset)s); "
                    "GeoJSON is UTF-8"
                )
                % {"offset": exc.start}
            ) from exc
    if isinstance(data, str):
        try:
            data = json.loads(data, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            raise DomainError(
                _("the file is not valid JSON: %(error)s at line %(line)s column %(column)s")
                % {"error": exc.msg, "line": exc.lineno, "column": exc.colno},
                detail={"line": exc.lineno, "column": exc.colno},
            ) from exc
        except ValueError as exc:
            raise DomainError(_("the file is not valid JSON: %(error)s") % {"error": exc}) from exc
        except RecursionError as exc:
            raise DomainError(_("the file is not usable JSON: it is nested too deeply")) from exc
    return data


def _features(data: Any) -> list[Any]:
    if not isinstance(data, dict):
        raise DomainError(_("GeoJSON must be an object: a FeatureCollection or a Feature"))
    kind = data.get("type")
    if kind == "FeatureCollection":
        features = data.get("features")
        if not isinstance(features, list):
            raise DomainError(_("the FeatureCollection has no list of features"))
        if len(features) > MAX_FEATURES:
            raise DomainError(
                _("the file has %(count)s features; at most %(limit)s per import (split it)")
                % {"count": f"{len(features):,}", "limit": f"{MAX_FEATURES:,}"},
                status=413,
            )
        return features
    if kind == "Feature":
        return [data]
    if kind in ("Polygon", "MultiPolygon"):
        raise DomainError(
            _("a bare geometry has no code; wrap it in a Feature with properties.code")
        )
    raise DomainError(
        _("GeoJSON of type %(type)s cannot be imported; give a FeatureCollection or a Feature")
        % {"type": repr(str(kind)[:40])}
    )


def _first(properties: dict[str, Any], keys: Sequence[str]) -> tuple[str | None, Any]:
    for key in keys:
        value = properties.get(key)
        if value is not None and value != "":
            return key, value
    return None, None


@dataclass
class _Planned:
    report: FeatureReport
    fields: dict[str, Any]
    region: Region | None
    extra: dict[str, Any]
    parent_id: int | None = None


def _plan_feature(
    feature: Any, *, repair: bool, max_vertices: int, report: FeatureReport
) -> tuple[str | None, BaseGeometry | None, dict[str, Any]]:
    """Read code, properties and geometry of one feature; problems go into ``report``."""
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        report.problems.append(_("not a GeoJSON Feature"))
        return None, None, {}
    properties = feature.get("properties")
    if not isinstance(properties, dict):
        properties = {}
    _key, raw_code = _first(properties, CODE_KEYS)
    code: str | None = None
    if raw_code is None:
        report.problems.append(
            _("no code in the properties (looked for %(keys)s, ...)")
            % {"keys": ", ".join(CODE_KEYS[:6])}
        )
    else:
        try:
            code = normalise_code(raw_code)
        except CodeError as exc:
            report.problems.append(str(exc))
            report.code = str(raw_code)[:20]
        else:
            report.code = code
            report.level = level_of(code)
            if len(str(raw_code).strip()) == LEGACY_GRID_LENGTH:
                report.notes.append(
                    _("legacy 14-digit grid code %(legacy)s read as %(code)s")
                    % {"legacy": str(raw_code).strip(), "code": code}
                )
            stated = properties.get("level")
            if (
                isinstance(stated, str)
                and stated
                and stated.lower() in LEVEL_LENGTH
                and stated.lower() != report.level
            ):
                report.problems.append(
                    _("properties.level is %(stated)s but %(code)s is a %(level)s code")
                    % {"stated": repr(stated), "code": code, "level": level_noun(report.level)}
                )
    _key, name = _first(properties, NAME_KEYS)
    extra: dict[str, Any] = {}
    if name is not None and has_control_characters(str(name)):
        report.problems.append(_("the name contains control characters (such as NUL); remove them"))
    elif name is not None:
        extra["name"] = str(name).strip()[:100]
        report.name = extra["name"]
    grid_type = properties.get("grid_type")
    if grid_type is not None:
        value = _GRID_TYPES.get(str(grid_type).strip())
        if value is None:
            report.problems.append(
                _("grid_type %(value)s is not base or dedicated") % {"value": repr(grid_type)}
            )
        else:
            extra["grid_type"] = value
    households = properties.get("target_households")
    if households is not None:
        if (
            isinstance(households, bool)
            or not isinstance(households, int)
            or not 0 <= households <= MAX_HOUSEHOLDS
        ):
            report.problems.append(
                _("target_households must be a whole number from 0 to %(max)s")
                % {"max": f"{MAX_HOUSEHOLDS:,}"}
            )
        else:
            extra["target_households"] = households

    raw_geometry = feature.get("geometry")
    if raw_geometry is None:
        report.problems.append(_("the feature has no geometry"))
        return code, None, extra
    try:
        geom = parse_geometry(raw_geometry, max_vertices=max_vertices)
        problem = validity_problem(geom)
        if problem:
            if not repair:
                report.problems.append(
                    _(
                        "the polygon is not valid: %(problem)s; fix it, or import with repair "
                        "(--repair) to have it repaired"
                    )
                    % {"problem": problem}
                )
                return code, None, extra
            geom, change_m2, change_pct = repair_geometry(geom)
            report.area_change_m2 = round(change_m2, 1)
            report.area_change_pct = None if change_pct is None else round(change_pct, 4)
            if abs(change_m2) < 0.5:
                change = _("the area did not change (under 1 m²)")
            elif change_pct is None:
                change = _("the area changed by %(change)s m²") % {"change": f"{change_m2:+,.1f}"}
            else:
                change = _("the area changed by %(change)s m² (%(percent)s)") % {
                    "change": f"{change_m2:+,.1f}",
                    "percent": f"{change_pct:+.4f} %",
                }
            report.notes.append(
                _("repaired (%(problem)s); %(change)s") % {"problem": problem, "change": change}
            )
        return code, geom, extra
    except _GEOMETRY_FAILURES as exc:
        report.problems.append(
            getattr(exc, "message", None)
            or _("the geometry could not be read: %(error)s") % {"error": exc}
        )
    except RecursionError:
        report.problems.append(_("the geometry is nested too deeply"))
    return code, None, extra


@transaction.atomic
def regions_import_geojson(
    *,
    data: Any = None,
    path: str | Path | None = None,
    repair: bool = False,
    strict: bool = False,
    dry_run: bool = False,
    user: Any = None,
    max_vertices: int | None = None,
) -> GeoImportReport:
    """Import polygons for regions of any level from a FeatureCollection (or one Feature).

    Features are matched by ``properties.code`` (aliases in ``CODE_KEYS``; legacy 14-digit grid
    codes are converted and noted). A grid code whose community exists creates the grid; any
    other unknown code is an error, as are duplicates and invalid polygons (unless ``repair``).
    For grids the feature may also set name, grid_type and target_households. After writing,
    the changed regions and their siblings are checked against their parents (outside, overlap,
    gap); those are warnings, or errors with ``strict``. Errors or ``dry_run`` leave the
    database untouched. With ``user``, every code must be one the user administers.
    """
    from gridgov.accounts.selectors import is_administrator

    report = GeoImportReport(repair=repair, strict=strict, dry_run=dry_run)
    if max_vertices is None:
        max_vertices = int(getattr(settings, "GRIDGOV_GEOJSON_MAX_VERTICES", MAX_VERTICES))
    features = _features(load_geojson(data, path))

    planned: list[tuple[FeatureReport, str | None, BaseGeometry | None, dict[str, Any]]] = []
    first_index: dict[str, FeatureReport] = {}
    for index, feature in enumerate(features):
        fr = FeatureReport(index=index)
        report.features.append(fr)
        code, geom, extra = _plan_feature(
            feature, repair=repair, max_vertices=max_vertices, report=fr
        )
        if code is not None:
            first = first_index.get(code)
            if first is not None:
                message = _(
                    "the code %(code)s appears twice: features[%(first)s] and features[%(second)s]"
                ) % {"code": code, "first": first.index, "second": index}
                fr.problems.append(message)
                if message not in first.problems:
                    first.problems.append(message)
            else:
                first_index[code] = fr
        planned.append((fr, code, geom, extra))

    codes = [code for _fr, code, _geom, _extra in planned if code]
    if user is not None:
        refused = sorted({c for c in codes if not is_administrator(user, region_code=c)})
        if refused:
            shown = ", ".join(refused[:10]) + (" ..." if len(refused) > 10 else "")
            raise PermissionDenied(
                _("you do not administer %(count)s of the regions in the file: %(codes)s")
                % {"count": len(refused), "codes": shown},
                detail={"codes": refused[:100]},
            )
    existing = _existing([*codes, *(p for p in (parent_code(c) for c in codes) if p)])

    work: list[_Planned] = []
    for fr, code, geom, extra in planned:
        if code is None:
            continue
        region = existing.get(code)
        if region is None:
            if fr.level == Level.GRID:
                community = existing.get(code[:12])
                if community is None:
                    fr.problems.append(
                        _(
                            "the grid's community %(community)s does not exist; "
                            "import the divisions first"
                        )
                        % {"community": code[:12]}
                    )
                else:
                    fr.notes.append(
                        _("new grid in %(name)s (%(code)s)")
                        % {"name": community.name, "code": community.code}
                    )
            else:
                fr.problems.append(
                    _(
                        "unknown %(level)s code %(code)s: import the divisions first "
                        "(gridgov regions import-divisions)"
                    )
                    % {"level": level_noun(fr.level), "code": code}
                )
        if geom is None or fr.problems:
            continue
        try:
            fields = region_fields_from_geometry(geom)
        except _GEOMETRY_FAILURES as exc:
            fr.problems.append(
                getattr(exc, "message", None)
                or _("the geometry could not be used: %(error)s") % {"error": exc}
            )
            continue
        fr.area_m2 = fields["area_m2"]
        if region is not None and not fr.name:
            fr.name = region.name
        parent = existing.get(parent_code(code) or "")
        work.append(
            _Planned(
                report=fr,
                fields=fields,
                region=region,
                extra=extra,
                parent_id=parent.pk if parent is not None else None,
            )
        )

    for fr in report.features:
        if fr.problems:
            fr.status = "error"
    if any(fr.problems for fr in report.features):
        for item in work:
            item.report.status = "added" if item.region is None else _would_change(item)
        return report

    grid_geometry_changed = False
    today = timezone.localdate()
    for item in sorted(work, key=lambda w: (_LEVEL_ORDER[w.report.level], w.report.code)):
        fr = item.report
        if item.region is None:
            sequence = int(fr.code[12:])
            community = existing[fr.code[:12]]
            name = item.extra.get("name") or default_grid_name(sequence, community.name)
            fr.name = name
            Region.objects.create(
                code=fr.code,
                name=name,
                level=Level.GRID,
                parent=community,
                grid_type=item.extra.get("grid_type", GridType.BASE),
                target_households=item.extra.get("target_households"),
                valid_from=today,
                **item.fields,
            )
            fr.status = "added"
            grid_geometry_changed = True
            continue
        status = _would_change(item)
        fr.status = status
        if status == "unchanged":
            continue
        region = item.region
        geometry_changed = region.geometry != item.fields["geometry"]
        for key, value in item.fields.items():
            setattr(region, key, value)
        region.parent_id = item.parent_id
        if region.level == Level.GRID:
            for key in ("name", "grid_type", "target_households"):
                if key in item.extra:
                    setattr(region, key, item.extra[key])
            if not region.grid_type:
                region.grid_type = GridType.BASE
            grid_geometry_changed = grid_geometry_changed or geometry_changed
        region.save()

    report.warnings = _check_after_import([fr.code for fr in report.features if fr.code])
    by_code = {fr.code: fr for fr in report.features}
    for problem in report.warnings:
        for code in problem.codes:
            fr_or_none = by_code.get(code)
            if fr_or_none is not None:
                fr_or_none.warnings.append(problem.message)

    if not report.ok or dry_run:
        transaction.set_rollback(True)
        return report
    if grid_geometry_changed:
        grids_changed()
    report.written = True
    return report


def _would_change(item: _Planned) -> str:
    region = item.region
    if region is None:
        return "added"
    if region.geometry != item.fields["geometry"] or region.parent_id != item.parent_id:
        return "updated"
    if region.level == Level.GRID:
        for key in ("name", "grid_type", "target_households"):
            if key in item.extra and getattr(region, key) != item.extra[key]:
                return "updated"
    return "unchanged"


def _check_after_import(file_codes: Sequence[str]) -> list[Problem]:
    """Check the parents of every region in the file, and the children of those that are parents."""
    parents: set[str] = set()
    for code in file_codes:
        p = parent_code(code)
        if p:
            parents.add(p)
        if len(code) < 15:
            parents.add(code)
    return regions_check(parent_codes=sorted(parents))


def regions_check(*, parent_codes: Sequence[str]) -> list[Problem]:
    """Check the children of each parent region against it (outside, overlap, gap).

    Parents without children that have polygons are skipped: a district whose streets have no
    outline yet is not a gap.
    """
    problems: list[Problem] = []
    parents = {r.code: r for r in Region.objects.filter(code__in=list(parent_codes))}
    for code in sorted(parents):
        region = parents[code]
        children = list(
            Region.objects.filter(parent=region, geometry__isnull=False)
            .order_by("code")
            .values_list("code", "name", "geometry")
        )
        if not children:
            continue
        shapes: list[tuple[str, BaseGeometry]] = []
        for child_code, _name, geometry in children:
            try:
                shapes.append((child_code, shape(geometry)))
            except _GEOMETRY_FAILURES:
                continue
        parent_shape = None
        if region.geometry:
            try:
                parent_shape = shape(region.geometry)
            except _GEOMETRY_FAILURES:
                parent_shape = None
        noun = _CHILD_NOUNS.get(region.level)
        problems.extend(
            check_children(
                parent_shape,
                shapes,
                parent_code=region.code,
                parent_label=named(region.name, region.code),
                child_labels={c: n for c, n, _geometry in children},
                child_noun=str(noun) if noun is not None else None,
            )
        )
    return problems


# --- GeoJSON export ----------------------------------------------------------------------------


def regions_export_geojson(
    *, user: Any = None, level: str | None = None, under: str | None = None
) -> dict[str, Any]:
    """Regions with polygons as a FeatureCollection, scoped to ``user`` when one is given."""
    from gridgov.geo.selectors import regions_visible_to

    qs = Region.objects.all() if user is None else regions_visible_to(user)
    qs = qs.filter(geometry__isnull=False)
    if level:
        if level not in Level.values:
            raise DomainError(
                _("unknown level %(level)s; levels are %(levels)s")
                % {"level": repr(level), "levels": ", ".join(Level.values)}
            )
        qs = qs.filter(level=level)
    if under:
        qs = qs.filter(code__startswith=under.strip())
    features = []
    for region in qs.order_by("code").iterator(chunk_size=500):
        features.append(
            {
                "type": "Feature",
                "id": region.code,
                "properties": {
                    "code": region.code,
                    "name": region.name,
                    "level": region.level,
                    "parent_code": parent_code(region.code),
                    "area_m2": region.area_m2,
                    "target_households": region.target_households,
                    "grid_type": region.grid_type or None,
                },
                "geometry": region.geometry,
            }
        )
    return {"type": "FeatureCollection", "features": features}


# --- grid generation ---------------------------------------------------------------------------


@dataclass
class ProposedGrid:
    sequence: int
    code: str
    name: str
    geometry: dict[str, Any]
    polygon: BaseGeometry
    households: int
    buildings: int
    area_m2: float
    label: tuple[float, float]

    def feature(self) -> dict[str, Any]:
        return {
            "type": "Feature",
            "id": self.code,
            "properties": {
                "code": self.code,
                "name": self.name,
                "households": self.households,
                "buildings": self.buildings,
                "area_m2": self.area_m2,
                "label": list(self.label),
            },
            "geometry": self.geometry,
        }


@dataclass
class GridGenResult:
    community_code: str
    community_name: str
    mode: str
    per_grid: float
    grids: list[ProposedGrid] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    blockers: list[str] = field(default_factory=list)
    total_households: int = 0
    unassigned_buildings: int = 0
    unassigned_households: int = 0
    replaced_codes: list[str] = field(default_factory=list)
    saved: bool = False

    def summary(self) -> dict[str, Any]:
        households = [g.households for g in self.grids]
        return {
            "community": self.community_code,
            "community_name": self.community_name,
            "mode": self.mode,
            "per_grid": self.per_grid,
            "grids": len(self.grids),
            "households": self.total_households,
            "households_min": min(households) if households else 0,
            "households_max": max(households) if households else 0,
            "unassigned_buildings": self.unassigned_buildings,
            "unassigned_households": self.unassigned_households,
            "replaced": self.replaced_codes,
            "saved": self.saved,
        }

    def feature_collection(self) -> dict[str, Any]:
        return {
            "type": "FeatureCollection",
            "features": [g.feature() for g in self.grids],
            "summary": self.summary(),
            "checks": [p.as_dict() for p in self.problems],
            "notes": self.notes,
            "blockers": self.blockers,
        }

    def text(self) -> str:
        per_grid = f"{self.per_grid:,.0f}"
        size = (
            _("%(count)s households") % {"count": per_grid}
            if self.mode == "households"
            else _("%(value)s m²") % {"value": per_grid}
        )
        lines = [
            _(
                "%(name)s (%(code)s): %(count)s grids of about %(size)s; "
                "%(households)s households in all"
            )
            % {
                "name": self.community_name,
                "code": self.community_code,
                "count": len(self.grids),
                "size": size,
                "households": self.total_households,
            }
        ]
        headers = (_("code"), _("households"), _("buildings"), _("area m²"), _("name"))
        lines.append(
            f"{headers[0]:<16} {headers[1]:>10} {headers[2]:>9} {headers[3]:>12}  {headers[4]}"
        )
        for g in self.grids:
            lines.append(
                f"{g.code:<16} {g.households:>10} {g.buildings:>9} {g.area_m2:>12,.0f}  {g.name}"
            )
        lines.extend(_("note: %(text)s") % {"text": n} for n in self.notes)
        if self.problems:
            lines.append(_("checks:"))
            lines.extend(f"  {kind_label(p.kind)}: {p.message}" for p in self.problems)
        else:
            lines.append(_("checks: no overlaps, no gaps, nothing outside the community"))
        lines.extend(_("cannot save: %(reason)s") % {"reason": b} for b in self.blockers)
        lines.append(_("saved") if self.saved else _("not saved (preview)"))
        return "\n".join(lines)


def _community_outline(community: Region) -> BaseGeometry:
    if not community.geometry:
        raise DomainError(
            _("%(name)s (%(code)s) has no outline yet; import its polygon first")
            % {"name": community.name, "code": community.code},
            detail={"community": community.code},
            status=422,
        )
    try:
        outline = parse_geometry(community.geometry)
    except GeometryError as exc:
        raise DomainError(
            _("the stored outline of %(code)s cannot be used: %(error)s")
            % {"code": community.code, "error": exc.message},
            detail={"community": community.code},
            status=422,
        ) from exc
    problem = validity_problem(outline)
    if problem:
        raise DomainError(
            _(
                "the outline of %(name)s (%(code)s) is not valid: %(problem)s; "
                "re-import it with repair"
            )
            % {"name": community.name, "code": community.code, "problem": problem},
            detail={"community": community.code},
            status=422,
        )
    return outline


def _blockers(grids: Sequence[Region]) -> list[str]:
    from gridgov.accounts.models import RoleAssignment, Unit

    found: list[str] = []
    for a in (
        RoleAssignment.objects.filter(region__in=grids)
        .select_related("user", "region")
        .order_by("region__code", "user__username")
    ):
        assert a.region is not None
        found.append(
            _("%(name)s (%(username)s) is %(role)s of grid %(code)s")
            % {
                "name": a.user.label,
                "username": a.user.username,
                "role": a.get_role_display(),
                "code": a.region.code,
            }
        )
    for unit in Unit.objects.filter(regions__in=grids).distinct().order_by("code"):
        served = sorted(
            unit.regions.filter(pk__in=[g.pk for g in grids]).values_list("code", flat=True)
        )
        found.append(
            _("unit %(name)s (%(code)s) serves grid %(grids)s")
            % {"name": unit.name, "code": unit.code, "grids": ", ".join(served)}
        )
    return found


@transaction.atomic
def grids_generate(
    *,
    community: Region | str,
    households_per_grid: int | None = None,
    area_m2: float | None = None,
    replace: bool = False,
    dry_run: bool = False,
) -> GridGenResult:
    """Cut a community into base grids by households of its buildings or by area.

    Grids are numbered community + 001... west→east, north→south; each gets the households
    of the buildings inside it as its target, and the buildings are assigned to it. A community
    that already has grids is refused unless ``replace``; replacing is refused while role
    assignments or units point at the old grids (they are named: move them first). A dry run
    (the preview) never refuses: it reports those as ``blockers`` and writes nothing.
    """
    from gridgov.registry.models import Building

    if isinstance(community, str):
        found = Region.objects.filter(code=community.strip()).first()
        if found is None:
            raise NotFound(
                _("no region with code %(code)s") % {"code": repr(community)},
                detail={"community": community},
            )
        community = found
    if community.level != Level.COMMUNITY:
        raise DomainError(
            _("%(name)s (%(code)s) is a %(level)s; grids are cut from a community")
            % {
                "name": community.name,
                "code": community.code,
                "level": level_noun(community.level),
            },
            detail={"community": community.code},
            status=422,
        )
    if (households_per_grid is None) == (area_m2 is None):
        raise DomainError(
            _("give exactly one of households per grid or area per grid"),
            status=422,
            detail={"households_per_grid": households_per_grid, "area_m2": area_m2},
        )
    if households_per_grid is not None and (
        isinstance(households_per_grid, bool) or households_per_grid <= 0
    ):
        raise DomainError(_("households per grid must be a positive number"), status=422)
    if area_m2 is not None and not (math.isfinite(area_m2) and area_m2 > 0):
        raise DomainError(_("area per grid must be a positive number of m²"), status=422)
    outline = _community_outline(community)

    buildings = list(
        Building.objects.filter(community_code=community.code)
        .order_by("pk")
        .values_list("pk", "lon", "lat", "households")
    )
    pks = np.array([b[0] for b in buildings], dtype=np.int64)
    xy = np.array([(b[1], b[2]) for b in buildings], dtype=float).reshape(-1, 2)
    weights = np.array([b[3] for b in buildings], dtype=float)
    finite = np.isfinite(xy).all(axis=1) if len(xy) else np.zeros(0, dtype=bool)

    try:
        polygons = cut_community(
            outline,
            points=xy[finite] if households_per_grid is not None else None,
            weights=weights[finite] if households_per_grid is not None else None,
            households_per_grid=households_per_grid,
            area_m2=area_m2,
        )
    except GridGenError as exc:
        raise DomainError(exc.message, detail={"community": community.code}, status=422) from exc
    except (GEOSException, GeometryError, ValueError) as exc:  # pragma: no cover - defensive
        raise DomainError(
            _("the outline of %(code)s could not be cut: %(error)s")
            % {"code": community.code, "error": exc},
            detail={"community": community.code},
            status=422,
        ) from exc

    result = GridGenResult(
        community_code=community.code,
        community_name=community.name,
        mode="households" if households_per_grid is not None else "area m²",
        per_grid=float(households_per_grid if households_per_grid is not None else area_m2 or 0),
    )
    stored: list[BaseGeometry] = []
    all_fields = []
    for polygon in polygons:
        fields = region_fields_from_geometry(polygon)
        all_fields.append(fields)
        stored.append(shape(fields["geometry"]))

    # buildings -> grids (the first grid in number order wins on a shared edge)
    owner = np.full(len(buildings), -1, dtype=np.int64)
    if len(buildings) and stored:
        tree = shapely.STRtree(stored)
        points = shapely.points(np.where(np.isfinite(xy), xy, 0.0))
        point_idx, grid_idx = tree.query(points, predicate="intersects")
        for p, g in sorted(zip(point_idx.tolist(), grid_idx.tolist(), strict=True), reverse=True):
            if finite[p]:
                owner[p] = g
    for sequence, (fields, polygon) in enumerate(zip(all_fields, stored, strict=True), start=1):
        inside = owner == sequence - 1
        code = grid_code(community.code, sequence)
        result.grids.append(
            ProposedGrid(
                sequence=sequence,
                code=code,
                name=default_grid_name(sequence, community.name),
                geometry=fields["geometry"],
                polygon=polygon,
                households=int(weights[inside].sum()),
                buildings=int(inside.sum()),
                area_m2=fields["area_m2"],
                label=(fields["label_lon"], fields["label_lat"]),
            )
        )
    result.total_households = int(weights.sum())
    outside = owner < 0
    result.unassigned_buildings = int(outside.sum())
    result.unassigned_households = int(weights[outside].sum())
    if result.unassigned_buildings:
        result.notes.append(
            _(
                "%(buildings)s buildings (%(households)s households) of the community lie "
                "outside its outline and get no grid"
            )
            % {
                "buildings": result.unassigned_buildings,
                "households": result.unassigned_households,
            }
        )
    result.problems = check_children(
        outline,
        [(g.code, g.polygon) for g in result.grids],
        parent_code=community.code,
        parent_label=named(community.name, community.code),
        child_labels={g.code: g.name for g in result.grids},
        child_noun=_("grids"),
    )

    old = list(
        Region.objects.filter(level=Level.GRID, code__startswith=community.code).order_by("code")
    )
    if old:
        codes = ", ".join(g.code for g in old[:5]) + (" ..." if len(old) > 5 else "")
        if not replace:
            result.blockers.append(
                _(
                    "%(name)s (%(code)s) already has %(count)s grids (%(codes)s); "
                    "replace them to save new ones"
                )
                % {
                    "name": community.name,
                    "code": community.code,
                    "count": len(old),
                    "codes": codes,
                }
            )
        else:
            result.blockers.extend(_blockers(old))
            result.notes.append(_("replaces the %(count)s existing grids") % {"count": len(old)})
    if dry_run:
        return result
    if result.blockers:
        status = Conflict.status
        raise DomainError(
            _("cannot save the grids: %(reasons)s") % {"reasons": "; ".join(result.blockers)},
            detail={"community": community.code, "blockers": result.blockers},
            status=status,
        )

    if old:
        result.replaced_codes = [g.code for g in old]
        Building.objects.filter(grid__in=old).update(grid=None)
        try:
            Region.objects.filter(pk__in=[g.pk for g in old]).delete()
        except (ProtectedError, RestrictedError) as exc:
            objects: Iterable[Any] = (
                getattr(exc, "protected_objects", None)
                or getattr(exc, "restricted_objects", None)
                or ()
            )
            names = sorted({str(type(o)._meta.verbose_name) for o in objects})
            raise Conflict(
                _("the existing grids are still referenced by %(records)s; cannot replace them")
                % {"records": ", ".join(names) or _("other records")},
                detail={"community": community.code},
            ) from exc
    today = timezone.localdate()
    created = Region.objects.bulk_create(
        [
            Region(
                code=g.code,
                name=g.name,
                level=Level.GRID,
                parent=community,
                grid_type=GridType.BASE,
                target_households=g.households,
                valid_from=today,
                **fields,
            )
            for g, fields in zip(result.grids, all_fields, strict=True)
        ]
    )
    ids = _ids(g.code for g in created)
    Building.objects.filter(community_code=community.code).update(grid=None)
    for i, g in enumerate(result.grids):
        members = pks[owner == i].tolist()
        for chunk in range(0, len(members), _CHUNK):
            Building.objects.filter(pk__in=members[chunk : chunk + _CHUNK]).update(
                grid_id=ids[g.code]
            )
    from gridgov.registry.actions import region_codes_refresh

    region_codes_refresh(community_code=community.code)  # the registry's scope follows
    grids_changed()
    result.saved = True
    return result
