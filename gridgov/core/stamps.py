"""Read and bump version stamps (see ``core.models.Stamp``), and caches keyed by them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from django.conf import settings
from django.db import transaction
from django.db.models import F

from gridgov.core.models import Stamp

T = TypeVar("T")


def stamp_bump(*, key: str) -> None:
    """Increment ``key`` inside the caller's transaction (created at 1 on first use)."""
    updated = Stamp.objects.filter(key=key).update(version=F("version") + 1)
    if not updated:
        with transaction.atomic():
            _, created = Stamp.objects.get_or_create(key=key, defaults={"version": 1})
            if not created:
                Stamp.objects.filter(key=key).update(version=F("version") + 1)


def stamp_get(*, key: str) -> int:
    value = Stamp.objects.filter(key=key).values_list("version", flat=True).first()
    return int(value or 0)


class StampedCache(Generic[T]):
    """A per-process value rebuilt when its stamp moves.

    ``get()`` reads the stamp at most every ``GRIDGOV_INDEX_CHECK_SECONDS`` (or at once when
    ``context()`` — e.g. today's date — changed) and rebuilds with ``build(version)``.
    ``changed()``, called inside the writing transaction, bumps the stamp for every other process
    and drops this process's value now and again on commit.
    """

    def __init__(
        self, key: str, build: Callable[[int], T], *, context: Callable[[], Hashable] = lambda: None
    ) -> None:
        self.key = key
        self._build = build
        self._context = context
        self._lock = threading.Lock()
        self._value: T | None = None
        self._version: int | None = None
        self._seen_context: Hashable = None
        self._checked_at = 0.0

    def get(self) -> T:
        now = time.monotonic()
        context = self._context()
        value = self._value
        fresh = now - self._checked_at < settings.GRIDGOV_INDEX_CHECK_SECONDS
        if value is not None and fresh and context == self._seen_context:
            return value
        version = stamp_get(key=self.key)
        with self._lock:
            stale = self._version != version or context != self._seen_context
            if self._value is None or stale:
                self._value = self._build(version)
                self._version = version
                self._seen_context = context
            self._checked_at = now
            return self._value

    def invalidate(self) -> None:
        with self._lock:
            self._value = None
            self._checked_at = 0.0

    def changed(self) -> None:
        stamp_bump(key=self.key)
        self.invalidate()
        transaction.on_commit(self.invalidate)


def in_transaction(change: Callable[[], None]) -> None:
    """Run a stamp's ``changed()`` in the caller's transaction, or in its own (a signal may fire
    outside one)."""
    if transaction.get_connection().in_atomic_block:
        change()
    else:
        with transaction.atomic():
            change()
