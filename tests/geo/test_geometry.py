"""Parsing, validating, repairing and measuring polygons (pure helpers)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import shapely
from shapely.geometry import Polygon, box, shape

from gridgov.geo.geometry import (
    GeometryError,
    LocalProjection,
    describe_reason,
    geodesic_area,
    parse_geometry,
    region_fields_from_geometry,
    repair,
    validity_problem,
)
from tests.geo.factories import rect

QIXIA = Path("/work/shared/data/district-320113-qixia.geojson")
SQUARE = {
    "type": "Polygon",
    "coordinates": [
        [[118.9, 32.1], [118.91, 32.1], [118.91, 32.11], [118.9, 32.11], [118.9, 32.1]]
    ],
}
BOWTIE = {
    "type": "Polygon",
    "coordinates": [
        [[118.9, 32.1], [118.91, 32.11], [118.91, 32.1], [118.9, 32.11], [118.9, 32.1]]
    ],
}


def test_a_polygon_and_a_multipolygon_are_parsed_into_shapely() -> None:
    assert isinstance(parse_geometry(SQUARE), Polygon)
    multi = {"type": "MultiPolygon", "coordinates": [SQUARE["coordinates"]]}
    assert parse_geometry(multi).geom_type == "MultiPolygon"


def test_a_point_geometry_is_refused_naming_its_type(english: None) -> None:
    with pytest.raises(
        GeometryError, match="is a 'Point'; a region needs a Polygon or MultiPolygon"
    ):
        parse_geometry({"type": "Point", "coordinates": [118.9, 32.1]})


def test_nan_coordinates_are_refused_naming_the_position(english: None) -> None:
    ring = [[118.9, 32.1], [math.nan, 32.1], [118.91, 32.11], [118.9, 32.1]]
    with pytest.raises(GeometryError, match="outer ring, point 2: coordinates must be finite"):
        parse_geometry({"type": "Polygon", "coordinates": [ring]})


def test_coordinates_that_are_not_numbers_are_refused(english: None) -> None:
    ring = [[118.9, 32.1], ["118.91", 32.1], [118.91, 32.11], [118.9, 32.1]]
    with pytest.raises(GeometryError, match="must be numbers"):
        parse_geometry({"type": "Polygon", "coordinates": [ring]})
    with pytest.raises(GeometryError, match="must be numbers"):
        parse_geometry({"type": "Polygon", "coordinates": [[[True, 1], [2, 2], [3, 1], [True, 1]]]})


def test_swapped_latitude_and_longitude_are_caught_as_out_of_range(english: None) -> None:
    ring = [[32.1, 118.9], [32.1, 118.91], [32.11, 118.91], [32.1, 118.9]]
    with pytest.raises(GeometryError, match=r"latitude 118.9 is out of range"):
        parse_geometry({"type": "Polygon", "coordinates": [ring]})


def test_an_unclosed_ring_is_refused_naming_first_and_last_position(english: None) -> None:
    ring = [[118.9, 32.1], [118.91, 32.1], [118.91, 32.11], [118.9, 32.11]]
    with pytest.raises(GeometryError, match="not closed"):
        parse_geometry({"type": "Polygon", "coordinates": [ring]})


def test_a_ring_with_too_few_points_is_refused(english: None) -> None:
    with pytest.raises(GeometryError, match="at least 4 positions"):
        parse_geometry(
            {"type": "Polygon", "coordinates": [[[118.9, 32.1], [118.91, 32.1], [118.9, 32.1]]]}
        )
    with pytest.raises(GeometryError, match="3 distinct corners"):
        parse_geometry({"type": "Polygon", "coordinates": [[[1, 1], [2, 2], [1, 1], [1, 1]]]})


def test_a_hole_problem_names_the_polygon_and_hole(english: None) -> None:
    hole = [[118.901, 32.101], [118.902, 32.101], [118.902, 32.102]]
    multi = {
        "type": "MultiPolygon",
        "coordinates": [SQUARE["coordinates"], [SQUARE["coordinates"][0], hole]],
    }
    with pytest.raises(GeometryError, match="polygon 2, hole 1"):
        parse_geometry(multi)


def test_a_huge_vertex_count_is_refused_before_reading_the_positions(english: None) -> None:
    ring = [[118.9 + i * 1e-7, 32.1] for i in range(200_001)] + [[118.9, 32.1]]
    with pytest.raises(GeometryError, match="200,002 positions; at most 200,000"):
        parse_geometry({"type": "Polygon", "coordinates": [ring]})
    with pytest.raises(GeometryError, match="at most 3"):
        parse_geometry(SQUARE, max_vertices=3)


@pytest.mark.parametrize(
    "bad", [None, [], "Polygon", {"type": "Polygon"}, {"type": "Polygon", "coordinates": "x"}]
)
def test_garbage_is_refused_with_a_geometry_error(bad: object) -> None:
    with pytest.raises(GeometryError):
        parse_geometry(bad)


def test_a_bowtie_is_reported_with_the_latitude_and_longitude_of_the_crossing(
    english: None,
) -> None:
    problem = validity_problem(parse_geometry(BOWTIE))
    assert problem == "the boundary touches or crosses itself at lat 32.105000, lon 118.905000"
    assert validity_problem(parse_geometry(SQUARE)) is None


def test_geos_reasons_are_turned_into_words(english: None) -> None:
    assert describe_reason("Ring Self-intersection[118.89 32.03]") == (
        "the boundary touches or crosses itself at lat 32.030000, lon 118.890000"
    )
    assert describe_reason("Hole lies outside shell[1 2]").startswith("a hole lies outside")
    assert describe_reason("Something New") == "something New"


def test_the_qixia_outline_touches_itself_and_repair_keeps_its_area(english: None) -> None:
    data = json.loads(QIXIA.read_text(encoding="utf-8"))
    geom = parse_geometry(data["features"][0]["geometry"])
    problem = validity_problem(geom)
    assert problem is not None and "lat 32.166992, lon 119.083984" in problem
    fixed, change_m2, change_pct = repair(geom)
    assert fixed.is_valid and fixed.geom_type in ("Polygon", "MultiPolygon")
    assert geodesic_area(fixed) == pytest.approx(389e6, rel=0.01)
    assert abs(change_m2) < 1.0
    assert change_pct is not None and abs(change_pct) < 1e-6


def test_repairing_a_bowtie_keeps_both_halves_and_reports_the_area_gained() -> None:
    fixed, change_m2, change_pct = repair(parse_geometry(BOWTIE))
    assert fixed.geom_type == "MultiPolygon" and len(fixed.geoms) == 2
    # the bow-tie's lobes cancel when measured as drawn: the whole area is new
    assert change_m2 == pytest.approx(geodesic_area(fixed), rel=1e-6)
    assert change_pct is None or change_pct > 1000


def test_the_geodesic_area_of_a_100_m_square_is_10_000_square_metres() -> None:
    assert geodesic_area(rect(0, 0, 100, 100)) == pytest.approx(10_000, rel=1e-3)
    clockwise = Polygon(list(rect(0, 0, 100, 100).exterior.coords)[::-1])
    assert geodesic_area(clockwise) == pytest.approx(10_000, rel=1e-3)
    with_hole = rect(0, 0, 100, 100).difference(rect(25, 25, 75, 75))
    assert geodesic_area(with_hole) == pytest.approx(7_500, rel=1e-3)


def test_the_local_projection_measures_metres_and_goes_back_exactly() -> None:
    square = rect(0, 0, 500, 300)
    projection = LocalProjection.around(square)
    metric = projection.to_metres(square)
    assert metric.area == pytest.approx(150_000, rel=1e-3)
    back = projection.to_wgs84(metric)
    assert shapely.hausdorff_distance(back, square) < 1e-9


def test_region_fields_round_to_seven_decimals_and_put_the_label_inside() -> None:
    geom = shape(
        {
            "type": "Polygon",
            "coordinates": [
                [
                    [118.123456789, 32.1],
                    [118.2, 32.1],
                    [118.2, 32.2],
                    [118.123456789, 32.2],
                    [118.123456789, 32.1],
                ]
            ],
        }
    )
    fields = region_fields_from_geometry(geom)
    assert fields["geometry"]["type"] == "Polygon"
    xs = {c[0] for c in fields["geometry"]["coordinates"][0]}
    assert xs == {118.1234568, 118.2}
    assert fields["min_lon"] == 118.1234568 and fields["max_lat"] == 32.2
    assert shape(fields["geometry"]).contains(
        shapely.Point(fields["label_lon"], fields["label_lat"])
    )
    assert fields["area_m2"] == pytest.approx(geodesic_area(geom), rel=1e-6)
    json.dumps(fields)  # plain JSON, no tuples or numpy numbers


def test_a_u_shaped_polygon_gets_its_label_on_the_polygon_not_in_the_notch() -> None:
    u = box(0, 0, 3, 3).difference(box(1, 1, 2, 3.1))
    fields = region_fields_from_geometry(u)
    assert u.contains(shapely.Point(fields["label_lon"], fields["label_lat"]))
