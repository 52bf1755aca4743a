"""The ledger API: upload and check, status and progress, the error sheet, commit, export."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from django.test import Client

from gridgov.privacy.models import AccessLog
from gridgov.registry.models import ImportStatus, LedgerImport, Person
from tests.registry.data.ledgers import csv_bytes, household_rows
from tests.world import World

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.registry.data.ledger_urls")]

API = "/api/v1/registry/ledger"


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.VAR_DIR = tmp_path / "var"


def client_of(user: Any) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def upload(client: Client, data: bytes, name: str = "ledger.csv", **fields: Any) -> Any:
    body = {"file": io.BytesIO(data), **fields}
    body["file"].name = name
    return client.post(
        f"{API}/imports", body, headers={"Idempotency-Key": f"up-{name}-{len(data)}"}
    )


def body_of(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def stored(settings: Any) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_a_grid_worker_uploads_checks_and_commits_a_ledger(world: World) -> None:
    api = client_of(world.grid_worker_a)
    r = upload(api, csv_bytes(household_rows(2)))
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["status"] == "checked" and body["rows_total"] == 4 and body["rows_bad"] == 0
    assert body["mapping"]["公民身份号码"] == "id_number" and body["created_by"] == "grid_worker_a"
    assert not Person.objects.exists()

    status = api.get(f"{API}/imports/{body['uuid']}")
    assert status.status_code == 200 and status.json()["progress"] == 4

    commit = api.post(
        f"{API}/imports/{body['uuid']}/commit", headers={"Idempotency-Key": "commit-1"}
    )
    assert commit.status_code == 200, commit.content
    assert commit.json()["status"] == "imported" and commit.json()["created"] == 4
    assert Person.objects.count() == 4
    again = api.post(
        f"{API}/imports/{body['uuid']}/commit", headers={"Idempotency-Key": "commit-1"}
    )
    assert again.status_code == 200 and again.headers.get("Idempotent-Replayed") == "true"
    refused = api.post(f"{API}/imports/{body['uuid']}/commit")
    assert refused.status_code == 409
    assert Person.objects.count() == 4

    listed = api.get(f"{API}/imports").json()
    assert listed["count"] == 1 and listed["items"][0]["uuid"] == body["uuid"]


def test_a_ledger_with_a_bad_row_answers_its_problems_and_error_sheet(world: World) -> None:
    rows = household_rows(2)
    rows[2][3] = "32011319700101123"  # 17 characters
    api = client_of(world.grid_worker_a)
    body = upload(api, csv_bytes(rows)).json()
    assert body["status"] == "failed_check" and body["rows_bad"] == 1 and body["error_sheet"]
    problem = body["problems"][0]
    assert (problem["row"], problem["column"]) == (4, "公民身份号码")
    assert problem["value"] == "3201*********1123" and "18 characters" in problem["message"]

    sheet = api.get(f"{API}/imports/{body['uuid']}/errors")
    assert sheet.status_code == 200
    assert sheet["Content-Disposition"].startswith('attachment; filename="ledger-errors.xlsx')
    book = openpyxl.load_workbook(io.BytesIO(body_of(sheet)), read_only=True)
    lines = list(book.worksheets[0].iter_rows(values_only=True))
    assert lines[1][:2] == (4, "公民身份号码 (D)")

    commit = api.post(f"{API}/imports/{body['uuid']}/commit")
    assert commit.status_code == 409
    assert not Person.objects.exists()


def test_another_grid_s_worker_cannot_see_the_import(world: World) -> None:
    body = upload(client_of(world.grid_worker_a), csv_bytes(household_rows(1))).json()
    other = client_of(world.grid_worker_b)
    assert other.get(f"{API}/imports/{body['uuid']}").status_code == 404
    assert other.get(f"{API}/imports/{body['uuid']}/errors").status_code == 404
    assert other.post(f"{API}/imports/{body['uuid']}/commit").status_code == 404
    assert other.get(f"{API}/imports").json()["count"] == 0
    assert client_of(world.grid_leader).get(f"{API}/imports/{body['uuid']}").status_code == 200
    assert client_of(world.supervisor).get(f"{API}/imports").json()["count"] == 0
    assert Client().get(f"{API}/imports").status_code == 401


@pytest.mark.parametrize(
    ("name", "data", "status", "words"),
    [
        ("台账.xlsx", b"<!DOCTYPE html><html><body>login</body></html>", 400, "web page"),
        ("台账.xlsx", b"%PDF-1.7 not a ledger", 400, "PDF"),
        ("台账.xlsx", b"PK\x03\x04 a broken zip", 400, "damaged"),
        ("empty.csv", b"", 400, "empty"),
    ],
)
def test_a_broken_file_answers_4xx_naming_the_problem_and_nothing_is_stored(
    world: World, settings: Any, name: str, data: bytes, status: int, words: str
) -> None:
    r = upload(client_of(world.grid_worker_a), data, name)
    assert r.status_code == status, r.content
    assert words in r.json()["message"]
    assert not LedgerImport.objects.exists() and not stored(settings)


def test_a_zip_bomb_is_refused(world: World, settings: Any) -> None:
    settings.GRIDGOV_LEDGER_MAX_UNPACKED_MB = 1
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "[Content_Types].xml",
            '<Types><Override ContentType="application/vnd.openxmlformats-officedocument.'
            'spreadsheetml.sheet.main+xml"/></Types>',
        )
        z.writestr("xl/worksheets/sheet1.xml", b"\0" * (8 * 2**20))
    r = upload(client_of(world.grid_worker_a), out.getvalue(), "bomb.xlsx")
    assert r.status_code == 400 and "zip bomb" in r.json()["message"]
    assert not LedgerImport.objects.exists() and not stored(settings)


def test_an_oversized_upload_answers_413(world: World, settings: Any) -> None:
    settings.GRIDGOV_LEDGER_MAX_MB = 0.0001
    r = upload(client_of(world.grid_worker_a), csv_bytes(household_rows(3)))
    assert r.status_code == 413 and "MB" in r.json()["message"]
    assert not LedgerImport.objects.exists() and not stored(settings)


def test_who_may_not_write_base_data_may_not_upload(world: World) -> None:
    r = upload(client_of(world.supervisor), csv_bytes(household_rows(1)))
    assert r.status_code == 403
    r = upload(
        client_of(world.grid_worker_a), csv_bytes(household_rows(1)), region="320113003001002"
    )
    assert r.status_code == 403
    assert not LedgerImport.objects.exists()


def test_the_mapping_step_previews_and_checks_again(world: World) -> None:
    headers = ("居民", "号码", "片区")
    rows = [["张三", household_rows(1)[0][3], "320113003001001"]]
    api = client_of(world.grid_worker_a)
    body = upload(api, csv_bytes(rows, headers=headers)).json()
    assert body["status"] == "failed_check"
    preview = api.get(f"{API}/imports/{body['uuid']}/preview").json()
    assert preview["headers"] == list(headers) and "name" in preview["fields"]
    assert rows[0][1] not in str(preview)
    mapping = {"居民": "name", "号码": "id_number", "片区": "grid_code"}
    again = api.post(
        f"{API}/imports/{body['uuid']}/check", {"mapping": mapping}, content_type="application/json"
    )
    assert again.status_code == 200 and again.json()["status"] == "checked", again.content
    bad = api.post(
        f"{API}/imports/{body['uuid']}/check",
        {"mapping": {"居民": "shoe_size"}},
        content_type="application/json",
    )
    assert bad.status_code == 422 and "shoe_size" in bad.json()["message"]
    templates = api.get(f"{API}/templates").json()
    assert templates[0]["mapping"] == mapping


def test_a_mapping_sent_with_the_upload_is_used(world: World) -> None:
    headers = ("居民", "号码", "片区")
    rows = [["张三", household_rows(1)[0][3], "320113003001001"]]
    r = upload(
        client_of(world.grid_worker_a),
        csv_bytes(rows, headers=headers),
        mapping='{"居民": "name", "号码": "id_number", "片区": "grid_code"}',
    )
    assert r.status_code == 201 and r.json()["status"] == "checked"
    r = upload(
        client_of(world.grid_worker_a), csv_bytes(rows, headers=headers), "b.csv", mapping="[1]"
    )
    assert r.status_code == 422


def test_export_answers_a_masked_file_and_logs_it(world: World) -> None:
    rows = household_rows(2)
    api = client_of(world.grid_worker_a)
    body = upload(api, csv_bytes(rows)).json()
    api.post(f"{API}/imports/{body['uuid']}/commit")
    r = api.get(f"{API}/export", {"kind": "people", "format": "csv", "region": "320113003001001"})
    assert r.status_code == 200 and r["X-Rows"] == "4"
    text = body_of(r).decode("utf-8-sig")
    assert rows[0][3][:4] + "*" * 10 + rows[0][3][-4:] in text and rows[0][3] not in text
    log = AccessLog.objects.get(kind="export")
    assert (log.channel, log.count, log.screen) == ("api", 4, f"{API}/export")
    xlsx = api.get(f"{API}/export", {"kind": "buildings"})
    assert xlsx.status_code == 200 and xlsx["Content-Type"].startswith("application/vnd.openxml")
    assert client_of(world.grid_worker_b).get(f"{API}/export").headers["X-Rows"] == "0"
    assert api.get(f"{API}/export", {"kind": "spaceships"}).status_code == 422
    assert client_of(world.unit_handler).get(f"{API}/export").status_code == 403
    assert LedgerImport.objects.get().status == ImportStatus.IMPORTED
