"""The delivery job sends e-mail and text messages from the worker: never twice, storms digested."""

from __future__ import annotations

import io
import logging
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from gridgov.accounts.actions import user_deactivate
from gridgov.accounts.models import User
from gridgov.core.jobs import registered_jobs, run_due_jobs
from gridgov.notifications.actions import notify, preference_update
from gridgov.notifications.delivery import claim_pending, deliver_pending, mask_email, scrub
from gridgov.notifications.models import (
    Delivery,
    DeliveryState,
    DeliveryStatus,
    Notification,
    NotificationPreference,
)
from tests.notifications.conftest import wants
from tests.world import World

PHONE = "13912345678"  # every persona's work phone (tests/world.py)


def tell(users: list[User], title: str = "案件已派遣", times: int = 1) -> None:
    for i in range(times):
        notify(
            recipients=users,
            kind="case.dispatched",
            title=f"{title} {i + 1}" if times > 1 else title,
            body="请尽快处置",
            link="/cases/320113-20261122-00042/",
        )


def states() -> dict[str, int]:
    found: dict[str, int] = {}
    for state in Notification.objects.values_list("delivery_state", flat=True):
        found[state] = found.get(state, 0) + 1
    return found


def test_a_user_who_chose_e_mail_gets_one_e_mail_per_notification(world: World) -> None:
    user = wants(world.grid_worker_a, email=True)
    tell([user], "案件 00042 已派遣")
    report = deliver_pending()
    assert (report.sent, report.messages) == (1, 1)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["grid_worker_a@example.cn"]
    assert "案件 00042 已派遣" in message.subject
    assert "请尽快处置" in message.body
    n = Notification.objects.get()
    assert f"/notifications/{n.uuid}/open/" in message.body  # opening it marks it read
    assert n.delivery_state == DeliveryState.SENT
    logged = Delivery.objects.get()
    assert (logged.channel, logged.status, logged.notification) == ("email", "sent", n)
    assert logged.to == "g***@example.cn"


def test_links_in_e_mails_are_absolute_when_the_site_address_is_set(
    world: World, settings: Any
) -> None:
    settings.GRIDGOV_SITE_URL = "https://grid.example.gov.cn/"
    tell([wants(world.grid_worker_a, email=True)])
    deliver_pending()
    assert "https://grid.example.gov.cn/notifications/" in mail.outbox[0].body


def test_a_user_who_chose_sms_gets_a_text_at_their_work_phone(
    world: World, texts: list[tuple[str, str]]
) -> None:
    tell([wants(world.grid_worker_a, sms=True)], "案件已派遣")
    report = deliver_pending()
    assert report.sent == 1
    assert len(texts) == 1
    phone, text = texts[0]
    assert phone == PHONE and "案件已派遣" in text and len(text) <= 140
    assert Delivery.objects.get().to == "139****5678"
    assert not mail.outbox


def test_a_user_with_both_channels_gets_both(world: World, texts: list[tuple[str, str]]) -> None:
    tell([wants(world.grid_worker_a, email=True, sms=True)])
    deliver_pending()
    assert len(mail.outbox) == 1 and len(texts) == 1
    assert sorted(Delivery.objects.values_list("channel", flat=True)) == ["email", "sms"]


def test_users_without_a_channel_are_skipped_and_nothing_is_sent(
    world: World, texts: list[tuple[str, str]]
) -> None:
    tell([world.grid_worker_a, world.supervisor])
    report = deliver_pending()
    assert report.claimed == 0  # notify decided already: no channel, nothing to claim
    assert states() == {DeliveryState.SKIPPED: 2}
    assert not mail.outbox and not texts


def test_a_channel_switched_off_after_notify_is_respected(
    world: World, texts: list[tuple[str, str]]
) -> None:
    user = wants(world.grid_worker_a, sms=True)
    tell([user])
    preference_update(user=user, sms=False)
    assert deliver_pending().skipped == 1
    assert not texts
    assert states() == {DeliveryState.SKIPPED: 1}


def test_a_user_deactivated_after_notify_is_sent_nothing(
    world: World, texts: list[tuple[str, str]]
) -> None:
    user = wants(world.grid_worker_a, sms=True)
    tell([user])
    user_deactivate(user=user, actor=None)
    deliver_pending()
    assert not texts
    assert states() == {DeliveryState.SKIPPED: 1}


def test_more_than_the_threshold_in_an_hour_arrive_as_one_digest(
    world: World, texts: list[tuple[str, str]]
) -> None:
    user = wants(world.grid_worker_a, email=True, sms=True, threshold=3)
    tell([user], "案件", times=5)
    report = deliver_pending()
    assert report.digested == 5 and report.sent == 0
    assert len(mail.outbox) == 1 and len(texts) == 1
    digest = mail.outbox[0]
    assert "5" in digest.subject
    assert all(f"案件 {i}" in digest.body for i in range(1, 6))
    assert states() == {DeliveryState.DIGESTED: 5}
    logged = Delivery.objects.filter(is_digest=True)
    assert sorted(d.channel for d in logged) == ["email", "sms"]
    assert all(d.notification is None and d.notification_count == 5 for d in logged)


def test_up_to_the_threshold_each_notification_is_its_own_message(world: World) -> None:
    tell([wants(world.grid_worker_a, email=True, threshold=3)], "案件", times=3)
    assert deliver_pending().sent == 3
    assert len(mail.outbox) == 3


