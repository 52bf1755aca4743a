"""Small builders for geo tests: region trees, metric rectangles, buildings, administrators."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from shapely.geometry import Polygon, box, mapping
from shapely.geometry.base import BaseGeometry

from gridgov.accounts import actions as account_actions
from gridgov.accounts.models import Role, User
from gridgov.geo.codes import ancestor_codes, level_of, parent_code
from gridgov.geo.geometry import metres_per_degree, region_fields_from_geometry
from gridgov.geo.models import GridType, Level, Region

#: A point in Qixia district (Nanjing), the origin of the metric helpers below.
LON0, LAT0 = 118.90, 32.10
PASSWORD = "correct-horse-battery-9"


def metres(x: float, y: float, *, lon0: float = LON0, lat0: float = LAT0) -> tuple[float, float]:
    """(lon, lat) of the point ``x`` m east and ``y`` m north of (lon0, lat0)."""
    per_lon, per_lat = metres_per_degree(lat0)
    return lon0 + x / per_lon, lat0 + y / per_lat


def rect(x0: float, y0: float, x1: float, y1: float) -> Polygon:
    """A WGS-84 rectangle given in metres east/north of the origin."""
    (a, b), (c, d) = metres(x0, y0), metres(x1, y1)
    return box(a, b, c, d)


def polygon_m(points: Sequence[tuple[float, float]]) -> Polygon:
    """A WGS-84 polygon from corners given in metres east/north of the origin."""
    return Polygon([metres(x, y) for x, y in points])


def make_region(
    code: str,
    name: str | None = None,
    *,
    geometry: BaseGeometry | dict[str, Any] | None = None,
    **fields: Any,
) -> Region:
    """Create a region (and any missing ancestors) with the parent set from the code."""
    for ancestor in ancestor_codes(code):
        if not Region.objects.filter(code=ancestor).exists():
            make_region(ancestor)
    level = level_of(code)
    parent = Region.objects.filter(code=parent_code(code) or "").first()
    values: dict[str, Any] = {
        "name": name or f"{level} {code}",
        "level": level,
        "parent": parent,
    }
    if level == Level.GRID:
        values["grid_type"] = GridType.BASE
    if geometry is not None:
        if isinstance(geometry, dict):
            from shapely.geometry import shape

            geometry = shape(geometry)
        values.update(region_fields_from_geometry(geometry))
    values.update(fields)
    return Region.objects.create(code=code, **values)


def region_tree(codes: Iterable[str]) -> dict[str, Region]:
    """Create the regions with these codes (and their ancestors); answer all of them by code."""
    for code in codes:
        if not Region.objects.filter(code=code).exists():
            make_region(code)
    wanted = set()
    for code in codes:
        wanted.update([*ancestor_codes(code), code])
    return {r.code: r for r in Region.objects.filter(code__in=wanted)}


def make_buildings(
    community_code: str, points: Iterable[tuple[float, float]], households: Iterable[int] | int = 10
) -> list[Any]:
    """Buildings at WGS-84 (lon, lat) points with the given households (one number or many)."""
    from gridgov.registry.models import Building

    pts = list(points)
    counts = [households] * len(pts) if isinstance(households, int) else list(households)
    return Building.objects.bulk_create(
        Building(community_code=community_code, lon=lon, lat=lat, households=n, number=str(i + 1))
        for i, ((lon, lat), n) in enumerate(zip(pts, counts, strict=True))
    )


def grid_points(
    x0: float, y0: float, x1: float, y1: float, *, step: float
) -> list[tuple[float, float]]:
    """WGS-84 points on a regular lattice (metres) inside the rectangle, half a step in."""
    nx = max(1, math.floor((x1 - x0) / step))
    ny = max(1, math.floor((y1 - y0) / step))
    return [
        metres(x0 + (i + 0.5) * step, y0 + (j + 0.5) * step) for i in range(nx) for j in range(ny)
    ]


def make_user(username: str, *, role: str | None = None, region: Region | None = None) -> User:
    """A user with one role (an administrator of everything when ``region`` is None)."""
    user = account_actions.user_create(username=username, password=PASSWORD, check_password=False)
    if role is not None:
        account_actions.role_assign(user=user, role=role, region=region)
    return user


def make_administrator(username: str = "geo-admin", region: Region | None = None) -> User:
    return make_user(username, role=Role.ADMINISTRATOR, region=region)


def feature(
    code: str | None, geom: BaseGeometry | dict[str, Any] | None, **properties: Any
) -> dict:
    """A GeoJSON Feature with ``properties.code``."""
    props = dict(properties)
    if code is not None:
        props.setdefault("code", code)
    geometry = geom if isinstance(geom, dict) or geom is None else dict(mapping(geom))
    return {"type": "Feature", "properties": props, "geometry": geometry}


def collection(*features: Any) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}
