"""Every URL and API route × every persona × an object in and out of the persona's scope.

A route without a rule here fails ``test_every_route_has_an_authorization_rule``: adding a
page or an endpoint means saying who may use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from http.cookies import SimpleCookie
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from gridgov.accounts import actions
from tests.authz._base import Rule, static
from tests.authz.registry import records_remembered
from tests.world import PERSONAS, World

ANON = "anonymous"

# The in-scope object of each persona: a region inside what they serve. The out-of-scope object
# lies in another district (nobody but the administrator serves it).
IN_SCOPE = {
    "admin": "320113003001001",
    "leader": "320113003001001",
    "intake_operator": "320113005001001",
    "shift_leader": "320113003002001",
    "dispatcher": "320113003001002",
    "unit_handler": "320113003001002",
    "supervisor": "320113003002001",
    "grid_leader": "320113003001002",
    "grid_worker_a": "320113003001001",
    "grid_worker_b": "320113003001002",
    "resident": "320113003001",
    "nobody": None,
    ANON: None,
}
OUT_OF_SCOPE = "320114001001001"
ALL = [*PERSONAS, "nobody"]


RULES: dict[str, list[Rule]] = {
    "home": [Rule("GET", static("/"), "login")],
    "healthz": [Rule("GET", static("/healthz"), "public")],
    "accounts:login": [Rule("GET", static("/accounts/login/"), "public")],
    "accounts:logout": [Rule("POST", static("/accounts/logout/"), "public")],
    "accounts:tokens": [Rule("GET", static("/accounts/tokens/"), "login")],
    "accounts:token_revoke": [Rule("POST", lambda t: f"/accounts/tokens/{t}/revoke/", "own")],
    "geo:map": [Rule("GET", static("/map/"), "login")],
    "geo:region": [Rule("GET", lambda c: f"/regions/{c}/", "scoped", region_object=True)],
    "geo:staff": [Rule("GET", lambda c: f"/regions/{c}/staff/", "serve", region_object=True)],
    "set_language": [Rule("POST", static("/i18n/setlang/"), "public", data={"language": "en"})],
    "favicon": [Rule("GET", static("/favicon.ico"), "public")],
    "api_docs": [Rule("GET", static("/api/docs"), "public")],
    "api:api-root": [Rule("GET", static("/api/v1/"), "public")],
    "api:openapi-json": [Rule("GET", static("/api/v1/openapi.json"), "public")],
    "api:openapi-view": [Rule("GET", static("/api/v1/docs"), "public")],
    "api:locate": [
        Rule("GET", static("/api/v1/geo/locate?lat=32.05&lon=118.82"), "login"),
        Rule(
            "POST",
            static("/api/v1/geo/locate"),
            "login",
            data={"points": [{"lat": 32.05, "lon": 118.82}]},
            json=True,
        ),
    ],
    "api:locate_bulk": [],  # same path as api:locate (POST), covered there
    "api:region_list": [Rule("GET", static("/api/v1/geo/regions"), "login")],
    "api:regions_import": [Rule("POST", static("/api/v1/geo/regions/import"), "admin")],
    "api:regions_import_divisions": [
        Rule("POST", static("/api/v1/geo/regions/import-divisions"), "admin")
    ],
    "api:regions_export": [Rule("GET", static("/api/v1/geo/regions/export"), "admin")],
    "api:grids_preview": [
        Rule(
            "POST",
            static("/api/v1/geo/grids/preview"),
            "admin",
            data={"community": "320113003001", "area_m2": 1000000},
            json=True,
        ),
    ],
    "api:grids_generate": [
        Rule(
            "POST",
            static("/api/v1/geo/grids/generate"),
            "admin",
            data={"community": "320113003001", "area_m2": 1000000},
            json=True,
        ),
    ],
    "api:region_detail": [
        Rule("GET", lambda c: f"/api/v1/geo/regions/{c}", "scoped", region_object=True)
    ],
    "api:region_staff": [
        Rule("GET", lambda c: f"/api/v1/geo/regions/{c}/staff", "serve", region_object=True)
    ],
    "api:region_map": [Rule("GET", static("/api/v1/geo/map"), "login")],
    "api:me": [Rule("GET", static("/api/v1/accounts/me"), "login")],
    "api:token_list": [Rule("GET", static("/api/v1/accounts/tokens"), "login")],
    "api:token_create": [],  # same path as api:token_list (POST)
    "api:token_revoke": [Rule("DELETE", lambda t: f"/api/v1/accounts/tokens/{t}", "own")],
    "api:unit_list": [Rule("GET", static("/api/v1/accounts/units"), "login")],
    "api:unit_create": [  # same path as api:unit_list (POST)
        Rule(
            "POST",
            static("/api/v1/accounts/units"),
            "admin",
            data={"code": "matrix-unit", "name": "Matrix", "kind": "other"},
            json=True,
        )
    ],
    "api:unit_update": [
        Rule(
            "PATCH",
            lambda o: (
                f"/api/v1/accounts/units/{'street-office-003' if o == 'in' else 'yuhua-office'}"
            ),
            "region_admin",
            data={"is_active": True},
        )
    ],
    "api:user_list": [Rule("GET", static("/api/v1/accounts/users"), "admin")],
    "api:user_create": [  # same path as api:user_list (POST)
        Rule("POST", static("/api/v1/accounts/users"), "admin", data={"username": "m"}, json=True)
    ],
    "api:user_get": [
        Rule(
            "GET",
            lambda o: f"/api/v1/accounts/users/{'grid_worker_a' if o == 'in' else 'leader'}",
            "region_admin",
        )
    ],
    "api:user_update": [  # same path as api:user_get (PATCH); changes nothing
        Rule(
            "PATCH",
            lambda o: f"/api/v1/accounts/users/{'grid_worker_a' if o == 'in' else 'leader'}",
            "region_admin",
            data={"email": ""},
        )
    ],
    "api:user_role_assign": [  # a role grid_worker_a holds already: changes nothing
        Rule(
            "POST",
            static("/api/v1/accounts/users/grid_worker_a/roles"),
            "admin",
            data={"role": "grid_worker", "region": "320113003001001"},
            json=True,
        )
    ],
    "api:user_role_revoke": [  # a role grid_worker_a does not hold: 404 for administrators
        Rule(
            "DELETE",
            static("/api/v1/accounts/users/grid_worker_a/roles?role=resident&region=320113003001"),
            "admin",
        )
    ],
    "api:user_unlock": [
        Rule(
            "POST",
            lambda o: f"/api/v1/accounts/users/{'grid_worker_a' if o == 'in' else 'leader'}/unlock",
            "region_admin",
        )
    ],
    "api:calendar_days": [
        Rule("GET", static("/api/v1/core/calendar/days?start=2026-12-28&end=2027-01-10"), "login")
    ],
    "api:calendar_deadline": [
        Rule(
            "GET",
            static("/api/v1/core/calendar/deadline?start=2026-12-30T10:00:00%2B08:00&days=1"),
            "login",
        )
    ],
    "api:calendar_override": [  # PUT and DELETE share the path
        Rule(
            "PUT",
            static("/api/v1/core/calendar/overrides/2030-06-03"),
            "admin",
            data={"kind": "holiday", "note": "authorization matrix"},
            json=True,
        ),
        Rule("DELETE", static("/api/v1/core/calendar/overrides/2030-06-03"), "admin"),
    ],
}


def _more_rules() -> None:
    """Apps add their routes' rules in tests/authz/<app>.py (a ``RULES`` dict of the same kind)."""
    import importlib
    import pkgutil

    import tests.authz

    for info in pkgutil.iter_modules(tests.authz.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"tests.authz.{info.name}")
        clash = set(RULES) & set(module.RULES)
        assert not clash, f"rules given twice: {sorted(clash)}"
        RULES.update(module.RULES)


