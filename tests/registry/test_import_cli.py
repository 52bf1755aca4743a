"""``gridgov registry import|commit|imports|export`` as a named user."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from gridgov.privacy.models import AccessLog
from gridgov.registry.ledger import importer
from gridgov.registry.models import ImportStatus, LedgerImport, Person
from tests.registry.data.ledgers import HEADERS, household_rows, write_csv, write_xlsx
from tests.world import World

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.VAR_DIR = tmp_path / "var"


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("registry", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_a_grid_worker_imports_a_ledger_from_the_command_line(
    world: World, tmp_path: Path, english: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "PROGRESS_EVERY", 2)
    monkeypatch.setattr(importer, "BATCH", 2)
    rows = household_rows(2)
    path = write_xlsx(tmp_path / "ledger.xlsx", rows)
    out = run("import", str(path), "--as", "grid_worker_a", "--progress-every", "2")
    assert "公民身份号码 → id_number" in out
    assert "  2 rows checked\n  4 rows checked\n" in out
    assert "  2 / 4 rows imported\n  4 / 4 rows imported\n" in out
    assert "4 rows imported: 4 people added" in out
    assert Person.objects.count() == 4
    assert rows[0][3] not in out and rows[0][4] not in out, "no personal data on the screen"


def test_a_ledger_with_a_bad_row_exits_1_with_the_error_sheet(
    world: World, tmp_path: Path, english: None
) -> None:
    rows = household_rows(2)
    rows[1][3] = rows[1][3][:17] + ("0" if rows[1][3][17] != "0" else "1")
    path = write_csv(tmp_path / "ledger.csv", rows)
    copy = tmp_path / "problems.xlsx"
    out = io.StringIO()
    with pytest.raises(CommandError) as failed:
        call_command(
            "registry",
            "import",
            str(path),
            "--as",
            "grid_worker_a",
            "--errors",
            str(copy),
            stdout=out,
        )
    assert failed.value.returncode == 1
    text = out.getvalue()
    assert "row 3, 公民身份号码" in text and f"error sheet: {copy.resolve()}" in text
    assert rows[1][3] not in text
    sheet = openpyxl.load_workbook(copy, read_only=True).worksheets[0]
    assert [r[0] for r in sheet.iter_rows(min_row=2, values_only=True)] == [3]
    assert not Person.objects.exists()


def test_a_dry_run_imports_nothing_and_commit_imports_it_later(
    world: World, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "ledger.csv", household_rows(1))
    out = run("import", str(path), "--as", "grid_worker_a", "--dry-run")
    li = LedgerImport.objects.get()
    assert li.status == ImportStatus.CHECKED and str(li.uuid) in out
    assert not Person.objects.exists()
    run("commit", str(li.uuid), "--as", "grid_worker_a")
    assert Person.objects.count() == 2
    with pytest.raises(CommandError):
        run("commit", str(li.uuid), "--as", "grid_worker_a")
    with pytest.raises(CommandError):
        run("commit", str(li.uuid), "--as", "grid_worker_b")


def test_a_mapping_can_be_given_as_json(world: World, tmp_path: Path) -> None:
    headers = ("居民", *HEADERS[2:])
    rows = [[r[1], *r[2:]] for r in household_rows(1)]
    path = write_csv(tmp_path / "ledger.csv", rows, headers=headers)
    with pytest.raises(CommandError):
        run("import", str(path), "--as", "grid_worker_a")
    mapping = {"居民": "name", "公民身份号码": "id_number", "小区": "estate", "楼栋": "building"}
    mapping |= {"房号": "room", "网格编码": "grid_code", "与户主关系": "relation"}
    (tmp_path / "mapping.json").write_text(json.dumps(mapping, ensure_ascii=False), "utf-8")
    run("import", str(path), "--as", "grid_worker_a", "--mapping", f"@{tmp_path / 'mapping.json'}")
    assert Person.objects.count() == 2


def test_imports_lists_what_the_user_may_see(world: World, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "ledger.csv", household_rows(1))
    run("import", str(path), "--as", "grid_worker_a", "--dry-run")
    mine = run("imports", "--as", "grid_worker_a", "--json")
    row = json.loads(mine.strip())
    assert row["status"] == "checked" and row["rows"] == 2 and row["file_name"] == "ledger.csv"
    assert run("imports", "--as", "grid_worker_b") == ""


def test_who_may_not_import_is_told_so(world: World, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "ledger.csv", household_rows(1))
    with pytest.raises(CommandError):
        run("import", str(path), "--as", "supervisor")
    with pytest.raises(CommandError, match="no active user"):
        run("import", str(path), "--as", "somebody")
    assert not LedgerImport.objects.exists()


def test_export_writes_a_masked_csv_and_logs_it(world: World, tmp_path: Path) -> None:
    rows = household_rows(2)
    run("import", str(write_csv(tmp_path / "ledger.csv", rows)), "--as", "grid_worker_a")
    target = tmp_path / "people.csv"
    out = run(
        "export",
        "--as",
        "grid_worker_a",
        "--kind",
        "people",
        "--format",
        "csv",
        "--person-type",
        "registered",
        "-o",
        str(target),
    )
    assert "4 people written" in out
    data = target.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert len(table) == 5
    assert all(r[3] not in data.decode("utf-8-sig") for r in rows)
    log = AccessLog.objects.get(kind="export")
    assert log.channel == "cli" and log.count == 4 and log.user == world.grid_worker_a
    assert log.filter["person_type"] == "registered" and log.filter["kind"] == "people"
