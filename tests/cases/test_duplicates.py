"""Possible duplicates: open cases of the same category nearby (per-category radius) reported
within the category's time window, visible to the user, nearest first."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from gridgov.cases.duplicates import bounding_box, duplicate_candidates, haversine_m
from gridgov.cases.models import Category
from tests.cases.factories import IN_GRID_A, act, category, report, walk
from tests.world import World

pytestmark = pytest.mark.django_db

LAT, LON = IN_GRID_A
#: About 11.1 m of latitude.
NORTH_11M = 0.0001


def near(metres_north: float) -> tuple[float, float]:
    return (LAT + metres_north / 111_195, LON)


def test_the_haversine_distance_matches_a_known_value() -> None:
    # one thousandth of a degree of latitude is 111.2 m on the mean sphere
    assert haversine_m(32.0, 118.8, 32.001, 118.8) == pytest.approx(111.2, abs=0.1)
    # Nanjing's Xinjiekou to the Zhonghua Gate: about 2.9 km
    assert haversine_m(32.0415, 118.7840, 32.0155, 118.7773) == pytest.approx(2960, rel=0.02)


def test_the_bounding_box_holds_every_point_within_the_radius() -> None:
    min_lat, max_lat, min_lon, max_lon = bounding_box(LAT, LON, 50)
    assert haversine_m(LAT, LON, max_lat, LON) == pytest.approx(50, abs=0.01)
    assert haversine_m(LAT, LON, LAT, max_lon) >= 49.99
    assert min_lat < LAT < max_lat and min_lon < LON < max_lon


def test_an_open_case_of_the_same_category_nearby_and_recent_is_a_candidate(
    world: World,
) -> None:
    first = report(world.grid_worker_a)
    second = report(world.grid_worker_b, where=near(30))

    found = duplicate_candidates(second, world.intake_operator)

    assert found == [first]
    assert found[0].distance_m == pytest.approx(30, abs=0.5)  # type: ignore[attr-defined]


def test_the_radius_is_the_categorys_own(world: World) -> None:
    first = report(world.grid_worker_a)
    second = report(world.grid_worker_a, where=near(80))
    assert duplicate_candidates(second, world.intake_operator) == []  # the default 50 m

    Category.objects.filter(pk=first.category_id).update(duplicate_radius_m=100)
    second.refresh_from_db()
    assert duplicate_candidates(second, world.intake_operator) == [first]


def test_a_case_reported_outside_the_time_window_is_not_a_candidate(world: World) -> None:
    cat = category()
    Category.objects.filter(pk=cat.pk).update(duplicate_window_hours=24)
    now = timezone.now()
    old = report(world.grid_worker_a, at=now - timedelta(hours=30))
    recent = report(world.grid_worker_a, at=now - timedelta(hours=20))
    case = report(world.grid_worker_a, where=near(5))

    assert duplicate_candidates(case, world.intake_operator) == [recent]
    assert old not in duplicate_candidates(case, world.intake_operator)
    # the window reaches both ways: 10 hours before and 20 hours after
    assert set(duplicate_candidates(recent, world.intake_operator)) == {old, case}


def test_closed_merged_and_other_category_cases_are_not_candidates(world: World) -> None:
    closed = walk(
        report(world.grid_worker_a),
        world,
        *("accept", "register", "dispatch", "sign", "feedback", "check_pass", "close"),
    )
    original = report(world.grid_worker_a)
    merged = act(report(world.grid_worker_a), world.intake_operator, "merge", target=original)
    other = report(world.grid_worker_a, category=category("01005", "雨水井盖"))
    case = report(world.grid_worker_a, where=near(10))

    found = duplicate_candidates(case, world.intake_operator)

    assert found == [original]
    assert closed not in found and merged not in found and other not in found
    assert case not in found


def test_candidates_the_user_may_not_see_are_left_out(world: World) -> None:
    mine = report(world.resident)
    theirs = report(world.grid_worker_a, where=near(10))
    assert duplicate_candidates(mine, world.resident) == []
    assert duplicate_candidates(theirs, world.intake_operator) == [mine]


def test_candidates_come_nearest_first(world: World) -> None:
    far = report(world.grid_worker_a, where=near(40))
    close = report(world.grid_worker_a, where=near(10))
    middle = report(world.grid_worker_a, where=near(25))
    case = report(world.grid_worker_a)

    assert duplicate_candidates(case, world.intake_operator) == [close, middle, far]
    assert duplicate_candidates(case, world.intake_operator, limit=2) == [close, middle]
