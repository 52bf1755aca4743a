"""Background jobs of the notifications app (found by ``gridgov.core.jobs.registered_jobs``)."""

from __future__ import annotations

from datetime import timedelta

from gridgov.core.jobs import register_job


@register_job("notifications.deliver", every=timedelta(seconds=30))
def deliver_notifications() -> str:
    """Send pending notifications by e-mail and text message (see ``delivery.py``)."""
    from gridgov.notifications.delivery import deliver_pending

    return deliver_pending().summary()
