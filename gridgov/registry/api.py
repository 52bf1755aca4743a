"""Registry API: buildings, rooms, households, people, organisations, components and tags.

Mounted at ``/api/v1/registry``. Every read goes through the scoped selectors of
``gridgov.registry.selectors``: a record outside the caller's scope answers 404 and is absent
from every list; unit handlers, residents and users without a role see nothing. Every write
goes through ``gridgov.registry.actions``, takes an ``Idempotency-Key`` and, for a change of an
existing record, the ``version`` the caller saw (stale: 409, nothing changed). Records are
closed with a reason and reopened, never deleted.

Personal data: id and phone numbers are answered masked (``*_mask``); ``POST …/reveal`` with
a reason answers them in clear to roles with the reveal clearance, and is logged. Opening a
person's record (detail or history), a household card or an organisation logs an
``AccessLog`` row (channel ``api``); a search of people logs the search with its filter
(personal values masked). Tags above the caller's clearance are left out everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any, TypeVar
from uuid import UUID

from django.db import models
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema, Status
from pydantic import Field

from gridgov.accounts.selectors import current_user
from gridgov.core.idempotency import idempotent
from gridgov.core.input_guard import Number
from gridgov.core.scope import prefix_q
from gridgov.privacy.actions import access_log_search, access_log_view
from gridgov.privacy.api import RevealIn, RevealOut, may_reveal_here, no_store, reveal_response
from gridgov.privacy.errors import ValidationFailed
from gridgov.privacy.models import Channel, SubjectType

from . import actions, selectors, stats
from .history import HistoryEntry
from .models import (
    Building,
    BuildingType,
    ClosedReason,
    Component,
    ComponentStatus,
    Household,
    Organisation,
    OrganisationKind,
    Person,
    PersonTag,
    PersonType,
    RegistryRecord,
    Room,
    RoomUse,
    Sex,
    Verification,
)

router = Router()

#: The largest page a list answers; a larger ``limit`` is refused (422).
MAX_PAGE = 200
MAX_OFFSET = 1_000_000
#: Counting stops here: a list answers "10,000 or more" rather than scanning everything.
COUNT_CAP = 10_000

M = TypeVar("M", bound=models.Model)

_CODE = r"^\d*$"
_CRS = Field("wgs84", max_length=10, description="wgs84 (default) or gcj02")


# --- schemas: shared ------------------------------------------------------------------------


class RecordOut(Schema):
    uuid: UUID
    version: int = Field(description="send it back with a change: a stale one answers 409")
    region_code: str = Field(description="the grid's code, or the community's")
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    closed_reason: str
    closed_note: str


class PageOut(Schema):
    count: int | None = Field(
        description="the number of matches; null when more pages follow and with_count is off"
    )
    count_capped: bool = Field(description="true when counting stopped at 10,000")
    has_more: bool
    limit: int
    offset: int


class ListQuery(Schema):
    region: str = Field("", max_length=15, pattern=_CODE, description="a region code: its subtree")
    include_closed: bool = False
    with_count: bool = Field(False, description="count the matches beyond this page too")
    limit: int = Field(50, ge=1, le=MAX_PAGE)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


class CloseIn(Schema):
    version: int = Field(ge=1, description="the version you saw")
    closed_reason: ClosedReason
    reason: str = Field(max_length=2000, description="why (required)")


class ReopenIn(Schema):
    version: int = Field(ge=1, description="the version you saw")
    reason: str = Field(max_length=2000, description="why (required)")


class HistoryOut(Schema):
    at: datetime
    action: str
    action_label: str
    version: int
    record_type: str
    actor: str | None
    reason: str
    changes: dict[str, Any] = Field(description="{field: [old, new]}; personal values masked")
    import_batch: UUID | None = Field(description="the ledger import that made this change")
    import_file: str
    import_row: int | None


class RevealRecordOut(RevealOut):
    pass


# --- schemas: buildings and rooms ---------------------------------------------------------------


class BuildingOut(RecordOut):
    estate: str
    number: str
    address: str
    kind: str
    floors: int | None
    households: int = Field(description="planned number of households")
    lon: float
    lat: float
    community_code: str
    grid: str | None = Field(description="the grid's code, null outside every grid")


class BuildingList(PageOut):
    items: list[BuildingOut]


class BuildingIn(Schema):
    lon: Number
    lat: Number
    crs: str = _CRS
    estate: str = Field("", max_length=100)
    number: str = Field("", max_length=30)
    address: str = Field("", max_length=200)
    kind: BuildingType = BuildingType.RESIDENTIAL
    floors: int | None = Field(None, ge=0, le=300)
    households: int = Field(0, ge=0, le=100_000)
    community_code: str = Field(
        "", max_length=12, pattern=_CODE, description="needed only outside every grid"
    )


class BuildingPatch(Schema):
    version: int = Field(ge=1, description="the version you saw")
    reason: str = Field("", max_length=2000)
    lon: Number | None = None
    lat: Number | None = None
    crs: str | None = Field(None, max_length=10)
    estate: str | None = Field(None, max_length=100)
    number: str | None = Field(None, max_length=30)
    address: str | None = Field(None, max_length=200)
    kind: BuildingType | None = None
    floors: int | None = Field(None, ge=0, le=300)
    households: int | None = Field(None, ge=0, le=100_000)
    community_code: str | None = Field(None, max_length=12, pattern=_CODE)


class BuildingQuery(ListQuery):
    q: str = Field("", max_length=100, description="part of the estate, number or address")
    kind: BuildingType | None = None
    community: str = Field("", max_length=12, pattern=_CODE)


class BuildingRef(Schema):
    uuid: UUID
    address: str


class RoomOut(RecordOut):
    building: BuildingRef
    unit: str
    floor: int | None
    number: str
    use: str
    area: float | None


class RoomList(PageOut):
    items: list[RoomOut]


class RoomIn(Schema):
    building: UUID
    number: str = Field(min_length=1, max_length=20)
    unit: str = Field("", max_length=10)
    floor: int | None = Field(None, ge=-10, le=300)
    use: RoomUse = RoomUse.SELF_OCCUPIED
    area: float | None = Field(None, ge=0, lt=1_000_000)


class RoomPatch(Schema):
    version: int = Field(ge=1, description="the version you saw")
    reason: str = Field("", max_length=2000)
    number: str | None = Field(None, min_length=1, max_length=20)
    unit: str | None = Field(None, max_length=10)
    floor: int | None = Field(None, ge=-10, le=300)
    use: RoomUse | None = None
    area: float | None = Field(None, ge=0, lt=1_000_000)


class RoomQuery(ListQuery):
    building: UUID | None = None
    use: RoomUse | None = None


# --- schemas: households and people -------------------------------------------------------------


class RoomRef(Schema):
    uuid: UUID
    unit: str
    number: str
    building: BuildingRef


class PersonRef(Schema):
    uuid: UUID
    name: str


class MemberOut(PersonRef):
    sex: str
    birth_date: date | None
    relation: str
    person_type: str


class HouseholdOut(RecordOut):
    number: str
    room: RoomRef | None
    head: PersonRef | None


class HouseholdDetail(HouseholdOut):
    members: list[MemberOut]


class HouseholdList(PageOut):
    items: list[HouseholdOut]


class HouseholdIn(Schema):
    room: UUID | None = None
    grid: str = Field("", max_length=15, pattern=_CODE, description="without a known room")
    number: str = Field("", max_length=40)


class HouseholdPatch(Schema):
    version: int = Field(ge=1, description="the version you saw")
    reason: str = Field("", max_length=2000)
    number: str | None = Field(None, max_length=40)
    room: UUID | None = None
    grid: str | None = Field(None, max_length=15, pattern=_CODE)
    head: UUID | None = Field(None, description="a member; null: no head")


class HouseholdQuery(ListQuery):
    room: UUID | None = None
    building: UUID | None = None


class TagOut(Schema):
    code: str
    name: str
    sensitivity: int
    since: date | None
    note: str


class HouseholdRef(Schema):
    uuid: UUID
    number: str


class PersonOut(RecordOut):
    name: str
    sex: str
    birth_date: date | None
    id_number_mask: str = Field(description="masked: reveal it with POST …/reveal")
    phone_mask: str = Field(description="masked: reveal it with POST …/reveal")
    ethnicity: str
    person_type: str
    household: HouseholdRef | None
    relation: str
    verification: str
    moved_in_on: date | None
    moved_out_on: date | None
    deceased_on: date | None
    tags: list[TagOut] = Field(description="the tags your clearance shows")


class PersonDetail(PersonOut):
    may_reveal: bool = Field(description="whether you may reveal this person's numbers")
    import_batch: UUID | None
    import_row: int | None


class PersonList(PageOut):
    items: list[PersonOut]


class PersonIn(Schema):
    name: str = Field(min_length=1, max_length=100)
    household: UUID | None = None
    grid: str = Field("", max_length=15, pattern=_CODE, description="without a household")
    sex: Sex | None = None
    birth_date: date | None = None
    id_number: str = Field("", max_length=30)
    phone: str = Field("", max_length=30)
    ethnicity: str = Field("", max_length=20)
    person_type: PersonType = PersonType.REGISTERED
    relation: str = Field("", max_length=16, description="head, spouse, child … or empty")
    verification: Verification = Verification.UNVERIFIED
    moved_in_on: date | None = None
    tags: list[str] = Field(default_factory=list, max_length=20, description="tag codes")


class PersonPatch(Schema):
    version: int = Field(ge=1, description="the version you saw")
    reason: str = Field("", max_length=2000, description="required to replace an id number")
    name: str | None = Field(None, min_length=1, max_length=100)
    sex: Sex | None = None
    birth_date: date | None = None
    id_number: str | None = Field(None, max_length=30)
    phone: str | None = Field(None, max_length=30)
    ethnicity: str | None = Field(None, max_length=20)
    person_type: PersonType | None = None
    relation: str | None = Field(None, max_length=16)
    verification: Verification | None = None
    moved_in_on: date | None = None
    moved_out_on: date | None = None
    deceased_on: date | None = None


class PersonCloseIn(CloseIn):
    on: date | None = Field(None, description="the day they moved out or died (default today)")


class PersonMoveIn(Schema):
    version: int = Field(ge=1, description="the version you saw")
    household: UUID | None = None
    room: UUID | None = Field(None, description="a new household there, headed by the person")
    grid: str = Field("", max_length=15, pattern=_CODE, description="out of any household")
    relation: str | None = Field(None, max_length=16)
    reason: str = Field("", max_length=2000)
    moved_in_on: date | None = None


class PersonQuery(ListQuery):
    q: str = Field(
        "",
        max_length=100,
        description="a name or part of it, an 18-character id number, or a phone number",
    )
    household: UUID | None = None
    building: UUID | None = None
    person_type: PersonType | None = None
    verification: Verification | None = None
    tag: str = Field("", max_length=40, description="a tag code your clearance shows")


class SearchQuery(Schema):
    q: str = Field(
        min_length=1,
        max_length=100,
        description="a name or part of it, an 18-character id number, or a phone number",
    )
    include_closed: bool = False
    limit: int = Field(20, ge=1, le=MAX_PAGE)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


class TagIn(Schema):
    tag: str = Field(min_length=1, max_length=40, description="a tag code")
    since: date | None = None
    note: str = Field("", max_length=200)


class TagTypeOut(Schema):
    code: str
    name: str
    name_zh: str
    name_en: str
    sensitivity: int
    applies_to: str


# --- schemas: organisations and components ------------------------------------------------------


class OrganisationOut(RecordOut):
    name: str
    kind: str
    credit_code: str
    legal_rep: str
    contact_name: str
    contact_phone_mask: str = Field(description="masked: reveal it with POST …/reveal")
    staff_count: int | None
    address: str
    building: UUID | None
    lon: float | None
    lat: float | None


class OrganisationDetail(OrganisationOut):
    may_reveal: bool


class OrganisationList(PageOut):
    items: list[OrganisationOut]


class OrganisationIn(Schema):
    name: str = Field(min_length=1, max_length=200)
    kind: OrganisationKind = OrganisationKind.COMPANY
    credit_code: str = Field("", max_length=30)
    legal_rep: str = Field("", max_length=100)
    contact_name: str = Field("", max_length=100)
    contact_phone: str = Field("", max_length=30)
    staff_count: int | None = Field(None, ge=0, le=10_000_000)
    address: str = Field("", max_length=200)
    building: UUID | None = None
    lon: Number | None = None
    lat: Number | None = None
    crs: str = _CRS
    grid: str = Field("", max_length=15, pattern=_CODE)


class OrganisationPatch(Schema):
    version: int = Field(ge=1, description="the version you saw")
    reason: str = Field("", max_length=2000)
    name: str | None = Field(None, min_length=1, max_length=200)
    kind: OrganisationKind | None = None
    credit_code: str | None = Field(None, max_length=30)
    legal_rep: str | None = Field(None, max_length=100)
    contact_name: str | None = Field(None, max_length=100)
    contact_phone: str | None = Field(None, max_length=30)
    staff_count: int | None = Field(None, ge=0, le=10_000_000)
    address: str | None = Field(None, max_length=200)
    building: UUID | None = None
    lon: Number | None = None
    lat: Number | None = None
    crs: str | None = Field(None, max_length=10)
    grid: str | None = Field(None, max_length=15, pattern=_CODE)


class OrganisationQuery(ListQuery):
    q: str = Field("", max_length=100, description="part of the name or credit code")
    kind: OrganisationKind | None = None
    building: UUID | None = None


class CategoryRef(Schema):
    scheme: str
    code: str
    name: str


class ComponentOut(RecordOut):
    code: str
    category: CategoryRef
    lon: float
    lat: float
    address: str
    status: str
    competent_unit: str
    owner_unit: str
    maintainer_unit: str


class ComponentList(PageOut):
    items: list[ComponentOut]


class ComponentIn(Schema):
    code: str = Field(min_length=1, max_length=20, description="16 or 17 digits")
    category: str = Field(min_length=1, max_length=30, description="a category code or scheme:code")
    lon: Number
    lat: Number
    crs: str = _CRS
    address: str = Field("", max_length=200)
    status: ComponentStatus = ComponentStatus.INTACT
    competent_unit: str = Field("", max_length=100)
    owner_unit: str = Field("", max_length=100)
    maintainer_unit: str = Field("", max_length=100)


class ComponentPatch(Schema):
    version: int = Field(ge=1, description="the version you saw")
    reason: str = Field("", max_length=2000)
    code: str | None = Field(None, min_length=1, max_length=20)
    category: str | None = Field(None, min_length=1, max_length=30)
    lon: Number | None = None
    lat: Number | None = None
    crs: str | None = Field(None, max_length=10)
    address: str | None = Field(None, max_length=200)
    status: ComponentStatus | None = None
    competent_unit: str | None = Field(None, max_length=100)
    owner_unit: str | None = Field(None, max_length=100)
    maintainer_unit: str | None = Field(None, max_length=100)


class ComponentQuery(ListQuery):
    q: str = Field("", max_length=100, description="the start of the code, or part of the address")
    category: str = Field("", max_length=30, description="a category code")
    status: ComponentStatus | None = None


# --- schemas: statistics -----------------------------------------------------------------------


class StatsRegionOut(Schema):
    code: str = Field(description='the region; "" for all of your regions')
    name: str
    level: str


class ChoiceCount(Schema):
    key: str
    label: str
    count: int


class AgeBand(Schema):
    band: str = Field(description='"0-4", "5-9" … "100+"')
    low: int
    male: int
    female: int
    unknown: int


class TagCount(Schema):
    code: str
    label: str
    sensitivity: int
    count: int


class RegionCount(Schema):
    code: str
    name: str
    people: int
    households: int


class StatsOut(Schema):
    region: StatsRegionOut
    totals: dict[str, int] = Field(description="open buildings, rooms, households and people")
    population_by_type: list[ChoiceCount]
    age_pyramid: list[AgeBand]
    age_unknown: int = Field(description="people without a birth date")
    tags: list[TagCount] = Field(description="people per tag your clearance shows")
    rooms_by_use: list[ChoiceCount]
    by_region: list[RegionCount] = Field(description="the regions one level down")
    on: date | None


class StatsQuery(Schema):
    region: str = Field(
        "", max_length=15, pattern=_CODE, description="a region in your scope; default: all of it"
    )


# --- rendering ----------------------------------------------------------------------------------


def _record(r: RegistryRecord) -> dict[str, Any]:
    return {
        "uuid": r.uuid,
        "version": r.version,
        "region_code": r.region_code,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        "closed_at": r.closed_at,
        "closed_reason": r.closed_reason,
        "closed_note": r.closed_note,
    }


def _building_ref(b: Building) -> dict[str, Any]:
    return {"uuid": b.uuid, "address": str(b)}


def building_out(b: Building) -> dict[str, Any]:
    return {
        **_record(b),
        "estate": b.estate,
        "number": b.number,
        "address": b.address,
        "kind": b.kind,
        "floors": b.floors,
        "households": b.households,
        "lon": b.lon,
        "lat": b.lat,
        "community_code": b.community_code,
        # a building in a grid is scoped by the grid's code
        "grid": b.region_code if b.grid_id is not None else None,
    }


def room_out(r: Room) -> dict[str, Any]:
    return {
        **_record(r),
        "building": _building_ref(r.building),
        "unit": r.unit,
        "floor": r.floor,
        "number": r.number,
        "use": r.use,
        "area": float(r.area) if r.area is not None else None,
    }


def _room_ref(r: Room | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {
        "uuid": r.uuid,
        "unit": r.unit,
        "number": r.number,
        "building": _building_ref(r.building),
    }


def household_out(h: Household) -> dict[str, Any]:
    return {
        **_record(h),
        "number": h.number,
        "room": _room_ref(h.room),
        "head": {"uuid": h.head.uuid, "name": h.head.name} if h.head is not None else None,
    }


def tag_out(t: PersonTag) -> dict[str, Any]:
    return {
        "code": t.tag_type.code,
        "name": t.tag_type.name,
        "sensitivity": t.tag_type.sensitivity,
        "since": t.since,
        "note": t.note,
    }


def person_out(p: Person, tags: list[PersonTag]) -> dict[str, Any]:
    """A person with their numbers masked (the encrypted columns are never read here)."""
    household = p.household
    return {
        **_record(p),
        "name": p.name,
        "sex": p.sex,
        "birth_date": p.birth_date,
        "id_number_mask": p.id_number_mask,
        "phone_mask": p.phone_mask,
        "ethnicity": p.ethnicity,
        "person_type": p.person_type,
        "household": (
            {"uuid": household.uuid, "number": household.number} if household is not None else None
        ),
        "relation": p.relation,
        "verification": p.verification,
        "moved_in_on": p.moved_in_on,
        "moved_out_on": p.moved_out_on,
        "deceased_on": p.deceased_on,
        "tags": [tag_out(t) for t in tags],
    }


def organisation_out(o: Organisation) -> dict[str, Any]:
    return {
        **_record(o),
        "name": o.name,
        "kind": o.kind,
        "credit_code": o.credit_code,
        "legal_rep": o.legal_rep,
        "contact_name": o.contact_name,
        "contact_phone_mask": o.contact_phone_mask,
        "staff_count": o.staff_count,
        "address": o.address,
        "building": o.building.uuid if o.building is not None else None,
        "lon": o.lon,
        "lat": o.lat,
    }


def component_out(c: Component) -> dict[str, Any]:
    return {
        **_record(c),
        "code": c.code,
        "category": {
            "scheme": c.category.scheme,
            "code": c.category.code,
            "name": c.category.name,
        },
        "lon": c.lon,
        "lat": c.lat,
        "address": c.address,
        "status": c.status,
        "competent_unit": c.competent_unit,
        "owner_unit": c.owner_unit,
        "maintainer_unit": c.maintainer_unit,
    }


def history_out(e: HistoryEntry) -> dict[str, Any]:
    batch = e.import_batch
    return {
        "at": e.at,
        "action": e.action,
        "action_label": e.action_label,
        "version": e.version,
        "record_type": e.record_type,
        "actor": e.actor.label if e.actor is not None else None,
        "reason": e.reason,
        "changes": e.changes,
        "import_batch": batch.uuid if batch is not None else None,
        "import_file": batch.file_name if batch is not None else "",
        "import_row": e.import_row,
    }


# --- helpers ------------------------------------------------------------------------------------


def _given(payload: Schema, *skip: str) -> dict[str, Any]:
    """The fields the client sent (an update leaves the others as they are), enums as values."""
    data = payload.model_dump(exclude_unset=True)
    return {k: (v.value if isinstance(v, Enum) else v) for k, v in data.items() if k not in skip}


def _page(
    qs: QuerySet[M], query: Any, render: Callable[[list[M]], list[dict[str, Any]]]
) -> dict[str, Any]:
    """One page of ``qs``. ``count`` is exact when the results end on this page; beyond it only
    when asked for (``with_count``: counted up to COUNT_CAP), else null with ``has_more``."""
    limit, offset = query.limit, query.offset
    rows = list(qs[offset : offset + limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    count: int | None = None
    capped = False
    if not has_more and (rows or offset == 0):
        count = offset + len(rows)
    elif getattr(query, "with_count", False) or not rows:
        count = qs.order_by()[:COUNT_CAP].count() if offset < COUNT_CAP else COUNT_CAP
        capped = count >= COUNT_CAP
        if rows:
            count = max(count, offset + len(rows) + int(has_more))
    return {
        "count": count,
        "count_capped": capped,
        "has_more": has_more,
        "limit": limit,
        "offset": offset,
        "items": render(rows),
    }


def _region(qs: QuerySet[M], query: ListQuery) -> QuerySet[M]:
    return qs.filter(prefix_q("region_code", query.region)) if query.region else qs


def _one(items: list[M], render: Callable[[M], dict[str, Any]]) -> list[dict[str, Any]]:
    return [render(i) for i in items]


def _history(request: HttpRequest, record: RegistryRecord) -> list[dict[str, Any]]:
    return [history_out(e) for e in selectors.record_history(current_user(request), record)]


def _reveal(
    request: HttpRequest, response: HttpResponse, subject_type: str, subject: Any, payload: RevealIn
) -> dict[str, Any]:
    """The clear values the payload asks for, logged with its reason; never cached."""
    no_store(response)
    return reveal_response(
        request,
        subject_type=subject_type,
        subject=subject,
        fields=list(payload.fields),
        reason=payload.reason,
    )


def _log_view(request: HttpRequest, subject_type: str, record: Any, fields: list[str]) -> None:
    access_log_view(
        actor=current_user(request),
        subject_type=subject_type,
        subject_uuid=record.uuid,
        fields=fields,
        channel=Channel.API,
        screen=request.path,
        region_code=record.region_code,
    )


# --- statistics ---------------------------------------------------------------------------------


@router.get("/stats", response=StatsOut, url_name="registry_stats")
def registry_stats(request: HttpRequest, query: Query[StatsQuery]) -> dict[str, Any]:
    """Figures of a grid, community, street or district in your scope (or of all of it):
    population by person type, age pyramid, tag counts, rooms by use, and per region one level
    down. Open records only; tags above your clearance are not counted. 404 for a region
    outside your scope."""
    return stats.registry_stats(current_user(request), query.region).as_dict()


# --- buildings ------------------------------------------------------------------------------------


@router.get("/buildings", response=BuildingList, url_name="registry_building_list")
def registry_building_list(request: HttpRequest, query: Query[BuildingQuery]) -> dict[str, Any]:
    """Buildings you may see, by community and standard address."""
    user = current_user(request)
    qs = _region(selectors.buildings_visible_to(user, include_closed=query.include_closed), query)
    if query.q:
        qs = qs.filter(
            Q(estate__contains=query.q) | Q(number__contains=query.q) | Q(address__contains=query.q)
        )
    if query.kind is not None:
        qs = qs.filter(kind=query.kind)
    if query.community:
        qs = qs.filter(community_code=query.community)
    return _page(qs, query, lambda rows: _one(rows, building_out))


@router.post("/buildings", response={201: BuildingOut}, url_name="registry_building_create")
@idempotent
def registry_building_create(request: HttpRequest, payload: BuildingIn) -> Status[dict[str, Any]]:
    """Register a building at a point: its grid is found from the point (a building outside
    every grid names its community). An address already registered answers 409."""
    building = actions.building_create(actor=current_user(request), **_given(payload))
    return Status(201, building_out(building))


@router.get("/buildings/{uuid}", response=BuildingOut, url_name="registry_building_detail")
def registry_building_detail(request: HttpRequest, uuid: UUID) -> dict[str, Any]:
    return building_out(selectors.building_get(current_user(request), uuid))


# --- rooms --------------------------------------------------------------------------------------


@router.get("/rooms", response=RoomList, url_name="registry_room_list")
def registry_room_list(request: HttpRequest, query: Query[RoomQuery]) -> dict[str, Any]:
    """Rooms you may see; ``building`` lists one building's rooms."""
    user = current_user(request)
    qs = _region(selectors.rooms_visible_to(user, include_closed=query.include_closed), query)
    if query.building is not None:
        qs = qs.filter(building__uuid=query.building)
    if query.use is not None:
        qs = qs.filter(use=query.use)
    return _page(qs, query, lambda rows: _one(rows, room_out))


