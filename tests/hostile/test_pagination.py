"""Absurd page sizes and offsets on every list endpoint: limit=10^9, limit=-1, limit=0,
limit=abc, offset=-5, offset=10^12, offset=10^30, page=abc, page=10^12. The list endpoints are
found by walking the OpenAPI spec (every GET with a limit, offset or page parameter), not listed
by hand, so a new list endpoint is covered the day it is added. Each answer is a 422 naming the
parameter or a page of at most the documented size, never a 500 (no integer overflow in SQL)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gridgov.api.main import api as ninja_api
from tests.cases.factories import report
from tests.hostile.conftest import ApiClient
from tests.world import World

pytestmark = pytest.mark.django_db

PAGING = ("limit", "offset", "page", "per_page", "page_size")
SPEC_URL = "/api/v1/openapi.json"


def list_endpoints(spec: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(path, its paging parameters) of every GET without path parameters that pages."""
    found = []
    for path, operations in spec["paths"].items():
        get = operations.get("get")
        if get is None or "{" in path:
            continue
        names = [p["name"] for p in get.get("parameters", []) if p.get("in") == "query"]
        paging = [n for n in names if n in PAGING]
        if paging:
            found.append((path, paging))
    return sorted(found)


SPEC = ninja_api.get_openapi_schema(path_prefix="/api/v1")
ENDPOINTS = list_endpoints(SPEC)


def required_query(path: str) -> dict[str, str]:
    """A harmless value for each required query parameter of ``path`` (a search's q)."""
    parameters = SPEC["paths"][path]["get"].get("parameters", [])
    return {p["name"]: "张三" for p in parameters if p.get("in") == "query" and p.get("required")}


#: (parameter, value, id)
ABSURD: list[tuple[str, str]] = [
    ("limit", str(10**9)),
    ("limit", "-1"),
    ("limit", "0"),
    ("limit", "abc"),
    ("limit", "1.5"),
    ("limit", str(10**30)),
    ("offset", "-5"),
    ("offset", str(10**12)),
    ("offset", str(10**30)),
    ("offset", "abc"),
    ("page", "abc"),
    ("page", str(10**12)),
]

CASES = [
    (path, param, value) for path, paging in ENDPOINTS for param, value in ABSURD if param in paging
]


def test_the_walk_finds_the_list_endpoints_in_the_served_spec(
    world: World, api: Callable[[str], ApiClient]
) -> None:
    served = api("admin").get(SPEC_URL)
    assert served.status_code == 200
    assert list_endpoints(served.json()) == ENDPOINTS
    paths = {path for path, _paging in ENDPOINTS}
    assert {"/api/v1/cases", "/api/v1/registry/people", "/api/v1/geo/regions"} <= paths
    assert len(CASES) >= 30


def items_of(body: Any) -> list[Any]:
    if isinstance(body, list):
        return body
    for key in ("items", "results", "features"):
        if isinstance(body.get(key), list):
            return list(body[key])
    return []


def absurd_answer_problem(r: Any, path: str, param: str, value: str) -> str | None:
    """Why the answer to ``param=value`` is wrong, or None when it is right."""
    if r.status_code >= 500:
        return f"{r.status_code}: {r.content[:200]!r}"
    if r.status_code == 200:
        if not value.lstrip("-").isdigit():
            return "a value that is no whole number was accepted"
        if param in ("limit", "per_page", "page_size") and not 0 < int(value) <= 10_000:
            return "an absurd page size was served"
        if len(items_of(r.json())) > 1_000:
            return "more than 1,000 items in one page"
        return None
    body = r.json() if r.get("Content-Type", "").startswith("application/json") else {}
    if r.status_code not in (400, 422) or set(body) != {"message", "detail"}:
        return f"{r.status_code} without the error shape"
    if param not in body["message"]:
        return f"the message does not name {param}: {body['message']}"
    return None


@pytest.mark.parametrize(("path", "paging"), ENDPOINTS, ids=[p for p, _ in ENDPOINTS])
def test_absurd_pages_are_refused_naming_the_parameter_or_answer_a_bounded_page(
    world: World, api: Callable[[str], ApiClient], path: str, paging: list[str]
) -> None:
    report(world.grid_worker_a)
    client = api("admin")
    wrong = {}
    for param, value in ABSURD:
        if param not in paging:
            continue
        r = client.get(path, {**required_query(path), param: value})
        problem = absurd_answer_problem(r, path, param, value)
        if problem:
            wrong[f"{param}={value[:14]}"] = problem
    assert not wrong, wrong


@pytest.mark.parametrize(("path", "paging"), ENDPOINTS, ids=[p for p, _ in ENDPOINTS])
def test_a_page_beyond_the_end_is_empty_not_an_error(
    world: World, api: Callable[[str], ApiClient], path: str, paging: list[str]
) -> None:
    if "offset" not in paging:
        pytest.skip("pages by page number")
    r = api("admin").get(path, {**required_query(path), "offset": 1_000_000})
    assert r.status_code == 200, r.content[:300]
    assert items_of(r.json()) == []
