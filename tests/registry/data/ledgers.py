"""Ledgers (台账) for the import tests, written on the fly: CSV (UTF-8 or GBK) and xlsx.

``ledger_rows`` makes rows of a plausible community ledger with valid synthetic id numbers
(tests.registry.factories.id_number); ``write_csv`` and ``write_xlsx`` write them under a
header row. Column titles are those real ledgers use (公民身份号码, 联系电话 …).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import xlsxwriter

from tests.registry.factories import id_number

#: A grid worker's household ledger, as many communities keep it.
HEADERS = (
    "序号",
    "姓名",
    "性别",
    "公民身份号码",
    "联系电话",
    "民族",
    "人口类型",
    "与户主关系",
    "小区",
    "楼栋",
    "单元",
    "房号",
    "网格编码",
)

GRID_A = "320113003001001"
GRID_B = "320113003001002"


def person(
    n: int,
    *,
    name: str = "",
    sex: str = "男",
    birth: date = date(1980, 1, 1),
    id_text: str | None = None,
    phone: str = "",
    person_type: str = "户籍人口",
    relation: str = "户主",
    estate: str = "和畅园",
    building: str = "1栋",
    unit: str = "1",
    room: str = "101",
    grid: str = GRID_A,
) -> list[str]:
    """One row in the order of ``HEADERS``."""
    if id_text is None:
        id_text = id_number(birth, sex="male" if sex == "男" else "female", serial=500 + n)
    return [
        str(n),
        name or f"居民{n:03d}",
        sex,
        id_text,
        phone or f"139{n:08d}",
        "汉族",
        person_type,
        relation,
        estate,
        building,
        unit,
        room,
        grid,
    ]


def household_rows(
    count: int, *, start: int = 1, grid: str = GRID_A, estate: str = "和畅园"
) -> list[list[str]]:
    """``count`` households of two (a head and a spouse), one per room of building 1栋."""
    rows: list[list[str]] = []
    n = start
    for k in range(count):
        room = str(101 + k)
        rows.append(person(n, room=room, grid=grid, estate=estate, birth=date(1970, 1, 1 + k % 28)))
        rows.append(
            person(
                n + 1,
                sex="女",
                relation="配偶",
                room=room,
                grid=grid,
                estate=estate,
                birth=date(1972, 2, 1 + k % 28),
            )
        )
        n += 2
    return rows


def csv_bytes(
    rows: Sequence[Sequence[Any]],
    *,
    headers: Sequence[str] = HEADERS,
    encoding: str = "utf-8",
    title: str | None = None,
) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    if title:
        writer.writerow([title])
    writer.writerow(headers)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


def write_csv(path: Path, rows: Sequence[Sequence[Any]], **kwargs: Any) -> Path:
    path.write_bytes(csv_bytes(rows, **kwargs))
    return path


def write_xlsx(
    path: Path, rows: Sequence[Sequence[Any]], *, headers: Sequence[str] = HEADERS
) -> Path:
    workbook = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False})
    sheet = workbook.add_worksheet("实有人口")
    for col, title in enumerate(headers):
        sheet.write_string(0, col, title)
    for r, row in enumerate(rows, start=1):
        for col, value in enumerate(row):
            sheet.write_string(r, col, str(value))
    workbook.close()
    return path
