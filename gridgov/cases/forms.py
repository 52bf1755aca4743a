"""Forms of the case screens: the list's filters, the report and hotline forms, and one form per
workflow transition (built from the table: exactly the inputs the transition takes)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from gridgov.accounts.models import Unit

from .actions import MAX_DESCRIPTION, MAX_NOTE, MAX_PHOTOS, Inputs
from .models import Category, Datatype, Light, Source, Urgency
from .selectors import CaseFilter
from .workflow import (
    ASSISTING,
    CATEGORY,
    LEAD,
    NOTE,
    OPEN,
    PHOTOS,
    RATING,
    REASON,
    SPAN,
    TARGET,
    TERMINAL,
    URGENCY,
    State,
    Transition,
)

if TYPE_CHECKING:
    from gridgov.core.photos import StoredPhoto

    from .models import Case

#: The spans a unit may ask for (working time).
SPANS: tuple[tuple[str, Any], ...] = (
    ("2h", _("2 working hours")),
    ("4h", _("4 working hours")),
    ("1d", _("1 working day")),
    ("2d", _("2 working days")),
    ("5d", _("5 working days")),
)
RATINGS = [(n, str(n)) for n in range(1, 6)]


def new_token() -> str:
    """A one-time token for a form: a second submission of the same form changes nothing."""
    return uuid.uuid4().hex


# --- photos -------------------------------------------------------------------------------------


class MultipleFileInput(forms.FileInput):
    allow_multiple_selected = True


class PhotosField(forms.FileField):
    """Several photos from one ``<input type=file multiple>``; at most MAX_PHOTOS."""

    def __init__(self, *, capture: bool = False, **kwargs: Any) -> None:
        attrs = {"accept": "image/*", "multiple": True}
        if capture:
            attrs["capture"] = "environment"
        kwargs.setdefault("widget", MultipleFileInput(attrs=attrs))
        super().__init__(**kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[UploadedFile]:
        items = data if isinstance(data, list | tuple) else [data]
        files = [f for f in items if f]
        if not files:
            if self.required:
                raise forms.ValidationError(_("Attach at least one photo."), code="required")
            return []
        if len(files) > MAX_PHOTOS:
            raise forms.ValidationError(
                _("Attach at most %(count)s photos.") % {"count": MAX_PHOTOS}, code="too_many"
            )
        single = super().clean
        return [single(f, initial) for f in files]


# --- categories ---------------------------------------------------------------------------------


def category_value(category: Category) -> str:
    """How forms name a category: ``scheme:code`` (codes repeat across schemes)."""
    return f"{category.scheme}:{category.code}"


def active_categories() -> list[Category]:
    """Active categories people report under: the minors, and majors without active minors."""
    rows = list(
        Category.objects.filter(is_active=True)
        .select_related("parent")
        .prefetch_related("attributes")
        .order_by("scheme", "order", "code")
    )
    with_minors = {c.parent_id for c in rows if c.parent_id is not None}
    return [c for c in rows if c.parent_id is not None or c.pk not in with_minors]


def category_choices(categories: Iterable[Category]) -> list[tuple[Any, Any]]:
    """Choices grouped by major category (an optgroup each)."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for c in categories:
        group = str(c.parent) if c.parent is not None else str(c)
        groups.setdefault(group, []).append((category_value(c), f"{c.code} {c.name}"))
    return [(group, options) for group, options in groups.items()]


def category_data(categories: Iterable[Category]) -> list[dict[str, Any]]:
    """What the category picker searches (rendered as JSON into the page, never as script)."""
    return [
        {
            "value": category_value(c),
            "code": c.code,
            "name": c.name,
            "major": c.parent.name if c.parent is not None else "",
            "search": " ".join(
                filter(None, [c.code, c.name_zh, c.name_en, c.parent.name_zh if c.parent else ""])
            ).lower(),
            "urgency": list(c.urgency_levels or [Urgency.NORMAL]),
            "has_attributes": any(a.variable for a in c.attributes.all()),
        }
        for c in categories
    ]


def attribute_field_name(category: Category, code: str) -> str:
    return f"attr-{category.scheme}-{category.code}-{code}"