@router.post("/rooms", response={201: RoomOut}, url_name="registry_room_create")
@idempotent
def registry_room_create(request: HttpRequest, payload: RoomIn) -> Status[dict[str, Any]]:
    """Add a room to a building; a number already used in the building (unit) answers 409."""
    room = actions.room_create(actor=current_user(request), **_given(payload))
    return Status(201, room_out(room))


@router.get("/rooms/{uuid}", response=RoomOut, url_name="registry_room_detail")
def registry_room_detail(request: HttpRequest, uuid: UUID) -> dict[str, Any]:
    return room_out(selectors.room_get(current_user(request), uuid))


# --- households ---------------------------------------------------------------------------------


@router.get("/households", response=HouseholdList, url_name="registry_household_list")
def registry_household_list(request: HttpRequest, query: Query[HouseholdQuery]) -> dict[str, Any]:
    user = current_user(request)
    qs = _region(selectors.households_visible_to(user, include_closed=query.include_closed), query)
    if query.room is not None:
        qs = qs.filter(room__uuid=query.room)
    if query.building is not None:
        qs = qs.filter(room__building__uuid=query.building)
    return _page(qs, query, lambda rows: _one(rows, household_out))


@router.post("/households", response={201: HouseholdOut}, url_name="registry_household_create")
@idempotent
def registry_household_create(request: HttpRequest, payload: HouseholdIn) -> Status[dict[str, Any]]:
    """A household in a room (or, its room unknown, in a grid). Add members with
    ``POST /people`` or ``POST /people/{uuid}/move``; name its head with a PATCH."""
    user = current_user(request)
    household = actions.household_create(actor=user, **_given(payload))
    return Status(201, household_out(selectors.household_get(user, household.uuid)))


