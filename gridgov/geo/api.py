"""Geo API: point -> grid look-up, the scoped region tree, staff, GeoJSON for the map."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from ninja import File, Form, Query, Router, Schema, UploadedFile
from pydantic import Field

from gridgov.core.errors import DomainError, NotFound, PermissionDenied
from gridgov.core.idempotency import idempotent
from gridgov.core.masking import mask_phone
from gridgov.geo import selectors
from gridgov.geo.codes import ancestor_codes
from gridgov.geo.crs import to_wgs84
from gridgov.geo.index import grid_index
from gridgov.geo.models import Level, Region
from gridgov.geo.schemas import (
    Crs,
    LocateBulkIn,
    LocateBulkOut,
    LocateOut,
    RegionDetail,
    RegionOut,
    RegionRef,
    RegionStaffOut,
    StaffOut,
)

if TYPE_CHECKING:
    from gridgov.geo.actions import ImportReport

router = Router()


def region_ref(region: Region) -> dict[str, Any]:
    return {"code": region.code, "name": region.name, "level": region.level}


def region_out(region: Region) -> dict[str, Any]:
    return {
        **region_ref(region),
        "parent": region.code[: len(region.code) - 3] if region.level != Level.DISTRICT else None,
        "area_m2": region.area_m2,
        "target_households": region.target_households,
        "grid_type": region.grid_type,
        "responsible_unit": region.responsible_unit.name if region.responsible_unit else None,
        "valid_from": region.valid_from,
        "valid_to": region.valid_to,
        "bbox": list(region.bbox) if region.bbox else None,
        "label": [region.label_lon, region.label_lat] if region.label_lon is not None else None,
    }


def _check_point(lat: float, lon: float) -> None:
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise DomainError(_("lat and lon must be finite numbers"), status=422)
    if not -90 <= lat <= 90:
        raise DomainError(
            _("lat %(lat)s is out of range: latitude lies between -90 and 90") % {"lat": lat},
            status=422,
        )
    if not -180 <= lon <= 180:
        raise DomainError(
            _("lon %(lon)s is out of range: longitude lies between -180 and 180") % {"lon": lon},
            status=422,
        )


def locate_answer(lon: float, lat: float) -> dict[str, Any]:
    """Find the grid of a WGS-84 point and its ancestors, or raise NotFound naming the nearest."""
    loaded = grid_index()
    code = loaded.locate(lon, lat)
    if code is None:
        nearest, distance = loaded.nearest(lon, lat)
        if nearest is None:
            raise NotFound(_("no grids are defined yet"), detail={"lat": lat, "lon": lon})
        grid = Region.objects.get(code=nearest)
        raise NotFound(
            _(
                "the point (lat %(lat)s, lon %(lon)s) lies in no grid; the nearest grid is "
                "%(name)s (%(code)s), %(distance)s m away"
            )
            % {
                "lat": f"{lat:.6f}",
                "lon": f"{lon:.6f}",
                "name": grid.name,
                "code": grid.code,
                "distance": f"{distance:,.0f}",
            },
            detail={
                "lat": lat,
                "lon": lon,
                "nearest": region_ref(grid),
                "distance_m": round(distance, 1),
            },
        )
    chain = {r.code: r for r in Region.objects.filter(code__in=[*ancestor_codes(code), code])}
    return {
        "lon": lon,
        "lat": lat,
        "grid": region_ref(chain[code]),
        "ancestors": [region_ref(chain[c]) for c in ancestor_codes(code) if c in chain],
    }


@router.get(
    "/locate",
    response=LocateOut,
    summary="Find the grid of a point",
    description="Answers the grid holding the point and its ancestors; 404 names the nearest grid.",
)
def locate(request: HttpRequest, lat: float, lon: float, crs: Crs = "wgs84") -> dict[str, Any]:
    _check_point(lat, lon)
    wlon, wlat = to_wgs84(lon, lat, crs)
    return locate_answer(wlon, wlat)


@router.post("/locate", response=LocateBulkOut, summary="Find the grids of many points")
def locate_bulk(request: HttpRequest, payload: LocateBulkIn) -> dict[str, Any]:
    limit = settings.GRIDGOV_LOCATE_BULK_MAX
    if len(payload.points) > limit:
        raise DomainError(
            _("at most %(limit)s points per request, got %(count)s")
            % {"limit": limit, "count": len(payload.points)},
            status=413,
        )
    pts = [to_wgs84(p.lon, p.lat, payload.crs) for p in payload.points]
    lon = np.fromiter((p[0] for p in pts), dtype=float, count=len(pts))
    lat = np.fromiter((p[1] for p in pts), dtype=float, count=len(pts))
    return {"grids": grid_index().locate_many(lon, lat)}


@router.get("/regions", response=list[RegionOut], summary="Regions visible to you")
def region_list(
    request: HttpRequest,
    level: Level | None = None,
    parent: str | None = None,
    q: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> list[dict[str, Any]]:
    qs = selectors.regions_visible_to(request.user).select_related("responsible_unit")
    if level:
        qs = qs.filter(level=level)
    if parent:
        qs = qs.filter(parent__code=parent)
    if q and q.strip():
        qs = selectors.regions_matching(qs, q)
    return [region_out(r) for r in qs.order_by("code")[offset : offset + limit]]


def region_detail_data(request: HttpRequest, region: Region, *, geometry: bool) -> dict[str, Any]:
    chain = Region.objects.filter(code__in=ancestor_codes(region.code)).order_by("code")
    households = region.target_households
    if households is None:
        households = _households_in(region)
    staff_visible = True
    try:
        selectors.region_staff_access(user=request.user, code=region.code)
    except DomainError:
        staff_visible = False
    return {
        **region_out(region),
        "ancestors": [region_ref(r) for r in chain],
        "children": region.children.count(),
        "households": households or 0,
        "staff_visible": staff_visible,
        "geometry": region.geometry if geometry else None,
    }


def _households_in(region: Region) -> int:
    from gridgov.registry.models import Building

    if region.level == Level.GRID:
        qs = Building.objects.filter(grid=region)
    else:
        qs = Building.objects.filter(community_code__startswith=region.code[:12])
    return int(qs.aggregate(n=Sum("households"))["n"] or 0)


# --- administration: polygon import and export (before /regions/{code}, which would match) -----


def _require_administrator(request: HttpRequest, region_code: str | None = None) -> None:
    """Administrators only: of ``region_code``'s subtree when given, else of any region."""
    from gridgov.accounts.models import Role
    from gridgov.accounts.selectors import is_administrator, user_has_role

    user = request.user
    allowed = (
        is_administrator(user, region_code=region_code)
        if region_code is not None
        else is_administrator(user) or user_has_role(user, Role.ADMINISTRATOR)
    )
    if not allowed:
        message = (
            _("only administrators of %(code)s may do this") % {"code": region_code}
            if region_code
            else _("only administrators may do this")
        )
        raise PermissionDenied(message, detail={"region": region_code})


