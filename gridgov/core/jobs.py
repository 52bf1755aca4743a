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
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.db import OperationalError
from django.db.models import F
from django.utils import timezone

from gridgov.core.models import JobLease

log = logging.getLogger("gridgov.jobs")


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
        try:
            summary = job.run() or "ok"
            JobLease.objects.filter(name=job.name).update(
                last_finished_at=timezone.now(), last_error=""
            )
            outcomes.append((job.name, summary))
        except Exception as exc:  # a failing job must not stop the others
            log.error("job %s failed: %s", job.name, type(exc).__name__)
            with contextlib.suppress(OperationalError):  # the database may be what failed
                JobLease.objects.filter(name=job.name).update(
                    last_finished_at=timezone.now(), last_error=traceback.format_exc()[-4000:]
                )
            outcomes.append((job.name, f"failed: {type(exc).__name__}"))
    return outcomes
