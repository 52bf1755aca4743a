"""The case screens: to-do, list, case page and its action forms, photos, intake, dispatch and
the report form, used through the web client by the personas of tests/world.py."""

from __future__ import annotations

import io
import re
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from PIL import ExifTags, Image

from gridgov.accounts.models import User
from gridgov.cases.models import Case, CaseEvent, CasePhoto, Source
from gridgov.cases.workflow import State
from gridgov.core.models import IdempotencyRecord
from gridgov.core.photos import photo_save
from tests.cases.factories import IN_GRID_A, IN_GRID_B, act, category, report, walk, with_attributes
from tests.world import World

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Path) -> Path:
    """Photos go to a fresh MEDIA_ROOT per test."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return Path(settings.MEDIA_ROOT)


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.jpg")) if root.exists() else []


def jpeg(
    colour: tuple[int, int, int] = (200, 60, 40), *, gps: tuple[float, float] | None = None
) -> bytes:
    """A small JPEG as a phone sends it, with its GPS position in the EXIF when given."""
    exif = Image.Exif()
    if gps is not None:
        lat, lon = gps
        exif[ExifTags.IFD.GPSInfo] = {
            ExifTags.GPS.GPSLatitudeRef: "N",
            ExifTags.GPS.GPSLatitude: (float(int(lat)), (lat % 1) * 60, 0.0),
            ExifTags.GPS.GPSLongitudeRef: "E",
            ExifTags.GPS.GPSLongitude: (float(int(lon)), (lon % 1) * 60, 0.0),
        }
    out = io.BytesIO()
    Image.new("RGB", (120, 90), colour).save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def upload(name: str = "photo.jpg", data: bytes | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data or jpeg(), content_type="image/jpeg")


def browser(user: User) -> Client:
    """A logged-in client that asks for English (the wording asserted below)."""
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(user)
    return client


def post_action(client: Client, case: Case, action: str, **data: Any) -> Any:
    """Submit an action form as the case page renders it (current version, fresh token)."""
    case.refresh_from_db()
    payload = {"version": case.version, "token": uuid.uuid4().hex, **data}
    return client.post(f"/cases/{case.number}/act/{action}/", payload)


def html(response: Any) -> str:
    return str(response.content.decode())


def action_forms(page: str) -> list[str]:
    return re.findall(r'<details class="action[^"]*" data-action="([a-z_]+)"', page)


def form_of(page: str, action: str) -> str:
    start = page.index(f'data-action="{action}"')
    return page[start : page.index("</details>", start)]


def set_clock(case: Case, *, due_in: timedelta, soon_in: timedelta) -> None:
    """Put a case's open step at a chosen point of its clock (test set-up only)."""
    now = timezone.now()
    Case.objects.filter(pk=case.pk).update(due_at=now + due_in, due_soon_at=now + soon_in)


# --- the to-do list -------------------------------------------------------------------------------


def test_the_to_do_list_shows_red_cases_first_then_yellow_then_green_with_counts_on_top(
    world: World,
) -> None:
    green = report(world.grid_worker_a, description="green")
    red = report(world.grid_worker_a, description="red")
    yellow = report(world.grid_worker_a, description="yellow")
    set_clock(green, due_in=timedelta(hours=3), soon_in=timedelta(hours=2))
    set_clock(red, due_in=timedelta(minutes=-5), soon_in=timedelta(minutes=-30))
    set_clock(yellow, due_in=timedelta(minutes=20), soon_in=timedelta(minutes=-1))

    page = html(browser(world.intake_operator).get("/cases/todo/"))

    listed = re.findall(r'data-case="([0-9-]+)" data-light="(\w+)"', page)
    assert listed == [(red.number, "red"), (yellow.number, "yellow"), (green.number, "green")]
    assert '<span class="light-count__n" data-light="red">1</span>' in page
    assert '<span class="light-count__n" data-light="yellow">1</span>' in page
    assert '<span class="light-count__n" data-light="green">1</span>' in page
    assert "Waiting for you:" in page and "Accept" in page


def test_the_to_do_list_can_show_one_light_only(world: World) -> None:
    red = report(world.grid_worker_a)
    green = report(world.grid_worker_a)
    set_clock(red, due_in=timedelta(minutes=-5), soon_in=timedelta(minutes=-30))
    set_clock(green, due_in=timedelta(hours=3), soon_in=timedelta(hours=2))

    page = html(browser(world.intake_operator).get("/cases/todo/?light=red"))

    assert red.number in page and green.number not in page


