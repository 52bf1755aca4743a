"""A grid worker finds a grid on the map by typing coordinates into the search box."""

from __future__ import annotations

from typing import Any

from gridgov.geo.crs import wgs84_to_gcj02
from tests.e2e.conftest import login, screenshot
from tests.world import World


def test_a_grid_worker_types_coordinates_inside_grid_a_and_the_panel_shows_grid_a(
    transactional_db: None, world: World, page: Any
) -> None:
    login(page, "grid_worker_a")
    page.goto(page.base_url + "/map/")
    page.locator("#map-app[data-ready=true]").wait_for()
    # the map opens on the worker's own grid: close that panel first
    page.click("#region-panel-close")
    page.locator("#region-panel").wait_for(state="hidden")
    page.fill("#region-search", "32.05, 118.82")
    page.press("#region-search", "Enter")
    page.locator("path.search-point").wait_for()
    panel = page.locator("#region-panel")
    panel.locator(".region-code", has_text=world.grid_a.code).wait_for()
    assert panel.is_visible()
    assert page.locator("path.selected-outline").count() == 1
    screenshot(page, "map-search-coordinates")


def test_longitude_first_and_gcj02_coordinates_are_understood(
    transactional_db: None, world: World, page: Any
) -> None:
    login(page, "grid_worker_a")
    page.goto(page.base_url + "/map/")
    page.locator("#map-app[data-ready=true]").wait_for()
    # typed longitude first: offered as a look-up, then chosen from the list
    page.fill("#region-search", "118.87 32.05")
    offer = page.locator("#region-search-results .map-search__locate")
    offer.wait_for()
    assert "32.05" in offer.inner_text() and "118.87" in offer.inner_text()
    offer.click()
    page.locator("#region-panel .region-code", has_text=world.grid_b.code).wait_for()
    # a GCJ-02 point just west of the A|B border lies in grid A once converted
    lon, lat = wgs84_to_gcj02(118.8495, 32.05)
    page.fill("#region-search", f"gcj02: {lat:.6f}, {lon:.6f}")
    page.press("#region-search", "Enter")
    page.locator("#region-panel .region-code", has_text=world.grid_a.code).wait_for()


def test_a_point_outside_every_grid_shows_the_nearest_grid_and_its_distance(
    transactional_db: None, world: World, page: Any
) -> None:
    login(page, "grid_worker_a")
    page.goto(page.base_url + "/map/")
    page.locator("#map-app[data-ready=true]").wait_for()
    page.fill("#region-search", "32.05, 119.01")
    page.press("#region-search", "Enter")
    notice = page.locator("#region-search-results .map-search__notice")
    notice.wait_for()
    text = notice.inner_text()
    assert world.grid_d.code in text and "米" in text
    nearest = page.locator(f"#region-search-results button[data-code='{world.grid_d.code}']")
    assert nearest.count() == 1
