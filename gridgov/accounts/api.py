"""Accounts API: who am I, my API tokens, units in my scope."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from gridgov.accounts import actions, selectors
from gridgov.accounts.models import ApiToken
from gridgov.accounts.selectors import current_user

router = Router()


class AssignmentOut(Schema):
    role: str
    role_label: str
    region: str | None
    region_name: str | None
    unit: str | None


class MeOut(Schema):
    username: str
    name: str
    roles: list[AssignmentOut]


class TokenIn(Schema):
    name: str = Field(min_length=1, max_length=80)
    days: int | None = Field(None, ge=1, le=3650)


class TokenOut(Schema):
    id: UUID
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="the secret; shown once, never again")


class UnitOut(Schema):
    id: UUID
    code: str
    name: str
    kind: str
    regions: list[str]


def token_out(token: ApiToken) -> dict[str, Any]:
    return {
        "id": token.uuid,
        "name": token.name,
        "prefix": token.prefix,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "last_used_at": token.last_used_at,
        "revoked_at": token.revoked_at,
    }


@router.get("/me", response=MeOut, summary="The authenticated user and their roles")
def me(request: HttpRequest) -> dict[str, Any]:
    user = request.user
    return {
        "username": user.username,
        "name": getattr(user, "label", user.username),
        "roles": [
            {
                "role": a.role,
                "role_label": str(a.get_role_display()),
                "region": a.region.code if a.region else None,
                "region_name": a.region.name if a.region else None,
                "unit": a.unit.code if a.unit else None,
            }
            for a in selectors.user_assignments(user)
        ],
    }


@router.get("/tokens", response=list[TokenOut], summary="My API tokens")
def token_list(request: HttpRequest) -> list[dict[str, Any]]:
    return [token_out(t) for t in ApiToken.objects.filter(user=current_user(request))]


@router.post("/tokens", response={201: TokenCreated}, summary="Create an API token")
def token_create(request: HttpRequest, payload: TokenIn) -> Status[dict[str, Any]]:
    token, raw = actions.token_create(
        user=current_user(request), name=payload.name, days=payload.days
    )
    return Status(201, {**token_out(token), "token": raw})


@router.delete("/tokens/{token_id}", response=TokenOut, summary="Revoke one of my API tokens")
def token_revoke(request: HttpRequest, token_id: UUID) -> dict[str, Any]:
    token = actions.token_revoke(user=current_user(request), token_uuid=str(token_id))
    return token_out(token)


@router.get("/units", response=list[UnitOut], summary="Units serving regions in my scope")
def unit_list(request: HttpRequest) -> list[dict[str, Any]]:
    units = selectors.units_visible_to(request.user).prefetch_related("regions").order_by("code")
    return [
        {
            "id": u.uuid,
            "code": u.code,
            "name": u.name,
            "kind": u.kind,
            "regions": sorted(r.code for r in u.regions.all()),
        }
        for u in units
    ]
