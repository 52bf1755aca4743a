"""Authorization rules of the registry and privacy APIs, and the registry screens' rules in and
out of scope.

Base data is for registry staff in scope only: a record or grid route is "registry" (the path
is called with a record, or grid, in grid A and with one in the other district; whoever's
``registry_scope`` covers it gets 200, everyone else 404 — a resident and a unit handler too,
though they have an in-scope region elsewhere; anonymous callers must log in), and a page that
changes base data is "registry_edit" (editors in scope 200, staff who only see it 403); a form
posted empty is "registry" too (refused or invalid in scope, 404 outside). Lists, searches and
statistics answer every logged-in user ("login"); they hold only what the user's scope holds,
which tests/registry/test_api_authz.py pins persona by persona together with the API's writes,
reveals and sensitive tags, on the records that ``matrix_records`` makes: one of each kind in
grid A and one in the other district.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tests.authz._base import Rule, static

API = "/api/v1/registry"
#: grid A (in the scope of most personas) and grid E (in the other district: admin only)
PLACES = {"in": (32.05, 118.82), "out": (31.95, 118.75)}
KINDS = ("building", "room", "household", "person", "organisation", "component")
PATHS = {
    "building": "buildings",
    "room": "rooms",
    "household": "households",
    "person": "people",
    "organisation": "organisations",
    "component": "components",
}


def _component_code(where: str) -> str:
    return (
        ("320113" if where == "in" else "320114")
        + "01002"
        + ("000001" if where == "in" else "000002")
    )


#: The records ``matrix_records`` found, while ``records_remembered`` is in effect.
_remembered: dict[str, dict[str, Any]] | None = None


@contextmanager
def records_remembered() -> Iterator[None]:
    """Within it, ``matrix_records`` looks the records of each place up once, not on each of
    its calls (the matrix calls it twice per rule, persona and place: six queries each time).
    For the span of one test: the test's database is rolled back after it."""
    global _remembered
    _remembered = {}
    try:
        yield
    finally:
        _remembered = None


def matrix_records(where: str = "in") -> dict[str, Any]:
    """A building, room, household, person (with id number, phone and a sensitive tag),
    organisation and component in grid A (``"in"``) or in the other district (``"out"``),
    made by the administrator through the actions on first use."""
    if _remembered is not None and where in _remembered:
        return _remembered[where]
    from gridgov.accounts.models import User
    from gridgov.registry import actions
    from gridgov.registry.models import (
        Building,
        Component,
        Household,
        Organisation,
        Person,
        Room,
    )
    from tests.cases.factories import category
    from tests.registry.factories import id_number

    estate = f"矩阵{where}"
    found = Building.objects.filter(estate=estate).first()
    if found is None:
        admin = User.objects.get(username="admin")
        lat, lon = PLACES[where]
        found = actions.building_create(actor=admin, lon=lon, lat=lat, estate=estate, number="1")
        room = actions.room_create(actor=admin, building=found, number="101")
        household = actions.household_create(actor=admin, room=room)
        actions.person_create(
            actor=admin,
            name=f"矩阵{where}",
            household=household,
            id_number=id_number(serial=11 if where == "in" else 12),
            phone="13800138000" if where == "in" else "13800138001",
            relation="head",
            tags=["elderly_alone", "community_correction"],
        )
        actions.organisation_create(
            actor=admin, name=estate, building=found, contact_phone="13900139000"
        )
        cover = category("01002", "污水井盖")
        actions.component_create(
            actor=admin,
            code=_component_code(where),
            category=cover,
            lon=lon,
            lat=lat,
        )
    room = Room.objects.get(building=found)
    household = Household.objects.get(room=room)
    records = {
        "building": found,
        "room": room,
        "household": household,
        "person": Person.objects.get(household=household),
        "organisation": Organisation.objects.get(building=found),
        "component": Component.objects.get(code=_component_code(where)),
    }
    if _remembered is not None:
        _remembered[where] = records
    return records


