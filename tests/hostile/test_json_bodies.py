"""JSON bodies that are not what they claim: nested 100,000 levels deep, NaN and Infinity, numbers
of thousands of digits, bytes that are not UTF-8, unpaired surrogates and NUL characters in keys
and strings, the wrong top-level type. Each answers a 4xx with a message naming the problem
(never a RecursionError or a database error, a 500), and nothing is stored; a body with a byte
order mark is still read."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gridgov.cases.models import Case
from gridgov.core.input_guard import MAX_DEPTH
from gridgov.registry.models import Building
from tests.cases.factories import IN_GRID_A, category
from tests.hostile.conftest import ApiClient, assert_nothing_stored, assert_refused
from tests.world import World

pytestmark = pytest.mark.django_db

LAT, LON = IN_GRID_A
REPORT = f'"category": "01002", "lat": {LAT}, "lon": {LON}'


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


#: (id, the raw body, status, words of the message)
BODIES: list[tuple[str, bytes, int, tuple[str, ...]]] = [
    ("100000-open-brackets", b"[" * 100_000, 400, ("nested",)),
    ("100000-nested-arrays", nested(100_000).encode(), 400, ("nested",)),
    ("50000-nested-objects", ('{"a":' * 50_000 + "1" + "}" * 50_000).encode(), 400, ("nested",)),
    (
        "deep-attribute-value",
        (
            "{" + REPORT + ', "description": "x", "attributes": {"remark": ' + nested(5000) + "}}"
        ).encode(),
        400,
        ("nested",),
    ),
    (
        "33-levels",
        (
            "{"
            + REPORT
            + ', "description": "x", "attributes": {"remark": '
            + nested(MAX_DEPTH)
            + "}}"
        ).encode(),
        400,
        ("nested more than 32",),
    ),
    (
        "nan-literal",
        ("{" + REPORT.replace(str(LAT), "NaN") + ', "description": "x"}').encode(),
        400,
        ("NaN",),
    ),
    (
        "infinity-literal",
        ("{" + REPORT.replace(str(LON), "Infinity") + ', "description": "x"}').encode(),
        400,
        ("Infinity",),
    ),
    (
        "5000-digit-number",
        ("{" + REPORT.replace(str(LAT), "9" * 5000) + ', "description": "x"}').encode(),
        400,
        ("digits",),
    ),
    (
        "latin1-bytes",
        ("{" + REPORT + ', "description": "caf\xe9"}').encode("latin-1"),
        400,
        ("UTF-8",),
    ),
    ("utf16-body", ("{" + REPORT + ', "description": "x"}').encode("utf-16"), 400, ("UTF-8",)),
    ("truncated", ("{" + REPORT + ', "description": "x').encode(), 400, ("not valid JSON",)),
    (
        "trailing-garbage",
        ("{" + REPORT + ', "description": "x"} extra').encode(),
        400,
        ("not valid JSON",),
    ),
    ("single-quotes", b"{'category': '01002'}", 400, ("not valid JSON",)),
    (
        "comment",
        ("/* hi */ {" + REPORT + ', "description": "x"}').encode(),
        400,
        ("not valid JSON",),
    ),
    (
        "raw-control-character",
        ("{" + REPORT + ', "description": "a\x01b"}').encode(),
        400,
        ("not valid JSON",),
    ),
    (
        "unpaired-surrogate",
        ("{" + REPORT + ', "description": "\\ud800"}').encode(),
        422,
        ("surrogate", "description"),
    ),
    (
        "nul-escape-in-value",
        ("{" + REPORT + ', "description": "a\\u0000b"}').encode(),
        422,
        ("NUL", "description"),
    ),
    (
        "nul-escape-in-key",
        ("{" + REPORT + ', "description": "x", "\\u0000": 1}').encode(),
        422,
        ("NUL", "key"),
    ),
    (
        "surrogate-in-key",
        ("{" + REPORT + ', "description": "x", "\\udfff": 1}').encode(),
        422,
        ("surrogate",),
    ),
    ("top-level-array", b"[1, 2, 3]", 422, ("required",)),
    ("top-level-string", b'"report"', 422, ("required",)),
    ("top-level-null", b"null", 422, ("required",)),
    ("whitespace-only", b"   \n  ", 400, ("not valid JSON",)),
]


@pytest.mark.parametrize(("label", "body", "status", "words"), BODIES, ids=[b[0] for b in BODIES])
def test_a_hostile_json_body_answers_a_4xx_naming_the_problem_and_stores_nothing(
    world: World,
    api: Callable[[str], ApiClient],
    label: str,
    body: bytes,
    status: int,
    words: tuple[str, ...],
) -> None:
    category()
    with assert_nothing_stored(Case):
        r = api("grid_worker_a").post("/api/v1/cases", body, content_type="application/json")
    assert_refused(r, status, *words)


@pytest.mark.parametrize(
    ("label", "body"),
    [
        ("deep-nesting", nested(100_000).encode()),
        ("nul-in-a-key", b'{"lat": 32.05, "lon": 118.82, "\\u0000": 1}'),
        ("nan", b'{"lat": NaN, "lon": 118.82}'),
    ],
    ids=["deep-nesting", "nul-in-a-key", "nan"],
)
def test_every_json_endpoint_shares_the_guard(
    world: World, api: Callable[[str], ApiClient], label: str, body: bytes
) -> None:
    client = api("admin")
    with assert_nothing_stored(Building, Case):
        for url in (
            "/api/v1/registry/buildings",
            "/api/v1/geo/locate",
            "/api/v1/accounts/tokens",
            "/api/v1/geo/grids/preview",
        ):
            r = client.post(url, body, content_type="application/json")
            assert_refused(r, (400, 422))
        r = client.patch(
            "/api/v1/accounts/users/grid_worker_a", body, content_type="application/json"
        )
        assert_refused(r, (400, 422))


def test_a_body_with_a_byte_order_mark_is_read(
    world: World, api: Callable[[str], ApiClient]
) -> None:
    category()
    body = ("\ufeff{" + REPORT + ', "description": "井盖缺失"}').encode("utf-8")
    r = api("grid_worker_a").post("/api/v1/cases", body, content_type="application/json")
    assert r.status_code == 201, r.content
    assert r.json()["description"] == "井盖缺失"


def test_json_nested_as_deep_as_allowed_is_accepted_where_the_schema_takes_it(
    world: World, api: Callable[[str], ApiClient]
) -> None:
    """A report's attributes are checked against the category: depth alone is no error."""
    category()
    deep = nested(MAX_DEPTH - 3)
    body = ("{" + REPORT + ', "description": "x", "attributes": {"remark": ' + deep + "}}").encode()
    r = api("grid_worker_a").post("/api/v1/cases", body, content_type="application/json")
    assert_refused(r, 422, "attribute")  # the category has no such attribute: a 422, not a 400


def test_the_deep_json_of_a_category_import_is_refused_by_its_own_reader(
    world: World, api: Callable[[str], ApiClient]
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from gridgov.cases.models import Category

    raw = nested(100_000).encode()
    with assert_nothing_stored(Category):
        r = api("admin").post(
            "/api/v1/categories/import",
            {"file": SimpleUploadedFile("categories.json", raw, content_type="application/json")},
        )
        assert_refused(r, (400, 422))
        r = api("admin").post("/api/v1/categories/import", raw, content_type="application/json")
        assert_refused(r, (400, 422), "nested")
