"""``gridgov serve``: what ``make run`` starts.

Migrates, collects static files, loads the demo district (once), then runs the production web
server (gunicorn) and the background worker side by side until Ctrl-C, which stops both. The
demo's case history (``gridgov demo history``) and its residents (``gridgov demo registry``) load
in processes beside them, so the site answers at once; Ctrl-C stops them too, and the next start
continues them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from gridgov.core.env import env_int, env_str

HISTORY = "demo history"
REGISTRY = "demo registry"


def _lower_priority() -> None:
    os.nice(10)


def web_command(*, bind: str, workers: int, threads: int) -> list[str]:
    """The production web server's command line (also started by scripts/reliability.py and
    the benchmarks, so that they measure what runs)."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "gridgov.wsgi:application",
        # metrics of all the processes in one /metrics, JSON logs (gunicorn_conf's docstring)
        "-c",
        "python:gridgov.core.gunicorn_conf",
        "--bind",
        bind,
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--graceful-timeout",
        "10",
        "--timeout",
        "60",
    ]


def worker_command() -> list[str]:
    """The background worker's command line."""
    return [sys.executable, "-m", "gridgov", "worker"]


class Command(BaseCommand):
    help = "Migrate, load the demo district, and run the web server and the worker."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--bind", default=env_str("GRIDGOV_BIND", "127.0.0.1:8000"))
        parser.add_argument("--web-workers", type=int, default=env_int("GRIDGOV_WEB_WORKERS", 2))
        parser.add_argument("--threads", type=int, default=env_int("GRIDGOV_WEB_THREADS", 4))
        parser.add_argument("--no-demo", action="store_true", default=not settings.GRIDGOV_DEMO)

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        self.stdout.write(f"database ready ({connection.vendor})")
        if not options["no_demo"]:
            try:
                call_command(
                    "demo",
                    "load",
                    "--no-accounts",
                    "--no-history",
                    "--no-registry",
                    stdout=self.stdout,
                )
            except CommandError as exc:
                self.stderr.write(f"the demo district was not loaded: {exc}")
        procs = self._start(options)
        self.stdout.write(
            self.style.SUCCESS(
                f"gridgov is serving http://{options['bind']}/ "
                f"(ready in {time.monotonic() - started:.0f} s); Ctrl-C stops it"
            )
        )
        if not options["no_demo"]:
            call_command("demo", "accounts", stdout=self.stdout)
            registry = self._start_registry()
            if registry is not None:
                procs.append(registry)
            history = self._start_history()
            if history is not None:
                procs.append(history)
        self._wait(procs)

    def _start_registry(self) -> tuple[str, subprocess.Popen[bytes]] | None:
        """Load (or continue) the demo residents in a child process, when they are due."""
        from gridgov.core.demo import demo_loaded
        from gridgov.registry.demo import households_per_grid_setting, registry_state

        if demo_loaded() is None:
            return None
        stored = registry_state()
        if stored is None and households_per_grid_setting() <= 0:
            return None
        if stored is not None and stored["done"] >= stored["grids"]:
            return None
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "gridgov.settings"}
        argv = [sys.executable, "-m", "gridgov", "demo", "registry"]
        proc = subprocess.Popen(argv, env=env, preexec_fn=_lower_priority)  # noqa: S603
        self.stdout.write(
            "loading the demo residents in the background"
            + (f" (from grid {stored['done'] + 1:,} of {stored['grids']:,})" if stored else "")
            + "; Ctrl-C stops it and the next start continues it."
        )
        return (REGISTRY, proc)

    def _start_history(self) -> tuple[str, subprocess.Popen[bytes]] | None:
        """Load (or continue) the demo case history in a child process, when it is due."""
        from gridgov.cases.demo import history_state
        from gridgov.core.demo import demo_loaded

        stored = history_state()
        if demo_loaded() is None:
            return None
        if stored is None:
            total, done, days = settings.GRIDGOV_DEMO_CASES, 0, settings.GRIDGOV_DEMO_DAYS
        else:
            total, done, days = stored["cases"], stored["done"], stored["days"]
        if total <= 0 or done >= total:
            return None
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "gridgov.settings"}
        argv = [sys.executable, "-m", "gridgov", "demo", "history"]
        # a lower priority: the web server and the worker come first
        proc = subprocess.Popen(argv, env=env, preexec_fn=_lower_priority)  # noqa: S603
        what = "continuing" if done else "loading"
        self.stdout.write(
            f"{what} the demo case history in the background: {total - done:,} of {total:,} "
            f"cases over {days} days to go. Its progress shows below and, for staff, on the "
            "home page; Ctrl-C stops it and the next start continues it."
        )
        return (HISTORY, proc)

    def _start(self, options: dict[str, Any]) -> list[tuple[str, subprocess.Popen[bytes]]]:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "gridgov.settings"}
        web = web_command(
            bind=options["bind"], workers=options["web_workers"], threads=options["threads"]
        )
        # no gunicorn access log: the app logs each request (GRIDGOV_ACCESS_LOG, gridgov.access)
        web_env = {**env, "PROMETHEUS_MULTIPROC_DIR": self._metrics_dir()}
        worker = worker_command()
        # both argv lists are our own, built above from settings (no shell, no user input)
        web_proc = subprocess.Popen(web, env=web_env)  # noqa: S603
        worker_proc = subprocess.Popen(worker, env=env)  # noqa: S603
        return [("web server", web_proc), ("worker", worker_proc)]

    def _metrics_dir(self) -> str:
        """The web processes' shared Prometheus folder, emptied of an earlier run's files."""
        from gridgov.core.gunicorn_conf import clear_multiprocess_dir

        folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or str(settings.VAR_DIR / "prometheus")
        clear_multiprocess_dir(folder)
        return folder

    def _wait(self, procs: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
        stop = False

        def on_signal(signum: int, frame: Any) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        exit_code = 0
        while not stop:
            for name, p in list(procs):
                code = p.poll()
                if code is None:
                    continue
                if name in (HISTORY, REGISTRY):  # optional: the site goes on without them
                    if code:
                        self.stderr.write(f"the {name} loader exited ({code}); the site goes on")
                    procs.remove((name, p))
                    continue
                self.stderr.write(f"the {name} exited ({code}); stopping")
                exit_code = code or 1
                stop = True
            time.sleep(0.3)
        self.stdout.write("stopping the web server and the worker…")
        for _name, p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _name, p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
        self.stdout.write("stopped")
        if exit_code:
            sys.exit(exit_code)
