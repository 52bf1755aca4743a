"""The ledger screens, used through the web client by the personas of tests/world.py: upload a
ledger → read the check → download the error sheet → map the columns → commit; another grid's
worker sees none of it; broken and oversized files answer a clear 4xx and store nothing; the
people list exported masked and logged."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from django.test import Client

from gridgov.accounts.models import User
from gridgov.privacy.models import AccessLog
from gridgov.registry.models import ImportStatus, LedgerImport, LedgerTemplate, Person
from gridgov.registry.views_ledger import new_token
from tests.registry.data.ledgers import GRID_A, csv_bytes, household_rows, write_xlsx
from tests.registry.factories import id_number, person
from tests.world import World

pytestmark = pytest.mark.django_db

LEDGER = "/registry/ledger/"


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.VAR_DIR = tmp_path / "var"


def browser(user: User) -> Client:
    """A logged-in client that asks for English (the wording asserted below)."""
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(user)
    return client


def html(response: Any) -> str:
    return str(response.content.decode())


def upload(
    client: Client, data: bytes, name: str = "ledger.csv", token: str | None = None, **fields: Any
) -> Any:
    file = io.BytesIO(data)
    file.name = name
    body = {"file": file, "token": new_token() if token is None else token, **fields}
    return client.post(f"{LEDGER}upload/", body)


def the_import() -> LedgerImport:
    return LedgerImport.objects.get()


def stored(settings: Any) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def body_of(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def one_bad_row() -> list[list[str]]:
    """Two households; the spouse of the second has an id number with a wrong check char."""
    rows = household_rows(2)
    good = rows[3][3]
    rows[3][3] = good[:17] + ("0" if good[17] != "0" else "1")
    return rows


def test_a_grid_worker_uploads_reads_the_check_downloads_the_errors_and_commits_the_fix(
    world: World,
) -> None:
    worker = browser(world.grid_worker_a)
    page = worker.get(LEDGER)
    assert page.status_code == 200 and 'id="upload-form"' in html(page)

    r = upload(worker, csv_bytes(one_bad_row()), "和畅园台账.csv")
    li = the_import()
    assert r.status_code == 302 and r["Location"] == f"{LEDGER}{li.uuid}/"
    assert li.status == ImportStatus.FAILED_CHECK and not Person.objects.exists()

    page = worker.get(r["Location"])
    text = html(page)
    assert page.status_code == 200 and 'data-status="failed_check"' in text
    counts = dict(re.findall(r'<dd id="count-(\w+)">(\d+)</dd>', text))
    assert counts == {"rows": "4", "ok": "3", "bad": "1", "new": "3", "updated": "0"}
    assert 'data-row="5" data-column="公民身份号码"' in text and "check" in text
    assert 'id="commit-form"' not in text
    assert 'id="error-sheet"' in text

    sheet = worker.get(f"{LEDGER}{li.uuid}/errors/")
    assert sheet.status_code == 200
    assert sheet["Content-Disposition"].startswith("attachment; filename*=utf-8''")
    assert sheet["Content-Disposition"].endswith("-errors.xlsx")
    assert "private" in sheet["Cache-Control"]
    book = openpyxl.load_workbook(io.BytesIO(body_of(sheet)), read_only=True)
    lines = list(book.worksheets[0].iter_rows(values_only=True))
    assert lines[1][:2] == (5, "公民身份号码 (D)")
    assert one_bad_row()[3][3] not in str(lines)  # the value is masked

    refused = worker.post(f"{LEDGER}{li.uuid}/commit/", {"token": new_token()})
    assert refused.status_code == 409 and not Person.objects.exists()

    r = upload(worker, csv_bytes(household_rows(2)), "和畅园台账.csv")
    fixed = LedgerImport.objects.exclude(pk=li.pk).get()
    assert fixed.status == ImportStatus.CHECKED
    text = html(worker.get(r["Location"]))
    assert 'id="commit-form"' in text and 'id="problems"' not in text

    done = worker.post(f"{LEDGER}{fixed.uuid}/commit/", {"token": new_token()}, follow=True)
    text = html(done)
    assert 'data-status="imported"' in text
    assert Person.objects.filter(import_batch=fixed).count() == 4
    assert f'data-grid="{GRID_A}"' in text and f"/registry/grid/{GRID_A}/" in text
    assert "4 rows imported" in text


def test_the_mapping_step_suggests_a_field_per_column_and_checks_again(world: World) -> None:
    worker = browser(world.grid_worker_a)
    headers = ("居民", "号码", "片区")
    rows = [["张三", household_rows(1)[0][3], GRID_A]]
    r = upload(worker, csv_bytes(rows, headers=headers), "renamed.csv")
    li = the_import()
    assert li.status == ImportStatus.FAILED_CHECK
    text = html(worker.get(r["Location"]))
    assert '<details class="card" id="mapping" open>' in text
    assert 'id="column-0"' in text and 'id="column-2"' in text
    assert rows[0][1] not in text  # the preview masks id numbers

    mapping = {"column-0": "name", "column-1": "id_number", "column-2": "grid_code"}
    again = worker.post(f"{LEDGER}{li.uuid}/check/", {**mapping, "token": new_token()})
    assert again.status_code == 302
    li.refresh_from_db()
    assert li.status == ImportStatus.CHECKED and li.rows_ok == 1
    template = LedgerTemplate.objects.get(imports=li)
    assert template.mapping == {"居民": "name", "号码": "id_number", "片区": "grid_code"}

    # the next ledger with the same columns is read with the remembered mapping
    upload(worker, csv_bytes(rows, headers=headers), "renamed-again.csv")
    assert LedgerImport.objects.order_by("-pk")[0].status == ImportStatus.CHECKED


def test_a_mapping_with_a_field_twice_is_refused_with_a_message(world: World) -> None:
    worker = browser(world.grid_worker_a)
    upload(worker, csv_bytes(household_rows(1)))
    li = the_import()
    r = worker.post(
        f"{LEDGER}{li.uuid}/check/", {"column-1": "name", "column-2": "name", "token": "t1"}
    )
    assert r.status_code == 422
    assert 'id="mapping-error"' in html(r) and "both mapped to name" in html(r)
    again = worker.post(
        f"{LEDGER}{li.uuid}/check/", {"column-1": "name", "column-3": "id_number", "token": "t1"}
    )
    assert again.status_code == 302  # the refused form's token was not used up


def test_another_grid_s_worker_cannot_see_the_import(world: World) -> None:
    upload(browser(world.grid_worker_a), csv_bytes(one_bad_row()))
    li = the_import()
    other = browser(world.grid_worker_b)
    for path in ("", "errors/"):
        assert other.get(f"{LEDGER}{li.uuid}/{path}").status_code == 404
    assert other.get(f"{LEDGER}progress/?import={li.uuid}").status_code == 404
    assert other.post(f"{LEDGER}{li.uuid}/check/", {"column-1": "name"}).status_code == 404
    assert other.post(f"{LEDGER}{li.uuid}/commit/").status_code == 404
    assert str(li.uuid) not in html(other.get(LEDGER))
    assert browser(world.grid_leader).get(f"{LEDGER}{li.uuid}/").status_code == 200
    assert str(li.uuid) in html(browser(world.grid_worker_a).get(LEDGER))


def test_an_oversized_upload_answers_413_with_a_clear_message_and_stores_nothing(
    world: World, settings: Any
) -> None:
    settings.GRIDGOV_LEDGER_MAX_MB = 0.0001
    r = upload(browser(world.grid_worker_a), csv_bytes(household_rows(3)))
    assert r.status_code == 413
    assert 'id="upload-error"' in html(r) and "a ledger may be at most" in html(r)
    assert not LedgerImport.objects.exists() and not stored(settings)


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("台账.xlsx", b"<!DOCTYPE html><html><body>login</body></html>", "web page"),
        ("台账.xlsx", b"PK\x03\x04 a broken zip", "damaged"),
    ],
)
def test_a_file_that_is_no_ledger_answers_400_naming_the_problem_and_stores_nothing(
    world: World, settings: Any, name: str, data: bytes, words: str
) -> None:
    r = upload(browser(world.grid_worker_a), data, name)
    assert r.status_code == 400
    assert words in html(r)
    assert not LedgerImport.objects.exists() and not stored(settings)


def test_an_upload_without_a_file_asks_for_one(world: World) -> None:
    r = browser(world.grid_worker_a).post(f"{LEDGER}upload/", {"token": new_token()})
    assert r.status_code == 400 and "Choose a ledger file" in html(r)


def test_a_supervisor_may_export_but_not_import(world: World) -> None:
    supervisor = browser(world.supervisor)
    page = html(supervisor.get(LEDGER))
    assert 'id="upload-form"' not in page and 'id="export-form"' in page
    r = upload(supervisor, csv_bytes(household_rows(1)))
    assert r.status_code == 403 and not LedgerImport.objects.exists()


def test_a_grid_worker_may_not_import_into_another_grid(world: World) -> None:
    r = upload(browser(world.grid_worker_a), csv_bytes(household_rows(1)), region=world.grid_b.code)
    assert r.status_code == 404 and not LedgerImport.objects.exists()


def test_rows_in_another_grid_are_errors(world: World) -> None:
    rows = household_rows(1) + household_rows(1, start=11, grid=world.grid_b.code)
    upload(browser(world.grid_worker_a), csv_bytes(rows))
    li = the_import()
    assert li.status == ImportStatus.FAILED_CHECK and li.rows_bad == 2


def test_the_same_upload_form_sent_twice_imports_the_ledger_once(world: World) -> None:
    worker = browser(world.grid_worker_a)
    first = upload(worker, csv_bytes(household_rows(1)), token="same-form")
    second = upload(worker, csv_bytes(household_rows(1)), token="same-form")
    assert LedgerImport.objects.count() == 1
    assert second.status_code == 302 and second["Location"] == first["Location"]


def test_a_commit_sent_twice_imports_once(world: World) -> None:
    worker = browser(world.grid_worker_a)
    upload(worker, csv_bytes(household_rows(1)))
    li = the_import()
    for _ in range(2):
        r = worker.post(f"{LEDGER}{li.uuid}/commit/", {"token": "commit-form"})
        assert r.status_code == 302
    assert Person.objects.count() == 2


def test_the_progress_fragment_follows_the_import_and_reloads_the_page_when_done(
    world: World,
) -> None:
    worker = browser(world.grid_worker_a)
    waiting = worker.get(f"{LEDGER}progress/?token=not-sent-yet")
    assert waiting.status_code == 200 and 'data-status=""' in html(waiting)

    upload(worker, csv_bytes(household_rows(1)), token="the-form")
    li = the_import()
    by_token = worker.get(f"{LEDGER}progress/?token=the-form")
    assert 'data-status="checked"' in html(by_token) and "HX-Refresh" not in by_token

    LedgerImport.objects.filter(pk=li.pk).update(status=ImportStatus.CHECKING, progress=5000)
    running = worker.get(f"{LEDGER}{li.uuid}/")
    assert 'hx-trigger="every 1s"' in html(running)
    polled = worker.get(f"{LEDGER}progress/?import={li.uuid}&reload=1")
    assert "5000 rows checked" in html(polled) and "HX-Refresh" not in polled

    LedgerImport.objects.filter(pk=li.pk).update(status=ImportStatus.CHECKED)
    polled = worker.get(f"{LEDGER}progress/?import={li.uuid}&reload=1")
    assert polled["HX-Refresh"] == "true"
    assert Client().get(f"{LEDGER}progress/?import={li.uuid}").status_code == 401


def test_the_people_list_is_exported_masked_and_logged(world: World) -> None:
    worker = world.grid_worker_a
    secret = id_number(serial=77)
    person(worker, name="王秀英", id_number=secret, phone="13812345678", person_type="floating")
    person(worker, name="李四", person_type="registered", tags=["elderly_alone"])
    client = browser(worker)

    r = client.get(f"{LEDGER}export/", {"format": "csv", "person_type": "floating"})
    assert r.status_code == 200 and r["X-Rows"] == "1"
    assert r["Content-Disposition"].startswith('attachment; filename="people-')
    body = body_of(r).decode("utf-8-sig")
    assert "王秀英" in body and "李四" not in body
    assert secret not in body and "13812345678" not in body and "138****5678" in body
    log = AccessLog.objects.get(kind="export")
    assert (log.user, log.count, log.channel, log.screen) == (
        worker,
        1,
        "web",
        "registry:ledger_export",
    )
    assert log.filter["person_type"] == "floating" and log.filter["format"] == "csv"

    tagged = client.get(
        f"{LEDGER}export/", {"format": "xlsx", "tag": "elderly_alone", "region": GRID_A}
    )
    book = openpyxl.load_workbook(io.BytesIO(body_of(tagged)), read_only=True)
    lines = str(list(book.worksheets[0].iter_rows(min_row=2, values_only=True)))
    assert "李四" in lines and "王秀英" not in lines

    refused = client.get(f"{LEDGER}export/", {"format": "csv", "region": world.grid_b.code})
    assert refused.status_code == 422 and 'id="export-error"' in html(refused)


def test_someone_without_base_data_gets_a_note(world: World) -> None:
    resident = browser(world.resident)
    assert 'id="no-access"' in html(resident.get(LEDGER))
    assert 'id="no-access"' in html(resident.get(f"{LEDGER}export/?format=csv"))
    assert Client().get(LEDGER).status_code == 302


def test_the_registry_navigation_links_to_the_ledgers(world: World) -> None:
    page = html(browser(world.grid_worker_a).get("/registry/search/"))
    assert f'href="{LEDGER}" id="ledger-link"' in page


def test_the_ledger_page_lists_imports_in_a_few_queries(
    world: World, django_assert_max_num_queries: Any, tmp_path: Path
) -> None:
    worker = browser(world.grid_worker_a)
    for n in range(3):
        upload(worker, csv_bytes(household_rows(1, start=1 + 2 * n)), f"ledger-{n}.csv")
    xlsx = write_xlsx(tmp_path / "x.xlsx", household_rows(1, start=40))
    upload(worker, xlsx.read_bytes(), "ledger.xlsx")
    with django_assert_max_num_queries(20):
        page = worker.get(LEDGER)
    assert html(page).count("data-import=") == 4
