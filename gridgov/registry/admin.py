"""The admin site for base data.

Records are shown read-only: every change goes through ``gridgov.registry.actions`` (scope,
validation, history), so the admin never writes them and never deletes them. Lists and pages
show id and phone numbers only masked; the encrypted columns are not even read (the querysets
defer them), and opening a person's page is logged like any other open. Searching by an id
number or a phone number matches its keyed hash. Tag types are edited here by administrators.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from gridgov.privacy import crypto
from gridgov.privacy.actions import access_log_view
from gridgov.privacy.models import Channel, SubjectType

from .models import (
    Building,
    Component,
    Household,
    LedgerImport,
    LedgerTemplate,
    Organisation,
    Person,
    PersonTag,
    RecordChange,
    Room,
    TagType,
)
from .selectors import PERSON_DETAIL_FIELDS, PERSON_VIEW_FIELDS, search_kind

RECORD_FIELDS = ("uuid", "region_code", "version", "closed_at", "closed_reason", "closed_note")


class LookOnly:
    """Administrators look; records change through the registry's actions only."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyAdmin(LookOnly, admin.ModelAdmin):
    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fields or ()


class ReadOnlyInline(LookOnly, admin.TabularInline):
    extra = 0


@admin.register(Building)
class BuildingAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "kind", "households", "region_code", "grid", "closed_at"]
    list_filter = ["kind", ("closed_at", admin.EmptyFieldListFilter)]
    search_fields = ["address", "estate", "=community_code", "=region_code", "=uuid"]
    list_select_related = ["grid"]
    fields = (
        "estate",
        "number",
        "address",
        "address_key",
        "kind",
        "floors",
        "households",
        "lon",
        "lat",
        "community_code",
        "grid",
        *RECORD_FIELDS,
    )


@admin.register(Room)
class RoomAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "unit", "floor", "number", "use", "region_code", "closed_at"]
    list_filter = ["use", ("closed_at", admin.EmptyFieldListFilter)]
    search_fields = ["number", "building__address", "=region_code", "=uuid"]
    list_select_related = ["building"]
    fields = ("building", "unit", "floor", "number", "use", "area", *RECORD_FIELDS)


@admin.register(Household)
class HouseholdAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "room", "head", "region_code", "closed_at"]
    search_fields = ["number", "=region_code", "=uuid"]
    list_select_related = ["room", "room__building", "head"]
    fields = ("room", "number", "head", *RECORD_FIELDS)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Household]:
        return super().get_queryset(request).defer("head__id_number", "head__phone")


class PersonTagInline(ReadOnlyInline):
    model = PersonTag
    fields = ("tag_type", "since", "note", "created_by", "created_at")
    readonly_fields = fields


class HashSearchMixin:
    """Search by name or text as usual; an id number or phone number by its keyed hash."""

    hash_fields: dict[str, str] = {}

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        kind = search_kind(search_term) if search_term else "name"
        column = self.hash_fields.get(kind)
        if column:
            digest = crypto.lookup_hash(kind, search_term)
            return queryset.filter(**{column: digest}), False
        return super().get_search_results(request, queryset, search_term)  # type: ignore[misc]


@admin.register(Person)
class PersonAdmin(HashSearchMixin, ReadOnlyAdmin):
    list_display = [
        "name",
        "sex",
        "birth_date",
        "id_number_mask",
        "phone_mask",
        "person_type",
        "region_code",
        "closed_at",
    ]
    list_filter = [
        "person_type",
        "sex",
        "verification",
        ("closed_at", admin.EmptyFieldListFilter),
    ]
    search_fields = ["name", "=region_code", "=uuid"]
    hash_fields = {crypto.ID_NUMBER: "id_number_hash", crypto.PHONE: "phone_hash"}
    show_full_result_count = False
    inlines = [PersonTagInline]
    fields = (*PERSON_DETAIL_FIELDS, "import_batch", "import_row", *RECORD_FIELDS)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Person]:
        return super().get_queryset(request).defer(*Person.PERSONAL_FIELDS)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        person = self.get_queryset(request).filter(pk=object_id).only("uuid", "region_code")
        found = person.first() if object_id.isdigit() else None
        if found is not None and response.status_code == 200:
            access_log_view(
                actor=request.user,
                subject_type=SubjectType.PERSON,
                subject_uuid=found.uuid,
                fields=PERSON_VIEW_FIELDS,
                channel=Channel.WEB,
                screen="admin:registry_person_change",
                region_code=found.region_code,
            )
        return response