_more_rules()


def iter_routes() -> list[tuple[str, str]]:
    """(rule key, route pattern) of every URL the site answers."""
    found: list[tuple[str, str]] = []

    def walk(resolver: URLResolver, prefix: str, namespace: str | None) -> None:
        for p in resolver.url_patterns:
            if isinstance(p, URLResolver):
                walk(p, prefix + str(p.pattern), p.namespace or namespace)
            elif isinstance(p, URLPattern):
                name = p.name or "<unnamed>"
                found.append(
                    (f"{namespace}:{name}" if namespace else name, prefix + str(p.pattern))
                )

    walk(get_resolver(), "", None)
    return found


def test_every_route_has_an_authorization_rule() -> None:
    missing = [
        f"{key} ({pattern})"
        for key, pattern in iter_routes()
        if not key.startswith("admin:") and key not in RULES
    ]
    assert not missing, "routes without an authorization rule: " + ", ".join(missing)


#: The session key of each persona signed in during the running test. A check's client holds
#: that session's cookie and nothing else instead of signing in again (a sign-in is about 18
#: queries, three to six times a request's), so the matrix signs in about once per persona; a
#: check whose requests end or replace the session (logging out) is the last to use it, and
#: ``check`` makes sure no check runs on a session that had already ended.
_sessions: dict[str, str] = {}
#: One client per persona, its cookies emptied for each check (a new client would load the
#: middleware again on its first request).
_clients: dict[str, Client] = {}


