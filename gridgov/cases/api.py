"""Cases API: report, list, to-do, the case with its timeline, and every action of the table.

The same workflow table drives the API and the web pages: ``allowed_actions`` on a case lists
exactly the actions the caller may take now, with the inputs each one takes.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid4

from django.db import IntegrityError, transaction
from django.http import FileResponse, HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import File, Form, Query, Router, Schema, Status, UploadedFile
from pydantic import Field

from gridgov.accounts.models import Unit
from gridgov.accounts.selectors import current_user
from gridgov.api.responses import render
from gridgov.core.errors import Conflict, DomainError
from gridgov.core.idempotency import idempotent, write_alone, write_phase, write_transaction
from gridgov.core.input_guard import Number
from gridgov.core.masking import mask_phone
from gridgov.core.photos import StoredPhoto, photo_save

from . import selectors
from .actions import (
    Inputs,
    allocate_case_number,
    case_act,
    report_build,
    report_plan,
    report_save,
    report_saves_alone,
    take_case_number,
)
from .deadlines import light_of
from .models import Case, CaseEvent, CasePhoto, PhotoUpload, Source, Urgency
from .permissions import allowed_transitions
from .photos import case_photo_response
from .workflow import ACTION_LABELS, TRANSITIONS, State, Transition

router = Router()

MAX_PAGE = 200
#: Counting stops here: a list answers "10,000 or more" rather than scanning everything.
COUNT_CAP = 10_000


# --- schemas ----------------------------------------------------------------------------------


class Ref(Schema):
    code: str
    name: str


class CategoryRef(Schema):
    scheme: str
    code: str
    name: str


class ReportIn(Schema):
    category: str = Field(
        min_length=1, max_length=30, description="A category code, or scheme:code"
    )
    description: str = Field(min_length=1, max_length=4000)
    lat: Number
    lon: Number
    crs: str = Field("wgs84", description="wgs84 or gcj02")
    address: str = Field("", max_length=200)
    urgency: Urgency = Urgency.NORMAL
    attributes: dict[str, Any] = Field(default_factory=dict)
    photos: list[UUID] = Field(default_factory=list, max_length=9)
    source: Source | None = None
    reporter_name: str = Field("", max_length=60)
    reporter_phone: str = Field("", max_length=30)


class ActionIn(Schema):
    version: int = Field(ge=1, description="The case version you saw")
    note: str = Field("", max_length=2000)
    reason: str = Field("", max_length=2000)
    photos: list[UUID] = Field(default_factory=list, max_length=9)
    category: str | None = Field(None, max_length=30)
    urgency: Urgency | None = None
    lead_unit: str | None = Field(None, max_length=40, description="A unit code")
    assisting_units: list[str] = Field(default_factory=list, max_length=20)
    span: str = Field("", max_length=12, description="An extension: 30m, 4h, 1d …")
    target: str | None = Field(None, max_length=24, description="Merge into this case number")
    rating: int | None = Field(None, ge=1, le=5)


class ActionOut(Schema):
    action: str
    label: str
    required: list[str]
    optional: list[str]
    tone: str


class PhotoOut(Schema):
    id: UUID
    width: int
    height: int
    url: str
    thumbnail_url: str


class EventOut(Schema):
    version: int
    at: datetime
    actor: str | None
    actor_role: str
    action: str
    label: str
    from_state: str
    to_state: str
    note: str
    params: dict[str, Any]
    photos: list[PhotoOut]


class CaseRow(Schema):
    number: str
    version: int
    state: str
    state_label: str
    category: CategoryRef
    grid: Ref | None
    urgency: str
    emergency: bool
    source: str
    lead_unit: Ref | None
    step: str
    due_at: datetime | None
    light: str
    supervised: bool
    reported_at: datetime


class CaseOut(CaseRow):
    uuid: UUID
    description: str
    attributes: dict[str, Any]
    lat: float
    lon: float
    address: str
    level: str
    reporter_name: str
    reporter_phone: str
    suggested_unit: Ref | None
    assisting_units: list[Ref]
    step_started_at: datetime | None
    step_limit: str
    due_soon_at: datetime | None
    pending: str
    pending_params: dict[str, Any]
    rework_count: int
    send_back_count: int
    extension_count: int
    reopen_count: int
    merged_into: str | None
    rating: int | None
    registered_at: datetime | None
    dispatched_at: datetime | None
    closed_at: datetime | None
    photos: list[PhotoOut]
    allowed_actions: list[ActionOut]


class CaseDetail(CaseOut):
    timeline: list[EventOut]


class CaseList(Schema):
    count: int | None = Field(
        description="Exact when the results end on this page, or with with_count=true "
        "(up to 10,000: count_capped); else null"
    )
    count_capped: bool
    has_more: bool
    items: list[CaseRow]


class TodoOut(CaseList):
    counts: dict[str, int]


class UploadOut(Schema):
    id: UUID
    width: int
    height: int
    size: int
    gps: list[float] | None


class TransitionOut(Schema):
    action: str
    label: str
    sources: list[str]
    target: str | None
    who: list[str]
    required: list[str]
    optional: list[str]
    clock: str
    guard: str


class WorkflowOut(Schema):
    states: list[Ref]
    transitions: list[TransitionOut]


# --- rendering --------------------------------------------------------------------------------


def _ref(obj: Any) -> dict[str, str] | None:
    return {"code": obj.code, "name": obj.name} if obj is not None else None


def _photo(case: Case, p: CasePhoto) -> dict[str, Any]:
    base = f"/api/v1/cases/{case.number}/photos/{p.uuid}"
    return {
        "id": p.uuid,
        "width": p.width,
        "height": p.height,
        "url": base,
        "thumbnail_url": f"{base}/thumb",
    }


#: state → its label (lazy): what ``get_state_display()`` reads, without rebuilding the map
_STATE_LABELS = dict(Case._meta.get_field("state").flatchoices)


def case_row(case: Case, now: datetime) -> dict[str, Any]:
    return {
        "number": case.number,
        "version": case.version,
        "state": case.state,
        "state_label": str(_STATE_LABELS.get(case.state, case.state)),  # get_state_display()
        "category": {
            "scheme": case.category.scheme,
            "code": case.category.code,
            "name": case.category.name,
        },
        "grid": _ref(case.grid),
        "urgency": case.urgency,
        "emergency": case.emergency,
        "source": case.source,
        "lead_unit": _ref(case.lead_unit),
        "step": case.step,
        "due_at": case.due_at,
        "light": light_of(case.due_soon_at, case.due_at, now),
        "supervised": case.supervised,
        "reported_at": case.reported_at,
    }


def transition_out(t: Transition) -> dict[str, Any]:
    return {
        "action": t.action,
        "label": str(t.label),
        "required": list(t.required),
        "optional": list(t.optional),
        "tone": t.tone,
    }


def case_out(
    case: Case,
    user: Any,
    *,
    timeline: bool = False,
    known: tuple[list[CasePhoto], list[Unit], list[CaseEvent]] | None = None,
) -> dict[str, Any]:
    """The case for ``user``; ``known``: its photos, assisting units and events when the caller
    holds them all (a case it has just written), instead of loading them."""
    now = timezone.now()
    photos = known[0] if known else list(case.photos.all())
    assisting = known[1] if known else list(case.assisting_units.all())
    out = {
        **case_row(case, now),
        "uuid": case.uuid,
        "description": case.description,
        "attributes": case.attributes,
        "lat": case.lat,
        "lon": case.lon,
        "address": case.address,
        "level": case.level,
        "reporter_name": case.reporter_name,
        "reporter_phone": mask_phone(case.reporter_phone),
        "suggested_unit": _ref(case.suggested_unit),
        "assisting_units": [_ref(u) for u in assisting],
        "step_started_at": case.step_started_at,
        "step_limit": case.step_limit,
        "due_soon_at": case.due_soon_at,
        "pending": case.pending,
        "pending_params": case.pending_params,
        "rework_count": case.rework_count,
        "send_back_count": case.send_back_count,
        "extension_count": case.extension_count,
        "reopen_count": case.reopen_count,
        "merged_into": case.merged_into.number
        if case.merged_into_id and case.merged_into
        else None,
        "rating": case.rating,
        "registered_at": case.registered_at,
        "dispatched_at": case.dispatched_at,
        "closed_at": case.closed_at,
        "photos": [_photo(case, p) for p in photos],
        "allowed_actions": [transition_out(t) for t in allowed_transitions(case, user)],
    }
    if timeline:
        by_event: dict[int | None, list[CasePhoto]] = {}
        for p in photos:
            by_event.setdefault(p.event_id, []).append(p)
        out["timeline"] = [
            event_out(case, e, by_event.get(e.pk, []))
            for e in (
                known[2] if known else CaseEvent.objects.filter(case=case).select_related("actor")
            )
        ]
    return out


def event_out(case: Case, e: CaseEvent, photos: list[CasePhoto]) -> dict[str, Any]:
    return {
        "version": e.version,
        "at": e.at,
        "actor": e.actor.label if e.actor else None,
        "actor_role": e.actor_role,
        "action": e.action,
        "label": str(ACTION_LABELS.get(e.action, e.action)),
        "from_state": e.from_state,
        "to_state": e.to_state,
        "note": e.note,
        "params": e.params,
        "photos": [_photo(case, p) for p in photos],
    }


def _detail(case: Case, user: Any) -> dict[str, Any]:
    """The case as the user sees it now, reloaded with its relations."""
    return case_out(selectors.case_get(case.number, user), user, timeline=True)


# --- photos uploaded ahead ---------------------------------------------------------------------


def _find_uploads(user: Any, ids: list[UUID]) -> list[PhotoUpload]:
    """The caller's own uploads named by ``ids`` (in that order); 422 naming unknown ones."""
    if not ids:
        return []
    unique = list(dict.fromkeys(ids))
    rows = {u.uuid: u for u in PhotoUpload.objects.filter(uuid__in=unique, uploaded_by=user)}
    missing = [str(i) for i in unique if i not in rows]
    if missing:
        raise DomainError(
            _("unknown photo upload %(ids)s: upload photos first with POST /api/v1/cases/photos")
            % {"ids": ", ".join(missing[:3])},
            status=422,
            detail={"photos": missing},
        )
    return [rows[i] for i in unique]


