"""Reopening buildings, rooms, households, people, organisations and components closed in error.

Each is reopened the same way: by an editor whose scope holds it (supervisors also reopen
components), with a reason, at the version they saw, and it leaves one "reopen" row in its
history. A room comes back only while its building is open and no other open room of the
building has taken its number; a household only while its room is open; a person only while
their household is open. The refusal names the outermost closed record: reopen that first.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from gridgov.core.errors import Conflict, NotFound, PermissionDenied
from gridgov.core.masking import mask_phone
from gridgov.privacy.errors import ValidationFailed
from gridgov.registry import actions
from gridgov.registry.models import Component, Organisation, RecordChange
from tests.cases.factories import category
from tests.registry.factories import IN_GRID_A, building, fresh, home, household, room
from tests.world import World

pytestmark = pytest.mark.django_db

API = "/api/v1/registry"


def organisation(actor: Any, **fields: Any) -> Organisation:
    fields.setdefault("name", "和畅便利店")
    return actions.organisation_create(actor=actor, grid="320113003001001", **fields)


def component(actor: Any, serial: int = 1) -> Component:
    lat, lon = IN_GRID_A
    return actions.component_create(
        actor=actor,
        code=f"32011301002{serial:06d}",
        category=category("01002", "污水井盖"),
        lon=lon,
        lat=lat,
    )


def close(kind: str, actor: Any, record: Any, reason: str = "录入错误") -> Any:
    close_action = getattr(actions, f"{kind}_close")
    return close_action(actor=actor, **{kind: record}, closed_reason="error", reason=reason)


def reopen(kind: str, actor: Any, record: Any, reason: str = "误关闭，恢复", **more: Any) -> Any:
    return getattr(actions, f"{kind}_reopen")(actor=actor, **{kind: record}, reason=reason, **more)


def closed_record(world: World, kind: str) -> Any:
    """A closed record of ``kind`` in grid A, closed by the administrator."""
    made = {
        "building": lambda: building(world.admin),
        "person": lambda: actions.person_create(
            actor=world.admin, name="赵七", grid=world.grid_a.code
        ),
        "room": lambda: room(world.admin, building(world.admin)),
        "household": lambda: household(world.admin, room(world.admin, building(world.admin))),
        "organisation": lambda: organisation(world.admin),
        "component": lambda: component(world.admin),
    }[kind]()
    return close(kind, world.admin, made)


KINDS = ("building", "room", "household", "person", "organisation", "component")


# --- the shape every reopen shares -------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_grid_worker_reopens_a_record_of_their_grid_with_a_reason_and_history_says_so(
    world: World, kind: str
) -> None:
    record = closed_record(world, kind)
    assert record.version == 2

    reopened = reopen(kind, world.grid_worker_a, record, reason="关错了", version=2)

    stored = fresh(reopened)
    assert (stored.closed_at, stored.closed_reason, stored.closed_note) == (None, "", "")
    assert stored.version == 3
    last = RecordChange.objects.filter(record_uuid=record.uuid).order_by("-at", "-pk").first()
    assert last is not None
    assert (last.action, last.reason, last.actor, last.version) == (
        "reopen",
        "关错了",
        world.grid_worker_a,
        3,
    )
    assert last.changes["closed_reason"] == ["error", ""]


@pytest.mark.parametrize("kind", KINDS)
def test_a_reopen_without_a_reason_is_refused_and_the_record_stays_closed(
    world: World, kind: str
) -> None:
    record = closed_record(world, kind)
    with pytest.raises(ValidationFailed) as exc:
        reopen(kind, world.grid_worker_a, record, reason=" ")
    assert "reason" in exc.value.detail
    assert fresh(record).closed_at is not None


@pytest.mark.parametrize("kind", KINDS)
def test_a_reopen_at_a_stale_version_is_a_conflict(world: World, kind: str) -> None:
    record = closed_record(world, kind)
    with pytest.raises(Conflict) as exc:
        reopen(kind, world.grid_worker_a, record, version=1)
    assert exc.value.detail["version"] == 2
    assert fresh(record).closed_at is not None


@pytest.mark.parametrize("kind", KINDS)
def test_an_open_record_cannot_be_reopened(world: World, kind: str) -> None:
    record = reopen(kind, world.admin, closed_record(world, kind))
    with pytest.raises(Conflict):
        reopen(kind, world.grid_worker_a, record)
    assert fresh(record).version == 3


@pytest.mark.parametrize("kind", KINDS)
def test_a_grid_worker_of_another_grid_finds_no_such_record(world: World, kind: str) -> None:
    record = closed_record(world, kind)
    with pytest.raises(NotFound):
        reopen(kind, world.grid_worker_b, record)
    assert fresh(record).closed_at is not None


@pytest.mark.parametrize("kind", KINDS)
def test_unit_handlers_and_residents_find_no_such_record(world: World, kind: str) -> None:
    record = closed_record(world, kind)
    for outsider in (world.unit_handler, world.resident):
        with pytest.raises(NotFound):
            reopen(kind, outsider, record)


@pytest.mark.parametrize("kind", ("building", "room", "household", "person", "organisation"))
def test_a_supervisor_sees_a_record_but_may_not_reopen_it_unless_a_component(
    world: World, kind: str
) -> None:
    record = closed_record(world, kind)
    with pytest.raises(PermissionDenied):
        reopen(kind, world.supervisor, record)
    assert fresh(record).closed_at is not None


@pytest.mark.parametrize("kind", KINDS)
def test_the_grid_leader_reopens_in_their_community(world: World, kind: str) -> None:
    record = closed_record(world, kind)
    assert fresh(reopen(kind, world.grid_leader, record)).closed_at is None


# --- rooms --------------------------------------------------------------------------------------


def test_a_room_whose_number_was_given_to_another_room_meanwhile_stays_closed(
    world: World,
) -> None:
    b = building(world.grid_worker_a)
    first = close("room", world.grid_worker_a, room(world.grid_worker_a, b, number="201"))
    twin = room(world.grid_worker_a, b, number="201")
    with pytest.raises(Conflict) as exc:
        reopen("room", world.grid_worker_a, first)
    assert exc.value.detail["room"] == str(twin.uuid)
    assert fresh(first).closed_at is not None

    close("room", world.grid_worker_a, twin, reason="重复登记")
    assert fresh(reopen("room", world.grid_worker_a, first)).closed_at is None


def test_the_same_number_in_another_unit_does_not_block_a_reopen(world: World) -> None:
    b = building(world.grid_worker_a)
    first = close("room", world.grid_worker_a, room(world.grid_worker_a, b, number="201", unit="1"))
    room(world.grid_worker_a, b, number="201", unit="2")
    assert fresh(reopen("room", world.grid_worker_a, first)).closed_at is None


def test_a_room_of_a_closed_building_waits_for_its_building(world: World) -> None:
    b = building(world.grid_worker_a)
    r = close("room", world.grid_worker_a, room(world.grid_worker_a, b))
    actions.building_close(
        actor=world.grid_worker_a, building=b, closed_reason="demolished", reason="拆迁"
    )
    with pytest.raises(Conflict) as exc:
        reopen("room", world.grid_worker_a, r)
    assert exc.value.detail["closed"] == str(b.uuid)

    actions.building_reopen(actor=world.grid_worker_a, building=b, reason="未拆")
    assert fresh(reopen("room", world.grid_worker_a, r)).closed_at is None


# --- households ---------------------------------------------------------------------------------


def test_a_household_of_a_closed_room_waits_for_its_room(world: World) -> None:
    r = room(world.grid_worker_a, building(world.grid_worker_a))
    h = close("household", world.grid_worker_a, household(world.grid_worker_a, r))
    close("room", world.grid_worker_a, r)
    with pytest.raises(Conflict):
        reopen("household", world.grid_worker_a, h)

    reopen("room", world.grid_worker_a, r)
    assert fresh(reopen("household", world.grid_worker_a, h)).closed_at is None


def test_a_household_without_a_known_room_is_reopened_in_its_grid(world: World) -> None:
    h = actions.household_create(actor=world.grid_worker_a, grid=world.grid_a.code)
    close("household", world.grid_worker_a, h)
    reopened = fresh(reopen("household", world.grid_worker_a, h))
    assert reopened.closed_at is None and reopened.region_code == world.grid_a.code


def test_a_reopened_household_gets_its_members_back_one_by_one(world: World) -> None:
    h = home(world.grid_worker_a)
    head = actions.person_create(
        actor=world.grid_worker_a, name="李四", household=h, relation="head"
    )
    actions.person_close(
        actor=world.grid_worker_a, person=head, closed_reason="moved_out", reason="搬走"
    )
    close("household", world.grid_worker_a, h, reason="空户")

    reopen("household", world.grid_worker_a, h, reason="搬回")
    assert fresh(head).closed_at is not None  # the members stay closed until reopened
    actions.person_reopen(actor=world.grid_worker_a, person=head, reason="搬回")
    assert fresh(head).closed_at is None and fresh(head).household == fresh(h)


# --- organisations and components ---------------------------------------------------------------


def test_an_organisation_keeps_its_contact_masked_in_the_history_of_its_reopening(
    world: World,
) -> None:
    shop = organisation(world.grid_worker_a, contact_phone="13912345678")
    close("organisation", world.grid_worker_a, shop, reason="歇业")
    reopen("organisation", world.grid_worker_a, shop, reason="复业")
    reopened = fresh(shop)
    assert reopened.closed_at is None and reopened.contact_phone_mask == mask_phone("13912345678")
    rows = RecordChange.objects.filter(record_uuid=shop.uuid)
    assert "13912345678" not in str(list(rows.values_list("changes", flat=True)))
    assert list(rows.order_by("at", "pk").values_list("action", flat=True)) == [
        "create",
        "close",
        "reopen",
    ]


def test_a_supervisor_reopens_a_component_on_patrol(world: World) -> None:
    cover = close("component", world.supervisor, component(world.supervisor))
    reopened = reopen("component", world.supervisor, cover, reason="井盖仍在", version=2)
    assert fresh(reopened).closed_at is None
    last = RecordChange.objects.filter(record_uuid=cover.uuid, action="reopen").get()
    assert last.actor == world.supervisor


def test_a_dispatcher_sees_components_but_may_not_reopen_them(world: World) -> None:
    cover = closed_record(world, "component")
    with pytest.raises(PermissionDenied):
        reopen("component", world.dispatcher, cover)


def test_a_component_of_another_district_is_out_of_the_supervisors_sight(world: World) -> None:
    lat, lon = 31.95, 118.75  # grid E, in the other district
    far = actions.component_create(
        actor=world.admin,
        code="320114" + "01002" + "000009",
        category=category("01002", "污水井盖"),
        lon=lon,
        lat=lat,
    )
    close("component", world.admin, far)
    with pytest.raises(NotFound):
        reopen("component", world.supervisor, far)
    assert fresh(reopen("component", world.admin, far)).closed_at is None


# --- through the API ----------------------------------------------------------------------------


def api_of(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post(client: Client, path: str, data: dict[str, Any]) -> Any:
    return client.post(API + path, data, content_type="application/json")


def test_the_api_lets_a_supervisor_reopen_a_component(world: World) -> None:
    cover = closed_record(world, "component")
    r = post(
        api_of(world.supervisor),
        f"/components/{cover.uuid}/reopen",
        {"version": 2, "reason": "恢复"},
    )
    assert r.status_code == 200, r.content
    assert r.json()["closed_at"] is None and r.json()["version"] == 3


def test_the_api_answers_409_for_a_room_in_a_closed_building(world: World) -> None:
    b = building(world.grid_worker_a)
    r = close("room", world.grid_worker_a, room(world.grid_worker_a, b))
    actions.building_close(
        actor=world.grid_worker_a, building=b, closed_reason="demolished", reason="拆迁"
    )
    answer = post(
        api_of(world.grid_worker_a), f"/rooms/{r.uuid}/reopen", {"version": 2, "reason": "恢复"}
    )
    assert answer.status_code == 409
    assert set(answer.json()) == {"message", "detail"}


@pytest.mark.parametrize(
    ("persona", "wanted"),
    [
        ("grid_worker_a", 200),
        ("grid_leader", 200),
        ("supervisor", 403),
        ("grid_worker_b", 404),
        ("resident", 404),
    ],
)
def test_the_api_reopens_a_household_for_editors_in_scope_only(
    world: World, persona: str, wanted: int
) -> None:
    h = closed_record(world, "household")
    r = post(
        api_of(world.users[persona]),
        f"/households/{h.uuid}/reopen",
        {"version": 2, "reason": "回迁"},
    )
    assert r.status_code == wanted, r.content
    assert (fresh(h).closed_at is None) is (wanted == 200)


def test_the_api_refuses_an_organisation_reopen_without_a_reason(world: World) -> None:
    shop = closed_record(world, "organisation")
    r = post(
        api_of(world.grid_worker_a),
        f"/organisations/{shop.uuid}/reopen",
        {"version": 2, "reason": ""},
    )
    assert r.status_code == 422
    assert "reason" in r.json()["detail"]


# --- people, and records whose container is closed -------------------------------------------


def test_a_person_of_a_closed_household_stays_closed_until_the_household_is_reopened(
    world: World, english: None
) -> None:
    h = home(world.grid_worker_a)
    member = actions.person_create(actor=world.grid_worker_a, name="李四", household=h)
    close("person", world.grid_worker_a, member, reason="搬走")
    close("household", world.grid_worker_a, h, reason="空户")
    changes = RecordChange.objects.filter(record_uuid=member.uuid).count()

    with pytest.raises(Conflict) as exc:
        reopen("person", world.grid_worker_a, member, reason="搬回", version=2)
    assert exc.value.detail == {"closed": str(h.uuid), "kind": "household"}
    assert exc.value.message == f"household {h} is closed; reopen it first"
    stored = fresh(member)
    assert (stored.closed_at is not None, stored.version) == (True, 2)
    assert RecordChange.objects.filter(record_uuid=member.uuid).count() == changes

    reopen("household", world.grid_worker_a, h, reason="搬回")
    assert fresh(reopen("person", world.grid_worker_a, member, version=2)).closed_at is None


def test_the_refusal_names_the_outermost_closed_record_to_reopen_first(
    world: World, english: None
) -> None:
    b = building(world.grid_worker_a)
    r = room(world.grid_worker_a, b)
    h = household(world.grid_worker_a, r)
    member = actions.person_create(actor=world.grid_worker_a, name="李四", household=h)
    for kind, record in (("person", member), ("household", h), ("room", r)):
        close(kind, world.grid_worker_a, record)
    actions.building_close(
        actor=world.grid_worker_a, building=b, closed_reason="demolished", reason="拆迁"
    )

    for kind, record in (("person", member), ("household", h), ("room", r)):
        with pytest.raises(Conflict) as exc:
            reopen(kind, world.grid_worker_a, record)
        assert exc.value.detail["closed"] == str(b.uuid), kind
        assert exc.value.message.startswith("building ")
        assert fresh(record).closed_at is not None


def test_a_reopened_head_heads_their_household_again(world: World) -> None:
    h = home(world.grid_worker_a)
    head = actions.person_create(
        actor=world.grid_worker_a, name="王五", household=h, relation="head"
    )
    close("person", world.grid_worker_a, head)
    assert fresh(h).head is None

    reopen("person", world.grid_worker_a, head)
    assert fresh(h).head == fresh(head)
    assert fresh(head).relation == "head"


def test_a_reopened_head_whose_household_has_a_new_head_is_head_no_more(world: World) -> None:
    h = home(world.grid_worker_a)
    first = actions.person_create(
        actor=world.grid_worker_a, name="王五", household=h, relation="head"
    )
    close("person", world.grid_worker_a, first)
    second = actions.person_create(
        actor=world.grid_worker_a, name="王六", household=h, relation="head"
    )

    reopened = fresh(reopen("person", world.grid_worker_a, first))
    assert reopened.closed_at is None and reopened.relation == ""
    assert fresh(h).head == fresh(second)
    last = RecordChange.objects.filter(record_uuid=first.uuid).order_by("-at", "-pk").first()
    assert last is not None and last.changes["relation"] == ["head", ""]


def test_a_person_without_a_household_is_reopened_in_their_grid(world: World) -> None:
    loner = actions.person_create(actor=world.grid_worker_a, name="赵七", grid=world.grid_a.code)
    close("person", world.grid_worker_a, loner)
    assert fresh(reopen("person", world.grid_worker_a, loner)).closed_at is None


def test_the_api_answers_409_for_a_person_of_a_closed_household(world: World) -> None:
    h = home(world.grid_worker_a)
    member = actions.person_create(actor=world.grid_worker_a, name="李四", household=h)
    close("person", world.grid_worker_a, member)
    close("household", world.grid_worker_a, h)
    answer = post(
        api_of(world.grid_worker_a),
        f"/people/{member.uuid}/reopen",
        {"version": 2, "reason": "搬回"},
    )
    assert answer.status_code == 409
    assert answer.json()["detail"] == {"closed": str(h.uuid), "kind": "household"}
    assert fresh(member).closed_at is not None
