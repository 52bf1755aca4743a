"""Spreadsheets that are not what they claim, through the ledger (台账) import, the category
import and the division import: an xlsx zip bomb (declared and lying about its size), a workbook
claiming 1,048,576 rows, an .xls that is an HTML page, CSV with NUL bytes, CSV in an encoding
that is neither UTF-8 nor GBK, formula cells. A file that is no spreadsheet is a 4xx naming what
it seems to be, with nothing stored (no import row, no file kept); a real ledger with bad rows is
kept as a checked import with its problems (nothing changes in the registry); a formula is never
run: its cached value is read as text."""

from __future__ import annotations

import io
import json
import struct
import time
import zipfile
from collections.abc import Callable
from typing import Any

import pytest
import xlsxwriter
from django.core.files.uploadedfile import SimpleUploadedFile

from gridgov.cases.catalogue import catalogue_export
from gridgov.cases.models import Category
from gridgov.geo.models import Region
from gridgov.registry.models import Building, Household, LedgerImport, Person
from tests.cases.factories import category
from tests.hostile.conftest import (
    ApiClient,
    assert_nothing_stored,
    assert_refused,
    media_files,
)
from tests.registry.data.ledgers import HEADERS, csv_bytes, household_rows
from tests.world import World

pytestmark = pytest.mark.django_db

LEDGER = "/api/v1/registry/ledger/imports"
REGISTRY = (Person, Household, Building)


# --- crafted files -----------------------------------------------------------------------------


def ledger_xlsx(
    rows: list[list[str]], *, formula: str | None = None, last_row: bool = False
) -> bytes:
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"strings_to_numbers": False, "strings_to_formulas": False})
    sheet = book.add_worksheet("实有人口")
    for col, title in enumerate(HEADERS):
        sheet.write_string(0, col, title)
    for r, row in enumerate(rows, start=1):
        for col, value in enumerate(row):
            sheet.write_string(r, col, str(value))
    if formula:
        sheet.write_formula(1, 1, formula, None, "点我")
    if last_row:
        sheet.write_string(1_048_575, 1, "最后一行")
    book.close()
    return out.getvalue()


def zip_bomb(*, lie: bool = False) -> bytes:
    """An xlsx-shaped zip whose sheet unpacks to 64 MB of zeros (a few dozen kB packed); with
    ``lie`` its headers claim the sheet is 1,000 bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "[Content_Types].xml",
            '<Types><Override PartName="/xl/workbook.xml" ContentType="application/vnd.'
            'openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>',
        )
        z.writestr("xl/workbook.xml", "<workbook/>")
        z.writestr("xl/worksheets/sheet1.xml", b"\0" * (64 * 2**20))
    data = bytearray(out.getvalue())
    if lie:
        real = struct.pack("<I", 64 * 2**20)
        at = 0
        while (at := data.find(real, at)) != -1:
            data[at : at + 4] = struct.pack("<I", 1000)
            at += 4
    return bytes(data)


def claims_a_million_rows(data: bytes) -> bytes:
    """``data`` (an xlsx) with its sheet's dimension rewritten to A1:M1048576."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            body = source.read(item.filename)
            if item.filename.startswith("xl/worksheets/"):
                text = body.decode("utf-8")
                start = text.index('<dimension ref="') + len('<dimension ref="')
                end = text.index('"', start)
                body = (text[:start] + "A1:M1048576" + text[end:]).encode("utf-8")
            target.writestr(item, body)
    return out.getvalue()


def upload(client: ApiClient, name: str, data: bytes, **fields: Any) -> Any:
    return client.post(LEDGER, {"file": SimpleUploadedFile(name, data), **fields})


# --- the ledger import -------------------------------------------------------------------------

#: (id, file name, bytes, status, words of the message)
NOT_A_LEDGER: list[tuple[str, str, bytes, int, tuple[str, ...]]] = [
    ("xlsx-zip-bomb", "炸弹.xlsx", zip_bomb(), 400, ("zip bomb",)),
    (
        "xlsx-zip-bomb-lying-about-its-size",
        "炸弹.xlsx",
        zip_bomb(lie=True),
        400,
        ("cannot be read", "zip bomb"),
    ),
    (
        "xls-that-is-html",
        "台账.xls",
        b"<html><body><table><tr><td>\xe5\xa7\x93\xe5\x90\x8d</td></tr></table></body></html>",
        400,
        ("web page",),
    ),
    ("xlsx-that-is-a-pdf", "台账.xlsx", b"%PDF-1.7\n1 0 obj<<>>endobj", 400, ("PDF",)),
    (
        "csv-with-nul-bytes",
        "台账.csv",
        csv_bytes(household_rows(1)).replace(b",", b"\x00,", 3),
        400,
        ("binary",),
    ),
    (
        "csv-in-ebcdic",
        "台账.csv",
        "NAME,ADDR\nA,B\n".encode("cp500") * 20,
        400,
        ("neither UTF-8 nor GBK", "header"),
    ),
    ("empty-csv", "台账.csv", b"", 400, ("empty",)),
    ("zip-that-is-no-workbook", "台账.xlsx", b"PK\x03\x04" + b"\x00" * 60, 400, ("damaged",)),
]


