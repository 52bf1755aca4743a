"""Logging in: Argon2 hashes, lock-out after failed attempts, revocable hashed API tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from gridgov.accounts import actions
from gridgov.accounts.models import ApiToken, User
from gridgov.core.errors import DomainError
from tests.world import PASSWORD, World


@pytest.mark.argon2
@pytest.mark.django_db
def test_passwords_are_stored_as_argon2_hashes() -> None:
    user = actions.user_create(username="wang", password="a-long-enough-secret-1")
    assert User.objects.get(pk=user.pk).password.startswith("argon2")


@pytest.mark.django_db
def test_a_weak_password_is_refused_with_the_reason(english: None) -> None:
    with pytest.raises(DomainError, match=r"too short|too common|entirely numeric"):
        actions.user_create(username="li", password="12345")
    assert not User.objects.filter(username="li").exists()


def test_a_grid_worker_logs_in_with_the_right_password(world: World, client: Client) -> None:
    response = client.post("/accounts/login/", {"username": "grid_worker_a", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_five_wrong_passwords_lock_the_account_even_for_the_right_one(
    world: World, client: Client
) -> None:
    for _ in range(5):
        response = client.post(
            "/accounts/login/", {"username": "grid_worker_a", "password": "wrong"}
        )
    assert response.status_code in (403, 429)
    response = client.post("/accounts/login/", {"username": "grid_worker_a", "password": PASSWORD})
    assert response.status_code in (403, 429)
    assert "locked" in response.content.decode().lower() or "锁定" in response.content.decode()
    # other accounts are not affected
    other = Client()
    assert (
        other.post(
            "/accounts/login/", {"username": "grid_worker_b", "password": PASSWORD}
        ).status_code
        == 302
    )


def test_an_administrator_can_lift_a_lock_out_from_the_command_line(
    world: World, client: Client
) -> None:
    from django.core.management import call_command

    for _ in range(5):
        client.post("/accounts/login/", {"username": "supervisor", "password": "wrong"})
    call_command("accounts", "unlock", "supervisor")
    response = client.post("/accounts/login/", {"username": "supervisor", "password": PASSWORD})
    assert response.status_code == 302


def test_an_api_token_authenticates_and_only_its_hash_is_stored(world: World) -> None:
    token, raw = actions.token_create(user=world.grid_worker_a, name="phone")
    assert raw not in {t.key_hash for t in ApiToken.objects.all()}
    assert token.key_hash == actions.hash_token(raw)
    response = Client().get("/api/v1/accounts/me", headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 200
    assert response.json()["username"] == "grid_worker_a"


def test_a_revoked_token_is_refused(world: World) -> None:
    token, raw = actions.token_create(user=world.grid_worker_a, name="phone")
    actions.token_revoke(user=world.grid_worker_a, token_uuid=str(token.uuid))
    response = Client().get(
        "/api/v1/accounts/me", headers={"Authorization": f"Bearer {raw}", "Accept-Language": "en"}
    )
    assert response.status_code == 401
    assert response.json()["message"].startswith("authentication required")


def test_an_expired_token_is_refused(world: World) -> None:
    token, raw = actions.token_create(user=world.grid_worker_a, name="phone", days=1)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert (
        Client().get("/api/v1/accounts/me", headers={"Authorization": f"Bearer {raw}"}).status_code
        == 401
    )


def test_a_deactivated_users_token_stops_working(world: World) -> None:
    _, raw = actions.token_create(user=world.grid_worker_a, name="phone")
    User.objects.filter(pk=world.grid_worker_a.pk).update(is_active=False)
    assert (
        Client().get("/api/v1/accounts/me", headers={"Authorization": f"Bearer {raw}"}).status_code
        == 401
    )


def test_a_token_can_also_be_sent_in_the_x_api_token_header(world: World) -> None:
    _, raw = actions.token_create(user=world.supervisor, name="script")
    assert Client().get("/api/v1/accounts/me", headers={"X-API-Token": raw}).status_code == 200


def test_a_user_creates_lists_and_revokes_tokens_through_the_api(
    world: World, client: Client
) -> None:
    client.force_login(world.grid_worker_a)
    created = client.post(
        "/api/v1/accounts/tokens",
        {"name": "field phone", "days": 30},
        content_type="application/json",
    )
    assert created.status_code == 201
    body = created.json()
    assert body["token"].startswith("ggt_")
    listed = client.get("/api/v1/accounts/tokens").json()
    assert [t["name"] for t in listed] == ["field phone"]
    assert "token" not in listed[0]
    revoked = client.delete(f"/api/v1/accounts/tokens/{body['id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]


def test_a_user_cannot_revoke_someone_elses_token(world: World, client: Client) -> None:
    token, _ = actions.token_create(user=world.grid_worker_a, name="phone")
    client.force_login(world.grid_worker_b)
    response = client.delete(f"/api/v1/accounts/tokens/{token.uuid}")
    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_a_token_with_an_absurd_lifetime_is_refused_with_a_message(
    world: World, client: Client
) -> None:
    client.force_login(world.grid_worker_a)
    response = client.post(
        "/api/v1/accounts/tokens", {"name": "x", "days": 100000}, content_type="application/json"
    )
    assert response.status_code == 422
    assert "days" in response.json()["message"]
    assert not ApiToken.objects.exists()


def test_the_tokens_page_shows_a_new_secret_once(world: World, client: Client) -> None:
    client.force_login(world.supervisor)
    response = client.post("/accounts/tokens/", {"name": "laptop", "days": "30"})
    assert response.status_code == 200
    raw = response.context["secret"]
    assert raw and raw in response.content.decode()
    again = client.get("/accounts/tokens/")
    assert raw not in again.content.decode()


def test_role_assignments_check_where_a_role_is_held(world: World, english: None) -> None:
    user = actions.user_create(username="zhao", password=None)
    with pytest.raises(DomainError, match="needs a region"):
        actions.role_assign(user=user, role="grid_worker")
    with pytest.raises(DomainError, match="for a unit"):
        actions.role_assign(user=user, role="unit_handler", region=world.grid_a)
    with pytest.raises(DomainError, match="unknown role"):
        actions.role_assign(user=user, role="emperor", region=world.grid_a)
