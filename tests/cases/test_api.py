"""The cases API: report, list, to-do, detail, actions with versions and idempotency keys."""

from __future__ import annotations

import io
import uuid
from typing import Any

import pytest
from django.test import Client
from PIL import Image

from gridgov.cases.models import Case, CaseEvent, PhotoUpload
from tests.cases.factories import IN_GRID_A, category, report, walk
from tests.world import World

pytestmark = pytest.mark.django_db


def client_of(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, "JPEG")
    return out.getvalue()


def test_a_grid_worker_reports_through_the_api_with_a_photo(
    world: World, tmp_path: Any, settings: Any
) -> None:
    settings.MEDIA_ROOT = str(tmp_path)
    category()
    api = client_of(world.grid_worker_a)
    upload = api.post("/api/v1/cases/photos", {"file": io.BytesIO(jpeg()), "keep_gps": "false"})
    assert upload.status_code == 201, upload.content
    photo = upload.json()["id"]
    r = api.post(
        "/api/v1/cases",
        {
            "category": "01002",
            "description": "井盖缺失",
            "lat": IN_GRID_A[0],
            "lon": IN_GRID_A[1],
            "photos": [photo],
        },
        content_type="application/json",
        headers={"Idempotency-Key": "report-1"},
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["state"] == "reported" and body["grid"]["code"] == "320113003001001"
    assert len(body["photos"]) == 1 and body["timeline"][0]["action"] == "report"
    assert not PhotoUpload.objects.exists()
    again = api.post(
        "/api/v1/cases",
        {
            "category": "01002",
            "description": "井盖缺失",
            "lat": IN_GRID_A[0],
            "lon": IN_GRID_A[1],
            "photos": [photo],
        },
        content_type="application/json",
        headers={"Idempotency-Key": "report-1"},
    )
    assert again.status_code == 201 and again.json()["number"] == body["number"]
    assert Case.objects.count() == 1
    thumb = api.get(body["photos"][0]["thumbnail_url"])
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/jpeg"
    assert client_of(world.grid_worker_b).get(body["photos"][0]["url"]).status_code == 404


def test_the_case_lists_only_the_actions_the_caller_may_take(world: World) -> None:
    case = walk(report(world.grid_worker_a), world, "accept", "register")
    seen = client_of(world.dispatcher).get(f"/api/v1/cases/{case.number}").json()
    assert [a["action"] for a in seen["allowed_actions"]][:1] == ["dispatch"]
    by_worker = client_of(world.grid_worker_a).get(f"/api/v1/cases/{case.number}").json()
    assert "dispatch" not in [a["action"] for a in by_worker["allowed_actions"]]


def test_an_action_with_a_stale_version_answers_409_and_changes_nothing(world: World) -> None:
    case = walk(report(world.grid_worker_a), world, "accept", "register")
    api = client_of(world.dispatcher)
    r = api.post(
        f"/api/v1/cases/{case.number}/actions/dispatch",
        {"version": 1, "lead_unit": "street-office-003"},
        content_type="application/json",
    )
    assert (r.status_code == 409 and "reload" in r.json()["message"]) or r.status_code == 409
    assert CaseEvent.objects.filter(case=case).count() == 3
    ok = api.post(
        f"/api/v1/cases/{case.number}/actions/dispatch",
        {"version": 3, "lead_unit": "street-office-003"},
        content_type="application/json",
    )
    assert ok.status_code == 200 and ok.json()["state"] == "dispatched"


def test_another_grids_worker_cannot_see_the_case_at_all(world: World) -> None:
    case = report(world.grid_worker_a)
    assert client_of(world.grid_worker_b).get(f"/api/v1/cases/{case.number}").status_code == 404
    listed = client_of(world.grid_worker_b).get("/api/v1/cases").json()
    assert listed["count"] == 0


def test_the_list_filters_and_the_todo_counts(world: World) -> None:
    first = report(world.grid_worker_a)
    report(world.grid_worker_a, description="路灯不亮")
    walk(first, world, "accept")
    api = client_of(world.intake_operator)
    assert api.get("/api/v1/cases?state=accepted").json()["count"] == 1
    assert api.get("/api/v1/cases?q=路灯").json()["count"] == 1
    todo = api.get("/api/v1/cases/todo").json()
    assert todo["counts"]["total"] == 2
    assert api.get("/api/v1/cases?limit=100000").status_code == 422


def test_unknown_photo_ids_are_refused_and_nothing_is_stored(world: World) -> None:
    category()
    r = client_of(world.grid_worker_a).post(
        "/api/v1/cases",
        {
            "category": "01002",
            "description": "x",
            "lat": IN_GRID_A[0],
            "lon": IN_GRID_A[1],
            "photos": [str(uuid.uuid4())],
        },
        content_type="application/json",
    )
    assert r.status_code == 422 and "photo" in r.json()["message"]
    assert not Case.objects.exists()


def test_photos_uploaded_but_never_attached_are_deleted_after_a_day(
    world: World, tmp_path: Any, settings: Any
) -> None:
    from datetime import timedelta

    from django.core.files.storage import default_storage
    from django.utils import timezone

    from gridgov.cases.jobs import uploads_prune

    settings.MEDIA_ROOT = str(tmp_path)
    api = client_of(world.grid_worker_a)
    api.post("/api/v1/cases/photos", {"file": io.BytesIO(jpeg())})
    upload = PhotoUpload.objects.get()
    assert default_storage.exists(upload.name)
    assert uploads_prune() == 0
    assert uploads_prune(now=timezone.now() + timedelta(hours=25)) == 1
    assert not PhotoUpload.objects.exists()
    assert not default_storage.exists(upload.name)
    assert not default_storage.exists(upload.thumbnail_name)
