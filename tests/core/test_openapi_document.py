"""The API's OpenAPI document: public, built once per language and then served from memory."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from ninja import NinjaAPI

from gridgov.api.main import api


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """Every time the document is really built (not served from memory), with its language."""
    from django.utils.translation import get_language

    calls: list[str | None] = []
    build = NinjaAPI.get_openapi_schema

    def counting(self: NinjaAPI, **kwargs: Any) -> Any:
        calls.append(get_language())
        return build(self, **kwargs)

    monkeypatch.setattr(NinjaAPI, "get_openapi_schema", counting)
    monkeypatch.setattr(api, "_openapi_cache", {})
    return calls


def test_anyone_reads_the_document_and_it_is_built_only_once(builds: list[str | None]) -> None:
    first = Client().get("/api/v1/openapi.json")
    again = Client().get("/api/v1/openapi.json")

    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert "/api/v1/cases" in first.json()["paths"]
    assert len(builds) == 1


def test_each_language_gets_its_own_document(builds: list[str | None]) -> None:
    chinese = Client(headers={"Accept-Language": "zh-hans"}).get("/api/v1/openapi.json")
    english = Client(headers={"Accept-Language": "en"}).get("/api/v1/openapi.json")
    Client(headers={"Accept-Language": "en"}).get("/api/v1/openapi.json")

    assert chinese.status_code == english.status_code == 200
    assert sorted(str(language) for language in builds) == ["en", "zh-hans"]


def test_the_served_document_still_names_the_error_answers(builds: list[str | None]) -> None:
    spec = Client().get("/api/v1/openapi.json").json()
    report = spec["paths"]["/api/v1/cases"]["post"]["responses"]

    assert {"201", "400", "409"} <= set(report)
    assert len(builds) == 1
