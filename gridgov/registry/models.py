"""Base data. For now the buildings with their household counts, which grids are cut by.

The full registry (rooms, households, people, organisations, components) grows here.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _

from gridgov.core.models import TimeStampedModel


class BuildingType(models.TextChoices):
    RESIDENTIAL = "residential", _("Residential")
    COMMERCIAL = "commercial", _("Commercial")
    MIXED = "mixed", _("Mixed")
    OTHER = "other", _("Other")


class Building(TimeStampedModel):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    estate = models.CharField(_("estate"), max_length=100, blank=True)
    number = models.CharField(_("building number"), max_length=30, blank=True)
    address = models.CharField(_("standard address"), max_length=200, blank=True)
    kind = models.CharField(
        _("type"), max_length=12, choices=BuildingType.choices, default=BuildingType.RESIDENTIAL
    )
    floors = models.PositiveSmallIntegerField(_("floors"), null=True, blank=True)
    households = models.PositiveIntegerField(_("households"), default=0)
    lon = models.FloatField(_("longitude"))
    lat = models.FloatField(_("latitude"))
    community_code = models.CharField(_("community code"), max_length=12, db_index=True)
    grid = models.ForeignKey(
        "geo.Region",
        verbose_name=_("grid"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="buildings",
    )

    class Meta:
        ordering = ["community_code", "estate", "number"]
        verbose_name = _("building")
        verbose_name_plural = _("buildings")

    def __str__(self) -> str:
        return self.address or f"{self.estate} {self.number}".strip()
