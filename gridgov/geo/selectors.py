"""Reads of the region tree, scoped to what a user may see."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from gridgov.accounts.models import Role, RoleAssignment
from gridgov.accounts.selectors import user_scope
from gridgov.core.errors import NotFound, PermissionDenied
from gridgov.geo.codes import ancestor_codes
from gridgov.geo.models import Region


def regions_visible_to(user: Any) -> QuerySet[Region]:
    """Regions in the user's scope, plus the regions above it (for context on the map)."""
    scope = user_scope(user)
    if scope.everything:
        return Region.objects.all()
    if scope.is_empty:
        return Region.objects.none()
    return Region.objects.filter(scope.q("code") | Q(code__in=scope.ancestor_codes()))


def region_get(*, user: Any, code: str) -> Region:
    """One region the user may see, or NotFound (never reveals what lies outside scope)."""
    region = (
        regions_visible_to(user)
        .select_related("parent", "responsible_unit")
        .filter(code=code)
        .first()
    )
    if region is None:
        raise NotFound(
            _("no region with code %(code)s is visible to you") % {"code": repr(code)},
            detail={"code": code},
        )
    return region


def region_staff_access(*, user: Any, code: str) -> Region:
    """The region whose staff the user may see: only inside their own scope, not above it."""
    region = Region.objects.select_related("parent", "responsible_unit").filter(code=code).first()
    if region is None:
        raise NotFound(
            _("no region with code %(code)s") % {"code": repr(code)}, detail={"code": code}
        )
    if not user_scope(user).covers(region.code):
        raise PermissionDenied(
            _("you do not serve %(name)s (%(code)s); its staff are not shown to you")
            % {"name": region.name, "code": region.code},
            detail={"code": code},
        )
    return region


STAFF_ROLE_ORDER = [
    Role.GRID_WORKER,
    Role.GRID_LEADER,
    Role.SUPERVISOR,
    Role.LEADER,
    Role.SHIFT_LEADER,
    Role.DISPATCHER,
    Role.INTAKE_OPERATOR,
    Role.ADMINISTRATOR,
]
#: Roles listed as a region's staff when assigned to the region itself or a region above it.
INHERITED_STAFF_ROLES = {Role.GRID_LEADER, Role.SUPERVISOR}


def region_staff(*, region: Region) -> list[RoleAssignment]:
    """Who serves a region: people assigned to it, and grid leaders and supervisors above it."""
    above = ancestor_codes(region.code)
    rows = (
        RoleAssignment.objects.filter(
            Q(region=region) | Q(region__code__in=above, role__in=INHERITED_STAFF_ROLES)
        )
        .exclude(role=Role.RESIDENT)
        .select_related("user", "region")
    )
    order: dict[str, int] = {str(role): i for i, role in enumerate(STAFF_ROLE_ORDER)}
    return sorted(
        rows,
        key=lambda a: (
            order.get(a.role, 99),
            -len(a.region.code if a.region else ""),
            a.user.username,
        ),
    )


def regions_matching(qs: QuerySet[Region], text: str) -> QuerySet[Region]:
    """Regions whose code starts with ``text`` (digits) or whose name contains it."""
    text = text.strip()
    if text.isdigit():
        return qs.filter(code__startswith=text)
    return qs.filter(name__icontains=text)
