"""Cut a community polygon into unit grids by recursive bisection (pure, no database).

The community (WGS-84) is cut with straight north-south or east-west lines: each part is cut
across the longer side of its bounding box measured in metres (unless cutting the other way
leaves fewer stray fragments, as in the arms of a U), at the weighted quantile of the
households inside it (``households_per_grid``) or at the area fraction (``area_m2``), so that
the two halves get ``k_left/k`` of the weight or area for ``k_left = k // 2`` grids. Cutting
along lines of constant longitude or latitude keeps every shared edge exact, so the grids tile
the community with no overlaps or gaps beyond float noise.

A concave community (an L or a U) can leave a piece in several fragments; the smaller fragments
of a final piece are merged into the neighbouring grid that shares the longest boundary with
them, so every grid is one Polygon (only a community that is itself in several disconnected
parts can give a MultiPolygon grid).

Grids are returned in the standard numbering order: rows north to south (by centroid, rows about
one typical grid height apart), west to east within a row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import shapely
from django.utils.translation import gettext as _
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from gridgov.geo.geometry import geodesic_area, metres_per_degree, polygonal_part, validity_problem

#: A grid code has a 3-digit sequence.
MAX_GRIDS = 999
_AREA_TOLERANCE = 1e-6  # relative error accepted for an area cut
_BISECTION_STEPS = 60


class GridGenError(ValueError):
    """The community cannot be cut as asked; the message says why."""

    def __init__(self, message: str):
        super().__init__(str(message))
        self.message = str(message)


class _Cutter:
    def __init__(
        self,
        xy: np.ndarray | None,
        weights: np.ndarray | None,
        scale: tuple[float, float],
    ):
        self.xy = xy
        self.weights = weights
        self.kx, self.ky = scale

    def split(self, geom: BaseGeometry, idx: np.ndarray, k: int) -> list[BaseGeometry]:
        if k <= 1:
            return [geom]
        k_left = k // 2
        minx, miny, maxx, maxy = geom.bounds
        long_axis = 0 if (maxx - minx) * self.kx >= (maxy - miny) * self.ky else 1
        best: tuple[float, int, float, BaseGeometry, BaseGeometry] | None = None
        for axis in (long_axis, 1 - long_axis):
            cut = self._cut(geom, idx, axis, k_left / k)
            left, right = _halves(geom, axis, cut)
            # a half that becomes one grid must not be in pieces (its fragments would be
            # handed to a neighbour and unbalance both): try the other direction first
            penalty = _fragment_share(left) * (4.0 if k_left == 1 else 1.0) + _fragment_share(
                right
            ) * (4.0 if k - k_left == 1 else 1.0)
            if best is None or penalty < best[0]:
                best = (penalty, axis, cut, left, right)
            if penalty == 0.0:
                break
        assert best is not None
        _penalty, axis, cut, left, right = best
        if idx.size and self.xy is not None:
            coords = self.xy[idx, axis]
            idx_left, idx_right = idx[coords < cut], idx[coords >= cut]
        else:
            idx_left = idx_right = idx
        return self.split(left, idx_left, k_left) + self.split(right, idx_right, k - k_left)

    def _cut(self, geom: BaseGeometry, idx: np.ndarray, axis: int, fraction: float) -> float:
        cut: float | None = None
        if self.xy is not None and self.weights is not None and idx.size:
            bounds = geom.bounds
            lo, hi = (bounds[0], bounds[2]) if axis == 0 else (bounds[1], bounds[3])
            cut = _weighted_cut(self.xy[idx, axis], self.weights[idx], fraction, lo, hi)
        if cut is None:
            cut = _area_cut(geom, axis, fraction)
        return cut


def _fragment_share(geom: BaseGeometry) -> float:
    """The share of ``geom``'s area outside its largest part (0 for a single polygon)."""
    if not isinstance(geom, MultiPolygon):
        return 0.0
    areas = sorted((p.area for p in geom.geoms), reverse=True)
    total = sum(areas)
    return (total - areas[0]) / total if total > 0 else 0.0


def _weighted_cut(
    coords: np.ndarray, weights: np.ndarray, fraction: float, lo: float, hi: float
) -> float | None:
    """A cut between two distinct point positions that leaves ``fraction`` of the weight below."""
    total = float(weights.sum())
    if total <= 0:
        return None
    values, inverse = np.unique(coords, return_inverse=True)
    if values.size < 2:
        return None
    per_value = np.bincount(inverse, weights=weights, minlength=values.size)
    below = np.cumsum(per_value)[:-1]  # weight left of the cut after value j
    j = int(np.argmin(np.abs(below - fraction * total)))
    cut = float((values[j] + values[j + 1]) / 2.0)
    margin = (hi - lo) * 1e-9
    return min(max(cut, lo + margin), hi - margin)


def _clip_area(geom: BaseGeometry, axis: int, cut: float, bounds: tuple[float, ...]) -> float:
    minx, miny, maxx, maxy = bounds
    if axis == 0:
        part = shapely.clip_by_rect(geom, minx - 1.0, miny - 1.0, cut, maxy + 1.0)
    else:
        part = shapely.clip_by_rect(geom, minx - 1.0, miny - 1.0, maxx + 1.0, cut)
    return float(part.area)


