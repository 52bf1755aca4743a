"""A grid worker walks their grid on a 360-pixel phone: my grid (map and list) → a building →
a room → the household card → a person, and reveals the person's id number giving a reason;
then closes a room entered in error from its page and reopens it there."""

from __future__ import annotations

import importlib
from datetime import date
from typing import Any

import pytest
from django.apps import apps as django_apps

from gridgov.privacy.models import AccessLog
from gridgov.registry import actions
from gridgov.registry.models import Room
from tests.e2e.conftest import login, screenshot
from tests.registry.factories import building, id_number, person, room
from tests.world import World

SECRET_ID = id_number(date(1948, 10, 1), sex="female", serial=314)


@pytest.fixture
def seeded(transactional_db: None) -> None:
    """The seeded clearances and tag types (a transactional test before this one may have
    flushed the rows the data migrations wrote)."""
    importlib.import_module("gridgov.privacy.migrations.0002_seed_clearance").seed(
        django_apps, None
    )
    importlib.import_module("gridgov.registry.migrations.0003_fill_buildings_seed_tags").seed_tags(
        django_apps, None
    )


def no_sideways_scroll(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"{page.url} scrolls sideways on a phone ({width} px wide)"


def test_a_grid_worker_walks_to_a_person_and_reveals_the_id_number_on_a_phone(
    seeded: None, world: World, phone: Any
) -> None:
    worker = world.grid_worker_a
    home = building(worker, estate="和畅园", number="3栋", floors=6)
    vacant = room(worker, home, number="101", unit="1", floor=1, use="vacant")
    flat = room(worker, home, number="302", unit="1", floor=3, use="self_occupied")
    household = actions.household_create(actor=worker, room=flat, number="H-0302")
    grandmother = person(
        worker,
        household=household,
        name="王秀英",
        id_number=SECRET_ID,
        phone="13812345678",
        relation="head",
        tags=["elderly_alone", "disabled"],
    )
    person(worker, household=household, name="王小明", relation="grandchild")
    building(worker, estate="和畅园", number="5栋")

    page = phone
    login(page, "grid_worker_a")

    # my grid: one grid, so straight to it; the buildings on the map and in the list
    page.goto(page.base_url + "/registry/")
    page.wait_for_url(f"**/registry/grid/{world.grid_a.code}/")
    page.wait_for_selector("#reg-map[data-ready=true]")
    assert page.get_attribute("#reg-map", "data-markers") == "2"
    assert page.locator("#building-list li").count() == 2
    no_sideways_scroll(page)
    screenshot(page, "registry-1-grid-phone")

    # a building: its rooms by unit and floor
    page.click(f"[data-building='{home.uuid}'] a")
    page.wait_for_selector("#building-title")
    assert page.locator(".reg-room").count() == 2
    no_sideways_scroll(page)
    screenshot(page, "registry-2-building-phone")

    # a room: its household
    page.click(f"a[data-room='{flat.uuid}']")
    page.wait_for_selector("#room-title")
    no_sideways_scroll(page)
    page.click(".reg-household__link")

    # the household card: members masked, care tags highlighted
    page.wait_for_selector("#household-title")
    card = page.locator(f"[data-person='{grandmother.uuid}']")
    assert card.locator("[data-field=id_number]").inner_text() == grandmother.id_number_mask
    assert card.locator(".reg-tag--care").count() == 2
    assert SECRET_ID not in page.content()
    no_sideways_scroll(page)
    screenshot(page, "registry-3-household-phone")

    # the person: masked, then revealed with a reason
    card.locator(".reg-member__name").click()
    page.wait_for_selector("#person-name")
    assert page.inner_text("#person-id_number") == grandmother.id_number_mask
    page.click("#reveal-card summary")
    page.uncheck("input[name=fields_wanted][value=phone]")
    page.fill("#reveal_reason", "上门核实低保资格")
    page.click("#reveal-submit")
    page.wait_for_selector("#revealed")
    assert page.inner_text("#revealed-id_number") == SECRET_ID
    assert page.locator("#revealed-phone").count() == 0
    no_sideways_scroll(page)
    page.locator("#revealed").scroll_into_view_if_needed()
    screenshot(page, "registry-4-revealed-phone")

    reveal = AccessLog.objects.get(kind="reveal")
    assert (reveal.user, reveal.reason, reveal.fields) == (
        worker,
        "上门核实低保资格",
        ["id_number"],
    )
    assert AccessLog.objects.filter(
        kind="view", subject_uuid=grandmother.uuid, screen="registry:person"
    ).exists()

    # opened again: masked again
    page.goto(page.base_url + f"/registry/person/{grandmother.uuid}/")
    assert SECRET_ID not in page.content()

    # a room closed from its page, and reopened there
    page.goto(page.base_url + f"/registry/room/{vacant.uuid}/")
    page.click("#close-card summary")
    page.select_option("#close_closed_reason", "error")
    page.fill("#close_reason", "录入错误")
    page.click("#close-submit")
    page.wait_for_selector("#reopen-card")
    assert Room.objects.get(pk=vacant.pk).closed_reason == "error"
    no_sideways_scroll(page)
    screenshot(page, "registry-5-reopen-phone")
    page.fill("#reopen_reason", "没有录错")
    page.click("#reopen-submit")
    page.wait_for_selector("#close-card")
    assert Room.objects.get(pk=vacant.pk).closed_at is None
