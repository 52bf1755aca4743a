"""Users, the units they work for, and their role assignments scoped to a region or a unit."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _

from gridgov.core.models import TimeStampedModel


class Role(models.TextChoices):
    ADMINISTRATOR = "administrator", _("Administrator")
    LEADER = "leader", _("Leader")
    INTAKE_OPERATOR = "intake_operator", _("Intake operator")
    SHIFT_LEADER = "shift_leader", _("Shift leader")
    DISPATCHER = "dispatcher", _("Dispatcher")
    UNIT_HANDLER = "unit_handler", _("Unit handler")
    SUPERVISOR = "supervisor", _("Supervisor")
    GRID_LEADER = "grid_leader", _("Grid leader")
    GRID_WORKER = "grid_worker", _("Grid worker")
    RESIDENT = "resident", _("Resident")


#: Roles whose scope comes from a unit (the regions the unit serves), not from a region.
UNIT_ROLES = frozenset({Role.UNIT_HANDLER})
#: Roles that work for the public service (everyone but residents).
STAFF_ROLES = frozenset(set(Role) - {Role.RESIDENT})


class UnitKind(models.TextChoices):
    CITY_DEPARTMENT = "city_department", _("City department")
    STREET_OFFICE = "street_office", _("Street office")
    COMMUNITY_COMMITTEE = "community_committee", _("Community committee")
    UTILITY = "utility", _("Utility")
    PROPERTY_COMPANY = "property_company", _("Property company")
    OTHER = "other", _("Other")


class Unit(TimeStampedModel):
    """A unit that handles cases (处置单位) and the regions it serves."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(_("kind"), max_length=24, choices=UnitKind.choices)
    regions = models.ManyToManyField(
        "geo.Region", verbose_name=_("regions served"), related_name="units", blank=True
    )
    phone = models.CharField(_("duty phone"), max_length=30, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("unit")
        verbose_name_plural = _("units")

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    display_name = models.CharField(_("display name"), max_length=60, blank=True)
    work_phone = models.CharField(_("work phone"), max_length=30, blank=True)

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self) -> str:
        return self.display_name or self.username

    @property
    def label(self) -> str:
        return self.display_name or self.get_full_name() or self.username


class RoleAssignment(TimeStampedModel):
    """A user holds a role in a region (and its subtree) or for a unit."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="assignments")
    role = models.CharField(_("role"), max_length=20, choices=Role.choices)
    region = models.ForeignKey(
        "geo.Region",
        verbose_name=_("region"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="assignments",
    )
    unit = models.ForeignKey(
        Unit,
        verbose_name=_("unit"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="assignments",
    )

    class Meta:
        ordering = ["user_id", "role"]
        verbose_name = _("role assignment")
        verbose_name_plural = _("role assignments")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "role", "region", "unit"],
                name="role_assignment_unique",
                nulls_distinct=False,
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(role="unit_handler", unit__isnull=False, region__isnull=True)
                    | (~models.Q(role="unit_handler") & models.Q(unit__isnull=True))
                ),
                name="role_assignment_unit_only_for_handlers",
            ),
        ]

    def __str__(self) -> str:
        where = self.unit or self.region or _("everywhere")
        return f"{self.user} · {self.get_role_display()} · {where}"


class TokenScope(models.TextChoices):
    """What an API token may do, on top of (never beyond) its user's roles."""

    READ = "read", _("Read (GET requests), except base data")
    WRITE = "write", _("Write (every other request), except base data")
    REGISTRY_READ = "registry:read", _("Read base data and the personal-data access log")
    REGISTRY_WRITE = "registry:write", _("Change base data")
    ADMIN = "admin", _("Act with the administrator role")


#: Every scope, in the order above; a token created without naming scopes has them all.
ALL_SCOPES = [scope.value for scope in TokenScope]


def all_scopes() -> list[str]:
    return list(ALL_SCOPES)


class ApiToken(TimeStampedModel):
    """A revocable API token. Only a SHA-256 hash of the secret is stored."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(_("name"), max_length=80)
    prefix = models.CharField(_("prefix"), max_length=12, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    scopes = models.JSONField(
        _("scopes"),
        default=all_scopes,
        help_text=_("what the token may do: read, write, registry:read, registry:write, admin"),
    )
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
