"""``gridgov accounts …`` does on the command line what the API does, through the same actions."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from gridgov.accounts.models import ApiToken, RoleAssignment, Unit, User
from tests.world import PASSWORD, World


def run(*args: str, stdin: str | None = None, monkeypatch: pytest.MonkeyPatch | None = None) -> str:
    if stdin is not None:
        assert monkeypatch is not None
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    out = io.StringIO()
    call_command("accounts", *args, stdout=out)
    return out.getvalue()


def logs_in(username: str, password: str = PASSWORD) -> bool:
    response = Client().post("/accounts/login/", {"username": username, "password": password})
    return response.status_code == 302


def test_create_user_reads_the_password_from_stdin_and_assign_gives_grid_a(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = run(
        "create-user",
        "zhou",
        "--name",
        "周敏",
        "--phone",
        "13700001234",
        "--password-stdin",
        stdin=PASSWORD + "\n",
        monkeypatch=monkeypatch,
    )
    assert out.strip() == "created user zhou"
    run("assign", "zhou", "grid_worker", "--region", world.grid_a.code)
    assert logs_in("zhou")
    assert RoleAssignment.objects.get(user__username="zhou").region == world.grid_a


def test_create_user_refuses_a_weak_password_and_a_taken_name(
    world: World, monkeypatch: pytest.MonkeyPatch, english: None
) -> None:
    with pytest.raises(CommandError, match="too short"):
        run("create-user", "wu", "--password-stdin", stdin="123\n", monkeypatch=monkeypatch)
    assert not User.objects.filter(username="wu").exists()
    with pytest.raises(CommandError, match="is taken"):
        run("create-user", "grid_worker_a", "--no-password")


def test_assign_refuses_a_region_role_without_a_region(world: World, english: None) -> None:
    with pytest.raises(CommandError, match="needs a region"):
        run("assign", "nobody", "grid_worker")
    with pytest.raises(CommandError, match="no region with code '999'"):
        run("assign", "nobody", "grid_worker", "--region", "999")
    assert not RoleAssignment.objects.filter(user__username="nobody").exists()


def test_list_shows_roles_with_masked_phones(world: World) -> None:
    out = run("list", "--region", "320113003001")
    lines = out.splitlines()
    assert any(line.startswith("grid_worker_a") and "139****5678" in line for line in lines)
    assert not any(line.startswith("leader") for line in lines)
    assert "13912345678" not in out


def test_tokens_are_created_listed_and_revoked(world: World) -> None:
    out = run("token-create", "supervisor", "--name", "backup script", "--days", "30")
    raw = out.splitlines()[-1]
    assert raw.startswith("ggt_")
    prefix = ApiToken.objects.get(user__username="supervisor").prefix
    assert f"{prefix}  backup script" in run("tokens", "supervisor")
    assert "active" in run("tokens", "supervisor")
    assert run("token-revoke", "supervisor", prefix).strip() == "revoked"
    assert "revoked" in run("tokens", "supervisor")
    assert (
        Client().get("/api/v1/accounts/me", headers={"Authorization": f"Bearer {raw}"}).status_code
        == 401
    )


def test_unlock_lifts_a_lock_out(world: World) -> None:
    for _ in range(5):
        Client().post("/accounts/login/", {"username": "grid_leader", "password": "wrong"})
    assert not logs_in("grid_leader")
    assert "lock-out lifted" in run("unlock", "grid_leader")
    assert logs_in("grid_leader")


def test_deactivate_revokes_tokens_and_activate_lets_the_user_back_in(world: World) -> None:
    run("token-create", "grid_worker_b", "--name", "phone")
    out = run("deactivate", "grid_worker_b")
    assert out.strip() == "deactivated grid_worker_b; 1 API tokens revoked"
    assert not logs_in("grid_worker_b")
    assert ApiToken.objects.get(user__username="grid_worker_b").revoked_at is not None
    assert "(inactive)" in run("list", "--role", "grid_worker")
    assert run("activate", "grid_worker_b").strip() == "activated grid_worker_b"
    assert logs_in("grid_worker_b")


def test_update_user_changes_only_what_is_given(world: World) -> None:
    run("update-user", "grid_worker_b", "--name", "李娜")
    user = User.objects.get(username="grid_worker_b")
    assert (user.display_name, user.work_phone) == ("李娜", "13912345678")


def test_unit_create_creates_then_updates_a_unit(world: World) -> None:
    assert "created unit" in run("unit-create", "gas-co", "燃气公司", "--kind", "utility")
    out = run("unit-create", "gas-co", "港华燃气", "--region", "320113", "--inactive")
    assert "updated unit gas-co 港华燃气" in out
    unit = Unit.objects.get(code="gas-co")
    assert (unit.kind, unit.is_active) == ("utility", False)
    assert [r.code for r in unit.regions.all()] == ["320113"]
    assert "gas-co" in run("units") and "(inactive)" in run("units")


def test_an_unknown_user_is_named(world: World) -> None:
    with pytest.raises(CommandError, match="no user 'ghost'"):
        run("deactivate", "ghost")


def test_unassign_takes_a_role_away(world: World, capsys: Any) -> None:
    run("unassign", "grid_worker_a", "grid_worker", "--region", world.grid_a.code)
    assert not RoleAssignment.objects.filter(user__username="grid_worker_a").exists()
