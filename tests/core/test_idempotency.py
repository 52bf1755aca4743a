"""Idempotency keys: a retried write answers what the first one did and writes nothing more."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from gridgov.accounts import actions
from gridgov.accounts.models import ApiToken
from gridgov.core import idempotency
from gridgov.core.builtin_jobs import prune_idempotency_records
from gridgov.core.models import IdempotencyRecord
from tests.threads import answer_in_thread
from tests.world import World

TOKENS = "/api/v1/accounts/tokens"

on_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason=(
        "PostgreSQL's wait for a key another transaction holds; on SQLite the whole second "
        "request queues behind the first one's write lock (tests/core/test_sqlite_writers.py)"
    ),
)


def logged_in(world: World, persona: str = "grid_worker_a") -> Client:
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(world.users[persona])
    return client


def create_token(client: Client, key: str | None, name: str = "phone") -> Any:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post(TOKENS, {"name": name}, content_type="application/json", headers=headers)


def test_a_retried_post_answers_the_first_result_and_creates_one_token(world: World) -> None:
    client = logged_in(world)
    first = create_token(client, "9b2c1e4e-retry")
    again = create_token(client, "9b2c1e4e-retry")
    assert first.status_code == again.status_code == 201
    assert again.content == first.content  # the secret too: the client may have lost it
    assert again["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert ApiToken.objects.count() == 1
    assert IdempotencyRecord.objects.count() == 1


def test_a_request_without_a_key_is_not_deduplicated(world: World) -> None:
    client = logged_in(world)
    create_token(client, None)
    create_token(client, None)
    assert ApiToken.objects.count() == 2
    assert not IdempotencyRecord.objects.exists()


def test_keys_belong_to_their_user(world: World) -> None:
    mine = create_token(logged_in(world, "grid_worker_a"), "shared-key")
    theirs = create_token(logged_in(world, "grid_worker_b"), "shared-key")
    assert theirs.status_code == 201 and not theirs.has_header("Idempotent-Replayed")
    assert theirs.json()["token"] != mine.json()["token"]
    assert ApiToken.objects.count() == 2


def test_the_same_key_with_a_different_body_is_refused_with_422(world: World) -> None:
    client = logged_in(world)
    create_token(client, "key-1", name="phone")
    response = create_token(client, "key-1", name="laptop")
    assert response.status_code == 422
    assert response.json() == {
        "message": "the idempotency key was already used for a different request",
        "detail": {"header": "Idempotency-Key"},
    }
    assert list(ApiToken.objects.values_list("name", flat=True)) == ["phone"]


def test_the_same_key_on_another_path_is_refused_with_422(world: World) -> None:
    client = logged_in(world)
    token = create_token(client, "key-2").json()
    response = client.delete(f"{TOKENS}/{token['id']}", headers={"Idempotency-Key": "key-2"})
    assert response.status_code == 422
    assert ApiToken.objects.get().revoked_at is None


def test_an_error_is_not_stored_so_a_corrected_retry_with_the_same_key_succeeds(
    world: World,
) -> None:
    client = logged_in(world)
    refused = create_token(client, "key-3", name="   ")
    assert refused.status_code == 400
    assert refused.json()["message"] == "a token needs a name"
    assert not IdempotencyRecord.objects.exists()
    corrected = create_token(client, "key-3", name="phone")
    assert corrected.status_code == 201
    assert ApiToken.objects.count() == 1


def test_invalid_input_is_not_stored_either(world: World) -> None:
    client = logged_in(world)
    response = client.post(
        TOKENS,
        {"name": "x", "days": 0},
        content_type="application/json",
        headers={"Idempotency-Key": "k"},
    )
    assert response.status_code == 422
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.parametrize("key", ["", "x" * 201, "tab\there"])
def test_a_key_that_is_empty_too_long_or_unprintable_is_refused_with_400(
    world: World, key: str
) -> None:
    response = create_token(logged_in(world), key)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["message"]
    assert not ApiToken.objects.exists()


def test_an_anonymous_request_ignores_the_key(world: World) -> None:
    response = Client().post(
        TOKENS, {"name": "x"}, content_type="application/json", headers={"Idempotency-Key": ""}
    )
    assert response.status_code == 401  # refused for the login, not for the (invalid) key
    assert not IdempotencyRecord.objects.exists()


def test_only_a_hash_of_the_key_is_kept_and_the_stored_response_is_sealed(world: World) -> None:
    secret = create_token(logged_in(world), "my-very-own-key").json()["token"]
    record = IdempotencyRecord.objects.get()
    assert "my-very-own-key" not in record.key_hash
    assert secret.encode() not in bytes(record.body)
    assert b"ggt_" not in bytes(record.body)


def test_a_stored_response_that_cannot_be_read_any_more_answers_409_and_runs_nothing(
    world: World, settings: Any
) -> None:
    _token, raw = actions.token_create(user=world.grid_worker_a, name="script")
    client = Client(headers={"Authorization": f"Bearer {raw}"})
    create_token(client, "key-4")
    settings.SECRET_KEY = "a-rotated-secret-key-" + "x" * 40
    again = create_token(client, "key-4")
    assert again.status_code == 409
    assert ApiToken.objects.count() == 2


def test_a_stored_response_is_read_with_the_fallback_keys_after_a_key_rotation(
    world: World, settings: Any
) -> None:
    client = logged_in(world)
    first = create_token(client, "key-7")
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-rotated-secret-key-" + "x" * 40
    again = create_token(client, "key-7")
    assert again.status_code == 201 and again.content == first.content
    assert ApiToken.objects.count() == 1


def test_an_expired_record_is_forgotten_and_the_request_runs_again(world: World) -> None:
    client = logged_in(world)
    create_token(client, "key-5")
    IdempotencyRecord.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    again = create_token(client, "key-5")
    assert again.status_code == 201 and not again.has_header("Idempotent-Replayed")
    assert ApiToken.objects.count() == 2
    assert IdempotencyRecord.objects.count() == 1


def test_records_live_the_configured_hours(world: World, settings: Any) -> None:
    settings.GRIDGOV_IDEMPOTENCY_HOURS = 2
    create_token(logged_in(world), "key-6")
    left = IdempotencyRecord.objects.get().expires_at - timezone.now()
    assert timedelta(hours=1, minutes=59) < left <= timedelta(hours=2)


def test_the_prune_job_deletes_expired_records_only(world: World) -> None:
    client = logged_in(world)
    create_token(client, "old")
    create_token(client, "new")
    old = IdempotencyRecord.objects.order_by("pk").first()
    assert old is not None
    IdempotencyRecord.objects.filter(pk=old.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    assert prune_idempotency_records() == "1 expired idempotency records removed"
    assert IdempotencyRecord.objects.count() == 1
    assert create_token(client, "new")["Idempotent-Replayed"] == "true"


def test_the_api_documents_the_header_on_write_operations(world: World) -> None:
    spec = Client().get("/api/v1/openapi.json").json()
    create = spec["paths"]["/api/v1/accounts/tokens"]["post"]
    listing = spec["paths"]["/api/v1/accounts/tokens"]["get"]
    assert "Idempotency-Key" in {p["name"] for p in create["parameters"]}
    assert "Idempotency-Key" not in {p["name"] for p in listing.get("parameters", [])}
    assert "Idempotency-Key" in spec["info"]["description"]


def test_the_decorator_belongs_under_the_router_decorator() -> None:
    from ninja import Router

    router = Router()

    def handler(request: Any) -> None:
        return None

    decorated = router.post("/x")(handler)
    with pytest.raises(TypeError, match="under the router decorator"):
        idempotency.idempotent(decorated)


# --- concurrent duplicates (PostgreSQL) ----------------------------------------------------


def slow_token_create(
    monkeypatch: pytest.MonkeyPatch, entered: threading.Event, go: threading.Event
) -> None:
    """Make token creation wait, inside its transaction, until the test lets it go on."""
    original = actions.token_create

    def waiting(**kwargs: Any) -> Any:
        entered.set()
        go.wait(timeout=10)
        return original(**kwargs)

    monkeypatch.setattr(actions, "token_create", waiting)


def in_thread(client: Client, key: str, results: list[Any]) -> threading.Thread:
    return answer_in_thread(lambda: create_token(client, key), results)


@on_postgres
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_requests_with_the_same_key_at_once_write_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered, go = threading.Event(), threading.Event()
    slow_token_create(monkeypatch, entered, go)
    results: list[Any] = []
    first = in_thread(logged_in(world), "at-once", results)
    assert entered.wait(timeout=10)
    second = in_thread(logged_in(world), "at-once", results)  # blocks on the claimed key
    second.join(timeout=0.5)
    assert second.is_alive(), "the retry should wait for the first request"
    go.set()
    first.join(timeout=15)
    second.join(timeout=15)
    assert sorted(r.status_code for r in results) == [201, 201]
    assert results[0].content == results[1].content
    assert sorted(r.has_header("Idempotent-Replayed") for r in results) == [False, True]
    assert ApiToken.objects.count() == 1


@on_postgres
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_retry_that_waits_too_long_for_the_first_request_answers_409(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(idempotency, "IN_PROGRESS_WAIT_SECONDS", 0.2)
    entered, go = threading.Event(), threading.Event()
    slow_token_create(monkeypatch, entered, go)
    results: list[Any] = []
    first = in_thread(logged_in(world), "slow", results)
    assert entered.wait(timeout=10)
    retry = create_token(logged_in(world), "slow")
    go.set()
    first.join(timeout=15)
    assert retry.status_code == 409
    assert retry.json()["message"] == "a request with this key is still in progress"
    assert results[0].status_code == 201
    assert ApiToken.objects.count() == 1
    assert create_token(logged_in(world), "slow")["Idempotent-Replayed"] == "true"
