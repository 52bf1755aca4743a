"""Sessions end after GRIDGOV_SESSION_IDLE_SECONDS without activity, and after
GRIDGOV_SESSION_SECONDS whatever the activity; the header bell's poll is not activity."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from gridgov.core import security
from tests.world import PASSWORD, World

MINUTE = 60


class FrozenClock:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, start: float):
        self.t = start
        monkeypatch.setattr(security, "now", lambda: self.t)

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    return FrozenClock(monkeypatch, start=1_800_000_000.0)


def logged_in(world: World, persona: str = "dispatcher") -> Client:
    client = Client(headers={"Accept-Language": "en"})
    assert (
        client.post(
            "/accounts/login/", {"username": world.users[persona].username, "password": PASSWORD}
        ).status_code
        == 302
    )
    return client


def is_logged_in(client: Client) -> bool:
    return client.get("/map/").status_code == 200


def test_a_session_idle_longer_than_the_limit_is_logged_out_with_a_message(
    world: World, settings: Any, clock: FrozenClock
) -> None:
    settings.GRIDGOV_SESSION_IDLE_SECONDS = 30 * MINUTE
    client = logged_in(world)
    clock.advance(31 * MINUTE)
    response = client.get("/map/", follow=True)
    assert response.redirect_chain[0][0].startswith("/accounts/login/?next=/map/")
    assert "after 30 minutes without activity" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_activity_keeps_a_session_alive(world: World, settings: Any, clock: FrozenClock) -> None:
    settings.GRIDGOV_SESSION_IDLE_SECONDS = 30 * MINUTE
    client = logged_in(world)
    for _ in range(4):  # two hours, a page every 20 minutes
        clock.advance(20 * MINUTE)
        assert is_logged_in(client)


def test_the_notification_bells_poll_does_not_keep_a_session_alive(
    world: World, settings: Any, clock: FrozenClock
) -> None:
    settings.GRIDGOV_SESSION_IDLE_SECONDS = 30 * MINUTE
    client = logged_in(world)
    clock.advance(20 * MINUTE)
    assert client.get("/notifications/badge/", headers={"HX-Request": "true"}).status_code == 200
    clock.advance(11 * MINUTE)
    poll = client.get("/notifications/badge/", headers={"HX-Request": "true"})
    # htmx is told to load the login page instead of swapping anything into the header
    assert poll.status_code == 401
    assert poll["HX-Redirect"].startswith("/accounts/login/?next=")
    assert not is_logged_in(client)


def test_the_session_lifetime_holds_however_active_the_user_is(
    world: World, settings: Any, clock: FrozenClock
) -> None:
    settings.GRIDGOV_SESSION_IDLE_SECONDS = 30 * MINUTE
    settings.SESSION_COOKIE_AGE = 8 * 3600
    client = logged_in(world)
    for _ in range(23):  # 7 h 40 min of pages every 20 minutes
        clock.advance(20 * MINUTE)
        assert is_logged_in(client)
    clock.advance(21 * MINUTE)
    assert not is_logged_in(client)


def test_an_idle_api_session_answers_401(world: World, settings: Any, clock: FrozenClock) -> None:
    settings.GRIDGOV_SESSION_IDLE_SECONDS = 10 * MINUTE
    client = logged_in(world)
    assert client.get("/api/v1/accounts/me").status_code == 200
    clock.advance(11 * MINUTE)
    assert client.get("/api/v1/accounts/me").status_code == 401


def test_zero_turns_the_idle_limit_off(world: World, settings: Any, clock: FrozenClock) -> None:
    settings.GRIDGOV_SESSION_IDLE_SECONDS = 0
    client = logged_in(world)
    clock.advance(5 * 3600)
    assert is_logged_in(client)