def _consume_uploads(uploads: list[PhotoUpload]) -> None:
    """Delete the uploads a write uses, in its transaction; 409 if another write took one."""
    if not uploads:
        return
    deleted, _by_model = PhotoUpload.objects.filter(pk__in=[u.pk for u in uploads]).delete()
    if deleted != len(uploads):
        raise Conflict(
            _("a photo upload was used by another request at the same time; upload it again"),
            detail={"photos": [str(u.uuid) for u in uploads]},
        )


def _claim_uploads(user: Any, ids: list[UUID]) -> list[StoredPhoto]:
    """The caller's own uploads named by ``ids``, consumed (deleted) in this transaction."""
    uploads = _find_uploads(user, ids)
    _consume_uploads(uploads)
    return [u.stored() for u in uploads]


@router.post(
    "/photos",
    response={201: UploadOut},
    summary="Upload a photo for a report or an action",
    description=(
        "JPEG, PNG, WebP or HEIC up to GRIDGOV_PHOTO_MAX_MB. The image is decoded and re-encoded "
        "as JPEG without EXIF; its GPS position is kept (as a separate field) only with "
        "keep_gps=true. Name the returned id in a report's or an action's `photos`."
    ),
)
@idempotent
def photo_upload(
    request: HttpRequest, file: File[UploadedFile], keep_gps: Form[bool] = False
) -> Status[dict[str, Any]]:
    user = current_user(request)
    data = file.read()
    stored = photo_save(data=data, filename=file.name or "", keep_gps=keep_gps)
    upload = PhotoUpload.objects.create(
        uploaded_by=user, source_format=stored.source_format, **PhotoUpload.fields_of(stored)
    )
    return Status(
        201,
        {
            "id": upload.uuid,
            "width": upload.width,
            "height": upload.height,
            "size": upload.size,
            "gps": list(stored.gps) if stored.gps else None,
        },
    )


