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

from gridgov.accounts.models import (
    UNIT_ROLES,
    ApiToken,
    Role,
    RoleAssignment,
    Unit,
    UnitKind,
    User,
)
from gridgov.accounts.selectors import forget_assignments
from gridgov.core.errors import Conflict, DomainError, NotFound, PermissionDenied
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


@transaction.atomic
def token_create(*, user: User, name: str, days: int | None = None) -> tuple[ApiToken, str]:
    """Create a token and return it with its secret, which is shown once and never stored."""
    name = name.strip()
    if not name:
        raise DomainError(_("a token needs a name"), detail={"field": "name"})
    if len(name) > 80:
        raise DomainError(_("a token name has at most 80 characters"), detail={"field": "name"})
    days = settings.GRIDGOV_API_TOKEN_DAYS if days is None else days
    if not 1 <= days <= 3650:
        raise DomainError(_("a token lives 1 to 3650 days"), detail={"field": "days"})
    prefix = secrets.token_hex(4)
    raw = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=prefix,
        key_hash=hash_token(raw),
        expires_at=timezone.now() + timedelta(days=days),
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


def token_authenticate(raw: str) -> User | None:
    """The active user behind a raw token, or None; touches ``last_used_at`` once a minute."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    token = ApiToken.objects.select_related("user").filter(key_hash=hash_token(raw)).first()
    now = timezone.now()
    if token is None or token.revoked_at is not None:
        return None
    if token.expires_at is not None and token.expires_at <= now:
        return None
    if not token.user.is_active:
        return None
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user
