"""The security headers of every answer (the browser side is tests/e2e/test_security_headers.py)
and the settings they come from."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import run_checks
from django.test import Client

from gridgov.settings import _tile_sources
from tests.world import World


def directives(policy: str) -> dict[str, str]:
    return dict([*part.strip().split(" ", 1), ""][:2] for part in policy.split(";") if part.strip())


@pytest.mark.parametrize(
    "path", ["/accounts/login/", "/map/", "/api/v1/accounts/me", "/api/open311/v2/services.json"]
)
def test_every_answer_carries_the_policy_and_the_framing_and_referrer_rules(
    world: World, path: str
) -> None:
    client = Client()
    client.force_login(world.dispatcher)
    response = client.get(path)
    policy = directives(response["Content-Security-Policy"])
    assert policy["script-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_the_csrf_and_session_cookies_are_out_of_scripts_reach(world: World) -> None:
    client = Client()
    client.post(
        "/accounts/login/", {"username": "dispatcher", "password": "correct-horse-battery-9"}
    )
    assert client.cookies["sessionid"]["httponly"]
    client.get("/accounts/tokens/")
    assert client.cookies["csrftoken"]["httponly"]
    assert client.cookies["csrftoken"]["samesite"] == "Lax"


@pytest.mark.parametrize(
    ("template", "sources"),
    [
        ("", []),
        ("https://tiles.example.gov.cn/{z}/{x}/{y}.png", ["https://tiles.example.gov.cn"]),
        ("https://{s}.tile.example.org/{z}/{x}/{y}.png", ["https://*.tile.example.org"]),
        ("http://10.0.0.5:8080/tiles/{z}/{x}/{y}.png", ["http://10.0.0.5:8080"]),
        ("javascript:alert(1)", []),
        ("/tiles/{z}/{x}/{y}.png", []),
    ],
)
def test_the_map_tile_host_is_the_one_outside_image_source(
    template: str, sources: list[str]
) -> None:
    assert _tile_sources(template) == sources


def test_an_unknown_role_in_the_two_factor_setting_is_a_configuration_error(
    settings: Any,
) -> None:
    settings.GRIDGOV_2FA_ROLES = ["administrator", "admin"]
    errors = [e for e in run_checks() if e.id == "gridgov.E001"]
    assert len(errors) == 1 and "admin" in errors[0].msg
    settings.GRIDGOV_2FA_ROLES = ["administrator", "leader"]
    assert not [e for e in run_checks() if e.id == "gridgov.E001"]
