"""The region tree: district -> street -> community -> grid, with polygons in WGS-84."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _

from gridgov.core.models import TimeStampedModel


class Level(models.TextChoices):
    DISTRICT = "district", _("District")
    STREET = "street", _("Street")
    COMMUNITY = "community", _("Community")
    GRID = "grid", _("Grid")


class GridType(models.TextChoices):
    BASE = "base", _("Base grid")
    DEDICATED = "dedicated", _("Dedicated grid")


class RegionQuerySet(models.QuerySet["Region"]):
    def subtree(self, code: str) -> RegionQuerySet:
        return self.filter(code__startswith=code)

    def grids(self) -> RegionQuerySet:
        return self.filter(level=Level.GRID)


class Region(TimeStampedModel):
    """A node of the region tree. A subtree is a code-prefix match."""

    code = models.CharField(_("code"), max_length=15, unique=True)
    name = models.CharField(_("name"), max_length=100)
    level = models.CharField(_("level"), max_length=10, choices=Level.choices, db_index=True)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )
    geometry = models.JSONField(_("polygon (GeoJSON, WGS-84)"), null=True, blank=True)
    min_lon = models.FloatField(null=True, blank=True)
    min_lat = models.FloatField(null=True, blank=True)
    max_lon = models.FloatField(null=True, blank=True)
    max_lat = models.FloatField(null=True, blank=True)
    label_lon = models.FloatField(_("label longitude"), null=True, blank=True)
    label_lat = models.FloatField(_("label latitude"), null=True, blank=True)
    area_m2 = models.FloatField(_("area (m²)"), null=True, blank=True)
    target_households = models.PositiveIntegerField(_("target households"), null=True, blank=True)
    grid_type = models.CharField(
        _("grid type"), max_length=10, choices=GridType.choices, blank=True, default=""
    )
    responsible_unit = models.ForeignKey(
        "accounts.Unit",
        verbose_name=_("responsible unit"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="responsible_for",
    )
    valid_from = models.DateField(_("valid from"), null=True, blank=True)
    valid_to = models.DateField(_("valid to"), null=True, blank=True)

    objects = RegionQuerySet.as_manager()

    class Meta:
        ordering = ["code"]
        verbose_name = _("region")
        verbose_name_plural = _("regions")
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(level="district", code__regex=r"^[0-9]{6}$")
                    | models.Q(level="street", code__regex=r"^[0-9]{9}$")
                    | models.Q(level="community", code__regex=r"^[0-9]{12}$")
                    | models.Q(level="grid", code__regex=r"^[0-9]{15}$")
                ),
                name="region_code_matches_level",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @property
    def bbox(self) -> tuple[float, float, float, float] | None:
        if self.min_lon is None:
            return None
        return (self.min_lon, self.min_lat, self.max_lon, self.max_lat)  # type: ignore[return-value]

    def shape(self) -> Any:
        """The polygon as a shapely geometry (or None)."""
        if not self.geometry:
            return None
        from shapely.geometry import shape

        return shape(self.geometry)
