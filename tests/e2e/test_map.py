"""A grid worker finds their grid on the map; another grid's worker is refused its staff page."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import login, screenshot
from tests.world import World


def test_a_grid_worker_clicks_their_grid_on_the_map_and_sees_its_code_and_staff(
    transactional_db: None, world: World, page: Any
) -> None:
    login(page, "grid_worker_a")
    page.goto(page.base_url + "/map/")
    grid = page.locator(f"path.grid-{world.grid_a.code}")
    grid.wait_for()
    grid.click()
    panel = page.locator("#region-panel")
    panel.locator(".region-code", has_text=world.grid_a.code).wait_for()
    staff = page.locator("#staff-list")
    staff.get_by_text("Grid Worker A").wait_for()
    assert "Grid Leader" in staff.inner_text()
    screenshot(page, "map-grid-worker")


def test_a_grid_worker_of_another_grid_is_refused_the_first_grids_staff_page(
    transactional_db: None, world: World, page: Any
) -> None:
    login(page, "grid_worker_b")
    response = page.goto(page.base_url + f"/regions/{world.grid_a.code}/staff/")
    assert response is not None and response.status == 403
    body = page.locator("body").inner_text()
    assert world.grid_a.code in body
    assert "Grid Worker A" not in body
    # the browser asks for zh-CN: the refusal names the grid in Chinese
    assert f"您不负责{world.grid_a.name}（{world.grid_a.code}）" in body


def test_the_map_is_usable_on_a_360_pixel_phone(
    transactional_db: None, world: World, phone: Any
) -> None:
    login(phone, "grid_worker_a")
    phone.goto(phone.base_url + "/map/")
    phone.locator(f"path.grid-{world.grid_a.code}").wait_for()
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the page scrolls sideways on a phone ({width} px wide)"
    screenshot(phone, "map-phone")
