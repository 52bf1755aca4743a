"""Generating the grids of a community from its buildings or its area."""

from __future__ import annotations

import importlib.util

import pytest
from django.core.management import CommandError, call_command
from shapely.geometry import shape

from gridgov.accounts.models import Role
from gridgov.core.errors import DomainError
from gridgov.core.stamps import stamp_get
from gridgov.geo.actions import grids_generate
from gridgov.geo.index import GRID_STAMP
from gridgov.geo.models import Region
from gridgov.registry.models import Building
from tests.geo.factories import grid_points, make_buildings, make_region, make_user, metres, rect

CODE = "320113005001"


@pytest.fixture
def community(db: None) -> Region:
    """A 1 km × 500 m community with 200 buildings of 15 households (3,000 households)."""
    region = make_region(CODE, "栖霞社区", geometry=rect(0, 0, 1000, 500))
    make_buildings(CODE, grid_points(0, 0, 1000, 500, step=50), households=15)
    return region


@pytest.mark.django_db
def test_generating_by_households_creates_numbered_grids_with_their_households(
    community: Region,
) -> None:
    before = stamp_get(key=GRID_STAMP)
    result = grids_generate(community=community, households_per_grid=300)
    assert result.saved and len(result.grids) == 10
    grids = list(Region.objects.filter(level="grid").order_by("code"))
    assert [g.code for g in grids] == [f"{CODE}{n:03d}" for n in range(1, 11)]
    assert all(
        g.parent == community and g.grid_type == "base" and g.name.endswith("网格") for g in grids
    )
    assert sum(g.target_households or 0 for g in grids) == 3000
    assert all(240 <= (g.target_households or 0) <= 360 for g in grids)
    assert sum(g.area_m2 or 0 for g in grids) == pytest.approx(500_000, rel=1e-3)
    assert result.problems == []
    # every building now points at the grid that holds it
    for building in Building.objects.select_related("grid"):
        assert building.grid is not None
        assert shape(building.grid.geometry).intersects(
            shape({"type": "Point", "coordinates": [building.lon, building.lat]})
        )
    assert stamp_get(key=GRID_STAMP) > before


@pytest.mark.django_db
def test_the_first_grid_is_in_the_north_west(community: Region) -> None:
    grids_generate(community=community, households_per_grid=750)  # 4 grids
    first, second, third, _ = Region.objects.filter(level="grid").order_by("code")
    assert first.label_lat > third.label_lat  # type: ignore[operator]
    assert first.label_lon < second.label_lon  # type: ignore[operator]


@pytest.mark.django_db
def test_generating_by_area_needs_no_buildings(db: None) -> None:
    community = make_region(CODE, geometry=rect(0, 0, 300, 300))
    result = grids_generate(community=community, area_m2=10_000)
    assert len(result.grids) == 9
    assert all(g.households == 0 for g in result.grids)
    assert all(g.area_m2 == pytest.approx(10_000, rel=0.01) for g in result.grids)


@pytest.mark.django_db
def test_a_dry_run_returns_the_proposal_and_saves_nothing(community: Region) -> None:
    result = grids_generate(community=community, households_per_grid=300, dry_run=True)
    assert not result.saved and len(result.grids) == 10
    fc = result.feature_collection()
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 10
    assert {"code", "households", "area_m2"} <= set(fc["features"][0]["properties"])
    assert fc["checks"] == []
    assert not Region.objects.filter(level="grid").exists()
    assert not Building.objects.filter(grid__isnull=False).exists()


@pytest.mark.django_db
def test_a_community_with_grids_is_refused_unless_replace(community: Region, english: None) -> None:
    grids_generate(community=community, households_per_grid=300)
    with pytest.raises(DomainError, match="already has 10 grids") as info:
        grids_generate(community=community, households_per_grid=600)
    assert info.value.status == 409
    preview = grids_generate(community=community, households_per_grid=600, dry_run=True)
    assert preview.blockers and "already has 10 grids" in preview.blockers[0]
    result = grids_generate(community=community, households_per_grid=600, replace=True)
    assert len(result.grids) == 5 and len(result.replaced_codes) == 10
    assert Region.objects.filter(level="grid").count() == 5
    assert not Building.objects.filter(grid__isnull=True).exists()


@pytest.mark.django_db
def test_replacing_grids_that_people_serve_is_refused_naming_them(community: Region) -> None:
    grids_generate(community=community, households_per_grid=300)
    grid = Region.objects.get(code=f"{CODE}003")
    make_user("wang", role=Role.GRID_WORKER, region=grid)
    with pytest.raises(DomainError, match=f"wang.*{CODE}003"):
        grids_generate(community=community, households_per_grid=600, replace=True)
    assert Region.objects.filter(level="grid").count() == 10


@pytest.mark.django_db
def test_buildings_outside_the_outline_are_reported_and_get_no_grid(
    community: Region, english: None
) -> None:
    make_buildings(CODE, [metres(5000, 5000)], households=40)
    result = grids_generate(community=community, households_per_grid=300)
    assert result.unassigned_buildings == 1 and result.unassigned_households == 40
    assert any("outside its outline" in n for n in result.notes)
    assert Building.objects.filter(grid__isnull=True).count() == 1


@pytest.mark.django_db
def test_clear_errors_for_what_cannot_be_cut(community: Region, english: None) -> None:
    street = Region.objects.get(code=CODE[:9])
    with pytest.raises(DomainError, match="is a street"):
        grids_generate(community=street, area_m2=10_000)
    with pytest.raises(DomainError, match="exactly one"):
        grids_generate(community=community)
    with pytest.raises(DomainError, match="at most 999"):
        grids_generate(community=community, area_m2=100)
    with pytest.raises(DomainError, match="no region"):
        grids_generate(community="320113005099", area_m2=10_000)
    bare = make_region("320113005002")
    with pytest.raises(DomainError, match="no outline"):
        grids_generate(community=bare, area_m2=10_000)
    empty = make_region("320113005003", geometry=rect(2000, 0, 2100, 100))
    with pytest.raises(DomainError, match="cut by area"):
        grids_generate(community=empty, households_per_grid=300)


@pytest.mark.django_db
def test_the_command_prints_the_grids_and_the_checks(
    community: Region, capsys: pytest.CaptureFixture[str], english: None
) -> None:
    call_command(
        "grids", "generate", "--community", CODE, "--households-per-grid", "300", "--dry-run"
    )
    out = capsys.readouterr().out
    assert f"{CODE}001" in out and f"{CODE}010" in out
    assert "no overlaps, no gaps" in out and "not saved" in out
    call_command("grids", "generate", "--community", CODE, "--area-m2", "50000")
    assert "saved" in capsys.readouterr().out
    with pytest.raises(CommandError, match="already has"):
        call_command("grids", "generate", "--community", CODE, "--area-m2", "50000")


@pytest.mark.django_db
@pytest.mark.skipif(
    importlib.util.find_spec("gridgov.geo.spatial") is None, reason="spatial index not there yet"
)
def test_locate_finds_a_generated_grid(
    community: Region, capsys: pytest.CaptureFixture[str], english: None
) -> None:
    grids_generate(community=community, households_per_grid=300)
    lon, lat = metres(25, 475)  # the north-west corner: grid 001
    call_command("regions", "locate", "--lat", str(lat), "--lon", str(lon))
    out = capsys.readouterr().out
    assert f"{CODE}001" in out and CODE[:9] in out
    with pytest.raises(CommandError, match="nearest grid"):
        call_command("regions", "locate", "--lat", "31.0", "--lon", "118.0")
