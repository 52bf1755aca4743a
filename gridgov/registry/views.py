"""The registry screens for grid workers (phone first): my grids → a grid's buildings (map and
list) → a building's rooms by unit and floor → a room's households → the household card →
a person's record; the person search; quick add and edit forms; statistics with charts; and
the access log for administrators.

Views are thin: reads go through the scoped selectors (a record outside the user's scope is
"not found"), writes through ``gridgov.registry.actions`` with the version the user saw.
Personal numbers are shown masked; a person's record, a household card and a search are
logged (``gridgov.privacy``); a clear value is shown once, in the answer to the reveal form
(a reason is required and logged), and never cached.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import FieldDoesNotExist
from django.core.paginator import Paginator
from django.db import models as dm
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Length
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from gridgov.accounts.models import User
from gridgov.accounts.selectors import current_user
from gridgov.core.errors import DomainError, NotFound, PermissionDenied
from gridgov.geo.models import Level, Region
from gridgov.privacy.actions import access_log_search, access_log_view, personal_reveal
from gridgov.privacy.models import Channel, SubjectType
from gridgov.privacy.selectors import access_log_for, clearance_of, reveal_scope

from . import actions, selectors
from .forms import (
    AccessLogFilterForm,
    BuildingForm,
    CloseForm,
    ComponentForm,
    HouseholdForm,
    OrganisationForm,
    PersonForm,
    RecordForm,
    ReopenForm,
    RevealForm,
    RoomForm,
    SearchForm,
    TagAddForm,
    TagRemoveForm,
    component_categories,
    show_problems,
)
from .models import (
    Building,
    Household,
    Person,
    RegistryRecord,
    Relation,
    Room,
    TagAppliesTo,
    TagType,
)
from .stats import registry_stats

PAGE_SIZE = 50
#: Buildings on one grid's map at most.
MAP_LIMIT = 5000
#: Fields shown of each member on a household card (logged with every open).
CARD_FIELDS = (
    "name",
    "sex",
    "birth_date",
    "id_number_mask",
    "phone_mask",
    "relation",
    "person_type",
    "tags",
)
#: Fields shown of each person in the search results (logged with the search).
SEARCH_FIELDS = ("name", "sex", "birth_date", "id_number_mask", "phone_mask", "household")
ORGANISATION_FIELDS = ("name", "legal_rep", "contact_name", "contact_phone_mask", "address")


# --- helpers ------------------------------------------------------------------------------------


def _error_page(request: HttpRequest, exc: DomainError) -> HttpResponse:
    context = {"message": exc.message, "status": exc.status}
    return render(request, "core/error.html", context, status=exc.status)


def _screen(request: HttpRequest) -> str:
    match = request.resolver_match
    return match.view_name if match is not None else request.path[:200]


def _guarded(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A view that answers the error page when a record or grid is out of the user's scope
    ("not found") or may not be changed by them."""

    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except DomainError as exc:
            return _error_page(request, exc)

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


def _log_open(
    request: HttpRequest, user: User, subject_type: str, record: Any, fields: tuple[str, ...]
) -> None:
    """Log that the user saw these fields of a record with personal data on this screen."""
    access_log_view(
        actor=user,
        subject_type=subject_type,
        subject_uuid=record.uuid,
        fields=fields,
        channel=Channel.WEB,
        screen=_screen(request),
        region_code=record.region_code,
    )


def _can_edit(user: User, record: Any, roles: frozenset[str] = actions.EDIT_ROLES) -> bool:
    return actions.edit_scope(user, roles).covers(str(record.region_code or ""))


def _require_edit(user: User, region_code: str, roles: frozenset[str] = actions.EDIT_ROLES) -> None:
    if not actions.edit_scope(user, roles).covers(region_code or ""):
        raise PermissionDenied(_("you may not change base data here"))


