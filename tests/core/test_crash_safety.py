"""A process killed with SIGKILL in the middle of a report (or of any write) leaves the database
as if the request never ran, or as if it ran to the end: never half. A retry with the same
Idempotency-Key then writes the report once, or answers the stored one.

Each test runs the write in a child process on the test database and kills it there, as the
crash-safety run (scripts/reliability.py, docs/reliability.md) does to the whole server under
load; here at the exact moments that matter.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from gridgov.accounts.actions import token_create
from gridgov.cases.models import Case, CaseEvent
from gridgov.core.models import IdempotencyRecord, Stamp
from tests.cases.factories import IN_GRID_A, category
from tests.world import World

ROOT = Path(__file__).resolve().parents[2]


def _database_url() -> str | None:
    """The test database, as a child process reaches it; None for an in-memory SQLite one."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        name = str(db["NAME"])
        if not name or connection.is_in_memory_db():
            return None
        return f"sqlite:///{name}"
    user, password = quote(db["USER"] or "", safe=""), quote(db["PASSWORD"] or "", safe="")
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    return f"postgres://{user}:{password}@{host}:{port}/{db['NAME']}"


pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor == "sqlite"
        and not settings.DATABASES["default"].get("TEST", {}).get("NAME"),
        reason="a child process needs a file-based test database (make test uses one)",
    ),
]

# The child: Django on the test database, killed with SIGKILL at the moment ``mode`` names.
CHILD = r"""
import os, signal, sys
import django

django.setup()
from django.db import transaction
from django.test import Client

mode, token, key, body, moment = sys.argv[1:6]


def die(where):
    with open(moment, "w") as f:
        f.write(where)
    os.kill(os.getpid(), signal.SIGKILL)


if mode == "writer":  # inside a write transaction, holding SQLite's writer queue
    from gridgov.core.models import Stamp

    with transaction.atomic():
        Stamp.objects.create(key="killed-writer", version=1)
        die("in the transaction")

if mode == "before-commit":  # the key's record and the case written, not yet committed
    import gridgov.cases.api as api

    # the path with a write transaction to die in (on PostgreSQL a plain report may be saved
    # by one statement that commits by itself: nothing happens between its inserts)
    if hasattr(api, "report_saves_alone"):
        api.report_saves_alone = lambda rows: False
    write_phase = api.write_phase

    def write_phase_then_die(request, response):
        write_phase(request, response)
        die("after write_phase")

    api.write_phase = write_phase_then_die

Client().post(
    "/api/v1/cases",
    body,
    content_type="application/json",
    headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
)
die("after the answer")  # committed and stored, and the client never gets the answer
"""


def _killed_child(tmp_path: Path, mode: str, token: str = "", key: str = "", body: str = "") -> str:
    """Run the child and return where it was when it killed itself."""
    url = _database_url()
    assert url is not None
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "gridgov.settings",
        "DATABASE_URL": url,
        "GRIDGOV_VAR_DIR": str(tmp_path),
        "SECRET_KEY": settings.SECRET_KEY,
        "GRIDGOV_DATA_KEY": settings.GRIDGOV_DATA_KEY,
        "GRIDGOV_LOOKUP_KEY": settings.GRIDGOV_LOOKUP_KEY,
        "GRIDGOV_ALLOWED_HOSTS": "testserver,localhost",
        "GRIDGOV_LOG_LEVEL": "ERROR",
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode, token, key, body, str(tmp_path / "moment")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode(errors="replace")[-3000:]
    return (tmp_path / "moment").read_text()


def _report(token: str, key: str, body: str) -> Any:
    return Client().post(
        "/api/v1/cases",
        body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
    )


def _reporter(world: World) -> tuple[str, str, str]:
    category()
    _, token = token_create(user=world.grid_worker_a, name="phone")
    body = (
        f'{{"category": "01002", "description": "井盖缺失", '
        f'"lat": {IN_GRID_A[0]}, "lon": {IN_GRID_A[1]}}}'
    )
    return token, str(uuid.uuid4()), body


def test_a_report_killed_before_its_commit_leaves_neither_the_case_nor_the_key_behind(
    world: World, tmp_path: Path
) -> None:
    token, key, body = _reporter(world)
    assert _killed_child(tmp_path, "before-commit", token, key, body) == "after write_phase"

    assert Case.objects.count() == 0
    assert CaseEvent.objects.count() == 0
    assert IdempotencyRecord.objects.count() == 0

    retried = _report(token, key, body)
    assert retried.status_code == 201, retried.content
    assert retried.headers.get("Idempotent-Replayed") is None
    assert list(Case.objects.values_list("number", flat=True)) == [retried.json()["number"]]
    assert IdempotencyRecord.objects.count() == 1


def test_a_report_killed_after_its_commit_is_answered_from_its_record_not_written_again(
    world: World, tmp_path: Path
) -> None:
    token, key, body = _reporter(world)
    assert _killed_child(tmp_path, "after-commit", token, key, body) == "after the answer"
    stored = list(Case.objects.values_list("number", flat=True))
    assert len(stored) == 1

    retried = _report(token, key, body)
    assert retried.status_code == 201, retried.content
    assert retried.headers.get("Idempotent-Replayed") == "true"
    assert retried.json()["number"] == stored[0]
    assert list(Case.objects.values_list("number", flat=True)) == stored
    assert [e.action for e in CaseEvent.objects.all()] == ["report"]


def test_a_writer_killed_inside_its_transaction_holds_nothing_afterwards(tmp_path: Path) -> None:
    assert _killed_child(tmp_path, "writer") == "in the transaction"

    assert not Stamp.objects.filter(key="killed-writer").exists()
    if connection.vendor == "sqlite":
        # the writer queue's lock (gridgov.core.sqlite) went with the process
        fd = os.open(f"{connection.settings_dict['NAME']}.writers", os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
    # the same unique key again: the killed transaction's row lock is gone too (PostgreSQL)
    Stamp.objects.create(key="killed-writer", version=2)
    assert Stamp.objects.get(key="killed-writer").version == 2