def test_a_unit_handler_finds_the_cases_dispatched_to_their_unit_in_their_to_do(
    world: World,
) -> None:
    dispatched = walk(report(world.grid_worker_a), world, "accept", "register", "dispatch")
    waiting = report(world.grid_worker_a)

    page = html(browser(world.unit_handler).get("/cases/todo/"))

    assert dispatched.number in page and "Sign for" in page
    assert waiting.number not in page


def test_the_to_do_page_needs_a_fixed_number_of_queries(
    world: World, django_assert_max_num_queries: Any
) -> None:
    for _ in range(30):
        report(world.grid_worker_a)
    client = browser(world.intake_operator)
    with django_assert_max_num_queries(15):
        response = client.get("/cases/todo/")
    assert html(response).count('class="list__item case-card"') == 30


def test_someone_with_nothing_to_do_is_told_so(world: World) -> None:
    report(world.grid_worker_a)
    page = html(browser(world.grid_worker_b).get("/cases/todo/"))
    assert "Nothing is waiting for you." in page


# --- the case list --------------------------------------------------------------------------------


def listed_numbers(page: str) -> set[str]:
    return set(re.findall(r'<tr data-case="([0-9-]+)"', page))


def test_the_case_list_filters_by_every_field_of_the_form(world: World) -> None:
    other_category = category("01005", "雨水井盖", name_en="Rain manhole cover")
    old = report(
        world.grid_worker_a, description="旧的井盖", at=timezone.now() - timedelta(days=30)
    )
    in_b = report(world.grid_worker_b, where=IN_GRID_B, description="B 网格")
    rain = report(world.grid_worker_a, category=other_category, address="和燕路 8 号")
    dispatched = walk(report(world.grid_worker_a), world, "accept", "register", "dispatch")
    hotline = report(world.intake_operator, description="热线来电", source=Source.HOTLINE)
    set_clock(rain, due_in=timedelta(minutes=-1), soon_in=timedelta(minutes=-10))
    set_clock(in_b, due_in=timedelta(hours=5), soon_in=timedelta(hours=4))
    client = browser(world.leader)
    today = timezone.localdate()

    def shown(query: str) -> set[str]:
        response = client.get("/cases/?" + query)
        assert response.status_code == 200
        return listed_numbers(html(response))

    everything = {old.number, in_b.number, rain.number, dispatched.number, hotline.number}
    assert shown("") == everything
    assert shown("state=dispatched") == {dispatched.number}
    assert shown("state=open") == everything
    assert shown("state=done") == set()
    assert shown("category=01005") == {rain.number}
    assert shown("category=01") == everything  # a major covers its minors
    assert shown(f"region={world.grid_b.code}") == {in_b.number}
    assert shown("unit=street-office-003") == {dispatched.number}
    assert shown("light=red") >= {rain.number} and in_b.number not in shown("light=red")
    assert in_b.number in shown("light=green")
    assert shown("source=hotline") == {hotline.number}
    assert old.number not in shown(f"reported_from={today - timedelta(days=7)}")
    assert shown(f"reported_to={today - timedelta(days=7)}") == {old.number}
    assert shown("text=和燕路") == {rain.number}
    assert shown(f"text={dispatched.number}") == {dispatched.number}


def test_an_invalid_filter_is_reported_and_left_out(world: World) -> None:
    case = report(world.grid_worker_a)
    response = browser(world.leader).get("/cases/?region=12&reported_from=yesterday")
    page = html(response)
    assert response.status_code == 200
    assert "Some filters are not valid and were left out." in page
    assert "Write a region code of 6, 9, 12 or 15 digits." in page
    assert case.number in listed_numbers(page)


def test_the_case_list_pages_fifty_at_a_time_and_keeps_the_filters_in_its_links(
    world: World,
) -> None:
    for _ in range(53):
        report(world.grid_worker_a)
    client = browser(world.leader)

    first = html(client.get("/cases/?state=reported"))
    second = html(client.get("/cases/?state=reported&page=2"))

    assert len(listed_numbers(first)) == 50 and len(listed_numbers(second)) == 3
    assert 'href="?state=reported&amp;page=2"' in first
    assert 'href="/cases/export.xlsx?state=reported"' in second
    assert 'href="/cases/export.csv?state=reported"' in second


