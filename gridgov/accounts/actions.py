"""Writes about users, roles, units and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.validators import validate_email, validate_slug
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from gridgov.accounts.models import (
    ALL_SCOPES,
    UNIT_ROLES,
    ApiToken,
    Role,
    RoleAssignment,
    Unit,
    UnitKind,
    User,
)
from gridgov.accounts.selectors import forget_assignments
from gridgov.accounts.token_cache import token_by_hash
from gridgov.core.errors import (
    Conflict,
    DomainError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from gridgov.geo.models import Region

TOKEN_PREFIX = "ggt_"  # noqa: S105 (a marker, not a secret)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _check_email(email: str) -> None:
    if email:
        try:
            validate_email(email)
        except ValidationError as exc:
            raise DomainError(
                _("%(email)s is not an e-mail address") % {"email": repr(email)},
                detail={"field": "email"},
            ) from exc


def _check_length(field: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise DomainError(
            _("%(field)s has at most %(limit)s characters") % {"field": field, "limit": limit},
            detail={"field": field},
        )


@transaction.atomic
def user_create(
    *,
    username: str,
    password: str | None,
    display_name: str = "",
    email: str = "",
    work_phone: str = "",
    check_password: bool = True,
) -> User:
    username = username.strip()
    if not username:
        raise DomainError(_("a username is required"), detail={"field": "username"})
    _check_length("username", username, 150)
    try:
        UnicodeUsernameValidator()(username)
    except ValidationError as exc:
        raise DomainError(
            _(
                "the username %(username)s may hold only letters, digits and the characters "
                "@ . + - _"
            )
            % {"username": repr(username)},
            detail={"field": "username"},
        ) from exc
    taken = _("the username %(username)s is taken") % {"username": repr(username)}
    # like Django's own user creation form: names that differ only in case are the same name
    if User.objects.filter(username__iexact=username).exists():
        raise Conflict(taken, detail={"field": "username"})
    display_name, email, work_phone = display_name.strip(), email.strip(), work_phone.strip()
    _check_length("display_name", display_name, 60)
    _check_length("work_phone", work_phone, 30)
    _check_email(email)
    user = User(username=username, display_name=display_name, email=email, work_phone=work_phone)
    if password:
        if check_password:
            try:
                validate_password(password, user)
            except ValidationError as exc:
                raise DomainError("; ".join(exc.messages), detail={"field": "password"}) from exc
        user.set_password(password)
    else:
        user.set_unusable_password()
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:  # created by a concurrent request in the meantime
        raise Conflict(taken, detail={"field": "username"}) from exc
    return user


@transaction.atomic
def user_update(
    *,
    user: User,
    actor: User | None,
    display_name: str | None = None,
    email: str | None = None,
    work_phone: str | None = None,
    is_active: bool | None = None,
) -> User:
    """Change a user's contact details and whether the account is active (None: unchanged)."""
    changed: list[str] = []
    if display_name is not None:
        user.display_name = display_name.strip()
        _check_length("display_name", user.display_name, 60)
        changed.append("display_name")
    if email is not None:
        user.email = email.strip()
        _check_email(user.email)
        changed.append("email")
    if work_phone is not None:
        user.work_phone = work_phone.strip()
        _check_length("work_phone", user.work_phone, 30)
        changed.append("work_phone")
    if changed:
        user.save(update_fields=changed)
    if is_active is False and user.is_active:
        user_deactivate(user=user, actor=actor)
    elif is_active is True and not user.is_active:
        user_activate(user=user)
    return user


@transaction.atomic
def user_deactivate(*, user: User, actor: User | None) -> int:
    """Deactivate an account and revoke its API tokens; returns how many tokens were revoked.

    ``actor`` is who asks (None: the command line); nobody deactivates their own account, so
    an administrator cannot lock everyone out by accident.
    """
    if actor is not None and actor.pk == user.pk:
        raise PermissionDenied(
            _("you cannot deactivate your own account"), detail={"field": "is_active"}
        )
    if user.is_active:
        user.is_active = False
        user.save(update_fields=["is_active"])
    now = timezone.now()
    revoked = ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(
        revoked_at=now, updated_at=now
    )
    forget_assignments(user)
    return revoked


