"""Privacy API: the personal-data access log (administrators), my clearance, and reveal.

Mounted at ``/api/v1/privacy``. Revealing an id or phone number in clear takes a reason and the
reveal clearance of a role serving the record's region (``Clearance.may_reveal``); every reveal
is logged (channel ``api``). The registry API offers the same reveal on each record
(``POST /api/v1/registry/people/{uuid}/reveal``); both go through ``reveal_response``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema
from pydantic import Field

from gridgov.accounts.selectors import current_user
from gridgov.core.idempotency import idempotent

from .actions import personal_reveal
from .models import AccessKind, AccessLog, Channel, MaskedPersonalData, SubjectType
from .selectors import access_log_for, clearance_of, reveal_scope

router = Router()

MAX_PAGE = 200
#: Personal fields a reveal may name (of a person: id_number, phone; of an organisation:
#: contact_phone).
RevealField = Literal["id_number", "phone", "contact_phone"]


class ClearanceOut(Schema):
    level: int = Field(description="the highest tag sensitivity you see (0, 1 or 2)")
    may_reveal: bool = Field(description="whether a role of yours may reveal personal data")


class RevealIn(Schema):
    fields: list[RevealField] = Field(min_length=1, max_length=3)
    reason: str = Field(
        max_length=1000, description="why you need the clear values (at least 4 characters)"
    )


class RevealSubjectIn(RevealIn):
    subject_type: Literal["person", "organisation"]
    subject: UUID


class RevealOut(Schema):
    subject_type: str
    subject: UUID
    values: dict[str, str] = Field(description="the clear values of the fields asked for")


class AccessLogQuery(Schema):
    person: UUID | None = Field(None, description="entries about this record (any subject)")
    user: str = Field("", max_length=150, description="entries of this username")
    since: date | None = None
    kind: AccessKind | None = None
    channel: Channel | None = None
    limit: int = Field(50, ge=1, le=MAX_PAGE)
    offset: int = Field(0, ge=0, le=1_000_000)


class AccessLogOut(Schema):
    id: UUID
    at: datetime
    user: str | None
    kind: str
    subject_type: str
    subject: UUID | None
    region_code: str
    fields: list[str]
    channel: str
    screen: str
    reason: str
    filter: dict[str, Any]
    count: int


class AccessLogPage(Schema):
    has_more: bool
    limit: int
    offset: int
    items: list[AccessLogOut]


def access_log_out(row: AccessLog) -> dict[str, Any]:
    return {
        "id": row.uuid,
        "at": row.at,
        "user": row.user.username if row.user is not None else None,
        "kind": row.kind,
        "subject_type": row.subject_type,
        "subject": row.subject_uuid,
        "region_code": row.region_code,
        "fields": list(row.fields or []),
        "channel": row.channel,
        "screen": row.screen,
        "reason": row.reason,
        "filter": dict(row.filter or {}),
        "count": row.count,
    }


def no_store(response: HttpResponse) -> None:
    """Keep an answer holding personal data out of every cache."""
    response["Cache-Control"] = "no-store"


def may_reveal_here(actor: Any, region_code: str) -> bool:
    """Whether ``actor`` may reveal personal values of a record in ``region_code``."""
    return clearance_of(actor)[1] and reveal_scope(actor).covers(region_code or "")


def reveal_response(
    request: HttpRequest,
    *,
    subject_type: str,
    subject: Any,
    fields: list[str],
    reason: str,
) -> dict[str, Any]:
    """The clear values of ``fields`` of ``subject`` (a ``MaskedPersonalData`` record found by a
    scoped selector), logged."""
    values = personal_reveal(
        actor=current_user(request),
        subject_type=subject_type,
        subject=subject,
        fields=fields,
        reason=reason,
        channel=Channel.API,
        screen=request.path,
    )
    return {"subject_type": subject_type, "subject": subject.uuid, "values": values}


@router.get("/clearance", response=ClearanceOut, url_name="privacy_clearance")
def privacy_clearance(request: HttpRequest) -> dict[str, Any]:
    """Your clearance: which tags you see and whether you may reveal personal data."""
    level, may_reveal = clearance_of(current_user(request))
    return {"level": level, "may_reveal": may_reveal}


@router.post(
    "/reveal",
    response=RevealOut,
    url_name="privacy_reveal",
    summary="Reveal a person's or an organisation's personal data, giving a reason",
    description=(
        "Answers the id number, phone or contact phone in clear and logs the reveal (who, when, "
        "which fields, why). 403 without the reveal clearance in the record's region; 404 for a "
        "record you do not see; 422 without a reason of at least 4 characters."
    ),
)
@idempotent
def privacy_reveal(
    request: HttpRequest, payload: RevealSubjectIn, response: HttpResponse
) -> dict[str, Any]:
    from gridgov.registry import selectors as registry

    user = current_user(request)
    subject: MaskedPersonalData
    if payload.subject_type == SubjectType.PERSON:
        subject = registry.person_get(user, payload.subject)
    else:
        subject = registry.organisation_get(user, payload.subject)
    no_store(response)
    return reveal_response(
        request,
        subject_type=payload.subject_type,
        subject=subject,
        fields=list(payload.fields),
        reason=payload.reason,
    )


@router.get(
    "/access-log",
    response=AccessLogPage,
    url_name="privacy_access_log",
    summary="Who saw, revealed, searched or exported personal data (administrators)",
)
def privacy_access_log(request: HttpRequest, query: Query[AccessLogQuery]) -> dict[str, Any]:
    """Newest first. Administrators of everything read all of it; a regional administrator the
    entries about records in their regions."""
    qs = access_log_for(
        current_user(request),
        subject_uuid=query.person,
        user=query.user or None,
        since=query.since,
    )
    if query.kind is not None:
        qs = qs.filter(kind=query.kind)
    if query.channel is not None:
        qs = qs.filter(channel=query.channel)
    rows = list(qs[query.offset : query.offset + query.limit + 1])
    return {
        "has_more": len(rows) > query.limit,
        "limit": query.limit,
        "offset": query.offset,
        "items": [access_log_out(r) for r in rows[: query.limit]],
    }