def _household_detail(request: HttpRequest, household: Household) -> dict[str, Any]:
    user = current_user(request)
    members = (
        selectors.people_visible_to(user)
        .filter(household=household)
        .only("uuid", "name", "sex", "birth_date", "relation", "person_type", "region_code")
        .order_by("pk")
    )
    return {
        **household_out(household),
        "members": [
            {
                "uuid": m.uuid,
                "name": m.name,
                "sex": m.sex,
                "birth_date": m.birth_date,
                "relation": m.relation,
                "person_type": m.person_type,
            }
            for m in members
        ],
    }


@router.get("/households/{uuid}", response=HouseholdDetail, url_name="registry_household_detail")
def registry_household_detail(
    request: HttpRequest, uuid: UUID, response: HttpResponse
) -> dict[str, Any]:
    """A household card: its room, head and members. The open is logged."""
    household = selectors.household_get(current_user(request), uuid)
    _log_view(request, SubjectType.HOUSEHOLD, household, ["number", "room", "head", "members"])
    no_store(response)
    return _household_detail(request, household)


# --- people -------------------------------------------------------------------------------------


def _people_rows(user: Any, people: list[Person]) -> list[dict[str, Any]]:
    return [person_out(p, selectors.visible_tags(user, p)) for p in people]


def _people(user: Any, qs: QuerySet[Person]) -> QuerySet[Person]:
    return qs.select_related("household").prefetch_related(selectors.tags_prefetch(user))


