"""Statistics: the aggregate selectors (gridgov.registry.stats) and the statistics screen."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest
from django.test import Client

from gridgov.core.errors import NotFound
from gridgov.registry import actions, stats
from tests.registry.factories import IN_GRID_B, building, home, id_number, person, room

pytestmark = pytest.mark.django_db

TODAY = date(2026, 6, 1)


@pytest.fixture
def residents(world):
    """Grid A: a household of three (an old man living alone is tagged, a young woman, a
    floating child), a rented room and a vacant one; grid B: one resident."""
    worker = world.grid_worker_a
    b = building(worker)
    rented = room(worker, b, use="rented")
    room(worker, b, use="vacant")
    h = actions.household_create(actor=worker, room=rented)
    person(
        worker,
        household=h,
        name="老王",
        id_number=id_number(date(1940, 3, 1), sex="male"),
        relation="head",
        tags=["elderly_alone"],
    )
    young = person(
        worker, household=h, name="小李", id_number=id_number(date(2001, 6, 2), sex="female")
    )
    actions.person_tag_add(actor=worker, person=young, tag="community_correction")
    person(worker, household=h, name="豆豆", birth_date=date(2021, 6, 1), person_type="floating")
    person(world.grid_worker_b, household=home(world.grid_worker_b, where=IN_GRID_B), name="乙")
    return h


def _count(rows, key, value):
    return next(r["count"] for r in rows if r[key] == value)


def test_it_counts_the_population_of_a_grid_by_person_type(world, residents):
    figures = stats.registry_stats(world.grid_worker_a, today=TODAY)
    assert figures.region.code == world.grid_a.code
    assert figures.totals == {"buildings": 1, "rooms": 2, "households": 1, "people": 3}
    assert _count(figures.population_by_type, "key", "registered") == 2
    assert _count(figures.population_by_type, "key", "floating") == 1
    assert _count(figures.rooms_by_use, "key", "rented") == 1
    assert _count(figures.rooms_by_use, "key", "vacant") == 1


def test_it_puts_everyone_in_a_five_year_band_by_sex(world, residents):
    figures = stats.registry_stats(world.grid_worker_a, today=TODAY)
    bands = {b["band"]: b for b in figures.age_pyramid}
    assert len(figures.age_pyramid) == 21 and figures.age_pyramid[-1]["band"] == "100+"
    assert bands["85-89"]["male"] == 1  # born 1940-03-01: 86
    assert bands["25-29"]["female"] == 0 and bands["20-24"]["female"] == 1  # 25 tomorrow
    assert bands["5-9"]["unknown"] == 1  # 5 today, sex not given
    assert sum(b["male"] + b["female"] + b["unknown"] for b in figures.age_pyramid) == 3
    assert figures.age_unknown == 0


def test_tag_counts_leave_out_what_the_clearance_does_not_cover(world, residents):
    worker = stats.registry_stats(world.grid_worker_a, today=TODAY)
    assert _count(worker.tags, "code", "elderly_alone") == 1
    assert _count(worker.tags, "code", "community_correction") == 1
    supervisor = stats.registry_stats(world.supervisor, today=TODAY)
    assert _count(supervisor.tags, "code", "elderly_alone") == 1
    assert "community_correction" not in {t["code"] for t in supervisor.tags}


def test_a_community_shows_the_figures_of_each_grid(world, residents):
    figures = stats.registry_stats(world.grid_leader, "320113003001", today=TODAY)
    assert figures.region.level == "community"
    assert figures.totals["people"] == 4
    assert [(r["code"], r["people"]) for r in figures.by_region] == [
        (world.grid_a.code, 3),
        (world.grid_b.code, 1),
    ]


def test_a_grid_worker_may_not_ask_for_another_grid_or_the_community(world, residents):
    with pytest.raises(NotFound):
        stats.registry_stats(world.grid_worker_b, world.grid_a.code)
    with pytest.raises(NotFound):
        stats.registry_stats(world.grid_worker_b, "320113003001")
    assert stats.registry_stats(world.grid_worker_b).totals["people"] == 1


def test_closed_records_are_not_counted(world, residents):
    someone = residents.members.get(name="小李")
    actions.person_close(
        actor=world.grid_worker_a, person=someone, closed_reason="moved_out", reason="搬走了"
    )
    assert stats.registry_stats(world.grid_worker_a, today=TODAY).totals["people"] == 2


def test_the_figures_take_a_fixed_number_of_queries(
    world, residents, django_assert_max_num_queries
):
    for _ in range(5):
        person(world.grid_worker_a, household=residents, name="又一个")
    with django_assert_max_num_queries(16):
        stats.registry_stats(world.grid_leader, "320113003001", today=TODAY)


def test_as_dict_is_json(world, residents):
    data = stats.registry_stats(world.grid_worker_a, today=TODAY).as_dict()
    assert json.loads(json.dumps(data))["totals"]["people"] == 3


# --- the statistics screen ---------------------------------------------------------------------


def browser(user) -> Client:
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(user)
    return client


def test_the_statistics_page_carries_the_chart_data(world, residents):
    response = browser(world.grid_leader).get("/registry/stats/?region=320113003001")
    assert response.status_code == 200
    text = response.content.decode()
    found = re.search(r'<script id="stats-data" type="application/json">(.*?)</script>', text)
    assert found is not None
    data = json.loads(found.group(1))
    assert data["totals"]["people"] == 4
    assert "echarts" in text
    assert "<style" not in text


def test_the_statistics_page_of_another_grid_is_not_found(world, residents):
    response = browser(world.grid_worker_b).get(f"/registry/stats/?region={world.grid_a.code}")
    assert response.status_code == 404


def test_the_supervisor_sees_no_sensitive_tag_in_the_statistics(world, residents):
    text = browser(world.supervisor).get("/registry/stats/").content.decode()
    assert "community_correction" not in text
    assert "elderly_alone" in text