def _age(birth: date | None, today: date) -> int | None:
    if birth is None:
        return None
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def _query_without_page(request: HttpRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


def _region_in_scope(user: User, code: str) -> Region:
    """A grid or community in the user's registry scope (NotFound otherwise)."""
    region = (
        Region.objects.filter(code=code, level__in=[Level.GRID, Level.COMMUNITY])
        .select_related("parent")
        .first()
    )
    if region is None or not selectors.registry_scope(user).covers(region.code):
        raise NotFound(
            _("no grid with code %(code)s is visible to you") % {"code": code[:20]},
            detail={"code": code[:20]},
        )
    return region


def _count_of(model: type[dm.Model], link: str, **extra: Any) -> Coalesce:
    """The number of open ``model`` rows whose ``link`` is the outer row (a subquery)."""
    inner = (
        model._default_manager.filter(**{link: OuterRef("pk")}, closed_at__isnull=True, **extra)
        .order_by()
        .values(link)
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(inner, output_field=IntegerField()), Value(0))


def _with_counts(buildings: QuerySet[Building]) -> QuerySet[Building]:
    return buildings.annotate(
        room_count=_count_of(Room, "building"),
        household_count=_count_of(Household, "room__building"),
        people_count=_count_of(Person, "household__room__building"),
    )


_MISSING = "—"


def _field_label(model: type[dm.Model], name: str) -> str:
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        return {
            "tag": _("tag"),
            "since": _("since"),
            "note": _("note"),
        }.get(name, name)
    return str(getattr(field, "verbose_name", name))


def _value_label(model: type[dm.Model], name: str, value: Any, tag_names: dict[str, str]) -> str:
    if value in (None, ""):
        return _MISSING
    if name == "tag":
        return tag_names.get(str(value), str(value))
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        return str(value)
    choices = dict(getattr(field, "flatchoices", None) or [])
    if choices and value in choices:
        return str(choices[value])
    if isinstance(field, dm.ForeignKey) and isinstance(value, str) and len(value) == 36:
        return value[:8]
    return str(value)


def history_rows(actor: User, record: RegistryRecord) -> list[dict[str, Any]]:
    """The record's history as shown: who, when, what (field labels, choice labels, tag names;
    personal values only masked, as stored), why."""
    entries = selectors.record_history(actor, record)
    model = type(record)
    tag_names: dict[str, str] = {}
    if any("tag" in (e.changes or {}) for e in entries):
        tag_names = {t.code: t.name for t in TagType.objects.all()}
    rows = []
    for e in entries:
        changes = []
        for name, pair in (e.changes or {}).items():
            old, new = pair if isinstance(pair, list) and len(pair) == 2 else (None, pair)
            changes.append(
                {
                    "field": _field_label(model, name),
                    "name": name,
                    "old": _value_label(model, name, old, tag_names),
                    "new": _value_label(model, name, new, tag_names),
                }
            )
        rows.append(
            {
                "entry": e,
                "actor": e.actor.label if e.actor is not None else _("system"),
                "changes": changes,
            }
        )
    rows.reverse()  # newest first
    return rows


def _record_context(user: User, record: Any, kind: str) -> dict[str, Any]:
    """What every record page shows: its history, whether the user may change it, and the
    form that closes it (open) or reopens it (closed) — or, when the record it lives in is
    closed, a link to that one, which must be reopened first."""
    roles = actions.KINDS[kind].roles
    editable = _can_edit(user, record, roles)
    context: dict[str, Any] = {"history": history_rows(user, record), "can_edit": editable}
    if not editable:
        return context
    if record.closed_at is None:
        context["close_form"] = CloseForm(kind=kind, initial={"version": record.version})
        return context
    container = actions.closed_container(record)
    if container is None:
        context["reopen_form"] = ReopenForm(initial={"version": record.version})
    elif selectors.record_visible(user, container):
        outer = actions.KIND_OF[type(container)].name
        context["reopen_first"] = {
            "record": container,
            "label": actions.KINDS[outer].label,
            "url": reverse(f"registry:{outer}", args=[container.uuid]),
        }
    return context


# --- my grids -----------------------------------------------------------------------------------


def _grouped(qs: QuerySet[Any], codes: list[str]) -> dict[str, int]:
    return {
        row["region_code"]: row["n"]
        for row in qs.filter(region_code__in=codes)
        .order_by()
        .values("region_code")
        .annotate(n=Count("pk"))
    }


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """My grids: the grids in the user's scope with their buildings, households and people;
    a user with one grid goes straight to it. Users whose roles see no base data get a note
    (like the case screens: every logged-in user may open the page, it shows what they hold)."""
    user = current_user(request)
    scope = selectors.registry_scope(user)
    if scope.is_empty:
        return render(request, "registry/no_access.html")
    grids = Region.objects.filter(level=Level.GRID).filter(scope.q("code")).order_by("code")
    page = Paginator(grids, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    if page.paginator.count == 1 and "page" not in request.GET and "all" not in request.GET:
        return redirect("registry:grid", code=rows[0].code)
    codes = [g.code for g in rows]
    buildings = _grouped(selectors.buildings_visible_to(user), codes)
    households = _grouped(selectors.households_visible_to(user), codes)
    people = _grouped(selectors.people_visible_to(user), codes)
    for g in rows:
        g.building_count = buildings.get(g.code, 0)  # type: ignore[attr-defined]
        g.household_count = households.get(g.code, 0)  # type: ignore[attr-defined]
        g.people_count = people.get(g.code, 0)  # type: ignore[attr-defined]
    # buildings outside every grid are kept in their community
    counted = (
        selectors.buildings_visible_to(user)
        .annotate(code_length=Length("region_code"))
        .filter(code_length=12)
        .order_by()
        .values("region_code")
        .annotate(n=Count("pk"))
        .order_by("region_code")[:100]
    )
    outside = [{"region_code": row["region_code"], "n": row["n"]} for row in counted]
    names = dict(
        Region.objects.filter(code__in=[o["region_code"] for o in outside]).values_list(
            "code", "name"
        )
    )
    for o in outside:
        o["name"] = names.get(o["region_code"], "")
    return render(
        request,
        "registry/home.html",
        {"page": page, "rows": rows, "outside": outside, "query": _query_without_page(request)},
    )


@login_required
@require_GET
@_guarded
def grid(request: HttpRequest, code: str) -> HttpResponse:
    """A grid: its buildings on a map and in a list (rooms, households, people of each)."""
    user = current_user(request)
    region = _region_in_scope(user, code)
    text = (request.GET.get("q") or "").strip()[:60]
    qs = selectors.buildings_visible_to(user).filter(region_code=region.code)
    if text:
        qs = qs.filter(Q(estate__contains=text) | Q(address__contains=text) | Q(number=text))
    qs = _with_counts(qs).order_by("estate", "number", "pk")
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    here = Q(region_code=region.code)
    context = {
        "region": region,
        "page": page,
        "rows": rows,
        "q": text,
        "query": _query_without_page(request),
        "households_without_room": selectors.households_visible_to(user)
        .filter(here, room__isnull=True)
        .count(),
        "organisation_count": selectors.organisations_visible_to(user).filter(here).count(),
        "component_count": selectors.components_visible_to(user).filter(here).count(),
        "can_edit": actions.edit_scope(user).covers(region.code),
        "can_edit_components": actions.edit_scope(user, actions.COMPONENT_EDIT_ROLES).covers(
            region.code
        ),
        "geometry": region.geometry,
    }
    return render(request, "registry/grid.html", context)


@login_required
@require_GET
def grid_buildings(request: HttpRequest, code: str) -> JsonResponse:
    """The buildings of a grid as GeoJSON points (for the map), with their counts."""
    user = current_user(request)
    try:
        region = _region_in_scope(user, code)
    except DomainError as exc:
        return JsonResponse({"message": exc.message, "detail": exc.detail}, status=exc.status)
    qs = _with_counts(
        selectors.buildings_visible_to(user).filter(region_code=region.code)
    ).order_by("pk")[:MAP_LIMIT]
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [round(b.lon, 7), round(b.lat, 7)]},
            "properties": {
                "uuid": str(b.uuid),
                "label": str(b),
                "households": b.household_count,  # type: ignore[attr-defined]
                "people": b.people_count,  # type: ignore[attr-defined]
                "url": reverse("registry:building", args=[b.uuid]),
            },
        }
        for b in qs
    ]
    return JsonResponse({"type": "FeatureCollection", "features": features})


