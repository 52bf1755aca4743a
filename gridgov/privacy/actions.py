"""Writes of the access log, and revealing personal values (DESIGN.md rules 1 and 8).

Every open of a person's record (``access_log_view``), every export (``access_log_export``),
every search by personal data (``access_log_search``) and every reveal (``personal_reveal``)
appends one ``AccessLog`` row. Filters are stored without personal values: a searched id number
is kept as its mask.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from gridgov.core.errors import PermissionDenied
from gridgov.core.masking import mask_id_number, mask_phone

from . import crypto
from .errors import ValidationFailed
from .models import AccessKind, AccessLog, Channel, MaskedPersonalData, SubjectType
from .selectors import clearance_of, reveal_scope

#: The shortest reason accepted for a reveal.
MIN_REASON = 4
MAX_REASON = 1000
MAX_SCREEN = 200
_ID_LIKE = re.compile(r"^[0-9]{17}[0-9X]$|^[0-9]{15}$")
_PHONE_LIKE = re.compile(r"^[0-9]{7,}$")
_ID_KEYS = {"id_number"}
_PHONE_KEYS = {"phone", "contact_phone", "mobile"}
#: Free-text keys: masked when the text looks like an id number or a phone number.
_TEXT_KEYS = {"q", "text", "search", "query"}


def _actor(actor: Any) -> Any:
    return actor if actor is not None and getattr(actor, "pk", None) is not None else None


def _channel(channel: str) -> str:
    if channel not in Channel.values:
        raise ValueError(f"unknown channel {channel!r}; one of {', '.join(Channel.values)}")
    return channel


def _subject_type(subject_type: str) -> str:
    if subject_type and subject_type not in SubjectType.values:
        raise ValueError(f"unknown subject type {subject_type!r}")
    return subject_type


def mask_value(key: str, value: Any) -> Any:
    """A filter value safe to store: id numbers and phones masked, wherever they appear."""
    if isinstance(value, Mapping):
        return safe_filter(value)
    if isinstance(value, list | tuple):
        return [mask_value(key, v) for v in value]
    if not isinstance(value, str):
        return value
    if key in _ID_KEYS:
        return mask_id_number(crypto.normalise_id_number(value))
    if key in _PHONE_KEYS:
        return mask_phone(crypto.normalise_phone(value))
    if key not in _TEXT_KEYS:
        return value
    compact = crypto.normalise_id_number(value)
    if _ID_LIKE.match(compact):
        return mask_id_number(compact)
    phone = crypto.normalise_phone(value)
    if _PHONE_LIKE.match(phone) and len(phone) >= len(compact) - 4:
        return mask_phone(phone)
    return value


def safe_filter(filter: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{"id_number": "32011319900101123X"}`` → ``{"id_number": "3201**********123X"}``."""
    return {str(k): mask_value(str(k), v) for k, v in (filter or {}).items()}


def _log(
    *,
    actor: Any,
    kind: str,
    subject_type: str = "",
    subject_uuid: uuid.UUID | str | None = None,
    region_code: str = "",
    fields: Iterable[str] = (),
    channel: str,
    screen: str = "",
    reason: str = "",
    filter: Mapping[str, Any] | None = None,
    count: int = 0,
    at: datetime | None = None,
) -> AccessLog:
    return AccessLog.objects.create(
        at=at or timezone.now(),
        user=_actor(actor),
        kind=kind,
        subject_type=_subject_type(subject_type),
        subject_uuid=subject_uuid,
        region_code=(region_code or "")[:15],
        fields=sorted(set(fields)),
        channel=_channel(channel),
        screen=(screen or "")[:MAX_SCREEN],
        reason=reason,
        filter=safe_filter(filter),
        count=max(0, int(count)),
    )


def access_log_view(
    *,
    actor: Any,
    subject_type: str,
    subject_uuid: uuid.UUID | str,
    fields: Iterable[str],
    channel: str,
    screen: str = "",
    region_code: str = "",
    at: datetime | None = None,
) -> AccessLog:
    """Log that ``actor`` opened a record and was shown ``fields`` (clear or masked)."""
    return _log(
        actor=actor,
        kind=AccessKind.VIEW,
        subject_type=subject_type,
        subject_uuid=subject_uuid,
        region_code=region_code,
        fields=fields,
        channel=channel,
        screen=screen,
        count=1,
        at=at,
    )


def access_log_export(
    *,
    actor: Any,
    subject_type: str,
    filter: Mapping[str, Any] | None,
    count: int,
    channel: str = Channel.EXPORT,
    screen: str = "",
    fields: Iterable[str] = (),
    region_code: str = "",
    at: datetime | None = None,
) -> AccessLog:
    """Log an export: who exported what filter (personal values masked), how many rows."""
    return _log(
        actor=actor,
        kind=AccessKind.EXPORT,
        subject_type=subject_type,
        region_code=region_code,
        fields=fields,
        channel=channel,
        screen=screen,
        filter=filter,
        count=count,
        at=at,
    )


def access_log_search(
    *,
    actor: Any,
    subject_type: str,
    filter: Mapping[str, Any] | None,
    count: int,
    channel: str,
    screen: str = "",
    region_code: str = "",
    at: datetime | None = None,
) -> AccessLog:
    """Log a search (by name, id number or phone; personal values masked) and its hit count."""
    return _log(
        actor=actor,
        kind=AccessKind.SEARCH,
        subject_type=subject_type,
        region_code=region_code,
        channel=channel,
        screen=screen,
        filter=filter,
        count=count,
        at=at,
    )


@transaction.atomic
def personal_reveal(
    *,
    actor: Any,
    subject_type: str,
    subject: MaskedPersonalData,
    fields: Iterable[str],
    reason: str,
    channel: str,
    screen: str = "",
) -> dict[str, str]:
    """The clear values of ``fields`` of ``subject``, for an actor whose role may reveal them in
    the subject's region, giving a reason; the reveal is logged.

    PermissionDenied without the reveal clearance (``Clearance.may_reveal``) there;
    ValidationFailed without a reason of at least 4 characters or for a field that is not
    personal data."""
    wanted = list(dict.fromkeys(fields))
    personal = type(subject).PERSONAL_FIELDS
    unknown = [f for f in wanted if f not in personal]
    if not wanted or unknown:
        message = _("choose what to reveal among %(fields)s") % {"fields": ", ".join(personal)}
        raise ValidationFailed(message, detail={"fields": message})
    _level, may_reveal = clearance_of(actor)
    region = str(getattr(subject, "region_code", "") or "")
    if not may_reveal or not reveal_scope(actor).covers(region):
        raise PermissionDenied(
            _("you may not reveal personal data here: ask an administrator for the clearance")
        )
    text = (reason or "").strip()
    if len(text) < MIN_REASON:
        message = _("give the reason for revealing (at least %(count)s characters)") % {
            "count": MIN_REASON
        }
        raise ValidationFailed(message, detail={"reason": message})
    if len(text) > MAX_REASON:
        message = _("the reason is longer than %(count)s characters") % {"count": MAX_REASON}
        raise ValidationFailed(message, detail={"reason": message})
    row = type(subject)._base_manager.filter(pk=subject.pk).values_list(*wanted).first()
    values = dict(zip(wanted, row or ("",) * len(wanted), strict=True))
    _log(
        actor=actor,
        kind=AccessKind.REVEAL,
        subject_type=subject_type,
        subject_uuid=getattr(subject, "uuid", None),
        region_code=region,
        fields=wanted,
        channel=channel,
        screen=screen,
        reason=text,
    )
    return {k: str(v or "") for k, v in values.items()}
