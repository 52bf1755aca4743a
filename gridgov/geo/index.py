"""The process-wide grid spatial index, rebuilt when grids change.

Only grids in force today (``valid_from``/``valid_to``) are indexed; a new day rebuilds it.
Every change to grid geometry bumps the ``geo.grids`` stamp in the same transaction. Each
process keeps one ``GridIndex`` with the stamp value it was built from and checks the stamp at
most every ``GRIDGOV_INDEX_CHECK_SECONDS`` (the writing process invalidates at once, on commit).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from gridgov.core.stamps import stamp_bump, stamp_get
from gridgov.geo.models import Level, Region

if TYPE_CHECKING:
    from gridgov.geo.spatial import GridIndex

GRID_STAMP = "geo.grids"


@dataclass(frozen=True)
class LoadedIndex:
    version: int
    day: date  # grids in force that day (valid_from/valid_to)
    codes: list[str]
    index: GridIndex

    def locate(self, lon: float, lat: float) -> str | None:
        i = self.index.locate(lon, lat)
        return self.codes[i] if i >= 0 else None

    def locate_many(self, lon: np.ndarray, lat: np.ndarray) -> list[str | None]:
        found = self.index.locate_many(lon, lat)
        return [self.codes[i] if i >= 0 else None for i in found.tolist()]

    def nearest(self, lon: float, lat: float) -> tuple[str | None, float]:
        i, distance = self.index.nearest(lon, lat)
        return (self.codes[i] if i >= 0 else None), distance


_lock = threading.Lock()
_loaded: LoadedIndex | None = None
_checked_at = 0.0


def _build(version: int) -> LoadedIndex:
    from shapely.geometry import shape

    from gridgov.geo.spatial import GridIndex

    today = timezone.localdate()
    rows = (
        Region.objects.filter(level=Level.GRID, geometry__isnull=False)
        .filter(Q(valid_from__isnull=True) | Q(valid_from__lte=today))
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gte=today))
        .order_by("code")
        .values_list("code", "geometry")
    )
    codes: list[str] = []
    polygons = []
    for code, geometry in rows.iterator(chunk_size=2000):
        codes.append(code)
        polygons.append(shape(geometry))
    return LoadedIndex(version=version, day=today, codes=codes, index=GridIndex.build(polygons))


def grid_index() -> LoadedIndex:
    """The current index, rebuilt if the grids changed since it was built."""
    global _loaded, _checked_at
    now = time.monotonic()
    loaded = _loaded
    if loaded is not None and now - _checked_at < settings.GRIDGOV_INDEX_CHECK_SECONDS:
        return loaded
    version = stamp_get(key=GRID_STAMP)
    today = timezone.localdate()
    if loaded is not None and loaded.version == version and loaded.day == today:
        _checked_at = now
        return loaded
    with _lock:
        if _loaded is None or _loaded.version != version or _loaded.day != today:
            _loaded = _build(version)
        _checked_at = now
        return _loaded


def invalidate_local() -> None:
    global _loaded, _checked_at
    with _lock:
        _loaded = None
        _checked_at = 0.0


def grids_changed() -> None:
    """Call inside the transaction that changed grid geometry."""
    stamp_bump(key=GRID_STAMP)
    transaction.on_commit(invalidate_local)
