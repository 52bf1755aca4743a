"""Backups of the database and the uploaded files, checked and restored (``gridgov backup`` and
``gridgov restore``; docs/operations.md, "Backups").

A backup is one directory, ``gridgov-backup-<UTC time>``, e.g. ``gridgov-backup-20261124T020000Z``::

    manifest.json          what is in it (below)
    database.sqlite3       SQLite: an online copy made with SQLite's backup API
    database.pgdump        PostgreSQL: ``pg_dump --format=custom``
    media/…                the uploaded files (photos), under their storage names

``manifest.json`` records the format version, the gridgov version, when it was made, the
database engine, the latest applied migration of each app, the row count of every table, and the
size and SHA-256 of every other file in the directory. A directory (not an archive) because the
photos, which make most of a backup, never change: ``rsync`` copies only the new ones off-site.
The backup is written under a hidden ``.…partial`` name and renamed when complete, so a backup
that was interrupted is never mistaken for one that is whole.

Consistency. SQLite: one step of the backup API copies the whole database under a single read
transaction; in WAL mode writers go on meanwhile and the copy is the database as of one moment.
PostgreSQL: a REPEATABLE READ transaction exports its snapshot, ``pg_dump --snapshot`` dumps
exactly that snapshot, and the row counts are taken in the same transaction. The database is
copied before the files: a photo is stored before the rows that name it, so every photo the
copied database names is already on disk (unless deleted since).

Restore verifies every checksum first and changes nothing when one is wrong; refuses a backup of
another engine, one made by a newer gridgov (a migration this code does not know), and a
database that already has tables unless told to overwrite it; restores the files (each written
to a temporary name and renamed into place), then the database (SQLite: the copy replaces the
database file in one rename, which refuses while another connection has the database open;
PostgreSQL: ``pg_restore --clean --if-exists --no-owner --single-transaction``), and finally
counts the rows of every table against the manifest.

The personal-data keys (``GRIDGOV_DATA_KEY``, ``GRIDGOV_LOOKUP_KEY``) and ``SECRET_KEY`` are not
in a backup: keep them apart from it. The database password reaches ``pg_dump`` and
``pg_restore`` in the ``PGPASSWORD`` environment variable, never on a command line.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings
from django.db import connections
from django.utils.translation import gettext as _

FORMAT = "gridgov-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite3"
PG_FILE = "database.pgdump"
MEDIA_DIR = "media"
NAME_PREFIX = "gridgov-backup-"
_NAME = re.compile(r"gridgov-backup-(\d{8}T\d{6}Z)(?:-\d+)?")
_CHUNK = 1024 * 1024

#: libpq's connection options that may come through ``DATABASES[...]["OPTIONS"]``, and the
#: environment variable of each (for pg_dump and pg_restore).
_PG_OPTIONS = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "options": "PGOPTIONS",
    "application_name": "PGAPPNAME",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "service": "PGSERVICE",
    "passfile": "PGPASSFILE",
    "channel_binding": "PGCHANNELBINDING",
    "gssencmode": "PGGSSENCMODE",
}


class BackupError(Exception):
    """What went wrong, for the operator (the commands print it and exit with status 1)."""


# --- databases --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Database:
    """A database as a Django settings dict describes it (the source or the restore target)."""

    settings: dict[str, Any]

    @classmethod
    def from_alias(cls, alias: str = "default") -> Database:
        return cls(dict(connections[alias].settings_dict))

    @classmethod
    def from_url(cls, url: str) -> Database:
        import dj_database_url

        return cls(dict(dj_database_url.parse(url)))

    @property
    def engine(self) -> str:
        """``sqlite`` or ``postgresql``."""
        name = str(self.settings.get("ENGINE", ""))
        if name == "gridgov.core.sqlite" or name.endswith("sqlite3"):
            return "sqlite"
        if "postgresql" in name:
            return "postgresql"
        raise BackupError(_("unsupported database engine: %(engine)s") % {"engine": name})

    @property
    def name(self) -> str:
        return str(self.settings.get("NAME") or "")

    def pg_params(self) -> dict[str, Any]:
        """Keyword arguments of ``psycopg.connect``."""
        params: dict[str, Any] = {"dbname": self.name}
        for key, param in (("USER", "user"), ("PASSWORD", "password"), ("HOST", "host")):
            if self.settings.get(key):
                params[param] = self.settings[key]
        if self.settings.get("PORT"):
            params["port"] = int(self.settings["PORT"])
        options = self.settings.get("OPTIONS") or {}
        params.update({k: v for k, v in options.items() if k in _PG_OPTIONS})
        return params

    def pg_env(self) -> dict[str, str]:
        """The environment of pg_dump and pg_restore: the connection (password included) in
        libpq's variables, so nothing secret is on a command line. What the settings leave out
        (a password kept in ~/.pgpass or PGPASSWORD, say) comes from libpq's usual sources."""
        env = dict(os.environ)
        for key, var in (
            ("HOST", "PGHOST"),
            ("PORT", "PGPORT"),
            ("USER", "PGUSER"),
            ("PASSWORD", "PGPASSWORD"),
        ):
            if self.settings.get(key):
                env[var] = str(self.settings[key])
        env["PGDATABASE"] = self.name
        for key, value in (self.settings.get("OPTIONS") or {}).items():
            if key in _PG_OPTIONS:
                env[_PG_OPTIONS[key]] = str(value)
        return env

    def connect_pg(self) -> Any:
        import psycopg

        try:
            return psycopg.connect(**self.pg_params())
        except psycopg.OperationalError as exc:
            raise BackupError(
                _("cannot connect to the PostgreSQL database %(name)s: %(error)s")
                % {"name": self.name, "error": _first_line(str(exc))}
            ) from exc


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sqlite_connect(path: Path | str, **kwargs: Any) -> sqlite3.Connection:
    """A plain sqlite3 connection with Django's SQL functions (REGEXP …), which the schema's
    check constraints call (an integrity check evaluates them)."""
    from django.db.backends.sqlite3._functions import register

    conn = sqlite3.connect(path, **kwargs)
    register(conn)
    return conn