@transaction.atomic
def user_activate(*, user: User) -> User:
    """Let a deactivated user log in again (their revoked tokens stay revoked)."""
    if not user.is_active:
        user.is_active = True
        user.save(update_fields=["is_active"])
    forget_assignments(user)
    return user


@transaction.atomic
def user_unlock(*, username: str) -> int:
    """Lift a lock-out after failed logins (django-axes); returns how many records were cleared."""
    from axes.utils import reset

    return int(reset(username=username) or 0)


@transaction.atomic
def address_unlock(*, ip: str) -> int:
    """Lift the lock of a network address after failures across usernames (its failed-login
    records are cleared); returns how many records were cleared."""
    from axes.utils import reset

    return int(reset(ip=ip.strip()) or 0)


def role_placement_problem(
    *, role: str, region: Region | None, unit: Unit | None
) -> tuple[str, str] | None:
    """What is wrong with holding ``role`` in ``region`` or for ``unit``: (field, message) or None.

    A unit handler works for a unit; every other role is held in a region (and its subtree),
    and only an administrator may hold a role without one (everywhere).
    """
    if role not in Role.values:
        return "role", _("unknown role %(role)s; roles are %(roles)s") % {
            "role": repr(role),
            "roles": ", ".join(Role.values),
        }
    label = str(Role(role).label)
    if role in UNIT_ROLES:
        if region is not None:
            return "region", _("the role %(role)s is held for a unit, not a region") % {
                "role": label
            }
        if unit is None:
            return "unit", _("the role %(role)s needs a unit") % {"role": label}
        return None
    if unit is not None:
        return "unit", _("the role %(role)s is held in a region, not for a unit") % {"role": label}
    if region is None and role != Role.ADMINISTRATOR:
        return "region", _("the role %(role)s needs a region") % {"role": label}
    return None


@transaction.atomic
def role_assign(
    *, user: User, role: str, region: Region | None = None, unit: Unit | None = None
) -> RoleAssignment:
    problem = role_placement_problem(role=role, region=region, unit=unit)
    if problem is not None:
        field, message = problem
        raise DomainError(message, detail={"field": field})
    assignment, _created = RoleAssignment.objects.get_or_create(
        user=user, role=role, region=region, unit=unit
    )
    forget_assignments(user)
    return assignment


@transaction.atomic
def role_revoke(*, assignment: RoleAssignment) -> None:
    user = assignment.user
    assignment.delete()
    forget_assignments(user)


def _check_unit_fields(*, name: str | None, kind: str | None, phone: str | None) -> None:
    if name is not None:
        if not name.strip():
            raise DomainError(_("a unit needs a name"), detail={"field": "name"})
        _check_length("name", name.strip(), 120)
    if kind is not None and kind not in UnitKind.values:
        raise DomainError(
            _("unknown unit kind %(kind)s; kinds are %(kinds)s")
            % {"kind": repr(kind), "kinds": ", ".join(UnitKind.values)},
            detail={"field": "kind"},
        )
    if phone is not None:
        _check_length("phone", phone.strip(), 30)


@transaction.atomic
def unit_create(
    *,
    code: str,
    name: str,
    kind: str,
    regions: list[Region] | None = None,
    phone: str = "",
) -> Unit:
    """Create a unit; its code is its public id and is never reused (409 when taken)."""
    code = code.strip()
    try:
        validate_slug(code)
    except ValidationError as exc:
        raise DomainError(
            _("the unit code %(code)s may hold only letters, digits, - and _")
            % {"code": repr(code)},
            detail={"field": "code"},
        ) from exc
    _check_length("code", code, 40)
    _check_unit_fields(name=name, kind=kind, phone=phone)
    taken = _("a unit with code %(code)s exists already") % {"code": code}
    if Unit.objects.filter(code=code).exists():
        raise Conflict(taken, detail={"field": "code"})
    try:
        with transaction.atomic():
            unit = Unit.objects.create(code=code, name=name.strip(), kind=kind, phone=phone.strip())
    except IntegrityError as exc:
        raise Conflict(taken, detail={"field": "code"}) from exc
    if regions:
        unit.regions.set(regions)
    return unit


