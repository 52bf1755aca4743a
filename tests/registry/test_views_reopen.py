"""Reopening from a record's page, for every kind that is closed: building, room, household,
person, organisation and component.

An editor whose scope holds the closed record finds the reopen form on its page and reopens it
with a reason at the version they saw; a user who only reads finds no form and is refused; a
grid worker of another grid finds no such record. A record whose household, room or building
is closed shows, instead of a form that could only be refused, a link to the record to reopen
first.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from gridgov.accounts.models import User
from gridgov.registry import actions
from gridgov.registry.models import RecordChange
from tests.registry.factories import building, fresh, home, household, room
from tests.registry.test_reopen import KINDS, close, closed_record
from tests.world import World

pytestmark = pytest.mark.django_db


def browser(user: User) -> Client:
    """A logged-in client that asks for English (the wording asserted below)."""
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(user)
    return client


def html(response: Any) -> str:
    return str(response.content.decode())


def page(kind: str, record: Any, action: str = "") -> str:
    return f"/registry/{kind}/{record.uuid}/{action}"


@pytest.mark.parametrize("kind", KINDS)
def test_an_editor_reopens_a_closed_record_from_its_page(world: World, kind: str) -> None:
    record = closed_record(world, kind)
    client = browser(world.grid_worker_a)
    shown = html(client.get(page(kind, record)))
    assert 'id="reopen-card"' in shown and 'id="close-card"' not in shown

    response = client.post(
        page(kind, record, "reopen/"), {"version": 2, "reason": "关错了"}, follow=True
    )

    assert response.redirect_chain == [(page(kind, record), 302)]
    assert "Reopened." in html(response) and 'id="close-card"' in html(response)
    stored = fresh(record)
    assert (stored.closed_at, stored.version) == (None, 3)
    last = RecordChange.objects.filter(record_uuid=record.uuid).order_by("-at", "-pk").first()
    assert last is not None
    assert (last.action, last.reason, last.actor) == ("reopen", "关错了", world.grid_worker_a)


@pytest.mark.parametrize("kind", KINDS)
def test_a_reopen_without_a_reason_is_refused_on_the_page(world: World, kind: str) -> None:
    record = closed_record(world, kind)
    response = browser(world.grid_worker_a).post(
        page(kind, record, "reopen/"), {"version": 2, "reason": ""}, follow=True
    )
    assert "Give the reason for reopening." in html(response)
    assert fresh(record).closed_at is not None


@pytest.mark.parametrize("kind", KINDS)
def test_a_reopen_at_a_stale_version_says_the_record_changed(world: World, kind: str) -> None:
    record = closed_record(world, kind)
    response = browser(world.grid_worker_a).post(
        page(kind, record, "reopen/"), {"version": 1, "reason": "关错了"}, follow=True
    )
    assert "has changed since you loaded it" in html(response)
    assert fresh(record).closed_at is not None


@pytest.mark.parametrize("kind", KINDS)
def test_a_dispatcher_who_only_reads_gets_no_reopen_form_and_is_refused(
    world: World, kind: str
) -> None:
    record = closed_record(world, kind)
    client = browser(world.dispatcher)
    shown = client.get(page(kind, record))
    assert shown.status_code == 200 and 'id="reopen-card"' not in html(shown)

    response = client.post(
        page(kind, record, "reopen/"), {"version": 2, "reason": "关错了"}, follow=True
    )
    assert "you may not change base data" in html(response)
    assert fresh(record).closed_at is not None


@pytest.mark.parametrize("kind", KINDS)
def test_a_grid_worker_of_another_grid_finds_no_such_record(world: World, kind: str) -> None:
    record = closed_record(world, kind)
    client = browser(world.grid_worker_b)
    assert client.get(page(kind, record)).status_code == 404
    response = client.post(page(kind, record, "reopen/"), {"version": 2, "reason": "关错了"})
    assert response.status_code == 404
    assert fresh(record).closed_at is not None


def test_a_supervisor_reopens_a_component_on_patrol_from_its_page(world: World) -> None:
    cover = closed_record(world, "component")
    client = browser(world.supervisor)
    assert 'id="reopen-card"' in html(client.get(page("component", cover)))
    client.post(page("component", cover, "reopen/"), {"version": 2, "reason": "井盖仍在"})
    assert fresh(cover).closed_at is None


def test_a_person_of_a_closed_household_links_to_the_household_to_reopen_first(
    world: World,
) -> None:
    h = home(world.grid_worker_a)
    member = actions.person_create(actor=world.grid_worker_a, name="李四", household=h)
    close("person", world.grid_worker_a, member)
    close("household", world.grid_worker_a, h)
    client = browser(world.grid_worker_a)

    shown = html(client.get(page("person", member)))
    assert 'id="reopen-card"' not in shown and 'id="reopen-first"' in shown
    assert f'href="/registry/household/{h.uuid}/"' in shown

    response = client.post(
        page("person", member, "reopen/"), {"version": 2, "reason": "搬回"}, follow=True
    )
    assert f"household {h} is closed; reopen it first" in html(response)
    assert fresh(member).closed_at is not None

    client.post(page("household", h, "reopen/"), {"version": 2, "reason": "搬回"})
    assert 'id="reopen-card"' in html(client.get(page("person", member)))
    client.post(page("person", member, "reopen/"), {"version": 2, "reason": "搬回"})
    assert fresh(member).closed_at is None


def test_a_room_of_a_demolished_building_links_to_the_building(world: World) -> None:
    b = building(world.grid_worker_a)
    r = close("room", world.grid_worker_a, room(world.grid_worker_a, b))
    household_left = close(
        "household", world.grid_worker_a, household(world.grid_worker_a, grid=world.grid_a.code)
    )
    actions.building_close(
        actor=world.grid_worker_a, building=b, closed_reason="demolished", reason="拆迁"
    )
    client = browser(world.grid_worker_a)
    shown = html(client.get(page("room", r)))
    assert f'href="/registry/building/{b.uuid}/"' in shown and 'id="reopen-card"' not in shown
    # a household without a known room lives in no record: it is reopened directly
    assert 'id="reopen-card"' in html(client.get(page("household", household_left)))


def test_closing_then_reopening_a_room_keeps_its_history_on_the_page(world: World) -> None:
    r = room(world.grid_worker_a, building(world.grid_worker_a))
    client = browser(world.grid_worker_a)
    client.post(
        page("room", r, "close/"), {"version": 1, "closed_reason": "error", "reason": "录错"}
    )
    client.post(page("room", r, "reopen/"), {"version": 2, "reason": "没有录错"})
    shown = html(client.get(page("room", r)))
    assert "录错" in shown and "没有录错" in shown
    assert list(
        RecordChange.objects.filter(record_uuid=r.uuid)
        .order_by("at", "pk")
        .values_list("action", flat=True)
    ) == ["create", "close", "reopen"]
