"""A grid worker imports a small xlsx ledger on a 360-pixel phone: the check finds one bad id
number, the error sheet names its row and column, the corrected ledger passes, is imported, and
the new households are on the map of the worker's grid (the issue's "Done when")."""

from __future__ import annotations

import importlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from django.apps import apps as django_apps

from gridgov.registry.models import Building, Household, ImportStatus, LedgerImport, Person
from tests.e2e.conftest import login, screenshot
from tests.registry.data.ledgers import GRID_A, HEADERS, household_rows

ESTATE = "栖霞新村"


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


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.VAR_DIR = tmp_path / "var"


def write_ledger(path: Path, rows: Sequence[Sequence[str]]) -> Path:
    """An xlsx ledger as a community keeps it: a title row, the headers, one row per person."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "实有人口"
    sheet.append(["和畅社区实有人口台账"])
    sheet.append(list(HEADERS))
    for row in rows:
        sheet.append([str(v) for v in row])
    book.save(path)
    return path


def wrong_check_char(id_text: str) -> str:
    return id_text[:17] + ("1" if id_text[17] != "1" else "2")


def no_sideways_scroll(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"{page.url} scrolls sideways on a phone ({width} px wide)"


def test_a_grid_worker_imports_a_ledger_fixes_the_bad_row_and_finds_the_households_on_the_map(
    seeded: None, world: Any, phone: Any, tmp_path: Path
) -> None:
    rows = household_rows(3, estate=ESTATE)  # three households of two, rooms 101-103 of 1栋
    bad = [list(r) for r in rows]
    bad[2][3] = wrong_check_char(rows[2][3])  # the head of room 102: row 5 of the file
    bad_file = write_ledger(tmp_path / "和畅社区台账.xlsx", bad)

    page = phone
    login(page, "grid_worker_a")
    page.goto(page.base_url + "/registry/")
    page.wait_for_url(f"**/registry/grid/{GRID_A}/")
    page.click("#ledger-link")
    page.wait_for_selector("#upload-form")
    no_sideways_scroll(page)
    screenshot(page, "registry-import-0-upload-phone")

    # upload: while the check runs the page polls its progress; the check finds the bad row
    # and nothing is imported
    page.evaluate(
        """() => document.body.addEventListener("htmx:afterSwap", (event) => {
            if (event.detail.target.id === "upload-progress") {
                sessionStorage.setItem("polled", event.detail.target.innerHTML);
            }
        })"""
    )

    def slow_upload(route: Any) -> None:
        time.sleep(2.5)  # the browser keeps polling meanwhile
        route.continue_()

    page.route("**/registry/ledger/upload/", slow_upload)
    page.set_input_files("#id_file", str(bad_file))
    page.click("#upload-submit")
    page.wait_for_selector("#import-status[data-status=failed_check]")
    page.unroute("**/registry/ledger/upload/")
    assert "<progress" in (page.evaluate("sessionStorage.getItem('polled')") or "")
    assert page.inner_text("#count-rows") == "6"
    assert page.inner_text("#count-bad") == "1"
    problem = page.locator("#problems li")
    assert problem.count() == 1
    assert problem.get_attribute("data-row") == "5"
    assert problem.get_attribute("data-column") == "公民身份号码"
    assert bad[2][3] not in page.content()  # shown masked
    assert page.locator("#commit-form").count() == 0
    no_sideways_scroll(page)
    screenshot(page, "registry-import-1-check-phone")
    page.locator("#mapping").scroll_into_view_if_needed()
    screenshot(page, "registry-import-1b-columns-phone")
    assert not Person.objects.exists()

    # the error sheet names the row and the column
    with page.expect_download() as info:
        page.click("#error-sheet")
    download = info.value
    assert download.suggested_filename == "和畅社区台账-errors.xlsx"
    with open(download.path(), "rb") as handle:
        sheet = openpyxl.load_workbook(handle, read_only=True).worksheets[0]
        lines = list(sheet.iter_rows(values_only=True))
    assert len(lines) == 2
    row, column, value, message = lines[1][:4]
    assert (row, column) == (5, "公民身份号码 (D)")
    assert value != bad[2][3] and "*" in str(value)
    assert message

    # the corrected ledger passes the check and is imported
    fixed_file = write_ledger(tmp_path / "和畅社区台账-改.xlsx", rows)
    page.click("#upload-again")
    page.wait_for_selector("#upload-form")
    page.set_input_files("#id_file", str(fixed_file))
    page.click("#upload-submit")
    page.wait_for_selector("#import-status[data-status=checked]")
    assert page.inner_text("#count-bad") == "0"
    assert page.inner_text("#count-new") == "6"
    no_sideways_scroll(page)
    screenshot(page, "registry-import-2-checked-phone")

    page.click("#commit-submit")
    page.wait_for_selector("#import-status[data-status=imported]")
    assert page.inner_text("#count-new") == "6"
    no_sideways_scroll(page)
    screenshot(page, "registry-import-3-imported-phone")
    imported = LedgerImport.objects.get(status=ImportStatus.IMPORTED)
    assert Person.objects.filter(import_batch=imported).count() == 6
    new_building = Building.objects.get(estate=ESTATE)
    assert Household.objects.filter(room__building=new_building).count() == 3

    # the new households are on the map of the worker's grid
    page.click(f"#import-grids [data-grid='{GRID_A}'] a")
    page.wait_for_url(f"**/registry/grid/{GRID_A}/")
    page.wait_for_selector("#reg-map[data-ready=true]")
    assert page.get_attribute("#reg-map", "data-markers") == "1"
    entry = page.locator(f"#building-list [data-building='{new_building.uuid}']")
    assert ESTATE in entry.inner_text()
    assert "3" in entry.inner_text()  # 3 households
    assert page.locator(".leaflet-interactive.reg-building").count() == 1
    screenshot(page, "registry-import-4-grid-phone")


def test_a_ledger_over_the_size_limit_is_refused_before_it_is_sent(
    seeded: None, world: Any, phone: Any, tmp_path: Path, settings: Any
) -> None:
    settings.GRIDGOV_LEDGER_MAX_MB = 0.001  # about 1 kB
    big = write_ledger(tmp_path / "big.xlsx", household_rows(20))
    page = phone
    login(page, "grid_worker_a")
    page.goto(page.base_url + "/registry/ledger/")
    page.set_input_files("#id_file", str(big))
    page.wait_for_selector("#upload-error:not([hidden])")
    page.click("#upload-submit")
    assert page.url.endswith("/registry/ledger/")
    assert "1.0\xa0KB" in page.inner_text("#upload-error")
    assert page.is_enabled("#upload-submit")
    assert not LedgerImport.objects.exists()
