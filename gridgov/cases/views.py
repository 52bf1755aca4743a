"""The case screens: to-do, list and exports, the case page with its action forms, the intake
and dispatch queues, and the phone-first report form.

Views are thin: reads go through ``selectors`` (scoped), writes through ``actions``; the buttons
of the case page come from ``permissions.allowed_transitions`` (the workflow table), so a user
sees exactly the actions the engine would accept from them.

Double submissions are harmless: every form carries a one-time token that is claimed (as an
``IdempotencyRecord`` of the user) in the same transaction as the write it guards, so a second
submission of the same form, even a concurrent one, finds the token taken and is told politely
that it was done already; an action form also carries the case's version, so an action taken on
a case that has changed since answers the Conflict message and changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.uploadedfile import UploadedFile
from django.core.paginator import Paginator
from django.db import IntegrityError, transaction
from django.db import models as dm
from django.db.models import F, Q, prefetch_related_objects
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from gridgov.accounts.models import Role, Unit, User
from gridgov.accounts.selectors import (
    current_user,
    units_visible_to,
    user_has_role,
    user_role_names,
    user_scope,
)
from gridgov.core.errors import Conflict, DomainError, NotFound
from gridgov.core.images import ImageTooLarge, photo_limits
from gridgov.core.masking import mask_phone
from gridgov.core.models import IdempotencyRecord
from gridgov.core.photos import StoredPhoto, photo_delete, photo_save

from . import exports, selectors
from .actions import Inputs, case_act, case_report
from .deadlines import light_of
from .duplicates import duplicate_candidates
from .forms import (
    ActionForm,
    CaseFilterForm,
    HotlineForm,
    ReportForm,
    action_form,
    active_categories,
    attribute_groups,
    category_data,
    new_token,
    posted_attributes,
)
from .models import Case, CaseEvent, Category, Datatype, HandlingLevel, Source, Urgency
from .permissions import acting_role, allowed_transitions, can, refusal
from .photos import case_photo_response
from .selectors import case_get, case_visible, cases_filtered, cases_visible_to, todo_counts, todo_q
from .workflow import (
    ACTION_LABELS,
    ASSISTING,
    CATEGORY,
    COMMAND,
    INTAKE,
    LEAD,
    REPORTER,
    TABLE,
    State,
    Step,
    Transition,
)

PAGE_SIZE = 50
QUEUE_PAGE_SIZE = 20
INTAKE_STATES = (State.REPORTED, State.ACCEPTED, State.VERIFYING)
#: Actions the dispatch screen offers (the rest are on the case page).
DISPATCH_ACTIONS = (
    "dispatch",
    "urgent_dispatch",
    "approve_extension",
    "refuse_extension",
    "approve_suspension",
    "refuse_suspension",
)
#: Actions the intake screen offers as one-click buttons (they take no required input).
INTAKE_QUICK = ("accept", "register", "request_verification", "review_pass")
_FORM_KEY = "form:"


# --- helpers ------------------------------------------------------------------------------------


def _error_page(request: HttpRequest, exc: DomainError) -> HttpResponse:
    context = {"message": exc.message, "status": exc.status}
    return render(request, "core/error.html", context, status=exc.status)


def _local_path(link: str | None) -> str | None:
    """``link`` when it is a path on this site, else None (never off-site)."""
    if not link or not link.startswith("/") or link.startswith(("//", "/\\")):
        return None
    if any(ch.isspace() for ch in link):
        return None
    return link if url_has_allowed_host_and_scheme(link, allowed_hosts=None) else None


def _with_light(cases: Iterable[Case], now: datetime) -> None:
    """Each case's light now (the stored column lags behind by up to one sweep)."""
    for c in cases:
        c.lamp = light_of(c.due_soon_at, c.due_at, now)  # type: ignore[attr-defined]