def test_the_case_list_needs_a_fixed_number_of_queries(
    world: World, django_assert_max_num_queries: Any
) -> None:
    for _ in range(25):
        walk(report(world.grid_worker_a), world, "accept", "register", "dispatch")
    client = browser(world.leader)
    with django_assert_max_num_queries(15):
        response = client.get("/cases/?state=dispatched")
    assert len(listed_numbers(html(response))) == 25


def test_a_resident_sees_only_their_own_reports_in_the_list(world: World) -> None:
    mine = report(world.resident)
    theirs = report(world.grid_worker_a)
    assert listed_numbers(html(browser(world.resident).get("/cases/"))) == {mine.number}
    assert browser(world.resident).get(f"/cases/{theirs.number}/").status_code == 404


# --- the case page --------------------------------------------------------------------------------


def test_the_case_page_shows_the_facts_with_the_phone_masked_and_the_attribute_questions(
    world: World,
) -> None:
    cat = with_attributes(category())
    case = report(
        world.intake_operator,
        category=cat,
        source=Source.HOTLINE,
        reporter_name="王女士",
        reporter_phone="13812345678",
        address="和燕路 1 号",
        attributes={"damage": "missing", "count": 2},
    )

    response = browser(world.supervisor).get(f"/cases/{case.number}/")
    page = html(response)

    assert response.status_code == 200
    assert case.number in page and "和燕路 1 号" in page and world.grid_a.name in page
    assert "王女士" in page and "138****5678" in page and "13812345678" not in page
    assert "损坏情况" in page and "缺失" in page and "数量" in page
    assert 'id="case-map"' in page and 'id="case-grid-geometry"' in page
    assert 'data-action="report"' in page  # the timeline's first event


def test_the_case_page_offers_only_the_actions_the_table_allows_this_user(world: World) -> None:
    case = report(world.grid_worker_a)

    operator_page = html(browser(world.intake_operator).get(f"/cases/{case.number}/"))
    # the waiting work first (unfolded), the refusals last
    assert action_forms(operator_page) == ["accept", "merge", "escalate", "decline"]
    assert '<details class="action" data-action="accept" open>' in operator_page
    assert '<details class="action" data-action="merge">' in operator_page
    assert action_forms(html(browser(world.grid_worker_a).get(f"/cases/{case.number}/"))) == [
        "self_handle",
        "escalate",
    ]
    assert action_forms(html(browser(world.dispatcher).get(f"/cases/{case.number}/"))) == [
        "escalate"
    ]
    leader_page = html(browser(world.leader).get(f"/cases/{case.number}/"))
    assert action_forms(leader_page) == []
    assert "Nothing for you to do on this case now." in leader_page


def test_a_case_outside_the_users_scope_is_not_found(world: World) -> None:
    case = report(world.grid_worker_a)
    for user in (world.grid_worker_b, world.unit_handler, world.resident, world.nobody):
        assert browser(user).get(f"/cases/{case.number}/").status_code == 404


def test_each_action_form_has_exactly_the_inputs_its_transition_takes(world: World) -> None:
    case = report(world.grid_worker_a)
    page = html(browser(world.intake_operator).get(f"/cases/{case.number}/"))

    decline = form_of(page, "decline")
    assert re.findall(r'name="(\w+)"', decline) == [
        "csrfmiddlewaretoken",
        "version",
        "token",
        "next",
        "reason",
    ]
    assert re.search(r'<textarea name="reason"[^>]*required', decline)
    accept = form_of(page, "accept")
    assert set(re.findall(r'name="(\w+)"', accept)) == {
        "csrfmiddlewaretoken",
        "version",
        "token",
        "next",
        "note",
        "category",
        "urgency",
    }
    assert f'name="version" value="{case.version}"' in accept

    handling = walk(case, world, "accept", "register", "dispatch", "sign")
    unit_page = html(browser(world.unit_handler).get(f"/cases/{handling.number}/"))
    extension = form_of(unit_page, "request_extension")
    spans = re.findall(r'<option value="(\w+)"', extension)
    assert spans == ["2h", "4h", "1d", "2d", "5d"]
    feedback = form_of(unit_page, "feedback")
    assert 'type="file" name="photos"' in feedback and 'accept="image/*"' in feedback


