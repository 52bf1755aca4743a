from __future__ import annotations

from typing import Any

import pytest

from gridgov.accounts.actions import user_update
from gridgov.accounts.models import User
from gridgov.notifications.actions import preference_update
from tests.notifications.sms_backends import RecordingSmsBackend
from tests.world import World


@pytest.fixture
def texts(settings: Any) -> list[tuple[str, str]]:
    """Text messages sent during the test, as (phone, text), through a recording backend."""
    settings.GRIDGOV_SMS_BACKEND = "tests.notifications.sms_backends.RecordingSmsBackend"
    RecordingSmsBackend.sent = []
    return RecordingSmsBackend.sent


def wants(user: User, *, email: bool = False, sms: bool = False, threshold: int = 10) -> User:
    """Give ``user`` an e-mail address and choose channels and a digest threshold."""
    if email and not user.email:
        user_update(user=user, actor=None, email=f"{user.username}@example.cn")
    preference_update(user=user, email=email, sms=sms, digest_threshold=threshold)
    return user


@pytest.fixture
def worker_a(world: World) -> User:
    return world.grid_worker_a