# --- buildings, rooms, households ---------------------------------------------------------------


@login_required
@require_GET
@_guarded
def building(request: HttpRequest, key: UUID) -> HttpResponse:
    """A building: its rooms grouped by unit and floor, its organisations, its history."""
    user = current_user(request)
    record = selectors.building_get(user, key)
    rooms = list(
        selectors.rooms_visible_to(user)
        .filter(building=record)
        .select_related(None)
        .annotate(
            household_count=_count_of(Household, "room"),
            people_count=_count_of(Person, "household__room"),
        )
        .order_by("unit", "floor", "number", "pk")
    )
    organisations = list(
        selectors.organisations_visible_to(user).filter(building=record).order_by("name")[:100]
    )
    context = {
        "building": record,
        "grid": record.grid,
        "rooms": rooms,
        "organisations": organisations,
        **_record_context(user, record, "building"),
    }
    return render(request, "registry/building.html", context)


def _members(user: User, households: list[Household]) -> dict[int, list[Person]]:
    people = (
        selectors.people_visible_to(user)
        .filter(household__in=households)
        .prefetch_related(selectors.tags_prefetch(user))
        .order_by(_relation_order(), "birth_date", "pk")
    )
    by_household: dict[int, list[Person]] = {h.pk: [] for h in households}
    today = timezone.localdate()
    for p in people:
        p.age = _age(p.birth_date, today)  # type: ignore[attr-defined]
        by_household.setdefault(p.household_id or 0, []).append(p)
    return by_household


def _relation_order() -> dm.Case:
    order = list(Relation.values)
    return dm.Case(
        *(dm.When(relation=v, then=Value(i)) for i, v in enumerate(order)),
        default=Value(len(order)),
        output_field=IntegerField(),
    )


@login_required
@require_GET
@_guarded
def room(request: HttpRequest, key: UUID) -> HttpResponse:
    """A room: its households and their members (names, relations and ages only)."""
    user = current_user(request)
    record = selectors.room_get(user, key)
    households = list(
        selectors.households_visible_to(user).filter(room=record).order_by("number", "pk")
    )
    members = _members(user, households)
    for h in households:
        h.member_list = members.get(h.pk, [])  # type: ignore[attr-defined]
    context = {
        "room": record,
        "building": record.building,
        "households": households,
        **_record_context(user, record, "room"),
    }
    return render(request, "registry/room.html", context)