# --- report and act -----------------------------------------------------------------------------


@router.post("", response={201: CaseDetail}, summary="Report a problem")
@idempotent(deferred=True, replay_first=False)
def report(request: HttpRequest, payload: ReportIn) -> HttpResponse:
    user = current_user(request)
    uploads = _find_uploads(user, payload.photos)
    # Checks and look-ups first, outside the write transaction (on SQLite it holds the lock).
    plan = report_plan(
        actor=user,
        category=payload.category,
        description=payload.description,
        lat=payload.lat,
        lon=payload.lon,
        crs=payload.crs,
        address=payload.address,
        urgency=payload.urgency,
        attributes=payload.attributes,
        photos=[u.stored() for u in uploads],
        source=payload.source,
        reporter_name=payload.reporter_name,
        reporter_phone=payload.reporter_phone,
    )
    # The number: on PostgreSQL now, in a statement of its own; on SQLite inside the write
    # transaction, where writers queue anyway (the answer then carries a placeholder until then).
    number = allocate_case_number(plan)
    placeholder = f"#{uuid4().hex}#"  # stands for a number not taken yet (SQLite)
    rows = report_build(plan, number or placeholder)
    rows.prepare()  # the INSERTs' values too, so that the write transaction only runs them
    # A new case has no assisting units and one event: answer from memory, rendered before
    # the write transaction, which then only inserts (on SQLite it holds the write lock).
    response = render(
        request,
        CaseDetail,
        case_out(rows.case, user, timeline=True, known=(rows.photos, [], [rows.event])),
        status=201,
    )
    try:
        if report_saves_alone(rows):
            # PostgreSQL, no photos, no one to notify: the key's record, the case and its event
            # are one statement that commits by itself (a taken key writes nothing and replays)
            write_alone(request, response, lambda first: report_save(rows, first=first))
            return response
        with write_transaction(request):
            if number is None:
                rows.set_number(take_case_number(plan))
                response.content = response.content.replace(
                    placeholder.encode(), rows.case.number.encode()
                )
            _consume_uploads(uploads)
            report_save(rows)
            # last: a finished request with the same key rolls this one back and is replayed
            write_phase(request, response)
    except IntegrityError as exc:
        # something the report points at went a moment ago: a category deleted by another
        # process, still in this one's catalogue (GRIDGOV_INDEX_CHECK_SECONDS), a grid deleted
        # since it was read, a photo; nothing was written
        raise Conflict(
            _("the grid, category or photos of this report changed just now; try again")
        ) from exc
    return response


