"""Every write to a case (DESIGN.md rules 1, 3, 4, 7).

``case_report`` creates a case; ``case_act`` takes any action of the workflow table. Both run in
one transaction, append exactly one timeline event per transition, and create the in-app
notifications in the same transaction. A stale ``version`` answers 409 and changes nothing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from gridgov.accounts.models import Role, Unit, User
from gridgov.accounts.selectors import user_role_names
from gridgov.core.errors import Conflict, DomainError, NotFound, PermissionDenied
from gridgov.core.inserts import PreparedInsert, insert_together, prepare_insert
from gridgov.core.worktime import local_zone
from gridgov.geo.crs import to_wgs84
from gridgov.geo.index import grid_index
from gridgov.geo.models import Region

from . import notices
from .cache import catalogue
from .deadlines import Clock, clock_effect, extend_clock, parse_limit, start_clock
from .models import Case, CaseEvent, CasePhoto, CaseSequence, Category, Datatype, Source, Urgency
from .permissions import GUARDS, LEVELS, acting_role
from .routing import suggest_unit
from .sweeper import escalation_due

if TYPE_CHECKING:
    from gridgov.core.photos import StoredPhoto

from .workflow import (
    ASSISTING,
    CATEGORY,
    LEAD,
    NOTE,
    PHOTOS,
    RATING,
    REASON,
    REPORT,
    SPAN,
    TABLE,
    TARGET,
    TERMINAL,
    URGENCY,
    State,
    Step,
    Transition,
)

MAX_DESCRIPTION = 4000
MAX_NOTE = 2000
MAX_PHOTOS = 9
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# --- input checks -----------------------------------------------------------------------------


_TEXT_LABELS = {
    "description": gettext_lazy("description"),
    "address": gettext_lazy("address"),
    "reporter_name": gettext_lazy("reporter's name"),
    "reporter_phone": gettext_lazy("reporter's phone"),
    "note": gettext_lazy("note"),
    "reason": gettext_lazy("reason"),
}


def clean_text(value: Any, *, field: str, limit: int, required: bool = False) -> str:
    """Trimmed text without control characters; DomainError 422 naming ``field`` otherwise
    (``detail.field`` is the input's code, the message names it in words)."""
    code = field
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise DomainError(
            _("%(field)s must be text") % {"field": _text_label(code)},
            status=422,
            detail={"field": code},
        )
    text = value.strip()
    if _CONTROL.search(text):
        raise DomainError(
            _("%(field)s contains control characters (such as NUL); remove them")
            % {"field": _text_label(code)},
            status=422,
            detail={"field": code},
        )
    if required and not text:
        raise DomainError(
            _("%(field)s is required") % {"field": _text_label(code)},
            status=422,
            detail={"field": code},
        )
    if len(text) > limit:
        raise DomainError(
            _("%(field)s is %(length)s characters long; the limit is %(limit)s")
            % {"field": _text_label(code), "length": f"{len(text):,}", "limit": f"{limit:,}"},
            status=422,
            detail={"field": code},
        )
    return text


def _text_label(code: str) -> str:
    """The field in words, translated (only an error needs it)."""
    return str(_TEXT_LABELS.get(code, code))


def check_point(lat: Any, lon: Any) -> tuple[float, float]:
    try:
        flat, flon = float(lat), float(lon)
    except (TypeError, ValueError, OverflowError):
        raise DomainError(_("lat and lon must be numbers"), status=422) from None
    if not (math.isfinite(flat) and math.isfinite(flon)):
        raise DomainError(_("lat and lon must be finite numbers"), status=422)
    if not -90 <= flat <= 90:
        raise DomainError(
            _("lat %(lat)s is out of range: latitude lies between -90 and 90") % {"lat": lat},
            status=422,
        )
    if not -180 <= flon <= 180:
        raise DomainError(
            _("lon %(lon)s is out of range: longitude lies between -180 and 180") % {"lon": lon},
            status=422,
        )
    return flat, flon


def locate_grid(lat: float, lon: float) -> Region:
    """The grid in force at a WGS-84 point; 422 naming the nearest grid when there is none."""
    loaded = grid_index()
    code = loaded.locate(lon, lat)
    if code is None:
        nearest, distance = loaded.nearest(lon, lat)
        if nearest is None:
            raise DomainError(_("no grids are defined yet"), status=422)
        raise DomainError(
            _(
                "the location (lat %(lat)s, lon %(lon)s) lies in no grid; the nearest grid is "
                "%(code)s, %(distance)s m away"
            )
            % {
                "lat": f"{lat:.6f}",
                "lon": f"{lon:.6f}",
                "code": nearest,
                "distance": f"{distance:,.0f}",
            },
            status=422,
            detail={"nearest": nearest, "distance_m": round(distance, 1)},
        )
    grid = _grid_by_code(code)
    if grid is None:  # the index is a moment behind a deletion
        raise DomainError(_("the grid at this location was just removed; try again"), status=409)
    return grid


#: What a report reads of its grid (the rest, such as the polygon, loads if ever asked for).
_GRID_FIELDS = ("id", "code", "name", "level", "parent_id")
_grid_sql: dict[str, str] = {}  # database alias → the statement


def _grid_by_code(code: str) -> Region | None:
    """The grid with ``code``, its few columns a report needs, in one statement built once
    (every report asks it; the ORM's compile cost more than the query)."""
    sql = _grid_sql.get(connection.alias)
    if sql is None:
        quote = connection.ops.quote_name
        column = {f.attname: str(f.column) for f in Region._meta.concrete_fields}
        columns = ", ".join(quote(column[n]) for n in _GRID_FIELDS)
        table = quote(Region._meta.db_table)
        sql = _grid_sql[connection.alias] = f"SELECT {columns} FROM {table} WHERE code = %s"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [code])
        row = cursor.fetchone()
    return Region.from_db(connection.alias, _GRID_FIELDS, row) if row is not None else None


