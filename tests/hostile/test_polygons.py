"""Polygons that are no region: self-intersecting, unclosed, too few points, a million vertices,
the wrong geometry type, nested geometry collections, coordinates written as text, out of range
or NaN, through the GeoJSON import of the API, of the admin and of ``gridgov regions
import-geojson``. Each is refused with a message naming the feature and the problem, and the
regions stay as they were (all or nothing); a self-intersection is repaired only when asked
(``repair``), and reported; ``strict`` refuses the warnings too."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from gridgov.geo.models import Region
from tests.hostile.conftest import ApiClient, assert_nothing_stored, assert_refused, media_files
from tests.world import World

pytestmark = pytest.mark.django_db

IMPORT = "/api/v1/geo/regions/import"
#: A new grid of the world's community 320113003001 (whose grids A and B lie side by side).
NEW_GRID = "320113003001009"
X0, Y0 = 118.801, 32.001  # a corner inside grid A
D = 0.001


def square(x: float = X0, y: float = Y0, d: float = D) -> list[list[float]]:
    return [[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]


def feature(geometry: Any, code: str = NEW_GRID, **properties: Any) -> dict[str, Any]:
    return {"type": "Feature", "properties": {"code": code, **properties}, "geometry": geometry}


def collection(*features: Any) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def polygon(*rings: Any) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": list(rings)}


BOWTIE = [[X0, Y0], [X0 + D, Y0 + D], [X0 + D, Y0], [X0, Y0 + D], [X0, Y0]]

#: (id, geometry, words of the message)
HOSTILE_GEOMETRIES: list[tuple[str, Any, tuple[str, ...]]] = [
    ("self-intersecting-bowtie", polygon(BOWTIE), ("not valid", "crosses itself")),
    ("unclosed-ring", polygon(square()[:-1]), ("not closed",)),
    ("three-points", polygon([[X0, Y0], [X0 + D, Y0], [X0, Y0]]), ("at least 4 positions",)),
    ("two-points", polygon([[X0, Y0], [X0, Y0]]), ("at least 4 positions",)),
    ("four-identical-points", polygon([[X0, Y0]] * 4), ("distinct corners",)),
    ("empty-ring", polygon([]), ("at least 4 positions",)),
    ("no-rings", polygon(), ("no coordinates",)),
    ("point", {"type": "Point", "coordinates": [X0, Y0]}, ("Point",)),
    ("linestring", {"type": "LineString", "coordinates": square()}, ("LineString",)),
    (
        "geometry-collection",
        {"type": "GeometryCollection", "geometries": [polygon(square())]},
        ("GeometryCollection",),
    ),
    (
        "nested-geometry-collection",
        {
            "type": "GeometryCollection",
            "geometries": [{"type": "GeometryCollection", "geometries": [polygon(square())]}],
        },
        ("GeometryCollection",),
    ),
    ("no-type", {"coordinates": [square()]}, ("no type",)),
    (
        "geometry-is-text",
        "POLYGON((118.8 32, 118.9 32, 118.9 32.1, 118.8 32))",
        ("GeoJSON object",),
    ),
    ("coordinates-as-text", polygon([[str(x), str(y)] for x, y in square()]), ("must be numbers",)),
    (
        "coordinates-as-one-string",
        {"type": "Polygon", "coordinates": "118.8,32"},
        ("no coordinates",),
    ),
    ("position-with-one-number", polygon([[X0], *square()[1:]]), ("[longitude, latitude]",)),
    ("longitude-200", polygon([[200.0, Y0], *square()[1:-1], [200.0, Y0]]), ("longitude",)),
    ("latitude-minus-91", polygon([[X0, -91.0], *square()[1:-1], [X0, -91.0]]), ("latitude",)),
    ("boolean-coordinates", polygon([[True, False], *square()[1:]]), ("must be numbers",)),
    ("null-geometry", None, ("no geometry",)),
]


def upload(client: ApiClient, data: Any, name: str = "grids.geojson", **fields: Any) -> Any:
    raw = data if isinstance(data, bytes) else json.dumps(data, allow_nan=True).encode()
    file = SimpleUploadedFile(name, raw, content_type="application/geo+json")
    return client.post(IMPORT, {"file": file, **fields})


def problems_of(response: Any) -> str:
    detail = response.json()["detail"]
    return " ".join(" ".join(f.get("problems", [])) for f in detail.get("features", []))


@pytest.mark.parametrize(
    ("label", "geometry", "words"), HOSTILE_GEOMETRIES, ids=[g[0] for g in HOSTILE_GEOMETRIES]
)
def test_a_hostile_geometry_is_refused_by_the_api_naming_the_problem_and_nothing_changes(
    world: World,
    api: Callable[[str], ApiClient],
    label: str,
    geometry: Any,
    words: tuple[str, ...],
) -> None:
    before = {r.code: r.geometry for r in Region.objects.all()}
    with assert_nothing_stored(Region):
        r = upload(api("admin"), collection(feature(geometry)))
    assert_refused(r, 422, "error")
    problems = problems_of(r).lower()
    assert any(word.lower() in problems for word in words), problems
    assert {r.code: r.geometry for r in Region.objects.all()} == before


def test_one_hostile_feature_among_good_ones_refuses_the_whole_file(
    world: World, api: Callable[[str], ApiClient]
) -> None:
    good = feature(polygon(square(118.86, 32.001)), code="320113003001008", name="好")
    with assert_nothing_stored(Region):
        r = upload(api("admin"), collection(good, feature(polygon(square()[:-1]))))
    assert_refused(r, 422, "nothing was written")


def test_a_self_intersecting_polygon_is_repaired_only_when_asked_and_the_repair_is_reported(
    world: World, api: Callable[[str], ApiClient]
) -> None:
    r = upload(api("admin"), collection(feature(polygon(BOWTIE))), repair="true", dry_run="true")
    assert r.status_code == 200, r.content
    notes = " ".join(" ".join(f["notes"]) for f in r.json()["features"])
    assert "repaired" in notes and "crosses itself" in notes
    assert not Region.objects.filter(code=NEW_GRID).exists()


def test_strict_refuses_a_grid_that_overlaps_its_neighbour_and_writes_nothing(
    world: World, api: Callable[[str], ApiClient]
) -> None:
    """The new grid lies inside grid A: a warning normally, an error with strict."""
    with assert_nothing_stored(Region):
        r = upload(api("admin"), collection(feature(polygon(square()), name="叠")), strict="true")
    assert_refused(r, 422, "error")
    assert "overlap" in json.dumps(r.json()["detail"], ensure_ascii=False).lower()


def test_a_million_vertex_polygon_is_refused_by_the_vertex_limit_quickly(
    world: World, api: Callable[[str], ApiClient], settings: Any
) -> None:
    settings.GRIDGOV_GEOJSON_MAX_VERTICES = 200_000
    # three decimals keep the file under the upload limit: the vertex limit must speak
    ring = [
        [round(118.8 + (i % 100) / 1000, 3), round(32 + (i // 100) / 10000, 4)]
        for i in range(1_000_000)
    ]
    ring.append(ring[0])
    raw = json.dumps(collection(feature(polygon(ring))), separators=(",", ":")).encode()
    started = time.monotonic()
    with assert_nothing_stored(Region):
        r = upload(api("admin"), raw)
    elapsed = time.monotonic() - started
    assert_refused(r, (413, 422))
    text = r.json()["message"] + problems_of(r) if r.status_code == 422 else r.json()["message"]
    assert "1,000,001 positions" in text and "200,000" in text, text
    assert elapsed < 60, elapsed  # generous: a limit, not a benchmark


def test_the_vertex_limit_is_a_setting(
    world: World, api: Callable[[str], ApiClient], settings: Any
) -> None:
    settings.GRIDGOV_GEOJSON_MAX_VERTICES = 4
    with assert_nothing_stored(Region):
        r = upload(api("admin"), collection(feature(polygon(square()))))
    assert_refused(r, 422)
    assert "at most 4" in problems_of(r)


@pytest.mark.parametrize(
    ("label", "raw", "word"),
    [
        ("deeply-nested-arrays", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        ("nan-literal", b'{"type":"FeatureCollection","features":[NaN]}', "NaN"),
        ("not-json", b"POLYGON((0 0, 1 0, 1 1, 0 0))", "not valid JSON"),
        ("utf16-text", json.dumps(collection()).encode("utf-16"), "UTF-8"),
        ("topojson", b'{"type":"Topology","objects":{}}', "cannot be imported"),
        ("bare-polygon", json.dumps(polygon(square())).encode(), "no code"),
        ("features-not-a-list", b'{"type":"FeatureCollection","features":{"a":1}}', "no list"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 40 else "",
)
def test_a_file_that_is_not_geojson_is_a_400_naming_what_it_is(
    world: World, api: Callable[[str], ApiClient], label: str, raw: bytes, word: str
) -> None:
    with assert_nothing_stored(Region):
        r = upload(api("admin"), raw)
    assert_refused(r, 400, word)


def test_a_coordinate_of_1e400_is_refused_as_out_of_range(
    world: World, api: Callable[[str], ApiClient]
) -> None:
    ring = json.dumps(square()).replace(str(Y0), "1e400", 1)
    raw = (
        '{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"'
        + NEW_GRID
        + '"},"geometry":{"type":"Polygon","coordinates":['
        + ring
        + "]}}]}"
    ).encode()
    with assert_nothing_stored(Region):
        r = upload(api("admin"), raw)
    assert_refused(r, 422)
    assert "out of range" in problems_of(r) or "finite" in problems_of(r)


def test_a_feature_name_with_a_nul_character_is_refused_and_nothing_stored(
    world: World, api: Callable[[str], ApiClient]
) -> None:
    good = polygon(square(118.86, 32.001))
    with assert_nothing_stored(Region):
        r = upload(api("admin"), collection(feature(good, code="320113003001008", name="a\x00b")))
    assert_refused(r, 422)
    assert "control character" in problems_of(r) or "NUL" in problems_of(r)


def test_a_feature_name_with_script_is_stored_as_text(
    world: World, api: Callable[[str], ApiClient], web: Any
) -> None:
    name = "<script>alert(1)</script>"
    good = polygon(square(118.95, 32.101, 0.001))
    r = upload(api("admin"), collection(feature(good, code="320113005001009", name=name)))
    assert r.status_code == 200, r.content
    assert Region.objects.get(code="320113005001009").name == name
    page = web("admin").get("/regions/320113005001009/").content.decode()
    assert "<script>alert" not in page and "&lt;script&gt;" in page


@pytest.mark.parametrize(
    ("label", "geometry", "words"),
    [g for g in HOSTILE_GEOMETRIES if g[0] in ("unclosed-ring", "coordinates-as-text", "point")],
    ids=["unclosed-ring", "coordinates-as-text", "point"],
)
def test_the_command_refuses_a_hostile_geometry_with_status_1_and_writes_nothing(
    world: World, english: None, tmp_path: Path, label: str, geometry: Any, words: tuple[str, ...]
) -> None:
    path = tmp_path / "grids.geojson"
    path.write_text(json.dumps(collection(feature(geometry))), encoding="utf-8")
    out = StringIO()
    with assert_nothing_stored(Region), pytest.raises(CommandError):
        call_command("regions", "import-geojson", str(path), stdout=out, stderr=out)
    assert any(word.lower() in out.getvalue().lower() for word in words), out.getvalue()


def test_the_command_refuses_a_self_intersection_and_strict_refuses_an_overlap(
    world: World, english: None, tmp_path: Path
) -> None:
    bowtie = tmp_path / "bowtie.geojson"
    bowtie.write_text(json.dumps(collection(feature(polygon(BOWTIE)))), encoding="utf-8")
    out = StringIO()
    with assert_nothing_stored(Region), pytest.raises(CommandError):
        call_command("regions", "import-geojson", str(bowtie), stdout=out, stderr=out)
    assert "crosses itself" in out.getvalue().lower()
    overlap = tmp_path / "overlap.geojson"
    overlap.write_text(json.dumps(collection(feature(polygon(square())))), encoding="utf-8")
    out = StringIO()
    with assert_nothing_stored(Region), pytest.raises(CommandError):
        call_command("regions", "import-geojson", str(overlap), "--strict", stdout=out, stderr=out)
    assert "overlap" in out.getvalue().lower()


@pytest.mark.parametrize(
    ("label", "geometry", "words"),
    [
        g
        for g in HOSTILE_GEOMETRIES
        if g[0] in ("self-intersecting-bowtie", "three-points", "nested-geometry-collection")
    ],
    ids=["self-intersecting-bowtie", "three-points", "nested-geometry-collection"],
)
def test_the_admin_import_reports_a_hostile_geometry_and_stages_nothing(
    world: World, web: Any, label: str, geometry: Any, words: tuple[str, ...]
) -> None:
    raw = json.dumps(collection(feature(geometry))).encode()
    with assert_nothing_stored(Region):
        response = web("admin").post(
            "/admin/geo/region/import/",
            {"file": SimpleUploadedFile("grids.geojson", raw, content_type="application/geo+json")},
        )
    assert response.status_code == 200
    page = response.content.decode().lower()
    assert any(word.lower() in page for word in words), label
    assert not media_files(), "a refused file stayed staged"
