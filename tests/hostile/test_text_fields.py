"""Hostile text in the text fields of the main write endpoints, through the JSON API and the HTML
forms: markup and script (stored as text, rendered escaped, inline script blocked by the content
security policy), SQL-like strings (no error, no effect), NUL characters (a 422 naming the field,
nothing stored, on SQLite and on PostgreSQL), right-to-left and zero-width characters (refused in
codes and numbers, kept in free text) and ten megabytes of text (a 4xx with a message)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from gridgov.accounts.models import ApiToken, Unit, User
from gridgov.cases.catalogue import catalogue_export
from gridgov.cases.models import Case, CaseEvent, Category, CategoryAttribute
from gridgov.geo.models import Region
from gridgov.registry.models import Building, Component, Household, Organisation, Person
from tests.cases.factories import IN_GRID_A, category, report
from tests.hostile.conftest import (
    SCRIPT,
    SQL_INPUTS,
    ApiClient,
    assert_escaped,
    assert_nothing_stored,
    assert_refused,
)
from tests.registry.factories import building, person
from tests.world import World

pytestmark = pytest.mark.django_db

LAT, LON = IN_GRID_A
SHORT_SCRIPT = "<script>x</script>"  # for fields of 20 or 30 characters
RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE
ZWSP = "\u200b"  # ZERO WIDTH SPACE
BOM = "\ufeff"  # ZERO WIDTH NO-BREAK SPACE (byte order mark)


def remark_category() -> Category:
    """The test category with a free-text attribute (and no required ones)."""
    cat = category()
    CategoryAttribute.objects.get_or_create(
        category=cat, code="remark", defaults={"datatype": "string", "description": "备注"}
    )
    return cat


def case_report(**overrides: Any) -> dict[str, Any]:
    return {"category": "01002", "description": "井盖缺失", "lat": LAT, "lon": LON, **overrides}


def csp_blocks_inline_script(response: Any) -> None:
    """The page's content security policy forbids inline script."""
    policy = response.get("Content-Security-Policy")
    if policy is None:
        pytest.skip("CSP lands with the security work")
    script_src = next(
        (
            part
            for part in policy.split(";")
            if part.strip().startswith(("script-src ", "default-src "))
        ),
        "",
    )
    assert script_src, policy
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src, policy


def page_of(client: Any, url: str) -> tuple[Any, str]:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response, response.content.decode()


# --- markup and script: stored as text, rendered escaped -------------------------------------


@pytest.mark.parametrize("field", ["description", "address", "attribute-remark", "reporter_name"])
def test_script_in_a_case_report_field_is_stored_as_text_and_shown_escaped(
    world: World, api: Callable[[str], ApiClient], web: Any, field: str
) -> None:
    remark_category()
    reporter = "intake_operator" if field == "reporter_name" else "grid_worker_a"
    payload = case_report(source="hotline") if field == "reporter_name" else case_report()
    if field == "attribute-remark":
        payload["attributes"] = {"remark": SCRIPT}
    else:
        payload[field] = SCRIPT
    r = api(reporter).post_json("/api/v1/cases", payload)
    assert r.status_code == 201, r.content
    body = r.json()
    stored = body["attributes"]["remark"] if field == "attribute-remark" else body[field]
    assert stored == SCRIPT
    response, html = page_of(web("dispatcher"), f"/cases/{body['number']}/")
    assert_escaped(html)
    csp_blocks_inline_script(response)


@pytest.mark.parametrize("field", ["note", "reason"])
def test_script_in_an_action_note_or_reason_is_kept_on_the_timeline_and_shown_escaped(
    world: World, api: Callable[[str], ApiClient], web: Any, field: str
) -> None:
    case = report(world.grid_worker_a)
    action = "accept" if field == "note" else "decline"
    r = api("intake_operator").post_json(
        f"/api/v1/cases/{case.number}/actions/{action}", {"version": 1, field: SCRIPT}
    )
    assert r.status_code == 200, r.content
    assert r.json()["timeline"][-1]["note"] == SCRIPT
    _response, html = page_of(web("intake_operator"), f"/cases/{case.number}/")
    assert_escaped(html)