def clean_attributes(category: Category, values: dict[str, Any] | None) -> dict[str, Any]:
    """Check ``values`` against the category's Open311 attributes; 422 naming each problem."""
    values = dict(values or {})
    problems: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    attributes = list(category.attributes.all())
    known = {a.code for a in attributes}
    for code in values:
        if code not in known:
            problems[str(code)[:40]] = _("%(category)s has no attribute %(code)s") % {
                "category": category.name,
                "code": str(code)[:40],
            }
    for a in attributes:
        raw = values.get(a.code)
        empty = raw is None or raw == "" or raw == []
        if empty:
            if a.required and a.variable:
                problems[a.code] = _("%(question)s is required") % {"question": a.description}
            continue
        try:
            cleaned[a.code] = _attribute_value(a.datatype, raw, a.value_keys())
        except ValueError as exc:
            problems[a.code] = f"{a.description}: {exc}"
    if problems:
        raise DomainError(
            _("invalid attributes: %(problems)s") % {"problems": "; ".join(problems.values())},
            status=422,
            detail={"attributes": problems},
        )
    return cleaned


def _attribute_value(datatype: str, raw: Any, keys: list[str]) -> Any:
    if datatype in (Datatype.STRING, Datatype.TEXT):
        limit = 200 if datatype == Datatype.STRING else MAX_NOTE
        if not isinstance(raw, str | int | float) or isinstance(raw, bool):
            raise ValueError(_("must be text"))
        text = str(raw).strip()
        if _CONTROL.search(text):
            raise ValueError(_("contains control characters"))
        if len(text) > limit:
            raise ValueError(_("longer than %(limit)s characters") % {"limit": limit})
        return text
    if datatype == Datatype.NUMBER:
        try:
            number = float(raw)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(_("must be a number")) from None
        if isinstance(raw, bool) or not math.isfinite(number):
            raise ValueError(_("must be a finite number"))
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if datatype == Datatype.DATETIME:
        parsed = parse_datetime(str(raw)) if isinstance(raw, str) else None
        if parsed is None:
            raise ValueError(_("must be a date and time such as 2026-11-22T09:30"))
        if timezone.is_naive(parsed):
            parsed = parsed.replace(tzinfo=local_zone())
        return parsed.isoformat()
    if datatype == Datatype.SINGLEVALUELIST:
        if str(raw) not in keys:
            raise ValueError(_("must be one of %(keys)s") % {"keys": ", ".join(keys)})
        return str(raw)
    if datatype == Datatype.MULTIVALUELIST:
        items = raw if isinstance(raw, list) else [raw]
        chosen = [str(v) for v in items]
        wrong = [v for v in chosen if v not in keys]
        if wrong:
            raise ValueError(
                _("%(wrong)s not among %(keys)s")
                % {"wrong": ", ".join(wrong[:5]), "keys": ", ".join(keys)}
            )
        return sorted(set(chosen), key=chosen.index)
    raise ValueError(_("unknown datatype"))


def active_category(category: Category | str | None, *, scheme: str | None = None) -> Category:
    if isinstance(category, Category):
        found = category
    else:
        key = str(category or "")
        if key.count(":") == 1:
            scheme, key = key.split(":")
        matches = catalogue().category(key, scheme) if key else []
        if not matches:
            raise DomainError(
                _("unknown category %(code)s") % {"code": key[:20] or "—"},
                status=422,
                detail={"field": "category"},
            )
        if len(matches) > 1:
            raise DomainError(
                _("category code %(code)s exists in several schemes: write scheme:code")
                % {"code": key},
                status=422,
                detail={"field": "category"},
            )
        found = matches[0]
    if not found.is_active:
        raise DomainError(
            _("category %(code)s is no longer in use") % {"code": found.code}, status=422
        )
    return found


