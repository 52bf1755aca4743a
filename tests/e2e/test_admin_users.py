"""The admin creates a grid worker on the admin site; the new grid worker logs in to grid A."""

from __future__ import annotations

from typing import Any

from gridgov.accounts.models import RoleAssignment, User
from tests.e2e.conftest import login, screenshot
from tests.world import PASSWORD, World


def test_an_administrator_adds_a_grid_worker_of_grid_a_who_then_sees_grid_a_at_home(
    transactional_db: None, world: World, page: Any, browser: Any, live_server: Any
) -> None:
    login(page, "admin")
    page.goto(page.base_url + "/admin/accounts/user/add/")
    page.fill("#id_username", "sun_li")
    page.fill("#id_display_name", "孙丽")
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)

    # one role in the inline: grid worker, on grid A (found by its code in the autocomplete)
    page.click("#assignments-group .add-row a")
    page.select_option("#id_assignments-0-role", "grid_worker")
    page.click("#assignments-0 .field-region .select2-selection")
    page.fill(".select2-container--open .select2-search__field", world.grid_a.code)
    page.locator(".select2-results__option", has_text=world.grid_a.name).click()
    screenshot(page, "admin-user-add-with-role")
    page.click("input[name=_save]")
    page.locator(".messagelist .success").wait_for()

    user = User.objects.get(username="sun_li")
    assert user.display_name == "孙丽"
    assignment = RoleAssignment.objects.get(user=user)
    assert (assignment.role, assignment.region) == ("grid_worker", world.grid_a)

    # the new grid worker, in a browser of their own
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN")
    try:
        worker = context.new_page()
        worker.base_url = live_server.url
        login(worker, "sun_li")
        worker.goto(worker.base_url + "/")
        card = worker.locator(f'.place-card[data-code="{world.grid_a.code}"]')
        card.wait_for()
        assert world.grid_a.name in card.inner_text()
        assert worker.locator(f'.place-card[data-code="{world.grid_b.code}"]').count() == 0
        screenshot(worker, "admin-user-added-home")
    finally:
        context.close()


def test_the_role_inline_names_a_missing_region_instead_of_failing(
    transactional_db: None, world: World, page: Any
) -> None:
    login(page, "admin")
    page.goto(page.base_url + "/admin/accounts/user/add/")
    page.fill("#id_username", "zhou_jie")
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.click("#assignments-group .add-row a")
    page.select_option("#id_assignments-0-role", "grid_worker")
    page.click("input[name=_save]")
    error = page.locator("#assignments-group .errorlist").first
    error.wait_for()
    assert "网格员" in error.inner_text()
    assert not User.objects.filter(username="zhou_jie").exists()
