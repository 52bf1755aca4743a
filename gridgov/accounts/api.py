"""Accounts API: who am I, my API tokens, units, and the administration of users and roles.

Administrators manage users, their roles and units; a regional administrator (an administrator
assignment held in a region) manages only what lies inside their region's subtree. Every write
takes an ``Idempotency-Key``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema, Status
from pydantic import Field, ValidationError

from gridgov.accounts import actions, selectors
from gridgov.accounts.models import (
    ApiToken,
    Role,
    RoleAssignment,
    TokenScope,
    Unit,
    UnitKind,
    User,
)
from gridgov.accounts.selectors import current_user
from gridgov.core.errors import DomainError, NotFound
from gridgov.core.idempotency import idempotent
from gridgov.core.masking import mask_phone
from gridgov.core.scope import Scope
from gridgov.geo.models import Region

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
    days: int | None = Field(
        None, ge=1, le=3650, description="lifetime; default GRIDGOV_API_TOKEN_DAYS (90)"
    )
    scopes: list[TokenScope] | None = Field(
        None,
        description=(
            "what the token may do: read (GET requests), write (other requests), registry:read "
            "and registry:write (base data under /registry and /privacy), admin (act with the "
            "administrator role); default: every scope, or those of the token making this one"
        ),
    )


class TokenOut(Schema):
    id: UUID
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    scopes: list[str]


class TokenCreated(TokenOut):
    token: str = Field(description="the secret; shown once, never again")


class UnitOut(Schema):
    id: UUID
    code: str
    name: str
    kind: str
    phone: str
    is_active: bool
    regions: list[str]


class UnitIn(Schema):
    code: str = Field(min_length=1, max_length=40, description="the unit's public id (a slug)")
    name: str = Field(min_length=1, max_length=120)
    kind: UnitKind
    regions: list[str] = Field(default_factory=list, description="codes of the regions served")
    phone: str = Field("", max_length=30, description="duty phone")


class UnitPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=120)
    kind: UnitKind | None = None
    regions: list[str] | None = Field(None, description="codes of the regions served (replaces)")
    phone: str | None = Field(None, max_length=30)
    is_active: bool | None = None


class UserOut(Schema):
    id: UUID
    username: str
    display_name: str
    email: str
    work_phone: str = Field(description="masked unless you administer the user")
    is_active: bool
    last_login: datetime | None
    date_joined: datetime
    roles: list[AssignmentOut]


class UserIn(Schema):
    username: str = Field(min_length=1, max_length=150)
    display_name: str = Field("", max_length=60)
    email: str = Field("", max_length=254)
    work_phone: str = Field("", max_length=30)
    password: str | None = Field(
        None,
        max_length=4096,
        description="checked by the password rules; without one the user cannot log in yet",
    )


class UserPatch(Schema):
    display_name: str | None = Field(None, max_length=60)
    email: str | None = Field(None, max_length=254)
    work_phone: str | None = Field(None, max_length=30)
    is_active: bool | None = Field(
        None, description="false deactivates the account and revokes its API tokens"
    )


class RoleIn(Schema):
    role: Role
    region: str | None = Field(None, description="region code, for every role but unit handler")
    unit: str | None = Field(None, description="unit code, for unit handlers")


class UnlockOut(Schema):
    username: str
    cleared: int = Field(description="failed-login records removed")


class TwoFactorOut(Schema):
    enrolled: bool = Field(description="an authenticator app is set up")
    required: bool = Field(description="one of the user's roles requires two-factor sign-in")
    recovery_codes_left: int


class TwoFactorResetOut(Schema):
    username: str
    removed: int = Field(description="authenticators and recovery-code sets removed")


def token_out(token: ApiToken) -> dict[str, Any]:
    return {
        "id": token.uuid,
        "name": token.name,
        "prefix": token.prefix,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "last_used_at": token.last_used_at,
        "revoked_at": token.revoked_at,
        "scopes": list(token.scopes),
    }


def assignment_out(a: RoleAssignment) -> dict[str, Any]:
    return {
        "role": a.role,
        "role_label": str(a.get_role_display()),
        "region": a.region.code if a.region else None,
        "region_name": a.region.name if a.region else None,
        "unit": a.unit.code if a.unit else None,
    }


def unit_out(unit: Unit) -> dict[str, Any]:
    return {
        "id": unit.uuid,
        "code": unit.code,
        "name": unit.name,
        "kind": unit.kind,
        "phone": unit.phone,
        "is_active": unit.is_active,
        "regions": sorted(r.code for r in unit.regions.all()),
    }


def user_out(user: User, scope: Scope, assignments: list[RoleAssignment]) -> dict[str, Any]:
    """A user as an administrator with ``scope`` sees them: the phone in full only when they
    administer the user, masked when the user also works elsewhere."""
    phone = user.work_phone
    if not selectors.administers_user(scope, user, assignments):
        phone = mask_phone(phone)
    return {
        "id": user.uuid,
        "username": user.username,
        "display_name": user.display_name,
        "email": user.email,
        "work_phone": phone,
        "is_active": user.is_active,
        "last_login": user.last_login,
        "date_joined": user.date_joined,
        "roles": [assignment_out(a) for a in assignments],
    }


def user_detail(actor: User, username: str) -> dict[str, Any]:
    user = selectors.with_assignments(User.objects.filter(username=username)).get()
    return user_out(user, selectors.admin_scope(actor), list(user.assignments.all()))


# --- me and my tokens --------------------------------------------------------------------


@router.get("/me", response=MeOut, summary="The authenticated user and their roles")
def me(request: HttpRequest) -> dict[str, Any]:
    user = request.user
    return {
        "username": user.username,
        "name": getattr(user, "label", user.username),
        "roles": [assignment_out(a) for a in selectors.user_assignments(user)],
    }


@router.get("/tokens", response=list[TokenOut], summary="My API tokens")
def token_list(request: HttpRequest) -> list[dict[str, Any]]:
    return [token_out(t) for t in ApiToken.objects.filter(user=current_user(request))]


@router.post("/tokens", response={201: TokenCreated}, summary="Create an API token")
@idempotent
def token_create(request: HttpRequest, payload: TokenIn) -> Status[dict[str, Any]]:
    asking = getattr(request, "api_token", None)
    token, raw = actions.token_create(
        user=current_user(request),
        name=payload.name,
        days=payload.days,
        scopes=[str(s) for s in payload.scopes] if payload.scopes is not None else None,
        within=list(asking.scopes) if asking is not None else None,
    )
    return Status(201, {**token_out(token), "token": raw})


@router.delete("/tokens/{token_id}", response=TokenOut, summary="Revoke one of my API tokens")
@idempotent
def token_revoke(request: HttpRequest, token_id: UUID) -> dict[str, Any]:
    token = actions.token_revoke(user=current_user(request), token_uuid=str(token_id))
    return token_out(token)


@router.get(
    "/two-factor",
    response=TwoFactorOut,
    summary="My two-factor sign-in: set up, required, recovery codes left",
)
def two_factor_status(request: HttpRequest) -> dict[str, Any]:
    user = current_user(request)
    return {
        "enrolled": selectors.has_authenticator(user),
        "required": selectors.two_factor_required(user),
        "recovery_codes_left": selectors.recovery_codes_left(user),
    }


# --- units -------------------------------------------------------------------------------


@router.get("/units", response=list[UnitOut], summary="Units serving regions in my scope")
def unit_list(request: HttpRequest) -> list[dict[str, Any]]:
    units = selectors.units_visible_to(request.user).prefetch_related("regions").order_by("code")
    return [unit_out(u) for u in units]


@router.post(
    "/units",
    response={201: UnitOut},
    summary="Create a unit (administrators)",
    description=(
        "A regional administrator creates units that serve regions inside their subtree only, "
        "and names at least one. 409 when the code is taken."
    ),
)
@idempotent
def unit_create(request: HttpRequest, payload: UnitIn) -> Status[dict[str, Any]]:
    actor = current_user(request)
    scope = selectors.require_administrator(actor)
    regions = selectors.regions_for_administrator(actor, payload.regions)
    if not regions and not scope.everything:
        raise DomainError(
            _("name the regions the unit serves, inside the regions you administer"),
            detail={"field": "regions"},
        )
    unit = actions.unit_create(
        code=payload.code,
        name=payload.name,
        kind=payload.kind,
        regions=regions,
        phone=payload.phone,
    )
    return Status(201, unit_out(unit))


@router.patch(
    "/units/{code}",
    response=UnitOut,
    summary="Change a unit (administrators)",
    description="Fields left out stay as they are; `regions` replaces the regions served.",
)
@idempotent
def unit_update(request: HttpRequest, code: str, payload: UnitPatch) -> dict[str, Any]:
    actor = current_user(request)
    scope = selectors.require_administrator(actor)
    unit = selectors.unit_for_administrator(actor, code)
    regions = None
    if payload.regions is not None:
        regions = selectors.regions_for_administrator(actor, payload.regions)
        if not regions and not scope.everything:
            raise DomainError(
                _("name the regions the unit serves, inside the regions you administer"),
                detail={"field": "regions"},
            )
    unit = actions.unit_update(
        unit=unit,
        name=payload.name,
        kind=payload.kind,
        regions=regions,
        phone=payload.phone,
        is_active=payload.is_active,
    )
    return unit_out(Unit.objects.prefetch_related("regions").get(pk=unit.pk))


# --- users -------------------------------------------------------------------------------


@router.get(
    "/users",
    response=list[UserOut],
    summary="Users with roles in the regions I administer (administrators)",
    description=(
        "Filter by `role`, by `region` (assignments in that region's subtree, or for units "
        "serving it) and by `q` (username, name or e-mail). Work phones are masked for users "
        "who also work outside the regions you administer."
    ),
)
def user_list(
    request: HttpRequest,
    role: Role | None = None,
    region: str | None = None,
    q: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> list[dict[str, Any]]:
    actor = current_user(request)
    scope = selectors.require_administrator(actor)
    if region:
        selectors.region_by_code(region)
    users = selectors.users_administered_by(actor, role=role, region_code=region, q=q)
    return [user_out(u, scope, list(u.assignments.all())) for u in users[offset : offset + limit]]


@router.post(
    "/users",
    response={201: UserOut},
    summary="Create a user (administrators)",
    description=(
        "The password, when given, must pass the password rules (the message names the "
        "problem); 409 when the username is taken. Give the user roles with "
        "`POST /users/{username}/roles`."
    ),
)
@idempotent
def user_create(request: HttpRequest, payload: UserIn) -> Status[dict[str, Any]]:
    actor = current_user(request)
    selectors.require_administrator(actor)
    user = actions.user_create(
        username=payload.username,
        password=payload.password,
        display_name=payload.display_name,
        email=payload.email,
        work_phone=payload.work_phone,
    )
    return Status(201, user_detail(actor, user.username))


@router.get("/users/{username}", response=UserOut, summary="One user (administrators)")
def user_get(request: HttpRequest, username: str) -> dict[str, Any]:
    actor = current_user(request)
    user = selectors.user_for_administrator(actor, username, manage=False)
    return user_detail(actor, user.username)


@router.patch(
    "/users/{username}",
    response=UserOut,
    summary="Change a user (administrators)",
    description=(
        "Fields left out stay as they are. `is_active: false` deactivates the account and "
        "revokes its API tokens; nobody deactivates their own account."
    ),
)
@idempotent
def user_update(request: HttpRequest, username: str, payload: UserPatch) -> dict[str, Any]:
    actor = current_user(request)
    user = selectors.user_for_administrator(actor, username, manage=True)
    actions.user_update(
        user=user,
        actor=actor,
        display_name=payload.display_name,
        email=payload.email,
        work_phone=payload.work_phone,
        is_active=payload.is_active,
    )
    return user_detail(actor, user.username)


def _role_place(
    actor: User, username: str, body: RoleIn
) -> tuple[User, Region | None, Unit | None]:
    """The user and the place of a role assignment, each checked against the actor's scope."""
    user = selectors.user_for_role_change(actor, username)
    region = selectors.region_by_code(body.region) if body.region else None
    unit = selectors.unit_by_code(body.unit) if body.unit else None
    selectors.require_place_administered(actor, role=body.role, region=region, unit=unit)
    return user, region, unit