@pytest.fixture(autouse=True)
def _one_sign_in_and_one_lookup_per_test() -> Iterator[None]:
    """Sessions and the registry's records live as long as the test's database: one test."""
    _sessions.clear()
    _clients.clear()
    with records_remembered():
        yield
    _sessions.clear()
    _clients.clear()


def _fresh_client(name: str) -> Client:
    """``name``'s client with no cookies, as a new one would have."""
    client = _clients.setdefault(name, Client())
    client.cookies = SimpleCookie()
    return client


def _signed_in(name: str, user: Any) -> Client:
    client = _fresh_client(name)
    key = _sessions.get(name)
    if key is None:
        client.force_login(user)
        _sessions[name] = client.cookies[settings.SESSION_COOKIE_NAME].value
    else:
        client.cookies[settings.SESSION_COOKIE_NAME] = key
    return client


def _forget_if_ended(name: str, client: Client) -> bool:
    """Forget ``name``'s session when the client's requests ended or replaced it (Django
    empties the cookie when it finds a session gone or no longer valid for its user)."""
    cookie = client.cookies.get(settings.SESSION_COOKIE_NAME)
    if cookie is not None and cookie.value == _sessions.get(name):
        return False
    _sessions.pop(name, None)
    return True


def client_for(world: World, persona: str) -> Client:
    """A client signed in as ``persona`` (anonymous for ANON)."""
    if persona == ANON:
        return _fresh_client(ANON)
    return _signed_in(persona, world.users[persona])


def street_admin_client(world: World) -> Client:
    """A client of an administrator of street 320113003 only (made on first use)."""
    from gridgov.accounts.models import Role, User

    user = User.objects.filter(username="street_admin").first()
    if user is None:
        user = actions.user_create(username="street_admin", password=None)
        actions.role_assign(user=user, role=Role.ADMINISTRATOR, region=world.regions["320113003"])
    return _signed_in("street_admin", user)


def matrix_cases(world: World) -> list[Any]:
    """A case in grid A dispatched to street-office-003, and one in another district (made on
    first use, through the real actions)."""
    from gridgov.accounts.models import Role, User
    from gridgov.cases.models import Case
    from tests.cases.factories import act, category, report

    found = list(Case.objects.filter(description__startswith="matrix").order_by("pk"))
    if found:
        return found
    category()
    inside = report(world.grid_worker_a, description="matrix in")
    for actor, action, inputs in (
        (world.intake_operator, "accept", {}),
        (world.intake_operator, "register", {}),
        (world.dispatcher, "dispatch", {"lead_unit": "street-office-003"}),
    ):
        inside = act(inside, actor, action, **inputs)
    elsewhere_worker = User.objects.filter(username="grid_worker_e").first()
    if elsewhere_worker is None:
        elsewhere_worker = actions.user_create(username="grid_worker_e", password=None)
        actions.role_assign(user=elsewhere_worker, role=Role.GRID_WORKER, region=world.grid_e)
    outside = report(elsewhere_worker, where=(31.95, 118.75), description="matrix out")
    return [inside, outside]


def call(client: Client, rule: Rule, obj: str) -> Any:
    path = rule.path(obj)
    if rule.method == "GET":
        return client.get(path)
    if rule.method == "DELETE":
        return client.delete(path)
    if rule.method == "PUT":
        return client.put(path, rule.data or {}, content_type="application/json")
    if rule.method == "PATCH":
        return client.patch(path, rule.data or {}, content_type="application/json")
    if rule.json:
        return client.post(path, rule.data or {}, content_type="application/json")
    return client.post(path, rule.data or {})


def denied(response: Any) -> bool:
    return response.status_code in (403, 404)