def _area_cut(geom: BaseGeometry, axis: int, fraction: float) -> float:
    """The position of a cut that leaves ``fraction`` of the (planar) area below it."""
    bounds = geom.bounds
    lo, hi = (bounds[0], bounds[2]) if axis == 0 else (bounds[1], bounds[3])
    total = float(geom.area)
    target = fraction * total
    a, b = lo, hi
    fa, fb = -target, total - target
    cut = lo + (hi - lo) * fraction
    for _step in range(_BISECTION_STEPS):
        # regula falsi with bisection safeguard (area grows monotonically with the cut)
        guess = a - fa * (b - a) / (fb - fa) if fb != fa else (a + b) / 2.0
        mid = (a + b) / 2.0
        cut = guess if a < guess < b and abs(guess - mid) < (b - a) * 0.45 else mid
        value = _clip_area(geom, axis, cut, bounds) - target
        if abs(value) <= _AREA_TOLERANCE * total:
            break
        if value < 0:
            a, fa = cut, value
        else:
            b, fb = cut, value
        if b - a <= (hi - lo) * 1e-12:
            break
    margin = (hi - lo) * 1e-9
    return min(max(cut, lo + margin), hi - margin)


def _halves(geom: BaseGeometry, axis: int, cut: float) -> tuple[BaseGeometry, BaseGeometry]:
    minx, miny, maxx, maxy = geom.bounds
    pad = 1.0
    if axis == 0:
        low = shapely.box(minx - pad, miny - pad, cut, maxy + pad)
        high = shapely.box(cut, miny - pad, maxx + pad, maxy + pad)
    else:
        low = shapely.box(minx - pad, miny - pad, maxx + pad, cut)
        high = shapely.box(minx - pad, cut, maxx + pad, maxy + pad)
    return (
        polygonal_part(shapely.intersection(geom, low)),
        polygonal_part(shapely.intersection(geom, high)),
    )


def _parts(geom: BaseGeometry) -> list[Polygon]:
    parts = [p for p in shapely.get_parts(polygonal_part(geom)) if isinstance(p, Polygon)]
    return sorted(parts, key=lambda p: (-p.area, p.bounds))


def _shared_length(a: BaseGeometry, b: BaseGeometry) -> float:
    return float(shapely.length(shapely.intersection(a.boundary, b.boundary)))


def _merge_fragments(leaves: list[BaseGeometry]) -> list[BaseGeometry]:
    """Give each leaf its largest part; merge the other fragments into their best neighbour."""
    current: list[BaseGeometry] = []
    pending: list[tuple[int, Polygon]] = []
    for i, leaf in enumerate(leaves):
        parts = _parts(leaf)
        current.append(parts[0] if parts else leaf)
        pending.extend((i, p) for p in parts[1:])
    if not pending:
        return current
    pending.sort(key=lambda item: (-item[1].area, item[0]))
    while pending:
        left_over: list[tuple[int, Polygon]] = []
        for owner, fragment in pending:
            fminx, fminy, fmaxx, fmaxy = fragment.bounds
            best, best_length = -1, 0.0
            for j, grid in enumerate(current):
                gminx, gminy, gmaxx, gmaxy = grid.bounds
                if gminx > fmaxx or gmaxx < fminx or gminy > fmaxy or gmaxy < fminy:
                    continue
                length = _shared_length(fragment, grid)
                if length > best_length:
                    best, best_length = j, length
            if best < 0 or best_length <= 0:
                left_over.append((owner, fragment))
                continue
            current[best] = _union(current[best], fragment)
        if len(left_over) == len(pending):
            # disconnected from every grid (the community itself is in several parts)
            for owner, fragment in left_over:
                current[owner] = _union(current[owner], fragment)
            break
        pending = left_over
    return current


def _union(a: BaseGeometry, b: BaseGeometry) -> BaseGeometry:
    merged = polygonal_part(shapely.union(a, b))
    if isinstance(merged, MultiPolygon):
        # float noise along a shared edge: close hairline gaps without moving the outline
        parts = _parts(merged)
        if len(parts) > 1 and all(p.area < parts[0].area * 1e-9 for p in parts[1:]):
            merged = parts[0]
    return merged


def number_grids(polygons: Sequence[BaseGeometry]) -> list[int]:
    """The standard number (1-based) of each polygon: rows north→south, west→east in a row.

    Rows are formed from centroids: a polygon starts a new row when its centroid lies more than
    half a typical grid height (the median bounding-box height) south of the row's first one.
    """
    n = len(polygons)
    if n == 0:
        return []
    geoms = np.array(list(polygons), dtype=object)
    centroids = shapely.centroid(geoms)
    xs = shapely.get_x(centroids)
    ys = shapely.get_y(centroids)
    bounds = shapely.bounds(geoms)
    band = float(np.median(bounds[:, 3] - bounds[:, 1])) * 0.5
    by_north = sorted(range(n), key=lambda i: (-ys[i], xs[i], i))
    rows: list[list[int]] = []
    row_top = math.inf
    for i in by_north:
        if not rows or ys[i] < row_top - band:
            rows.append([])
            row_top = ys[i]
        rows[-1].append(i)
    numbers = [0] * n
    position = 0
    for row in rows:
        for i in sorted(row, key=lambda i: (xs[i], -ys[i], i)):
            position += 1
            numbers[i] = position
    return numbers


