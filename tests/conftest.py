from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

from tests.world import World, build_world

# Playwright's sync API runs an event loop in the test thread; Django's ORM refuses to run
# there unless told that this is the test process's own choice.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def world(db: None) -> World:
    """Regions, units and one user per persona (see tests/world.py)."""
    return build_world()


@pytest.fixture
def english() -> Generator[None, None, None]:
    """Run the test in English, for tests that assert the (English) wording of messages.

    The UI defaults to Simplified Chinese; messages are translated when they are raised, so a
    direct call of an action or a command answers in the active language. Requests from the test
    client choose their own language: send ``Accept-Language: en`` there instead.
    """
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def _plain_static_files(settings: Any) -> None:
    """Tests render templates without running collectstatic first."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _fresh_rate_limits(settings: Any) -> None:
    """Rate-limit counters live in this process's memory during tests, empty for each test
    (the file cache under var/ would be shared with every other test run on the machine)."""
    from django.core.cache import caches

    settings.CACHES = {
        **settings.CACHES,
        "ratelimit": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "gridgov-tests-ratelimit",
        },
    }
    caches["ratelimit"].clear()


@pytest.fixture(autouse=True)
def _fast_password_hashing(request: pytest.FixtureRequest, settings: Any) -> None:
    """Argon2 is deliberately slow; tests use a fast hasher unless marked ``argon2``."""
    if request.node.get_closest_marker("argon2") is None:
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _default_language() -> Generator[None, None, None]:
    """Each test starts in the site's default language, whatever an earlier test activated."""
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def _fresh_grid_index() -> None:
    """Every test starts without cached grids or calendar (the DB is rolled back between tests)."""
    from gridgov.core import worktime
    from gridgov.geo.index import invalidate_local

    invalidate_local()
    worktime.invalidate_local()


def _skip_is_failure(item: pytest.Item) -> bool:
    """In CI a skipped browser test, or a skipped PostgreSQL test on PostgreSQL, is a failure."""
    if os.environ.get("GRIDGOV_REQUIRE_BROWSER") == "1" and item.get_closest_marker("browser"):
        return True
    return os.environ.get("GRIDGOV_REQUIRE_POSTGRES") == "1" and bool(
        item.get_closest_marker("postgres")
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[Any]
) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and _skip_is_failure(item):
        report.outcome = "failed"
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped in CI, which requires this test to run: {reason}"


@pytest.fixture
def standard_categories(db: None) -> Any:
    """The standard category catalogue (gridgov/cases/data/categories.json), loaded; the
    fixture's value is the import report."""
    from gridgov.cases.catalogue import catalogue_load_standard

    report = catalogue_load_standard()
    assert report.ok, report.text()
    return report
