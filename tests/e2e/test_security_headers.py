"""The content security policy in the browser: every main page works under it (no console
error, no policy violation) for the personas who use it, and an injected inline script is
blocked by it."""

from __future__ import annotations

import importlib
from collections.abc import Generator
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.conf import settings
from django.test import Client

from gridgov.accounts.models import User
from tests.cases.factories import category, report
from tests.world import World

#: Records every violation of the policy in the page (an init script is not subject to it).
WATCH_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " " + (e.blockedURI || "inline"));
});
"""


@pytest.fixture
def seeded(transactional_db: None) -> None:
    """The seeded clearances and tag types (a transactional test before this one may have
    flushed the rows the data migrations wrote)."""
    importlib.import_module("gridgov.privacy.migrations.0002_seed_clearance").seed(
        django_apps, None
    )
    importlib.import_module("gridgov.registry.migrations.0003_fill_buildings_seed_tags").seed_tags(
        django_apps, None
    )


class Watched:
    """A signed-in browser window whose tabs each collect their console errors and policy
    violations.

    ``open`` starts loading a page in a tab of its own and returns as soon as the answer
    begins to arrive, so that the pages load side by side; ``problems`` then waits for each
    tab's network to go quiet (no request for 500 ms, as ``goto(wait_until="networkidle")``
    does) and reports what each saw. One page after the other, every page spent its own half
    second of quiet, most of the test's time.
    """

    def __init__(self, browser: Any, base_url: str, session: str, *, phone: bool = False):
        options: dict[str, Any] = {"locale": "zh-CN"}
        if phone:
            options.update(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
        else:
            options.update(viewport={"width": 1280, "height": 860})
        self.base_url = base_url
        self.context = browser.new_context(**options)
        self.context.set_default_timeout(15_000)
        self.context.add_init_script(WATCH_VIOLATIONS)
        self.context.add_cookies(
            [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": base_url}]
        )
        self.tabs: dict[str, tuple[Any, Any, list[str]]] = {}

    def open(self, path: str) -> None:
        """Start loading ``path`` in a new tab (returns once its answer has begun to arrive)."""
        page = self.context.new_page()
        errors: list[str] = []
        page.on(
            "console",
            lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None,
        )
        page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
        response = page.goto(self.base_url + path, wait_until="commit")
        self.tabs[path] = (page, response, errors)

    def tab(self, path: str) -> Any:
        return self.tabs[path][0]

    def problems(self) -> list[str]:
        """Problems seen in each tab while its page loaded and its scripts ran."""
        found = []
        for path, (page, response, errors) in self.tabs.items():
            page.wait_for_load_state("networkidle")
            problems = list(errors)
            if response is None or response.status >= 400:
                problems.append(f"status {response.status if response else 'none'}")
            if "/accounts/login/" in page.url:
                problems.append(f"not signed in: sent to {page.url}")
            violations = page.evaluate("window.__cspViolations || []")
            problems += [f"policy violation: {v}" for v in violations]
            found += [f"{path}: {p}" for p in problems]
        return found

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def window(browser: Any, live_server: Any) -> Generator[Any, None, None]:
    """``window(username, phone=False)``: a browser window signed in as ``username``, through a
    session made for it (the sign-in form is not what these tests are about)."""
    opened: list[Watched] = []

    def open_as(username: str, *, phone: bool = False) -> Watched:
        client = Client()
        client.force_login(User.objects.get(username=username))
        session = client.cookies[settings.SESSION_COOKIE_NAME].value
        watched = Watched(browser, live_server.url, session, phone=phone)
        opened.append(watched)
        return watched

    yield open_as
    for watched in opened:
        watched.close()


def test_the_policy_header_is_strict(world: World, live_server: Any, browser: Any) -> None:
    page = browser.new_page()
    response = page.goto(live_server.url + "/accounts/login/")
    policy = response.headers["content-security-policy"]
    page.close()
    directives = dict(
        [*part.strip().split(" ", 1), ""][:2] for part in policy.split(";") if part.strip()
    )
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["base-uri"] == "'self'"
    assert directives["form-action"] == "'self'"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


def test_the_main_pages_run_under_the_policy_without_errors(
    world: World, seeded: None, window: Any
) -> None:
    category()
    case = report(world.grid_worker_a, description="路灯不亮")
    admin = window("admin")
    worker = window("grid_worker_a", phone=True)
    dispatcher = window("dispatcher")
    resident = window("resident", phone=True)
    visits = {
        admin: (
            "/",
            "/map/",
            "/cases/",
            f"/cases/{case.number}/",
            "/cases/report/",
            "/registry/",
            "/registry/stats/",
            "/admin/",
            "/admin/accounts/user/",
            f"/admin/accounts/user/{world.grid_worker_a.pk}/change/",
            "/accounts/tokens/",
            "/accounts/security/",
            "/accounts/two-factor/",
            "/api/docs",
        ),
        worker: (
            "/cases/report/",
            f"/registry/grid/{world.grid_a.code}/",
            f"/cases/{case.number}/",
            "/notifications/",
        ),
        dispatcher: ("/cases/todo/", "/cases/intake/", "/cases/dispatch/"),
        resident: ("/cases/report/", "/cases/"),
    }
    for watched, paths in visits.items():
        for path in paths:
            watched.open(path)
    problems = [problem for watched in visits for problem in watched.problems()]
    # the API documentation (Swagger UI, served from static files) really renders
    admin.tab("/api/docs").wait_for_selector(".swagger-ui .information-container")

    assert not problems, "\n".join(problems)


def _inject(route: Any, *, keep_policy: bool) -> None:
    """Answer the page with an inline script and an inline event handler put into its HTML,
    as an HTML-injection bug would."""
    original = route.fetch()
    body = original.text().replace(
        "</main>",
        '<script>window.__injected = "script ran";</script>'
        '<img src="/nowhere.png" onerror="window.__handler = \'handler ran\'"></main>',
    )
    headers = dict(original.headers)
    if not keep_policy:
        headers.pop("content-security-policy", None)
    route.fulfill(status=original.status, headers=headers, body=body)


def test_an_injected_inline_script_is_blocked_by_the_policy(
    world: World, live_server: Any, browser: Any
) -> None:
    context = browser.new_context()
    context.add_init_script(WATCH_VIOLATIONS)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.route("**/accounts/login/", lambda route: _inject(route, keep_policy=True))
    page.goto(live_server.url + "/accounts/login/", wait_until="networkidle")
    assert page.evaluate("window.__injected") is None
    assert page.evaluate("window.__handler") is None
    violations = page.evaluate("window.__cspViolations")
    assert any(v.startswith("script-src") for v in violations), violations
    assert any("Content Security Policy" in e for e in errors), errors
    context.close()

    # the same page without the policy runs both: the policy is what stopped them
    context = browser.new_context()
    page = context.new_page()
    page.route("**/accounts/login/", lambda route: _inject(route, keep_policy=False))
    page.goto(live_server.url + "/accounts/login/", wait_until="networkidle")
    assert page.evaluate("window.__injected") == "script ran"
    assert page.evaluate("window.__handler") == "handler ran"
    context.close()
