"""GridIndex: the in-memory point → grid index (gridgov.geo.spatial), checked against shapely.

No database: every test builds its polygons in memory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Geod
from shapely.geometry import MultiPolygon, Point, Polygon, box
from shapely.geometry.base import BaseGeometry

from gridgov.geo import spatial
from gridgov.geo.spatial import GridIndex

LON, LAT = 118.8, 32.1
GRID = 0.001  # about 100 m


# ---------------------------------------------------------------------- helpers


def shapely_answer(
    polygons: Sequence[BaseGeometry], lon: np.ndarray, lat: np.ndarray
) -> np.ndarray:
    """The lowest index of a polygon that has the point in its interior, else -1."""
    tree = shapely.STRtree(list(polygons))
    point_i, poly_i = tree.query(shapely.points(lon, lat), predicate="within")
    answer = np.full(len(lon), np.iinfo(np.int64).max)
    np.minimum.at(answer, point_i, poly_i)
    answer[answer == np.iinfo(np.int64).max] = -1
    return answer


def near_a_boundary(
    polygons: Sequence[BaseGeometry], lon: np.ndarray, lat: np.ndarray, tol: float = 1e-9
) -> np.ndarray:
    """Mask of the points within ``tol`` degrees of any polygon's boundary."""
    tree = shapely.STRtree(shapely.boundary(np.asarray(polygons, dtype=object)))
    point_i, _ = tree.query(shapely.points(lon, lat), predicate="dwithin", distance=tol)
    mask = np.zeros(len(lon), dtype=bool)
    mask[point_i] = True
    return mask


def random_points(
    bounds: tuple[float, float, float, float], n: int, seed: int = 0, margin: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    minx, miny, maxx, maxy = bounds
    rng = np.random.default_rng(seed)
    dx, dy = (maxx - minx) * margin, (maxy - miny) * margin
    return rng.uniform(minx - dx, maxx + dx, n), rng.uniform(miny - dy, maxy + dy, n)


def voronoi_grids(n: int, seed: int, drop_every: int = 0) -> list[BaseGeometry]:
    """A Voronoi tessellation of n random grids near Nanjing, dropping some (gaps)."""
    rng = np.random.default_rng(seed)
    extent = box(LON, LAT, LON + 0.02, LAT + 0.02)
    seeds = np.column_stack([rng.uniform(LON, LON + 0.02, n), rng.uniform(LAT, LAT + 0.02, n)])
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=extent, ordered=True)
    )
    cells = shapely.intersection(cells, extent)
    return [c for i, c in enumerate(cells) if not (drop_every and i % drop_every == 0)]


def assert_agrees_with_shapely(
    index: GridIndex, polygons: Sequence[BaseGeometry], lon: np.ndarray, lat: np.ndarray
) -> None:
    expected = shapely_answer(polygons, lon, lat)
    found = index.locate_many(lon, lat)
    differ = (found != expected) & ~near_a_boundary(polygons, lon, lat)
    examples = [
        (float(lon[i]), float(lat[i]), int(found[i]), int(expected[i]))
        for i in np.flatnonzero(differ)[:3]
    ]
    assert not differ.any(), f"{int(differ.sum())} of {len(lon)} points differ, e.g. {examples}"


def star(cx: float, cy: float, spikes: int, r_in: float, r_out: float) -> Polygon:
    angles = np.linspace(0, 2 * math.pi, 2 * spikes, endpoint=False)
    radii = np.where(np.arange(2 * spikes) % 2 == 0, r_out, r_in)
    return Polygon(np.column_stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)]))


def comb(x: float, y: float, teeth: int, width: float, height: float) -> Polygon:
    """A comb with thin teeth pointing up: very concave, with long parallel edges."""
    tooth = width / (2 * teeth)
    ring = [(x, y)]
    for k in range(teeth):
        left = x + 2 * k * tooth
        ring += [(left, y + height), (left + tooth, y + height), (left + tooth, y + height * 0.2)]
    ring += [(x + width, y + height * 0.2), (x + width, y)]
    return Polygon(ring)


@pytest.fixture(scope="module")
def city() -> tuple[list[BaseGeometry], GridIndex]:
    polygons = voronoi_grids(400, seed=7, drop_every=9)
    return polygons, GridIndex.build(polygons)