def test_the_dispatch_form_pre_selects_the_suggested_unit(world: World) -> None:
    case = walk(report(world.grid_worker_a), world, "accept", "register")
    page = html(browser(world.dispatcher).get(f"/cases/{case.number}/"))
    dispatch = form_of(page, "dispatch")
    assert '<option value="street-office-003" selected>' in dispatch
    assert "Suggested: 迈皋桥街道办事处" in dispatch
    assert 'name="assisting_units"' in dispatch


def test_the_reporter_rates_a_closed_case_from_one_to_five(world: World) -> None:
    case = walk(
        report(world.resident),
        world,
        *("accept", "register", "dispatch", "sign", "feedback", "check_pass", "close"),
    )
    client = browser(world.resident)
    page = html(client.get(f"/cases/{case.number}/"))
    assert action_forms(page) == ["evaluate"]
    assert re.findall(r'name="rating" value="(\d)"', form_of(page, "evaluate")) == list("12345")

    response = post_action(client, case, "evaluate", rating="5", note="很快")

    assert response.status_code == 302
    case.refresh_from_db()
    assert case.rating == 5


# --- taking actions -------------------------------------------------------------------------------


def test_taking_an_action_moves_the_case_and_comes_back_with_a_message(world: World) -> None:
    case = report(world.grid_worker_a)
    client = browser(world.intake_operator)

    response = post_action(client, case, "accept", note="受理", category="", urgency="")

    assert response.status_code == 302 and response["Location"] == f"/cases/{case.number}/"
    case.refresh_from_db()
    assert case.state == State.ACCEPTED
    page = html(client.get(response["Location"]))
    assert f"Accept: done (case {case.number})." in page
    assert 'data-action="accept"' in page and "受理" in page


def test_a_stale_version_shows_the_reload_message_and_changes_nothing(world: World) -> None:
    case = report(world.grid_worker_a)
    client = browser(world.intake_operator)
    page = html(client.get(f"/cases/{case.number}/"))
    act(case, world.shift_leader, "accept")  # someone else is quicker

    response = client.post(
        f"/cases/{case.number}/act/register/",
        {"version": 1, "token": uuid.uuid4().hex},
    )

    assert 'name="version" value="1"' in form_of(page, "accept")
    assert response.status_code == 409
    assert "has changed since you loaded it" in html(response) and "reload" in html(response)
    case.refresh_from_db()
    assert case.state == State.ACCEPTED and case.version == 2


def test_submitting_the_same_form_twice_changes_the_case_once_and_says_so(world: World) -> None:
    case = report(world.grid_worker_a)
    client = browser(world.intake_operator)
    form = {"version": 1, "token": uuid.uuid4().hex}

    first = client.post(f"/cases/{case.number}/act/accept/", form)
    second = client.post(f"/cases/{case.number}/act/accept/", form)

    assert first.status_code == 302 and second.status_code == 302
    assert CaseEvent.objects.filter(case=case, action="accept").count() == 1
    assert "This was done already; nothing was changed." in html(client.get(second["Location"]))


def test_a_repeated_action_from_an_old_page_is_told_politely_that_it_was_done(
    world: World,
) -> None:
    case = report(world.grid_worker_a)
    client = browser(world.intake_operator)
    post_action(client, case, "accept")

    again = client.post(
        f"/cases/{case.number}/act/accept/", {"version": 1, "token": uuid.uuid4().hex}
    )

    assert again.status_code == 302
    assert "This was done already" in html(client.get(again["Location"]))
    assert CaseEvent.objects.filter(case=case, action="accept").count() == 1


def test_a_missing_reason_re_renders_the_form_with_422_and_changes_nothing(world: World) -> None:
    case = report(world.grid_worker_a)

    response = post_action(browser(world.intake_operator), case, "decline", reason="  ")

    page = html(response)
    assert response.status_code == 422
    assert "This field is required." in form_of(page, "decline")
    assert '<details class="action action--danger" data-action="decline" open>' in page
    case.refresh_from_db()
    assert case.state == State.REPORTED and case.version == 1


def test_a_user_who_may_not_take_an_action_is_refused_and_nothing_changes(world: World) -> None:
    case = walk(report(world.grid_worker_a), world, "accept", "register")

    response = post_action(
        browser(world.grid_worker_a), case, "dispatch", lead_unit="street-office-003"
    )

    assert response.status_code == 403
    assert "you may not dispatch this case" in html(response)
    case.refresh_from_db()
    assert case.state == State.REGISTERED


