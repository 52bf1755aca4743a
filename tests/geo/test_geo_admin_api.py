"""Administrator endpoints for polygons and grids, and the admin "Generate grids" page."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from gridgov.accounts.models import Role
from gridgov.geo.models import Region
from tests.geo.factories import (
    collection,
    feature,
    grid_points,
    make_buildings,
    make_region,
    make_user,
    rect,
)
from tests.world import World

IMPORT = "/api/v1/geo/regions/import"
EXPORT = "/api/v1/geo/regions/export"
PREVIEW = "/api/v1/geo/grids/preview"
GENERATE = "/api/v1/geo/grids/generate"
NEW = "320113003009"  # a community of the world's street 320113003 without grids


def client_for(user: Any) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")  # the assertions read the English messages
    if user is not None:
        client.force_login(user)
    return client


def upload(client: Client, data: Any, name: str = "grids.geojson", **fields: Any) -> Any:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    file = SimpleUploadedFile(name, raw, content_type="application/geo+json")
    return client.post(IMPORT, {"file": file, **fields})


@pytest.fixture
def new_community(world: World) -> Region:
    region = make_region(NEW, "新社区", geometry=rect(0, 0, 600, 400))
    make_buildings(NEW, grid_points(0, 0, 600, 400, step=40), households=20)  # 150 × 20
    return region


def grid_file() -> dict[str, Any]:
    return collection(
        feature(f"{NEW}001", rect(0, 0, 300, 400), name="西"),
        feature(f"{NEW}002", rect(300, 0, 600, 400), name="东"),
    )


@pytest.mark.django_db
def test_an_administrator_imports_a_geojson_upload(world: World, new_community: Region) -> None:
    response = upload(client_for(world.admin), grid_file())
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["summary"]["added"] == 2 and body["summary"]["written"] is True
    assert Region.objects.filter(code__startswith=NEW, level="grid").count() == 2


@pytest.mark.django_db
def test_form_fields_set_dry_run_and_strict(world: World, new_community: Region) -> None:
    response = upload(client_for(world.admin), grid_file(), dry_run="true")
    assert response.status_code == 200 and response.json()["summary"]["written"] is False
    assert not Region.objects.filter(code__startswith=NEW, level="grid").exists()
    half = collection(feature(f"{NEW}001", rect(0, 0, 300, 400)))
    strict = upload(client_for(world.admin), half, strict="true")
    assert strict.status_code == 422
    assert "strict" in " ".join(strict.json()["detail"]["errors"])


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["leader", "supervisor", "grid_worker_a", "nobody"])
def test_people_who_are_not_administrators_may_not_import(
    world: World, persona: str, new_community: Region
) -> None:
    response = upload(client_for(getattr(world, persona)), grid_file())
    assert response.status_code == 403
    assert "administrators" in response.json()["message"]
    assert not Region.objects.filter(code__startswith=NEW, level="grid").exists()


@pytest.mark.django_db
def test_an_anonymous_upload_is_refused(world: World) -> None:
    assert upload(client_for(None), grid_file()).status_code == 401


@pytest.mark.django_db
def test_an_upload_that_is_not_json_is_a_400_naming_the_problem(world: World) -> None:
    response = upload(client_for(world.admin), b"code,name\n1,2\n", name="grids.csv")
    assert response.status_code == 400
    assert response.json()["message"].startswith(
        "the file is not valid JSON: Expecting value at line 1"
    )


@pytest.mark.django_db
def test_an_upload_over_the_size_cap_is_a_413(world: World, settings: Any) -> None:
    settings.GRIDGOV_UPLOAD_MAX_BYTES = 100
    response = upload(client_for(world.admin), grid_file())
    assert response.status_code == 413
    assert "at most 100 bytes" in response.json()["message"]


@pytest.mark.django_db
def test_an_upload_with_errors_is_a_422_with_the_report(
    world: World, new_community: Region
) -> None:
    bad = collection(
        feature(f"{NEW}001", {"type": "Point", "coordinates": [118.9, 32.1]}),
        feature(f"{NEW}002", rect(300, 0, 600, 400)),
    )
    response = upload(client_for(world.admin), bad)
    assert response.status_code == 422
    body = response.json()
    assert "1 error; nothing was written" in body["message"]
    features = body["detail"]["features"]
    assert features[0]["status"] == "error" and "Point" in features[0]["problems"][0]
    assert features[1]["status"] == "added"
    assert not Region.objects.filter(code__startswith=NEW, level="grid").exists()


@pytest.mark.django_db
def test_a_regional_administrator_may_import_only_inside_their_region(
    world: World, new_community: Region
) -> None:
    street_admin = make_user(
        "street-admin", role=Role.ADMINISTRATOR, region=world.regions["320113005"]
    )
    response = upload(client_for(street_admin), grid_file())
    assert response.status_code == 403 and NEW in response.json()["message"]
    local_admin = make_user(
        "local-admin", role=Role.ADMINISTRATOR, region=world.regions["320113003"]
    )
    assert upload(client_for(local_admin), grid_file()).status_code == 200


@pytest.mark.django_db
def test_the_export_is_for_administrators_and_scoped(world: World) -> None:
    everything = client_for(world.admin).get(EXPORT, {"level": "grid"})
    assert everything.status_code == 200
    codes = [f["properties"]["code"] for f in everything.json()["features"]]
    assert "320114001001001" in codes and "320113003001001" in codes
    street_admin = make_user(
        "street-admin", role=Role.ADMINISTRATOR, region=world.regions["320113005"]
    )
    scoped = client_for(street_admin).get(EXPORT, {"level": "grid"})
    assert [f["properties"]["code"] for f in scoped.json()["features"]] == ["320113005001001"]
    assert client_for(world.leader).get(EXPORT).status_code == 403


@pytest.mark.django_db
def test_a_preview_proposes_grids_and_saves_nothing(world: World, new_community: Region) -> None:
    response = client_for(world.admin).post(
        PREVIEW, {"community": NEW, "households_per_grid": 600}, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["type"] == "FeatureCollection" and len(body["features"]) == 5
    props = body["features"][0]["properties"]
    assert props["code"] == f"{NEW}001" and props["households"] > 0 and props["area_m2"] > 0
    assert body["checks"] == [] and body["summary"]["saved"] is False
    assert not Region.objects.filter(code__startswith=NEW, level="grid").exists()


@pytest.mark.django_db
def test_generate_saves_the_grids(world: World, new_community: Region) -> None:
    response = client_for(world.admin).post(
        GENERATE, {"community": NEW, "area_m2": 60_000}, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["summary"]["saved"] is True
    assert Region.objects.filter(code__startswith=NEW, level="grid").count() == 4


@pytest.mark.django_db
def test_generating_over_existing_grids_is_a_409_naming_them(world: World) -> None:
    response = client_for(world.admin).post(
        GENERATE,
        {"community": "320113003001", "area_m2": 1_000_000, "replace": True},
        content_type="application/json",
    )
    assert response.status_code == 409
    assert "Grid Worker A (grid_worker_a)" in response.json()["message"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "payload",
    [
        '{"community": "320113003009", "area_m2": NaN}',
        '{"community": "320113003009", "area_m2": -5}',
        '{"community": "3201", "area_m2": 100}',
        '{"community": "320113003009"}',
        '{"community": "320113003009", "households_per_grid": 300, "area_m2": 100}',
        "not json",
    ],
)
def test_hostile_generation_requests_are_4xx_with_a_message(
    world: World, new_community: Region, payload: str
) -> None:
    response = client_for(world.admin).post(PREVIEW, payload, content_type="application/json")
    assert 400 <= response.status_code < 500
    assert response.json()["message"]


@pytest.mark.django_db
def test_only_an_administrator_of_the_community_may_preview(
    world: World, new_community: Region
) -> None:
    for persona in ("leader", "grid_leader", "nobody"):
        response = client_for(getattr(world, persona)).post(
            PREVIEW, {"community": NEW, "area_m2": 60_000}, content_type="application/json"
        )
        assert response.status_code == 403
    elsewhere = make_user("far-admin", role=Role.ADMINISTRATOR, region=world.regions["320114"])
    response = client_for(elsewhere).post(
        PREVIEW, {"community": NEW, "area_m2": 60_000}, content_type="application/json"
    )
    assert response.status_code == 403


# --- the admin page ---------------------------------------------------------------------------


def page_url(region: Region) -> str:
    return reverse("admin:geo_region_generate_grids", args=[region.pk])


@pytest.mark.django_db
def test_the_admin_page_previews_on_a_map_and_saves(world: World, new_community: Region) -> None:
    client = client_for(world.admin)
    change = client.get(reverse("admin:geo_region_change", args=[new_community.pk]))
    assert page_url(new_community) in change.content.decode()
    page = client.get(page_url(new_community))
    assert page.status_code == 200
    assert 'name="households_per_grid"' in page.content.decode()
    preview = client.post(page_url(new_community), {"households_per_grid": "600", "_preview": "1"})
    html = preview.content.decode()
    assert preview.status_code == 200
    assert "vendor/leaflet/leaflet.js" in html and "vendor/leaflet/leaflet.css" in html
    assert f"{NEW}005" in html and 'id="gridgen-preview"' in html and 'name="_save"' in html
    assert "gridgov/gridgen-preview.js" in html
    # no inline script (a strict content security policy): code comes from static files only
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    assert not Region.objects.filter(code__startswith=NEW, level="grid").exists()
    saved = client.post(page_url(new_community), {"households_per_grid": "600", "_save": "1"})
    assert saved.status_code == 302
    assert Region.objects.filter(code__startswith=NEW, level="grid").count() == 5


@pytest.mark.django_db
def test_the_admin_page_shows_form_errors_and_blockers(world: World) -> None:
    client = client_for(world.admin)
    community = world.regions["320113003001"]
    both = client.post(
        page_url(community), {"households_per_grid": "600", "area_m2": "100", "_preview": "1"}
    )
    assert "Give either households per grid or area per grid." in both.content.decode()
    blocked = client.post(page_url(community), {"area_m2": "2000000", "_preview": "1"})
    html = blocked.content.decode()
    assert "already has 2 grids" in html and 'name="_save"' not in html


@pytest.mark.django_db
def test_the_admin_page_is_refused_to_staff_who_are_not_administrators(
    world: World, new_community: Region
) -> None:
    staff = make_user("clerk", role=Role.LEADER, region=world.regions["320113"])
    staff.is_staff = True
    staff.save()
    staff.user_permissions.add(
        *Permission.objects.filter(codename__in=["change_region", "view_region"])
    )
    response = client_for(staff).get(page_url(new_community))
    assert response.status_code == 403


@pytest.mark.django_db
def test_the_admin_page_sends_a_street_back_to_its_change_page(world: World) -> None:
    street = world.regions["320113003"]
    response = client_for(world.admin).get(page_url(street))
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:geo_region_change", args=[street.pk])


@pytest.mark.django_db
def test_an_import_without_a_file_is_refused_to_others_before_asking_for_it(world: World) -> None:
    assert client_for(world.leader).post(IMPORT, {}).status_code == 403
    response = client_for(world.admin).post(IMPORT, {})
    assert response.status_code == 400 and "'file'" in response.json()["message"]