def _care_count(members: list[Person]) -> int:
    """How many care tags (sensitivity 0) the members carry."""
    return sum(
        1
        for p in members
        for t in getattr(p, "visible_tag_list", [])
        if t.tag_type.sensitivity == 0
    )


@never_cache
@login_required
@require_GET
@_guarded
def household(request: HttpRequest, key: UUID) -> HttpResponse:
    """The household card: its members with relation, age, masked id and phone, and the tags
    the user's clearance shows (care tags highlighted). Each member's view is logged."""
    user = current_user(request)
    record = selectors.household_get(user, key)
    members = _members(user, [record]).get(record.pk, [])
    for p in members:
        _log_open(request, user, SubjectType.PERSON, p, CARD_FIELDS)
    room = record.room
    context = {
        "household": record,
        "room": room,
        "building": room.building if room is not None else None,
        "members": members,
        "care_count": _care_count(members),
        **_record_context(user, record, "household"),
    }
    return render(request, "registry/household.html", context)


# --- people -------------------------------------------------------------------------------------


def _may_reveal(user: User, person: Person) -> bool:
    """Whether the reveal form is offered (``personal_reveal`` checks it again)."""
    return clearance_of(user)[1] and reveal_scope(user).covers(person.region_code)


def _person_context(
    request: HttpRequest, user: User, person: Person, **extra: Any
) -> dict[str, Any]:
    tags = selectors.visible_tags(user, person)
    editable = _can_edit(user, person)
    present = {t.tag_type_id for t in tags}
    addable = [
        t
        for t in selectors.tag_types_visible_to(user)
        if t.pk not in present and t.applies_to == TagAppliesTo.PERSON
    ]
    may_reveal = _may_reveal(user, person)
    household = person.household
    room = household.room if household is not None else None
    personal = {}
    if person.id_number_mask:
        personal["id_number"] = _("Id number")
    if person.phone_mask:
        personal["phone"] = _("Phone")
    context = {
        "person": person,
        "age": _age(person.birth_date, timezone.localdate()),
        "household": household,
        "room": room,
        "building": room.building if room is not None else None,
        "tags": tags,
        "tag_form": TagAddForm(tag_types=addable) if editable and addable else None,
        "may_reveal": may_reveal and bool(personal),
        "reveal_form": RevealForm(personal=personal) if may_reveal and personal else None,
        **_record_context(user, person, "person"),
    }
    context.update(extra)
    return context


@never_cache
@login_required
@require_GET
@_guarded
def person(request: HttpRequest, key: UUID) -> HttpResponse:
    """A person's record, masked; opening it is logged (who, which fields, this screen)."""
    user = current_user(request)
    record = selectors.person_open(user, key, channel=Channel.WEB, screen=_screen(request))
    return render(request, "registry/person.html", _person_context(request, user, record))


@never_cache
@login_required
@require_POST
def person_reveal(request: HttpRequest, key: UUID) -> HttpResponse:
    """Show the person's id number and/or phone in clear, once, for a reason (logged)."""
    user = current_user(request)
    screen = _screen(request)
    try:
        record = selectors.person_open(user, key, channel=Channel.WEB, screen=screen)
    except DomainError as exc:
        return _error_page(request, exc)
    if not _may_reveal(user, record):
        refusal = _("you may not reveal personal data here: ask an administrator for the clearance")
        context = _person_context(request, user, record, reveal_error=refusal)
        return render(request, "registry/person.html", context, status=403)
    personal = {"id_number": _("Id number"), "phone": _("Phone")}
    form = RevealForm(request.POST, personal=personal)
    if not form.is_valid():
        context = _person_context(request, user, record, reveal_form=form, reveal_open=True)
        return render(request, "registry/person.html", context, status=422)
    try:
        revealed = personal_reveal(
            actor=user,
            subject_type=SubjectType.PERSON,
            subject=record,
            fields=form.cleaned_data["fields_wanted"],
            reason=form.cleaned_data["reason"],
            channel=Channel.WEB,
            screen=screen,
        )
    except PermissionDenied as exc:
        context = _person_context(request, user, record, reveal_error=exc.message)
        return render(request, "registry/person.html", context, status=exc.status)
    except DomainError as exc:
        show_problems(form, exc)
        context = _person_context(request, user, record, reveal_form=form, reveal_open=True)
        return render(request, "registry/person.html", context, status=exc.status)
    context = _person_context(request, user, record, revealed=revealed)
    response = render(request, "registry/person.html", context)
    response["Cache-Control"] = "no-store"
    return response