# --- numbers ----------------------------------------------------------------------------------


def next_case_number(district_code: str, at: datetime) -> str:
    """``320113-20261122-00042``: district, local date, a sequence unique under concurrency.

    One ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` (SQLite ≥ 3.35 and PostgreSQL) inside
    the caller's transaction: concurrent reports serialise on the sequence row.
    """
    return _next_number(district_code, at)


def _next_number(district_code: str, at: datetime, *, prefix: str = "", source: str = "") -> str:
    day = timezone.localtime(at, local_zone()).strftime("%Y%m%d")
    key = f"{district_code}-{day}"
    table = connection.ops.quote_name(CaseSequence._meta.db_table)
    # a model's own table and this module's constant SQL; the key is a parameter
    values = f"SELECT %s, 1 FROM {source}" if source else "VALUES (%s, 1)"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(
            f"{prefix}INSERT INTO {table} (key, last) {values} "
            "ON CONFLICT (key) DO UPDATE SET last = "
            f"{table}.last + 1 RETURNING last",
            [key],
        )
        (last,) = cursor.fetchone()
    return f"{key}-{last:05d}"


# --- report -----------------------------------------------------------------------------------

_ROLE_SOURCE = [
    (Role.GRID_WORKER, Source.GRID_WORKER),
    (Role.GRID_LEADER, Source.GRID_WORKER),
    (Role.SUPERVISOR, Source.SUPERVISOR),
    (Role.INTAKE_OPERATOR, Source.HOTLINE),
    (Role.SHIFT_LEADER, Source.HOTLINE),
    (Role.RESIDENT, Source.RESIDENT),
]

#: Which roles may report through each channel.
SOURCE_ROLES: dict[str, set[str]] = {
    Source.GRID_WORKER: {Role.GRID_WORKER, Role.GRID_LEADER},
    Source.SUPERVISOR: {Role.SUPERVISOR},
    Source.RESIDENT: {Role.RESIDENT},
    Source.HOTLINE: {Role.INTAKE_OPERATOR, Role.SHIFT_LEADER},
    Source.API: {r for r in Role if r != Role.RESIDENT},
    Source.SENSOR: {r for r in Role if r != Role.RESIDENT},
}


def report_source(actor: User, source: str | None) -> str:
    roles = set(user_role_names(actor))
    if not roles:
        raise PermissionDenied(_("your account has no role: ask an administrator for one"))
    if source:
        if source not in SOURCE_ROLES:
            raise DomainError(_("unknown source %(source)s") % {"source": source}, status=422)
        if not roles & SOURCE_ROLES[source]:
            raise PermissionDenied(
                _("your roles may not report through the %(source)s channel")
                % {"source": Source(source).label}
            )
        return source
    for role, src in _ROLE_SOURCE:
        if role in roles:
            return src
    return Source.API


_URGENCIES = frozenset(Urgency.values)


@dataclass(frozen=True)
class ReportPlan:
    """Everything a report will write, checked and looked up: ``report_plan`` only reads."""

    actor: User
    source: str
    role: str
    category: Category
    description: str
    address: str
    reporter_name: str
    reporter_phone: str
    urgency: str
    lat: float
    lon: float
    grid: Region
    attributes: dict[str, Any]
    clock: Clock
    escalate_at: datetime | None
    suggested_unit: Unit | None
    photos: Sequence[StoredPhoto]
    at: datetime

    @property
    def emergency(self) -> bool:
        return self.urgency != Urgency.NORMAL


