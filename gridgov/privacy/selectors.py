"""Reads of clearances and of the access log (DESIGN.md rules 2 and 8)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from typing import Any

from django.db.models import QuerySet

from gridgov.accounts.models import User
from gridgov.accounts.selectors import require_administrator, user_role_names, user_scope
from gridgov.core.scope import Scope
from gridgov.core.worktime import local_zone

from .models import AccessLog, Clearance

#: The highest tag sensitivity.
MAX_LEVEL = 2
_CACHE_ATTR = "_gridgov_clearance"


def _clearances(roles: list[str]) -> dict[str, Clearance]:
    return {c.role: c for c in Clearance.objects.filter(role__in=roles)}


def clearance_of(user: Any) -> tuple[int, bool]:
    """(highest tag sensitivity seen, may reveal) over the user's roles; superusers (2, True).

    Roles without a clearance row see care tags only (0) and reveal nothing. Loaded once per
    user object (i.e. once per request)."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return 0, False
    if user.is_superuser:
        return MAX_LEVEL, True
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is None:
        rows = _clearances(user_role_names(user)).values()
        cached = (
            max((c.level for c in rows), default=0),
            any(c.may_reveal for c in rows),
        )
        setattr(user, _CACHE_ATTR, cached)
    return cached


def forget_clearance(user: Any) -> None:
    if hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)


def reveal_scope(user: Any) -> Scope:
    """Where the user may reveal personal values: the regions of their roles that may reveal
    (everything for a superuser)."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return Scope.nothing()
    if user.is_superuser:
        return Scope(everything=True)
    roles = {c.role for c in _clearances(user_role_names(user)).values() if c.may_reveal}
    if not roles:
        return Scope.nothing()
    return user_scope(user, roles=roles)


def access_log_for(
    actor: Any,
    *,
    subject_uuid: uuid.UUID | str | None = None,
    user: User | str | None = None,
    since: date | datetime | None = None,
) -> QuerySet[AccessLog]:
    """The access log as an administrator may read it, newest first.

    Administrators of everything read all of it; a regional administrator the entries about
    subjects in their regions. Filters: one subject, one user (or username), since a moment or
    a (local) day."""
    scope = require_administrator(actor)
    qs = AccessLog.objects.select_related("user")
    if not scope.everything:
        qs = qs.filter(scope.q("region_code"))
    if subject_uuid is not None:
        qs = qs.filter(subject_uuid=subject_uuid)
    if user is not None:
        qs = qs.filter(user__username=user) if isinstance(user, str) else qs.filter(user=user)
    if since is not None:
        if not isinstance(since, datetime):
            since = datetime.combine(since, time.min, tzinfo=local_zone())
        qs = qs.filter(at__gte=since)
    return qs.order_by("-at", "-pk")
