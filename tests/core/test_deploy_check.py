"""GRIDGOV_ENV=production: `manage.py check --deploy` is clean, HTTPS settings are on, and the
site refuses to start on the development defaults of its keys and hosts."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_PROBE = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({name: getattr(s, name, None) for name in %r}))
"""


def production_env(tmp_path: Path, **overrides: str | None) -> dict[str, str]:
    """The environment of a production server: its own keys, its host name, TLS."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GRIDGOV_", "DJANGO_", "SECRET_KEY", "DATABASE_URL"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "gridgov.settings",
            "GRIDGOV_ENV": "production",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "GRIDGOV_DATA_KEY": secrets.token_urlsafe(40),
            "GRIDGOV_LOOKUP_KEY": secrets.token_urlsafe(40),
            "GRIDGOV_ALLOWED_HOSTS": "grid.example.gov.cn",
            "GRIDGOV_VAR_DIR": str(tmp_path / "var"),
        }
    )
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def production_settings(env: dict[str, str], *names: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", SETTINGS_PROBE % (names,)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_check_deploy_reports_no_issue_under_production_settings(tmp_path: Path) -> None:
    done = manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout, done.stdout + done.stderr
    assert "WARNINGS:" not in done.stdout + done.stderr


def test_production_turns_on_https_only_cookies_hsts_and_the_redirect(tmp_path: Path) -> None:
    values = production_settings(
        production_env(tmp_path),
        "SECURE_SSL_REDIRECT",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_HSTS_PRELOAD",
        "SECURE_PROXY_SSL_HEADER",
        "DEBUG",
        "GRIDGOV_2FA_ROLES",
        "GRIDGOV_DEMO",
    )
    assert values == {
        "SECURE_SSL_REDIRECT": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 365 * 24 * 3600,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": False,
        "SECURE_PROXY_SSL_HEADER": None,
        "DEBUG": False,
        "GRIDGOV_2FA_ROLES": ["administrator", "leader"],
        "GRIDGOV_DEMO": False,
    }


def test_behind_a_tls_proxy_the_forwarded_protocol_header_is_trusted_when_named(
    tmp_path: Path,
) -> None:
    env = production_env(tmp_path, GRIDGOV_PROXY_SSL_HEADER="X-Forwarded-Proto")
    values = production_settings(env, "SECURE_PROXY_SSL_HEADER", "SECURE_SSL_REDIRECT")
    assert values == {
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "SECURE_SSL_REDIRECT": True,
    }


@pytest.mark.parametrize(
    "missing", ["SECRET_KEY", "GRIDGOV_DATA_KEY", "GRIDGOV_LOOKUP_KEY", "GRIDGOV_ALLOWED_HOSTS"]
)
def test_production_refuses_to_start_on_a_development_default(tmp_path: Path, missing: str) -> None:
    done = manage(production_env(tmp_path, **{missing: None}), "check")
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr
    assert missing in done.stderr
    # nothing was generated into var/ in its place
    assert not (tmp_path / "var" / "secret_key").exists()
    assert not (tmp_path / "var" / "data_key").exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"SECRET_KEY": "short-and-guessable"}, "at least 50 characters"),
        ({"GRIDGOV_DEBUG": "1"}, "GRIDGOV_DEBUG must be off"),
        ({"GRIDGOV_ENV": "prod"}, "GRIDGOV_ENV must be development or production"),
    ],
)
def test_production_refuses_an_unsafe_setting(
    tmp_path: Path, overrides: dict[str, str], message: str
) -> None:
    done = manage(production_env(tmp_path, **overrides), "check")
    assert done.returncode != 0
    assert message in done.stderr


def test_development_needs_no_configuration_and_keeps_the_demo_open(tmp_path: Path) -> None:
    env = production_env(
        tmp_path,
        GRIDGOV_ENV=None,
        SECRET_KEY=None,
        GRIDGOV_DATA_KEY=None,
        GRIDGOV_LOOKUP_KEY=None,
        GRIDGOV_ALLOWED_HOSTS=None,
    )
    values = production_settings(
        env, "SESSION_COOKIE_SECURE", "SECURE_SSL_REDIRECT", "GRIDGOV_2FA_ROLES", "GRIDGOV_DEMO"
    )
    assert values == {
        "SESSION_COOKIE_SECURE": False,
        "SECURE_SSL_REDIRECT": False,
        "GRIDGOV_2FA_ROLES": [],
        "GRIDGOV_DEMO": True,
    }
    # the keys were generated into var/ for `make run`
    assert (tmp_path / "var" / "secret_key").exists()