def report_plan(
    *,
    actor: User,
    category: Category | str,
    description: str,
    lat: float,
    lon: float,
    crs: str = "wgs84",
    address: str = "",
    urgency: str = Urgency.NORMAL,
    attributes: dict[str, Any] | None = None,
    photos: Sequence[StoredPhoto] = (),
    source: str | None = None,
    reporter_name: str = "",
    reporter_phone: str = "",
    at: datetime | None = None,
) -> ReportPlan:
    """Check a report and look up what it needs (category, grid, unit, clock): reads only, so
    callers can run it before their write transaction (``case_report`` runs both steps)."""
    now = at or timezone.now()
    src = report_source(actor, source)
    cat = active_category(category)
    text = clean_text(description, field="description", limit=MAX_DESCRIPTION, required=True)
    addr = clean_text(address, field="address", limit=200)
    name = clean_text(reporter_name, field="reporter_name", limit=60)
    phone = clean_text(reporter_phone, field="reporter_phone", limit=30)
    if urgency not in _URGENCIES:
        raise DomainError(_("unknown urgency %(value)s") % {"value": str(urgency)[:20]}, status=422)
    if urgency not in (cat.urgency_levels or [Urgency.NORMAL]):
        raise DomainError(
            _("%(category)s does not take urgency %(urgency)s")
            % {"category": cat.name, "urgency": Urgency(urgency).label},
            status=422,
        )
    if len(photos) > MAX_PHOTOS:
        raise DomainError(
            _("at most %(count)s photos per report") % {"count": MAX_PHOTOS}, status=422
        )
    flat, flon = check_point(lat, lon)
    if str(crs).lower() not in ("wgs84", "wgs-84", "epsg:4326", "gcj02", "gcj-02"):
        raise DomainError(
            _("unknown coordinate system %(crs)s: use wgs84 or gcj02") % {"crs": str(crs)[:20]},
            status=422,
            detail={"field": "crs"},
        )
    wlon, wlat = to_wgs84(flon, flat, crs)
    grid = locate_grid(wlat, wlon)
    values = clean_attributes(cat, attributes)
    clock = start_clock(cat, Step.REGISTER, now, emergency=urgency != Urgency.NORMAL)
    return ReportPlan(
        actor=actor,
        source=src,
        role=_reporting_role(actor, src),
        category=cat,
        description=text,
        address=addr,
        reporter_name=name or actor.label,
        reporter_phone=phone,
        urgency=urgency,
        lat=wlat,
        lon=wlon,
        grid=grid,
        attributes=values,
        clock=clock,
        escalate_at=escalation_due(clock.step, clock.started_at),
        suggested_unit=suggest_unit(cat, grid.code),
        photos=tuple(photos),
        at=now,
    )


@dataclass
class ReportRows:
    """A report's rows: built in memory by ``report_build``, inserted by ``report_save``."""

    case: Case
    event: CaseEvent
    photos: list[CasePhoto]
    #: the case's and the event's INSERTs, their values prepared ahead (``prepare``)
    inserts: tuple[PreparedInsert, PreparedInsert] | None = None

    def prepare(self) -> None:
        """Prepare the INSERTs of the case and its event now, so that ``report_save`` only runs
        them: a caller does this before its write transaction (on SQLite it holds the
        database's only write lock)."""
        self.inserts = (prepare_insert(self.case), prepare_insert(self.event))

    def set_number(self, number: str) -> None:
        """The case's number, taken after the rows were built (and prepared)."""
        if self.inserts is not None:
            self.inserts[0].set("number", number)
        self.case.number = number


def allocate_case_number(plan: ReportPlan) -> str | None:
    """On PostgreSQL, the report's number taken at once in a transaction of its own (a
    sequence, in effect); None on SQLite, where the caller takes it inside its write
    transaction (``take_case_number``).

    Callers that render their answer before writing (the API) take the number first on
    PostgreSQL, so the day's sequence row is locked for one statement and not until the
    report's commit; a report that then fails leaves a gap in the day's numbers, as a database
    sequence would. Outside an enclosing transaction this is one statement that also tells
    PostgreSQL not to wait for the disk at its commit: the case's own commit, later in the same
    log, makes it durable (and if the case never commits, nothing carries the number). On SQLite
    writers are serialised anyway: a transaction of its own would only add a second turn at the
    write lock per report."""
    if connection.vendor != "postgresql":
        return None
    if transaction.get_connection().in_atomic_block:
        return take_case_number(plan)
    return _next_number(
        plan.grid.code[:6],
        plan.at,
        prefix="WITH quick AS (SELECT set_config('synchronous_commit', 'off', true)) ",
        source="quick",
    )


def take_case_number(plan: ReportPlan) -> str:
    """The report's number, in the caller's transaction."""
    return next_case_number(plan.grid.code[:6], plan.at)


def report_build(plan: ReportPlan, number: str) -> ReportRows:
    """The case, its first event and its photos as unsaved instances (public ids assigned)."""
    case = Case(
        number=number,
        state=State.REPORTED,
        source=plan.source,
        reporter=plan.actor,
        reporter_name=plan.reporter_name,
        reporter_phone=plan.reporter_phone,
        region_code=plan.grid.code,
        street_code=plan.grid.code[:9],  # as Case.save derives them (report_save inserts)
        community_code=plan.grid.code[:12],
        grid=plan.grid,
        lat=plan.lat,
        lon=plan.lon,
        address=plan.address,
        category=plan.category,
        attributes=plan.attributes,
        description=plan.description,
        urgency=plan.urgency,
        emergency=plan.emergency,
        suggested_unit=plan.suggested_unit,
        reported_at=plan.at,
        **plan.clock.columns(),
        escalate_at=plan.escalate_at,
    )
    params: dict[str, Any] = {
        "source": plan.source,
        "urgency": plan.urgency,
        "category": plan.category.code,
    }
    if plan.photos:
        params["photos"] = len(plan.photos)
    event = CaseEvent(
        case=case,
        version=1,
        at=plan.at,
        actor=plan.actor,
        actor_role=plan.role,
        action=REPORT,
        from_state="",
        to_state=State.REPORTED,
        note="",
        params=params,
    )
    photos = [
        CasePhoto(case=case, event=event, uploaded_by=plan.actor, **CasePhoto.fields_of(p))
        for p in plan.photos
    ]
    return ReportRows(case=case, event=event, photos=photos)


