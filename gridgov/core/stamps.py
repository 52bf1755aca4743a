"""Read and bump version stamps (see ``core.models.Stamp``)."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F

from gridgov.core.models import Stamp


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
