"""The categories API: the catalogue for signed-in users, import and export for administrators."""

from __future__ import annotations

import io
import json
from typing import Any

import openpyxl
from django.test import Client

from gridgov.accounts import actions
from gridgov.accounts.models import Role
from gridgov.cases.catalogue import catalogue_export, catalogue_to_xlsx
from gridgov.cases.models import Category
from tests.world import World

API = "/api/v1/categories"


def client_of(user: Any) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def new_rows() -> list[dict[str, Any]]:
    return [
        {
            "scheme": "social",
            "code": "S0701",
            "parent": "S07",
            "class": "event",
            "name_zh": "噪声投诉",
            "name_en": "Noise complaint",
            "handle_limit": "1d",
        },
        {"scheme": "social", "code": "S07", "class": "event", "name_zh": "环境投诉"},
    ]


def test_a_grid_worker_lists_the_catalogue_with_limits_criteria_and_attributes(
    world: World, standard_categories: Any, django_assert_max_num_queries: Any
) -> None:
    client = client_of(world.grid_worker_a)
    with django_assert_max_num_queries(6):
        response = client.get(API)
    assert response.status_code == 200
    rows = response.json()
    assert len(rows) == Category.objects.count()
    cover = next(r for r in rows if (r["scheme"], r["code"]) == ("legacy", "0102"))
    assert cover["class"] == "component"
    assert (cover["name_zh"], cover["name_en"], cover["name"]) == (
        "污水井盖",
        "Sewage manhole cover",
        "Sewage manhole cover",
    )
    assert cover["major"]["name_zh"] == "公用设施"
    assert cover["limits"]["handle_limit"] == "2h"
    assert cover["limits"]["register_limit"] == ""
    assert cover["effective_limits"] == {
        "register_limit": "30m",  # the major's
        "urgent_register_limit": "10m",
        "sign_limit": "30m",
        "handle_limit": "2h",
        "check_limit": "1h",
    }
    assert "井盖" in cover["closing_criteria"]
    assert cover["service_code"] == "legacy:0102"
    damage = cover["attributes"][0]
    assert (damage["code"], damage["datatype"], damage["required"]) == (
        "damage",
        "singlevaluelist",
        True,
    )
    assert {"key": "missing", "name": "缺失"} in damage["values"]


def test_the_list_filters_by_scheme_class_level_and_text(
    world: World, standard_categories: Any
) -> None:
    client = client_of(world.resident)
    events = client.get(f"{API}?scheme=legacy&class=event&level=minor").json()
    assert events and {(r["scheme"], r["class"]) for r in events} == {("legacy", "event")}
    assert all(r["major"] is not None for r in events)
    found = client.get(f"{API}?scheme=legacy&q=0102").json()
    assert {(r["code"], r["display_code"]) for r in found} == {("0102", "0102"), ("E0102", "0102")}
    named = client.get(f"{API}?q=邻里").json()
    assert [r["code"] for r in named] == ["S0101"]
    Category.objects.filter(scheme="social", code="S0101").update(is_active=False)
    assert client.get(f"{API}?q=邻里&active=true").json() == []
    assert client.get(f"{API}?scheme=nonsense").status_code == 422


def test_one_category_is_found_by_scheme_and_stored_code(
    world: World, standard_categories: Any
) -> None:
    client = client_of(world.grid_worker_b)
    garbage = client.get(f"{API}/legacy/E0102").json()
    assert (garbage["name_zh"], garbage["display_code"], garbage["class"]) == (
        "暴露垃圾",
        "0102",
        "event",
    )
    assert garbage["limits"]["handle_limit"] == "4h"
    missing = client.get(f"{API}/legacy/9999")
    assert missing.status_code == 404
    assert set(missing.json()) == {"message", "detail"}


def test_the_catalogue_needs_a_login(db: None) -> None:
    assert Client().get(API).status_code == 401


