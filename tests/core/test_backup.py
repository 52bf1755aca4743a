"""Backups: what `gridgov backup` writes comes back whole with `gridgov restore`, on SQLite and on
PostgreSQL, and a damaged or tampered backup is refused before anything is changed.

The round trips compare every table of every model (and Django's migration table) row by row in
primary-key order, read through Django's own database backend on both sides, and every uploaded
file byte for byte.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.db.backends.sqlite3._functions import register as register_sql_functions
from django.db.utils import load_backend
from PIL import Image

from gridgov.cases.models import Case, CasePhoto
from gridgov.core import backup as backup_module
from gridgov.core.backup import (
    MANIFEST,
    BackupError,
    Database,
    backup_create,
    backup_prune,
    backup_restore,
    backup_verify,
)
from gridgov.core.photos import photo_save
from gridgov.registry.models import Person
from tests.cases.factories import IN_GRID_B, act, category, report
from tests.registry.factories import id_number, mobile, person
from tests.world import World

# a backup is made by connections of its own, which see only what is committed
pytestmark = pytest.mark.django_db(transaction=True)

on_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="a PostgreSQL round trip needs PostgreSQL"
)
on_sqlite = pytest.mark.skipif(connection.vendor != "sqlite", reason="a SQLite file as the target")


def _in_memory_sqlite() -> bool:
    return connection.vendor == "sqlite" and not connection.settings_dict.get("TEST", {}).get(
        "NAME"
    )


# --- helpers --------------------------------------------------------------------------------------


@pytest.fixture
def media(settings: Any, tmp_path: Path) -> Path:
    """Uploaded files go to a fresh folder per test."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return Path(settings.MEDIA_ROOT)


def jpeg(colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(out, "JPEG")
    return out.getvalue()


def populate(world: World) -> None:
    """Cases with photos at several steps, and people with encrypted id and phone numbers."""
    category()
    first = report(world.grid_worker_a, photos=[photo_save(data=jpeg(), folder="cases")])
    act(first, world.intake_operator, "accept")
    act(first, world.intake_operator, "register")
    act(first, world.dispatcher, "dispatch", lead_unit="street-office-003")
    report(world.grid_worker_b, where=IN_GRID_B, photos=[photo_save(data=jpeg((0, 90, 200)))])
    report(world.resident, description="路灯不亮")
    for n in range(3):
        person(world.grid_worker_a, name=f"居民{n}", id_number=id_number(), phone=mobile())


def wrapper_for(db: Database, alias: str) -> Any:
    """A connection of Django's own backend to ``db``, outside ``django.db.connections`` (so the
    test database's guards do not apply to it)."""
    settings_dict = connections.configure_settings({"default": dict(db.settings)})["default"]
    return load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, alias)