def _back_to(request: HttpRequest, name: str, key: UUID) -> HttpResponse:
    return redirect(reverse(f"registry:{name}", args=[key]))


def _tag_change(
    request: HttpRequest, key: UUID, change: Callable[[], Any], *, done: str
) -> HttpResponse:
    """Add or remove a tag, and go back to the person's page saying how it went (a person
    who is not found answers the error page)."""
    try:
        change()
    except NotFound:
        raise
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, done)
    return _back_to(request, "person", key)


@login_required
@require_POST
@_guarded
def person_tag_add(request: HttpRequest, key: UUID) -> HttpResponse:
    user = current_user(request)
    selectors.person_get(user, key)
    form = TagAddForm(request.POST, tag_types=selectors.tag_types_visible_to(user))
    if not form.is_valid():
        messages.error(request, _("Choose a tag you may set."))
        return _back_to(request, "person", key)
    return _tag_change(
        request,
        key,
        lambda: actions.person_tag_add(actor=user, person=str(key), **form.cleaned_data),
        done=_("Tag added."),
    )


@login_required
@require_POST
@_guarded
def person_tag_remove(request: HttpRequest, key: UUID, tag: str) -> HttpResponse:
    user = current_user(request)
    selectors.person_get(user, key)
    form = TagRemoveForm(request.POST)
    form.is_valid()
    reason = form.cleaned_data.get("reason", "")
    return _tag_change(
        request,
        key,
        lambda: actions.person_tag_remove(actor=user, person=str(key), tag=tag[:40], reason=reason),
        done=_("Tag removed."),
    )


# --- closing and reopening ----------------------------------------------------------------------


def _closing(
    request: HttpRequest,
    kind: str,
    key: UUID,
    form: CloseForm | ReopenForm,
    act: Callable[..., Any],
    *,
    invalid: str,
    done: str,
) -> HttpResponse:
    """Close or reopen a record through ``act`` (``actions.record_close``/``record_reopen``)
    with the posted form, whose fields are the action's arguments, and go back to the record's
    page saying how it went; the error page for a record out of the user's scope."""
    user = current_user(request)
    try:
        selectors.record_get(user, kind, key)
    except DomainError as exc:
        return _error_page(request, exc)
    if not form.is_valid():
        problems = "; ".join(str(e) for errors in form.errors.values() for e in errors)
        messages.error(request, invalid % {"problems": problems})
        return _back_to(request, kind, key)
    try:
        act(actor=user, kind=kind, record=str(key), **form.cleaned_data)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, done)
    return _back_to(request, kind, key)


@login_required
@require_POST
def record_close(request: HttpRequest, kind: str, key: UUID) -> HttpResponse:
    """Close a record with a reason (moved out, deceased, duplicate, demolished…)."""
    if kind not in actions.KINDS:
        return _error_page(request, NotFound(_("no such record")))
    form = CloseForm(request.POST, kind=kind)
    invalid = _("Not closed: %(problems)s")
    return _closing(
        request, kind, key, form, actions.record_close, invalid=invalid, done=_("Closed.")
    )


@login_required
@require_POST
def record_reopen(request: HttpRequest, kind: str, key: UUID) -> HttpResponse:
    """Reopen a record closed in error, with a reason (refused while the record it lives in is
    closed: its page links to that one)."""
    if kind not in actions.KINDS:
        return _error_page(request, NotFound(_("no such record")))
    form = ReopenForm(request.POST)
    invalid = _("Give the reason for reopening.")
    return _closing(
        request, kind, key, form, actions.record_reopen, invalid=invalid, done=_("Reopened.")
    )


# --- quick add and edit -------------------------------------------------------------------------


def _record_form(
    request: HttpRequest,
    form: RecordForm,
    *,
    save: Callable[[dict[str, Any]], Any],
    done: str,
    title: str,
    back: str,
    kind: str,
    extra: dict[str, Any] | None = None,
) -> HttpResponse:
    """Render ``form``; on a valid POST, call ``save`` with its action's arguments and go to
    the record's page, else show the problems next to their fields."""
    status = 200
    if request.method == "POST":
        status = 422
        if form.is_valid():
            try:
                record = save(form.action_kwargs())
            except DomainError as exc:
                show_problems(form, exc)
                status = exc.status
            else:
                messages.success(request, done)
                return redirect(reverse(f"registry:{kind}", args=[record.uuid]))
    context = {"form": form, "title": title, "back": back, "kind": kind, **(extra or {})}
    return render(request, "registry/form.html", context, status=status)


def _data(request: HttpRequest) -> Any:
    return request.POST if request.method == "POST" else None


def _grid_extra(region: Region) -> dict[str, Any]:
    return {"geometry": region.geometry, "pick_map": True}


