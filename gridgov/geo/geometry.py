"""Pure geometry helpers (no database): parse, validate, repair and measure WGS-84 polygons.

Every function here takes or returns shapely geometries in WGS-84 longitude/latitude. Errors
that a person must fix are raised as ``GeometryError`` with a message that says what and where.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import numpy as np
import shapely
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext
from pyproj import Geod, Transformer
from shapely.geometry import MultiPolygon, Polygon, mapping
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

#: Default cap on the number of vertices in one feature (a district outline has a few thousand).
MAX_VERTICES = 200_000
#: Decimal places kept for stored coordinates (1e-7 degrees is about 1 cm).
DECIMALS = 7
GRID_SIZE = 10.0**-DECIMALS

_GEOD = Geod(ellps="WGS84")
_REASON = re.compile(r"^(?P<what>[^\[]*)\[(?P<x>\S+)\s+(?P<y>\S+)\]\s*$")
_READABLE_REASON = {
    "ring self-intersection": gettext_lazy("the boundary touches or crosses itself"),
    "self-intersection": gettext_lazy("the boundary touches or crosses itself"),
    "too few points": gettext_lazy("a ring has too few distinct points"),
    "hole lies outside shell": gettext_lazy("a hole lies outside its outer ring"),
    "nested holes": gettext_lazy("a hole lies inside another hole"),
    "interior is disconnected": gettext_lazy("a hole cuts the polygon in two"),
    "nested shells": gettext_lazy("one polygon lies inside another polygon of the same shape"),
    "duplicate rings": gettext_lazy("a ring is repeated"),
    "invalid coordinate": gettext_lazy("a coordinate is not a finite number"),
    "ring is not closed": gettext_lazy("a ring is not closed"),
}


class GeometryError(ValueError):
    """A geometry that cannot be used as a region polygon; the message says why and where.

    The message is translated where it is raised (the active language of the request).
    """

    def __init__(self, message: str):
        super().__init__(str(message))
        self.message = str(message)


# --- parsing -----------------------------------------------------------------------------------


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _where(polygon: int | None, ring: int, point: int | None = None) -> str:
    parts = []
    if polygon is not None:
        parts.append(_("polygon %(number)s") % {"number": polygon + 1})
    parts.append(_("outer ring") if ring == 0 else _("hole %(number)s") % {"number": ring})
    if point is not None:
        parts.append(_("point %(number)s") % {"number": point + 1})
    # Translators: joins "polygon 2", "hole 1", "point 5" into one place in a geometry.
    return pgettext("geometry location", ", ").join(parts)


def _at(where: str, problem: str) -> str:
    """``where: problem`` (a place in the geometry, then what is wrong there)."""
    return _("%(where)s: %(problem)s") % {"where": where, "problem": problem}


def _check_ring(ring: object, *, polygon: int | None, index: int) -> list[tuple[float, float]]:
    if not isinstance(ring, list | tuple):
        raise GeometryError(_at(_where(polygon, index), _("a ring must be a list of positions")))
    coords: list[tuple[float, float]] = []
    for n, position in enumerate(ring):
        if not isinstance(position, list | tuple) or len(position) < 2:
            raise GeometryError(
                _at(
                    _where(polygon, index, n),
                    _("a position must be [longitude, latitude], got %(value)s")
                    % {"value": _short(position)},
                )
            )
        lon, lat = position[0], position[1]
        if not (_is_number(lon) and _is_number(lat)):
            raise GeometryError(
                _at(
                    _where(polygon, index, n),
                    _("coordinates must be numbers, got %(value)s") % {"value": _short(position)},
                )
            )
        try:
            lon_f, lat_f = float(lon), float(lat)
        except OverflowError:
            raise GeometryError(
                _at(
                    _where(polygon, index, n),
                    _("coordinates are out of range, got %(value)s") % {"value": _short(position)},
                )
            ) from None
        if not (math.isfinite(lon_f) and math.isfinite(lat_f)):
            raise GeometryError(
                _at(
                    _where(polygon, index, n),
                    _("coordinates must be finite numbers, got %(value)s")
                    % {"value": _short(position)},
                )
            )
        if not -180.0 <= lon_f <= 180.0:
            raise GeometryError(
                _at(
                    _where(polygon, index, n),
                    _(
                        "longitude %(lon)s is out of range (-180 to 180); "
                        "coordinates must be WGS-84 [longitude, latitude]"
                    )
                    % {"lon": lon_f},
                )
            )
        if not -90.0 <= lat_f <= 90.0:
            raise GeometryError(
                _at(
                    _where(polygon, index, n),
                    _(
                        "latitude %(lat)s is out of range (-90 to 90); "
                        "coordinates must be WGS-84 [longitude, latitude]"
                    )
                    % {"lat": lat_f},
                )
            )
        coords.append((lon_f, lat_f))
    if len(coords) < 4:
        raise GeometryError(
            _at(
                _where(polygon, index),
                _(
                    "a ring needs at least 4 positions (3 corners and the first repeated at the "
                    "end), got %(count)s"
                )
                % {"count": len(coords)},
            )
        )
    if coords[0] != coords[-1]:
        raise GeometryError(
            _at(
                _where(polygon, index),
                _(
                    "the ring is not closed; its last position %(last)s must repeat its "
                    "first %(first)s"
                )
                % {"last": list(coords[-1]), "first": list(coords[0])},
            )
        )
    if len(set(coords)) < 3:
        raise GeometryError(
            _at(_where(polygon, index), _("a ring needs at least 3 distinct corners"))
        )
    return coords


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _count_positions(polygons: Iterable[object]) -> int:
    total = 0
    for rings in polygons:
        if isinstance(rings, list | tuple):
            for ring in rings:
                if isinstance(ring, list | tuple):
                    total += len(ring)
    return total


def _polygon_from_rings(rings: object, *, polygon: int | None) -> Polygon:
    if not isinstance(rings, list | tuple) or not rings:
        problem = _("a polygon must be a non-empty list of rings")
        if polygon is not None:
            problem = _at(_("polygon %(number)s") % {"number": polygon + 1}, problem)
        raise GeometryError(problem)
    checked = [_check_ring(ring, polygon=polygon, index=i) for i, ring in enumerate(rings)]
    return Polygon(checked[0], checked[1:])


def parse_geometry(data: object, *, max_vertices: int = MAX_VERTICES) -> Polygon | MultiPolygon:
    """Parse a GeoJSON Polygon or MultiPolygon (a mapping) into shapely, checking every position.

    Checks the type, that every coordinate is a finite number inside the WGS-84 range, that
    rings are closed and have enough points, and the vertex cap. Validity (self-intersection)
    is a separate question: see ``validity_problem``.
    """
    if not isinstance(data, dict):
        raise GeometryError(
            _("a geometry must be a GeoJSON object, got %(type)s") % {"type": type(data).__name__}
        )
    kind = data.get("type")
    if kind not in ("Polygon", "MultiPolygon"):
        if kind is None:
            raise GeometryError(_("the geometry has no type; it must be a Polygon or MultiPolygon"))
        raise GeometryError(
            _("the geometry is a %(type)s; a region needs a Polygon or MultiPolygon")
            % {"type": _short(kind)}
        )
    coordinates = data.get("coordinates")
    if not isinstance(coordinates, list | tuple) or not coordinates:
        raise GeometryError(_("the %(type)s has no coordinates") % {"type": kind})
    polygons_raw = [coordinates] if kind == "Polygon" else list(coordinates)
    count = _count_positions(polygons_raw)
    if count > max_vertices:
        raise GeometryError(
            _(
                "the geometry has %(count)s positions; at most %(limit)s are accepted per "
                "feature (simplify it first)"
            )
            % {"count": f"{count:,}", "limit": f"{max_vertices:,}"}
        )
    if kind == "Polygon":
        return _polygon_from_rings(coordinates, polygon=None)
    parts = [_polygon_from_rings(rings, polygon=i) for i, rings in enumerate(polygons_raw)]
    return MultiPolygon(parts)


# --- validity and repair -------------------------------------------------------------------------


def describe_reason(reason: str) -> str:
    """Turn a GEOS validity reason such as ``Ring Self-intersection[118.89 32.03]`` into words."""
    match = _REASON.match(reason.strip())
    what = (match.group("what") if match else reason).strip()
    readable = _READABLE_REASON.get(what.lower())
    text = str(readable) if readable is not None else what[:1].lower() + what[1:]
    if match:
        try:
            x, y = float(match.group("x")), float(match.group("y"))
        except ValueError:
            return text
        if math.isfinite(x) and math.isfinite(y):
            return _("%(problem)s at lat %(lat)s, lon %(lon)s") % {
                "problem": text,
                "lat": f"{y:.6f}",
                "lon": f"{x:.6f}",
            }
    return text


def validity_problem(geom: BaseGeometry) -> str | None:
    """None if ``geom`` is a valid polygon, else a readable sentence naming where it is broken."""
    if geom.is_empty:
        return _("the polygon is empty")
    reason = shapely.is_valid_reason(geom)
    if reason is None or reason == "Valid Geometry":
        return None
    return describe_reason(str(reason))


def polygonal_part(geom: BaseGeometry) -> Polygon | MultiPolygon:
    """Only the polygons of a geometry (dropping lines and points), as a Polygon or MultiPolygon."""
    parts = [p for p in shapely.get_parts(geom) if isinstance(p, Polygon | MultiPolygon)]
    polygons: list[Polygon] = []
    for part in parts:
        if isinstance(part, MultiPolygon):
            polygons.extend(part.geoms)
        elif not part.is_empty:
            polygons.append(part)
    collections = [p for p in shapely.get_parts(geom) if p.geom_type == "GeometryCollection"]
    for collection in collections:
        nested = polygonal_part(collection)
        polygons.extend(nested.geoms if isinstance(nested, MultiPolygon) else [nested])
    polygons = [p for p in polygons if not p.is_empty and p.area > 0]
    if not polygons:
        return Polygon()
    if len(polygons) == 1:
        return polygons[0]
    return MultiPolygon(polygons)


def repair(geom: BaseGeometry) -> tuple[Polygon | MultiPolygon, float, float | None]:
    """Make ``geom`` valid, keeping only its polygonal parts.

    Returns ``(repaired, area_change_m2, area_change_pct)``; the percentage is None when the
    original area measures zero (a bow-tie whose halves cancel).
    """
    before = geodesic_area(geom, signed_rings=True)
    fixed = shapely.make_valid(geom, method="structure", keep_collapsed=False)
    result = polygonal_part(fixed)
    if result.is_empty:
        raise GeometryError(_("the polygon has no area left after repair"))
    if not result.is_valid:  # pragma: no cover - make_valid output is valid by contract
        result = polygonal_part(shapely.make_valid(result))
    after = geodesic_area(result)
    change = after - before
    pct = (change / before * 100.0) if before > 0 else None
    return result, change, pct


# --- measuring -----------------------------------------------------------------------------------


def geodesic_area(geom: BaseGeometry, *, signed_rings: bool = False) -> float:
    """Area in m² on the WGS-84 ellipsoid.

    Rings are oriented first (outer counter-clockwise, holes clockwise) so that parts never
    cancel; with ``signed_rings`` the rings are measured as drawn (used to measure a broken
    polygon before repair, the way a naive tool would).
    """
    total = 0.0
    for part in shapely.get_parts(geom):
        if isinstance(part, MultiPolygon):
            total += geodesic_area(part, signed_rings=signed_rings)
        elif isinstance(part, Polygon) and not part.is_empty:
            polygon = part if signed_rings else orient(part, sign=1.0)
            area, _perimeter = _GEOD.geometry_area_perimeter(polygon)
            total += abs(area)
        elif part.geom_type == "GeometryCollection":
            total += geodesic_area(polygonal_part(part), signed_rings=signed_rings)
    return float(total)


def geodesic_area_perimeter(geom: BaseGeometry) -> tuple[float, float]:
    """Area (m²) and perimeter (m) of the polygonal parts of ``geom``."""
    area = 0.0
    perimeter = 0.0
    poly = polygonal_part(geom)
    for part in shapely.get_parts(poly):
        a, p = _GEOD.geometry_area_perimeter(orient(part, sign=1.0))
        area += abs(a)
        perimeter += p
    return float(area), float(perimeter)


def metres_per_degree(lat: float) -> tuple[float, float]:
    """Metres per degree of longitude and of latitude at ``lat`` on the WGS-84 ellipsoid."""
    a = 6378137.0
    e2 = 6.69437999014e-3
    phi = math.radians(lat)
    s = math.sin(phi)
    w = math.sqrt(1.0 - e2 * s * s)
    per_lon = math.pi / 180.0 * a * math.cos(phi) / w
    per_lat = math.pi / 180.0 * a * (1.0 - e2) / (w**3)
    return per_lon, per_lat


class LocalProjection:
    """A local azimuthal-equidistant projection (metres) centred on a point, and back.

    Distances and areas are true to well under 0.1 % within tens of kilometres of the centre.
    """

    def __init__(self, lon0: float, lat0: float):
        self.lon0 = lon0
        self.lat0 = lat0
        self._forward, self._inverse = _transformers(round(lon0, 3), round(lat0, 3))

    @classmethod
    def around(cls, geom: BaseGeometry) -> LocalProjection:
        minx, miny, maxx, maxy = geom.bounds
        return cls((minx + maxx) / 2.0, (miny + maxy) / 2.0)

    def to_metres(self, geom: BaseGeometry) -> BaseGeometry:
        return shapely.transform(geom, self._forward_xy)

    def to_wgs84(self, geom: BaseGeometry) -> BaseGeometry:
        return shapely.transform(geom, self._inverse_xy)

    def _forward_xy(self, coords: Any) -> Any:
        x, y = self._forward.transform(coords[:, 0], coords[:, 1])
        return _stack(x, y)

    def _inverse_xy(self, coords: Any) -> Any:
        x, y = self._inverse.transform(coords[:, 0], coords[:, 1])
        return _stack(x, y)


def _stack(x: Any, y: Any) -> Any:
    return np.column_stack([np.asarray(x, dtype=float), np.asarray(y, dtype=float)])


@lru_cache(maxsize=64)
def _transformers(lon0: float, lat0: float) -> tuple[Transformer, Transformer]:
    crs = f"+proj=aeqd +lat_0={lat0} +lon_0={lon0} +datum=WGS84 +units=m +no_defs"
    forward = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    inverse = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    return forward, inverse


# --- storing -------------------------------------------------------------------------------------


def _round_coords(value: Any) -> Any:
    if isinstance(value, list | tuple):
        if value and isinstance(value[0], float | int) and not isinstance(value[0], bool):
            return [round(float(c), DECIMALS) for c in value[:2]]
        return [_round_coords(v) for v in value]
    return value


def canonical(geom: Polygon | MultiPolygon) -> Polygon | MultiPolygon:
    """One canonical form: parts and rings in GEOS order, outer rings counter-clockwise
    (the GeoJSON right-hand rule), so the same shape always gives the same coordinates."""
    normal = shapely.normalize(geom)
    if isinstance(normal, MultiPolygon):
        return MultiPolygon([orient(p, sign=1.0) for p in normal.geoms])
    if isinstance(normal, Polygon):
        return orient(normal, sign=1.0)
    return normal  # pragma: no cover - only polygons come here


def rounded(geom: BaseGeometry) -> Polygon | MultiPolygon:
    """``geom`` snapped to the 1e-7° grid it is stored on, valid, polygonal and canonical."""
    snapped = shapely.set_precision(geom, GRID_SIZE)
    result = polygonal_part(snapped)
    if result.is_empty:
        raise GeometryError(_("the polygon is too small to store (under about 1 cm across)"))
    return canonical(result)


def geojson_mapping(geom: BaseGeometry) -> dict[str, Any]:
    """A GeoJSON mapping with coordinates rounded to 7 decimals (lists, not tuples)."""
    data = dict(mapping(geom))
    return {"type": data["type"], "coordinates": _round_coords(data["coordinates"])}


def region_fields_from_geometry(geom: BaseGeometry) -> dict[str, Any]:
    """The Region fields that follow from a polygon: geometry, bbox, label point and area."""
    geom = polygonal_part(geom)
    if geom.is_empty:
        raise GeometryError(_("the geometry has no area"))
    stored = rounded(geom)
    minx, miny, maxx, maxy = stored.bounds
    label = stored.point_on_surface()
    return {
        "geometry": geojson_mapping(stored),
        "min_lon": round(minx, DECIMALS),
        "min_lat": round(miny, DECIMALS),
        "max_lon": round(maxx, DECIMALS),
        "max_lat": round(maxy, DECIMALS),
        "label_lon": round(label.x, DECIMALS),
        "label_lat": round(label.y, DECIMALS),
        "area_m2": round(geodesic_area(stored), 1),
    }
