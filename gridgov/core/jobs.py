"""Periodic background jobs run by ``gridgov worker``.

Each job has a ``JobLease`` row. A worker claims a due run with one conditional UPDATE
(``... WHERE name = %s AND next_run_at <= now``); only the worker whose UPDATE changed a row runs
the job, so several workers never run the same job twice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.db import OperationalError
from django.db.models import F
from django.utils import timezone

from gridgov.core.logs import log_context
from gridgov.core.models import JobLease

log = logging.getLogger("gridgov.jobs")

#: The ``JobLease`` row a worker touches after every pass: its ``last_finished_at`` is the last
#: time any worker was alive (``/readyz`` and the ``gridgov_worker_*`` metrics read it). It is
#: not a job: ``registered_jobs`` never lists it and nothing claims it.
HEARTBEAT = "worker.heartbeat"


@dataclass(frozen=True)
class Job:
    name: str
    every: timedelta
    run: Callable[[], str | None]


_JOBS: dict[str, Job] = {}


def register_job(
    name: str, *, every: timedelta
) -> Callable[[Callable[[], str | None]], Callable[[], str | None]]:
    def decorator(func: Callable[[], str | None]) -> Callable[[], str | None]:
        _JOBS[name] = Job(name=name, every=every, run=func)
        return func

    return decorator


def registered_jobs() -> list[Job]:
    """Every job: the built-in ones and those of each installed gridgov app's ``jobs`` module."""
    import importlib
    import importlib.util

    from django.apps import apps

    from gridgov.core import builtin_jobs  # noqa: F401  (registers the built-in jobs)

    for config in apps.get_app_configs():
        if not config.name.startswith("gridgov."):
            continue
        module = f"{config.name}.jobs"
        # find_spec first: an ImportError raised inside an existing jobs module must surface
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)
    return sorted(_JOBS.values(), key=lambda j: j.name)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def job_claim(*, job: Job, owner: str) -> bool:
    """Claim the job's due run; True only for the one worker whose UPDATE matched."""
    now = timezone.now()
    try:
        JobLease.objects.get_or_create(name=job.name, defaults={"next_run_at": now})
        claimed = JobLease.objects.filter(name=job.name, next_run_at__lte=now).update(
            next_run_at=now + job.every, owner=owner, last_started_at=now, runs=F("runs") + 1
        )
    except OperationalError as exc:  # a busy database (SQLite locked): try on the next pass
        log.warning("job %s not claimed this pass: %s", job.name, type(exc).__name__)
        return False
    return claimed == 1


def run_due_jobs(*, owner: str | None = None) -> list[tuple[str, str]]:
    """Run every job that is due and claimed by this worker; returns (name, outcome) pairs."""
    owner = owner or worker_id()
    outcomes: list[tuple[str, str]] = []
    for job in registered_jobs():
        if not job_claim(job=job, owner=owner):
            continue
        # every line the run logs carries one job id (in the request id field) and the job name
        with log_context(request_id=f"job-{uuid.uuid4().hex}", job=job.name):
            outcomes.append((job.name, _run_claimed(job)))
    return outcomes


def _run_claimed(job: Job) -> str:
    started = time.monotonic()
    try:
        summary = job.run() or "ok"
        JobLease.objects.filter(name=job.name).update(
            last_finished_at=timezone.now(), last_error=""
        )
    except Exception as exc:  # a failing job must not stop the others
        log.error("job %s failed: %s", job.name, type(exc).__name__)
        with contextlib.suppress(OperationalError):  # the database may be what failed
            JobLease.objects.filter(name=job.name).update(
                last_finished_at=timezone.now(), last_error=traceback.format_exc()[-4000:]
            )
        return f"failed: {type(exc).__name__}"
    took = round((time.monotonic() - started) * 1000, 1)
    log.info(
        "job %s finished: %s", job.name, summary, extra={"outcome": summary, "duration_ms": took}
    )
    return summary


def worker_heartbeat(*, owner: str, interval: float) -> None:
    """Record that a worker finished a pass (and when it means to look again)."""
    now = timezone.now()
    with contextlib.suppress(OperationalError):  # a busy database: the next pass records it
        updated = JobLease.objects.filter(name=HEARTBEAT).update(
            owner=owner,
            last_started_at=now,
            last_finished_at=now,
            next_run_at=now + timedelta(seconds=interval),
            runs=F("runs") + 1,
        )
        if not updated:
            JobLease.objects.get_or_create(
                name=HEARTBEAT,
                defaults={
                    "owner": owner,
                    "last_started_at": now,
                    "last_finished_at": now,
                    "next_run_at": now + timedelta(seconds=interval),
                    "runs": 1,
                },
            )


def worker_last_pass() -> datetime | None:
    """When a worker last finished a pass (None: no worker has run yet)."""
    return (
        JobLease.objects.filter(name=HEARTBEAT).values_list("last_finished_at", flat=True).first()
    )


def _wake_file() -> Path:
    from django.conf import settings

    return Path(settings.VAR_DIR) / "worker.wake"


def wake_workers() -> None:
    """Ask the workers on this machine to start their next pass now rather than at the end of
    their pause (a queued ledger step should not wait GRIDGOV_WORKER_INTERVAL_SECONDS).
    Workers on other machines start it at their next pass, as before."""
    with contextlib.suppress(OSError):
        path = _wake_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()


def woken_since(mark: float | None) -> tuple[bool, float | None]:
    """(whether ``wake_workers`` was called since ``mark``, the new mark): the wake file's
    modification time, polled by the worker while it pauses."""
    try:
        now = _wake_file().stat().st_mtime
    except OSError:
        now = 0.0  # no wake yet
    return (mark is not None and now != mark), now
