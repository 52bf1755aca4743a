"""Registry statistics through the API: per grid and community, within scope and clearance."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.test import Client

from gridgov.registry import actions
from tests.registry.factories import IN_GRID_B, home, id_number, person
from tests.world import World

pytestmark = pytest.mark.django_db

API = "/api/v1/registry/stats"


def client_of(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def residents(world: World) -> None:
    """Two people in grid A (one floating, one tagged as a key person) and one in grid B."""
    h = home(world.grid_worker_a)
    elder = person(
        world.grid_worker_a,
        household=h,
        name="老王",
        id_number=id_number(date(1940, 5, 1)),
        tags=["elderly_alone"],
    )
    actions.person_tag_add(actor=world.grid_worker_a, person=elder, tag="community_correction")
    person(world.grid_worker_a, household=h, name="小李", person_type="floating")
    person(world.grid_worker_b, household=home(world.grid_worker_b, where=IN_GRID_B), name="张")


def counts(rows: list[dict[str, Any]], key: str = "key") -> dict[str, int]:
    return {row[key]: row["count"] for row in rows}


def test_a_grid_worker_reads_the_figures_of_their_grid(world: World, residents: None) -> None:
    r = client_of(world.grid_worker_a).get(f"{API}?region={world.grid_a.code}")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["region"]["code"] == world.grid_a.code and body["totals"]["people"] == 2
    assert counts(body["population_by_type"]) == {"registered": 1, "floating": 1, "overseas": 0}
    assert counts(body["tags"], "code")["community_correction"] == 1
    assert (
        sum(b["male"] + b["female"] + b["unknown"] for b in body["age_pyramid"])
        + body["age_unknown"]
        == 2
    )
    assert body["by_region"] == []


def test_a_grid_leader_reads_their_community_grid_by_grid(world: World, residents: None) -> None:
    body = client_of(world.grid_leader).get(f"{API}?region=320113003001").json()
    assert body["totals"]["people"] == 3
    assert {r["code"]: r["people"] for r in body["by_region"]} == {
        world.grid_a.code: 2,
        world.grid_b.code: 1,
    }


def test_a_grid_worker_of_grid_b_cannot_read_grid_a_nor_the_community(
    world: World, residents: None
) -> None:
    api = client_of(world.grid_worker_b)
    assert api.get(f"{API}?region={world.grid_a.code}").status_code == 404
    assert api.get(f"{API}?region=320113003001").status_code == 404
    assert api.get(API).json()["totals"]["people"] == 1


def test_a_supervisor_does_not_count_key_person_tags(world: World, residents: None) -> None:
    body = client_of(world.supervisor).get(f"{API}?region={world.grid_a.code}").json()
    assert "community_correction" not in counts(body["tags"], "code")
    assert counts(body["tags"], "code")["elderly_alone"] == 1


@pytest.mark.parametrize("persona", ["resident", "unit_handler", "nobody"])
def test_residents_and_unit_handlers_count_nobody(
    world: World, residents: None, persona: str
) -> None:
    api = client_of(world.users[persona])
    assert api.get(API).json()["totals"] == {
        "buildings": 0,
        "rooms": 0,
        "households": 0,
        "people": 0,
    }
    assert api.get(f"{API}?region={world.grid_a.code}").status_code == 404
    assert api.get(f"{API}?region=abc").status_code == 422
