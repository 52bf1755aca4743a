"""Reads about users, roles and units, scoped."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, Q, QuerySet
from django.utils.translation import gettext as _

from gridgov.accounts.models import UNIT_ROLES, Role, RoleAssignment, TokenScope, Unit, User
from gridgov.core.errors import DomainError, NotFound, PermissionDenied
from gridgov.core.scope import Scope
from gridgov.core.stamps import StampedCache
from gridgov.geo.models import Region

_CACHE_ATTR = "_gridgov_assignments"
ROLES_STAMP = "accounts.roles"


def _no_assignments_yet(version: int) -> dict[int, list[RoleAssignment]]:
    return {}


#: Per process: user id → role assignments, dropped whenever any assignment, unit or unit's
#: regions change (the ``accounts.roles`` stamp, bumped by the signals in ``AccountsConfig``).
#: Other processes notice within ``GRIDGOV_INDEX_CHECK_SECONDS``.
_assignments: StampedCache[dict[int, list[RoleAssignment]]] = StampedCache(
    ROLES_STAMP, _no_assignments_yet
)


#: On a user authenticated by an API token: the token's scopes (see ``restrict_to_scopes``).
_SCOPES_ATTR = "_gridgov_api_scopes"


def user_assignments(user: Any) -> list[RoleAssignment]:
    """The user's role assignments, loaded once per user object (i.e. once per request) from
    the process's cache. The instances are shared: read them, never change them.

    A user authenticated by an API token without the ``admin`` scope holds no administrator
    assignment: every check of the administrator role (and the scope it gives) reads this."""
    if user is None or not user.is_authenticated or not user.is_active:
        return []
    scopes = getattr(user, _SCOPES_ATTR, None)
    if scopes is not None and TokenScope.ADMIN not in scopes:
        return [a for a in _cached_assignments(user) if a.role != Role.ADMINISTRATOR]
    return _cached_assignments(user)


def restrict_to_scopes(user: Any, scopes: list[str]) -> None:
    """The request's user acts through an API token with these scopes (see user_assignments)."""
    setattr(user, _SCOPES_ATTR, frozenset(scopes))


def _cached_assignments(user: Any) -> list[RoleAssignment]:
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is None:
        known = _assignments.get()
        cached = known.get(user.pk)
        if cached is None:
            cached = list(
                RoleAssignment.objects.filter(user=user)
                .select_related("region", "unit")
                .defer("region__geometry")  # a grid's polygon: never needed for scope and roles
                .prefetch_related(Prefetch("unit__regions", Region.objects.defer("geometry")))
            )
            known[user.pk] = cached
        setattr(user, _CACHE_ATTR, cached)
    return cached


def forget_assignments(user: Any) -> None:
    if hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)


def roles_changed() -> None:
    """Call inside the transaction that changed role assignments or units in bulk."""
    _assignments.changed()


def user_role_names(user: Any) -> list[str]:
    return sorted({a.role for a in user_assignments(user)})


def user_has_role(user: Any, *roles: str) -> bool:
    wanted = set(roles)
    return any(a.role in wanted for a in user_assignments(user))


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


def current_user(request: Any) -> User:
    """The authenticated user of a request (views and API handlers that require a login)."""
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied(_("authentication required"))
    return user


# --- administration: who administers which users and units ---------------------------------


def admin_scope(user: Any) -> Scope:
    """The region subtrees the user administers (everything for an administrator without one)."""
    return user_scope(user, roles={Role.ADMINISTRATOR})


def require_administrator(user: Any) -> Scope:
    """The user's administrator scope; PermissionDenied for anyone who administers nothing."""
    scope = admin_scope(user)
    if scope.is_empty:
        raise PermissionDenied(_("only administrators may do this"))
    return scope


def assignment_codes(assignment: RoleAssignment) -> list[str] | None:
    """The region codes an assignment covers: its region or its unit's; None for everywhere."""
    if assignment.unit is not None:
        return [r.code for r in assignment.unit.regions.all()]
    if assignment.region is not None:
        return [assignment.region.code]
    return None


def _inside(scope: Scope, codes: list[str] | None) -> bool:
    """All of ``codes`` (at least one) lie in ``scope``; None (everywhere) only in everything."""
    if scope.everything:
        return True
    return bool(codes) and all(scope.covers(c) for c in codes or [])


def _below(scope: Scope, codes: list[str] | None) -> bool:
    """All of ``codes`` lie strictly below the scope's roots (where an administrator of the
    scope may appoint or manage another administrator: not beside themself)."""
    if scope.everything:
        return True
    return _inside(scope, codes) and not any(c in scope.prefixes for c in codes or [])


def _manages_assignment(scope: Scope, role: str, codes: list[str] | None) -> bool:
    if role == Role.ADMINISTRATOR:
        return _below(scope, codes)
    return _inside(scope, codes)


