"""The demo residents: rooms, households, people, tags, organisations and components for the demo
district's grids, fast, valid, private by construction, resumable and idempotent.

The small test world (tests/world.py) stands in for the demo district: a few buildings with
planned households in grids A and B (the dense old town of 迈皋桥), C and D; the loader is told
to fill the district 320113 (grid E lies in another district and stays empty).
"""

from __future__ import annotations

import io
from collections import Counter
from datetime import date
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from gridgov.core.masking import mask_id_number, mask_phone
from gridgov.core.models import Stamp
from gridgov.privacy import crypto
from gridgov.registry import demo
from gridgov.registry.models import (
    Building,
    Component,
    Household,
    Organisation,
    Person,
    PersonTag,
    Room,
)
from gridgov.registry.selectors import people_search
from gridgov.registry.validators import (
    check_component_code,
    check_credit_code,
    check_id_consistent,
    check_id_number,
    check_phone,
)
from tests.registry import factories as f
from tests.world import World

pytestmark = pytest.mark.django_db

TODAY = date(2026, 6, 1)
IN_GRID_C = (32.15, 118.85)
IN_GRID_D = (32.10, 118.95)


def _buildings(world: World) -> dict[str, list[Building]]:
    """Planned buildings: two blocks in grid A, a mixed one in B, one in C, a village house in D."""
    admin = world.admin
    return {
        "A": [
            f.building(admin, estate="和畅新村", number="1栋", floors=6, households=48),
            f.building(admin, estate="和畅新村", number="2栋", floors=6, households=36),
        ],
        "B": [
            f.building(
                admin,
                where=f.IN_GRID_B,
                estate="华电里",
                number="3栋",
                floors=7,
                households=56,
                kind="mixed",
            )
        ],
        "C": [f.building(admin, where=IN_GRID_C, estate="华电新寓", number="1栋", households=24)],
        "D": [
            f.building(
                admin, where=IN_GRID_D, estate="燕子矶1组", number="5号", floors=2, households=2
            )
        ],
    }


def _fill(**kwargs: Any) -> demo.RegistrySummary:
    options: dict[str, Any] = {
        "region": "320113",
        "seed": 7,
        "per_grid": 300,
        "today": TODAY,
        "pause": False,
    }
    return demo.demo_registry(**{**options, **kwargs})


@pytest.fixture
def filled(world: World, standard_categories: Any) -> dict[str, list[Building]]:
    buildings = _buildings(world)
    summary = _fill()
    assert summary.complete
    return buildings


def _signature() -> list[tuple[Any, ...]]:
    return sorted(
        Person.objects.values_list(
            "uuid", "region_code", "name", "sex", "birth_date", "id_number_hash", "relation"
        )
    )


def test_each_building_gets_a_room_per_planned_household(
    filled: dict[str, list[Building]],
) -> None:
    for grid in ("A", "C", "D"):
        for building in filled[grid]:
            rooms = Room.objects.filter(building=building)
            assert rooms.count() == building.households
            occupied = rooms.exclude(use="vacant")
            assert Household.objects.filter(room__in=rooms).count() == occupied.count()
    mixed = filled["B"][0]
    flats = Room.objects.filter(building=mixed).exclude(use="business")
    assert flats.count() == mixed.households
    assert Room.objects.filter(building=mixed, use="business").count() >= 2


def test_rooms_are_numbered_by_unit_floor_and_number_without_twins(
    filled: dict[str, list[Building]],
) -> None:
    block = filled["A"][0]
    rooms = list(Room.objects.filter(building=block).values_list("unit", "floor", "number"))
    assert len(set(rooms)) == len(rooms)
    assert ("1", 1, "101") in rooms
    assert all(number.startswith(str(floor)) for _unit, floor, number in rooms)


def test_every_id_number_is_valid_and_agrees_with_the_birth_date_and_sex(filled: Any) -> None:
    people = list(Person.objects.all())
    assert len(people) > 300
    for person in people:
        facts = check_id_number(person.id_number, today=TODAY)
        check_id_consistent(facts, person.birth_date, person.sex)
        if person.phone:
            check_phone(person.phone)


def test_registered_residents_carry_the_district_code_and_floating_ones_another(
    filled: Any,
) -> None:
    regions: dict[str, Counter[str]] = {"registered": Counter(), "floating": Counter()}
    for person in Person.objects.filter(person_type__in=list(regions)):
        regions[person.person_type][person.id_number[:6]] += 1
    registered = regions["registered"]
    assert registered.most_common(1)[0][0] == "320113"
    assert registered["320113"] / sum(registered.values()) > 0.8
    assert regions["floating"]["320113"] == 0


