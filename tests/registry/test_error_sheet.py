"""The error sheet a ledger check offers for download."""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl
import pytest

from gridgov.registry.ledger.error_sheet import Problem, write_error_sheet

pytestmark = pytest.mark.usefixtures("english")

MAPPING = {"序号": None, "姓名": "name", "公民身份号码": "id_number", "联系电话": "phone"}


def read_back(target: Path | io.BytesIO) -> list[tuple[object, ...]]:
    workbook = openpyxl.load_workbook(target, read_only=True)
    rows = [tuple(row) for row in workbook.active.iter_rows(values_only=True)]
    workbook.close()
    return rows


def test_it_lists_row_column_value_and_problem_with_personal_values_masked(
    tmp_path: Path,
) -> None:
    path = tmp_path / "errors.xlsx"
    problems = [
        Problem(3, "公民身份号码", "320113199001010018", "The check character is wrong."),
        Problem(4, "联系电话", "13912345678", "A mobile number has 11 digits."),
        Problem(5, "姓名", "", "The name is missing."),
    ]
    assert write_error_sheet(problems, path, headers=MAPPING) == 3
    rows = read_back(path)
    assert rows[0] == ("Row", "Column", "Value", "Problem")
    assert rows[1] == (3, "公民身份号码 (C)", "3201**********0018", "The check character is wrong.")
    assert rows[2] == (4, "联系电话 (D)", "139****5678", "A mobile number has 11 digits.")
    assert rows[3] == (5, "姓名 (B)", "", "The name is missing.")


def test_it_masks_a_problem_named_by_its_field_rather_than_a_header(tmp_path: Path) -> None:
    path = tmp_path / "errors.xlsx"
    problem = Problem(7, "id_number", "320113199001010018", "Duplicate id number (row 3).")
    write_error_sheet([problem], path, headers=MAPPING)
    assert read_back(path)[1] == (7, "id_number", "3201**********0018", problem.message)


def test_it_never_lets_a_ledger_value_run_as_a_formula(tmp_path: Path) -> None:
    path = tmp_path / "errors.xlsx"
    evil = '=HYPERLINK("http://example.invalid","click")'
    write_error_sheet(
        [Problem(2, "姓名", evil, "@SUM(1)"), Problem(3, "+cmd", "-1", "ok")],
        path,
        headers={"姓名": "name", "+cmd": None},
    )
    rows = read_back(path)
    assert rows[1] == (2, "姓名 (A)", "'" + evil, "'@SUM(1)")
    assert rows[2] == (3, "'+cmd (B)", "'-1", "ok")
    workbook = openpyxl.load_workbook(path)
    assert all(
        cell.data_type == "s"
        for row in workbook.active.iter_rows(min_row=2, min_col=2)
        for cell in row
    )


def test_it_writes_a_sheet_with_only_the_titles_when_there_is_nothing_wrong() -> None:
    target = io.BytesIO()
    assert write_error_sheet(iter(()), target, headers=MAPPING) == 0
    target.seek(0)
    assert read_back(target) == [("Row", "Column", "Value", "Problem")]


def test_it_streams_many_problems(tmp_path: Path) -> None:
    path = tmp_path / "errors.xlsx"
    problems = (Problem(n, "联系电话", f"139{n:08d}", "bad") for n in range(2, 20_002))
    assert write_error_sheet(problems, path, headers=MAPPING) == 20_000
    rows = read_back(path)
    assert len(rows) == 20_001
    assert rows[-1] == (20_001, "联系电话 (D)", "139****0001", "bad")
