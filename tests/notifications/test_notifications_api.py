"""The notifications API answers about the caller's own inbox and preferences only."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from gridgov.accounts.actions import token_create
from gridgov.accounts.models import User
from gridgov.notifications.actions import notify
from gridgov.notifications.models import Notification, NotificationPreference
from tests.world import World

API = "/api/v1/notifications"


def api_client(user: User, **headers: str) -> Client:
    _token, raw = token_create(user=user, name="notifications test")
    return Client(headers={"Authorization": f"Bearer {raw}", "Accept-Language": "en", **headers})


def send(client: Client, method: str, path: str, body: Any = None, **headers: str) -> Any:
    return getattr(client, method)(
        path, body if body is not None else {}, content_type="application/json", headers=headers
    )


def tell(user: User, title: str) -> Notification:
    notify(recipients=[user], kind="case.dispatched", title=title, subject_ref="C-1")
    return Notification.objects.filter(recipient=user).order_by("-id").first()  # type: ignore[return-value]


def test_the_list_holds_only_the_callers_notifications_newest_first(world: World) -> None:
    tell(world.grid_worker_a, "older")
    tell(world.grid_worker_a, "newer")
    tell(world.grid_worker_b, "for B")
    listed = api_client(world.grid_worker_a).get(API).json()
    assert [n["title"] for n in listed] == ["newer", "older"]
    assert listed[0]["unread"] is True and listed[0]["subject_ref"] == "C-1"
    assert set(listed[0]) >= {"id", "kind", "link", "created_at", "read_at"}


def test_the_list_filters_unread_and_pages_with_limit_and_offset(world: World) -> None:
    for i in range(5):
        tell(world.grid_worker_a, f"n{i}")
    Notification.objects.filter(title="n0").update(
        read_at=Notification.objects.get(title="n0").created_at
    )
    client = api_client(world.grid_worker_a)
    assert len(client.get(f"{API}?unread=true").json()) == 4
    assert [n["title"] for n in client.get(f"{API}?unread=false").json()] == ["n0"]
    assert [n["title"] for n in client.get(f"{API}?limit=2&offset=1").json()] == ["n3", "n2"]


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "offset=-1"])
def test_the_list_refuses_a_limit_outside_1_to_200(world: World, query: str) -> None:
    response = api_client(world.grid_worker_a).get(f"{API}?{query}")
    assert response.status_code == 422
    assert "message" in response.json()


def test_the_unread_count_counts_only_the_callers_unread(world: World) -> None:
    tell(world.grid_worker_a, "one")
    tell(world.grid_worker_a, "two")
    tell(world.grid_worker_b, "for B")
    assert api_client(world.grid_worker_a).get(f"{API}/unread-count").json() == {"unread": 2}


def test_reading_a_notification_marks_it_and_reading_it_again_changes_nothing(
    world: World,
) -> None:
    n = tell(world.grid_worker_a, "one")
    client = api_client(world.grid_worker_a)
    first = send(client, "post", f"{API}/{n.uuid}/read")
    assert first.status_code == 200
    assert first.json()["unread"] is False and first.json()["read_at"]
    again = send(client, "post", f"{API}/{n.uuid}/read")
    assert again.json()["read_at"] == first.json()["read_at"]


def test_reading_another_users_notification_answers_404_and_changes_nothing(
    world: World,
) -> None:
    theirs = tell(world.grid_worker_b, "for B")
    response = send(api_client(world.grid_worker_a), "post", f"{API}/{theirs.uuid}/read")
    assert response.status_code == 404
    assert response.json()["detail"] == {"notification": str(theirs.uuid)}
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_read_all_marks_the_callers_notifications_only(world: World) -> None:
    tell(world.grid_worker_a, "one")
    tell(world.grid_worker_a, "two")
    tell(world.grid_worker_b, "for B")
    response = send(api_client(world.grid_worker_a), "post", f"{API}/read-all")
    assert response.json() == {"marked": 2, "unread": 0}
    assert Notification.objects.filter(read_at=None).count() == 1


def test_read_all_replays_its_first_answer_for_the_same_idempotency_key(world: World) -> None:
    tell(world.grid_worker_a, "one")
    client = api_client(world.grid_worker_a)
    first = send(client, "post", f"{API}/read-all", **{"Idempotency-Key": "read-all-1"})
    tell(world.grid_worker_a, "arrived in between")
    again = send(client, "post", f"{API}/read-all", **{"Idempotency-Key": "read-all-1"})
    assert first.json() == again.json() == {"marked": 1, "unread": 0}
    assert again["Idempotent-Replayed"] == "true"
    assert Notification.objects.filter(read_at=None).count() == 1  # the retry wrote nothing


def test_the_preferences_are_the_defaults_until_changed(world: World) -> None:
    response = api_client(world.grid_worker_a).get(f"{API}/preferences")
    assert response.json() == {
        "email": False,
        "sms": False,
        "digest_threshold": 10,
        "muted_kinds": [],
    }
    assert not NotificationPreference.objects.exists()


def test_putting_the_preferences_saves_them_and_replays_under_the_same_key(
    world: World,
) -> None:
    client = api_client(world.grid_worker_a)
    body = {"email": False, "sms": True, "digest_threshold": 3, "muted_kinds": ["case.note"]}
    first = send(client, "put", f"{API}/preferences", body, **{"Idempotency-Key": "prefs-1"})
    assert first.status_code == 200 and first.json() == body
    again = send(client, "put", f"{API}/preferences", body, **{"Idempotency-Key": "prefs-1"})
    assert again["Idempotent-Replayed"] == "true"
    changed = {**body, "sms": False}
    reused = send(client, "put", f"{API}/preferences", changed, **{"Idempotency-Key": "prefs-1"})
    assert reused.status_code == 422
    pref = NotificationPreference.objects.get(user=world.grid_worker_a)
    assert (pref.sms, pref.digest_threshold, pref.muted_kinds) == (True, 3, ["case.note"])


@pytest.mark.parametrize("threshold", [0, 1001])
def test_putting_a_threshold_outside_1_to_1000_answers_422(world: World, threshold: int) -> None:
    body = {"email": False, "sms": False, "digest_threshold": threshold}
    response = send(api_client(world.grid_worker_a), "put", f"{API}/preferences", body)
    assert response.status_code == 422
    assert not NotificationPreference.objects.exists()


def test_choosing_e_mail_without_an_address_answers_422_naming_the_field(world: World) -> None:
    body = {"email": True, "sms": False, "digest_threshold": 10}
    response = send(api_client(world.grid_worker_a), "put", f"{API}/preferences", body)
    assert response.status_code == 422
    assert response.json()["detail"] == {"field": "email"}


def test_the_api_asks_anonymous_callers_to_authenticate(db: None) -> None:
    assert Client().get(API).status_code == 401
    assert Client().get(f"{API}/unread-count").status_code == 401
