"""``gridgov demo``: load the demo district (Nanjing Qixia), its residents (base data) and its case
history; its logins."""

from __future__ import annotations

import argparse
import signal
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from gridgov.core.errors import DomainError

#: Print the history's progress every this many cases.
PROGRESS_EVERY = 500
#: Print the demo residents' progress at most this often.
REGISTRY_PROGRESS_SECONDS = 5.0


class _Stop(Exception):
    """Ctrl-C or SIGTERM: stop after the case (or grids) being written (the next run
    continues)."""


class Command(BaseCommand):
    help = "The demo district (Nanjing Qixia): load it and its case history, or print its accounts."

    def add_arguments(self, parser: CommandParser) -> None:
        from gridgov.core.demo import DEFAULT_HOUSEHOLDS, DEFAULT_SEED

        sub = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
        p = sub.add_parser(
            "load",
            help="load the demo district into the database",
            description=(
                "Load Nanjing Qixia (320113): its real streets and communities and outline, "
                "synthetic street and community polygons, buildings with households, grids of "
                "about 300 households, units and one demo account per role; then its case "
                "history (see `gridgov demo history`). Deterministic for a seed; a second run "
                "adds nothing (and finishes a history that was stopped)."
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
            help=f"random seed for polygons, buildings, names and the case history (default "
            f"{DEFAULT_SEED})",
        )
        p.add_argument(
            "--no-accounts", action="store_true", help="do not print the demo logins at the end"
        )
        p.add_argument(
            "--history",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="also load the case history after loading the district, and finish a stopped "
            "one (default: yes; `gridgov serve` loads it in the background instead)",
        )
        p.add_argument(
            "--registry",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="also load the demo residents, organisations and components after loading the "
            "district, and finish a stopped run (default: yes; `gridgov serve` loads them in the "
            "background instead)",
        )
        r = sub.add_parser(
            "registry",
            help="add the demo residents, organisations and components (resumes a stopped run)",
            description=(
                "Fill the demo district's grids with base data: rooms, households and people "
                "(synthetic names and valid id numbers, an age structure that fits each area), "
                "care and key-person tags, organisations and city components. Deterministic "
                "for a seed; progress is saved after every few grids, so a stopped run "
                "continues where it stopped, and a complete run adds nothing."
            ),
        )
        r.add_argument(
            "--households-per-grid",
            type=int,
            default=None,
            metavar="N",
            help="households per grid (default GRIDGOV_DEMO_HOUSEHOLDS_PER_GRID, 300; 0: none)",
        )
        r.add_argument(
            "--seed",
            type=int,
            default=None,
            metavar="S",
            help="random seed of the residents (default: the demo district's seed)",
        )
        h = sub.add_parser(
            "history",
            help="add the demo case history (resumes a stopped run)",
            description=(
                "Add about 90 days of cases to the demo district, each driven through the real "
                "report and workflow actions by synthetic staff (usernames demo-…): a mix of "
                "categories, channels and states, some overdue, reworked, supervised or "
                "escalated. Deterministic for a seed; progress is saved after every case, so a "
                "stopped run continues where it stopped, and a complete history adds nothing."
            ),
        )
        h.add_argument(
            "--cases",
            type=int,
            default=None,
            metavar="N",
            help=f"cases in all (default GRIDGOV_DEMO_CASES, {settings.GRIDGOV_DEMO_CASES:,})",
        )
        h.add_argument(
            "--days",
            type=int,
            default=None,
            metavar="D",
            help=f"days of history before now (default GRIDGOV_DEMO_DAYS, "
            f"{settings.GRIDGOV_DEMO_DAYS})",
        )
        h.add_argument(
            "--seed",
            type=int,
            default=DEFAULT_SEED,
            metavar="S",
            help=f"random seed of the history (default {DEFAULT_SEED})",
        )
        sub.add_parser("accounts", help="print the demo logins")

    def handle(self, *args: Any, **options: Any) -> None:
        from gridgov.cases.demo import history_state
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
            if options["registry"] and (result.loaded or _registry_due()):
                self._registry(per_grid=None, seed=None)
            stored = history_state()
            resume = stored is not None and stored["done"] < stored["cases"]
            if options["history"] and (result.loaded or resume):
                self._history(cases=None, days=None, seed=options["seed"])
            if result.loaded and not options["no_accounts"]:
                self.stdout.write("")
                self.stdout.write(demo.accounts_table(demo.demo_accounts()))
            return
        if options["subcommand"] == "history":
            self._history(cases=options["cases"], days=options["days"], seed=options["seed"])
            return
        if options["subcommand"] == "registry":
            self._registry(per_grid=options["households_per_grid"], seed=options["seed"])
            return
        self.stdout.write(demo.accounts_table(demo.demo_accounts()))

    def _history(self, *, cases: int | None, days: int | None, seed: int) -> None:
        from gridgov.cases.demo import demo_history, history_state

        stopping = False
        started = time.monotonic()
        stored = history_state()
        first = stored["done"] if stored else 0
        last = [first]
        current = [first]

        def on_signal(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        def progress(done: int, total: int) -> None:
            current[0] = done
            if done - last[0] >= PROGRESS_EVERY or done == total:
                last[0] = done
                added = done - first
                seconds = time.monotonic() - started
                rate = added / seconds if seconds else 0.0
                eta = (total - done) / rate if rate else 0.0
                self.stdout.write(
                    f"demo history: {done:,} of {total:,} cases ({rate:.1f} cases/s, "
                    f"about {eta / 60:.0f} min to go)"
                )
                self.stdout.flush()
            if stopping:
                raise _Stop

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            demo_history(
                cases=cases, days=days, seed=seed, progress=progress, log=self.stdout.write
            )
        except _Stop:
            self.stdout.write(
                f"demo history stopped after case {current[0]:,}; run `gridgov demo history` "
                "to continue"
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _registry(self, *, per_grid: int | None, seed: int | None) -> None:
        from gridgov.registry.demo import demo_registry, registry_state

        stopping = False
        started = time.monotonic()
        stored = registry_state()
        first = stored["done"] if stored else 0
        current = [first]
        last = [time.monotonic()]

        def on_signal(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        def progress(done: int, total: int) -> None:
            current[0] = done
            now = time.monotonic()
            if now - last[0] >= REGISTRY_PROGRESS_SECONDS or done == total:
                last[0] = now
                rate = (done - first) / (now - started) if now > started else 0.0
                eta = (total - done) / rate if rate else 0.0
                self.stdout.write(
                    f"demo residents: {done:,} of {total:,} grids ({rate:.1f} grids/s, "
                    f"about {eta / 60:.0f} min to go)"
                )
                self.stdout.flush()
            if stopping:
                raise _Stop

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            demo_registry(per_grid=per_grid, seed=seed, progress=progress, log=self.stdout.write)
        except _Stop:
            self.stdout.write(
                f"demo residents stopped after grid {current[0]:,}; run `gridgov demo registry` "
                "to continue"
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _registry_due() -> bool:
    """A stored run of the demo residents that has not finished."""
    from gridgov.registry.demo import registry_state

    stored = registry_state()
    return stored is not None and stored["done"] < stored["grids"]