def all_rows(conn: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every model's table, and of django_migrations, in primary-key order."""
    quote = conn.ops.quote_name
    tables: dict[str, str] = {"django_migrations": "id"}
    for model in apps.get_models(include_auto_created=True):
        if model._meta.managed and not model._meta.proxy:
            tables[model._meta.db_table] = model._meta.pk.column
    found: dict[str, list[tuple[Any, ...]]] = {}
    with conn.cursor() as cursor:
        for table, pk in sorted(tables.items()):
            cursor.execute(f"SELECT * FROM {quote(table)} ORDER BY {quote(pk)}")  # noqa: S608
            found[table] = [tuple(row) for row in cursor.fetchall()]
    return found


def all_files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def assert_same_database(source: Any, restored: Any) -> None:
    before, after = all_rows(source), all_rows(restored)
    assert set(before) == set(after)
    for table in before:
        assert before[table] == after[table], f"{table} differs after the restore"
    with source.cursor() as a, restored.cursor() as b:
        assert set(source.introspection.table_names(a)) == set(
            restored.introspection.table_names(b)
        )


def sqlite_target(tmp_path: Path, name: str = "restored.sqlite3") -> Database:
    return Database({"ENGINE": "gridgov.core.sqlite", "NAME": str(tmp_path / name)})


@pytest.fixture
def pg_target() -> Iterator[Database]:
    """A second, empty PostgreSQL database beside the test database, dropped afterwards."""
    import psycopg

    source = Database.from_alias("default")
    name = f"{source.name}_restore"[:63]
    target = Database({**source.settings, "NAME": name})
    admin = {**source.pg_params(), "dbname": "postgres", "autocommit": True}
    with psycopg.connect(**admin) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield target
    finally:
        with psycopg.connect(**admin) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def a_backup(tmp_path: Path) -> Path:
    return backup_create(output=tmp_path / "backups").path


# --- round trips ----------------------------------------------------------------------------------


def test_a_sqlite_backup_restored_into_a_new_file_has_every_row_and_every_file(
    world: World, media: Path, tmp_path: Path
) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("the SQLite round trip (the PostgreSQL one is below)")
    populate(world)
    assert CasePhoto.objects.count() == 2 and Person.objects.count() == 3
    made = backup_create(output=tmp_path / "backups")
    target = sqlite_target(tmp_path)
    restored_media = tmp_path / "restored-media"

    result = backup_restore(path=made.path, target=target, media_root=restored_media)

    restored = wrapper_for(target, "restored")
    try:
        assert_same_database(connection, restored)
    finally:
        restored.close()
    assert all_files(restored_media) == all_files(media)
    assert len(all_files(media)) == 4  # two photos and their thumbnails
    assert result.files_restored == 4
    assert made.manifest["tables"]["cases_case"] == 3
    assert made.manifest["tables"]["registry_person"] == 3


@on_postgres
@pytest.mark.postgres
def test_a_postgresql_backup_restored_into_a_new_database_has_every_row_and_every_file(
    world: World,
    media: Path,
    tmp_path: Path,
    pg_target: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    populate(world)
    calls: list[tuple[list[str], dict[str, str]]] = []
    real_run = backup_module.subprocess.run

    def recording_run(argv: list[str], **kwargs: Any) -> Any:
        calls.append((list(argv), dict(kwargs.get("env") or {})))
        return real_run(argv, **kwargs)

    monkeypatch.setattr(backup_module.subprocess, "run", recording_run)
    made = backup_create(output=tmp_path / "backups")
    restored_media = tmp_path / "restored-media"

    backup_restore(path=made.path, target=pg_target, media_root=restored_media)

    restored = wrapper_for(pg_target, "restored")
    try:
        assert_same_database(connection, restored)
    finally:
        restored.close()
    assert all_files(restored_media) == all_files(media)
    assert len(all_files(media)) == 4
    assert made.manifest["database"]["engine"] == "postgresql"
    # pg_dump and pg_restore ran, with the password in their environment only
    runs = [(argv, env) for argv, env in calls if "--version" not in argv]
    assert [Path(argv[0]).name for argv, _env in runs] == ["pg_dump", "pg_restore"]
    password = str(connection.settings_dict.get("PASSWORD") or "")
    for argv, env in runs:
        assert not any(
            arg.startswith(("postgres:", "postgresql:")) or "password=" in arg.lower()
            for arg in argv
        )
        assert env.get("PGPASSWORD", "") == password


@pytest.mark.skipif(
    _in_memory_sqlite(),
    reason="writes from another thread need a file-based SQLite test database "
    "(GRIDGOV_TEST_SQLITE=/tmp/gridgov-test.sqlite3)",
)
def test_a_sqlite_backup_taken_while_cases_are_being_reported_is_one_consistent_moment(
    world: World, media: Path, tmp_path: Path
) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's online backup (pg_dump's snapshot is covered above)")
    category()
    stop = threading.Event()
    written: list[str] = []
    failures: list[BaseException] = []

    def keep_reporting() -> None:
        try:
            while not stop.is_set():
                written.append(report(world.grid_worker_a, description="井盖缺失").number)
        except BaseException as exc:  # the test reports it
            failures.append(exc)
        finally:
            connections.close_all()

    def wait_for(count: int) -> None:
        deadline = threading.Event()
        for _ in range(600):
            if len(written) >= count or failures:
                return
            deadline.wait(0.05)
        raise AssertionError(f"the writer made only {len(written)} cases")

    writer = threading.Thread(target=keep_reporting)
    writer.start()
    try:
        wait_for(3)
        before = len(written)
        made = backup_create(output=tmp_path / "backups")
        wait_for(len(written) + 3)  # the writer went on while and after the copy was made
    finally:
        stop.set()
        writer.join(timeout=60)
    assert not failures, failures
    after = len(written)

    target = sqlite_target(tmp_path)
    backup_restore(path=made.path, target=target, media_root=tmp_path / "m")

    with sqlite3.connect(target.name) as copy:
        register_sql_functions(copy)  # REGEXP …, which the integrity check evaluates
        cases = copy.execute("SELECT count(*) FROM cases_case").fetchone()[0]
        assert before <= cases <= after
        # every case in the copy came with its whole transaction: its report on the timeline,
        # its version the timeline's last, its number counted by the sequence
        incomplete = copy.execute(
            "SELECT count(*) FROM cases_case c WHERE c.version != "
            "(SELECT max(e.version) FROM cases_caseevent e WHERE e.case_id = c.id)"
            " OR NOT EXISTS (SELECT 1 FROM cases_caseevent e WHERE e.case_id = c.id "
            "AND e.action = 'report')"
        ).fetchone()[0]
        assert incomplete == 0
        assert copy.execute("SELECT sum(last) FROM cases_casesequence").fetchone()[0] == cases
        assert copy.execute("PRAGMA foreign_key_check").fetchall() == []
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert Case.objects.count() == after


# --- refusals: nothing is changed -----------------------------------------------------------------


def test_a_backup_whose_photo_was_changed_is_refused_and_nothing_is_restored(
    world: World, media: Path, tmp_path: Path, english: None
) -> None:
    report(world.grid_worker_a, photos=[photo_save(data=jpeg(), folder="cases")])
    path = a_backup(tmp_path)
    photo = next((path / "media").rglob("*_thumb.jpg"))
    photo.write_bytes(photo.read_bytes()[:-1] + b"\x00")
    target = sqlite_target(tmp_path)

    with pytest.raises(BackupError) as refused:
        backup_restore(path=path, target=target, media_root=tmp_path / "restored-media")

    assert "changed (checksum differs): media/" in str(refused.value)
    assert not Path(target.name).exists()
    assert not (tmp_path / "restored-media").exists()


def test_a_backup_whose_database_file_was_changed_is_refused(
    db: None, media: Path, tmp_path: Path, english: None
) -> None:
    path = a_backup(tmp_path)
    database = next(p for p in path.iterdir() if p.name.startswith("database."))
    with database.open("r+b") as f:
        f.seek(200)
        f.write(b"tampered")

    with pytest.raises(BackupError, match=r"changed \(checksum differs\): database\."):
        backup_verify(path)


def test_a_backup_with_a_damaged_manifest_is_refused(
    db: None, media: Path, tmp_path: Path, english: None
) -> None:
    path = a_backup(tmp_path)
    text = (path / MANIFEST).read_text()
    (path / MANIFEST).write_text(text[: len(text) // 2])
    target = sqlite_target(tmp_path)

    with pytest.raises(BackupError, match=r"manifest .* is damaged"):
        backup_restore(path=path, target=target, media_root=tmp_path / "m")
    assert not Path(target.name).exists()


def test_a_manifest_naming_a_file_outside_the_backup_is_refused(
    db: None, media: Path, tmp_path: Path, english: None
) -> None:
    path = a_backup(tmp_path)
    manifest = json.loads((path / MANIFEST).read_text())
    manifest["files"]["media/../../outside.txt"] = {"sha256": "0" * 64, "size": 1}
    (path / MANIFEST).write_text(json.dumps(manifest))

    with pytest.raises(
        BackupError, match=re.escape("a file name is not allowed: media/../../outside.txt")
    ):
        backup_verify(path)


def test_a_file_slipped_into_a_backup_is_refused(
    db: None, media: Path, tmp_path: Path, english: None
) -> None:
    path = a_backup(tmp_path)
    (path / "media" / "cases").mkdir(parents=True, exist_ok=True)
    (path / "media" / "cases" / "extra.jpg").write_bytes(b"not ours")

    with pytest.raises(BackupError, match=re.escape("not in the manifest: media/cases/extra.jpg")):
        backup_verify(path)


def test_a_backup_is_not_restored_into_a_database_of_another_engine(
    db: None, media: Path, tmp_path: Path, english: None
) -> None:
    path = a_backup(tmp_path)
    other = (
        Database.from_url("postgres://gridgov@127.0.0.1:1/elsewhere")
        if connection.vendor == "sqlite"
        else sqlite_target(tmp_path)
    )

    with pytest.raises(BackupError, match="restored into a database of the same engine"):
        backup_restore(path=path, target=other, media_root=tmp_path / "m")


def test_a_backup_made_by_a_newer_gridgov_is_refused(
    world: World, media: Path, tmp_path: Path, english: None
) -> None:
    report(world.grid_worker_a)
    path = a_backup(tmp_path)
    manifest = json.loads((path / MANIFEST).read_text())
    manifest["migrations"]["cases"] = "9999_from_the_future"
    (path / MANIFEST).write_text(json.dumps(manifest))
    report(world.resident)
    target = Database.from_alias("default")  # the live database, which must stay as it is

    with pytest.raises(BackupError, match=r"newer gridgov .*cases\.9999_from_the_future"):
        backup_restore(path=path, target=target, media_root=tmp_path / "m", overwrite=True)
    assert Case.objects.count() == 2
    assert not (tmp_path / "m").exists()


@on_sqlite
def test_a_database_with_tables_is_replaced_only_when_told_to(
    db: None, media: Path, tmp_path: Path, english: None
) -> None:
    path = a_backup(tmp_path)
    target = sqlite_target(tmp_path)
    with sqlite3.connect(target.name) as existing:
        existing.execute("CREATE TABLE precious (id integer)")
        existing.execute("INSERT INTO precious VALUES (1)")

    with pytest.raises(BackupError, match=r"not empty .*--yes"):
        backup_restore(path=path, target=target, media_root=tmp_path / "m")
    with sqlite3.connect(target.name) as still:
        assert still.execute("SELECT count(*) FROM precious").fetchone()[0] == 1

    backup_restore(path=path, target=target, media_root=tmp_path / "m", overwrite=True)
    with sqlite3.connect(target.name) as replaced:
        tables = {r[0] for r in replaced.execute("SELECT name FROM sqlite_master")}
    assert "precious" not in tables and "cases_case" in tables


@on_sqlite
def test_a_sqlite_database_in_use_is_not_replaced(
    db: None, media: Path, tmp_path: Path, english: None
) -> None:
    path = a_backup(tmp_path)
    target = sqlite_target(tmp_path)
    shutil.copyfile(path / "database.sqlite3", target.name)
    server = sqlite3.connect(target.name)  # a server that still runs
    try:
        server.execute("PRAGMA journal_mode=WAL")
        server.execute("SELECT count(*) FROM django_migrations").fetchone()

        with pytest.raises(BackupError, match="is in use: stop gridgov"):
            backup_restore(path=path, target=target, media_root=tmp_path / "m", overwrite=True)
    finally:
        server.close()
    backup_restore(path=path, target=target, media_root=tmp_path / "m", overwrite=True)


# --- the commands ---------------------------------------------------------------------------------


def test_gridgov_backup_writes_a_folder_that_verify_finds_intact(
    db: None, media: Path, tmp_path: Path, english: None, capsys: pytest.CaptureFixture[str]
) -> None:
    (media / "cases").mkdir(parents=True)
    (media / "cases" / "note.jpg").write_bytes(b"a photo")

    call_command("backup", "--output", str(tmp_path / "backups"))
    written = capsys.readouterr().out
    (path,) = (tmp_path / "backups").iterdir()
    call_command("backup", "--verify", str(path))
    verified = capsys.readouterr().out

    assert f"backup written to {path}" in written and "1 uploaded files" in written
    assert "is intact: 2 files match their checksums" in verified
    manifest = json.loads((path / MANIFEST).read_text())
    assert manifest["format"] == "gridgov-backup" and manifest["format_version"] == 1
    assert manifest["database"]["engine"] == connection.vendor
    assert manifest["migrations"]["cases"].startswith("00")
    assert manifest["tables"]["accounts_user"] == 0
    assert manifest["files"]["media/cases/note.jpg"]["size"] == 7
    assert manifest["created_at"].endswith("Z")


def test_gridgov_backup_verify_exits_with_the_problem_for_a_tampered_backup(
    db: None, media: Path, tmp_path: Path, english: None
) -> None:
    path = a_backup(tmp_path)
    (path / "media").mkdir(exist_ok=True)
    (path / "media" / "x.jpg").write_bytes(b"x")

    with pytest.raises(CommandError, match="failed its check"):
        call_command("backup", "--verify", str(path))


def test_gridgov_restore_refuses_a_tampered_backup_and_changes_nothing(
    world: World, media: Path, tmp_path: Path, english: None
) -> None:
    report(world.grid_worker_a)
    path = a_backup(tmp_path)
    manifest = json.loads((path / MANIFEST).read_text())
    manifest["tables"]["cases_case"] = 0
    database = manifest["database"]["file"]
    manifest["files"][database]["sha256"] = "f" * 64
    (path / MANIFEST).write_text(json.dumps(manifest))

    with pytest.raises(CommandError, match="failed its check"):
        call_command("restore", str(path), "--yes")
    assert Case.objects.count() == 1


@on_sqlite
def test_gridgov_restore_into_another_database_and_folder_reports_what_it_did(
    db: None, media: Path, tmp_path: Path, english: None, capsys: pytest.CaptureFixture[str]
) -> None:
    (media / "cases").mkdir(parents=True)
    (media / "cases" / "note.jpg").write_bytes(b"a photo")
    path = a_backup(tmp_path)
    target = tmp_path / "copy.sqlite3"

    call_command(
        "restore",
        str(path),
        "--database-url",
        f"sqlite:///{target}",
        "--media-root",
        str(tmp_path / "copy-media"),
    )

    out = capsys.readouterr().out
    assert "restored the backup of" in out and "1 files written, 0 already in place" in out
    assert (tmp_path / "copy-media" / "cases" / "note.jpg").read_bytes() == b"a photo"
    with sqlite3.connect(target) as copy:
        assert copy.execute("SELECT count(*) FROM django_migrations").fetchone()[0] > 50


def test_uploaded_files_in_object_storage_are_left_to_the_buckets_versioning(
    db: None, settings: Any, tmp_path: Path, english: None
) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    made = backup_create(output=tmp_path / "backups")

    assert made.manifest["media"]["included"] is False
    assert any("versioning" in note for note in made.notes)
    assert list(made.manifest["files"]) == [made.manifest["database"]["file"]]


def test_pruning_keeps_the_newest_of_each_recent_day_and_week(tmp_path: Path) -> None:
    def fake(when: str) -> Path:
        path = tmp_path / f"gridgov-backup-{when}"
        path.mkdir()
        (path / MANIFEST).write_text("{}")
        return path

    stamps = [
        "20261124T020000Z",  # Tuesday, week 48
        "20261123T020000Z",  # Monday, week 48
        "20261123T010000Z",  # an earlier one the same day
        "20261122T020000Z",  # Sunday, week 47
        "20261115T020000Z",  # week 46
        "20261108T020000Z",  # week 45
        "20261101T020000Z",  # week 44
    ]
    made = {s: fake(s) for s in stamps}
    (tmp_path / "notes.txt").write_text("not a backup")

    removed = backup_prune(folder=tmp_path, keep_daily=2, keep_weekly=3)

    kept = {p.name.removeprefix("gridgov-backup-") for p in tmp_path.glob("gridgov-backup-*")}
    assert kept == {"20261124T020000Z", "20261123T020000Z", "20261122T020000Z", "20261115T020000Z"}
    assert set(removed) == {made[s] for s in set(stamps) - kept}
    assert (tmp_path / "notes.txt").exists()


def test_two_backups_in_the_same_second_get_two_folders(
    db: None, media: Path, tmp_path: Path
) -> None:
    moment = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    first = backup_create(output=tmp_path, now=moment).path
    second = backup_create(output=tmp_path, now=moment).path

    assert first.name == "gridgov-backup-20261124T020000Z"
    assert second.name == "gridgov-backup-20261124T020000Z-2"
    assert not list(tmp_path.glob(".*partial*"))
