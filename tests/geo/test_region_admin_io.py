"""The admin's "Import regions" and "Export GeoJSON" pages on the region list."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from shapely.geometry import shape

from gridgov.geo.actions import regions_import_divisions
from gridgov.geo.models import Region
from tests.world import World

QIXIA_CSV = Path("/work/shared/data/divisions-320113-qixia.csv")
QIXIA_GEOJSON = Path("/work/shared/data/district-320113-qixia.geojson")
CHANGELIST = "/admin/geo/region/"
IMPORT = "/admin/geo/region/import/"
EXPORT = "/admin/geo/region/export/"


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Path) -> Path:
    """Staged uploads go to a fresh MEDIA_ROOT per test."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return Path(settings.MEDIA_ROOT)


def staged_files(media: Path) -> list[Path]:
    folder = media / "imports"
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def admin_client(world: World, persona: str = "admin") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")  # the assertions read the English page
    client.force_login(world.users[persona])
    return client


def preview(client: Client, path: Path | None = None, *, raw: bytes | None = None, **fields: Any):
    data = raw if raw is not None else (path.read_bytes() if path else b"")
    name = path.name if path else "upload.csv"
    upload = SimpleUploadedFile(name, data)
    return client.post(IMPORT, {"file": upload, "_preview": "1", **fields})


def token_of(response: Any) -> str:
    match = re.search(r'name="token" value="([^"]+)"', response.content.decode())
    assert match, "the page offers no commit"
    return match.group(1)


def commit(client: Client, token: str) -> Any:
    return client.post(IMPORT, {"token": token, "_commit": "1"})


def text(response: Any) -> str:
    return response.content.decode()


def test_the_region_list_offers_import_and_export_to_an_administrator(world: World) -> None:
    page = text(admin_client(world).get(CHANGELIST))
    assert f'href="{IMPORT}"' in page and "Import regions" in page
    assert f'href="{EXPORT}"' in page and "Export GeoJSON" in page


def test_a_division_csv_is_checked_first_then_committed_through_the_page(
    world: World, media: Path
) -> None:
    client = admin_client(world)
    before = Region.objects.count()
    checked = preview(client, QIXIA_CSV)
    assert checked.status_code == 200
    page = text(checked)
    assert "Dry run: nothing was written yet" in page
    assert "Division CSV" in page and "divisions-320113-qixia.csv" in page
    assert Region.objects.count() == before  # the dry run wrote nothing
    assert len(staged_files(media)) == 1

    done = commit(client, token_of(checked))
    page = text(done)
    assert "The import was committed" in page
    assert Region.objects.filter(code="320113001", name="尧化街道").exists()
    assert Region.objects.count() > before + 100
    assert staged_files(media) == []  # the staged file is gone after the commit
    again = commit(client, token_of(checked))
    assert "already committed" in text(again)


def test_a_division_csv_can_be_kept_to_one_district(world: World, tmp_path: Path) -> None:
    other = tmp_path / "two-districts.csv"
    other.write_text(
        "code,name,level,parent_code\n"
        "320114,雨花台区,district,3201\n"
        "320114002,新街道,street,320114\n"
        "320113001,尧化街道,street,320113\n",
        encoding="gbk",
    )
    client = admin_client(world)
    checked = preview(client, other, district="320114")
    assert "district 320114 only" in text(checked)
    commit(client, token_of(checked))
    assert Region.objects.filter(code="320114002").exists()
    assert not Region.objects.filter(code="320113001").exists()


def test_the_qixia_outline_without_repair_names_the_self_intersection_and_offers_no_commit(
    world: World, media: Path
) -> None:
    regions_import_divisions(path=QIXIA_CSV)
    stored = Region.objects.get(code="320113").geometry
    response = preview(admin_client(world), QIXIA_GEOJSON)
    page = text(response)
    assert "touches or crosses itself at lat 32.166992, lon 119.083984" in page
    assert "The file has 1 error: nothing was written" in page
    assert 'name="_commit"' not in page and 'name="token"' not in page
    assert Region.objects.get(code="320113").geometry == stored
    assert staged_files(media) == []


def test_the_qixia_outline_with_repair_is_committed_and_the_area_change_shown(
    world: World, media: Path
) -> None:
    regions_import_divisions(path=QIXIA_CSV)
    rectangle = Region.objects.get(code="320113").geometry
    client = admin_client(world)
    checked = preview(client, QIXIA_GEOJSON, repair="on")
    page = text(checked)
    assert "Dry run: nothing was written yet" in page
    assert "the area did not change (under 1 m²)" in page
    change = re.search(r'class="num area-change">([^<]+)<', page)
    assert change and re.fullmatch(r"([+-][\d,]+\.\d|0) m² \(([+-]\d+\.\d{4}|0) %\)", change[1])
    assert Region.objects.get(code="320113").geometry == rectangle  # the world's, still

    done = commit(client, token_of(checked))
    page = text(done)
    assert "The import was committed: 0 added, 1 updated, 0 unchanged." in page
    assert "the area did not change (under 1 m²)" in page
    district = Region.objects.get(code="320113")
    assert shape(district.geometry).is_valid
    assert district.area_m2 == pytest.approx(389e6, rel=0.01)
    # the world's rectangular streets now stick out of the real outline: shown with their areas
    assert 'id="import-checks"' in page and "m²" in page
    assert staged_files(media) == []