def _tag_filter(user: Any, code: str) -> str:
    """A tag code the user's clearance shows; an unknown or hidden one answers 422 alike."""
    if not selectors.tag_types_visible_to(user, include_inactive=True).filter(code=code).exists():
        message = _("no tag %(code)s") % {"code": code}
        raise ValidationFailed(message, detail={"tag": message})
    return code


def _search_log(request: HttpRequest, filter: dict[str, Any], count: int) -> None:
    access_log_search(
        actor=current_user(request),
        subject_type=SubjectType.PERSON,
        filter=filter,
        count=count,
        channel=Channel.API,
        screen=request.path,
    )


@router.get("/people", response=PersonList, url_name="registry_person_list")
def registry_person_list(request: HttpRequest, query: Query[PersonQuery]) -> dict[str, Any]:
    """People you may see, numbers masked. ``q`` searches by name, id number or phone (exact
    for numbers); a search is logged with its filter, numbers masked."""
    user = current_user(request)
    if query.q.strip():
        qs = selectors.people_search(user, query.q, include_closed=query.include_closed)
    else:
        qs = selectors.people_visible_to(user, include_closed=query.include_closed)
    qs = _region(qs, query)
    if query.household is not None:
        qs = qs.filter(household__uuid=query.household)
    if query.building is not None:
        qs = qs.filter(household__room__building__uuid=query.building)
    if query.person_type is not None:
        qs = qs.filter(person_type=query.person_type)
    if query.verification is not None:
        qs = qs.filter(verification=query.verification)
    if query.tag:
        qs = qs.filter(tags__tag_type__code=_tag_filter(user, query.tag))
    page = _page(_people(user, qs), query, lambda rows: _people_rows(user, rows))
    if query.q.strip():
        filter = query.model_dump(exclude_defaults=True, mode="json")
        filter.pop("limit", None)
        filter.pop("offset", None)
        _search_log(request, filter, len(page["items"]))
    return page


