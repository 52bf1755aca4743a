"""Reads of notifications: only ever the user's own."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from gridgov.core.errors import NotFound
from gridgov.notifications.models import Notification, NotificationPreference


def notifications_of(user: Any, *, unread: bool | None = None) -> QuerySet[Notification]:
    """The user's notifications, newest first; ``unread``: only unread (True) or read (False)."""
    if user is None or not user.is_authenticated:
        return Notification.objects.none()
    rows = Notification.objects.filter(recipient=user)
    if unread is not None:
        rows = rows.filter(read_at__isnull=unread)
    return rows.order_by("-created_at", "-id")


def notification_of(user: Any, notification_id: UUID | str) -> Notification:
    """One of the user's notifications; NotFound for another user's (or a malformed) id."""
    try:
        wanted = notification_id if isinstance(notification_id, UUID) else UUID(notification_id)
    except ValueError:
        wanted = None
    found = notifications_of(user).filter(uuid=wanted).first() if wanted is not None else None
    if found is None:
        raise NotFound(_("no such notification"), detail={"notification": str(notification_id)})
    return found


def unread_count(user: Any) -> int:
    return notifications_of(user, unread=True).count()


def preference_of(user: Any) -> NotificationPreference:
    """The user's preferences, or the defaults (unsaved) when they never changed them."""
    found = NotificationPreference.objects.filter(user=user).first()
    return found if found is not None else NotificationPreference(user=user)