def report_or_422(report: Any) -> dict[str, Any]:
    """An import report as the answer, or 422 with it in ``detail`` when it has errors."""
    if not report.ok:
        raise DomainError(
            ngettext(
                "the import has %(count)s error; nothing was written",
                "the import has %(count)s errors; nothing was written",
                len(report.errors),
            )
            % {"count": len(report.errors)},
            detail=report.as_dict(),
            status=422,
        )
    return dict(report.as_dict())


@router.post(
    "/regions/import",
    summary="Import region and grid polygons (GeoJSON)",
    description=(
        "Multipart upload `file` (a GeoJSON FeatureCollection matched by properties.code) with "
        "form fields repair, strict, dry_run. All-or-nothing: 422 with the per-feature report in "
        "`detail` when there are errors; 400 for a file that is not GeoJSON; 413 when too large."
    ),
)
@idempotent
def regions_import(
    request: HttpRequest,
    file: File[UploadedFile | None] = None,
    repair: Form[bool] = False,
    strict: Form[bool] = False,
    dry_run: Form[bool] = False,
) -> dict[str, Any]:
    from gridgov.geo.actions import regions_import_geojson
    from gridgov.geo.bulk import read_upload

    _require_administrator(request)
    if file is None:
        raise DomainError(_("upload the GeoJSON file as the multipart form field 'file'"))
    data = read_upload(file)
    report = regions_import_geojson(
        data=data, repair=repair, strict=strict, dry_run=dry_run, user=request.user
    )
    return report_or_422(report)


def require_divisions_administrator(user: Any, district: str | None) -> None:
    """Divisions of one district: its administrators; of every district: site administrators."""
    from gridgov.accounts.selectors import is_administrator

    if district:
        if not is_administrator(user, region_code=district):
            raise PermissionDenied(
                _("only administrators of %(code)s may do this") % {"code": district},
                detail={"region": district},
            )
    elif not is_administrator(user):
        raise PermissionDenied(
            _(
                "only administrators of every region may import divisions without a district; "
                "give the district"
            ),
            detail={"region": None},
        )


def divisions_import_file(*, path: Path, district: str | None, dry_run: bool) -> ImportReport:
    """Import divisions from one CSV file; a dry run imports and rolls back (writes nothing)."""
    from django.db import transaction

    from gridgov.geo.actions import regions_import_divisions as import_divisions

    if not dry_run:
        return import_divisions(path=path, district=district)
    with transaction.atomic():
        report = import_divisions(path=path, district=district)
        transaction.set_rollback(True)
    report.written = False
    return report