def test_during_a_storm_the_next_digest_waits_and_then_carries_everything_since(
    world: World,
) -> None:
    user = wants(world.grid_worker_a, email=True, threshold=2)
    tell([user], "第一批", times=3)
    deliver_pending()
    assert len(mail.outbox) == 1
    tell([user], "第二批", times=2)
    assert deliver_pending().claimed == 0  # held: the next digest is not due yet
    assert Notification.objects.filter(delivery_state=DeliveryState.PENDING).count() == 2
    NotificationPreference.objects.filter(user=user).update(
        next_digest_at=timezone.now() - timedelta(seconds=1)
    )
    report = deliver_pending()
    assert report.digested == 2 and len(mail.outbox) == 2
    assert "第二批" in mail.outbox[1].body


def test_a_second_claim_of_the_same_rows_gets_nothing(world: World) -> None:
    tell([wants(world.grid_worker_a, email=True)], "案件", times=3)
    first = claim_pending(token="worker-1")
    second = claim_pending(token="worker-2")
    assert len(first) == 3 and second == []
    assert set(Notification.objects.values_list("claim_token", flat=True)) == {"worker-1"}


def test_two_workers_never_send_the_same_notification_twice(world: World) -> None:
    tell([wants(world.grid_worker_a, email=True)], "案件", times=3)
    claim_pending(token="worker-1")  # a worker that is busy sending these right now
    assert deliver_pending().claimed == 0
    assert not mail.outbox


def test_a_claim_left_by_a_dead_worker_is_taken_over_after_the_timeout(world: World) -> None:
    tell([wants(world.grid_worker_a, email=True)])
    claim_pending(token="dead-worker")
    Notification.objects.update(claimed_at=timezone.now() - timedelta(hours=1))
    assert deliver_pending().sent == 1
    assert len(mail.outbox) == 1


def test_the_logs_carry_no_phone_number_or_address(
    world: World, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.GRIDGOV_SMS_BACKEND = "gridgov.notifications.sms.LoggingSmsBackend"
    tell([wants(world.grid_worker_a, email=True, sms=True)], "居民张三 13800001111 反映")
    with caplog.at_level(logging.DEBUG):
        deliver_pending()
    text = caplog.text
    assert "sms to 139****5678:" in text and "characters" in text
    assert PHONE not in text
    assert "13800001111" not in text and "张三" not in text  # no message text either
    assert "grid_worker_a@example.cn" not in text


def test_a_failing_gateway_is_recorded_with_the_number_masked(
    world: World, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.GRIDGOV_SMS_BACKEND = "tests.notifications.sms_backends.BrokenSmsBackend"
    tell([wants(world.grid_worker_a, sms=True)])
    with caplog.at_level(logging.DEBUG):
        report = deliver_pending()
    assert report.failed == 1
    assert states() == {DeliveryState.FAILED: 1}
    logged = Delivery.objects.get()
    assert logged.status == DeliveryStatus.FAILED
    assert logged.error == "ConnectionError: gateway refused 139****5678"
    assert PHONE not in caplog.text


def test_a_channel_without_an_address_is_logged_as_skipped(world: World) -> None:
    user = wants(world.grid_worker_a, sms=True)
    User.objects.filter(pk=user.pk).update(work_phone="")
    tell([user])
    deliver_pending()
    logged = Delivery.objects.get()
    assert (logged.status, logged.error) == ("skipped", "no phone number")
    assert states() == {DeliveryState.SKIPPED: 1}


def test_masking_keeps_addresses_out_of_stored_errors() -> None:
    assert mask_email("zhang.wei@example.cn") == "z***@example.cn"
    assert scrub("refused zhang.wei@example.cn and +86 139 1234 5678") == (
        "refused z***@example.cn and +86*******5678"
    )


def test_the_worker_runs_the_delivery_job(world: World) -> None:
    assert "notifications.deliver" in {j.name for j in registered_jobs()}
    tell([wants(world.grid_worker_a, email=True)])
    outcomes = dict(run_due_jobs(owner="test-worker"))
    assert outcomes["notifications.deliver"].startswith("1 claimed: 1 sent")
    assert len(mail.outbox) == 1


def test_gridgov_notifications_deliver_prints_the_counts(world: World) -> None:
    tell([wants(world.grid_worker_a, email=True)])
    out = io.StringIO()
    call_command("notifications", "deliver", stdout=out)
    assert out.getvalue().strip() == (
        "notifications: 1 claimed: 1 sent, 0 digested, 0 skipped, 0 failed; 1 messages"
    )


def test_gridgov_notifications_send_test_puts_one_in_the_users_inbox(world: World) -> None:
    out = io.StringIO()
    call_command("notifications", "send-test", "--user", "grid_worker_a", stdout=out)
    assert "test notification created for grid_worker_a" in out.getvalue()
    n = Notification.objects.get()
    assert (n.recipient, n.kind, n.link) == (
        world.grid_worker_a,
        "notifications.test",
        "/notifications/",
    )
    with pytest.raises(CommandError, match="no user"):
        call_command("notifications", "send-test", "--user", "ghost")


def test_a_misconfigured_sms_gateway_fails_the_texts_but_not_the_e_mails(
    world: World, settings: Any
) -> None:
    settings.GRIDGOV_SMS_BACKEND = "tests.notifications.sms_backends.Missing"
    tell([wants(world.grid_worker_a, email=True, sms=True)])
    assert deliver_pending().sent == 1
    assert len(mail.outbox) == 1
    statuses = dict(Delivery.objects.values_list("channel", "status"))
    assert statuses == {"email": "sent", "sms": "failed"}
