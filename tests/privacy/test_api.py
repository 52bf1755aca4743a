"""The privacy API: my clearance, reveal with a reason, and the access log for administrators."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from gridgov.accounts import actions as accounts
from gridgov.accounts.models import Role
from gridgov.privacy.models import AccessLog
from gridgov.registry import actions
from gridgov.registry.models import Organisation, Person
from tests.registry.factories import building, id_number, person
from tests.world import World

pytestmark = pytest.mark.django_db

API = "/api/v1/privacy"
PHONE = "13800138000"
ELSEWHERE = (31.95, 118.75)  # grid E, in the other district


def client_of(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def reveal(client: Client, data: dict[str, Any]) -> Any:
    return client.post(f"{API}/reveal", data, content_type="application/json")


@pytest.fixture
def someone(world: World) -> tuple[Person, str]:
    number = id_number()
    return person(world.grid_worker_a, name="张三", id_number=number, phone=PHONE), number


@pytest.fixture
def shop(world: World) -> Organisation:
    return actions.organisation_create(
        actor=world.grid_worker_a,
        name="和畅便利店",
        contact_phone=PHONE,
        building=building(world.grid_worker_a),
    )


@pytest.mark.parametrize(
    ("persona", "level", "may_reveal"),
    [
        ("admin", 2, True),
        ("leader", 2, False),
        ("grid_leader", 1, True),
        ("grid_worker_a", 1, True),
        ("supervisor", 0, False),
        ("resident", 0, False),
    ],
)
def test_each_persona_reads_their_clearance(
    world: World, persona: str, level: int, may_reveal: bool
) -> None:
    r = client_of(world.users[persona]).get(f"{API}/clearance")
    assert r.json() == {"level": level, "may_reveal": may_reveal}


def test_anonymous_callers_must_log_in(world: World) -> None:
    assert Client().get(f"{API}/clearance").status_code == 401
    assert Client().get(f"{API}/access-log").status_code == 401


def test_a_grid_worker_reveals_a_persons_phone_and_a_shops_contact_phone(
    world: World, someone: tuple[Person, str], shop: Organisation
) -> None:
    who, _number = someone
    api = client_of(world.grid_worker_a)
    r = reveal(
        api,
        {
            "subject_type": "person",
            "subject": str(who.uuid),
            "fields": ["phone"],
            "reason": "电话回访核实",
        },
    )
    assert r.status_code == 200, r.content
    assert r.json() == {
        "subject_type": "person",
        "subject": str(who.uuid),
        "values": {"phone": PHONE},
    }
    r = reveal(
        api,
        {
            "subject_type": "organisation",
            "subject": str(shop.uuid),
            "fields": ["contact_phone"],
            "reason": "通知消防检查",
        },
    )
    assert r.status_code == 200 and r.json()["values"] == {"contact_phone": PHONE}
    logs = AccessLog.objects.filter(kind="reveal").order_by("pk")
    assert [(log.subject_type, log.reason) for log in logs] == [
        ("person", "电话回访核实"),
        ("organisation", "通知消防检查"),
    ]


def test_a_reveal_is_refused_without_reason_clearance_or_scope(
    world: World, someone: tuple[Person, str]
) -> None:
    who, _number = someone
    data = {"subject_type": "person", "subject": str(who.uuid), "fields": ["id_number"]}
    assert reveal(client_of(world.grid_worker_a), {**data, "reason": ""}).status_code == 422
    assert reveal(client_of(world.supervisor), {**data, "reason": "核对身份"}).status_code == 403
    assert reveal(client_of(world.grid_worker_b), {**data, "reason": "核对身份"}).status_code == 404
    assert reveal(client_of(world.resident), {**data, "reason": "核对身份"}).status_code == 404
    unknown = {**data, "subject_type": "household", "reason": "核对身份"}
    assert reveal(client_of(world.grid_worker_a), unknown).status_code == 422
    assert not AccessLog.objects.filter(kind="reveal").exists()


def test_an_administrator_reads_the_access_log_filtered(
    world: World, someone: tuple[Person, str]
) -> None:
    who, number = someone
    client_of(world.grid_worker_a).get(f"/api/v1/registry/people/{who.uuid}")
    client_of(world.grid_leader).get(f"/api/v1/registry/people/search?q={number}")
    reveal(
        client_of(world.grid_leader),
        {
            "subject_type": "person",
            "subject": str(who.uuid),
            "fields": ["id_number"],
            "reason": "核对身份信息",
        },
    )
    api = client_of(world.admin)
    everything = api.get(f"{API}/access-log").json()
    assert [e["kind"] for e in everything["items"]] == ["reveal", "search", "view"]
    assert number not in str(everything)
    about = api.get(f"{API}/access-log?person={who.uuid}").json()
    assert {e["kind"] for e in about["items"]} == {"view", "reveal"}
    by_leader = api.get(f"{API}/access-log?user=grid_leader&kind=reveal").json()
    assert [e["reason"] for e in by_leader["items"]] == ["核对身份信息"]
    assert by_leader["items"][0]["user"] == "grid_leader"
    assert by_leader["items"][0]["channel"] == "api"
    paged = api.get(f"{API}/access-log?limit=1").json()
    assert len(paged["items"]) == 1 and paged["has_more"]
    assert api.get(f"{API}/access-log?limit=1000").status_code == 422


@pytest.mark.parametrize(
    "persona", ["leader", "grid_leader", "grid_worker_a", "supervisor", "resident"]
)
def test_only_administrators_read_the_access_log(world: World, persona: str) -> None:
    r = client_of(world.users[persona]).get(f"{API}/access-log")
    assert r.status_code == 403 and set(r.json()) == {"message", "detail"}


def test_a_street_administrator_reads_only_the_entries_of_their_street(
    world: World, someone: tuple[Person, str]
) -> None:
    who, _number = someone
    far = building(world.admin, where=ELSEWHERE, estate="雨花园")
    stranger = actions.person_create(
        actor=world.admin,
        name="远方",
        household=actions.household_create(
            actor=world.admin, room=actions.room_create(actor=world.admin, building=far, number="1")
        ),
    )
    admin = client_of(world.admin)
    admin.get(f"/api/v1/registry/people/{who.uuid}")
    admin.get(f"/api/v1/registry/people/{stranger.uuid}")
    street_admin = accounts.user_create(username="street_admin", password=None)
    accounts.role_assign(
        user=street_admin, role=Role.ADMINISTRATOR, region=world.regions["320113003"]
    )
    seen = client_of(street_admin).get(f"{API}/access-log").json()
    assert [e["subject"] for e in seen["items"]] == [str(who.uuid)]