# ---------------------------------------------------------------------- locate


def test_a_point_inside_a_grid_is_found_in_that_grid() -> None:
    grids = [box(LON + i * GRID, LAT, LON + (i + 1) * GRID, LAT + GRID) for i in range(3)]
    index = GridIndex.build(grids)
    assert len(index) == 3
    assert index.locate(LON + 1.5 * GRID, LAT + 0.5 * GRID) == 1
    assert index.locate(LON + 0.1 * GRID, LAT + 0.9 * GRID) == 0
    assert index.locate(LON + 2.99 * GRID, LAT + 0.01 * GRID) == 2


def test_a_point_outside_every_grid_is_not_found() -> None:
    grids = [
        box(LON, LAT, LON + GRID, LAT + GRID),
        box(LON + 2 * GRID, LAT, LON + 3 * GRID, LAT + GRID),
    ]
    index = GridIndex.build(grids)
    assert index.locate(LON + 1.5 * GRID, LAT + 0.5 * GRID) == -1  # in the gap between them
    assert index.locate(LON - 1.0, LAT) == -1  # far outside the bounds
    assert index.locate(LON + 0.5 * GRID, LAT + 5 * GRID) == -1
    assert index.locate_many([LON + 1.5 * GRID, LON - 1.0], [LAT + 0.5 * GRID, LAT]).tolist() == [
        -1,
        -1,
    ]


def test_random_points_agree_with_shapely_on_a_tessellation_with_gaps(
    city: tuple[list[BaseGeometry], GridIndex],
) -> None:
    polygons, index = city
    lon, lat = random_points(shapely.total_bounds(polygons), 100_000, seed=1)
    assert_agrees_with_shapely(index, polygons, lon, lat)


def test_locate_and_locate_many_give_the_same_answers(
    city: tuple[list[BaseGeometry], GridIndex],
) -> None:
    polygons, index = city
    lon, lat = random_points(shapely.total_bounds(polygons), 20_000, seed=2)
    one_by_one = [index.locate(x, y) for x, y in zip(lon.tolist(), lat.tolist(), strict=True)]
    assert index.locate_many(lon, lat).tolist() == one_by_one


def test_locate_many_gives_the_same_answers_across_chunk_boundaries(
    city: tuple[list[BaseGeometry], GridIndex], monkeypatch: pytest.MonkeyPatch
) -> None:
    polygons, index = city
    lon, lat = random_points(shapely.total_bounds(polygons), 10_000, seed=3)
    whole = index.locate_many(lon, lat)
    monkeypatch.setattr(spatial, "CHUNK", 777)
    assert np.array_equal(index.locate_many(lon, lat), whole)


def test_a_point_in_a_hole_is_not_in_the_polygon_but_in_the_island_inside_it() -> None:
    outer = [
        (LON, LAT),
        (LON + 4 * GRID, LAT),
        (LON + 4 * GRID, LAT + 4 * GRID),
        (LON, LAT + 4 * GRID),
    ]
    hole = [
        (LON + GRID, LAT + GRID),
        (LON + 3 * GRID, LAT + GRID),
        (LON + 2 * GRID, LAT + 3 * GRID),
    ]
    island = Polygon(
        [
            (LON + 1.8 * GRID, LAT + 1.2 * GRID),
            (LON + 2.2 * GRID, LAT + 1.2 * GRID),
            (LON + 2 * GRID, LAT + 1.6 * GRID),
        ]
    )
    polygons = [Polygon(outer, [hole]), island]
    index = GridIndex.build(polygons)
    assert index.locate(LON + 0.5 * GRID, LAT + 0.5 * GRID) == 0
    assert index.locate(LON + 2 * GRID, LAT + 1.4 * GRID) == 1  # the island
    assert index.locate(LON + 2 * GRID, LAT + 2.5 * GRID) == -1  # the hole, outside the island
    lon, lat = random_points(shapely.total_bounds(polygons), 50_000, seed=4)
    assert_agrees_with_shapely(index, polygons, lon, lat)


