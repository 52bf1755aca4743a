"""Base data (人地事物组织): buildings, rooms, households, people, organisations, components.

Every record has a public ``uuid``, the ``region_code`` it is scoped by (its grid's code, or its
community's when no grid is known), a ``version`` bumped by every change, and is closed with a
reason rather than deleted. Records change only through ``gridgov.registry.actions``, which
append a ``RecordChange`` per change; reads go through ``gridgov.registry.selectors``.

Id and phone numbers are stored encrypted (``EncryptedTextField``) beside a keyed look-up hash
and a mask; see ``gridgov.privacy``.
"""

from __future__ import annotations

import unicodedata
import uuid
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from gridgov.core.models import TimeStampedModel
from gridgov.core.querysets import DeferredJoinQuerySet
from gridgov.privacy.fields import EncryptedTextField
from gridgov.privacy.models import MaskedPersonalData


def normalise_address(text: str) -> str:
    """The de-duplication key of an address: NFKC, lower case, letters and digits only.

    ``"和畅路 1 号（3栋）"`` and ``"和畅路1号3栋"`` share the key ``"和畅路1号3栋"``."""
    folded = unicodedata.normalize("NFKC", text or "").lower()
    return "".join(ch for ch in folded if ch.isalnum())[:200]


class ClosedReason(models.TextChoices):
    MOVED_OUT = "moved_out", _("moved out")
    DECEASED = "deceased", _("deceased")
    DUPLICATE = "duplicate", _("duplicate")
    DEMOLISHED = "demolished", _("demolished")
    ERROR = "error", _("entered in error")
    OTHER = "other", _("other")