def _query_without_page(request: HttpRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


def _active_units(user: User) -> list[Unit]:
    return list(units_visible_to(user).filter(is_active=True).order_by("code"))


def _filter_categories() -> list[Category]:
    return list(Category.objects.filter(is_active=True).select_related("parent"))


# --- one-time form tokens -----------------------------------------------------------------------


class _AlreadyDone(Exception):
    """The form was sent before: its one-time token is taken."""


def _token_hash(token: str) -> str:
    return hashlib.sha256((_FORM_KEY + token).encode("utf-8")).hexdigest()


def _claim_token(request: HttpRequest, user: User, token: str) -> IdempotencyRecord:
    """Claim a form's one-time token inside the caller's transaction; ``_AlreadyDone`` when it
    was claimed before (a second submission of the same form). A blank token claims nothing."""
    if not token:
        return IdempotencyRecord(user=user)  # unsaved: nothing to guard
    key_hash = _token_hash(token[:64])
    record = IdempotencyRecord(
        user=user,
        key_hash=key_hash,
        fingerprint=key_hash,
        method="POST",
        path=request.path[:300],
        expires_at=timezone.now() + timedelta(hours=settings.GRIDGOV_IDEMPOTENCY_HOURS),
    )
    try:
        with transaction.atomic():
            record.save(force_insert=True)
    except IntegrityError:
        raise _AlreadyDone from None
    return record


def _token_done(record: IdempotencyRecord, where: str) -> None:
    """Remember where the guarded form led (a second submission is sent there too)."""
    if record.pk is None:
        return
    record.path = where[:300]
    record.status_code = 303
    record.save(update_fields=["path", "status_code"])


def _already_done(request: HttpRequest, user: User, token: str) -> str | None:
    """Where the first submission of this form led, when the token was used already."""
    if not token:
        return None
    record = IdempotencyRecord.objects.filter(user=user, key_hash=_token_hash(token[:64])).first()
    if record is None:
        return None
    return _local_path(record.path) or reverse("cases:todo")


# --- photos -------------------------------------------------------------------------------------


def _save_photos(files: Sequence[UploadedFile], *, keep_gps: bool = False) -> list[StoredPhoto]:
    """Store the uploaded photos (checked and re-encoded); all or none."""
    max_bytes = photo_limits()[0]
    stored: list[StoredPhoto] = []
    try:
        for f in files:
            if f.size is not None and f.size > max_bytes:
                raise ImageTooLarge(
                    _("%(name)s is %(size)s MB; the limit is %(limit)s MB")
                    % {
                        "name": f.name or _("the photo"),
                        "size": f"{f.size / 1024 / 1024:.1f}",
                        "limit": f"{max_bytes / 1024 / 1024:g}",
                    }
                )
            stored.append(photo_save(data=f.read(), filename=f.name or "", keep_gps=keep_gps))
    except BaseException:
        _delete_photos(stored)
        raise
    return stored


def _delete_photos(stored: Iterable[StoredPhoto]) -> None:
    for p in stored:
        photo_delete(p.name)


# --- the to-do list -----------------------------------------------------------------------------


def _urgency_order(now: datetime) -> dm.Case:
    return dm.Case(
        dm.When(due_at__lte=now, then=dm.Value(0)),
        dm.When(due_soon_at__lte=now, then=dm.Value(1)),
        dm.When(due_at__isnull=False, then=dm.Value(2)),
        default=dm.Value(3),
        output_field=dm.IntegerField(),
    )


def _light_q(light: str, now: datetime) -> Q | None:
    return {
        "red": Q(due_at__lte=now),
        "yellow": Q(due_soon_at__lte=now, due_at__gt=now),
        "green": Q(due_soon_at__gt=now),
    }.get(light)


@login_required
@require_GET
def todo(request: HttpRequest) -> HttpResponse:
    """The cases waiting for the user, red first, then yellow, then green, soonest due first."""
    user = current_user(request)
    now = timezone.now()
    counts = todo_counts(user, now=now)
    qs = cases_visible_to(user).filter(todo_q(user))
    light = request.GET.get("light", "")
    only = _light_q(light, now)
    if only is not None:
        qs = qs.filter(only)
    else:
        light = ""
    qs = (
        qs.select_related("category", "grid", "lead_unit")
        .annotate(urgency_rank=_urgency_order(now))
        .order_by("urgency_rank", F("due_at").asc(nulls_last=True), "-reported_at", "-pk")
    )
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    _with_light(rows, now)
    for c in rows:
        c.waiting_for = [  # type: ignore[attr-defined]
            t.label for t in allowed_transitions(c, user) if t.todo and t.tone != "danger"
        ]
    return render(
        request,
        "cases/todo.html",
        {"page": page, "rows": rows, "counts": counts, "light": light},
    )


@never_cache
@require_GET
def todo_count(request: HttpRequest) -> HttpResponse:
    """The number of cases waiting for the user (a fragment the home page loads)."""
    if not request.user.is_authenticated:
        return HttpResponse(status=401)
    counts = todo_counts(request.user)
    return render(request, "cases/_todo_count.html", {"counts": counts})


# --- the case list and exports ------------------------------------------------------------------


def _filter_form(request: HttpRequest, user: User) -> CaseFilterForm:
    form = CaseFilterForm(
        request.GET or None,
        units=units_visible_to(user).order_by("code"),
        categories=_filter_categories(),
    )
    form.is_valid()
    return form


@login_required
@require_GET
def case_list(request: HttpRequest) -> HttpResponse:
    """Every case the user may see, filtered; 50 a page; exports with the same filters."""
    user = current_user(request)
    now = timezone.now()
    form = _filter_form(request, user)
    qs = cases_filtered(user, form.to_filter(), now=now).select_related(
        "category", "grid", "lead_unit"
    )
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    _with_light(rows, now)
    query = _query_without_page(request)
    return render(
        request,
        "cases/list.html",
        {"form": form, "page": page, "rows": rows, "query": query},
    )


def _export(request: HttpRequest, kind: str) -> HttpResponseBase:
    user = current_user(request)
    form = _filter_form(request, user)
    try:
        if kind == "xlsx":
            return exports.xlsx_response(user, form.to_filter())
        return exports.csv_response(user, form.to_filter())
    except DomainError as exc:
        return _error_page(request, exc)


@login_required
@require_GET
def export_xlsx(request: HttpRequest) -> HttpResponseBase:
    return _export(request, "xlsx")


@login_required
@require_GET
def export_csv(request: HttpRequest) -> HttpResponseBase:
    return _export(request, "csv")


# --- the case page ------------------------------------------------------------------------------


def _role_label(role: str) -> str:
    if role == REPORTER:
        return _("Reporter")
    if role in Role.values:
        return str(Role(role).label)
    return role


def _state_label(state: str) -> str:
    return str(State(state).label) if state in State.values else state


def _unit_name(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("name") or value.get("code") or "")
    return str(value or "")


def _change(value: dict[str, Any], choices: type[dm.TextChoices] | None = None) -> dict[str, str]:
    """A change recorded as {"from", "to"} as {"old", "new"}, with the labels of ``choices``."""

    def label(key: str) -> str:
        v = str(value.get(key, ""))
        return str(choices(v).label) if choices is not None and v in choices.values else v

    return {"old": label("from"), "new": label("to")}


def params_summary(params: dict[str, Any]) -> list[str]:
    """What an event's parameters say, in words."""
    out: list[str] = []
    source = params.get("source")
    if isinstance(source, str) and source in Source.values:
        out.append(_("through: %(source)s") % {"source": Source(source).label})
    category = params.get("category")
    if isinstance(category, dict):
        out.append(_("category %(old)s → %(new)s") % _change(category))
    urgency = params.get("urgency")
    if isinstance(urgency, dict):
        out.append(_("urgency %(old)s → %(new)s") % _change(urgency, Urgency))
    elif isinstance(urgency, str) and urgency in Urgency.values and urgency != Urgency.NORMAL:
        out.append(_("urgency: %(urgency)s") % {"urgency": Urgency(urgency).label})
    if params.get("emergency"):
        out.append(_("emergency path"))
    if params.get("lead_unit"):
        out.append(_("lead unit: %(unit)s") % {"unit": _unit_name(params["lead_unit"])})
    assisting = params.get("assisting_units")
    if isinstance(assisting, list) and assisting:
        out.append(
            _("assisting units: %(units)s") % {"units": "、".join(_unit_name(u) for u in assisting)}
        )
    if params.get("suggested_unit_overridden"):
        out.append(_("not the suggested unit"))
    if params.get("unit"):
        out.append(_("sent back by %(unit)s") % {"unit": _unit_name(params["unit"])})
    if params.get("span"):
        out.append(_("time asked for: %(span)s") % {"span": params["span"]})
    due = params.get("due_at")
    if isinstance(due, str):
        parsed = datetime.fromisoformat(due)
        out.append(
            _("now due %(time)s") % {"time": timezone.localtime(parsed).strftime("%Y-%m-%d %H:%M")}
        )
    if params.get("target"):
        out.append(_("merged into %(number)s") % {"number": params["target"]})
    if params.get("duplicate"):
        out.append(_("duplicate %(number)s merged in") % {"number": params["duplicate"]})
    level = params.get("level")
    if isinstance(level, dict):
        out.append(_("level %(old)s → %(new)s") % _change(level, HandlingLevel))
    if params.get("rating"):
        out.append(_("rated %(rating)s of 5") % {"rating": params["rating"]})
    if params.get("on_time") is True:
        out.append(_("closed on time"))
    elif params.get("on_time") is False:
        out.append(_("closed late"))
    return out


def _attribute_rows(case: Case) -> list[tuple[str, str]]:
    """(question, answer) of the case's attributes, with list keys shown by their names."""
    rows: list[tuple[str, str]] = []
    definitions = {a.code: a for a in case.category.attributes.all()}
    for code, value in (case.attributes or {}).items():
        a = definitions.get(code)
        if a is None:
            rows.append((code, str(value)))
            continue
        names = {
            str(v.get("key")): str(v.get("name")) for v in a.values or [] if isinstance(v, dict)
        }
        if a.datatype == Datatype.MULTIVALUELIST and isinstance(value, list):
            shown = "、".join(names.get(str(v), str(v)) for v in value)
        elif a.datatype == Datatype.SINGLEVALUELIST:
            shown = names.get(str(value), str(value))
        elif a.datatype == Datatype.DATETIME and isinstance(value, str):
            try:
                shown = timezone.localtime(datetime.fromisoformat(value)).strftime("%Y-%m-%d %H:%M")
            except ValueError:
                shown = value
        else:
            shown = str(value)
        rows.append((a.description, shown))
    return rows


def _timeline(case: Case) -> list[dict[str, Any]]:
    events = (
        CaseEvent.objects.filter(case=case)
        .select_related("actor")
        .prefetch_related("photos")
        .order_by("version")
    )
    return [
        {
            "event": e,
            "actor": e.actor.label if e.actor is not None else "—",
            "role": _role_label(e.actor_role),
            "action": ACTION_LABELS.get(e.action, e.action),
            "from": _state_label(e.from_state) if e.from_state else "",
            "to": _state_label(e.to_state) if e.to_state else "",
            "params": params_summary(e.params or {}),
            "photos": list(e.photos.all()),
        }
        for e in events
    ]


def _forms_for(
    case: Case,
    user: User,
    transitions: Sequence[Transition],
    *,
    failed: ActionForm | None = None,
    next_url: str = "",
    units: list[Unit] | None = None,
    categories: list[Category] | None = None,
) -> list[ActionForm]:
    """One form per transition (the failed one as the user filled it)."""
    if units is None and any(
        t.allows_input(LEAD) or t.allows_input(ASSISTING) for t in transitions
    ):
        units = _active_units(user)
    if categories is None and any(t.allows_input(CATEGORY) for t in transitions):
        categories = active_categories()
    forms = []
    for t in transitions:
        if failed is not None and failed.transition.action == t.action:
            forms.append(failed)
        else:
            forms.append(
                action_form(
                    t, case=case, units=units or [], categories=categories or [], next_url=next_url
                )
            )
    return forms


def _case_page(
    request: HttpRequest,
    case: Case,
    *,
    failed: ActionForm | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    user = current_user(request)
    now = timezone.now()
    # the work that is waiting first, the refusals last; the first piece of work comes unfolded
    transitions = sorted(
        allowed_transitions(case, user), key=lambda t: (t.tone == "danger", not t.todo)
    )
    primary = transitions[0].action if transitions and transitions[0].todo else ""
    if primary and TABLE[primary].tone == "danger":
        primary = ""
    forms = _forms_for(case, user, transitions, failed=failed)
    candidates: list[Case] = []
    if any(t.action == "merge" for t in transitions):
        candidates = duplicate_candidates(case, user)
        prefetch_related_objects(candidates, "photos")
        for other in candidates:
            other.merge_token = new_token()  # type: ignore[attr-defined]
    photos, seen = [], set()
    for p in case.photos.all():
        if p.name not in seen:
            seen.add(p.name)
            photos.append(p)
    context = {
        "case": case,
        "light": light_of(case.due_soon_at, case.due_at, now),
        "step_label": Step(case.step).label if case.step in Step.values else "",
        "attributes": _attribute_rows(case),
        "assisting": list(case.assisting_units.all()),
        "reporter_phone": mask_phone(case.reporter_phone),
        "photos": photos,
        "timeline": _timeline(case),
        "forms": forms,
        "failed_action": failed.transition.action if failed is not None else "",
        "primary_action": primary if failed is None else "",
        "error": error,
        "candidates": candidates,
        "merged_cases": list(
            case.merged_cases.order_by("reported_at").values_list("number", flat=True)
        ),
        "grid_geometry": case.grid.geometry if case.grid is not None else None,
    }
    return render(request, "cases/detail.html", context, status=status)


@login_required
@require_GET
def case_detail(request: HttpRequest, number: str) -> HttpResponse:
    try:
        case = case_get(number, current_user(request))
    except DomainError as exc:
        return _error_page(request, exc)
    return _case_page(request, case)


def _repeated(case: Case, user: User, action: str, version: int) -> bool:
    """Whether ``user`` took ``action`` on ``case`` since ``version`` (a repeated submission)."""
    return CaseEvent.objects.filter(
        case=case, version__gt=version, actor=user, action=action
    ).exists()


@login_required
@require_POST
def case_action(request: HttpRequest, number: str, action: str) -> HttpResponse:
    """Take one action on a case (its form on the case page, the intake or the dispatch
    screen); back to where the form was, with a message."""
    user = current_user(request)
    try:
        case = case_get(number, user)
    except DomainError as exc:
        return _error_page(request, exc)
    t = TABLE.get(action)
    if t is None:
        return _error_page(
            request, NotFound(_("unknown action %(action)s") % {"action": action[:40]})
        )
    token = request.POST.get("token", "")
    back = _local_path(request.POST.get("next")) or case.get_absolute_url()
    done = _already_done(request, user, token)
    if done:
        messages.info(request, _("This was done already; nothing was changed."))
        return redirect(done)
    why_not = refusal(case, user, t)
    if why_not is not None:
        version = request.POST.get("version", "")
        if version.isdigit() and _repeated(case, user, action, int(version)):
            messages.info(request, _("This was done already; nothing was changed."))
            return redirect(back)
        moved_on = case.state not in t.sources or acting_role(case, user, t) is not None
        status = 409 if moved_on else 403
        return _case_page(request, case, error=str(why_not), status=status)
    form = action_form(
        t,
        case=case,
        data=request.POST,
        files=request.FILES,
        units=_active_units(user) if t.allows_input(LEAD) or t.allows_input(ASSISTING) else [],
        categories=active_categories() if t.allows_input(CATEGORY) else [],
        next_url=request.POST.get("next", ""),
    )
    if not form.is_valid():
        return _case_page(
            request, case, failed=form, error=_("Please correct the form."), status=422
        )
    version = form.cleaned_data["version"]
    try:
        stored = _save_photos(form.cleaned_data.get("photos") or [])
    except DomainError as exc:
        form.add_error("photos" if "photos" in form.fields else None, exc.message)
        return _case_page(request, case, failed=form, error=exc.message, status=exc.status)
    try:
        with transaction.atomic():
            record = _claim_token(request, user, token)
            updated = case_act(
                case=case.number,
                actor=user,
                action=action,
                version=version,
                inputs=form.inputs(stored),
            )
            visible = case_visible(updated, user)
            where = back if visible or back != case.get_absolute_url() else reverse("cases:todo")
            _token_done(record, where)
    except _AlreadyDone:
        _delete_photos(stored)
        messages.info(request, _("This was done already; nothing was changed."))
        return redirect(_already_done(request, user, token) or back)
    except DomainError as exc:
        _delete_photos(stored)
        if isinstance(exc, Conflict) and _repeated(case, user, action, version):
            messages.info(request, _("This was done already; nothing was changed."))
            return redirect(back)
        try:
            fresh = case_get(number, user)
        except DomainError:
            return _error_page(request, exc)
        if isinstance(exc, Conflict):
            return _case_page(request, fresh, error=exc.message, status=exc.status)
        _field_error(form, exc)
        return _case_page(request, fresh, failed=form, error=exc.message, status=exc.status)
    messages.success(
        request,
        _("%(action)s: done (case %(number)s).") % {"action": t.label, "number": updated.number},
    )
    if not visible and back == case.get_absolute_url():
        messages.info(request, _("The case has left your hands; it is no longer shown to you."))
    return redirect(where)


def _field_error(form: ActionForm | ReportForm | HotlineForm, exc: DomainError) -> None:
    """Show a refusal next to the field it names, when the form has that field."""
    name = str(exc.detail.get("field", "")) if isinstance(exc.detail, dict) else ""
    if name in form.fields and name not in form.errors:
        form.add_error(name, exc.message)


@login_required
@require_GET
def case_photo(request: HttpRequest, number: str, photo: Any) -> HttpResponseBase:
    return _photo_file(request, number, photo, thumb=False)


@login_required
@require_GET
def case_photo_thumb(request: HttpRequest, number: str, photo: Any) -> HttpResponseBase:
    return _photo_file(request, number, photo, thumb=True)


def _photo_file(request: HttpRequest, number: str, photo: Any, *, thumb: bool) -> HttpResponseBase:
    """A photo of a case the user may see (the error page otherwise)."""
    try:
        return case_photo_response(number, photo, current_user(request), thumb=thumb)
    except DomainError as exc:
        return _error_page(request, exc)


# --- intake -------------------------------------------------------------------------------------


def _quick_forms(case: Case, user: User, actions: Sequence[str], next_url: str) -> list[ActionForm]:
    return [
        action_form(t, case=case, next_url=next_url)
        for t in allowed_transitions(case, user)
        if t.action in actions
    ]


def _report_context(
    form: ReportForm | HotlineForm, categories: list[Category], data: Any = None, errors: Any = None
) -> dict[str, Any]:
    chosen = form.chosen_category()
    groups = attribute_groups(categories, data)
    for g in groups:
        g["chosen"] = chosen is not None and g["value"] == form.data.get("category")
        for f in g["fields"]:
            f["error"] = (errors or {}).get(f["code"], "") if g["chosen"] else ""
    return {
        "form": form,
        "category_data": category_data(categories),
        "attribute_groups": groups,
    }


def _report_failure(form: ReportForm | HotlineForm, exc: DomainError) -> dict[str, Any] | None:
    """Field errors of a refused report; the attribute errors are returned for their fields."""
    detail = exc.detail if isinstance(exc.detail, dict) else {}
    if isinstance(detail.get("attributes"), dict):
        return dict(detail["attributes"])
    if "nearest" in detail:
        form.add_error("lat", exc.message)
        return None
    name = str(detail.get("field", ""))
    if name in form.fields:
        form.add_error(name, exc.message)
    else:
        form.add_error(None, exc.message)
    return None


@login_required
@require_http_methods(["GET", "POST"])
def intake(request: HttpRequest) -> HttpResponse:
    """The intake operator's queue, oldest first, with possible duplicates side by side; and the
    hotline form for a caller's report."""
    user = current_user(request)
    scope = user_scope(user, roles=INTAKE)
    categories = active_categories()
    errors = None
    status = 200
    if request.method == "POST":
        form = HotlineForm(request.POST, request.FILES, categories=categories)
        if scope.is_empty:
            form.is_valid()
            form.add_error(None, _("Only intake operators and shift leaders take hotline calls."))
            status = 403
        else:
            outcome = _hotline_report(request, user, form)
            if isinstance(outcome, HttpResponse):
                return outcome
            errors, status = outcome
    else:
        form = HotlineForm(initial={"token": new_token()}, categories=categories)
    # a refused submission claimed nothing: the form keeps its token for the corrected one
    now = timezone.now()
    queue = (
        cases_visible_to(user)
        .filter(selectors.case_scope_q(scope), state__in=INTAKE_STATES)
        .select_related("category", "grid")
        .prefetch_related("photos")
        .order_by("reported_at", "pk")
    )
    page = Paginator(queue, QUEUE_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    _with_light(rows, now)
    here = reverse("cases:intake")
    for c in rows:
        c.quick_forms = _quick_forms(c, user, INTAKE_QUICK, here)  # type: ignore[attr-defined]
        c.can_merge = can(c, user, "merge")  # type: ignore[attr-defined]
        c.candidates = duplicate_candidates(c, user) if c.can_merge else []  # type: ignore[attr-defined]
        prefetch_related_objects(c.candidates, "photos")  # type: ignore[attr-defined]
        for other in c.candidates:  # type: ignore[attr-defined]
            other.merge_token = new_token()
    context = {
        "page": page,
        "rows": rows,
        "is_intake": not scope.is_empty,
        **_report_context(form, categories, request.POST if form.is_bound else None, errors),
    }
    return render(request, "cases/intake.html", context, status=status)


def _hotline_report(
    request: HttpRequest, user: User, form: HotlineForm
) -> HttpResponse | tuple[dict[str, Any] | None, int]:
    """A caller's report typed by an intake operator: the redirect, or (errors, status)."""
    if not form.is_valid():
        return None, 422
    data = form.cleaned_data
    return _file_report(
        request,
        user,
        form,
        fallback=reverse("cases:intake"),
        done=_("Case %(number)s registered from the hotline."),
        source=Source.HOTLINE,
        reporter_name=data.get("reporter_name", ""),
        reporter_phone=data.get("reporter_phone", ""),
    )


# --- dispatch -----------------------------------------------------------------------------------


@login_required
@require_GET
def dispatch(request: HttpRequest) -> HttpResponse:
    """The dispatcher's queue: registered and sent-back cases, urgent reports, and requests for
    more time or a suspension; emergencies and the soonest due first."""
    user = current_user(request)
    scope = user_scope(user, roles=COMMAND)
    now = timezone.now()
    queue = (
        cases_visible_to(user)
        .filter(selectors.case_scope_q(scope))
        .filter(
            Q(state__in=[State.REGISTERED, State.SENT_BACK])
            | Q(state=State.HANDLING, pending__in=["extension", "suspension"])
            | Q(state__in=[State.REPORTED, State.ACCEPTED], emergency=True)
        )
        .select_related("category", "grid", "lead_unit", "suggested_unit")
        .order_by("-emergency", F("due_at").asc(nulls_last=True), "reported_at", "pk")
    )
    page = Paginator(queue, QUEUE_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    _with_light(rows, now)
    here = reverse("cases:dispatch")
    units = _active_units(user) if rows else []
    categories = active_categories() if rows else []
    for c in rows:
        transitions = [t for t in allowed_transitions(c, user) if t.action in DISPATCH_ACTIONS]
        c.dispatch_forms = _forms_for(  # type: ignore[attr-defined]
            c, user, transitions, next_url=here, units=units, categories=categories
        )
    return render(
        request,
        "cases/dispatch.html",
        {"page": page, "rows": rows, "is_command": not scope.is_empty},
    )


# --- reporting ----------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def report(request: HttpRequest) -> HttpResponse:
    """The phone-first report form: category, description, photos, the phone's position."""
    user = current_user(request)
    categories = active_categories()
    can_self_handle = user_has_role(user, Role.GRID_WORKER, Role.GRID_LEADER)
    errors = None
    status = 200
    if request.method == "POST":
        form = ReportForm(
            request.POST,
            request.FILES,
            categories=categories,
            can_self_handle=can_self_handle,
        )
        outcome = _report(request, user, form)
        if isinstance(outcome, HttpResponse):
            return outcome
        errors, status = outcome
    else:
        form = ReportForm(
            initial={"token": new_token(), "urgency": Urgency.NORMAL},
            categories=categories,
            can_self_handle=can_self_handle,
        )
    context = {
        "has_role": bool(user_role_names(user)),
        **_report_context(form, categories, request.POST if form.is_bound else None, errors),
    }
    return render(request, "cases/report.html", context, status=status)


def _report(
    request: HttpRequest, user: User, form: ReportForm
) -> HttpResponse | tuple[dict[str, Any] | None, int]:
    """A report from the phone form, handled at once when solved on the spot: the redirect, or
    (errors, status)."""
    if not form.is_valid():
        return None, 422
    data = form.cleaned_data

    def solve(case: Case, stored: list[StoredPhoto]) -> Case:
        note = data.get("solved_note") or data["description"]
        inputs = Inputs(note=note, photos=stored)
        return case_act(
            case=case, actor=user, action="self_handle", version=case.version, inputs=inputs
        )

    if data.get("solved"):
        done = _("Case %(number)s reported as solved on the spot; it waits for review.")
    else:
        done = _("Case %(number)s reported. Thank you!")
    return _file_report(
        request,
        user,
        form,
        fallback=reverse("cases:list"),
        done=done,
        keep_gps=bool(data.get("keep_gps")),
        then=solve if data.get("solved") else None,
    )


def _file_report(
    request: HttpRequest,
    user: User,
    form: ReportForm | HotlineForm,
    *,
    fallback: str,
    done: str,
    keep_gps: bool = False,
    then: Callable[[Case, list[StoredPhoto]], Case] | None = None,
    source: str | None = None,
    reporter_name: str = "",
    reporter_phone: str = "",
) -> HttpResponse | tuple[dict[str, Any] | None, int]:
    """Report the case a valid report form describes (``then`` runs in the same transaction, on
    the new case and its photos), and redirect to it with the ``done`` message; or (attribute
    errors, status) for a refused report, the form carrying its errors. A form sent again leads
    where the first one led (else to ``fallback``) and changes nothing."""
    data = form.cleaned_data
    category = form.categories[data["category"]]
    token = data.get("token", "")
    first = _already_done(request, user, token)
    if first:
        return _sent_already(request, first)
    try:
        stored = _save_photos(data.get("photos") or [], keep_gps=keep_gps)
    except DomainError as exc:
        form.add_error("photos", exc.message)
        return None, exc.status
    lat, lon = data.get("lat"), data.get("lon")
    if lat is None or lon is None:
        gps = next((p.gps for p in stored if p.gps), None)
        if gps is None:
            _delete_photos(stored)
            form.add_error(
                "lat",
                _(
                    "Where is it? Allow the browser to use your location, type the latitude and "
                    "longitude, or attach a photo with its GPS position and keep it."
                ),
            )
            return None, 422
        lat, lon = gps
    try:
        with transaction.atomic():
            record = _claim_token(request, user, token)
            case = case_report(
                actor=user,
                category=category,
                description=data["description"],
                lat=lat,
                lon=lon,
                address=data.get("address", ""),
                urgency=data["urgency"],
                attributes=posted_attributes(category, request.POST),
                photos=stored,
                source=source,
                reporter_name=reporter_name,
                reporter_phone=reporter_phone,
            )
            if then is not None:
                case = then(case, stored)
            _token_done(record, case.get_absolute_url())
    except _AlreadyDone:
        _delete_photos(stored)
        return _sent_already(request, _already_done(request, user, token) or fallback)
    except DomainError as exc:
        _delete_photos(stored)
        return _report_failure(form, exc), exc.status
    messages.success(request, done % {"number": case.number})
    return redirect(case.get_absolute_url())


def _sent_already(request: HttpRequest, where: str) -> HttpResponse:
    messages.info(request, _("This report was sent already; nothing was changed."))
    return redirect(where)
