"""The calendar API: days and deadlines for everyone logged in, overrides for administrators."""

from __future__ import annotations

from collections.abc import Generator
from datetime import datetime

import pytest
from django.test import Client

from gridgov.core import worktime
from tests.world import World


@pytest.fixture(autouse=True)
def _fresh_calendar() -> Generator[None, None, None]:
    worktime.invalidate_local()
    yield
    worktime.invalidate_local()


def client_as(world: World, persona: str) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(world.users[persona])
    return client


def test_it_lists_days_with_their_kind_and_source(world: World) -> None:
    r = client_as(world, "grid_worker_a").get(
        "/api/v1/core/calendar/days?start=2026-12-31&end=2027-01-03"
    )
    assert r.status_code == 200
    days = {d["date"]: d for d in r.json()}
    assert days["2026-12-31"]["source"] == "chinese-calendar"
    assert days["2026-12-31"]["covered"] is True
    assert days["2027-01-01"] | {} == {
        "date": "2027-01-01",
        "kind": "workday",
        "source": "fallback",
        "working": True,
        "hours": "08:30-12:00,13:30-17:30",
        "name": "",
        "note": "",
        "covered": False,
    }
    assert days["2027-01-02"]["kind"] == "weekend"


def test_it_refuses_more_than_400_days(world: World) -> None:
    client = client_as(world, "grid_worker_a")
    r = client.get("/api/v1/core/calendar/days?start=2026-01-01&end=2027-02-05")
    assert r.status_code == 422
    assert "at most 400 days" in r.json()["message"]
    assert (
        client.get("/api/v1/core/calendar/days?start=2026-01-01&end=2027-02-04").status_code == 200
    )
    r = client.get("/api/v1/core/calendar/days?start=2026-02-01&end=2026-01-01")
    assert r.status_code == 422


def test_it_computes_a_deadline_across_new_year_2027(world: World) -> None:
    client = client_as(world, "grid_worker_a")
    r = client.get("/api/v1/core/calendar/deadline?start=2026-12-30T10:00:00&days=2")
    assert r.status_code == 200, r.content
    body = r.json()
    assert datetime.fromisoformat(body["due_at"]) == datetime.fromisoformat(
        "2027-01-01T10:00:00+08:00"
    )
    assert body["working_minutes"] == 900
    assert body["covered"] is False
    r = client.get("/api/v1/core/calendar/deadline?start=2026-11-24T03:50:00Z&minutes=30")
    assert datetime.fromisoformat(r.json()["due_at"]) == datetime.fromisoformat(
        "2026-11-24T13:50:00+08:00"
    )
    assert client.get("/api/v1/core/calendar/deadline?start=2026-11-24T10:00").status_code == 422
    r = client.get("/api/v1/core/calendar/deadline?start=2026-11-24T10:00&hours=-1")
    assert r.status_code == 422


def test_an_administrator_sets_and_removes_an_override(world: World) -> None:
    admin = client_as(world, "admin")
    r = admin.put(
        "/api/v1/core/calendar/overrides/2027-01-01",
        {"kind": "holiday", "note": "New Year"},
        content_type="application/json",
    )
    assert r.status_code == 200, r.content
    assert r.json()["day"]["kind"] == "holiday"
    assert r.json()["day"]["source"] == "override"
    worker = client_as(world, "grid_worker_a")
    r = worker.get("/api/v1/core/calendar/deadline?start=2026-12-30T10:00:00%2B08:00&days=2")
    assert datetime.fromisoformat(r.json()["due_at"]) == datetime.fromisoformat(
        "2027-01-04T10:00:00+08:00"
    )
    assert admin.delete("/api/v1/core/calendar/overrides/2027-01-01").status_code == 204
    assert admin.delete("/api/v1/core/calendar/overrides/2027-01-01").status_code == 404
    r = worker.get("/api/v1/core/calendar/deadline?start=2026-12-30T10:00:00%2B08:00&days=2")
    assert datetime.fromisoformat(r.json()["due_at"]) == datetime.fromisoformat(
        "2027-01-01T10:00:00+08:00"
    )


def test_overrides_are_validated(world: World) -> None:
    admin = client_as(world, "admin")
    r = admin.put(
        "/api/v1/core/calendar/overrides/2027-02-20",
        {"kind": "workday", "hours": "17:00-09:00"},
        content_type="application/json",
    )
    assert r.status_code == 422
    assert "ends before it starts" in r.json()["message"]
    r = admin.put(
        "/api/v1/core/calendar/overrides/2027-13-01",
        {"kind": "holiday"},
        content_type="application/json",
    )
    assert r.status_code == 422


def test_only_administrators_change_the_calendar(world: World) -> None:
    worker = client_as(world, "shift_leader")
    r = worker.put(
        "/api/v1/core/calendar/overrides/2027-01-01",
        {"kind": "holiday"},
        content_type="application/json",
    )
    assert r.status_code == 403
    assert worker.delete("/api/v1/core/calendar/overrides/2027-01-01").status_code == 403
    assert (
        Client().get("/api/v1/core/calendar/days?start=2027-01-01&end=2027-01-02").status_code
        == 401
    )


def test_the_admin_saves_overrides_through_the_actions(world: World) -> None:
    admin = client_as(world, "admin")
    r = admin.post(
        "/admin/core/calendaroverride/add/",
        {"date": "2027-02-20", "kind": "workday", "hours": "9:00-11:00", "note": "make-up"},
    )
    assert r.status_code == 302, r.content.decode()[:2000]
    assert worktime.day_kind(datetime(2027, 2, 20).date()) == ("makeup_workday", "override")
    assert worktime.day_info(datetime(2027, 2, 20).date()).hours_text == "09:00-11:00"
    r = admin.post(
        "/admin/core/calendaroverride/add/",
        {"date": "2027-02-21", "kind": "holiday", "hours": "09:00-11:00", "note": ""},
    )
    assert r.status_code == 200
    assert "a holiday has no working hours" in r.content.decode()


def test_the_working_calendar_page_warns_for_2027(world: World) -> None:
    admin = client_as(world, "admin")
    page = admin.get("/admin/core/calendaroverride/working-calendar/?month=2027-01")
    assert page.status_code == 200
    assert 'id="calendar-fallback-warning"' in page.content.decode()
    page = admin.get("/admin/core/calendaroverride/working-calendar/?month=2026-10")
    assert 'id="calendar-fallback-warning"' not in page.content.decode()
    assert 'data-date="2026-10-10" data-kind="makeup_workday"' in page.content.decode()
    assert "<script" not in page.content.decode().split('id="content-main"')[1]
    other = client_as(world, "shift_leader")
    r = other.get("/admin/core/calendaroverride/working-calendar/?month=2027-01")
    assert r.status_code in (302, 403)
