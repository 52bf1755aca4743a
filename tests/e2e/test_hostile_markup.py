"""Markup typed into a record, seen in a real browser (Chromium through Playwright): a building's
name on the registry map's tooltip and a case's description stay text, and no script of theirs
runs. The pages' content security policy would block inline script anyway; these tests prove the
markup never becomes elements in the first place (registry.js once gave Leaflet the label as a
string, which Leaflet inserts as HTML). Part of the hostile-input catalogue, tests/hostile/."""

from __future__ import annotations

from typing import Any

import pytest

from tests.cases.factories import report
from tests.e2e.conftest import login
from tests.registry.factories import building
from tests.world import World

PAYLOAD = "<img src=x onerror=\"document.title='pwned'\">"


@pytest.fixture
def watched(page: Any) -> Any:
    """The page, with a record of every dialog and console error it raises."""
    page.events = []  # type: ignore[attr-defined]
    page.on("dialog", lambda d: (page.events.append(f"dialog: {d.message}"), d.dismiss()))
    return page


def test_markup_in_a_building_name_stays_text_in_the_map_tooltip(
    transactional_db: None, world: World, watched: Any
) -> None:
    building(world.grid_worker_a, estate=PAYLOAD, number="1栋")
    login(watched, "grid_worker_a")
    watched.goto(watched.base_url + f"/registry/grid/{world.grid_a.code}/")
    marker = watched.locator("path.reg-building").first
    marker.wait_for(state="attached")
    marker.hover(force=True)
    tooltip = watched.locator(".leaflet-tooltip").first
    tooltip.wait_for()
    assert "<img src=x" in tooltip.inner_text()
    assert watched.locator(".leaflet-tooltip img, .leaflet-popup img").count() == 0
    marker.click(force=True)
    popup = watched.locator(".leaflet-popup").first
    popup.wait_for()
    assert "<img src=x" in popup.inner_text() and popup.locator("img").count() == 0
    assert watched.title() != "pwned" and watched.events == []


def test_markup_in_a_case_description_stays_text_on_the_case_page(
    transactional_db: None, world: World, watched: Any
) -> None:
    case = report(world.grid_worker_a, description=PAYLOAD + "<script>alert(1)</script>")
    login(watched, "dispatcher")
    watched.goto(watched.base_url + f"/cases/{case.number}/")
    assert watched.get_by_text("<script>alert(1)</script>", exact=False).count() >= 1
    assert watched.locator("main img[src='x']").count() == 0
    assert watched.title() != "pwned" and watched.events == []