def test_every_part_of_a_multipolygon_belongs_to_it() -> None:
    parts = MultiPolygon(
        [
            box(LON, LAT, LON + GRID, LAT + GRID),
            box(LON + 3 * GRID, LAT, LON + 4 * GRID, LAT + GRID),
        ]
    )
    between = box(LON + 1.5 * GRID, LAT, LON + 2.5 * GRID, LAT + GRID)
    polygons = [between, parts]
    index = GridIndex.build(polygons)
    assert index.locate(LON + 0.5 * GRID, LAT + 0.5 * GRID) == 1
    assert index.locate(LON + 3.5 * GRID, LAT + 0.5 * GRID) == 1
    assert index.locate(LON + 2 * GRID, LAT + 0.5 * GRID) == 0
    assert index.locate(LON + 1.2 * GRID, LAT + 0.5 * GRID) == -1
    lon, lat = random_points(shapely.total_bounds(polygons), 20_000, seed=5)
    assert_agrees_with_shapely(index, polygons, lon, lat)


def test_concave_stars_and_combs_agree_with_shapely() -> None:
    polygons = [
        star(LON + 2 * GRID, LAT + 2 * GRID, spikes=17, r_in=0.3 * GRID, r_out=1.9 * GRID),
        comb(LON + 4.5 * GRID, LAT, teeth=12, width=4 * GRID, height=4 * GRID),
        star(LON + 11 * GRID, LAT + 2 * GRID, spikes=5, r_in=1.2 * GRID, r_out=2 * GRID),
    ]
    index = GridIndex.build(polygons)
    lon, lat = random_points(shapely.total_bounds(polygons), 100_000, seed=6)
    assert_agrees_with_shapely(index, polygons, lon, lat)


def test_squares_on_a_lattice_aligned_with_the_cells_agree_with_shapely() -> None:
    # edges on round coordinates, and a cell size that divides them exactly
    squares = [(i, j) for i in range(10) for j in range(10) if (i + j) % 7]
    polygons = [box(i, j, i + 1, j + 1) for i, j in squares]
    index = GridIndex.build(polygons, cell_size=0.25)
    assert index.cell_size == 0.25
    lon, lat = random_points((0, 0, 10, 10), 50_000, seed=7)
    assert_agrees_with_shapely(index, polygons, lon, lat)
    assert index.locate(3.5, 5.5) == squares.index((3, 5))
    assert index.locate(3.5, 4.5) == -1  # (3, 4) is a gap


@pytest.mark.parametrize("size", [10.0, 0.01], ids=["float64 edges", "float32 edges"])
def test_a_cell_centre_lying_on_an_edge_gets_another_reference_point(size: float) -> None:
    h = size / 20
    # two specks fix the bounds, hence the raster
    corners = [
        box(LON, LAT, LON + h / 5, LAT + h / 5),
        box(LON + size - h / 5, LAT + size - h / 5, LON + size, LAT + size),
    ]
    probe = GridIndex.build(corners, cell_size=h)
    x0, y0 = probe._x0, probe._y0  # the raster origin (private, but that is the point here)

    def centre(col: int, row: int) -> tuple[float, float]:
        return x0 + (col + 0.5) * h, y0 + (row + 0.5) * h

    # triangles with every vertex on a cell centre, one edge running through seven more
    a, b, c = centre(6, 6), centre(14, 6), centre(10, 14)
    triangle = Polygon([a, b, c])
    polygons = [*corners, triangle, Polygon([a, c, centre(2, 14)])]
    index = GridIndex.build(polygons, cell_size=h)
    assert index.stats()["moved_reference_points"] > 0
    rng = np.random.default_rng(8)
    cols = rng.integers(0, 20, 50_000)
    rows = rng.integers(0, 20, 50_000)
    lon = x0 + (cols + rng.uniform(0, 1, 50_000)) * h
    lat = y0 + (rows + rng.uniform(0, 1, 50_000)) * h
    assert_agrees_with_shapely(index, polygons, lon, lat)
    assert [index.locate(x, y) for x, y in zip(lon[:2000], lat[:2000], strict=True)] == (
        index.locate_many(lon[:2000], lat[:2000]).tolist()
    )


