"""Large ledgers are checked and committed by the background worker, not within a request.

Personas (tests/world.py): the grid worker of grid A imports her grid's ledger; the grid worker
of grid B works next door.
"""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone, translation

from gridgov.accounts.actions import role_revoke
from gridgov.core.errors import Conflict
from gridgov.core.jobs import woken_since
from gridgov.registry.jobs import run_ledger_queue
from gridgov.registry.ledger import importer
from gridgov.registry.ledger.importer import (
    ledger_check,
    ledger_claim_queued,
    ledger_commit,
    ledger_fail_stale,
    ledger_recheck,
    ledger_run_claimed,
    runs_in_background,
)
from gridgov.registry.models import ImportStatus, LedgerImport, Person
from gridgov.registry.views_ledger import new_token
from tests.registry.data.ledgers import csv_bytes, household_rows, write_csv
from tests.world import World

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.VAR_DIR = tmp_path / "var"
    settings.GRIDGOV_LEDGER_RUNNER = "inline"


def queued_check(world: World, tmp_path: Path, households: int = 2) -> LedgerImport:
    path = write_csv(tmp_path / "ledger.csv", household_rows(households))
    return ledger_check(actor=world.grid_worker_a, file=path, file_name=path.name, background=True)


def test_a_ledger_over_the_inline_size_runs_in_the_background(settings: Any) -> None:
    settings.GRIDGOV_LEDGER_INLINE_MB = 2.0
    assert not runs_in_background(2 * 2**20)
    assert runs_in_background(2 * 2**20 + 1)


def test_a_queued_check_stores_the_upload_and_checks_nothing_until_the_worker_runs(
    world: World, tmp_path: Path
) -> None:
    li = queued_check(world, tmp_path)
    assert li.status == ImportStatus.CHECK_QUEUED
    assert li.queued_by == world.grid_worker_a and li.queued_at is not None
    assert li.file and li.rows_total == 0

    outcome = run_ledger_queue()

    li.refresh_from_db()
    assert outcome is not None and "check" in outcome
    assert li.status == ImportStatus.CHECKED, li.message
    assert (li.rows_total, li.rows_ok, li.created) == (4, 4, 4)
    assert li.queued_at is None
    assert not Person.objects.exists(), "a check writes no base data"


def test_a_queued_commit_is_imported_by_the_worker_as_the_user_who_asked(
    world: World, tmp_path: Path
) -> None:
    run_ledger_queue()  # nothing waits: nothing happens
    li = queued_check(world, tmp_path)
    run_ledger_queue()
    li = ledger_commit(actor=world.grid_worker_a, ledger_import=li, background=True)
    assert li.status == ImportStatus.COMMIT_QUEUED
    assert not Person.objects.exists()

    run_ledger_queue()

    li.refresh_from_db()
    assert li.status == ImportStatus.IMPORTED, li.message
    assert Person.objects.count() == 4 and li.created == 4
    assert li.queued_at is None and li.queued_by == world.grid_worker_a


def test_a_queued_commit_cannot_be_queued_or_rechecked_again(world: World, tmp_path: Path) -> None:
    li = queued_check(world, tmp_path)
    with pytest.raises(Conflict):
        ledger_recheck(actor=world.grid_worker_a, ledger_import=li)
    run_ledger_queue()
    ledger_commit(actor=world.grid_worker_a, ledger_import=li, background=True)
    with pytest.raises(Conflict):
        ledger_commit(actor=world.grid_worker_a, ledger_import=li, background=True)
    with pytest.raises(Conflict):
        ledger_commit(actor=world.grid_worker_a, ledger_import=li)
    with pytest.raises(Conflict):
        ledger_recheck(actor=world.grid_worker_a, ledger_import=li)


def test_two_workers_never_claim_the_same_step(world: World, tmp_path: Path) -> None:
    li = queued_check(world, tmp_path)
    first = ledger_claim_queued()
    second = ledger_claim_queued()
    assert first is not None and first.pk == li.pk and first.status == ImportStatus.CHECKING
    assert second is None


def test_the_worker_runs_one_background_step_at_a_time(world: World, tmp_path: Path) -> None:
    one = queued_check(world, tmp_path)
    other = queued_check(world, tmp_path)
    claimed = ledger_claim_queued()  # as if another worker's step were running
    assert claimed is not None and claimed.pk == one.pk

    assert run_ledger_queue() is None

    other.refresh_from_db()
    assert other.status == ImportStatus.CHECK_QUEUED


def test_a_step_nobody_claimed_is_refused_by_the_runner_and_the_command(
    world: World, tmp_path: Path
) -> None:
    li = queued_check(world, tmp_path)
    with pytest.raises(Conflict):
        ledger_run_claimed(ledger_import=li)
    with translation.override("en"), pytest.raises(CommandError, match="no step waiting"):
        call_command("ledger_run", str(li.uuid))
    with pytest.raises(CommandError, match="no ledger import"):
        call_command("ledger_run", "not-a-uuid")
    li.refresh_from_db()
    assert li.status == ImportStatus.CHECK_QUEUED