def attribute_groups(categories: Iterable[Category], data: Any = None) -> list[dict[str, Any]]:
    """The attribute questions of each category that has any, with the values posted."""
    groups = []
    for c in categories:
        fields = []
        for a in c.attributes.all():
            if not a.variable:
                continue
            name = attribute_field_name(c, a.code)
            if a.datatype == Datatype.MULTIVALUELIST:
                current: Any = data.getlist(name) if data is not None else []
            else:
                current = data.get(name, "") if data is not None else ""
            fields.append(
                {
                    "code": a.code,
                    "name": name,
                    "id": f"id_{name}",
                    "label": a.description,
                    "hint": a.datatype_description,
                    "required": a.required,
                    "datatype": a.datatype,
                    "values": [
                        (str(v.get("key")), str(v.get("name") or v.get("key")))
                        for v in a.values or []
                        if isinstance(v, dict)
                    ],
                    "current": current,
                }
            )
        if fields:
            groups.append({"value": category_value(c), "category": c, "fields": fields})
    return groups


def posted_attributes(category: Category, data: Any) -> dict[str, Any]:
    """The attribute values posted for ``category`` (empty answers left out)."""
    values: dict[str, Any] = {}
    for a in category.attributes.all():
        if not a.variable:
            continue
        name = attribute_field_name(category, a.code)
        if a.datatype == Datatype.MULTIVALUELIST:
            chosen = [v for v in data.getlist(name) if v]
            if chosen:
                values[a.code] = chosen
        else:
            value = (data.get(name) or "").strip()
            if value:
                values[a.code] = value
    return values


# --- the case list ------------------------------------------------------------------------------

STATE_GROUPS = {"open": tuple(sorted(OPEN)), "done": tuple(sorted(TERMINAL))}


class CaseFilterForm(forms.Form):
    """The GET form of the case list and the exports."""

    text = forms.CharField(label=_("Search"), required=False, max_length=100)
    state = forms.ChoiceField(label=_("State"), required=False)
    category = forms.ChoiceField(label=_("Category"), required=False)
    region = forms.RegexField(
        label=_("Region or grid code"),
        regex=r"^\d{6}(\d{3}){0,3}$",
        required=False,
        error_messages={"invalid": _("Write a region code of 6, 9, 12 or 15 digits.")},
    )
    unit = forms.ChoiceField(label=_("Unit"), required=False)
    light = forms.ChoiceField(
        label=_("Light"),
        required=False,
        choices=[
            ("", _("Any")),
            ("red", _("Red (overdue)")),
            ("yellow", _("Yellow (due soon)")),
            ("green", _("Green")),
            ("none", _("No deadline")),
        ],
    )
    source = forms.ChoiceField(
        label=_("Source"), required=False, choices=[("", _("Any")), *Source.choices]
    )
    reported_from = forms.DateField(label=_("Reported from"), required=False)
    reported_to = forms.DateField(label=_("Reported to"), required=False)
    supervised = forms.BooleanField(label=_("Supervised only"), required=False)
    emergency = forms.BooleanField(label=_("Emergencies only"), required=False)

    def __init__(self, data: Any, *, units: QuerySet[Unit], categories: Sequence[Category]):
        super().__init__(data)
        cast(forms.ChoiceField, self.fields["state"]).choices = [
            ("", _("Any")),
            ("open", pgettext_lazy("case filter", "Open")),
            ("done", _("Finished")),
            *State.choices,
        ]
        majors = {c.parent for c in categories if c.parent is not None}
        options = sorted({*majors, *categories}, key=lambda c: (c.scheme, c.code))
        cast(forms.ChoiceField, self.fields["category"]).choices = [("", _("Any"))] + [
            (c.code, f"{c.code} {c.name}") for c in options
        ]
        cast(forms.ChoiceField, self.fields["unit"]).choices = [("", _("Any"))] + [
            (u.code, u.name) for u in units
        ]
        for name in ("reported_from", "reported_to"):
            self.fields[name].widget = forms.DateInput(attrs={"type": "date"})
        self.fields["text"].widget.attrs.update(type="search", placeholder=_("Number or text"))
        self.fields["region"].widget.attrs.update(inputmode="numeric", maxlength="15")

    def to_filter(self) -> CaseFilter:
        """The filters that are valid (an invalid one is ignored and shown as an error)."""
        data = self.cleaned_data if self.is_bound else {}
        valid = {name: data.get(name) for name in self.fields if name not in self.errors}
        state = str(valid.get("state") or "")
        states = STATE_GROUPS.get(state, (state,) if state else ())
        start: date | None = valid.get("reported_from")
        end: date | None = valid.get("reported_to")
        return CaseFilter(
            states=states,
            category=str(valid.get("category") or ""),
            region=str(valid.get("region") or ""),
            unit=str(valid.get("unit") or ""),
            light=str(valid.get("light") or ""),
            source=str(valid.get("source") or ""),
            reported_from=start,
            reported_to=end,
            text=str(valid.get("text") or "").strip(),
            supervised=True if valid.get("supervised") else None,
            emergency=True if valid.get("emergency") else None,
        )