def test_personal_numbers_are_stored_encrypted_beside_their_hashes_and_masks(
    filled: Any,
) -> None:
    person = Person.objects.exclude(phone_hash="").first()
    assert person is not None
    with connection.cursor() as cursor:
        cursor.execute("SELECT id_number, phone FROM registry_person WHERE id = %s", [person.pk])
        stored_id, stored_phone = cursor.fetchone()
    assert stored_id.startswith("g1$") and person.id_number not in stored_id
    assert stored_phone.startswith("g1$") and person.phone not in stored_phone
    assert person.id_number_hash == crypto.lookup_hash(crypto.ID_NUMBER, person.id_number)
    assert person.phone_hash == crypto.lookup_hash(crypto.PHONE, person.phone)
    assert person.id_number_mask == mask_id_number(person.id_number)
    assert person.phone_mask == mask_phone(person.phone)


def test_the_grid_worker_of_grid_a_finds_a_resident_by_id_number_phone_and_name(
    world: World, filled: Any
) -> None:
    person = Person.objects.filter(region_code=world.grid_a.code).exclude(phone_hash="").first()
    assert person is not None
    for query in (person.id_number, person.phone, person.name):
        found = people_search(world.grid_worker_a, query)
        assert person.pk in {p.pk for p in found}


def test_the_grid_worker_of_grid_b_does_not_find_a_resident_of_grid_a(
    world: World, filled: Any
) -> None:
    person = Person.objects.filter(region_code=world.grid_a.code).first()
    assert person is not None
    assert not people_search(world.grid_worker_b, person.id_number).exists()


def test_each_household_has_one_head_who_lives_in_it(filled: Any) -> None:
    for household in Household.objects.all():
        members = list(Person.objects.filter(household=household))
        heads = [p for p in members if p.relation == "head"]
        assert len(heads) == 1
        assert household.head_id == heads[0].pk
        assert {p.region_code for p in members} == {household.region_code}


def test_people_and_rooms_take_the_scope_of_their_grid(
    world: World, filled: dict[str, list[Building]]
) -> None:
    building = filled["A"][0]
    assert set(Room.objects.filter(building=building).values_list("region_code", flat=True)) == {
        world.grid_a.code
    }
    assert not Person.objects.filter(region_code__startswith="320114").exists()


def test_elderly_living_alone_are_tagged_and_key_person_tags_are_rare(filled: Any) -> None:
    alone = PersonTag.objects.filter(tag_type__code="elderly_alone").select_related("person")
    for tag in alone:
        assert tag.person.birth_date is not None
        assert (TODAY - tag.person.birth_date).days >= 60 * 365
        assert Person.objects.filter(household=tag.person.household).count() == 1
    people = Person.objects.count()
    key_persons = PersonTag.objects.filter(tag_type__sensitivity__gte=1).count()
    assert key_persons <= max(5, people * 0.03)


def test_organisations_have_valid_credit_codes_and_components_valid_codes(filled: Any) -> None:
    organisations = list(Organisation.objects.all())
    assert {o.kind for o in organisations} >= {"shop"}
    for organisation in organisations:
        check_credit_code(organisation.credit_code)
        check_phone(organisation.contact_phone)
        assert organisation.region_code.startswith("320113")
    shops = [o for o in organisations if o.building_id == Building.objects.get(kind="mixed").pk]
    assert len(shops) >= 2
    components = list(Component.objects.select_related("category"))
    assert len(components) >= 20
    for component in components:
        check_component_code(component.code, component.category.code)
        assert component.code.startswith("320113")
        assert component.competent_unit and component.owner_unit and component.maintainer_unit
    assert len({c.code for c in components}) == len(components)


def test_a_second_run_adds_nothing(filled: Any) -> None:
    def counts() -> tuple[int, ...]:
        return (
            Room.objects.count(),
            Household.objects.count(),
            Person.objects.count(),
            PersonTag.objects.count(),
            Organisation.objects.count(),
            Component.objects.count(),
        )

    before = counts()
    again = _fill()
    assert "nothing was added" in again.message
    assert counts() == before
    assert demo.registry_progress() is None


