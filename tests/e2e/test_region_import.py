"""The admin's region import (the Qixia outline: refused as given, then repaired) and export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.utils import timezone

from gridgov.geo.models import Region
from tests.e2e.conftest import login, screenshot
from tests.world import World

QIXIA_GEOJSON = Path("/work/shared/data/district-320113-qixia.geojson")


def test_an_administrator_sees_the_self_intersection_then_repairs_and_commits_the_outline(
    transactional_db: None, world: World, page: Any, settings: Any, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    rectangle = Region.objects.get(code="320113").geometry
    login(page, "admin")
    page.goto(page.base_url + "/admin/geo/region/")
    page.get_by_role("link", name="导入区域").click()
    page.wait_for_url("**/admin/geo/region/import/")

    # as given: the importer names the self-intersection and where it is, and offers no commit
    page.set_input_files("#id_file", str(QIXIA_GEOJSON))
    page.get_by_role("button", name="检查文件（试运行）").click()
    problems = page.locator("#import-features .import-problems")
    problems.wait_for()
    text = problems.inner_text()
    assert "自相交" in text
    assert "纬度 32.166992，经度 119.083984" in text
    assert page.locator("input[name=_commit]").count() == 0
    assert "未写入任何数据" in page.locator("#import-outcome").inner_text()
    screenshot(page, "region-import-self-intersection")
    assert Region.objects.get(code="320113").geometry == rectangle

    # with repair: a dry run first, then the commit
    page.set_input_files("#id_file", str(QIXIA_GEOJSON))
    page.check("#id_repair")
    page.get_by_role("button", name="检查文件（试运行）").click()
    commit = page.get_by_role("button", name="确认导入")
    commit.wait_for()
    assert "面积未变" in page.locator("#import-features").inner_text()
    screenshot(page, "region-import-preview")
    assert Region.objects.get(code="320113").geometry == rectangle
    commit.click()
    outcome = page.locator("#import-outcome li.success")
    outcome.wait_for()
    assert "已导入" in outcome.inner_text()
    change = page.locator("#import-features .area-change").first.inner_text()
    assert "平方米" in change or "m²" in change
    assert "面积未变" in page.locator("#import-features").inner_text()
    screenshot(page, "region-import-committed")
    district = Region.objects.get(code="320113")
    assert district.geometry != rectangle
    assert 380e6 < (district.area_m2 or 0) < 400e6


def test_an_administrator_downloads_the_grids_of_a_district_as_geojson(
    transactional_db: None, world: World, page: Any
) -> None:
    login(page, "admin")
    page.goto(page.base_url + "/admin/geo/region/")
    page.get_by_role("link", name="导出 GeoJSON").click()
    page.select_option("#id_level", "grid")
    page.fill("#id_under", "320113")
    with page.expect_download() as info:
        page.get_by_role("button", name="下载 GeoJSON").click()
    download = info.value
    today = timezone.localdate().strftime("%Y%m%d")
    assert download.suggested_filename == f"regions-320113-grid-{today}.geojson"
    data = json.loads(Path(download.path()).read_text(encoding="utf-8"))
    codes = {f["properties"]["code"] for f in data["features"]}
    assert world.grid_a.code in codes and world.grid_e.code not in codes
