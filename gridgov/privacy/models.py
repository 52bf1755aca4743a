"""The access log of personal data, the clearance of each role, and the masked-record base.

``AccessLog`` rows are written by ``gridgov.privacy.actions`` whenever a person's record is
opened, a personal value revealed, a list exported or searched. ``Clearance`` says per role how
sensitive a tag the role may see and whether it may reveal personal values; administrators edit
it in the admin.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any, ClassVar, Self

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from gridgov.accounts.models import Role


class PersonalDataMasked(Exception):
    """A record loaded with its personal values masked cannot be saved (it would store masks)."""


class MaskedPersonalData(models.Model):
    """Abstract base of records with encrypted personal fields.

    ``PERSONAL_FIELDS`` maps each encrypted field to its stored mask column. A row loaded with an
    encrypted field deferred (the selectors defer them) gets the mask in that field instead of
    the clear value, so a screen that shows ``person.id_number`` shows the mask and never
    decrypts; such an instance refuses ``save()``. Actions load full rows.
    """

    PERSONAL_FIELDS: ClassVar[dict[str, str]] = {}
    _personal_masked = False

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.is_masked:
            raise PersonalDataMasked(
                f"{type(self).__name__} {self.pk} was loaded with masked personal fields; "
                "change it through its action"
            )
        super().save(*args, **kwargs)

    @classmethod
    def from_db(
        cls,
        db: str | None,
        field_names: Collection[str],
        values: Collection[Any],
        **kwargs: Any,
    ) -> Self:
        instance = super().from_db(db, field_names, values, **kwargs)
        masked = [f for f in cls.PERSONAL_FIELDS if f not in field_names]
        if masked:
            for name in masked:
                mask_column = cls.PERSONAL_FIELDS[name]
                mask = instance.__dict__.get(mask_column) if mask_column in field_names else None
                instance.__dict__[name] = mask if mask is not None else "***"
            instance._personal_masked = True
        return instance

    @property
    def is_masked(self) -> bool:
        return bool(getattr(self, "_personal_masked", False))


class AccessKind(models.TextChoices):
    VIEW = "view", _("view")
    REVEAL = "reveal", _("reveal")
    EXPORT = "export", _("export")
    SEARCH = "search", _("search")


class Channel(models.TextChoices):
    WEB = "web", _("web")
    API = "api", _("API")
    CLI = "cli", _("command line")
    EXPORT = "export", _("export")


class SubjectType(models.TextChoices):
    PERSON = "person", _("person")
    ORGANISATION = "organisation", _("organisation")
    HOUSEHOLD = "household", _("household")


class AccessLog(models.Model):
    """Who saw or revealed whose personal data, when, which fields, from where. Append-only."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    at = models.DateTimeField(_("at"), default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    kind = models.CharField(_("kind"), max_length=10, choices=AccessKind.choices)
    subject_type = models.CharField(
        _("subject type"), max_length=20, choices=SubjectType.choices, blank=True
    )
    subject_uuid = models.UUIDField(_("subject"), null=True, blank=True)
    #: The subject's region (its grid or community code) when logged: scopes the log for
    #: regional administrators.
    region_code = models.CharField(_("region code"), max_length=15, blank=True, db_index=True)
    fields = models.JSONField(_("fields"), default=list, blank=True)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    screen = models.CharField(_("screen"), max_length=200, blank=True)
    reason = models.TextField(_("reason"), blank=True)
    filter = models.JSONField(_("filter"), default=dict, blank=True)
    count = models.PositiveIntegerField(_("count"), default=0)

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name = _("personal data access")
        verbose_name_plural = _("personal data access log")
        indexes = [
            models.Index(fields=["subject_uuid", "at"], name="accesslog_subject_at"),
            models.Index(fields=["user", "at"], name="accesslog_user_at"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.user_id or '-'} {self.kind} {self.subject_uuid}"


class Clearance(models.Model):
    """What a role may see of sensitive data: the highest tag sensitivity and reveal."""

    role = models.CharField(_("role"), max_length=20, choices=Role.choices, unique=True)
    level = models.PositiveSmallIntegerField(
        _("tag sensitivity seen"),
        default=0,
        validators=[MaxValueValidator(2)],
        help_text=_("0: care tags only; 1: also sensitive key-person tags; 2: also confidential"),
    )
    may_reveal = models.BooleanField(
        _("may reveal personal data"),
        default=False,
        help_text=_("May show id and phone numbers in clear, giving a reason (logged)."),
    )

    class Meta:
        ordering = ["role"]
        verbose_name = _("clearance")
        verbose_name_plural = _("clearances")
        constraints = [
            models.CheckConstraint(condition=models.Q(level__lte=2), name="clearance_level_0_2")
        ]

    def __str__(self) -> str:
        return f"{self.get_role_display()}: {self.level}{' +reveal' if self.may_reveal else ''}"
