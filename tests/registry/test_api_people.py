"""The registry API for people: masked by default, every open logged, search, reveal with a
reason, tags within the caller's clearance, changes with the version seen."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from gridgov.privacy.models import AccessLog
from gridgov.registry import actions
from gridgov.registry.models import Person
from tests.registry.factories import IN_GRID_B, home, id_number, person
from tests.world import World

pytestmark = pytest.mark.django_db

API = "/api/v1/registry"
PHONE = "13800138000"


def client_of(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post(client: Client, path: str, data: dict[str, Any], key: str | None = None) -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(API + path, data, content_type="application/json", headers=headers)


@pytest.fixture
def zhang(world: World) -> tuple[Person, str]:
    """张三 of grid A, with an id number and a phone; answers (person, id number)."""
    number = id_number()
    return person(world.grid_worker_a, name="张三", id_number=number, phone=PHONE), number


def test_a_grid_worker_registers_a_person_and_sees_only_masks(world: World) -> None:
    h = home(world.grid_worker_a)
    number = id_number()
    api = client_of(world.grid_worker_a)
    r = post(
        api,
        "/people",
        {
            "name": "王芳",
            "household": str(h.uuid),
            "id_number": number,
            "phone": PHONE,
            "relation": "head",
            "tags": ["elderly_alone"],
        },
        "p1",
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert number not in r.content.decode() and PHONE not in r.content.decode()
    assert body["id_number_mask"] == number[:4] + "*" * 10 + number[-4:]
    assert body["phone_mask"] == "138****8000"
    assert body["birth_date"] == "1990-01-01" and body["sex"] in ("male", "female")
    assert [t["code"] for t in body["tags"]] == ["elderly_alone"]
    assert body["household"]["uuid"] == str(h.uuid)
    again = post(api, "/people", {"name": "王芳", "household": str(h.uuid)}, "p1")
    assert again.status_code == 422  # the same key for a different request
    replay = post(
        api,
        "/people",
        {
            "name": "王芳",
            "household": str(h.uuid),
            "id_number": number,
            "phone": PHONE,
            "relation": "head",
            "tags": ["elderly_alone"],
        },
        "p1",
    )
    assert replay.status_code == 201 and replay.json()["uuid"] == body["uuid"]
    assert Person.objects.count() == 1
    twin = post(api, "/people", {"name": "王芳二", "household": str(h.uuid), "id_number": number})
    assert twin.status_code == 409 and twin.json()["detail"]["person"] == body["uuid"]
    bad = post(
        api,
        "/people",
        {
            "name": "坏号",
            "household": str(h.uuid),
            "id_number": number[:-1] + "0" if number[-1] != "0" else number[:-1] + "1",
        },
    )
    assert bad.status_code == 422 and "id_number" in bad.json()["detail"]


def test_opening_a_person_logs_who_which_fields_and_the_api_path(
    world: World, zhang: tuple[Person, str]
) -> None:
    someone, number = zhang
    api = client_of(world.grid_leader)
    r = api.get(f"{API}/people/{someone.uuid}")
    assert r.status_code == 200 and r["Cache-Control"] == "no-store"
    assert number not in r.content.decode() and PHONE not in r.content.decode()
    assert r.json()["may_reveal"] is True
    log = AccessLog.objects.get()
    assert (log.user, log.kind, log.channel) == (world.grid_leader, "view", "api")
    assert log.subject_uuid == someone.uuid and log.screen == f"{API}/people/{someone.uuid}"
    assert "id_number_mask" in log.fields and "id_number" not in log.fields


def test_a_person_out_of_scope_is_not_found_and_the_attempt_not_logged(
    world: World, zhang: tuple[Person, str]
) -> None:
    someone, _number = zhang
    for persona in ("grid_worker_b", "unit_handler", "resident", "nobody"):
        api = client_of(world.users[persona])
        for path in ("", "/history"):
            r = api.get(f"{API}/people/{someone.uuid}{path}")
            assert r.status_code == 404 and set(r.json()) == {"message", "detail"}, persona
        assert api.get(f"{API}/people").json()["items"] == []
    assert not AccessLog.objects.exists()


def test_a_persons_history_is_masked_and_its_open_logged(
    world: World, zhang: tuple[Person, str]
) -> None:
    someone, number = zhang
    actions.person_update(actor=world.grid_worker_a, person=someone, phone="13900139000")
    r = client_of(world.grid_worker_a).get(f"{API}/people/{someone.uuid}/history")
    assert r.status_code == 200
    assert number not in r.content.decode() and "13900139000" not in r.content.decode()
    entries = r.json()
    assert [e["action"] for e in entries] == ["create", "update"]
    assert entries[1]["changes"]["phone"] == ["138****8000", "139****9000"]
    assert AccessLog.objects.get().fields == ["history"]


def test_people_are_searched_by_name_id_number_or_phone_and_the_search_logged(
    world: World, zhang: tuple[Person, str]
) -> None:
    someone, number = zhang
    person(world.grid_worker_b, household=home(world.grid_worker_b, where=IN_GRID_B), name="张四")
    api = client_of(world.grid_worker_a)
    by_name = api.get(f"{API}/people/search?q=张").json()
    assert [p["name"] for p in by_name["items"]] == ["张三"]
    by_id = api.get(f"{API}/people/search?q={number.lower()}").json()
    assert [p["uuid"] for p in by_id["items"]] == [str(someone.uuid)]
    by_phone = api.get(f"{API}/people?q=138-0013-8000").json()
    assert [p["uuid"] for p in by_phone["items"]] == [str(someone.uuid)]
    assert (
        client_of(world.grid_worker_b).get(f"{API}/people/search?q={number}").json()["items"] == []
    )
    logs = list(AccessLog.objects.filter(kind="search").order_by("pk"))
    assert len(logs) == 4 and all(log.channel == "api" for log in logs)
    assert logs[1].filter["q"] == number[:4] + "*" * 10 + number[-4:]
    assert logs[1].filter["kind"] == "id_number" and logs[1].count == 1
    assert all(number not in str(log.filter) and PHONE not in str(log.filter) for log in logs)
    assert api.get(f"{API}/people/search").status_code == 422
    assert api.get(f"{API}/people/search?q=" + "x" * 101).status_code == 422


def test_a_grid_worker_reveals_an_id_number_with_a_reason_and_the_reveal_is_logged(
    world: World, zhang: tuple[Person, str]
) -> None:
    someone, number = zhang
    api = client_of(world.grid_worker_a)
    short = post(api, f"/people/{someone.uuid}/reveal", {"fields": ["id_number"], "reason": "查"})
    assert short.status_code == 422 and "reason" in short.json()["detail"]
    r = post(
        api,
        f"/people/{someone.uuid}/reveal",
        {"fields": ["id_number", "phone"], "reason": "核对低保申请材料"},
        "reveal-1",
    )
    assert r.status_code == 200, r.content
    assert r.json()["values"] == {"id_number": number, "phone": PHONE}
    assert r["Cache-Control"] == "no-store"
    log = AccessLog.objects.get(kind="reveal")
    assert log.reason == "核对低保申请材料" and log.fields == ["id_number", "phone"]
    assert log.channel == "api" and log.user == world.grid_worker_a
    wrong_field = post(
        api, f"/people/{someone.uuid}/reveal", {"fields": ["name"], "reason": "核对身份信息"}
    )
    assert wrong_field.status_code == 422


@pytest.mark.parametrize("persona", ["supervisor", "dispatcher", "leader"])
def test_a_role_without_the_reveal_clearance_is_refused_and_nothing_logged(
    world: World, zhang: tuple[Person, str], persona: str
) -> None:
    someone, number = zhang
    api = client_of(world.users[persona])
    assert api.get(f"{API}/people/{someone.uuid}").json()["may_reveal"] is False
    r = post(api, f"/people/{someone.uuid}/reveal", {"fields": ["id_number"], "reason": "核对身份"})
    assert r.status_code == 403 and number not in r.content.decode()
    assert not AccessLog.objects.filter(kind="reveal").exists()


def test_a_reveal_in_another_grid_is_not_found(world: World, zhang: tuple[Person, str]) -> None:
    someone, _number = zhang
    r = post(
        client_of(world.grid_worker_b),
        f"/people/{someone.uuid}/reveal",
        {"fields": ["id_number"], "reason": "核对身份信息"},
    )
    assert r.status_code == 404
    assert not AccessLog.objects.exists()


@pytest.fixture
def tagged(world: World) -> Person:
    someone = person(world.grid_worker_a, name="赵六", tags=["elderly_alone"])
    actions.person_tag_add(actor=world.grid_worker_a, person=someone, tag="community_correction")
    return someone


def test_sensitive_tags_are_hidden_from_a_supervisor_everywhere(
    world: World, tagged: Person
) -> None:
    api = client_of(world.supervisor)
    detail = api.get(f"{API}/people/{tagged.uuid}")
    assert [t["code"] for t in detail.json()["tags"]] == ["elderly_alone"]
    assert "community_correction" not in detail.content.decode()
    listed = api.get(f"{API}/people")
    assert "community_correction" not in listed.content.decode()
    assert [t["code"] for t in listed.json()["items"][0]["tags"]] == ["elderly_alone"]
    history = api.get(f"{API}/people/{tagged.uuid}/history")
    assert "community_correction" not in history.content.decode()
    hidden = api.get(f"{API}/people?tag=community_correction")
    unknown = api.get(f"{API}/people?tag=no_such_tag")
    assert hidden.status_code == unknown.status_code == 422
    assert "community_correction" not in [t["code"] for t in api.get(f"{API}/tag-types").json()]
    refused = post(api, f"/people/{tagged.uuid}/tags", {"tag": "drug_user"})
    assert refused.status_code in (403, 404)


def test_a_cleared_grid_worker_sees_filters_and_sets_sensitive_tags(
    world: World, tagged: Person
) -> None:
    api = client_of(world.grid_worker_a)
    detail = api.get(f"{API}/people/{tagged.uuid}").json()
    assert [t["code"] for t in detail["tags"]] == ["elderly_alone", "community_correction"]
    found = api.get(f"{API}/people?tag=community_correction").json()
    assert [p["uuid"] for p in found["items"]] == [str(tagged.uuid)]
    added = post(
        api,
        f"/people/{tagged.uuid}/tags",
        {"tag": "petitioner", "since": "2025-03-01", "note": "x"},
    )
    assert added.status_code == 201 and added.json()["sensitivity"] == 1
    assert post(api, f"/people/{tagged.uuid}/tags", {"tag": "petitioner"}).status_code == 409
    removed = api.delete(f"{API}/people/{tagged.uuid}/tags/petitioner?reason=已化解")
    assert removed.status_code == 204
    assert api.delete(f"{API}/people/{tagged.uuid}/tags/petitioner").status_code == 409
    history = api.get(f"{API}/people/{tagged.uuid}/history").json()
    assert [h["action"] for h in history][-2:] == ["tag", "untag"]
    assert history[-1]["reason"] == "已化解"
    codes = [t["code"] for t in api.get(f"{API}/tag-types").json()]
    assert "community_correction" in codes and "elderly_alone" in codes


def test_a_person_is_changed_with_the_version_seen_and_an_id_number_replaced_with_a_reason(
    world: World, zhang: tuple[Person, str]
) -> None:
    someone, _number = zhang
    api = client_of(world.grid_worker_a)
    path = f"{API}/people/{someone.uuid}"
    changed = api.patch(path, {"version": 1, "ethnicity": "汉族"}, content_type="application/json")
    assert changed.status_code == 200 and changed.json()["ethnicity"] == "汉族"
    assert changed.json()["version"] == 2
    stale = api.patch(path, {"version": 1, "ethnicity": "回族"}, content_type="application/json")
    assert stale.status_code == 409
    other = id_number(serial=77)
    no_reason = api.patch(path, {"version": 2, "id_number": other}, content_type="application/json")
    assert no_reason.status_code == 422 and "reason" in no_reason.json()["detail"]
    replaced = api.patch(
        path,
        {"version": 2, "id_number": other, "reason": "户籍信息更正"},
        content_type="application/json",
    )
    assert replaced.status_code == 200 and other not in replaced.content.decode()
    assert replaced.json()["id_number_mask"].endswith(other[-4:])


def test_a_person_moves_house_is_closed_as_moved_out_and_reopened(
    world: World, zhang: tuple[Person, str]
) -> None:
    someone, _number = zhang
    api = client_of(world.grid_worker_a)
    target = home(world.grid_worker_a)
    moved = post(
        api,
        f"/people/{someone.uuid}/move",
        {"version": someone.version, "household": str(target.uuid), "relation": "tenant"},
    )
    assert moved.status_code == 200, moved.content
    assert moved.json()["household"]["uuid"] == str(target.uuid)
    assert moved.json()["relation"] == "tenant"
    version = moved.json()["version"]
    closed = post(
        api,
        f"/people/{someone.uuid}/close",
        {
            "version": version,
            "closed_reason": "moved_out",
            "reason": "迁往外地",
            "on": "2026-01-05",
        },
    )
    assert closed.status_code == 200 and closed.json()["moved_out_on"] == "2026-01-05"
    assert api.get(f"{API}/people").json()["count"] == 0
    assert api.get(f"{API}/people?include_closed=true").json()["count"] == 1
    reopened = post(
        api,
        f"/people/{someone.uuid}/reopen",
        {"version": closed.json()["version"], "reason": "误操作恢复"},
    )
    assert reopened.status_code == 200 and reopened.json()["moved_out_on"] is None


def test_a_supervisor_may_read_people_but_not_change_them(
    world: World, zhang: tuple[Person, str]
) -> None:
    someone, _number = zhang
    api = client_of(world.supervisor)
    r = api.patch(
        f"{API}/people/{someone.uuid}",
        {"version": 1, "ethnicity": "汉族"},
        content_type="application/json",
    )
    assert r.status_code == 403
    assert post(api, "/people", {"name": "新人", "grid": world.grid_a.code}).status_code == 403


def test_the_list_of_people_keeps_to_a_query_budget(
    world: World, django_assert_max_num_queries: Any
) -> None:
    h = home(world.grid_worker_a)
    for n in range(15):
        person(world.grid_worker_a, household=h, name=f"居民{n}", tags=["elderly_alone"])
    api = client_of(world.grid_worker_a)
    with django_assert_max_num_queries(7):
        body = api.get(f"{API}/people?limit=100").json()
    assert len(body["items"]) == 15 and all(p["tags"] for p in body["items"])
