"""SQLite writers queue on a lock before BEGIN IMMEDIATE instead of sleeping in SQLite's busy
loop; the lock is always given back, whatever way the transaction ends."""

from __future__ import annotations

import threading

import pytest
from django.conf import settings
from django.db import IntegrityError, connection, connections, transaction

from gridgov.core.models import Stamp

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "sqlite"
        or not settings.DATABASES["default"].get("TEST", {}).get("NAME"),
        reason="the writer queue is SQLite's, and threads need a file-based test database",
    ),
]


def _in_thread(work: object) -> list[BaseException]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()  # type: ignore[operator]
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the writer never got the lock"
    return errors


def test_it_lets_the_next_writer_in_after_a_transaction_fails() -> None:
    Stamp.objects.create(key="k", version=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Stamp.objects.create(key="k", version=2)
    assert _in_thread(lambda: Stamp.objects.create(key="other", version=1)) == []
    assert Stamp.objects.count() == 2


def test_it_lets_the_next_writer_in_after_a_connection_closes_mid_transaction() -> None:
    def abandon() -> None:
        transaction.atomic().__enter__()
        Stamp.objects.create(key="abandoned", version=1)
        connection.close()  # e.g. a worker killed mid-request: the queue is released

    assert _in_thread(abandon) == []
    assert _in_thread(lambda: Stamp.objects.create(key="next", version=1)) == []
    assert list(Stamp.objects.values_list("key", flat=True)) == ["next"]


def test_many_threads_writing_at_once_all_get_in() -> None:
    Stamp.objects.create(key="counter", version=0)
    from django.db.models import F

    def bump() -> None:
        for _ in range(20):
            with transaction.atomic():
                Stamp.objects.filter(key="counter").update(version=F("version") + 1)

    threads = [threading.Thread(target=lambda: _in_thread(bump)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert Stamp.objects.get(key="counter").version == 160
