"""CSRF: every web view refuses a POST without the CSRF token; the API refuses a session's
write without it, and takes a token's write without one (a token is not sent by browsers on
their own)."""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.test import Client
from django.urls import Resolver404, URLPattern, URLResolver, get_resolver, resolve

from gridgov.accounts import actions
from gridgov.accounts.models import ApiToken
from tests.world import World

CSRF_REFUSED = "X-Test-CSRF-Refused"
#: Probes answered by gridgov.core.observability's middleware before any view, whatever the
#: method: they read state and change nothing, so a forged POST gains nothing.
PROBES = {"/healthz", "/readyz", "/metrics"}

#: sample values for the path converters of Django's URL patterns
SAMPLES = {
    "uuid": str(uuid.UUID(int=1)),
    "int": "1",
    "str": "x",
    "slug": "x",
    "path": "x",
}
CONVERTER = re.compile(r"<(?:(?P<kind>\w+):)?(?P<name>\w+)>")


def csrf_refused(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW in these tests: marks the 403 as the CSRF check's own."""
    response = HttpResponseForbidden("CSRF refused")
    response[CSRF_REFUSED] = reason or "refused"
    return response


def web_paths() -> tuple[list[str], list[str]]:
    """A sample path of every web route (not the ninja API, checked below), and the patterns
    that could not be filled in."""
    paths: list[str] = []
    skipped: list[str] = []

    def walk(resolver: URLResolver, prefix: str) -> None:
        for p in resolver.url_patterns:
            pattern = str(p.pattern)
            if isinstance(p, URLResolver):
                walk(p, prefix + pattern)
            elif isinstance(p, URLPattern):
                route = prefix + pattern
                if "(?P<" in route or route.startswith("^") or "$" in route:
                    skipped.append(route)
                    continue
                filled = CONVERTER.sub(lambda m: SAMPLES[m.group("kind") or "str"], route)
                paths.append("/" + filled)

    walk(get_resolver(), "")
    return [p for p in paths if not p.startswith("/api/v1/") and p not in PROBES], skipped


def test_every_web_view_refuses_a_post_without_the_csrf_token(world: World, settings: Any) -> None:
    settings.CSRF_FAILURE_VIEW = "tests.core.test_security_csrf.csrf_refused"
    paths, skipped = web_paths()
    assert len(paths) > 50, paths
    # only the admin's regular-expression routes are not filled in (its pages are checked
    # through the others: the admin is one site behind one login)
    assert all(route.startswith("admin/") for route in skipped), skipped
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.admin)
    problems = []
    for path in paths:
        try:
            resolve(path)
        except Resolver404:
            problems.append(f"{path}: the sample path does not resolve")
            continue
        response = client.post(path, {"x": "1"})
        if response.status_code != 403 or CSRF_REFUSED not in response:
            problems.append(f"POST {path} without a CSRF token: {response.status_code}")
    assert not problems, "\n".join(problems)


def test_an_anonymous_login_post_without_the_csrf_token_is_refused(
    world: World, settings: Any
) -> None:
    settings.CSRF_FAILURE_VIEW = "tests.core.test_security_csrf.csrf_refused"
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/accounts/login/", {"username": "grid_worker_a", "password": "correct-horse-battery-9"}
    )
    assert response.status_code == 403 and CSRF_REFUSED in response
    assert "_auth_user_id" not in client.session


def csrf_token_of(client: Client) -> str:
    client.get("/accounts/tokens/")  # a page with a form sets the CSRF cookie
    return str(client.cookies["csrftoken"].value)


def test_a_session_api_write_without_the_csrf_token_is_refused(world: World) -> None:
    client = Client(enforce_csrf_checks=True, headers={"Accept-Language": "en"})
    client.force_login(world.supervisor)
    refused = client.post(
        "/api/v1/accounts/tokens", {"name": "forged"}, content_type="application/json"
    )
    assert refused.status_code == 403
    assert refused.json()["message"].startswith("CSRF check failed")
    assert not ApiToken.objects.filter(user=world.supervisor).exists()
    # reads need no token
    assert client.get("/api/v1/accounts/tokens").status_code == 200


def test_a_session_api_write_with_the_csrf_token_goes_through(world: World) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.supervisor)
    token = csrf_token_of(client)
    created = client.post(
        "/api/v1/accounts/tokens",
        {"name": "laptop"},
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )
    assert created.status_code == 201


def test_a_token_authenticated_api_write_needs_no_csrf_token(world: World) -> None:
    _, raw = actions.token_create(user=world.supervisor, name="script")
    client = Client(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {raw}"})
    created = client.post(
        "/api/v1/accounts/tokens", {"name": "made by a script"}, content_type="application/json"
    )
    assert created.status_code == 201