def test_where_polygons_overlap_the_lowest_index_wins() -> None:
    polygons = [
        box(LON + GRID, LAT, LON + 3 * GRID, LAT + 2 * GRID),
        box(LON, LAT, LON + 2 * GRID, LAT + 2 * GRID),
        star(LON + 2 * GRID, LAT + GRID, spikes=6, r_in=0.5 * GRID, r_out=1.5 * GRID),
        box(LON - 2 * GRID, LAT - 2 * GRID, LON + 5 * GRID, LAT + 4 * GRID),  # under everything
    ]
    index = GridIndex.build(polygons)
    assert index.locate(LON + 1.5 * GRID, LAT + GRID) == 0
    assert index.locate(LON + 0.5 * GRID, LAT + GRID) == 1
    assert index.locate(LON + 4 * GRID, LAT + 3 * GRID) == 3
    lon, lat = random_points(shapely.total_bounds(polygons), 50_000, seed=9)
    assert_agrees_with_shapely(index, polygons, lon, lat)


def test_many_small_polygons_in_one_large_cell_agree_with_shapely() -> None:
    polygons = voronoi_grids(300, seed=10, drop_every=5)
    index = GridIndex.build(polygons, cell_size=0.007)  # dozens of grids per cell
    lon, lat = random_points(shapely.total_bounds(polygons), 30_000, seed=11)
    assert_agrees_with_shapely(index, polygons, lon, lat)
    assert [index.locate(x, y) for x, y in zip(lon[:500], lat[:500], strict=True)] == (
        index.locate_many(lon[:500], lat[:500]).tolist()
    )


def test_points_on_vertices_and_edges_do_not_crash_and_touch_the_answer(
    city: tuple[list[BaseGeometry], GridIndex],
) -> None:
    polygons, index = city
    vertices = shapely.get_coordinates(polygons[:60])
    edges = shapely.get_coordinates(
        shapely.line_interpolate_point(shapely.boundary(polygons[:60]), 0.37, normalized=True)
    )
    points = np.vstack([vertices, edges])
    found = index.locate_many(points[:, 0], points[:, 1])
    for (x, y), i in zip(points, found.tolist(), strict=True):
        assert index.locate(x, y) == i
        if i >= 0:  # on a boundary, any polygon touching the point is a fair answer
            assert polygons[i].distance(Point(x, y)) < 1e-12


def test_nan_and_infinite_coordinates_are_not_found() -> None:
    index = GridIndex.build([box(LON, LAT, LON + GRID, LAT + GRID)])
    for lon, lat in [
        (math.nan, LAT),
        (LON, math.nan),
        (math.inf, LAT),
        (LON, -math.inf),
        (math.nan, math.nan),
    ]:
        assert index.locate(lon, lat) == -1
    lon = np.array([math.nan, LON + GRID / 2, math.inf, -math.inf])
    lat = np.array([LAT, LAT + GRID / 2, LAT, math.nan])
    assert index.locate_many(lon, lat).tolist() == [-1, 0, -1, -1]
    assert index.nearest(math.nan, LAT) == (-1, math.inf)


def test_an_empty_index_finds_nothing() -> None:
    index = GridIndex.build([])
    assert len(index) == 0
    assert index.locate(LON, LAT) == -1
    assert index.locate_many(np.array([LON, 0.0]), np.array([LAT, 0.0])).tolist() == [-1, -1]
    assert index.nearest(LON, LAT) == (-1, math.inf)


def test_empty_geometries_keep_their_place_but_are_never_found() -> None:
    polygons = [Polygon(), box(LON, LAT, LON + GRID, LAT + GRID), MultiPolygon()]
    index = GridIndex.build(polygons)
    assert len(index) == 3
    assert index.locate(LON + GRID / 2, LAT + GRID / 2) == 1
    assert GridIndex.build([Polygon(), Polygon()]).locate(LON, LAT) == -1


def test_a_geometry_that_is_not_a_polygon_is_refused() -> None:
    with pytest.raises(TypeError, match="polygon 1 is a Point"):
        GridIndex.build([box(0, 0, 1, 1), Point(0, 0)])


def test_a_cell_size_that_is_not_a_positive_number_is_refused() -> None:
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="cell_size"):
            GridIndex.build([box(0, 0, 1, 1)], cell_size=bad)


