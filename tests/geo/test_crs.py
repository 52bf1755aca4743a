"""GCJ-02 <-> WGS-84: the published transform and its inverse."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from gridgov.geo.crs import gcj02_to_wgs84, outside_china, to_wgs84, wgs84_to_gcj02


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    dlat = (a[1] - b[1]) * 111_320
    dlon = (a[0] - b[0]) * 111_320 * math.cos(math.radians(a[1]))
    return math.hypot(dlat, dlon)


def test_tiananmen_square_moves_by_the_published_offset() -> None:
    # reference values of the widely used eviltransform implementation
    lon, lat = wgs84_to_gcj02(116.404, 39.915)
    assert abs(lon - 116.41024449916938) < 1e-9
    assert abs(lat - 39.91640428150164) < 1e-9


def test_in_nanjing_the_offset_is_a_few_hundred_metres() -> None:
    shifted = wgs84_to_gcj02(118.85, 32.10)
    assert 100 < metres(shifted, (118.85, 32.10)) < 1000


def test_points_outside_china_are_not_shifted() -> None:
    assert outside_china(2.35, 48.85)
    assert wgs84_to_gcj02(2.35, 48.85) == (2.35, 48.85)
    assert gcj02_to_wgs84(2.35, 48.85) == (2.35, 48.85)


@given(st.floats(73.0, 135.0), st.floats(18.0, 53.0))
def test_converting_there_and_back_is_exact_to_a_millimetre(lon: float, lat: float) -> None:
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert metres(back, (lon, lat)) < 0.001


def test_an_unknown_coordinate_system_is_named_in_the_error() -> None:
    import pytest

    with pytest.raises(ValueError, match="bd09"):
        to_wgs84(118.8, 32.1, "bd09")
