"""GET/POST /api/v1/geo/locate: the grid of a point, its ancestors, and a clear 404 outside."""

from __future__ import annotations

from django.test import Client

from gridgov.accounts import actions
from gridgov.geo.crs import wgs84_to_gcj02
from gridgov.geo.index import grid_index, grids_changed
from gridgov.geo.models import Region
from tests.world import World


def api(world: World, persona: str = "grid_worker_a") -> Client:
    """An API client with a token; it asks for English, the language the assertions read."""
    _, raw = actions.token_create(user=world.users[persona], name="test")
    return Client(headers={"Authorization": f"Bearer {raw}", "Accept-Language": "en"})


def test_a_point_in_grid_a_answers_grid_a_and_its_ancestors(world: World) -> None:
    response = api(world).get("/api/v1/geo/locate", {"lat": 32.05, "lon": 118.82})
    assert response.status_code == 200
    body = response.json()
    assert body["grid"]["code"] == world.grid_a.code
    assert [a["code"] for a in body["ancestors"]] == ["320113", "320113003", "320113003001"]


def test_a_gcj02_point_is_converted_before_the_look_up(world: World) -> None:
    # a WGS-84 point just west of the A|B border; in GCJ-02 it reads as lying in B
    wgs = (118.8495, 32.05)
    gcj = wgs84_to_gcj02(*wgs)
    assert gcj[0] > 118.85
    plain = api(world).get("/api/v1/geo/locate", {"lat": gcj[1], "lon": gcj[0]}).json()
    declared = (
        api(world).get("/api/v1/geo/locate", {"lat": gcj[1], "lon": gcj[0], "crs": "gcj02"}).json()
    )
    assert plain["grid"]["code"] == world.grid_b.code
    assert declared["grid"]["code"] == world.grid_a.code


def test_a_point_outside_every_grid_names_the_nearest_grid_and_its_distance(world: World) -> None:
    response = api(world).get("/api/v1/geo/locate", {"lat": 32.05, "lon": 119.01})
    assert response.status_code == 404
    body = response.json()
    assert body["detail"]["nearest"]["code"] == world.grid_d.code
    assert 800 < body["detail"]["distance_m"] < 1000  # 0.01° of longitude at 32°N ≈ 944 m
    assert world.grid_d.code in body["message"] and "m away" in body["message"]


def test_coordinates_out_of_range_or_not_numbers_are_refused_with_a_message(world: World) -> None:
    client = api(world)
    for params in (
        {"lat": 91, "lon": 118},
        {"lat": "nan", "lon": 118},
        {"lat": "north", "lon": 118},
        {"lat": 32, "lon": 181},
        {"lat": 32, "lon": "inf"},
    ):
        response = client.get("/api/v1/geo/locate", params)
        assert response.status_code == 422, params
        assert response.json()["message"]


def test_an_unknown_crs_is_refused(world: World) -> None:
    response = api(world).get("/api/v1/geo/locate", {"lat": 32.05, "lon": 118.82, "crs": "bd09"})
    assert response.status_code == 422


def test_many_points_are_located_in_one_request(world: World) -> None:
    points = [
        {"lat": 32.05, "lon": 118.82},
        {"lat": 32.05, "lon": 118.88},
        {"lat": 40.0, "lon": 100.0},
    ]
    response = api(world).post(
        "/api/v1/geo/locate", {"points": points}, content_type="application/json"
    )
    assert response.status_code == 200
    assert response.json()["grids"] == [world.grid_a.code, world.grid_b.code, None]


def test_too_many_points_in_one_request_are_refused(world: World, settings: object) -> None:
    settings.GRIDGOV_LOCATE_BULK_MAX = 2  # type: ignore[attr-defined]
    points = [{"lat": 32.05, "lon": 118.82}] * 3
    response = api(world).post(
        "/api/v1/geo/locate", {"points": points}, content_type="application/json"
    )
    assert response.status_code == 413
    assert "at most 2" in response.json()["message"]


def test_an_anonymous_caller_must_authenticate(world: World) -> None:
    response = Client().get("/api/v1/geo/locate", {"lat": 32.05, "lon": 118.82})
    assert response.status_code == 401


def test_the_index_notices_a_changed_grid_through_the_version_stamp(
    world: World, settings: object
) -> None:
    settings.GRIDGOV_INDEX_CHECK_SECONDS = 0  # type: ignore[attr-defined]
    before = grid_index()
    assert before.locate(118.82, 32.05) == world.grid_a.code
    # another process moves grid A away: only the stamp tells this process
    geometry = {
        "type": "Polygon",
        "coordinates": [[[118.6, 31.6], [118.65, 31.6], [118.65, 31.65], [118.6, 31.6]]],
    }
    Region.objects.filter(pk=world.grid_a.pk).update(geometry=geometry)
    grids_changed()
    after = grid_index()
    assert after.version > before.version
    assert after.locate(118.82, 32.05) is None


def test_a_grid_no_longer_in_force_is_not_found(world: World, english: None) -> None:
    from datetime import timedelta

    from django.utils import timezone

    yesterday = timezone.localdate() - timedelta(days=1)
    Region.objects.filter(pk=world.grid_a.pk).update(valid_to=yesterday)
    grids_changed()
    response = api(world).get(
        "/api/v1/geo/locate", {"lat": 32.05, "lon": 118.82}, headers={"Accept-Language": "en"}
    )
    assert response.status_code == 404
    assert response.json()["detail"]["nearest"]["code"] == world.grid_b.code


def test_a_grid_not_yet_in_force_is_not_found(world: World) -> None:
    from datetime import timedelta

    from django.utils import timezone

    Region.objects.filter(pk=world.grid_a.pk).update(
        valid_from=timezone.localdate() + timedelta(days=1)
    )
    grids_changed()
    assert grid_index().locate(118.82, 32.05) is None