def test_script_in_the_web_report_form_is_stored_as_text_and_shown_escaped(
    world: World, web: Any
) -> None:
    category()
    client = web("grid_worker_a")
    response = client.post(
        "/cases/report/",
        {
            "token": uuid.uuid4().hex,
            "category": "gbt47678:01002",
            "description": SCRIPT,
            "address": SCRIPT,
            "urgency": "normal",
            "lat": str(LAT),
            "lon": str(LON),
        },
    )
    assert response.status_code == 302, response.content[:300]
    case = Case.objects.get()
    assert case.description == SCRIPT and case.address == SCRIPT
    response, html = page_of(client, f"/cases/{case.number}/")
    assert_escaped(html)
    csp_blocks_inline_script(response)


def test_script_in_the_web_action_form_note_is_kept_and_shown_escaped(
    world: World, web: Any
) -> None:
    case = report(world.grid_worker_a)
    client = web("intake_operator")
    response = client.post(
        f"/cases/{case.number}/act/accept/",
        {"version": 1, "token": uuid.uuid4().hex, "note": SCRIPT},
    )
    assert response.status_code == 302, response.content[:300]
    assert CaseEvent.objects.get(case=case, action="accept").note == SCRIPT
    _response, html = page_of(client, f"/cases/{case.number}/")
    assert_escaped(html)


REGISTRY_FIELDS = [
    ("buildings", "estate"),
    ("buildings", "number"),
    ("buildings", "address"),
    ("people", "name"),
    ("people", "ethnicity"),
    ("households", "number"),
    ("organisations", "name"),
    ("organisations", "legal_rep"),
    ("organisations", "contact_name"),
    ("organisations", "address"),
]


def registry_body(world: World, kind: str) -> dict[str, Any]:
    if kind == "buildings":
        return {"lat": LAT, "lon": LON, "estate": "和畅园", "number": "1栋"}
    if kind == "people":
        return {"name": "张三", "grid": world.grid_a.code}
    if kind == "households":
        return {"grid": world.grid_a.code, "number": "H1"}
    return {"name": "和畅便利店", "kind": "company", "lat": LAT, "lon": LON}


REGISTRY_PAGES = {
    "buildings": "/registry/building/{uuid}/",
    "people": "/registry/person/{uuid}/",
    "households": "/registry/household/{uuid}/",
    "organisations": "/registry/organisation/{uuid}/",
}


@pytest.mark.parametrize(
    ("kind", "field"), REGISTRY_FIELDS, ids=[f"{k}.{f}" for k, f in REGISTRY_FIELDS]
)
def test_script_in_a_registry_field_is_stored_as_text_and_shown_escaped(
    world: World, api: Callable[[str], ApiClient], web: Any, kind: str, field: str
) -> None:
    value = SHORT_SCRIPT if field in ("ethnicity", "number") else SCRIPT
    r = api("grid_worker_a").post_json(
        f"/api/v1/registry/{kind}", {**registry_body(world, kind), field: value}
    )
    assert r.status_code == 201, r.content
    assert r.json()[field] == value
    response, html = page_of(
        web("grid_worker_a"), REGISTRY_PAGES[kind].format(uuid=r.json()["uuid"])
    )
    assert_escaped(html, raw=value)
    csp_blocks_inline_script(response)


def test_script_in_a_component_is_stored_as_text_and_shown_escaped(
    world: World, api: Callable[[str], ApiClient], web: Any
) -> None:
    category("01002")
    r = api("grid_worker_a").post_json(
        "/api/v1/registry/components",
        {
            "code": "32011301002000001",
            "category": "01002",
            "lat": LAT,
            "lon": LON,
            "address": SCRIPT,
            "owner_unit": SCRIPT,
        },
    )
    assert r.status_code == 201, r.content
    assert r.json()["address"] == SCRIPT
    _response, html = page_of(web("grid_worker_a"), f"/registry/component/{r.json()['uuid']}/")
    assert_escaped(html)


