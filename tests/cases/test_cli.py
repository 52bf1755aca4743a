"""``gridgov cases``: the same scope, table and actions as the web and the API."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.cases.factories import IN_GRID_A, category, report, walk
from tests.world import World

pytestmark = pytest.mark.django_db

UNIT = "street-office-003"


def run(*args: str) -> str:
    out = StringIO()
    call_command("cases", *args, stdout=out)
    return out.getvalue()


def test_a_grid_worker_reports_from_the_command_line(world: World) -> None:
    category()
    out = run(
        "report",
        "--as",
        "grid_worker_a",
        "--category",
        "01002",
        "--description",
        "井盖缺失",
        "--lat",
        str(IN_GRID_A[0]),
        "--lon",
        str(IN_GRID_A[1]),
    )
    assert "reported 320113-" in out and "320113003001001" in out


def test_the_dispatcher_dispatches_and_the_timeline_shows_it(world: World) -> None:
    case = walk(report(world.grid_worker_a), world, "accept", "register")
    out = run(
        "act", case.number, "dispatch", "--as", "dispatcher", "--lead-unit", "street-office-003"
    )
    assert "dispatched (version 4)" in out
    shown = run("show", case.number, "--as", "unit_handler")
    assert "迈皋桥街道办事处" in shown
    assert "you may: sign" in shown


def test_a_user_out_of_scope_is_told_there_is_no_such_case(world: World) -> None:
    case = report(world.grid_worker_a)
    with pytest.raises(CommandError):
        run("show", case.number, "--as", "grid_worker_b")


def test_a_refused_action_is_an_error_and_changes_nothing(world: World) -> None:
    case = walk(report(world.grid_worker_a), world, "accept", "register")
    with pytest.raises(CommandError):
        run(
            "act",
            case.number,
            "dispatch",
            "--as",
            "grid_worker_a",
            "--lead-unit",
            "street-office-003",
        )
    case.refresh_from_db()
    assert case.state == "registered"


def test_the_list_shows_the_to_do_of_the_intake_operator(world: World) -> None:
    first = report(world.grid_worker_a)
    out = run("list", "--as", "intake_operator", "--mine")
    assert first.number in out
    assert run("list", "--as", "grid_worker_b") == ""


def test_the_workflow_table_prints_every_action(world: World) -> None:
    out = run("workflow")
    assert "dispatch" in out and "check_fail" in out and "supervise_reply" in out
