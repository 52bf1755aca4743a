"""``notify`` puts one row per recipient in their inbox, in two queries, inside any transaction."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from gridgov.accounts.actions import user_deactivate
from gridgov.notifications.actions import notify, preference_update
from gridgov.notifications.models import DeliveryState, Notification
from tests.notifications.conftest import wants
from tests.world import World

CASE = "320113-20261122-00042"


def dispatched(recipients: list[Any], **extra: Any) -> int:
    return notify(
        recipients=recipients,
        kind="case.dispatched",
        title="案件 320113-20261122-00042 已派遣",
        body="请在 2 个工作日内处置",
        link=f"/cases/{CASE}/",
        subject_ref=CASE,
        **extra,
    )


def test_notify_creates_one_row_per_recipient_and_counts_them(world: World) -> None:
    created = dispatched([world.grid_worker_a, world.supervisor])
    assert created == 2
    rows = Notification.objects.order_by("recipient__username")
    assert [n.recipient.username for n in rows] == ["grid_worker_a", "supervisor"]
    first = rows[0]
    assert (first.kind, first.link, first.subject_ref) == (
        "case.dispatched",
        f"/cases/{CASE}/",
        CASE,
    )
    assert first.read_at is None and first.uuid is not None


def test_notify_names_a_recipient_listed_twice_only_once(world: World) -> None:
    again = type(world.grid_worker_a).objects.get(pk=world.grid_worker_a.pk)
    assert dispatched([world.grid_worker_a, again, world.grid_worker_a]) == 1
    assert Notification.objects.filter(recipient=world.grid_worker_a).count() == 1


def test_notify_skips_inactive_users(world: World) -> None:
    user_deactivate(user=world.grid_worker_b, actor=None)
    assert dispatched([world.grid_worker_a, world.grid_worker_b]) == 1
    assert not Notification.objects.filter(recipient=world.grid_worker_b).exists()


def test_notify_with_nobody_to_tell_writes_nothing(world: World) -> None:
    assert dispatched([]) == 0
    assert not Notification.objects.exists()


def test_notify_takes_two_queries_whatever_the_number_of_recipients(
    world: World, django_assert_num_queries: Any
) -> None:
    people = list(world.users.values())
    with transaction.atomic(), django_assert_num_queries(2):  # preferences, one bulk insert
        assert dispatched(people) == len(people)


def test_notify_waits_for_delivery_only_for_users_with_a_channel(world: World) -> None:
    wants(world.grid_worker_a, sms=True)
    dispatched([world.grid_worker_a, world.supervisor])
    state = dict(Notification.objects.values_list("recipient__username", "delivery_state"))
    assert state == {"grid_worker_a": DeliveryState.PENDING, "supervisor": DeliveryState.SKIPPED}


def test_a_muted_kind_reaches_the_inbox_but_is_never_sent(world: World) -> None:
    wants(world.grid_worker_a, sms=True)
    preference_update(user=world.grid_worker_a, muted_kinds=["case.dispatched"])
    dispatched([world.grid_worker_a])
    n = Notification.objects.get()
    assert n.delivery_state == DeliveryState.SKIPPED


def test_notify_rolls_back_with_the_callers_transaction(world: World) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        dispatched([world.grid_worker_a])
        raise RuntimeError("the case action failed later")
    assert not Notification.objects.exists()


def test_a_long_title_is_shortened_to_fit(world: World) -> None:
    notify(recipients=[world.grid_worker_a], kind="case.note", title="长" * 500)
    title = Notification.objects.get().title
    assert len(title) == 200 and title.endswith("…")


def test_notify_refuses_an_empty_kind(world: World) -> None:
    with pytest.raises(ValueError, match="kind"):
        notify(recipients=[world.grid_worker_a], kind=" ", title="x")