class RegistryRecord(TimeStampedModel):
    """What every registry record has: public id, scope column, version, closing."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    region_code = models.CharField(
        _("region code"),
        max_length=15,
        db_index=True,
        default="",
        blank=True,
        help_text=_("The grid's code, or the community's when no grid is known."),
    )
    version = models.PositiveIntegerField(_("version"), default=1)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    closed_reason = models.CharField(
        _("reason closed"), max_length=12, choices=ClosedReason.choices, blank=True
    )
    closed_note = models.TextField(_("closing note"), blank=True)

    class Meta:
        abstract = True

    @property
    def is_closed(self) -> bool:
        return self.closed_at is not None


# --- buildings and rooms --------------------------------------------------------------------------


class BuildingType(models.TextChoices):
    RESIDENTIAL = "residential", _("Residential")
    COMMERCIAL = "commercial", _("Commercial")
    MIXED = "mixed", _("Mixed")
    OTHER = "other", _("Other")


class Building(RegistryRecord):
    """A building and its standard address; its grid is found from its location."""

    estate = models.CharField(_("estate"), max_length=100, blank=True)
    number = models.CharField(_("building number"), max_length=30, blank=True)
    address = models.CharField(_("standard address"), max_length=200, blank=True)
    address_key = models.CharField(
        _("address key"), max_length=200, blank=True, default="", db_index=True
    )
    kind = models.CharField(
        _("type"), max_length=12, choices=BuildingType.choices, default=BuildingType.RESIDENTIAL
    )
    floors = models.PositiveSmallIntegerField(_("floors"), null=True, blank=True)
    households = models.PositiveIntegerField(
        _("households"),
        default=0,
        help_text=_("Planned number of households (used when grids are cut)."),
    )
    lon = models.FloatField(_("longitude"))
    lat = models.FloatField(_("latitude"))
    community_code = models.CharField(_("community code"), max_length=12, db_index=True)
    grid = models.ForeignKey(
        "geo.Region",
        verbose_name=_("grid"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="buildings",
    )

    class Meta:
        ordering = ["community_code", "estate", "number"]
        verbose_name = _("building")
        verbose_name_plural = _("buildings")

    def __str__(self) -> str:
        return self.address or f"{self.estate} {self.number}".strip()

    def address_text(self) -> str:
        """The text the address key is made of: the standard address, else estate and number."""
        return self.address or f"{self.estate}{self.number}"


class RoomUse(models.TextChoices):
    SELF_OCCUPIED = "self_occupied", _("self-occupied")
    RENTED = "rented", _("rented")
    VACANT = "vacant", _("vacant")
    BUSINESS = "business", _("business")


class Room(RegistryRecord):
    """A room (户室) of a building: unit (单元), floor, number, use."""

    building = models.ForeignKey(
        Building, verbose_name=_("building"), on_delete=models.CASCADE, related_name="rooms"
    )
    unit = models.CharField(_("unit"), max_length=10, blank=True)
    floor = models.SmallIntegerField(_("floor"), null=True, blank=True)
    number = models.CharField(_("room number"), max_length=20)
    use = models.CharField(
        _("use"), max_length=14, choices=RoomUse.choices, default=RoomUse.SELF_OCCUPIED
    )
    area = models.DecimalField(
        _("area (m²)"), max_digits=8, decimal_places=2, null=True, blank=True
    )

    class Meta:
        ordering = ["building_id", "unit", "floor", "number"]
        verbose_name = _("room")
        verbose_name_plural = _("rooms")
        constraints = [
            models.UniqueConstraint(
                fields=["building", "unit", "number"],
                condition=models.Q(closed_at__isnull=True),
                name="room_open_unique_number",
            )
        ]

    def __str__(self) -> str:
        unit = f"{self.unit}-" if self.unit else ""
        return f"{self.building} {unit}{self.number}"


class Household(RegistryRecord):
    """A household (户): the people living together in a room, one of them its head."""

    room = models.ForeignKey(
        Room,
        verbose_name=_("room"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="households_in",
    )
    number = models.CharField(_("household number"), max_length=40, blank=True)
    head = models.ForeignKey(
        "Person",
        verbose_name=_("head of household"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["region_code", "number", "pk"]
        verbose_name = _("household")
        verbose_name_plural = _("households")

    def __str__(self) -> str:
        return self.number or str(self.uuid)[:8]


# --- people and tags ------------------------------------------------------------------------------


class Sex(models.TextChoices):
    MALE = "male", _("male")
    FEMALE = "female", _("female")
    UNKNOWN = "unknown", _("unknown")


class PersonType(models.TextChoices):
    REGISTERED = "registered", _("registered resident")
    FLOATING = "floating", _("floating resident")
    OVERSEAS = "overseas", _("overseas resident")


class Relation(models.TextChoices):
    HEAD = "head", _("head of household")
    SPOUSE = "spouse", _("spouse")
    CHILD = "child", _("child")
    PARENT = "parent", _("parent")
    GRANDCHILD = "grandchild", _("grandchild")
    GRANDPARENT = "grandparent", _("grandparent")
    SIBLING = "sibling", _("sibling")
    CHILD_IN_LAW = "child_in_law", _("son- or daughter-in-law")
    OTHER_RELATIVE = "other_relative", _("other relative")
    TENANT = "tenant", _("tenant")
    OTHER = "other", _("other")


class Verification(models.TextChoices):
    UNVERIFIED = "unverified", _("unverified")
    VERIFIED = "verified", _("verified")
    DOUBTFUL = "doubtful", _("doubtful")


class Person(MaskedPersonalData, RegistryRecord):
    """A resident. Id number and phone are encrypted; look-ups use their keyed hashes."""

    PERSONAL_FIELDS: ClassVar[dict[str, str]] = {
        "id_number": "id_number_mask",
        "phone": "phone_mask",
    }

    # People are the registry's big table (a million rows is a district): every index costs an
    # import time. The scope filter is a range on region_code (core.scope.prefix_q), which the
    # (region_code, name, closed_at) index serves, so region_code needs no index of its own
    # here; the look-up hashes are compared by equality only (no PostgreSQL pattern-ops twin).
    # No index on name alone: walking names in order to fill a page of "contains" matches
    # reads most of the table when the character is rare or sorts late (seconds at a million).
    region_code = models.CharField(
        _("region code"),
        max_length=15,
        default="",
        blank=True,
        help_text=_("The grid's code, or the community's when no grid is known."),
    )
    name = models.CharField(_("name"), max_length=100)
    sex = models.CharField(_("sex"), max_length=8, choices=Sex.choices, default=Sex.UNKNOWN)
    birth_date = models.DateField(_("date of birth"), null=True, blank=True)
    id_number = EncryptedTextField(_("id number"), blank=True, default="")
    id_number_hash = models.CharField(max_length=64, blank=True, default="", editable=False)
    id_number_mask = models.CharField(_("id number"), max_length=24, blank=True, default="")
    phone = EncryptedTextField(_("phone"), blank=True, default="")
    phone_hash = models.CharField(max_length=64, blank=True, default="", editable=False)
    phone_mask = models.CharField(_("phone"), max_length=24, blank=True, default="")
    ethnicity = models.CharField(_("ethnicity"), max_length=20, blank=True)
    person_type = models.CharField(
        _("person type"), max_length=12, choices=PersonType.choices, default=PersonType.REGISTERED
    )
    household = models.ForeignKey(
        Household,
        verbose_name=_("household"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="members",
    )
    relation = models.CharField(
        _("relation to the head"), max_length=16, choices=Relation.choices, blank=True
    )
    verification = models.CharField(
        _("verification"),
        max_length=12,
        choices=Verification.choices,
        default=Verification.UNVERIFIED,
    )
    moved_in_on = models.DateField(_("moved in on"), null=True, blank=True)
    moved_out_on = models.DateField(_("moved out on"), null=True, blank=True)
    deceased_on = models.DateField(_("deceased on"), null=True, blank=True)
    import_batch = models.ForeignKey(
        "LedgerImport",
        verbose_name=_("imported by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="people",
        # No database constraint and no index: a ledger commit inserts up to a million people,
        # each constraint check is a look-up the database defers to the commit (about a tenth
        # of a PostgreSQL commit), and nothing reads people by their import. Imports are never
        # deleted (Django still keeps PROTECT), and the importer sets the one import it runs.
        db_constraint=False,
        db_index=False,
    )
    import_row = models.PositiveIntegerField(_("row in the ledger"), null=True, blank=True)

    objects = DeferredJoinQuerySet["Person"].as_manager()

    class Meta:
        ordering = ["region_code", "name", "pk"]
        verbose_name = _("person")
        verbose_name_plural = _("people")
        indexes = [
            # Serves the scope range and, covering every column a name search filters and
            # orders on, gives a search's page of ids from the index alone (the deferred join
            # of core.querysets); a grid (region_code equal) reads its names already in order.
            # The id is an included column, never a key: as a key, PostgreSQL may plan a
            # foreign-key check (id = $1) on a table it believes empty as a scan of this whole
            # index, once per row, at the commit of a big import. SQLite ignores ``include``:
            # its indexes end with the rowid, which is the id.
            models.Index(
                fields=["region_code", "name", "closed_at"],
                include=["id"],
                name="person_scope_name",
            ),
            models.Index(fields=["phone_hash"], name="person_phone_hash"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["id_number_hash"],
                condition=~models.Q(id_number_hash=""),
                name="person_id_number_hash_unique",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Sensitivity(models.IntegerChoices):
    NORMAL = 0, _("normal (care tag)")
    SENSITIVE = 1, _("sensitive (key person)")
    CONFIDENTIAL = 2, _("confidential")


class TagAppliesTo(models.TextChoices):
    PERSON = "person", _("person")
    HOUSEHOLD = "household", _("household")


class TagType(TimeStampedModel):
    """A tag administrators define: care tags (level 0) and key-person tags (sensitive)."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name_zh = models.CharField(_("name (Chinese)"), max_length=60)
    name_en = models.CharField(_("name (English)"), max_length=80, blank=True)
    sensitivity = models.PositiveSmallIntegerField(
        _("sensitivity"), choices=Sensitivity.choices, default=Sensitivity.NORMAL
    )
    applies_to = models.CharField(
        _("applies to"), max_length=10, choices=TagAppliesTo.choices, default=TagAppliesTo.PERSON
    )
    active = models.BooleanField(_("active"), default=True)
    order = models.PositiveIntegerField(_("order"), default=0)

    class Meta:
        ordering = ["sensitivity", "order", "code"]
        verbose_name = _("tag type")
        verbose_name_plural = _("tag types")

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        from django.utils import translation

        lang = translation.get_language() or settings.LANGUAGE_CODE
        if lang.startswith("en") and self.name_en:
            return self.name_en
        return self.name_zh