def test_an_administrator_imports_after_a_dry_run(world: World, standard_categories: Any) -> None:
    client = client_of(world.admin)
    dry = client.post(
        f"{API}/import?dry_run=true", json.dumps(new_rows()), content_type="application/json"
    )
    assert dry.status_code == 200, dry.json()
    assert (dry.json()["created"], dry.json()["dry_run"], dry.json()["written"]) == (2, True, False)
    assert not Category.objects.filter(scheme="social", code="S07").exists()

    done = client.post(
        f"{API}/import",
        json.dumps({"categories": new_rows()}),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="import-1",
    )
    assert done.status_code == 200, done.json()
    assert (done.json()["created"], done.json()["written"]) == (2, True)
    assert Category.objects.get(scheme="social", code="S0701").parent.code == "S07"
    again = client.post(f"{API}/import", json.dumps(new_rows()), content_type="application/json")
    assert (again.json()["created"], again.json()["changed"]) == (0, 0)


def test_an_administrator_uploads_an_xlsx_workbook(world: World, standard_categories: Any) -> None:
    rows = catalogue_export(scheme="social")
    rows[0]["handle_limit"] = "3d"  # S01 disputes
    upload = io.BytesIO(catalogue_to_xlsx(rows))
    upload.name = "categories.xlsx"
    client = client_of(world.admin)
    dry = client.post(f"{API}/import", {"file": upload, "dry_run": "true"})
    assert (dry.json()["changed"], dry.json()["written"]) == (1, False)
    assert Category.objects.get(scheme="social", code="S01").handle_limit == "5d"
    upload.seek(0)
    response = client.post(f"{API}/import", {"file": upload})
    assert response.status_code == 200, response.json()
    assert (response.json()["changed"], response.json()["created"]) == (1, 0)
    assert response.json()["changes"][0]["fields"] == ["handle_limit"]
    assert Category.objects.get(scheme="social", code="S01").handle_limit == "3d"


def test_a_bad_file_answers_422_naming_row_and_field_and_writes_nothing(
    world: World, standard_categories: Any
) -> None:
    rows = new_rows()
    rows[1]["urgency_levels"] = ["normal", "whenever"]
    response = client_of(world.admin).post(
        f"{API}/import", json.dumps(rows), content_type="application/json"
    )
    assert response.status_code == 422
    errors = response.json()["detail"]["errors"]
    assert [(e["row"], e["field"], e["code"]) for e in errors] == [
        (2, "urgency_levels", "social:S07")
    ]
    assert "whenever" in errors[0]["message"]
    assert not Category.objects.filter(scheme="social", code__startswith="S07").exists()


def test_a_file_that_is_no_catalogue_answers_422(world: World, db: None) -> None:
    upload = io.BytesIO(b"%PDF-1.7 not a catalogue")
    upload.name = "categories.xlsx"
    response = client_of(world.admin).post(f"{API}/import", {"file": upload})
    assert response.status_code == 422
    assert "PDF" in response.json()["message"]


def test_a_grid_worker_may_not_import_or_export(world: World, standard_categories: Any) -> None:
    client = client_of(world.grid_worker_a)
    response = client.post(f"{API}/import", json.dumps(new_rows()), content_type="application/json")
    assert response.status_code == 403
    assert not Category.objects.filter(scheme="social", code="S07").exists()
    assert client.get(f"{API}/export").status_code == 403


def test_an_administrator_of_one_street_may_export_but_not_change_the_shared_catalogue(
    world: World, standard_categories: Any
) -> None:
    street_admin = actions.user_create(username="street_admin", password=None)
    actions.role_assign(
        user=street_admin, role=Role.ADMINISTRATOR, region=world.regions["320113003"]
    )
    client = client_of(street_admin)
    response = client.post(f"{API}/import", json.dumps(new_rows()), content_type="application/json")
    assert response.status_code == 403
    assert "every region" in response.json()["message"]
    assert client.get(f"{API}/export").status_code == 200


def test_the_export_downloads_xlsx_or_json(world: World, standard_categories: Any) -> None:
    client = client_of(world.admin)
    response = client.get(f"{API}/export?format=xlsx&scheme=legacy")
    assert response.status_code == 200
    assert response["Content-Type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert 'filename="categories-legacy-' in response["Content-Disposition"]
    book = openpyxl.load_workbook(io.BytesIO(response.content), read_only=True)
    assert book.sheetnames == ["categories", "attributes"]
    response = client.get(f"{API}/export")
    assert response["Content-Type"].startswith("application/json")
    doc = json.loads(response.content)
    assert doc["format"] == "gridgov-categories"
    assert len(doc["categories"]) == Category.objects.count()