def _sqlite_tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name"
    ).fetchall()
    return [r[0] for r in rows]


def _pg_tables(cursor: Any) -> list[str]:
    """Every table outside the system schemas (``schema.table`` outside ``public``)."""
    cursor.execute(
        "SELECT schemaname, tablename FROM pg_tables "
        "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
    )
    return [t if s == "public" else f"{s}.{t}" for s, t in cursor.fetchall()]


def _qualified(table: str) -> str:
    return ".".join(_quote(part) for part in table.split(".", 1))


def _count(execute: Callable[[str], Any], tables: list[str]) -> dict[str, int]:
    # table names come from the database's own catalogue, quoted as identifiers
    return {t: int(execute(f"SELECT count(*) FROM {_qualified(t)}")[0]) for t in tables}  # noqa: S608


def _migration_state(rows: list[tuple[str, str]]) -> dict[str, str]:
    """The latest applied migration of each app (rows in the order they were applied)."""
    latest: dict[str, str] = {}
    for app, name in rows:
        latest[app] = name
    return dict(sorted(latest.items()))


def database_tables(db: Database) -> list[str]:
    """The tables the database has now (none for a SQLite file that does not exist)."""
    if db.engine == "sqlite":
        path = Path(db.name)
        if not path.exists() or path.stat().st_size == 0:
            return []
        with contextlib.closing(_sqlite_connect(path)) as conn:
            return _sqlite_tables(conn)
    with db.connect_pg() as conn, conn.cursor() as cursor:
        return _pg_tables(cursor)


def database_counts(db: Database) -> dict[str, int]:
    """The row count of every table."""
    if db.engine == "sqlite":
        with contextlib.closing(_sqlite_connect(db.name)) as conn:
            return _count(lambda q: conn.execute(q).fetchone(), _sqlite_tables(conn))
    with db.connect_pg() as conn, conn.cursor() as cursor:

        def one(query: str) -> Any:
            cursor.execute(query)
            return cursor.fetchone()

        return _count(one, _pg_tables(cursor))