def test_script_in_the_web_building_and_person_forms_is_stored_as_text_and_shown_escaped(
    world: World, web: Any
) -> None:
    client = web("grid_worker_a")
    response = client.post(
        f"/registry/grid/{world.grid_a.code}/buildings/new/",
        {"estate": SCRIPT, "number": "8栋", "kind": "residential", "lat": LAT, "lon": LON},
    )
    assert response.status_code == 302, response.content[:300]
    made = Building.objects.get()
    assert made.estate == SCRIPT
    _response, html = page_of(client, f"/registry/building/{made.uuid}/")
    assert_escaped(html)
    home = person(world.grid_worker_a).household
    assert home is not None
    response = client.post(
        f"/registry/household/{home.uuid}/people/new/",
        {"name": SCRIPT, "person_type": "registered", "verification": "unverified"},
    )
    assert response.status_code == 302, response.content[:300]
    someone = Person.objects.get(name=SCRIPT)
    _response, html = page_of(client, f"/registry/person/{someone.uuid}/")
    assert_escaped(html)


def test_a_building_named_with_markup_travels_as_json_text_to_the_grid_map(
    world: World, web: Any
) -> None:
    """The grid page's map reads the buildings as GeoJSON (JSON strings, never HTML); the
    browser test (tests/e2e/test_hostile_markup.py) proves registry.js shows them as text."""
    building(world.grid_worker_a, estate=SCRIPT)
    response = web("grid_worker_a").get(f"/registry/grid/{world.grid_a.code}/buildings.geojson")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/")
    labels = [f["properties"]["label"] for f in response.json()["features"]]
    assert any(SCRIPT in label for label in labels)


def test_a_category_named_with_script_is_escaped_in_the_report_form_and_its_json_data(
    world: World, api: Callable[[str], ApiClient], web: Any
) -> None:
    category()
    rows = catalogue_export()
    for row in rows:
        if row["code"] == "01002":
            row["name_zh"] = row["name_en"] = "</script>" + SCRIPT
    doc = {"format": "gridgov-categories", "version": 1, "categories": rows}
    r = api("admin").post_json("/api/v1/categories/import", doc)
    assert r.status_code == 200, r.content
    assert Category.objects.get(code="01002").name_en == "</script>" + SCRIPT
    response, html = page_of(web("grid_worker_a"), "/cases/report/")
    assert "<script>alert" not in html and "</script><script" not in html
    # the category data island holds the name with < escaped as \u003C
    island = re.search(
        r'<script id="category-data" type="application/json">(.*?)</script>', html, re.S
    )
    assert island is not None and "\\u003C/script\\u003E" in island.group(1)
    csp_blocks_inline_script(response)


def test_a_category_named_with_script_in_the_admin_is_stored_and_shown_escaped(
    world: World, web: Any
) -> None:
    major = category().parent
    assert major is not None
    Category.objects.filter(pk=major.pk).update(name_en=SCRIPT, name_zh=SCRIPT)
    _response, html = page_of(web("admin"), f"/admin/cases/category/{major.pk}/change/")
    assert_escaped(html)
    _response, html = page_of(web("admin"), "/admin/cases/category/")
    assert_escaped(html)


def test_a_region_named_with_script_in_a_division_import_is_stored_and_shown_escaped(
    world: World, api: Callable[[str], ApiClient], web: Any
) -> None:
    quoted = SCRIPT.replace('"', '""')
    csv_text = f'code,name,level,parent_code\n320113003009,"{quoted}",community,320113003\n'
    r = api("admin").post(
        "/api/v1/geo/regions/import-divisions",
        {"file": SimpleUploadedFile("divisions.csv", csv_text.encode("utf-8"))},
    )
    assert r.status_code == 200, r.content
    assert Region.objects.get(code="320113003009").name == SCRIPT
    _response, html = page_of(web("admin"), "/regions/320113003009/")
    assert_escaped(html)


def test_a_display_name_with_script_is_stored_and_shown_escaped_where_staff_are_listed(
    world: World, api: Callable[[str], ApiClient], web: Any
) -> None:
    r = api("admin").patch_json(
        "/api/v1/accounts/users/grid_worker_a", {"display_name": SCRIPT[:60]}
    )
    assert r.status_code == 200, r.content
    assert User.objects.get(username="grid_worker_a").display_name == SCRIPT[:60]
    _response, html = page_of(web("admin"), f"/regions/{world.grid_a.code}/staff/")
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    case = report(world.grid_worker_a)
    _response, html = page_of(web("dispatcher"), f"/cases/{case.number}/")
    assert "<script>alert" not in html


