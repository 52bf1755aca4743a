"""The inbox shows a user their own notifications; opening one marks it read and goes to it."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from gridgov.accounts.models import User
from gridgov.notifications.actions import notify
from gridgov.notifications.models import Notification, NotificationPreference
from tests.world import World

INBOX = "/notifications/"
BADGE = "/notifications/badge/"
PREFS = "/notifications/preferences/"


def browser(user: User) -> Client:
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(user)
    return client


def tell(user: User, title: str, link: str = "/cases/320113-20261122-00042/") -> Notification:
    notify(recipients=[user], kind="case.dispatched", title=title, link=link)
    return Notification.objects.filter(recipient=user).order_by("-id").first()  # type: ignore[return-value]


def test_the_inbox_lists_only_the_users_own_notifications_newest_first(world: World) -> None:
    tell(world.grid_worker_a, "first for A")
    tell(world.grid_worker_a, "second for A")
    tell(world.grid_worker_b, "for B only")
    page = browser(world.grid_worker_a).get(INBOX).content.decode()
    assert "first for A" in page and "second for A" in page
    assert "for B only" not in page
    assert page.index("second for A") < page.index("first for A")


def test_unread_notifications_are_marked_and_the_unread_filter_hides_read_ones(
    world: World,
) -> None:
    seen = tell(world.grid_worker_a, "already seen")
    tell(world.grid_worker_a, "brand new")
    Notification.objects.filter(pk=seen.pk).update(read_at=seen.created_at)
    client = browser(world.grid_worker_a)
    page = client.get(INBOX).content.decode()
    assert page.count("notice--unread") == 1
    unread_only = client.get(INBOX + "?show=unread").content.decode()
    assert "brand new" in unread_only and "already seen" not in unread_only


def test_the_inbox_needs_a_fixed_number_of_queries_however_long_it_is(
    world: World, django_assert_max_num_queries: Any
) -> None:
    for i in range(60):
        tell(world.grid_worker_a, f"note {i}")
    client = browser(world.grid_worker_a)
    with django_assert_max_num_queries(8):
        response = client.get(INBOX)
    assert response.status_code == 200
    assert response.content.decode().count('class="list__item notice') == 50  # one page


def test_opening_a_notification_marks_it_read_and_goes_to_its_page(world: World) -> None:
    n = tell(world.grid_worker_a, "case dispatched")
    response = browser(world.grid_worker_a).get(f"/notifications/{n.uuid}/open/")
    assert response.status_code == 302
    assert response["Location"] == "/cases/320113-20261122-00042/"
    n.refresh_from_db()
    assert n.read_at is not None


@pytest.mark.parametrize(
    "link",
    [
        "https://evil.example/phish",
        "//evil.example/phish",
        "/\\evil.example/phish",
        "/\t/evil.example",
        "javascript:alert(1)",
        "",
    ],
)
def test_opening_a_notification_never_redirects_off_the_site(world: World, link: str) -> None:
    n = tell(world.grid_worker_a, "suspicious", link=link)
    response = browser(world.grid_worker_a).get(f"/notifications/{n.uuid}/open/")
    assert response.status_code == 302
    assert response["Location"] == INBOX
    n.refresh_from_db()
    assert n.read_at is not None


def test_opening_someone_elses_notification_answers_404_and_leaves_it_unread(
    world: World,
) -> None:
    theirs = tell(world.grid_worker_b, "for B")
    response = browser(world.grid_worker_a).get(f"/notifications/{theirs.uuid}/open/")
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_mark_all_read_marks_only_the_users_own_and_goes_back_to_the_inbox(
    world: World,
) -> None:
    tell(world.grid_worker_a, "one")
    tell(world.grid_worker_a, "two")
    tell(world.grid_worker_b, "for B")
    client = browser(world.grid_worker_a)
    response = client.post("/notifications/read-all/", {"show": "unread"})
    assert response.status_code == 302
    assert response["Location"] == INBOX + "?show=unread"
    assert not Notification.objects.filter(recipient=world.grid_worker_a, read_at=None).exists()
    assert Notification.objects.filter(recipient=world.grid_worker_b, read_at=None).count() == 1
    assert "2 notifications marked read." in client.get(INBOX).content.decode()


def test_mark_all_read_needs_a_post_with_the_csrf_token(world: World) -> None:
    tell(world.grid_worker_a, "one")
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.grid_worker_a)
    assert client.get("/notifications/read-all/").status_code == 405
    assert client.post("/notifications/read-all/").status_code == 403
    assert Notification.objects.filter(read_at=None).count() == 1


def test_the_badge_partial_shows_the_unread_count_and_polls(world: World) -> None:
    client = browser(world.grid_worker_a)
    empty = client.get(BADGE).content.decode()
    assert 'data-unread="0"' in empty and 'hx-trigger="every 20s"' in empty
    tell(world.grid_worker_a, "one")
    tell(world.grid_worker_a, "two")
    tell(world.grid_worker_b, "not mine")
    response = client.get(BADGE)
    assert response["Cache-Control"].startswith("max-age=0")
    html = response.content.decode()
    assert 'data-unread="2"' in html
    assert '<span class="bell__count" id="notification-count">2</span>' in html


def test_the_badge_tells_an_open_inbox_to_reload_when_the_count_moved(world: World) -> None:
    client = browser(world.grid_worker_a)
    assert "HX-Trigger" not in client.get(BADGE + "?seen=0")
    tell(world.grid_worker_a, "one")
    assert client.get(BADGE + "?seen=0")["HX-Trigger"] == "notifications-changed"
    assert "HX-Trigger" not in client.get(BADGE + "?seen=1")


def test_the_badge_answers_401_to_an_expired_session_so_nothing_is_swapped_in(db: None) -> None:
    assert Client().get(BADGE).status_code == 401


def test_every_page_shows_the_bell_with_the_poll_interval_from_the_settings(
    world: World, settings: Any
) -> None:
    settings.GRIDGOV_NOTIFY_POLL_SECONDS = 7
    tell(world.grid_worker_a, "one")
    page = browser(world.grid_worker_a).get("/").content.decode()
    assert 'id="notification-bell"' in page and 'hx-trigger="every 7s"' in page
    assert 'data-unread="1"' in page


def test_the_preferences_form_saves_the_channels_and_the_threshold(world: World) -> None:
    client = browser(world.grid_worker_a)
    page = client.get(PREFS).content.decode()
    assert 'value="10"' in page  # the default threshold
    assert "139****5678" in page and "13912345678" not in page
    response = client.post(PREFS, {"sms": "on", "digest_threshold": "25"})
    assert response.status_code == 302
    pref = NotificationPreference.objects.get(user=world.grid_worker_a)
    assert (pref.email, pref.sms, pref.digest_threshold) == (False, True, 25)


@pytest.mark.parametrize("threshold", ["0", "1001", "ten", ""])
def test_the_preferences_form_refuses_a_threshold_outside_1_to_1000(
    world: World, threshold: str
) -> None:
    response = browser(world.grid_worker_a).post(PREFS, {"digest_threshold": threshold})
    assert response.status_code == 200
    assert "field__error" in response.content.decode()
    assert not NotificationPreference.objects.exists()


def test_the_preferences_form_refuses_e_mail_for_an_account_without_an_address(
    world: World,
) -> None:
    response = browser(world.grid_worker_a).post(PREFS, {"email": "on", "digest_threshold": "10"})
    assert response.status_code == 200
    assert "no e-mail address" in response.content.decode()
    assert not NotificationPreference.objects.exists()


@pytest.mark.parametrize("path", [INBOX, PREFS, "/notifications/read-all/"])
def test_the_notification_pages_ask_an_anonymous_visitor_to_log_in(db: None, path: str) -> None:
    client = Client()
    response = client.post(path) if "read-all" in path else client.get(path)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
