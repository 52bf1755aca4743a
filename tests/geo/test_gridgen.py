"""Cutting a community into grids: exact tiling, balance, numbering, concave outlines."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon

from gridgov.geo.geometry import geodesic_area
from gridgov.geo.gridgen import MAX_GRIDS, GridGenError, cut_community, number_grids
from tests.geo.factories import metres, polygon_m, rect

L_SHAPE = polygon_m([(0, 0), (900, 0), (900, 300), (300, 300), (300, 900), (0, 900)])
U_SHAPE = polygon_m(
    [(0, 0), (900, 0), (900, 900), (600, 900), (600, 300), (300, 300), (300, 900), (0, 900)]
)
IRREGULAR = polygon_m(
    [(0, 0), (700, -120), (1300, 250), (1100, 900), (500, 1250), (80, 800), (250, 400)]
)


def assert_tiles(community: Polygon, grids: list) -> None:
    union = shapely.union_all(grids)
    assert union.area == pytest.approx(community.area, rel=1e-4)
    assert shapely.symmetric_difference(union, community).area < community.area * 1e-9
    overlap = sum(a.intersection(b).area for a, b in itertools.combinations(grids, 2))
    assert overlap < community.area * 1e-9
    assert all(g.is_valid for g in grids)


def random_points(polygon: Polygon, n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = polygon.bounds
    xy = np.column_stack([rng.uniform(minx, maxx, n * 3), rng.uniform(miny, maxy, n * 3)])
    xy = xy[shapely.contains_xy(polygon, xy[:, 0], xy[:, 1])][:n]
    return xy, rng.integers(5, 60, len(xy)).astype(float)


@pytest.mark.parametrize(
    "community",
    [rect(0, 0, 1200, 800), L_SHAPE, U_SHAPE, IRREGULAR],
    ids=["rect", "L", "U", "irregular"],
)
@pytest.mark.parametrize("k", [2, 3, 5, 8, 13, 40])
def test_grids_cut_by_area_tile_the_community_exactly(community: Polygon, k: int) -> None:
    grids = cut_community(community, area_m2=geodesic_area(community) / k * 1.0000001)
    assert len(grids) == k
    assert_tiles(community, grids)


@pytest.mark.parametrize("community", [L_SHAPE, U_SHAPE, IRREGULAR], ids=["L", "U", "irregular"])
@pytest.mark.parametrize("k", [2, 3, 4, 6, 9, 17])
def test_concave_communities_still_give_one_polygon_per_grid(community: Polygon, k: int) -> None:
    grids = cut_community(community, area_m2=geodesic_area(community) / k * 1.0000001)
    assert [g.geom_type for g in grids] == ["Polygon"] * k


def test_area_mode_gives_grids_of_nearly_equal_area() -> None:
    community = IRREGULAR
    grids = cut_community(community, area_m2=50_000)
    expected = int(np.ceil(geodesic_area(community) / 50_000))
    assert len(grids) == expected
    areas = np.array([geodesic_area(g) for g in grids])
    assert areas.min() / areas.mean() > 0.97 and areas.max() / areas.mean() < 1.03


@pytest.mark.parametrize(
    "community",
    [rect(0, 0, 1500, 900), L_SHAPE, U_SHAPE, IRREGULAR],
    ids=["rect", "L", "U", "irregular"],
)
def test_grids_cut_by_households_are_balanced_within_35_percent(community: Polygon) -> None:
    xy, weights = random_points(community, 1500)
    grids = cut_community(community, points=xy, weights=weights, households_per_grid=1200)
    k = int(np.ceil(weights.sum() / 1200))
    assert len(grids) == k
    assert_tiles(community, grids)
    target = weights.sum() / k
    per_grid = [weights[shapely.intersects_xy(g, xy[:, 0], xy[:, 1])].sum() for g in grids]
    assert sum(per_grid) == pytest.approx(weights.sum())
    assert all(0.65 * target <= h <= 1.35 * target for h in per_grid), (target, per_grid)


def test_points_outside_the_community_are_ignored() -> None:
    community = rect(0, 0, 400, 400)
    inside = [metres(100, 100), metres(300, 300)]
    outside = [metres(5000, 5000)] * 10
    grids = cut_community(
        community,
        points=inside + outside,
        weights=[100, 100] + [1000] * 10,
        households_per_grid=100,
    )
    assert len(grids) == 2


def test_a_simple_square_is_numbered_west_to_east_then_north_to_south() -> None:
    grids = cut_community(rect(0, 0, 1000, 1000), area_m2=250_000 * 1.0000001)
    centres = [(round(g.centroid.x, 6), round(g.centroid.y, 6)) for g in grids]
    (x_nw, y_nw), (x_ne, y_ne), (x_sw, y_sw), (x_se, y_se) = centres
    assert y_nw == y_ne > y_sw == y_se
    assert x_nw < x_ne and x_sw < x_se and x_nw == x_sw


def test_a_rectangle_of_eight_grids_reads_like_a_page() -> None:
    grids = cut_community(rect(0, 0, 2000, 1000), area_m2=250_000 * 1.0000001)
    assert len(grids) == 8
    ys = [g.centroid.y for g in grids]
    xs = [g.centroid.x for g in grids]
    assert ys[:4] == pytest.approx([ys[0]] * 4) and ys[4:] == pytest.approx([ys[4]] * 4)
    assert ys[0] > ys[4]
    assert xs[:4] == sorted(xs[:4]) and xs[4:] == sorted(xs[4:])


def test_number_grids_numbers_rows_from_the_north_and_columns_from_the_west() -> None:
    cells = [rect(x, y, x + 100, y + 100) for y in (0, 100) for x in (0, 100, 200)]
    # cells: south row west..east, then north row west..east
    assert number_grids(cells) == [4, 5, 6, 1, 2, 3]
    # a slightly taller neighbour stays in its row
    wobbly = [rect(0, 0, 100, 100), rect(100, 0, 200, 130), rect(0, 200, 100, 300)]
    assert number_grids(wobbly) == [2, 3, 1]
    assert number_grids([]) == []


def test_the_cut_is_deterministic() -> None:
    xy, weights = random_points(IRREGULAR, 800, seed=3)
    first = cut_community(IRREGULAR, points=xy, weights=weights, households_per_grid=700)
    second = cut_community(IRREGULAR, points=xy, weights=weights, households_per_grid=700)
    assert [g.wkb for g in first] == [g.wkb for g in second]


def test_ten_thousand_households_in_forty_grids_take_under_half_a_second() -> None:
    community = IRREGULAR
    xy, _ = random_points(community, 2000, seed=11)
    weights = np.full(len(xy), 5.0)  # 10,000 households
    cut_community(community, area_m2=100_000)  # warm up GEOS and numpy
    started = time.perf_counter()
    grids = cut_community(community, points=xy, weights=weights, households_per_grid=250)
    elapsed = time.perf_counter() - started
    assert len(grids) == 40
    assert elapsed < 0.5


def test_more_than_999_grids_is_refused_with_the_reason(english: None) -> None:
    with pytest.raises(
        GridGenError, match=f"would need 1000 grids, but a community has at most {MAX_GRIDS}"
    ):
        cut_community(rect(0, 0, 1000, 1000), area_m2=1000)


def test_exactly_one_of_households_or_area_is_required(english: None) -> None:
    with pytest.raises(GridGenError, match="exactly one"):
        cut_community(rect(0, 0, 100, 100))
    with pytest.raises(GridGenError, match="exactly one"):
        cut_community(rect(0, 0, 100, 100), households_per_grid=300, area_m2=1000)


def test_households_mode_without_households_inside_asks_for_area_mode(english: None) -> None:
    with pytest.raises(GridGenError, match="area"):
        cut_community(rect(0, 0, 100, 100), households_per_grid=300)
    with pytest.raises(GridGenError, match="no households lie inside"):
        cut_community(
            rect(0, 0, 100, 100), points=[metres(500, 500)], weights=[10], households_per_grid=300
        )


def test_an_invalid_outline_is_refused_naming_the_crossing(english: None) -> None:
    bowtie = Polygon([metres(0, 0), metres(100, 100), metres(100, 0), metres(0, 100)])
    with pytest.raises(GridGenError, match="crosses itself at lat"):
        cut_community(bowtie, area_m2=1000)


def test_one_building_heavier_than_a_grid_still_gives_the_counted_grids() -> None:
    community = rect(0, 0, 400, 400)
    grids = cut_community(
        community, points=[metres(200, 200)], weights=[900], households_per_grid=300
    )
    assert len(grids) == 3
    assert_tiles(community, grids)
