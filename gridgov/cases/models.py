"""Categories, routing and escalation rules, cases, their timeline and photos.

Cases change only through ``gridgov.cases.actions`` following the table in
``gridgov.cases.workflow``; every change appends one ``CaseEvent``.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import models
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from gridgov.accounts.models import UnitKind
from gridgov.core.models import TimeStampedModel

from .workflow import State

if TYPE_CHECKING:
    from gridgov.core.photos import StoredPhoto


class Scheme(models.TextChoices):
    LEGACY = "legacy", _("CJ/T 214 (4-digit)")
    GBT47678 = "gbt47678", _("GB/T 47678.5 (5-digit)")
    SOCIAL = "social", _("Social governance")


class CategoryClass(models.TextChoices):
    COMPONENT = "component", _("Component")
    EVENT = "event", _("Event")


class Urgency(models.TextChoices):
    NORMAL = "normal", _("Normal")
    URGENT = "urgent", _("Urgent")
    CRITICAL = "critical", _("Critical")


class Datatype(models.TextChoices):
    """Open311 GeoReport v2 attribute datatypes."""

    STRING = "string", _("Text (one line)")
    NUMBER = "number", _("Number")
    DATETIME = "datetime", _("Date and time")
    TEXT = "text", _("Text (several lines)")
    SINGLEVALUELIST = "singlevaluelist", _("One of a list")
    MULTIVALUELIST = "multivaluelist", _("Several of a list")


def default_urgency_levels() -> list[str]:
    return [Urgency.NORMAL, Urgency.URGENT]


class Category(TimeStampedModel):
    """A problem category: a major (no parent) or a minor under it.

    Time limits are working-time spans written as ``30m``, ``4h`` or ``1d`` (see
    ``gridgov.cases.deadlines.parse_limit``); a minor without its own limit uses its major's.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    scheme = models.CharField(_("scheme"), max_length=12, choices=Scheme.choices)
    code = models.CharField(_("code"), max_length=12)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("major category"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )
    name_zh = models.CharField(_("name (Chinese)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=120, blank=True)
    klass = models.CharField(_("class"), max_length=10, choices=CategoryClass.choices)
    default_unit_kind = models.CharField(
        _("default responsible unit type"),
        max_length=24,
        choices=UnitKind.choices,
        blank=True,
    )
    register_limit = models.CharField(_("register and dispatch within"), max_length=12, blank=True)
    urgent_register_limit = models.CharField(
        _("register and dispatch within (urgent)"), max_length=12, blank=True
    )
    sign_limit = models.CharField(_("sign for within"), max_length=12, blank=True)
    handle_limit = models.CharField(_("handle within"), max_length=12, blank=True)
    check_limit = models.CharField(_("check within"), max_length=12, blank=True)
    urgency_levels = models.JSONField(_("urgency levels"), default=default_urgency_levels)
    closing_criteria = models.TextField(_("closing criteria"), blank=True)
    duplicate_radius_m = models.PositiveIntegerField(_("duplicate radius (m)"), default=50)
    duplicate_window_hours = models.PositiveIntegerField(_("duplicate window (hours)"), default=72)
    is_active = models.BooleanField(_("active"), default=True)
    order = models.PositiveIntegerField(_("order"), default=0)

    class Meta:
        ordering = ["scheme", "code"]
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        constraints = [
            models.UniqueConstraint(fields=["scheme", "code"], name="category_scheme_code_unique")
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @property
    def name(self) -> str:
        """The name in the active language (Chinese unless English is chosen and known)."""
        lang = translation.get_language() or settings.LANGUAGE_CODE
        if lang.startswith("en") and self.name_en:
            return self.name_en
        return self.name_zh

    def limit(self, step: str) -> str:
        """This category's limit for a step (``register``, ``urgent_register``, ``sign``,
        ``handle``, ``check``), falling back to the major's; "" when neither sets one."""
        value: str = getattr(self, f"{step}_limit", "")
        if not value and self.parent_id is not None and self.parent is not None:
            return self.parent.limit(step)
        return value


class CategoryAttribute(models.Model):
    """A custom attribute of a category, in Open311 GeoReport v2 terms."""

    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="attributes")
    variable = models.BooleanField(_("entered by the reporter"), default=True)
    code = models.SlugField(_("code"), max_length=40)
    datatype = models.CharField(_("datatype"), max_length=16, choices=Datatype.choices)
    required = models.BooleanField(_("required"), default=False)
    description = models.CharField(_("question"), max_length=200)
    datatype_description = models.CharField(_("hint"), max_length=200, blank=True)
    order = models.PositiveIntegerField(_("order"), default=0)
    values = models.JSONField(
        _("values"),
        default=list,
        blank=True,
        help_text=_('For lists: [{"key": "k", "name": "shown name"}, …]'),
    )

    class Meta:
        ordering = ["category_id", "order", "code"]
        verbose_name = _("category attribute")
        verbose_name_plural = _("category attributes")
        constraints = [
            models.UniqueConstraint(fields=["category", "code"], name="attribute_code_unique")
        ]

    def __str__(self) -> str:
        return self.code

    def value_keys(self) -> list[str]:
        return [str(v.get("key")) for v in self.values or [] if isinstance(v, dict)]


class RoutingRule(TimeStampedModel):
    """Category × region → the unit suggested at dispatch. The most specific rule wins: a longer
    region prefix first, then a rule naming the category (or its major) over one for any."""

    category = models.ForeignKey(
        Category,
        verbose_name=_("category"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="routing_rules",
        help_text=_("Blank: any category. A major category covers its minors."),
    )
    region_code = models.CharField(
        _("region code"),
        max_length=15,
        blank=True,
        help_text=_("The rule applies in this region's subtree; blank: everywhere."),
    )
    unit = models.ForeignKey(
        "accounts.Unit", verbose_name=_("unit"), on_delete=models.CASCADE, related_name="+"
    )

    class Meta:
        ordering = ["-region_code", "category_id"]
        verbose_name = _("routing rule")
        verbose_name_plural = _("routing rules")

    def __str__(self) -> str:
        return f"{self.category or '*'} @ {self.region_code or '*'} → {self.unit}"


class EscalationRule(TimeStampedModel):
    """When a step has not moved for a span of working time, notify a role in the case's
    region (e.g. not signed for within 24 working hours → the shift leader). Applied by the
    deadline sweeper."""

    step = models.CharField(_("step"), max_length=12, unique=True)
    after = models.CharField(_("after"), max_length=12, help_text=_("e.g. 24h, 2d, 30m"))
    notify_role = models.CharField(_("notify role"), max_length=20)

    class Meta:
        ordering = ["step"]
        verbose_name = _("escalation rule")
        verbose_name_plural = _("escalation rules")

    def __str__(self) -> str:
        return f"{self.step} +{self.after} → {self.notify_role}"


class CaseSequence(models.Model):
    """The last case number handed out per district and local date."""

    key = models.CharField(max_length=20, unique=True)
    last = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.key}:{self.last}"


class Source(models.TextChoices):
    GRID_WORKER = "grid_worker", _("Grid worker")
    SUPERVISOR = "supervisor", _("Supervisor")
    RESIDENT = "resident", _("Resident")
    HOTLINE = "hotline", _("Hotline")
    API = "api", _("API")
    SENSOR = "sensor", _("Sensor")


class HandlingLevel(models.TextChoices):
    GRID = "grid", _("Grid")
    COMMUNITY = "community", _("Community")
    STREET = "street", _("Street")
    DISTRICT = "district", _("District")


class Light(models.TextChoices):
    NONE = "", _("No deadline")
    GREEN = "green", _("Green")
    YELLOW = "yellow", _("Yellow")
    RED = "red", _("Red")


#: The columns the case list filters on besides scope and dates (see the list indexes).
_LIST_FILTER_COLUMNS = [
    "state",
    "category",
    "source",
    "due_at",
    "due_soon_at",
    "supervised",
    "emergency",
    "urgency",
    "pending",
]


class Case(models.Model):
    """One reported problem on its way through the closed loop."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    number = models.CharField(_("case number"), max_length=24)  # unique: Meta.constraints
    version = models.PositiveIntegerField(_("version"), default=1)
    state = models.CharField(_("state"), max_length=16, choices=State.choices)
    source = models.CharField(_("source"), max_length=12, choices=Source.choices)
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("reporter"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reported_cases",
        db_index=False,  # case_reporter_reported leads with it
    )
    reporter_name = models.CharField(_("reporter's name"), max_length=60, blank=True)
    reporter_phone = models.CharField(_("reporter's phone"), max_length=30, blank=True)
    # where
    region_code = models.CharField(_("grid code"), max_length=15)
    # The grid code's street and community prefixes, stored so that a street's or a community's
    # newest cases are one index range in report order (``case_street_list`` below), not a
    # range of grids to sort. Set from ``region_code`` on every save.
    street_code = models.CharField(_("street code"), max_length=9, blank=True, editable=False)
    community_code = models.CharField(
        _("community code"), max_length=12, blank=True, editable=False
    )
    grid = models.ForeignKey(
        "geo.Region",
        verbose_name=_("grid"),
        null=True,
        on_delete=models.PROTECT,
        related_name="cases",
    )
    lat = models.FloatField(_("latitude"))
    lon = models.FloatField(_("longitude"))
    address = models.CharField(_("address"), max_length=200, blank=True)
    level = models.CharField(
        _("handling level"),
        max_length=10,
        choices=HandlingLevel.choices,
        default=HandlingLevel.GRID,
    )
    # what
    category = models.ForeignKey(
        Category,
        verbose_name=_("category"),
        on_delete=models.PROTECT,
        related_name="cases",
        db_index=False,  # case_category_reported leads with it
    )
    attributes = models.JSONField(_("attributes"), default=dict, blank=True)
    description = models.TextField(_("description"))
    urgency = models.CharField(
        _("urgency"), max_length=10, choices=Urgency.choices, default=Urgency.NORMAL
    )
    emergency = models.BooleanField(_("emergency path"), default=False)
    # who handles it
    suggested_unit = models.ForeignKey(
        "accounts.Unit",
        verbose_name=_("suggested unit"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    lead_unit = models.ForeignKey(
        "accounts.Unit",
        verbose_name=_("lead unit"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="led_cases",
        db_index=False,  # case_unit_state leads with it
    )
    assisting_units = models.ManyToManyField(
        "accounts.Unit",
        verbose_name=_("assisting units"),
        blank=True,
        related_name="assisted_cases",
    )
    # the open step's clock (working time), stored so the sweeper and the lists use indexes
    step = models.CharField(_("open step"), max_length=12, blank=True)
    step_started_at = models.DateTimeField(_("step started at"), null=True, blank=True)
    step_limit = models.CharField(_("step limit"), max_length=12, blank=True)
    due_soon_at = models.DateTimeField(_("due soon at"), null=True, blank=True)
    due_at = models.DateTimeField(_("due at"), null=True, blank=True)
    light = models.CharField(
        _("light"), max_length=6, choices=Light.choices, blank=True, default=Light.NONE
    )
    escalate_at = models.DateTimeField(_("escalate at"), null=True, blank=True)
    pending = models.CharField(_("pending request"), max_length=12, blank=True)
    pending_params = models.JSONField(default=dict, blank=True)
    # counts and flags
    rework_count = models.PositiveSmallIntegerField(_("reworks"), default=0)
    send_back_count = models.PositiveSmallIntegerField(_("send-backs"), default=0)
    extension_count = models.PositiveSmallIntegerField(_("extensions"), default=0)
    reopen_count = models.PositiveSmallIntegerField(_("reopened"), default=0)
    supervised = models.BooleanField(_("supervised"), default=False)
    merged_into = models.ForeignKey(
        "self",
        verbose_name=_("merged into"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="merged_cases",
    )
    rating = models.PositiveSmallIntegerField(_("reporter's rating"), null=True, blank=True)
    # milestones
    reported_at = models.DateTimeField(_("reported at"))
    registered_at = models.DateTimeField(_("registered at"), null=True, blank=True)
    dispatched_at = models.DateTimeField(_("dispatched at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-reported_at"]
        verbose_name = _("case")
        verbose_name_plural = _("cases")
        indexes = [
            models.Index(fields=["due_at"], name="case_due_at"),
            models.Index(fields=["due_soon_at"], name="case_due_soon_at"),
            models.Index(fields=["escalate_at"], name="case_escalate_at"),
            models.Index(fields=["state", "light"], name="case_state_light"),
            models.Index(fields=["region_code", "reported_at"], name="case_region_reported"),
            # The case lists (selectors.cases_filtered): a scope level, then report order, then
            # the columns the list filters on, so a filter is checked in the index and a table
            # row is read only for the page (and for text search).
            *[
                models.Index(
                    fields=[level, "reported_at", "id", *_LIST_FILTER_COLUMNS],
                    name=f"case_{level.split('_')[0]}_list",
                )
                for level in ("street_code", "community_code")
            ],
            models.Index(
                fields=["reported_at", "id", *_LIST_FILTER_COLUMNS], name="case_reported_list"
            ),
            models.Index(fields=["lead_unit", "state"], name="case_unit_state"),
            models.Index(fields=["category", "reported_at"], name="case_category_reported"),
            models.Index(fields=["reporter", "reported_at"], name="case_reporter_reported"),
            # the sweeper's claims (sweeper.py): only clocks whose light may still change, so a
            # pass costs what changed, not the number of open (mostly red) cases
            models.Index(
                fields=["due_soon_at"], name="case_sweep_yellow", condition=models.Q(light="green")
            ),
            models.Index(
                fields=["due_at"],
                name="case_sweep_red",
                condition=models.Q(light__in=["green", "yellow"]),
            ),
        ]
        # Every report writes each index above: no column has a single-column index that a
        # composite one already leads with (state, region_code, reported_at, category,
        # lead_unit, reporter), and the number's uniqueness is a constraint, which on
        # PostgreSQL has no pattern-ops twin (number search is "contains", which no B-tree
        # serves).
        constraints = [models.UniqueConstraint(fields=["number"], name="case_number_unique")]

    def __str__(self) -> str:
        return self.number

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.street_code = self.region_code[:9]
        self.community_code = self.region_code[:12]
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "region_code" in update_fields:
            kwargs["update_fields"] = {*update_fields, "street_code", "community_code"}
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return f"/cases/{self.number}/"


class CaseEvent(models.Model):
    """One transition on a case's timeline (append-only). ``version`` is the case's version
    after the transition, so a case has exactly one event per version."""

    case = models.ForeignKey(
        Case,
        on_delete=models.CASCADE,
        related_name="events",
        db_index=False,  # case_event_version_unique leads with it
    )
    version = models.PositiveIntegerField()
    at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_role = models.CharField(max_length=20, blank=True)
    action = models.CharField(max_length=24)
    from_state = models.CharField(max_length=16, blank=True)
    to_state = models.CharField(max_length=16, blank=True)
    note = models.TextField(blank=True)
    params: models.JSONField[Any, Any] = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["case_id", "version"]
        verbose_name = _("case event")
        verbose_name_plural = _("case events")
        constraints = [
            models.UniqueConstraint(fields=["case", "version"], name="case_event_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.case_id}#{self.version} {self.action}"


class StoredImage(models.Model):
    """A re-encoded photo in storage (``gridgov.core.photos``): its files and what is known of
    it. The GPS position is kept only when the reporter allowed it."""

    name = models.CharField(max_length=200)
    thumbnail_name = models.CharField(max_length=200)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    gps_lat = models.FloatField(null=True, blank=True)
    gps_lon = models.FloatField(null=True, blank=True)

    class Meta:
        abstract = True

    def stored(self) -> StoredPhoto:
        from gridgov.core.photos import StoredPhoto

        known = self.gps_lat is not None and self.gps_lon is not None
        return StoredPhoto(
            name=self.name,
            thumbnail_name=self.thumbnail_name,
            width=self.width,
            height=self.height,
            size=self.size,
            sha256=self.sha256,
            gps=(float(self.gps_lat or 0), float(self.gps_lon or 0)) if known else None,
            source_format=str(getattr(self, "source_format", "jpeg")),
        )

    @staticmethod
    def fields_of(photo: StoredPhoto) -> dict[str, Any]:
        """The model fields of a stored photo."""
        return {
            "name": photo.name,
            "thumbnail_name": photo.thumbnail_name,
            "width": photo.width,
            "height": photo.height,
            "size": photo.size,
            "sha256": photo.sha256,
            "gps_lat": photo.gps[0] if photo.gps else None,
            "gps_lon": photo.gps[1] if photo.gps else None,
        }


class CasePhoto(StoredImage):
    """A re-encoded photo (no EXIF) of a report, a feedback, a verification or a check."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="photos")
    event = models.ForeignKey(
        CaseEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="photos"
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(StoredImage.Meta):
        ordering = ["case_id", "created_at", "id"]
        verbose_name = _("case photo")
        verbose_name_plural = _("case photos")

    def __str__(self) -> str:
        return str(self.uuid)


class PhotoUpload(StoredImage):
    """A photo uploaded ahead of the report or action it belongs to (API clients on phones
    upload while the user types). Its uploader names it by ``uuid`` in the report or action,
    which turns it into a ``CasePhoto``; unused uploads are deleted after a day."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    source_format = models.CharField(max_length=8)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta(StoredImage.Meta):
        verbose_name = _("photo upload")
        verbose_name_plural = _("photo uploads")

    def __str__(self) -> str:
        return str(self.uuid)