def _editable_region(
    request: HttpRequest, code: str, roles: frozenset[str] = actions.EDIT_ROLES
) -> tuple[User, Region]:
    """The user and a grid (or community) of their scope where they may change base data
    (NotFound outside their scope, PermissionDenied where they only read)."""
    user = current_user(request)
    region = _region_in_scope(user, code)
    _require_edit(user, region.code, roles)
    return user, region


def _editable_record(request: HttpRequest, kind: str, key: UUID) -> tuple[User, Any]:
    """The user and a record of ``kind`` they may change (NotFound, PermissionDenied)."""
    user = current_user(request)
    record = selectors.record_get(user, kind, key)
    _require_edit(user, record.region_code, actions.KINDS[kind].roles)
    return user, record


def _at_region_label(region: Region, **initial: Any) -> dict[str, Any]:
    """A new record's form starts at the point where the region's name is shown."""
    if region.label_lat is not None and region.label_lon is not None:
        initial.update(lat=round(region.label_lat, 6), lon=round(region.label_lon, 6))
    return initial


@login_required
@require_http_methods(["GET", "POST"])
@_guarded
def building_new(request: HttpRequest, code: str) -> HttpResponse:
    user, region = _editable_region(request, code)
    initial = _at_region_label(region, kind="residential")
    if region.level == Level.COMMUNITY:
        initial["community_code"] = region.code
    return _record_form(
        request,
        BuildingForm(_data(request), initial=initial),
        save=lambda kw: actions.building_create(actor=user, **kw),
        done=_("Building registered."),
        title=_("New building in %(grid)s") % {"grid": region.name},
        back=reverse("registry:grid", args=[region.code]),
        kind="building",
        extra=_grid_extra(region),
    )


@login_required
@require_http_methods(["GET", "POST"])
@_guarded
def room_new(request: HttpRequest, key: UUID) -> HttpResponse:
    user, home_building = _editable_record(request, "building", key)
    return _record_form(
        request,
        RoomForm(_data(request), initial={"use": "self_occupied"}),
        save=lambda kw: actions.room_create(actor=user, building=home_building, **kw),
        done=_("Room registered."),
        title=_("New room in %(building)s") % {"building": home_building},
        back=reverse("registry:building", args=[home_building.uuid]),
        kind="room",
    )


@login_required
@require_http_methods(["GET", "POST"])
@_guarded
def household_new(request: HttpRequest, key: UUID) -> HttpResponse:
    user, in_room = _editable_record(request, "room", key)
    return _record_form(
        request,
        HouseholdForm(_data(request)),
        save=lambda kw: actions.household_create(actor=user, room=in_room, **kw),
        done=_("Household registered: now add its members."),
        title=_("New household in room %(room)s") % {"room": in_room},
        back=reverse("registry:room", args=[in_room.uuid]),
        kind="household",
    )


@login_required
@require_http_methods(["GET", "POST"])
@_guarded
def person_new(request: HttpRequest, key: UUID) -> HttpResponse:
    user, target = _editable_record(request, "household", key)
    tag_types = [
        t for t in selectors.tag_types_visible_to(user) if t.applies_to == TagAppliesTo.PERSON
    ]
    initial = {"person_type": "registered", "verification": "unverified"}
    if target.head_id is None:
        initial["relation"] = Relation.HEAD
    return _record_form(
        request,
        PersonForm(_data(request), initial=initial, tag_types=tag_types),
        save=lambda kw: actions.person_create(actor=user, household=target, **kw),
        done=_("Person registered."),
        title=_("New member of household %(household)s") % {"household": target},
        back=reverse("registry:household", args=[target.uuid]),
        kind="person",
        extra={"id_help": True},
    )


@login_required
@require_http_methods(["GET", "POST"])
@_guarded
def organisation_new(request: HttpRequest, code: str) -> HttpResponse:
    user, region = _editable_region(request, code)
    in_building: Building | None = None
    wanted = request.GET.get("building") or request.POST.get("building") or ""
    if wanted:
        in_building = selectors.building_get(user, wanted)
    place: dict[str, Any] = (
        {"building": in_building} if in_building is not None else {"grid": region.code}
    )
    return _record_form(
        request,
        OrganisationForm(_data(request), initial={"kind": "company"}),
        save=lambda kw: actions.organisation_create(actor=user, **place, **kw),
        done=_("Organisation registered."),
        title=_("New organisation in %(place)s") % {"place": in_building or region.name},
        back=reverse("registry:building", args=[in_building.uuid])
        if in_building is not None
        else reverse("registry:organisations", args=[region.code]),
        kind="organisation",
        extra={"building": in_building},
    )


