"""In-app notifications, each user's delivery preferences, and the log of external deliveries.

A ``Notification`` is one row per recipient, written by ``actions.notify`` in the caller's
transaction. Its ``delivery_state`` tracks the external channels (e-mail, SMS), which the
``notifications.deliver`` background job serves; the in-app inbox only reads ``read_at``.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


def default_digest_threshold() -> int:
    """GRIDGOV_NOTIFY_DIGEST_PER_HOUR, read when a preference row is made."""
    return int(settings.GRIDGOV_NOTIFY_DIGEST_PER_HOUR)


class DeliveryState(models.TextChoices):
    """Where a notification stands with the external channels."""

    PENDING = "pending", _("waiting to be sent")
    CLAIMED = "claimed", _("being sent")
    SENT = "sent", _("sent")
    DIGESTED = "digested", _("sent in a digest")
    SKIPPED = "skipped", _("not sent (no channel chosen)")
    FAILED = "failed", _("sending failed")


#: States the delivery job still has to look at (the partial index covers exactly these).
UNDELIVERED = [DeliveryState.PENDING, DeliveryState.CLAIMED]


class Channel(models.TextChoices):
    EMAIL = "email", _("e-mail")
    SMS = "sms", _("text message")


class DeliveryStatus(models.TextChoices):
    SENT = "sent", _("sent")
    FAILED = "failed", _("failed")
    SKIPPED = "skipped", _("skipped")


class Notification(models.Model):
    """One message in one user's inbox."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # no index of its own: the (recipient, read_at) and (recipient, created_at) indexes lead with it
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recipient"),
        on_delete=models.CASCADE,
        related_name="notifications",
        db_index=False,
    )
    kind = models.CharField(_("kind"), max_length=64)
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("text"), blank=True)
    link = models.CharField(_("link"), max_length=500, blank=True)
    subject_ref = models.CharField(_("about"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)
    delivery_state = models.CharField(
        _("delivery"),
        max_length=16,
        choices=DeliveryState.choices,
        default=DeliveryState.PENDING,
    )
    #: the delivery run that claimed the row, and when (a claim older than the job's timeout
    #: is taken over by the next run: the worker that made it has died)
    claim_token = models.CharField(max_length=32, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        indexes = [
            models.Index(fields=["recipient", "read_at"], name="notification_unread"),
            models.Index(fields=["recipient", "-created_at"], name="notification_inbox"),
            models.Index(
                fields=["created_at"],
                name="notification_undelivered",
                condition=models.Q(delivery_state__in=UNDELIVERED),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.title}"

    @property
    def is_unread(self) -> bool:
        return self.read_at is None


class NotificationPreference(models.Model):
    """How a user wants to hear about notifications beyond the inbox; made on first change."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="notification_preference",
    )
    email = models.BooleanField(_("by e-mail"), default=False)
    sms = models.BooleanField(_("by text message"), default=False)
    digest_threshold = models.PositiveIntegerField(
        _("digest above (per hour)"),
        default=default_digest_threshold,
        help_text=_("More notifications than this in an hour arrive as one digest."),
    )
    muted_kinds = models.JSONField(
        _("muted kinds"),
        default=list,
        blank=True,
        help_text=_("Kinds never sent by e-mail or text message (they stay in the inbox)."),
    )
    #: while a digest storm lasts, the next digest waits until this time
    next_digest_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("notification preference")
        verbose_name_plural = _("notification preferences")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(digest_threshold__gte=1, digest_threshold__lte=1000),
                name="notification_digest_threshold_range",
            )
        ]

    def __str__(self) -> str:
        return str(self.user)

    @property
    def channels(self) -> list[str]:
        return [c for c, on in ((Channel.EMAIL, self.email), (Channel.SMS, self.sms)) if on]


class Delivery(models.Model):
    """One message sent (or not) on one channel: for a notification, or a digest of several.

    ``to`` holds the address masked (139****5678, z***@example.cn), never in full.
    """

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recipient"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    notification = models.ForeignKey(
        Notification,
        verbose_name=_("notification"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
        help_text=_("Empty for a digest."),
    )
    is_digest = models.BooleanField(_("digest"), default=False)
    notification_count = models.PositiveIntegerField(_("notifications"), default=1)
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    to = models.CharField(_("to"), max_length=120, blank=True)
    status = models.CharField(_("status"), max_length=8, choices=DeliveryStatus.choices)
    error = models.CharField(_("error"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")

    def __str__(self) -> str:
        what = _("digest") if self.is_digest else _("notification")
        return f"{what} · {self.channel} · {self.status}"