# --- reporting ----------------------------------------------------------------------------------


class _ReportBase(forms.Form):
    token = forms.CharField(widget=forms.HiddenInput, max_length=64)
    category = forms.ChoiceField(label=_("Category"))
    description = forms.CharField(
        label=_("Description"),
        max_length=MAX_DESCRIPTION,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    urgency = forms.ChoiceField(label=_("Urgency"), choices=Urgency.choices, initial="normal")
    address = forms.CharField(label=_("Address or landmark"), required=False, max_length=200)
    lat = forms.FloatField(label=_("Latitude"), min_value=-90, max_value=90)
    lon = forms.FloatField(label=_("Longitude"), min_value=-180, max_value=180)

    def __init__(self, *args: Any, categories: Sequence[Category], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.categories = {category_value(c): c for c in categories}
        cast(forms.ChoiceField, self.fields["category"]).choices = [
            ("", _("Choose a category")),
            *category_choices(categories),
        ]
        for name in ("lat", "lon"):
            self.fields[name].widget = forms.TextInput(
                attrs={"inputmode": "decimal", "autocomplete": "off", "spellcheck": "false"}
            )

    def chosen_category(self) -> Category | None:
        return self.categories.get(str(self.data.get("category") or ""))


class ReportForm(_ReportBase):
    """The phone-first report form of grid workers, supervisors and residents."""

    photos = PhotosField(label=_("Photos"), required=False, capture=True)
    keep_gps = forms.BooleanField(
        label=_("Keep the photo's GPS position"),
        required=False,
        help_text=_("Stored with the case only; the photo file itself never keeps it."),
    )
    solved = forms.BooleanField(label=_("Solved on the spot"), required=False)
    solved_note = forms.CharField(
        label=_("What did you do?"),
        required=False,
        max_length=MAX_NOTE,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args: Any, can_self_handle: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # the photo's GPS position may stand in for the phone's (see views.report)
        self.fields["lat"].required = False
        self.fields["lon"].required = False
        if not can_self_handle:
            del self.fields["solved"]
            del self.fields["solved_note"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("solved") and not data.get("photos"):
            self.add_error("photos", _("A problem solved on the spot needs a photo of the result."))
        if (data.get("lat") is None) != (data.get("lon") is None):
            self.add_error("lat", _("Give both latitude and longitude, or neither."))
        return data


class HotlineForm(_ReportBase):
    """An intake operator types a caller's report."""

    reporter_name = forms.CharField(label=_("Caller's name"), required=False, max_length=60)
    reporter_phone = forms.CharField(
        label=_("Caller's phone"),
        required=False,
        max_length=30,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "off"}),
    )
    photos = PhotosField(label=_("Photos"), required=False)


# --- actions ------------------------------------------------------------------------------------


class ActionForm(forms.Form):
    """The inputs of one workflow transition; built by ``action_form``."""

    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    token = forms.CharField(widget=forms.HiddenInput, max_length=64)
    next = forms.CharField(widget=forms.HiddenInput, required=False, max_length=300)

    transition: Transition

    def inputs(self, photos: Sequence[StoredPhoto] = ()) -> Inputs:
        data = self.cleaned_data
        rating = data.get("rating")
        return Inputs(
            note=data.get("note") or "",
            reason=data.get("reason") or "",
            photos=list(photos),
            category=data.get("category") or None,
            urgency=data.get("urgency") or None,
            lead_unit=data.get("lead_unit") or None,
            assisting_units=list(data.get("assisting_units") or []),
            span=data.get("span") or "",
            target=(data.get("target") or "").strip() or None,
            rating=int(rating) if rating not in (None, "") else None,
        )


def action_form(
    t: Transition,
    *,
    case: Case,
    data: Any = None,
    files: Any = None,
    units: Sequence[Unit] = (),
    categories: Sequence[Category] = (),
    next_url: str = "",
) -> ActionForm:
    """The form of transition ``t`` on ``case``: exactly the inputs ``t`` takes, the required
    ones marked required. Field ids are unique per case and action, so that several forms fit
    on one page; field names are plain."""
    form = ActionForm(
        data,
        files,
        auto_id=f"id_{case.number}_{t.action}_%s",
        initial={"version": case.version, "token": new_token(), "next": next_url},
    )
    form.transition = t
    fields = form.fields

    def required(name: str) -> bool:
        return name in t.required

    # the decision first, the note and the photos last
    for name in (REASON, CATEGORY, URGENCY, LEAD, ASSISTING, SPAN, TARGET, RATING, NOTE, PHOTOS):
        if not t.allows_input(name):
            continue
        if name == NOTE:
            fields[name] = forms.CharField(
                label=_("Note"),
                required=required(name),
                max_length=MAX_NOTE,
                widget=forms.Textarea(attrs={"rows": 3}),
            )
        elif name == REASON:
            fields[name] = forms.CharField(
                label=_("Reason"),
                required=required(name),
                max_length=MAX_NOTE,
                widget=forms.Textarea(attrs={"rows": 3}),
            )
        elif name == PHOTOS:
            fields[name] = PhotosField(label=_("Photos"), required=required(name))
        elif name == CATEGORY:
            fields[name] = forms.ChoiceField(
                label=_("Category"),
                required=required(name),
                choices=[("", _("Keep the category")), *category_choices(categories)],
                initial=category_value(case.category),
            )
        elif name == URGENCY:
            fields[name] = forms.ChoiceField(
                label=_("Urgency"),
                required=required(name),
                choices=Urgency.choices,
                initial=case.urgency,
            )
        elif name == LEAD:
            suggested = case.lead_unit or case.suggested_unit
            fields[name] = forms.ChoiceField(
                label=_("Lead unit"),
                required=required(name),
                choices=[("", _("Choose a unit"))] + [(u.code, u.name) for u in units],
                initial=suggested.code if suggested is not None else "",
                help_text=(
                    _("Suggested: %(unit)s") % {"unit": case.suggested_unit.name}
                    if case.suggested_unit is not None
                    else _("No unit is suggested for this category and place.")
                ),
            )
        elif name == ASSISTING:
            fields[name] = forms.MultipleChoiceField(
                label=_("Assisting units"),
                required=required(name),
                choices=[(u.code, u.name) for u in units],
                widget=forms.CheckboxSelectMultiple,
            )
        elif name == SPAN:
            fields[name] = forms.ChoiceField(
                label=_("More time"), required=required(name), choices=SPANS
            )
        elif name == TARGET:
            fields[name] = forms.CharField(
                label=_("Merge into case number"),
                required=required(name),
                max_length=24,
                widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
            )
        elif name == RATING:
            fields[name] = forms.TypedChoiceField(
                label=_("Rating"),
                required=required(name),
                choices=RATINGS,
                coerce=int,
                widget=forms.RadioSelect,
            )
    if data is None:
        for name, field in fields.items():
            if name in form.initial:
                continue
            if field.initial is not None:
                form.initial[name] = field.initial
    return form


def light_label(light: str) -> Any:
    return Light(light).label if light in Light.values else light
