"""``gridgov calendar``: show the working calendar, compute deadlines, edit overrides."""

from __future__ import annotations

import calendar as pycalendar
from datetime import date, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from gridgov.core import actions, worktime
from gridgov.core.errors import DomainError


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise CommandError(
            _("%(value)s is not a date: write YYYY-MM-DD") % {"value": text}
        ) from exc


class Command(BaseCommand):
    help = "The working calendar: show a month, compute a deadline, add or remove overrides."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
        p = sub.add_parser("show", help="print a month with the kind of each day")
        p.add_argument("month", metavar="YYYY-MM")

        p = sub.add_parser(
            "deadline",
            help="the deadline a working-time span after START",
            description="START is an ISO date-time; without an offset it is local time "
            "(Asia/Shanghai). A day is one standard working day.",
        )
        p.add_argument("start", metavar="START")
        p.add_argument("--minutes", type=float, default=None, metavar="N")
        p.add_argument("--hours", type=float, default=None, metavar="N")
        p.add_argument("--days", type=float, default=None, metavar="N")

        p = sub.add_parser("override", help="make DATE a holiday or a working day")
        p.add_argument("date", metavar="DATE")
        p.add_argument("kind", choices=list(actions.OVERRIDE_KINDS))
        p.add_argument("--hours", default=None, help='own working hours, e.g. "08:30-12:00"')
        p.add_argument("--note", default="")

        p = sub.add_parser("remove", help="remove the override of DATE")
        p.add_argument("date", metavar="DATE")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, "_" + options["subcommand"])(options)
        except DomainError as exc:
            raise CommandError(exc.message) from exc

    def _show(self, options: dict[str, Any]) -> None:
        try:
            y_text, m_text = options["month"].split("-")
            year, month = int(y_text), int(m_text)
            date(year, month, 1)
        except ValueError as exc:
            raise CommandError(
                _("%(value)s is not a month: write YYYY-MM") % {"value": options["month"]}
            ) from exc
        cal = worktime.current_calendar()
        if not worktime.year_covered(year):
            self.stderr.write(
                _(
                    "warning: chinese-calendar does not cover %(year)s; Monday to Friday count as "
                    "working days, plus the overrides"
                )
                % {"year": year}
            )
        last = pycalendar.monthrange(year, month)[1]
        working = 0
        for info in cal.days(date(year, month, 1), date(year, month, last)):
            working += info.is_working
            extra = " ".join(
                x
                for x in (
                    info.name_label,
                    info.note,
                    info.hours_text if info.is_working else "",
                )
                if x
            )
            self.stdout.write(
                f"{info.day:%Y-%m-%d} {info.day:%a}  {info.kind:<15} {info.source:<17} "
                f"{info.kind_label}  {extra}".rstrip()
            )
        self.stdout.write(_("%(count)s working days") % {"count": working})

    def _deadline(self, options: dict[str, Any]) -> None:
        try:
            start = worktime.as_aware(datetime.fromisoformat(options["start"]))
        except ValueError as exc:
            raise CommandError(
                _("%(value)s is not a date-time: write e.g. 2026-12-30T10:00")
                % {"value": options["start"]}
            ) from exc
        values = [options[k] for k in ("minutes", "hours", "days") if options[k] is not None]
        if not values:
            raise CommandError(_("give --minutes, --hours or --days"))
        if any(v < 0 for v in values):
            raise CommandError(_("a working-time span cannot be negative"))
        span = worktime.WorkSpan(
            minutes=options["minutes"] or 0, hours=options["hours"] or 0, days=options["days"] or 0
        )
        due = worktime.add_working_time(start, span)
        self.stdout.write(due.isoformat())
        if not worktime.year_covered(due.year):
            self.stderr.write(
                _("note: %(year)s is not covered by chinese-calendar; the fallback applied")
                % {"year": due.year}
            )

    def _override(self, options: dict[str, Any]) -> None:
        day = _day(options["date"])
        override = actions.calendar_override_set(
            day=day, kind=options["kind"], hours=options["hours"], note=options["note"]
        )
        info = worktime.day_info(day)
        self.stdout.write(
            _("%(day)s is now: %(kind)s") % {"day": override.date.isoformat(), "kind": info.kind}
        )

    def _remove(self, options: dict[str, Any]) -> None:
        day = _day(options["date"])
        actions.calendar_override_delete(day=day)
        info = worktime.day_info(day)
        self.stdout.write(
            _("override removed; %(day)s is %(kind)s (%(source)s)")
            % {"day": day.isoformat(), "kind": info.kind, "source": info.source}
        )