def must_log_in(response: Any) -> bool:
    if response.status_code == 401:
        return True
    return response.status_code == 302 and "/login/" in response["Location"]


def check(key: str, rule: Rule, world: World, persona: str) -> list[str]:
    """Problems of one route for one persona; empty when access is as the rule says."""
    if persona == ANON:
        return _check(key, rule, world, persona, client_for(world, persona))
    reused = persona in _sessions
    client = client_for(world, persona)
    problems = _check(key, rule, world, persona, client)
    if _forget_if_ended(persona, client) and reused:
        # The session was signed in for an earlier check. Had something else ended it before
        # this check began (a request of another user can), this check's requests ran signed
        # out: check again, signed in for this check alone, as every check once was.
        client = client_for(world, persona)
        problems = _check(key, rule, world, persona, client)
        _forget_if_ended(persona, client)
    return problems


def _check(key: str, rule: Rule, world: World, persona: str, client: Client) -> list[str]:
    problems: list[str] = []

    def expect(ok: bool, response: Any, what: str) -> None:
        if response.status_code >= 500 or not ok:
            problems.append(f"{key} {rule.method} {what} as {persona}: got {response.status_code}")

    if rule.access == "public":
        r = call(client, rule, "")
        expect(r.status_code not in (401, 403), r, "public")
    elif rule.access == "probe":  # /readyz, /metrics: no sign-in; 503 is "not ready", no error
        r = call(client, rule, "")
        if r.status_code not in (200, 503):
            problems.append(f"{key} {rule.method} probe as {persona}: got {r.status_code}")
    elif rule.access == "login":
        r = call(client, rule, "")
        expect(
            must_log_in(r) if persona == ANON else r.status_code < 400 or r.status_code == 404,
            r,
            "any user",
        )
    elif rule.access in ("scoped", "serve"):
        inside = IN_SCOPE.get(persona)
        for obj, label in (
            (inside or world.grid_a.code, "in scope"),
            (OUT_OF_SCOPE, "out of scope"),
        ):
            r = call(client, rule, obj)
            if persona == ANON:
                expect(must_log_in(r), r, label)
            elif persona == "admin" or (inside is not None and label == "in scope"):
                expect(r.status_code == 200, r, label)
            else:
                wanted = 403 if rule.access == "serve" and persona != "nobody" else None
                expect(denied(r) if wanted is None else r.status_code in (403, 404), r, label)
    elif rule.access == "own":
        victim = world.users["grid_worker_a" if persona != "grid_worker_a" else "grid_worker_b"]
        others, _ = actions.token_create(user=victim, name="victim")
        r = call(client, rule, str(others.uuid))
        others.refresh_from_db()
        if persona == ANON:
            expect(must_log_in(r), r, "someone else's token")
        elif others.revoked_at is not None or r.status_code == 200:
            problems.append(f"{key} {rule.method} as {persona}: revoked someone else's token")
        if persona != ANON:
            mine, _ = actions.token_create(user=world.users[persona], name="mine")
            r = call(client, rule, str(mine.uuid))
            mine.refresh_from_db()
            expect(mine.revoked_at is not None, r, "own token")
    elif rule.access == "admin":
        r = call(client, rule, "")
        if persona == ANON:
            expect(must_log_in(r), r, "administrators only")
        elif persona == "admin":
            expect(r.status_code != 403, r, "administrators only")
        else:
            expect(r.status_code == 403, r, "administrators only")
    elif rule.access == "region_admin":
        for obj in ("in", "out"):
            r = call(client, rule, obj)
            if persona == ANON:
                expect(must_log_in(r), r, f"administrators only ({obj})")
            elif persona == "admin":
                expect(r.status_code < 400, r, f"administrators only ({obj})")
            else:
                expect(r.status_code == 403, r, f"administrators only ({obj})")
        if persona == "admin":
            street = street_admin_client(world)
            r = call(street, rule, "in")
            expect(r.status_code < 400, r, "as the street administrator, inside their street")
            r = call(street, rule, "out")
            expect(r.status_code in (403, 404), r, "as the street administrator, outside it")
            _forget_if_ended("street_admin", street)
    elif rule.access == "case":
        from gridgov.cases.selectors import case_visible

        user = world.users.get(persona)
        for case in matrix_cases(world):
            r = call(client, rule, case.number)
            label = f"case in {case.region_code}"
            if persona == ANON:
                expect(must_log_in(r), r, label)
            elif user is not None and case_visible(case, user):
                ok = r.status_code == 200 if rule.method == "GET" else r.status_code != 404
                expect(ok and r.status_code not in (401, 404), r, label)
            else:
                expect(denied(r), r, label)
    elif rule.access in ("registry", "registry_edit"):
        problems.extend(_check_registry(key, rule, world, persona, client))
    else:  # pragma: no cover - a typo in RULES
        problems.append(f"{key}: unknown access {rule.access!r}")
    return problems


