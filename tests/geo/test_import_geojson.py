"""Importing polygons from GeoJSON: matching codes, validity, repair, checks, all-or-nothing."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import shape

from gridgov.core.errors import DomainError, PermissionDenied
from gridgov.core.stamps import stamp_get
from gridgov.geo.actions import (
    regions_export_geojson,
    regions_import_divisions,
    regions_import_geojson,
)
from gridgov.geo.index import GRID_STAMP
from gridgov.geo.models import Region
from tests.geo.factories import collection, feature, make_region, make_user, polygon_m, rect

QIXIA_CSV = Path("/work/shared/data/divisions-320113-qixia.csv")
QIXIA_GEOJSON = Path("/work/shared/data/district-320113-qixia.geojson")
COMMUNITY = "320113005001"


@pytest.fixture
def community(db: None) -> Region:
    """A 400 m × 200 m community with no grids yet."""
    return make_region(COMMUNITY, "栖霞社区", geometry=rect(0, 0, 400, 200))


@pytest.mark.django_db
def test_importing_the_qixia_outline_without_repair_names_the_self_intersection(
    english: None,
) -> None:
    regions_import_divisions(path=QIXIA_CSV)
    report = regions_import_geojson(path=QIXIA_GEOJSON)
    assert not report.ok
    [problem] = report.features[0].problems
    assert "touches or crosses itself at lat 32.166992, lon 119.083984" in problem
    assert "--repair" in problem
    assert report.features[0].status == "error"
    assert Region.objects.get(code="320113").geometry is None
    assert "nothing was written" in report.text()


@pytest.mark.django_db
def test_importing_the_qixia_outline_with_repair_stores_it_and_reports_the_area_change(
    english: None,
) -> None:
    regions_import_divisions(path=QIXIA_CSV)
    report = regions_import_geojson(path=QIXIA_GEOJSON, repair=True)
    assert report.ok, report.text()
    [fr] = report.features
    assert fr.status == "updated" and fr.code == "320113"
    assert fr.area_change_m2 is not None and abs(fr.area_change_m2) < 1
    assert any("repaired" in n and "the area did not change" in n for n in fr.notes)
    district = Region.objects.get(code="320113")
    assert shape(district.geometry).is_valid
    assert district.area_m2 == pytest.approx(389e6, rel=0.01)
    assert district.min_lon < district.label_lon < district.max_lon  # type: ignore[operator]
    again = regions_import_geojson(path=QIXIA_GEOJSON, repair=True)
    assert again.features[0].status == "unchanged"


@pytest.mark.django_db
def test_a_legacy_14_digit_grid_code_creates_the_15_digit_grid_and_says_so(
    community: Region,
    english: None,
) -> None:
    data = collection(feature("32011300500101", rect(0, 0, 200, 200)))
    report = regions_import_geojson(data=data)
    assert report.ok, report.text()
    fr = report.features[0]
    assert fr.code == "320113005001001" and fr.status == "added"
    assert any(
        "legacy 14-digit grid code 32011300500101 read as 320113005001001" in n for n in fr.notes
    )
    grid = Region.objects.get(code="320113005001001")
    assert grid.name == "栖霞社区第001网格"
    assert grid.parent == community and grid.grid_type == "base"
    assert grid.area_m2 == pytest.approx(40_000, rel=1e-3)


@pytest.mark.django_db
def test_a_new_grid_takes_its_name_and_grid_type_from_the_properties(community: Region) -> None:
    data = collection(
        feature("320113005001007", rect(0, 0, 200, 200), name="学校网格", grid_type="专属网格")
    )
    regions_import_geojson(data=data)
    grid = Region.objects.get(code="320113005001007")
    assert (grid.name, grid.grid_type) == ("学校网格", "dedicated")


@pytest.mark.django_db
def test_codes_are_found_under_common_aliases(community: Region) -> None:
    data = collection(
        {
            "type": "Feature",
            "properties": {"GRID_CODE": "320113005001001"},
            "geometry": json.loads(json.dumps(rect(0, 0, 200, 200).__geo_interface__)),
        },
        {
            "type": "Feature",
            "properties": {"网格编码": 320113005001002},
            "geometry": rect(200, 0, 400, 200).__geo_interface__,
        },
    )
    report = regions_import_geojson(data=data)
    assert report.ok and report.count("added") == 2


@pytest.mark.django_db
def test_a_duplicate_code_is_an_error_naming_both_features(
    community: Region, english: None
) -> None:
    data = collection(
        feature("320113005001001", rect(0, 0, 200, 200)),
        feature("320113005001002", rect(200, 0, 400, 200)),
        feature("32011300500101", rect(0, 0, 100, 100)),
    )
    report = regions_import_geojson(data=data)
    assert not report.ok
    message = "the code 320113005001001 appears twice: features[0] and features[2]"
    assert message in report.features[0].problems and message in report.features[2].problems
    assert report.features[1].status == "added"  # would have been added
    assert not Region.objects.filter(level="grid").exists()


@pytest.mark.django_db
def test_unknown_district_street_and_community_codes_are_errors(
    community: Region, english: None
) -> None:
    data = collection(
        feature("320199", rect(0, 0, 10, 10)),
        feature("320113099", rect(0, 0, 10, 10)),
        feature("320113005099", rect(0, 0, 10, 10)),
        feature("320113005099001", rect(0, 0, 10, 10)),
    )
    report = regions_import_geojson(data=data)
    problems = [fr.problems[0] for fr in report.features]
    assert "unknown district code 320199" in problems[0]
    assert "unknown street code 320113099" in problems[1]
    assert "unknown community code 320113005099" in problems[2]
    assert "community 320113005099 does not exist" in problems[3]


@pytest.mark.django_db
def test_a_grid_partly_outside_overlapping_and_leaving_a_gap_is_warned_with_areas(
    community: Region,
    english: None,
) -> None:
    data = collection(
        feature("320113005001001", rect(-20, 0, 200, 200)),  # 20 m × 200 m outside (4,000 m²)
        feature("320113005001002", rect(190, 0, 350, 200)),  # overlaps 001 by 10 m × 200 m
    )  # 350..400 uncovered: 50 m × 200 m = 10,000 m² of 80,000
    report = regions_import_geojson(data=data)
    assert report.ok and report.written
    kinds = {w.kind: w for w in report.warnings}
    assert set(kinds) == {"outside", "overlap", "gap"}
    assert kinds["outside"].area_m2 == pytest.approx(4_000, rel=0.01)
    assert kinds["outside"].codes == ["320113005001001", COMMUNITY]
    assert kinds["overlap"].area_m2 == pytest.approx(2_000, rel=0.01)
    assert kinds["overlap"].codes == ["320113005001001", "320113005001002"]
    assert kinds["gap"].area_m2 == pytest.approx(10_000, rel=0.01)
    assert kinds["gap"].share == pytest.approx(0.125, rel=0.01)
    assert "overlap by 2,0" in kinds["overlap"].message and "m²" in kinds["overlap"].message
    assert any("outside" in w for w in report.features[0].warnings)
    assert Region.objects.filter(level="grid").count() == 2


@pytest.mark.django_db
def test_strict_turns_warnings_into_errors_and_writes_nothing(
    community: Region, english: None
) -> None:
    data = collection(feature("320113005001001", rect(0, 0, 200, 200)))
    report = regions_import_geojson(data=data, strict=True)
    assert not report.ok and not report.written
    assert any("strict" in e and "covered by none of its grids" in e for e in report.errors)
    assert not Region.objects.filter(level="grid").exists()


@pytest.mark.django_db
def test_grids_that_tile_the_community_raise_no_warnings_and_bump_the_index(
    community: Region,
) -> None:
    before = stamp_get(key=GRID_STAMP)
    data = collection(
        feature("320113005001001", rect(0, 0, 200, 200)),
        feature("320113005001002", rect(200, 0, 400, 200)),
    )
    report = regions_import_geojson(data=data, strict=True)
    assert report.ok and report.warnings == []
    assert stamp_get(key=GRID_STAMP) > before


@pytest.mark.django_db
def test_a_dry_run_reports_but_writes_nothing(community: Region, english: None) -> None:
    report = regions_import_geojson(
        data=collection(feature("320113005001001", rect(0, 0, 200, 200))), dry_run=True
    )
    assert report.ok and not report.written and report.features[0].status == "added"
    assert "dry run" in report.text()
    assert not Region.objects.filter(level="grid").exists()


@pytest.mark.django_db
def test_hostile_geometries_become_per_feature_errors(community: Region, english: None) -> None:
    square = rect(0, 0, 200, 200).__geo_interface__
    ring = [list(c) for c in square["coordinates"][0]]
    nan_ring = [ring[0], [math.nan, ring[1][1]], *ring[2:]]
    data = collection(
        feature("320113005001001", {"type": "Point", "coordinates": ring[0]}),
        feature("320113005001002", {"type": "Polygon", "coordinates": [nan_ring]}),
        feature("320113005001003", {"type": "Polygon", "coordinates": [ring[:-1]]}),
        feature("320113005001004", {"type": "Polygon", "coordinates": [[ring[0]] * 300_000]}),
        feature("320113005001005", None),
        {"type": "Feature", "properties": {"name": "no code"}, "geometry": square},
        "not a feature",
    )
    report = regions_import_geojson(data=data)
    problems = [" ".join(fr.problems) for fr in report.features]
    assert "is a 'Point'" in problems[0]
    assert "finite" in problems[1]
    assert "not closed" in problems[2]
    assert "300,000 positions" in problems[3]
    assert "no geometry" in problems[4]
    assert "no code" in problems[5]
    assert "not a GeoJSON Feature" in problems[6]
    assert all(fr.status == "error" for fr in report.features)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"type": "FeatureCollection", "features": [NaN]}', "NaN is not a valid JSON number"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"[1, 2]", "must be an object"),
        (b'{"type": "Topology"}', "cannot be imported"),
        (b'{"type": "Polygon", "coordinates": []}', "bare geometry has no code"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_input_that_is_not_geojson_is_refused_with_a_400(
    raw: bytes, message: str, english: None
) -> None:
    with pytest.raises(DomainError, match=message) as info:
        regions_import_geojson(data=raw)
    assert info.value.status == 400


@pytest.mark.django_db
def test_a_user_may_import_only_codes_they_administer(community: Region) -> None:
    from gridgov.accounts.models import Role

    other = make_region("320113006", "龙潭街道")
    admin = make_user("street-admin", role=Role.ADMINISTRATOR, region=other)
    with pytest.raises(PermissionDenied, match="320113005001001"):
        regions_import_geojson(
            data=collection(feature("320113005001001", rect(0, 0, 200, 200))), user=admin
        )


@pytest.mark.django_db
def test_an_export_imports_back_unchanged(community: Region) -> None:
    regions_import_geojson(
        data=collection(
            feature("320113005001001", rect(0, 0, 200, 200), name="西网格"),
            feature("320113005001002", rect(200, 0, 400, 200), name="东网格"),
        )
    )
    exported = regions_export_geojson(level="grid", under=COMMUNITY)
    assert [f["properties"]["code"] for f in exported["features"]] == [
        "320113005001001",
        "320113005001002",
    ]
    props = exported["features"][0]["properties"]
    assert props["parent_code"] == COMMUNITY and props["grid_type"] == "base"
    report = regions_import_geojson(data=json.loads(json.dumps(exported)))
    assert [fr.status for fr in report.features] == ["unchanged", "unchanged"]


@pytest.mark.django_db
def test_the_export_is_scoped_to_what_the_user_sees(community: Region) -> None:
    from gridgov.accounts.models import Role

    make_region("320114001001", "雨花社区", geometry=rect(5000, 0, 5400, 200))
    worker = make_user("worker", role=Role.GRID_WORKER, region=community)
    codes = [f["properties"]["code"] for f in regions_export_geojson(user=worker)["features"]]
    assert COMMUNITY in codes and "320114001001" not in codes


@pytest.mark.django_db
def test_the_command_prints_the_report_and_exits_with_status_1_on_errors(
    capsys: pytest.CaptureFixture[str],
    english: None,
) -> None:
    regions_import_divisions(path=QIXIA_CSV)
    with pytest.raises(CommandError) as info:
        call_command("regions", "import-geojson", str(QIXIA_GEOJSON))
    assert info.value.returncode == 1
    assert "lat 32.166992, lon 119.083984" in capsys.readouterr().out
    call_command("regions", "import-geojson", str(QIXIA_GEOJSON), "--repair")
    assert "1 updated" in capsys.readouterr().out


@pytest.mark.django_db
def test_the_export_command_writes_a_file(tmp_path: Path, community: Region) -> None:
    out = tmp_path / "export.geojson"
    call_command("regions", "export-geojson", "--level", "community", "-o", str(out))
    data = json.loads(out.read_text(encoding="utf-8"))
    assert [f["properties"]["code"] for f in data["features"]] == [COMMUNITY]


@pytest.mark.django_db
def test_repairing_a_bowtie_grid_reports_the_area_it_gained(
    community: Region, english: None
) -> None:
    bowtie = polygon_m([(0, 0), (200, 200), (200, 0), (0, 200), (0, 0)])
    refused = regions_import_geojson(data=collection(feature("320113005001001", bowtie)))
    assert "crosses itself at lat" in refused.features[0].problems[0]
    report = regions_import_geojson(
        data=collection(feature("320113005001001", bowtie)), repair=True
    )
    assert report.ok, report.text()
    fr = report.features[0]
    assert fr.area_change_m2 == pytest.approx(20_000, rel=0.01)
    assert any("the area changed by +" in n and "m²" in n for n in fr.notes)


@pytest.mark.django_db
def test_an_import_links_a_region_to_the_parent_its_code_names(community: Region) -> None:
    Region.objects.filter(code=COMMUNITY).update(parent=None)
    report = regions_import_geojson(data=collection(feature(COMMUNITY, rect(0, 0, 400, 200))))
    assert report.features[0].status == "updated"
    assert Region.objects.get(code=COMMUNITY).parent == Region.objects.get(code=COMMUNITY[:9])


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=40,
)
_position = st.lists(
    st.floats(min_value=-200, max_value=200) | st.integers(-200, 200), min_size=0, max_size=3
)
_geometry = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            ["Polygon", "MultiPolygon", "Point", "LineString", "GeometryCollection"]
        ),
        "coordinates": st.lists(st.lists(_position, max_size=7), max_size=3)
        | st.lists(st.lists(st.lists(_position, max_size=7), max_size=2), max_size=2)
        | _json,
    }
)
_feature = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["Feature", "feature"]),
        "properties": st.fixed_dictionaries(
            {"code": st.sampled_from(["320113005001001", "32011300500102", COMMUNITY, "1", 320113])}
        )
        | _json,
        "geometry": _geometry | _json,
    }
)


@pytest.mark.django_db
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(features=st.lists(_feature | _json, max_size=4), repair=st.booleans())
def test_no_input_makes_the_import_crash(
    community: Region, features: list[Any], repair: bool
) -> None:
    try:
        report = regions_import_geojson(data=collection(*features), repair=repair, dry_run=True)
    except DomainError as exc:
        assert 400 <= exc.status < 500 and exc.message
    else:
        json.dumps(report.as_dict(), allow_nan=True)
        assert all(
            fr.status in ("added", "updated", "unchanged", "error") for fr in report.features
        )
