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
    Organisation,
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


def _close_forms(
    user: User, record: Any, kind: str, roles: frozenset[str] = actions.EDIT_ROLES
) -> dict[str, Any]:
    if not _can_edit(user, record, roles):
        return {}
    if record.closed_at is None:
        return {"close_form": CloseForm(kind=kind, initial={"version": record.version})}
    if kind in REOPENERS:
        return {"reopen_form": ReopenForm(initial={"version": record.version})}
    return {}


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
def grid(request: HttpRequest, code: str) -> HttpResponse:
    """A grid: its buildings on a map and in a list (rooms, households, people of each)."""
    user = current_user(request)
    try:
        region = _region_in_scope(user, code)
    except DomainError as exc:
        return _error_page(request, exc)
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
def building(request: HttpRequest, key: UUID) -> HttpResponse:
    """A building: its rooms grouped by unit and floor, its organisations, its history."""
    user = current_user(request)
    try:
        record = selectors.building_get(user, key)
    except DomainError as exc:
        return _error_page(request, exc)
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
        "history": history_rows(user, record),
        "can_edit": _can_edit(user, record),
        **_close_forms(user, record, "building"),
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
def room(request: HttpRequest, key: UUID) -> HttpResponse:
    """A room: its households and their members (names, relations and ages only)."""
    user = current_user(request)
    try:
        record = selectors.room_get(user, key)
    except DomainError as exc:
        return _error_page(request, exc)
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
        "history": history_rows(user, record),
        "can_edit": _can_edit(user, record),
        **_close_forms(user, record, "room"),
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
def household(request: HttpRequest, key: UUID) -> HttpResponse:
    """The household card: its members with relation, age, masked id and phone, and the tags
    the user's clearance shows (care tags highlighted). Each member's view is logged."""
    user = current_user(request)
    try:
        record = selectors.household_get(user, key)
    except DomainError as exc:
        return _error_page(request, exc)
    members = _members(user, [record]).get(record.pk, [])
    screen = _screen(request)
    for p in members:
        access_log_view(
            actor=user,
            subject_type=SubjectType.PERSON,
            subject_uuid=p.uuid,
            fields=CARD_FIELDS,
            channel=Channel.WEB,
            screen=screen,
            region_code=p.region_code,
        )
    room = record.room
    context = {
        "household": record,
        "room": room,
        "building": room.building if room is not None else None,
        "members": members,
        "care_count": _care_count(members),
        "history": history_rows(user, record),
        "can_edit": _can_edit(user, record),
        **_close_forms(user, record, "household"),
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
        "can_edit": editable,
        "tag_form": TagAddForm(tag_types=addable) if editable and addable else None,
        "may_reveal": may_reveal and bool(personal),
        "reveal_form": RevealForm(personal=personal) if may_reveal and personal else None,
        "history": history_rows(user, person),
        **_close_forms(user, person, "person"),
    }
    context.update(extra)
    return context


@never_cache
@login_required
@require_GET
def person(request: HttpRequest, key: UUID) -> HttpResponse:
    """A person's record, masked; opening it is logged (who, which fields, this screen)."""
    user = current_user(request)
    try:
        record = selectors.person_open(user, key, channel=Channel.WEB, screen=_screen(request))
    except DomainError as exc:
        return _error_page(request, exc)
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


@login_required
@require_POST
def person_tag_add(request: HttpRequest, key: UUID) -> HttpResponse:
    user = current_user(request)
    try:
        selectors.person_get(user, key)
    except DomainError as exc:
        return _error_page(request, exc)
    form = TagAddForm(request.POST, tag_types=selectors.tag_types_visible_to(user))
    if not form.is_valid():
        messages.error(request, _("Choose a tag you may set."))
        return _back_to(request, "person", key)
    try:
        actions.person_tag_add(
            actor=user,
            person=str(key),
            tag=form.cleaned_data["tag"],
            since=form.cleaned_data.get("since"),
            note=form.cleaned_data.get("note", ""),
        )
    except DomainError as exc:
        if isinstance(exc, NotFound):
            return _error_page(request, exc)
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Tag added."))
    return _back_to(request, "person", key)


