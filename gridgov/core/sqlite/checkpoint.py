"""WAL checkpoints in a thread of their own, off the writers' path (server processes only).

SQLite copies the write-ahead log back into the database file in a *checkpoint*. By default the
connection whose commit takes the log past 1,000 pages does it, inside that commit, while every
other writer waits in the queue: a report writes 35 pages (the case, its event, the idempotency
record and their indexes), so one report in 29 checkpointed, for up to 10 ms, holding the
database's only write lock (bench/RESULTS.md, "Intake").

The web server's and the background worker's processes (``start``, called from gunicorn's
``post_worker_init`` and from ``gridgov worker``) each run one daemon thread that makes a
``PASSIVE`` checkpoint every ``GRIDGOV_SQLITE_CHECKPOINT_SECONDS``: a passive checkpoint waits
for no one and does not take the write lock, so writers go on meanwhile, and a page that many
commits wrote between two checkpoints is copied once. Their connections' automatic checkpoint
stays on as a safety net at ``SAFETY_PAGES`` (40 MB of log), should the thread fall behind.
Other processes (commands, tests) keep SQLite's default. The thread opens its connection for
each checkpoint and closes it at once, so it never holds the database open for long (``gridgov
restore`` needs it closed). Several processes may try at once; SQLite lets one checkpoint at a
time and the others return at once. ``GRIDGOV_SQLITE_CHECKPOINT_SECONDS=0`` turns it off.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from urllib.request import pathname2url

logger = logging.getLogger(__name__)

#: the automatic checkpoint of connections in a process whose thread runs (pages of 4 KB)
SAFETY_PAGES = 10_000

_running: dict[tuple[int, str], tuple[threading.Thread, threading.Event]] = {}
_guard = threading.Lock()


def running(path: str) -> bool:
    """Whether this process runs the checkpoint thread for the database at ``path``."""
    entry = _running.get((os.getpid(), path))
    return entry is not None and entry[0].is_alive() and not entry[1].is_set()


def start(path: str, seconds: float) -> bool:
    """Run this process's checkpoint thread for the database file at ``path`` (once per
    process and file; after a fork, the child starts its own). False when ``seconds`` ≤ 0."""
    if seconds <= 0 or not path or path == ":memory:" or path.startswith("file:"):
        return False
    key = (os.getpid(), path)
    with _guard:
        if running(path):
            return True
        stopping = threading.Event()
        thread = threading.Thread(
            target=_run,
            args=(path, seconds, stopping),
            name="gridgov-sqlite-checkpoint",
            daemon=True,
        )
        _running[key] = (thread, stopping)
        thread.start()
    return True


def stop(path: str) -> None:
    """End this process's checkpoint thread for ``path`` (if any) and wait for it."""
    with _guard:
        entry = _running.pop((os.getpid(), path), None)
    if entry is not None:
        entry[1].set()
        entry[0].join()


def start_for_default_database() -> bool:
    """``start`` for Django's default database when it is a SQLite file (settings decide)."""
    from django.conf import settings
    from django.db import connections

    db = connections["default"]
    if db.vendor != "sqlite":
        return False
    # start() refuses an in-memory database (":memory:" or a "file:" URI)
    return start(str(db.settings_dict["NAME"]), settings.GRIDGOV_SQLITE_CHECKPOINT_SECONDS)


def checkpoint_once(path: str) -> tuple[int, int, int] | None:
    """One passive checkpoint: SQLite's (busy, frames in the log, frames copied), or None
    when the database could not be opened."""
    try:  # mode=rw: never create a database that is not there (any more)
        connection = sqlite3.connect(f"file:{pathname2url(path)}?mode=rw", uri=True, timeout=0)
    except sqlite3.Error:
        return None
    try:
        row = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return (int(row[0]), int(row[1]), int(row[2]))
    except sqlite3.Error as exc:  # locked, a file gone: next time
        logger.debug("WAL checkpoint skipped: %s", type(exc).__name__)
        return None
    finally:
        connection.close()


def _run(path: str, seconds: float, stopping: threading.Event) -> None:
    while not stopping.wait(seconds):  # a daemon: it also ends with its process
        checkpoint_once(path)