@admin.register(Organisation)
class OrganisationAdmin(HashSearchMixin, ReadOnlyAdmin):
    list_display = ["name", "kind", "credit_code", "contact_phone_mask", "region_code", "closed_at"]
    list_filter = ["kind", ("closed_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "=credit_code", "=region_code", "=uuid"]
    hash_fields = {crypto.PHONE: "contact_phone_hash"}
    fields = (
        "name",
        "kind",
        "credit_code",
        "legal_rep",
        "contact_name",
        "contact_phone_mask",
        "staff_count",
        "address",
        "building",
        "lon",
        "lat",
        *RECORD_FIELDS,
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Organisation]:
        return super().get_queryset(request).defer(*Organisation.PERSONAL_FIELDS)


@admin.register(Component)
class ComponentAdmin(ReadOnlyAdmin):
    list_display = ["code", "category", "status", "region_code", "closed_at"]
    list_filter = ["status", ("closed_at", admin.EmptyFieldListFilter)]
    search_fields = ["=code", "address", "=region_code", "=uuid"]
    list_select_related = ["category"]
    fields = (
        "code",
        "category",
        "lon",
        "lat",
        "address",
        "status",
        "competent_unit",
        "owner_unit",
        "maintainer_unit",
        *RECORD_FIELDS,
    )


@admin.register(RecordChange)
class RecordChangeAdmin(ReadOnlyAdmin):
    list_display = ["at", "record_type", "record_uuid", "version", "action", "actor"]
    list_filter = ["record_type", "action"]
    search_fields = ["=record_uuid", "=region_code"]
    list_select_related = ["actor"]
    date_hierarchy = "at"
    fields = (
        "record_type",
        "record_uuid",
        "region_code",
        "version",
        "action",
        "actor",
        "at",
        "reason",
        "changes",
        "sensitivity",
        "import_batch",
    )


@admin.register(TagType)
class TagTypeAdmin(admin.ModelAdmin):
    list_display = ["code", "name_zh", "name_en", "sensitivity", "applies_to", "active", "order"]
    list_filter = ["sensitivity", "applies_to", "active"]
    list_editable = ["active", "order"]
    search_fields = ["code", "name_zh", "name_en"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """A tag type in use is retired (``active`` off), never deleted."""
        if obj is not None and obj.person_tags.exists():
            return False
        return super().has_delete_permission(request, obj)


@admin.register(LedgerTemplate)
class LedgerTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "signature", "header_row", "last_used_at"]
    search_fields = ["name", "=signature"]
    readonly_fields = ["signature", "kind", "created_by", "created_at", "last_used_at"]


@admin.register(LedgerImport)
class LedgerImportAdmin(ReadOnlyAdmin):
    list_display = [
        "file_name",
        "kind",
        "status",
        "created_by",
        "rows_total",
        "rows_ok",
        "rows_bad",
        "created",
        "updated",
        "created_at",
    ]
    list_filter = ["status", "kind"]
    search_fields = ["file_name", "=uuid"]
    list_select_related = ["created_by"]
    fields = (
        "uuid",
        "kind",
        "created_by",
        "file_name",
        "encoding",
        "template",
        "mapping",
        "status",
        "rows_total",
        "rows_ok",
        "rows_bad",
        "created",
        "updated",
        "progress",
        "error_summary",
        "region_code",
        "started_at",
        "finished_at",
        "message",
    )
