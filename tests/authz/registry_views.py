"""Authorization rules of the registry screens (/registry/).

Like the case screens, the lists (my grids, search, statistics) open for every logged-in user
and show only what the user's scope holds: someone whose roles see no base data gets a note.
The record pages are declared "login": a registry role in scope gets 200, everyone else 404
(never a 403 that would confirm the record exists, never a 500); they are called with the
grid-A records of tests/authz/registry.py. The access log is for administrators.

The forms and the writes are called with a record or grid nobody has, so every user gets 404
and an anonymous visitor the login page; who may add, change, close, tag and reveal, and the
grid worker of grid B's 404 on each record of grid A, are pinned persona by persona in
tests/registry/test_views.py.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.authz._base import Rule, static
from tests.authz.registry import GRIDS, grid_region, matrix_records

NOBODYS = "00000000-0000-4000-8000-000000000000"
NOBODYS_GRID = "320199999999999"


def page(kind: str, suffix: str = "") -> Callable[[str], str]:
    """The screen of the grid-A record of ``kind`` (made on first use)."""
    return lambda _obj: f"/registry/{kind}/{matrix_records()[kind].uuid}/{suffix}"


def _records() -> dict[str, list[Rule]]:
    rules: dict[str, list[Rule]] = {}
    for kind in ("building", "room", "household", "person", "organisation", "component"):
        rules[f"registry:{kind}"] = [Rule("GET", page(kind), "login")]
    for name, kind in (
        ("building_edit", "building"),
        ("room_edit", "room"),
        ("household_edit", "household"),
        ("person_edit", "person"),
        ("organisation_edit", "organisation"),
        ("component_edit", "component"),
        ("room_new", "building"),
        ("household_new", "room"),
        ("person_new", "household"),
    ):
        suffix = "edit/" if name.endswith("_edit") else name.replace("_new", "s/new/")
        suffix = suffix.replace("persons/", "people/")
        rules[f"registry:{name}"] = [
            Rule("GET", static(f"/registry/{kind}/{NOBODYS}/{suffix}"), "login")
        ]
    return rules


RULES: dict[str, list[Rule]] = {
    **_records(),
    "registry:home": [Rule("GET", static("/registry/"), "login")],
    "registry:search": [Rule("GET", static("/registry/search/?q=矩阵"), "login")],
    "registry:stats": [
        Rule("GET", static("/registry/stats/"), "login"),
        Rule("GET", static("/registry/stats/?region=320113003001001"), "login"),
    ],
    "registry:access_log": [Rule("GET", static("/registry/access-log/"), "admin")],
    # the ledger screens: every logged-in user gets the page (a note without base data); an
    # upload into grid A / the other district is for editors in scope (readers 403, the rest
    # 404); an import nobody has is 404 for everyone. Another grid's worker's 404 on a real
    # import, and who may check and commit it: tests/registry/test_views_ledger.py.
    "registry:ledger": [Rule("GET", static("/registry/ledger/"), "login")],
    "registry:ledger_upload": [
        Rule(
            "POST",
            lambda where: f"/registry/ledger/upload/?region={GRIDS[where]}",
            "registry_edit",
            region=grid_region,
        )
    ],
    "registry:ledger_progress": [
        Rule("GET", static("/registry/ledger/progress/?token=m"), "login")
    ],
    "registry:ledger_export": [Rule("GET", static("/registry/ledger/export/?format=csv"), "login")],
    "registry:ledger_import": [Rule("GET", static(f"/registry/ledger/{NOBODYS}/"), "login")],
    "registry:ledger_errors": [Rule("GET", static(f"/registry/ledger/{NOBODYS}/errors/"), "login")],
    "registry:ledger_check": [
        Rule(
            "POST", static(f"/registry/ledger/{NOBODYS}/check/"), "login", data={"column-0": "name"}
        )
    ],
    "registry:ledger_commit": [
        Rule("POST", static(f"/registry/ledger/{NOBODYS}/commit/"), "login")
    ],
    "registry:grid": [Rule("GET", static("/registry/grid/320113003001001/"), "login")],
    "registry:grid_buildings": [
        Rule("GET", static("/registry/grid/320113003001001/buildings.geojson"), "login")
    ],
    "registry:organisations": [
        Rule("GET", static("/registry/grid/320113003001001/organisations/"), "login")
    ],
    "registry:components": [
        Rule("GET", static("/registry/grid/320113003001001/components/"), "login")
    ],
    "registry:building_new": [
        Rule("GET", static(f"/registry/grid/{NOBODYS_GRID}/buildings/new/"), "login")
    ],
    "registry:organisation_new": [
        Rule("GET", static(f"/registry/grid/{NOBODYS_GRID}/organisations/new/"), "login")
    ],
    "registry:component_new": [
        Rule("GET", static(f"/registry/grid/{NOBODYS_GRID}/components/new/"), "login")
    ],
    "registry:person_reveal": [
        Rule(
            "POST",
            static(f"/registry/person/{NOBODYS}/reveal/"),
            "login",
            data={"fields_wanted": "id_number", "reason": "authorization matrix"},
        )
    ],
    "registry:person_tag_add": [
        Rule("POST", static(f"/registry/person/{NOBODYS}/tags/"), "login", data={"tag": "veteran"})
    ],
    "registry:person_tag_remove": [
        Rule("POST", static(f"/registry/person/{NOBODYS}/tags/veteran/remove/"), "login")
    ],
    "registry:close": [
        Rule(
            "POST",
            static(f"/registry/person/{NOBODYS}/close/"),
            "login",
            data={"version": "1", "closed_reason": "error", "reason": "authorization matrix"},
        )
    ],
    "registry:reopen": [
        Rule(
            "POST",
            static(f"/registry/person/{NOBODYS}/reopen/"),
            "login",
            data={"version": "1", "reason": "authorization matrix"},
        )
    ],
}
