"""``gridgov privacy …``: read the access log, rotate the data key, check the encrypted data.

- ``access-log [--person UUID] [--user NAME] [--since DATE] [--limit N] [--json] --as ADMIN``:
  the log as that administrator may read it (without ``--as``: all of it, for the operator).
- ``rotate-key [--batch 1000]``: re-encrypt every encrypted value not under the current key.
  First move the old key into ``GRIDGOV_DATA_KEYS_OLD`` and set the new ``GRIDGOV_DATA_KEY``;
  the command works in batches (one transaction each), can be interrupted and run again, and
  never changes a look-up hash (they use ``GRIDGOV_LOOKUP_KEY``).
- ``check``: count the encrypted values per key id and report those that cannot be decrypted.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, time
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models, transaction
from django.db.models.functions import Cast

from gridgov.accounts.models import User
from gridgov.core.errors import DomainError
from gridgov.core.worktime import local_zone

from ...crypto import PersonalDataKeyError, decrypt, encrypt, key_ring, token_kid
from ...fields import EncryptedTextField, encrypted_fields
from ...models import AccessLog
from ...selectors import access_log_for


def encrypted_columns() -> Iterator[tuple[type[models.Model], EncryptedTextField]]:
    """Every (model, encrypted field) of the installed apps."""
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        for field in encrypted_fields(model):
            yield model, field


def _tokens(model: type[models.Model], field: EncryptedTextField) -> models.QuerySet[Any]:
    """Rows with a non-empty value, the raw token (not decrypted) in ``raw``."""
    return (
        model._base_manager.annotate(raw=Cast(field.attname, output_field=models.TextField()))
        .exclude(raw__isnull=True)
        .exclude(raw="")
    )


def rotate_column(
    model: type[models.Model], field: EncryptedTextField, *, batch: int
) -> tuple[int, int]:
    """Re-encrypt the column's values that are not under the current key: (rotated, failed)."""
    prefix = f"g1${key_ring().current_kid}$"
    rotated = failed = 0
    last_pk: Any = None
    while True:
        qs = _tokens(model, field).exclude(raw__startswith=prefix).order_by("pk")
        if last_pk is not None:
            qs = qs.filter(pk__gt=last_pk)
        rows = list(qs.values_list("pk", "raw")[:batch])
        if not rows:
            return rotated, failed
        with transaction.atomic():
            for pk, token in rows:
                last_pk = pk
                try:
                    fresh = encrypt(decrypt(token))
                except PersonalDataKeyError:
                    failed += 1
                    continue
                # conditional: a row changed meanwhile keeps its newer value
                rotated += (
                    model._base_manager.annotate(
                        raw=Cast(field.attname, output_field=models.TextField())
                    )
                    .filter(pk=pk, raw=token)
                    .update(**{field.attname: fresh})
                )


