"""Ledger export: within the user's scope, masked, formula-safe, logged."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import openpyxl
import pytest

from gridgov.core.errors import DomainError, PermissionDenied
from gridgov.privacy.errors import ValidationFailed
from gridgov.privacy.models import AccessLog
from gridgov.registry import actions
from gridgov.registry.ledger.exporter import ExportFile, ledger_export
from tests.registry import factories
from tests.world import World

pytestmark = pytest.mark.django_db


def table(export: ExportFile) -> list[list[str]]:
    try:
        text = export.handle.read().decode("utf-8-sig")
    finally:
        export.close()
    return list(csv.reader(io.StringIO(text)))


def sheet(export: ExportFile) -> list[tuple[Any, ...]]:
    try:
        book = openpyxl.load_workbook(io.BytesIO(export.handle.read()), read_only=True)
    finally:
        export.close()
    return [tuple(r) for r in book.worksheets[0].iter_rows(values_only=True)]


@pytest.fixture
def people(world: World) -> dict[str, Any]:
    """Two people in grid A (one tagged as a key person), one in grid B."""
    home_a = factories.home(world.grid_worker_a)
    zhang = factories.person(
        world.grid_worker_a,
        household=home_a,
        name="张三",
        relation="head",
        id_number=factories.id_number(date(1950, 5, 1)),
        phone="13912340001",
    )
    actions.person_tag_add(actor=world.grid_worker_a, person=zhang, tag="elderly_alone")
    actions.person_tag_add(actor=world.grid_worker_a, person=zhang, tag="petitioner")
    tricky = factories.person(
        world.grid_worker_a,
        household=home_a,
        name='=HYPERLINK("http://x")',
        person_type="floating",
        id_number=factories.id_number(date(1990, 1, 2)),
    )
    li = factories.person(
        world.grid_worker_b,
        household=factories.home(world.grid_worker_b, where=factories.IN_GRID_B),
        name="李四",
        id_number=factories.id_number(date(1980, 3, 4)),
    )
    return {"zhang": zhang, "tricky": tricky, "li": li}


def test_people_are_exported_masked_within_the_user_s_scope(
    world: World, people: dict[str, Any]
) -> None:
    export = ledger_export(actor=world.grid_worker_a, kind="people", fmt="csv")
    rows = table(export)
    assert export.count == 2 and len(rows) == 3 and export.file_name.endswith(".csv")
    text = str(rows)
    zhang = people["zhang"]
    assert zhang.id_number not in text and zhang.phone not in text
    assert zhang.id_number_mask in text and zhang.phone_mask in text
    assert "李四" not in text, "grid B's people stay in grid B"
    by_name = {r[1]: r for r in rows[1:]}
    assert "张三" in by_name and by_name["张三"][3] == "1950-05-01"


def test_an_export_is_logged_with_its_filter_and_count(
    world: World, people: dict[str, Any]
) -> None:
    export = ledger_export(
        actor=world.grid_worker_a,
        kind="people",
        filter={"person_type": "floating", "q": "HYPER"},
        fmt="xlsx",
        channel="web",
        screen="registry:people",
    )
    export.close()
    log = AccessLog.objects.get(kind="export")
    assert log.user == world.grid_worker_a and log.count == 1 and log.channel == "web"
    assert log.subject_type == "person" and log.screen == "registry:people"
    assert log.filter == {
        "kind": "people",
        "format": "xlsx",
        "person_type": "floating",
        "q": "HYPER",
    }
    assert "id_number" in log.fields


def test_text_that_looks_like_a_formula_stays_text(world: World, people: dict[str, Any]) -> None:
    rows = sheet(ledger_export(actor=world.grid_worker_a, kind="people", fmt="xlsx"))
    names = [r[1] for r in rows[1:]]
    assert '\'=HYPERLINK("http://x")' in names
    csv_rows = table(ledger_export(actor=world.grid_worker_a, kind="people", fmt="csv"))
    assert '\'=HYPERLINK("http://x")' in [r[1] for r in csv_rows[1:]]


def test_sensitive_tags_are_exported_only_to_those_cleared_for_them(
    world: World, people: dict[str, Any]
) -> None:
    mine = table(ledger_export(actor=world.grid_worker_a, kind="people", fmt="csv"))
    tags = {r[1]: r[-2] for r in mine[1:]}  # the tags column is the last but one
    assert "独居老人" in tags["张三"] and "重点信访人员" in tags["张三"]
    seen = table(ledger_export(actor=world.supervisor, kind="people", fmt="csv"))
    supervisor_tags = {r[1]: r[-2] for r in seen[1:]}
    assert supervisor_tags["张三"] == "独居老人"
    with pytest.raises(ValidationFailed):
        ledger_export(actor=world.supervisor, kind="people", filter={"tag": "petitioner"})
    only = table(
        ledger_export(
            actor=world.grid_worker_a, kind="people", fmt="csv", filter={"tag": "petitioner"}
        )
    )
    assert [r[1] for r in only[1:]] == ["张三"]


def test_buildings_households_and_organisations_export_too(
    world: World, people: dict[str, Any]
) -> None:
    actions.organisation_create(
        actor=world.grid_worker_a,
        name="和畅便利店",
        kind="shop",
        contact_phone="13955556666",
        lon=factories.IN_GRID_A[1],
        lat=factories.IN_GRID_A[0],
    )
    buildings = sheet(ledger_export(actor=world.grid_worker_a, kind="buildings"))
    assert len(buildings) == 2 and buildings[1][6] == "320113003001001"
    households = table(ledger_export(actor=world.grid_worker_a, kind="households", fmt="csv"))
    assert len(households) == 2 and households[1][2] == "张三" and households[1][8] == "2"
    shops = table(ledger_export(actor=world.grid_worker_a, kind="organisations", fmt="csv"))
    assert shops[1][1] == "和畅便利店" and "13955556666" not in str(shops)
    assert "139****6666" in shops[1]
    assert AccessLog.objects.filter(kind="export").count() == 3


def test_a_bad_filter_or_kind_is_refused(world: World) -> None:
    with pytest.raises(ValidationFailed):
        ledger_export(actor=world.grid_worker_a, kind="people", filter={"shoe_size": 42})
    with pytest.raises(ValidationFailed):
        ledger_export(actor=world.grid_worker_a, kind="people", filter={"sex": "often"})
    with pytest.raises(ValidationFailed):
        ledger_export(actor=world.grid_worker_a, kind="cases")
    with pytest.raises(ValidationFailed):
        ledger_export(actor=world.grid_worker_a, kind="people", fmt="pdf")
    assert not AccessLog.objects.exists()


def test_who_sees_no_base_data_exports_nothing(world: World) -> None:
    for persona in ("unit_handler", "resident", "nobody"):
        with pytest.raises(PermissionDenied):
            ledger_export(actor=getattr(world, persona), kind="people")


def test_an_export_larger_than_allowed_is_refused_not_cut(
    world: World, people: dict[str, Any], settings: Any
) -> None:
    settings.GRIDGOV_REGISTRY_EXPORT_MAX_ROWS = 1
    with pytest.raises(DomainError) as refused:
        ledger_export(actor=world.grid_worker_a, kind="people")
    assert refused.value.status == 422 and refused.value.detail["count"] == 2
    assert not AccessLog.objects.exists()