@router.get("/people/search", response=PersonList, url_name="registry_person_search")
def registry_person_search(request: HttpRequest, query: Query[SearchQuery]) -> dict[str, Any]:
    """Find people in your scope by name (or part of it), by id number or by phone number
    (exact, through their keyed hashes). Logged with the search, numbers masked."""
    user = current_user(request)
    qs = selectors.people_search(user, query.q, include_closed=query.include_closed)
    page = _page(_people(user, qs), query, lambda rows: _people_rows(user, rows))
    _search_log(
        request,
        {"q": query.q, "kind": selectors.search_kind(query.q)},
        len(page["items"]),
    )
    return page


@router.post("/people", response={201: PersonOut}, url_name="registry_person_create")
@idempotent
def registry_person_create(request: HttpRequest, payload: PersonIn) -> Status[dict[str, Any]]:
    """Register a person in a household (or, without one, in a grid). The id number is checked
    (GB 11643) and fills the birth date and sex; one already registered answers 409."""
    user = current_user(request)
    data = _given(payload)
    if data.get("sex") is None:
        data.pop("sex", None)
    person = actions.person_create(actor=user, **data)
    return Status(201, person_out(person, selectors.visible_tags(user, person)))


def _person_detail(user: Any, person: Person) -> dict[str, Any]:
    batch = person.import_batch if person.import_batch_id is not None else None
    return {
        **person_out(person, selectors.visible_tags(user, person)),
        "may_reveal": may_reveal_here(user, person.region_code),
        "import_batch": batch.uuid if batch is not None else None,
        "import_row": person.import_row,
    }