@router.post(
    "/users/{username}/roles",
    response=UserOut,
    summary="Give a user a role (administrators)",
    description=(
        "A unit handler's role is held for a `unit`; every other role in a `region` (and its "
        "subtree), and an administrator's also everywhere (neither). Answers the user with all "
        "their roles; giving a role the user holds already changes nothing."
    ),
)
@idempotent
def user_role_assign(request: HttpRequest, username: str, payload: RoleIn) -> dict[str, Any]:
    actor = current_user(request)
    user, region, unit = _role_place(actor, username, payload)
    actions.role_assign(user=user, role=payload.role, region=region, unit=unit)
    return user_detail(actor, user.username)


@router.delete(
    "/users/{username}/roles",
    response=UserOut,
    summary="Take a role away (administrators)",
    description=(
        "Name the assignment with the query parameters `role` and `region` or `unit`, or with "
        "the same JSON body as giving the role. Answers the user with the roles left."
    ),
)
@idempotent
def user_role_revoke(
    request: HttpRequest,
    username: str,
    role: Role | None = None,
    region: str | None = None,
    unit: str | None = None,
) -> dict[str, Any]:
    actor = current_user(request)
    selectors.require_administrator(actor)
    body = _role_from_request(request, role=role, region=region, unit=unit)
    user, place_region, place_unit = _role_place(actor, username, body)
    assignment = RoleAssignment.objects.filter(
        user=user, role=body.role, region=place_region, unit=place_unit
    ).first()
    if assignment is None:
        raise NotFound(
            _("%(username)s holds no such role") % {"username": user.username},
            detail={"user": user.username, "role": str(body.role)},
        )
    actions.role_revoke(assignment=assignment)
    return user_detail(actor, user.username)