def test_the_raster_never_grows_beyond_its_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spatial, "MAX_CELLS", 10_000)
    polygons = [box(0, 0, 1, 1), box(1, 0, 2, 1)]
    index = GridIndex.build(polygons, cell_size=1e-6)
    stats = index.stats()
    assert stats["cells"] <= 10_000
    assert index.cell_size > 1e-6
    lon, lat = random_points((0, 0, 2, 1), 5_000, seed=12)
    assert_agrees_with_shapely(index, polygons, lon, lat)


def test_locate_many_keeps_the_shape_of_its_input_and_refuses_unequal_shapes() -> None:
    index = GridIndex.build([box(LON, LAT, LON + GRID, LAT + GRID)])
    lon = np.full((2, 3), LON + GRID / 2)
    lat = np.full((2, 3), LAT + GRID / 2)
    lat[1, 2] = LAT - 1
    found = index.locate_many(lon, lat)
    assert found.dtype == np.int64
    assert found.tolist() == [[0, 0, 0], [0, 0, -1]]
    assert index.locate_many([], []).shape == (0,)
    with pytest.raises(ValueError, match="shape"):
        index.locate_many(np.zeros(3), np.zeros(4))


# ---------------------------------------------------------------------- nearest


def test_the_nearest_grid_of_a_point_inside_a_grid_is_that_grid_at_zero_metres(
    city: tuple[list[BaseGeometry], GridIndex],
) -> None:
    polygons, index = city
    inside = polygons[5].representative_point()
    assert index.nearest(inside.x, inside.y) == (5, 0.0)


def test_the_nearest_grid_of_a_point_outside_is_measured_in_geodesic_metres() -> None:
    polygons = [
        box(LON, LAT, LON + GRID, LAT + GRID),
        box(LON + 5 * GRID, LAT, LON + 6 * GRID, LAT + GRID),
    ]
    index = GridIndex.build(polygons)
    lon, lat = LON - 0.002, LAT + 0.0005  # west of the first grid, level with its middle
    found, metres = index.nearest(lon, lat)
    _, _, expected = Geod(ellps="WGS84").inv(lon, lat, LON, LAT + 0.0005)
    assert found == 0
    assert metres == pytest.approx(expected, rel=1e-3)
    assert 185 < metres < 195  # 0.002° of longitude at 32.1° N is about 189 m


def test_the_nearest_grid_is_nearest_in_metres_not_in_degrees() -> None:
    # at 60° N a degree of longitude is half a degree of latitude long
    east = box(60.010, 60.0, 60.011, 60.001)  # 0.010° of longitude away: about 558 m
    north = box(59.999, 60.009, 60.000, 60.010)  # 0.008° of latitude away: about 893 m
    index = GridIndex.build([north, east])
    found, metres = index.nearest(60.0, 60.0005)
    assert found == 1
    assert 540 < metres < 580


# ---------------------------------------------------------------------- property


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(min_value=2, max_value=120),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    drop_every=st.sampled_from([0, 3, 7]),
    cells_per_grid=st.sampled_from([None, 0.5, 3.0, 25.0]),
)
def test_on_random_voronoi_tessellations_locate_many_agrees_with_shapely(
    n: int, seed: int, drop_every: int, cells_per_grid: float | None
) -> None:
    polygons = voronoi_grids(n, seed, drop_every) or voronoi_grids(n, seed)
    cell_size = None if cells_per_grid is None else 0.02 / math.sqrt(n) / cells_per_grid
    index = GridIndex.build(polygons, cell_size=cell_size)
    lon, lat = random_points(shapely.total_bounds(polygons), 4_000, seed=seed % 1000)
    # add points on and right next to vertices, where the crossing rules are tested hardest
    vertices = shapely.get_coordinates(polygons)
    jitter = np.random.default_rng(seed).normal(0, 1e-7, vertices.shape)
    lon = np.concatenate([lon, vertices[:, 0] + jitter[:, 0]])
    lat = np.concatenate([lat, vertices[:, 1] + jitter[:, 1]])
    assert_agrees_with_shapely(index, polygons, lon, lat)