def record_path(kind: str, suffix: str = "") -> Callable[[str], str]:
    """The API path of the record of ``kind`` "in" grid A or "out" in the other district."""
    return lambda where: f"{API}/{PATHS[kind]}/{matrix_records(where)[kind].uuid}{suffix}"


def record_region(kind: str) -> Callable[[str], str]:
    return lambda where: str(matrix_records(where)[kind].region_code)


#: the grid "in" (grid A) and the grid "out" (grid E, in the other district)
GRIDS = {"in": "320113003001001", "out": "320114001001001"}


def grid_region(where: str) -> str:
    return GRIDS[where]


def _reads() -> dict[str, list[Rule]]:
    rules: dict[str, list[Rule]] = {}
    for kind in KINDS:
        rules[f"api:registry_{kind}_list"] = [Rule("GET", static(f"{API}/{PATHS[kind]}"), "login")]
        rules[f"api:registry_{kind}_detail"] = [
            Rule("GET", record_path(kind), "registry", region=record_region(kind))
        ]
        rules[f"api:registry_{kind}_history"] = [
            Rule("GET", record_path(kind, "/history"), "registry", region=record_region(kind))
        ]
        # writes: editors in scope 2xx, readers 403, the rest 404 (tests/registry/test_api_authz.py)
        for action in ("create", "update", "close", "reopen"):
            rules[f"api:registry_{kind}_{action}"] = []
    return rules


API_RULES: dict[str, list[Rule]] = {
    **_reads(),
    "api:registry_person_search": [Rule("GET", static(f"{API}/people/search?q=矩阵"), "login")],
    "api:registry_person_move": [],  # a write: tests/registry/test_api_authz.py
    "api:registry_person_reveal": [],  # reveal clearance: tests/registry/test_api_authz.py
    "api:registry_organisation_reveal": [],  # likewise
    "api:registry_person_tag_add": [],  # tag clearance: tests/registry/test_api_people.py
    "api:registry_person_tag_remove": [],  # likewise
    "api:registry_stats": [
        Rule("GET", static(f"{API}/stats"), "login"),
        Rule("GET", static(f"{API}/stats?region=320113003001001"), "login"),
    ],
    "api:registry_tag_types": [Rule("GET", static(f"{API}/tag-types"), "login")],
    # ledger import and export: lists and exports hold only the caller's scope; an import is
    # its importer's scope's (another grid's worker: 404, tests/registry/test_import_api.py)
    "api:ledger_imports": [Rule("GET", static(f"{API}/ledger/imports"), "login")],
    "api:ledger_templates": [Rule("GET", static(f"{API}/ledger/templates"), "login")],
    "api:registry_ledger_export": [],  # registry staff only, else 403: test_export.py
    "api:registry_ledger_upload": [],  # a write: tests/registry/test_import_api.py
    "api:registry_ledger_import": [],  # one import: tests/registry/test_import_api.py
    "api:registry_ledger_errors": [],  # likewise
    "api:ledger_import_preview": [],  # likewise
    "api:ledger_import_recheck": [],  # a write: likewise
    "api:ledger_import_commit": [],  # a write: likewise
    "api:privacy_clearance": [Rule("GET", static("/api/v1/privacy/clearance"), "login")],
    "api:privacy_reveal": [],  # tests/privacy/test_api.py
    "api:privacy_access_log": [Rule("GET", static("/api/v1/privacy/access-log"), "admin")],
}


# --- the screens (/registry/) -------------------------------------------------------------------


def page(kind: str, suffix: str = "") -> Callable[[str], str]:
    """The screen of the record of ``kind`` "in" grid A or "out" in the other district."""
    return lambda where: f"/registry/{kind}/{matrix_records(where)[kind].uuid}/{suffix}"


def grid_page(suffix: str = "") -> Callable[[str], str]:
    return lambda where: f"/registry/grid/{GRIDS[where]}/{suffix}"


def _seen(path: Callable[[str], str], region: Callable[[str], str]) -> list[Rule]:
    return [Rule("GET", path, "registry", region=region)]