@login_required
@require_POST
def person_tag_remove(request: HttpRequest, key: UUID, tag: str) -> HttpResponse:
    user = current_user(request)
    try:
        selectors.person_get(user, key)
    except DomainError as exc:
        return _error_page(request, exc)
    form = TagRemoveForm(request.POST)
    form.is_valid()
    try:
        actions.person_tag_remove(
            actor=user,
            person=str(key),
            tag=tag[:40],
            reason=form.cleaned_data.get("reason", ""),
        )
    except DomainError as exc:
        if isinstance(exc, NotFound):
            return _error_page(request, exc)
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Tag removed."))
    return _back_to(request, "person", key)


# --- closing and reopening ----------------------------------------------------------------------

Getter = Callable[[Any, Any], Any]

#: kind -> (getter, close action, keyword of the record, roles that may change it)
CLOSERS: dict[str, tuple[Getter, Callable[..., Any], str, frozenset[str]]] = {
    "building": (selectors.building_get, actions.building_close, "building", actions.EDIT_ROLES),
    "room": (selectors.room_get, actions.room_close, "room", actions.EDIT_ROLES),
    "household": (
        selectors.household_get,
        actions.household_close,
        "household",
        actions.EDIT_ROLES,
    ),
    "person": (selectors.person_get, actions.person_close, "person", actions.EDIT_ROLES),
    "organisation": (
        selectors.organisation_get,
        actions.organisation_close,
        "organisation",
        actions.EDIT_ROLES,
    ),
    "component": (
        selectors.component_get,
        actions.component_close,
        "component",
        actions.COMPONENT_EDIT_ROLES,
    ),
}
REOPENERS: dict[str, Callable[..., Any]] = {
    "building": actions.building_reopen,
    "person": actions.person_reopen,
}