@router.get("/people/{uuid}", response=PersonDetail, url_name="registry_person_detail")
def registry_person_detail(
    request: HttpRequest, uuid: UUID, response: HttpResponse
) -> dict[str, Any]:
    """A person's record, numbers masked; the open is logged (who, which fields, this path)."""
    user = current_user(request)
    person = selectors.person_open(user, uuid, channel=Channel.API, screen=request.path)
    no_store(response)
    return _person_detail(user, person)


@router.post("/people/{uuid}/move", response=PersonOut, url_name="registry_person_move")
@idempotent
def registry_person_move(request: HttpRequest, uuid: UUID, payload: PersonMoveIn) -> dict[str, Any]:
    """Move a person into another household, into a room (a new household there, with them as
    its head), or out of any household into a grid: exactly one of them."""
    user = current_user(request)
    data = _given(payload)
    if data.get("relation") is None:
        data.pop("relation", None)
    person = actions.person_move(actor=user, person=str(uuid), **data)
    return person_out(person, selectors.visible_tags(user, person))


@router.get("/people/{uuid}/history", response=list[HistoryOut], url_name="registry_person_history")
def registry_person_history(
    request: HttpRequest, uuid: UUID, response: HttpResponse
) -> list[dict[str, Any]]:
    """A person's history (numbers masked; tags above your clearance left out); logged."""
    user = current_user(request)
    person = selectors.person_open(
        user, uuid, channel=Channel.API, screen=request.path, fields=["history"]
    )
    no_store(response)
    return _history(request, person)


@router.post(
    "/people/{uuid}/reveal",
    response=RevealRecordOut,
    url_name="registry_person_reveal",
    summary="Reveal a person's id number or phone, giving a reason",
)
@idempotent
def registry_person_reveal(
    request: HttpRequest, uuid: UUID, payload: RevealIn, response: HttpResponse
) -> dict[str, Any]:
    """The clear values of ``fields`` (id_number, phone), logged with the reason. 403 without
    the reveal clearance in the person's region; 422 without a reason of 4 characters."""
    person = selectors.person_get(current_user(request), uuid)
    return _reveal(request, response, SubjectType.PERSON, person, payload)


