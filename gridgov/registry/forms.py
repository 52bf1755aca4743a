"""Forms of the registry screens: quick add and edit of each record, closing and reopening,
tags, revealing a personal value, the person search and the access-log filters.

The forms check only the shape of the input (types and lengths); the actions check the rest
(id numbers, credit codes, phones, places, scope) and their ``{field: message}`` problems are
put back on the form's fields by ``show_problems``. An edit form carries the ``version`` the
user saw: a stale one is refused by the action (optimistic concurrency).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from django import forms
from django.utils.translation import gettext_lazy as _

from gridgov.cases.models import Category, CategoryClass
from gridgov.core.errors import DomainError
from gridgov.privacy.models import AccessKind

from .models import (
    BuildingType,
    ClosedReason,
    ComponentStatus,
    OrganisationKind,
    Person,
    PersonType,
    Relation,
    RoomUse,
    Sex,
    TagType,
    Verification,
)

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
NUMBER = {"inputmode": "numeric", "autocomplete": "off"}
DECIMAL = {"inputmode": "decimal", "autocomplete": "off", "spellcheck": "false"}

#: Closing reasons that make sense for each kind of record.
CLOSE_REASONS: dict[str, tuple[str, ...]] = {
    "building": ("demolished", "duplicate", "error", "other"),
    "room": ("demolished", "duplicate", "error", "other"),
    "household": ("moved_out", "duplicate", "error", "other"),
    "person": ("moved_out", "deceased", "duplicate", "error", "other"),
    "organisation": ("moved_out", "duplicate", "error", "other"),
    "component": ("demolished", "duplicate", "error", "other"),
}


def _blank(choices: Any, label: Any = "—") -> list[tuple[str, Any]]:
    return [("", label), *choices]


def _set_choices(field: forms.Field, choices: list[tuple[str, Any]]) -> None:
    cast(forms.ChoiceField, field).choices = choices


def _numeric(form: forms.Form, attrs: dict[str, str], *names: str) -> None:
    """Phones show a number pad for these fields."""
    for name in names:
        form.fields[name].widget.attrs.update(attrs)


def _uuid_of(record: Any) -> str:
    return str(record.uuid) if record is not None else ""


class RecordForm(forms.Form):
    """A quick form: ``version`` (edits) and ``reason`` (edits), plus the record's fields.

    ``action_kwargs()`` gives the keyword arguments of the record's action: on an edit only
    the fields the user changed (an unchanged field is not sent, so a concurrent change of
    another field is not overwritten)."""

    version = forms.IntegerField(widget=forms.HiddenInput, required=False)
    reason = forms.CharField(
        label=_("Reason for the change"),
        required=False,
        max_length=2000,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    #: Fields passed to the action as they are.
    action_fields: tuple[str, ...] = ()
    #: Personal values, never shown: an edit starts them empty, and empty keeps the value.
    personal_fields: tuple[str, ...] = ()
    #: Whether the record has a point (``lat``, ``lon``), sent only when it moved.
    located = False

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.editing = editing
        if not editing:
            del self.fields["reason"]

    @classmethod
    def initial_of(cls, record: Any) -> dict[str, Any]:
        """The edit form's start: the record's values of the form's fields (personal values
        empty) and the version the user sees."""
        columns = {f.name for f in record._meta.concrete_fields} - {"version"}
        initial: dict[str, Any] = {"version": record.version}
        for name in cls.base_fields:
            if name in columns:
                initial[name] = "" if name in cls.personal_fields else getattr(record, name)
        return initial

    def action_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        out: dict[str, Any] = {}
        for name in self.action_fields:
            if name not in data:
                continue
            value = data[name]
            if self.editing and name in self.initial and _same(self.initial[name], value):
                continue
            out[name] = value if value is not None or not self._text(name) else ""
        if self.editing:
            for name in self.personal_fields:  # an empty personal field keeps the value
                if not out.get(name):
                    out.pop(name, None)
            out["version"] = data.get("version")
            out["reason"] = data.get("reason", "")
        if self.located and not (self.editing and self._unmoved()):
            out["lat"], out["lon"] = data["lat"], data["lon"]
        return out

    def _unmoved(self) -> bool:
        data = self.cleaned_data
        return _same(self.initial.get("lat"), data["lat"]) and _same(
            self.initial.get("lon"), data["lon"]
        )

    def _text(self, name: str) -> bool:
        return isinstance(self.fields[name], forms.CharField)


def _same(before: Any, after: Any) -> bool:
    if before in (None, "") and after in (None, ""):
        return True
    return str(before) == str(after)


def show_problems(form: forms.Form, exc: DomainError) -> None:
    """Put the action's ``{field: message}`` problems on the form's fields, and its message on
    the form when no field is named or when it is a conflict (stale version, a duplicate)."""
    detail = exc.detail if isinstance(exc.detail, dict) else {}
    placed = False
    for name, message in detail.items():
        if not isinstance(message, str) or name == "version":
            continue
        if name in ("lon", "lat") and "lat" in form.fields:
            form.add_error("lat", message)
            placed = True
        elif name in form.fields:
            form.add_error(name, message)
            placed = True
    if not placed or exc.status == 409:  # a conflict names the other record: say it all
        form.add_error(None, exc.message)


# --- buildings, rooms, households ---------------------------------------------------------------


class BuildingForm(RecordForm):
    estate = forms.CharField(label=_("Estate"), max_length=100, required=False)
    number = forms.CharField(label=_("Building number"), max_length=30, required=False)
    address = forms.CharField(
        label=_("Standard address"),
        max_length=200,
        required=False,
        help_text=_("Give the address, or the estate and building number."),
    )
    kind = forms.ChoiceField(label=_("Type"), choices=BuildingType.choices)
    floors = forms.IntegerField(label=_("Floors"), min_value=0, max_value=300, required=False)
    households = forms.IntegerField(
        label=_("Planned households"), min_value=0, max_value=100_000, required=False
    )
    lat = forms.FloatField(label=_("Latitude"), min_value=-90, max_value=90)
    lon = forms.FloatField(label=_("Longitude"), min_value=-180, max_value=180)
    community_code = forms.CharField(
        label=_("Community code"),
        max_length=12,
        required=False,
        help_text=_("Only for a building outside every grid."),
    )
    action_fields = ("estate", "number", "address", "kind", "floors", "households")
    located = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _numeric(self, DECIMAL, "lat", "lon")
        _numeric(self, NUMBER, "floors", "households", "community_code")

    def action_kwargs(self) -> dict[str, Any]:
        out = super().action_kwargs()
        if "households" in out and out["households"] is None:
            out["households"] = 0
        code = self.cleaned_data.get("community_code", "")
        if not self.editing or (not _same(self.initial.get("community_code"), code) and code):
            out["community_code"] = code
        return out


class RoomForm(RecordForm):
    unit = forms.CharField(label=_("Unit"), max_length=10, required=False)
    floor = forms.IntegerField(label=_("Floor"), min_value=-10, max_value=300, required=False)
    number = forms.CharField(label=_("Room number"), max_length=20)
    use = forms.ChoiceField(label=_("Use"), choices=RoomUse.choices)
    area = forms.DecimalField(
        label=_("Area (m²)"), max_digits=8, decimal_places=2, min_value=0, required=False
    )
    action_fields = ("unit", "floor", "number", "use", "area")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _numeric(self, NUMBER, "floor")
        _numeric(self, DECIMAL, "area")


class HouseholdForm(RecordForm):
    number = forms.CharField(label=_("Household number"), max_length=40, required=False)
    head = forms.ChoiceField(label=_("Head of household"), required=False)
    action_fields = ("number", "head")

    def __init__(self, *args: Any, members: Iterable[Person] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.editing:
            _set_choices(
                self.fields["head"],
                _blank([(str(p.uuid), p.name) for p in members], _("nobody")),
            )
        else:
            del self.fields["head"]

    def action_kwargs(self) -> dict[str, Any]:
        out = super().action_kwargs()
        if out.get("head") == "":
            out["head"] = None
        return out

    @classmethod
    def initial_of(cls, record: Any) -> dict[str, Any]:
        head = record.head if record.head_id is not None else None
        return {"version": record.version, "number": record.number, "head": _uuid_of(head)}


# --- people -------------------------------------------------------------------------------------


class PersonForm(RecordForm):
    name = forms.CharField(label=_("Name"), max_length=100)
    id_number = forms.CharField(
        label=_("Id number"),
        max_length=24,
        required=False,
        help_text=_("18 characters; the date of birth and sex are filled from it."),
    )
    sex = forms.ChoiceField(label=_("Sex"), choices=_blank(Sex.choices), required=False)
    birth_date = forms.DateField(label=_("Date of birth"), required=False, widget=DATE)
    phone = forms.CharField(label=_("Phone"), max_length=30, required=False)
    ethnicity = forms.CharField(label=_("Ethnicity"), max_length=20, required=False)
    person_type = forms.ChoiceField(label=_("Person type"), choices=PersonType.choices)
    relation = forms.ChoiceField(
        label=_("Relation to the head"), choices=_blank(Relation.choices), required=False
    )
    verification = forms.ChoiceField(label=_("Verification"), choices=Verification.choices)
    moved_in_on = forms.DateField(label=_("Moved in on"), required=False, widget=DATE)
    tags = forms.MultipleChoiceField(
        label=_("Tags"), required=False, widget=forms.CheckboxSelectMultiple
    )
    action_fields = (
        "name",
        "id_number",
        "sex",
        "birth_date",
        "phone",
        "ethnicity",
        "person_type",
        "relation",
        "verification",
        "moved_in_on",
    )
    personal_fields = ("id_number", "phone")

    def __init__(self, *args: Any, tag_types: Iterable[TagType] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["id_number"].widget.attrs.update(
            {"autocomplete": "off", "spellcheck": "false", "data-id-number": "true"}
        )
        self.fields["phone"].widget.attrs.update(
            {"inputmode": "tel", "autocomplete": "off", "type": "tel"}
        )
        if self.editing:
            self.fields["id_number"].label = _("New id number")
            self.fields["id_number"].help_text = _(
                "Leave empty to keep the number recorded; a new number needs a reason."
            )
            self.fields["phone"].label = _("New phone")
            self.fields["phone"].help_text = _("Leave empty to keep the phone recorded.")
            del self.fields["tags"]
        else:
            _set_choices(self.fields["tags"], [(t.code, t.name) for t in tag_types])

    def action_kwargs(self) -> dict[str, Any]:
        out = super().action_kwargs()
        if not self.editing:
            out["tags"] = self.cleaned_data.get("tags") or []
        return out


# --- organisations and components ---------------------------------------------------------------


class OrganisationForm(RecordForm):
    name = forms.CharField(label=_("Name"), max_length=200)
    kind = forms.ChoiceField(label=_("Kind"), choices=OrganisationKind.choices)
    credit_code = forms.CharField(
        label=_("Unified social credit code"), max_length=18, required=False
    )
    legal_rep = forms.CharField(label=_("Legal representative"), max_length=100, required=False)
    contact_name = forms.CharField(label=_("Contact"), max_length=100, required=False)
    contact_phone = forms.CharField(label=_("Contact phone"), max_length=30, required=False)
    staff_count = forms.IntegerField(label=_("Staff"), min_value=0, required=False)
    address = forms.CharField(label=_("Address"), max_length=200, required=False)
    action_fields = (
        "name",
        "kind",
        "credit_code",
        "legal_rep",
        "contact_name",
        "contact_phone",
        "staff_count",
        "address",
    )
    personal_fields = ("contact_phone",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["credit_code"].widget.attrs.update(
            {"autocomplete": "off", "spellcheck": "false"}
        )
        self.fields["contact_phone"].widget.attrs.update({"inputmode": "tel", "type": "tel"})
        _numeric(self, NUMBER, "staff_count")
        if self.editing:
            self.fields["contact_phone"].label = _("New contact phone")
            self.fields["contact_phone"].help_text = _("Leave empty to keep the phone recorded.")


def component_categories() -> list[Category]:
    return list(
        Category.objects.filter(klass=CategoryClass.COMPONENT, is_active=True)
        .exclude(parent=None)
        .order_by("code")
    )


class ComponentForm(RecordForm):
    code = forms.CharField(
        label=_("Component code"),
        max_length=17,
        help_text=_("16 or 17 digits: district, category and a 6-digit sequence."),
    )
    category = forms.ChoiceField(label=_("Category"))
    status = forms.ChoiceField(label=_("Status"), choices=ComponentStatus.choices)
    lat = forms.FloatField(label=_("Latitude"), min_value=-90, max_value=90)
    lon = forms.FloatField(label=_("Longitude"), min_value=-180, max_value=180)
    address = forms.CharField(label=_("Address"), max_length=200, required=False)
    competent_unit = forms.CharField(label=_("Competent unit"), max_length=100, required=False)
    owner_unit = forms.CharField(label=_("Owner unit"), max_length=100, required=False)
    maintainer_unit = forms.CharField(label=_("Maintainer unit"), max_length=100, required=False)
    action_fields = (
        "code",
        "category",
        "status",
        "address",
        "competent_unit",
        "owner_unit",
        "maintainer_unit",
    )
    located = True

    def __init__(self, *args: Any, categories: Iterable[Category] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.categories = {str(c.pk): c for c in categories}
        _set_choices(
            self.fields["category"],
            _blank([(key, f"{c.code} {c.name}") for key, c in self.categories.items()]),
        )
        _numeric(self, NUMBER, "code")
        _numeric(self, DECIMAL, "lat", "lon")

    def action_kwargs(self) -> dict[str, Any]:
        out = super().action_kwargs()
        if "category" in out:
            out["category"] = self.categories[out["category"]]
        return out

    @classmethod
    def initial_of(cls, record: Any) -> dict[str, Any]:
        return {**super().initial_of(record), "category": str(record.category_id)}


# --- closing, reopening, tags, reveal -----------------------------------------------------------


class CloseForm(forms.Form):
    version = forms.IntegerField(widget=forms.HiddenInput)
    closed_reason = forms.ChoiceField(label=_("Why"))
    reason = forms.CharField(
        label=_("Note"), max_length=2000, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )
    on = forms.DateField(
        label=_("On"),
        required=False,
        widget=DATE,
        help_text=_("The day they moved out or died (default today)."),
    )

    def __init__(self, *args: Any, kind: str, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "close_%s")
        super().__init__(*args, **kwargs)
        labels = dict(ClosedReason.choices)
        _set_choices(self.fields["closed_reason"], [(c, labels[c]) for c in CLOSE_REASONS[kind]])
        if kind != "person":
            del self.fields["on"]


class ReopenForm(forms.Form):
    version = forms.IntegerField(widget=forms.HiddenInput)
    reason = forms.CharField(
        label=_("Why reopen"),
        max_length=2000,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "reopen_%s")
        super().__init__(*args, **kwargs)


class TagAddForm(forms.Form):
    tag = forms.ChoiceField(label=_("Tag"))
    since = forms.DateField(label=_("Since"), required=False, widget=DATE)
    note = forms.CharField(label=_("Note"), max_length=200, required=False)

    def __init__(self, *args: Any, tag_types: Iterable[TagType] = (), **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "tag_%s")
        super().__init__(*args, **kwargs)
        _set_choices(self.fields["tag"], [(t.code, t.name) for t in tag_types])


class TagRemoveForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=2000, required=False)


class RevealForm(forms.Form):
    fields_wanted = forms.MultipleChoiceField(
        label=_("Show in clear"),
        choices=[("id_number", _("Id number")), ("phone", _("Phone"))],
        widget=forms.CheckboxSelectMultiple,
        initial=["id_number", "phone"],
    )
    reason = forms.CharField(
        label=_("Why do you need it?"),
        max_length=1000,
        help_text=_("Your reason is logged with your name and the time."),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    def __init__(self, *args: Any, personal: dict[str, Any] | None = None, **kwargs: Any):
        kwargs.setdefault("auto_id", "reveal_%s")
        super().__init__(*args, **kwargs)
        if personal is not None:
            _set_choices(self.fields["fields_wanted"], list(personal.items()))
            self.fields["fields_wanted"].initial = list(personal)


# --- search and the access log ------------------------------------------------------------------


class SearchForm(forms.Form):
    q = forms.CharField(
        label=_("Name, phone or id number"),
        max_length=100,
        required=False,
        widget=forms.TextInput(
            attrs={"type": "search", "autocomplete": "off", "enterkeyhint": "search"}
        ),
    )
    closed = forms.BooleanField(label=_("Include closed records"), required=False)


class AccessLogFilterForm(forms.Form):
    person = forms.UUIDField(label=_("Record (uuid)"), required=False)
    user = forms.CharField(label=_("User name"), max_length=150, required=False)
    since = forms.DateField(label=_("Since"), required=False, widget=DATE)
    kind = forms.ChoiceField(
        label=_("Kind"), required=False, choices=_blank(AccessKind.choices, _("all"))
    )
