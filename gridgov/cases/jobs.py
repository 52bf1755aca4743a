"""Background jobs of cases (run by ``gridgov worker``, which ``make run`` starts)."""

from __future__ import annotations

from datetime import timedelta

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
