"""The registry API's authorization matrix, persona by persona: every record route on a record in
grid A and on one in the other district.

Registry staff (administrators, leaders, intake operators, shift leaders, dispatchers,
supervisors, grid leaders and grid workers) see the records of their regions; a grid worker of
another grid, unit handlers, residents and users without a role see none of it: 404 on every
record, absent from every list. Administrators, grid leaders and grid workers change records in
their regions; other staff who see them get 403. Sensitive tags show only to roles cleared for
them, and only roles with the reveal clearance reveal.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.authz.registry import API, KINDS, PATHS, matrix_records
from tests.world import World

pytestmark = pytest.mark.django_db

ANON = "anonymous"
PERSONAS = [
    "admin",
    "leader",
    "intake_operator",
    "shift_leader",
    "dispatcher",
    "unit_handler",
    "supervisor",
    "grid_leader",
    "grid_worker_a",
    "grid_worker_b",
    "resident",
    "nobody",
]
#: who sees grid A's base data, and who sees the other district's
SEES = {
    "in": {
        "admin",
        "leader",
        "intake_operator",
        "shift_leader",
        "dispatcher",
        "supervisor",
        "grid_leader",
        "grid_worker_a",
    },
    "out": {"admin"},
}
#: who changes grid A's records (supervisors also keep components up to date)
EDITS = {"admin", "grid_leader", "grid_worker_a"}
#: who may reveal personal data of grid A (Clearance.may_reveal)
REVEALS = {"admin", "grid_leader", "grid_worker_a"}
#: who sees sensitive (level 1) tags (Clearance.level)
SEES_SENSITIVE = {"admin", "leader", "grid_leader", "grid_worker_a"}


@pytest.fixture
def records(world: World) -> dict[str, dict[str, Any]]:
    return {"in": matrix_records("in"), "out": matrix_records("out")}


def client_for(world: World, persona: str) -> Client:
    client = Client()
    if persona != ANON:
        client.force_login(world.users[persona])
    return client


@pytest.mark.parametrize("persona", [ANON, *PERSONAS])
def test_record_reads_answer_only_the_staff_whose_scope_holds_the_record(
    world: World, records: dict[str, dict[str, Any]], persona: str
) -> None:
    client = client_for(world, persona)
    problems = []
    for where in ("in", "out"):
        for kind in KINDS:
            uuid = records[where][kind].uuid
            for path in (f"{API}/{PATHS[kind]}/{uuid}", f"{API}/{PATHS[kind]}/{uuid}/history"):
                status = client.get(path).status_code
                wanted = 401 if persona == ANON else 200 if persona in SEES[where] else 404
                if status != wanted:
                    problems.append(f"GET {path} ({kind} {where}): {status}, wanted {wanted}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("persona", PERSONAS)
def test_lists_and_searches_hold_exactly_the_records_in_scope(
    world: World, records: dict[str, dict[str, Any]], persona: str
) -> None:
    client = client_for(world, persona)
    for kind in KINDS:
        listed = client.get(f"{API}/{PATHS[kind]}?limit=200")
        assert listed.status_code == 200, (kind, listed.content)
        shown = {item["uuid"] for item in listed.json()["items"]}
        for where in ("in", "out"):
            visible = str(records[where][kind].uuid) in shown
            assert visible is (persona in SEES[where]), (kind, where)
    found = {p["uuid"] for p in client.get(f"{API}/people/search?q=矩阵").json()["items"]}
    for where in ("in", "out"):
        assert (str(records[where]["person"].uuid) in found) is (persona in SEES[where])


def test_anonymous_callers_must_log_in_for_lists(world: World) -> None:
    for kind in KINDS:
        assert Client().get(f"{API}/{PATHS[kind]}").status_code == 401


@pytest.mark.parametrize("persona", [ANON, *PERSONAS])
def test_changes_are_for_editors_in_scope_readers_are_refused_and_the_rest_find_nothing(
    world: World, records: dict[str, dict[str, Any]], persona: str
) -> None:
    client = client_for(world, persona)
    problems = []
    for kind in KINDS:
        record = records["in"][kind]
        # a change naming no field: checks who may change, changes nothing
        r = client.patch(
            f"{API}/{PATHS[kind]}/{record.uuid}",
            {"version": record.version},
            content_type="application/json",
        )
        editors = EDITS | {"supervisor"} if kind == "component" else EDITS
        if persona == ANON:
            wanted = 401
        elif persona in editors:
            wanted = 200
        elif persona in SEES["in"]:
            wanted = 403
        else:
            wanted = 404
        if r.status_code != wanted:
            problems.append(f"PATCH {kind}: {r.status_code}, wanted {wanted}")
        far = records["out"][kind]
        r = client.patch(
            f"{API}/{PATHS[kind]}/{far.uuid}",
            {"version": far.version},
            content_type="application/json",
        )
        wanted = 401 if persona == ANON else 200 if persona == "admin" else 404
        if r.status_code != wanted:
            problems.append(f"PATCH {kind} elsewhere: {r.status_code}, wanted {wanted}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("persona", [p for p in PERSONAS if p not in EDITS])
def test_no_one_but_editors_registers_base_data(
    world: World, records: dict[str, dict[str, Any]], persona: str
) -> None:
    client = client_for(world, persona)
    building = records["in"]["building"]
    for path, data in (
        ("/buildings", {"lon": 118.82, "lat": 32.05, "estate": "新楼", "number": "9"}),
        ("/rooms", {"building": str(building.uuid), "number": "909"}),
        ("/people", {"name": "新人", "grid": world.grid_a.code}),
        ("/households", {"grid": world.grid_a.code}),
        ("/organisations", {"name": "新店", "grid": world.grid_a.code}),
    ):
        r = client.post(API + path, data, content_type="application/json")
        # a building out of sight is "no such building" (422), as if it did not exist
        wanted = 422 if path == "/rooms" and persona not in SEES["in"] else 403
        assert r.status_code == wanted, (path, r.status_code)


@pytest.mark.parametrize("persona", PERSONAS)
def test_only_roles_with_the_reveal_clearance_reveal_and_only_in_their_scope(
    world: World, records: dict[str, dict[str, Any]], persona: str
) -> None:
    client = client_for(world, persona)
    body = {"fields": ["phone"], "reason": "核对联系方式"}
    for where in ("in", "out"):
        uuid = records[where]["person"].uuid
        r = client.post(f"{API}/people/{uuid}/reveal", body, content_type="application/json")
        if persona not in SEES[where]:
            wanted = 404
        elif persona in REVEALS:
            wanted = 200
        else:
            wanted = 403
        assert r.status_code == wanted, (where, r.status_code)
        if wanted != 200:
            assert "13800138" not in r.content.decode()


@pytest.mark.parametrize("persona", sorted(SEES["in"]))
def test_sensitive_tags_show_only_to_roles_cleared_for_them(
    world: World, records: dict[str, dict[str, Any]], persona: str
) -> None:
    client = client_for(world, persona)
    uuid = records["in"]["person"].uuid
    for path in (f"{API}/people/{uuid}", f"{API}/people?limit=200", f"{API}/people/{uuid}/history"):
        text = client.get(path).content.decode()
        assert ("community_correction" in text) is (persona in SEES_SENSITIVE), path
        assert "elderly_alone" in text, path
