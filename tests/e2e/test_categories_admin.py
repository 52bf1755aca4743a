"""The administrator imports categories from an xlsx workbook: a dry run, the report, the commit,
and the new category in the list; a file with an error shows the row and commits nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl
import pytest

from gridgov.cases.catalogue import catalogue_load_standard
from gridgov.cases.models import Category
from tests.e2e.conftest import login, screenshot
from tests.world import World


def workbook(path: Path, *rows: list[Any]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "categories"
    sheet.append(["scheme", "code", "parent", "class", "name_zh", "name_en", "handle_limit"])
    for row in rows:
        sheet.append(row)
    attributes = book.create_sheet("attributes")
    attributes.append(["scheme", "category", "code", "datatype", "required", "description"])
    attributes.append(["social", "S0701", "when", "datetime", True, "什么时间发现的？"])
    book.save(path)
    return path


def noise_workbook(path: Path, *, noise_limit: str) -> Path:
    """The major "environment complaints" and its minor "noise at night" (``noise_limit``)."""
    return workbook(
        path,
        ["social", "S07", "", "event", "环境投诉", "Environment complaints", "2d"],
        ["social", "S0701", "S07", "event", "夜间噪声", "Noise at night", noise_limit],
    )


@pytest.fixture
def standard_catalogue(transactional_db: None, world: World, settings: Any, tmp_path: Path) -> None:
    """The standard categories, and staged uploads in a fresh MEDIA_ROOT."""
    settings.MEDIA_ROOT = tmp_path / "media"
    catalogue_load_standard()


def test_an_administrator_imports_a_small_workbook_after_a_dry_run(
    standard_catalogue: None, page: Any, tmp_path: Path
) -> None:
    good = noise_workbook(tmp_path / "categories.xlsx", noise_limit="4h")
    login(page, "admin")
    page.goto(page.base_url + "/admin/cases/category/")
    page.locator("#import-categories-link").click()
    page.wait_for_url("**/admin/cases/category/import/")

    # a dry run: the report, a commit button, nothing written yet
    page.set_input_files("#id_file", str(good))
    page.locator("#import-preview").click()
    commit = page.locator("#import-commit")
    commit.wait_for()
    assert page.locator("#import-summary .count-created").inner_text() == "2"
    assert "social:S0701" in page.locator("#import-changes").inner_text()
    assert "夜间噪声" in page.locator("#import-changes").inner_text()
    screenshot(page, "categories-import-preview")
    assert not Category.objects.filter(scheme="social", code="S0701").exists()

    # the commit writes what was previewed
    commit.click()
    page.locator("#import-outcome li.success").wait_for()
    assert page.locator("#import-summary .count-created").inner_text() == "2"
    screenshot(page, "categories-import-committed")
    noise = Category.objects.get(scheme="social", code="S0701")
    assert (noise.parent.code, noise.handle_limit) == ("S07", "4h")
    assert [a.code for a in noise.attributes.all()] == ["when"]

    # the new category is in the list
    page.locator("#back-to-categories").click()
    page.wait_for_url("**/admin/cases/category/")
    page.fill("#searchbar", "夜间噪声")
    page.keyboard.press("Enter")
    page.wait_for_url("**/admin/cases/category/?q=*")
    listed = page.locator("#result_list").inner_text()
    assert "S0701" in listed and "Noise at night" in listed


def test_a_workbook_with_a_bad_row_shows_the_row_and_writes_nothing(
    standard_catalogue: None, page: Any, tmp_path: Path
) -> None:
    bad = noise_workbook(tmp_path / "bad.xlsx", noise_limit="soon")
    login(page, "admin")
    page.goto(page.base_url + "/admin/cases/category/import/")
    page.set_input_files("#id_file", str(bad))
    page.locator("#import-preview").click()
    problems = page.locator("#import-problems")
    problems.wait_for()
    text = problems.inner_text()
    assert "social:S0701" in text and "handle_limit" in text and "soon" in text
    assert page.locator("#import-problems td").first.inner_text() == "3"  # the sheet's row
    assert page.locator("#import-commit").count() == 0
    screenshot(page, "categories-import-errors")
    assert not Category.objects.filter(scheme="social", code__startswith="S07").exists()