# --- PostgreSQL's tools ---------------------------------------------------------------------------


def _tool_major(path: str) -> int | None:
    try:
        out = subprocess.run(  # noqa: S603 - our own argv, no shell
            [path, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except OSError:
        return None
    found = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(found.group(1)) if found else None


def pg_tool(name: str, server_major: int | None) -> str:
    """The path of pg_dump or pg_restore: in ``GRIDGOV_PG_BINDIR`` when set, else the one of the
    server's major version under /usr/lib/postgresql, else on PATH, else the newest installed.
    It must not be older than the server (pg_dump refuses newer servers)."""
    configured = settings.GRIDGOV_PG_BINDIR
    if configured:
        candidates = [str(Path(configured) / name)]
    else:
        installed = sorted(
            glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
            key=lambda p: int(re.sub(r"\D", "", Path(p).parts[-3]) or 0),
            reverse=True,
        )
        matching = [p for p in installed if Path(p).parts[-3] == str(server_major)]
        on_path = shutil.which(name)
        candidates = [*matching, *([on_path] if on_path else []), *installed]
    for path in candidates:
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            continue
        major = _tool_major(path)
        if server_major is None or (major is not None and major >= server_major):
            return path
    raise BackupError(
        _(
            "%(tool)s for PostgreSQL %(major)s or newer was not found: install the PostgreSQL "
            "client (e.g. apt-get install postgresql-client) or set GRIDGOV_PG_BINDIR to the "
            "folder that holds it"
        )
        % {"tool": name, "major": server_major or "?"}
    )


def _run_tool(argv: list[str], env: dict[str, str], what: str) -> None:
    try:
        result = subprocess.run(  # noqa: S603 - our own argv, no shell
            argv, env=env, capture_output=True, text=True, check=False
        )
    except OSError as exc:
        raise BackupError(f"{what}: {exc}") from exc
    if result.returncode != 0:
        detail = "\n".join(result.stderr.strip().splitlines()[-10:])
        raise BackupError(
            _("%(tool)s failed (exit status %(code)s):\n%(detail)s")
            % {"tool": what, "code": result.returncode, "detail": detail}
        )


# --- files and checksums --------------------------------------------------------------------------


def _copy_hashed(source: Path, target: Path) -> tuple[str, int]:
    """Copy ``source`` to ``target`` (flushed to disk); its SHA-256 and size."""
    digest = hashlib.sha256()
    size = 0
    with source.open("rb") as src, target.open("wb") as dst:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            dst.write(chunk)
            size += len(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    shutil.copystat(source, target)
    return digest.hexdigest(), size


def file_digest(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def local_media_root() -> Path | None:
    """The uploaded files' folder when they are kept on the local disk (None: S3 and the like)."""
    from django.core.files.storage import FileSystemStorage, storages

    storage = storages["default"]
    return Path(storage.location) if isinstance(storage, FileSystemStorage) else None


def _media_files(root: Path) -> Iterator[tuple[Path, str]]:
    """(path, name relative to ``root``) of every regular file; links are not followed."""
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder) / name
            if name.startswith(".readyz-") or path.is_symlink() or not path.is_file():
                continue
            yield path, path.relative_to(root).as_posix()


# --- making a backup ------------------------------------------------------------------------------


@dataclass
class BackupResult:
    path: Path
    manifest: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def _gridgov_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gridgov")
    except PackageNotFoundError:
        return "unknown"


#: How long the SQLite backup waits for a lock before it gives up.
SQLITE_LOCK_WAIT_SECONDS = 60.0


@contextlib.contextmanager
def _sqlite_source(alias: str) -> Iterator[sqlite3.Connection]:
    """A connection to read the database from: a connection of its own for a file (it sees what
    is committed), Django's for an in-memory database (only it can reach that one)."""
    connection = connections[alias]
    name = str(connection.settings_dict.get("NAME") or "")
    if not _in_memory(name):
        conn = _sqlite_connect(name, timeout=SQLITE_LOCK_WAIT_SECONDS)
        try:
            yield conn
        finally:
            conn.close()
        return
    if connection.in_atomic_block:
        raise BackupError(_("a backup cannot be made inside a database transaction"))
    connection.ensure_connection()
    yield connection.connection


def _give_up_after(seconds: float) -> Callable[[int, int, int], None]:
    """A backup progress callback that stops a copy still locked out after ``seconds`` (Python
    retries a busy or locked step for ever)."""
    deadline = time.monotonic() + seconds

    def progress(status: int, remaining: int, total: int) -> None:
        if status in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) and time.monotonic() > deadline:
            raise BackupError(
                _("the database stayed locked for %(s)s seconds; the backup was not made")
                % {"s": int(seconds)}
            )

    return progress


def _backup_sqlite(target: Path, alias: str) -> dict[str, Any]:
    with _sqlite_source(alias) as source, contextlib.closing(_sqlite_connect(target)) as copy:
        # one step (pages=-1): the whole database under one read transaction, as of one moment
        source.backup(copy, pages=-1, progress=_give_up_after(SQLITE_LOCK_WAIT_SECONDS))
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        check = copy.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise BackupError(_("the copy failed SQLite's integrity check: %(r)s") % {"r": check})
        tables = _sqlite_tables(copy)
        migrations = (
            copy.execute("SELECT app, name FROM django_migrations ORDER BY id").fetchall()
            if "django_migrations" in tables
            else []
        )
        counts = _count(lambda q: copy.execute(q).fetchone(), tables)
        version = copy.execute("SELECT sqlite_version()").fetchone()[0]
    return {
        "engine": "sqlite",
        "file": SQLITE_FILE,
        "server_version": version,
        "migrations": _migration_state(migrations),
        "tables": counts,
    }


def _backup_postgresql(target: Path, db: Database) -> dict[str, Any]:
    import psycopg

    with db.connect_pg() as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_export_snapshot(), current_setting('server_version_num')")
            snapshot, version_num = cursor.fetchone()
            server_major = int(version_num) // 10000
            argv = [
                pg_tool("pg_dump", server_major),
                "--format=custom",
                "--no-password",
                f"--snapshot={snapshot}",
                f"--file={target}",
            ]
            _run_tool(argv, db.pg_env(), "pg_dump")  # the transaction keeps the snapshot alive
            tables = _pg_tables(cursor)
            migrations: list[tuple[str, str]] = []
            if "django_migrations" in tables:
                cursor.execute("SELECT app, name FROM django_migrations ORDER BY id")
                migrations = list(cursor.fetchall())

            def one(query: str) -> Any:
                cursor.execute(query)
                return cursor.fetchone()

            counts = _count(one, tables)
        conn.rollback()
    return {
        "engine": "postgresql",
        "file": PG_FILE,
        "server_version": str(server_major),
        "migrations": _migration_state(migrations),
        "tables": counts,
    }


def backup_create(
    *,
    output: Path,
    include_files: bool = True,
    alias: str = "default",
    now: datetime | None = None,
) -> BackupResult:
    """Write a backup of the database ``alias`` and the uploaded files into a new directory
    under ``output``; returns its path and manifest."""
    db = Database.from_alias(alias)
    engine = db.engine
    moment = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    output = output.resolve()
    media_root = local_media_root()
    if include_files and media_root is not None:
        media = media_root.resolve()
        if output == media or media in output.parents:
            raise BackupError(_("the backup folder must not be inside the media folder"))
    output.mkdir(parents=True, exist_ok=True)
    stamp = moment.strftime("%Y%m%dT%H%M%SZ")
    final = output / f"{NAME_PREFIX}{stamp}"
    n = 1
    while final.exists():
        n += 1
        final = output / f"{NAME_PREFIX}{stamp}-{n}"
    work = output / f".{final.name}.partial-{uuid.uuid4().hex[:8]}"
    work.mkdir()
    notes: list[str] = []
    try:
        db_file = work / (SQLITE_FILE if engine == "sqlite" else PG_FILE)
        if engine == "sqlite":
            database = _backup_sqlite(db_file, alias)
        else:
            database = _backup_postgresql(db_file, db)
        files: dict[str, dict[str, Any]] = {}
        sha, size = file_digest(db_file)
        files[database["file"]] = {"sha256": sha, "size": size}
        media_info = _backup_media(work, media_root, include_files, files, notes)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "gridgov_version": _gridgov_version(),
            "created_at": moment.isoformat().replace("+00:00", "Z"),
            "database": {k: database[k] for k in ("engine", "file", "server_version")},
            "migrations": database["migrations"],
            "tables": database["tables"],
            "media": media_info,
            "files": dict(sorted(files.items())),
        }
        with (work / MANIFEST).open("w", encoding="utf-8") as f:
            json.dump(manifest, f, ensure_ascii=False, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(work)
        work.rename(final)
        _fsync_dir(output)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return BackupResult(path=final, manifest=manifest, notes=notes)


def _backup_media(
    work: Path,
    media_root: Path | None,
    include_files: bool,
    files: dict[str, dict[str, Any]],
    notes: list[str],
) -> dict[str, Any]:
    if not include_files:
        return {"included": False, "reason": "--no-files"}
    if media_root is None:
        notes.append(
            _(
                "The uploaded files are kept in object storage (GRIDGOV_MEDIA_STORAGE=%(kind)s) "
                "and are not in this backup: the bucket's versioning (and its replication) is "
                "their backup."
            )
            % {"kind": settings.GRIDGOV_MEDIA_STORAGE}
        )
        return {"included": False, "reason": f"storage {settings.GRIDGOV_MEDIA_STORAGE}"}
    count = total = vanished = 0
    if media_root.exists():
        for path, name in _media_files(media_root):
            target = work / MEDIA_DIR / name
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                sha, size = _copy_hashed(path, target)
            except FileNotFoundError:  # deleted while we copied (an unused upload, say)
                target.unlink(missing_ok=True)
                vanished += 1
                continue
            files[f"{MEDIA_DIR}/{name}"] = {"sha256": sha, "size": size}
            count += 1
            total += size
    if vanished:
        notes.append(
            _("%(n)s files were deleted while the backup ran and are not in it") % {"n": vanished}
        )
    return {"included": True, "storage": "local", "files": count, "bytes": total}


# --- checking a backup ----------------------------------------------------------------------------


def _safe_name(name: str) -> bool:
    """A manifest's file name: relative, no '..', the database file or under media/."""
    pure = PurePosixPath(name)
    if pure.is_absolute() or not pure.parts or ".." in pure.parts or "\\" in name:
        return False
    return name in (SQLITE_FILE, PG_FILE) or (pure.parts[0] == MEDIA_DIR and len(pure.parts) > 1)


def read_manifest(path: Path) -> dict[str, Any]:
    """The backup's manifest, refused when missing, unreadable or not of this format."""
    if not path.is_dir():
        raise BackupError(_("%(path)s is not a backup folder") % {"path": path})
    manifest_path = path / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BackupError(
            _("%(path)s has no manifest.json: not a gridgov backup, or an incomplete one")
            % {"path": path}
        ) from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BackupError(
            _("the manifest of %(path)s is damaged (%(error)s): the backup cannot be trusted")
            % {"path": path, "error": type(exc).__name__}
        ) from exc
    problems = _manifest_problems(manifest)
    if problems:
        raise BackupError(
            _("the manifest of %(path)s is damaged: %(problems)s")
            % {"path": path, "problems": "; ".join(problems)}
        )
    return manifest


def _manifest_problems(manifest: Any) -> list[str]:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return [_("not a gridgov backup manifest")]
    version = manifest.get("format_version")
    if not isinstance(version, int):
        return [_("no format version")]
    if version > FORMAT_VERSION:
        return [
            _("format version %(v)s is newer than this gridgov reads (%(mine)s): upgrade first")
            % {"v": version, "mine": FORMAT_VERSION}
        ]
    problems = []
    database = manifest.get("database")
    if not isinstance(database, dict) or database.get("engine") not in ("sqlite", "postgresql"):
        problems.append(_("no database engine"))
    elif database.get("file") != (SQLITE_FILE if database["engine"] == "sqlite" else PG_FILE):
        problems.append(_("the database file does not fit the engine"))
    for key in ("migrations", "tables", "media", "files"):
        if not isinstance(manifest.get(key), dict):
            problems.append(_("%(key)s is missing") % {"key": key})
    if problems:
        return problems
    if not all(isinstance(v, int) and v >= 0 for v in manifest["tables"].values()):
        problems.append(_("a row count is not a number"))
    for name, info in manifest["files"].items():
        if not _safe_name(name):
            problems.append(_("a file name is not allowed: %(name)s") % {"name": name})
        elif not (
            isinstance(info, dict)
            and isinstance(info.get("size"), int)
            and isinstance(info.get("sha256"), str)
            and re.fullmatch(r"[0-9a-f]{64}", info["sha256"])
        ):
            problems.append(_("%(name)s has no valid checksum") % {"name": name})
    if manifest["database"]["file"] not in manifest["files"]:
        problems.append(_("the database file is not listed"))
    return problems


def backup_verify(path: Path) -> dict[str, Any]:
    """Check every file of the backup against the manifest; the manifest, or BackupError naming
    each file that is missing, changed or not listed."""
    path = Path(path)
    manifest = read_manifest(path)
    problems: list[str] = []
    inside = path.resolve()
    for name, info in manifest["files"].items():
        file = path / name
        if file.is_symlink() or not file.is_file() or inside not in file.resolve().parents:
            problems.append(_("missing: %(name)s") % {"name": name})
            continue
        sha, size = file_digest(file)
        if size != info["size"] or sha != info["sha256"]:
            problems.append(_("changed (checksum differs): %(name)s") % {"name": name})
    listed = set(manifest["files"]) | {MANIFEST}
    for found in sorted(path.rglob("*")):
        if found.is_dir() and not found.is_symlink():
            continue
        name = found.relative_to(path).as_posix()
        if name not in listed:
            problems.append(_("not in the manifest: %(name)s") % {"name": name})
    if problems:
        shown = problems[:20] + ([f"… ({len(problems) - 20} more)"] if len(problems) > 20 else [])
        raise BackupError(
            _("the backup %(path)s failed its check and was not used:\n  %(problems)s")
            % {"path": path, "problems": "\n  ".join(shown)}
        )
    return manifest


# --- restoring ------------------------------------------------------------------------------------


@dataclass
class RestoreResult:
    manifest: dict[str, Any]
    files_restored: int = 0
    files_unchanged: int = 0
    files_not_in_backup: int = 0
    notes: list[str] = field(default_factory=list)


def _unknown_migrations(manifest: dict[str, Any]) -> list[str]:
    """Migrations of installed apps that the backup has applied and this code lacks."""
    from django.apps import apps
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(None, ignore_no_migrations=True)
    installed = {config.label for config in apps.get_app_configs()}
    return [
        f"{app}.{name}"
        for app, name in manifest["migrations"].items()
        if app in installed and (app, name) not in loader.disk_migrations
    ]


def _behind(manifest: dict[str, Any]) -> list[str]:
    """Apps whose latest migration in the code is newer than the backup's."""
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(None, ignore_no_migrations=True)
    behind = []
    for app, name in loader.graph.leaf_nodes():
        if manifest["migrations"].get(app) != name:
            behind.append(app)
    return sorted(set(behind))


def backup_restore(
    *,
    path: Path,
    target: Database,
    media_root: Path | None = None,
    overwrite: bool = False,
    include_files: bool = True,
) -> RestoreResult:
    """Restore the backup at ``path`` into ``target`` and the media folder (``media_root``, by
    default the configured one); see the module's docstring for what is checked first."""
    path = Path(path)
    manifest = backup_verify(path)
    engine = manifest["database"]["engine"]
    if engine != target.engine:
        raise BackupError(
            _(
                "this is a backup of a %(backup)s database and the target is %(target)s: a "
                "backup is restored into a database of the same engine"
            )
            % {"backup": engine, "target": target.engine}
        )
    unknown = _unknown_migrations(manifest)
    if unknown:
        raise BackupError(
            _(
                "the backup was made by a newer gridgov (migrations this version does not "
                "have: %(names)s): upgrade gridgov first, then restore"
            )
            % {"names": ", ".join(unknown)}
        )
    if target.engine == "sqlite" and _in_memory(target.name):
        raise BackupError(_("cannot restore into an in-memory database"))
    existing = database_tables(target)
    if existing and not overwrite:
        raise BackupError(
            _(
                "the database %(name)s is not empty (%(n)s tables): a restore replaces "
                "everything in it. Stop gridgov, then run the restore again with --yes"
            )
            % {"name": target.name, "n": len(existing)}
        )
    if engine == "postgresql":
        extra = sorted(set(existing) - set(manifest["tables"]))
        if extra:
            raise BackupError(
                _(
                    "the database %(name)s has tables the backup does not have (%(tables)s): "
                    "restore into an empty database, or drop them first"
                )
                % {"name": target.name, "tables": ", ".join(extra[:10])}
            )
    result = RestoreResult(manifest=manifest)
    if include_files:
        _restore_media(path, manifest, media_root, result)
    if engine == "sqlite":
        _restore_sqlite(path / SQLITE_FILE, manifest, target)
    else:
        _restore_postgresql(path / PG_FILE, target)
    counts = database_counts(target)
    wrong = [
        f"{table}: {counts.get(table, 'missing')} ≠ {expected}"
        for table, expected in manifest["tables"].items()
        if counts.get(table) != expected
    ]
    if wrong:
        raise BackupError(
            _("the restored database does not match the backup's row counts:\n  %(tables)s")
            % {"tables": "\n  ".join(wrong[:20])}
        )
    behind = _behind(manifest)
    if behind:
        result.notes.append(
            _(
                "the backup predates this version's migrations (%(apps)s): run gridgov migrate "
                "(gridgov serve does) before starting the site"
            )
            % {"apps": ", ".join(behind)}
        )
    return result


def _restore_media(
    path: Path, manifest: dict[str, Any], media_root: Path | None, result: RestoreResult
) -> None:
    names = [n for n in manifest["files"] if n.startswith(f"{MEDIA_DIR}/")]
    if not manifest["media"].get("included"):
        result.notes.append(_("the backup holds no uploaded files; none were restored"))
        return
    root = media_root or local_media_root()
    if root is None:
        result.notes.append(
            _(
                "the uploaded files were not restored: this installation keeps them in object "
                "storage. Copy %(folder)s to the bucket with your storage's tools"
            )
            % {"folder": path / MEDIA_DIR}
        )
        return
    root.mkdir(parents=True, exist_ok=True)
    restored = set()
    for name in names:
        relative = name[len(MEDIA_DIR) + 1 :]
        restored.add(relative)
        info = manifest["files"][name]
        dest = root / relative
        if (
            dest.is_file()
            and not dest.is_symlink()
            and file_digest(dest)
            == (
                info["sha256"],
                info["size"],
            )
        ):
            result.files_unchanged += 1
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        temp = dest.with_name(f".{dest.name}.restore-{uuid.uuid4().hex[:8]}")
        try:
            sha, size = _copy_hashed(path / name, temp)
            if (sha, size) != (info["sha256"], info["size"]):
                raise BackupError(_("%(name)s changed while it was restored") % {"name": name})
            os.replace(temp, dest)
        finally:
            temp.unlink(missing_ok=True)
        result.files_restored += 1
    result.files_not_in_backup = sum(1 for _p, name in _media_files(root) if name not in restored)
    if result.files_not_in_backup:
        result.notes.append(
            _(
                "%(n)s files in %(folder)s are not in the backup (newer uploads); they were "
                "left in place"
            )
            % {"n": result.files_not_in_backup, "folder": root}
        )


def _in_memory(name: str) -> bool:
    return not name or name == ":memory:" or "mode=memory" in name


def _restore_sqlite(source: Path, manifest: dict[str, Any], target: Database) -> None:
    db = Path(target.name)
    db.parent.mkdir(parents=True, exist_ok=True)
    for connection in connections.all(initialized_only=True):
        if connection.settings_dict.get("NAME") == target.name:
            connection.close()  # this process's own connection, before the file goes
    temp = db.with_name(f".{db.name}.restore-{uuid.uuid4().hex[:8]}")
    try:
        sha, size = _copy_hashed(source, temp)
        expected = manifest["files"][SQLITE_FILE]
        if (sha, size) != (expected["sha256"], expected["size"]):
            raise BackupError(_("the database file changed while it was restored"))
        with contextlib.closing(_sqlite_connect(temp)) as check:
            if check.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise BackupError(_("the backup's database fails SQLite's integrity check"))
        with _sqlite_exclusive(db):
            os.replace(temp, db)
            _fsync_dir(db.parent)
    finally:
        temp.unlink(missing_ok=True)


@contextlib.contextmanager
def _sqlite_exclusive(db: Path) -> Iterator[None]:
    """Hold the database alone while it is replaced: leaving WAL mode folds the write-ahead log
    into the file and removes it (so a stale log cannot be replayed onto the restored
    database), and SQLite refuses that while any other connection has the database open."""
    if not db.exists():
        yield
        return
    conn = _sqlite_connect(db, timeout=2)
    try:
        try:
            mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
            conn.execute("BEGIN EXCLUSIVE")
        except sqlite3.OperationalError as exc:
            raise BackupError(
                _(
                    "the database %(name)s is in use: stop gridgov (the web server and the "
                    "worker) before restoring"
                )
                % {"name": db}
            ) from exc
        if str(mode).lower() != "delete":
            raise BackupError(
                _(
                    "the database %(name)s is in use: stop gridgov (the web server and the "
                    "worker) before restoring"
                )
                % {"name": db}
            )
        for suffix in ("-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        yield
    finally:
        with contextlib.suppress(sqlite3.Error):
            conn.rollback()
        conn.close()


def _restore_postgresql(source: Path, target: Database) -> None:
    with target.connect_pg() as conn, conn.cursor() as cursor:
        cursor.execute("SELECT current_setting('server_version_num')")
        server_major = int(cursor.fetchone()[0]) // 10000
    argv = [
        pg_tool("pg_restore", server_major),
        "--clean",
        "--if-exists",
        "--no-owner",
        "--no-privileges",
        "--single-transaction",
        "--exit-on-error",
        "--no-password",
        f"--dbname={target.name}",
        str(source),
    ]
    _run_tool(argv, target.pg_env(), "pg_restore")


# --- keeping some ---------------------------------------------------------------------------------


def backups_in(folder: Path) -> list[tuple[datetime, Path]]:
    """The complete backups in ``folder``, newest first."""
    found = []
    if not folder.is_dir():
        return []
    for entry in folder.iterdir():
        match = _NAME.fullmatch(entry.name)
        if match and entry.is_dir() and (entry / MANIFEST).is_file():
            when = datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            found.append((when, entry))
    return sorted(found, reverse=True)


def backup_prune(*, folder: Path, keep_daily: int, keep_weekly: int) -> list[Path]:
    """Delete the backups in ``folder`` except the newest of each of the last ``keep_daily``
    days and of each of the last ``keep_weekly`` ISO weeks that have one (the newest backup is
    always kept), and partial ones a day old. Returns what was deleted."""
    backups = backups_in(folder)
    keep: set[Path] = {backups[0][1]} if backups else set()
    days: set[Any] = set()
    weeks: set[Any] = set()
    for when, path in backups:  # newest first: the first of each day or week is its newest
        day, week = when.date(), when.isocalendar()[:2]
        if day not in days and len(days) < keep_daily:
            days.add(day)
            keep.add(path)
        if week not in weeks and len(weeks) < keep_weekly:
            weeks.add(week)
            keep.add(path)
    removed = []
    for _when, path in backups:
        if path not in keep:
            shutil.rmtree(path)
            removed.append(path)
    cutoff = datetime.now(UTC).timestamp() - 86400
    for entry in folder.glob(f".{NAME_PREFIX}*.partial-*"):
        if entry.is_dir() and entry.stat().st_mtime < cutoff:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed
