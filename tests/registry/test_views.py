"""The registry screens, used through the web client by the personas of tests/world.py: my grids
→ buildings → rooms → household card → person; scope, masking, access logging, reveal, tags
and the supervisor's clearance, closing, the search and the access log."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

import pytest
from django.test import Client

from gridgov.accounts.models import User
from gridgov.privacy.models import AccessLog
from gridgov.registry import actions
from gridgov.registry.models import Building, Person
from tests.cases.factories import category
from tests.registry.factories import IN_GRID_A, IN_GRID_B, building, id_number, person, room

pytestmark = pytest.mark.django_db

SECRET_ID = id_number(date(1950, 4, 3), sex="female", serial=42)
SECRET_PHONE = "13812345678"


def browser(user: User) -> Client:
    """A logged-in client that asks for English (the wording asserted below)."""
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(user)
    return client


def html(response: Any) -> str:
    return str(response.content.decode())


@pytest.fixture
def grid_a(world):
    """Grid A: a building with a room, a household of two (the head, an old woman living
    alone... with her grandson, who is under community correction), an organisation and a
    component."""
    worker = world.grid_worker_a
    b = building(worker, estate="和畅园", number="3栋")
    r = room(worker, b, number="302", unit="1", floor=3)
    h = actions.household_create(actor=worker, room=r, number="H-001")
    head = person(
        worker,
        household=h,
        name="王秀英",
        id_number=SECRET_ID,
        phone=SECRET_PHONE,
        relation="head",
        tags=["elderly_alone"],
    )
    grandson = person(worker, household=h, name="王小明", relation="grandchild")
    actions.person_tag_add(actor=worker, person=grandson, tag="community_correction")
    org = actions.organisation_create(
        actor=worker, name="和畅超市", building=b, contact_phone="13900001111"
    )
    lat, lon = IN_GRID_A
    comp = actions.component_create(
        actor=worker, code="320113" + "01002" + "000321", category=category(), lon=lon, lat=lat
    )
    return {
        "building": b,
        "room": r,
        "household": h,
        "head": head,
        "grandson": grandson,
        "organisation": org,
        "component": comp,
    }


def pages(grid_a, world) -> list[str]:
    return [
        f"/registry/grid/{world.grid_a.code}/",
        f"/registry/grid/{world.grid_a.code}/buildings.geojson",
        f"/registry/grid/{world.grid_a.code}/organisations/",
        f"/registry/grid/{world.grid_a.code}/components/",
        f"/registry/building/{grid_a['building'].uuid}/",
        f"/registry/room/{grid_a['room'].uuid}/",
        f"/registry/household/{grid_a['household'].uuid}/",
        f"/registry/person/{grid_a['head'].uuid}/",
        f"/registry/organisation/{grid_a['organisation'].uuid}/",
        f"/registry/component/{grid_a['component'].uuid}/",
        f"/registry/building/{grid_a['building'].uuid}/edit/",
        f"/registry/room/{grid_a['room'].uuid}/edit/",
        f"/registry/household/{grid_a['household'].uuid}/edit/",
        f"/registry/person/{grid_a['head'].uuid}/edit/",
        f"/registry/building/{grid_a['building'].uuid}/rooms/new/",
        f"/registry/room/{grid_a['room'].uuid}/households/new/",
        f"/registry/household/{grid_a['household'].uuid}/people/new/",
    ]


# --- scope --------------------------------------------------------------------------------------


def test_every_page_of_grid_a_opens_for_its_grid_worker(world, grid_a):
    client = browser(world.grid_worker_a)
    for url in pages(grid_a, world):
        response = client.get(url)
        assert response.status_code == 200, url


def test_a_grid_worker_of_grid_b_gets_not_found_for_every_record_of_grid_a(world, grid_a):
    client = browser(world.grid_worker_b)
    for url in pages(grid_a, world):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "王秀英" not in html(response)
    assert not AccessLog.objects.filter(user=world.grid_worker_b).exists()


def test_a_grid_worker_of_grid_b_cannot_reveal_tag_or_close_in_grid_a(world, grid_a):
    client = browser(world.grid_worker_b)
    key = grid_a["head"].uuid
    posts = [
        (f"/registry/person/{key}/reveal/", {"fields_wanted": ["id_number"], "reason": "核实身份"}),
        (f"/registry/person/{key}/tags/", {"tag": "disabled"}),
        (f"/registry/person/{key}/tags/elderly_alone/remove/", {}),
        (f"/registry/person/{key}/close/", {"version": 1, "closed_reason": "error", "reason": "x"}),
    ]
    for url, data in posts:
        response = client.post(url, data)
        assert response.status_code == 404, url
        assert SECRET_ID not in html(response)
    head = Person.objects.get(pk=grid_a["head"].pk)
    assert head.closed_at is None and head.tags.count() == 1


@pytest.mark.parametrize("persona", ["unit_handler", "resident", "nobody"])
def test_people_without_a_registry_role_see_nothing(world, grid_a, persona):
    client = browser(world.users[persona])
    for url in ["/registry/", "/registry/stats/"]:
        response = client.get(url)
        assert response.status_code == 200 and 'id="no-access"' in html(response), url
    assert client.get(f"/registry/person/{grid_a['head'].uuid}/").status_code == 404
    assert client.get(f"/registry/grid/{world.grid_a.code}/").status_code == 404
    assert 'data-person="' not in html(client.get("/registry/search/?q=王"))


def test_anonymous_visitors_are_sent_to_the_login_page(world, grid_a):
    response = Client().get(f"/registry/person/{grid_a['head'].uuid}/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


# --- my grids → buildings → rooms → households ---------------------------------------------------


def test_a_grid_worker_with_one_grid_goes_straight_to_it(world, grid_a):
    response = browser(world.grid_worker_a).get("/registry/")
    assert response.status_code == 302
    assert response["Location"] == f"/registry/grid/{world.grid_a.code}/"


def test_the_grid_leader_sees_the_grids_of_the_community_with_their_counts(world, grid_a):
    text = html(browser(world.grid_leader).get("/registry/"))
    assert 'data-grid="320113003001001"' in text and 'data-grid="320113003001002"' in text
    assert "2 people" in text and "1 household" in text
    assert 'data-grid="320113005001001"' not in text  # another community


def test_the_grid_page_lists_buildings_with_households_and_people(world, grid_a):
    text = html(browser(world.grid_worker_a).get(f"/registry/grid/{world.grid_a.code}/"))
    assert f'data-building="{grid_a["building"].uuid}"' in text
    assert "1 room" in text and "1 household" in text and "2 people" in text
    assert 'id="reg-map"' in text and "leaflet.js" in text


def test_the_map_endpoint_answers_points_of_the_grids_buildings(world, grid_a):
    data = browser(world.grid_worker_a).get(f"/registry/grid/{world.grid_a.code}/buildings.geojson")
    feature = data.json()["features"][0]
    assert feature["properties"]["uuid"] == str(grid_a["building"].uuid)
    assert feature["properties"]["people"] == 2
    lat, lon = IN_GRID_A
    assert feature["geometry"]["coordinates"] == [lon, lat]


def test_the_building_page_shows_its_rooms_by_unit_and_floor(world, grid_a):
    room(world.grid_worker_a, grid_a["building"], number="101", unit="1", floor=1, use="vacant")
    text = html(browser(world.grid_worker_a).get(f"/registry/building/{grid_a['building'].uuid}/"))
    assert 'data-unit="1"' in text
    assert "Floor 1" in text and "Floor 3" in text
    assert text.index(">101<") < text.index(">302<")
    assert "reg-room--vacant" in text


def test_the_room_page_shows_its_households_members_by_name_only(world, grid_a):
    text = html(browser(world.grid_worker_a).get(f"/registry/room/{grid_a['room'].uuid}/"))
    assert "王秀英" in text and "王小明" in text
    assert grid_a["head"].id_number_mask not in text


def test_the_household_card_shows_members_masked_with_the_visible_tags(world, grid_a):
    response = browser(world.grid_worker_a).get(f"/registry/household/{grid_a['household'].uuid}/")
    text = html(response)
    assert "王秀英" in text and "head of household" in text and "grandchild" in text
    assert SECRET_ID not in text and SECRET_PHONE not in text
    assert grid_a["head"].id_number_mask in text and "138****5678" in text
    assert 'class="reg-tag reg-tag--care" data-tag="elderly_alone"' in text
    assert 'data-tag="community_correction"' in text
    assert text.index("王秀英") < text.index("王小明")  # the head first


def test_the_household_card_logs_a_view_of_each_member(world, grid_a):
    browser(world.grid_worker_a).get(f"/registry/household/{grid_a['household'].uuid}/")
    rows = AccessLog.objects.filter(user=world.grid_worker_a, kind="view")
    assert {r.subject_uuid for r in rows} == {grid_a["head"].uuid, grid_a["grandson"].uuid}
    assert {(r.channel, r.screen) for r in rows} == {("web", "registry:household")}
    assert "id_number_mask" in rows[0].fields


def test_sensitive_tags_are_hidden_from_the_supervisor(world, grid_a):
    client = browser(world.supervisor)
    for url in [
        f"/registry/household/{grid_a['household'].uuid}/",
        f"/registry/person/{grid_a['grandson'].uuid}/",
        "/registry/search/?q=王",
        "/registry/stats/",
    ]:
        text = html(client.get(url))
        assert "community_correction" not in text, url
        assert "Community correction" not in text and "社区矫正" not in text, url
    text = html(client.get(f"/registry/person/{grid_a['head'].uuid}/"))
    assert 'data-tag="elderly_alone"' in text


# --- the person page ----------------------------------------------------------------------------


def test_opening_a_person_logs_a_view_from_this_screen(world, grid_a):
    response = browser(world.grid_worker_a).get(f"/registry/person/{grid_a['head'].uuid}/")
    text = html(response)
    assert SECRET_ID not in text and SECRET_PHONE not in text
    assert grid_a["head"].id_number_mask in text
    log = AccessLog.objects.get(user=world.grid_worker_a)
    assert (log.kind, log.channel, log.screen) == ("view", "web", "registry:person")
    assert log.subject_uuid == grid_a["head"].uuid
    assert "no-cache" in response["Cache-Control"]


def test_the_person_page_shows_the_history_with_personal_values_masked(world, grid_a):
    actions.person_update(
        actor=world.grid_worker_a, person=grid_a["head"], phone="13700007777", reason="换号"
    )
    text = html(browser(world.grid_worker_a).get(f"/registry/person/{grid_a['head'].uuid}/"))
    history = text[text.index('id="history"') :]
    assert "13700007777" not in history and "137****7777" in history
    assert "换号" in history and "Grid Worker A" in history
    assert "tagged" in history and 'data-field="tag"' in history


def test_a_reveal_with_a_reason_shows_the_clear_value_once_and_is_logged(world, grid_a):
    client = browser(world.grid_worker_a)
    url = f"/registry/person/{grid_a['head'].uuid}/"
    response = client.post(
        url + "reveal/", {"fields_wanted": ["id_number"], "reason": "上门核实身份"}
    )
    assert response.status_code == 200
    text = html(response)
    assert f'id="revealed-id_number">{SECRET_ID}<' in text
    assert SECRET_PHONE not in text
    assert "no-store" in response["Cache-Control"]
    reveal = AccessLog.objects.get(kind="reveal")
    assert reveal.user == world.grid_worker_a and reveal.reason == "上门核实身份"
    assert reveal.fields == ["id_number"] and reveal.screen == "registry:person_reveal"
    assert SECRET_ID not in html(client.get(url))  # once: masked again on the next open


def test_a_reveal_without_a_reason_shows_nothing(world, grid_a):
    response = browser(world.grid_worker_a).post(
        f"/registry/person/{grid_a['head'].uuid}/reveal/", {"fields_wanted": ["id_number"]}
    )
    assert response.status_code == 422
    assert SECRET_ID not in html(response)
    assert not AccessLog.objects.filter(kind="reveal").exists()


def test_a_supervisor_has_no_reveal_form_and_is_refused(world, grid_a):
    client = browser(world.supervisor)
    url = f"/registry/person/{grid_a['head'].uuid}/"
    assert 'id="reveal-form"' not in html(client.get(url))
    response = client.post(url + "reveal/", {"fields_wanted": ["id_number"], "reason": "想看看"})
    assert response.status_code == 403
    text = html(response)
    assert SECRET_ID not in text
    assert 'id="reveal-error"' in text and 'id="reveal-form"' not in text
    assert not AccessLog.objects.filter(kind="reveal").exists()


def test_tags_are_added_and_removed_from_the_person_page(world, grid_a):
    client = browser(world.grid_worker_a)
    key = grid_a["head"].uuid
    client.post(f"/registry/person/{key}/tags/", {"tag": "disabled", "note": "肢体二级"})
    client.post(f"/registry/person/{key}/tags/elderly_alone/remove/", {"reason": "子女已回"})
    codes = set(Person.objects.get(pk=grid_a["head"].pk).tags.values_list("tag_type__code", flat=1))
    assert codes == {"disabled"}


def test_the_supervisor_cannot_set_a_sensitive_tag(world, grid_a):
    response = browser(world.supervisor).post(
        f"/registry/person/{grid_a['head'].uuid}/tags/", {"tag": "drug_user"}
    )
    assert response.status_code == 302
    assert not grid_a["head"].tags.filter(tag_type__code="drug_user").exists()


def test_a_person_is_closed_with_a_reason_and_reopened(world, grid_a):
    client = browser(world.grid_worker_a)
    key = grid_a["grandson"].uuid
    client.post(
        f"/registry/person/{key}/close/",
        {"version": 1, "closed_reason": "moved_out", "reason": "去外地读书", "on": "2026-09-01"},
    )
    grandson = Person.objects.get(pk=grid_a["grandson"].pk)
    assert grandson.closed_reason == "moved_out" and grandson.moved_out_on == date(2026, 9, 1)
    text = html(client.get(f"/registry/person/{key}/"))
    assert 'id="reopen-card"' in text and "去外地读书" in text
    client.post(
        f"/registry/person/{key}/reopen/", {"version": grandson.version, "reason": "登记错误"}
    )
    assert Person.objects.get(pk=grandson.pk).closed_at is None


def test_closing_needs_a_reason(world, grid_a):
    client = browser(world.grid_worker_a)
    response = client.post(
        f"/registry/person/{grid_a['grandson'].uuid}/close/",
        {"version": 1, "closed_reason": "moved_out", "reason": ""},
        follow=True,
    )
    assert "Not closed" in html(response)
    assert Person.objects.get(pk=grid_a["grandson"].pk).closed_at is None


# --- quick add and edit --------------------------------------------------------------------------


def test_a_grid_worker_adds_a_building_room_household_and_person(world):
    client = browser(world.grid_worker_a)
    lat, lon = IN_GRID_A
    response = client.post(
        f"/registry/grid/{world.grid_a.code}/buildings/new/",
        {"estate": "幸福里", "number": "8栋", "kind": "residential", "lat": lat, "lon": lon},
    )
    assert response.status_code == 302
    new_building = Building.objects.get(estate="幸福里")
    assert response["Location"] == f"/registry/building/{new_building.uuid}/"
    response = client.post(
        f"/registry/building/{new_building.uuid}/rooms/new/",
        {"unit": "2", "floor": 5, "number": "501", "use": "rented"},
    )
    new_room = new_building.rooms.get()
    response = client.post(f"/registry/room/{new_room.uuid}/households/new/", {"number": "H9"})
    new_household = new_room.households_in.get()
    secret = id_number(date(1988, 12, 24), sex="male", serial=77)
    response = client.post(
        f"/registry/household/{new_household.uuid}/people/new/",
        {
            "name": "赵强",
            "id_number": secret,
            "phone": "13911112222",
            "person_type": "floating",
            "relation": "head",
            "verification": "unverified",
            "tags": ["veteran"],
        },
    )
    assert response.status_code == 302
    someone = Person.objects.get(name="赵强")
    assert someone.birth_date == date(1988, 12, 24) and someone.sex == "male"
    assert someone.household == new_household and someone.region_code == world.grid_a.code
    assert list(someone.tags.values_list("tag_type__code", flat=True)) == ["veteran"]


def test_an_invalid_id_number_is_refused_with_a_message_on_its_field(world, grid_a):
    bad = SECRET_ID[:-1] + ("0" if SECRET_ID[-1] != "0" else "1")
    response = browser(world.grid_worker_a).post(
        f"/registry/household/{grid_a['household'].uuid}/people/new/",
        {
            "name": "错号",
            "id_number": bad,
            "person_type": "registered",
            "verification": "unverified",
        },
    )
    assert response.status_code == 422
    text = html(response)
    field = text[text.index("field--id_number") :]
    assert "field__error" in field[: field.index("</div>")]
    assert not Person.objects.filter(name="错号").exists()


def test_a_birth_date_that_disagrees_with_the_id_number_is_refused(world, grid_a):
    response = browser(world.grid_worker_a).post(
        f"/registry/household/{grid_a['household'].uuid}/people/new/",
        {
            "name": "不符",
            "id_number": id_number(date(1970, 1, 1), serial=88),
            "birth_date": "1971-01-01",
            "person_type": "registered",
            "verification": "unverified",
        },
    )
    assert response.status_code == 422
    assert "field--error field--birth_date" in html(response)


def test_an_edit_sends_the_version_and_a_stale_one_is_refused(world, grid_a):
    client = browser(world.grid_worker_a)
    url = f"/registry/person/{grid_a['grandson'].uuid}/edit/"
    form = {
        "version": 1,
        "name": "王晓明",
        "person_type": "registered",
        "relation": "grandchild",
        "verification": "verified",
    }
    assert client.post(url, form).status_code == 302
    grandson = Person.objects.get(pk=grid_a["grandson"].pk)
    assert (grandson.name, grandson.verification, grandson.version) == ("王晓明", "verified", 2)
    stale = client.post(url, {**form, "name": "王小明"})
    assert stale.status_code == 409
    assert "has changed since you loaded it" in html(stale)
    assert Person.objects.get(pk=grandson.pk).name == "王晓明"


def test_an_edit_keeps_the_id_number_when_the_field_is_left_empty(world, grid_a):
    client = browser(world.grid_worker_a)
    head = grid_a["head"]
    page = html(client.get(f"/registry/person/{head.uuid}/edit/"))
    assert SECRET_ID not in page and head.id_number_mask in page
    client.post(
        f"/registry/person/{head.uuid}/edit/",
        {
            "version": 1,
            "name": "王秀英",
            "ethnicity": "汉族",
            "person_type": "registered",
            "relation": "head",
            "verification": "unverified",
        },
    )
    stored = Person.objects.get(pk=head.pk)
    assert stored.id_number == SECRET_ID and stored.ethnicity == "汉族"


def test_a_second_building_at_the_same_address_is_refused_naming_the_first(world, grid_a):
    lat, lon = IN_GRID_A
    response = browser(world.grid_worker_a).post(
        f"/registry/grid/{world.grid_a.code}/buildings/new/",
        {"estate": "和畅园", "number": "3栋", "kind": "residential", "lat": lat, "lon": lon},
    )
    assert response.status_code == 409
    text = html(response)
    assert 'id="form-errors"' in text and str(grid_a["building"].uuid) in text
    assert "field--error field--address" in text


def test_a_new_id_number_needs_a_reason(world, grid_a):
    client = browser(world.grid_worker_a)
    form = {
        "version": 1,
        "name": "王秀英",
        "id_number": id_number(date(1950, 4, 3), sex="female", serial=43),
        "person_type": "registered",
        "relation": "head",
        "verification": "unverified",
    }
    url = f"/registry/person/{grid_a['head'].uuid}/edit/"
    response = client.post(url, form)
    assert response.status_code == 422
    assert "field--error field--reason" in html(response)
    assert client.post(url, {**form, "reason": "户籍换证"}).status_code == 302
    assert Person.objects.get(pk=grid_a["head"].pk).id_number == form["id_number"]


def test_readers_get_no_edit_links(world, grid_a):
    text = html(browser(world.dispatcher).get(f"/registry/household/{grid_a['household'].uuid}/"))
    assert "王秀英" in text
    assert 'id="add-person"' not in text and "/edit/" not in text and 'id="close-card"' not in text


def test_the_supervisor_may_not_open_the_add_forms(world, grid_a):
    client = browser(world.supervisor)
    assert client.get(f"/registry/room/{grid_a['room'].uuid}/households/new/").status_code == 403
    assert client.get(f"/registry/grid/{world.grid_a.code}/components/new/").status_code == 200


def test_organisations_and_components_are_added_and_changed(world, grid_a):
    client = browser(world.grid_worker_a)
    response = client.post(
        f"/registry/grid/{world.grid_a.code}/organisations/new/?building={grid_a['building'].uuid}",
        {"name": "和畅诊所", "kind": "clinic", "contact_phone": "13955556666"},
    )
    assert response.status_code == 302
    clinic = grid_a["building"].organisations.get(name="和畅诊所")
    text = html(client.get(f"/registry/organisation/{clinic.uuid}/"))
    assert "13955556666" not in text and "139****6666" in text
    lat, lon = IN_GRID_A
    response = client.post(
        f"/registry/component/{grid_a['component'].uuid}/edit/",
        {
            "version": 1,
            "code": grid_a["component"].code,
            "category": str(grid_a["component"].category_id),
            "status": "damaged",
            "lat": lat,
            "lon": lon,
        },
    )
    assert response.status_code == 302
    grid_a["component"].refresh_from_db()
    assert grid_a["component"].status == "damaged" and grid_a["component"].version == 2


# --- search -------------------------------------------------------------------------------------


def test_search_finds_by_name_phone_or_id_number_within_scope_masked(world, grid_a):
    client = browser(world.grid_worker_a)
    for q in ["秀英", SECRET_PHONE, SECRET_ID]:
        text = html(client.get("/registry/search/", {"q": q}))
        assert f'data-person="{grid_a["head"].uuid}"' in text, q
        results = text[text.index('id="results"') :]
        assert SECRET_ID not in results and SECRET_PHONE not in results
    assert 'data-person="' not in html(browser(world.grid_worker_b).get("/registry/search/?q=秀英"))


def test_a_search_is_logged_with_the_number_masked(world, grid_a):
    browser(world.grid_worker_a).get("/registry/search/", {"q": SECRET_ID})
    log = AccessLog.objects.get(kind="search")
    assert log.count == 1 and log.screen == "registry:search"
    assert SECRET_ID not in json.dumps(log.filter)
    assert log.filter["kind"] == "id_number"


def test_the_search_list_keeps_to_a_query_budget(world, grid_a, django_assert_max_num_queries):
    for n in range(20):
        person(world.grid_worker_a, household=grid_a["household"], name=f"王{n}", tags=["disabled"])
    client = browser(world.grid_worker_a)
    client.get("/registry/search/?q=王")  # warm the session and role caches
    with django_assert_max_num_queries(12):
        response = client.get("/registry/search/?q=王")
    assert html(response).count("data-person=") == 22


# --- query budgets on the list pages ------------------------------------------------------------


def test_the_grid_page_keeps_to_a_query_budget(world, django_assert_max_num_queries):
    worker = world.grid_worker_a
    for _ in range(12):
        b = building(worker)
        r = room(worker, b)
        h = actions.household_create(actor=worker, room=r)
        person(worker, household=h)
    client = browser(worker)
    client.get(f"/registry/grid/{world.grid_a.code}/")
    with django_assert_max_num_queries(14):
        response = client.get(f"/registry/grid/{world.grid_a.code}/")
    assert html(response).count("data-building=") == 12
    with django_assert_max_num_queries(8):
        client.get(f"/registry/grid/{world.grid_a.code}/buildings.geojson")


def test_the_building_and_household_pages_keep_to_a_query_budget(
    world, grid_a, django_assert_max_num_queries
):
    worker = world.grid_worker_a
    for n in range(15):
        room(worker, grid_a["building"], number=f"9{n:02d}", floor=9)
    for n in range(6):
        person(worker, household=grid_a["household"], name=f"成员{n}", tags=["disabled"])
    client = browser(worker)
    client.get(f"/registry/building/{grid_a['building'].uuid}/")
    with django_assert_max_num_queries(16):
        client.get(f"/registry/building/{grid_a['building'].uuid}/")
    with django_assert_max_num_queries(16 + 8):  # one access-log row per member
        response = client.get(f"/registry/household/{grid_a['household'].uuid}/")
    assert html(response).count("data-person=") == 8


def test_my_grids_keeps_to_a_query_budget(world, grid_a, django_assert_max_num_queries):
    client = browser(world.admin)
    client.get("/registry/")
    with django_assert_max_num_queries(12):
        response = client.get("/registry/")
    assert html(response).count("data-grid=") == 5


# --- the access log -----------------------------------------------------------------------------


def test_administrators_read_the_access_log_with_filters(world, grid_a):
    browser(world.grid_worker_a).get(f"/registry/person/{grid_a['head'].uuid}/")
    browser(world.grid_worker_a).post(
        f"/registry/person/{grid_a['head'].uuid}/reveal/",
        {"fields_wanted": ["phone"], "reason": "联系家属"},
    )
    browser(world.grid_leader).get(f"/registry/person/{grid_a['grandson'].uuid}/")
    client = browser(world.admin)
    text = html(client.get("/registry/access-log/"))
    assert text.count("<tr data-kind=") == 4  # two views and a reveal by A, a view by the leader
    assert "联系家属" in text and SECRET_PHONE not in text
    only = html(client.get("/registry/access-log/", {"person": str(grid_a["head"].uuid)}))
    assert only.count("<tr data-kind=") == 3
    reveals = html(client.get("/registry/access-log/", {"kind": "reveal"}))
    assert reveals.count("<tr data-kind=") == 1
    by_user = html(client.get("/registry/access-log/", {"user": "grid_leader"}))
    assert by_user.count("<tr data-kind=") == 1


def test_the_access_log_is_for_administrators_only(world, grid_a):
    assert browser(world.grid_worker_a).get("/registry/access-log/").status_code == 403
    assert browser(world.supervisor).get("/registry/access-log/").status_code == 403


def test_the_access_log_keeps_to_a_query_budget(world, grid_a, django_assert_max_num_queries):
    for user in [world.grid_worker_a, world.grid_leader, world.supervisor]:
        for p in [grid_a["head"], grid_a["grandson"]]:
            browser(user).get(f"/registry/person/{p.uuid}/")
    client = browser(world.admin)
    client.get("/registry/access-log/")
    with django_assert_max_num_queries(8):
        response = client.get("/registry/access-log/")
    assert html(response).count("<tr data-kind=") == 6


# --- content security: no inline script or style -------------------------------------------------


def test_the_screens_carry_no_inline_script_or_style(world, grid_a):
    client = browser(world.grid_worker_a)
    for url in [*pages(grid_a, world), "/registry/search/?q=王", "/registry/stats/"]:
        text = html(client.get(url))
        if url.endswith(".geojson"):
            continue
        for tag in re.findall(r"<script[^>]*>", text):
            assert "src=" in tag or 'type="application/json"' in tag, (url, tag)
        assert "<style" not in text and ' style="' not in text, url


def test_the_grid_b_worker_sees_their_own_grid(world, grid_a):
    home = building(world.grid_worker_b, where=IN_GRID_B)
    text = html(browser(world.grid_worker_b).get(f"/registry/grid/{world.grid_b.code}/"))
    assert f'data-building="{home.uuid}"' in text
    assert f'data-building="{grid_a["building"].uuid}"' not in text
