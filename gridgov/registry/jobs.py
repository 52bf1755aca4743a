"""Background jobs of the registry (run by ``gridgov worker``, which ``make run`` starts)."""

from __future__ import annotations

import logging
import subprocess
import sys
from datetime import timedelta

from django.conf import settings

from gridgov.core.jobs import register_job

log = logging.getLogger("gridgov.registry.ledger")


@register_job("registry.ledger", every=timedelta(seconds=5))
def run_ledger_queue() -> str | None:
    """Start the oldest queued ledger step (a large ledger's check or commit, see
    ``ledger.importer.runs_in_background``), one at a time, and fail the steps whose process
    died (``ledger_fail_stale``).

    The step runs in a process of its own (``gridgov ledger_run UUID``), so that a commit of a
    million rows does not hold up the deadline sweeper; ``GRIDGOV_LEDGER_RUNNER=inline`` runs
    it here instead (tests)."""
    from .ledger.importer import (
        ledger_claim_queued,
        ledger_fail_stale,
        ledger_run_claimed,
    )
    from .models import ImportStatus, LedgerImport

    failed = ledger_fail_stale()
    running = LedgerImport.objects.filter(
        status__in=(ImportStatus.CHECKING, ImportStatus.IMPORTING), queued_at__isnull=False
    ).exists()
    li = None if running else ledger_claim_queued()
    if li is None:
        return f"{failed} stale steps failed" if failed else None
    step = "check" if li.status == ImportStatus.CHECKING else "commit"
    if getattr(settings, "GRIDGOV_LEDGER_RUNNER", "process") == "inline":
        done = ledger_run_claimed(ledger_import=li)
        return f"ledger {li.uuid} {step}: {done.status}"
    # the child inherits the worker's output; start_new_session: a Ctrl-C of `make run` stops
    # the worker, and the child finishes its step (or is failed as stale when killed)
    subprocess.Popen(  # noqa: S603 - our own interpreter and command, a uuid argument
        [sys.executable, "-m", "gridgov", "ledger_run", str(li.uuid)],
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    log.info("ledger %s: %s started in the background", li.uuid, step)
    return f"ledger {li.uuid} {step} started"