def _check_registry(key: str, rule: Rule, world: World, persona: str, client: Client) -> list[str]:
    """Base data: 404 outside the persona's registry scope, 200 (a GET) inside it; for a
    "registry_edit" page, 403 inside it for those who see but may not change."""
    from gridgov.registry.actions import EDIT_ROLES, edit_scope
    from gridgov.registry.selectors import registry_scope

    assert rule.region is not None, f"{key}: a registry rule names the region of its objects"
    problems: list[str] = []
    user = world.users.get(persona)
    for obj in ("in", "out"):
        region = rule.region(obj)
        r = call(client, rule, obj)
        status = r.status_code
        if persona == ANON:
            ok, wanted = must_log_in(r), "the login"
        elif not registry_scope(user).covers(region):
            ok, wanted = status == 404, "404 (not in their registry scope)"
        elif rule.access == "registry_edit" and not edit_scope(
            user, rule.roles or EDIT_ROLES
        ).covers(region):
            ok, wanted = status == 403, "403 (sees but may not change)"
        elif rule.method == "GET":
            ok, wanted = status == 200, "200"
        else:
            ok, wanted = status not in (401, 404), "no 401 or 404"
        if status >= 500 or not ok:
            problems.append(
                f"{key} {rule.method} {obj} ({region}) as {persona}: got {status}, wanted {wanted}"
            )
    return problems


def test_every_route_admits_exactly_the_personas_its_rule_names(world: World) -> None:
    problems: list[str] = []
    for key, rules in RULES.items():
        for rule in rules:
            for persona in [ANON, *ALL]:
                problems.extend(check(key, rule, world, persona))
    assert not problems, "\n".join(problems)


def test_the_registry_screens_admit_registry_staff_in_scope(world: World) -> None:
    """Every registry screen with a record or grid in grid A and one in the other district:
    registry staff in scope get the page, editors the forms, everyone else 404."""
    from tests.authz.registry import SCREEN_RULES

    routes = {key for key, _pattern in iter_routes() if key.startswith("registry:")}
    assert set(SCREEN_RULES) <= routes, sorted(set(SCREEN_RULES) - routes)
    problems: list[str] = []
    for key, rules in SCREEN_RULES.items():
        for rule in rules:
            for persona in [ANON, *ALL]:
                problems.extend(check(key, rule, world, persona))
    assert not problems, "\n".join(problems)


_ADMIN_OBJECT = re.compile(r"<(path:object_id|id)>|<path:content_type_id>")


def test_the_admin_site_is_for_administrators_only(world: World) -> None:
    routes = [(k, p) for k, p in iter_routes() if k.startswith("admin:")]
    assert routes
    problems: list[str] = []
    for persona in [ANON, *ALL]:
        client = client_for(world, persona)
        for key, pattern in routes:
            if "(?P<" in pattern:
                continue
            path = "/" + _ADMIN_OBJECT.sub("1", pattern)
            if key == "admin:logout":
                continue
            r = client.get(path)
            if r.status_code >= 500:
                problems.append(f"{key} {path} as {persona}: {r.status_code}")
            elif persona != "admin" and key != "admin:login" and r.status_code == 200:
                problems.append(f"{key} {path} as {persona}: let in")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("persona", ALL)
def test_no_persona_sees_the_other_districts_grid_in_lists(world: World, persona: str) -> None:
    client = client_for(world, persona)
    listed = client.get("/api/v1/geo/regions?limit=1000").json()
    shown = {r["code"] for r in listed}
    assert (OUT_OF_SCOPE in shown) is (persona == "admin")
    mapped = {f["properties"]["code"] for f in client.get("/api/v1/geo/map").json()["features"]}
    assert (OUT_OF_SCOPE in mapped) is (persona == "admin")
