"""The admin shows notifications and deliveries as records and lets preferences be changed."""

from __future__ import annotations

from django.test import Client

from gridgov.notifications.actions import notify
from gridgov.notifications.delivery import deliver_pending
from gridgov.notifications.models import Delivery, Notification, NotificationPreference
from tests.notifications.conftest import wants
from tests.world import World


def test_an_administrator_reads_notifications_and_deliveries_but_cannot_change_them(
    world: World,
) -> None:
    wants(world.grid_worker_a, email=True)
    notify(recipients=[world.grid_worker_a], kind="case.dispatched", title="案件已派遣")
    deliver_pending()
    n, d = Notification.objects.get(), Delivery.objects.get()
    client = Client()
    client.force_login(world.admin)
    for model, pk in (("notification", n.pk), ("delivery", d.pk)):
        assert client.get(f"/admin/notifications/{model}/").status_code == 200
        page = client.get(f"/admin/notifications/{model}/{pk}/change/")
        assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
        assert client.get(f"/admin/notifications/{model}/add/").status_code == 403
    assert (
        "grid_worker_a@example.cn"
        not in client.get(f"/admin/notifications/delivery/{d.pk}/change/").content.decode()
    )


def test_an_administrator_changes_a_users_preferences(world: World) -> None:
    pref = NotificationPreference.objects.get(user=wants(world.grid_worker_a, sms=True))
    client = Client()
    client.force_login(world.admin)
    url = f"/admin/notifications/notificationpreference/{pref.pk}/change/"
    assert client.get(url).status_code == 200
    response = client.post(
        url,
        {
            "user": world.grid_worker_a.pk,
            "sms": "on",
            "digest_threshold": "50",
            "muted_kinds": "[]",
        },
    )
    assert response.status_code == 302
    pref.refresh_from_db()
    assert pref.digest_threshold == 50
