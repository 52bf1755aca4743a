"""The process-wide grid spatial index, rebuilt when grids change.

Only grids in force today (``valid_from``/``valid_to``) are indexed; a new day rebuilds it.
Every change to grid geometry bumps the ``geo.grids`` stamp in the same transaction. Each
process keeps one ``GridIndex`` with the stamp value it was built from and checks the stamp at
most every ``GRIDGOV_INDEX_CHECK_SECONDS`` (the writing process invalidates at once, on commit).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
from django.db.models import Q
from django.utils import timezone

from gridgov.core.stamps import StampedCache
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


_cache: StampedCache[LoadedIndex] = StampedCache(GRID_STAMP, _build, context=timezone.localdate)


def grid_index() -> LoadedIndex:
    """The current index, rebuilt if the grids changed since it was built (or the day did)."""
    return _cache.get()


def invalidate_local() -> None:
    _cache.invalidate()


def grids_changed() -> None:
    """Call inside the transaction that changed grid geometry."""
    _cache.changed()