@router.post(
    "/{number}/actions/{action}",
    response=CaseDetail,
    summary="Take an action on a case",
    description=(
        "`action` is one of the workflow table's actions (GET /api/v1/cases/workflow); the case's "
        "`allowed_actions` lists those the caller may take now and their inputs. Send the "
        "`version` you saw: a stale one answers 409 and changes nothing."
    ),
)
@idempotent
def act(request: HttpRequest, number: str, action: str, payload: ActionIn) -> dict[str, Any]:
    user = current_user(request)
    with transaction.atomic():
        photos = _claim_uploads(user, payload.photos)
        case = case_act(
            case=number,
            actor=user,
            action=action,
            version=payload.version,
            inputs=Inputs(
                note=payload.note,
                reason=payload.reason,
                photos=photos,
                category=payload.category,
                urgency=payload.urgency,
                lead_unit=payload.lead_unit,
                assisting_units=payload.assisting_units,
                span=payload.span,
                target=payload.target,
                rating=payload.rating,
            ),
        )
    return _detail(case, user)


# --- reads -------------------------------------------------------------------------------------


class ListQuery(Schema):
    state: list[State] = Field(default_factory=list)
    category: str = Field("", max_length=30)
    region: str = Field("", max_length=15, pattern=r"^\d*$")
    unit: str = Field("", max_length=40)
    light: str = Field("", pattern=r"^(|green|yellow|red|none)$")
    source: Source | None = None
    reported_from: date | None = None
    reported_to: date | None = None
    q: str = Field("", max_length=100)
    supervised: bool | None = None
    emergency: bool | None = None
    mine: bool = False
    with_count: bool = Field(False, description="Count the matches beyond this page too")
    limit: int = Field(50, ge=1, le=MAX_PAGE)
    offset: int = Field(0, ge=0, le=1_000_000)

    def to_filter(self) -> selectors.CaseFilter:
        return selectors.CaseFilter(
            states=tuple(self.state),
            category=self.category,
            region=self.region,
            unit=self.unit,
            light=self.light,
            source=self.source or "",
            reported_from=self.reported_from,
            reported_to=self.reported_to,
            text=self.q,
            supervised=self.supervised,
            emergency=self.emergency,
            mine=self.mine,
        )


