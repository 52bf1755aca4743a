"""A deterministic synthetic city of unit grids, for benchmarks and tests of the grid index.

``make_city(n, seed)`` returns ``n`` grid polygons in WGS-84 (lon/lat degrees) near
Nanjing (lon 118.8, lat 32.1) that look like real unit grids rather than rectangles:

* **districts** — the city is split into a few dozen districts; each lays its own jittered,
  rotated lattice of grid seeds with its own spacing (80 m in the centre, up to 200 m at the
  edge), so grid sizes vary and the lattices meet at irregular seams;
* **Voronoi cells** of all seeds are the grids; the ``n`` seeds nearest the centre (by a
  wobbly radius, so the outline is not a circle) are kept;
* **gaps** — seeds in a meandering river, in a few parks and a sprinkling of single seeds
  are dropped, so parts of the city belong to no grid;
* **irregular edges** — every Voronoi edge is densified (about every 16 m) and all vertices
  are moved by a smooth displacement field (a few metres). Shared edges are densified from
  a canonical direction, so neighbouring grids keep *identical* shared vertices: there are
  no slivers or overlaps. Grids end up with about 15–60 vertices.

``random_points(polygons, n, seed)`` draws test points uniformly over the city's bounds
grown by a margin, so some points fall outside every grid.

Run ``python bench/synthetic_city.py 50000`` for a summary of the generated city.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence

import numpy as np
import shapely
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

LON0 = 118.8
LAT0 = 32.1
#: metres per degree of longitude / latitude at LAT0 (local equirectangular approximation)
M_PER_DEG_LON = 111_320.0 * math.cos(math.radians(LAT0))
M_PER_DEG_LAT = 110_574.0
#: spacing of grid seeds (metres) in the centre and at the edge of the city
SPACING_CENTRE = 80.0
SPACING_EDGE = 200.0
#: edges are cut into pieces no longer than this (metres) before they are perturbed
DENSIFY_M = 16.0


def make_city(n_grids: int, seed: int = 0) -> list[Polygon]:
    """``n_grids`` non-overlapping, irregular grid polygons (lon/lat), deterministic in seed."""
    if n_grids <= 0:
        return []
    rng = np.random.default_rng(seed)
    # a city radius that holds about n_grids seeds (plus gaps and an outer ring to spare)
    radius = _radius_for(n_grids)
    seeds = _district_seeds(rng, radius * 1.25)
    land = np.flatnonzero(~_in_gaps(rng, seeds, radius))
    # the n_grids land seeds nearest the centre, by a wobbly radius (an irregular outline)
    r = np.hypot(seeds[land, 0], seeds[land, 1])
    theta = np.arctan2(seeds[land, 1], seeds[land, 0])
    phases = rng.uniform(0, 2 * math.pi, 3)
    wobble = 1.0 + sum(
        a * np.sin(k * theta + p)
        for a, k, p in zip((0.12, 0.07, 0.04), (2, 3, 5), phases, strict=True)
    )
    order = np.argsort(r / wobble, kind="stable")
    if len(order) < n_grids:
        raise RuntimeError(f"only {len(order)} seeds for {n_grids} grids")
    chosen = land[np.sort(order[:n_grids])]
    # Voronoi cells of *all* seeds (gap seeds too): the gaps stay empty, and every chosen
    # cell is bounded by neighbours
    envelope = shapely.box(*(seeds.min(axis=0) - 1000), *(seeds.max(axis=0) + 1000))
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=envelope, ordered=True)
    )
    cells = cells[chosen]
    return _irregular(cells, rng)


def random_points(
    polygons: Sequence[BaseGeometry], n: int, seed: int = 1, margin: float = 0.03
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points (lon, lat) uniform over the polygons' bounds grown by ``margin``."""
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = shapely.total_bounds(np.asarray(polygons, dtype=object))
    dx = (maxx - minx) * margin
    dy = (maxy - miny) * margin
    lon = rng.uniform(minx - dx, maxx + dx, n)
    lat = rng.uniform(miny - dy, maxy + dy, n)
    return lon, lat