def test_the_ledger_run_command_runs_a_claimed_step(world: World, tmp_path: Path) -> None:
    li = queued_check(world, tmp_path)
    assert ledger_claim_queued() is not None
    call_command("ledger_run", str(li.uuid))
    li.refresh_from_db()
    assert li.status == ImportStatus.CHECKED


def test_a_queued_commit_of_a_user_who_lost_the_right_to_import_goes_back_to_checked(
    world: World, tmp_path: Path
) -> None:
    li = queued_check(world, tmp_path)
    run_ledger_queue()
    ledger_commit(actor=world.grid_worker_a, ledger_import=li, background=True)
    for assignment in world.grid_worker_a.assignments.all():
        role_revoke(assignment=assignment)

    run_ledger_queue()

    li.refresh_from_db()
    assert li.status == ImportStatus.CHECKED and li.message
    assert not Person.objects.exists()


def test_a_step_whose_process_died_is_failed_after_the_stale_time(
    world: World, tmp_path: Path, settings: Any
) -> None:
    settings.GRIDGOV_LEDGER_STALE_MINUTES = 30
    dead = queued_check(world, tmp_path)
    alive = queued_check(world, tmp_path)
    long_ago = timezone.now() - timedelta(hours=2)
    LedgerImport.objects.filter(pk=dead.pk).update(
        status=ImportStatus.IMPORTING, started_at=long_ago
    )
    LedgerImport.objects.filter(pk=alive.pk).update(
        status=ImportStatus.CHECKING, started_at=long_ago
    )
    progress = importer._progress_file(alive)
    progress.parent.mkdir(parents=True, exist_ok=True)
    progress.write_text("5000", encoding="ascii")  # it moved just now

    with translation.override("en"):
        assert ledger_fail_stale() == 1

    dead.refresh_from_db()
    alive.refresh_from_db()
    assert dead.status == ImportStatus.FAILED and "stopped unexpectedly" in dead.message
    assert dead.queued_at is None
    assert alive.status == ImportStatus.CHECKING


# --- through the API and the screens ------------------------------------------------------------

API = "/api/v1/registry/ledger"


def signed_in(user: Any) -> Client:
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(user)
    return client


def ledger_file(households: int = 2) -> io.BytesIO:
    file = io.BytesIO(csv_bytes(household_rows(households)))
    file.name = "ledger.csv"
    return file


def test_through_the_api_a_large_ledger_is_queued_then_polled_until_imported(
    world: World, settings: Any
) -> None:
    settings.GRIDGOV_LEDGER_INLINE_MB = 0.0001  # about 100 bytes: every ledger is large
    api = signed_in(world.grid_worker_a)
    uploaded = api.post(
        f"{API}/imports", {"file": ledger_file()}, headers={"Idempotency-Key": "bg-up"}
    )
    assert uploaded.status_code == 201, uploaded.content
    body = uploaded.json()
    assert body["status"] == "check_queued"

    run_ledger_queue()
    polled = api.get(f"{API}/imports/{body['uuid']}").json()
    assert polled["status"] == "checked" and polled["rows_total"] == 4

    commit = api.post(
        f"{API}/imports/{body['uuid']}/commit", headers={"Idempotency-Key": "bg-commit"}
    )
    assert commit.status_code == 202, commit.content
    assert commit.json()["status"] == "commit_queued"
    assert not Person.objects.exists()

    run_ledger_queue()
    polled = api.get(f"{API}/imports/{body['uuid']}").json()
    assert polled["status"] == "imported" and polled["created"] == 4
    assert Person.objects.count() == 4


def test_on_the_screens_a_large_ledger_says_it_waits_for_the_worker_and_polls(
    world: World, settings: Any
) -> None:
    settings.GRIDGOV_LEDGER_INLINE_MB = 0.0001
    web = signed_in(world.grid_worker_a)
    uploaded = web.post("/registry/ledger/upload/", {"file": ledger_file(), "token": new_token()})
    assert uploaded.status_code == 302
    page = web.get(uploaded["Location"])
    text = page.content.decode()
    assert "waits for the background worker" in text
    assert 'hx-trigger="every' in text  # the page polls the progress

    run_ledger_queue()
    li = LedgerImport.objects.get()
    assert li.status == ImportStatus.CHECKED
    committed = web.post(f"/registry/ledger/{li.uuid}/commit/", {"token": new_token()})
    assert committed.status_code == 302
    li.refresh_from_db()
    assert li.status == ImportStatus.COMMIT_QUEUED

    run_ledger_queue()
    li.refresh_from_db()
    assert li.status == ImportStatus.IMPORTED and Person.objects.count() == 4


def test_queueing_a_step_wakes_the_worker_from_its_pause(world: World, tmp_path: Path) -> None:
    _, mark = woken_since(None)
    queued_check(world, tmp_path)
    woken, _ = woken_since(mark)
    assert woken
