"""The history of registry records: ``RecordChange`` rows and the entries shown on a record.

A change is stored as ``{field: [old, new]}`` with values made JSON-friendly: dates as ISO
text, related records by uuid (regions by code, categories by code), and personal fields
(``id_number``, ``phone``, ``contact_phone``) only as their masks. A record created by a ledger
import has no create row; its first entry is derived from its ``import_batch``/``import_row``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import models
from django.utils import timezone

from gridgov.core.masking import mask_id_number, mask_phone

from .models import ChangeAction, LedgerImport, RecordChange, RecordType

#: Personal fields: recorded only masked.
PERSONAL_MASKS = {"id_number": mask_id_number, "phone": mask_phone, "contact_phone": mask_phone}

_RECORD_TYPES = {
    "Building": RecordType.BUILDING,
    "Room": RecordType.ROOM,
    "Household": RecordType.HOUSEHOLD,
    "Person": RecordType.PERSON,
    "Organisation": RecordType.ORGANISATION,
    "Component": RecordType.COMPONENT,
}


def record_type_of(record: models.Model) -> str:
    return _RECORD_TYPES[type(record).__name__]


def shown(name: str, value: Any) -> Any:
    """A value as the history stores it (JSON, personal values masked)."""
    if name in PERSONAL_MASKS:
        return PERSONAL_MASKS[name](value) if value else ""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, models.Model):
        for attr in ("uuid", "code"):
            found = getattr(value, attr, None)
            if found:
                return str(found)
        return str(value.pk)
    return str(value)


def diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[Any]]:
    """``{field: [old, new]}`` for the fields whose shown values differ."""
    changes: dict[str, list[Any]] = {}
    for name, value in new.items():
        before, after = shown(name, old.get(name)), shown(name, value)
        if before != after or (name in PERSONAL_MASKS and old.get(name) != value):
            changes[name] = [before, after]
    return changes


def created(values: dict[str, Any]) -> dict[str, list[Any]]:
    """The changes of a create: every field given a value."""
    return {
        name: [None, shown(name, value)]
        for name, value in values.items()
        if value not in (None, "", [], {})
    }


def record_change(
    *,
    record: Any,
    action: str,
    actor: Any,
    changes: dict[str, Any],
    reason: str = "",
    at: datetime | None = None,
    record_type: str | None = None,
    sensitivity: int = 0,
    import_batch: LedgerImport | None = None,
) -> RecordChange:
    return RecordChange.objects.create(
        record_type=record_type or record_type_of(record),
        record_uuid=record.uuid,
        region_code=getattr(record, "region_code", "") or "",
        version=record.version,
        action=action,
        actor=actor if actor is not None and getattr(actor, "pk", None) else None,
        at=at or timezone.now(),
        reason=reason,
        changes=changes,
        sensitivity=sensitivity,
        import_batch=import_batch,
    )


@dataclass(frozen=True)
class HistoryEntry:
    """One line of a record's history as shown to a user."""

    at: datetime
    action: str
    version: int
    actor: Any = None
    reason: str = ""
    changes: dict[str, Any] = field(default_factory=dict)
    record_type: str = ""
    import_batch: LedgerImport | None = None
    import_row: int | None = None

    @property
    def action_label(self) -> str:
        try:
            return str(ChangeAction(self.action).label)
        except ValueError:
            return self.action


def history_of(record: Any, *, max_sensitivity: int) -> list[HistoryEntry]:
    """The record's history, oldest first: the import it came from (if any), then its changes.

    Tag changes above ``max_sensitivity`` are left out."""
    entries: list[HistoryEntry] = []
    batch_id = getattr(record, "import_batch_id", None)
    if batch_id is not None:
        batch = LedgerImport.objects.select_related("created_by").get(pk=batch_id)
        entries.append(
            HistoryEntry(
                at=batch.finished_at or batch.started_at or batch.created_at,
                action=ChangeAction.CREATE,
                version=1,
                actor=batch.created_by,
                reason="",
                record_type=record_type_of(record),
                import_batch=batch,
                import_row=getattr(record, "import_row", None),
            )
        )
    rows = (
        RecordChange.objects.filter(record_uuid=record.uuid, sensitivity__lte=max_sensitivity)
        .select_related("actor", "import_batch")
        .order_by("at", "pk")
    )
    entries.extend(
        HistoryEntry(
            at=c.at,
            action=c.action,
            version=c.version,
            actor=c.actor,
            reason=c.reason,
            changes=c.changes,
            record_type=c.record_type,
            import_batch=c.import_batch,
        )
        for c in rows
    )
    return entries
