"""The content security policy in the browser: every main page works under it (no console
error, no policy violation) for the personas who use it, and an injected inline script is
blocked by it."""

from __future__ import annotations

import importlib
from collections.abc import Generator
from typing import Any

import pytest
from django.apps import apps as django_apps

from tests.cases.factories import category, report
from tests.e2e.conftest import login
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
    """A logged-in browser window that collects console errors and policy violations."""

    def __init__(self, browser: Any, base_url: str, *, phone: bool = False):
        options: dict[str, Any] = {"locale": "zh-CN"}
        if phone:
            options.update(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
        else:
            options.update(viewport={"width": 1280, "height": 860})
        self.context = browser.new_context(**options)
        self.context.set_default_timeout(15_000)
        self.context.add_init_script(WATCH_VIOLATIONS)
        self.page = self.context.new_page()
        self.page.base_url = base_url
        self.errors: list[str] = []
        self.page.on(
            "console",
            lambda msg: self.errors.append(f"console: {msg.text}") if msg.type == "error" else None,
        )
        self.page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))

    def visit(self, path: str) -> list[str]:
        """Problems seen while loading ``path`` and letting its scripts run."""
        self.errors.clear()
        response = self.page.goto(self.page.base_url + path, wait_until="networkidle")
        problems = list(self.errors)
        if response is None or response.status >= 400:
            problems.append(f"status {response.status if response else 'none'}")
        violations = self.page.evaluate("window.__cspViolations || []")
        problems += [f"policy violation: {v}" for v in violations]
        return [f"{path}: {p}" for p in problems]

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def window(browser: Any, live_server: Any) -> Generator[Any, None, None]:
    opened: list[Watched] = []

    def open_as(username: str, *, phone: bool = False) -> Watched:
        watched = Watched(browser, live_server.url, phone=phone)
        opened.append(watched)
        login(watched.page, username)
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
    problems: list[str] = []

    admin = window("admin")
    for path in (
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
    ):
        problems += admin.visit(path)
    # the API documentation (Swagger UI, served from static files) really renders
    admin.page.wait_for_selector(".swagger-ui .information-container")

    worker = window("grid_worker_a", phone=True)
    for path in (
        "/cases/report/",
        f"/registry/grid/{world.grid_a.code}/",
        f"/cases/{case.number}/",
        "/notifications/",
    ):
        problems += worker.visit(path)

    dispatcher = window("dispatcher")
    for path in ("/cases/todo/", "/cases/intake/", "/cases/dispatch/"):
        problems += dispatcher.visit(path)

    resident = window("resident", phone=True)
    for path in ("/cases/report/", "/cases/"):
        problems += resident.visit(path)

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
