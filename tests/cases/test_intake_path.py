"""The fast intake path: a report's reads happen before its write transaction, its answer is
rendered before it writes, and the catalogue and role assignments come from per-process caches
that follow every change at once."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from gridgov.accounts.actions import role_assign, role_revoke, token_create
from gridgov.accounts.models import Role, RoleAssignment, Unit, UnitKind
from gridgov.cases.models import Case, CaseEvent, CaseSequence, Category, RoutingRule
from gridgov.core.models import IdempotencyRecord
from tests.cases.factories import IN_GRID_A, category
from tests.threads import answer_in_thread
from tests.world import World

pytestmark = pytest.mark.django_db


def _post(client: Client, key: str, token: str = "", **body: Any) -> Any:
    payload = {"category": "01002", "description": "井盖缺失", "lat": IN_GRID_A[0]}
    payload |= {"lon": IN_GRID_A[1], **body}
    headers = {"Idempotency-Key": key}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return client.post("/api/v1/cases", payload, content_type="application/json", headers=headers)


def _worker_token(world: World) -> str:
    _, raw = token_create(user=world.grid_worker_a, name="phone")
    return raw


def test_the_report_answer_is_the_case_as_the_detail_endpoint_shows_it(world: World) -> None:
    category()
    token = _worker_token(world)
    created = _post(Client(), "k-1", token)
    assert created.status_code == 201, created.content
    body = created.json()
    shown = Client().get(
        f"/api/v1/cases/{body['number']}", headers={"Authorization": f"Bearer {token}"}
    )
    assert shown.status_code == 200
    expected = shown.json()
    assert set(body) == set(expected)
    for key in ("number", "uuid", "state", "grid", "category", "suggested_unit", "due_at"):
        assert body[key] == expected[key], key
    assert [e["action"] for e in body["timeline"]] == [e["action"] for e in expected["timeline"]]
    assert body["allowed_actions"] == expected["allowed_actions"]


def test_a_retried_report_answers_the_first_body_byte_for_byte_and_stores_one_case(
    world: World,
) -> None:
    category()
    token = _worker_token(world)
    first = _post(Client(), "same-key", token)
    again = _post(Client(), "same-key", token)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert Case.objects.count() == 1 and CaseEvent.objects.count() == 1
    assert IdempotencyRecord.objects.get().status_code == 201


def test_a_report_refused_while_writing_leaves_no_case_no_record_and_at_most_a_number_gap(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    category()
    token = _worker_token(world)
    from gridgov.cases import notices
    from gridgov.core.errors import Conflict

    def refuse(case: Case) -> None:
        raise Conflict("the write failed")

    monkeypatch.setattr(notices, "after_report", refuse)
    failed = _post(Client(), "k-fail", token)
    assert failed.status_code == 409
    assert not Case.objects.exists() and not IdempotencyRecord.objects.exists()
    monkeypatch.undo()
    ok = _post(Client(), "k-fail", token)  # the same key may be used again after an error
    assert ok.status_code == 201
    if connection.vendor == "postgresql":  # the number was taken before the write: a gap
        assert ok.json()["number"].endswith("-00002")
        assert CaseSequence.objects.get().last == 2
    else:  # SQLite takes it inside the write transaction, rolled back with it: no gap
        assert ok.json()["number"].endswith("-00001")
        assert CaseSequence.objects.get().last == 1


def test_a_deactivated_category_is_refused_by_the_very_next_report(world: World) -> None:
    category()
    token = _worker_token(world)
    assert _post(Client(), "k-1", token).status_code == 201
    Category.objects.filter(code="01002").update(is_active=False)  # bulk: no signal …
    from gridgov.cases.cache import catalogue_changed

    catalogue_changed()  # … so the writer says so, as the catalogue import does
    assert _post(Client(), "k-2", token).status_code == 422
    cat = Category.objects.get(code="01002")
    cat.is_active = True
    cat.save()  # a save is noticed by itself
    assert _post(Client(), "k-3", token).status_code == 201


def test_a_new_routing_rule_and_a_deactivated_unit_change_the_suggestion_at_once(
    world: World,
) -> None:
    cat = category()
    token = _worker_token(world)
    unit = Unit.objects.create(code="WATER", name="自来水公司", kind=UnitKind.UTILITY)
    RoutingRule.objects.create(category=cat, region_code="320113", unit=unit)
    first = _post(Client(), "k-1", token)
    assert first.json()["suggested_unit"]["code"] == "WATER"
    unit.is_active = False
    unit.save()
    second = _post(Client(), "k-2", token)
    assert (second.json()["suggested_unit"] or {}).get("code") != "WATER"


def test_a_revoked_role_stops_the_next_report(world: World) -> None:
    category()
    token = _worker_token(world)
    assert _post(Client(), "k-1", token).status_code == 201
    for assignment in RoleAssignment.objects.filter(user=world.grid_worker_a):
        role_revoke(assignment=assignment)
    assert _post(Client(), "k-2", token).status_code == 403
    role_assign(user=world.grid_worker_a, role=Role.GRID_WORKER, region=world.grid_a)
    assert _post(Client(), "k-3", token).status_code == 201


def test_an_idempotency_key_of_another_user_is_not_a_replay(world: World) -> None:
    category()
    mine = _worker_token(world)
    _, theirs = token_create(user=world.grid_leader, name="phone")
    key = str(uuid.uuid4())
    assert _post(Client(), key, mine).status_code == 201
    other = _post(Client(), key, theirs)
    assert other.status_code == 201 and "Idempotent-Replayed" not in other
    assert Case.objects.count() == 2


def test_a_report_reads_its_grid_and_only_inserts_in_its_write(world: World) -> None:
    category()
    token = _worker_token(world)
    assert _post(Client(), "k-0", token).status_code == 201  # the token is now remembered
    with CaptureQueriesContext(connection) as captured:
        assert _post(Client(), "k-1", token).status_code == 201
    # (inside the test's transaction: its BEGIN and COMMIT become a savepoint, and PostgreSQL
    # sets and restores the bound on the wait for the key around the claim)
    statements = [
        q["sql"].split()[0]
        for q in captured.captured_queries
        if "lock_timeout" not in q["sql"] and "SAVEPOINT" not in q["sql"]
    ]
    # no token, no look-up of the key before the work: the grid, then only inserts — the
    # number, the case and its event (one statement on PostgreSQL), the key's record
    expected = ["SELECT", "INSERT", "WITH", "INSERT"]
    if connection.vendor == "sqlite":
        expected = ["SELECT", "INSERT", "INSERT", "INSERT", "INSERT"]
    assert statements == expected, statements


def test_a_retry_of_a_finished_report_is_answered_even_if_the_report_would_now_be_refused(
    world: World,
) -> None:
    category()
    token = _worker_token(world)
    first = _post(Client(), "k-1", token)
    Category.objects.filter(code="01002").update(is_active=False)
    from gridgov.cases.cache import catalogue_changed

    catalogue_changed()
    assert _post(Client(), "k-2", token).status_code == 422  # a new report is refused …
    again = _post(Client(), "k-1", token)  # … the retry of the first still answers
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert Case.objects.count() == 1


def test_the_same_key_with_another_report_answers_422_and_stores_nothing_more(
    world: World,
) -> None:
    category()
    token = _worker_token(world)
    assert _post(Client(), "k-1", token).status_code == 201
    other = _post(Client(), "k-1", token, description="路灯不亮")
    assert other.status_code == 422
    assert Case.objects.count() == CaseEvent.objects.count() == IdempotencyRecord.objects.count()
    assert Case.objects.count() == 1


def test_the_answer_carries_the_stored_number_everywhere(world: World) -> None:
    category()
    token = _worker_token(world)
    body = _post(Client(), "k-1", token).json()
    stored = Case.objects.get()
    assert body["number"] == stored.number and "#" not in json.dumps(body)
    assert body["uuid"] == str(stored.uuid) and body["timeline"][0]["version"] == 1


# --- concurrency (PostgreSQL) ---------------------------------------------------------------

on_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="concurrent requests need PostgreSQL (the SQLite test database lives in memory)",
)


@on_postgres
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_a_report_writes_in_one_statement_and_a_retry_is_replayed(
    world: World,
) -> None:
    category()
    token = _worker_token(world)
    assert _post(Client(), "k-0", token).status_code == 201  # the token is now remembered
    with CaptureQueriesContext(connection) as captured:
        first = _post(Client(), "k-1", token)
    assert first.status_code == 201
    # the grid, the number (a statement of its own, not waiting for the disk), then the key's
    # record, the case and its event together: no BEGIN, no COMMIT
    assert [q["sql"].split()[0] for q in captured.captured_queries] == ["SELECT", "WITH", "WITH"]
    again = _post(Client(), "k-1", token)
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    case = Case.objects.get(number=first.json()["number"])
    assert CaseEvent.objects.filter(case=case).count() == 1
    assert Case.objects.count() == 2 and IdempotencyRecord.objects.count() == 2


def _in_thread(token: str, key: str, results: list[Any], **body: Any) -> threading.Thread:
    return answer_in_thread(lambda: _post(Client(), key, token, **body), results)


@on_postgres
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_reports_with_the_same_key_at_once_store_one_case_and_answer_alike(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    category()
    token = _worker_token(world)
    from gridgov.cases import notices

    entered, go = threading.Event(), threading.Event()
    original = notices.after_report

    def first_waits(case: Case) -> None:  # inside the write, after the inserts, before the key
        if not entered.is_set():
            entered.set()
            go.wait(timeout=10)
        original(case)

    monkeypatch.setattr(notices, "after_report", first_waits)
    results: list[Any] = []
    # urgent reports tell the dispatchers, so they are written in a transaction
    first = _in_thread(token, "at-once", results, urgency="urgent")
    assert entered.wait(timeout=10)
    second = _in_thread(token, "at-once", results, urgency="urgent")
    second.join(timeout=15)  # the second finishes while the first still waits
    go.set()
    first.join(timeout=15)
    assert sorted(r.status_code for r in results) == [201, 201]
    assert results[0].content == results[1].content
    assert sorted(r.has_header("Idempotent-Replayed") for r in results) == [False, True]
    assert Case.objects.count() == CaseEvent.objects.count() == 1
    assert IdempotencyRecord.objects.count() == 1


@on_postgres
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_report_waits_a_bounded_time_for_a_request_holding_its_key_then_answers_409(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from gridgov.core import idempotency

    category()
    token = _worker_token(world)
    monkeypatch.setattr(idempotency, "IN_PROGRESS_WAIT_SECONDS", 0.2)
    key_hash = hashlib.sha256(b"held").hexdigest()
    holding, release = threading.Event(), threading.Event()

    def hold_the_key() -> None:  # another request's claim, not committed yet
        try:
            with transaction.atomic():
                IdempotencyRecord.objects.create(
                    user=world.grid_worker_a,
                    key_hash=key_hash,
                    fingerprint="other",
                    method="POST",
                    path="/api/v1/cases",
                    expires_at=timezone.now() + timedelta(hours=1),
                )
                holding.set()
                release.wait(timeout=10)
                transaction.set_rollback(True)  # that request failed
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_key)
    holder.start()
    assert holding.wait(timeout=10)
    try:
        waited = _post(Client(), "held", token)
    finally:
        release.set()
        holder.join(timeout=15)
    assert waited.status_code == 409
    assert not Case.objects.exists()
    assert _post(Client(), "held", token).status_code == 201  # the holder gave the key up


@on_postgres
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_the_number_is_taken_before_the_write_so_a_failed_write_leaves_a_gap(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    category()
    token = _worker_token(world)
    from gridgov.cases import actions
    from gridgov.core.errors import Conflict

    def refuse(*rows: Any) -> None:
        raise Conflict("the write failed")

    monkeypatch.setattr(actions, "insert_together", refuse)
    assert _post(Client(), "k-1", token).status_code == 409
    monkeypatch.undo()
    ok = _post(Client(), "k-1", token)
    assert ok.status_code == 201 and ok.json()["number"].endswith("-00002")
    assert Case.objects.count() == 1 and CaseSequence.objects.get().last == 2


def test_only_an_urgent_report_tells_anyone_so_others_need_no_transaction(world: World) -> None:
    # report_saves_alone relies on this: a report written in one statement skips after_report
    from gridgov.cases import notices
    from gridgov.cases.actions import report_build, report_plan

    category()
    plan = report_plan(
        actor=world.grid_worker_a,
        category="01002",
        description="井盖缺失",
        lat=IN_GRID_A[0],
        lon=IN_GRID_A[1],
    )
    rows = report_build(plan, "320113-20261124-00001")
    with CaptureQueriesContext(connection) as captured:
        notices.after_report(rows.case)
    assert captured.captured_queries == []
    assert not rows.case.emergency


@pytest.mark.django_db(transaction=True)  # foreign keys are checked when a transaction commits
def test_a_category_removed_by_another_process_answers_409_and_stores_nothing(
    world: World,
) -> None:
    """Another process's change reaches this one's catalogue within
    GRIDGOV_INDEX_CHECK_SECONDS; a report in between must not fail with a 500."""
    category()
    rare = category("01099", "临时类别")
    token = _worker_token(world)
    assert _post(Client(), "k-0", token, category="01099").status_code == 201
    Case.objects.filter(category=rare).delete()
    cases = Case.objects.count()
    with connection.cursor() as cursor:  # as another process would, unseen by this one's cache
        cursor.execute("DELETE FROM cases_categoryattribute WHERE category_id = %s", [rare.pk])
        cursor.execute("DELETE FROM cases_routingrule WHERE category_id = %s", [rare.pk])
        cursor.execute("DELETE FROM cases_category WHERE id = %s", [rare.pk])
    answer = _post(Client(), "k-1", token, category="01099")
    assert answer.status_code == 409, answer.content
    # (in Chinese, the default language)
    assert answer.json()["message"] == "本次上报的网格、类别或照片刚刚发生变动，请重试"
    assert Case.objects.count() == cases
    assert _post(Client(), "k-2", token).status_code == 201  # and the next report goes in