def _touches(scope: Scope, codes: list[str] | None) -> bool:
    if scope.everything:
        return True
    return bool(codes) and any(scope.covers(c) for c in codes or [])


def _is_privileged(user: User, assignments: list[RoleAssignment]) -> bool:
    """Site staff and administrators of everything (whom only the latter may manage)."""
    return (
        user.is_superuser
        or user.is_staff
        or any(a.role == Role.ADMINISTRATOR and a.region_id is None for a in assignments)
    )


def administers_user(scope: Scope, user: User, assignments: list[RoleAssignment]) -> bool:
    """May an administrator with ``scope`` change this user (details, activity, lock-out)?

    An administrator of everything manages everyone. A regional administrator manages a user
    whose every assignment lies inside their subtrees (an administrator's strictly below
    them, so not a fellow administrator of the same region), and users without any assignment
    yet (whom they have just created, say), but never site staff or administrators of
    everything.
    """
    if scope.everything:
        return True
    if scope.is_empty or _is_privileged(user, assignments):
        return False
    return all(_manages_assignment(scope, a.role, assignment_codes(a)) for a in assignments)


def sees_user(scope: Scope, assignments: list[RoleAssignment]) -> bool:
    """An administrator sees users with an assignment in their scope, and users without any."""
    if scope.everything:
        return True
    if scope.is_empty:
        return False
    return not assignments or any(_touches(scope, assignment_codes(a)) for a in assignments)


def _assignments_of(user: User) -> list[RoleAssignment]:
    return list(
        RoleAssignment.objects.filter(user=user)
        .select_related("region", "unit")
        .prefetch_related("unit__regions")
    )


def with_assignments(users: QuerySet[User]) -> QuerySet[User]:
    """Users with their assignments, regions, units and units' regions in five queries."""
    return users.prefetch_related(
        Prefetch(
            "assignments",
            queryset=RoleAssignment.objects.select_related("region", "unit").prefetch_related(
                "unit__regions"
            ),
        )
    )


def users_administered_by(
    actor: Any, *, role: str | None = None, region_code: str | None = None, q: str | None = None
) -> QuerySet[User]:
    """Users an administrator may list: those with an assignment in the administrator's scope
    (everyone, for an administrator of everything), filtered by role, region subtree and text.
    """
    scope = require_administrator(actor)
    filtered = bool(role or region_code)
    users = User.objects.all()
    if filtered or not scope.everything:
        held = RoleAssignment.objects.all()
        if not scope.everything:
            held = held.filter(scope.q("region__code") | scope.q("unit__regions__code"))
        if role:
            held = held.filter(role=role)
        if region_code:
            held = held.filter(
                Q(region__code__startswith=region_code)
                | Q(unit__regions__code__startswith=region_code)
            )
        users = users.filter(pk__in=held.values("user_id"))
    if q and q.strip():
        text = q.strip()
        users = users.filter(
            Q(username__icontains=text) | Q(display_name__icontains=text) | Q(email__icontains=text)
        )
    return with_assignments(users).order_by("username")


def user_for_administrator(actor: Any, username: str, *, manage: bool) -> User:
    """The user named ``username`` as an administrator may see it (``manage``: and change it).

    NotFound when the user does not exist or lies outside the administrator's scope (the two
    read alike); PermissionDenied when they may see but not change the user.
    """
    scope = require_administrator(actor)
    user = User.objects.filter(username=username).first()
    missing = NotFound(
        _("no user %(username)s") % {"username": repr(username)}, detail={"user": username}
    )
    if user is None:
        raise missing
    assignments = _assignments_of(user)
    if not sees_user(scope, assignments):
        raise missing
    if manage and user.pk != actor.pk and not administers_user(scope, user, assignments):
        raise PermissionDenied(
            _("you may not change %(username)s: they hold a role you do not administer")
            % {"username": user.username},
            detail={"user": user.username},
        )
    return user


def user_for_role_change(actor: Any, username: str) -> User:
    """A user whose roles the actor may change (in places they administer, checked apart).

    Any user the actor sees; but a regional administrator never changes the roles of site
    staff or of administrators of everything.
    """
    user = user_for_administrator(actor, username, manage=False)
    scope = admin_scope(actor)
    if not scope.everything and _is_privileged(user, _assignments_of(user)):
        raise PermissionDenied(
            _("only administrators of every region may change the roles of %(username)s")
            % {"username": user.username},
            detail={"user": user.username},
        )
    return user


