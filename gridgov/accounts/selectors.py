"""Reads about users, roles and units, scoped."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from gridgov.accounts.models import STAFF_ROLES, UNIT_ROLES, Role, RoleAssignment, Unit, User
from gridgov.core.scope import Scope

_CACHE_ATTR = "_gridgov_assignments"


def user_assignments(user: Any) -> list[RoleAssignment]:
    """The user's role assignments, loaded once per user object (i.e. once per request)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return []
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is None:
        cached = list(
            RoleAssignment.objects.filter(user=user)
            .select_related("region", "unit")
            .prefetch_related("unit__regions")
        )
        setattr(user, _CACHE_ATTR, cached)
    return cached


def forget_assignments(user: Any) -> None:
    if hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)


def user_role_names(user: Any) -> list[str]:
    return sorted({a.role for a in user_assignments(user)})


def user_has_role(user: Any, *roles: str) -> bool:
    wanted = set(roles)
    return any(a.role in wanted for a in user_assignments(user))


def is_staff_member(user: Any) -> bool:
    return any(a.role in STAFF_ROLES for a in user_assignments(user))


def is_administrator(user: Any, region_code: str | None = None) -> bool:
    """An administrator of everything, or of the subtree holding ``region_code``."""
    for a in user_assignments(user):
        if a.role != Role.ADMINISTRATOR:
            continue
        if a.region is None:
            return True
        if region_code is not None and region_code.startswith(a.region.code):
            return True
    return False


def user_scope(user: Any, roles: set[str] | frozenset[str] | None = None) -> Scope:
    """The region subtrees the user works in, through the given roles (default: all roles).

    An administrator without a region sees everything; a unit handler works in the regions
    their unit serves; everyone else in the region of their assignment.
    """
    codes: list[str] = []
    for a in user_assignments(user):
        if roles is not None and a.role not in roles:
            continue
        if a.role in UNIT_ROLES:
            if a.unit is not None and a.unit.is_active:
                codes.extend(r.code for r in a.unit.regions.all())
        elif a.region is None:
            if a.role == Role.ADMINISTRATOR:
                return Scope(everything=True)
        else:
            codes.append(a.region.code)
    return Scope.of(codes)


def units_visible_to(user: Any) -> QuerySet[Unit]:
    """Units the user may see: those serving any region in the user's scope, and their own."""
    scope = user_scope(user)
    if scope.everything:
        return Unit.objects.all()
    own = [a.unit_id for a in user_assignments(user) if a.unit_id]
    if scope.is_empty and not own:
        return Unit.objects.none()
    in_scope = (
        Unit.objects.filter(scope.q("regions__code")) if not scope.is_empty else Unit.objects.none()
    )
    ids = set(in_scope.values_list("pk", flat=True)) | set(own)
    return Unit.objects.filter(pk__in=ids)


def users_visible_to(user: Any) -> QuerySet[User]:
    """Staff whose assignments lie in the user's scope (an administrator sees everyone)."""
    scope = user_scope(user)
    if scope.everything:
        return User.objects.all()
    if scope.is_empty:
        return User.objects.filter(pk=user.pk)
    ids = RoleAssignment.objects.filter(scope.q("region__code")).values("user_id")
    return User.objects.filter(pk__in=ids) | User.objects.filter(pk=user.pk)


def current_user(request: Any) -> User:
    """The authenticated user of a request (views and API handlers that require a login)."""
    user = request.user
    if not isinstance(user, User):
        from gridgov.core.errors import PermissionDenied

        raise PermissionDenied(_("authentication required"))
    return user
