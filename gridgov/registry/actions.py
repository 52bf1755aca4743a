"""Every write to the registry (DESIGN.md rules 1, 7 and 8).

Each action is keyword-only and atomic; it checks the actor's scope, validates every field at
once (``ValidationFailed`` 422 with ``{field: message}``), checks the ``version`` the user saw
(stale: ``Conflict`` 409), writes, and appends one ``RecordChange`` per change of a record in
the same transaction. Records are closed with a reason, never deleted.

Who may write: ``EDIT_ROLES`` (administrators, grid leaders and grid workers) in their regions;
supervisors also keep components up to date. Everyone else in ``REGISTRY_ROLES`` only reads.

Locations: a building's or component's grid is found from its point (WGS-84, or GCJ-02 with
``crs="gcj02"``); a building outside every grid is scoped to its community. A room, household
and person take the region of their building; a person without a household names a grid.
Id numbers are checked (GB 11643) and agree with the birth date and sex, which are filled from
the number when left empty; each encrypted value is written with its look-up hash and mask.
"""

from __future__ import annotations

import math
import uuid as uuid_module
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Required, TypedDict, TypeVar, Unpack

from django.db import IntegrityError, transaction
from django.db.models import F, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from gridgov.accounts.models import Role, User
from gridgov.accounts.selectors import user_scope
from gridgov.cases.models import Category, CategoryClass
from gridgov.core.errors import Conflict, NotFound, PermissionDenied
from gridgov.core.masking import mask_id_number, mask_phone
from gridgov.core.scope import Scope
from gridgov.geo.crs import to_wgs84
from gridgov.geo.index import grid_index
from gridgov.geo.models import Level, Region
from gridgov.privacy import crypto
from gridgov.privacy.errors import ValidationFailed
from gridgov.privacy.selectors import clearance_of

from . import history
from .models import (
    Building,
    BuildingType,
    ChangeAction,
    ClosedReason,
    Component,
    ComponentStatus,
    Household,
    LedgerImport,
    Organisation,
    OrganisationKind,
    Person,
    PersonTag,
    PersonType,
    RecordType,
    RegistryRecord,
    Relation,
    Room,
    RoomUse,
    Sex,
    TagAppliesTo,
    TagType,
    Verification,
    normalise_address,
)
from .selectors import registry_scope
from .validators import (
    FieldProblem,
    check_component_code,
    check_credit_code,
    check_id_consistent,
    check_id_number,
    check_phone,
    parse_date,
)

#: Roles that write base data in their regions.
EDIT_ROLES = frozenset({Role.ADMINISTRATOR, Role.GRID_LEADER, Role.GRID_WORKER})
#: Components are also kept up to date by supervisors (城管监督员) on patrol.
COMPONENT_EDIT_ROLES = EDIT_ROLES | {Role.SUPERVISOR}
MIN_REASON = 2
MAX_REASON = 2000
MAX_FLOORS = 300

M = TypeVar("M", bound=RegistryRecord)