def report_saves_alone(rows: ReportRows) -> bool:
    """Whether ``report_save`` writes ``rows`` in one statement that commits by itself: on
    PostgreSQL, outside a transaction, when the report has no photos and no one to notify
    (``notices.after_report`` tells people of urgent reports only)."""
    return (
        connection.vendor == "postgresql"
        and not transaction.get_connection().in_atomic_block
        and not rows.photos
        and not rows.case.emergency
    )


def report_save(rows: ReportRows, *, first: PreparedInsert | None = None) -> bool:
    """Insert a built report — the case, its first event, its photos — and tell who must know,
    all or nothing (with the caller's transaction, if any); answers True.

    ``first``: a row inserted before the case (the idempotency key's record); if its unique key
    keeps it out, nothing is written and this answers False. The case and its event are
    inserted with statements built once per process (``core.inserts``: the ORM's compile of a
    50-column INSERT cost more than running it), their values prepared ahead when the caller
    did (``ReportRows.prepare``); ``report_build`` set what ``Case.save`` would derive. When
    ``report_saves_alone``, ``first``, the case and its event are one statement (PostgreSQL:
    one round trip instead of five); otherwise they run in a transaction."""
    case_insert, event_insert = rows.inserts or (
        prepare_insert(rows.case),
        prepare_insert(rows.event),
    )
    chain = [i for i in (first, case_insert, event_insert) if i is not None]
    if report_saves_alone(rows):
        return insert_together(*chain) is not None
    with transaction.atomic(savepoint=False):
        if insert_together(*chain) is None:
            return False
        if rows.photos:
            CasePhoto.objects.bulk_create(rows.photos)
        notices.after_report(rows.case)
    return True


@transaction.atomic
def report_write(plan: ReportPlan) -> ReportRows:
    """Write a planned report: its number, the case, its first timeline event and photos."""
    rows = report_build(plan, next_case_number(plan.grid.code[:6], plan.at))
    report_save(rows)
    return rows


def case_report(**report: Any) -> Case:
    """Report a problem: the case gets its number, grid, suggested unit and first clock.

    Takes ``report_plan``'s keywords; plans and writes in one go (one transaction when the
    caller has one open)."""
    return report_write(report_plan(**report)).case


def _reporting_role(actor: User, source: str) -> str:
    roles = set(user_role_names(actor)) & SOURCE_ROLES.get(source, set())
    return sorted(roles)[0] if roles else ""


def _attach_photos(
    case: Case, event: CaseEvent, photos: Sequence[StoredPhoto], actor: User
) -> list[CasePhoto]:
    rows = [
        CasePhoto(case=case, event=event, uploaded_by=actor, **CasePhoto.fields_of(p))
        for p in photos
    ]
    if rows:
        CasePhoto.objects.bulk_create(rows)
        event.params = {**event.params, "photos": len(rows)}
        event.save(update_fields=["params"])
    return rows


# --- transitions ------------------------------------------------------------------------------


@dataclass
class Inputs:
    """What a caller may pass to ``case_act``; the table says which are required."""

    note: str = ""
    reason: str = ""
    photos: Sequence[StoredPhoto] = ()
    category: Category | str | None = None
    urgency: str | None = None
    lead_unit: Unit | str | None = None
    assisting_units: Iterable[Unit | str] = ()
    span: str = ""
    target: Case | str | None = None
    rating: int | None = None


@dataclass
class Change:
    """What an action's effect adds: case columns, event parameters, follow-up work."""

    columns: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    clock: Clock | None = None
    assisting: list[Unit] | None = None
    after: list[Callable[[Case, CaseEvent], None]] = field(default_factory=list)


def _given(inputs: Inputs, name: str) -> bool:
    value = getattr(inputs, name)
    if name == ASSISTING:
        return bool(list(value))
    return value not in (None, "", (), [])


