"""Possible duplicates of a case: the same problem reported twice becomes one case.

A candidate is an open case of the same category, not merged, reported within the category's
``duplicate_window_hours`` before or after the case and lying within its ``duplicate_radius_m``.
The database narrows the search: the index on (category, reported_at) finds the window, and a
bounding box on ``lat``/``lon`` keeps the nearby rows; the exact distance is the haversine
distance, computed here. The merge itself is the workflow's ``merge`` action.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from .models import Case
from .selectors import cases_visible_to
from .workflow import OPEN

#: Mean Earth radius (metres), as used by the haversine formula.
EARTH_RADIUS_M = 6_371_008.8
#: Metres per degree of latitude (and of longitude at the equator).
_METRES_PER_DEGREE = math.pi * EARTH_RADIUS_M / 180
#: At most this many candidates are shown for one case.
DEFAULT_LIMIT = 12


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance between two WGS-84 points, in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def bounding_box(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    """(min_lat, max_lat, min_lon, max_lon) of a box holding every point within ``radius_m``."""
    dlat = radius_m / _METRES_PER_DEGREE
    cos_lat = math.cos(math.radians(min(89.9, abs(lat) + dlat)))
    dlon = min(180.0, radius_m / (_METRES_PER_DEGREE * max(cos_lat, 1e-6)))
    return lat - dlat, lat + dlat, lon - dlon, lon + dlon


def duplicate_candidates(
    case: Case, user: Any | None = None, *, limit: int = DEFAULT_LIMIT
) -> list[Case]:
    """Open cases that may report the same problem as ``case``, nearest first.

    Pass the ``user`` whose screen shows them: only cases that user may see are returned
    (``None`` skips that check, for code that has already scoped its reads). Each candidate
    carries ``distance_m``, its distance from ``case`` in metres.
    """
    category = case.category
    radius = float(category.duplicate_radius_m)
    window = timedelta(hours=category.duplicate_window_hours)
    min_lat, max_lat, min_lon, max_lon = bounding_box(case.lat, case.lon, radius)
    qs = cases_visible_to(user) if user is not None else Case.objects.all()
    rows = (
        qs.filter(
            category_id=case.category_id,
            state__in=sorted(OPEN),
            merged_into__isnull=True,
            reported_at__gte=case.reported_at - window,
            reported_at__lte=case.reported_at + window,
            lat__gte=min_lat,
            lat__lte=max_lat,
            lon__gte=min_lon,
            lon__lte=max_lon,
        )
        .exclude(pk=case.pk)
        .select_related("category", "grid", "lead_unit")
        .order_by("reported_at", "pk")
    )
    found: list[Case] = []
    for other in rows[:500]:
        distance = haversine_m(case.lat, case.lon, other.lat, other.lon)
        if distance <= radius:
            other.distance_m = round(distance, 1)  # type: ignore[attr-defined]
            found.append(other)
    found.sort(key=lambda c: (c.distance_m, c.reported_at))  # type: ignore[attr-defined]
    return found[:limit]
