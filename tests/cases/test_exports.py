"""The case list as xlsx and CSV: the list's filters, the user's scope, no formulas, masked
phones, and a cap with a clear message."""

from __future__ import annotations

import csv
import io
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from openpyxl import load_workbook

from gridgov.cases.exports import MAX_ROWS, safe_text
from gridgov.cases.models import Source
from tests.cases.factories import IN_GRID_B, report, walk
from tests.world import World

pytestmark = pytest.mark.django_db

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def browser(user: Any) -> Client:
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(user)
    return client


def csv_rows(response: Any) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")  # Excel reads UTF-8 with a byte order mark
    return list(csv.reader(io.StringIO(body[1:])))


def xlsx_rows(response: Any) -> list[list[Any]]:
    data = b"".join(response.streaming_content)
    sheet = load_workbook(io.BytesIO(data), read_only=True).active
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def column(rows: list[list[Any]], header: str) -> list[Any]:
    index = rows[0].index(header)
    return [row[index] for row in rows[1:]]


def test_the_csv_export_holds_the_filtered_cases_with_the_phones_masked(world: World) -> None:
    hotline = report(
        world.intake_operator,
        source=Source.HOTLINE,
        reporter_name="李先生",
        reporter_phone="13900001111",
    )
    report(world.grid_worker_a)

    response = browser(world.leader).get("/cases/export.csv?source=hotline")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="cases-')
    rows = csv_rows(response)
    assert rows[0][:3] == ["Case number", "State", "Category code"]
    assert column(rows, "Case number") == [hotline.number]
    assert column(rows, "Reporter's phone (masked)") == ["139****1111"]
    assert "13900001111" not in str(rows)
    assert column(rows, "Source") == ["Hotline"]


def test_the_xlsx_export_is_a_workbook_with_the_same_cases(world: World) -> None:
    dispatched = walk(report(world.grid_worker_a), world, "accept", "register", "dispatch")
    report(world.grid_worker_a)

    response = browser(world.leader).get("/cases/export.xlsx?state=dispatched")

    assert response.status_code == 200 and response["Content-Type"] == XLSX
    assert "private" in response["Cache-Control"]
    rows = xlsx_rows(response)
    assert column(rows, "Case number") == [dispatched.number]
    assert column(rows, "Lead unit") == ["迈皋桥街道办事处"]
    assert column(rows, "State") == ["Dispatched"]
    reported_at = column(rows, "Reported at")[0]
    local = dispatched.reported_at.astimezone(ZoneInfo("Asia/Shanghai"))
    assert reported_at.strftime("%Y-%m-%d %H:%M") == local.strftime("%Y-%m-%d %H:%M")
    assert isinstance(column(rows, "Latitude")[0], float)


def test_text_that_a_spreadsheet_would_run_as_a_formula_is_neutralised(world: World) -> None:
    for text in ('=HYPERLINK("http://x","点我")', "+1+2", "-3", "@SUM(A1)"):
        report(world.grid_worker_a, description=text, address=text)
    client = browser(world.leader)

    for rows in (
        csv_rows(client.get("/cases/export.csv")),
        xlsx_rows(client.get("/cases/export.xlsx")),
    ):
        descriptions = column(rows, "Description")
        assert len(descriptions) == 4
        assert all(str(d).startswith("'") for d in descriptions)
        assert all(str(a).startswith("'") for a in column(rows, "Address"))


def test_safe_text_prefixes_only_formula_starts() -> None:
    assert safe_text("=1+1") == "'=1+1"
    assert safe_text("\rx") == "'\rx"
    assert safe_text("井盖 = 丢失") == "井盖 = 丢失"
    assert safe_text("") == ""


def test_an_export_holds_only_the_cases_the_user_may_see(world: World) -> None:
    in_a = report(world.grid_worker_a)
    in_b = report(world.grid_worker_b, where=IN_GRID_B)

    rows = csv_rows(browser(world.grid_worker_a).get("/cases/export.csv"))

    assert column(rows, "Case number") == [in_a.number]
    assert in_b.number not in str(rows)
    assert csv_rows(browser(world.nobody).get("/cases/export.csv")) == [rows[0]]


def test_an_export_larger_than_the_cap_is_refused_with_a_clear_message(
    world: World, settings: Any
) -> None:
    settings.GRIDGOV_CASE_EXPORT_MAX_ROWS = 2
    for _ in range(3):
        report(world.grid_worker_a)
    client = browser(world.leader)

    for kind in ("xlsx", "csv"):
        response = client.get(f"/cases/export.{kind}")
        assert response.status_code == 422
        text = response.content.decode()
        assert "3 cases match these filters; an export holds at most 2." in text
        assert "Narrow the filters" in text
    assert client.get("/cases/export.csv?state=closed").status_code == 200
    assert MAX_ROWS == 100_000


def test_an_anonymous_visitor_must_log_in_to_export(world: World) -> None:
    response = Client().get("/cases/export.xlsx")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