def _role_from_request(
    request: HttpRequest, *, role: Role | None, region: str | None, unit: str | None
) -> RoleIn:
    """The assignment named by the query string, or else by a JSON body (DELETE with a body)."""
    if role is None and request.body:
        try:
            return RoleIn.model_validate_json(request.body)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or _('input')}: {e['msg']}"
                for e in exc.errors()[:5]
            )
            raise DomainError(
                _("invalid input: %(problems)s") % {"problems": problems}, status=422
            ) from exc
    if role is None:
        raise DomainError(
            _("name the role to take away: role and region or unit"),
            detail={"field": "role"},
            status=422,
        )
    return RoleIn(role=role, region=region, unit=unit)


@router.post(
    "/users/{username}/unlock",
    response=UnlockOut,
    summary="Lift a lock-out after failed logins (administrators)",
)
@idempotent
def user_unlock(request: HttpRequest, username: str) -> dict[str, Any]:
    actor = current_user(request)
    user = selectors.user_for_administrator(actor, username, manage=True)
    cleared = actions.user_unlock(username=user.username)
    return {"username": user.username, "cleared": cleared}


@router.post(
    "/users/{username}/two-factor/reset",
    response=TwoFactorResetOut,
    summary="Reset a user's two-factor sign-in (administrators)",
    description=(
        "Removes the user's authenticator app and recovery codes (a lost phone). The user logs "
        "in with the password alone and, when a role requires it, sets up a new authenticator "
        "before anything else."
    ),
)
@idempotent
def user_two_factor_reset(request: HttpRequest, username: str) -> dict[str, Any]:
    actor = current_user(request)
    user = selectors.user_for_administrator(actor, username, manage=True)
    removed = actions.two_factor_reset(user=user)
    return {"username": user.username, "removed": removed}
