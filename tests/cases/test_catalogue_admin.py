"""The admin screens of the catalogue (forms checked like the import) and the read-only cases."""

from __future__ import annotations

import io
from typing import Any

from django.test import Client

from gridgov.cases.models import Category, EscalationRule
from tests.cases.factories import report
from tests.world import World

ADMIN = "/admin/cases"


def admin_client(world: World) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(world.admin)
    return client


def category_form(**fields: Any) -> dict[str, Any]:
    return {
        "scheme": "legacy",
        "klass": "event",
        "code": "0699",
        "parent": "",
        "name_zh": "测试事件",
        "name_en": "Test event",
        "is_active": "on",
        "order": "0",
        "default_unit_kind": "street_office",
        "urgency_levels": ["normal", "urgent"],
        "closing_criteria": "已处置",
        "register_limit": "",
        "urgent_register_limit": "",
        "sign_limit": "",
        "handle_limit": "4h",
        "check_limit": "",
        "duplicate_radius_m": "50",
        "duplicate_window_hours": "72",
        "attributes-TOTAL_FORMS": "0",
        "attributes-INITIAL_FORMS": "0",
        "attributes-MIN_NUM_FORMS": "0",
        "attributes-MAX_NUM_FORMS": "1000",
        **fields,
    }


def attribute_fields(index: int, **fields: Any) -> dict[str, Any]:
    base = {
        "code": "kind",
        "description": "什么情况？",
        "datatype": "singlevaluelist",
        "datatype_description": "",
        "order": "1",
        "values": "a=甲\nb=乙",
        "variable": "on",
        **fields,
    }
    return {f"attributes-{index}-{k}": v for k, v in base.items()}


def test_the_category_list_shows_real_codes_and_search_finds_both_classes(
    world: World, standard_categories: Any
) -> None:
    client = admin_client(world)
    page = client.get(f"{ADMIN}/category/?q=0102")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Sewage manhole cover" in text and "Exposed garbage" in text
    assert ">E0102<" not in text  # people read the standard's code
    assert "import-categories-link" in text and "export-categories-link" in text


def test_an_event_typed_with_its_plain_code_is_stored_with_its_prefix_under_its_major(
    world: World, standard_categories: Any
) -> None:
    form = category_form(**{"attributes-TOTAL_FORMS": "1"}, **attribute_fields(0))
    response = admin_client(world).post(f"{ADMIN}/category/add/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    created = Category.objects.get(scheme="legacy", code="E0699")
    assert (created.parent.code, created.handle_limit) == ("E06", "4h")
    [attribute] = created.attributes.all()
    assert attribute.values == [{"key": "a", "name": "甲"}, {"key": "b", "name": "乙"}]


def test_the_category_form_refuses_what_the_import_refuses(
    world: World, standard_categories: Any
) -> None:
    client = admin_client(world)
    bad_limit = client.post(f"{ADMIN}/category/add/", category_form(handle_limit="soon"))
    assert bad_limit.status_code == 200
    assert "is not a time limit" in bad_limit.content.decode()
    wrong_major = Category.objects.get(scheme="legacy", code="E05")
    response = client.post(f"{ADMIN}/category/add/", category_form(parent=str(wrong_major.pk)))
    assert "the major of E0699 is E06" in response.content.decode()
    no_values = category_form(**{"attributes-TOTAL_FORMS": "1"}, **attribute_fields(0, values=""))
    response = client.post(f"{ADMIN}/category/add/", no_values)
    assert "a list datatype needs at least one value" in response.content.decode()
    assert not Category.objects.filter(code="E0699").exists()


def test_the_import_page_checks_then_commits_a_json_file(
    world: World, standard_categories: Any, settings: Any, tmp_path: Any
) -> None:
    settings.MEDIA_ROOT = tmp_path
    client = admin_client(world)
    upload = io.BytesIO(b'[{"scheme": "legacy", "code": "0102", "handle_limit": "3h"}]')
    upload.name = "change.json"
    preview = client.post(f"{ADMIN}/category/import/", {"file": upload})
    text = preview.content.decode()
    assert "Dry run: nothing was written yet" in text and "handle_limit" in text
    token = preview.context["token"]
    assert Category.objects.get(scheme="legacy", code="0102").handle_limit == "2h"
    done = client.post(f"{ADMIN}/category/import/", {"_commit": "1", "token": token})
    assert "The import was committed: 0 created, 1 changed" in done.content.decode()
    assert Category.objects.get(scheme="legacy", code="0102").handle_limit == "3h"
    # the preview cannot be committed twice
    again = client.post(f"{ADMIN}/category/import/", {"_commit": "1", "token": token})
    assert "already committed or has expired" in again.content.decode()


def test_the_export_page_downloads_the_workbook(world: World, standard_categories: Any) -> None:
    response = admin_client(world).get(
        f"{ADMIN}/category/export/?scheme=social&format=xlsx&_export=1"
    )
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="categories-social-')


def test_an_escalation_rule_needs_a_real_span_and_role(world: World, db: None) -> None:
    client = admin_client(world)
    bad = client.post(
        f"{ADMIN}/escalationrule/add/",
        {"step": "sign", "after": "a day", "notify_role": "shift_leader"},
    )
    assert bad.status_code == 200 and "is not a time limit" in bad.content.decode()
    EscalationRule.objects.filter(step="sign").delete()
    good = client.post(
        f"{ADMIN}/escalationrule/add/",
        {"step": "sign", "after": "24 H", "notify_role": "shift_leader"},
    )
    assert good.status_code == 302
    assert EscalationRule.objects.get(step="sign").after == "24h"


def test_cases_are_read_only_with_the_reporters_phone_masked(
    world: World, standard_categories: Any
) -> None:
    case = report(
        world.grid_worker_a,
        reporter_phone="13912345678",
        reporter_name="张三",
        attributes={"damage": "missing"},
    )
    client = admin_client(world)
    page = client.get(f"{ADMIN}/case/{case.pk}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "139****5678" in text and "13912345678" not in text
    assert 'name="_save"' not in text  # nothing to save
    assert client.get(f"{ADMIN}/case/add/").status_code == 403
    assert client.post(f"{ADMIN}/case/{case.pk}/delete/", {"post": "yes"}).status_code == 403
    listed = client.get(f"{ADMIN}/case/")
    assert case.number in listed.content.decode()


def test_a_category_page_shows_its_attributes_with_their_values_one_per_line(
    world: World, standard_categories: Any
) -> None:
    cover = Category.objects.get(scheme="legacy", code="0102")
    page = admin_client(world).get(f"{ADMIN}/category/{cover.pk}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'value="damage"' in text
    assert "missing=缺失\nbroken=破损" in text
    assert 'name="urgency_levels" value="critical"' in text
