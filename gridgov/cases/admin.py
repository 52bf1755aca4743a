"""The admin site for the category catalogue, routing and escalation rules, and cases.

Categories are edited here with the same checks as the import (codes per scheme, majors,
limits, Open311 attributes), and imported or exported in bulk on the "Import / export
categories" page (a dry run first, then a commit through a signed token, like the region
import). Cases are shown read-only: administrators look at cases, they never edit them (every
change of a case goes through the workflow and its timeline).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from gridgov.accounts.models import Role
from gridgov.core.errors import DomainError
from gridgov.core.masking import mask_phone
from gridgov.geo.admin_io import ImportExportAdmin
from gridgov.geo.bulk import StagedUpload

from . import catalogue
from .models import (
    Case,
    CaseEvent,
    CasePhoto,
    Category,
    CategoryAttribute,
    EscalationRule,
    RoutingRule,
    Scheme,
    Urgency,
)
from .workflow import Step

#: Rows of the import report shown at most.
REPORT_ROWS = 1000
STATUS_LABELS = {
    "created": _("added"),
    "changed": _("updated"),
    "unchanged": _("unchanged"),
    "kept": _("kept as it is"),
}


# --- categories --------------------------------------------------------------------------------


class CategoryForm(forms.ModelForm):
    """A category, checked like an imported row: the code fits the scheme and the class (an
    event's code of a standard scheme is stored with its E), the major is a major of the same
    scheme and class, limits read as 30m / 4h / 1d."""

    urgency_levels = forms.MultipleChoiceField(
        label=_("urgency levels"),
        choices=Urgency.choices,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Category
        fields = [
            "scheme",
            "klass",
            "code",
            "parent",
            "name_zh",
            "name_en",
            "is_active",
            "order",
            "default_unit_kind",
            "urgency_levels",
            "closing_criteria",
            *catalogue.LIMIT_FIELDS,
            "duplicate_radius_m",
            "duplicate_window_hours",
        ]
        help_texts = {
            "code": _(
                "CJ/T 214: 2 digits (major) or 4 (minor); GB/T 47678.5: 2 or 5. Events of these "
                "schemes are stored with the prefix E (E0102); type the digits and choose the "
                "class. Social governance: letters and digits."
            ),
            "register_limit": _("Working time, e.g. 30m, 4h, 1d; empty: the major's."),
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for name in catalogue.LIMIT_FIELDS:
            if name in data:
                try:
                    data[name] = catalogue.normalise_limit(data[name])
                except ValueError as exc:
                    self.add_error(name, str(exc))
        scheme, klass = data.get("scheme"), data.get("klass")
        code = data.get("code")
        if not (scheme and klass and code):
            return data
        code = catalogue.normalise_code(scheme, code, klass)
        problem = catalogue.code_problem(scheme, code, klass)
        if problem:
            self.add_error("code", problem)
            return data
        data["code"] = code
        parent = data.get("parent")
        expected = catalogue.major_code(scheme, code)
        if catalogue.is_coded(scheme):
            if expected and parent is None:
                parent = Category.objects.filter(scheme=scheme, code=expected).first()
                if parent is None:
                    self.add_error(
                        "parent",
                        gettext("create the major %(code)s first") % {"code": expected},
                    )
                    return data
                data["parent"] = parent
            elif not expected and parent is not None:
                self.add_error(
                    "parent", gettext("%(code)s is a major and has no parent") % {"code": code}
                )
                return data
            elif parent is not None and parent.code != expected:
                self.add_error(
                    "parent",
                    gettext("the major of %(code)s is %(expected)s")
                    % {"code": code, "expected": expected},
                )
                return data
        if parent is not None:
            if parent.scheme != scheme:
                self.add_error("parent", gettext("the major belongs to another scheme"))
            elif parent.parent_id is not None:
                self.add_error("parent", gettext("the major must be a major, not a minor"))
            elif parent.klass != klass:
                self.add_error("klass", gettext("the class differs from the class of its major"))
            elif self.instance.pk and parent.pk == self.instance.pk:
                self.add_error("parent", gettext("a category cannot be its own major"))
            elif self.instance.pk and self.instance.children.exists():
                self.add_error(
                    "parent",
                    gettext("this category has minors and cannot become a minor itself"),
                )
        return data


class CategoryAttributeForm(forms.ModelForm):
    """An Open311 attribute; list values are typed one per line as ``key=name``."""

    values = forms.CharField(
        label=_("values"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 30}),
        help_text=_("For lists: one value per line as key=name."),
    )

    class Meta:
        model = CategoryAttribute
        fields = [
            "code",
            "description",
            "datatype",
            "required",
            "variable",
            "datatype_description",
            "order",
            "values",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.is_bound:
            self.initial["values"] = "\n".join(
                f"{v.get('key')}={v.get('name')}"
                for v in self.instance.values or []
                if isinstance(v, dict)
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("code") or not data.get("datatype") or "description" not in data:
            return data
        cleaned, problems = catalogue.clean_attribute(
            {
                "code": data["code"],
                "datatype": data["datatype"],
                "required": data.get("required", False),
                "variable": data.get("variable", True),
                "description": data.get("description", ""),
                "datatype_description": data.get("datatype_description", ""),
                "order": data.get("order") or 1,
                "values": data.get("values") or "",
            }
        )
        for key, message in problems.items():
            self.add_error(key if key in self.fields else None, message)
        if not problems:
            data["values"] = cleaned["values"]
        return data


class CategoryAttributeInline(admin.TabularInline):
    model = CategoryAttribute
    form = CategoryAttributeForm
    extra = 0


class LevelFilter(admin.SimpleListFilter):
    title = _("level")
    parameter_name = "level"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("major", _("major categories")), ("minor", _("minor categories"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() in ("major", "minor"):
            return queryset.filter(parent__isnull=self.value() == "major")
        return queryset


class CategoryImportForm(forms.Form):
    file = forms.FileField(
        label=_("File"),
        help_text=_(
            "An xlsx workbook (sheets categories and attributes, as the export writes them) or "
            "a JSON file of categories. Categories are matched by scheme and code."
        ),
    )


class CategoryExportForm(forms.Form):
    scheme = forms.ChoiceField(
        label=_("Scheme"), required=False, choices=[("", _("every scheme")), *Scheme.choices]
    )
    format = forms.ChoiceField(
        label=_("Format"),
        choices=[("xlsx", _("Excel workbook (xlsx)")), ("json", _("JSON"))],
        initial="xlsx",
    )


@admin.register(Category)
class CategoryAdmin(ImportExportAdmin):
    form = CategoryForm
    import_form = CategoryImportForm
    import_title = _("Import categories")
    import_template = "admin/cases/import_categories.html"
    import_kinds = ("categories",)
    export_form = CategoryExportForm
    export_title = _("Export categories")
    export_template = "admin/cases/export_categories.html"
    change_list_template = "admin/cases/category/change_list.html"
    inlines = [CategoryAttributeInline]
    list_display = [
        "shown_code",
        "name_zh",
        "name_en",
        "scheme",
        "klass",
        "major",
        "handle_limit",
        "is_active",
    ]
    list_display_links = ["shown_code", "name_zh"]
    list_filter = ["scheme", "klass", "is_active", LevelFilter, "default_unit_kind"]
    search_fields = ["code", "name_zh", "name_en"]
    list_select_related = ["parent"]
    list_per_page = 100
    autocomplete_fields = ["parent"]
    ordering = ["scheme", "code"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "scheme",
                    "klass",
                    "code",
                    "parent",
                    "name_zh",
                    "name_en",
                    "is_active",
                    "order",
                ]
            },
        ),
        (
            pgettext_lazy("category admin section", "Handling"),
            {"fields": ["default_unit_kind", "urgency_levels", "closing_criteria"]},
        ),
        (
            _("Time limits (working time)"),
            {"fields": list(catalogue.LIMIT_FIELDS)},
        ),
        (_("Duplicates"), {"fields": ["duplicate_radius_m", "duplicate_window_hours"]}),
    ]

    @admin.display(description=_("code"), ordering="code")
    def shown_code(self, obj: Category) -> str:
        return catalogue.display_code(obj)

    @admin.display(description=_("major category"), ordering="parent__code")
    def major(self, obj: Category) -> str:
        return obj.parent.name if obj.parent is not None else "–"

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        found, duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term.isdigit():  # "0102" finds the event E0102 too
            found = found | queryset.filter(code=catalogue.EVENT_PREFIX + term)
        return found, duplicates

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra = {
            "can_import_categories": self._may_import(request),
            "can_export_categories": self._may_export(request),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=extra)

    def _may_import(self, request: HttpRequest) -> bool:
        """Administrators of every region: the catalogue is shared by the whole platform."""
        from gridgov.accounts.selectors import is_administrator

        if not self.has_change_permission(request):
            return False
        user: Any = request.user
        return bool(user.is_superuser) or is_administrator(user)

    def _may_export(self, request: HttpRequest) -> bool:
        from gridgov.accounts.selectors import user_has_role

        if not self.has_view_permission(request):
            return False
        user: Any = request.user
        return bool(user.is_superuser) or user_has_role(user, Role.ADMINISTRATOR)

    def _import_preview(self, request: HttpRequest, form: CategoryImportForm) -> dict[str, Any]:
        from gridgov.geo.bulk import read_upload

        upload = form.cleaned_data["file"]
        name = upload.name or "upload"
        try:
            data = read_upload(upload)
            rows = catalogue.catalogue_read(data, name)
        except DomainError as exc:
            form.add_error("file", exc.message)
            return {}
        report = catalogue.catalogue_import(rows, dry_run=True)
        if not report.ok:
            return {"stage": "errors", "file_name": name, **report_context(report)}
        staged = self._stage(request, data=data, name=name, kind="categories")
        return {
            "stage": "preview",
            "token": staged.token,
            "file_name": staged.name,
            **report_context(report),
        }

    def _import_commit(
        self, request: HttpRequest, staged: StagedUpload, meta: dict[str, Any]
    ) -> dict[str, Any]:
        rows = catalogue.catalogue_read(staged.path.read_bytes(), staged.name)
        return report_context(catalogue.catalogue_import(rows))

    def _export(self, request: HttpRequest, form: CategoryExportForm) -> HttpResponseBase:
        from .api_categories import export_response

        scheme = form.cleaned_data["scheme"] or None
        rows = catalogue.catalogue_export(scheme=scheme)
        return export_response(rows, file_format=form.cleaned_data["format"], scheme=scheme)


def report_context(report: catalogue.ImportReport) -> dict[str, Any]:
    """What the report page shows of an import report."""
    changes = catalogue.rows_for_display(report.changes)
    return {
        "report": report,
        "ok": report.ok,
        "error_count": len(report.problems),
        "problems": report.problems[:REPORT_ROWS],
        "more_problems": max(0, len(report.problems) - REPORT_ROWS),
        "changes": [
            {
                "row": c.row,
                "code": f"{c.scheme}:{c.code}",
                "name": c.name,
                "status": c.status,
                "status_label": STATUS_LABELS.get(c.status, c.status),
                "fields": ", ".join(c.fields),
            }
            for c in changes[:REPORT_ROWS]
        ],
        "more_changes": max(0, len(changes) - REPORT_ROWS),
    }


# --- routing and escalation rules ----------------------------------------------------------------


class RoutingRuleForm(forms.ModelForm):
    class Meta:
        model = RoutingRule
        fields = ["category", "region_code", "unit"]

    def clean_region_code(self) -> str:
        code = (self.cleaned_data.get("region_code") or "").strip()
        if code and not (code.isdigit() and len(code) in (6, 9, 12, 15)):
            raise forms.ValidationError(
                _("A region code has 6 (district), 9, 12 or 15 (grid) digits.")
            )
        return code


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin):
    form = RoutingRuleForm
    list_display = ["category", "region_code", "unit", "updated_at"]
    list_filter = ["category__scheme"]
    search_fields = [
        "region_code",
        "unit__name",
        "unit__code",
        "category__code",
        "category__name_zh",
    ]
    list_select_related = ["category", "unit"]
    autocomplete_fields = ["category", "unit"]


class EscalationRuleForm(forms.ModelForm):
    step = forms.ChoiceField(label=_("step"), choices=Step.choices)
    notify_role = forms.ChoiceField(label=_("notify role"), choices=Role.choices)

    class Meta:
        model = EscalationRule
        fields = ["step", "after", "notify_role"]

    def clean_after(self) -> str:
        try:
            return catalogue.normalise_limit(self.cleaned_data.get("after") or "")
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(EscalationRule)
class EscalationRuleAdmin(admin.ModelAdmin):
    form = EscalationRuleForm
    list_display = ["step", "after", "notify_role"]


# --- cases: read-only ----------------------------------------------------------------------------

EVENT_FIELDS = ("version", "at", "actor", "actor_role", "action", "from_state", "to_state", "note")
PHOTO_INLINE_FIELDS = ("uuid", "event", "width", "height", "size", "uploaded_by", "created_at")
PHOTO_FIELDS = (
    "uuid",
    "case",
    "event",
    "width",
    "height",
    "size",
    "sha256",
    "uploaded_by",
    "created_at",
)
#: The reporter's phone is shown masked (``masked_phone``); a photo's GPS position not at all.
CASE_FIELDS = (
    "number",
    "state",
    "version",
    "source",
    "reporter",
    "reporter_name",
    "masked_phone",
    "region_code",
    "grid",
    "lat",
    "lon",
    "address",
    "level",
    "category",
    "attributes",
    "description",
    "urgency",
    "emergency",
    "suggested_unit",
    "lead_unit",
    "step",
    "step_limit",
    "due_soon_at",
    "due_at",
    "light",
    "pending",
    "rework_count",
    "send_back_count",
    "extension_count",
    "reopen_count",
    "supervised",
    "merged_into",
    "rating",
    "reported_at",
    "registered_at",
    "dispatched_at",
    "closed_at",
)


class _ReadOnly:
    """Administrators look; cases change only through the workflow."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CaseEventInline(_ReadOnly, admin.TabularInline):
    model = CaseEvent
    fields = EVENT_FIELDS
    readonly_fields = EVENT_FIELDS
    extra = 0
    ordering = ["version"]


class CasePhotoInline(_ReadOnly, admin.TabularInline):
    model = CasePhoto
    fields = PHOTO_INLINE_FIELDS
    readonly_fields = PHOTO_INLINE_FIELDS
    extra = 0


@admin.register(Case)
class CaseAdmin(_ReadOnly, admin.ModelAdmin):
    list_display = [
        "number",
        "state",
        "category",
        "region_code",
        "lead_unit",
        "urgency",
        "light",
        "due_at",
        "reported_at",
    ]
    list_filter = ["state", "light", "source", "urgency", "emergency", "category__scheme"]
    search_fields = ["number", "region_code"]
    list_select_related = ["category", "lead_unit"]
    date_hierarchy = "reported_at"
    inlines = [CaseEventInline, CasePhotoInline]
    fields = CASE_FIELDS
    readonly_fields = CASE_FIELDS

    @admin.display(description=_("reporter's phone"))
    def masked_phone(self, obj: Case) -> str:
        return mask_phone(obj.reporter_phone) or "–"


@admin.register(CasePhoto)
class CasePhotoAdmin(_ReadOnly, admin.ModelAdmin):
    list_display = ["uuid", "case", "width", "height", "size", "uploaded_by", "created_at"]
    list_select_related = ["case", "uploaded_by"]
    search_fields = ["case__number", "uuid"]
    fields = PHOTO_FIELDS
    readonly_fields = PHOTO_FIELDS
