"""Benchmark-only endpoints, routed only when ``GRIDGOV_BENCH_ENDPOINTS`` is on.

``bench/bench_intake.py`` starts the real server with the setting on and compares the case
report API with ``bench_insert``: the cheapest useful write the same server can do (parse a JSON
body, insert one row with raw SQL in one transaction, answer 201), so the ratio shows what the
report's checks, look-ups, timeline row and idempotency cost on the same machine, database and
middleware.
"""

from __future__ import annotations

import json

from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

TABLE = "gridgov_bench_row"
_ready = False


def ensure_table() -> None:
    """Create the bench table unless it exists (the benchmark calls this before it starts the
    server: concurrent ``CREATE TABLE IF NOT EXISTS`` can collide on PostgreSQL)."""
    global _ready
    if _ready:
        return
    key = "BIGSERIAL" if connection.vendor == "postgresql" else "INTEGER"
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} ("
            f"id {key} PRIMARY KEY, created_at VARCHAR(40) NOT NULL, body TEXT NOT NULL)"
        )
    _ready = True


@csrf_exempt
@require_POST
def bench_insert(request: HttpRequest) -> HttpResponse:
    """Insert the posted JSON as one row; 201 with the row's id."""
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return JsonResponse({"message": "the body is not JSON", "detail": {}}, status=400)
    ensure_table()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (created_at, body) VALUES (%s, %s) RETURNING id",  # noqa: S608
            [timezone.now().isoformat(), json.dumps(body, ensure_ascii=False)],
        )
        (row_id,) = cursor.fetchone()
    return JsonResponse({"id": row_id}, status=201)