@pytest.mark.parametrize(
    ("label", "name", "data", "status", "words"), NOT_A_LEDGER, ids=[n[0] for n in NOT_A_LEDGER]
)
def test_a_file_that_is_no_ledger_is_refused_naming_what_it_is_and_nothing_is_kept(
    world: World,
    api: Callable[[str], ApiClient],
    settings: Any,
    label: str,
    name: str,
    data: bytes,
    status: int,
    words: tuple[str, ...],
) -> None:
    settings.GRIDGOV_LEDGER_MAX_UNPACKED_MB = 8
    with assert_nothing_stored(LedgerImport, *REGISTRY):
        r = upload(api("grid_worker_a"), name, data)
    body = assert_refused(r, (status, 413, 422))
    assert any(w.lower() in body["message"].lower() for w in words), body["message"]
    assert not media_files()


def test_a_workbook_claiming_a_million_rows_is_read_for_the_rows_it_has(
    world: World, api: Callable[[str], ApiClient]
) -> None:
    data = claims_a_million_rows(ledger_xlsx(household_rows(1)))
    started = time.monotonic()
    with assert_nothing_stored(*REGISTRY, files=False):
        r = upload(api("grid_worker_a"), "台账.xlsx", data)
    assert r.status_code == 201, r.content
    assert r.json()["status"] == "checked" and r.json()["rows_total"] == 2
    assert time.monotonic() - started < 60  # a claim, not a million rows of work


def test_a_cell_in_the_last_row_of_a_sheet_is_one_row_not_a_million(
    world: World, api: Callable[[str], ApiClient]
) -> None:
    with assert_nothing_stored(*REGISTRY, files=False):
        r = upload(api("grid_worker_a"), "台账.xlsx", ledger_xlsx(household_rows(1), last_row=True))
    assert r.status_code == 201, r.content
    assert r.json()["rows_total"] == 3  # the two people and the one far below
    preview = api("grid_worker_a").get(f"{LEDGER}/{r.json()['uuid']}/preview").json()
    assert [row["row"] for row in preview["rows"]][-1] == 1_048_576


def test_a_nul_byte_deep_in_a_csv_fails_the_check_naming_its_row_and_changes_nothing(
    world: World, api: Callable[[str], ApiClient]
) -> None:
    data = csv_bytes(household_rows(400))
    data = data[:-40] + b"\x00" + data[-39:]
    with assert_nothing_stored(*REGISTRY, files=False):
        r = upload(api("grid_worker_a"), "台账.csv", data)
    assert r.status_code == 201, r.content
    assert r.json()["status"] == "failed_check"
    assert "801" in r.json()["message"]


@pytest.mark.parametrize(
    "formula",
    ['=HYPERLINK("http://evil.example/steal","点我")', "=cmd|' /C calc'!A0"],
    ids=["hyperlink-formula", "dde-formula"],
)
def test_a_formula_cell_is_never_run_its_cached_value_is_read_as_text(
    world: World, api: Callable[[str], ApiClient], formula: str
) -> None:
    client = api("grid_worker_a")
    with assert_nothing_stored(*REGISTRY, files=False):
        r = upload(client, "台账.xlsx", ledger_xlsx(household_rows(1), formula=formula))
    assert r.status_code == 201, r.content
    preview = client.get(f"{LEDGER}/{r.json()['uuid']}/preview").json()
    names = [row["cells"][1] for row in preview["rows"]]
    assert names[0] == "点我" and not any(str(n).startswith("=") for n in names)


def test_formula_like_text_in_a_csv_is_kept_as_text(
    world: World, api: Callable[[str], ApiClient]
) -> None:
    row = household_rows(1)[0]
    row[1] = "=1+1"
    client = api("grid_worker_a")
    r = upload(client, "台账.csv", csv_bytes([row]))
    assert r.status_code == 201 and r.json()["status"] == "checked", r.content
    commit = client.post(f"{LEDGER}/{r.json()['uuid']}/commit")
    assert commit.status_code == 200, commit.content
    assert Person.objects.get().name == "=1+1"  # exports neutralise it: see test_exports.py


