"""The demo district: real codes and names, a tiling of the district, grids, units, accounts.

One small demo (6,000 households) is loaded once for the module inside a transaction that is
rolled back at the end; every test reads it (each in its own savepoint).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest
import shapely
from django.core.management import call_command
from django.db import transaction
from shapely.geometry import Polygon, shape

from gridgov.accounts.models import Role, RoleAssignment, Unit, UnitKind, User
from gridgov.core import demo
from gridgov.geo.checks import GAP, OVERLAP, check_children, check_grids
from gridgov.geo.geometry import geodesic_area, region_fields_from_geometry
from gridgov.geo.gridgen import cut_community
from gridgov.geo.models import Level, Region
from gridgov.registry.models import Building

HOUSEHOLDS = 6_000
SEED = 7


@pytest.fixture(scope="module")
def loaded(django_db_setup: Any, django_db_blocker: Any) -> Iterator[demo.DemoResult]:
    with django_db_blocker.unblock(), transaction.atomic():
        result = demo.demo_load(households=HOUSEHOLDS, seed=SEED)
        yield result
        transaction.set_rollback(True)


@pytest.fixture(scope="module")
def plan() -> demo.DemoPlan:
    """The same demo, planned in memory (no database)."""
    return demo.demo_plan(households=HOUSEHOLDS, seed=SEED)


@pytest.fixture
def d(loaded: demo.DemoResult, db: None) -> demo.DemoResult:
    return loaded


def _csv_rows() -> list[dict[str, str]]:
    with demo.DIVISIONS_PATH.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _shapes(level: str, under: str = "") -> dict[str, Any]:
    return {
        r.code: shape(r.geometry)
        for r in Region.objects.filter(level=level, code__startswith=under).order_by("code")
    }


def test_it_reports_what_it_loaded(d: demo.DemoResult) -> None:
    assert d.loaded
    assert d.counts["households"] == HOUSEHOLDS
    assert d.counts["buildings"] == Building.objects.count()
    assert d.counts["grids"] == Region.objects.filter(level=Level.GRID).count()
    assert demo.demo_loaded() == SEED


def test_streets_and_communities_have_the_real_codes_and_names(d: demo.DemoResult) -> None:
    rows = _csv_rows()
    for level, count in (("street", 21), ("community", 142)):
        expected = {r["code"]: (r["name"], r["parent_code"]) for r in rows if r["level"] == level}
        assert len(expected) == count
        stored = {
            code: (name, parent)
            for code, name, parent in Region.objects.filter(level=level).values_list(
                "code", "name", "parent__code"
            )
        }
        assert stored == expected
    district = Region.objects.get(code="320113")
    assert (district.name, district.level) == ("栖霞区", Level.DISTRICT)


def test_the_district_keeps_its_real_outline_repaired(d: demo.DemoResult) -> None:
    district = shape(Region.objects.get(code="320113").geometry)
    raw = demo.read_outline()
    assert not raw.is_valid  # invalid as given ...
    assert district.is_valid  # ... stored repaired
    repaired = geodesic_area(shapely.make_valid(raw))
    assert geodesic_area(district) == pytest.approx(repaired, rel=1e-4)
    assert 380e6 < geodesic_area(district) < 400e6


@pytest.mark.parametrize("level", ["street", "community"])
def test_streets_and_communities_tile_the_district(d: demo.DemoResult, level: str) -> None:
    district = shape(Region.objects.get(code="320113").geometry)
    parts = _shapes(level)
    assert all(isinstance(p, Polygon) and p.is_valid and not p.is_empty for p in parts.values())
    union = shapely.union_all(list(parts.values()))
    assert geodesic_area(union) == pytest.approx(geodesic_area(district), rel=0.005)
    problems = check_children(district, list(parts.items()))
    assert [p for p in problems if p.kind == OVERLAP] == []
    assert [p for p in problems if p.kind not in (OVERLAP, GAP)] == []  # nothing outside
    # the only gap: the repair's two pieces that touch the outline at a single point
    assert sum(p.share for p in problems if p.kind == GAP) < 0.001


def test_each_street_is_tiled_by_its_communities(d: demo.DemoResult) -> None:
    communities = _shapes("community")
    for code, street in _shapes("street").items():
        children = [(c, g) for c, g in communities.items() if c.startswith(code)]
        assert check_children(street, children, parent_code=code) == [], code


def test_every_grid_has_a_15_digit_code_under_its_community_and_a_valid_polygon(
    d: demo.DemoResult,
) -> None:
    grids = list(
        Region.objects.filter(level=Level.GRID).values_list(
            "code", "parent__code", "parent__level", "geometry", "responsible_unit__code"
        )
    )
    assert grids
    assert len({parent for _, parent, _, _, _ in grids}) == 142
    for code, parent, parent_level, geometry, unit in grids:
        assert len(code) == 15 and code.isdigit()
        assert parent_level == Level.COMMUNITY and code[:12] == parent
        polygon = shape(geometry)
        assert isinstance(polygon, Polygon) and polygon.is_valid, code
        assert unit == demo.unit_code("320113", f"community-{parent}")


def test_the_grids_of_each_community_tile_it(d: demo.DemoResult) -> None:
    grids = _shapes("grid")
    for code, community in _shapes("community").items():
        mine = [(c, g) for c, g in grids.items() if c.startswith(code)]
        assert check_grids(community, mine, community_code=code) == [], code


def test_buildings_lie_in_their_community_and_grid(d: demo.DemoResult, plan: demo.DemoPlan) -> None:
    buildings = list(Building.objects.select_related("grid"))
    assert sum(b.households for b in buildings) == HOUSEHOLDS
    communities = _shapes("community")
    for b in buildings:
        assert b.grid is not None and b.grid.code.startswith(b.community_code)
        assert communities[b.community_code].intersects(shapely.Point(b.lon, b.lat))
        assert b.address.startswith("南京市栖霞区") and b.address.endswith(b.number)
        assert b.households > 0 and b.floors
    # dense old town, sparse villages
    per_km2 = {}
    for kind in ("dense", "village"):
        codes = [c for c, k in plan.kinds.items() if k == kind]
        area = sum(geodesic_area(communities[c]) for c in codes) / 1e6
        per_km2[kind] = sum(b.households for b in buildings if b.community_code in codes) / area
    assert per_km2["dense"] > 20 * per_km2["village"]


def test_units_serve_their_regions(d: demo.DemoResult) -> None:
    for street in Region.objects.filter(level=Level.STREET):
        office = Unit.objects.get(kind=UnitKind.STREET_OFFICE, regions=street)
        assert street.responsible_unit == office
    for community in Region.objects.filter(level=Level.COMMUNITY):
        committee = Unit.objects.get(kind=UnitKind.COMMUNITY_COMMITTEE, regions=community)
        assert community.responsible_unit == committee
        grids = Region.objects.filter(parent=community)
        assert not grids.exclude(responsible_unit=committee).exists()
    departments = Unit.objects.filter(kind=UnitKind.CITY_DEPARTMENT)
    assert {"栖霞区城市管理局", "栖霞区住房和城乡建设局"} <= {u.name for u in departments}
    assert all(list(u.regions.values_list("code", flat=True)) == ["320113"] for u in departments)
    assert Unit.objects.filter(kind=UnitKind.UTILITY).exists()
    assert Unit.objects.filter(kind=UnitKind.PROPERTY_COMPANY).exists()


def test_every_role_has_a_demo_account(d: demo.DemoResult, settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]  # as loaded
    rows = demo.demo_accounts()
    assert {r["role"] for r in rows} == set(Role.values)
    assert all(r["password"] == demo.DEMO_PASSWORD for r in rows)
    users = list(User.objects.filter(username__in=[u for u, _, _ in demo.DEMO_USERS]))
    assert len(users) == len(demo.DEMO_USERS)
    assert len({u.password for u in users}) == 1  # one password, hashed once
    assert users[0].check_password(demo.DEMO_PASSWORD)
    for user in users:
        assert user.display_name
        assert user.work_phone.startswith("139") and len(user.work_phone) == 11
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff

    def where(username: str) -> RoleAssignment:
        return RoleAssignment.objects.select_related("region", "unit").get(user__username=username)

    community = demo.DEMO_COMMUNITY
    first, second = where("gridworker").region, where("gridworker2").region
    assert first is not None and second is not None
    assert first.code == community + "001" and second.code.startswith(community)
    assert second.code != first.code
    shared = shapely.intersection(shape(first.geometry).boundary, shape(second.geometry).boundary)
    assert shared.length > 0  # neighbours
    assert where("gridleader").region == Region.objects.get(code=community)
    assert where("resident").region == Region.objects.get(code=community)
    assert where("supervisor").region == Region.objects.get(code=community[:9])
    for username in ("leader", "intake", "shiftleader", "dispatcher"):
        assert where(username).region == Region.objects.get(code="320113")
    assert where("handler2").unit == Region.objects.get(code=community).responsible_unit
    handler = where("handler").unit
    assert handler is not None and handler.kind == UnitKind.CITY_DEPARTMENT


def test_a_second_load_adds_nothing(d: demo.DemoResult) -> None:
    def counts() -> tuple[int, ...]:
        return (
            Region.objects.count(),
            Building.objects.count(),
            User.objects.count(),
            Unit.objects.count(),
            RoleAssignment.objects.count(),
        )

    before = counts()
    again = demo.demo_load(households=HOUSEHOLDS, seed=SEED)
    assert not again.loaded and "already loaded" in again.message
    out = io.StringIO()
    call_command("demo", "load", "--households", "2000", stdout=out)
    assert "already loaded" in out.getvalue()
    assert counts() == before


def test_the_accounts_command_prints_the_logins(d: demo.DemoResult) -> None:
    out = io.StringIO()
    call_command("demo", "accounts", stdout=out)
    text = out.getvalue()
    assert "gridworker2" in text and demo.DEMO_PASSWORD in text and "320113003001001" in text


def test_the_database_holds_the_plan(d: demo.DemoResult, plan: demo.DemoPlan) -> None:
    for code, polygon in plan.polygons.items():
        stored = Region.objects.get(code=code).geometry
        assert stored == region_fields_from_geometry(polygon)["geometry"], code
    assert len(plan.buildings) == Building.objects.count()


def test_the_plan_is_deterministic_for_a_seed(plan: demo.DemoPlan) -> None:
    first = plan
    second = demo.demo_plan(households=HOUSEHOLDS, seed=SEED)
    other = demo.demo_plan(households=HOUSEHOLDS, seed=SEED + 1)
    assert first.polygons.keys() == second.polygons.keys()
    assert all(first.polygons[c].equals_exact(second.polygons[c], 0) for c in first.polygons)
    assert first.buildings == second.buildings
    assert first.buildings != other.buildings
    assert any(not first.polygons[c].equals(other.polygons[c]) for c in first.polygons)
    # and so are the grids cut from it
    code = demo.DEMO_COMMUNITY
    mine = [b for b in first.buildings if b.community_code == code]
    points = [(b.lon, b.lat) for b in mine]
    weights = [b.households for b in mine]
    cuts = [
        cut_community(p.polygons[code], points=points, weights=weights, households_per_grid=300)
        for p in (first, second)
    ]
    assert len(cuts[0]) >= 3
    assert [g.wkb for g in cuts[0]] == [g.wkb for g in cuts[1]]
