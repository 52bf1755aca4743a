"""Shared helpers of the hostile-input catalogue (see README.md here).

- ``api(persona)``: a test client that authenticates to the JSON API the way a program does
  (``Authorization: Bearer <token>``, the token made through the real action); ``web(persona)``:
  a client with a browser session, for the HTML forms and pages.
- ``assert_nothing_stored(*models)``: a context manager that fails when the rows of any model,
  or the files under ``MEDIA_ROOT``, changed inside it.
- ``assert_refused(response, status, *words)``: the one error shape, the status, and a message
  that names the problem.
- Every test of the catalogue gets its own empty ``MEDIA_ROOT`` so that files left behind count.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.db.models import Model
from django.test import Client

from tests.world import World

#: Markup and script in a text field: stored as text, rendered escaped.
SCRIPT = '<script>alert("x")</script><img src=x onerror=alert(1)>'
ESCAPED_SCRIPT = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
#: SQL-like strings: stored as text, no error, no effect.
SQL_INPUTS = {
    "drop-table": "'; DROP TABLE cases_case; --",
    "or-1-equals-1": "' OR 1=1 --",
    "union-select": '" UNION SELECT password FROM accounts_user --',
    "like-wildcards": "%_%\\",
}


class ApiClient(Client):
    """A test client for the JSON API: JSON bodies by default, a bearer token on every call."""

    def __init__(self, token: str | None = None, **defaults: Any) -> None:
        if token:
            defaults.setdefault("HTTP_AUTHORIZATION", f"Bearer {token}")
        defaults.setdefault("HTTP_ACCEPT_LANGUAGE", "en")
        super().__init__(**defaults)

    def post_json(self, path: str, data: Any, **headers: str) -> Any:
        body = data if isinstance(data, str | bytes) else json.dumps(data, ensure_ascii=False)
        return self.post(path, body, content_type="application/json", headers=headers)

    def patch_json(self, path: str, data: Any, **headers: str) -> Any:
        body = data if isinstance(data, str | bytes) else json.dumps(data, ensure_ascii=False)
        return self.patch(path, body, content_type="application/json", headers=headers)


def token_for(user: Any) -> str:
    from gridgov.accounts.actions import token_create

    _token, raw = token_create(user=user, name="hostile-input catalogue")
    return raw


@pytest.fixture
def api(world: World) -> Callable[[str], ApiClient]:
    """``api("grid_worker_a")``: the JSON API as that persona, with a bearer token."""
    made: dict[str, ApiClient] = {}

    def client(persona: str) -> ApiClient:
        if persona not in made:
            made[persona] = ApiClient(token_for(world.users[persona]))
        return made[persona]

    return client


@pytest.fixture
def web(world: World) -> Callable[[str], Client]:
    """``web("grid_worker_a")``: the site as that persona, logged in with a session."""

    def client(persona: str) -> Client:
        c = Client(HTTP_ACCEPT_LANGUAGE="en")
        c.force_login(world.users[persona])
        return c

    return client


@pytest.fixture(autouse=True)
def media_root(tmp_path: Path, settings: Any) -> Path:
    """An empty MEDIA_ROOT of the test's own, so that a file left behind is seen."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    return root


def media_files() -> list[str]:
    from django.conf import settings

    root = Path(settings.MEDIA_ROOT)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _counts(models: tuple[type[Model], ...]) -> dict[str, int]:
    return {m._meta.label: m._default_manager.count() for m in models}


@contextmanager
def assert_nothing_stored(*models: type[Model], files: bool = True) -> Iterator[None]:
    """Fail if the row count of any of ``models`` changed, or (unless ``files=False``, for an
    upload that is rightly kept as a checked import) the files under MEDIA_ROOT."""
    before, kept = _counts(models), media_files()
    yield
    after = _counts(models)
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    assert not changed, f"rows were stored: {changed}"
    left = sorted(set(media_files()) - set(kept))
    assert not files or not left, f"files were left in media storage: {left}"


def assert_refused(response: Any, status: int | tuple[int, ...], *words: str) -> dict[str, Any]:
    """The response is the API's error shape with ``status`` and a message naming ``words``."""
    statuses = (status,) if isinstance(status, int) else status
    assert response.status_code in statuses, (response.status_code, response.content[:500])
    body = response.json()
    assert set(body) == {"message", "detail"}, body
    message = body["message"]
    assert isinstance(message, str) and message.strip(), body
    for word in words:
        assert word.lower() in message.lower(), (word, message)
    return dict(body)


def assert_escaped(html: str, raw: str = "<script>alert") -> None:
    """The page shows the markup as text: escaped, never as a live element."""
    assert raw[:12] not in html, "raw markup reached the page"
    assert "&lt;script&gt;" in html
