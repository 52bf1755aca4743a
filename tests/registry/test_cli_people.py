"""``gridgov registry people`` and ``gridgov registry person`` as a named user.

The command line finds people exactly as the web and the API do (``selectors.people_search``,
in the user's scope), prints their numbers masked, and records the search, or the view of a
record, in the access log (channel ``cli``), the searched numbers masked there too.
"""

from __future__ import annotations

import io
import json
from datetime import date

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from gridgov.core.masking import mask_id_number, mask_phone
from gridgov.privacy.models import AccessLog
from gridgov.registry import actions
from gridgov.registry.models import Person
from gridgov.registry.selectors import PERSON_VIEW_FIELDS
from tests.registry.factories import IN_GRID_B, home, id_number, person
from tests.world import World

pytestmark = pytest.mark.django_db

SECRET_ID = id_number(date(1950, 4, 3), sex="female", serial=42)
SECRET_PHONE = "13812345678"


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("registry", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def people(world: World) -> dict[str, Person]:
    """王秀英 (id number and phone recorded) and 王小明 in grid A; 王大海 in grid B."""
    worker = world.grid_worker_a
    h = home(worker)
    head = person(
        worker, household=h, name="王秀英", id_number=SECRET_ID, phone=SECRET_PHONE, relation="head"
    )
    grandson = person(worker, household=h, name="王小明", relation="grandchild")
    far = person(world.grid_worker_b, household=home(world.grid_worker_b, where=IN_GRID_B))
    actions.person_update(actor=world.grid_worker_b, person=far, name="王大海")
    return {"head": head, "grandson": grandson, "far": fresh_person(far)}


def fresh_person(p: Person) -> Person:
    return Person.objects.get(pk=p.pk)


def searches() -> list[AccessLog]:
    return list(AccessLog.objects.filter(kind="search").order_by("pk"))


# --- people ----------------------------------------------------------------------------------


def test_a_grid_worker_finds_the_people_of_their_grid_by_name_with_numbers_masked(
    world: World, people: dict[str, Person], english: None
) -> None:
    out = run("people", "--user", "grid_worker_a", "--name", "王")

    assert "王秀英" in out and "王小明" in out
    assert "王大海" not in out, "grid B is outside grid worker A's scope"
    assert mask_id_number(SECRET_ID) in out and mask_phone(SECRET_PHONE) in out
    assert SECRET_ID not in out and SECRET_PHONE not in out
    assert out.splitlines()[0].split()[:3] == ["Name", "Sex", "Date"]
    (log,) = searches()
    assert (log.user, log.channel, log.screen, log.count) == (
        world.grid_worker_a,
        "cli",
        "gridgov registry people",
        2,
    )
    assert log.filter == {"name": "王"}


def test_a_search_by_phone_or_id_number_is_exact_and_logged_masked(
    world: World, people: dict[str, Person]
) -> None:
    by_phone = run("people", "--user", "grid_worker_a", "--phone", SECRET_PHONE)
    by_id = run("people", "--as", "grid_worker_a", "--id-number", SECRET_ID.lower())

    for out in (by_phone, by_id):
        assert "王秀英" in out and "王小明" not in out
        assert SECRET_PHONE not in out and SECRET_ID not in out
    phone_log, id_log = searches()
    assert phone_log.filter == {"phone": mask_phone(SECRET_PHONE)}
    assert id_log.filter == {"id_number": mask_id_number(SECRET_ID)}
    assert SECRET_PHONE not in json.dumps([phone_log.filter, id_log.filter])


def test_several_criteria_must_all_match(world: World, people: dict[str, Person]) -> None:
    assert "王秀英" in run("people", "--user", "admin", "--name", "秀", "--phone", SECRET_PHONE)
    out = run("people", "--user", "admin", "--name", "小明", "--phone", SECRET_PHONE)
    assert "王" not in out
    assert [log.count for log in searches()] == [1, 0]


def test_grid_narrows_the_search_to_a_region_of_the_users_scope(
    world: World, people: dict[str, Person]
) -> None:
    everywhere = run("people", "--user", "admin", "--name", "王")
    in_b = run("people", "--user", "admin", "--name", "王", "--grid", world.grid_b.code)
    assert "王秀英" in everywhere and "王大海" in everywhere
    assert "王大海" in in_b and "王秀英" not in in_b
    assert searches()[-1].filter == {"name": "王", "grid": world.grid_b.code}


def test_the_json_format_answers_what_the_api_answers(
    world: World, people: dict[str, Person]
) -> None:
    out = run("people", "--user", "grid_worker_a", "--name", "王秀英", "--format", "json")
    (line,) = out.splitlines()
    found = json.loads(line)
    head = people["head"]
    assert found["uuid"] == str(head.uuid) and found["name"] == "王秀英"
    assert found["id_number_mask"] == mask_id_number(SECRET_ID)
    assert found["phone_mask"] == mask_phone(SECRET_PHONE)
    assert "id_number" not in found and "phone" not in found


def test_closed_records_are_found_only_when_asked_for(
    world: World, people: dict[str, Person]
) -> None:
    actions.person_close(
        actor=world.grid_worker_a,
        person=people["grandson"],
        closed_reason="moved_out",
        reason="去外地读书",
    )
    assert "王小明" not in run("people", "--user", "grid_worker_a", "--name", "小明")
    out = run("people", "--user", "grid_worker_a", "--name", "小明", "--include-closed")
    assert "王小明" in out
    assert searches()[-1].filter == {"name": "小明", "include_closed": True}


def test_the_limit_says_that_more_were_found(
    world: World, people: dict[str, Person], english: None
) -> None:
    out = run("people", "--user", "admin", "--name", "王", "--limit", "2")
    assert len([line for line in out.splitlines() if "王" in line]) == 2
    assert "only the first 2: narrow the search" in out


def test_nobody_found_is_said_and_logged(
    world: World, people: dict[str, Person], english: None
) -> None:
    assert run("people", "--user", "grid_worker_b", "--name", "王秀英").strip() == "Nobody found."
    assert searches()[-1].count == 0


@pytest.mark.parametrize(
    ("option", "value", "refusal"),
    [
        ("--phone", "王秀英", "--phone takes a phone number"),
        ("--id-number", "13812345678", "--id-number takes an 18-character id number"),
        ("--name", "13812345678", "--name takes a name or a part of it"),
        ("--grid", "A1", "--grid takes a region code"),
    ],
)
def test_a_criterion_of_the_wrong_kind_is_refused_and_nothing_is_logged(
    world: World, people: dict[str, Person], english: None, option: str, value: str, refusal: str
) -> None:
    extra = ["--name", "王"] if option == "--grid" else []
    with pytest.raises(CommandError) as exc:
        run("people", "--user", "admin", option, value, *extra)
    assert refusal in str(exc.value)
    assert SECRET_PHONE not in str(exc.value)
    assert searches() == []


def test_a_search_needs_a_criterion_and_a_known_user(world: World, english: None) -> None:
    with pytest.raises(CommandError, match="give --name, --phone or --id-number"):
        run("people", "--user", "admin", "--grid", world.grid_a.code)
    with pytest.raises(CommandError, match="no active user"):
        run("people", "--user", "somebody", "--name", "王")


def test_users_without_base_data_find_nobody(world: World, people: dict[str, Person]) -> None:
    for username in ("resident", "unit_handler"):
        out = run("people", "--user", username, "--name", "王", "--format", "json")
        assert out == ""
    assert [log.count for log in searches()] == [0, 0]


# --- person ----------------------------------------------------------------------------------


def test_a_persons_record_is_shown_masked_and_the_view_is_logged(
    world: World, people: dict[str, Person], english: None
) -> None:
    head = people["head"]
    actions.person_tag_add(actor=world.grid_worker_a, person=head, tag="elderly_alone")
    out = run("person", str(head.uuid), "--user", "grid_worker_a")

    shown = {line.split("  ")[0]: line.split("  ")[-1].strip() for line in out.splitlines()}
    assert shown["Name"] == "王秀英" and shown["Date of birth"] == "1950-04-03"
    assert shown["Sex"] == "female" and shown["Relation to the head"] == "head of household"
    assert shown["Id number"] == mask_id_number(SECRET_ID)
    assert shown["Phone"] == mask_phone(SECRET_PHONE)
    assert SECRET_ID not in out and SECRET_PHONE not in out
    assert shown["Tags"] == "Elderly living alone"
    assert shown["Record id"] == f"{head.uuid} (v{head.version})"
    (log,) = AccessLog.objects.filter(kind="view", subject_uuid=head.uuid)
    assert (log.user, log.channel, log.screen) == (
        world.grid_worker_a,
        "cli",
        "gridgov registry person",
    )
    assert set(log.fields) == set(PERSON_VIEW_FIELDS)
    assert log.region_code == world.grid_a.code


def test_a_sensitive_tag_is_shown_only_to_those_cleared_for_it(
    world: World, people: dict[str, Person]
) -> None:
    grandson = people["grandson"]
    actions.person_tag_add(actor=world.grid_worker_a, person=grandson, tag="community_correction")
    cleared = json.loads(
        run("person", str(grandson.uuid), "--user", "grid_worker_a", "--format", "json")
    )
    uncleared = json.loads(
        run("person", str(grandson.uuid), "--user", "supervisor", "--format", "json")
    )
    assert [t["code"] for t in cleared["tags"]] == ["community_correction"]
    assert uncleared["tags"] == []


def test_a_person_out_of_scope_is_not_found_and_nothing_is_logged(
    world: World, people: dict[str, Person]
) -> None:
    with pytest.raises(CommandError):
        run("person", str(people["far"].uuid), "--user", "grid_worker_a")
    with pytest.raises(CommandError):
        run("person", "not-a-uuid", "--user", "grid_worker_a")
    assert not AccessLog.objects.filter(kind="view").exists()


def test_a_closed_record_says_when_and_why(world: World, people: dict[str, Person]) -> None:
    actions.person_close(
        actor=world.grid_worker_a,
        person=people["grandson"],
        closed_reason="moved_out",
        reason="去外地读书",
    )
    out = run("person", str(people["grandson"].uuid), "--user", "grid_worker_a")
    assert "去外地读书" in out
