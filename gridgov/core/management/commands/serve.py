"""``gridgov serve``: what ``make run`` starts.

Migrates, collects static files, loads the demo district (once), then runs the production web
server (gunicorn) and the background worker side by side until Ctrl-C, which stops both.
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

from gridgov.core.env import env_bool, env_int, env_str


class Command(BaseCommand):
    help = "Migrate, load the demo district, and run the web server and the worker."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--bind", default=env_str("GRIDGOV_BIND", "127.0.0.1:8000"))
        parser.add_argument("--web-workers", type=int, default=env_int("GRIDGOV_WEB_WORKERS", 2))
        parser.add_argument("--threads", type=int, default=env_int("GRIDGOV_WEB_THREADS", 4))
        parser.add_argument(
            "--no-demo", action="store_true", default=not env_bool("GRIDGOV_DEMO", True)
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        self.stdout.write(
            f"database ready ({settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]})"
        )
        if not options["no_demo"]:
            try:
                call_command("demo", "load", "--no-accounts", stdout=self.stdout)
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
        self._wait(procs)

    def _start(self, options: dict[str, Any]) -> list[tuple[str, subprocess.Popen[bytes]]]:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "gridgov.settings"}
        web = [
            sys.executable,
            "-m",
            "gunicorn",
            "gridgov.wsgi:application",
            "--bind",
            options["bind"],
            "--workers",
            str(options["web_workers"]),
            "--threads",
            str(options["threads"]),
            "--graceful-timeout",
            "10",
            "--timeout",
            "60",
        ]
        if env_bool("GRIDGOV_ACCESS_LOG", False):
            web += ["--access-logfile", "-"]
        worker = [sys.executable, "-m", "gridgov", "worker"]
        # both argv lists are our own, built above from settings (no shell, no user input)
        web_proc = subprocess.Popen(web, env=env)  # noqa: S603
        worker_proc = subprocess.Popen(worker, env=env)  # noqa: S603
        return [("web server", web_proc), ("worker", worker_proc)]

    def _wait(self, procs: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
        stop = False

        def on_signal(signum: int, frame: Any) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        exit_code = 0
        while not stop:
            for name, p in procs:
                code = p.poll()
                if code is not None:
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