# ---------------------------------------------------------------------- internals


def _spacing(r: np.ndarray, radius: float) -> np.ndarray:
    t = np.clip(r / radius, 0.0, 1.0)
    return SPACING_CENTRE + (SPACING_EDGE - SPACING_CENTRE) * t**1.5


def _radius_for(n_grids: int) -> float:
    """Radius (m) of a disc holding about n_grids seeds at the radial spacing profile."""
    # seeds per m² at relative radius t is 1/s(t)^2; integrate over the disc numerically
    t = np.linspace(0.0, 1.0, 2001)
    s = SPACING_CENTRE + (SPACING_EDGE - SPACING_CENTRE) * t**1.5
    per_r2 = float(np.trapezoid(2 * math.pi * t / s**2, t))  # seeds / radius²
    # ~12 % of the disc ends up in gaps
    return math.sqrt(n_grids / 0.88 / per_r2)


def _district_seeds(rng: np.random.Generator, extent: float) -> np.ndarray:
    """Seeds (metres) of jittered lattices, one per district, over a disc of radius extent."""
    n_districts = int(np.clip((extent / 1500.0) ** 2 * 3, 6, 1000))
    centres = np.vstack([[0.0, 0.0], rng.uniform(-extent, extent, (n_districts, 2))])
    square = shapely.box(-extent, -extent, extent, extent)
    regions = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(centres), extend_to=square, ordered=True)
    )
    out = []
    for (cx, cy), region in zip(centres, regions, strict=True):
        spacing = float(_spacing(np.hypot(cx, cy), extent / 1.25)) * rng.uniform(0.9, 1.1)
        angle = rng.uniform(0, math.pi / 2)
        # a rotated lattice around the district centre, wide enough to cover its region
        minx, miny, maxx, maxy = region.bounds
        reach = math.hypot(max(abs(minx - cx), abs(maxx - cx)), max(abs(miny - cy), abs(maxy - cy)))
        n = int(reach / spacing) + 2
        g = (np.arange(-n, n + 1) + rng.uniform(0, 1)) * spacing
        gx, gy = np.meshgrid(g, g)
        c, s = math.cos(angle), math.sin(angle)
        px = gx.ravel() * c - gy.ravel() * s + cx
        py = gx.ravel() * s + gy.ravel() * c + cy
        inside = shapely.contains_xy(region, px, py) & (np.hypot(px, py) < extent)
        pts = np.column_stack([px[inside], py[inside]])
        out.append(pts + rng.normal(0, 0.17 * spacing, pts.shape))
    return np.vstack(out)


def _in_gaps(rng: np.random.Generator, pts: np.ndarray, radius: float) -> np.ndarray:
    """Seeds dropped: a meandering river, a few parks and 1 % single seeds."""
    x, y = pts[:, 0], pts[:, 1]
    angle = rng.uniform(0, math.pi)
    c, s = math.cos(angle), math.sin(angle)
    along = x * c + y * s
    across = -x * s + y * c
    k1, k2 = rng.uniform(1.5, 3.0, 2) / radius
    p1, p2 = rng.uniform(0, 2 * math.pi, 2)
    centre_line = 0.15 * radius * np.sin(k1 * along + p1) + 0.05 * radius * np.sin(k2 * along + p2)
    river = np.abs(across - centre_line) < max(70.0, 0.02 * radius)
    parks = np.zeros(len(pts), dtype=bool)
    for _ in range(max(2, int(radius / 1500))):
        px, py = rng.uniform(-0.8 * radius, 0.8 * radius, 2)
        pr = rng.uniform(150, 350) * max(1.0, radius / 8000)
        parks |= np.hypot(x - px, y - py) < pr
    single = rng.random(len(pts)) < 0.01
    return river | parks | single


