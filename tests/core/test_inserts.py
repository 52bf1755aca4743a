"""One-row INSERTs built once per process (gridgov/core/inserts.py) write what ``save()`` would."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from gridgov.cases.actions import ReportPlan, report_build, report_plan
from gridgov.cases.models import Case, CaseEvent
from gridgov.core.inserts import _plain_types, insert_row, insert_together, prepare_insert
from gridgov.core.models import IdempotencyRecord
from gridgov.registry.models import Person
from tests.cases.factories import IN_GRID_A, category
from tests.world import World

pytestmark = pytest.mark.django_db

KEY_COLUMNS = ("user_id", "key_hash")


def _record(world: World, key_hash: str = "a" * 64) -> IdempotencyRecord:
    return IdempotencyRecord(
        user=world.grid_worker_a,
        key_hash=key_hash,
        fingerprint="f" * 64,
        method="POST",
        path="/api/v1/cases",
        status_code=201,
        content_type="application/json",
        body=b"\x00sealed\xff",
        expires_at=timezone.now() + timedelta(hours=24),
    )


def _plan(world: World) -> ReportPlan:
    category()
    return report_plan(
        actor=world.grid_worker_a,
        category="01002",
        description="井盖缺失",
        lat=IN_GRID_A[0],
        lon=IN_GRID_A[1],
        attributes={},
    )


def _report(world: World, number: str, plan: ReportPlan | None = None) -> tuple[Case, CaseEvent]:
    rows = report_build(plan or _plan(world), number)
    return rows.case, rows.event


def _stored(model: type, pk: int, *differ: str) -> dict[str, object]:
    row = model.objects.filter(pk=pk).values().get()
    for name in ("id", "uuid", "number", "case_id", "created_at", "updated_at", *differ):
        row.pop(name, None)
    return row


def test_a_case_and_its_event_are_stored_exactly_as_save_stores_them(world: World) -> None:
    plan = _plan(world)
    saved_case, saved_event = _report(world, "320113-20261124-00001", plan)
    saved_case.save(force_insert=True)
    saved_event.save(force_insert=True)
    fast_case, fast_event = _report(world, "320113-20261124-00002", plan)
    assert insert_row(fast_case) == fast_case.pk and fast_case.pk is not None
    assert insert_row(fast_event) == fast_event.pk
    assert fast_event.case_id == fast_case.pk  # taken from the case saved just before
    assert _stored(Case, fast_case.pk) == _stored(Case, saved_case.pk)
    assert _stored(CaseEvent, fast_event.pk) == _stored(CaseEvent, saved_event.pk)
    stored = Case.objects.get(pk=fast_case.pk)
    assert (stored.street_code, stored.community_code) == ("320113003", "320113003001")


def test_a_binary_body_and_times_round_trip(world: World) -> None:
    record = _record(world)
    insert_row(record, on_conflict=KEY_COLUMNS)
    stored = IdempotencyRecord.objects.get(pk=record.pk)
    assert bytes(stored.body) == b"\x00sealed\xff"
    assert stored.expires_at == record.expires_at and stored.created_at is not None


def test_a_row_that_breaks_the_unique_key_is_kept_out_and_answers_none(world: World) -> None:
    assert insert_row(_record(world), on_conflict=KEY_COLUMNS) is not None
    again = _record(world)
    assert insert_row(again, on_conflict=KEY_COLUMNS) is None
    assert again.pk is None and again._state.adding
    assert IdempotencyRecord.objects.count() == 1


def test_a_prepared_insert_takes_a_value_set_later_and_runs_one_statement(world: World) -> None:
    case, event = _report(world, "pending")
    case_insert, event_insert = prepare_insert(case), prepare_insert(event)
    case_insert.set("number", "320113-20261124-00007")
    with CaptureQueriesContext(connection) as captured:
        case_insert.execute()
        event_insert.execute()
    assert [q["sql"].split()[0] for q in captured.captured_queries] == ["INSERT", "INSERT"]
    assert Case.objects.get(pk=case.pk).number == "320113-20261124-00007" == case.number
    assert CaseEvent.objects.get(pk=event.pk).case_id == case.pk


def test_a_field_with_its_own_conversion_is_never_passed_through(world: World) -> None:
    # an encrypted text column is a TextField subclass: its values must go through the field
    assert _plain_types(Person._meta.get_field("id_number")) == frozenset()
    assert str in _plain_types(Case._meta.get_field("description"))
    assert int in _plain_types(Case._meta.get_field("grid"))


def test_rows_inserted_together_take_the_earlier_rows_ids(world: World) -> None:
    case, event = _report(world, "320113-20261124-00011")
    with CaptureQueriesContext(connection) as captured:
        ids = insert_together(prepare_insert(case), prepare_insert(event))
    assert ids == [case.pk, event.pk] and event.case_id == case.pk
    assert CaseEvent.objects.get(pk=event.pk).case_id == case.pk
    # one statement on PostgreSQL, one per row elsewhere
    assert len(captured.captured_queries) == (1 if connection.vendor == "postgresql" else 2)


def test_when_the_first_row_is_kept_out_none_of_the_rows_is_inserted(world: World) -> None:
    insert_row(_record(world), on_conflict=KEY_COLUMNS)
    case, event = _report(world, "320113-20261124-00012")
    taken = prepare_insert(_record(world), on_conflict=KEY_COLUMNS)
    assert insert_together(taken, prepare_insert(case), prepare_insert(event)) is None
    assert case.pk is None and event.pk is None
    assert not Case.objects.exists() and not CaseEvent.objects.exists()
    assert IdempotencyRecord.objects.count() == 1
