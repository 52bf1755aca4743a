"""Shared base models and the version stamps that tell every process when to rebuild caches."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        abstract = True


class Stamp(models.Model):
    """A named counter bumped in the same transaction as the change it stands for.

    Processes keep in-memory caches (the grid spatial index) keyed by the stamp's value and
    rebuild when it moves.
    """

    key = models.CharField(max_length=64, unique=True)
    version = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("version stamp")
        verbose_name_plural = _("version stamps")

    def __str__(self) -> str:
        return f"{self.key}={self.version}"


class JobLease(models.Model):
    """One row per periodic background job; a worker claims a run with a conditional UPDATE."""

    name = models.CharField(max_length=64, unique=True)
    next_run_at = models.DateTimeField(db_index=True)
    owner = models.CharField(max_length=100, blank=True)
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    runs = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("background job")
        verbose_name_plural = _("background jobs")

    def __str__(self) -> str:
        return self.name


class CalendarOverride(TimeStampedModel):
    """An administrator's entry in the working calendar: a holiday, or a working day.

    Overrides win over chinese-calendar and over the Monday–Friday fallback for years the package
    does not know. A working day may carry its own hours ("08:30-12:00"); blank means the
    configured ``GRIDGOV_WORKING_HOURS``. Write through ``core.actions``.
    """

    class Kind(models.TextChoices):
        HOLIDAY = "holiday", _("holiday")
        WORKDAY = "workday", _("working day")

    date = models.DateField(_("date"), unique=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    hours = models.CharField(
        _("working hours"),
        max_length=100,
        blank=True,
        help_text=_("Working days only, e.g. 08:30-12:00,13:30-17:30; blank for the usual hours."),
    )
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("calendar override")
        verbose_name_plural = _("calendar overrides")
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.date:%Y-%m-%d} {self.kind}"


class IdempotencyRecord(models.Model):
    """The stored outcome of one write request, found again by (user, Idempotency-Key).

    Inserted before the handler runs and completed in the same transaction, so a concurrent
    retry waits on the unique constraint and then replays. Only a hash of the key is kept, and
    the response body is encrypted with a key derived from the client's key and ``SECRET_KEY``
    (see ``gridgov.core.idempotency``): a copy of the database alone reveals no response, such
    as a new API token's secret.
    """

    # no index of its own: the unique constraint (user, key_hash) leads with the user
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    key_hash = models.CharField(max_length=64)
    fingerprint = models.CharField(max_length=64)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=300)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    body = models.BinaryField(default=bytes)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")
        constraints = [
            models.UniqueConstraint(fields=["user", "key_hash"], name="idempotency_user_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status_code}"
