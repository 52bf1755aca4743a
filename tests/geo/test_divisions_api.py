"""POST /api/v1/geo/regions/import-divisions: a division CSV through the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from gridgov.accounts import actions
from gridgov.accounts.models import Role
from gridgov.geo.models import Region
from tests.world import World

URL = "/api/v1/geo/regions/import-divisions"
QIXIA_CSV = Path("/work/shared/data/divisions-320113-qixia.csv")


def api(world: World, persona: str = "admin") -> Client:
    """A token client that asks for English, the language the assertions read."""
    _, raw = actions.token_create(user=world.users[persona], name="test")
    return Client(headers={"Authorization": f"Bearer {raw}", "Accept-Language": "en"})


def post(client: Client, data: bytes, name: str = "divisions.csv", **fields: Any) -> Any:
    return client.post(URL, {"file": SimpleUploadedFile(name, data), **fields})


def test_an_administrator_imports_the_qixia_divisions_and_gets_the_report(world: World) -> None:
    response = post(api(world), QIXIA_CSV.read_bytes(), name=QIXIA_CSV.name)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["files"] == [QIXIA_CSV.name] and body["layouts"] == ["gridgov"]
    assert body["written"] is True and body["added"] > 100 and body["errors"] == []
    assert Region.objects.filter(code="320113001", name="尧化街道").exists()
    again = post(api(world), QIXIA_CSV.read_bytes()).json()
    assert again["added"] == 0 and again["changed"] == 0


def test_a_dry_run_reports_the_same_and_writes_nothing(world: World) -> None:
    before = Region.objects.count()
    body = post(api(world), QIXIA_CSV.read_bytes(), dry_run="true").json()
    assert body["written"] is False and body["added"] > 100
    assert Region.objects.count() == before


def test_a_gbk_file_kept_to_one_district_skips_the_other_rows(world: World) -> None:
    data = (
        "code,name,level,parent_code\n"
        "320114002,新街道,street,320114\n"
        "320113009,别处街道,street,320113\n"
    ).encode("gbk")
    body = post(api(world), data, district="320114").json()
    assert body["encodings"] == ["GBK"] and body["district"] == "320114"
    assert body["added_codes"] == ["320114002"] and body["skipped"] == 1
    assert not Region.objects.filter(code="320113009").exists()


@pytest.mark.parametrize("persona", ["grid_worker_a", "supervisor", "leader", "resident", "nobody"])
def test_everyone_but_administrators_is_refused(world: World, persona: str) -> None:
    response = post(api(world, persona), QIXIA_CSV.read_bytes())
    assert response.status_code == 403
    assert set(response.json()) == {"message", "detail"}
    assert not Region.objects.filter(code="320113001").exists()


def test_an_administrator_of_one_district_imports_only_with_that_district(world: World) -> None:
    user = actions.user_create(username="district_admin", password="x-long-password-9")
    actions.role_assign(user=user, role=Role.ADMINISTRATOR, region=world.regions["320113"])
    client = Client(
        headers={
            "Authorization": f"Bearer {actions.token_create(user=user, name='t')[1]}",
            "Accept-Language": "en",
        }
    )
    whole = post(client, QIXIA_CSV.read_bytes())
    assert whole.status_code == 403 and "give the district" in whole.json()["message"]
    other = post(client, QIXIA_CSV.read_bytes(), district="320114")
    assert other.status_code == 403
    own = post(client, QIXIA_CSV.read_bytes(), district="320113")
    assert own.status_code == 200 and own.json()["added"] > 100


def test_rows_with_errors_answer_422_with_the_report_in_detail(world: World) -> None:
    data = (
        "code,name,level,parent_code\n"
        "320113001,尧化街道,street,320113\n"
        "320113001001,,community,320113001\n"
        "320199001,无名街道,street,320199\n"
    ).encode()
    response = post(api(world), data)
    assert response.status_code == 422
    body = response.json()
    assert "2 errors; nothing was written" in body["message"]
    errors = body["detail"]["errors"]
    assert [(e["line"], e["code"]) for e in errors] == [(3, "320113001001"), (4, "320199001")]
    assert "the name is empty" in errors[0]["message"]
    assert "unknown parent 320199" in errors[1]["message"]
    assert body["detail"]["written"] is False
    assert not Region.objects.filter(code="320113001").exists()


def test_an_undecodable_or_unknown_file_answers_400(world: World) -> None:
    garbage = post(api(world), b"\x81\x30\xff\xfe\x00")
    assert garbage.status_code == 400 and "neither UTF-8 nor GBK" in garbage.json()["message"]
    unknown = post(api(world), b"a,b\n1,2\n")
    assert unknown.status_code == 400 and "unknown header" in unknown.json()["message"]
    missing = api(world).post(URL, {})
    assert missing.status_code == 400 and "'file'" in missing.json()["message"]


def test_a_file_over_the_upload_limit_answers_413(world: World, settings: Any) -> None:
    settings.GRIDGOV_UPLOAD_MAX_BYTES = 100
    response = post(api(world), QIXIA_CSV.read_bytes())
    assert response.status_code == 413
    assert response.json()["detail"]["limit"] == 100
    assert not Region.objects.filter(code="320113001").exists()
