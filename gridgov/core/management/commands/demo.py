"""``gridgov demo``: load the demo district (Nanjing Qixia) and list its logins."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gridgov.core.errors import DomainError


class Command(BaseCommand):
    help = "The demo district (Nanjing Qixia): load it, or print its accounts."

    def add_arguments(self, parser: CommandParser) -> None:
        from gridgov.core.demo import DEFAULT_HOUSEHOLDS, DEFAULT_SEED

        sub = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
        p = sub.add_parser(
            "load",
            help="load the demo district into the database",
            description=(
                "Load Nanjing Qixia (320113): its real streets and communities and outline, "
                "synthetic street and community polygons, buildings with households, grids of "
                "about 300 households, units and one demo account per role. Deterministic for "
                "a seed; a second run adds nothing."
            ),
        )
        p.add_argument(
            "--households",
            type=int,
            default=DEFAULT_HOUSEHOLDS,
            metavar="N",
            help=f"households in the district (default {DEFAULT_HOUSEHOLDS:,}; the real "
            "district has about 350,000)",
        )
        p.add_argument(
            "--seed",
            type=int,
            default=DEFAULT_SEED,
            metavar="S",
            help=f"random seed for polygons, buildings and names (default {DEFAULT_SEED})",
        )
        p.add_argument(
            "--no-accounts", action="store_true", help="do not print the demo logins at the end"
        )
        sub.add_parser("accounts", help="print the demo logins")

    def handle(self, *args: Any, **options: Any) -> None:
        from gridgov.core import demo

        if options["subcommand"] == "load":
            try:
                result = demo.demo_load(
                    households=options["households"],
                    seed=options["seed"],
                    log=self.stdout.write,
                )
            except DomainError as exc:
                raise CommandError(exc.message) from exc
            if result.loaded and not options["no_accounts"]:
                self.stdout.write("")
                self.stdout.write(demo.accounts_table(demo.demo_accounts()))
            return
        self.stdout.write(demo.accounts_table(demo.demo_accounts()))