def _check_inputs(t: Transition, inputs: Inputs) -> None:
    unexpected = [
        name
        for name in (NOTE, REASON, PHOTOS, CATEGORY, URGENCY, LEAD, ASSISTING, SPAN, TARGET, RATING)
        if _given(inputs, name) and not t.allows_input(name)
    ]
    if unexpected:
        raise DomainError(
            _("%(action)s does not take %(inputs)s")
            % {"action": t.label, "inputs": ", ".join(unexpected)},
            status=422,
            detail={"unexpected": unexpected},
        )
    missing = [name for name in t.required if not _given(inputs, name)]
    if missing:
        raise DomainError(
            _("%(action)s needs %(inputs)s") % {"action": t.label, "inputs": ", ".join(missing)},
            status=422,
            detail={"missing": missing},
        )


def _unit(value: Unit | str, field: str) -> Unit:
    """The active unit named by code or uuid; 422 naming the input ``field`` otherwise."""
    label = {LEAD: _("lead unit"), ASSISTING: _("assisting units")}.get(field, field)
    unit = value if isinstance(value, Unit) else Unit.objects.filter(code=str(value)).first()
    if unit is None:
        unit = Unit.objects.filter(uuid=str(value)).first() if _is_uuid(str(value)) else None
    if unit is None or not unit.is_active:
        raise DomainError(
            _("%(field)s: no active unit %(unit)s") % {"field": label, "unit": str(value)[:40]},
            status=422,
            detail={"field": field},
        )
    return unit


def _is_uuid(text: str) -> bool:
    import uuid

    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _load_for_update(case: Case | str) -> Case:
    number = case.number if isinstance(case, Case) else str(case)
    found = (
        Case.objects.select_for_update(of=("self",))
        .select_related("category", "category__parent", "lead_unit")
        .filter(number=number)
        .first()
    )
    if found is None:
        raise NotFound(_("no case %(number)s") % {"number": number[:30]})
    return found