@login_required
@require_http_methods(["GET", "POST"])
@_guarded
def component_new(request: HttpRequest, code: str) -> HttpResponse:
    user, region = _editable_region(request, code, actions.COMPONENT_EDIT_ROLES)
    initial = _at_region_label(region, status="intact")
    return _record_form(
        request,
        ComponentForm(_data(request), initial=initial, categories=component_categories()),
        save=lambda kw: actions.component_create(actor=user, **kw),
        done=_("Component registered."),
        title=_("New component in %(grid)s") % {"grid": region.name},
        back=reverse("registry:components", args=[region.code]),
        kind="component",
        extra=_grid_extra(region),
    )


def _no_extra(record: Any) -> dict[str, Any]:
    return {}


def _no_form_options(user: User, record: Any) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class RecordEdit:
    """How the edit form of one kind of record is shown and saved (``EDITS``)."""

    form: type[RecordForm]
    #: the action, called with the record under its kind's name and the changed fields
    update: Callable[..., Any]
    done: Any
    title: Callable[[Any], str]
    #: what the page shows besides the form (map, masked values…)
    shows: Callable[[Any], dict[str, Any]] = _no_extra
    #: further arguments of the form (choices drawn from the user's scope)
    form_options: Callable[[User, Any], dict[str, Any]] = _no_form_options


def _household_members(user: User, household: Household) -> dict[str, Any]:
    members = selectors.people_visible_to(user).filter(household=household).order_by("name", "pk")
    return {"members": list(members)}


EDITS: dict[str, RecordEdit] = {
    "building": RecordEdit(
        BuildingForm,
        actions.building_update,
        gettext_lazy("Building changed."),
        title=lambda b: _("Change %(record)s") % {"record": b},
        shows=lambda b: _grid_extra(b.grid) if b.grid is not None else {"pick_map": True},
    ),
    "room": RecordEdit(
        RoomForm,
        actions.room_update,
        gettext_lazy("Room changed."),
        title=lambda r: _("Change room %(room)s") % {"room": r},
    ),
    "household": RecordEdit(
        HouseholdForm,
        actions.household_update,
        gettext_lazy("Household changed."),
        title=lambda h: _("Change household %(household)s") % {"household": h},
        form_options=_household_members,
    ),
    "person": RecordEdit(
        PersonForm,
        actions.person_update,
        gettext_lazy("Person changed."),
        title=lambda p: _("Change %(name)s") % {"name": p.name},
        shows=lambda p: {
            "id_help": True,
            "masked_id": p.id_number_mask,
            "masked_phone": p.phone_mask,
        },
    ),
    "organisation": RecordEdit(
        OrganisationForm,
        actions.organisation_update,
        gettext_lazy("Organisation changed."),
        title=lambda o: _("Change %(name)s") % {"name": o.name},
        shows=lambda o: {"masked_phone": o.contact_phone_mask},
    ),
    "component": RecordEdit(
        ComponentForm,
        actions.component_update,
        gettext_lazy("Component changed."),
        title=lambda c: _("Change component %(code)s") % {"code": c.code},
        shows=lambda c: {"pick_map": True},
        form_options=lambda user, c: {"categories": component_categories()},
    ),
}


def _edit_view(kind: str) -> Callable[..., HttpResponse]:
    """The edit screen of a record of ``kind`` (``registry:<kind>_edit``): its form filled
    with the record at the version the user sees; only the fields they change are sent."""
    edit = EDITS[kind]

    @login_required
    @require_http_methods(["GET", "POST"])
    @_guarded
    def view(request: HttpRequest, key: UUID) -> HttpResponse:
        user, record = _editable_record(request, kind, key)
        form = edit.form(
            _data(request),
            initial=edit.form.initial_of(record),
            editing=True,
            **edit.form_options(user, record),
        )
        return _record_form(
            request,
            form,
            save=lambda kw: edit.update(actor=user, **{kind: record}, **kw),
            done=str(edit.done),
            title=edit.title(record),
            back=reverse(f"registry:{kind}", args=[record.uuid]),
            kind=kind,
            extra=edit.shows(record),
        )

    view.__name__ = view.__qualname__ = f"{kind}_edit"
    return view


building_edit = _edit_view("building")
room_edit = _edit_view("room")
household_edit = _edit_view("household")
person_edit = _edit_view("person")
organisation_edit = _edit_view("organisation")
component_edit = _edit_view("component")


# --- organisations and components ---------------------------------------------------------------


