"""SQLite's WAL checkpoints run in a thread of the server's processes, not inside commits."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.db import connection

from gridgov.core import gunicorn_conf
from gridgov.core.sqlite import checkpoint


def _wal_database(path: Path) -> sqlite3.Connection:
    """A WAL database whose own connection never checkpoints (as if SAFETY_PAGES were huge)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
    return db


def _write_pages(db: sqlite3.Connection, rows: int) -> None:
    for n in range(rows):
        db.execute("INSERT INTO t (body) VALUES (?)", ["x" * 2000 + str(n)])


def _wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_the_thread_copies_the_log_into_the_database_file_while_the_writer_never_does(
    tmp_path: Path,
) -> None:
    path = tmp_path / "db.sqlite3"
    writer = _wal_database(path)
    _write_pages(writer, 200)  # about 100 pages, all in the log
    size_before = path.stat().st_size
    assert checkpoint.start(str(path), 0.02)
    try:
        assert checkpoint.running(str(path))
        # the checkpoint grows the database file by the pages it copies from the log
        assert _wait_for(lambda: path.stat().st_size > size_before + 100 * 4096)
        _write_pages(writer, 200)  # the log starts again from its beginning
        assert _wait_for(lambda: path.stat().st_size > size_before + 190 * 4096)
    finally:
        checkpoint.stop(str(path))
    assert not checkpoint.running(str(path))
    assert writer.execute("SELECT count(*) FROM t").fetchone() == (400,)
    writer.close()


def test_without_the_thread_the_log_is_not_copied(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    writer = _wal_database(path)
    size_before = path.stat().st_size
    _write_pages(writer, 200)
    time.sleep(0.2)
    assert path.stat().st_size == size_before
    assert not checkpoint.running(str(path))
    writer.close()


def test_the_thread_holds_no_connection_between_checkpoints_so_a_restore_can_take_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "db.sqlite3"
    writer = _wal_database(path)
    _write_pages(writer, 50)
    writer.close()
    assert checkpoint.start(str(path), 30)  # the first checkpoint is 30 s away
    try:
        alone = sqlite3.connect(path, timeout=0)
        # leaving WAL mode (as `gridgov restore` does) needs every other connection closed
        assert alone.execute("PRAGMA journal_mode=DELETE").fetchone() == ("delete",)
        alone.close()
    finally:
        checkpoint.stop(str(path))


def test_a_checkpoint_of_a_missing_file_creates_nothing_and_answers_none(tmp_path: Path) -> None:
    path = tmp_path / "gone.sqlite3"
    assert checkpoint.checkpoint_once(str(path)) is None
    assert not path.exists()


def test_switched_off_or_in_memory_no_thread_starts(tmp_path: Path) -> None:
    assert not checkpoint.start(str(tmp_path / "db.sqlite3"), 0)
    assert not checkpoint.start(":memory:", 1)
    assert not checkpoint.running(str(tmp_path / "db.sqlite3"))


@pytest.mark.django_db(transaction=True)
def test_a_web_worker_starts_the_thread_and_its_connections_keep_only_the_safety_net() -> None:
    name = str(connection.settings_dict["NAME"])
    if connection.vendor != "sqlite" or name == ":memory:" or name.startswith("file:"):
        pytest.skip("SQLite files only: PostgreSQL checkpoints by itself")
    connection.close()
    gunicorn_conf.post_worker_init(None)  # what gunicorn calls in each new worker
    try:
        assert checkpoint.running(name)
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_autocheckpoint")
            assert cursor.fetchone()[0] == checkpoint.SAFETY_PAGES
    finally:
        checkpoint.stop(name)
        connection.close()
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint")
        assert cursor.fetchone()[0] == 1000  # other processes keep SQLite's default


@pytest.mark.postgres
@pytest.mark.django_db
def test_on_postgresql_a_web_worker_starts_no_thread() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    assert not checkpoint.start_for_default_database()
