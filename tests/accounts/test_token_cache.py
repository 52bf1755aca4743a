"""The per-process token cache: a token is read from the database once, and every change that
matters to authentication (revocation, expiry, a deactivated or changed user, other scopes) is
seen by the very next request."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from gridgov.accounts import actions, token_cache
from gridgov.accounts.models import ApiToken, User
from gridgov.core.stamps import stamp_bump
from tests.world import World

pytestmark = pytest.mark.django_db


def me(raw: str) -> Any:
    return Client().get("/api/v1/accounts/me", headers={"Authorization": f"Bearer {raw}"})


def token_queries(raw: str) -> list[str]:
    """The statements about tokens that one look-up of ``raw`` makes."""
    with CaptureQueriesContext(connection) as captured:
        actions.token_lookup(raw)
    return [q["sql"] for q in captured.captured_queries if "accounts_apitoken" in q["sql"]]


def test_a_token_is_read_from_the_database_once_and_then_from_memory(world: World) -> None:
    _, raw = actions.token_create(user=world.grid_worker_a, name="phone")
    assert any(sql.startswith("SELECT") for sql in token_queries(raw))
    assert token_queries(raw) == []
    assert me(raw).status_code == 200


def test_a_revoked_token_is_refused_at_once_although_it_was_cached(world: World) -> None:
    token, raw = actions.token_create(user=world.grid_worker_a, name="phone")
    assert me(raw).status_code == 200
    actions.token_revoke(user=world.grid_worker_a, token_uuid=str(token.uuid))
    assert me(raw).status_code == 401


def test_a_deactivated_users_cached_token_stops_at_once(world: World) -> None:
    _, raw = actions.token_create(user=world.grid_worker_a, name="phone")
    assert me(raw).status_code == 200
    actions.user_deactivate(user=world.grid_worker_a, actor=world.admin)
    assert me(raw).status_code == 401


def test_a_changed_user_is_seen_by_the_next_request(world: World) -> None:
    _, raw = actions.token_create(user=world.grid_worker_a, name="phone")
    assert me(raw).json()["name"] != "王网格"
    actions.user_update(user=world.grid_worker_a, actor=world.admin, display_name="王网格")
    assert me(raw).json()["name"] == "王网格"


def test_new_scopes_of_a_cached_token_apply_to_the_next_request(world: World) -> None:
    token, raw = actions.token_create(user=world.grid_worker_a, name="phone")
    assert actions.token_lookup(raw).scopes == token.scopes  # type: ignore[union-attr]
    token.scopes = ["read"]
    token.save(update_fields=["scopes"])
    assert actions.token_lookup(raw).scopes == ["read"]  # type: ignore[union-attr]


def test_a_bulk_update_is_seen_once_the_writer_says_so(world: World) -> None:
    _, raw = actions.token_create(user=world.grid_worker_a, name="phone")
    assert me(raw).status_code == 200
    User.objects.filter(pk=world.grid_worker_a.pk).update(is_active=False)  # no signal …
    token_cache.tokens_changed()  # … so the writer tells every process
    assert me(raw).status_code == 401


def test_another_process_sees_a_revocation_when_it_next_checks_the_stamp(
    world: World, settings: Any
) -> None:
    token, raw = actions.token_create(user=world.grid_worker_a, name="phone")
    assert me(raw).status_code == 200
    # another process revoked it: the row and the stamp changed, this process's memory did not
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    stamp_bump(key=token_cache.STAMP)
    settings.GRIDGOV_INDEX_CHECK_SECONDS = 0  # the next look-up reads the stamp
    assert me(raw).status_code == 401


def test_a_cached_token_expires_on_time(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    token, raw = actions.token_create(user=world.grid_worker_a, name="phone", days=1)
    assert actions.token_lookup(raw) is not None
    later = token.expires_at + timedelta(seconds=1)  # type: ignore[operator]
    monkeypatch.setattr(token_cache.timezone, "now", lambda: later)
    assert actions.token_lookup(raw) is None


def test_last_used_is_written_at_most_once_a_minute(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    token, raw = actions.token_create(user=world.grid_worker_a, name="phone")
    start = timezone.now()
    monkeypatch.setattr(token_cache.timezone, "now", lambda: start)
    assert any(sql.startswith("UPDATE") for sql in token_queries(raw))
    monkeypatch.setattr(token_cache.timezone, "now", lambda: start + timedelta(seconds=59))
    assert token_queries(raw) == []
    monkeypatch.setattr(token_cache.timezone, "now", lambda: start + timedelta(seconds=61))
    assert [sql.split()[0] for sql in token_queries(raw)] == ["UPDATE"]
    assert ApiToken.objects.get(pk=token.pk).last_used_at == start + timedelta(seconds=61)


def test_each_request_gets_its_own_user_and_token_objects(world: World) -> None:
    _, raw = actions.token_create(user=world.grid_worker_a, name="phone", scopes=["read"])
    first, second = actions.token_lookup(raw), actions.token_lookup(raw)
    assert first is not None and second is not None
    assert first is not second and first.user is not second.user
    first.user.some_request_attribute = True  # type: ignore[attr-defined]
    first.scopes.append("write")
    assert not hasattr(second.user, "some_request_attribute")
    assert second.scopes == ["read"]
    assert second.user.pk == world.grid_worker_a.pk and second.user.is_authenticated


def test_unknown_secrets_are_not_remembered(world: World) -> None:
    before = len(token_cache._cache.get().by_hash)
    for n in range(20):
        assert actions.token_lookup(f"ggt_{n:08x}_not-a-real-secret") is None
    assert len(token_cache._cache.get().by_hash) == before
