"""The password policy (at least 10 characters with letters and digits, not common, not all
digits, not like the username) holds wherever a password is set, and users change their own."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from gridgov.accounts import actions
from gridgov.accounts.models import User
from gridgov.core.errors import DomainError
from tests.world import PASSWORD, World


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short-1", "too short"),
        ("xxxxxxxxxxxx", "letters and digits"),
        ("correct-horse-battery", "letters and digits"),
        ("1234567890123", "entirely numeric"),
        ("password123", "too common"),
        ("wangfang2026", "too similar"),
    ],
)
@pytest.mark.django_db
def test_a_weak_password_is_refused_naming_the_rule(
    english: None, password: str, problem: str
) -> None:
    with pytest.raises(DomainError, match=problem):
        actions.user_create(username="wangfang2026", password=password)
    assert not User.objects.filter(username="wangfang2026").exists()


@pytest.mark.parametrize(
    "password", ["correct-horse-battery-9", "网格员巡查第2026号任务", "Qx7 mb2 kf9"]
)
@pytest.mark.django_db
def test_a_long_password_of_letters_and_digits_is_accepted(password: str) -> None:
    user = actions.user_create(username="li", password=password)
    assert user.check_password(password)


def test_the_api_refuses_a_weak_password_for_a_new_user(world: World) -> None:
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(world.admin)
    response = client.post(
        "/api/v1/accounts/users",
        {"username": "zhou", "password": "onlyletters-here"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "letters and digits" in response.json()["message"]
    assert not User.objects.filter(username="zhou").exists()


def change(client: Client, old: str, new: str, again: str | None = None) -> Any:
    return client.post(
        "/accounts/password/",
        {"old_password": old, "new_password1": new, "new_password2": again or new},
    )


def test_a_user_changes_their_password_and_their_other_sessions_end(world: World) -> None:
    here, elsewhere = Client(), Client()
    for client in (here, elsewhere):
        client.post("/accounts/login/", {"username": "grid_worker_a", "password": PASSWORD})
    assert here.get("/accounts/password/").status_code == 200
    response = change(here, PASSWORD, "new-Secret-2027")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/security/"
    assert here.get("/map/").status_code == 200
    assert elsewhere.get("/map/").status_code == 302
    fresh = Client()
    ok = fresh.post(
        "/accounts/login/", {"username": "grid_worker_a", "password": "new-Secret-2027"}
    )
    assert ok.status_code == 302 and "/accounts/login/" not in ok["Location"]


def test_changing_to_a_weak_password_is_refused_and_the_old_one_still_works(
    world: World,
) -> None:
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(world.grid_worker_a)
    response = change(client, PASSWORD, "onlyletters")
    assert response.status_code == 200
    page = response.content.decode()
    assert "letters and digits" in page
    assert 'aria-invalid="true"' in page
    world.grid_worker_a.refresh_from_db()
    assert world.grid_worker_a.check_password(PASSWORD)


def test_changing_the_password_needs_the_old_one(world: World) -> None:
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(world.grid_worker_a)
    response = change(client, "not-my-password-1", "new-Secret-2027")
    assert response.status_code == 200
    world.grid_worker_a.refresh_from_db()
    assert world.grid_worker_a.check_password(PASSWORD)


def test_an_administrator_setting_a_password_in_the_admin_meets_the_policy(
    world: World,
) -> None:
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(world.admin)
    url = f"/admin/accounts/user/{world.grid_worker_b.pk}/password/"
    weak = client.post(url, {"password1": "abcdefghijkl", "password2": "abcdefghijkl"})
    assert weak.status_code == 200
    assert "letters and digits" in weak.content.decode()
    world.grid_worker_b.refresh_from_db()
    assert world.grid_worker_b.check_password(PASSWORD)