@router.post("/people/{uuid}/tags", response={201: TagOut}, url_name="registry_person_tag_add")
@idempotent
def registry_person_tag_add(
    request: HttpRequest, uuid: UUID, payload: TagIn
) -> Status[dict[str, Any]]:
    """Tag a person: a care tag, or a sensitive tag your clearance covers (else 403)."""
    row = actions.person_tag_add(actor=current_user(request), person=str(uuid), **_given(payload))
    return Status(201, tag_out(row))


@router.delete(
    "/people/{uuid}/tags/{tag}", response={204: None}, url_name="registry_person_tag_remove"
)
@idempotent
def registry_person_tag_remove(
    request: HttpRequest, uuid: UUID, tag: str, reason: str = ""
) -> Status[None]:
    """Remove a tag from a person (``reason`` in the query string is kept in the history)."""
    actions.person_tag_remove(
        actor=current_user(request), person=str(uuid), tag=tag[:40], reason=reason[:2000]
    )
    return Status(204, None)


@router.get("/tag-types", response=list[TagTypeOut], url_name="registry_tag_types")
def registry_tag_types(request: HttpRequest) -> list[dict[str, Any]]:
    """The tags in use that your clearance shows."""
    return [
        {
            "code": t.code,
            "name": t.name,
            "name_zh": t.name_zh,
            "name_en": t.name_en,
            "sensitivity": t.sensitivity,
            "applies_to": t.applies_to,
        }
        for t in selectors.tag_types_visible_to(current_user(request))
    ]


# --- organisations --------------------------------------------------------------------------------


@router.get("/organisations", response=OrganisationList, url_name="registry_organisation_list")
def registry_organisation_list(
    request: HttpRequest, query: Query[OrganisationQuery]
) -> dict[str, Any]:
    user = current_user(request)
    qs = selectors.organisations_visible_to(user, include_closed=query.include_closed)
    qs = _region(qs.select_related("building"), query)
    if query.q:
        qs = qs.filter(Q(name__contains=query.q) | Q(credit_code=query.q.strip().upper()))
    if query.kind is not None:
        qs = qs.filter(kind=query.kind)
    if query.building is not None:
        qs = qs.filter(building__uuid=query.building)
    return _page(qs, query, lambda rows: _one(rows, organisation_out))


@router.post(
    "/organisations", response={201: OrganisationOut}, url_name="registry_organisation_create"
)
@idempotent
def registry_organisation_create(
    request: HttpRequest, payload: OrganisationIn
) -> Status[dict[str, Any]]:
    """Register an organisation in a building, at a point, or in a grid. The credit code is
    checked (GB 32100); one already registered answers 409."""
    user = current_user(request)
    organisation = actions.organisation_create(actor=user, **_given(payload))
    return Status(201, organisation_out(selectors.organisation_get(user, organisation.uuid)))


@router.get(
    "/organisations/{uuid}",
    response=OrganisationDetail,
    url_name="registry_organisation_detail",
)
def registry_organisation_detail(
    request: HttpRequest, uuid: UUID, response: HttpResponse
) -> dict[str, Any]:
    """An organisation, its contact phone masked; the open is logged."""
    user = current_user(request)
    organisation = selectors.organisation_get(user, uuid)
    _log_view(
        request,
        SubjectType.ORGANISATION,
        organisation,
        ["name", "legal_rep", "contact_name", "contact_phone_mask"],
    )
    no_store(response)
    return {
        **organisation_out(organisation),
        "may_reveal": may_reveal_here(user, organisation.region_code),
    }


@router.post(
    "/organisations/{uuid}/reveal",
    response=RevealRecordOut,
    url_name="registry_organisation_reveal",
    summary="Reveal an organisation's contact phone, giving a reason",
)
@idempotent
def registry_organisation_reveal(
    request: HttpRequest, uuid: UUID, payload: RevealIn, response: HttpResponse
) -> dict[str, Any]:
    organisation = selectors.organisation_get(current_user(request), uuid)
    return _reveal(request, response, SubjectType.ORGANISATION, organisation, payload)


# --- components ---------------------------------------------------------------------------------


@router.get("/components", response=ComponentList, url_name="registry_component_list")
def registry_component_list(request: HttpRequest, query: Query[ComponentQuery]) -> dict[str, Any]:
    user = current_user(request)
    qs = _region(selectors.components_visible_to(user, include_closed=query.include_closed), query)
    if query.q:
        text = query.q.strip()
        qs = qs.filter(Q(code__startswith=text) if text.isdigit() else Q(address__contains=text))
    if query.category:
        scheme, _sep, code = query.category.rpartition(":")
        qs = qs.filter(category__code=code)
        if scheme:
            qs = qs.filter(category__scheme=scheme)
    if query.status is not None:
        qs = qs.filter(status=query.status)
    return _page(qs, query, lambda rows: _one(rows, component_out))


@router.post("/components", response={201: ComponentOut}, url_name="registry_component_create")
@idempotent
def registry_component_create(request: HttpRequest, payload: ComponentIn) -> Status[dict[str, Any]]:
    """Register a city component at a point (its grid found from it) under its standard code
    (16 or 17 digits matching its category); a code already registered answers 409."""
    user = current_user(request)
    component = actions.component_create(actor=user, **_given(payload))
    return Status(201, component_out(selectors.component_get(user, component.uuid)))


@router.get("/components/{uuid}", response=ComponentOut, url_name="registry_component_detail")
def registry_component_detail(request: HttpRequest, uuid: UUID) -> dict[str, Any]:
    return component_out(selectors.component_get(current_user(request), uuid))


# --- changing, closing, reopening and the history of every kind --------------------------------


