"""What operators watch: request ids, the access log, Prometheus metrics and readiness checks.

``ObservabilityMiddleware`` (first in ``settings.MIDDLEWARE``) gives every request an id (the
proxy's ``X-Request-ID`` when it is a short token, else a new uuid4), tags every line logged
while it runs with that id (``gridgov.core.logs``), returns it in the ``X-Request-ID`` header,
times the request into the ``gridgov_http_request_duration_seconds`` histogram and writes one
access-log line (logger ``gridgov.access``: method, path without its query string, route,
status, duration, numeric user id).

The probes (``/healthz``, ``/readyz``, ``/metrics``) are answered by the middleware itself,
before the rest of the middleware chain: no session, no host-name check, no HTTPS redirect, so a
load balancer or Prometheus can call the app server by its address. Their access-log lines are
DEBUG, not INFO.

Metrics: in ``gridgov serve`` gunicorn runs several processes; ``PROMETHEUS_MULTIPROC_DIR`` (set
by ``serve``, see ``gridgov.core.gunicorn_conf``) makes each process write its histogram to a
file there, and ``/metrics`` adds them up. The case and worker figures are read from the
database when scraped (one GROUP BY over open cases, one over the job table), cached for
``SNAPSHOT_SECONDS``, so every process answers the same figures.

Access to ``/metrics`` and to the details of ``/readyz``: a request from an address in
``GRIDGOV_METRICS_ALLOW`` (loopback by default) that did not come through a proxy (no
``X-Forwarded-For``, ``Forwarded`` or ``X-Real-IP`` header: behind a proxy the address is the
proxy's), or one with ``Authorization: Bearer $GRIDGOV_METRICS_TOKEN``.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from django.utils import timezone
from django.utils.functional import SimpleLazyObject, empty
from prometheus_client import REGISTRY, CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from gridgov.core.logs import log_context, sane_request_id

access_log = logging.getLogger("gridgov.access")

REQUEST_ID_HEADER = "X-Request-ID"
#: Paths answered before the rest of the middleware chain (see the module's docstring).
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
#: How long the case and worker figures of a scrape are reused.
SNAPSHOT_SECONDS = 5.0
#: How long a readiness answer about migrations is reused (reading the migration graph is the
#: costly part of a probe; unapplied migrations appear only with a deploy or a restore).
MIGRATIONS_SECONDS = 30.0
#: statement_timeout of the readiness probe's query on PostgreSQL, in milliseconds.
DATABASE_PROBE_TIMEOUT_MS = 2000

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_FORWARDED = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")

REQUEST_SECONDS = Histogram(
    "gridgov_http_request_duration_seconds",
    "Time from the request reaching the app to its response, by route (the URL pattern's "
    "name), method and status class.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)


# --- the middleware -------------------------------------------------------------------------------


class ObservabilityMiddleware:
    """Request id, access log and latency histogram of every request; answers the probes."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        incoming = sane_request_id(request.headers.get(REQUEST_ID_HEADER))
        with log_context(request_id=incoming) as request_id:
            request.request_id = request_id  # type: ignore[attr-defined]
            probe = request.path_info in PROBE_PATHS
            response = _answer_probe(request) if probe else None
            if response is None:
                response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            seconds = time.perf_counter() - started
            route = request_route(request)
            method = request.method if request.method in _METHODS else "other"
            REQUEST_SECONDS.labels(route, method, f"{response.status_code // 100}xx").observe(
                seconds
            )
            level = logging.DEBUG if probe else logging.INFO
            if not access_log.isEnabledFor(level):
                return response
            access_log.log(
                level,
                "%s %s %s %.0f ms",
                request.method,
                request.path,
                response.status_code,
                seconds * 1000,
                extra={
                    "method": request.method,
                    "path": request.path,  # never the query string: it may carry personal data
                    "route": route,
                    "status": response.status_code,
                    "duration_ms": round(seconds * 1000, 1),
                    "user_id": _user_id(request),
                },
            )
        return response


def _answer_probe(request: HttpRequest) -> HttpResponse | None:
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return None
    request.resolver_match = match
    response: HttpResponse = match.func(request, *match.args, **match.kwargs)
    # a 503 of /readyz is an answer, not a server error: Django would log it at ERROR on every
    # probe (readiness_log reports a change of state once instead)
    response._has_been_logged = True  # type: ignore[attr-defined]
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def request_route(request: HttpRequest) -> str:
    """The route's name (``cases:detail``), never the raw path: the label's values are bounded."""
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return str(match.view_name or match.route or "unnamed")
    if request.path_info.startswith(settings.STATIC_URL):
        return "static"
    return "unmatched"


def _user_id(request: HttpRequest) -> int | None:
    """The signed-in user's numeric id, without loading a session the view did not load."""
    user = getattr(request, "user", None)
    if user is None or (isinstance(user, SimpleLazyObject) and user._wrapped is empty):
        return None
    if not getattr(user, "is_authenticated", False):
        return None
    pk = getattr(user, "pk", None)
    return pk if isinstance(pk, int) else None


# --- who may read /metrics and the details of /readyz ---------------------------------------------


