"""Django's SQLite backend, with write transactions queued on a lock before ``BEGIN IMMEDIATE``.

SQLite lets one writer in at a time. A connection that finds the database locked sleeps in
SQLite's busy handler (1, 2, 5, 10, … up to 100 ms between tries), so under load most of a
request's time can go to sleeping while the lock is already free, and the unlucky ones wait
seconds. Here every transaction (Django starts each atomic block with ``BEGIN IMMEDIATE``, see
``transaction_mode`` in settings) first takes a per-process thread lock and then an exclusive
``flock`` on a file beside the database, so writers of all threads and processes queue and start
the moment the previous one commits. The locks are released when the transaction ends (commit,
rollback or close). Waiting is bounded by the connection's ``timeout``; after it the transaction
goes on without the queue and SQLite's own busy timeout decides, as before.

In-memory databases (no file to lock) and platforms without ``fcntl`` use the thread lock only.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from django.db.backends.sqlite3 import base

from gridgov.core.sqlite import checkpoint

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_thread_lock = threading.Lock()
_files: dict[tuple[int, str], int] = {}  # (pid, lock file) → fd, opened once per process


def _lock_fd(path: str) -> int | None:
    if fcntl is None:
        return None
    key = (os.getpid(), path)
    fd = _files.get(key)
    if fd is None:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return None
        _files[key] = fd
    return fd


class DatabaseWrapper(base.DatabaseWrapper):
    _queue_held: tuple[bool, int | None] | None = None

    def _lock_path(self) -> str | None:
        name = str(self.settings_dict.get("NAME") or "")
        if not name or self.is_in_memory_db():
            return None
        return f"{name}.writers"

    def _wait_seconds(self) -> float:
        options: dict[str, Any] = self.settings_dict.get("OPTIONS") or {}
        return float(options.get("timeout", 5))

    def _queue_for_write(self) -> None:
        if self._queue_held is not None:
            return
        deadline = time.monotonic() + self._wait_seconds()
        thread_held = _thread_lock.acquire(timeout=self._wait_seconds())
        fd = None
        path = self._lock_path()
        if thread_held and path is not None:
            fd = _lock_fd(path)
            if fd is not None and not _flock_until(fd, deadline):
                fd = None
        self._queue_held = (thread_held, fd)

    def _leave_queue(self) -> None:
        held, self._queue_held = self._queue_held, None
        if held is None:
            return
        thread_held, fd = held
        if fd is not None and fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        if thread_held:
            _thread_lock.release()

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        conn = super().get_new_connection(conn_params)
        if checkpoint.running(str(self.settings_dict["NAME"])):
            # this process checkpoints in a thread of its own; this is only the safety net
            conn.execute(f"PRAGMA wal_autocheckpoint={checkpoint.SAFETY_PAGES}")
        return conn

    def _start_transaction_under_autocommit(self) -> None:
        self._queue_for_write()
        try:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]
        except BaseException:
            self._leave_queue()
            raise

    def _commit(self) -> None:
        try:
            super()._commit()  # type: ignore[misc]
        finally:
            self._leave_queue()

    def _rollback(self) -> None:
        try:
            super()._rollback()  # type: ignore[misc]
        finally:
            self._leave_queue()

    def _close(self) -> None:
        try:
            super()._close()  # type: ignore[misc]
        finally:
            self._leave_queue()


def _flock_until(fd: int, deadline: float) -> bool:
    """Take the exclusive lock on ``fd``, polling briefly, until ``deadline``."""
    assert fcntl is not None
    pause = 0.0002
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.002)
        except OSError:
            return False
