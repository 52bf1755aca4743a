"""Writes about notifications: creating them, reading them, and each user's preferences.

``notify`` is called from other apps' actions, inside their transaction (a case dispatched, a
deadline near). It only writes rows: nothing leaves the process during the request. E-mail and
text messages go out from the ``notifications.deliver`` background job (``delivery.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from gridgov.accounts.models import User
from gridgov.core.errors import DomainError
from gridgov.notifications.models import (
    DeliveryState,
    Notification,
    NotificationPreference,
)
from gridgov.notifications.selectors import notification_of, notifications_of

TITLE_MAX = Notification._meta.get_field("title").max_length or 200
KIND_MAX = Notification._meta.get_field("kind").max_length or 64
LINK_MAX = Notification._meta.get_field("link").max_length or 500
REF_MAX = Notification._meta.get_field("subject_ref").max_length or 64
DIGEST_THRESHOLD_RANGE = (1, 1000)
TEST_KIND = "notifications.test"


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@transaction.atomic(savepoint=False)
def notify(
    *,
    recipients: Iterable[User],
    kind: str,
    title: str,
    body: str = "",
    link: str = "",
    subject_ref: str = "",
) -> int:
    """Put a notification in each recipient's inbox; returns how many were created.

    Recipients are deduplicated and inactive users skipped. ``title`` and ``body`` are rendered
    text (the caller translates them); a title longer than 200 characters is shortened. Two
    queries whatever the number of recipients: one for their preferences, one bulk insert.
    Whether a row waits for e-mail/SMS (``pending``) or not (``skipped``) is decided here from
    the preferences, so the delivery job only ever sees rows that need it.

    Safe inside the caller's transaction (no savepoint of its own: an error here fails the
    caller's action, which is what it should do).
    """
    kind = kind.strip()
    if not kind or len(kind) > KIND_MAX:
        raise ValueError(f"a notification kind has 1 to {KIND_MAX} characters, got {kind!r}")
    if len(link) > LINK_MAX:
        raise ValueError(f"a notification link has at most {LINK_MAX} characters")
    if len(subject_ref) > REF_MAX:
        raise ValueError(f"a notification subject_ref has at most {REF_MAX} characters")
    title = _shorten(title, TITLE_MAX) or kind
    people: dict[Any, User] = {}
    for user in recipients:
        if user is not None and user.pk is not None and user.is_active:
            people.setdefault(user.pk, user)
    if not people:
        return 0
    wants_delivery = {
        user_id: kind not in (muted or [])
        for user_id, muted in NotificationPreference.objects.filter(user_id__in=list(people))
        .exclude(email=False, sms=False)
        .values_list("user_id", "muted_kinds")
    }
    now = timezone.now()
    rows = [
        Notification(
            recipient_id=pk,
            kind=kind,
            title=title,
            body=body,
            link=link,
            subject_ref=subject_ref,
            created_at=now,
            delivery_state=(
                DeliveryState.PENDING if wants_delivery.get(pk) else DeliveryState.SKIPPED
            ),
        )
        for pk in people
    ]
    Notification.objects.bulk_create(rows)
    return len(rows)


@transaction.atomic
def notification_mark_read(*, user: User, notification_id: UUID | str) -> Notification:
    """Mark one of the user's notifications read (again: unchanged); NotFound for others'."""
    notification = notification_of(user, notification_id)
    if notification.read_at is None:
        now = timezone.now()
        # conditional: a concurrent "mark all read" keeps its own time
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=now)
        notification.refresh_from_db(fields=["read_at"])
    return notification


@transaction.atomic
def notifications_mark_all_read(*, user: User) -> int:
    """Mark every unread notification of the user read; returns how many."""
    return notifications_of(user, unread=True).update(read_at=timezone.now())


@transaction.atomic
def preference_update(
    *,
    user: User,
    email: bool | None = None,
    sms: bool | None = None,
    digest_threshold: int | None = None,
    muted_kinds: list[str] | None = None,
) -> NotificationPreference:
    """Change the user's channels, digest threshold or muted kinds (None: unchanged)."""
    low, high = DIGEST_THRESHOLD_RANGE
    if digest_threshold is not None and not low <= digest_threshold <= high:
        raise DomainError(
            _("the digest threshold is a whole number from %(low)s to %(high)s")
            % {"low": low, "high": high},
            detail={"field": "digest_threshold"},
            status=422,
        )
    kinds: list[str] | None = None
    if muted_kinds is not None:
        kinds = sorted({k.strip() for k in muted_kinds if k and k.strip()})
        if any(len(k) > KIND_MAX for k in kinds) or len(kinds) > 200:
            raise DomainError(
                _("mute at most 200 kinds of at most %(limit)s characters each")
                % {"limit": KIND_MAX},
                detail={"field": "muted_kinds"},
                status=422,
            )
    if email and not user.email.strip():
        raise DomainError(
            _("your account has no e-mail address: ask an administrator to add one"),
            detail={"field": "email"},
            status=422,
        )
    if sms and not user.work_phone.strip():
        raise DomainError(
            _("your account has no work phone number: ask an administrator to add one"),
            detail={"field": "sms"},
            status=422,
        )
    try:
        with transaction.atomic():
            pref, _created = NotificationPreference.objects.select_for_update().get_or_create(
                user=user
            )
    except IntegrityError:  # made by a concurrent request in the meantime
        pref = NotificationPreference.objects.select_for_update().get(user=user)
    if email is not None:
        pref.email = email
    if sms is not None:
        pref.sms = sms
    if digest_threshold is not None:
        pref.digest_threshold = digest_threshold
    if kinds is not None:
        pref.muted_kinds = kinds
    pref.save()
    return pref


def notification_send_test(*, user: User) -> int:
    """A test notification for ``user`` (to check the inbox and their channels)."""
    return notify(
        recipients=[user],
        kind=TEST_KIND,
        title=_("Test notification"),
        body=_("If you can read this, notifications reach you."),
        link=reverse("notifications:inbox"),
    )
