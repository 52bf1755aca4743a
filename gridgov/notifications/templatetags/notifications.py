"""``{% notification_bell %}``: the bell with the unread count in the site header."""

from __future__ import annotations

from typing import Any

from django import template
from django.conf import settings

from gridgov.notifications.selectors import unread_count

register = template.Library()


def bell_context(user: Any, count: int | None = None) -> dict[str, Any]:
    """What ``notifications/_bell.html`` shows: the count and how often to ask again."""
    if count is None:
        count = unread_count(user) if user is not None and user.is_authenticated else 0
    return {
        "unread": count,
        "unread_label": "99+" if count > 99 else str(count),
        "poll_seconds": max(1, int(settings.GRIDGOV_NOTIFY_POLL_SECONDS)),
    }


@register.inclusion_tag("notifications/_bell.html", takes_context=True)
def notification_bell(context: Any) -> dict[str, Any]:
    request = context.get("request")
    # a page that counted the unread notifications already (the inbox) passes its count on
    return bell_context(getattr(request, "user", None), context.get("notifications_unread"))
