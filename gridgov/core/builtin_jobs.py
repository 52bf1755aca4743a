"""Housekeeping jobs that every installation runs."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.sessions.models import Session
from django.utils import timezone

from gridgov.core.jobs import register_job


@register_job("sessions.prune", every=timedelta(hours=1))
def prune_sessions() -> str:
    deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    return f"{deleted} expired sessions removed"


@register_job("idempotency.prune", every=timedelta(hours=1))
def prune_idempotency_records() -> str:
    """Forget stored responses older than GRIDGOV_IDEMPOTENCY_HOURS."""
    from gridgov.core.idempotency import idempotency_prune

    return f"{idempotency_prune()} expired idempotency records removed"


@register_job("geo.index.warm", every=timedelta(minutes=1))
def warm_grid_index() -> str:
    """Keep the worker's spatial index current (the worker locates points for jobs too)."""
    from gridgov.geo.index import grid_index

    loaded = grid_index()
    return f"{len(loaded.codes)} grids indexed (version {loaded.version})"


@register_job("db.analyze", every=timedelta(hours=6))
def analyze_database() -> str:
    """Refresh the query planner's statistics on SQLite (PostgreSQL's autovacuum does this)."""
    from gridgov.core.dbstats import database_analyze

    return database_analyze()
