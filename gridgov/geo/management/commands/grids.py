"""``gridgov grids generate``: cut a community into base grids."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gridgov.core.errors import DomainError


class Command(BaseCommand):
    help = "Grids: generate (cut a community into base grids by households or by area)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
        p = sub.add_parser(
            "generate",
            help="cut a community into base grids",
            description=(
                "Cut a community's outline into grids of about N households (from its "
                "buildings) or of about N m², numbered west to east, north to south."
            ),
        )
        p.add_argument("--community", required=True, metavar="CODE")
        size = p.add_mutually_exclusive_group(required=True)
        size.add_argument("--households-per-grid", type=int, metavar="N")
        size.add_argument("--area-m2", type=float, metavar="M2")
        p.add_argument("--replace", action="store_true", help="replace the existing grids")
        p.add_argument("--dry-run", action="store_true", help="show the grids, save nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        from gridgov.geo.actions import grids_generate

        try:
            result = grids_generate(
                community=options["community"],
                households_per_grid=options["households_per_grid"],
                area_m2=options["area_m2"],
                replace=options["replace"],
                dry_run=options["dry_run"],
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(result.text())
