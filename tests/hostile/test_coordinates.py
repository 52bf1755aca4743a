"""Coordinates that are no place on Earth: out of range, NaN, Infinity, text, one of the pair
missing, through every endpoint that takes a point (the case report, the grid look-up by GET and
in bulk, the registry's buildings, organisations and components, and the report's web form).
Each is a 4xx whose message names the problem, and nothing is stored."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from gridgov.cases.models import Case
from gridgov.registry.models import Building, Component, Organisation
from tests.cases.factories import IN_GRID_A, category
from tests.hostile.conftest import ApiClient, assert_nothing_stored, assert_refused
from tests.world import World

pytestmark = pytest.mark.django_db

LAT, LON = IN_GRID_A

#: (id, JSON text of the lat, JSON text of the lon, a word the message holds). ``None``: left out.
BAD_POINTS: list[tuple[str, str | None, str | None, str]] = [
    ("lat-91", "91", str(LON), "lat"),
    ("lat-minus-91", "-91", str(LON), "lat"),
    ("lon-181", str(LAT), "181", "lon"),
    ("lon-minus-180.5", str(LAT), "-180.5", "lon"),
    ("lat-NaN-literal", "NaN", str(LON), "NaN"),
    ("lon-Infinity-literal", str(LAT), "Infinity", "Infinity"),
    ("lat-minus-Infinity-literal", "-Infinity", str(LON), "Infinity"),
    ("lat-NaN-as-text", '"NaN"', str(LON), "finite"),
    ("lon-inf-as-text", str(LAT), '"inf"', "finite"),
    ("lat-1e400", "1e400", str(LON), "finite"),
    ("lat-as-words", '"north"', str(LON), "lat"),
    ("lon-empty-text", str(LAT), '""', "lon"),
    ("lat-null", "null", str(LON), "lat"),
    ("lat-true", "true", str(LON), "lat"),
    ("lat-list", "[32.05]", str(LON), "lat"),
    ("lat-missing", None, str(LON), "lat"),
    ("lon-missing", str(LAT), None, "lon"),
]
IDS = [p[0] for p in BAD_POINTS]


def body_with(point: tuple[str | None, str | None], fields: dict[str, Any]) -> str:
    """A JSON body with ``fields`` and the raw lat/lon texts (NaN and Infinity as written)."""
    parts = [f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in fields.items()]
    lat, lon = point
    if lat is not None:
        parts.append(f'"lat": {lat}')
    if lon is not None:
        parts.append(f'"lon": {lon}')
    return "{" + ", ".join(parts) + "}"


def refused_naming(response: Any, word: str) -> None:
    assert_refused(response, (400, 422))
    message = response.json()["message"].lower()
    assert word.lower() in message or "finite" in message or "number" in message, message


@pytest.mark.parametrize(("label", "lat", "lon", "word"), BAD_POINTS, ids=IDS)
def test_a_case_report_at_no_place_is_refused(
    world: World, api: Callable[[str], ApiClient], label: str, lat: Any, lon: Any, word: str
) -> None:
    category()
    body = body_with((lat, lon), {"category": "01002", "description": "井盖缺失"})
    with assert_nothing_stored(Case):
        r = api("grid_worker_a").post("/api/v1/cases", body, content_type="application/json")
    refused_naming(r, word)


@pytest.mark.parametrize(
    ("label", "lat", "lon", "word"),
    [p for p in BAD_POINTS if p[1] != "null" and "literal" not in p[0] and "list" not in p[0]],
    ids=[
        p[0] for p in BAD_POINTS if p[1] != "null" and "literal" not in p[0] and "list" not in p[0]
    ],
)
def test_a_grid_look_up_of_no_place_is_refused(
    world: World, api: Callable[[str], ApiClient], label: str, lat: Any, lon: Any, word: str
) -> None:
    query = {}
    if lat is not None:
        query["lat"] = json.loads(lat) if lat.startswith('"') else lat
    if lon is not None:
        query["lon"] = json.loads(lon) if lon.startswith('"') else lon
    r = api("grid_worker_a").get("/api/v1/geo/locate", query)
    refused_naming(r, word)


@pytest.mark.parametrize(("label", "lat", "lon", "word"), BAD_POINTS, ids=IDS)
def test_a_bulk_grid_look_up_with_one_point_at_no_place_is_refused_whole(
    world: World, api: Callable[[str], ApiClient], label: str, lat: Any, lon: Any, word: str
) -> None:
    good = f'{{"lat": {LAT}, "lon": {LON}}}'
    bad = body_with((lat, lon), {})
    body = f'{{"points": [{good}, {bad}]}}'
    r = api("grid_worker_a").post("/api/v1/geo/locate", body, content_type="application/json")
    refused_naming(r, word)


@pytest.mark.parametrize(("label", "lat", "lon", "word"), BAD_POINTS, ids=IDS)
def test_a_building_at_no_place_is_refused(
    world: World, api: Callable[[str], ApiClient], label: str, lat: Any, lon: Any, word: str
) -> None:
    body = body_with((lat, lon), {"estate": "和畅园", "number": "1栋"})
    with assert_nothing_stored(Building):
        r = api("grid_worker_a").post(
            "/api/v1/registry/buildings", body, content_type="application/json"
        )
    refused_naming(r, word)


@pytest.mark.parametrize(
    ("label", "lat", "lon", "word"),
    [
        p
        for p in BAD_POINTS
        if p[0] in ("lat-91", "lon-181", "lat-NaN-as-text", "lat-as-words", "lon-missing")
    ],
    ids=["lat-91", "lon-181", "lat-NaN-as-text", "lat-as-words", "lon-missing"],
)
def test_an_organisation_or_component_at_no_place_is_refused(
    world: World, api: Callable[[str], ApiClient], label: str, lat: Any, lon: Any, word: str
) -> None:
    category("01002")
    client = api("grid_worker_a")
    with assert_nothing_stored(Organisation, Component):
        r = client.post(
            "/api/v1/registry/organisations",
            body_with((lat, lon), {"name": "和畅便利店", "kind": "company"}),
            content_type="application/json",
        )
        # an organisation may have no point at all, but never half of one or a bad one
        refused_naming(r, word)
        r = client.post(
            "/api/v1/registry/components",
            body_with((lat, lon), {"code": "32011301002000001", "category": "01002"}),
            content_type="application/json",
        )
        refused_naming(r, word)


@pytest.mark.parametrize(
    ("lat", "lon"),
    [
        ("91", str(LON)),
        (str(LAT), "181"),
        ("NaN", str(LON)),
        ("inf", str(LON)),
        ("north", str(LON)),
        (str(LAT), ""),
    ],
    ids=["lat-91", "lon-181", "lat-NaN", "lat-inf", "lat-as-words", "lon-missing"],
)
def test_the_web_report_form_at_no_place_is_refused_with_the_form(
    world: World, web: Any, lat: str, lon: str
) -> None:
    category()
    with assert_nothing_stored(Case):
        response = web("grid_worker_a").post(
            "/cases/report/",
            {
                "token": uuid.uuid4().hex,
                "category": "gbt47678:01002",
                "description": "井盖缺失",
                "urgency": "normal",
                "lat": lat,
                "lon": lon,
            },
        )
    assert response.status_code == 422
    assert (
        'class="field__error' in response.content.decode()
        or "errorlist" in response.content.decode()
    )


def test_a_point_far_from_every_grid_is_a_404_naming_the_nearest_grid(
    world: World, api: Callable[[str], ApiClient]
) -> None:
    """(0, 0) is a valid point in the Gulf of Guinea, in no grid: refused, not stored."""
    category()
    with assert_nothing_stored(Case):
        r = api("grid_worker_a").post_json(
            "/api/v1/cases", {"category": "01002", "description": "x", "lat": 0, "lon": 0}
        )
    assert_refused(r, (404, 422), "grid")
    r = api("grid_worker_a").get("/api/v1/geo/locate", {"lat": 0, "lon": 0})
    assert_refused(r, 404, "nearest")
