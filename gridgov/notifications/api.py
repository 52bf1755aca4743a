"""Notifications API: the caller's own inbox and delivery preferences.

Every route answers about the caller only; another user's notification answers 404, like one
that does not exist. Writes take an ``Idempotency-Key``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from gridgov.accounts.selectors import current_user
from gridgov.core.idempotency import idempotent
from gridgov.notifications import actions, selectors
from gridgov.notifications.models import Notification, NotificationPreference

router = Router()


class NotificationOut(Schema):
    id: UUID
    kind: str = Field(description="what happened, e.g. case.dispatched")
    title: str
    body: str
    link: str = Field(description="a path on this site, or empty")
    subject_ref: str = Field(description="what it is about, e.g. a case number, or empty")
    created_at: datetime
    read_at: datetime | None
    unread: bool


class UnreadCountOut(Schema):
    unread: int


class ReadAllOut(Schema):
    marked: int = Field(description="notifications marked read by this request")
    unread: int


class PreferencesOut(Schema):
    email: bool
    sms: bool
    digest_threshold: int
    muted_kinds: list[str]


class PreferencesIn(Schema):
    email: bool = Field(description="send notifications by e-mail (to the account's address)")
    sms: bool = Field(description="send notifications by text message (to the work phone)")
    digest_threshold: int = Field(
        ge=1, le=1000, description="more notifications than this in an hour come as one digest"
    )
    muted_kinds: list[str] = Field(
        default_factory=list,
        max_length=200,
        description="kinds never sent by e-mail or text message (they stay in the inbox)",
    )


def notification_out(n: Notification) -> dict[str, Any]:
    return {
        "id": n.uuid,
        "kind": n.kind,
        "title": n.title,
        "body": n.body,
        "link": n.link,
        "subject_ref": n.subject_ref,
        "created_at": n.created_at,
        "read_at": n.read_at,
        "unread": n.read_at is None,
    }


def preferences_out(pref: NotificationPreference) -> dict[str, Any]:
    return {
        "email": pref.email,
        "sms": pref.sms,
        "digest_threshold": pref.digest_threshold,
        "muted_kinds": list(pref.muted_kinds or []),
    }


@router.get("", response=list[NotificationOut], summary="My notifications, newest first")
def notification_list(
    request: HttpRequest,
    unread: bool | None = Query(None, description="true: unread only; false: read only"),
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> list[dict[str, Any]]:
    rows = selectors.notifications_of(current_user(request), unread=unread)
    return [notification_out(n) for n in rows[offset : offset + limit]]


@router.get("/unread-count", response=UnreadCountOut, summary="How many of mine are unread")
def notification_unread_count(request: HttpRequest) -> dict[str, Any]:
    return {"unread": selectors.unread_count(current_user(request))}


@router.post("/read-all", response=ReadAllOut, summary="Mark all my notifications read")
@idempotent
def notification_read_all(request: HttpRequest) -> dict[str, Any]:
    user = current_user(request)
    marked = actions.notifications_mark_all_read(user=user)
    return {"marked": marked, "unread": selectors.unread_count(user)}


@router.post(
    "/{notification_id}/read",
    response=NotificationOut,
    summary="Mark one of my notifications read",
    description="Marking a read notification again changes nothing. 404 for anyone else's.",
)
@idempotent
def notification_read(request: HttpRequest, notification_id: UUID) -> dict[str, Any]:
    n = actions.notification_mark_read(user=current_user(request), notification_id=notification_id)
    return notification_out(n)


@router.get("/preferences", response=PreferencesOut, summary="My delivery preferences")
def notification_preferences_get(request: HttpRequest) -> dict[str, Any]:
    return preferences_out(selectors.preference_of(current_user(request)))


@router.put(
    "/preferences",
    response=PreferencesOut,
    summary="Change my delivery preferences",
    description=(
        "E-mail goes to the account's e-mail address, text messages to its work phone. More "
        "than `digest_threshold` notifications in an hour arrive as one digest per channel."
    ),
)
@idempotent
def notification_preferences_put(request: HttpRequest, payload: PreferencesIn) -> dict[str, Any]:
    pref = actions.preference_update(
        user=current_user(request),
        email=payload.email,
        sms=payload.sms,
        digest_threshold=payload.digest_threshold,
        muted_kinds=payload.muted_kinds,
    )
    return preferences_out(pref)