def _irregular(cells: np.ndarray, rng: np.random.Generator) -> list[Polygon]:
    """Densify every edge from a canonical direction, displace all vertices, to lon/lat."""
    coords, ring = shapely.get_coordinates(shapely.get_exterior_ring(cells), return_index=True)
    same = ring[:-1] == ring[1:]
    p = coords[:-1][same]
    q = coords[1:][same]
    edge_ring = ring[:-1][same]
    # canonical direction: from the lexicographically smaller endpoint
    swap = (p[:, 0] > q[:, 0]) | ((p[:, 0] == q[:, 0]) & (p[:, 1] > q[:, 1]))
    a = np.where(swap[:, None], q, p)
    b = np.where(swap[:, None], p, q)
    n_seg = np.maximum(1, np.ceil(np.hypot(*(b - a).T) / DENSIFY_M)).astype(np.int64)
    # per edge: its start vertex p exactly, then n_seg - 1 interior points
    group = np.repeat(np.arange(len(p)), n_seg)
    i = np.arange(len(group)) - np.repeat(np.cumsum(n_seg) - n_seg, n_seg)
    n = n_seg[group]
    k = np.where(swap[group], n - i, i)
    t = (k / n)[:, None]
    pts = a[group] + (b[group] - a[group]) * t
    pts[i == 0] = p[group[i == 0]]
    pts = _displace(pts, rng)
    lon = LON0 + pts[:, 0] / M_PER_DEG_LON
    lat = LAT0 + pts[:, 1] / M_PER_DEG_LAT
    rings = shapely.linearrings(np.column_stack([lon, lat]), indices=edge_ring[group])
    polygons = shapely.polygons(rings)
    return list(polygons)


def _displace(pts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A smooth displacement field (metres); its slope stays well below 1, so it folds nothing."""
    out = pts.copy()
    for wavelength, amplitude in ((35.0, 1.2), (70.0, 2.0), (150.0, 3.0)):
        for axis in (0, 1):
            direction = rng.uniform(0, 2 * math.pi)
            kx, ky = np.array([math.cos(direction), math.sin(direction)]) * 2 * math.pi / wavelength
            phase = rng.uniform(0, 2 * math.pi)
            out[:, axis] += amplitude * np.sin(pts[:, 0] * kx + pts[:, 1] * ky + phase)
    return out


def main(argv: list[str]) -> None:
    n = int(argv[1]) if len(argv) > 1 else 1200
    seed = int(argv[2]) if len(argv) > 2 else 0
    t = time.perf_counter()
    polygons = make_city(n, seed)
    elapsed = time.perf_counter() - t
    geoms = np.asarray(polygons, dtype=object)
    vertices = shapely.get_num_coordinates(geoms) - 1
    # local metres: width = sqrt(area)
    scaled = shapely.transform(geoms, lambda c: c * [M_PER_DEG_LON, M_PER_DEG_LAT])
    width = np.sqrt(shapely.area(scaled))
    union_area = float(shapely.area(shapely.coverage_union_all(scaled)))
    hull_area = float(shapely.area(shapely.convex_hull(shapely.coverage_union_all(scaled))))
    print(f"{n} grids in {elapsed:.1f} s (seed {seed})")
    print(
        f"vertices per grid: min {vertices.min()}, median {np.median(vertices):.0f}, "
        f"max {vertices.max()}"
    )
    print(
        f"grid width (sqrt area): p5 {np.percentile(width, 5):.0f} m, median "
        f"{np.median(width):.0f} m, p95 {np.percentile(width, 95):.0f} m"
    )
    print(
        f"valid: {int(shapely.is_valid(geoms).sum())}/{n}; covered {union_area / 1e6:.1f} km² "
        f"of a {hull_area / 1e6:.1f} km² hull"
    )


if __name__ == "__main__":
    main(sys.argv)
