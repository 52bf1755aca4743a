"""Shared base models and the version stamps that tell every process when to rebuild caches."""

from __future__ import annotations

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