@transaction.atomic
def unit_update(
    *,
    unit: Unit,
    name: str | None = None,
    kind: str | None = None,
    regions: list[Region] | None = None,
    phone: str | None = None,
    is_active: bool | None = None,
) -> Unit:
    """Change a unit (None: unchanged). An inactive unit gives its handlers no scope."""
    _check_unit_fields(name=name, kind=kind, phone=phone)
    changed: list[str] = []
    if name is not None:
        unit.name = name.strip()
        changed.append("name")
    if kind is not None:
        unit.kind = kind
        changed.append("kind")
    if phone is not None:
        unit.phone = phone.strip()
        changed.append("phone")
    if is_active is not None:
        unit.is_active = is_active
        changed.append("is_active")
    if changed:
        unit.save(update_fields=[*changed, "updated_at"])
    if regions is not None:
        unit.regions.set(regions)
    return unit


def check_scopes(scopes: list[str] | None, *, within: list[str] | None = None) -> list[str]:
    """The scopes of a new token in their canonical order (None: every scope, or all of
    ``within``); refused when empty, unknown, or beyond ``within`` (the scopes of the token
    that asks: a token never makes a stronger one)."""
    allowed = list(within) if within is not None else list(ALL_SCOPES)
    if scopes is None:
        scopes = allowed
    unknown = sorted({s for s in scopes if s not in ALL_SCOPES})
    if unknown:
        raise ValidationFailed(
            _("unknown scope %(scopes)s; scopes are %(known)s")
            % {"scopes": ", ".join(unknown), "known": ", ".join(ALL_SCOPES)},
            detail={"field": "scopes"},
        )
    if not scopes:
        raise ValidationFailed(_("a token needs at least one scope"), detail={"field": "scopes"})
    beyond = sorted({s for s in scopes if s not in allowed})
    if beyond:
        raise PermissionDenied(
            _("a token cannot create a token with scopes it lacks: %(scopes)s")
            % {"scopes": ", ".join(beyond)},
            detail={"field": "scopes", "scopes": beyond},
        )
    return [s for s in ALL_SCOPES if s in set(scopes)]


@transaction.atomic
def token_create(
    *,
    user: User,
    name: str,
    days: int | None = None,
    scopes: list[str] | None = None,
    within: list[str] | None = None,
) -> tuple[ApiToken, str]:
    """Create a token and return it with its secret, which is shown once and never stored.

    ``days``: its lifetime (default ``GRIDGOV_API_TOKEN_DAYS``); ``scopes``: what it may do
    (default: every scope); ``within``: the scopes of the API token making this one, if any.
    """
    name = name.strip()
    if not name:
        raise DomainError(_("a token needs a name"), detail={"field": "name"})
    if len(name) > 80:
        raise DomainError(_("a token name has at most 80 characters"), detail={"field": "name"})
    days = settings.GRIDGOV_API_TOKEN_DAYS if days is None else days
    if not 1 <= days <= 3650:
        raise DomainError(_("a token lives 1 to 3650 days"), detail={"field": "days"})
    scopes = check_scopes(scopes, within=within)
    prefix = secrets.token_hex(4)
    raw = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=prefix,
        key_hash=hash_token(raw),
        expires_at=timezone.now() + timedelta(days=days),
        scopes=scopes,
    )
    return token, raw


@transaction.atomic
def token_revoke(*, user: User, token_uuid: str) -> ApiToken:
    token = ApiToken.objects.filter(user=user, uuid=token_uuid).first()
    if token is None:
        raise NotFound(_("no such token of yours"), detail={"token": str(token_uuid)})
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at", "updated_at"])
    return token


