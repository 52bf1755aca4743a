"""``gridgov sweep``: one pass of the deadline sweeper now (the worker runs it every minute)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.translation import gettext as _

from gridgov.cases.sweeper import DEFAULT_BATCH, sweep
from gridgov.core.worktime import local_zone


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise CommandError(
            _("%(value)s is not a date and time: write it as 2026-11-23T09:30 (ISO 8601)")
            % {"value": text}
        ) from exc
    return value.replace(tzinfo=local_zone()) if timezone.is_naive(value) else value


class Command(BaseCommand):
    help = (
        "Run the deadline sweeper once: turn lights yellow and red, notify, and apply the "
        "escalation rules. Prints how many cases changed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--now",
            default=None,
            metavar="ISO",
            help="sweep as of this instant (ISO 8601; without an offset it is local time)",
        )
        parser.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="cases per claim")

    def handle(self, *args: Any, **options: Any) -> None:
        now = _instant(options["now"]) if options["now"] else None
        if options["batch"] < 1:
            raise CommandError(_("--batch must be at least 1"))
        result = sweep(now=now, batch=options["batch"])
        self.stdout.write(
            _(
                "%(due_soon)s due soon, %(overdue)s overdue, %(escalated)s escalated; "
                "%(notifications)s notifications"
            )
            % {
                "due_soon": result.due_soon,
                "overdue": result.overdue,
                "escalated": result.escalated,
                "notifications": result.notifications,
            }
        )