def require_place_administered(
    actor: Any, *, role: str, region: Region | None = None, unit: Unit | None = None
) -> None:
    """PermissionDenied unless the actor administers the place of an assignment of ``role``.

    A region: inside their subtrees (for an administrator's role, strictly below their own
    regions). A unit: every region it serves is. Neither (a role held everywhere): only
    administrators of everything.
    """
    scope = require_administrator(actor)
    if unit is not None:
        codes: list[str] | None = [r.code for r in unit.regions.all()]
        place = unit.code
    elif region is not None:
        codes, place = [region.code], region.code
    else:
        codes, place = None, None
    if _manages_assignment(scope, role, codes):
        return
    if place is None:
        raise PermissionDenied(_("only administrators of every region may give a role everywhere"))
    if role == Role.ADMINISTRATOR and _inside(scope, codes):
        raise PermissionDenied(
            _("administrators of %(place)s are appointed by an administrator above it")
            % {"place": place},
            detail={"place": place},
        )
    raise PermissionDenied(
        _("you do not administer %(place)s") % {"place": place}, detail={"place": place}
    )


def unit_for_administrator(actor: Any, code: str) -> Unit:
    """A unit an administrator may change: one serving only regions inside their scope."""
    scope = require_administrator(actor)
    unit = Unit.objects.prefetch_related("regions").filter(code=code).first()
    codes = [r.code for r in unit.regions.all()] if unit is not None else []
    if unit is None or not (scope.everything or _touches(scope, codes)):
        raise NotFound(_("no unit with code %(code)s") % {"code": code}, detail={"unit": code})
    if not _inside(scope, codes):
        raise PermissionDenied(
            _("the unit %(code)s also serves regions you do not administer") % {"code": code},
            detail={"unit": code},
        )
    return unit


def regions_for_administrator(actor: Any, codes: list[str]) -> list[Region]:
    """The regions named by ``codes``, each inside the actor's administrator scope."""
    scope = require_administrator(actor)
    wanted = list(dict.fromkeys(c.strip() for c in codes))
    found = {r.code: r for r in Region.objects.filter(code__in=wanted)}
    for code in wanted:
        if code not in found:
            raise DomainError(
                _("no region with code %(code)s") % {"code": repr(code)},
                detail={"field": "regions", "region": code},
            )
        if not scope.covers(code):
            raise PermissionDenied(
                _("you do not administer %(place)s") % {"place": code}, detail={"place": code}
            )
    return [found[c] for c in wanted]


def region_by_code(code: str) -> Region:
    """A region by its code, or DomainError naming the code (input that names a region)."""
    region = Region.objects.filter(code=code.strip()).first()
    if region is None:
        raise DomainError(
            _("no region with code %(code)s") % {"code": repr(code)},
            detail={"field": "region", "region": code},
        )
    return region


def unit_by_code(code: str) -> Unit:
    """A unit by its code, or DomainError naming the code (input that names a unit)."""
    unit = Unit.objects.prefetch_related("regions").filter(code=code.strip()).first()
    if unit is None:
        raise DomainError(
            _("no unit with code %(code)s") % {"code": repr(code)},
            detail={"field": "unit", "unit": code},
        )
    return unit


# --- API token scopes ----------------------------------------------------------------------

#: API paths of base data and personal data, guarded by the registry scopes.
REGISTRY_API_PREFIXES = ("/api/v1/registry", "/api/v1/privacy")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def scope_needed(method: str, path: str) -> str:
    """The scope an API token needs for a request: read or write, of base data or the rest."""
    registry = any(path == p or path.startswith(p + "/") for p in REGISTRY_API_PREFIXES)
    if method.upper() in SAFE_METHODS:
        return TokenScope.REGISTRY_READ if registry else TokenScope.READ
    return TokenScope.REGISTRY_WRITE if registry else TokenScope.WRITE


# --- two-factor sign-in --------------------------------------------------------------------


def two_factor_required(user: Any) -> bool:
    """One of the user's roles is listed in GRIDGOV_2FA_ROLES (a superuser counts as an
    administrator)."""
    from django.conf import settings

    roles = set(settings.GRIDGOV_2FA_ROLES)
    if not roles:
        return False
    if getattr(user, "is_superuser", False) and Role.ADMINISTRATOR in roles:
        return True
    return any(a.role in roles for a in user_assignments(user))


def has_authenticator(user: Any) -> bool:
    """The user has set up an authenticator app (a confirmed TOTP device)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    if user is None or not user.is_authenticated:
        return False
    return TOTPDevice.objects.filter(user_id=user.pk, confirmed=True).exists()


def recovery_codes_left(user: Any) -> int:
    from django_otp.plugins.otp_static.models import StaticToken

    return StaticToken.objects.filter(device__user_id=user.pk, device__confirmed=True).count()


def two_factor_step(user: Any) -> str | None:
    """What a signed-in web session still owes: "verify" (a code: the user has an
    authenticator and this session has not given one), "enrol" (an authenticator: a role
    requires one) or None."""
    verified = getattr(user, "is_verified", None)
    if callable(verified) and verified():
        return None
    if has_authenticator(user):
        return "verify"
    if two_factor_required(user):
        return "enrol"
    return None
