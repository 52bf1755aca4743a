"""The fast intake path: a report's reads happen before its write transaction, its answer is
rendered before it writes, and the catalogue and role assignments come from per-process caches
that follow every change at once."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.test import Client

from gridgov.accounts.actions import role_assign, role_revoke, token_create
from gridgov.accounts.models import Role, RoleAssignment, Unit, UnitKind
from gridgov.cases.models import Case, CaseEvent, CaseSequence, Category, RoutingRule
from gridgov.core.models import IdempotencyRecord
from tests.cases.factories import IN_GRID_A, category
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


def test_a_report_refused_while_writing_leaves_no_case_no_record_and_only_a_number_gap(
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
    assert ok.json()["number"].endswith("-00002")  # 00001 was taken by the failed one
    assert CaseSequence.objects.get().last == 2


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
