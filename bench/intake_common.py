"""What the intake benchmark (bench/bench_intake.py) and the crash-safety run
(scripts/reliability.py) share: a report category and reporters with API tokens, the server as
``gridgov serve`` starts it, a fresh PostgreSQL database, a report's request, percentiles.

Importing this module does not set Django up; the setup helpers (``ensure_category``,
``add_reporter``, ``grid_points``) run in a child process that has.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _path in (str(ROOT), str(ROOT / "bench")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import engines  # noqa: E402  (bench/engines.py, found through the path above)

#: The category every report uses (a manhole cover, GB/T 47678.5): one with a handling limit.
CATEGORY = "01002"
REPORT_PATH = "/api/v1/cases"


# --- setup (in a child process where Django is set up) ------------------------------------------


def ensure_category() -> None:
    """The report category and its major class (the demo district loads no catalogue)."""
    from gridgov.cases.models import Category

    major, _ = Category.objects.get_or_create(
        scheme="gbt47678",
        code=CATEGORY[:2],
        defaults={"name_zh": "市政公用设施", "klass": "component"},
    )
    Category.objects.get_or_create(
        scheme="gbt47678",
        code=CATEGORY,
        defaults={
            "name_zh": "污水井盖",
            "klass": "component",
            "parent": major,
            "handle_limit": "2h",
        },
    )


def add_reporter(*, username: str, role: str, region_code: str, label: str) -> str:
    """A new account holding ``role`` in the region, and the secret of a new API token for it."""
    from gridgov.accounts.actions import role_assign, token_create, user_create
    from gridgov.geo.models import Region

    user = user_create(username=username, password=None)
    role_assign(user=user, role=role, region=Region.objects.get(code=region_code))
    _, raw = token_create(user=user, name=label)
    return raw


def grid_points() -> list[tuple[Any, Any, str]]:
    """Every grid's label point (lat, lon, code): reports spread over the district."""
    from gridgov.geo.models import Region

    return list(Region.objects.filter(level="grid").values_list("label_lat", "label_lon", "code"))


# --- the server ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def web_argv(port: int, *, workers: int, threads: int) -> list[str]:
    """gunicorn exactly as ``gridgov serve`` starts it, on 127.0.0.1:port, quieter."""
    from gridgov.core.management.commands.serve import web_command

    argv = web_command(bind=f"127.0.0.1:{port}", workers=workers, threads=threads)
    return [*argv, "--log-level", "warning"]


def worker_argv() -> list[str]:
    from gridgov.core.management.commands.serve import worker_command

    return worker_command()


def healthy(port: int, timeout: float = 2.0) -> bool:
    """Whether ``GET /healthz`` answers 200 now."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        response.read()
        return response.status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def wait_healthy(port: int, procs: list[subprocess.Popen[bytes]], seconds: float = 60) -> float:
    """Wait until /healthz answers; the seconds it took. Fails when a process exits first.

    Each try waits up to 10 s for its answer: a server that comes back to a crowd of clients
    answers them in turn."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        for proc in procs:
            if proc.poll() is not None:
                raise SystemExit(f"the server exited ({proc.returncode}) before it answered")
        if healthy(port, timeout=10.0):
            return time.monotonic() - started
        time.sleep(0.1)
    raise SystemExit(f"the server did not answer /healthz within {seconds:.0f} s")


def start_server(
    env: dict[str, str], port: int, *, workers: int, threads: int
) -> subprocess.Popen[bytes]:
    """The web server as ``gridgov serve`` runs it; returns once /healthz answers."""
    # the argv is our own (gunicorn with our options; no shell, no user input)
    proc = subprocess.Popen(web_argv(port, workers=workers, threads=threads), env=env, cwd=ROOT)
    try:
        wait_healthy(port, [proc])
    except SystemExit:
        stop_server(proc)
        raise
    return proc


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- PostgreSQL ----------------------------------------------------------------------------------


def postgres_database(base: str, name: str) -> tuple[str | None, str]:
    """A fresh database ``name`` beside the one ``base`` points at (``engines.postgres_url``)."""
    return engines.postgres_url(base, name, fresh=True)


def postgres_drop(base: str, name: str) -> None:
    """Drop the database ``name`` (beside the one ``base`` points at), if it is there."""
    engines.drop_postgres(base, name)


# --- the request --------------------------------------------------------------------------------


def report_body(
    rng: random.Random,
    points: list[Any],
    description: str = "井盖缺失，行人有跌落危险，请尽快处理",
) -> dict[str, Any]:
    """A report at a random grid's label point."""
    lat, lon, _code = rng.choice(points)
    return {
        "category": CATEGORY,
        "description": description,
        "lat": lat,
        "lon": lon,
        "address": f"栖霞区和燕路{rng.randint(1, 400)}号",
    }


def report_request(
    token: str, body: dict[str, Any], key: str | None = None, rng: random.Random | None = None
) -> tuple[str, bytes, dict[str, str]]:
    """(path, body, headers) of ``POST /api/v1/cases`` with a bearer token and an
    ``Idempotency-Key`` (``key``; else drawn from ``rng`` when given — reproducible, so the
    same seed replays the same keys — or a fresh random UUID)."""
    if key is None:
        key = str(uuid.UUID(int=rng.getrandbits(128), version=4) if rng else uuid.uuid4())
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {token}",
        "Idempotency-Key": key,
    }
    return REPORT_PATH, json.dumps(body).encode(), headers


def percentile(ordered: list[float], q: float) -> float:
    """The ``q`` quantile (0–1) of an ascending list (nearest rank); NaN when empty."""
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def child_env(url: str, var_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a server or setup process on database ``url`` with its own var dir."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "GRIDGOV_VAR_DIR": str(var_dir),
        "DJANGO_SETTINGS_MODULE": "gridgov.settings",
        "GRIDGOV_LOG_LEVEL": "WARNING",
    }
    env.update(extra)
    return env