def test_an_action_that_is_not_in_the_table_is_not_found(world: World) -> None:
    case = report(world.grid_worker_a)
    response = post_action(browser(world.intake_operator), case, "teleport")
    assert response.status_code == 404


def test_the_unit_handler_feeds_back_with_a_photo_shown_on_the_timeline(
    world: World, media: Path
) -> None:
    case = walk(report(world.grid_worker_a), world, "accept", "register", "dispatch", "sign")
    client = browser(world.unit_handler)

    response = post_action(client, case, "feedback", note="已更换井盖", photos=[upload()])

    assert response.status_code == 302
    case.refresh_from_db()
    assert case.state == State.CHECKING
    photo = CasePhoto.objects.get(case=case)
    assert photo.event is not None and photo.event.action == "feedback"
    assert len(stored_files(media)) == 2  # the photo and its thumbnail
    page = html(client.get(f"/cases/{case.number}/"))
    assert f"/cases/{case.number}/photos/{photo.uuid}/thumb" in page


def test_photos_of_a_refused_action_are_deleted_again(world: World, media: Path) -> None:
    case = walk(report(world.grid_worker_a), world, "accept", "register", "dispatch", "sign")

    response = browser(world.unit_handler).post(
        f"/cases/{case.number}/act/feedback/",
        {"version": 1, "token": uuid.uuid4().hex, "note": "done", "photos": [upload()]},
    )

    assert response.status_code == 409
    assert stored_files(media) == []
    assert not CasePhoto.objects.filter(case=case).exists()


def test_a_file_that_is_no_photo_is_refused_next_to_the_photo_field(
    world: World, media: Path
) -> None:
    case = walk(report(world.grid_worker_a), world, "accept", "register", "dispatch", "sign")
    svg = SimpleUploadedFile("x.jpg", b"<svg xmlns='http://www.w3.org/2000/svg'/>")

    response = post_action(browser(world.unit_handler), case, "feedback", note="ok", photos=[svg])

    assert response.status_code == 422
    assert "is not a JPEG, PNG, WebP or HEIC image" in form_of(html(response), "feedback")
    assert stored_files(media) == []


def test_a_unit_that_sends_a_case_back_lands_on_its_to_do_list(world: World) -> None:
    case = walk(report(world.grid_worker_a), world, "accept", "register", "dispatch")

    response = post_action(browser(world.unit_handler), case, "send_back", reason="不归我们管")

    assert response.status_code == 302 and response["Location"] == "/cases/todo/"
    case.refresh_from_db()
    assert case.state == State.SENT_BACK and case.lead_unit is None


def test_the_merge_form_lists_the_duplicate_candidates(world: World) -> None:
    first = report(world.grid_worker_a)
    second = report(world.grid_worker_b, where=IN_GRID_A)
    page = html(browser(world.intake_operator).get(f"/cases/{second.number}/"))
    assert f'data-target="{first.number}"' in page
    assert f"Merge into {first.number}" in page


# --- photos ---------------------------------------------------------------------------------------


def photographed_case(world: World) -> tuple[Case, CasePhoto]:
    case = report(world.grid_worker_a, photos=[photo_save(data=jpeg())])
    return case, CasePhoto.objects.get(case=case)


def test_a_photo_is_served_as_jpeg_to_users_who_may_see_the_case(world: World) -> None:
    case, photo = photographed_case(world)
    client = browser(world.supervisor)

    full = client.get(f"/cases/{case.number}/photos/{photo.uuid}")
    thumb = client.get(f"/cases/{case.number}/photos/{photo.uuid}/thumb")

    for response in (full, thumb):
        assert response.status_code == 200
        assert response["Content-Type"] == "image/jpeg"
        assert "private" in response["Cache-Control"]
        assert b"".join(response.streaming_content).startswith(b"\xff\xd8")


def test_a_photo_is_not_served_to_users_who_may_not_see_the_case(world: World) -> None:
    case, photo = photographed_case(world)
    for user in (world.grid_worker_b, world.resident, world.unit_handler):
        response = browser(user).get(f"/cases/{case.number}/photos/{photo.uuid}")
        assert response.status_code == 404
    anonymous = Client().get(f"/cases/{case.number}/photos/{photo.uuid}")
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]