@login_required
@require_POST
def record_close(request: HttpRequest, kind: str, key: UUID) -> HttpResponse:
    """Close a record with a reason (moved out, deceased, duplicate, demolished…)."""
    user = current_user(request)
    if kind not in CLOSERS:
        return _error_page(request, NotFound(_("no such record")))
    getter, close, keyword, _roles = CLOSERS[kind]
    try:
        getter(user, key)
    except DomainError as exc:
        return _error_page(request, exc)
    form = CloseForm(request.POST, kind=kind)
    if not form.is_valid():
        problems = "; ".join(str(e) for errors in form.errors.values() for e in errors)
        messages.error(request, _("Not closed: %(problems)s") % {"problems": problems})
        return _back_to(request, kind, key)
    data = form.cleaned_data
    extra = {"on": data.get("on")} if kind == "person" else {}
    try:
        close(
            actor=user,
            **{keyword: str(key)},
            closed_reason=data["closed_reason"],
            reason=data["reason"],
            version=data["version"],
            **extra,
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Closed."))
    return _back_to(request, kind, key)


@login_required
@require_POST
def record_reopen(request: HttpRequest, kind: str, key: UUID) -> HttpResponse:
    user = current_user(request)
    if kind not in REOPENERS:
        return _error_page(request, NotFound(_("no such record")))
    getter, _close, keyword, _roles = CLOSERS[kind]
    try:
        getter(user, key)
    except DomainError as exc:
        return _error_page(request, exc)
    form = ReopenForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Give the reason for reopening."))
        return _back_to(request, kind, key)
    try:
        REOPENERS[kind](
            actor=user,
            **{keyword: str(key)},
            reason=form.cleaned_data["reason"],
            version=form.cleaned_data["version"],
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Reopened."))
    return _back_to(request, kind, key)


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


def _guarded(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A form view that answers the error page for a record out of scope or not editable."""

    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except DomainError as exc:
            return _error_page(request, exc)

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


def _grid_extra(region: Region) -> dict[str, Any]:
    return {"geometry": region.geometry, "pick_map": True}


@login_required
@require_http_methods(["GET", "POST"])
@_guarded
def building_new(request: HttpRequest, code: str) -> HttpResponse:
    user = current_user(request)
    region = _region_in_scope(user, code)
    _require_edit(user, region.code)
    initial: dict[str, Any] = {"kind": "residential"}
    if region.label_lat is not None and region.label_lon is not None:
        initial.update(lat=round(region.label_lat, 6), lon=round(region.label_lon, 6))
    if region.level == Level.COMMUNITY:
        initial["community_code"] = region.code
    form = BuildingForm(_data(request), initial=initial)
    return _record_form(
        request,
        form,
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
def building_edit(request: HttpRequest, key: UUID) -> HttpResponse:
    user = current_user(request)
    record = selectors.building_get(user, key)
    _require_edit(user, record.region_code)
    form = BuildingForm(_data(request), initial=BuildingForm.initial_of(record), editing=True)
    extra = _grid_extra(record.grid) if record.grid is not None else {"pick_map": True}
    return _record_form(
        request,
        form,
        save=lambda kw: actions.building_update(actor=user, building=record, **kw),
        done=_("Building changed."),
        title=_("Change %(record)s") % {"record": record},
        back=reverse("registry:building", args=[record.uuid]),
        kind="building",
        extra=extra,
    )


@login_required
@require_http_methods(["GET", "POST"])
@_guarded
def room_new(request: HttpRequest, key: UUID) -> HttpResponse:
    user = current_user(request)
    home_building = selectors.building_get(user, key)
    _require_edit(user, home_building.region_code)
    form = RoomForm(_data(request), initial={"use": "self_occupied"})
    return _record_form(
        request,
        form,
        save=lambda kw: actions.room_create(actor=user, building=home_building, **kw),
        done=_("Room registered."),
        title=_("New room in %(building)s") % {"building": home_building},
        back=reverse("registry:building", args=[home_building.uuid]),
        kind="room",
    )


@login_required
@require_http_methods(["GET", "POST"])
@_guarded
def room_edit(request: HttpRequest, key: UUID) -> HttpResponse:
    user = current_user(request)
    record = selectors.room_get(user, key)
    _require_edit(user, record.region_code)
    form = RoomForm(_data(request), initial=RoomForm.initial_of(record), editing=True)
    return _record_form(
        request,
        form,
        save=lambda kw: actions.room_update(actor=user, room=record, **kw),
        done=_("Room changed."),
        title=_("Change room %(room)s") % {"room": record},
        back=reverse("registry:room", args=[record.uuid]),
        kind="room",
    )


@login_required
@require_http_methods(["GET", "POST"])
@_guarded
def household_new(request: HttpRequest, key: UUID) -> HttpResponse:
    user = current_user(request)
    in_room = selectors.room_get(user, key)
    _require_edit(user, in_room.region_code)
    form = HouseholdForm(_data(request))
    return _record_form(
        request,
        form,
        save=lambda kw: actions.household_create(actor=user, room=in_room, **kw),
        done=_("Household registered: now add its members."),
        title=_("New household in room %(room)s") % {"room": in_room},
        back=reverse("registry:room", args=[in_room.uuid]),
        kind="household",
    )


@login_required
@require_http_methods(["GET", "POST"])
@_guarded
def household_edit(request: HttpRequest, key: UUID) -> HttpResponse:
    user = current_user(request)
    record = selectors.household_get(user, key)
    _require_edit(user, record.region_code)
    members = list(
        selectors.people_visible_to(user).filter(household=record).order_by("name", "pk")
    )
    head = next((str(p.uuid) for p in members if p.pk == record.head_id), "")
    form = HouseholdForm(
        _data(request),
        initial=HouseholdForm.initial_of(record, head),
        editing=True,
        members=members,
    )
    return _record_form(
        request,
        form,
        save=lambda kw: actions.household_update(actor=user, household=record, **kw),
        done=_("Household changed."),
        title=_("Change household %(household)s") % {"household": record},
        back=reverse("registry:household", args=[record.uuid]),
        kind="household",
    )


@login_required
@require_http_methods(["GET", "POST"])
@_guarded
def person_new(request: HttpRequest, key: UUID) -> HttpResponse:
    user = current_user(request)
    target = selectors.household_get(user, key)
    _require_edit(user, target.region_code)
    tag_types = [
        t for t in selectors.tag_types_visible_to(user) if t.applies_to == TagAppliesTo.PERSON
    ]
    initial = {"person_type": "registered", "verification": "unverified"}
    if target.head_id is None:
        initial["relation"] = Relation.HEAD
    form = PersonForm(_data(request), initial=initial, tag_types=tag_types)
    return _record_form(
        request,
        form,
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
def person_edit(request: HttpRequest, key: UUID) -> HttpResponse:
    user = current_user(request)
    record = selectors.person_get(user, key)
    _require_edit(user, record.region_code)
    form = PersonForm(_data(request), initial=PersonForm.initial_of(record), editing=True)
    return _record_form(
        request,
        form,
        save=lambda kw: actions.person_update(actor=user, person=str(record.uuid), **kw),
        done=_("Person changed."),
        title=_("Change %(name)s") % {"name": record.name},
        back=reverse("registry:person", args=[record.uuid]),
        kind="person",
        extra={
            "id_help": True,
            "masked_id": record.id_number_mask,
            "masked_phone": record.phone_mask,
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
@_guarded
def organisation_new(request: HttpRequest, code: str) -> HttpResponse:
    user = current_user(request)
    region = _region_in_scope(user, code)
    _require_edit(user, region.code)
    in_building: Building | None = None
    wanted = request.GET.get("building") or request.POST.get("building") or ""
    if wanted:
        in_building = selectors.building_get(user, wanted)
    form = OrganisationForm(_data(request), initial={"kind": "company"})

    def save(kw: dict[str, Any]) -> Organisation:
        if in_building is not None:
            return actions.organisation_create(actor=user, building=in_building, **kw)
        return actions.organisation_create(actor=user, grid=region.code, **kw)

    where = in_building or region.name
    return _record_form(
        request,
        form,
        save=save,
        done=_("Organisation registered."),
        title=_("New organisation in %(place)s") % {"place": where},
        back=reverse("registry:building", args=[in_building.uuid])
        if in_building is not None
        else reverse("registry:organisations", args=[region.code]),
        kind="organisation",
        extra={"building": in_building},
    )


@login_required
@require_http_methods(["GET", "POST"])
@_guarded
def organisation_edit(request: HttpRequest, key: UUID) -> HttpResponse:
    user = current_user(request)
    record = selectors.organisation_get(user, key)
    _require_edit(user, record.region_code)
    form = OrganisationForm(
        _data(request), initial=OrganisationForm.initial_of(record), editing=True
    )
    return _record_form(
        request,
        form,
        save=lambda kw: actions.organisation_update(
            actor=user, organisation=str(record.uuid), **kw
        ),
        done=_("Organisation changed."),
        title=_("Change %(name)s") % {"name": record.name},
        back=reverse("registry:organisation", args=[record.uuid]),
        kind="organisation",
        extra={"masked_phone": record.contact_phone_mask},
    )


@login_required
@require_http_methods(["GET", "POST"])
@_guarded
def component_new(request: HttpRequest, code: str) -> HttpResponse:
    user = current_user(request)
    region = _region_in_scope(user, code)
    _require_edit(user, region.code, actions.COMPONENT_EDIT_ROLES)
    initial: dict[str, Any] = {"status": "intact"}
    if region.label_lat is not None and region.label_lon is not None:
        initial.update(lat=round(region.label_lat, 6), lon=round(region.label_lon, 6))
    form = ComponentForm(_data(request), initial=initial, categories=component_categories())
    return _record_form(
        request,
        form,
        save=lambda kw: actions.component_create(actor=user, **kw),
        done=_("Component registered."),
        title=_("New component in %(grid)s") % {"grid": region.name},
        back=reverse("registry:components", args=[region.code]),
        kind="component",
        extra=_grid_extra(region),
    )


@login_required
@require_http_methods(["GET", "POST"])
@_guarded
def component_edit(request: HttpRequest, key: UUID) -> HttpResponse:
    user = current_user(request)
    record = selectors.component_get(user, key)
    _require_edit(user, record.region_code, actions.COMPONENT_EDIT_ROLES)
    form = ComponentForm(
        _data(request),
        initial=ComponentForm.initial_of(record),
        editing=True,
        categories=component_categories(),
    )
    return _record_form(
        request,
        form,
        save=lambda kw: actions.component_update(actor=user, component=record, **kw),
        done=_("Component changed."),
        title=_("Change component %(code)s") % {"code": record.code},
        back=reverse("registry:component", args=[record.uuid]),
        kind="component",
        extra={"pick_map": True},
    )


# --- organisations and components ---------------------------------------------------------------


@login_required
@require_GET
def organisations(request: HttpRequest, code: str) -> HttpResponse:
    user = current_user(request)
    try:
        region = _region_in_scope(user, code)
    except DomainError as exc:
        return _error_page(request, exc)
    qs = (
        selectors.organisations_visible_to(user)
        .filter(region_code=region.code)
        .select_related("building")
        .order_by("name", "pk")
    )
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "region": region,
        "page": page,
        "rows": list(page.object_list),
        "can_edit": actions.edit_scope(user).covers(region.code),
    }
    return render(request, "registry/organisations.html", context)


@login_required
@require_GET
def organisation(request: HttpRequest, key: UUID) -> HttpResponse:
    """An organisation (its contact phone masked; the open is logged)."""
    user = current_user(request)
    try:
        record = selectors.organisation_get(user, key)
    except DomainError as exc:
        return _error_page(request, exc)
    access_log_view(
        actor=user,
        subject_type=SubjectType.ORGANISATION,
        subject_uuid=record.uuid,
        fields=ORGANISATION_FIELDS,
        channel=Channel.WEB,
        screen=_screen(request),
        region_code=record.region_code,
    )
    context = {
        "organisation": record,
        "history": history_rows(user, record),
        "can_edit": _can_edit(user, record),
        **_close_forms(user, record, "organisation"),
    }
    return render(request, "registry/organisation.html", context)


@login_required
@require_GET
def components(request: HttpRequest, code: str) -> HttpResponse:
    user = current_user(request)
    try:
        region = _region_in_scope(user, code)
    except DomainError as exc:
        return _error_page(request, exc)
    qs = (
        selectors.components_visible_to(user).filter(region_code=region.code).order_by("code", "pk")
    )
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "region": region,
        "page": page,
        "rows": list(page.object_list),
        "can_edit": actions.edit_scope(user, actions.COMPONENT_EDIT_ROLES).covers(region.code),
    }
    return render(request, "registry/components.html", context)


@login_required
@require_GET
def component(request: HttpRequest, key: UUID) -> HttpResponse:
    user = current_user(request)
    try:
        record = selectors.component_get(user, key)
    except DomainError as exc:
        return _error_page(request, exc)
    roles = actions.COMPONENT_EDIT_ROLES
    context = {
        "component": record,
        "history": history_rows(user, record),
        "can_edit": _can_edit(user, record, roles),
        **_close_forms(user, record, "component", roles),
    }
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
