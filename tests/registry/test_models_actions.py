"""The registry's actions: locating, validating, versions, closing, moving; nothing is deleted."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from gridgov.core.errors import Conflict, NotFound, PermissionDenied
from gridgov.privacy import crypto
from gridgov.privacy.errors import ValidationFailed
from gridgov.registry import actions
from gridgov.registry.models import Building, Household, Person, RecordChange
from tests.cases.factories import category
from tests.registry.factories import (
    IN_GRID_A,
    IN_GRID_B,
    building,
    fresh,
    home,
    household,
    id_number,
    person,
    room,
)

pytestmark = pytest.mark.django_db

#: A point in district 320113 that lies in no grid of tests/world.py (north of grid A).
NO_GRID = (32.25, 118.82)


# --- buildings ------------------------------------------------------------------------------------


def test_a_building_finds_its_grid_from_its_location(world):
    b = building(world.grid_worker_a, address="和畅路 1 号（3栋）")
    assert b.grid == world.grid_a
    assert b.region_code == "320113003001001"
    assert b.community_code == "320113003001"
    assert b.address_key == "和畅路1号3栋"
    assert b.version == 1


def test_a_building_in_gcj02_is_stored_in_wgs84(world):
    b = building(world.grid_worker_a, crs="gcj02")
    assert b.lon != pytest.approx(IN_GRID_A[1], abs=1e-5)
    assert b.grid == world.grid_a


def test_a_building_outside_every_grid_needs_its_community(world):
    with pytest.raises(ValidationFailed) as exc:
        building(world.admin, where=NO_GRID)
    assert "lon" in exc.value.detail
    b = building(world.admin, where=NO_GRID, community_code="320113003001")
    assert b.grid is None
    assert b.region_code == "320113003001"


def test_a_building_address_is_registered_once_per_community(world):
    building(world.grid_worker_a, estate="和畅园", number="3栋")
    with pytest.raises(Conflict) as exc:
        building(world.grid_worker_a, estate="和畅园 ", number="3 栋")
    assert "building" in exc.value.detail


def test_a_building_needs_an_address(world):
    with pytest.raises(ValidationFailed) as exc:
        building(world.grid_worker_a, estate="", number="")
    assert "address" in exc.value.detail


def test_invalid_fields_are_reported_together_one_message_each(world):
    with pytest.raises(ValidationFailed) as exc:
        actions.building_create(
            actor=world.grid_worker_a,
            lon=IN_GRID_A[1],
            lat=IN_GRID_A[0],
            address="x" * 201,
            kind="castle",
            floors=-1,
        )
    assert exc.value.status == 422
    assert set(exc.value.detail) == {"address", "kind", "floors"}


def test_moving_a_building_to_another_grid_moves_its_people(world):
    b = building(world.grid_leader)
    r = room(world.grid_leader, b)
    h = household(world.grid_leader, r)
    someone = person(world.grid_leader, household=h)
    actions.building_update(
        actor=world.grid_leader, building=b, version=1, lon=IN_GRID_B[1], lat=IN_GRID_B[0]
    )
    b = fresh(b)
    assert (b.grid, b.version) == (world.grid_b, 2)
    for record in (r, h, someone):
        assert fresh(record).region_code == world.grid_b.code


def test_a_stale_version_answers_409_and_changes_nothing(world):
    b = building(world.grid_worker_a)
    actions.building_update(actor=world.grid_worker_a, building=b, version=1, floors=6)
    with pytest.raises(Conflict) as exc:
        actions.building_update(actor=world.grid_worker_a, building=b, version=1, floors=7)
    assert exc.value.status == 409
    assert exc.value.detail["version"] == 2
    assert fresh(b).floors == 6


def test_an_update_that_changes_nothing_keeps_the_version(world):
    b = building(world.grid_worker_a, floors=6)
    actions.building_update(actor=world.grid_worker_a, building=b, floors=6)
    assert fresh(b).version == 1


def test_a_building_is_closed_with_a_reason_and_reopened(world):
    b = building(world.grid_worker_a)
    with pytest.raises(ValidationFailed) as exc:
        actions.building_close(
            actor=world.grid_worker_a, building=b, closed_reason="demolished", reason=""
        )
    assert "reason" in exc.value.detail
    with pytest.raises(ValidationFailed):
        actions.building_close(
            actor=world.grid_worker_a, building=b, closed_reason="burnt", reason="拆迁"
        )
    actions.building_close(
        actor=world.grid_worker_a, building=b, closed_reason="demolished", reason="旧城改造拆除"
    )
    b = fresh(b)
    assert b.closed_at is not None and b.closed_reason == "demolished"
    assert b.closed_note == "旧城改造拆除"
    with pytest.raises(Conflict):
        actions.building_update(actor=world.grid_worker_a, building=b, floors=3)
    actions.building_reopen(actor=world.grid_worker_a, building=b, reason="误操作")
    assert fresh(b).closed_at is None
    assert Building.objects.filter(pk=b.pk).exists()


def test_a_building_with_open_rooms_is_not_closed(world):
    b = building(world.grid_worker_a)
    room(world.grid_worker_a, b)
    with pytest.raises(Conflict):
        actions.building_close(
            actor=world.grid_worker_a, building=b, closed_reason="demolished", reason="拆除"
        )


# --- rooms and households -------------------------------------------------------------------------


def test_a_room_takes_its_building_region_and_is_unique_while_open(world):
    b = building(world.grid_worker_a)
    r = room(world.grid_worker_a, b, number="302", unit="2", floor=3, area="89.5", use="rented")
    assert r.region_code == b.region_code
    assert r.area == Decimal("89.50")
    with pytest.raises(Conflict):
        room(world.grid_worker_a, b, number="302", unit="2")
    room(world.grid_worker_a, b, number="302", unit="1")  # another unit
    actions.room_close(actor=world.grid_worker_a, room=r, closed_reason="error", reason="录错了")
    room(world.grid_worker_a, b, number="302", unit="2")  # the closed one no longer counts


def test_a_room_rejects_a_bad_use_and_area(world):
    b = building(world.grid_worker_a)
    with pytest.raises(ValidationFailed) as exc:
        room(world.grid_worker_a, b, use="palace", area="-3")
    assert set(exc.value.detail) == {"use", "area"}


def test_a_household_without_a_room_names_its_grid(world):
    h = actions.household_create(actor=world.grid_worker_a, grid=world.grid_a.code, number="A-1")
    assert h.room is None and h.region_code == world.grid_a.code
    with pytest.raises(ValidationFailed):
        actions.household_create(actor=world.grid_worker_a)


def test_setting_the_head_of_a_household_needs_a_member(world):
    h = home(world.grid_worker_a)
    member = person(world.grid_worker_a, household=h, relation="spouse")
    stranger = person(world.grid_worker_a)
    with pytest.raises(ValidationFailed):
        actions.household_update(actor=world.grid_worker_a, household=h, head=stranger)
    actions.household_update(actor=world.grid_worker_a, household=h, head=member)
    assert fresh(h).head == member
    assert fresh(member).relation == "head"


def test_a_head_joining_a_household_without_one_becomes_its_head(world):
    h = home(world.grid_worker_a)
    head = person(world.grid_worker_a, household=h, relation="head")
    assert fresh(h).head == head
    with pytest.raises(ValidationFailed) as exc:
        person(world.grid_worker_a, household=h, relation="head", name="李四")
    assert "relation" in exc.value.detail


def test_a_household_with_members_is_not_closed(world):
    h = home(world.grid_worker_a)
    member = person(world.grid_worker_a, household=h)
    with pytest.raises(Conflict):
        actions.household_close(
            actor=world.grid_worker_a, household=h, closed_reason="moved_out", reason="整户迁出"
        )
    actions.person_close(
        actor=world.grid_worker_a, person=member, closed_reason="moved_out", reason="迁往外地"
    )
    actions.household_close(
        actor=world.grid_worker_a, household=h, closed_reason="moved_out", reason="整户迁出"
    )
    assert fresh(h).closed_reason == "moved_out"


# --- people ---------------------------------------------------------------------------------------


def test_a_person_gets_birth_date_and_sex_from_the_id_number(world):
    number = id_number(date(1948, 5, 17), sex="female")
    someone = person(world.grid_worker_a, id_number=number.lower(), phone="+86 139 0000 1111")
    someone = fresh(someone)
    assert someone.birth_date == date(1948, 5, 17)
    assert someone.sex == "female"
    assert someone.id_number == number
    assert someone.id_number_hash == crypto.lookup_hash("id_number", number)
    assert someone.id_number_mask == f"{number[:4]}**********{number[-4:]}"
    assert someone.phone == "13900001111"
    assert someone.phone_mask == "139****1111"
    assert someone.region_code == world.grid_a.code


def test_a_birth_date_or_sex_that_contradicts_the_id_number_is_refused(world):
    number = id_number(date(1990, 1, 1), sex="male")
    with pytest.raises(ValidationFailed) as exc:
        person(world.grid_worker_a, id_number=number, birth_date="1990-01-02", sex="female")
    assert set(exc.value.detail) >= {"birth_date"}
    with pytest.raises(ValidationFailed) as exc:
        person(world.grid_worker_a, id_number=number, sex="female")
    assert "sex" in exc.value.detail


def test_an_invalid_id_number_and_phone_are_named(world):
    number = id_number()
    wrong = number[:-1] + ("0" if number[-1] != "0" else "1")
    with pytest.raises(ValidationFailed) as exc:
        person(world.grid_worker_a, id_number=wrong, phone="12345")
    assert set(exc.value.detail) == {"id_number", "phone"}
    assert not Person.objects.exists()


def test_an_id_number_is_registered_once(world):
    number = id_number()
    first = person(world.grid_worker_a, id_number=number)
    with pytest.raises(Conflict) as exc:
        person(world.grid_worker_b, grid=world.grid_b, id_number=number.lower(), name="冒名")
    assert str(first.uuid) in exc.value.message
    assert exc.value.detail["person"] == str(first.uuid)
    assert "id_number" in exc.value.detail
    assert Person.objects.count() == 1


def test_a_person_without_a_household_names_a_grid(world):
    someone = person(world.grid_worker_a, grid=world.grid_a.code)
    assert someone.household is None and someone.region_code == world.grid_a.code
    with pytest.raises(ValidationFailed) as exc:
        actions.person_create(actor=world.grid_worker_a, name="无名")
    assert "household" in exc.value.detail


def test_changing_a_recorded_id_number_needs_a_reason(world):
    someone = person(world.grid_worker_a, id_number=id_number(date(1980, 3, 3)))
    other = id_number(date(1981, 4, 4), sex="female")
    with pytest.raises(ValidationFailed) as exc:
        actions.person_update(actor=world.grid_worker_a, person=someone, id_number=other)
    assert "reason" in exc.value.detail
    actions.person_update(
        actor=world.grid_worker_a, person=someone, id_number=other, reason="原号码录入错误"
    )
    someone = fresh(someone)
    assert someone.id_number == other
    assert (someone.birth_date, someone.sex) == (date(1981, 4, 4), "female")
    assert someone.version == 2


def test_a_first_id_number_needs_no_reason_and_a_wrong_birth_date_is_caught_later(world):
    someone = person(world.grid_worker_a, birth_date="1970-01-01")
    actions.person_update(actor=world.grid_worker_a, person=someone, id_number=id_number())
    assert fresh(someone).birth_date == date(1990, 1, 1)
    with pytest.raises(ValidationFailed) as exc:
        actions.person_update(actor=world.grid_worker_a, person=someone, birth_date="1991-01-01")
    assert "birth_date" in exc.value.detail


def test_closing_a_person_records_the_day_and_reopening_clears_it(world):
    h = home(world.grid_worker_a)
    head = person(world.grid_worker_a, household=h, relation="head")
    with pytest.raises(ValidationFailed):
        actions.person_close(
            actor=world.grid_worker_a, person=head, closed_reason="deceased", reason=""
        )
    actions.person_close(
        actor=world.grid_worker_a,
        person=head,
        closed_reason="deceased",
        reason="家属告知",
        on="2026年11月1日",
    )
    head = fresh(head)
    assert head.deceased_on == date(2026, 11, 1)
    assert head.closed_reason == "deceased"
    assert fresh(h).head is None
    actions.person_reopen(actor=world.grid_worker_a, person=head, reason="登记错误")
    head = fresh(head)
    assert head.closed_at is None and head.deceased_on is None


def test_a_person_moves_to_another_household_a_room_or_a_grid(world):
    h1 = home(world.grid_leader)
    someone = person(world.grid_leader, household=h1, relation="head")
    h2 = home(world.grid_leader, where=IN_GRID_B)
    actions.person_move(actor=world.grid_leader, person=someone, household=h2, reason="搬家")
    someone = fresh(someone)
    assert someone.household == h2 and someone.region_code == world.grid_b.code
    assert someone.relation == ""  # a head does not head the new household unasked
    assert fresh(h1).head is None
    target_room = room(world.grid_leader, building(world.grid_leader))
    actions.person_move(actor=world.grid_leader, person=someone, room=target_room)
    someone = fresh(someone)
    assert someone.household.room == target_room
    assert someone.relation == "head" and someone.household.head == someone
    actions.person_move(actor=world.grid_leader, person=someone, grid=world.grid_a)
    someone = fresh(someone)
    assert someone.household is None and someone.region_code == world.grid_a.code
    with pytest.raises(ValidationFailed):
        actions.person_move(
            actor=world.grid_leader, person=someone, grid=world.grid_a, room=target_room
        )


def test_a_grid_worker_cannot_move_a_person_out_of_their_grid(world):
    someone = person(world.grid_worker_a)
    with pytest.raises(PermissionDenied):
        actions.person_move(actor=world.grid_worker_a, person=someone, grid=world.grid_b)
    with pytest.raises(ValidationFailed):  # a household they cannot see is not found
        actions.person_move(
            actor=world.grid_worker_a,
            person=someone,
            household=home(world.grid_worker_b, where=IN_GRID_B),
        )


def test_people_and_buildings_have_no_delete_action_and_are_never_deleted(world):
    assert not [name for name in dir(actions) if name.endswith("_delete")]
    someone = person(world.grid_worker_a)
    actions.person_close(
        actor=world.grid_worker_a, person=someone, closed_reason="duplicate", reason="重复登记"
    )
    assert Person.objects.filter(pk=someone.pk).exists()


def test_an_unknown_record_is_not_found(world):
    with pytest.raises(NotFound):
        actions.person_update(
            actor=world.admin, person="00000000-0000-0000-0000-000000000000", name="x"
        )
    with pytest.raises(NotFound):
        actions.person_update(actor=world.admin, person="not-a-uuid", name="x")


# --- organisations and components -----------------------------------------------------------------


def _credit_code() -> str:
    """A valid unified social credit code (GB 32100) of a company in district 320113."""
    from gridgov.registry.validators import credit_check_char, org_check_char

    body = "MA1X2Y3Q"
    first17 = "91320113" + body + org_check_char(body)
    return first17 + credit_check_char(first17)


def test_an_organisation_in_a_building_takes_its_region_and_masks_its_phone(world):
    b = building(world.grid_worker_a)
    code = _credit_code()
    org = actions.organisation_create(
        actor=world.grid_worker_a,
        name="和畅便利店",
        kind="shop",
        credit_code=code.lower(),
        contact_phone="13800138000",
        building=b,
        staff_count=3,
    )
    org = fresh(org)
    assert org.region_code == b.region_code and (org.lon, org.lat) == (b.lon, b.lat)
    assert org.credit_code == code
    assert org.contact_phone == "13800138000" and org.contact_phone_mask == "138****8000"
    with pytest.raises(Conflict):
        actions.organisation_create(
            actor=world.grid_worker_a, name="另一家", credit_code=code, grid=world.grid_a
        )
    with pytest.raises(ValidationFailed) as exc:
        actions.organisation_create(
            actor=world.grid_worker_a,
            name="坏码",
            credit_code="91320113MA1X2Y3Z4A",
            grid=world.grid_a,
        )
    assert "credit_code" in exc.value.detail
    actions.organisation_close(
        actor=world.grid_worker_a, organisation=org, closed_reason="other", reason="已注销"
    )


def test_a_component_is_located_coded_and_its_status_kept(world):
    cover = category("01002", "污水井盖")
    code = "320113" + "01002" + "000123"
    lat, lon = IN_GRID_A
    c = actions.component_create(
        actor=world.supervisor, code=code, category=cover, lon=lon, lat=lat, owner_unit="水务集团"
    )
    assert c.region_code == world.grid_a.code
    with pytest.raises(Conflict):
        actions.component_create(actor=world.admin, code=code, category=cover, lon=lon, lat=lat)
    with pytest.raises(ValidationFailed) as exc:
        actions.component_create(
            actor=world.admin, code="320113010010001234", category="01002", lon=lon, lat=lat
        )
    assert "code" in exc.value.detail
    actions.component_update(actor=world.supervisor, component=c, version=1, status="damaged")
    assert fresh(c).status == "damaged"
    with pytest.raises(ValidationFailed):
        actions.component_update(actor=world.supervisor, component=c, status="stolen")
    with pytest.raises(ValidationFailed) as exc:
        actions.component_create(
            actor=world.admin, code=code[:-1] + "9", category=cover, lon=lon, lat=NO_GRID[0]
        )
    assert "lon" in exc.value.detail
    change = RecordChange.objects.filter(record_uuid=c.uuid, action="update").get()
    assert change.changes == {"status": ["intact", "damaged"]}


def test_region_codes_follow_regenerated_grids(world):
    b = building(world.grid_worker_a)
    someone = person(
        world.grid_worker_a, household=household(world.grid_worker_a, room(world.grid_worker_a, b))
    )
    Building.objects.filter(pk=b.pk).update(grid=world.grid_b)  # as grids generate does
    assert actions.region_codes_refresh(community_code="320113003001") == 1
    assert fresh(b).region_code == world.grid_b.code
    assert fresh(someone).region_code == world.grid_b.code
    assert Household.objects.get().region_code == world.grid_b.code


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_migration_keeps_existing_buildings_and_fills_their_scope():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate([("registry", "0001_initial")])
    old = executor.loader.project_state([("registry", "0001_initial")]).apps
    region = old.get_model("geo", "Region").objects.create(
        code="320113003001009", name="网格", level="grid"
    )
    old_building = old.get_model("registry", "Building")
    with_grid = old_building.objects.create(
        address="和畅路 8 号", lon=118.8, lat=32.0, community_code="320113003001", grid=region
    )
    without = old_building.objects.create(
        estate="和畅园", number="9栋", lon=118.8, lat=32.0, community_code="320113003001"
    )
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    with_grid, without = (Building.objects.get(pk=b.pk) for b in (with_grid, without))
    assert (with_grid.region_code, with_grid.address_key) == ("320113003001009", "和畅路8号")
    assert (without.region_code, without.address_key) == ("320113003001", "和畅园9栋")
    assert without.version == 1 and without.closed_at is None


def test_a_household_moving_to_a_room_of_another_grid_takes_its_members(world):
    h = home(world.grid_leader)
    member = person(world.grid_leader, household=h)
    elsewhere = room(world.grid_leader, building(world.grid_leader, where=IN_GRID_B))
    actions.household_update(actor=world.grid_leader, household=h, room=elsewhere, version=1)
    assert fresh(h).region_code == world.grid_b.code
    assert fresh(member).region_code == world.grid_b.code


def test_a_room_renumbered_onto_another_open_room_is_a_conflict(world):
    b = building(world.grid_worker_a)
    room(world.grid_worker_a, b, number="101")
    second = room(world.grid_worker_a, b, number="102")
    with pytest.raises(Conflict):
        actions.room_update(actor=world.grid_worker_a, room=second, number="101")
    actions.room_update(actor=world.grid_worker_a, room=second, number="103", use="vacant")
    assert (fresh(second).number, fresh(second).use, fresh(second).version) == ("103", "vacant", 2)


def test_an_organisation_update_records_its_new_contact_phone_masked(world):
    org = actions.organisation_create(
        actor=world.grid_worker_a, name="和畅超市", contact_phone="13912345678", grid=world.grid_a
    )
    actions.organisation_update(
        actor=world.grid_worker_a, organisation=org, contact_phone="025-85551234", staff_count=8
    )
    org = fresh(org)
    assert org.contact_phone == "02585551234" and org.contact_phone_mask == "025****1234"
    change = RecordChange.objects.get(record_uuid=org.uuid, action="update")
    assert change.changes == {
        "contact_phone": ["139****5678", "025****1234"],
        "staff_count": [None, 8],
    }