def test_a_photo_of_another_case_is_not_served_under_this_case(world: World) -> None:
    _case, photo = photographed_case(world)
    other = report(world.grid_worker_a)
    response = browser(world.supervisor).get(f"/cases/{other.number}/photos/{photo.uuid}")
    assert response.status_code == 404


# --- intake ---------------------------------------------------------------------------------------


def test_the_intake_queue_shows_reports_oldest_first_with_duplicates_side_by_side(
    world: World,
) -> None:
    first = report(world.grid_worker_a, photos=[photo_save(data=jpeg())])
    second = report(world.grid_worker_b, where=IN_GRID_A, photos=[photo_save(data=jpeg())])
    far = report(world.grid_worker_b, where=IN_GRID_B)
    dispatched = walk(report(world.grid_worker_a), world, "accept", "register", "dispatch")

    page = html(browser(world.intake_operator).get("/cases/intake/"))

    queue = re.findall(r'<li class="list__item case-card intake-case" data-case="([0-9-]+)"', page)
    assert queue == [first.number, second.number, far.number]
    assert dispatched.number not in queue
    assert f"Merge {second.number} into {first.number}" in page
    assert f"Merge {first.number} into {second.number}" in page
    assert f"Merge {far.number} into" not in page
    first_photo = CasePhoto.objects.get(case=first)
    assert f"/cases/{first.number}/photos/{first_photo.uuid}/thumb" in page
    assert 'data-submit="accept"' in page


def test_one_click_on_a_duplicate_merges_the_report_into_it(world: World) -> None:
    first = report(world.grid_worker_a)
    second = report(world.grid_worker_b, where=IN_GRID_A)
    client = browser(world.intake_operator)

    response = post_action(client, second, "merge", target=first.number, next="/cases/intake/")

    assert response.status_code == 302 and response["Location"] == "/cases/intake/"
    second.refresh_from_db()
    assert second.state == State.MERGED and second.merged_into == first
    assert CaseEvent.objects.filter(case=first, action="merged_in").exists()
    page = html(client.get(f"/cases/{first.number}/"))
    assert second.number in page  # listed among the duplicates merged in


def test_someone_without_an_intake_role_sees_no_intake_queue(world: World) -> None:
    case = report(world.grid_worker_a)
    response = browser(world.grid_worker_a).get("/cases/intake/")
    page = html(response)
    assert response.status_code == 200
    assert "This screen is for intake operators and shift leaders." in page
    assert case.number not in page and 'id="hotline-form"' not in page


def hotline_call(**overrides: Any) -> dict[str, Any]:
    lat, lon = IN_GRID_A
    return {
        "token": uuid.uuid4().hex,
        "category": "gbt47678:01002",
        "description": "来电：小区门口井盖丢失",
        "lat": str(lat),
        "lon": str(lon),
        "urgency": "normal",
        "reporter_name": "李先生",
        "reporter_phone": "13900001111",
        **overrides,
    }


def test_an_intake_operator_registers_a_hotline_call(world: World) -> None:
    category()
    client = browser(world.intake_operator)

    response = client.post("/cases/intake/", hotline_call())

    case = Case.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/cases/{case.number}/"
    assert case.source == Source.HOTLINE and case.reporter == world.intake_operator
    assert case.reporter_name == "李先生" and case.reporter_phone == "13900001111"
    assert case.region_code == world.grid_a.code


def test_a_hotline_call_outside_every_grid_is_refused_naming_the_nearest(world: World) -> None:
    category()
    response = browser(world.intake_operator).post(
        "/cases/intake/", hotline_call(lat="31.5", lon="118.82")
    )
    assert response.status_code == 422
    assert "lies in no grid; the nearest grid is" in html(response)
    assert not Case.objects.exists()


def test_only_intake_roles_may_register_a_hotline_call(world: World) -> None:
    category()
    response = browser(world.grid_worker_a).post("/cases/intake/", hotline_call())
    assert response.status_code == 403
    assert not Case.objects.exists()


# --- dispatch -------------------------------------------------------------------------------------