class PersonTag(TimeStampedModel):
    person = models.ForeignKey(
        Person, verbose_name=_("person"), on_delete=models.CASCADE, related_name="tags"
    )
    tag_type = models.ForeignKey(
        TagType, verbose_name=_("tag"), on_delete=models.PROTECT, related_name="person_tags"
    )
    since = models.DateField(_("since"), null=True, blank=True)
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["tag_type__sensitivity", "tag_type__order", "tag_type__code"]
        verbose_name = _("person's tag")
        verbose_name_plural = _("people's tags")
        constraints = [
            models.UniqueConstraint(fields=["person", "tag_type"], name="person_tag_unique")
        ]

    def __str__(self) -> str:
        return f"{self.person_id}:{self.tag_type_id}"


# --- organisations and components -----------------------------------------------------------------


class OrganisationKind(models.TextChoices):
    COMPANY = "company", _("company")
    SHOP = "shop", _("shop")
    SOCIAL_ORGANISATION = "social_organisation", _("social organisation")
    SCHOOL = "school", _("school")
    CLINIC = "clinic", _("clinic")
    GOVERNMENT = "government", _("government body")
    OTHER = "other", _("other")


class Organisation(MaskedPersonalData, RegistryRecord):
    PERSONAL_FIELDS: ClassVar[dict[str, str]] = {"contact_phone": "contact_phone_mask"}

    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(
        _("kind"), max_length=20, choices=OrganisationKind.choices, default=OrganisationKind.COMPANY
    )
    credit_code = models.CharField(_("unified social credit code"), max_length=18, blank=True)
    legal_rep = models.CharField(_("legal representative"), max_length=100, blank=True)
    contact_name = models.CharField(_("contact"), max_length=100, blank=True)
    contact_phone = EncryptedTextField(_("contact phone"), blank=True, default="")
    contact_phone_hash = models.CharField(
        max_length=64, blank=True, default="", db_index=True, editable=False
    )
    contact_phone_mask = models.CharField(_("contact phone"), max_length=24, blank=True)
    staff_count = models.PositiveIntegerField(_("staff"), null=True, blank=True)
    address = models.CharField(_("address"), max_length=200, blank=True)
    building = models.ForeignKey(
        Building,
        verbose_name=_("building"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="organisations",
    )
    lon = models.FloatField(_("longitude"), null=True, blank=True)
    lat = models.FloatField(_("latitude"), null=True, blank=True)

    class Meta:
        ordering = ["region_code", "name", "pk"]
        verbose_name = _("organisation")
        verbose_name_plural = _("organisations")
        constraints = [
            models.UniqueConstraint(
                fields=["credit_code"],
                condition=~models.Q(credit_code=""),
                name="organisation_credit_code_unique",
            )
        ]

    def __str__(self) -> str:
        return self.name


class ComponentStatus(models.TextChoices):
    INTACT = "intact", _("intact")
    DAMAGED = "damaged", _("damaged")
    LOST = "lost", _("lost")
    ABANDONED = "abandoned", _("abandoned")
    REMOVED = "removed", _("removed")


class Component(RegistryRecord):
    """A city component (部件): manhole cover, street light, litter bin…"""

    code = models.CharField(_("component code"), max_length=17, unique=True)
    category = models.ForeignKey(
        "cases.Category",
        verbose_name=_("category"),
        on_delete=models.PROTECT,
        related_name="components",
    )
    lon = models.FloatField(_("longitude"))
    lat = models.FloatField(_("latitude"))
    address = models.CharField(_("address"), max_length=200, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=ComponentStatus.choices, default=ComponentStatus.INTACT
    )
    competent_unit = models.CharField(_("competent unit"), max_length=100, blank=True)
    owner_unit = models.CharField(_("owner unit"), max_length=100, blank=True)
    maintainer_unit = models.CharField(_("maintainer unit"), max_length=100, blank=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("component")
        verbose_name_plural = _("components")

    def __str__(self) -> str:
        return self.code


# --- history --------------------------------------------------------------------------------------


class RecordType(models.TextChoices):
    BUILDING = "building", _("building")
    ROOM = "room", _("room")
    HOUSEHOLD = "household", _("household")
    PERSON = "person", _("person")
    ORGANISATION = "organisation", _("organisation")
    COMPONENT = "component", _("component")
    PERSON_TAG = "person_tag", _("person's tag")


class ChangeAction(models.TextChoices):
    CREATE = "create", _("created")
    UPDATE = "update", _("changed")
    CLOSE = "close", _("closed")
    REOPEN = "reopen", _("reopened")
    TAG = "tag", _("tagged")
    UNTAG = "untag", _("untagged")


class RecordChange(models.Model):
    """One change of one record: who, when, what (``{field: [old, new]}``), why. Append-only.

    Personal fields appear only masked. A tag change carries the tag's sensitivity so that
    history shows it only to users cleared for it. Records created by a ledger import have no
    create row: their first history entry is derived from the import."""

    record_type = models.CharField(_("record type"), max_length=16, choices=RecordType.choices)
    record_uuid = models.UUIDField(_("record"))
    region_code = models.CharField(_("region code"), max_length=15, blank=True, db_index=True)
    version = models.PositiveIntegerField(_("version"))
    action = models.CharField(_("action"), max_length=10, choices=ChangeAction.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    at = models.DateTimeField(_("at"), default=timezone.now)
    reason = models.TextField(_("reason"), blank=True)
    changes = models.JSONField(_("changes"), default=dict, blank=True)
    sensitivity = models.PositiveSmallIntegerField(_("sensitivity"), default=0)
    import_batch = models.ForeignKey(
        "LedgerImport",
        verbose_name=_("import"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="changes",
    )

    class Meta:
        ordering = ["at", "pk"]
        verbose_name = _("record change")
        verbose_name_plural = _("record changes")
        indexes = [models.Index(fields=["record_uuid", "at"], name="recordchange_record_at")]

    def __str__(self) -> str:
        return f"{self.record_type} {self.record_uuid} v{self.version} {self.action}"


# --- ledger import --------------------------------------------------------------------------------


class LedgerKind(models.TextChoices):
    PERSON = "person", _("people")


class LedgerTemplate(models.Model):
    """A remembered column mapping, found again by the signature of a ledger's headers."""

    signature = models.CharField(_("signature"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200, blank=True)
    kind = models.CharField(
        _("kind"), max_length=12, choices=LedgerKind.choices, default=LedgerKind.PERSON
    )
    mapping = models.JSONField(_("column mapping"), default=dict, blank=True)
    header_row = models.PositiveIntegerField(_("header row"), default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)

    class Meta:
        ordering = ["-last_used_at", "name"]
        verbose_name = _("ledger template")
        verbose_name_plural = _("ledger templates")

    def __str__(self) -> str:
        return self.name or self.signature[:12]


class ImportStatus(models.TextChoices):
    UPLOADED = "uploaded", _("uploaded")
    CHECK_QUEUED = "check_queued", _("waiting to be checked")
    CHECKING = "checking", _("checking")
    CHECKED = "checked", _("checked")
    FAILED_CHECK = "failed_check", _("check failed")
    COMMIT_QUEUED = "commit_queued", _("waiting to be imported")
    IMPORTING = "importing", _("importing")
    IMPORTED = "imported", _("imported")
    FAILED = "failed", _("failed")


class LedgerImport(TimeStampedModel):
    """One upload of a ledger (台账): checked in a dry run, then committed all or nothing."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(
        _("kind"), max_length=12, choices=LedgerKind.choices, default=LedgerKind.PERSON
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("uploaded by"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    file_name = models.CharField(_("file name"), max_length=255)
    file = models.FileField(_("file"), upload_to="ledger/", max_length=300, blank=True)
    encoding = models.CharField(_("encoding"), max_length=20, blank=True)
    template = models.ForeignKey(
        LedgerTemplate,
        verbose_name=_("template"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="imports",
    )
    mapping = models.JSONField(_("column mapping"), default=dict, blank=True)
    status = models.CharField(
        _("status"), max_length=14, choices=ImportStatus.choices, default=ImportStatus.UPLOADED
    )
    rows_total = models.PositiveIntegerField(_("rows"), default=0)
    rows_ok = models.PositiveIntegerField(_("valid rows"), default=0)
    rows_bad = models.PositiveIntegerField(_("invalid rows"), default=0)
    created = models.PositiveIntegerField(_("records created"), default=0)
    updated = models.PositiveIntegerField(_("records updated"), default=0)
    progress = models.PositiveIntegerField(_("rows processed"), default=0)
    error_sheet = models.FileField(
        _("error sheet"), upload_to="ledger/errors/", max_length=300, blank=True
    )
    error_summary = models.JSONField(_("problems (first 200)"), default=list, blank=True)
    region_code = models.CharField(_("importer's region"), max_length=15, blank=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    message = models.TextField(_("message"), blank=True)
    #: a large ledger's check or commit runs in the background (``gridgov worker``): who asked
    #: for the queued step and when (cleared when the step ends)
    queued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("queued by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    queued_at = models.DateTimeField(_("queued at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("ledger import")
        verbose_name_plural = _("ledger imports")

    def __str__(self) -> str:
        return f"{self.file_name} ({self.get_status_display()})"
