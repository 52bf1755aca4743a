"""Background jobs of cases (run by ``gridgov worker``, which ``make run`` starts)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from gridgov.core.jobs import register_job


@register_job("cases.sweep", every=timedelta(seconds=60))
def sweep_deadlines() -> str:
    """Turn lights, notify due-soon and overdue steps, apply escalation rules."""
    from .sweeper import sweep

    result = sweep()
    return (
        f"{result.due_soon} due soon, {result.overdue} overdue, {result.escalated} escalated, "
        f"{result.notifications} notifications"
    )


#: Photos uploaded ahead (POST /api/v1/cases/photos) but never named by a report or an action
#: are deleted, files and all, after this long.
UPLOAD_LIFETIME = timedelta(hours=24)


@register_job("cases.uploads.prune", every=timedelta(hours=1))
def prune_uploads() -> str:
    """Delete photo uploads nobody attached to a case within a day."""
    return f"{uploads_prune()} unused photo uploads deleted"


def uploads_prune(*, now: datetime | None = None) -> int:
    from gridgov.core.photos import photo_delete

    from .models import PhotoUpload

    cutoff = (now or timezone.now()) - UPLOAD_LIFETIME
    deleted = 0
    for upload in PhotoUpload.objects.filter(created_at__lt=cutoff).order_by("pk")[:1000]:
        # delete the row first: a report claiming it at this moment then finds no upload
        if PhotoUpload.objects.filter(pk=upload.pk).delete()[0]:
            photo_delete(upload.name)
            deleted += 1
    return deleted
