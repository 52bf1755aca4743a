"""Who sees which regions: deny by default, subtrees by code prefix, ancestors for context."""

from __future__ import annotations

import pytest

from gridgov.accounts.selectors import units_visible_to, user_scope
from gridgov.core.scope import Scope, minimal_prefixes
from gridgov.geo.selectors import regions_visible_to
from tests.world import World


def codes(qs: object) -> set[str]:
    return {r.code for r in qs}  # type: ignore[attr-defined]


def test_minimal_prefixes_drop_codes_inside_another_subtree() -> None:
    assert minimal_prefixes(["320113003001001", "320113003", "320114"]) == ("320113003", "320114")


def test_an_empty_scope_covers_nothing() -> None:
    assert not Scope.nothing().covers("320113")
    assert Scope.nothing().is_empty


def test_an_administrator_without_a_region_sees_everything(world: World) -> None:
    assert user_scope(world.admin).everything
    assert "320114001001001" in codes(regions_visible_to(world.admin))


def test_a_grid_worker_sees_their_grid_and_the_regions_above_it_but_no_other_grid(
    world: World,
) -> None:
    seen = codes(regions_visible_to(world.grid_worker_a))
    assert seen == {"320113", "320113003", "320113003001", world.grid_a.code}


def test_a_grid_leader_sees_every_grid_of_their_community(world: World) -> None:
    seen = codes(regions_visible_to(world.grid_leader))
    assert {world.grid_a.code, world.grid_b.code} <= seen
    assert "320113003002001" not in seen


def test_a_unit_handler_works_in_the_regions_their_unit_serves(world: World) -> None:
    scope = user_scope(world.unit_handler)
    assert scope.prefixes == ("320113003",)
    assert world.grid_b.code in codes(regions_visible_to(world.unit_handler))
    assert world.grid_d.code not in codes(regions_visible_to(world.unit_handler))


def test_a_district_leader_does_not_see_another_district(world: World) -> None:
    seen = codes(regions_visible_to(world.leader))
    assert world.grid_d.code in seen
    assert world.grid_e.code not in seen


def test_a_user_without_any_role_sees_nothing(world: World) -> None:
    assert not regions_visible_to(world.nobody).exists()
    assert not units_visible_to(world.nobody).exists()


def test_units_are_visible_where_they_serve_the_users_scope(world: World) -> None:
    assert set(units_visible_to(world.supervisor).values_list("code", flat=True)) == {
        "street-office-003"
    }
    assert set(units_visible_to(world.grid_worker_a).values_list("code", flat=True)) == set()
    assert set(units_visible_to(world.unit_handler).values_list("code", flat=True)) == {
        "street-office-003"
    }


@pytest.mark.parametrize(
    ("persona", "code", "covered"),
    [
        ("grid_worker_a", "320113003001001", True),
        ("grid_worker_a", "320113003001002", False),
        ("grid_worker_a", "320113003001", False),
        ("supervisor", "320113003002001", True),
        ("supervisor", "320113005001001", False),
        ("resident", "320113003001002", True),
    ],
)
def test_scope_covers_exactly_the_subtree(
    world: World, persona: str, code: str, covered: bool
) -> None:
    assert user_scope(world.users[persona]).covers(code) is covered
