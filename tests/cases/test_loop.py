"""One case around the whole closed loop, with the personas of tests/world.py."""

from __future__ import annotations

import pytest

from gridgov.cases.models import CaseEvent
from gridgov.cases.workflow import State
from gridgov.core.errors import Conflict, PermissionDenied
from tests.cases.factories import act, report, walk
from tests.world import World

pytestmark = pytest.mark.django_db


def test_a_grid_workers_report_goes_round_the_loop_and_closes(world: World) -> None:
    case = report(world.grid_worker_a)
    assert case.number.startswith("320113-")
    assert case.region_code == "320113003001001"
    assert case.state == State.REPORTED and case.due_at is not None and case.step == "register"
    assert case.suggested_unit is not None and case.suggested_unit.code == "street-office-003"

    case = walk(
        case, world, "accept", "register", "dispatch", "sign", "feedback", "check_pass", "close"
    )

    assert case.state == State.CLOSED
    assert case.due_at is None and case.closed_at is not None
    events = list(CaseEvent.objects.filter(case=case).values_list("action", "version"))
    assert events == [
        ("report", 1),
        ("accept", 2),
        ("register", 3),
        ("dispatch", 4),
        ("sign", 5),
        ("feedback", 6),
        ("check_pass", 7),
        ("close", 8),
    ]
    assert case.version == 8


def test_a_stale_version_answers_409_and_changes_nothing(world: World) -> None:
    case = report(world.grid_worker_a)
    act(case, world.intake_operator, "accept")
    from gridgov.cases.actions import case_act

    with pytest.raises(Conflict):
        case_act(case=case.number, actor=world.intake_operator, action="register", version=1)
    case.refresh_from_db()
    assert case.state == State.ACCEPTED and case.version == 2


def test_a_grid_worker_may_not_dispatch(world: World) -> None:
    case = walk(report(world.grid_worker_a), world, "accept", "register")
    with pytest.raises(PermissionDenied):
        act(case, world.grid_worker_a, "dispatch", lead_unit="street-office-003")


def test_a_failed_check_sends_the_case_back_to_the_same_unit_for_rework(world: World) -> None:
    case = walk(
        report(world.grid_worker_a),
        world,
        *("accept", "register", "dispatch", "sign", "feedback", "check_fail"),
    )
    assert case.state == State.HANDLING and case.rework_count == 1
    assert case.lead_unit is not None and case.lead_unit.code == "street-office-003"