def _grid_list(
    request: HttpRequest, user: User, code: str, qs: QuerySet[Any], kind: str
) -> HttpResponse:
    """A page of the records of ``kind`` in a grid of the user's scope (``registry/<kind>s``)."""
    region = _region_in_scope(user, code)
    page = Paginator(qs.filter(region_code=region.code), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context = {
        "region": region,
        "page": page,
        "rows": list(page.object_list),
        "can_edit": actions.edit_scope(user, actions.KINDS[kind].roles).covers(region.code),
    }
    return render(request, f"registry/{kind}s.html", context)


@login_required
@require_GET
@_guarded
def organisations(request: HttpRequest, code: str) -> HttpResponse:
    user = current_user(request)
    qs = selectors.organisations_visible_to(user).select_related("building").order_by("name", "pk")
    return _grid_list(request, user, code, qs, "organisation")


@login_required
@require_GET
@_guarded
def organisation(request: HttpRequest, key: UUID) -> HttpResponse:
    """An organisation (its contact phone masked; the open is logged)."""
    user = current_user(request)
    record = selectors.organisation_get(user, key)
    _log_open(request, user, SubjectType.ORGANISATION, record, ORGANISATION_FIELDS)
    context = {
        "organisation": record,
        **_record_context(user, record, "organisation"),
    }
    return render(request, "registry/organisation.html", context)


@login_required
@require_GET
@_guarded
def components(request: HttpRequest, code: str) -> HttpResponse:
    user = current_user(request)
    qs = selectors.components_visible_to(user).order_by("code", "pk")
    return _grid_list(request, user, code, qs, "component")


@login_required
@require_GET
@_guarded
def component(request: HttpRequest, key: UUID) -> HttpResponse:
    user = current_user(request)
    record = selectors.component_get(user, key)
    context = {"component": record, **_record_context(user, record, "component")}
    return render(request, "registry/component.html", context)


# --- search -------------------------------------------------------------------------------------


@never_cache
@login_required
@require_GET
def search(request: HttpRequest) -> HttpResponse:
    """People in the user's scope by name, phone or id number; masked; every search logged."""
    user = current_user(request)
    form = SearchForm(request.GET or None)
    rows: list[Person] = []
    page = None
    q = ""
    if form.is_valid() and form.cleaned_data["q"].strip():
        q = form.cleaned_data["q"].strip()
        qs = (
            selectors.people_search(user, q, include_closed=form.cleaned_data["closed"])
            .select_related("household", "household__room", "household__room__building")
            .prefetch_related(selectors.tags_prefetch(user))
        )
        page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
        rows = list(page.object_list)
        today = timezone.localdate()
        for p in rows:
            p.age = _age(p.birth_date, today)  # type: ignore[attr-defined]
        access_log_search(
            actor=user,
            subject_type=SubjectType.PERSON,
            filter={"q": q, "kind": selectors.search_kind(q), "page": page.number},
            count=len(rows),
            channel=Channel.WEB,
            screen=_screen(request),
        )
    context = {
        "form": form,
        "q": q,
        "kind": selectors.search_kind(q) if q else "",
        "page": page,
        "rows": rows,
        "query": _query_without_page(request),
    }
    return render(request, "registry/search.html", context)


# --- statistics ---------------------------------------------------------------------------------


def _stats_regions(user: User) -> list[Region]:
    """Regions the statistics may be asked for: the user's scope down to communities (and
    grids for users whose scope is a grid)."""
    scope = selectors.registry_scope(user)
    qs = Region.objects.filter(scope.q("code"))
    roots = [p for p in scope.prefixes if len(p) == 15]
    qs = qs.filter(~Q(level=Level.GRID) | Q(code__in=roots))
    return list(qs.order_by("code").only("code", "name", "level")[:500])


@login_required
@require_GET
def statistics(request: HttpRequest) -> HttpResponse:
    """Statistics of a grid, community, street or district (default: the user's scope):
    population by person type, age pyramid, tag counts and rooms by use, as ECharts charts
    with the same figures in tables."""
    user = current_user(request)
    if selectors.registry_scope(user).is_empty:
        return render(request, "registry/no_access.html")
    code = (request.GET.get("region") or "").strip()[:15]
    try:
        figures = registry_stats(user, code)
    except DomainError as exc:
        return _error_page(request, exc)
    data = figures.as_dict()
    context = {
        "figures": figures,
        "data": data,
        "regions": _stats_regions(user),
        "pyramid_rows": list(reversed(figures.age_pyramid)),
    }
    return render(request, "registry/stats.html", context)


# --- the access log -----------------------------------------------------------------------------


@never_cache
@login_required
@require_GET
def access_log(request: HttpRequest) -> HttpResponse:
    """Who opened, searched, exported or revealed personal data (administrators only)."""
    user = current_user(request)
    form = AccessLogFilterForm(request.GET or None)
    filters: dict[str, Any] = {}
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        filters = {
            "subject_uuid": data.get("person"),
            "user": data.get("user") or None,
            "since": data.get("since"),
        }
    try:
        qs = access_log_for(user, **filters)
    except DomainError as exc:
        return _error_page(request, exc)
    kind = form.cleaned_data.get("kind") if form.is_bound and form.is_valid() else ""
    if kind:
        qs = qs.filter(kind=kind)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page": page,
        "rows": list(page.object_list),
        "query": _query_without_page(request),
    }
    return render(request, "registry/access_log.html", context)
