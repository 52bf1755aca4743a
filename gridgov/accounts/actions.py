"""Writes about users, roles, units and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from gridgov.accounts.models import UNIT_ROLES, ApiToken, Role, RoleAssignment, Unit, User
from gridgov.accounts.selectors import forget_assignments
from gridgov.core.errors import DomainError, NotFound
from gridgov.geo.models import Region

TOKEN_PREFIX = "ggt_"  # noqa: S105 (a marker, not a secret)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


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
    if User.objects.filter(username=username).exists():
        raise DomainError(
            _("the username %(username)s is taken") % {"username": repr(username)},
            detail={"field": "username"},
        )
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
    user.save()
    return user


@transaction.atomic
def role_assign(
    *, user: User, role: str, region: Region | None = None, unit: Unit | None = None
) -> RoleAssignment:
    if role not in Role.values:
        raise DomainError(
            _("unknown role %(role)s; roles are %(roles)s")
            % {"role": repr(role), "roles": ", ".join(Role.values)}
        )
    if role in UNIT_ROLES:
        if unit is None or region is not None:
            raise DomainError(
                _("the role %(role)s is held for a unit, not a region") % {"role": role}
            )
    else:
        if unit is not None:
            raise DomainError(
                _("the role %(role)s is held in a region, not for a unit") % {"role": role}
            )
        if region is None and role != Role.ADMINISTRATOR:
            raise DomainError(_("the role %(role)s needs a region") % {"role": role})
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


@transaction.atomic
def unit_create(*, code: str, name: str, kind: str, regions: list[Region] | None = None) -> Unit:
    unit, _created = Unit.objects.update_or_create(code=code, defaults={"name": name, "kind": kind})
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