class Command(BaseCommand):
    help = "Personal data: the access log, key rotation, and a check of the encrypted values."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="command_name", required=True)

        p = sub.add_parser("access-log", help="who opened or revealed whose personal data")
        p.add_argument("--person", help="one subject's uuid")
        p.add_argument("--user", help="one user's username")
        p.add_argument("--since", help="from this day on (YYYY-MM-DD)")
        p.add_argument("--limit", type=int, default=100)
        p.add_argument("--json", action="store_true", help="one JSON object per line")
        p.add_argument(
            "--as", dest="username", help="read as this administrator (default: everything)"
        )

        p = sub.add_parser("rotate-key", help="re-encrypt every value under the current key")
        p.add_argument("--batch", type=int, default=1000)

        sub.add_parser("check", help="count values per key id; report undecryptable ones")

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["command_name"].replace("-", "_")
        try:
            getattr(self, f"do_{name}")(options)
        except DomainError as exc:
            raise CommandError(exc.message) from exc

    def do_access_log(self, o: dict[str, Any]) -> None:
        since = None
        if o["since"]:
            try:
                since = date.fromisoformat(o["since"])
            except ValueError:
                raise CommandError(
                    f"--since must be a date such as 2026-11-23: {o['since']!r}"
                ) from None
        if o["person"]:
            try:
                uuid.UUID(o["person"])
            except ValueError:
                raise CommandError(f"--person must be a uuid: {o['person']!r}") from None
        if o["username"]:
            actor = User.objects.filter(username=o["username"], is_active=True).first()
            if actor is None:
                raise CommandError(f"no active user {o['username']!r}")
            qs = access_log_for(actor, subject_uuid=o["person"], user=o["user"], since=since)
        else:  # the operator at the console reads everything
            qs = AccessLog.objects.select_related("user").order_by("-at", "-pk")
            if o["person"]:
                qs = qs.filter(subject_uuid=o["person"])
            if o["user"]:
                qs = qs.filter(user__username=o["user"])
            if since is not None:
                qs = qs.filter(at__gte=datetime.combine(since, time.min, tzinfo=local_zone()))
        limit = max(1, min(int(o["limit"]), 100_000))
        for row in qs[:limit]:
            record = {
                "at": row.at.isoformat(),
                "user": row.user.username if row.user else None,
                "kind": row.kind,
                "subject_type": row.subject_type,
                "subject": str(row.subject_uuid) if row.subject_uuid else None,
                "fields": row.fields,
                "channel": row.channel,
                "screen": row.screen,
                "reason": row.reason,
                "filter": row.filter,
                "count": row.count,
            }
            if o["json"]:
                self.stdout.write(json.dumps(record, ensure_ascii=False))
            else:
                self.stdout.write(
                    f"{record['at'][:19]}  {record['user'] or '-':<16} {row.kind:<7} "
                    f"{row.subject_type or '-':<12} {record['subject'] or '-':<36} "
                    f"{row.channel:<6} {','.join(row.fields)}"
                    + (f"  reason: {row.reason}" if row.reason else "")
                    + (
                        f"  filter: {json.dumps(row.filter, ensure_ascii=False)}"
                        if row.filter
                        else ""
                    )
                    + (f"  screen: {row.screen}" if row.screen else "")
                )

    def do_rotate_key(self, o: dict[str, Any]) -> None:
        batch = max(1, int(o["batch"]))
        ring = key_ring()
        self.stdout.write(f"current key {ring.current_kid}; old keys: {len(ring.kids) - 1}")
        total = failures = 0
        for model, field in encrypted_columns():
            rotated, failed = rotate_column(model, field, batch=batch)
            total += rotated
            failures += failed
            self.stdout.write(
                f"{model._meta.label}.{field.name}: {rotated} re-encrypted"
                + (f", {failed} could not be decrypted" if failed else "")
            )
        self.stdout.write(f"done: {total} re-encrypted")
        if failures:
            raise CommandError(
                f"{failures} values could not be decrypted with the configured keys; run "
                "`gridgov privacy check` and add the missing key to GRIDGOV_DATA_KEYS_OLD"
            )

    def do_check(self, o: dict[str, Any]) -> None:
        ring = key_ring()
        bad_total = 0
        self.stdout.write(f"current key {ring.current_kid}; known keys: {', '.join(ring.kids)}")
        for model, field in encrypted_columns():
            kids: Counter[str] = Counter()
            bad: Counter[str] = Counter()
            for _pk, token in _tokens(model, field).values_list("pk", "raw").iterator(2000):
                kid = token_kid(token) or "invalid"
                kids[kid] += 1
                try:
                    decrypt(token)
                except PersonalDataKeyError:
                    bad[kid] += 1
            label = f"{model._meta.label}.{field.name}"
            counts = ", ".join(
                f"{kid}{' (current)' if kid == ring.current_kid else ''}: {n}"
                for kid, n in sorted(kids.items())
            )
            self.stdout.write(f"{label}: {counts or 'no values'}")
            for kid, n in sorted(bad.items()):
                self.stdout.write(f"  {n} under key {kid} cannot be decrypted")
            bad_total += sum(bad.values())
        if bad_total:
            raise CommandError(f"{bad_total} values cannot be decrypted with the configured keys")
        self.stdout.write("all values decrypt")