def _person_render(user: Any, person: Person) -> dict[str, Any]:
    return person_out(person, selectors.visible_tags(user, person))


@dataclass(frozen=True)
class RecordRoutes:
    """The routes every kind of record has alike, with the version the caller saw (a stale one
    answers 409) and an ``Idempotency-Key``, each answering the record as ``out``
    (``render(user, record)``):

    - ``PATCH /<path>/{uuid}`` (``patch``): the fields sent change through ``update``;
    - ``POST /<path>/{uuid}/close`` and ``…/reopen``, with a reason (``actions.record_close``
      and ``record_reopen``);
    - ``GET /<path>/{uuid}/history``, unless the kind has its own (logged) one.

    The docs say what the change does and what refuses a close or a reopen."""

    kind: str
    path: str
    out: type[Schema]
    render: Callable[[Any, Any], dict[str, Any]]
    patch: type[Schema]
    update: Callable[..., Any]
    update_doc: str
    close_doc: str
    reopen_doc: str
    close_in: type[Schema] = CloseIn
    history: bool = True


ROUTES = (
    RecordRoutes(
        "building",
        "buildings",
        BuildingOut,
        lambda user, b: building_out(b),
        BuildingPatch,
        actions.building_update,
        "Change a building; a new location re-finds its grid and its rooms, households, people "
        "and organisations follow.",
        "Close a building (demolished, duplicate…): refused (409) while it has open rooms.",
        "Reopen a building closed in error: refused (409) while another open building of its "
        "community has its address.",
    ),
    RecordRoutes(
        "room",
        "rooms",
        RoomOut,
        lambda user, r: room_out(r),
        RoomPatch,
        actions.room_update,
        "Change a room; a number already used in the building (unit) answers 409.",
        "Close a room: refused (409) while households live in it.",
        "Reopen a room closed in error: refused (409) while its building is closed or another "
        "open room of the building has its unit and number.",
    ),
    RecordRoutes(
        "household",
        "households",
        HouseholdOut,
        lambda user, h: household_out(h),
        HouseholdPatch,
        actions.household_update,
        "Change a household's number, room (its members follow) or head (a member).",
        "Close a household: refused (409) while it has open members.",
        "Reopen a household closed in error (its members come back one by one): refused (409) "
        "while its room is closed.",
    ),
    RecordRoutes(
        "person",
        "people",
        PersonOut,
        _person_render,
        PersonPatch,
        actions.person_update,
        "Change a person's details (another household: ``POST …/move``). Replacing a recorded "
        "id number needs a reason.",
        "Close a person's record (moved out, deceased, duplicate…) with a reason; ``on`` is "
        "the day they moved out or died (default today).",
        "Reopen a person's record closed in error (the day of moving out or death is cleared): "
        "refused (409) while their household is closed; reopen the household first.",
        close_in=PersonCloseIn,
        history=False,
    ),
    RecordRoutes(
        "organisation",
        "organisations",
        OrganisationOut,
        lambda user, o: organisation_out(o),
        OrganisationPatch,
        actions.organisation_update,
        "Change an organisation; a credit code already registered answers 409.",
        "Close an organisation (moved out, duplicate…) with a reason.",
        "Reopen an organisation closed in error, with a reason.",
    ),
    RecordRoutes(
        "component",
        "components",
        ComponentOut,
        lambda user, c: component_out(c),
        ComponentPatch,
        actions.component_update,
        "Change a component: its status (intact, damaged, lost…), place, code or units. "
        "Supervisors may keep components up to date too.",
        "Close a component (removed, duplicate…) with a reason; supervisors may too.",
        "Reopen a component closed in error, with a reason; supervisors may too.",
    ),
)


def _add_record_routes(r: RecordRoutes) -> None:
    def answer(user: Any, uuid: UUID) -> dict[str, Any]:
        return r.render(user, selectors.record_get(user, r.kind, uuid))

    def update(request: HttpRequest, uuid: UUID, payload: Schema) -> dict[str, Any]:
        user = current_user(request)
        r.update(actor=user, **{r.kind: str(uuid)}, **_given(payload))
        return answer(user, uuid)

    def close(request: HttpRequest, uuid: UUID, payload: CloseIn) -> dict[str, Any]:
        user = current_user(request)
        actions.record_close(actor=user, kind=r.kind, record=str(uuid), **_given(payload))
        return answer(user, uuid)

    def reopen(request: HttpRequest, uuid: UUID, payload: ReopenIn) -> dict[str, Any]:
        user = current_user(request)
        actions.record_reopen(actor=user, kind=r.kind, record=str(uuid), **_given(payload))
        return answer(user, uuid)

    def history(request: HttpRequest, uuid: UUID) -> list[dict[str, Any]]:
        return _history(request, selectors.record_get(current_user(request), r.kind, uuid))

    update.__annotations__["payload"] = r.patch
    close.__annotations__["payload"] = r.close_in
    docs = {"update": r.update_doc, "close": r.close_doc, "reopen": r.reopen_doc}
    handlers = {"update": update, "close": close, "reopen": reopen, "history": history}
    for verb, handler in handlers.items():
        handler.__name__ = handler.__qualname__ = f"registry_{r.kind}_{verb}"
        handler.__doc__ = docs.get(verb)
    url = f"/{r.path}/{{uuid}}"
    router.patch(url, response=r.out, url_name=update.__name__)(idempotent(update))
    router.post(f"{url}/close", response=r.out, url_name=close.__name__)(idempotent(close))
    router.post(f"{url}/reopen", response=r.out, url_name=reopen.__name__)(idempotent(reopen))
    if r.history:
        router.get(f"{url}/history", response=list[HistoryOut], url_name=history.__name__)(history)


for _routes in ROUTES:
    _add_record_routes(_routes)
