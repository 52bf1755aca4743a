"""Scope: who sees and who changes base data (deny by default)."""

from __future__ import annotations

import pytest

from gridgov.core.errors import NotFound, PermissionDenied
from gridgov.privacy.errors import ValidationFailed
from gridgov.registry import actions, selectors
from gridgov.registry.models import Person
from tests.registry.factories import IN_GRID_B, building, home, id_number, person, room

pytestmark = pytest.mark.django_db


@pytest.fixture
def grid_a(world):
    """A building, room, household and person in grid A, and a component there."""
    b = building(world.grid_worker_a)
    r = room(world.grid_worker_a, b)
    h = actions.household_create(actor=world.grid_worker_a, room=r)
    p = person(
        world.grid_worker_a, household=h, id_number=id_number(), phone="13800138000", name="张三"
    )
    o = actions.organisation_create(actor=world.grid_worker_a, name="和畅超市", building=b)
    return {"building": b, "room": r, "household": h, "person": p, "organisation": o}


LISTS = [
    selectors.buildings_visible_to,
    selectors.rooms_visible_to,
    selectors.households_visible_to,
    selectors.people_visible_to,
    selectors.organisations_visible_to,
]


@pytest.mark.parametrize("visible_to", LISTS)
def test_a_grid_worker_of_grid_b_sees_nothing_of_grid_a(world, grid_a, visible_to):
    assert visible_to(world.grid_worker_b).count() == 0
    assert visible_to(world.grid_worker_a).count() == 1


@pytest.mark.parametrize(
    "persona", ["grid_leader", "supervisor", "leader", "dispatcher", "intake_operator", "admin"]
)
def test_staff_above_grid_a_see_it(world, grid_a, persona):
    user = world.users[persona]
    assert selectors.people_visible_to(user).count() == 1
    assert selectors.person_get(user, grid_a["person"].uuid) is not None


@pytest.mark.parametrize("persona", ["unit_handler", "resident", "nobody", "grid_worker_b"])
def test_others_see_nothing_and_get_not_found(world, grid_a, persona):
    user = world.users[persona]
    for visible_to in LISTS:
        assert not visible_to(user).exists()
    for get, key in [
        (selectors.person_get, "person"),
        (selectors.building_get, "building"),
        (selectors.household_get, "household"),
        (selectors.room_get, "room"),
        (selectors.organisation_get, "organisation"),
    ]:
        with pytest.raises(NotFound):
            get(user, grid_a[key].uuid)
    assert not selectors.people_search(user, "张三").exists()


def test_anonymous_users_see_nothing(world, grid_a):
    from django.contrib.auth.models import AnonymousUser

    assert not selectors.people_visible_to(AnonymousUser()).exists()
    assert not selectors.people_visible_to(None).exists()


def test_a_grid_worker_of_grid_b_cannot_change_grid_a(world, grid_a):
    other = world.grid_worker_b
    with pytest.raises(NotFound):
        actions.person_update(actor=other, person=grid_a["person"], name="李四")
    with pytest.raises(NotFound):
        actions.building_update(actor=other, building=grid_a["building"], floors=3)
    with pytest.raises(ValidationFailed) as exc:  # the room is not theirs to use
        actions.household_create(actor=other, room=grid_a["room"])
    assert "room" in exc.value.detail
    with pytest.raises(PermissionDenied):
        building(other)  # a building in grid A
    with pytest.raises(PermissionDenied):
        person(other, grid=grid_a["building"].grid)


def test_readers_do_not_write(world, grid_a):
    for persona in ("supervisor", "leader", "dispatcher"):
        with pytest.raises(PermissionDenied):
            actions.person_update(actor=world.users[persona], person=grid_a["person"], name="改名")
    with pytest.raises(PermissionDenied):
        building(world.supervisor, where=IN_GRID_B)


def test_closed_records_are_left_out_of_lists_unless_asked(world, grid_a):
    actions.organisation_close(
        actor=world.grid_worker_a,
        organisation=grid_a["organisation"],
        closed_reason="other",
        reason="停业",
    )
    assert not selectors.organisations_visible_to(world.grid_worker_a).exists()
    assert selectors.organisations_visible_to(world.grid_worker_a, include_closed=True).exists()
    assert selectors.organisation_get(world.grid_worker_a, grid_a["organisation"].uuid)


def test_people_come_back_masked_from_every_selector(world, grid_a):
    secret = Person.objects.get().id_number
    for p in [
        selectors.person_get(world.grid_worker_a, grid_a["person"].uuid),
        *selectors.people_visible_to(world.grid_worker_a),
        *selectors.people_search(world.grid_worker_a, "张"),
    ]:
        assert p.id_number == p.id_number_mask != secret
        assert p.phone == "138****8000"
    household = selectors.household_get(world.grid_worker_a, grid_a["household"].uuid)
    assert household.head is None or household.head.is_masked


def test_search_by_name_id_number_or_phone_within_scope(world, grid_a):
    someone = grid_a["person"]
    secret = Person.objects.get().id_number
    user = world.grid_worker_a
    assert list(selectors.people_search(user, "张")) == [someone]
    assert list(selectors.people_search(user, secret.lower())) == [someone]
    assert list(selectors.people_search(user, "+86 138-0013-8000")) == [someone]
    assert not selectors.people_search(user, "13800138001").exists()
    assert not selectors.people_search(user, "").exists()
    assert not selectors.people_search(world.grid_worker_b, secret).exists()
    assert selectors.search_kind(secret) == "id_number"
    assert selectors.search_kind("025-85551234") == "phone"
    assert selectors.search_kind("张三") == "name"


def test_components_are_seen_and_kept_by_supervisors_of_the_street(world):
    from tests.cases.factories import IN_GRID_A, category

    lat, lon = IN_GRID_A
    c = actions.component_create(
        actor=world.grid_worker_a,
        code="320113" + "01002" + "000777",
        category=category(),
        lon=lon,
        lat=lat,
    )
    assert selectors.components_visible_to(world.supervisor).get() == c
    assert not selectors.components_visible_to(world.grid_worker_b).exists()
    actions.component_update(actor=world.supervisor, component=c, status="lost")
    with pytest.raises(PermissionDenied):
        actions.component_update(actor=world.dispatcher, component=c, status="intact")


def test_a_grid_leader_works_across_the_grids_of_the_community(world):
    a = home(world.grid_leader)
    b = home(world.grid_leader, where=IN_GRID_B)
    assert {a.region_code, b.region_code} == {world.grid_a.code, world.grid_b.code}
    assert selectors.households_visible_to(world.grid_leader).count() == 2
    assert selectors.households_visible_to(world.grid_worker_a).get() == a
