"""``gridgov worker``: the background loop (deadline sweeper, notifier, housekeeping)."""

from __future__ import annotations

import signal
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from gridgov.core.jobs import (
    registered_jobs,
    run_due_jobs,
    woken_since,
    worker_heartbeat,
    worker_id,
)
from gridgov.core.sqlite import checkpoint


class Command(BaseCommand):
    help = "Run the background jobs in a loop (or once with --once)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--once", action="store_true", help="run what is due once and exit")
        parser.add_argument(
            "--interval",
            type=float,
            default=None,
            help="seconds between passes (default GRIDGOV_WORKER_INTERVAL_SECONDS)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        interval = options["interval"] or settings.GRIDGOV_WORKER_INTERVAL_SECONDS
        owner = worker_id()
        stopping = False

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        if not options["once"]:
            checkpoint.start_for_default_database()  # SQLite: WAL checkpoints off the writers' path
        names = ", ".join(j.name for j in registered_jobs())
        self.stdout.write(f"worker {owner} started; jobs: {names}")
        last: dict[str, str] = {}
        while not stopping:
            for name, outcome in run_due_jobs(owner=owner):
                # routine passes repeat themselves: print a job's outcome only when it changes
                if options["verbosity"] > 1 or last.get(name) != outcome:
                    self.stdout.write(f"{name}: {outcome}")
                last[name] = outcome
            worker_heartbeat(owner=owner, interval=interval)  # /readyz and the lag metrics
            if options["once"]:
                break
            deadline = time.monotonic() + interval
            woken, mark = woken_since(None)
            while not stopping and time.monotonic() < deadline and not woken:
                time.sleep(min(0.5, interval))
                woken, mark = woken_since(mark)
            close_old_connections()  # a long-lived loop must not keep a broken or stale connection
        self.stdout.write("worker stopped")