def _lock_in_order(*cases: Case | str) -> None:
    """Lock several cases in primary-key order, so two transactions locking the same pair
    (A merged into B while B is merged into A) queue instead of deadlocking."""
    numbers = [c.number if isinstance(c, Case) else str(c) for c in cases]
    list(
        Case.objects.select_for_update(of=("self",))
        .filter(number__in=numbers)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


@transaction.atomic
def case_act(
    *,
    case: Case | str,
    actor: User,
    action: str,
    version: int,
    inputs: Inputs | None = None,
    at: datetime | None = None,
) -> Case:
    """Take ``action`` on ``case`` as ``actor``, who saw ``version`` of it."""
    from .selectors import case_visible

    inputs = inputs or Inputs()
    inputs.assisting_units = list(inputs.assisting_units)
    now = at or timezone.now()
    t = TABLE.get(action)
    if t is None:
        raise DomainError(_("unknown action %(action)s") % {"action": str(action)[:40]}, status=422)
    if action == "merge" and inputs.target is not None:
        _lock_in_order(case, inputs.target)
    current = _load_for_update(case)
    if not case_visible(current, actor):
        raise NotFound(_("no case %(number)s") % {"number": current.number})
    if version != current.version:
        raise Conflict(
            _(
                "case %(number)s has changed since you loaded it (your version %(yours)s, now "
                "%(now)s): reload and try again"
            )
            % {"number": current.number, "yours": version, "now": current.version},
            detail={"version": current.version, "state": current.state},
        )
    if current.state not in t.sources:
        raise Conflict(
            _("%(action)s is not possible while the case is %(state)s")
            % {"action": t.label, "state": current.get_state_display()},
            detail={"version": current.version, "state": current.state},
        )
    role = acting_role(current, actor, t)
    if role is None:
        raise PermissionDenied(
            _("you may not %(action)s this case") % {"action": str(t.label).lower()}
        )
    why_not = GUARDS[t.guard](current)
    if why_not:
        raise Conflict(str(why_not), detail={"version": current.version, "state": current.state})
    _check_inputs(t, inputs)
    note = clean_text(inputs.note, field="note", limit=MAX_NOTE)
    reason = clean_text(inputs.reason, field="reason", limit=MAX_NOTE)
    if len(inputs.photos) > MAX_PHOTOS:
        raise DomainError(_("at most %(count)s photos") % {"count": MAX_PHOTOS}, status=422)

    change = _EFFECTS.get(action, _no_effect)(current, actor, inputs, now)
    target_state = t.target or current.state
    emergency = change.columns.get("emergency", current.emergency)
    category = change.columns.get("category", current.category)
    clock = change.clock or clock_effect(t.clock, category, now, emergency=emergency)
    if (
        clock is None
        and current.step == Step.REGISTER
        and current.step_started_at is not None
        and (emergency != current.emergency or category != current.category)
    ):  # reclassified while the register clock runs: the same start, the new limit
        clock = start_clock(category, Step.REGISTER, current.step_started_at, emergency=emergency)
    columns: dict[str, Any] = {"state": target_state, **change.columns}
    if clock is not None:
        columns.update(clock.columns())
        columns["escalate_at"] = escalation_due(clock.step, clock.started_at)
    columns["version"] = version + 1
    columns["updated_at"] = now
    updated = Case.objects.filter(pk=current.pk, version=version).update(**columns)
    if updated != 1:  # another transaction got there first
        raise Conflict(
            _("case %(number)s has changed since you loaded it: reload and try again")
            % {"number": current.number},
            detail={"state": current.state},
        )
    if change.assisting is not None:
        current.assisting_units.set(change.assisting)
    event = CaseEvent.objects.create(
        case=current,
        version=version + 1,
        at=now,
        actor=actor,
        actor_role=role,
        action=action,
        from_state=current.state,
        to_state=target_state,
        note=reason or note,
        params=change.params,
    )
    _attach_photos(current, event, inputs.photos, actor)
    current.refresh_from_db()
    for follow_up in change.after:
        follow_up(current, event)
    notices.after_transition(current, event, t)
    return current


# --- effects: what each action does beyond state and clock ---------------------------------


def _no_effect(case: Case, actor: User, inputs: Inputs, now: datetime) -> Change:
    return Change()


def _reclassify(case: Case, actor: User, inputs: Inputs, now: datetime) -> Change:
    change = Change()
    if inputs.category is not None:
        cat = active_category(inputs.category)
        if cat.pk != case.category_id:
            change.columns["category"] = cat
            change.columns["suggested_unit"] = suggest_unit(cat, case.region_code)
            change.params["category"] = {"from": case.category.code, "to": cat.code}
    if inputs.urgency:
        if inputs.urgency not in Urgency.values:
            raise DomainError(
                _("unknown urgency %(value)s") % {"value": str(inputs.urgency)[:20]}, status=422
            )
        cat = change.columns.get("category", case.category)
        if inputs.urgency not in (cat.urgency_levels or [Urgency.NORMAL]):
            raise DomainError(
                _("%(category)s does not take urgency %(urgency)s")
                % {"category": cat.name, "urgency": Urgency(inputs.urgency).label},
                status=422,
                detail={"field": "urgency"},
            )
        if inputs.urgency != case.urgency:
            change.columns["urgency"] = inputs.urgency
            change.columns["emergency"] = inputs.urgency != Urgency.NORMAL
            change.params["urgency"] = {"from": case.urgency, "to": inputs.urgency}
    return change


def _register(case: Case, actor: User, inputs: Inputs, now: datetime) -> Change:
    change = _reclassify(case, actor, inputs, now)
    change.columns["registered_at"] = now
    return change


def _dispatch(case: Case, actor: User, inputs: Inputs, now: datetime) -> Change:
    change = Change()
    lead = _unit(inputs.lead_unit or "", LEAD)
    assisting = [_unit(u, ASSISTING) for u in inputs.assisting_units]
    assisting = [u for i, u in enumerate(assisting) if u.pk != lead.pk and u not in assisting[:i]]
    change.columns.update(lead_unit=lead, dispatched_at=now)
    if case.registered_at is None:
        change.columns["registered_at"] = now
    change.assisting = assisting
    change.params.update(
        lead_unit={"code": lead.code, "name": lead.name},
        assisting_units=[{"code": u.code, "name": u.name} for u in assisting],
    )
    if case.suggested_unit_id and case.suggested_unit_id != lead.pk:
        change.params["suggested_unit_overridden"] = True
    return change


def _urgent_dispatch(case: Case, actor: User, inputs: Inputs, now: datetime) -> Change:
    change = _reclassify(case, actor, Inputs(category=inputs.category), now)
    dispatched = _dispatch(case, actor, inputs, now)
    change.columns.update(dispatched.columns, emergency=True, registered_at=now)
    change.params.update(dispatched.params, emergency=True)
    change.assisting = dispatched.assisting
    return change


def _send_back(case: Case, actor: User, inputs: Inputs, now: datetime) -> Change:
    unit = case.lead_unit
    return Change(
        columns={"send_back_count": case.send_back_count + 1, "lead_unit": None, "pending": ""},
        params={"unit": {"code": unit.code, "name": unit.name} if unit else None},
        assisting=[],
    )


def _request_extension(case: Case, actor: User, inputs: Inputs, now: datetime) -> Change:
    try:
        parse_limit(inputs.span)
    except ValidationError as exc:
        raise DomainError(
            _("extension: %(problem)s") % {"problem": " ".join(exc.messages)},
            status=422,
            detail={"field": "span"},
        ) from None
    return Change(
        columns={"pending": "extension", "pending_params": {"span": inputs.span.strip()}},
        params={"span": inputs.span.strip()},
    )


def _approve_extension(case: Case, actor: User, inputs: Inputs, now: datetime) -> Change:
    span = str(case.pending_params.get("span", ""))
    columns: dict[str, Any] = {
        "pending": "",
        "pending_params": {},
        "extension_count": case.extension_count + 1,
        **extend_clock(case, span),
    }
    return Change(columns=columns, params={"span": span, "due_at": _iso(columns.get("due_at"))})


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None


def _clear_pending(case: Case, actor: User, inputs: Inputs, now: datetime) -> Change:
    return Change(columns={"pending": "", "pending_params": {}})


def _request_suspension(case: Case, actor: User, inputs: Inputs, now: datetime) -> Change:
    return Change(columns={"pending": "suspension", "pending_params": {}})


def _close(case: Case, actor: User, inputs: Inputs, now: datetime) -> Change:
    return Change(columns={"closed_at": now}, params={"on_time": _on_time(case, now)})


def _on_time(case: Case, now: datetime) -> bool | None:
    return None if case.due_at is None else now <= case.due_at


def _check_fail(case: Case, actor: User, inputs: Inputs, now: datetime) -> Change:
    return Change(columns={"rework_count": case.rework_count + 1})


def _reopen(case: Case, actor: User, inputs: Inputs, now: datetime) -> Change:
    unit = case.lead_unit
    return Change(
        columns={
            "reopen_count": case.reopen_count + 1,
            "closed_at": None,
            "rating": None,
            "lead_unit": None,
        },
        params={"unit": {"code": unit.code, "name": unit.name} if unit else None},
        assisting=[],
    )


def _evaluate(case: Case, actor: User, inputs: Inputs, now: datetime) -> Change:
    rating = inputs.rating
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise DomainError(_("rating must be a whole number from 1 to 5"), status=422)
    return Change(columns={"rating": rating}, params={"rating": rating})


def _level_change(step: int) -> Callable[[Case, User, Inputs, datetime], Change]:
    def effect(case: Case, actor: User, inputs: Inputs, now: datetime) -> Change:
        index = LEVELS.index(case.level) + step
        new = LEVELS[max(0, min(len(LEVELS) - 1, index))]
        return Change(columns={"level": new}, params={"level": {"from": case.level, "to": new}})

    return effect


def _supervise(case: Case, actor: User, inputs: Inputs, now: datetime) -> Change:
    return Change(columns={"supervised": True})


def _merge(case: Case, actor: User, inputs: Inputs, now: datetime) -> Change:
    from .selectors import case_visible

    target_ref = inputs.target
    number = target_ref.number if isinstance(target_ref, Case) else str(target_ref or "")
    target = Case.objects.select_for_update(of=("self",)).filter(number=number).first()
    if target is None or not case_visible(target, actor):
        raise DomainError(
            _("merge: no case %(number)s") % {"number": number[:30]},
            status=422,
            detail={"field": "target"},
        )
    if target.pk == case.pk:
        raise DomainError(_("merge: a case cannot be merged into itself"), status=422)
    if target.state in TERMINAL:
        raise DomainError(
            _("merge: case %(number)s is %(state)s; merge only into an open case")
            % {"number": target.number, "state": target.get_state_display()},
            status=422,
        )

    def record_on_target(merged: Case, event: CaseEvent) -> None:
        version = target.version
        if Case.objects.filter(pk=target.pk, version=version).update(version=version + 1) != 1:
            raise Conflict(_("case %(number)s changed meanwhile") % {"number": target.number})
        CaseEvent.objects.create(
            case=target,
            version=version + 1,
            at=event.at,
            actor=event.actor,
            actor_role=event.actor_role,
            action="merged_in",
            from_state=target.state,
            to_state=target.state,
            note=event.note,
            params={"duplicate": merged.number},
        )
        notices.after_merge(merged, target)

    return Change(
        columns={"merged_into": target, "closed_at": now},
        params={"target": target.number},
        after=[record_on_target],
    )


_EFFECTS: dict[str, Callable[[Case, User, Inputs, datetime], Change]] = {
    "accept": _reclassify,
    "register": _register,
    "dispatch": _dispatch,
    "urgent_dispatch": _urgent_dispatch,
    "send_back": _send_back,
    "request_extension": _request_extension,
    "approve_extension": _approve_extension,
    "refuse_extension": _clear_pending,
    "request_suspension": _request_suspension,
    "approve_suspension": _clear_pending,
    "refuse_suspension": _clear_pending,
    "check_fail": _check_fail,
    "close": _close,
    "review_pass": _close,
    "reopen": _reopen,
    "evaluate": _evaluate,
    "escalate": _level_change(+1),
    "send_down": _level_change(-1),
    "supervise": _supervise,
    "merge": _merge,
}