def grid_count(
    polygon: BaseGeometry,
    *,
    households: float | None = None,
    households_per_grid: float | None = None,
    area_m2: float | None = None,
) -> int:
    """How many grids a community needs: by households or by area."""
    if households_per_grid is not None:
        k = math.ceil((households or 0) / households_per_grid - 1e-9)
    else:
        assert area_m2 is not None
        quotient = geodesic_area(polygon) / area_m2
        if not math.isfinite(quotient):  # a vanishing area per grid: more grids than any limit
            return MAX_GRIDS + 1
        k = math.ceil(quotient - 1e-9)
    return max(1, k)


def cut_community(
    polygon: BaseGeometry,
    *,
    points: Sequence[Sequence[float]] | np.ndarray | None = None,
    weights: Sequence[float] | np.ndarray | None = None,
    households_per_grid: float | None = None,
    area_m2: float | None = None,
) -> list[BaseGeometry]:
    """Cut ``polygon`` into grids; see the module docstring.

    ``points`` are (lon, lat) pairs with ``weights`` (households; default 1 each). With
    ``households_per_grid`` the number of grids is ceil(households inside / households_per_grid)
    and cuts follow the households; with ``area_m2`` it is ceil(area / area_m2) and cuts follow
    the area. Points outside the polygon are ignored. Raises ``GridGenError``.
    """
    if (households_per_grid is None) == (area_m2 is None):
        raise GridGenError(_("give exactly one of households_per_grid or area_m2"))
    if not isinstance(polygon, Polygon | MultiPolygon) or polygon.is_empty:
        raise GridGenError(_("the community needs a Polygon or MultiPolygon outline"))
    problem = validity_problem(polygon)
    if problem:
        raise GridGenError(
            _("the community outline is not a valid polygon: %(problem)s") % {"problem": problem}
        )
    lat0 = (polygon.bounds[1] + polygon.bounds[3]) / 2.0
    scale = metres_per_degree(lat0)

    xy: np.ndarray | None = None
    w: np.ndarray | None = None
    if households_per_grid is not None:
        if not (isinstance(households_per_grid, int | float) and households_per_grid > 0):
            raise GridGenError(_("households_per_grid must be a positive number"))
        if points is None or len(points) == 0:
            raise GridGenError(
                _(
                    "there are no buildings with households to balance the grids on; "
                    "cut by area (area_m2) instead"
                )
            )
        xy = np.asarray(points, dtype=float).reshape(-1, 2)
        w = np.ones(len(xy)) if weights is None else np.asarray(weights, dtype=float).ravel()
        if w.shape[0] != xy.shape[0]:
            raise GridGenError(
                _("%(points)s points but %(weights)s weights")
                % {"points": xy.shape[0], "weights": w.shape[0]}
            )
        if not (np.isfinite(xy).all() and np.isfinite(w).all()) or (w < 0).any():
            raise GridGenError(_("points and weights must be finite, weights not negative"))
        inside = shapely.intersects_xy(polygon, xy[:, 0], xy[:, 1])
        xy, w = xy[inside], w[inside]
        total = float(w.sum())
        if total <= 0:
            raise GridGenError(
                _("no households lie inside the community outline; cut by area (area_m2) instead")
            )
        k = grid_count(polygon, households=total, households_per_grid=households_per_grid)
        per_grid = _("%(count)s households") % {"count": f"{households_per_grid:g}"}
    else:
        assert area_m2 is not None
        if not (isinstance(area_m2, int | float) and math.isfinite(area_m2) and area_m2 > 0):
            raise GridGenError(_("area_m2 must be a positive number"))
        k = grid_count(polygon, area_m2=area_m2)
        per_grid = _("%(value)s m²") % {"value": f"{area_m2:,.0f}"}
    if k > MAX_GRIDS:
        raise GridGenError(
            _(
                "%(size)s per grid would need %(count)s grids, but a community has at most "
                "%(max)s (the grid code has 3 digits); choose larger grids"
            )
            % {"size": per_grid, "count": k, "max": MAX_GRIDS}
        )
    cutter = _Cutter(xy, w, scale)
    idx = np.arange(0 if xy is None else len(xy))
    leaves = cutter.split(polygon, idx, k)
    grids = _merge_fragments(leaves)
    grids = [g if g.is_valid else polygonal_part(shapely.make_valid(g)) for g in grids]
    numbers = number_grids(grids)
    return [g for _number, g in sorted(zip(numbers, grids, strict=True), key=lambda t: t[0])]