def _edited(
    path: Callable[[str], str], region: Callable[[str], str], roles: frozenset[str] | None = None
) -> list[Rule]:
    return [Rule("GET", path, "registry_edit", region=region, roles=roles)]


def _posted(path: Callable[[str], str], region: Callable[[str], str]) -> list[Rule]:
    """A form posted empty: refused as invalid (or not allowed) in scope, 404 out of it; it
    changes nothing. Who may close, reopen, tag and reveal: tests/registry/test_views.py."""
    return [Rule("POST", path, "registry", region=region)]


def _screens() -> dict[str, list[Rule]]:
    from gridgov.registry.actions import COMPONENT_EDIT_ROLES

    person = record_region("person")
    return {
        "registry:home": [Rule("GET", static("/registry/"), "login")],
        "registry:search": [Rule("GET", static("/registry/search/?q=矩阵"), "login")],
        "registry:stats": [Rule("GET", static("/registry/stats/"), "login")],
        "registry:access_log": [Rule("GET", static("/registry/access-log/"), "admin")],
        "registry:grid": _seen(grid_page(), grid_region),
        "registry:grid_buildings": _seen(grid_page("buildings.geojson"), grid_region),
        "registry:building_new": _edited(grid_page("buildings/new/"), grid_region),
        "registry:organisations": _seen(grid_page("organisations/"), grid_region),
        "registry:organisation_new": _edited(grid_page("organisations/new/"), grid_region),
        "registry:components": _seen(grid_page("components/"), grid_region),
        "registry:component_new": _edited(
            grid_page("components/new/"), grid_region, COMPONENT_EDIT_ROLES
        ),
        "registry:building": _seen(page("building"), record_region("building")),
        "registry:building_edit": _edited(page("building", "edit/"), record_region("building")),
        "registry:room_new": _edited(page("building", "rooms/new/"), record_region("building")),
        "registry:room": _seen(page("room"), record_region("room")),
        "registry:room_edit": _edited(page("room", "edit/"), record_region("room")),
        "registry:household_new": _edited(page("room", "households/new/"), record_region("room")),
        "registry:household": _seen(page("household"), record_region("household")),
        "registry:household_edit": _edited(page("household", "edit/"), record_region("household")),
        "registry:person_new": _edited(
            page("household", "people/new/"), record_region("household")
        ),
        "registry:person": _seen(page("person"), person),
        "registry:person_edit": _edited(page("person", "edit/"), person),
        "registry:person_reveal": _posted(page("person", "reveal/"), person),
        "registry:person_tag_add": _posted(page("person", "tags/"), person),
        "registry:person_tag_remove": _posted(page("person", "tags/elderly_alone/remove/"), person),
        "registry:organisation": _seen(page("organisation"), record_region("organisation")),
        "registry:organisation_edit": _edited(
            page("organisation", "edit/"), record_region("organisation")
        ),
        "registry:component": _seen(page("component"), record_region("component")),
        "registry:component_edit": _edited(
            page("component", "edit/"), record_region("component"), COMPONENT_EDIT_ROLES
        ),
        "registry:close": [
            *_posted(page("person", "close/"), person),
            *_posted(page("component", "close/"), record_region("component")),
        ],
        "registry:reopen": [
            *_posted(page("building", "reopen/"), record_region("building")),
            *_posted(page("room", "reopen/"), record_region("room")),
            *_posted(page("household", "reopen/"), record_region("household")),
            *_posted(page("person", "reopen/"), person),
            *_posted(page("organisation", "reopen/"), record_region("organisation")),
            *_posted(page("component", "reopen/"), record_region("component")),
        ],
    }


RULES: dict[str, list[Rule]] = API_RULES
#: The screens' rules in and out of scope. tests/authz/registry_views.py (the screens' own
#: module) gives every screen its rule for the matrix; these are checked beside them by
#: tests/test_authorization_matrix.py::test_the_registry_screens_admit_registry_staff_in_scope.
SCREEN_RULES: dict[str, list[Rule]] = _screens()
