"""A grid worker with the inbox open sees a new notification arrive without reloading the page."""

from __future__ import annotations

from typing import Any

from gridgov.notifications.actions import notify
from tests.e2e.conftest import login, screenshot
from tests.world import World

TITLE = "案件 320113-20261122-00042 已派遣给您"


def test_the_bell_counts_a_new_notification_without_a_reload_and_opening_it_clears_it(
    transactional_db: None, world: World, page: Any, settings: Any
) -> None:
    settings.GRIDGOV_NOTIFY_POLL_SECONDS = 1
    login(page, "grid_worker_a")
    page.goto(page.base_url + "/notifications/")
    bell = page.locator("#notification-bell")
    assert bell.get_attribute("data-unread") == "0"
    assert page.locator("#notification-count").is_hidden()
    page.evaluate("window.stillTheSamePage = true")

    notify(
        recipients=[world.grid_worker_a],
        kind="case.dispatched",
        title=TITLE,
        body="请在 2 个工作日内处置",
        link="/map/",
        subject_ref="320113-20261122-00042",
    )

    count = page.locator("#notification-count")
    count.wait_for(state="visible", timeout=10_000)
    assert count.inner_text() == "1"
    # the open inbox reloads its list when the bell reports a new count
    item = page.locator(".notice--unread", has_text=TITLE)
    item.wait_for(timeout=10_000)
    assert page.evaluate("window.stillTheSamePage") is True  # no reload happened
    screenshot(page, "notifications-inbox")

    item.locator("a").click()
    page.wait_for_url(lambda url: url.endswith("/map/"))
    assert page.locator("#notification-bell").get_attribute("data-unread") == "0"
    assert page.locator("#notification-count").is_hidden()
    page.goto(page.base_url + "/notifications/")
    assert page.locator(".notice--unread").count() == 0
    assert page.locator(".notice", has_text=TITLE).count() == 1


def test_the_inbox_and_the_settings_fit_a_360_pixel_phone(
    transactional_db: None, world: World, phone: Any
) -> None:
    notify(
        recipients=[world.grid_worker_a],
        kind="case.dispatched",
        title="一个很长的通知标题" * 8,
        body="正文" * 100,
        subject_ref="320113-20261122-00042",
    )
    login(phone, "grid_worker_a")
    for path in ("/notifications/", "/notifications/preferences/"):
        phone.goto(phone.base_url + path)
        assert phone.locator("#notification-bell").is_visible()  # in the bar, not the menu
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"{path} scrolls sideways on a phone ({width} px wide)"
    screenshot(phone, "notifications-settings-phone")
