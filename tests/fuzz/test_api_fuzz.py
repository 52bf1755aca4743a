"""Schemathesis against the OpenAPI document the API serves, as each persona that uses the API.

Every operation of ``/api/v1/openapi.json`` gets ``GRIDGOV_FUZZ_EXAMPLES`` generated requests
(valid and invalid ones), each sent as every persona of data.PERSONAS in turn (the anonymous
caller, a resident, a grid worker, a supervisor, a unit handler, an intake operator, a
dispatcher and an administrator), in-process to the Django WSGI application (no server, no
network), against a world of personas, cases, base data, an import and a notification built
once for the module (tests/fuzz/data.py). Each answer must:

- not be a server error (``not_a_server_error``);
- have a status code the document names for the operation (``status_code_conformance``);
- have the content type the document names (``content_type_conformance``);
- match the document's schema for that status (``response_schema_conformance``).

A generated request reaches real objects often: the hooks below put real case numbers, uuids,
region, unit and category codes, usernames, valid id numbers and phones and coordinates inside
grids into the path parameters, query parameters and body fields they know (all of them, some
of them, or none), and a valid Idempotency-Key into half of the writes. Each operation's
requests run in one transaction that is rolled back, so every operation starts from the same
world. A failure names the persona it was sent as ("sent as resident").

Run ``make fuzz`` for a long campaign; tests/fuzz/README.md says what was found and fixed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.test import override_settings
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from ninja.responses import NinjaJSONEncoder
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fuzz import data
from tests.fuzz.report import record

#: Generated requests per operation, each sent as every persona (the fuzzing phase; the
#: examples phase adds the document's own examples). CI runs the default twice (SQLite and
#: PostgreSQL), some 8,000 requests each; ``make fuzz`` runs 200.
EXAMPLES = int(os.environ.get("GRIDGOV_FUZZ_EXAMPLES", "10"))
#: GRIDGOV_FUZZ_COVERAGE=1 adds schemathesis' coverage phase: deterministic boundary values of
#: every parameter and property (empty, longest, one past each limit, each enum value, wrong
#: types), a few hundred requests per operation. ``make fuzz`` turns it on.
COVERAGE_PHASE = os.environ.get("GRIDGOV_FUZZ_COVERAGE") == "1"
#: GRIDGOV_FUZZ_PERSONAS=admin,resident fuzzes only those (default: all of data.PERSONAS).
PERSONAS = [
    p.strip() for p in os.environ.get("GRIDGOV_FUZZ_PERSONAS", "").split(",") if p.strip()
] or list(data.PERSONAS)

#: GRIDGOV_FUZZ_REPORT=1: the summary lists, for each operation no persona got a 2xx answer
#: from, the commonest error messages (``make fuzz``).
REPORT = os.environ.get("GRIDGOV_FUZZ_REPORT") == "1"

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _served_document() -> dict[str, Any]:
    """The OpenAPI document exactly as /api/v1/openapi.json serves it (the view calls the same
    method and encodes it the same way), read without a request: loading the module must not
    touch the database."""
    from gridgov.api.main import api

    return json.loads(json.dumps(api.get_openapi_schema(), cls=NinjaJSONEncoder))


CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {
            # credentials are the persona's, sent by the test; random ones would only answer 401
            "with-security-parameters": False,
        },
        "phases": {
            "stateful": {"enabled": False},
            "coverage": {"enabled": COVERAGE_PHASE},
        },
    }
)
schema = schemathesis.openapi.from_dict(_served_document(), config=CONFIG)


# --- real values for the generated requests ------------------------------------------------

#: Set by the ``fuzz`` fixture: pool name -> real values of the world.
POOLS: dict[str, list[Any]] = {}

UUID_POOLS = {
    "/registry/buildings/": "buildings",
    "/registry/rooms/": "rooms",
    "/registry/households/": "households",
    "/registry/people/": "people",
    "/registry/organisations/": "organisations",
    "/registry/components/": "components",
    "/registry/ledger/imports/": "ledger",
}
CODE_POOLS = {"/geo/regions/": "region", "/accounts/units/": "unit", "/categories/": "category"}
PATH_POOLS = {
    name: name
    for name in (
        "number",
        "action",
        "photo",
        "scheme",
        "token_id",
        "username",
        "day",
        "notification_id",
        "tag",
    )
}
QUERY_POOLS = {
    "region": "region",
    "under": "region",
    "parent": "region",
    "community": "community",
    "building": "buildings",
    "room": "rooms",
    "household": "households",
    "person": "people",
    "category": "category",
    "unit": "unit",
    "user": "username",
    "tag": "tag",
    "lat": "lat",
    "lon": "lon",
}
BODY_POOLS = {
    **QUERY_POOLS,
    "grid": "grid",
    "community_code": "community",
    "head": "people",
    "subject": "people",
    "lead_unit": "unit",
    "competent_unit": "unit",
    "owner_unit": "unit",
    "maintainer_unit": "unit",
    "version": "version",
    "username": "username",
    "id_number": "id_number",
    "phone": "mobile",
    "contact_phone": "mobile",
    "work_phone": "mobile",
    "reporter_phone": "mobile",
    "photos": "photos",
}


IDEMPOTENCY_HEADER = "Idempotency-Key"


def pool_for(path: str, name: str, where: str) -> list[Any]:
    if where == "path":
        if name == "uuid":
            pool = next((p for prefix, p in UUID_POOLS.items() if prefix in path), "")
        elif name == "code":
            pool = next((p for prefix, p in CODE_POOLS.items() if prefix in path), "")
        else:
            pool = PATH_POOLS.get(name, "")
    elif where == "body" and name == "code" and "/registry/components" in path:
        pool = "component_code"
    else:
        pool = (QUERY_POOLS if where == "query" else BODY_POOLS).get(name, "")
    return POOLS.get(pool, [])


def _with_real_values(values: Any, path: str, where: str) -> st.SearchStrategy[Any]:
    """``values`` as generated; or with every entry that has a pool replaced by a real value (a
    request that can succeed needs all of them right at once); or with some of them replaced."""
    if not isinstance(values, dict):
        return st.just(values)
    known = {name: pool_for(path, name, where) for name in values}
    known = {name: pool for name, pool in known.items() if pool}
    if not known:
        return st.just(values)
    every = st.fixed_dictionaries({name: st.sampled_from(pool) for name, pool in known.items()})
    some = st.fixed_dictionaries(
        {
            name: st.one_of(st.just(values[name]), st.sampled_from(pool))
            for name, pool in known.items()
        }
    )
    return st.one_of(st.just(values), every, some).map(lambda chosen: {**values, **chosen})


def _path_of(context: Any) -> str:
    return str(context.operation.path) if context.operation is not None else ""


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
    return _with_real_values(path_parameters, _path_of(context), "path")


@schema.hook
def flatmap_query(context: Any, query: dict[str, Any]) -> Any:
    return _with_real_values(query, _path_of(context), "query")


@schema.hook
def flatmap_headers(context: Any, headers: dict[str, Any] | None) -> Any:
    """A fresh valid Idempotency-Key in half of the requests that send one (generated keys are
    mostly unprintable characters, which answer 400 before the handler runs)."""
    if not headers or IDEMPOTENCY_HEADER not in headers:
        return st.just(headers)
    return st.one_of(
        st.just(headers), st.uuids().map(lambda key: {**headers, IDEMPOTENCY_HEADER: str(key)})
    )


@schema.hook
def flatmap_body(context: Any, body: Any) -> Any:
    return _with_real_values(body, _path_of(context), "body")


# --- the world and the application ---------------------------------------------------------


@dataclass
class Fuzz:
    app: WSGIHandler
    tokens: dict[str, str]

    def headers(self, persona: str) -> dict[str, str]:
        if persona == "anonymous":
            return {}
        return {"Authorization": f"Bearer {self.tokens[persona]}"}


@pytest.fixture(scope="module")
def fuzz(
    django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fuzz]:
    """The world, built once in a transaction rolled back at the end of the module, and the
    WSGI application the requests go to."""
    root: Path = tmp_path_factory.mktemp("fuzz")
    # The WSGI handler closes the database connection after each request, as a server must;
    # here the connection holds the module's transaction (Django's test client does the same).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        with (
            django_db_blocker.unblock(),
            override_settings(
                MEDIA_ROOT=str(root / "media"),
                VAR_DIR=root / "var",
                PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
                # rate limits have tests of their own; here they would only answer 429
                GRIDGOV_RATE_ANON="off",
                GRIDGOV_RATE_RESIDENT="off",
            ),
            transaction.atomic(),
        ):
            built = data.build()
            POOLS.clear()
            POOLS.update(built.pools)
            yield Fuzz(app=WSGIHandler(), tokens=built.tokens)
            transaction.set_rollback(True)
    finally:
        POOLS.clear()
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _message_of(response: Any) -> str:
    """The ``message`` of an error answer, for ``make fuzz``'s report."""
    if not REPORT or response.status_code < 400:
        return ""
    try:
        return str(response.json().get("message", ""))
    except (ValueError, AttributeError):
        return ""


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,  # a request's time is not what is tested, and CI machines vary
    derandomize=True,  # the same requests on every run: a failure in CI reproduces locally
    database=None,
    # too_slow / data_too_large / large_base_example: only about the size of the generated
    # data; function_scoped_fixture: ``db`` is meant to wrap all of an operation's examples.
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_every_operation_answers_every_persona_as_its_openapi_document_says(
    case: Any, fuzz: Fuzz, db: None
) -> None:
    """Each generated request is sent as every persona in turn (generating a request costs more
    than sending it): the anonymous caller first, the administrator last."""
    for persona in PERSONAS:
        headers = fuzz.headers(persona)
        response = case.call(app=fuzz.app, headers=headers)
        record(persona, case.operation.label, response.status_code, _message_of(response))
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except Exception as failure:
            failure.add_note(f"sent as {persona}")
            raise