def _page(qs: Any, limit: int, offset: int, *, with_count: bool = False) -> dict[str, Any]:
    """One page of ``qs``. The ids come first (an index-only query on most databases), then the
    page's rows. ``count`` is exact when the results end on this page; beyond it only when
    asked for (``with_count``: counted up to COUNT_CAP), else null with ``has_more``."""
    now = timezone.now()
    ids = list(qs.values_list("pk", flat=True)[offset : offset + limit + 1])
    has_more = len(ids) > limit
    ids = ids[:limit]
    found = Case.objects.select_related("category", "grid", "lead_unit").in_bulk(ids)
    rows = [found[i] for i in ids if i in found]
    count: int | None = None
    capped = False
    if not has_more:
        count = offset + len(ids)
    elif with_count:
        count = qs.order_by()[:COUNT_CAP].count() if offset < COUNT_CAP else COUNT_CAP
        capped = count >= COUNT_CAP
        count = max(count, offset + len(ids) + 1)
    return {
        "count": count,
        "count_capped": capped,
        "has_more": has_more,
        "items": [case_row(c, now) for c in rows],
    }


@router.get("", response=CaseList, summary="Cases you may see, filtered")
def case_list(request: HttpRequest, query: Query[ListQuery]) -> dict[str, Any]:
    user = current_user(request)
    if query.reported_from and query.reported_to and query.reported_from > query.reported_to:
        raise DomainError(_("reported_from lies after reported_to"), status=422)
    return _page(
        selectors.cases_filtered(user, query.to_filter()),
        query.limit,
        query.offset,
        with_count=query.with_count,
    )


class PageQuery(Schema):
    limit: int = Field(50, ge=1, le=MAX_PAGE)
    offset: int = Field(0, ge=0, le=1_000_000)


@router.get("/todo", response=TodoOut, summary="Cases waiting for you, most urgent first")
def todo(request: HttpRequest, page: Query[PageQuery]) -> dict[str, Any]:
    user = current_user(request)
    qs = selectors.cases_visible_to(user).filter(selectors.todo_q(user))
    qs = qs.order_by("due_at", "reported_at", "pk")
    return {**_page(qs, page.limit, page.offset), "counts": selectors.todo_counts(user)}


@router.get("/workflow", response=WorkflowOut, summary="The workflow table")
def workflow(request: HttpRequest) -> dict[str, Any]:
    return {
        "states": [{"code": s.value, "name": str(s.label)} for s in State],
        "transitions": [
            {
                "action": t.action,
                "label": str(t.label),
                "sources": sorted(t.sources),
                "target": t.target,
                "who": sorted(t.who),
                "required": list(t.required),
                "optional": list(t.optional),
                "clock": t.clock,
                "guard": t.guard,
            }
            for t in TRANSITIONS
        ],
    }


@router.get("/{number}", response=CaseDetail, summary="A case with its timeline")
def case_detail(request: HttpRequest, number: str) -> dict[str, Any]:
    user = current_user(request)
    return case_out(selectors.case_get(number, user), user, timeline=True)


@router.get("/{number}/photos/{photo}", summary="A photo of a case (JPEG)")
def case_photo(request: HttpRequest, number: str, photo: UUID) -> FileResponse:
    return case_photo_response(number, photo, current_user(request), thumb=False)


@router.get("/{number}/photos/{photo}/thumb", summary="A photo's thumbnail (JPEG)")
def case_photo_thumb(request: HttpRequest, number: str, photo: UUID) -> FileResponse:
    return case_photo_response(number, photo, current_user(request), thumb=True)
