"""gunicorn's settings for the web server: ``gunicorn -c python:gridgov.core.gunicorn_conf``.

``gridgov serve`` passes it; a service manager that starts gunicorn itself should too.

- Prometheus in several processes: with ``PROMETHEUS_MULTIPROC_DIR`` set (``gridgov serve``
  sets ``$GRIDGOV_VAR_DIR/prometheus``) each worker process writes its metrics to files there
  and ``/metrics`` adds them up (``gridgov.core.observability``). The folder is emptied when the
  server starts, so figures of an earlier run do not linger, and a worker that exits is marked
  dead, so its live gauges go.
- With ``GRIDGOV_LOG_FORMAT=json`` gunicorn's own messages are JSON lines like the app's, and
  its access log stays off: the app writes its own (``gridgov.access``, without query strings,
  which may carry personal data).
- SQLite: each worker, once it has loaded the app, starts its WAL checkpoint thread
  (``gridgov.core.sqlite.checkpoint``), so that no writer's commit copies the log back.

Loaded in gunicorn's master process before Django is set up: nothing here imports Django at
module level (``post_worker_init`` runs in a worker, after the app is loaded).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def clear_multiprocess_dir(folder: str | Path) -> None:
    """Create the metrics folder, or empty it of an earlier run's files."""
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)


def on_starting(server: Any) -> None:
    folder = multiprocess_dir()
    if folder:
        clear_multiprocess_dir(folder)


def child_exit(server: Any, worker: Any) -> None:
    if multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


if os.environ.get("GRIDGOV_LOG_FORMAT", "plain").strip().lower() == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"personal_data": {"()": "gridgov.core.logs.PersonalDataFilter"}},
        "formatters": {"json": {"()": "gridgov.core.logs.JsonFormatter"}},
        "handlers": {
            "json_console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["personal_data"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": "INFO", "handlers": ["json_console"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["json_console"], "propagate": False},
            # the app logs every request itself (gridgov.access)
            "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
        },
    }


def post_worker_init(worker: Any) -> None:
    from gridgov.core.sqlite import checkpoint

    checkpoint.start_for_default_database()  # SQLite: WAL checkpoints off the writers' path
