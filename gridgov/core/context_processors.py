from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def gridgov(request: HttpRequest) -> dict[str, Any]:
    roles: list[str] = []
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        from gridgov.accounts.selectors import user_role_names

        roles = user_role_names(user)
    from gridgov.registry.selectors import REGISTRY_ROLES

    return {
        "GRIDGOV_TILE_URL": settings.GRIDGOV_TILE_URL,
        "GRIDGOV_TILE_ATTRIBUTION": settings.GRIDGOV_TILE_ATTRIBUTION,
        "user_roles": roles,
        "registry_nav": bool(set(roles) & REGISTRY_ROLES) or bool(user and user.is_superuser),
    }
