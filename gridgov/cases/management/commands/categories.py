"""``gridgov categories``: load the standard catalogue, import and export categories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from gridgov.cases.models import Scheme
from gridgov.core.errors import DomainError

FORMATS = {".json": "json", ".xlsx": "xlsx"}


def _file_format(name: str) -> str:
    found = FORMATS.get(Path(name).suffix.lower())
    if found is None:
        raise CommandError(
            _("%(file)s: name the file .json or .xlsx (the format follows the extension)")
            % {"file": name}
        )
    return found


class Command(BaseCommand):
    help = "The category catalogue: load-standard, import FILE, export FILE."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")

        p = sub.add_parser(
            "load-standard",
            help="load the standard catalogue shipped with gridgov",
            description=(
                "Add the categories of CJ/T 214 (legacy), GB/T 47678.5 and the social-governance "
                "kinds that are missing. Existing categories keep their values unless "
                "--overwrite resets them to the standard's."
            ),
        )
        p.add_argument("--overwrite", action="store_true", help="reset existing categories")
        p.add_argument("--dry-run", action="store_true", help="report only, write nothing")

        p = sub.add_parser(
            "import",
            help="import categories from a .json or .xlsx file",
            description=(
                "Upsert the categories of FILE by scheme and code. All-or-nothing: any error "
                "writes nothing, lists every problem with its row and exits with status 1."
            ),
        )
        p.add_argument("file", metavar="FILE")
        p.add_argument("--dry-run", action="store_true", help="report only, write nothing")

        p = sub.add_parser("export", help="export the catalogue to a .json or .xlsx file")
        p.add_argument("file", metavar="FILE")
        p.add_argument("--scheme", choices=Scheme.values, help="one scheme only")

    def handle(self, *args: Any, **options: Any) -> None:
        handler = {
            "load-standard": self.load_standard,
            "import": self.import_file,
            "export": self.export_file,
        }[options["subcommand"]]
        try:
            handler(options)
        except DomainError as exc:
            raise CommandError(exc.message) from exc

    def _report(self, report: Any) -> None:
        self.stdout.write(report.text())
        if not report.ok:
            raise CommandError(
                ngettext(
                    "%(count)s error; nothing was written",
                    "%(count)s errors; nothing was written",
                    len(report.problems),
                )
                % {"count": len(report.problems)}
            )

    def load_standard(self, options: dict[str, Any]) -> None:
        from gridgov.cases.catalogue import catalogue_load_standard

        self._report(
            catalogue_load_standard(overwrite=options["overwrite"], dry_run=options["dry_run"])
        )

    def import_file(self, options: dict[str, Any]) -> None:
        from gridgov.cases.catalogue import (
            catalogue_from_json,
            catalogue_from_xlsx,
            catalogue_import,
        )

        name = options["file"]
        kind = _file_format(name)
        try:
            data = Path(name).read_bytes()
        except OSError as exc:
            raise CommandError(
                _("cannot read %(file)s: %(problem)s") % {"file": name, "problem": exc.strerror}
            ) from exc
        rows = catalogue_from_xlsx(data) if kind == "xlsx" else catalogue_from_json(data)
        self._report(catalogue_import(rows, dry_run=options["dry_run"]))

    def export_file(self, options: dict[str, Any]) -> None:
        from gridgov.cases.catalogue import catalogue_export, catalogue_to_json, catalogue_to_xlsx

        name = options["file"]
        kind = _file_format(name)
        rows = catalogue_export(scheme=options["scheme"])
        data = catalogue_to_xlsx(rows) if kind == "xlsx" else catalogue_to_json(rows)
        try:
            Path(name).write_bytes(data)
        except OSError as exc:
            raise CommandError(
                _("cannot write %(file)s: %(problem)s") % {"file": name, "problem": exc.strerror}
            ) from exc
        attributes = sum(len(r["attributes"]) for r in rows)
        self.stdout.write(
            _("%(count)s categories with %(attributes)s attributes written to %(file)s")
            % {"count": len(rows), "attributes": attributes, "file": name}
        )
