"""Every read of the registry, scoped (DESIGN.md rules 2 and 8).

Who sees base data: staff whose roles carry a region scope (``REGISTRY_ROLES``), within that
scope; unit handlers, residents and users without a role see nothing. People come back with
their id and phone numbers masked (the encrypted columns are not even read): only
``gridgov.privacy.actions.personal_reveal`` shows them in clear. Tags are filtered by the
viewer's clearance (``gridgov.privacy.selectors.clearance_of``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

from django.db import models
from django.db.models import Prefetch, QuerySet
from django.utils.translation import gettext as _

from gridgov.accounts.models import Role
from gridgov.accounts.selectors import user_scope
from gridgov.core.errors import NotFound
from gridgov.core.querysets import DeferredJoinQuerySet
from gridgov.core.scope import Scope
from gridgov.privacy import crypto
from gridgov.privacy.actions import access_log_view
from gridgov.privacy.models import SubjectType
from gridgov.privacy.selectors import clearance_of

from .history import HistoryEntry, history_of
from .models import (
    Building,
    Component,
    Household,
    Organisation,
    Person,
    PersonTag,
    RegistryRecord,
    Room,
    TagType,
)

#: Roles that see base data in their region.
REGISTRY_ROLES = frozenset(
    {
        Role.ADMINISTRATOR,
        Role.LEADER,
        Role.GRID_LEADER,
        Role.GRID_WORKER,
        Role.SUPERVISOR,
        Role.DISPATCHER,
        Role.INTAKE_OPERATOR,
        Role.SHIFT_LEADER,
    }
)

#: A person's recorded details as a record screen (and the admin) shows them, numbers masked.
PERSON_DETAIL_FIELDS = (
    "name",
    "sex",
    "birth_date",
    "id_number_mask",
    "phone_mask",
    "ethnicity",
    "person_type",
    "household",
    "relation",
    "verification",
    "moved_in_on",
    "moved_out_on",
    "deceased_on",
)
#: What a person's record screen shows (logged with every open).
PERSON_VIEW_FIELDS = (*PERSON_DETAIL_FIELDS, "tags")

#: Encrypted columns the selectors never read.
_PERSON_SECRET = ("id_number", "phone")
_ORG_SECRET = ("contact_phone",)

M = TypeVar("M", bound=RegistryRecord)


def _active(user: Any) -> bool:
    return user is not None and getattr(user, "is_authenticated", False) and user.is_active


def registry_scope(user: Any) -> Scope:
    """The regions whose base data ``user`` sees (everything for a superuser)."""
    if not _active(user):
        return Scope.nothing()
    if user.is_superuser:
        return Scope(everything=True)
    return user_scope(user, roles=REGISTRY_ROLES)


def _scoped(qs: QuerySet[M], user: Any, include_closed: bool) -> QuerySet[M]:
    scope = registry_scope(user)
    if scope.is_empty:
        return qs.none()
    if not scope.everything:
        qs = qs.filter(scope.q("region_code"))
    if not include_closed:
        qs = qs.filter(closed_at__isnull=True)
    return qs


def buildings_visible_to(user: Any, *, include_closed: bool = False) -> QuerySet[Building]:
    return _scoped(Building.objects.all(), user, include_closed)


def rooms_visible_to(user: Any, *, include_closed: bool = False) -> QuerySet[Room]:
    return _scoped(Room.objects.select_related("building"), user, include_closed)


def households_visible_to(user: Any, *, include_closed: bool = False) -> QuerySet[Household]:
    qs = Household.objects.select_related("room", "room__building", "head").defer(
        *(f"head__{f}" for f in _PERSON_SECRET)
    )
    return _scoped(qs, user, include_closed)


def people_visible_to(user: Any, *, include_closed: bool = False) -> QuerySet[Person]:
    """People in scope, with ``id_number``/``phone`` holding their masks (never decrypted)."""
    return _scoped(Person.objects.defer(*_PERSON_SECRET), user, include_closed)


def organisations_visible_to(user: Any, *, include_closed: bool = False) -> QuerySet[Organisation]:
    return _scoped(Organisation.objects.defer(*_ORG_SECRET), user, include_closed)


def components_visible_to(user: Any, *, include_closed: bool = False) -> QuerySet[Component]:
    return _scoped(Component.objects.select_related("category"), user, include_closed)


def _uuid(value: Any) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None


def _get(qs: QuerySet[M], key: Any, message: str) -> M:
    found = _uuid(key)
    record = qs.filter(uuid=found).first() if found else None
    if record is None:
        raise NotFound(message, detail={"uuid": str(key)[:40]})
    return record


def building_get(actor: Any, key: uuid.UUID | str) -> Building:
    return _get(buildings_visible_to(actor, include_closed=True), key, _("no such building"))


def room_get(actor: Any, key: uuid.UUID | str) -> Room:
    return _get(rooms_visible_to(actor, include_closed=True), key, _("no such room"))


def household_get(actor: Any, key: uuid.UUID | str) -> Household:
    return _get(households_visible_to(actor, include_closed=True), key, _("no such household"))


def person_get(actor: Any, key: uuid.UUID | str) -> Person:
    """A person in the actor's scope (masked), closed or not; NotFound otherwise, also when
    the person exists out of scope."""
    qs = people_visible_to(actor, include_closed=True).select_related(
        "household", "household__room", "household__room__building"
    )
    return _get(qs, key, _("no such person"))


def organisation_get(actor: Any, key: uuid.UUID | str) -> Organisation:
    qs = organisations_visible_to(actor, include_closed=True).select_related("building")
    return _get(qs, key, _("no such organisation"))


def component_get(actor: Any, key: uuid.UUID | str) -> Component:
    return _get(components_visible_to(actor, include_closed=True), key, _("no such component"))


#: The record of each kind (the ``kind`` of the screens' URLs and of ``actions.KINDS``).
RECORD_GETTERS: dict[str, Callable[[Any, uuid.UUID | str], RegistryRecord]] = {
    "building": building_get,
    "room": room_get,
    "household": household_get,
    "person": person_get,
    "organisation": organisation_get,
    "component": component_get,
}


def record_get(actor: Any, kind: str, key: uuid.UUID | str) -> RegistryRecord:
    """A record of ``kind`` in the actor's scope, closed or not; NotFound otherwise (also for
    an unknown kind)."""
    getter = RECORD_GETTERS.get(kind)
    if getter is None:
        raise NotFound(_("no such record"), detail={"kind": str(kind)[:20]})
    return getter(actor, key)


def person_open(
    actor: Any,
    key: uuid.UUID | str,
    *,
    channel: str,
    screen: str = "",
    fields: Iterable[str] = PERSON_VIEW_FIELDS,
) -> Person:
    """Open a person's record: the person (masked) as ``person_get`` finds it, and one
    ``AccessLog`` row (view: who, which fields, channel and screen)."""
    person = person_get(actor, key)
    access_log_view(
        actor=actor,
        subject_type=SubjectType.PERSON,
        subject_uuid=person.uuid,
        fields=fields,
        channel=channel,
        screen=screen,
        region_code=person.region_code,
    )
    return person


_ID_QUERY = re.compile(r"^[0-9]{17}[0-9X]$")
_PHONE_QUERY = re.compile(r"^[0-9]{7,12}$")
_PHONE_CHARS = re.compile(r"^[0-9+()\- ]+$")


def search_kind(q: str) -> str:
    """How ``people_search`` reads ``q``: ``id_number``, ``phone`` or ``name``."""
    text = (q or "").strip()
    if _ID_QUERY.match(crypto.normalise_id_number(text)):
        return crypto.ID_NUMBER
    if _PHONE_CHARS.match(crypto.normalise_id_number(text) or "x") and _PHONE_QUERY.match(
        crypto.normalise_phone(text)
    ):
        return crypto.PHONE
    return "name"


def people_search(actor: Any, q: str, *, include_closed: bool = False) -> QuerySet[Person]:
    """People in scope matching ``q``: an 18-character id number (exact, by its hash), a phone
    number (exact, by its hash), or a part of the name. Empty ``q`` finds nobody.

    Pure read: a screen that shows the result logs the search with
    ``gridgov.privacy.actions.access_log_search``."""
    qs = people_visible_to(actor, include_closed=include_closed)
    text = (q or "").strip()[:100]
    if not text:
        return qs.none()
    kind = search_kind(text)
    if kind == crypto.ID_NUMBER:
        # repeat the unique index's condition (non-empty) so SQLite uses that partial index
        digest = crypto.lookup_hash(crypto.ID_NUMBER, text)
        return qs.filter(id_number_hash=digest).exclude(id_number_hash="")
    if kind == crypto.PHONE:
        return qs.filter(phone_hash=crypto.lookup_hash(crypto.PHONE, text))
    # a page's ids come from the (region_code, name, closed_at) + id index alone, then its rows
    found = qs.filter(name__contains=text).order_by("name", "pk")
    return cast("DeferredJoinQuerySet[Person]", found).deferred_join()


# --- tags ---------------------------------------------------------------------------------------


def tag_level(actor: Any) -> int:
    """The highest tag sensitivity ``actor`` sees."""
    return clearance_of(actor)[0]


def tag_types_visible_to(actor: Any, *, include_inactive: bool = False) -> QuerySet[TagType]:
    qs = TagType.objects.filter(sensitivity__lte=tag_level(actor))
    return qs if include_inactive else qs.filter(active=True)


def visible_tags(actor: Any, person: Person) -> list[PersonTag]:
    """The person's tags that the actor's clearance shows."""
    prefetched = getattr(person, "visible_tag_list", None)
    if prefetched is not None:
        return list(prefetched)
    return list(
        PersonTag.objects.filter(person=person, tag_type__sensitivity__lte=tag_level(actor))
        .select_related("tag_type")
        .order_by("tag_type__sensitivity", "tag_type__order", "tag_type__code")
    )


def tags_prefetch(actor: Any) -> Prefetch:
    """``people.prefetch_related(tags_prefetch(actor))`` fills ``person.visible_tag_list`` with
    the tags the actor may see, in one query for a whole list."""
    return Prefetch(
        "tags",
        queryset=PersonTag.objects.filter(tag_type__sensitivity__lte=tag_level(actor))
        .select_related("tag_type")
        .order_by("tag_type__sensitivity", "tag_type__order", "tag_type__code"),
        to_attr="visible_tag_list",
    )


# --- history -----------------------------------------------------------------------------------


def record_visible(actor: Any, record: models.Model) -> bool:
    return registry_scope(actor).covers(str(getattr(record, "region_code", "") or ""))


def record_history(actor: Any, record: RegistryRecord) -> list[HistoryEntry]:
    """The record's history as ``actor`` may see it (tags above their clearance left out);
    NotFound when the record lies outside their scope."""
    if not record_visible(actor, record):
        raise NotFound(_("no such record"))
    return history_of(record, max_sensitivity=tag_level(actor))