def test_a_unit_name_with_script_is_stored_and_shown_escaped_in_the_admin(
    world: World, api: Callable[[str], ApiClient], web: Any
) -> None:
    r = api("admin").post_json(
        "/api/v1/accounts/units", {"code": "xss-unit", "name": SCRIPT, "kind": "city_department"}
    )
    assert r.status_code == 201, r.content
    unit = Unit.objects.get(code="xss-unit")
    assert unit.name == SCRIPT
    _response, html = page_of(web("admin"), "/admin/accounts/unit/")
    assert_escaped(html)


# --- SQL-like strings: stored as text, no error, no effect ------------------------------------


@pytest.mark.parametrize("text", SQL_INPUTS.values(), ids=SQL_INPUTS.keys())
def test_an_sql_like_description_is_stored_verbatim_and_changes_nothing_else(
    world: World, api: Callable[[str], ApiClient], text: str
) -> None:
    category()
    cases_before = Case.objects.count()
    r = api("grid_worker_a").post_json("/api/v1/cases", case_report(description=text, address=text))
    assert r.status_code == 201, r.content
    assert r.json()["description"] == text and r.json()["address"] == text
    assert Case.objects.count() == cases_before + 1
    assert User.objects.count() == len(world.users)


SEARCHES = [
    ("case list", "/api/v1/cases", "q"),
    ("registry people", "/api/v1/registry/people", "q"),
    ("registry search", "/api/v1/registry/people/search", "q"),
    ("registry buildings", "/api/v1/registry/buildings", "q"),
    ("registry organisations", "/api/v1/registry/organisations", "q"),
    ("registry components", "/api/v1/registry/components", "q"),
    ("region search", "/api/v1/geo/regions", "q"),
    ("category search", "/api/v1/categories", "q"),
    ("user search", "/api/v1/accounts/users", "q"),
]


@pytest.mark.parametrize("text", SQL_INPUTS.values(), ids=SQL_INPUTS.keys())
def test_an_sql_like_search_finds_nothing_and_breaks_nothing(
    world: World, api: Callable[[str], ApiClient], text: str
) -> None:
    report(world.grid_worker_a)
    building(world.grid_worker_a)
    wrong = {}
    for label, url, param in SEARCHES:
        r = api("admin").get(url, {param: text})
        if r.status_code == 422:  # a search the endpoint refuses as malformed names the problem
            assert_refused(r, 422)
            continue
        if r.status_code != 200:
            wrong[label] = r.status_code
            continue
        body = r.json()
        items = body if isinstance(body, list) else body.get("items", body.get("results", []))
        if items:
            wrong[label] = items
    assert not wrong, wrong
    assert Case.objects.count() == 1 and Building.objects.count() == 1
    assert User.objects.count() == len(world.users)


@pytest.mark.parametrize("text", SQL_INPUTS.values(), ids=SQL_INPUTS.keys())
def test_an_sql_like_search_on_the_web_case_list_and_registry_search_answers_a_page(
    world: World, web: Any, text: str
) -> None:
    report(world.grid_worker_a)
    for url, param in (("/cases/", "text"), ("/registry/search/", "q"), ("/map/", "q")):
        response = web("dispatcher" if url != "/registry/search/" else "grid_worker_a").get(
            url, {param: text}
        )
        assert response.status_code == 200, (url, response.status_code)
    assert Case.objects.count() == 1


# --- NUL characters: a 422 naming the field, nothing stored ----------------------------------

NUL = "a\x00b"

