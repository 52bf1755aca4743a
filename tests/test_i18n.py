"""Messages speak the language of the request: Simplified Chinese by default, English on request.

Domain messages are translated when they are raised, so the same refusal reads in Chinese for a
browser that sends nothing (or ``zh-CN``) and in English for one that asks for ``en``; the
``detail`` of an API error stays machine-readable in both.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import translation

from gridgov.accounts import actions
from gridgov.core.errors import PermissionDenied
from gridgov.geo.actions import regions_import_geojson
from gridgov.geo.selectors import region_staff_access
from tests.world import World

IMPORT = "/api/v1/geo/regions/import"
LOCATE = "/api/v1/geo/locate"
#: A bow-tie over grid A (118.80–118.85 E, 32.00–32.10 N): its edges cross at 32.05 N, 118.825 E.
BOWTIE_A = {
    "type": "Polygon",
    "coordinates": [
        [[118.80, 32.00], [118.85, 32.10], [118.85, 32.00], [118.80, 32.10], [118.80, 32.00]]
    ],
}


@pytest.fixture
def default_language() -> Generator[None, None, None]:
    """No language activated in this thread: gettext answers in LANGUAGE_CODE (zh-hans)."""
    translation.deactivate()
    yield
    translation.deactivate()


def logged_in(user: Any, **headers: str) -> Client:
    client = Client(headers=headers)
    client.force_login(user)
    return client


def token_client(world: World, persona: str, **headers: str) -> Client:
    _, raw = actions.token_create(user=world.users[persona], name="i18n")
    return Client(headers={"Authorization": f"Bearer {raw}", **headers})


def upload(client: Client, data: Any) -> Any:
    file = SimpleUploadedFile(
        "grids.geojson", json.dumps(data).encode(), content_type="application/geo+json"
    )
    return client.post(IMPORT, {"file": file})


def bowtie_collection(code: str) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {"code": code}, "geometry": BOWTIE_A}],
    }


# --- the staff page ------------------------------------------------------------------------------


def test_the_staff_page_refuses_another_grids_worker_in_chinese_by_default(world: World) -> None:
    response = logged_in(world.grid_worker_b).get(f"/regions/{world.grid_a.code}/staff/")
    assert response.status_code == 403
    html = response.content.decode()
    assert f"您不负责{world.grid_a.name}（{world.grid_a.code}），无权查看其工作人员" in html
    assert "无权访问" in html  # the page title
    assert "you do not serve" not in html
    assert "Grid Worker A" not in html
    assert response["Content-Language"] == "zh-hans"


def test_the_staff_page_refusal_is_in_english_when_the_browser_asks_for_it(world: World) -> None:
    client = logged_in(world.grid_worker_b, **{"Accept-Language": "en"})
    response = client.get(f"/regions/{world.grid_a.code}/staff/")
    assert response.status_code == 403
    html = response.content.decode()
    assert (
        f"you do not serve {world.grid_a.name} ({world.grid_a.code}); "
        "its staff are not shown to you"
    ) in html
    assert "Not allowed" in html
    assert "您不负责" not in html
    assert response["Content-Language"] == "en"


def test_the_language_cookie_wins_over_the_browser(world: World) -> None:
    client = logged_in(world.grid_worker_b, **{"Accept-Language": "en"})
    client.cookies["django_language"] = "zh-hans"
    response = client.get(f"/regions/{world.grid_a.code}/staff/")
    assert response.status_code == 403
    assert "您不负责" in response.content.decode()


def test_the_staff_refusal_is_translated_where_it_is_raised(
    world: World, default_language: None
) -> None:
    with pytest.raises(PermissionDenied) as chinese:
        region_staff_access(user=world.grid_worker_b, code=world.grid_a.code)
    assert chinese.value.message.startswith("您不负责")
    with translation.override("en"), pytest.raises(PermissionDenied) as english:
        region_staff_access(user=world.grid_worker_b, code=world.grid_a.code)
    assert english.value.message.startswith("you do not serve")
    assert chinese.value.detail == english.value.detail == {"code": world.grid_a.code}


# --- GeoJSON import ------------------------------------------------------------------------------


def test_a_geojson_upload_names_the_self_intersection_in_chinese_by_default(
    world: World,
) -> None:
    response = upload(logged_in(world.admin), bowtie_collection(world.grid_a.code))
    assert response.status_code == 422
    body = response.json()
    assert body["message"] == "导入发现 1 处错误，未写入任何数据"
    [feature] = body["detail"]["features"]
    assert feature["status"] == "error" and feature["code"] == world.grid_a.code  # codes stay
    [problem] = feature["problems"]
    assert "自相交" in problem
    assert "纬度 32.050000，经度 118.825000" in problem
    assert "--repair" in problem


def test_the_same_upload_in_english_names_the_crossing_in_english(world: World) -> None:
    client = logged_in(world.admin, **{"Accept-Language": "en"})
    response = upload(client, bowtie_collection(world.grid_a.code))
    assert response.status_code == 422
    body = response.json()
    assert body["message"] == "the import has 1 error; nothing was written"
    [problem] = body["detail"]["features"][0]["problems"]
    assert "crosses itself at lat 32.050000, lon 118.825000" in problem
    assert "自相交" not in problem


def test_an_import_report_run_outside_a_request_is_in_chinese(
    world: World, default_language: None
) -> None:
    report = regions_import_geojson(data=bowtie_collection(world.grid_a.code))
    assert not report.ok
    assert "自相交" in report.features[0].problems[0]
    text = report.text()
    assert "错误：边界多边形无效" in text
    assert "未写入任何数据" in text


# --- locate -----------------------------------------------------------------------------------


def test_the_locate_404_names_the_nearest_grid_in_chinese_by_default(world: World) -> None:
    response = token_client(world, "grid_worker_a").get(LOCATE, {"lat": 32.05, "lon": 119.01})
    assert response.status_code == 404
    body = response.json()
    message = body["message"]
    assert message.startswith("该点（纬度 32.050000，经度 119.010000）不在任何网格内")
    assert f"最近的网格是{world.grid_d.name}（{world.grid_d.code}），相距" in message
    assert message.endswith(" 米")
    assert "m away" not in message
    # the detail is for programs: the same keys and values in every language
    assert body["detail"]["nearest"]["code"] == world.grid_d.code
    assert set(body["detail"]) == {"lat", "lon", "nearest", "distance_m"}


def test_the_locate_404_is_in_english_on_request(world: World) -> None:
    client = token_client(world, "grid_worker_a", **{"Accept-Language": "en"})
    response = client.get(LOCATE, {"lat": 32.05, "lon": 119.01})
    assert response.status_code == 404
    message = response.json()["message"]
    assert message.startswith("the point (lat 32.050000, lon 119.010000) lies in no grid")
    assert message.endswith(" m away")


def test_an_api_caller_without_credentials_is_told_so_in_chinese() -> None:
    response = Client().get(LOCATE, {"lat": 32.05, "lon": 118.82})
    assert response.status_code == 401
    assert response.json()["message"] == "需要认证：请发送有效的 API 令牌，或先登录"


# --- checks ---------------------------------------------------------------------------------------


def test_check_problems_read_in_chinese_and_keep_their_kind_code(default_language: None) -> None:
    from shapely.geometry import box

    from gridgov.geo.checks import GAP, OVERLAP, check_grids

    community = box(118.80, 32.00, 118.90, 32.10)
    grids = [("320113003001001", box(118.80, 32.00, 118.86, 32.09))]
    grids.append(("320113003001002", box(118.85, 32.00, 118.90, 32.09)))
    problems = {p.kind: p for p in check_grids(community, grids, community_code="320113003001")}
    assert set(problems) == {OVERLAP, GAP}
    overlap, gap = problems[OVERLAP], problems[GAP]
    assert (overlap.label, gap.label) == ("重叠", "缝隙")
    assert "重叠" in overlap.message and "平方米" in overlap.message
    assert "未被任何网格覆盖" in gap.message
    assert overlap.as_dict()["kind"] == "overlap" and gap.as_dict()["kind"] == "gap"
