"""The administrator's working calendar: a month of 2027, which chinese-calendar does not know."""

from __future__ import annotations

from datetime import date
from typing import Any

from gridgov.core import actions, worktime
from tests.e2e.conftest import login, screenshot
from tests.world import World


def test_an_administrator_sees_the_fallback_warning_for_january_2027(
    transactional_db: None, world: World, page: Any
) -> None:
    worktime.invalidate_local()
    actions.calendar_override_set(day=date(2027, 1, 1), kind="holiday", note="元旦")
    login(page, "admin")
    page.goto(page.base_url + "/admin/core/calendaroverride/")
    page.locator("a.working-calendar-link").click()
    page.wait_for_url("**/admin/core/calendaroverride/working-calendar/")
    page.goto(page.base_url + "/admin/core/calendaroverride/working-calendar/?month=2027-01")

    warning = page.locator("#calendar-fallback-warning")
    warning.wait_for()
    assert "chinese-calendar" in warning.inner_text()
    assert "2027" in warning.inner_text()

    new_year = page.locator("td[data-date='2027-01-01']")
    assert new_year.get_attribute("data-kind") == "holiday"
    assert new_year.get_attribute("data-source") == "override"
    assert "元旦" in new_year.inner_text()
    friday = page.locator("td[data-date='2027-01-08']")
    assert friday.get_attribute("data-kind") == "workday"
    assert friday.get_attribute("data-source") == "fallback"
    screenshot(page, "working-calendar-2027-01")

    # a month chinese-calendar covers shows no warning, and its make-up Saturday
    page.goto(page.base_url + "/admin/core/calendaroverride/working-calendar/?month=2026-10")
    page.locator("td[data-date='2026-10-10']").wait_for()
    assert page.locator("#calendar-fallback-warning").count() == 0
    assert page.locator("td[data-date='2026-10-10']").get_attribute("data-kind") == (
        "makeup_workday"
    )
    worktime.invalidate_local()
