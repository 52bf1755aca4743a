"""Geo write endpoints take an Idempotency-Key: a retry replays the first answer."""

from __future__ import annotations

from django.test import Client

from gridgov.geo.models import Region
from tests.world import World


def test_a_retried_grid_generation_replays_the_first_answer_and_cuts_once(world: World) -> None:
    client = Client(headers={"Accept-Language": "en", "Idempotency-Key": "cut-huadian-1"})
    client.force_login(world.admin)
    body = {"community": "320113003002", "area_m2": 2_000_000, "replace": True}
    first = client.post("/api/v1/geo/grids/generate", body, content_type="application/json")
    assert first.status_code == 200, first.json()
    grids = list(
        Region.objects.filter(code__startswith="320113003002", level="grid").values_list(
            "pk", flat=True
        )
    )
    again = client.post("/api/v1/geo/grids/generate", body, content_type="application/json")
    assert again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    after = list(
        Region.objects.filter(code__startswith="320113003002", level="grid").values_list(
            "pk", flat=True
        )
    )
    assert after == grids


def test_the_same_key_with_another_community_is_refused(world: World) -> None:
    client = Client(headers={"Accept-Language": "en", "Idempotency-Key": "cut-2"})
    client.force_login(world.admin)
    body = {"community": "320113003002", "area_m2": 2_000_000, "replace": True}
    assert (
        client.post("/api/v1/geo/grids/generate", body, content_type="application/json").status_code
        == 200
    )
    other = {**body, "community": "320113005001"}
    response = client.post("/api/v1/geo/grids/generate", other, content_type="application/json")
    assert response.status_code == 422
    assert "idempotency key" in response.json()["message"]
