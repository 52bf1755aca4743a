"""Background jobs: a due run is claimed by exactly one worker."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from gridgov.core.jobs import Job, job_claim, registered_jobs, run_due_jobs
from gridgov.core.models import JobLease


@pytest.mark.django_db
def test_only_one_of_two_workers_claims_a_due_run() -> None:
    job = Job(name="test.job", every=timedelta(minutes=5), run=lambda: "ran")
    assert job_claim(job=job, owner="worker-1") is True
    assert job_claim(job=job, owner="worker-2") is False
    lease = JobLease.objects.get(name="test.job")
    assert lease.owner == "worker-1"
    assert lease.next_run_at > timezone.now() + timedelta(minutes=4)


@pytest.mark.django_db
def test_a_run_becomes_due_again_after_its_interval() -> None:
    job = Job(name="test.job", every=timedelta(minutes=5), run=lambda: "ran")
    job_claim(job=job, owner="worker-1")
    JobLease.objects.filter(name="test.job").update(
        next_run_at=timezone.now() - timedelta(seconds=1)
    )
    assert job_claim(job=job, owner="worker-2") is True


@pytest.mark.django_db
def test_the_worker_runs_every_built_in_job_once_and_records_it() -> None:
    outcomes = dict(run_due_jobs(owner="w"))
    assert set(outcomes) == {j.name for j in registered_jobs()}
    assert run_due_jobs(owner="w2") == []
    assert all(lease.runs == 1 for lease in JobLease.objects.all())


@pytest.mark.django_db
def test_gridgov_worker_once_runs_what_is_due_and_exits(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("worker", "--once")
    out = capsys.readouterr().out
    assert "sessions.prune" in out and "worker stopped" in out


@pytest.mark.django_db
def test_the_database_statistics_job_refreshes_sqlites_planner_statistics() -> None:
    from django.db import connection

    from gridgov.core.builtin_jobs import analyze_database

    outcome = analyze_database()
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
            assert cursor.fetchone()[0] == 1
        assert "refreshed" in outcome
    else:
        assert "server" in outcome