def token_lookup(raw: str) -> ApiToken | None:
    """The valid token (with its active user) behind a raw secret, or None; touches
    ``last_used_at`` once a minute."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    return token_by_hash(hash_token(raw))  # cached per process: gridgov/accounts/token_cache.py


def token_authenticate(raw: str) -> User | None:
    """The active user behind a raw token, or None (see ``token_lookup``)."""
    token = token_lookup(raw)
    return token.user if token is not None else None


# --- two-factor sign-in (django-otp: a TOTP authenticator app, recovery codes) -------------

RECOVERY_DEVICE_NAME = "recovery"


def normalise_code(code: str) -> str:
    """A code as typed: spaces and dashes dropped, letters in lower case."""
    return "".join(ch for ch in (code or "") if ch not in " -\t").lower()[:32]


@transaction.atomic
def two_factor_begin(*, user: User) -> TOTPDevice:
    """The authenticator the user is setting up: the one begun earlier (so that reloading
    the page keeps the secret already scanned), or a new one with a fresh secret."""
    pending = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if pending is not None:
        TOTPDevice.objects.filter(user=user, confirmed=False).exclude(pk=pending.pk).delete()
        return pending
    return TOTPDevice.objects.create(user=user, name=_("Authenticator app"), confirmed=False)


def two_factor_confirm(*, user: User, code: str) -> tuple[TOTPDevice, list[str]]:
    """Finish setting up the authenticator with a code it shows: it replaces any earlier
    one, and new recovery codes replace the old. Returns the device and the codes (shown
    once). A wrong code answers 422 and changes nothing but the device's throttle."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if device is None:
        raise NotFound(_("no authenticator is being set up; start again"), detail={"field": "code"})
    if not device.verify_token(normalise_code(code)):
        raise ValidationFailed(
            _("the code is wrong or has expired: enter the code the app shows now"),
            detail={"field": "code"},
        )
    with transaction.atomic():
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
        codes = recovery_codes_replace(user=user)
    return device, codes


@transaction.atomic
def recovery_codes_replace(*, user: User) -> list[str]:
    """New single-use recovery codes for the user; the earlier ones stop working."""
    device, _created = StaticDevice.objects.get_or_create(
        user=user, name=RECOVERY_DEVICE_NAME, defaults={"confirmed": True}
    )
    StaticDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    device.token_set.all().delete()
    codes: list[str] = []
    while len(codes) < settings.GRIDGOV_RECOVERY_CODES:
        code = StaticToken.random_token()
        if code not in codes:
            codes.append(code)
    StaticToken.objects.bulk_create([StaticToken(device=device, token=c) for c in codes])
    return codes


def two_factor_check(*, user: User, code: str) -> Device | None:
    """The device that accepts ``code`` (a 6-digit code of the authenticator, or a recovery
    code, which is used up), or None. Each device slows down after wrong codes (django-otp's
    throttling: 1, 2, 4, 8 … seconds before the next try)."""
    code = normalise_code(code)
    if not code:
        return None
    if code.isdigit():
        for totp in TOTPDevice.objects.filter(user=user, confirmed=True):
            if totp.verify_token(code):
                return totp
        return None
    for static in StaticDevice.objects.filter(user=user, confirmed=True):
        if static.verify_token(code):
            return static
    return None


@transaction.atomic
def two_factor_reset(*, user: User) -> int:
    """Remove the user's authenticator and recovery codes (an administrator's reset, for a
    lost phone); returns how many devices were removed. The user sets up a new one at their
    next login when a role requires it."""
    removed = 0
    for model in (TOTPDevice, StaticDevice):
        devices = model.objects.filter(user=user)
        removed += devices.count()
        devices.delete()
    return removed


@transaction.atomic
def two_factor_disable(*, user: User, password: str) -> int:
    """The user turns two-factor sign-in off (not allowed when a role requires it)."""
    from gridgov.accounts.selectors import two_factor_required

    if two_factor_required(user):
        raise PermissionDenied(
            _("your role requires two-factor sign-in; an administrator can reset it"),
            detail={"field": "password"},
        )
    if not user.check_password(password):
        raise ValidationFailed(_("the password is wrong"), detail={"field": "password"})
    return two_factor_reset(user=user)
