"""Rate limits: anonymous requests per address, residents' reports per user; 429 with
Retry-After in the shape each caller expects, and the next window lets them through again."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from gridgov.accounts import actions
from gridgov.cases.models import Case
from gridgov.core import security
from gridgov.core.security import Rate, parse_rate
from tests.cases.factories import IN_GRID_A, category
from tests.world import PASSWORD, World


class FrozenClock:
    """The security module's clock, stopped at a point and moved by hand."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, start: float = 1_800_000_000.0):
        self.t = start
        monkeypatch.setattr(security, "now", lambda: self.t)

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    # the start of a minute, so that a test's requests fall into one window
    return FrozenClock(monkeypatch, start=1_800_000_000.0 - 1_800_000_000.0 % 60)


def report_body(**extra: Any) -> dict[str, Any]:
    lat, lon = IN_GRID_A
    return {"category": "01002", "description": "路灯不亮", "lat": lat, "lon": lon, **extra}


def test_rates_are_read_from_their_settings_text() -> None:
    assert parse_rate("60/min") == Rate(60, 60)
    assert parse_rate("1000/hour") == Rate(1000, 3600)
    assert parse_rate("10/15min") == Rate(10, 900)
    assert parse_rate(" 5 / day ") == Rate(5, 86400)
    assert parse_rate("off") is None
    assert parse_rate("0") is None
    assert parse_rate("") is None


@pytest.mark.parametrize("text", ["sixty/min", "60/fortnight", "60", "-1/min", "60/0min"])
def test_a_malformed_rate_is_a_configuration_error_naming_the_setting(text: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="GRIDGOV_RATE_ANON"):
        parse_rate(text, setting="GRIDGOV_RATE_ANON")


def test_anonymous_open311_callers_get_429_in_the_open311_shape_once_over_the_limit(
    db: None, settings: Any, clock: FrozenClock
) -> None:
    settings.GRIDGOV_RATE_ANON = "3/min"
    client = Client(headers={"Accept-Language": "en"})
    for _ in range(3):
        assert client.get("/api/open311/v2/services.json").status_code == 200
    refused = client.get("/api/open311/v2/services.json")
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    body = refused.json()
    assert body[0]["code"] == 429
    assert body[0]["description"].startswith("too many requests: try again in")
    # another address has its own count
    other = Client(REMOTE_ADDR="10.1.2.3")
    assert other.get("/api/open311/v2/discovery.json").status_code == 200


def test_the_next_window_lets_an_address_in_again(
    db: None, settings: Any, clock: FrozenClock
) -> None:
    settings.GRIDGOV_RATE_ANON = "2/min"
    client = Client()
    for _ in range(2):
        client.get("/api/open311/v2/services.json")
    refused = client.get("/api/open311/v2/services.json")
    assert refused.status_code == 429
    clock.advance(int(refused["Retry-After"]))
    assert client.get("/api/open311/v2/services.json").status_code == 200


def test_login_attempts_from_one_address_are_limited_but_the_login_page_is_not(
    world: World, settings: Any, clock: FrozenClock
) -> None:
    settings.GRIDGOV_RATE_ANON = "3/min"
    client = Client(headers={"Accept-Language": "en"})
    for _ in range(3):
        client.post("/accounts/login/", {"username": "nobody-here", "password": "wrong"})
    refused = client.post("/accounts/login/", {"username": "grid_worker_a", "password": PASSWORD})
    assert refused.status_code == 429
    assert refused["Retry-After"]
    assert "Too many requests" in refused.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get("/accounts/login/").status_code == 200


def test_behind_a_trusted_proxy_each_client_address_is_counted_apart(
    db: None, settings: Any, clock: FrozenClock
) -> None:
    settings.GRIDGOV_RATE_ANON = "1/min"
    settings.GRIDGOV_TRUSTED_PROXIES = 1
    proxy = {"REMOTE_ADDR": "10.0.0.1"}
    first = Client(HTTP_X_FORWARDED_FOR="203.0.113.7", **proxy)
    second = Client(HTTP_X_FORWARDED_FOR="203.0.113.8", **proxy)
    assert first.get("/api/open311/v2/services.json").status_code == 200
    assert second.get("/api/open311/v2/services.json").status_code == 200
    assert first.get("/api/open311/v2/services.json").status_code == 429
    # a client cannot choose its address by writing the header itself: the proxy's entry counts
    spoofing = Client(HTTP_X_FORWARDED_FOR="1.1.1.1, 203.0.113.7", **proxy)
    assert spoofing.get("/api/open311/v2/services.json").status_code == 429


def test_a_residents_api_reports_are_limited_per_user_and_the_refused_one_is_not_stored(
    world: World, settings: Any, clock: FrozenClock
) -> None:
    settings.GRIDGOV_RATE_RESIDENT = "2/hour"
    category()
    _, raw = actions.token_create(user=world.resident, name="phone")
    api = Client(headers={"Authorization": f"Bearer {raw}", "Accept-Language": "en"})
    for _ in range(2):
        created = api.post("/api/v1/cases", report_body(), content_type="application/json")
        assert created.status_code == 201, created.content
    refused = api.post("/api/v1/cases", report_body(), content_type="application/json")
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 60
    body = refused.json()
    assert body["message"].startswith("too many requests")
    assert body["detail"]["retry_after"] == int(refused["Retry-After"])
    assert Case.objects.filter(reporter=world.resident).count() == 2
    # reading is not limited
    assert api.get("/api/v1/cases").status_code == 200


def test_staff_reports_are_not_limited_by_the_resident_rate(
    world: World, settings: Any, clock: FrozenClock
) -> None:
    settings.GRIDGOV_RATE_RESIDENT = "1/hour"
    category()
    client = Client()
    client.force_login(world.grid_worker_a)
    for _ in range(3):
        created = client.post(
            "/api/v1/cases",
            report_body(),
            content_type="application/json",
        )
        assert created.status_code == 201, created.content


def test_the_resident_web_report_form_is_limited_too(
    world: World, settings: Any, clock: FrozenClock
) -> None:
    settings.GRIDGOV_RATE_RESIDENT = "1/hour"
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(world.resident)
    client.post("/cases/report/", {"description": "first"})
    refused = client.post("/cases/report/", {"description": "second"})
    assert refused.status_code == 429
    assert "Too many requests" in refused.content.decode()
    assert client.get("/cases/report/").status_code == 200


def test_off_turns_a_limit_off(db: None, settings: Any, clock: FrozenClock) -> None:
    settings.GRIDGOV_RATE_ANON = "off"
    client = Client()
    assert all(client.get("/api/open311/v2/services.json").status_code == 200 for _ in range(5))


def test_a_broken_rate_cache_lets_requests_through(
    db: None, settings: Any, clock: FrozenClock, caplog: pytest.LogCaptureFixture, tmp_path: Any
) -> None:
    settings.GRIDGOV_RATE_ANON = "1/min"
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    settings.CACHES = {
        **settings.CACHES,
        "ratelimit": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(not_a_directory / "cache"),
        },
    }
    client = Client()
    assert client.get("/api/open311/v2/services.json").status_code == 200
    assert client.get("/api/open311/v2/services.json").status_code == 200
    assert "rate-limit cache failed" in caplog.text