@router.post(
    "/regions/import-divisions",
    summary="Import districts, streets and communities (CSV)",
    description=(
        "Multipart upload `file`: gridgov's code,name,level,parent_code CSV or a china-division "
        "areas.csv / streets.csv / villages.csv (UTF-8 with or without BOM, or GBK), with form "
        "fields `district` (keep only its subtree) and `dry_run`. All-or-nothing: 422 with the "
        "report in `detail` when a row has an error; 400 for a file that is not such a CSV; 413 "
        "when too large. Without `district` only administrators of every region may import."
    ),
)
@idempotent
def regions_import_divisions(
    request: HttpRequest,
    file: File[UploadedFile | None] = None,
    district: Form[str | None] = None,
    dry_run: Form[bool] = False,
) -> dict[str, Any]:
    from gridgov.geo.bulk import read_upload, safe_upload_name

    district = (district or "").strip() or None
    require_divisions_administrator(request.user, district)
    if file is None:
        raise DomainError(_("upload the CSV file as the multipart form field 'file'"))
    data = read_upload(file)
    with tempfile.TemporaryDirectory(prefix="gridgov-divisions-") as folder:
        path = Path(folder) / safe_upload_name(file.name or "", default="divisions.csv")
        path.write_bytes(data)
        report = divisions_import_file(path=path, district=district, dry_run=dry_run)
    return report_or_422(report)


@router.get("/regions/export", summary="Regions with polygons as GeoJSON (administrators)")
def regions_export(
    request: HttpRequest, level: Level | None = None, under: str | None = None
) -> dict[str, Any]:
    from gridgov.geo.actions import regions_export_geojson

    _require_administrator(request)
    return regions_export_geojson(user=request.user, level=level, under=under)


@router.get("/regions/{code}", response=RegionDetail, summary="One region")
def region_detail(request: HttpRequest, code: str, geometry: bool = True) -> dict[str, Any]:
    region = selectors.region_get(user=request.user, code=code)
    return region_detail_data(request, region, geometry=geometry)


def staff_data(region: Region) -> dict[str, Any]:
    rows = selectors.region_staff(region=region)
    return {
        "region": region_ref(region),
        "responsible_unit": region.responsible_unit.name if region.responsible_unit else None,
        "staff": [
            {
                "name": a.user.label,
                "username": a.user.username,
                "role": a.role,
                "role_label": str(a.get_role_display()),
                "region": region_ref(a.region) if a.region else None,
                "work_phone": mask_phone(a.user.work_phone),
            }
            for a in rows
        ],
    }


@router.get("/regions/{code}/staff", response=RegionStaffOut, summary="Who serves a region")
def region_staff(request: HttpRequest, code: str) -> dict[str, Any]:
    region = selectors.region_staff_access(user=request.user, code=code)
    return staff_data(region)


@router.get("/map", summary="Visible regions as a GeoJSON FeatureCollection")
def region_map(
    request: HttpRequest, level: Level | None = None, under: str | None = None
) -> dict[str, Any]:
    qs = selectors.regions_visible_to(request.user).filter(geometry__isnull=False)
    if level:
        qs = qs.filter(level=level)
    if under:
        qs = qs.filter(code__startswith=under)
    features = [
        {
            "type": "Feature",
            "id": code,
            "properties": {
                "code": code,
                "name": name,
                "level": lvl,
                "label": [llon, llat] if llon is not None else None,
            },
            "geometry": geometry,
        }
        for code, name, lvl, geometry, llon, llat in qs.order_by("code").values_list(
            "code", "name", "level", "geometry", "label_lon", "label_lat"
        )
    ]
    return {"type": "FeatureCollection", "features": features}


# --- administration: grid generation -------------------------------------------------------


class GridGenIn(Schema):
    community: str = Field(pattern=r"^[0-9]{12}$", description="12-digit community code")
    households_per_grid: int | None = Field(None, gt=0, le=1_000_000)
    area_m2: float | None = Field(None, ge=1, le=1e10, allow_inf_nan=False)
    replace: bool = Field(False, description="replace the community's existing grids")


def _grids_generate(request: HttpRequest, payload: GridGenIn, *, dry_run: bool) -> dict[str, Any]:
    from gridgov.geo.actions import grids_generate

    _require_administrator(request, payload.community)
    if (payload.households_per_grid is None) == (payload.area_m2 is None):
        raise DomainError(_("give exactly one of households_per_grid or area_m2"), status=422)
    result = grids_generate(
        community=payload.community,
        households_per_grid=payload.households_per_grid,
        area_m2=payload.area_m2,
        replace=payload.replace,
        dry_run=dry_run,
    )
    return result.feature_collection()


@router.post(
    "/grids/preview",
    summary="Propose grids for a community (nothing saved)",
    description="A FeatureCollection of proposed grids (code, households, area) and the checks.",
)
def grids_preview(request: HttpRequest, payload: GridGenIn) -> dict[str, Any]:
    return _grids_generate(request, payload, dry_run=True)


@router.post(
    "/grids/generate",
    url_name="grids_generate",
    operation_id="grids_generate",
    summary="Cut a community into grids and save them",
    description="As the preview, and saves; 409 names what blocks replacing existing grids.",
)
@idempotent
def grids_generate_view(request: HttpRequest, payload: GridGenIn) -> dict[str, Any]:
    return _grids_generate(request, payload, dry_run=False)


__all__ = ["RegionRef", "StaffOut", "router"]
