"""A grid worker reports a problem from a 360-pixel phone: the browser's position finds the grid,
the category comes from the search box, a photo is attached, and the case number comes back."""

from __future__ import annotations

import io
import re
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from gridgov.cases.models import Case, CasePhoto
from gridgov.cases.workflow import State
from tests.cases.factories import category, with_attributes
from tests.e2e.conftest import login, screenshot
from tests.world import World

#: Inside grid A of tests/world.py.
HERE = {"latitude": 32.0512, "longitude": 118.8234, "accuracy": 12}


@pytest.fixture
def media(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return Path(settings.MEDIA_ROOT)


@pytest.fixture
def phone_here(browser: Any, live_server: Any) -> Generator[Any, None, None]:
    """A 360 × 740 phone whose browser may tell the site where it is."""
    context = browser.new_context(
        viewport={"width": 360, "height": 740},
        locale="zh-CN",
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
        geolocation=HERE,
        permissions=["geolocation"],
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.base_url = live_server.url
    yield page
    context.close()


def photo_file(folder: Path, name: str = "manhole.jpg") -> Path:
    path = folder / name
    out = io.BytesIO()
    Image.new("RGB", (800, 600), (90, 90, 100)).save(out, "JPEG", quality=90)
    path.write_bytes(out.getvalue())
    return path


def no_sideways_scroll(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the page scrolls sideways on a phone ({width} px wide)"


def test_a_grid_worker_reports_a_problem_from_a_360_pixel_phone(
    transactional_db: None, world: World, phone_here: Any, media: Path, tmp_path: Path
) -> None:
    with_attributes(category())
    category("01005", "雨水井盖", name_en="Rain manhole cover")
    category("06001", "暴露垃圾", name_en="Exposed garbage")
    page = phone_here
    login(page, "grid_worker_a")

    page.goto(page.base_url + "/cases/report/")

    grid = page.locator("#detected-grid")
    grid.wait_for()
    page.wait_for_function(
        "() => document.getElementById('detected-grid').dataset.code === '320113003001001'"
    )
    assert world.grid_a.name in grid.inner_text()
    assert page.input_value("input[name=lat]") == "32.051200"
    no_sideways_scroll(page)

    search = page.locator("#category-search")
    search.fill("井盖")
    options = page.locator(".category-picker__option")
    options.first.wait_for()
    assert options.count() == 2  # the two manhole covers, not the garbage
    options.filter(has_text="污水井盖").click()
    assert page.input_value("select[name=category]") == "gbt47678:01002"
    attributes = page.locator('fieldset[data-attributes-for="gbt47678:01002"]')
    assert attributes.is_visible()
    page.select_option("select[name='attr-gbt47678-01002-damage']", "missing")
    page.fill("textarea[name=description]", "小区东门井盖缺失，已设警示")
    page.set_input_files("input[name=photos]", str(photo_file(tmp_path)))
    no_sideways_scroll(page)
    screenshot(page, "report-phone-filled")

    with page.expect_navigation():
        page.click("#report-submit")

    case = Case.objects.get()
    assert re.search(rf"/cases/{case.number}/$", page.url)
    assert page.locator("#case-number").inner_text() == case.number
    assert case.number in page.locator(".messages").inner_text()
    assert case.state == State.REPORTED and case.region_code == world.grid_a.code
    assert case.lat == pytest.approx(HERE["latitude"], abs=1e-6)
    assert case.attributes == {"damage": "missing"}
    assert CasePhoto.objects.filter(case=case).count() == 1
    photo = page.locator("img.photos__img").first
    photo.scroll_into_view_if_needed()  # thumbnails load lazily
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('img.photos__img'))"
        ".every(img => img.complete && img.naturalWidth > 0)",
        timeout=10_000,
    )
    no_sideways_scroll(page)
    screenshot(page, "report-phone-case")


def test_the_report_form_works_on_a_phone_without_a_position(
    transactional_db: None, world: World, phone: Any, media: Path
) -> None:
    """Without the browser's position the worker types the coordinates; the grid still shows."""
    category()
    login(phone, "grid_worker_a")
    phone.goto(phone.base_url + "/cases/report/")
    phone.fill("input[name=lat]", "32.05")
    phone.fill("input[name=lon]", "118.82")
    phone.locator("input[name=lon]").dispatch_event("change")
    phone.wait_for_function(
        "() => document.getElementById('detected-grid').dataset.code === '320113003001001'"
    )
    phone.select_option("select[name=category]", "gbt47678:01002")
    phone.fill("textarea[name=description]", "路灯不亮")
    no_sideways_scroll(phone)
    with phone.expect_navigation():
        phone.click("#report-submit")
    case = Case.objects.get()
    assert phone.locator("#case-number").inner_text() == case.number