def test_a_stopped_run_continues_where_it_stopped_with_the_same_residents(
    world: World, standard_categories: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _buildings(world)
    with transaction.atomic():
        _fill()
        straight = _signature()
        transaction.set_rollback(True)
    assert not Person.objects.exists()

    monkeypatch.setattr(demo, "BATCH_PEOPLE", 1)  # one grid a transaction

    class Stop(Exception):
        pass

    def stop_after_the_first(done: int, total: int) -> None:
        raise Stop

    with pytest.raises(Stop):
        _fill(progress=stop_after_the_first)
    assert demo.registry_progress() == (1, 4)
    resumed = _fill(seed=99, per_grid=10)  # the stored plan wins
    assert resumed.seed == 7 and resumed.per_grid == 300
    assert resumed.grids_added == 3 and resumed.complete
    assert _signature() == straight


def test_the_setting_scales_the_households_of_every_building(
    world: World, standard_categories: Any, settings: Any
) -> None:
    _buildings(world)
    settings.GRIDGOV_DEMO_HOUSEHOLDS_PER_GRID = 150
    _fill(per_grid=None)
    flats = Room.objects.exclude(use="business").count()
    assert 70 <= flats <= 100  # half of 166, rounded building by building


def test_no_residents_when_the_setting_is_zero(world: World, settings: Any) -> None:
    _buildings(world)
    settings.GRIDGOV_DEMO_HOUSEHOLDS_PER_GRID = 0
    summary = _fill(per_grid=None)
    assert "no demo residents" in summary.message
    assert not Room.objects.exists() and not Stamp.objects.filter(key=demo.DONE_KEY).exists()


def test_buildings_that_have_rooms_already_are_left_alone(
    world: World, standard_categories: Any
) -> None:
    buildings = _buildings(world)
    kept = buildings["A"][0]
    f.room(world.admin, kept, number="101", unit="1")
    _fill()
    assert Room.objects.filter(building=kept).count() == 1
    assert Room.objects.filter(building=buildings["A"][1]).count() == 36


def test_the_command_refuses_without_the_demo_district(world: World) -> None:
    with pytest.raises(CommandError, match="demo district is not loaded"):
        call_command("demo", "registry", stdout=io.StringIO())


def test_the_command_fills_the_demo_district_and_reports_progress(
    world: World, standard_categories: Any
) -> None:
    _buildings(world)
    Stamp.objects.create(key="demo.loaded", version=7)
    out = io.StringIO()
    call_command("demo", "registry", "--households-per-grid", "60", stdout=out)
    text = out.getvalue()
    assert "4 of 4 grids" in text and "people in" in text
    assert Person.objects.filter(region_code=world.grid_a.code).exists()
    again = io.StringIO()
    call_command("demo", "registry", stdout=again)
    assert "nothing was added" in again.getvalue()


# --- the areas, without a database ----------------------------------------------------------------


def _area(kind: str, *, households: int = 1_200) -> demo.GridRows:
    buildings = [
        demo.BuildingInfo(i, "和园", f"{i}栋", f"和园{i}栋", "residential", 6, 48, 118.8, 32.1)
        for i in range(1, households // 48 + 1)
    ]
    grid = demo.GridInput("320113003001001", kind, "栖霞区", "长营社区居委会", buildings)
    return demo.plan_grid(grid, seed=1, today=TODAY, tags=["elderly_alone"])


def _share(rows: demo.GridRows, test: Any) -> float:
    return sum(1 for p in rows.people if test(p)) / len(rows.people)


def test_the_old_town_is_older_than_the_development_zone() -> None:
    def old(p: dict[str, Any]) -> bool:
        return bool(p["_age"] >= 60)

    assert _share(_area("dense"), old) > 0.15
    assert _share(_area("dense"), old) > 2 * _share(_area("zone"), old)


def test_the_village_turned_estate_has_many_floating_residents() -> None:
    def floating(p: dict[str, Any]) -> bool:
        return p["person_type"] != "registered"

    assert _share(_area("resettled"), floating) > 0.3
    assert _share(_area("resettled"), floating) > 1.5 * _share(_area("dense"), floating)


def test_villages_are_sparse_with_many_empty_houses() -> None:
    village, town = _area("village"), _area("urban")
    assert len(village.households) < len(town.households)
    assert len(village.people) / 1_200 < 2.6


def test_households_are_about_two_and_a_half_people_and_mostly_han() -> None:
    rows = _area("urban")
    size = len(rows.people) / len(rows.households)
    assert 2.2 <= size <= 3.2
    han = _share(rows, lambda p: p["ethnicity"] == "汉族")
    assert han > 0.95


def test_the_same_seed_gives_the_same_residents() -> None:
    first, second = _area("dense"), _area("dense")
    assert [p["name"] for p in first.people] == [p["name"] for p in second.people]
    assert [p["id_number"] for p in first.people] == [p["id_number"] for p in second.people]


def test_synthetic_numbers_pass_their_checks() -> None:
    import random

    rng = random.Random(3)
    for prefix in ("91", "92", "12", "52", "51", "11"):
        check_credit_code(demo.credit_code(rng, prefix, "320113"))
    number = demo.id_number("320113", date(1950, 2, 28), 13)
    assert check_id_number(number).sex == "male"
    assert check_id_number(demo.id_number("830000", date(1988, 8, 8), 2)).sex == "female"