NUL_WRITES = [
    ("case description", "/api/v1/cases", "grid_worker_a", lambda w: case_report(description=NUL)),
    ("case address", "/api/v1/cases", "grid_worker_a", lambda w: case_report(address=NUL)),
    (
        "case attribute value",
        "/api/v1/cases",
        "grid_worker_a",
        lambda w: case_report(attributes={"remark": NUL}),
    ),
    (
        "case attribute key",
        "/api/v1/cases",
        "grid_worker_a",
        lambda w: case_report(attributes={"re\x00mark": "x"}),
    ),
    ("case category", "/api/v1/cases", "grid_worker_a", lambda w: case_report(category="01\x0002")),
    ("unknown key", "/api/v1/cases", "grid_worker_a", lambda w: case_report(**{"x\x00": 1})),
    (
        "building estate",
        "/api/v1/registry/buildings",
        "grid_worker_a",
        lambda w: {**registry_body(w, "buildings"), "estate": NUL},
    ),
    (
        "person name",
        "/api/v1/registry/people",
        "grid_worker_a",
        lambda w: {**registry_body(w, "people"), "name": NUL},
    ),
    (
        "person id number",
        "/api/v1/registry/people",
        "grid_worker_a",
        lambda w: {**registry_body(w, "people"), "id_number": "32011319900101\x00001"},
    ),
    (
        "household number",
        "/api/v1/registry/households",
        "grid_worker_a",
        lambda w: {**registry_body(w, "households"), "number": NUL},
    ),
    (
        "organisation name",
        "/api/v1/registry/organisations",
        "grid_worker_a",
        lambda w: {**registry_body(w, "organisations"), "name": NUL},
    ),
    (
        "user display name",
        "/api/v1/accounts/users",
        "admin",
        lambda w: {"username": "newcomer", "display_name": NUL},
    ),
    (
        "unit code",
        "/api/v1/accounts/units",
        "admin",
        lambda w: {"code": NUL, "name": "x", "kind": "city_department"},
    ),
    ("token name", "/api/v1/accounts/tokens", "grid_worker_a", lambda w: {"name": NUL}),
]

NUL_MODELS = (Case, CaseEvent, Building, Person, Household, Organisation, User, Unit, ApiToken)


@pytest.mark.parametrize(
    ("label", "url", "persona", "body"), NUL_WRITES, ids=[w[0] for w in NUL_WRITES]
)
def test_a_nul_character_in_a_json_field_is_refused_naming_it_and_nothing_is_stored(
    world: World,
    api: Callable[[str], ApiClient],
    label: str,
    url: str,
    persona: str,
    body: Callable[[World], dict[str, Any]],
) -> None:
    remark_category()
    client = api(persona)
    with assert_nothing_stored(*NUL_MODELS):
        r = client.post_json(url, body(world))
    assert_refused(r, 422, "NUL")


def test_a_nul_character_in_a_calendar_override_name_is_refused(
    world: World, api: Callable[[str], ApiClient]
) -> None:
    from gridgov.core.models import CalendarOverride

    with assert_nothing_stored(CalendarOverride):
        r = api("admin").put(
            "/api/v1/core/calendar/overrides/2026-12-01",
            json.dumps({"kind": "holiday", "name": NUL}),
            content_type="application/json",
        )
    assert_refused(r, 422, "NUL")


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/cases",
        "/api/v1/registry/people/search",
        "/api/v1/geo/regions",
        "/api/v1/accounts/users",
        "/api/v1/privacy/access-log",
    ],
)
def test_a_nul_character_in_a_query_parameter_is_a_400_not_a_database_error(
    world: World, api: Callable[[str], ApiClient], url: str
) -> None:
    r = api("admin").get(url, {"q": "a\x00b", "user": "\x00"})
    assert_refused(r, 400, "NUL")


def test_a_nul_character_in_a_web_search_is_a_400_with_a_message(world: World, web: Any) -> None:
    for url in ("/cases/?text=%00", "/registry/search/?q=a%00", "/map/?q=%00"):
        response = web("grid_worker_a").get(url)
        assert response.status_code == 400, url
        assert "NUL" in response.content.decode()


def test_a_nul_character_in_the_path_is_a_400(
    world: World, api: Callable[[str], ApiClient]
) -> None:
    assert_refused(api("dispatcher").get("/api/v1/cases/320113%00"), 400, "NUL")
    assert_refused(api("dispatcher").get("/api/v1/geo/regions/%00/staff"), 400, "NUL")


def test_a_nul_character_in_a_web_form_field_is_refused_and_nothing_is_stored(
    world: World, web: Any
) -> None:
    category()
    with assert_nothing_stored(Case, Building):
        response = web("grid_worker_a").post(
            "/cases/report/",
            {
                "token": uuid.uuid4().hex,
                "category": "gbt47678:01002",
                "description": NUL,
                "urgency": "normal",
                "lat": str(LAT),
                "lon": str(LON),
            },
        )
        assert response.status_code == 422
        response = web("grid_worker_a").post(
            f"/registry/grid/{world.grid_a.code}/buildings/new/",
            {"estate": NUL, "number": "8", "kind": "residential", "lat": LAT, "lon": LON},
        )
        assert response.status_code == 422