def box_feature(code: str, west: float, south: float, east: float, north: float) -> Any:
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {
        "type": "Feature",
        "properties": {"code": code},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def test_a_geojson_with_overlapping_grids_shows_the_overlap_with_its_area(world: World) -> None:
    # grid A reaches 0.01° into grid B
    data = {
        "type": "FeatureCollection",
        "features": [
            box_feature("320113003001001", 118.80, 32.0, 118.86, 32.1),
            box_feature("320113003001002", 118.85, 32.0, 118.90, 32.1),
        ],
    }
    response = preview(admin_client(world), raw=json.dumps(data).encode())
    page = text(response)
    assert 'id="import-checks"' in page
    overlap = re.search(
        r'<tr class="check-overlap"><td>overlap</td><td>([^<]*)</td><td class="num">([\d,]+)</td>',
        page,
    )
    assert overlap, "no overlap row in the checks"
    assert "overlap by" in overlap.group(1) and "m²" in overlap.group(1)
    assert int(overlap.group(2).replace(",", "")) > 1_000_000  # 0.01° x 0.1°, about 10 km²


def test_the_export_downloads_a_geojson_file_named_by_code_level_and_date(world: World) -> None:
    response = admin_client(world).get(EXPORT, {"level": "grid", "under": "320113", "_export": "1"})
    assert response.status_code == 200
    today = timezone.localdate().strftime("%Y%m%d")
    disposition = response["Content-Disposition"]
    assert disposition == f'attachment; filename="regions-320113-grid-{today}.geojson"'
    assert response["Content-Type"].startswith("application/geo+json")
    body = json.loads(response.content)
    codes = {f["properties"]["code"] for f in body["features"]}
    assert codes == {
        "320113003001001",
        "320113003001002",
        "320113003002001",
        "320113005001001",
    }


def test_the_export_page_shows_its_form_and_refuses_a_bad_code(world: World) -> None:
    client = admin_client(world)
    page = text(client.get(EXPORT))
    assert 'name="level"' in page and 'name="under"' in page
    bad = client.get(EXPORT, {"under": "32x", "_export": "1"})
    assert bad.status_code == 200 and "Content-Disposition" not in bad
    assert "A region code has 6 to 15 digits." in text(bad)


def test_a_grid_worker_is_sent_to_the_admin_login(world: World) -> None:
    client = admin_client(world, "grid_worker_a")
    for url in (IMPORT, EXPORT):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    refused = preview(client, QIXIA_CSV)
    assert refused.status_code == 302
    assert not Region.objects.filter(code="320113001").exists()


def test_staff_without_the_administrator_role_are_refused(world: World) -> None:
    supervisor = world.users["supervisor"]
    supervisor.is_staff = True
    supervisor.save(update_fields=["is_staff"])
    client = admin_client(world, "supervisor")
    assert client.get(IMPORT).status_code == 403
    assert client.get(EXPORT, {"_export": "1"}).status_code == 403
    assert preview(client, QIXIA_CSV).status_code == 403
    assert not Region.objects.filter(code="320113001").exists()


def test_an_oversized_file_is_refused_with_its_size_and_nothing_is_written(
    world: World, settings: Any, media: Path
) -> None:
    settings.GRIDGOV_UPLOAD_MAX_BYTES = 1000
    before = Region.objects.count()
    response = preview(admin_client(world), QIXIA_CSV)
    page = text(response)
    assert "at most 1,000 bytes are accepted" in page
    assert 'name="_commit"' not in page
    assert Region.objects.count() == before
    assert staged_files(media) == []


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"type": "FeatureCollection", "features": [', "the file is not valid JSON"),
        (b"\x81\x30\xff\xfe\x00", "neither UTF-8 nor GBK"),
        (b"a,b,c\n1,2,3\n", "unknown header"),
        (b'{"type": "Point", "coordinates": [1, 2]}', "cannot be imported"),
    ],
)
def test_a_broken_file_gets_a_message_and_nothing_is_written(
    world: World, media: Path, raw: bytes, message: str
) -> None:
    before = Region.objects.count()
    page = text(preview(admin_client(world), raw=raw))
    assert message in page
    assert 'name="_commit"' not in page
    assert Region.objects.count() == before
    assert staged_files(media) == []


def test_a_forged_token_commits_nothing(world: World) -> None:
    response = commit(admin_client(world), "not-a-token")
    assert "this preview is not valid" in text(response)


def test_another_administrators_preview_cannot_be_committed(world: World) -> None:
    from gridgov.accounts import actions
    from gridgov.accounts.models import Role

    other = actions.user_create(username="admin2", password="x-very-long-password-1")
    actions.role_assign(user=other, role=Role.ADMINISTRATOR, region=None)
    other.is_staff = other.is_superuser = True
    other.save(update_fields=["is_staff", "is_superuser"])
    checked = preview(admin_client(world), QIXIA_CSV)
    thief = Client(HTTP_ACCEPT_LANGUAGE="en")
    thief.force_login(other)
    page = text(commit(thief, token_of(checked)))
    assert "belongs to another user" in page
    assert not Region.objects.filter(code="320113001").exists()


def test_a_preview_staged_by_another_import_page_cannot_be_committed_as_regions(
    world: World, media: Path
) -> None:
    from gridgov.geo.bulk import stage_upload

    # a token of the category import, by the same administrator, naming a division CSV
    staged = stage_upload(
        data=QIXIA_CSV.read_bytes(),
        name="categories.csv",
        meta={"kind": "categories", "user": world.users["admin"].pk},
    )
    before = Region.objects.count()
    page = text(commit(admin_client(world), staged.token))
    assert "this preview is not valid" in page
    assert Region.objects.count() == before
    assert not Region.objects.filter(code="320113001").exists()