def test_the_dispatch_queue_offers_a_one_step_dispatch_with_the_suggested_unit(
    world: World,
) -> None:
    registered = walk(report(world.grid_worker_a), world, "accept", "register")
    reported = report(world.grid_worker_a)
    client = browser(world.dispatcher)

    page = html(client.get("/cases/dispatch/"))

    assert registered.number in page and reported.number not in page
    dispatch = form_of(page, "dispatch")
    assert 'data-action="dispatch" open>' in page
    assert '<option value="street-office-003" selected>' in dispatch
    response = post_action(
        client, registered, "dispatch", lead_unit="street-office-003", next="/cases/dispatch/"
    )
    assert response.status_code == 302 and response["Location"] == "/cases/dispatch/"
    registered.refresh_from_db()
    assert registered.state == State.DISPATCHED
    assert registered.lead_unit is not None and registered.lead_unit.code == "street-office-003"


def test_the_dispatch_queue_shows_a_request_for_more_time_with_approve_and_refuse(
    world: World,
) -> None:
    case = walk(report(world.grid_worker_a), world, "accept", "register", "dispatch", "sign")
    act(case, world.unit_handler, "request_extension", reason="材料未到", span="1d")

    page = html(browser(world.dispatcher).get("/cases/dispatch/"))

    assert case.number in page and "Asks for more time" in page
    assert 'data-action="approve_extension"' in page and 'data-action="refuse_extension"' in page


def test_an_urgent_report_is_offered_for_emergency_dispatch(world: World) -> None:
    case = report(world.grid_worker_a, urgency="urgent")
    page = html(browser(world.dispatcher).get("/cases/dispatch/"))
    assert case.number in page and 'data-action="urgent_dispatch"' in page


def test_someone_without_a_command_role_sees_no_dispatch_queue(world: World) -> None:
    walk(report(world.grid_worker_a), world, "accept", "register")
    page = html(browser(world.supervisor).get("/cases/dispatch/"))
    assert "This screen is for dispatchers and shift leaders." in page


# --- reporting ------------------------------------------------------------------------------------


def report_form(**overrides: Any) -> dict[str, Any]:
    lat, lon = IN_GRID_A
    return {
        "token": uuid.uuid4().hex,
        "category": "gbt47678:01002",
        "description": "井盖缺失",
        "lat": str(lat),
        "lon": str(lon),
        "urgency": "normal",
        **overrides,
    }


def test_the_report_form_renders_the_categories_as_json_data_and_works_without_javascript(
    world: World,
) -> None:
    with_attributes(category())
    page = html(browser(world.grid_worker_a).get("/cases/report/"))

    assert '<script id="category-data" type="application/json">' in page
    assert "Sewage manhole cover" in page and '<option value="gbt47678:01002">' in page
    assert re.search(r'<input type="file" name="photos"[^>]*capture="environment"', page)
    assert 'name="lat"' in page and 'name="lon"' in page  # typed coordinates work too
    assert 'name="attr-gbt47678-01002-damage"' in page
    assert 'name="solved"' in page
    scripts = re.findall(r"<script(?: [^>]*)?>", page)
    assert all("src=" in s or 'type="application/json"' in s for s in scripts)


def test_a_grid_worker_reports_with_a_photo_and_the_category_attributes(
    world: World, media: Path
) -> None:
    with_attributes(category())
    client = browser(world.grid_worker_a)

    response = client.post(
        "/cases/report/",
        report_form(
            **{
                "attr-gbt47678-01002-damage": "broken",
                "attr-gbt47678-01002-count": "2",
                "photos": [upload("a.jpg"), upload("b.jpg", jpeg((10, 120, 30)))],
            }
        ),
    )

    case = Case.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/cases/{case.number}/"
    assert case.source == Source.GRID_WORKER and case.state == State.REPORTED
    assert case.attributes == {"damage": "broken", "count": 2}
    assert case.photos.count() == 2 and len(stored_files(media)) == 4
    assert f"Case {case.number} reported." in html(client.get(response["Location"]))


def test_a_missing_required_attribute_is_shown_next_to_its_question(world: World) -> None:
    with_attributes(category())
    response = browser(world.grid_worker_a).post("/cases/report/", report_form())
    page = html(response)
    assert response.status_code == 422
    assert "损坏情况 is required" in page
    assert not Case.objects.exists()


def test_a_report_without_a_description_is_refused_with_the_form_kept(world: World) -> None:
    category()
    response = browser(world.grid_worker_a).post(
        "/cases/report/", report_form(description="", address="燕子矶")
    )
    page = html(response)
    assert response.status_code == 422
    assert "This field is required." in page and 'value="燕子矶"' in page


