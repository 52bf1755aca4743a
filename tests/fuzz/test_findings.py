"""What the API fuzz found, pinned: each request here once answered 500 or broke the document.

And the document itself: every operation names the error answers it can give, in the one error
shape (gridgov/api/errors.py), so that a client (and the fuzz) can rely on it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.http import Http404
from django.test import Client
from shapely.geometry import box

from gridgov.accounts.actions import token_create
from gridgov.api.errors import ERROR_REF, document_errors, usual_errors
from gridgov.api.main import on_not_found
from gridgov.geo.gridgen import MAX_GRIDS, grid_count
from tests.world import World

pytestmark = pytest.mark.usefixtures("english")

WRITES = {"post", "put", "patch", "delete"}


def api_client(world: World, persona: str = "admin") -> Client:
    _token, raw = token_create(user=world.users[persona], name="findings")
    return Client(headers={"Authorization": f"Bearer {raw}", "Accept-Language": "en"})


def served_document() -> dict[str, Any]:
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.json()


# --- the document ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_operation_names_its_error_answers_in_the_one_error_shape() -> None:
    document = served_document()
    error = document["components"]["schemas"]["ErrorOut"]
    assert set(error["required"]) == {"message", "detail"}
    assert error["properties"]["detail"]["type"] == "object"
    checked = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            codes = set(operation["responses"])
            expected = {"400", "429"}
            if operation.get("security"):
                expected |= {"401", "403"}
            if method in WRITES:
                expected |= {"409", "422"}
            if "requestBody" in operation:
                expected |= {"413", "415"}
            assert expected <= codes, f"{method.upper()} {path} misses {expected - codes}"
            for code in (c for c in codes if int(c) >= 400):
                schema = operation["responses"][code]["content"]["application/json"]["schema"]
                assert schema == {"$ref": ERROR_REF}, f"{method.upper()} {path} {code}"
            checked += 1
    assert checked >= 100  # every operation of the API, not a handful


def test_an_operation_without_input_documents_no_404_or_422() -> None:
    assert usual_errors("get", {"security": [{"TokenAuth": []}]}) == [400, 401, 403, 429]


def test_a_not_found_raised_inside_the_api_answers_the_one_error_shape(rf: Any) -> None:
    response = on_not_found(rf.get("/api/v1/geo/regions/nowhere"), Http404("nowhere"))
    assert response.status_code == 404
    assert json.loads(response.content) == {"message": "not found", "detail": {}}


def test_what_a_route_declares_itself_is_kept() -> None:
    own = {"description": "Gone for good", "content": {}}
    spec: dict[str, Any] = {
        "paths": {
            "/things/{id}": {
                "get": {"parameters": [{"in": "path", "name": "id"}], "responses": {"404": own}},
                "parameters": [{"in": "path", "name": "id"}],  # not an operation
            }
        }
    }
    document_errors(spec)
    responses = spec["paths"]["/things/{id}"]["get"]["responses"]
    assert responses["404"] is own
    assert 422 in responses and 400 in responses
    assert "ErrorOut" in spec["components"]["schemas"]


# --- requests that answered 500 ----------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "hours=6.570405807032449e%2B16",  # OverflowError in timedelta
        "minutes=inf",
        "days=nan",
        "days=1e300",
    ],
)
def test_a_deadline_of_an_absurd_length_answers_422(world: World, query: str) -> None:
    r = api_client(world).get(f"/api/v1/core/calendar/deadline?start=2026-11-24T10:00&{query}")
    assert r.status_code == 422, r.content
    assert r.json()["message"]


@pytest.mark.parametrize(
    "start",
    [
        "0073-06-24T23:16:54Z",  # answered 200 with "+08:05:43", which is no RFC 3339 offset
        "0001-01-01T00:00:00",  # OverflowError converting to UTC
        "9999-12-31T00:00:00Z",  # OverflowError a day later
    ],
)
def test_a_deadline_starting_outside_1970_to_2999_answers_422(world: World, start: str) -> None:
    r = api_client(world).get(f"/api/v1/core/calendar/deadline?start={start}&days=1")
    assert r.status_code == 422, r.content
    assert "1970" in r.json()["message"]


def test_a_deadline_in_the_allowed_years_still_answers(world: World) -> None:
    r = api_client(world).get("/api/v1/core/calendar/deadline?start=2999-12-01T10:00&hours=8")
    assert r.status_code == 200, r.content
    assert r.json()["due_at"].endswith("+08:00")


def test_the_calendar_lists_the_last_days_python_can_count(world: World) -> None:
    r = api_client(world).get("/api/v1/core/calendar/days?start=9999-12-01&end=9999-12-31")
    assert r.status_code == 200, r.content  # stepping past the end overflowed
    assert [d["date"] for d in r.json()][-1] == "9999-12-31"


def test_grids_of_less_than_a_square_metre_are_refused(world: World) -> None:
    r = api_client(world).post(
        "/api/v1/geo/grids/preview",
        {"community": "320113003001", "area_m2": 5e-324},
        content_type="application/json",
    )
    assert r.status_code == 422, r.content
    assert "area_m2" in r.json()["message"]


def test_a_vanishing_area_per_grid_needs_more_grids_than_any_community_may_have() -> None:
    assert grid_count(box(118.80, 32.00, 118.81, 32.01), area_m2=5e-324) > MAX_GRIDS


@pytest.mark.parametrize(
    "path", ["/api/v1/notifications", "/api/v1/accounts/users", "/api/v1/geo/regions"]
)
def test_an_offset_beyond_a_million_answers_422(world: World, path: str) -> None:
    # 108158292734582620160 answered 500: SQLite cannot bind an integer that large
    r = api_client(world).get(f"{path}?offset=108158292734582620160")
    assert r.status_code == 422, r.content
    assert "offset" in r.json()["message"]
