"""The request around the data: the wrong content type (a form, text/plain, multipart or none for a
JSON endpoint; JSON for an upload), the wrong HTTP method (every path of the OpenAPI spec tried
with a method it does not take), over-long, unprintable and reused Idempotency-Keys, and
garbage, expired, revoked and enormous credentials. Each is the right 4xx with a message, and
nothing is stored."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from gridgov.accounts.models import ApiToken
from gridgov.api.main import api as ninja_api
from gridgov.cases.models import Case, PhotoUpload
from gridgov.core.models import IdempotencyRecord
from tests.cases.factories import IN_GRID_A, category
from tests.hostile.conftest import ApiClient, assert_nothing_stored, assert_refused, token_for
from tests.world import World

pytestmark = pytest.mark.django_db

LAT, LON = IN_GRID_A
REPORT = {"category": "01002", "description": "井盖缺失", "lat": LAT, "lon": LON}


# --- content types --------------------------------------------------------------------------

#: (id, Content-Type header, body)
WRONG_TYPES: list[tuple[str, str | None, bytes]] = [
    ("form-urlencoded", "application/x-www-form-urlencoded", b"category=01002&description=x"),
    ("text-plain-holding-json", "text/plain", json.dumps(REPORT).encode()),
    ("multipart", "multipart/form-data; boundary=x", b"--x\r\n\r\n--x--\r\n"),
    ("no-content-type", None, json.dumps(REPORT).encode()),
    ("xml", "application/xml", b"<report><category>01002</category></report>"),
    ("javascript", "application/javascript", json.dumps(REPORT).encode()),
]


@pytest.mark.parametrize(
    ("label", "content_type", "body"), WRONG_TYPES, ids=[w[0] for w in WRONG_TYPES]
)
def test_a_json_endpoint_refuses_any_other_content_type_with_415(
    world: World,
    api: Callable[[str], ApiClient],
    label: str,
    content_type: str | None,
    body: bytes,
) -> None:
    category()
    client = api("grid_worker_a")
    with assert_nothing_stored(Case):
        if content_type is None:
            r = client.generic("POST", "/api/v1/cases", body, content_type="")
        else:
            r = client.post("/api/v1/cases", body, content_type=content_type)
    assert_refused(r, 415, "application/json")


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/vnd.gridgov+json",
    ],
)
def test_json_under_any_json_media_type_is_read(
    world: World, api: Callable[[str], ApiClient], content_type: str
) -> None:
    category()
    r = api("grid_worker_a").post("/api/v1/cases", json.dumps(REPORT), content_type=content_type)
    assert r.status_code == 201, r.content


def test_an_upload_endpoint_sent_json_answers_422_naming_the_file_field(
    world: World, api: Callable[[str], ApiClient]
) -> None:
    with assert_nothing_stored(PhotoUpload):
        r = api("grid_worker_a").post_json("/api/v1/cases/photos", {"file": "aGVsbG8="})
    assert_refused(r, 422, "file")


# --- methods -----------------------------------------------------------------------------------

SPEC = ninja_api.get_openapi_schema(path_prefix="/api/v1")
METHODS = ("get", "post", "put", "patch", "delete")
UUID = "00000000-0000-4000-8000-000000000000"


def concrete(path: str) -> str:
    """The path with its parameters filled with harmless values."""
    for name, value in (
        ("{uuid}", UUID),
        ("{token_id}", UUID),
        ("{notification_id}", UUID),
        ("{photo}", UUID),
        ("{number}", "320113-20260101-00001"),
        ("{code}", "320113"),
        ("{username}", "nobody"),
        ("{scheme}", "legacy"),
        ("{day}", "2026-01-01"),
        ("{action}", "accept"),
        ("{tag}", "veteran"),
    ):
        path = path.replace(name, value)
    return path


WRONG_METHODS = [
    (path, method)
    for path, operations in sorted(SPEC["paths"].items())
    for method in METHODS
    if method not in operations
]


def test_every_path_of_the_spec_is_tried_with_the_methods_it_does_not_take() -> None:
    assert len(WRONG_METHODS) >= 100
    assert all("{" not in concrete(path) for path, _method in WRONG_METHODS)


#: The spec's paths by their first segment after /api/v1 (one test per area of the API).
AREAS = sorted({path.split("/")[3] for path in SPEC["paths"]})


@pytest.mark.parametrize("area", AREAS)
def test_a_method_a_path_does_not_take_answers_405(
    world: World, api: Callable[[str], ApiClient], area: str
) -> None:
    client = api("admin")
    wrong = {}
    tried = 0
    with assert_nothing_stored(Case, ApiToken, IdempotencyRecord):
        for path, method in WRONG_METHODS:
            if path.split("/")[3] != area:
                continue
            r = client.generic(
                method.upper(), concrete(path), "{}", content_type="application/json"
            )
            tried += 1
            if r.status_code != 405:
                wrong[f"{method.upper()} {path}"] = r.status_code
    assert tried and not wrong, wrong


# --- idempotency keys -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["k" * 201, "k" * 100_000, "line\nbreak", "tab\tkey", "bell\x07", "", "del\x7f"],
    ids=["201-characters", "100000-characters", "line-break", "tab", "bell", "empty", "delete"],
)
def test_a_malformed_idempotency_key_is_a_400_and_nothing_is_stored(
    world: World, api: Callable[[str], ApiClient], key: str
) -> None:
    category()
    with assert_nothing_stored(Case, IdempotencyRecord):
        r = api("grid_worker_a").post_json("/api/v1/cases", REPORT, **{"Idempotency-Key": key})
    assert_refused(r, 400, "Idempotency-Key")


def test_an_idempotency_key_reused_with_another_body_is_a_422_and_changes_nothing(
    world: World, api: Callable[[str], ApiClient]
) -> None:
    category()
    client = api("grid_worker_a")
    first = client.post_json("/api/v1/cases", REPORT, **{"Idempotency-Key": "report-7"})
    assert first.status_code == 201
    with assert_nothing_stored(Case, IdempotencyRecord):
        other = client.post_json(
            "/api/v1/cases",
            {**REPORT, "description": "另一件事"},
            **{"Idempotency-Key": "report-7"},
        )
        assert_refused(other, 422, "idempotency key", "different request")
        elsewhere = client.post_json(
            "/api/v1/registry/buildings",
            {"lat": LAT, "lon": LON, "estate": "和畅园"},
            **{"Idempotency-Key": "report-7"},
        )
        assert_refused(elsewhere, 422)
        again = client.post_json("/api/v1/cases", REPORT, **{"Idempotency-Key": "report-7"})
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json()["number"] == first.json()["number"]


def test_the_same_key_of_another_user_is_another_key(
    world: World, api: Callable[[str], ApiClient]
) -> None:
    category()
    a = api("grid_worker_a").post_json("/api/v1/cases", REPORT, **{"Idempotency-Key": "shared"})
    b = api("grid_worker_b").post_json(
        "/api/v1/cases", {**REPORT, "lon": 118.87}, **{"Idempotency-Key": "shared"}
    )
    assert a.status_code == b.status_code == 201
    assert a.json()["number"] != b.json()["number"] and Case.objects.count() == 2


# --- credentials ------------------------------------------------------------------------------


def bare(**headers: str) -> Client:
    return Client(HTTP_ACCEPT_LANGUAGE="en", **headers)


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer ggt_deadbeef_" + "x" * 43,
        "Bearer not-a-token",
        "Bearer ",
        "Bearer",
        "Basic " + "YWRtaW46Z3JpZGdvdi1kZW1vLTIwMjY=",
        "Bearer " + "a" * 100_000,
        "Bearer ggt_" + "\u202e" * 50,
        "Token ggt_x_y",
    ],
    ids=[
        "unknown-token",
        "garbage",
        "empty-bearer",
        "scheme-only",
        "basic",
        "100-kb",
        "rlo",
        "other-scheme",
    ],
)
def test_a_garbage_credential_is_a_401_and_nothing_is_stored(
    world: World, authorization: str
) -> None:
    category()
    client = bare(HTTP_AUTHORIZATION=authorization)
    with assert_nothing_stored(Case):
        r = client.post("/api/v1/cases", json.dumps(REPORT), content_type="application/json")
    assert_refused(r, 401, "authentication required")
    assert_refused(client.get("/api/v1/cases"), 401)


def test_a_nul_character_in_a_credential_is_a_400(world: World) -> None:
    r = bare(HTTP_AUTHORIZATION="Bearer ggt_\x00").get("/api/v1/cases")
    assert_refused(r, 400, "NUL")


def test_an_enormous_x_api_token_is_a_401(world: World) -> None:
    r = bare(HTTP_X_API_TOKEN="ggt_" + "a" * 100_000).get("/api/v1/cases")
    assert_refused(r, 401)


@pytest.mark.parametrize("how", ["expired", "revoked", "user-deactivated"])
def test_an_expired_revoked_or_orphaned_token_is_a_401(world: World, how: str) -> None:
    category()
    raw = token_for(world.grid_worker_a)
    token = ApiToken.objects.get(user=world.grid_worker_a)
    if how == "expired":
        ApiToken.objects.filter(pk=token.pk).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
    elif how == "revoked":
        ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    else:
        type(world.grid_worker_a).objects.filter(pk=world.grid_worker_a.pk).update(is_active=False)
    client = bare(HTTP_AUTHORIZATION=f"Bearer {raw}")
    with assert_nothing_stored(Case):
        r = client.post("/api/v1/cases", json.dumps(REPORT), content_type="application/json")
    assert_refused(r, 401)


def test_a_garbage_session_cookie_is_a_login_redirect_not_an_error(world: World) -> None:
    client = bare()
    client.cookies["sessionid"] = "x" * 5000
    assert client.get("/cases/").status_code == 302
    assert_refused(client.get("/api/v1/cases"), 401)
