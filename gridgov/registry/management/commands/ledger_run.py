"""``gridgov ledger_run UUID``: run a ledger step that ``gridgov worker`` claimed.

The worker's ``registry.ledger`` job claims a queued check or commit and starts this command
for it in a process of its own (``gridgov/registry/jobs.py``). Run by hand it refuses an import
that no worker claimed.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from gridgov.core.errors import DomainError
from gridgov.registry.ledger.importer import ledger_run_claimed
from gridgov.registry.models import LedgerImport


class Command(BaseCommand):
    help = "Run the ledger check or commit that the background worker claimed."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("uuid", help="the import's uuid")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            li = LedgerImport.objects.get(uuid=options["uuid"])
        except (LedgerImport.DoesNotExist, ValueError, ValidationError) as exc:
            raise CommandError(f"no ledger import {options['uuid'][:40]}") from exc
        try:
            done = ledger_run_claimed(ledger_import=li)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"ledger {done.uuid}: {done.status} ({done.progress:,} rows)")
