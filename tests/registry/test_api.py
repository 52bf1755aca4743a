"""The registry API: buildings, rooms, households, organisations and components — create, change
with the version seen, close and reopen with a reason, history, lists paged within scope."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from gridgov.registry.models import Building, RecordChange, Room
from tests.cases.factories import category
from tests.registry.factories import IN_GRID_A, IN_GRID_B, building, home, room
from tests.world import World

pytestmark = pytest.mark.django_db

API = "/api/v1/registry"


def client_of(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post(client: Client, path: str, data: dict[str, Any], key: str | None = None) -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(API + path, data, content_type="application/json", headers=headers)


def patch(client: Client, path: str, data: dict[str, Any]) -> Any:
    return client.patch(API + path, data, content_type="application/json")


def error_shape(response: Any) -> bool:
    body = response.json()
    return set(body) == {"message", "detail"} and isinstance(body["message"], str)


# --- buildings ------------------------------------------------------------------------------


def test_a_grid_worker_registers_a_building_and_its_grid_is_found_from_the_point(
    world: World,
) -> None:
    api = client_of(world.grid_worker_a)
    lat, lon = IN_GRID_A
    r = post(api, "/buildings", {"lon": lon, "lat": lat, "estate": "和畅园", "number": "3栋"}, "b1")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["grid"] == world.grid_a.code and body["region_code"] == world.grid_a.code
    assert body["community_code"] == "320113003001" and body["version"] == 1
    assert body["closed_at"] is None and body["uuid"]
    again = post(
        api, "/buildings", {"lon": lon, "lat": lat, "estate": "和畅园", "number": "3栋"}, "b1"
    )
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json()["uuid"] == body["uuid"] and Building.objects.count() == 1


def test_the_same_address_twice_answers_409_in_the_one_error_shape(world: World) -> None:
    api = client_of(world.grid_worker_a)
    lat, lon = IN_GRID_A
    data = {"lon": lon, "lat": lat, "estate": "和畅园", "number": "5栋"}
    assert post(api, "/buildings", data).status_code == 201
    r = post(api, "/buildings", {**data, "estate": "和畅园 ", "number": "5 栋"})
    assert r.status_code == 409 and error_shape(r)
    assert "building" in r.json()["detail"]


def test_invalid_input_answers_422_naming_the_field(world: World) -> None:
    api = client_of(world.grid_worker_a)
    r = post(api, "/buildings", {"lon": 500, "lat": 32.05, "estate": "和畅园", "number": "1"})
    assert r.status_code == 422 and error_shape(r) and "lon" in r.json()["detail"]
    r = post(api, "/buildings", {"lat": 32.05})
    assert r.status_code == 422 and error_shape(r)
    r = post(api, "/buildings", {"lon": 118.82, "lat": 32.05, "kind": "castle"})
    assert r.status_code == 422 and error_shape(r)


def test_a_change_carries_the_version_seen_and_a_stale_one_answers_409(world: World) -> None:
    b = building(world.grid_worker_a)
    api = client_of(world.grid_worker_a)
    r = patch(api, f"/buildings/{b.uuid}", {"version": 1, "floors": 6, "reason": "实地核实"})
    assert r.status_code == 200, r.content
    assert r.json()["floors"] == 6 and r.json()["version"] == 2
    stale = patch(api, f"/buildings/{b.uuid}", {"version": 1, "floors": 7})
    assert stale.status_code == 409 and error_shape(stale)
    assert stale.json()["detail"]["version"] == 2
    assert Building.objects.get(pk=b.pk).floors == 6
    missing = patch(api, f"/buildings/{b.uuid}", {"floors": 7})
    assert missing.status_code == 422


def test_a_patch_leaves_the_fields_it_does_not_name_as_they_are(world: World) -> None:
    b = building(world.grid_worker_a, floors=5, address="和畅路1号")
    r = patch(client_of(world.grid_worker_a), f"/buildings/{b.uuid}", {"version": 1, "floors": 9})
    assert r.json()["address"] == "和畅路1号" and r.json()["floors"] == 9
    cleared = patch(
        client_of(world.grid_worker_a), f"/buildings/{b.uuid}", {"version": 2, "floors": None}
    )
    assert cleared.status_code == 200 and cleared.json()["floors"] is None


def test_a_building_is_closed_with_a_reason_reopened_and_its_history_shows_both(
    world: World,
) -> None:
    b = building(world.grid_worker_a)
    api = client_of(world.grid_worker_a)
    no_reason = post(
        api,
        f"/buildings/{b.uuid}/close",
        {"version": 1, "closed_reason": "demolished", "reason": ""},
    )
    assert no_reason.status_code == 422 and "reason" in no_reason.json()["detail"]
    closed = post(
        api,
        f"/buildings/{b.uuid}/close",
        {"version": 1, "closed_reason": "demolished", "reason": "旧城改造拆除"},
    )
    assert closed.status_code == 200 and closed.json()["closed_reason"] == "demolished"
    assert api.get(f"{API}/buildings").json()["count"] == 0
    assert api.get(f"{API}/buildings?include_closed=true").json()["count"] == 1
    assert api.get(f"{API}/buildings/{b.uuid}").json()["closed_at"] is not None
    reopened = post(api, f"/buildings/{b.uuid}/reopen", {"version": 2, "reason": "录入错误"})
    assert reopened.status_code == 200 and reopened.json()["closed_at"] is None
    history = api.get(f"{API}/buildings/{b.uuid}/history").json()
    assert [h["action"] for h in history] == ["create", "close", "reopen"]
    assert history[1]["reason"] == "旧城改造拆除" and history[1]["actor"] == "Grid Worker A"
    assert history[1]["changes"]["closed_reason"] == [None, "demolished"] or history[1]["changes"][
        "closed_reason"
    ] == ["", "demolished"]


def test_a_building_with_open_rooms_cannot_be_closed(world: World) -> None:
    b = building(world.grid_worker_a)
    room(world.grid_worker_a, b)
    r = post(
        client_of(world.grid_worker_a),
        f"/buildings/{b.uuid}/close",
        {"version": 1, "closed_reason": "demolished", "reason": "拆除"},
    )
    assert r.status_code == 409 and r.json()["detail"]["rooms"] == 1


def test_lists_are_paged_with_a_capped_page_size(world: World) -> None:
    for n in range(3):
        building(world.grid_worker_a, number=f"{n + 1}栋")
    api = client_of(world.grid_worker_a)
    first = api.get(f"{API}/buildings?limit=2").json()
    assert len(first["items"]) == 2 and first["has_more"] and first["count"] is None
    counted = api.get(f"{API}/buildings?limit=2&with_count=true").json()
    assert counted["count"] == 3 and not counted["count_capped"]
    last = api.get(f"{API}/buildings?limit=2&offset=2").json()
    assert len(last["items"]) == 1 and not last["has_more"] and last["count"] == 3
    beyond = api.get(f"{API}/buildings?limit=2&offset=10").json()
    assert beyond["items"] == [] and beyond["count"] == 3
    for absurd in ("limit=201", "limit=0", "limit=100000000", "offset=-1", "limit=abc"):
        r = api.get(f"{API}/buildings?{absurd}")
        assert r.status_code == 422 and error_shape(r), absurd
    assert api.get(f"{API}/buildings?region=32011300300100x").status_code == 422


def test_lists_filter_by_region_and_text(world: World) -> None:
    building(world.admin, estate="和畅园")
    building(world.admin, where=IN_GRID_B, estate="华电新村")
    api = client_of(world.grid_leader)
    assert api.get(f"{API}/buildings").json()["count"] == 2
    only_b = api.get(f"{API}/buildings?region={world.grid_b.code}").json()
    assert [b["estate"] for b in only_b["items"]] == ["华电新村"]
    assert api.get(f"{API}/buildings?q=和畅").json()["count"] == 1


def test_a_list_of_buildings_keeps_to_a_query_budget(
    world: World, django_assert_max_num_queries: Any
) -> None:
    for n in range(12):
        building(world.grid_worker_a, number=f"{n + 1}栋")
    api = client_of(world.grid_worker_a)
    with django_assert_max_num_queries(5):
        assert len(api.get(f"{API}/buildings?limit=50").json()["items"]) == 12


def test_unknown_and_malformed_ids_answer_404_or_422(world: World) -> None:
    api = client_of(world.admin)
    r = api.get(f"{API}/buildings/00000000-0000-0000-0000-000000000000")
    assert r.status_code == 404 and error_shape(r)
    assert api.get(f"{API}/buildings/not-a-uuid").status_code == 422


# --- rooms and households -------------------------------------------------------------------


def test_a_grid_worker_adds_rooms_and_a_household_and_names_its_head(world: World) -> None:
    b = building(world.grid_worker_a)
    api = client_of(world.grid_worker_a)
    r = post(api, "/rooms", {"building": str(b.uuid), "unit": "1", "number": "101", "floor": 1})
    assert r.status_code == 201, r.content
    room_id = r.json()["uuid"]
    assert r.json()["building"]["uuid"] == str(b.uuid) and r.json()["use"] == "self_occupied"
    twin = post(api, "/rooms", {"building": str(b.uuid), "unit": "1", "number": "101"})
    assert twin.status_code == 409
    rooms = api.get(f"{API}/rooms?building={b.uuid}").json()
    assert [x["number"] for x in rooms["items"]] == ["101"]
    changed = patch(api, f"/rooms/{room_id}", {"version": 1, "use": "rented", "area": 65.5})
    assert changed.json()["use"] == "rented" and changed.json()["area"] == 65.5

    h = post(api, "/households", {"room": room_id, "number": "H-1"})
    assert h.status_code == 201, h.content
    household = h.json()
    assert household["room"]["uuid"] == room_id and household["head"] is None
    person = post(
        api, "/people", {"name": "张三", "household": household["uuid"], "relation": "head"}
    ).json()
    card = api.get(f"{API}/households/{household['uuid']}").json()
    assert card["head"] == {"uuid": person["uuid"], "name": "张三"}
    assert [m["name"] for m in card["members"]] == ["张三"]
    assert card["room"]["building"]["uuid"] == str(b.uuid)
    listed = api.get(f"{API}/households?building={b.uuid}").json()
    assert [x["uuid"] for x in listed["items"]] == [household["uuid"]]


def test_a_room_is_closed_only_when_empty_and_reopened_while_its_number_is_free(
    world: World,
) -> None:
    b = building(world.grid_worker_a)
    r1 = room(world.grid_worker_a, b, number="201")
    api = client_of(world.grid_worker_a)
    closed = post(
        api, f"/rooms/{r1.uuid}/close", {"version": 1, "closed_reason": "error", "reason": "错录"}
    )
    assert closed.status_code == 200
    room(world.grid_worker_a, b, number="201")
    taken = post(api, f"/rooms/{r1.uuid}/reopen", {"version": 2, "reason": "恢复"})
    assert taken.status_code == 409
    assert Room.objects.get(pk=r1.pk).closed_at is not None


def test_a_household_with_members_cannot_be_closed_and_an_empty_one_is_reopened(
    world: World,
) -> None:
    h = home(world.grid_worker_a)
    api = client_of(world.grid_worker_a)
    post(api, "/people", {"name": "李四", "household": str(h.uuid)})
    busy = post(
        api,
        f"/households/{h.uuid}/close",
        {"version": h.version, "closed_reason": "moved_out", "reason": "搬离"},
    )
    assert busy.status_code == 409 and busy.json()["detail"]["members"] == 1
    empty = home(world.grid_worker_a)
    closed = post(
        api,
        f"/households/{empty.uuid}/close",
        {"version": 1, "closed_reason": "moved_out", "reason": "搬离"},
    )
    assert closed.status_code == 200 and closed.json()["closed_reason"] == "moved_out"
    reopened = post(api, f"/households/{empty.uuid}/reopen", {"version": 2, "reason": "回迁"})
    assert reopened.status_code == 200 and reopened.json()["closed_at"] is None
    history = api.get(f"{API}/households/{empty.uuid}/history").json()
    assert [e["action"] for e in history] == ["create", "close", "reopen"]


# --- organisations and components -----------------------------------------------------------


def _credit_code() -> str:
    from gridgov.registry.validators import credit_check_char, org_check_char

    body = "MA1X2Y3Q"
    first17 = "91320113" + body + org_check_char(body)
    return first17 + credit_check_char(first17)


def test_an_organisation_is_registered_with_its_phone_masked(world: World) -> None:
    b = building(world.grid_worker_a)
    api = client_of(world.grid_worker_a)
    r = post(
        api,
        "/organisations",
        {
            "name": "和畅便利店",
            "kind": "shop",
            "credit_code": _credit_code(),
            "contact_name": "王五",
            "contact_phone": "13800138000",
            "building": str(b.uuid),
        },
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["contact_phone_mask"] == "138****8000" and "13800138000" not in r.content.decode()
    assert body["building"] == str(b.uuid) and body["region_code"] == world.grid_a.code
    detail = api.get(f"{API}/organisations/{body['uuid']}")
    assert detail.json()["may_reveal"] is True and detail["Cache-Control"] == "no-store"
    assert "13800138000" not in detail.content.decode()
    twin = post(
        api,
        "/organisations",
        {"name": "另一家", "credit_code": _credit_code(), "grid": world.grid_a.code},
    )
    assert twin.status_code == 409
    bad = post(
        api,
        "/organisations",
        {"name": "坏码", "credit_code": "91320113MA1X2Y3Z4A", "grid": world.grid_a.code},
    )
    assert bad.status_code == 422 and "credit_code" in bad.json()["detail"]
    found = api.get(f"{API}/organisations?q=便利").json()
    assert [o["name"] for o in found["items"]] == ["和畅便利店"]
    changed = patch(api, f"/organisations/{body['uuid']}", {"version": 1, "staff_count": 4})
    assert changed.json()["staff_count"] == 4
    closed = post(
        api,
        f"/organisations/{body['uuid']}/close",
        {"version": 2, "closed_reason": "other", "reason": "已注销"},
    )
    assert closed.status_code == 200
    reopened = post(
        api, f"/organisations/{body['uuid']}/reopen", {"version": 3, "reason": "恢复营业"}
    )
    assert reopened.status_code == 200 and reopened.json()["closed_at"] is None
    history = api.get(f"{API}/organisations/{body['uuid']}/history").json()
    assert "13800138000" not in str(history)
    assert history[0]["changes"]["contact_phone"] == [None, "138****8000"]


def test_a_supervisor_keeps_a_components_status_up_to_date(world: World) -> None:
    category("01002", "污水井盖")
    lat, lon = IN_GRID_A
    code = "320113" + "01002" + "000123"
    api = client_of(world.supervisor)
    r = post(
        api,
        "/components",
        {"code": code, "category": "01002", "lon": lon, "lat": lat, "owner_unit": "水务集团"},
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["category"]["code"] == "01002" and body["region_code"] == world.grid_a.code
    changed = patch(api, f"/components/{body['uuid']}", {"version": 1, "status": "damaged"})
    assert changed.status_code == 200 and changed.json()["status"] == "damaged"
    assert (
        patch(api, f"/components/{body['uuid']}", {"version": 2, "status": "stolen"}).status_code
        == 422
    )
    listed = api.get(f"{API}/components?status=damaged&category=01002").json()
    assert [c["code"] for c in listed["items"]] == [code]
    assert api.get(f"{API}/components?q=320113").json()["count"] == 1
    twin = post(api, "/components", {"code": code, "category": "01002", "lon": lon, "lat": lat})
    assert twin.status_code == 409
    closed = post(
        client_of(world.grid_worker_a),
        f"/components/{body['uuid']}/close",
        {"version": 2, "closed_reason": "other", "reason": "已拆除"},
    )
    assert closed.status_code == 200
    reopened = post(
        client_of(world.grid_worker_a),
        f"/components/{body['uuid']}/reopen",
        {"version": 3, "reason": "误操作"},
    )
    assert reopened.status_code == 200
    history = api.get(f"{API}/components/{body['uuid']}/history").json()
    assert [h["action"] for h in history] == ["create", "update", "close", "reopen"]
    assert RecordChange.objects.filter(record_uuid=body["uuid"]).count() == 4


# --- OpenAPI --------------------------------------------------------------------------------


def test_the_openapi_document_describes_the_registry_and_privacy_routes(world: World) -> None:
    spec = Client().get("/api/v1/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    assert "/api/v1/registry/people/{uuid}/reveal" in paths
    assert "/api/v1/privacy/access-log" in paths
    create = paths["/api/v1/registry/buildings"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in create.get("parameters", []))
    limit = next(
        p for p in paths["/api/v1/registry/people"]["get"]["parameters"] if p["name"] == "limit"
    )
    assert limit["schema"]["maximum"] == 200
    for path, item in paths.items():
        if not path.startswith(("/api/v1/registry", "/api/v1/privacy")):
            continue
        for method, op in item.items():
            keys = [p["name"] for p in op.get("parameters", [])]
            assert (method == "get") is ("Idempotency-Key" not in keys), (method, path)
    operation_ids = [op["operationId"] for item in paths.values() for op in item.values()]
    assert len(operation_ids) == len(set(operation_ids))
    schemas = spec.json()["components"]["schemas"]
    for name in ("PersonOut", "PersonDetail", "OrganisationOut", "HistoryOut"):
        fields = set(schemas[name]["properties"])
        assert not fields & {"id_number", "phone", "contact_phone"}, name
    assert Client().get("/api/docs", follow=True).status_code == 200