# --- right-to-left override and zero-width characters ----------------------------------------
#
# Codes and numbers (id numbers, credit codes, component codes, category, unit and region codes,
# usernames) refuse them: an invisible character makes two codes that look alike differ.
# Free text (descriptions, notes, names, addresses) keeps them as typed (a zero-width joiner
# belongs in some words and emoji; an override only changes how the text is shown, and it is
# shown escaped, inside its own element); address de-duplication ignores them.

INVISIBLE = {"rlo": RLO, "zwsp": ZWSP, "bom": BOM}


@pytest.mark.parametrize("char", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_an_invisible_character_in_an_id_number_is_refused(
    world: World, api: Callable[[str], ApiClient], char: str
) -> None:
    from tests.registry.factories import id_number

    number = id_number()
    with assert_nothing_stored(Person):
        r = api("grid_worker_a").post_json(
            "/api/v1/registry/people",
            {**registry_body(world, "people"), "id_number": number[:9] + char + number[9:]},
        )
    assert_refused(r, 422, "id number")


@pytest.mark.parametrize("char", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_an_invisible_character_in_a_credit_code_or_component_code_is_refused(
    world: World, api: Callable[[str], ApiClient], char: str
) -> None:
    category("01002")
    with assert_nothing_stored(Organisation, Component):
        r = api("grid_worker_a").post_json(
            "/api/v1/registry/organisations",
            {
                **registry_body(world, "organisations"),
                "credit_code": "91320113" + char + "MA1X2Y3Z4W",
            },
        )
        assert_refused(r, 422, "credit code")
        r = api("grid_worker_a").post_json(
            "/api/v1/registry/components",
            {"code": "3201130100" + char + "2000001", "category": "01002", "lat": LAT, "lon": LON},
        )
        assert_refused(r, 422, "component code")


@pytest.mark.parametrize("char", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_an_invisible_character_in_a_username_or_unit_code_is_refused(
    world: World, api: Callable[[str], ApiClient], char: str
) -> None:
    with assert_nothing_stored(User, Unit):
        r = api("admin").post_json("/api/v1/accounts/users", {"username": f"wang{char}fang"})
        assert_refused(r, (400, 422), "username")
        r = api("admin").post_json(
            "/api/v1/accounts/units",
            {"code": f"unit{char}1", "name": "x", "kind": "city_department"},
        )
        assert_refused(r, (400, 422), "code")


@pytest.mark.parametrize("char", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_an_invisible_character_in_a_region_code_of_a_division_import_is_refused(
    world: World, api: Callable[[str], ApiClient], char: str
) -> None:
    csv_text = f"code,name,level,parent_code\n320113003{char}009,新社区,community,320113003\n"
    with assert_nothing_stored(Region):
        r = api("admin").post(
            "/api/v1/geo/regions/import-divisions",
            {"file": SimpleUploadedFile("divisions.csv", csv_text.encode("utf-8"))},
        )
    assert_refused(r, 422, "error")


@pytest.mark.parametrize("char", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_an_invisible_character_in_a_category_code_of_an_import_is_refused(
    world: World, api: Callable[[str], ApiClient], char: str
) -> None:
    category()
    rows = catalogue_export()
    rows.append({**rows[-1], "code": f"0100{char}3", "attributes": []})
    doc = {"format": "gridgov-categories", "version": 1, "categories": rows}
    with assert_nothing_stored(Category):
        r = api("admin").post_json("/api/v1/categories/import", doc)
    assert_refused(r, 422)


@pytest.mark.parametrize("char", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_an_invisible_character_in_free_text_is_kept_as_typed(
    world: World, api: Callable[[str], ApiClient], web: Any, char: str
) -> None:
    category()
    text = f"井盖{char}缺失 abc{char}"
    r = api("grid_worker_a").post_json("/api/v1/cases", case_report(description=text))
    assert r.status_code == 201, r.content
    assert r.json()["description"] == text
    r = api("grid_worker_a").post_json(
        "/api/v1/registry/people", {**registry_body(world, "people"), "name": f"王{char}芳"}
    )
    assert r.status_code == 201 and r.json()["name"] == f"王{char}芳"


@pytest.mark.parametrize("char", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_an_invisible_character_does_not_make_a_registered_address_new(
    world: World, api: Callable[[str], ApiClient], char: str
) -> None:
    client = api("grid_worker_a")
    assert (
        client.post_json(
            "/api/v1/registry/buildings", registry_body(world, "buildings")
        ).status_code
        == 201
    )
    with assert_nothing_stored(Building):
        r = client.post_json(
            "/api/v1/registry/buildings",
            {**registry_body(world, "buildings"), "estate": f"和{char}畅园"},
        )
    assert_refused(r, 409)


# --- ten megabytes of text ---------------------------------------------------------------------

TEN_MB = "井" * (10 * 1024 * 1024 // 3)  # 10 MB of UTF-8


@pytest.mark.parametrize(
    ("label", "url", "persona", "body"),
    [
        (
            "case description",
            "/api/v1/cases",
            "grid_worker_a",
            lambda w: case_report(description=TEN_MB),
        ),
        (
            "case attribute",
            "/api/v1/cases",
            "grid_worker_a",
            lambda w: case_report(attributes={"remark": TEN_MB}),
        ),
        (
            "building address",
            "/api/v1/registry/buildings",
            "grid_worker_a",
            lambda w: {**registry_body(w, "buildings"), "address": TEN_MB},
        ),
        (
            "person name",
            "/api/v1/registry/people",
            "grid_worker_a",
            lambda w: {**registry_body(w, "people"), "name": TEN_MB},
        ),
    ],
    ids=["case-description", "case-attribute", "building-address", "person-name"],
)
def test_ten_megabytes_in_a_text_field_answer_422_with_the_limit(
    world: World,
    api: Callable[[str], ApiClient],
    label: str,
    url: str,
    persona: str,
    body: Callable[[World], dict[str, Any]],
) -> None:
    remark_category()
    with assert_nothing_stored(Case, Building, Person):
        r = api(persona).post_json(url, body(world))
    assert_refused(r, 422)
    assert re.search(r"at most|limit|longer than", r.json()["message"]), r.json()["message"]


def test_ten_megabytes_in_an_action_note_answer_422(
    world: World, api: Callable[[str], ApiClient]
) -> None:
    case = report(world.grid_worker_a)
    with assert_nothing_stored(CaseEvent):
        r = api("intake_operator").post_json(
            f"/api/v1/cases/{case.number}/actions/accept", {"version": 1, "note": TEN_MB}
        )
    assert_refused(r, 422, "note")


def test_ten_megabytes_of_text_as_the_whole_body_answer_400_naming_the_problem(
    world: World, api: Callable[[str], ApiClient]
) -> None:
    with assert_nothing_stored(Case):
        r = api("grid_worker_a").post("/api/v1/cases", TEN_MB, content_type="application/json")
    assert_refused(r, 400, "not valid JSON")


def test_a_body_over_the_request_limit_answers_413_before_it_is_read(
    world: World, api: Callable[[str], ApiClient], settings: Any
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
    with assert_nothing_stored(Case):
        r = api("grid_worker_a").post(
            "/api/v1/cases",
            json.dumps(case_report(description=TEN_MB)),
            content_type="application/json",
        )
    assert_refused(r, 413, "at most")


def test_a_web_form_over_the_request_limit_answers_413_as_text(
    world: World, web: Any, settings: Any
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
    with assert_nothing_stored(Case):
        page = web("grid_worker_a").post(
            "/cases/report/",
            "description=" + "y" * 2_000_000,
            content_type="application/x-www-form-urlencoded",
        )
    assert page.status_code == 413 and "at most" in page.content.decode()


def test_ten_megabytes_in_a_web_form_field_are_refused_with_the_form(
    world: World, web: Any
) -> None:
    category()
    with assert_nothing_stored(Case):
        response = web("grid_worker_a").post(
            "/cases/report/",
            {
                "token": uuid.uuid4().hex,
                "category": "gbt47678:01002",
                "description": TEN_MB,
                "urgency": "normal",
                "lat": str(LAT),
                "lon": str(LON),
            },
        )
    assert response.status_code == 422
    assert "at most" in response.content.decode()
