"""Spreadsheet formula injection: values starting with =, +, -, @, a tab or a carriage return,
stored through the real actions (API, web, ledger import), come out of EVERY export as text that
no spreadsheet evaluates: in CSV with an apostrophe before them, in xlsx as string cells (never
formulas) with the apostrophe or Excel's quote prefix. One test per exporter, each reading the
exported file back (csv / openpyxl). The rule lives in ``gridgov.formats.cells``."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from gridgov.cases.catalogue import catalogue_export
from gridgov.formats.cells import FORMULA_START, needs_quote, safe_text
from gridgov.geo.models import Region
from tests.cases.factories import IN_GRID_A, category
from tests.hostile.conftest import ApiClient
from tests.registry.data.ledgers import csv_bytes, household_rows
from tests.world import World

pytestmark = pytest.mark.django_db

LAT, LON = IN_GRID_A

#: Values a spreadsheet would run, one per formula start (and the tab/CR variants).
EVIL = {
    "equals": '=HYPERLINK("http://x","点我")',
    "plus": "+cmd|'/C calc'!A0",
    "minus": "-2+3+cmd|'/C calc'!A0",
    "at": "@SUM(1+1)*cmd|'/C calc'!A0",
    "tab": "\t=1+1",
    "carriage-return": "\r=2+2",
}


def is_neutral(cell: Any, quoted: bool = False) -> bool:
    """A cell read back is text that no spreadsheet evaluates."""
    text = str(cell)
    return text.startswith("'") or quoted or not needs_quote(text)


def csv_cells(content: bytes) -> list[str]:
    text = content.decode("utf-8-sig")
    return [cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row]


def xlsx_cells(content: bytes) -> Iterable[Any]:
    book = openpyxl.load_workbook(io.BytesIO(content))
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            yield from row


def assert_csv_neutral(content: bytes, values: Iterable[str]) -> None:
    cells = csv_cells(content)
    for value in values:
        assert "'" + value in cells, (value, [c for c in cells if value.strip() in c])
    assert all(is_neutral(c) for c in cells), [c for c in cells if not is_neutral(c)]


def assert_xlsx_neutral(content: bytes, values: Iterable[str]) -> None:
    cells = [c for c in xlsx_cells(content) if c.value is not None]
    assert all(c.data_type != "f" for c in cells), "a formula cell was written"
    texts = {str(c.value) for c in cells}
    for value in values:
        assert "'" + value in texts or any(c.value == value and c.quotePrefix for c in cells), value
    unsafe = [c.value for c in cells if not is_neutral(c.value, bool(c.quotePrefix))]
    assert not unsafe, unsafe


def body_of(response: Any) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return bytes(response.content)


def test_the_shared_rule_quotes_every_formula_start_and_nothing_else() -> None:
    for value in EVIL.values():
        assert safe_text(value) == "'" + value
    assert set(FORMULA_START) >= {"=", "+", "-", "@", "\t", "\r"}
    for plain in ("井盖 = 丢失", "1+1", "", "'=already quoted", "32.05", " =1"):
        assert safe_text(plain) == plain


# --- the case list: CSV and xlsx --------------------------------------------------------------


@pytest.fixture
def evil_cases(world: World, api: Callable[[str], ApiClient]) -> list[str]:
    """Cases reported through the API whose description, address and reporter hold the values."""
    category()
    for value in EVIL.values():
        r = api("intake_operator").post_json(
            "/api/v1/cases",
            {
                "category": "01002",
                "description": value,
                "address": value,
                "reporter_name": value[:60],
                "source": "hotline",
                "lat": LAT,
                "lon": LON,
            },
        )
        assert r.status_code == 201, r.content
    return [v.strip() and v for v in EVIL.values()]


def stored_values(values: Iterable[str]) -> list[str]:
    """What the actions keep: text trimmed of surrounding whitespace."""
    return [v.strip() for v in values]


def test_the_case_list_csv_export_neutralises_every_formula(
    world: World, web: Any, evil_cases: list[str]
) -> None:
    response = web("dispatcher").get("/cases/export.csv")
    assert response.status_code == 200
    assert_csv_neutral(body_of(response), stored_values(evil_cases))


def test_the_case_list_xlsx_export_neutralises_every_formula(
    world: World, web: Any, evil_cases: list[str]
) -> None:
    response = web("dispatcher").get("/cases/export.xlsx")
    assert response.status_code == 200
    assert_xlsx_neutral(body_of(response), stored_values(evil_cases))


# --- the registry ledger export: every kind, CSV and xlsx --------------------------------------


@pytest.fixture
def evil_registry(world: World, api: Callable[[str], ApiClient]) -> list[str]:
    client = api("grid_worker_a")
    names = []
    for i, value in enumerate(stored_values(EVIL.values())):
        b = client.post_json(
            "/api/v1/registry/buildings",
            {"lat": LAT + i * 0.001, "lon": LON, "estate": value, "number": f"{i}栋"},
        )
        assert b.status_code == 201, b.content
        h = client.post_json(
            "/api/v1/registry/households", {"grid": world.grid_a.code, "number": value}
        )
        assert h.status_code == 201, h.content
        p = client.post_json(
            "/api/v1/registry/people",
            {"name": value, "grid": world.grid_a.code, "ethnicity": value[:20]},
        )
        assert p.status_code == 201, p.content
        o = client.post_json(
            "/api/v1/registry/organisations",
            {"name": value, "kind": "company", "lat": LAT, "lon": LON, "legal_rep": value[:100]},
        )
        assert o.status_code == 201, o.content
        names.append(value)
    return names


@pytest.mark.parametrize("kind", ["people", "households", "buildings", "organisations"])
@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_the_registry_export_neutralises_every_formula(
    world: World, api: Callable[[str], ApiClient], evil_registry: list[str], kind: str, fmt: str
) -> None:
    r = api("grid_worker_a").get("/api/v1/registry/ledger/export", {"kind": kind, "format": fmt})
    assert r.status_code == 200, body_of(r)[:300]
    content = body_of(r)
    wanted = evil_registry
    if fmt == "csv":
        assert_csv_neutral(content, wanted)
    else:
        assert_xlsx_neutral(content, wanted)


def test_the_web_ledger_export_neutralises_every_formula(
    world: World, web: Any, evil_registry: list[str]
) -> None:
    response = web("grid_worker_a").get("/registry/ledger/export/", {"format": "csv"})
    assert response.status_code == 200
    assert_csv_neutral(body_of(response), evil_registry)


# --- the error sheet of a ledger check ---------------------------------------------------------


def test_the_ledger_error_sheet_neutralises_the_values_it_quotes(
    world: World, api: Callable[[str], ApiClient]
) -> None:
    rows = household_rows(len(EVIL))
    values = stored_values(EVIL.values())
    for row, value in zip(rows, values, strict=False):
        row[3] = value  # the id number column: each row a problem quoting its value
        row[5] = value  # and an ethnicity that is kept as it is
    client = api("grid_worker_a")
    r = client.post(
        "/api/v1/registry/ledger/imports",
        {"file": SimpleUploadedFile("台账.csv", csv_bytes(rows))},
    )
    assert r.status_code == 201 and r.json()["error_sheet"], r.content
    sheet = client.get(f"/api/v1/registry/ledger/imports/{r.json()['uuid']}/errors")
    assert sheet.status_code == 200
    content = body_of(sheet)
    cells = [c for c in xlsx_cells(content) if c.value is not None]
    assert all(c.data_type != "f" for c in cells)
    assert all(is_neutral(c.value) for c in cells), [
        c.value for c in cells if not is_neutral(c.value)
    ]


# --- the category catalogue --------------------------------------------------------------------


def test_the_category_export_keeps_formulas_as_quoted_text_that_imports_back_unchanged(
    world: World, api: Callable[[str], ApiClient]
) -> None:
    category()
    rows = catalogue_export()
    values = stored_values(EVIL.values())
    for row in rows:
        if row["code"] == "01002":
            row["name_zh"] = values[0]
            row["name_en"] = values[1]
            row["closing_criteria"] = values[3]
    doc = {"format": "gridgov-categories", "version": 1, "categories": rows}
    assert api("admin").post_json("/api/v1/categories/import", doc).status_code == 200
    r = api("admin").get("/api/v1/categories/export", {"format": "xlsx"})
    assert r.status_code == 200
    content = body_of(r)
    cells = [c for c in xlsx_cells(content) if c.value is not None]
    assert all(c.data_type != "f" for c in cells)
    for value in (values[0], values[1], values[3]):
        matching = [c for c in cells if c.value == value]
        assert matching and all(c.quotePrefix for c in matching), value
    again = api("admin").post(
        "/api/v1/categories/import",
        {"file": SimpleUploadedFile("categories.xlsx", content)},
        QUERY_STRING="dry_run=true",
    )
    assert again.status_code == 200, again.content
    assert again.json()["changed"] == 0  # the text came back as it went out


def test_the_category_json_export_keeps_the_text_as_it_is(
    world: World, api: Callable[[str], ApiClient]
) -> None:
    """JSON is no spreadsheet: the values travel as they are, to import back unchanged."""
    category()
    rows = catalogue_export()
    rows[-1]["name_en"] = EVIL["equals"]
    doc = {"format": "gridgov-categories", "version": 1, "categories": rows}
    assert api("admin").post_json("/api/v1/categories/import", doc).status_code == 200
    exported = json.loads(body_of(api("admin").get("/api/v1/categories/export")))
    assert EVIL["equals"] in [c["name_en"] for c in exported["categories"]]


# --- the CSV of `gridgov regions locate-file` --------------------------------------------------


def test_the_locate_file_output_neutralises_the_grid_names_it_adds(
    world: World, tmp_path: Path
) -> None:
    Region.objects.filter(code=world.grid_a.code).update(name=EVIL["equals"])
    source = tmp_path / "points.csv"
    source.write_text(f"name,lat,lon\n井盖,{LAT},{LON}\n负数,-33.9,18.4\n", encoding="utf-8")
    out = tmp_path / "located.csv"
    call_command("regions", "locate-file", str(source), "-o", str(out), stdout=io.StringIO())
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig"), newline="")))
    assert rows[1][:3] == ["井盖", str(LAT), str(LON)]  # the ledger's own cells as they came
    assert rows[2][1] == "-33.9"  # a negative latitude stays a number
    assert rows[1][rows[0].index("grid_name")] == "'" + EVIL["equals"]
