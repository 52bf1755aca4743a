"""What the database benchmarks share: one child process per database, and the summary.

A benchmark's parent process calls ``run_engines``: SQLite in a file under the temporary
directory, then PostgreSQL when ``DATABASE_URL`` points at one (in a database of the
benchmark's own next to it, created when the role may CREATEDB; the database named in the URL is
never touched). Each engine runs in a child process (settings are read from the environment at
start-up) that prints its progress and, last, one JSON line with its figures. ``finish`` prints
whether every engine completed and met its targets, and one JSON line with everything.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit


def postgres_url(base: str, name: str, *, fresh: bool = True) -> tuple[str | None, str]:
    """The URL of the database ``name`` next to ``base``'s and how it came to be ("created",
    "reused"), or None and why not. ``fresh``: drop and create it even if it exists."""
    import psycopg

    bench = urlunsplit(urlsplit(base)._replace(path=f"/{name}"))
    try:
        with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if exists and not fresh:
                return bench, "reused"
            may = conn.execute(
                "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
            if not (may and may[0]):
                return None, "the role may not create databases"
            if exists:
                conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        return None, f"PostgreSQL unavailable: {str(exc).strip().splitlines()[0]}"
    return bench, "created"


def drop_postgres(base: str, name: str) -> None:
    """Drop the database ``name`` next to ``base``'s, if it is there."""
    import psycopg

    try:
        with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg.Error:
        pass


def run_child(engine: str, cmd: list[str], url: str, var_dir: Path, **env: str) -> dict[str, Any]:
    """Run one engine's child process: its lines are printed as they come, its last JSON line
    is the answer (or an error when it failed)."""
    environment = {
        **os.environ,
        "DATABASE_URL": url,
        "GRIDGOV_VAR_DIR": str(var_dir),
        "DJANGO_SETTINGS_MODULE": "gridgov.settings",
        "GRIDGOV_LOG_LEVEL": "WARNING",
        **env,
    }
    proc = subprocess.Popen(
        [sys.executable, *cmd], env=environment, stdout=subprocess.PIPE, text=True
    )
    last = ""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("{"):
            last = line
        else:
            print(line, end="", flush=True)
    code = proc.wait()
    if code or not last:
        return {"engine": engine, "error": f"the {engine} run failed (exit {code})"}
    result: dict[str, Any] = json.loads(last)
    return result


def run_engines(
    *,
    engines: str,
    work: Path,
    name: str,
    database: str,
    run: Callable[[str, str, Path], dict[str, Any]],
    reuse: bool = False,
    drop: bool = False,
) -> list[dict[str, Any]]:
    """``run(engine, url, var_dir)`` for SQLite (``work/<name>.sqlite3``) and PostgreSQL
    (``database``), as ``engines`` ("all", "sqlite", "postgres") asks.

    ``reuse``: keep the SQLite file, the PostgreSQL database and their var directories (which
    hold their data keys) for the next ``reuse`` run; ``drop``: drop the PostgreSQL database
    afterwards."""
    work.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    var_dirs = {engine: work / f"var-{name}-{engine}" for engine in ("sqlite", "postgres")}
    if not reuse:
        for var_dir in var_dirs.values():
            shutil.rmtree(var_dir, ignore_errors=True)
    if engines in ("all", "sqlite"):
        path = work / f"{name}.sqlite3"
        if not reuse:
            _remove(work, path.name)
        results.append(run("sqlite", f"sqlite:///{path}", var_dirs["sqlite"]))
        if not reuse:
            _remove(work, path.name)
    base = os.environ.get("DATABASE_URL", "")
    if engines in ("all", "postgres"):
        if base.startswith(("postgres://", "postgresql://")):
            url, how = postgres_url(base, database, fresh=not reuse)
            if url:
                print(f"\nPostgreSQL: database {database} {how}", flush=True)
                results.append(run("postgres", url, var_dirs["postgres"]))
                if drop:
                    drop_postgres(base, database)
            else:
                print(f"\nPostgreSQL skipped: {how}")
        elif engines == "postgres":
            print("\nPostgreSQL skipped: DATABASE_URL does not point at PostgreSQL")
    if not reuse:
        for var_dir in var_dirs.values():
            shutil.rmtree(var_dir, ignore_errors=True)
    return results


def _remove(folder: Path, name: str) -> None:
    """The SQLite file and its -wal, -shm and writers' lock files."""
    for p in folder.glob(f"{name}*"):
        p.unlink()


def finish(results: list[dict[str, Any]], **summary: Any) -> int:
    """Print whether every engine completed and met its targets, then one JSON line with
    ``summary`` and the engines' figures; the exit code (0: completed)."""
    ok = bool(results) and all("error" not in r for r in results)
    met = ok and all(r.get("targets_met") for r in results)
    print(f"\ncompleted: {'yes' if ok else 'NO'}; targets met: {'yes' if met else 'no'}")
    summary.update(completed=ok, targets_met=met, engines=results)
    print(json.dumps(summary, sort_keys=True, default=str))
    return 0 if ok else 1