def test_the_photos_gps_position_stands_in_when_the_phone_gives_none(world: World) -> None:
    category()
    response = browser(world.grid_worker_a).post(
        "/cases/report/",
        report_form(
            lat="",
            lon="",
            keep_gps="on",
            photos=[upload(data=jpeg(gps=(32.05, 118.82)))],
        ),
    )
    assert response.status_code == 302
    case = Case.objects.get()
    assert case.region_code == world.grid_a.code
    assert case.lat == pytest.approx(32.05, abs=1e-4)
    assert CasePhoto.objects.get(case=case).gps_lat == pytest.approx(32.05, abs=1e-4)


def test_a_report_with_no_position_at_all_asks_where_it_is(world: World, media: Path) -> None:
    category()
    response = browser(world.grid_worker_a).post(
        "/cases/report/", report_form(lat="", lon="", photos=[upload()])
    )
    assert response.status_code == 422
    assert "Where is it?" in html(response)
    assert stored_files(media) == []


def test_a_report_outside_every_grid_stores_no_photo(world: World, media: Path) -> None:
    category()
    response = browser(world.grid_worker_a).post(
        "/cases/report/", report_form(lat="31.5", photos=[upload()])
    )
    assert response.status_code == 422
    assert "lies in no grid" in html(response)
    assert stored_files(media) == [] and not Case.objects.exists()


def test_a_grid_worker_reports_a_problem_solved_on_the_spot(world: World) -> None:
    category()
    client = browser(world.grid_worker_a)

    response = client.post(
        "/cases/report/",
        report_form(solved="on", solved_note="已盖好临时盖板", photos=[upload()]),
    )

    case = Case.objects.get()
    assert response.status_code == 302
    assert case.state == State.SELF_HANDLED
    events = list(case.events.values_list("action", "note"))
    assert events == [("report", ""), ("self_handle", "已盖好临时盖板")]
    assert "solved on the spot" in html(client.get(response["Location"]))


def test_solved_on_the_spot_needs_a_photo(world: World) -> None:
    category()
    response = browser(world.grid_worker_a).post("/cases/report/", report_form(solved="on"))
    assert response.status_code == 422
    assert "needs a photo of the result" in html(response)
    assert not Case.objects.exists()


def test_a_resident_reports_and_follows_their_case_without_the_self_handling_box(
    world: World,
) -> None:
    category()
    client = browser(world.resident)
    assert 'name="solved"' not in html(client.get("/cases/report/"))

    response = client.post("/cases/report/", report_form(solved="on"))

    case = Case.objects.get()
    assert case.source == Source.RESIDENT and case.state == State.REPORTED
    assert client.get(response["Location"]).status_code == 200


def test_the_same_report_sent_twice_creates_one_case(world: World) -> None:
    category()
    client = browser(world.grid_worker_a)
    form = report_form()

    first = client.post("/cases/report/", form)
    second = client.post("/cases/report/", form)

    assert Case.objects.count() == 1
    assert second.status_code == 302 and second["Location"] == first["Location"]
    assert "This report was sent already" in html(client.get(second["Location"]))
    assert IdempotencyRecord.objects.filter(user=world.grid_worker_a).count() == 1


def test_an_account_without_a_role_cannot_report(world: World) -> None:
    category()
    client = browser(world.nobody)
    assert "Your account has no role yet" in html(client.get("/cases/report/"))
    response = client.post("/cases/report/", report_form())
    assert response.status_code == 403 and not Case.objects.exists()


# --- the home page --------------------------------------------------------------------------------


def test_the_home_page_links_to_the_case_screens_for_the_users_roles(world: World) -> None:
    operator = html(browser(world.intake_operator).get("/"))
    assert 'id="home-todo"' in operator and 'id="home-intake"' in operator
    assert 'id="home-dispatch"' not in operator

    resident = html(browser(world.resident).get("/"))
    assert 'id="home-todo"' not in resident and "My reports" in resident
    assert 'id="home-report"' in resident

    assert 'id="home-dispatch"' in html(browser(world.shift_leader).get("/"))


def test_the_to_do_count_on_the_home_page_counts_the_users_cases(world: World) -> None:
    report(world.grid_worker_a)
    report(world.grid_worker_a)
    fragment = html(browser(world.intake_operator).get("/cases/todo/count/"))
    assert 'data-total="2"' in fragment and "(2)" in fragment
    assert Client().get("/cases/todo/count/").status_code == 401