class _Unset:
    """The default of an update's fields: "not given, leave as it is"."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Final = _Unset()

_LABELS = {
    "name": gettext_lazy("name"),
    "estate": gettext_lazy("estate"),
    "number": gettext_lazy("number"),
    "address": gettext_lazy("address"),
    "unit": gettext_lazy("unit"),
    "ethnicity": gettext_lazy("ethnicity"),
    "legal_rep": gettext_lazy("legal representative"),
    "contact_name": gettext_lazy("contact"),
    "competent_unit": gettext_lazy("competent unit"),
    "owner_unit": gettext_lazy("owner unit"),
    "maintainer_unit": gettext_lazy("maintainer unit"),
    "reason": gettext_lazy("reason"),
    "community_code": gettext_lazy("community code"),
}


# --- collecting problems ------------------------------------------------------------------------


class Problems:
    """Problems per field, raised together as one ``ValidationFailed``."""

    def __init__(self) -> None:
        self.items: dict[str, str] = {}

    def add(self, field: str, message: Any) -> None:
        self.items.setdefault(field, str(message))

    def __contains__(self, field: str) -> bool:
        return field in self.items

    def __bool__(self) -> bool:
        return bool(self.items)

    def check(self) -> None:
        if self.items:
            raise ValidationFailed(
                _("please correct: %(problems)s") % {"problems": "; ".join(self.items.values())},
                detail=dict(self.items),
            )


def _label(field: str) -> str:
    return str(_LABELS.get(field, field))


def _text(p: Problems, field: str, value: Any, limit: int, *, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        p.add(field, _("%(field)s must be text") % {"field": _label(field)})
        return ""
    text = " ".join(value.split()) if "\n" not in value else value.strip()
    if any(ord(c) < 32 and c not in "\n\t" for c in text) or "\x7f" in text:
        p.add(field, _("%(field)s contains control characters") % {"field": _label(field)})
    if required and not text:
        p.add(field, _("%(field)s is required") % {"field": _label(field)})
    if len(text) > limit:
        p.add(
            field,
            _("%(field)s is %(length)s characters long; the limit is %(limit)s")
            % {"field": _label(field), "length": len(text), "limit": limit},
        )
    return text[:limit]


def _choice(p: Problems, field: str, value: Any, choices: Any, *, blank: bool = False) -> str:
    text = "" if value is None else str(value).strip()
    if blank and text == "":
        return ""
    if text not in choices.values:
        p.add(
            field,
            _("%(value)s is not a valid %(field)s; one of %(choices)s")
            % {"value": text[:30] or "—", "field": field, "choices": ", ".join(choices.values)},
        )
        return ""
    return text


def _int(p: Problems, field: str, value: Any, low: int, high: int) -> int | None:
    if value is None or value == "":
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        number = int(str(value).strip()) if not isinstance(value, int) else value
    except (TypeError, ValueError):
        p.add(field, _("%(field)s must be a whole number") % {"field": field})
        return None
    if not low <= number <= high:
        p.add(
            field,
            _("%(field)s must lie between %(low)s and %(high)s")
            % {"field": field, "low": low, "high": high},
        )
        return None
    return number


def _decimal(p: Problems, field: str, value: Any, high: Decimal) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        if isinstance(value, bool):
            raise InvalidOperation
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        p.add(field, _("%(field)s must be a number") % {"field": field})
        return None
    if not number.is_finite() or number < 0 or number >= high:
        p.add(
            field,
            _("%(field)s must lie between 0 and %(high)s") % {"field": field, "high": high},
        )
        return None
    return number.quantize(Decimal("0.01"))


def _date(p: Problems, field: str, value: Any, *, past: bool = True) -> date | None:
    if value is None or value == "":
        return None
    try:
        day = parse_date(value, field=field)
    except FieldProblem as exc:
        p.add(field, exc.message)
        return None
    if past and day > timezone.localdate():
        p.add(field, _("%(field)s lies in the future") % {"field": field})
        return None
    if day.year < 1880:
        p.add(field, _("%(field)s lies before 1880") % {"field": field})
        return None
    return day


def _reason(p: Problems, value: Any, *, required: bool) -> str:
    text = _text(p, "reason", value, MAX_REASON)
    if required and len(text) < MIN_REASON and "reason" not in p:
        p.add("reason", _("give a reason"))
    return text


def _closed_reason(p: Problems, value: Any) -> str:
    return _choice(p, "closed_reason", value, ClosedReason)


def _point(p: Problems, lon: Any, lat: Any, crs: str) -> tuple[float, float] | None:
    """WGS-84 (lon, lat) from the input, or None with problems added."""
    try:
        flon, flat = float(lon), float(lat)
    except (TypeError, ValueError, OverflowError):
        p.add("lon", _("lon and lat must be numbers"))
        return None
    if not (math.isfinite(flon) and math.isfinite(flat)):
        p.add("lon", _("lon and lat must be finite numbers"))
        return None
    if not -90 <= flat <= 90:
        p.add("lat", _("latitude lies between -90 and 90"))
        return None
    if not -180 <= flon <= 180:
        p.add("lon", _("longitude lies between -180 and 180"))
        return None
    system = str(crs or "wgs84").lower()
    if system not in ("wgs84", "wgs-84", "epsg:4326", "gcj02", "gcj-02"):
        p.add("crs", _("unknown coordinate system %(crs)s: use wgs84 or gcj02") % {"crs": crs})
        return None
    return to_wgs84(flon, flat, system)


def grid_at(lon: float, lat: float) -> Region | None:
    """The grid in force at a WGS-84 point, or None."""
    code = grid_index().locate(lon, lat)
    return Region.objects.filter(code=code).first() if code else None


def _region_by_code(
    p: Problems, field: str, value: Region | str, levels: set[str]
) -> Region | None:
    region = (
        value
        if isinstance(value, Region)
        else Region.objects.filter(code=str(value).strip()).first()
    )
    if region is None or region.level not in levels:
        p.add(field, _("no grid or community with code %(code)s") % {"code": str(value)[:20]})
        return None
    return region


# --- loading and permission -----------------------------------------------------------------------


def edit_scope(actor: Any, roles: frozenset[str] = EDIT_ROLES) -> Scope:
    """Where ``actor`` may change base data (everything for a superuser)."""
    if actor is None or not getattr(actor, "is_active", False):
        return Scope.nothing()
    if actor.is_superuser:
        return Scope(everything=True)
    return user_scope(actor, roles=roles)


def _require_edit(actor: Any, region_code: str, roles: frozenset[str] = EDIT_ROLES) -> None:
    if not edit_scope(actor, roles).covers(region_code or ""):
        if not region_code:
            raise PermissionDenied(_("only administrators of every region may do this"))
        raise PermissionDenied(
            _("you may not change base data in %(region)s") % {"region": region_code},
            detail={"region_code": region_code},
        )


def _uuid_of(value: Any) -> uuid_module.UUID | None:
    if isinstance(value, uuid_module.UUID):
        return value
    try:
        return uuid_module.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None


_NOT_FOUND = {
    Building: gettext_lazy("no such building"),
    Room: gettext_lazy("no such room"),
    Household: gettext_lazy("no such household"),
    Person: gettext_lazy("no such person"),
    Organisation: gettext_lazy("no such organisation"),
    Component: gettext_lazy("no such component"),
}


def _find(model: type[M], ref: Any, actor: Any, *, lock: bool) -> M | None:
    key = ref.uuid if isinstance(ref, model) else _uuid_of(ref)
    if key is None:
        return None
    qs = model._default_manager.select_for_update() if lock else model._default_manager.all()
    found = qs.filter(uuid=key).first()
    if found is None or not registry_scope(actor).covers(found.region_code):
        return None
    return found


def _load(
    model: type[M],
    ref: Any,
    actor: Any,
    *,
    roles: frozenset[str] = EDIT_ROLES,
    version: int | None = None,
    open_only: bool = True,
) -> M:
    """The record locked for update: visible (else NotFound), editable by the actor (else
    PermissionDenied), at the version the actor saw and open (else Conflict)."""
    record = _find(model, ref, actor, lock=True)
    if record is None:
        raise NotFound(str(_NOT_FOUND[model]), detail={"uuid": str(getattr(ref, "uuid", ref))})
    _require_edit(actor, record.region_code, roles)
    if version is not None and version != record.version:
        raise Conflict(
            _(
                "%(record)s has changed since you loaded it (your version %(yours)s, now "
                "%(now)s): reload and try again"
            )
            % {"record": record, "yours": version, "now": record.version},
            detail={"version": record.version},
        )
    if open_only and record.closed_at is not None:
        raise Conflict(
            _("%(record)s is closed; reopen it first") % {"record": record},
            detail={"version": record.version, "closed_reason": record.closed_reason},
        )
    return record


def _ref(
    p: Problems, field: str, model: type[M], ref: Any, actor: Any, *, lock: bool = False
) -> M | None:
    """A related record given by instance or uuid, visible and open; problems otherwise."""
    if ref is None or ref == "":
        return None
    record = _find(model, ref, actor, lock=lock)
    if record is None:
        p.add(field, _NOT_FOUND[model])
        return None
    if record.closed_at is not None:
        p.add(field, _("%(record)s is closed") % {"record": record})
        return None
    return record


def _actor(actor: Any) -> User | None:
    return actor if isinstance(actor, User) else None


def _now(at: datetime | None) -> datetime:
    return at or timezone.now()


def _apply(record: Any, columns: dict[str, Any]) -> dict[str, list[Any]]:
    """Set the columns that change; answer the changes as the history stores them."""
    before = {name: getattr(record, name) for name in columns}
    changes = history.diff(before, columns)
    for name in changes:
        setattr(record, name, columns[name])
    return changes


def _save_change(
    record: Any,
    *,
    actor: Any,
    action: str,
    changes: dict[str, Any],
    reason: str,
    now: datetime,
    save: Callable[[Any], None] | None = None,
) -> None:
    """Bump the version, save (with ``save`` when given), and append the change (nothing when
    nothing changed)."""
    if not changes:
        return
    record.version += 1
    record.updated_at = now
    if save is None:
        record.save()
    else:
        save(record)
    history.record_change(
        record=record, action=action, actor=_actor(actor), changes=changes, reason=reason, at=now
    )


def _save_update(
    record: Any,
    columns: dict[str, Any],
    *,
    actor: Any,
    reason: str,
    now: datetime,
    hidden: Iterable[str] = (),
    save: Callable[[Any], None] | None = None,
) -> dict[str, list[Any]]:
    """Set ``columns``, save and append one "update" change of those that changed (``hidden``
    ones, a personal value's hash and mask, are set but left out of the history)."""
    changes = _apply(record, columns)
    for name in hidden:
        changes.pop(name, None)
    _save_change(
        record,
        actor=actor,
        action=ChangeAction.UPDATE,
        changes=changes,
        reason=reason,
        now=now,
        save=save,
    )
    return changes


def _record_created(
    record: Any, values: dict[str, Any], *, actor: Any, at: datetime | None
) -> None:
    """Append the "create" change of a new record: every field given a value."""
    history.record_change(
        record=record,
        action=ChangeAction.CREATE,
        actor=_actor(actor),
        changes=history.created(values),
        at=_now(at),
    )


def _given(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not UNSET}


def _cascade_region(building: Building) -> None:
    """Rooms, households, people and organisations of a building follow its region."""
    code = building.region_code
    Room.objects.filter(building=building).exclude(region_code=code).update(region_code=code)
    households = Household.objects.filter(room__building=building)
    households.exclude(region_code=code).update(region_code=code)
    Person.objects.filter(household__room__building=building).exclude(region_code=code).update(
        region_code=code
    )
    Organisation.objects.filter(building=building).exclude(region_code=code).update(
        region_code=code
    )


def _cascade_household(household: Household) -> None:
    Person.objects.filter(household=household).exclude(region_code=household.region_code).update(
        region_code=household.region_code
    )


def region_codes_refresh(*, community_code: str = "") -> int:
    """Recompute the scope columns after grids changed (``grids generate``, a demo load):
    buildings take their grid's code (or their community's), and rooms, households, people and
    organisations follow their building. ``community_code`` limits it to one community.
    Answers the number of buildings whose region changed."""
    buildings = Building.objects.all()
    if community_code:
        buildings = buildings.filter(community_code=community_code)
    grid_code = Region.objects.filter(pk=OuterRef("grid_id")).values("code")[:1]
    changed = buildings.filter(grid__isnull=False).exclude(region_code=Subquery(grid_code))
    count = changed.update(region_code=Subquery(grid_code))
    count += (
        buildings.filter(grid__isnull=True)
        .exclude(region_code=F("community_code"))
        .update(region_code=F("community_code"))
    )
    building_code = Building.objects.filter(pk=OuterRef("building_id")).values("region_code")[:1]
    room_code = Room.objects.filter(pk=OuterRef("room_id")).values("region_code")[:1]
    household_code = Household.objects.filter(pk=OuterRef("household_id")).values("region_code")[:1]
    scope = Q(building__community_code=community_code) if community_code else Q()
    Room.objects.filter(scope).update(region_code=Subquery(building_code))
    Organisation.objects.filter(scope, building__isnull=False).update(
        region_code=Subquery(building_code)
    )
    room_scope = Q(room__building__community_code=community_code) if community_code else Q()
    Household.objects.filter(room_scope, room__isnull=False).update(region_code=Subquery(room_code))
    person_scope = (
        Q(household__room__building__community_code=community_code) if community_code else Q()
    )
    Person.objects.filter(person_scope, household__room__isnull=False).update(
        region_code=Subquery(household_code)
    )
    return count


# --- buildings ----------------------------------------------------------------------------------


def _building_place(
    p: Problems, *, lon: Any, lat: Any, crs: str, community_code: str
) -> dict[str, Any]:
    """lon, lat (WGS-84), grid, community_code and region_code of a building's location."""
    point = _point(p, lon, lat, crs)
    if point is None:
        return {}
    wlon, wlat = point
    grid = grid_at(wlon, wlat)
    community = (community_code or "").strip()
    if grid is not None:
        if community and not grid.code.startswith(community):
            p.add(
                "community_code",
                _("the location lies in grid %(grid)s, outside community %(community)s")
                % {"grid": grid.code, "community": community},
            )
        community = grid.code[:12]
        region_code = grid.code
    else:
        if not community:
            p.add(
                "lon",
                _("the location lies in no grid: give the community code of the building"),
            )
            return {}
        region = _region_by_code(p, "community_code", community, {Level.COMMUNITY})
        if region is None:
            return {}
        region_code = region.code
    return {
        "lon": wlon,
        "lat": wlat,
        "grid": grid,
        "community_code": community,
        "region_code": region_code,
    }


def _building_columns(p: Problems, given: dict[str, Any]) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    for name, limit in (("estate", 100), ("number", 30), ("address", 200)):
        if name in given:
            columns[name] = _text(p, name, given[name], limit)
    if "kind" in given:
        columns["kind"] = _choice(p, "kind", given["kind"], BuildingType)
    if "floors" in given:
        columns["floors"] = _int(p, "floors", given["floors"], 0, MAX_FLOORS)
    if "households" in given:
        columns["households"] = _int(p, "households", given["households"], 0, 100_000) or 0
    return columns


def _check_address(p: Problems, building: Building, *, exclude_pk: int | None) -> None:
    building.address_key = normalise_address(building.address_text())
    if not building.address_key:
        p.add("address", _("give the address, or the estate and building number"))
        return
    twin = (
        Building.objects.filter(
            address_key=building.address_key,
            community_code=building.community_code,
            closed_at__isnull=True,
        )
        .exclude(pk=exclude_pk or 0)
        .first()
    )
    if twin is not None:
        raise Conflict(
            _("this address is already registered (building %(uuid)s)") % {"uuid": twin.uuid},
            detail={"address": _("already registered"), "building": str(twin.uuid)},
        )


@transaction.atomic
def building_create(
    *,
    actor: User,
    lon: float,
    lat: float,
    crs: str = "wgs84",
    estate: str = "",
    number: str = "",
    address: str = "",
    kind: str = BuildingType.RESIDENTIAL,
    floors: int | None = None,
    households: int = 0,
    community_code: str = "",
    at: datetime | None = None,
) -> Building:
    """Register a building at a point; its grid (or community) is found from the point."""
    p = Problems()
    columns = _building_columns(
        p,
        {
            "estate": estate,
            "number": number,
            "address": address,
            "kind": kind,
            "floors": floors,
            "households": households,
        },
    )
    place = _building_place(p, lon=lon, lat=lat, crs=crs, community_code=community_code)
    p.check()
    _require_edit(actor, place["region_code"])
    building = Building(**columns, **place)
    _check_address(p, building, exclude_pk=None)
    p.check()
    now = _now(at)
    building.save()
    values = {**columns, **place, "address_key": building.address_key}
    _record_created(building, values, actor=actor, at=now)
    return building


@transaction.atomic
def building_update(
    *,
    actor: User,
    building: Building | str,
    version: int | None = None,
    reason: str = "",
    lon: float | _Unset = UNSET,
    lat: float | _Unset = UNSET,
    crs: str = "wgs84",
    estate: str | _Unset = UNSET,
    number: str | _Unset = UNSET,
    address: str | _Unset = UNSET,
    kind: str | _Unset = UNSET,
    floors: int | _Unset | None = UNSET,
    households: int | _Unset = UNSET,
    community_code: str | _Unset = UNSET,
    at: datetime | None = None,
) -> Building:
    """Change a building; a new location re-finds its grid, and its rooms, households, people
    and organisations follow its region."""
    record = _load(Building, building, actor, version=version)
    p = Problems()
    given = _given(
        estate=estate,
        number=number,
        address=address,
        kind=kind,
        floors=floors,
        households=households,
    )
    columns = _building_columns(p, given)
    moved = not isinstance(lon, _Unset) or not isinstance(lat, _Unset)
    if moved or not isinstance(community_code, _Unset):
        place = _building_place(
            p,
            lon=record.lon if isinstance(lon, _Unset) else lon,
            lat=record.lat if isinstance(lat, _Unset) else lat,
            crs=crs if moved else "wgs84",
            community_code=(
                record.community_code if isinstance(community_code, _Unset) else community_code
            ),
        )
        columns.update(place)
    note = _reason(p, reason, required=False)
    p.check()
    old_region = record.region_code
    if "region_code" in columns:
        _require_edit(actor, columns["region_code"])
    changes = _apply(record, columns)
    if {"estate", "number", "address", "community_code"} & set(changes):
        old_key = record.address_key
        _check_address(p, record, exclude_pk=record.pk)
        p.check()
        if record.address_key != old_key:
            changes["address_key"] = [old_key, record.address_key]
    now = _now(at)
    _save_change(
        record, actor=actor, action=ChangeAction.UPDATE, changes=changes, reason=note, now=now
    )
    if record.region_code != old_region:
        _cascade_region(record)
    return record


# --- rooms --------------------------------------------------------------------------------------


def _room_columns(p: Problems, given: dict[str, Any]) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    if "number" in given:
        columns["number"] = _text(p, "number", given["number"], 20, required=True)
    if "unit" in given:
        columns["unit"] = _text(p, "unit", given["unit"], 10)
    if "floor" in given:
        columns["floor"] = _int(p, "floor", given["floor"], -10, MAX_FLOORS)
    if "use" in given:
        columns["use"] = _choice(p, "use", given["use"], RoomUse)
    if "area" in given:
        columns["area"] = _decimal(p, "area", given["area"], Decimal("1000000"))
    return columns


def _check_room_unique(room: Room) -> None:
    twin = (
        Room.objects.filter(
            building_id=room.building_id,
            unit=room.unit,
            number=room.number,
            closed_at__isnull=True,
        )
        .exclude(pk=room.pk)
        .first()
    )
    if twin is not None:
        raise Conflict(
            _("room %(number)s already exists in this building (room %(uuid)s)")
            % {
                "number": f"{room.unit}-{room.number}" if room.unit else room.number,
                "uuid": twin.uuid,
            },
            detail={"number": _("already registered"), "room": str(twin.uuid)},
        )


@transaction.atomic
def room_create(
    *,
    actor: User,
    building: Building | str,
    number: str,
    unit: str = "",
    floor: int | None = None,
    use: str = RoomUse.SELF_OCCUPIED,
    area: Decimal | float | str | None = None,
    at: datetime | None = None,
) -> Room:
    p = Problems()
    found = _ref(p, "building", Building, building, actor)
    columns = _room_columns(
        p, {"number": number, "unit": unit, "floor": floor, "use": use, "area": area}
    )
    if found is None and "building" not in p:
        p.add("building", _("give the building"))
    p.check()
    assert found is not None
    _require_edit(actor, found.region_code)
    room = Room(building=found, region_code=found.region_code, **columns)
    _check_room_unique(room)
    room.save()
    _record_created(room, {"building": found, **columns}, actor=actor, at=at)
    return room


@transaction.atomic
def room_update(
    *,
    actor: User,
    room: Room | str,
    version: int | None = None,
    reason: str = "",
    number: str | _Unset = UNSET,
    unit: str | _Unset = UNSET,
    floor: int | _Unset | None = UNSET,
    use: str | _Unset = UNSET,
    area: Decimal | float | str | _Unset | None = UNSET,
    at: datetime | None = None,
) -> Room:
    record = _load(Room, room, actor, version=version)
    p = Problems()
    columns = _room_columns(p, _given(number=number, unit=unit, floor=floor, use=use, area=area))
    note = _reason(p, reason, required=False)
    p.check()
    changes = _apply(record, columns)
    if {"number", "unit"} & set(changes):
        _check_room_unique(record)
    _save_change(
        record,
        actor=actor,
        action=ChangeAction.UPDATE,
        changes=changes,
        reason=note,
        now=_now(at),
    )
    return record


# --- households -----------------------------------------------------------------------------------


def _household_place(
    p: Problems, actor: Any, *, room: Any, grid: Any
) -> tuple[Room | None, str] | None:
    """(room, region_code) of a household: its room's region, or an explicit grid."""
    found = _ref(p, "room", Room, room, actor) if room not in (None, "") else None
    if found is not None:
        return found, found.region_code
    missing = _("give the room, or the grid of a household without a known room")
    return _in_grid(p, "room", grid, missing)


def _in_grid(p: Problems, field: str, grid: Any, missing: str) -> tuple[None, str] | None:
    """(None, region_code) of a record placed in a grid (or community) because its ``field``
    (its room, its household) was not given; None with a problem when neither was."""
    if field in p:
        return None
    if grid in (None, ""):
        p.add(field, missing)
        return None
    region = _region_by_code(p, "grid", grid, {Level.GRID, Level.COMMUNITY})
    return (None, region.code) if region is not None else None


@transaction.atomic
def household_create(
    *,
    actor: User,
    room: Room | str | None = None,
    grid: Region | str | None = None,
    number: str = "",
    at: datetime | None = None,
) -> Household:
    """A household in a room (or, its room unknown, in a grid). Add members with
    ``person_create``/``person_move``; name its head with ``household_update``."""
    p = Problems()
    number_text = _text(p, "number", number, 40)
    place = _household_place(p, actor, room=room, grid=grid)
    p.check()
    assert place is not None
    found_room, region_code = place
    _require_edit(actor, region_code)
    household = Household.objects.create(
        room=found_room, region_code=region_code, number=number_text
    )
    _record_created(
        household,
        {"room": found_room, "number": number_text, "region_code": region_code},
        actor=actor,
        at=at,
    )
    return household


def _set_relation(person: Person, relation: str, *, actor: Any, now: datetime, reason: str) -> None:
    _save_update(person, {"relation": relation}, actor=actor, reason=reason, now=now)


@transaction.atomic
def household_update(
    *,
    actor: User,
    household: Household | str,
    version: int | None = None,
    reason: str = "",
    number: str | _Unset = UNSET,
    room: Room | str | _Unset | None = UNSET,
    grid: Region | str | _Unset = UNSET,
    head: Person | str | _Unset | None = UNSET,
    at: datetime | None = None,
) -> Household:
    """Change a household: its number, its room (its members follow), its head (a member;
    their relation becomes "head", a former head's is cleared)."""
    record = _load(Household, household, actor, version=version)
    p = Problems()
    columns: dict[str, Any] = {}
    if not isinstance(number, _Unset):
        columns["number"] = _text(p, "number", number, 40)
    if not isinstance(room, _Unset) or not isinstance(grid, _Unset):
        place = _household_place(
            p,
            actor,
            room=None if isinstance(room, _Unset) else room,
            grid=None if isinstance(grid, _Unset) else grid,
        )
        if place is not None:
            columns["room"], columns["region_code"] = place
    new_head: Person | None = None
    if not isinstance(head, _Unset) and head not in (None, ""):
        new_head = _ref(p, "head", Person, head, actor, lock=True)
        if new_head is not None and new_head.household_id != record.pk:
            p.add("head", _("the head must be a member of the household"))
    if not isinstance(head, _Unset):
        columns["head"] = new_head
    note = _reason(p, reason, required=False)
    p.check()
    if "region_code" in columns:
        _require_edit(actor, columns["region_code"])
    now = _now(at)
    old_head_id = record.head_id
    changes = _save_update(record, columns, actor=actor, reason=note, now=now)
    if "region_code" in changes:
        _cascade_household(record)
    if "head" in changes:
        if old_head_id is not None:
            old_head = Person.objects.select_for_update().filter(pk=old_head_id).first()
            if old_head is not None and old_head.relation == Relation.HEAD:
                _set_relation(old_head, "", actor=actor, now=now, reason=note)
        if new_head is not None and new_head.relation != Relation.HEAD:
            _set_relation(new_head, Relation.HEAD, actor=actor, now=now, reason=note)
    return record


# --- people -------------------------------------------------------------------------------------


def _person_columns(p: Problems, given: dict[str, Any], current: Person | None) -> dict[str, Any]:
    """Cleaned person columns from the given inputs (id number checked against birth date and
    sex, which are filled from it when not given)."""
    columns: dict[str, Any] = {}
    if "name" in given:
        columns["name"] = _text(p, "name", given["name"], 100, required=True)
    if "sex" in given:
        columns["sex"] = _choice(p, "sex", given["sex"] or Sex.UNKNOWN, Sex)
    if "birth_date" in given:
        columns["birth_date"] = _date(p, "birth_date", given["birth_date"])
    for name in ("moved_in_on", "moved_out_on", "deceased_on"):
        if name in given:
            columns[name] = _date(p, name, given[name])
    if "ethnicity" in given:
        columns["ethnicity"] = _text(p, "ethnicity", given["ethnicity"], 20)
    if "person_type" in given:
        columns["person_type"] = _choice(p, "person_type", given["person_type"], PersonType)
    if "relation" in given:
        columns["relation"] = _choice(p, "relation", given["relation"], Relation, blank=True)
    if "verification" in given:
        columns["verification"] = _choice(
            p, "verification", given["verification"] or Verification.UNVERIFIED, Verification
        )
    if "phone" in given:
        phone = _checked(p, "phone", given["phone"], check_phone) or ""
        columns.update(_personal("phone", crypto.PHONE, phone, mask_phone))
    id_given = "id_number" in given
    facts = None
    if id_given:
        facts = _checked(p, "id_number", given["id_number"], check_id_number)
        id_text = crypto.normalise_id_number(str(given["id_number"])) if facts else ""
        columns.update(_personal("id_number", crypto.ID_NUMBER, id_text, mask_id_number))
    elif current is not None and current.id_number:
        facts = _facts_or_none(current.id_number)
    if facts is not None:
        # a birth date and sex given must agree with the number; a new number fills the others
        birth = columns.get("birth_date") if "birth_date" in given else None
        sex = columns.get("sex") if "sex" in given else None
        if sex in ("", Sex.UNKNOWN):
            sex = None
        try:
            check_id_consistent(facts, birth, sex)
        except FieldProblem as exc:
            p.add(exc.field, exc.message)
        if id_given:
            if birth is None:
                columns["birth_date"] = facts.birth_date
            if sex is None:
                columns["sex"] = facts.sex
    for name in ("moved_out_on", "deceased_on"):
        day = columns.get(name)
        born = columns.get("birth_date", current.birth_date if current else None)
        if day is not None and born is not None and day < born:
            p.add(name, _("%(field)s lies before the birth date") % {"field": name})
    return columns


def _checked(p: Problems, field: str, value: Any, check: Callable[..., Any]) -> Any:
    """What ``check(text, field=field)`` answers for the value given, or None when it is
    empty or wrong (the problem added)."""
    raw = "" if value is None else str(value).strip()
    if not raw:
        return None
    try:
        return check(raw, field=field)
    except FieldProblem as exc:
        p.add(field, exc.message)
        return None


def _personal(field: str, kind: str, value: str, mask: Callable[[str], str]) -> dict[str, Any]:
    """A personal value with its keyed look-up hash and its mask."""
    return {
        field: value,
        f"{field}_hash": crypto.lookup_hash(kind, value),
        f"{field}_mask": mask(value),
    }


#: Columns an update sets but its history leaves out (the masked value is there).
_PERSON_HIDDEN = ("id_number_hash", "id_number_mask", "phone_hash", "phone_mask")


def _facts_or_none(id_number: str) -> Any:
    try:
        return check_id_number(id_number)
    except FieldProblem:
        return None


def _check_id_unique(columns: dict[str, Any], *, exclude_pk: int | None) -> None:
    digest = columns.get("id_number_hash")
    if not digest:
        return
    twin = (
        Person.objects.filter(id_number_hash=digest)
        .exclude(id_number_hash="")  # the partial unique index's condition: SQLite then uses it
        .exclude(pk=exclude_pk or 0)
        .first()
    )
    if twin is not None:
        message = _("this id number is already registered (person %(uuid)s)") % {"uuid": twin.uuid}
        raise Conflict(message, detail={"id_number": message, "person": str(twin.uuid)})


def _save_unique(record: Any) -> None:
    """Save; a concurrent registration of the same id number answers 409, not 500."""
    try:
        with transaction.atomic():
            record.save()
    except IntegrityError as exc:
        if "id_number_hash" in str(exc) or "person_id_number_hash_unique" in str(exc):
            message = _("this id number is already registered")
            raise Conflict(message, detail={"id_number": message}) from exc
        raise


def _person_place(
    p: Problems, actor: Any, *, household: Any, grid: Any
) -> tuple[Household | None, str] | None:
    """(household, region_code): the household's region, or an explicit grid's."""
    found = (
        _ref(p, "household", Household, household, actor, lock=True)
        if household not in (None, "")
        else None
    )
    if found is not None:
        if grid not in (None, ""):
            code = grid.code if isinstance(grid, Region) else str(grid).strip()
            if code != found.region_code:
                p.add("grid", _("the household lies in %(code)s") % {"code": found.region_code})
        return found, found.region_code
    missing = _("give the household, or the grid of a person without one")
    return _in_grid(p, "household", grid, missing)


def _make_head_if_none(
    household: Household | None, person: Person, *, actor: Any, now: datetime
) -> None:
    """A head joining a household without one becomes its head."""
    if household is None or person.relation != Relation.HEAD:
        return
    if household.head_id is not None and household.head_id != person.pk:
        return
    _save_update(household, {"head": person}, actor=actor, reason="", now=now)


def _head_taken(p: Problems, household: Household | None, relation: str, pk: int | None) -> None:
    if household is None or relation != Relation.HEAD:
        return
    if household.head_id is not None and household.head_id != pk:
        head = Person.objects.filter(pk=household.head_id).only("name", "closed_at").first()
        if head is not None and head.closed_at is None:
            p.add(
                "relation",
                _("the household already has a head (%(name)s)") % {"name": head.name},
            )


@transaction.atomic
def person_create(
    *,
    actor: User,
    name: str,
    household: Household | str | None = None,
    grid: Region | str | None = None,
    sex: str = "",
    birth_date: date | str | None = None,
    id_number: str = "",
    phone: str = "",
    ethnicity: str = "",
    person_type: str = PersonType.REGISTERED,
    relation: str = "",
    verification: str = Verification.UNVERIFIED,
    moved_in_on: date | str | None = None,
    tags: Iterable[TagType | str] = (),
    import_batch: LedgerImport | None = None,
    import_row: int | None = None,
    at: datetime | None = None,
) -> Person:
    """Register a person in a household (or, without one, in a grid).

    An id number already registered answers 409 naming the person it belongs to. A record
    made by an import (``import_batch``) gets no create row in its history: the import is it.
    """
    p = Problems()
    columns = _person_columns(
        p,
        {
            "name": name,
            "sex": sex,
            "birth_date": birth_date,
            "id_number": id_number,
            "phone": phone,
            "ethnicity": ethnicity,
            "person_type": person_type,
            "relation": relation,
            "verification": verification,
            "moved_in_on": moved_in_on,
        },
        None,
    )
    place = _person_place(p, actor, household=household, grid=grid)
    found_household, region_code = place if place is not None else (None, "")
    _head_taken(p, found_household, columns.get("relation", ""), None)
    p.check()
    _require_edit(actor, region_code)
    _check_id_unique(columns, exclude_pk=None)
    now = _now(at)
    person = Person(
        **columns,
        household=found_household,
        region_code=region_code,
        import_batch=import_batch,
        import_row=import_row,
    )
    _save_unique(person)
    if import_batch is None:
        _record_created(person, {**columns, "household": found_household}, actor=actor, at=now)
    _make_head_if_none(found_household, person, actor=actor, now=now)
    for tag in tags:
        _tag_add(person, tag, actor=actor, since=None, note="", now=now)
    return person


@transaction.atomic
def person_update(
    *,
    actor: User,
    person: Person | str,
    version: int | None = None,
    reason: str = "",
    name: str | _Unset = UNSET,
    sex: str | _Unset = UNSET,
    birth_date: date | str | _Unset | None = UNSET,
    id_number: str | _Unset = UNSET,
    phone: str | _Unset = UNSET,
    ethnicity: str | _Unset = UNSET,
    person_type: str | _Unset = UNSET,
    relation: str | _Unset = UNSET,
    verification: str | _Unset = UNSET,
    moved_in_on: date | str | _Unset | None = UNSET,
    moved_out_on: date | str | _Unset | None = UNSET,
    deceased_on: date | str | _Unset | None = UNSET,
    at: datetime | None = None,
) -> Person:
    """Change a person's details (a new household or grid: ``person_move``). Changing an id
    number that was recorded needs a reason."""
    record = _load(Person, person, actor, version=version)
    p = Problems()
    given = _given(
        name=name,
        sex=sex,
        birth_date=birth_date,
        id_number=id_number,
        phone=phone,
        ethnicity=ethnicity,
        person_type=person_type,
        relation=relation,
        verification=verification,
        moved_in_on=moved_in_on,
        moved_out_on=moved_out_on,
        deceased_on=deceased_on,
    )
    columns = _person_columns(p, given, record)
    id_replaced = (
        "id_number" in columns
        and bool(record.id_number)
        and columns["id_number"] != record.id_number
    )
    note = _reason(p, reason, required=id_replaced)
    if "relation" in columns:
        _head_taken(p, _household_of(record), columns["relation"], record.pk)
    p.check()
    if "id_number" in columns and columns["id_number"] != record.id_number:
        _check_id_unique(columns, exclude_pk=record.pk)
    now = _now(at)
    changes = _save_update(
        record, columns, actor=actor, reason=note, now=now, hidden=_PERSON_HIDDEN, save=_save_unique
    )
    if "relation" in changes:
        _make_head_if_none(_household_of(record, lock=True), record, actor=actor, now=now)
    return record


def _household_of(person: Person, *, lock: bool = False) -> Household | None:
    if person.household_id is None:
        return None
    qs = Household.objects.select_for_update() if lock else Household.objects.all()
    return qs.filter(pk=person.household_id).first()


def _leave_household(person: Person, *, actor: Any, now: datetime, reason: str) -> None:
    """A head who leaves their household is no longer its head."""
    household = _household_of(person, lock=True)
    if household is not None and household.head_id == person.pk:
        _save_update(household, {"head": None}, actor=actor, reason=reason, now=now)


@transaction.atomic
def person_move(
    *,
    actor: User,
    person: Person | str,
    household: Household | str | None = None,
    room: Room | str | None = None,
    grid: Region | str | None = None,
    relation: str | _Unset = UNSET,
    reason: str = "",
    version: int | None = None,
    moved_in_on: date | str | None = None,
    at: datetime | None = None,
) -> Person:
    """Move a person into another household, into a room (a new household there, with them
    as its head), or out of any household into a grid. Exactly one destination."""
    record = _load(Person, person, actor, version=version)
    p = Problems()
    targets = [t for t in (household, room, grid) if t not in (None, "")]
    if len(targets) != 1:
        p.add("household", _("give exactly one destination: a household, a room or a grid"))
        p.check()
    note = _reason(p, reason, required=False)
    day = _date(p, "moved_in_on", moved_in_on)
    new_relation = (
        _choice(p, "relation", relation, Relation, blank=True)
        if not isinstance(relation, _Unset)
        else None
    )
    target: Household | None = None
    region_code = ""
    if household not in (None, ""):
        place = _person_place(p, actor, household=household, grid=None)
        if place is not None:
            target, region_code = place
            if target is not None and target.pk == record.household_id:
                p.add("household", _("the person already belongs to this household"))
    elif room not in (None, ""):
        found_room = _ref(p, "room", Room, room, actor)
        if found_room is not None:
            region_code = found_room.region_code
            if new_relation is None:
                new_relation = Relation.HEAD
    else:
        region = _region_by_code(p, "grid", grid or "", {Level.GRID, Level.COMMUNITY})
        if region is not None:
            region_code = region.code
    if new_relation is None:  # not given: kept in another household, unless they headed theirs
        keep = target is not None and record.relation != Relation.HEAD
        new_relation = record.relation if keep else ""
    _head_taken(p, target, new_relation, record.pk)
    p.check()
    _require_edit(actor, region_code)
    now = _now(at)
    _leave_household(record, actor=actor, now=now, reason=note)
    if room not in (None, "") and target is None:
        target = household_create(actor=actor, room=room, at=now)
    columns: dict[str, Any] = {
        "household": target,
        "region_code": region_code,
        "relation": new_relation,
    }
    if day is not None:
        columns["moved_in_on"] = day
    _save_update(record, columns, actor=actor, reason=note, now=now)
    _make_head_if_none(target, record, actor=actor, now=now)
    return record


# --- tags ---------------------------------------------------------------------------------------


def _tag_type(value: TagType | str) -> TagType:
    tag = value if isinstance(value, TagType) else TagType.objects.filter(code=str(value)).first()
    if tag is None:
        message = _("no tag %(code)s") % {"code": str(value)[:40]}
        raise ValidationFailed(message, detail={"tag": message})
    return tag


def _require_clearance(actor: Any, tag: TagType) -> None:
    level, _reveal = clearance_of(actor)
    if tag.sensitivity > level:
        raise PermissionDenied(_("your role may not see or set this tag"))


def _tag_add(
    person: Person,
    value: TagType | str,
    *,
    actor: Any,
    since: date | None,
    note: str,
    now: datetime,
) -> PersonTag:
    tag = _tag_type(value)
    _require_clearance(actor, tag)
    if not tag.active or tag.applies_to != TagAppliesTo.PERSON:
        message = _("the tag %(tag)s cannot be given to a person") % {"tag": tag.name}
        raise ValidationFailed(message, detail={"tag": message})
    if PersonTag.objects.filter(person=person, tag_type=tag).exists():
        raise Conflict(_("the person already has the tag %(tag)s") % {"tag": tag.name})
    row = PersonTag.objects.create(
        person=person, tag_type=tag, since=since, note=note, created_by=_actor(actor)
    )
    changes: dict[str, Any] = {"tag": [None, tag.code]}
    if since is not None:
        changes["since"] = [None, since.isoformat()]
    if note:
        changes["note"] = [None, note]
    history.record_change(
        record=person,
        record_type=RecordType.PERSON_TAG,
        action=ChangeAction.TAG,
        actor=_actor(actor),
        changes=changes,
        at=now,
        sensitivity=tag.sensitivity,
    )
    return row


@transaction.atomic
def person_tag_add(
    *,
    actor: User,
    person: Person | str,
    tag: TagType | str,
    since: date | str | None = None,
    note: str = "",
    at: datetime | None = None,
) -> PersonTag:
    """Tag a person (care tag, or a sensitive tag the actor's clearance covers)."""
    record = _load(Person, person, actor)
    p = Problems()
    day = _date(p, "since", since)
    text = _text(p, "note", note, 200)
    p.check()
    return _tag_add(record, tag, actor=actor, since=day, note=text, now=_now(at))


@transaction.atomic
def person_tag_remove(
    *,
    actor: User,
    person: Person | str,
    tag: TagType | str,
    reason: str = "",
    at: datetime | None = None,
) -> None:
    record = _load(Person, person, actor)
    found = _tag_type(tag)
    _require_clearance(actor, found)
    p = Problems()
    note = _reason(p, reason, required=False)
    p.check()
    deleted, _rows = PersonTag.objects.filter(person=record, tag_type=found).delete()
    if not deleted:
        raise Conflict(_("the person does not have the tag %(tag)s") % {"tag": found.name})
    history.record_change(
        record=record,
        record_type=RecordType.PERSON_TAG,
        action=ChangeAction.UNTAG,
        actor=_actor(actor),
        changes={"tag": [found.code, None]},
        reason=note,
        at=_now(at),
        sensitivity=found.sensitivity,
    )


# --- organisations --------------------------------------------------------------------------------


def _organisation_columns(p: Problems, given: dict[str, Any]) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    if "name" in given:
        columns["name"] = _text(p, "name", given["name"], 200, required=True)
    if "kind" in given:
        columns["kind"] = _choice(p, "kind", given["kind"], OrganisationKind)
    for name, limit in (("legal_rep", 100), ("contact_name", 100), ("address", 200)):
        if name in given:
            columns[name] = _text(p, name, given[name], limit)
    if "staff_count" in given:
        columns["staff_count"] = _int(p, "staff_count", given["staff_count"], 0, 10_000_000)
    if "credit_code" in given:
        columns["credit_code"] = (
            _checked(p, "credit_code", given["credit_code"], check_credit_code) or ""
        )
    if "contact_phone" in given:
        phone = _checked(p, "contact_phone", given["contact_phone"], check_phone) or ""
        columns.update(_personal("contact_phone", crypto.PHONE, phone, mask_phone))
    return columns


def _organisation_place(
    p: Problems, actor: Any, *, building: Any, lon: Any, lat: Any, crs: str, grid: Any
) -> dict[str, Any] | None:
    """building, lon, lat and region_code: from the building, else the point, else a grid."""
    if (lon is None) != (lat is None):  # half a point is never silently dropped
        missing = "lon" if lon is None else "lat"
        p.add(
            missing,
            _("give both lat and lon, or neither (%(missing)s is missing)") % {"missing": missing},
        )
        return None
    if building not in (None, ""):
        found = _ref(p, "building", Building, building, actor)
        if found is None:
            return None
        place: dict[str, Any] = {"building": found, "region_code": found.region_code}
        point = _point(p, lon, lat, crs) if lon is not None and lat is not None else None
        place["lon"], place["lat"] = point if point else (found.lon, found.lat)
        return place
    if lon is not None and lat is not None:
        point = _point(p, lon, lat, crs)
        if point is None:
            return None
        located = grid_at(*point)
        if located is None and grid in (None, ""):
            p.add("lon", _("the location lies in no grid: give the grid"))
            return None
        region = located or _region_by_code(p, "grid", grid, {Level.GRID, Level.COMMUNITY})
        if region is None:
            return None
        return {"building": None, "lon": point[0], "lat": point[1], "region_code": region.code}
    if grid in (None, ""):
        p.add("building", _("give the building, the location or the grid"))
        return None
    region = _region_by_code(p, "grid", grid, {Level.GRID, Level.COMMUNITY})
    if region is None:
        return None
    return {"building": None, "lon": None, "lat": None, "region_code": region.code}


def _check_credit_unique(columns: dict[str, Any], *, exclude_pk: int | None) -> None:
    code = columns.get("credit_code")
    if not code:
        return
    twin = Organisation.objects.filter(credit_code=code).exclude(pk=exclude_pk or 0).first()
    if twin is not None:
        message = _("this credit code is already registered (organisation %(uuid)s)") % {
            "uuid": twin.uuid
        }
        raise Conflict(message, detail={"credit_code": message, "organisation": str(twin.uuid)})


_ORG_HIDDEN = ("contact_phone_hash", "contact_phone_mask")


@transaction.atomic
def organisation_create(
    *,
    actor: User,
    name: str,
    kind: str = OrganisationKind.COMPANY,
    credit_code: str = "",
    legal_rep: str = "",
    contact_name: str = "",
    contact_phone: str = "",
    staff_count: int | None = None,
    address: str = "",
    building: Building | str | None = None,
    lon: float | None = None,
    lat: float | None = None,
    crs: str = "wgs84",
    grid: Region | str | None = None,
    at: datetime | None = None,
) -> Organisation:
    """Register an organisation in a building, at a point, or in a grid."""
    p = Problems()
    columns = _organisation_columns(
        p,
        {
            "name": name,
            "kind": kind,
            "credit_code": credit_code,
            "legal_rep": legal_rep,
            "contact_name": contact_name,
            "contact_phone": contact_phone,
            "staff_count": staff_count,
            "address": address,
        },
    )
    place = _organisation_place(p, actor, building=building, lon=lon, lat=lat, crs=crs, grid=grid)
    p.check()
    assert place is not None
    _require_edit(actor, place["region_code"])
    _check_credit_unique(columns, exclude_pk=None)
    organisation = Organisation.objects.create(**columns, **place)
    values = {k: v for k, v in {**columns, **place}.items() if k not in _ORG_HIDDEN}
    _record_created(organisation, values, actor=actor, at=at)
    return organisation


@transaction.atomic
def organisation_update(
    *,
    actor: User,
    organisation: Organisation | str,
    version: int | None = None,
    reason: str = "",
    name: str | _Unset = UNSET,
    kind: str | _Unset = UNSET,
    credit_code: str | _Unset = UNSET,
    legal_rep: str | _Unset = UNSET,
    contact_name: str | _Unset = UNSET,
    contact_phone: str | _Unset = UNSET,
    staff_count: int | _Unset | None = UNSET,
    address: str | _Unset = UNSET,
    building: Building | str | _Unset | None = UNSET,
    lon: float | _Unset | None = UNSET,
    lat: float | _Unset | None = UNSET,
    crs: str = "wgs84",
    grid: Region | str | _Unset | None = UNSET,
    at: datetime | None = None,
) -> Organisation:
    record = _load(Organisation, organisation, actor, version=version)
    p = Problems()
    columns = _organisation_columns(
        p,
        _given(
            name=name,
            kind=kind,
            credit_code=credit_code,
            legal_rep=legal_rep,
            contact_name=contact_name,
            contact_phone=contact_phone,
            staff_count=staff_count,
            address=address,
        ),
    )
    if any(not isinstance(v, _Unset) for v in (building, lon, lat, grid)):
        place = _organisation_place(
            p,
            actor,
            building=None if isinstance(building, _Unset) else building,
            lon=None if isinstance(lon, _Unset) else lon,
            lat=None if isinstance(lat, _Unset) else lat,
            crs=crs,
            grid=None if isinstance(grid, _Unset) else grid,
        )
        if place is not None:
            columns.update(place)
    note = _reason(p, reason, required=False)
    p.check()
    if "region_code" in columns:
        _require_edit(actor, columns["region_code"])
    if columns.get("credit_code") and columns["credit_code"] != record.credit_code:
        _check_credit_unique(columns, exclude_pk=record.pk)
    _save_update(record, columns, actor=actor, reason=note, now=_now(at), hidden=_ORG_HIDDEN)
    return record


# --- components ---------------------------------------------------------------------------------


def _component_category(p: Problems, value: Category | str) -> Category | None:
    if isinstance(value, Category):
        found: Category | None = value
    else:
        key = str(value or "").strip()
        scheme = ""
        if key.count(":") == 1:
            scheme, key = key.split(":")
        qs = Category.objects.filter(code=key, klass=CategoryClass.COMPONENT, is_active=True)
        if scheme:
            qs = qs.filter(scheme=scheme)
        matches = list(qs[:2])
        if len(matches) > 1:
            p.add(
                "category",
                _("category %(code)s exists in several schemes: write scheme:code") % {"code": key},
            )
            return None
        found = matches[0] if matches else None
    if found is None or found.klass != CategoryClass.COMPONENT or not found.is_active:
        p.add(
            "category",
            _("no component category %(code)s in use") % {"code": str(value)[:20] or "—"},
        )
        return None
    return found


def _component_columns(p: Problems, given: dict[str, Any]) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    if "category" in given:
        category = _component_category(p, given["category"])
        if category is not None:
            columns["category"] = category
    if "address" in given:
        columns["address"] = _text(p, "address", given["address"], 200)
    if "status" in given:
        columns["status"] = _choice(p, "status", given["status"], ComponentStatus)
    for name in ("competent_unit", "owner_unit", "maintainer_unit"):
        if name in given:
            columns[name] = _text(p, name, given[name], 100)
    return columns


def _component_code(p: Problems, code: Any, category: Category | None) -> str:
    try:
        return check_component_code(
            str(code or ""), category.code if category is not None else None, field="code"
        )
    except FieldProblem as exc:
        p.add("code", exc.message)
        return ""


def _component_place(p: Problems, *, lon: Any, lat: Any, crs: str) -> dict[str, Any]:
    point = _point(p, lon, lat, crs)
    if point is None:
        return {}
    grid = grid_at(*point)
    if grid is None:
        nearest, distance = grid_index().nearest(*point)
        p.add(
            "lon",
            _("the location lies in no grid; the nearest grid is %(code)s, %(distance)s m away")
            % {"code": nearest or "—", "distance": f"{distance:,.0f}"},
        )
        return {}
    return {"lon": point[0], "lat": point[1], "region_code": grid.code}


def _check_component_unique(code: str, *, exclude_pk: int | None) -> None:
    twin = Component.objects.filter(code=code).exclude(pk=exclude_pk or 0).first()
    if twin is not None:
        message = _("component code %(code)s is already registered (component %(uuid)s)") % {
            "code": code,
            "uuid": twin.uuid,
        }
        raise Conflict(message, detail={"code": message, "component": str(twin.uuid)})


@transaction.atomic
def component_create(
    *,
    actor: User,
    code: str,
    category: Category | str,
    lon: float,
    lat: float,
    crs: str = "wgs84",
    address: str = "",
    status: str = ComponentStatus.INTACT,
    competent_unit: str = "",
    owner_unit: str = "",
    maintainer_unit: str = "",
    at: datetime | None = None,
) -> Component:
    """Register a city component at a point (its grid found from it) under its standard code."""
    p = Problems()
    columns = _component_columns(
        p,
        {
            "category": category,
            "address": address,
            "status": status,
            "competent_unit": competent_unit,
            "owner_unit": owner_unit,
            "maintainer_unit": maintainer_unit,
        },
    )
    columns["code"] = _component_code(p, code, columns.get("category"))
    place = _component_place(p, lon=lon, lat=lat, crs=crs)
    p.check()
    _require_edit(actor, place["region_code"], COMPONENT_EDIT_ROLES)
    _check_component_unique(columns["code"], exclude_pk=None)
    component = Component.objects.create(**columns, **place)
    _record_created(component, {**columns, **place}, actor=actor, at=at)
    return component


@transaction.atomic
def component_update(
    *,
    actor: User,
    component: Component | str,
    version: int | None = None,
    reason: str = "",
    code: str | _Unset = UNSET,
    category: Category | str | _Unset = UNSET,
    lon: float | _Unset = UNSET,
    lat: float | _Unset = UNSET,
    crs: str = "wgs84",
    address: str | _Unset = UNSET,
    status: str | _Unset = UNSET,
    competent_unit: str | _Unset = UNSET,
    owner_unit: str | _Unset = UNSET,
    maintainer_unit: str | _Unset = UNSET,
    at: datetime | None = None,
) -> Component:
    """Change a component: its status (intact, damaged, lost…), place, code or units."""
    record = _load(Component, component, actor, roles=COMPONENT_EDIT_ROLES, version=version)
    p = Problems()
    columns = _component_columns(
        p,
        _given(
            category=category,
            address=address,
            status=status,
            competent_unit=competent_unit,
            owner_unit=owner_unit,
            maintainer_unit=maintainer_unit,
        ),
    )
    if not isinstance(code, _Unset) or "category" in columns:
        columns["code"] = _component_code(
            p,
            record.code if isinstance(code, _Unset) else code,
            columns.get("category", record.category),
        )
    if not isinstance(lon, _Unset) or not isinstance(lat, _Unset):
        columns.update(
            _component_place(
                p,
                lon=record.lon if isinstance(lon, _Unset) else lon,
                lat=record.lat if isinstance(lat, _Unset) else lat,
                crs=crs,
            )
        )
    note = _reason(p, reason, required=False)
    p.check()
    if "region_code" in columns:
        _require_edit(actor, columns["region_code"], COMPONENT_EDIT_ROLES)
    if columns.get("code") and columns["code"] != record.code:
        _check_component_unique(columns["code"], exclude_pk=record.pk)
    _save_update(record, columns, actor=actor, reason=note, now=_now(at))
    return record


# --- closing and reopening ------------------------------------------------------------------------


class Closing(TypedDict, total=False):
    """What closing a record takes besides the actor and the record."""

    closed_reason: Required[str]
    reason: Required[str]
    version: int | None
    at: datetime | None


class PersonClosing(Closing, total=False):
    #: the day they moved out or died (default today)
    on: date | str | None


class Reopening(TypedDict, total=False):
    """What reopening a record takes besides the actor and the record."""

    reason: Required[str]
    version: int | None
    at: datetime | None


def _no_container(record: Any) -> RegistryRecord | None:
    return None


@dataclass(frozen=True)
class RecordKind:
    """How one kind of record is closed and reopened (``KINDS``, by the ``kind`` of the URLs).

    Closing is refused while open ``children`` live in the record; reopening while the record
    it lives in (``container``, and that one's) is closed, or when an open record took its
    place meanwhile (``clash`` raises Conflict). ``closing`` and ``reopening`` answer further
    columns to set; ``reopened`` follows a reopening up."""

    name: str
    model: type[RegistryRecord]
    roles: frozenset[str] = EDIT_ROLES
    children: Callable[[Any], QuerySet[Any]] | None = None
    #: the refusal while children are open, with their %(count)s, and its detail key
    children_refusal: Any = ""
    children_key: str = ""
    container: Callable[[Any], RegistryRecord | None] = _no_container
    clash: Callable[[Any], None] | None = None
    #: closing takes the day (``on``) they moved out or died
    dated: bool = False
    closing: Callable[..., dict[str, Any]] | None = None
    reopening: Callable[[Any], dict[str, Any]] | None = None
    reopened: Callable[..., None] | None = None

    @property
    def label(self) -> str:
        return str(RecordType(self.name).label)


def closed_container(record: RegistryRecord) -> RegistryRecord | None:
    """The outermost closed record that ``record`` lives in (a person's household, a
    household's room, a room's building), or None. Reopen that one first."""
    found = None
    current = KIND_OF[type(record)].container(record)
    while current is not None:
        if current.closed_at is not None:
            found = current
        current = KIND_OF[type(current)].container(current)
    return found


def _kind(name: str) -> RecordKind:
    kind = KINDS.get(name)
    if kind is None:
        raise NotFound(_("no such record"), detail={"kind": str(name)[:20]})
    return kind


def _close_record(
    name: str,
    ref: Any,
    *,
    actor: Any,
    closed_reason: str,
    reason: str,
    version: int | None = None,
    at: datetime | None = None,
    on: date | str | None = None,
) -> Any:
    kind = _kind(name)
    record = _load(kind.model, ref, actor, roles=kind.roles, version=version)
    if kind.children is not None:
        count = _open_count(kind.children(record))
        if count:
            raise Conflict(
                str(kind.children_refusal) % {"count": count}, detail={kind.children_key: count}
            )
    p = Problems()
    code = _closed_reason(p, closed_reason)
    day: date | None = None
    if kind.dated:
        day = _date(p, "on", on) or timezone.localdate()
    elif on not in (None, ""):
        p.add("on", _("only a person's record is closed on a day"))
    note = _reason(p, reason, required=True)
    p.check()
    now = _now(at)
    columns = {"closed_at": now, "closed_reason": code, "closed_note": note}
    if kind.closing is not None:
        columns.update(kind.closing(record, code=code, day=day, actor=actor, now=now, note=note))
    changes = _apply(record, columns)
    _save_change(
        record, actor=actor, action=ChangeAction.CLOSE, changes=changes, reason=note, now=now
    )
    return record


def _reopen_record(
    name: str,
    ref: Any,
    *,
    actor: Any,
    reason: str,
    version: int | None = None,
    at: datetime | None = None,
) -> Any:
    kind = _kind(name)
    record = _load(kind.model, ref, actor, roles=kind.roles, version=version, open_only=False)
    if record.closed_at is None:
        raise Conflict(
            _("%(record)s is not closed") % {"record": record},
            detail={"version": record.version},
        )
    p = Problems()
    note = _reason(p, reason, required=True)
    p.check()
    container = closed_container(record)
    if container is not None:
        outer = KIND_OF[type(container)]
        raise Conflict(
            _("%(record)s is closed; reopen it first") % {"record": f"{outer.label} {container}"},
            detail={"closed": str(container.uuid), "kind": outer.name},
        )
    if kind.clash is not None:
        kind.clash(record)
    now = _now(at)
    seen = record.version
    columns = {"closed_at": None, "closed_reason": "", "closed_note": ""}
    if kind.reopening is not None:
        columns.update(kind.reopening(record))
    changes = _apply(record, columns)
    try:
        with transaction.atomic():
            _save_change(
                record,
                actor=actor,
                action=ChangeAction.REOPEN,
                changes=changes,
                reason=note,
                now=now,
            )
    except IntegrityError as exc:  # a twin opened at the same moment: 409, not 500
        raise Conflict(
            _("%(record)s cannot be reopened: an open record took its place meanwhile")
            % {"record": record},
            detail={"version": seen},
        ) from exc
    if kind.reopened is not None:
        kind.reopened(record, actor=actor, now=now, note=note)
    return record


@transaction.atomic
def record_close(
    *, actor: User, kind: str, record: RegistryRecord | str, **closing: Unpack[PersonClosing]
) -> RegistryRecord:
    """Close a record of ``kind`` (a key of ``KINDS``) with a reason, never deleting it: by an
    editor whose scope holds it, at the version they saw; refused (409) while open records live
    in it (rooms in a building, households in a room, members in a household)."""
    return _close_record(kind, record, actor=actor, **closing)


@transaction.atomic
def record_reopen(
    *, actor: User, kind: str, record: RegistryRecord | str, **reopening: Unpack[Reopening]
) -> RegistryRecord:
    """Reopen a record of ``kind`` closed in error, with a reason: refused (409) while the
    record it lives in is closed (reopen that first) or when an open record took its place
    meanwhile (an address, a room number). One "reopen" change in its history."""
    return _reopen_record(kind, record, actor=actor, **reopening)


# each kind's closing and reopening under its own name (the rules: ``KINDS`` below)


@transaction.atomic
def building_close(
    *, actor: User, building: Building | str, **closing: Unpack[Closing]
) -> Building:
    """Close a building (demolished, duplicate…): refused while it has open rooms."""
    return _close_record("building", building, actor=actor, **closing)


@transaction.atomic
def building_reopen(
    *, actor: User, building: Building | str, **reopening: Unpack[Reopening]
) -> Building:
    """Reopen a building closed in error: refused (409) while another open building of its
    community has its address."""
    return _reopen_record("building", building, actor=actor, **reopening)


@transaction.atomic
def room_close(*, actor: User, room: Room | str, **closing: Unpack[Closing]) -> Room:
    """Close a room: refused while households live in it."""
    return _close_record("room", room, actor=actor, **closing)


@transaction.atomic
def room_reopen(*, actor: User, room: Room | str, **reopening: Unpack[Reopening]) -> Room:
    """Reopen a room closed in error: refused (409) while its building is closed or while
    another open room of the building has its (unit, number)."""
    return _reopen_record("room", room, actor=actor, **reopening)


@transaction.atomic
def household_close(
    *, actor: User, household: Household | str, **closing: Unpack[Closing]
) -> Household:
    """Close a household: refused while it has open members."""
    return _close_record("household", household, actor=actor, **closing)


@transaction.atomic
def household_reopen(
    *, actor: User, household: Household | str, **reopening: Unpack[Reopening]
) -> Household:
    """Reopen a household closed in error (its members come back one by one with
    ``person_reopen`` or ``person_move``): refused (409) while its room is closed."""
    return _reopen_record("household", household, actor=actor, **reopening)


@transaction.atomic
def person_close(*, actor: User, person: Person | str, **closing: Unpack[PersonClosing]) -> Person:
    """Close a person's record (moved out, deceased, duplicate…), with a reason. ``on`` is
    the day they moved out or died (default today). A head leaves the household's head."""
    return _close_record("person", person, actor=actor, **closing)


@transaction.atomic
def person_reopen(*, actor: User, person: Person | str, **reopening: Unpack[Reopening]) -> Person:
    """Reopen a person's record closed in error; the moved-out or death date set by the
    closing is cleared. Refused (409) while their household (or its room or building) is
    closed: reopen the household first. A head of a household that has no head again heads
    it; one whose household has another head meanwhile is no longer "head"."""
    return _reopen_record("person", person, actor=actor, **reopening)


@transaction.atomic
def organisation_close(
    *, actor: User, organisation: Organisation | str, **closing: Unpack[Closing]
) -> Organisation:
    return _close_record("organisation", organisation, actor=actor, **closing)


@transaction.atomic
def organisation_reopen(
    *, actor: User, organisation: Organisation | str, **reopening: Unpack[Reopening]
) -> Organisation:
    """Reopen an organisation closed in error. Its credit code stays its own while it is
    closed (credit codes are unique among all organisations), so nothing can have taken it."""
    return _reopen_record("organisation", organisation, actor=actor, **reopening)


@transaction.atomic
def component_close(
    *, actor: User, component: Component | str, **closing: Unpack[Closing]
) -> Component:
    """Close a component (supervisors too)."""
    return _close_record("component", component, actor=actor, **closing)


@transaction.atomic
def component_reopen(
    *, actor: User, component: Component | str, **reopening: Unpack[Reopening]
) -> Component:
    """Reopen a component closed in error (supervisors too). Its code stays its own while it
    is closed (component codes are unique among all components)."""
    return _reopen_record("component", component, actor=actor, **reopening)


# --- the rules of each kind ---------------------------------------------------------------------


def _open_count(qs: QuerySet[Any]) -> int:
    return int(qs.filter(closed_at__isnull=True).count())


def _building_clash(building: Building) -> None:
    p = Problems()
    _check_address(p, building, exclude_pk=building.pk)
    p.check()


def _room_container(room: Room) -> Building | None:
    return Building.objects.filter(pk=room.building_id).first()


def _household_container(household: Household) -> Room | None:
    if household.room_id is None:
        return None
    return Room.objects.filter(pk=household.room_id).first()


def _person_container(person: Person) -> Household | None:
    return _household_of(person)


def _person_closing(
    person: Person, *, code: str, day: date, actor: Any, now: datetime, note: str
) -> dict[str, Any]:
    """A person leaves the household's head; the day is that of moving out or death."""
    _leave_household(person, actor=actor, now=now, reason=note)
    if code == ClosedReason.MOVED_OUT:
        return {"moved_out_on": day}
    if code == ClosedReason.DECEASED:
        return {"deceased_on": day}
    return {}


def _person_reopening(person: Person) -> dict[str, Any]:
    """The day closing set is cleared; a head whose household has another open head now is
    a head no more."""
    columns: dict[str, Any] = {}
    if person.closed_reason == ClosedReason.MOVED_OUT:
        columns["moved_out_on"] = None
    elif person.closed_reason == ClosedReason.DECEASED:
        columns["deceased_on"] = None
    if person.relation == Relation.HEAD:
        p = Problems()
        _head_taken(p, _household_of(person), Relation.HEAD, person.pk)
        if p:
            columns["relation"] = ""
    return columns


def _person_reopened(person: Person, *, actor: Any, now: datetime, note: str) -> None:
    _make_head_if_none(_household_of(person, lock=True), person, actor=actor, now=now)


KINDS: dict[str, RecordKind] = {
    kind.name: kind
    for kind in (
        RecordKind(
            "building",
            Building,
            children=lambda building: Room.objects.filter(building=building),
            children_refusal=gettext_lazy(
                "the building still has %(count)s open rooms: close or move them first"
            ),
            children_key="rooms",
            clash=_building_clash,
        ),
        RecordKind(
            "room",
            Room,
            children=lambda room: Household.objects.filter(room=room),
            children_refusal=gettext_lazy(
                "%(count)s households still live in this room: move or close them first"
            ),
            children_key="households",
            container=_room_container,
            clash=_check_room_unique,
        ),
        RecordKind(
            "household",
            Household,
            children=lambda household: Person.objects.filter(household=household),
            children_refusal=gettext_lazy(
                "the household still has %(count)s members: move or close them first"
            ),
            children_key="members",
            container=_household_container,
        ),
        RecordKind(
            "person",
            Person,
            container=_person_container,
            dated=True,
            closing=_person_closing,
            reopening=_person_reopening,
            reopened=_person_reopened,
        ),
        RecordKind("organisation", Organisation),
        RecordKind("component", Component, roles=COMPONENT_EDIT_ROLES),
    )
}
KIND_OF: dict[type[RegistryRecord], RecordKind] = {kind.model: kind for kind in KINDS.values()}