@pytest.mark.parametrize(
    ("label", "mapping"),
    [
        ("deeply-nested", "[" * 100_000),
        ("nul-in-a-header", '{"\\u0000": "name"}'),
        ("not-json", "name=姓名"),
        ("a-list", '["name"]'),
    ],
    ids=["deeply-nested", "nul-in-a-header", "not-json", "a-list"],
)
def test_a_hostile_column_mapping_is_a_422_and_nothing_is_kept(
    world: World, api: Callable[[str], ApiClient], label: str, mapping: str
) -> None:
    with assert_nothing_stored(LedgerImport, *REGISTRY):
        r = upload(api("grid_worker_a"), "台账.csv", csv_bytes(household_rows(1)), mapping=mapping)
    assert_refused(r, 422, "mapping")
    assert not media_files()


def test_a_ledger_over_the_size_limit_is_a_413(
    world: World, api: Callable[[str], ApiClient], settings: Any
) -> None:
    settings.GRIDGOV_LEDGER_MAX_MB = 0.001
    with assert_nothing_stored(LedgerImport):
        r = upload(api("grid_worker_a"), "台账.csv", csv_bytes(household_rows(20)))
    assert_refused(r, 413, "MB")


# --- the category import -----------------------------------------------------------------------

CATEGORY_FILES: list[tuple[str, str, bytes, tuple[str, ...]]] = [
    ("xlsx-zip-bomb", "categories.xlsx", zip_bomb(), ("unpack",)),
    (
        "xlsx-zip-bomb-lying-about-its-size",
        "categories.xlsx",
        zip_bomb(lie=True),
        ("unpack", "damaged", "cannot be read"),
    ),
    (
        "xlsx-that-is-html",
        "categories.xlsx",
        b"<html><table><tr><td>x</td></tr></table></html>",
        ("neither",),
    ),
    ("json-nested-100000-deep", "categories.json", b"[" * 100_000, ("nested",)),
    (
        "json-with-nan",
        "categories.json",
        b'{"format": "gridgov-categories", "version": NaN}',
        ("catalogue", "JSON"),
    ),
]


@pytest.mark.parametrize(
    ("label", "name", "data", "words"), CATEGORY_FILES, ids=[c[0] for c in CATEGORY_FILES]
)
def test_a_category_file_that_is_no_catalogue_is_refused_and_nothing_is_stored(
    world: World,
    api: Callable[[str], ApiClient],
    label: str,
    name: str,
    data: bytes,
    words: tuple[str, ...],
) -> None:
    category()
    with assert_nothing_stored(Category):
        r = api("admin").post("/api/v1/categories/import", {"file": SimpleUploadedFile(name, data)})
    body = assert_refused(r, (400, 413, 422))
    assert any(w.lower() in body["message"].lower() for w in words), body["message"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("name_zh", "污水\x00井盖"), ("name_en", "cover\x00"), ("closing_criteria", "\x00")],
    ids=["nul-in-name_zh", "nul-in-name_en", "nul-in-closing_criteria"],
)
def test_a_nul_character_in_an_imported_category_is_refused_and_nothing_is_stored(
    world: World, api: Callable[[str], ApiClient], field: str, value: str
) -> None:
    category()
    rows = catalogue_export()
    rows[-1][field] = value
    doc = json.dumps({"format": "gridgov-categories", "version": 1, "categories": rows})
    before = list(Category.objects.values_list("name_zh", "name_en", "closing_criteria"))
    r = api("admin").post("/api/v1/categories/import", doc, content_type="application/json")
    body = assert_refused(r, 422)
    assert "control characters" in json.dumps(body["detail"], ensure_ascii=False)
    assert list(Category.objects.values_list("name_zh", "name_en", "closing_criteria")) == before


# --- the division import -----------------------------------------------------------------------

DIVISION_FILES: list[tuple[str, bytes, int, str]] = [
    (
        "nul-in-a-name",
        "code,name,level,parent_code\n320113003009,新\x00社区,community,320113003\n".encode(),
        422,
        "control characters",
    ),
    ("neither-utf8-nor-gbk", b"\xff\xff\xff,\xfe\n" * 10, 400, "neither UTF-8 nor GBK"),
    (
        "utf16",
        "code,name,level,parent_code\n320113003009,新社区,community,320113003\n".encode("utf-16"),
        400,
        "neither UTF-8 nor GBK",
    ),
    ("xlsx-named-csv", zip_bomb(), 400, "neither UTF-8 nor GBK"),
    ("unknown-header", "编码,名称\n1,2\n".encode(), 400, "unknown header"),
]


@pytest.mark.parametrize(
    ("label", "data", "status", "word"), DIVISION_FILES, ids=[d[0] for d in DIVISION_FILES]
)
def test_a_hostile_division_file_is_refused_and_no_region_is_stored(
    world: World, api: Callable[[str], ApiClient], label: str, data: bytes, status: int, word: str
) -> None:
    with assert_nothing_stored(Region):
        r = api("admin").post(
            "/api/v1/geo/regions/import-divisions",
            {"file": SimpleUploadedFile("divisions.csv", data)},
        )
    body = assert_refused(r, status)
    assert word.lower() in json.dumps(body, ensure_ascii=False).lower(), body
