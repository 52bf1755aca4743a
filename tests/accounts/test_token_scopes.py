"""API tokens with scopes and expiry: a token does only what its scopes name (and never more
than its user's roles allow), never makes a stronger token, and expires by default."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from gridgov.accounts import actions
from gridgov.accounts.models import ALL_SCOPES, ApiToken
from gridgov.core.errors import PermissionDenied, ValidationFailed
from tests.world import World


def api(raw: str) -> Client:
    return Client(headers={"Authorization": f"Bearer {raw}", "Accept-Language": "en"})


def token(user: Any, *scopes: str) -> str:
    return actions.token_create(user=user, name="test", scopes=list(scopes) or None)[1]


def test_a_token_made_without_naming_scopes_has_them_all_and_expires_in_90_days(
    world: World,
) -> None:
    made, _raw = actions.token_create(user=world.dispatcher, name="script")
    assert (
        made.scopes == ALL_SCOPES == ["read", "write", "registry:read", "registry:write", "admin"]
    )
    assert made.expires_at is not None
    lifetime = made.expires_at - timezone.now()
    assert timedelta(days=89, hours=23) < lifetime <= timedelta(days=90)


def test_the_default_lifetime_is_a_setting(world: World, settings: Any) -> None:
    settings.GRIDGOV_API_TOKEN_DAYS = 7
    made, _raw = actions.token_create(user=world.dispatcher, name="script")
    assert made.expires_at is not None
    assert made.expires_at - timezone.now() <= timedelta(days=7)


def test_a_read_only_token_reads_but_every_write_answers_403_naming_the_scope(
    world: World,
) -> None:
    client = api(token(world.supervisor, "read"))
    assert client.get("/api/v1/accounts/me").status_code == 200
    refused = client.post(
        "/api/v1/accounts/tokens", {"name": "more"}, content_type="application/json"
    )
    assert refused.status_code == 403
    assert refused.json()["message"] == "this API token lacks the scope write"
    assert refused.json()["detail"]["scope"] == "write"
    assert (
        client.delete("/api/v1/accounts/tokens/00000000-0000-4000-8000-000000000000").status_code
        == 403
    )
    assert ApiToken.objects.filter(user=world.supervisor).count() == 1


def test_a_write_only_token_cannot_read(world: World) -> None:
    refused = api(token(world.supervisor, "write")).get("/api/v1/accounts/me")
    assert refused.status_code == 403
    assert refused.json()["detail"]["scope"] == "read"


def test_base_data_needs_the_registry_scopes(world: World) -> None:
    general = api(token(world.grid_worker_a, "read", "write"))
    refused = general.get("/api/v1/registry/buildings")
    assert refused.status_code == 403
    assert refused.json()["detail"]["scope"] == "registry:read"
    assert general.get("/api/v1/privacy/clearance").status_code == 403

    registry_reader = api(token(world.grid_worker_a, "registry:read"))
    assert registry_reader.get("/api/v1/registry/buildings").status_code == 200
    assert registry_reader.get("/api/v1/privacy/clearance").status_code == 200
    write = registry_reader.post(
        "/api/v1/registry/buildings", {"name": "x"}, content_type="application/json"
    )
    assert write.status_code == 403
    assert write.json()["detail"]["scope"] == "registry:write"
    # the registry scopes give nothing outside base data
    assert registry_reader.get("/api/v1/cases").status_code == 403


def test_a_token_never_does_more_than_its_users_roles(world: World) -> None:
    # a resident's token with every scope administers nothing and reads no access log
    client = api(token(world.resident))
    assert client.get("/api/v1/accounts/users").status_code == 403
    assert client.get("/api/v1/privacy/access-log").status_code == 403


def test_an_administrators_token_without_the_admin_scope_acts_without_the_role(
    world: World,
) -> None:
    plain = api(token(world.admin, "read", "write"))
    refused = plain.get("/api/v1/accounts/users")
    assert refused.status_code == 403
    assert refused.json()["message"] == "only administrators may do this"
    # and the administrator's scope over every region is gone with the role
    assert "320114001001001" not in {r["code"] for r in plain.get("/api/v1/geo/regions").json()}

    admin = api(token(world.admin, "read", "write", "admin"))
    assert admin.get("/api/v1/accounts/users").status_code == 200
    assert "320114001001001" in {r["code"] for r in admin.get("/api/v1/geo/regions").json()}


def test_a_token_makes_tokens_only_within_its_own_scopes(world: World) -> None:
    client = api(token(world.dispatcher, "read", "write"))
    stronger = client.post(
        "/api/v1/accounts/tokens",
        {"name": "stronger", "scopes": ["read", "write", "admin"]},
        content_type="application/json",
    )
    assert stronger.status_code == 403
    assert stronger.json()["detail"]["scopes"] == ["admin"]
    same = client.post("/api/v1/accounts/tokens", {"name": "same"}, content_type="application/json")
    assert same.status_code == 201
    assert same.json()["scopes"] == ["read", "write"]
    narrower = client.post(
        "/api/v1/accounts/tokens",
        {"name": "narrower", "scopes": ["read"]},
        content_type="application/json",
    )
    assert narrower.status_code == 201 and narrower.json()["scopes"] == ["read"]


def test_a_web_session_creates_tokens_with_any_scope_it_names(world: World) -> None:
    client = Client()
    client.force_login(world.admin)
    created = client.post(
        "/api/v1/accounts/tokens",
        {"name": "registry sync", "scopes": ["registry:read", "read"]},
        content_type="application/json",
    )
    assert created.status_code == 201
    assert created.json()["scopes"] == ["read", "registry:read"]
    listed = client.get("/api/v1/accounts/tokens").json()
    assert listed[0]["scopes"] == ["read", "registry:read"]


@pytest.mark.parametrize(
    ("scopes", "status"), [(["everything"], 422), ([], 422)], ids=["unknown", "none"]
)
def test_unknown_or_no_scopes_are_refused(world: World, scopes: list[str], status: int) -> None:
    client = Client()
    client.force_login(world.dispatcher)
    response = client.post(
        "/api/v1/accounts/tokens", {"name": "x", "scopes": scopes}, content_type="application/json"
    )
    assert response.status_code == status
    assert not ApiToken.objects.exists()


def test_the_action_refuses_a_stronger_token_and_an_empty_scope_list(
    world: World, english: None
) -> None:
    with pytest.raises(PermissionDenied, match="scopes it lacks: admin"):
        actions.token_create(user=world.admin, name="x", scopes=["admin"], within=["read"])
    with pytest.raises(ValidationFailed, match="at least one scope"):
        actions.token_create(user=world.admin, name="x", scopes=[])


def test_the_tokens_page_creates_a_token_with_the_ticked_scopes(world: World) -> None:
    client = Client()
    client.force_login(world.supervisor)
    page = client.get("/accounts/tokens/")
    assert page.content.decode().count('name="scopes"') == len(ALL_SCOPES)
    response = client.post(
        "/accounts/tokens/",
        {"name": "reader", "scopes_shown": "1", "scopes": ["read"]},
    )
    assert response.context["secret"]
    assert ApiToken.objects.get(user=world.supervisor).scopes == ["read"]
    nothing_ticked = client.post("/accounts/tokens/", {"name": "none", "scopes_shown": "1"})
    assert nothing_ticked.context["secret"] is None
    assert ApiToken.objects.filter(user=world.supervisor).count() == 1


def test_the_command_line_creates_a_scoped_token(world: World, capsys: Any) -> None:
    call_command("accounts", "token-create", "supervisor", "--name", "ro", "--scope", "read")
    out = capsys.readouterr().out
    assert "scopes read" in out
    assert ApiToken.objects.get(user=world.supervisor).scopes == ["read"]
    call_command("accounts", "tokens", "supervisor")
    assert "scopes read" in capsys.readouterr().out


def test_an_administrator_narrows_a_tokens_scopes_in_the_admin(world: World) -> None:
    made, raw = actions.token_create(user=world.dispatcher, name="script")
    client = Client()
    client.force_login(world.admin)
    url = f"/admin/accounts/apitoken/{made.pk}/change/"
    assert client.get(url).status_code == 200
    response = client.post(
        url,
        {
            "name": "script",
            "user": world.dispatcher.pk,
            "expires_at_0": "2030-01-01",
            "expires_at_1": "00:00:00",
            "revoked_at_0": "",
            "revoked_at_1": "",
            "scopes": ["read"],
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    made.refresh_from_db()
    assert made.scopes == ["read"]
    assert (
        api(raw)
        .post("/api/v1/accounts/tokens", {"name": "x"}, content_type="application/json")
        .status_code
        == 403
    )
    assert client.get("/admin/accounts/apitoken/add/").status_code == 403