@lru_cache(maxsize=8)
def _networks(
    entries: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    found = []
    for entry in entries:
        try:
            found.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"GRIDGOV_METRICS_ALLOW: {entry!r} is not an address or a network"
            ) from exc
    return tuple(found)


def operator_access(request: HttpRequest) -> bool:
    """True for a request with the metrics token, or straight from an allowed address."""
    token = settings.GRIDGOV_METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        if given.startswith("Bearer ") and hmac.compare_digest(
            given[7:].strip().encode(), token.encode()
        ):
            return True
    if any(request.META.get(header) for header in _FORWARDED):
        return False  # through a proxy: REMOTE_ADDR is the proxy's, not the client's
    try:
        address = ipaddress.ip_address(str(request.META.get("REMOTE_ADDR", "")).split("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in net for net in _networks(tuple(settings.GRIDGOV_METRICS_ALLOW)))


# --- metrics --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """The figures read from the database at a scrape."""

    database_up: bool
    open_by_state: dict[str, int]
    overdue_by_state: dict[str, int]
    due_soon_by_state: dict[str, int]
    worker_last_pass_age: float | None  # None: no worker has run
    oldest_due_job_age: float


_snapshot_lock = threading.Lock()
_snapshot_cache: tuple[float, Snapshot] | None = None


def snapshot_reset() -> None:
    """Forget the cached figures (tests; the next scrape reads the database)."""
    global _snapshot_cache
    with _snapshot_lock:
        _snapshot_cache = None


def snapshot() -> Snapshot:
    """The case and worker figures, read at most every ``SNAPSHOT_SECONDS`` per process."""
    global _snapshot_cache
    with _snapshot_lock:
        now = time.monotonic()
        if _snapshot_cache is not None and now - _snapshot_cache[0] < SNAPSHOT_SECONDS:
            return _snapshot_cache[1]
        taken = _read_snapshot()
        _snapshot_cache = (now, taken)
        return taken


def _read_snapshot() -> Snapshot:
    from django.db.models import Count, Max, Min, Q

    from gridgov.cases.models import Case
    from gridgov.cases.workflow import OPEN
    from gridgov.core.jobs import HEARTBEAT
    from gridgov.core.models import JobLease

    now = timezone.now()
    try:
        rows = (
            Case.objects.filter(state__in=list(OPEN))
            .values("state")
            .annotate(
                total=Count("id"),
                overdue=Count("id", filter=Q(due_at__lte=now)),
                due_soon=Count("id", filter=Q(due_soon_at__lte=now, due_at__gt=now)),
            )
            .order_by()
        )
        by_state: dict[str, dict[str, Any]] = {str(row["state"]): dict(row) for row in rows}
        jobs = JobLease.objects.aggregate(
            last_pass=Max("last_finished_at", filter=Q(name=HEARTBEAT)),
            oldest_due=Min("next_run_at", filter=Q(next_run_at__lte=now) & ~Q(name=HEARTBEAT)),
        )
    except Exception as exc:  # the database is down: say so rather than fail the scrape
        logging.getLogger("gridgov.metrics").warning(
            "metrics: the database did not answer: %s", type(exc).__name__
        )
        return Snapshot(False, {}, {}, {}, None, 0.0)
    states = sorted(str(s) for s in OPEN)

    def column(name: str) -> dict[str, int]:
        return {s: int(by_state[s][name]) if s in by_state else 0 for s in states}

    return Snapshot(
        database_up=True,
        open_by_state=column("total"),
        overdue_by_state=column("overdue"),
        due_soon_by_state=column("due_soon"),
        worker_last_pass_age=_age(jobs["last_pass"], now),
        oldest_due_job_age=_age(jobs["oldest_due"], now) or 0.0,
    )


def _age(moment: datetime | None, now: datetime) -> float | None:
    return None if moment is None else max(0.0, (now - moment).total_seconds())


class GridgovCollector(Collector):
    """The case and worker gauges, computed when scraped."""

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The families without values: registering the collector reads no database."""
        for name in (
            "gridgov_database_up",
            "gridgov_cases_open",
            "gridgov_cases_overdue",
            "gridgov_cases_due_soon",
            "gridgov_worker_last_pass_age_seconds",
            "gridgov_worker_oldest_due_job_age_seconds",
        ):
            yield GaugeMetricFamily(name, name)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        taken = snapshot()
        yield GaugeMetricFamily(
            "gridgov_database_up",
            "1 when the database answered the last metrics query, else 0.",
            value=1 if taken.database_up else 0,
        )
        if not taken.database_up:
            return
        for name, help_text, values in (
            ("gridgov_cases_open", "Open cases, by state.", taken.open_by_state),
            (
                "gridgov_cases_overdue",
                "Open cases whose current step is past its deadline (due_at), by state.",
                taken.overdue_by_state,
            ),
            (
                "gridgov_cases_due_soon",
                "Open cases whose current step is due soon (past due_soon_at, before due_at), "
                "by state.",
                taken.due_soon_by_state,
            ),
        ):
            family = GaugeMetricFamily(name, help_text, labels=["state"])
            for state, count in values.items():
                family.add_metric([state], count)
            yield family
        age = taken.worker_last_pass_age
        yield GaugeMetricFamily(
            "gridgov_worker_last_pass_age_seconds",
            "Seconds since a background worker last finished a pass (+Inf: never).",
            value=float("inf") if age is None else age,
        )
        yield GaugeMetricFamily(
            "gridgov_worker_oldest_due_job_age_seconds",
            "Seconds the longest-waiting due background job has been waiting (0: none due).",
            value=taken.oldest_due_job_age,
        )


_collector = GridgovCollector()
REGISTRY.register(_collector)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def metrics_exposition(accept: str | None) -> tuple[bytes, str]:
    """The metrics text (Prometheus or OpenMetrics, as the scraper accepts) and its type."""
    folder = multiprocess_dir()
    if folder:
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=folder)
        registry.register(_collector)
    else:
        registry = REGISTRY
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


# --- readiness ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


_migrations_lock = threading.Lock()
_migrations_cache: tuple[float, Check] | None = None


def readiness_reset() -> None:
    """Forget the cached migration check (tests, after changing django_migrations)."""
    global _migrations_cache
    with _migrations_lock:
        _migrations_cache = None


def readiness_checks() -> list[Check]:
    """Database, migrations, worker heartbeat and media storage, in that order."""
    database = _check_database()
    if database.ok:
        checks = [database, _check_migrations(), _check_worker()]
    else:
        down = "not checked: the database is unavailable"
        checks = [database, Check("migrations", False, down), Check("worker", False, down)]
    checks.append(_check_media())
    return checks


def _check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                with transaction.atomic():
                    cursor.execute(f"SET LOCAL statement_timeout = {DATABASE_PROBE_TIMEOUT_MS}")
                    cursor.execute("SELECT 1")
            else:
                cursor.execute("SELECT 1")
    except Exception as exc:
        return Check("database", False, f"{type(exc).__name__}")
    return Check("database", True, connection.vendor)


def _check_migrations() -> Check:
    global _migrations_cache
    with _migrations_lock:
        now = time.monotonic()
        if _migrations_cache is not None and now - _migrations_cache[0] < MIGRATIONS_SECONDS:
            return _migrations_cache[1]
        try:
            from django.db.migrations.executor import MigrationExecutor

            executor = MigrationExecutor(connection)
            plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        except Exception as exc:
            return Check("migrations", False, type(exc).__name__)
        if plan:
            names = [f"{m.app_label}.{m.name}" for m, _backwards in plan]
            shown = ", ".join(names[:5]) + (" …" if len(names) > 5 else "")
            result = Check("migrations", False, f"{len(names)} not applied: {shown}")
        else:
            result = Check("migrations", True, "all applied")
        _migrations_cache = (now, result)
        return result


def _check_worker() -> Check:
    from gridgov.core.jobs import worker_last_pass

    limit = settings.GRIDGOV_READY_WORKER_SECONDS
    if limit <= 0:
        return Check("worker", True, "not checked (GRIDGOV_READY_WORKER_SECONDS=0)")
    try:
        last = worker_last_pass()
    except Exception as exc:
        return Check("worker", False, type(exc).__name__)
    if last is None:
        return Check("worker", False, "no worker has run yet")
    age = (timezone.now() - last).total_seconds()
    if age > limit:
        return Check("worker", False, f"last pass {age:.0f} s ago (limit {limit} s)")
    return Check("worker", True, f"last pass {age:.0f} s ago")


def _check_media() -> Check:
    from django.core.files.storage import FileSystemStorage, storages

    storage = storages["default"]
    if not isinstance(storage, FileSystemStorage):
        return Check("media", True, f"not checked ({type(storage).__name__})")
    folder = Path(storage.location)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".readyz-") as probe:
            probe.write(b"ok")
            probe.flush()
    except OSError as exc:
        return Check("media", False, f"{type(exc).__name__} writing to the media folder")
    return Check("media", True, "writable")


_readiness_lock = threading.Lock()
_last_failed: frozenset[str] = frozenset()


def readiness_log(checks: Iterable[Check]) -> None:
    """Log when the set of failing checks changes (once, not at every probe)."""
    global _last_failed
    failed = frozenset(c.name for c in checks if not c.ok)
    with _readiness_lock:
        if failed == _last_failed:
            return
        _last_failed = failed
    log = logging.getLogger("gridgov.readiness")
    if failed:
        details = "; ".join(f"{c.name}: {c.detail}" for c in checks if not c.ok)
        log.warning("not ready: %s", details)
    else:
        log.info("ready again")


def readiness_body(checks: Iterable[Check], *, details: bool) -> tuple[dict[str, Any], bool]:
    """The JSON body of /readyz and whether everything is ready."""
    checks = list(checks)
    ready = all(c.ok for c in checks)
    body: dict[str, Any] = {
        "status": "ready" if ready else "not ready",
        "checks": {c.name: "ok" if c.ok else "failed" for c in checks},
    }
    if not ready:
        body["failed"] = [c.name for c in checks if not c.ok]
    if details:
        body["details"] = {c.name: c.detail for c in checks}
    return body, ready
