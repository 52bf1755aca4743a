"""``gridgov categories``: load-standard, import FILE [--dry-run], export FILE [--scheme S]."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from gridgov.cases.catalogue import catalogue_from_xlsx
from gridgov.cases.models import Category


def run(*args: str) -> str:
    out = StringIO()
    call_command("categories", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_load_standard_prints_the_counts_and_a_second_run_changes_nothing(
    db: None, english: None
) -> None:
    out = run("load-standard", "--dry-run")
    assert "232 created, 0 changed, 0 unchanged (232 rows read)" in out
    assert "dry run: nothing was written" in out
    assert not Category.objects.exists()
    out = run("load-standard")
    assert out.startswith("232 created, 0 changed")
    assert "created legacy:0102 污水井盖" in out
    assert Category.objects.count() == 232
    assert run("load-standard").startswith("0 created, 0 changed, 232 unchanged")


def test_export_then_import_of_json_and_xlsx_is_a_no_op(
    standard_categories: Any, tmp_path: Path, english: None
) -> None:
    json_file, xlsx_file = tmp_path / "all.json", tmp_path / "legacy.xlsx"
    assert "232 categories with" in run("export", str(json_file))
    assert f"written to {json_file}" in run("export", str(json_file))
    assert run("export", str(xlsx_file), "--scheme", "legacy").startswith("113 categories")
    assert len(json.loads(json_file.read_text(encoding="utf-8"))["categories"]) == 232
    assert {r["scheme"] for r in catalogue_from_xlsx(xlsx_file.read_bytes())} == {"legacy"}
    assert run("import", str(json_file)).startswith("0 created, 0 changed, 232 unchanged")
    assert run("import", str(xlsx_file), "--dry-run").startswith("0 created, 0 changed")


def test_a_bad_file_lists_its_errors_with_row_numbers_and_writes_nothing(
    standard_categories: Any, tmp_path: Path, english: None
) -> None:
    rows = [
        {"scheme": "legacy", "code": "0199", "parent": "01", "name_zh": "测试"},
        {"scheme": "legacy", "code": "0198", "parent": "01", "name_zh": "测试", "order": -1},
        {"scheme": "legacy", "code": "0102", "handle_limit": "soon"},
    ]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    out = StringIO()
    with pytest.raises(CommandError, match="2 errors; nothing was written"):
        call_command("categories", "import", str(path), stdout=out)
    text = out.getvalue()
    assert "row 2 (legacy:0198) order:" in text
    assert "row 3 (legacy:0102) handle_limit: 'soon' is not a time limit" in text
    assert not Category.objects.filter(code="0199").exists()
    assert Category.objects.get(scheme="legacy", code="0102").handle_limit == "2h"


def test_it_refuses_unknown_extensions_and_unreadable_files(
    db: None, tmp_path: Path, english: None
) -> None:
    with pytest.raises(CommandError, match=r"name the file \.json or \.xlsx"):
        run("export", str(tmp_path / "categories.csv"))
    with pytest.raises(CommandError, match="cannot read"):
        run("import", str(tmp_path / "missing.json"))
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"name,code\n")
    with pytest.raises(CommandError, match="not an xlsx workbook"):
        run("import", str(broken))
