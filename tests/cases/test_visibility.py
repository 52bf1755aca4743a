"""Who sees which case (cases_visible_to, case_visible, case_get) and whose to-do list holds it
(todo_q, todo_counts) in each state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser

from gridgov.accounts import actions as accounts
from gridgov.accounts.models import Role, User
from gridgov.cases.models import Case
from gridgov.cases.permissions import allowed_transitions
from gridgov.cases.selectors import (
    CaseFilter,
    case_get,
    case_visible,
    cases_filtered,
    cases_visible_to,
    todo_counts,
    todo_q,
)
from gridgov.cases.workflow import State
from gridgov.core.errors import NotFound
from gridgov.core.worktime import local_zone
from tests.cases.factories import IN_GRID_A, IN_GRID_B, act, report
from tests.cases.test_transitions import OTHER_UNIT, PERSONA_NAMES, UNIT, case_in
from tests.world import PASSWORD, World

pytestmark = pytest.mark.django_db

IN_GRID_C = (32.15, 118.85)
IN_GRID_D = (32.10, 118.95)
IN_GRID_E = (31.95, 118.75)


def sees(user: Any, case: Case) -> bool:
    """Whether every reader agrees that ``user`` sees ``case`` (and fail if they disagree)."""
    listed = cases_visible_to(user).filter(pk=case.pk).exists()
    single = case_visible(case, user)
    try:
        case_get(case.number, user)
        got = True
    except NotFound:
        got = False
    assert listed == single == got, f"the selectors disagree: {listed=} {single=} {got=}"
    return listed


def handler_of(unit_code: str, world: World, name: str = "yuhua_handler") -> User:
    user = accounts.user_create(username=name, password=PASSWORD)
    accounts.role_assign(user=user, role=Role.UNIT_HANDLER, unit=world.units[unit_code])
    return user


# --- region staff, reporters, residents -------------------------------------------------------


def test_a_grid_worker_of_grid_b_does_not_see_a_case_in_grid_a(world: World) -> None:
    case = report(world.resident)
    assert sees(world.grid_worker_a, case)
    assert not sees(world.grid_worker_b, case)
    with pytest.raises(NotFound):
        case_get(case.number, world.grid_worker_b)


def test_the_reporter_sees_their_own_report_even_outside_their_grid(world: World) -> None:
    theirs = report(world.grid_worker_b, where=IN_GRID_A)
    other = report(world.resident, where=IN_GRID_A)
    assert sees(world.grid_worker_b, theirs)
    assert not sees(world.grid_worker_b, other)
    assert list(cases_visible_to(world.grid_worker_b)) == [theirs]


def test_a_resident_sees_only_their_own_reports(world: World) -> None:
    mine = report(world.resident)
    neighbours = report(world.grid_worker_a)  # in the resident's own community
    assert sees(world.resident, mine) and not sees(world.resident, neighbours)
    assert list(cases_visible_to(world.resident)) == [mine]
    # still theirs when it moves on, and after it is closed
    closed = case_in(world, State.CLOSED, reporter="resident")
    assert sees(world.resident, closed)


@pytest.mark.parametrize(
    ("persona", "visible"),
    [
        ("admin", "ABCDE"),
        ("leader", "ABCD"),
        ("intake_operator", "ABCD"),
        ("shift_leader", "ABCD"),
        ("dispatcher", "ABCD"),
        ("supervisor", "ABC"),
        ("grid_leader", "AB"),
        ("grid_worker_a", "A"),
        ("grid_worker_b", "B"),
        ("unit_handler", ""),
        ("resident", ""),
        ("nobody", ""),
    ],
)
def test_region_staff_see_the_cases_in_their_subtree(
    world: World, persona: str, visible: str
) -> None:
    where = {"A": IN_GRID_A, "B": IN_GRID_B, "C": IN_GRID_C, "D": IN_GRID_D, "E": IN_GRID_E}
    cases = {grid: report(world.admin, where=point) for grid, point in where.items()}
    assert cases["E"].region_code == "320114001001001"
    user = world.users[persona]
    assert "".join(g for g, c in cases.items() if sees(user, c)) == visible
    assert cases_visible_to(user).count() == len(visible)


def test_a_user_without_roles_an_inactive_user_and_a_visitor_see_nothing(world: World) -> None:
    case = report(world.grid_worker_a)
    gone = world.intake_operator
    gone.is_active = False
    gone.save(update_fields=["is_active"])
    for user in (world.nobody, gone, AnonymousUser(), None):
        assert not case_visible(case, user)
        assert not cases_visible_to(user).exists()
        with pytest.raises(NotFound):
            case_get(case.number, user)


def test_a_hidden_case_and_a_missing_one_answer_alike(world: World, english: None) -> None:
    case = report(world.grid_worker_a)
    with pytest.raises(NotFound) as hidden:
        case_get(case.number, world.grid_worker_b)
    with pytest.raises(NotFound) as missing:
        case_get("320113-20000101-00001", world.grid_worker_b)
    assert hidden.value.status == missing.value.status == 404
    assert hidden.value.message == f"no case {case.number}"
    assert missing.value.message == "no case 320113-20000101-00001"
    assert hidden.value.detail == missing.value.detail == {}


# --- units ------------------------------------------------------------------------------------


def test_a_unit_handler_sees_the_cases_of_their_unit_and_no_others(world: World) -> None:
    waiting = case_in(world, State.REGISTERED)  # in the street their unit serves
    assert not sees(world.unit_handler, waiting)
    led = act(case_in(world, State.REGISTERED), world.dispatcher, "dispatch", lead_unit=UNIT)
    assisted = act(
        case_in(world, State.REGISTERED),
        world.dispatcher,
        "dispatch",
        lead_unit=OTHER_UNIT,
        assisting_units=[UNIT],
    )
    others = act(
        case_in(world, State.REGISTERED), world.dispatcher, "dispatch", lead_unit=OTHER_UNIT
    )
    assert sees(world.unit_handler, led)
    assert sees(world.unit_handler, assisted)
    assert not sees(world.unit_handler, others)
    assert set(cases_visible_to(world.unit_handler)) == {led, assisted}
    yuhua = handler_of(OTHER_UNIT, world)
    assert set(cases_visible_to(yuhua)) == {assisted, others}


def test_after_a_send_back_the_unit_no_longer_sees_the_case(world: World) -> None:
    case = case_in(world, State.SENT_BACK)
    assert case.lead_unit is None
    assert not sees(world.unit_handler, case)
    with pytest.raises(NotFound):
        case_get(case.number, world.unit_handler)
    again = act(case, world.dispatcher, "dispatch", lead_unit=UNIT)
    assert sees(world.unit_handler, again)


def test_a_case_led_and_assisted_by_one_handlers_units_is_listed_once(world: World) -> None:
    both = handler_of(OTHER_UNIT, world, name="two_units")
    accounts.role_assign(user=both, role=Role.UNIT_HANDLER, unit=world.units[UNIT])
    case = act(
        case_in(world, State.REGISTERED),
        world.dispatcher,
        "dispatch",
        lead_unit=OTHER_UNIT,
        assisting_units=[UNIT],
    )
    assert list(cases_visible_to(both)) == [case]
    assert cases_filtered(both, CaseFilter()).count() == 1
    assert todo_counts(both)["total"] == 1


def test_an_inactive_unit_sees_nothing(world: World) -> None:
    case = case_in(world, State.HANDLING)
    unit = world.units[UNIT]
    unit.is_active = False
    unit.save(update_fields=["is_active"])
    handler = User.objects.get(pk=world.unit_handler.pk)  # a fresh request
    assert not sees(handler, case)


# --- to-do lists --------------------------------------------------------------------------------

#: Whose turn it is for a normal case in grid A reported by grid worker A, state by state: the
#: personas with a to-do action (of the table) they may take now.
TODO: dict[str, set[str]] = {
    State.REPORTED: {"intake_operator", "shift_leader"},
    "reported+urgent": {"intake_operator", "shift_leader", "dispatcher"},
    State.ACCEPTED: {"intake_operator", "shift_leader"},
    State.VERIFYING: {
        "intake_operator",
        "shift_leader",
        "supervisor",
        "grid_leader",
        "grid_worker_a",
    },
    State.REGISTERED: {"intake_operator", "shift_leader", "dispatcher"},
    State.SENT_BACK: {"dispatcher", "shift_leader"},
    State.DISPATCHED: {"unit_handler"},
    State.HANDLING: {"unit_handler"},
    "handling+extension": {"unit_handler", "dispatcher", "shift_leader"},
    "handling+suspension": {"unit_handler", "dispatcher", "shift_leader"},
    "handling+supervised": {"unit_handler"},
    State.SUSPENDED: set(),
    State.CHECKING: {"supervisor", "intake_operator"},
    State.CHECKED: {"shift_leader"},
    State.SELF_HANDLED: {"intake_operator", "shift_leader"},
    State.CLOSED: set(),
    State.DECLINED: set(),
    State.VOIDED: set(),
    State.MERGED: set(),
}


def case_for(world: World, situation: str) -> Case:
    if situation == "reported+urgent":
        return case_in(world, State.REPORTED, urgency="urgent")
    if situation == "handling+supervised":
        return act(case_in(world, State.HANDLING), world.leader, "supervise", note="请尽快")
    return case_in(world, situation)


def in_todo(user: Any, case: Case) -> bool:
    return Case.objects.filter(todo_q(user), pk=case.pk).exists()


@pytest.mark.parametrize("situation", list(TODO))
def test_the_to_do_lists_hold_the_case_for_the_personas_whose_turn_it_is(
    world: World, situation: str
) -> None:
    case = case_for(world, situation)
    # the table above is whose turn it is by the case page's buttons
    with_a_button = {
        p for p in PERSONA_NAMES if any(t.todo for t in allowed_transitions(case, world.users[p]))
    }
    assert with_a_button == TODO[situation]
    for persona in PERSONA_NAMES:
        user = world.users[persona]
        expected = persona in TODO[situation]
        assert in_todo(user, case) == expected, persona
        mine = cases_filtered(user, CaseFilter(mine=True)).filter(pk=case.pk).exists()
        assert mine == expected, persona


@pytest.mark.parametrize("state", [State.REPORTED, State.ACCEPTED])
def test_a_dispatchers_to_do_list_holds_only_urgent_undispatched_cases(
    world: World, state: str
) -> None:
    assert not in_todo(world.dispatcher, case_in(world, state))


@pytest.mark.parametrize("state", [State.SUSPENDED, State.CHECKING, State.CHECKED])
def test_a_units_to_do_list_leaves_out_cases_waiting_for_someone_else(
    world: World, state: str
) -> None:
    assert not in_todo(world.unit_handler, case_in(world, state))


def test_the_to_do_counts_split_by_light(world: World) -> None:
    zone = local_zone()
    now = datetime(2026, 11, 23, 10, 0, tzinfo=zone)
    # the register limit is 30 working minutes, yellow after 24
    report(world.grid_worker_a, at=datetime(2026, 11, 23, 9, 55, tzinfo=zone))  # green
    report(world.grid_worker_a, at=datetime(2026, 11, 23, 9, 35, tzinfo=zone))  # yellow
    report(world.grid_worker_a, at=datetime(2026, 11, 23, 9, 0, tzinfo=zone))  # red
    report(world.admin, where=IN_GRID_E, at=datetime(2026, 11, 23, 9, 0, tzinfo=zone))
    expected = {"total": 3, "red": 1, "yellow": 1, "green": 1}
    assert todo_counts(world.intake_operator, now=now) == expected
    assert todo_counts(world.shift_leader, now=now) == expected
    for persona in ("grid_worker_a", "unit_handler", "resident", "nobody", "admin"):
        assert todo_counts(world.users[persona], now=now)["total"] == 0, persona
    for light, count in (("red", 1), ("yellow", 1), ("green", 1), ("none", 0)):
        found = cases_filtered(world.intake_operator, CaseFilter(light=light), now=now)
        assert found.count() == count, light


def test_the_to_do_list_follows_the_case_round_the_loop(world: World) -> None:
    case = report(world.grid_worker_a)
    steps = [
        ("accept", "intake_operator", {}),
        ("register", "intake_operator", {}),
        ("dispatch", "dispatcher", {"lead_unit": UNIT}),
        ("sign", "unit_handler", {}),
        ("feedback", "unit_handler", {"note": "已修复"}),
        ("check_pass", "supervisor", {}),
        ("close", "shift_leader", {}),
    ]
    for action, persona, inputs in steps:
        assert in_todo(world.users[persona], case), f"{action} is not in {persona}'s list"
        case = act(case, world.users[persona], action, **inputs)
    assert not any(in_todo(world.users[p], case) for p in PERSONA_NAMES)
