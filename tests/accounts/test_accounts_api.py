"""Administrators manage users, roles and units through the API; regional ones only at home."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from gridgov.accounts import actions
from gridgov.accounts.models import ApiToken, Role, RoleAssignment, Unit, User
from tests.world import PASSWORD, World

USERS = "/api/v1/accounts/users"
UNITS = "/api/v1/accounts/units"
STREET = "320113003"  # the street of grids A, B and C
OTHER_STREET = "320113005"  # the street of grid D


def api_client(user: User) -> Client:
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(user)
    return client


def send(client: Client, method: str, path: str, body: Any = None, **headers: str) -> Any:
    return getattr(client, method)(
        path, body if body is not None else {}, content_type="application/json", headers=headers
    )


@pytest.fixture
def street_admin(world: World) -> User:
    """An administrator of street 320113003 and everything under it, and nothing else."""
    user = actions.user_create(username="street_admin", password=PASSWORD)
    actions.role_assign(user=user, role=Role.ADMINISTRATOR, region=world.regions[STREET])
    return user


def roles_of(username: str) -> set[tuple[str, str | None, str | None]]:
    return {
        (a.role, a.region.code if a.region else None, a.unit.code if a.unit else None)
        for a in RoleAssignment.objects.filter(user__username=username).select_related(
            "region", "unit"
        )
    }


# --- creating users and giving them roles ---------------------------------------------------


def test_an_administrator_creates_a_grid_worker_who_then_works_in_grid_a(world: World) -> None:
    admin = api_client(world.admin)
    created = send(
        admin,
        "post",
        USERS,
        {
            "username": "zhang_wei",
            "display_name": "张伟",
            "work_phone": "13800001111",
            "email": "zhang.wei@example.cn",
            "password": PASSWORD,
        },
    )
    assert created.status_code == 201
    assert created.json()["roles"] == []
    assert created.json()["work_phone"] == "13800001111"  # administrators see it in full

    assigned = send(
        admin,
        "post",
        f"{USERS}/zhang_wei/roles",
        {"role": "grid_worker", "region": world.grid_a.code},
    )
    assert assigned.status_code == 200
    assert assigned.json()["roles"] == [
        {
            "role": "grid_worker",
            "role_label": "Grid worker",
            "region": world.grid_a.code,
            "region_name": world.grid_a.name,
            "unit": None,
        }
    ]

    worker = Client()
    assert (
        worker.post("/accounts/login/", {"username": "zhang_wei", "password": PASSWORD}).status_code
        == 302
    )
    assert [r["region"] for r in worker.get("/api/v1/accounts/me").json()["roles"]] == [
        world.grid_a.code
    ]
    listed = admin.get(f"{USERS}?role=grid_worker&region={world.grid_a.code}").json()
    assert [u["username"] for u in listed] == ["grid_worker_a", "zhang_wei"]


def test_giving_a_role_twice_changes_nothing(world: World) -> None:
    admin = api_client(world.admin)
    body = {"role": "grid_worker", "region": world.grid_a.code}
    send(admin, "post", f"{USERS}/grid_worker_a/roles", body)
    assert RoleAssignment.objects.filter(user=world.grid_worker_a).count() == 1


def test_a_unit_handler_is_given_a_unit(world: World) -> None:
    response = send(
        api_client(world.admin),
        "post",
        f"{USERS}/nobody/roles",
        {"role": "unit_handler", "unit": "yuhua-office"},
    )
    assert response.status_code == 200
    assert roles_of("nobody") == {("unit_handler", None, "yuhua-office")}


def test_a_grid_worker_is_refused_everything_here(world: World) -> None:
    worker = api_client(world.grid_worker_a)
    assert worker.get(USERS).status_code == 403
    assert worker.get(f"{USERS}/grid_worker_b").status_code == 403
    refused = send(worker, "post", USERS, {"username": "mine"})
    assert refused.status_code == 403
    assert refused.json()["message"] == "only administrators may do this"
    assert not User.objects.filter(username="mine").exists()
    assert (
        send(
            worker,
            "post",
            f"{USERS}/grid_worker_a/roles",
            {"role": "grid_leader", "region": STREET},
        ).status_code
        == 403
    )
    assert roles_of("grid_worker_a") == {("grid_worker", world.grid_a.code, None)}


@pytest.mark.parametrize(
    ("body", "status", "problem"),
    [
        ({"role": "emperor", "region": "320113003001001"}, 422, "role"),
        ({"role": "grid_worker", "region": "999999"}, 400, "no region with code '999999'"),
        ({"role": "unit_handler", "unit": "no-such-office"}, 400, "no unit with code"),
        ({"role": "grid_worker"}, 400, "the role Grid worker needs a region"),
        (
            {"role": "unit_handler", "region": "320113003001001"},
            400,
            "the role Unit handler is held for a unit, not a region",
        ),
        (
            {"role": "grid_worker", "region": "320113003001001", "unit": "street-office-003"},
            400,
            "held in a region, not for a unit",
        ),
    ],
)
def test_an_invalid_role_region_or_unit_is_refused_naming_the_problem_and_nothing_is_written(
    world: World, body: dict[str, str], status: int, problem: str
) -> None:
    before = RoleAssignment.objects.count()
    response = send(api_client(world.admin), "post", f"{USERS}/nobody/roles", body)
    assert response.status_code == status
    assert problem in response.json()["message"]
    assert RoleAssignment.objects.count() == before


def test_a_taken_username_is_refused_with_409_even_in_another_case(world: World) -> None:
    admin = api_client(world.admin)
    for username in ("grid_worker_a", "Grid_Worker_A"):
        response = send(admin, "post", USERS, {"username": username})
        assert response.status_code == 409
        assert response.json()["message"] == f"the username {username!r} is taken"
    assert User.objects.filter(username__iexact="grid_worker_a").count() == 1


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"username": "li", "password": "12345"}, "too short"),
        ({"username": "li", "password": "password123"}, "too common"),
        ({"username": "li si"}, "may hold only letters, digits"),
        ({"username": "li", "email": "not-an-address"}, "is not an e-mail address"),
    ],
)
def test_a_user_that_cannot_be_created_is_refused_naming_the_problem(
    world: World, body: dict[str, str], problem: str
) -> None:
    response = send(api_client(world.admin), "post", USERS, body)
    assert response.status_code == 400
    assert problem in response.json()["message"]
    assert not User.objects.filter(username__in=["li", "li si"]).exists()


def test_a_user_created_without_a_password_cannot_log_in_yet(world: World) -> None:
    send(api_client(world.admin), "post", USERS, {"username": "wang"})
    assert not User.objects.get(username="wang").has_usable_password()


def test_a_retried_user_creation_answers_the_same_user(world: World) -> None:
    admin = api_client(world.admin)
    body = {"username": "zhao", "display_name": "赵", "password": PASSWORD}
    first = send(admin, "post", USERS, body, **{"Idempotency-Key": "create-zhao"})
    again = send(admin, "post", USERS, body, **{"Idempotency-Key": "create-zhao"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert User.objects.filter(username="zhao").count() == 1
    # without the key the retry is a second request, and the name is taken by then
    assert send(admin, "post", USERS, body).status_code == 409


def test_roles_are_taken_away_named_by_the_query_or_by_a_body(world: World) -> None:
    admin = api_client(world.admin)
    gone = admin.delete(f"{USERS}/grid_worker_a/roles?role=grid_worker&region={world.grid_a.code}")
    assert gone.status_code == 200 and gone.json()["roles"] == []
    gone = send(
        admin,
        "delete",
        f"{USERS}/unit_handler/roles",
        {"role": "unit_handler", "unit": "street-office-003"},
    )
    assert gone.status_code == 200 and gone.json()["roles"] == []
    missing = admin.delete(f"{USERS}/supervisor/roles?role=supervisor&region={world.grid_a.code}")
    assert missing.status_code == 404
    assert missing.json()["message"] == "supervisor holds no such role"
    assert roles_of("supervisor") == {("supervisor", STREET, None)}
    unnamed = admin.delete(f"{USERS}/supervisor/roles")
    assert unnamed.status_code == 422


# --- changing users ---------------------------------------------------------------------------


def test_deactivating_a_user_revokes_their_tokens_and_stops_their_logins(world: World) -> None:
    _token, raw = actions.token_create(user=world.grid_worker_a, name="phone")
    session = Client()
    session.post("/accounts/login/", {"username": "grid_worker_a", "password": PASSWORD})
    assert session.get("/api/v1/accounts/me").status_code == 200
    response = send(
        api_client(world.admin), "patch", f"{USERS}/grid_worker_a", {"is_active": False}
    )
    assert response.status_code == 200 and response.json()["is_active"] is False
    assert ApiToken.objects.get(user=world.grid_worker_a).revoked_at is not None
    assert (
        Client().get("/api/v1/accounts/me", headers={"Authorization": f"Bearer {raw}"}).status_code
        == 401
    )
    assert (
        Client()
        .post("/accounts/login/", {"username": "grid_worker_a", "password": PASSWORD})
        .status_code
        == 200  # the form again, with an error
    )
    assert session.get("/api/v1/accounts/me").status_code == 401  # the open session ends too


def test_an_activated_user_logs_in_again_but_their_old_tokens_stay_revoked(world: World) -> None:
    actions.token_create(user=world.grid_worker_a, name="phone")
    admin = api_client(world.admin)
    send(admin, "patch", f"{USERS}/grid_worker_a", {"is_active": False})
    back = send(admin, "patch", f"{USERS}/grid_worker_a", {"is_active": True})
    assert back.json()["is_active"] is True
    assert ApiToken.objects.get(user=world.grid_worker_a).revoked_at is not None
    login = Client().post("/accounts/login/", {"username": "grid_worker_a", "password": PASSWORD})
    assert login.status_code == 302


def test_an_administrator_cannot_deactivate_themself(world: World) -> None:
    response = send(api_client(world.admin), "patch", f"{USERS}/admin", {"is_active": False})
    assert response.status_code == 403
    assert response.json()["message"] == "you cannot deactivate your own account"
    world.admin.refresh_from_db()
    assert world.admin.is_active


def test_an_administrator_changes_contact_details_and_leaves_the_rest(world: World) -> None:
    response = send(
        api_client(world.admin),
        "patch",
        f"{USERS}/grid_worker_b",
        {"display_name": "李娜", "work_phone": "025-8888 1234"},
    )
    assert response.status_code == 200
    user = User.objects.get(username="grid_worker_b")
    assert (user.display_name, user.work_phone, user.is_active) == ("李娜", "025-8888 1234", True)
    bad = send(api_client(world.admin), "patch", f"{USERS}/grid_worker_b", {"email": "nope"})
    assert bad.status_code == 400 and "e-mail" in bad.json()["message"]


def test_an_unknown_user_is_404_with_its_name(world: World) -> None:
    response = api_client(world.admin).get(f"{USERS}/ghost")
    assert response.status_code == 404
    assert response.json()["message"] == "no user 'ghost'"


def test_an_administrator_lifts_a_lock_out(world: World) -> None:
    for _ in range(5):
        Client().post("/accounts/login/", {"username": "supervisor", "password": "wrong"})
    locked = Client().post("/accounts/login/", {"username": "supervisor", "password": PASSWORD})
    assert locked.status_code in (403, 429)
    response = send(api_client(world.admin), "post", f"{USERS}/supervisor/unlock")
    assert response.status_code == 200
    assert response.json()["username"] == "supervisor" and response.json()["cleared"] >= 1
    again = Client().post("/accounts/login/", {"username": "supervisor", "password": PASSWORD})
    assert again.status_code == 302


# --- a regional administrator ----------------------------------------------------------------


def test_a_street_administrator_cannot_give_a_role_in_another_street(
    world: World, street_admin: User
) -> None:
    client = api_client(street_admin)
    response = send(
        client,
        "post",
        f"{USERS}/grid_worker_a/roles",
        {"role": "grid_worker", "region": world.grid_d.code},
    )
    assert response.status_code == 403
    assert response.json()["message"] == f"you do not administer {world.grid_d.code}"
    assert roles_of("grid_worker_a") == {("grid_worker", world.grid_a.code, None)}
    assert (
        send(client, "post", f"{USERS}/grid_worker_a/roles", {"role": "administrator"}).status_code
        == 403
    )


def test_a_street_administrator_onboards_a_grid_worker_in_their_street(
    world: World, street_admin: User
) -> None:
    client = api_client(street_admin)
    assert (
        send(client, "post", USERS, {"username": "chen", "password": PASSWORD}).status_code == 201
    )
    response = send(
        client, "post", f"{USERS}/chen/roles", {"role": "grid_worker", "region": world.grid_b.code}
    )
    assert response.status_code == 200
    assert roles_of("chen") == {("grid_worker", world.grid_b.code, None)}


def test_a_street_administrator_lists_only_the_people_of_their_street(
    world: World, street_admin: User
) -> None:
    listed = {u["username"] for u in api_client(street_admin).get(USERS).json()}
    assert listed == {
        "street_admin",
        "supervisor",
        "grid_leader",
        "grid_worker_a",
        "grid_worker_b",
        "resident",
        "unit_handler",  # their unit serves the street
    }
    assert api_client(street_admin).get(f"{USERS}/leader").status_code == 404


def test_a_street_administrator_changes_only_people_who_work_only_in_their_street(
    world: World, street_admin: User
) -> None:
    actions.role_assign(user=world.grid_worker_b, role=Role.GRID_WORKER, region=world.grid_d)
    client = api_client(street_admin)
    assert send(client, "patch", f"{USERS}/grid_worker_a", {"is_active": False}).status_code == 200
    both_streets = send(client, "patch", f"{USERS}/grid_worker_b", {"is_active": False})
    assert both_streets.status_code == 403
    assert both_streets.json()["message"] == (
        "you may not change grid_worker_b: they hold a role you do not administer"
    )
    assert send(client, "patch", f"{USERS}/leader", {"is_active": False}).status_code == 404
    assert send(client, "patch", f"{USERS}/admin", {"is_active": False}).status_code == 404
    assert User.objects.get(username="grid_worker_b").is_active
    assert User.objects.get(username="admin").is_active


def test_a_street_administrator_appoints_administrators_below_their_street_only(
    world: World, street_admin: User
) -> None:
    client = api_client(street_admin)
    beside = send(
        client, "post", f"{USERS}/supervisor/roles", {"role": "administrator", "region": STREET}
    )
    assert beside.status_code == 403
    assert beside.json()["message"] == (
        f"administrators of {STREET} are appointed by an administrator above it"
    )
    below = send(
        client,
        "post",
        f"{USERS}/grid_leader/roles",
        {"role": "administrator", "region": "320113003001"},
    )
    assert below.status_code == 200
    assert ("administrator", "320113003001", None) in roles_of("grid_leader")


def test_a_street_administrator_cannot_deactivate_a_fellow_administrator_of_the_street(
    world: World, street_admin: User
) -> None:
    actions.role_assign(
        user=world.supervisor, role=Role.ADMINISTRATOR, region=world.regions[STREET]
    )
    response = send(api_client(street_admin), "patch", f"{USERS}/supervisor", {"is_active": False})
    assert response.status_code == 403
    assert User.objects.get(username="supervisor").is_active
    own = send(api_client(street_admin), "patch", f"{USERS}/street_admin", {"display_name": "王"})
    assert own.status_code == 200 and own.json()["display_name"] == "王"


def test_work_phones_are_masked_for_people_who_also_work_elsewhere(
    world: World, street_admin: User
) -> None:
    actions.role_assign(user=world.grid_worker_b, role=Role.GRID_WORKER, region=world.grid_d)
    phones = {u["username"]: u["work_phone"] for u in api_client(street_admin).get(USERS).json()}
    assert phones["grid_worker_a"] == "13912345678"
    assert phones["grid_worker_b"] == "139****5678"
    everyone = {u["username"]: u["work_phone"] for u in api_client(world.admin).get(USERS).json()}
    assert everyone["grid_worker_b"] == "13912345678"


def test_listing_users_costs_the_same_queries_for_many_users(
    world: World, django_assert_max_num_queries: Any
) -> None:
    for n in range(20):
        user = actions.user_create(username=f"worker{n}", password=None)
        actions.role_assign(user=user, role=Role.GRID_WORKER, region=world.grid_a)
    client = api_client(world.admin)
    with django_assert_max_num_queries(9):
        listed = client.get(USERS)
    assert len(listed.json()) == 32


# --- units ------------------------------------------------------------------------------------


def test_an_administrator_creates_and_changes_a_unit(world: World) -> None:
    admin = api_client(world.admin)
    created = send(
        admin,
        "post",
        UNITS,
        {"code": "water-co", "name": "自来水公司", "kind": "utility", "regions": ["320113"]},
    )
    assert created.status_code == 201
    assert created.json()["regions"] == ["320113"]
    changed = send(admin, "patch", f"{UNITS}/water-co", {"regions": [STREET, OTHER_STREET]})
    assert changed.status_code == 200 and changed.json()["regions"] == [STREET, OTHER_STREET]
    assert changed.json()["name"] == "自来水公司"
    assert (
        send(admin, "post", UNITS, {"code": "water-co", "name": "x", "kind": "utility"}).status_code
        == 409
    )
    bad = send(admin, "post", UNITS, {"code": "gas", "name": "x", "kind": "castle"})
    assert bad.status_code == 422 and "kind" in bad.json()["message"]
    assert not Unit.objects.filter(code="gas").exists()


def test_a_deactivated_unit_gives_its_handlers_no_scope(world: World) -> None:
    send(api_client(world.admin), "patch", f"{UNITS}/street-office-003", {"is_active": False})
    response = api_client(world.unit_handler).get(f"/api/v1/geo/regions/{world.grid_a.code}")
    assert response.status_code in (403, 404)


def test_a_street_administrator_keeps_units_inside_their_street(
    world: World, street_admin: User
) -> None:
    client = api_client(street_admin)
    made = send(
        client,
        "post",
        UNITS,
        {
            "code": "estate-1",
            "name": "物业",
            "kind": "property_company",
            "regions": [world.grid_a.code],
        },
    )
    assert made.status_code == 201
    nowhere = send(client, "post", UNITS, {"code": "estate-2", "name": "物业", "kind": "other"})
    assert nowhere.status_code == 400 and "name the regions" in nowhere.json()["message"]
    outside = send(client, "patch", f"{UNITS}/estate-1", {"regions": [world.grid_d.code]})
    assert outside.status_code == 403
    assert send(client, "patch", f"{UNITS}/yuhua-office", {"name": "mine"}).status_code == 404
    assert list(Unit.objects.get(code="estate-1").regions.values_list("code", flat=True)) == [
        world.grid_a.code
    ]
