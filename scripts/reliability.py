#!/usr/bin/env python
"""Crash safety under load: reports keep their promise while the server is killed.

    .venv/bin/python scripts/reliability.py            # 200 clients, 30 s, 3 SIGKILLs per database
    .venv/bin/python scripts/reliability.py --quick    # CI: 50 clients, 10 s, 3 SIGKILLs, 2 workers
    make reliability [RELIABILITY_ARGS=--quick]

For each database, a fresh SQLite file (in a temporary GRIDGOV_VAR_DIR) and then a fresh
PostgreSQL database ``gridgov_reliability`` (created and dropped here, beside the database
``--postgres`` names), it prepares a small world in a child process: migrations, the demo district
without history or residents (``gridgov demo load --no-history --no-registry``), a report
category, and ten reporters (grid workers and intake operators) with API tokens. It then starts
the server the way production runs it, ``gridgov serve``'s command lines: gunicorn (3 workers ×
4 threads; 2 × 4 with ``--quick``, ``gridgov serve``'s default) and the background worker
``gridgov worker``, both in one process group of their own.

Then ``--clients`` threads, each on its own keep-alive connection, submit reports (``POST
/api/v1/cases``) for ``--seconds``: each report carries a fresh ``Idempotency-Key`` and a unique
marker in its description. A connection error, a timeout, a 5xx, a 409 (the same key still in
progress) or a 429 is retried with the same request and the same key, with a growing pause,
until a definitive answer comes or the retry period ends (``--grace`` seconds after the load).
A 2xx acknowledges the report with the case number of its body; another 4xx refuses it.
Three times at random moments in the middle the whole process group is killed with SIGKILL
(gunicorn's master and workers and the background worker: no one gets to clean up), then
restarted, and the load goes on once ``/healthz`` answers. At the end the script replays a
sample of acknowledged reports (same key: the same number, ``Idempotent-Replayed``), stops
the server, and checks in the database itself (a child process with the Django ORM):

* every acknowledged report is stored exactly once, under the acknowledged number; no marker is
  stored twice; reports stored but never acknowledged (the client gave up, or was killed with
  the server's answer in flight) are counted, not failed;
* every case's timeline is consistent: versions 1..n without a gap, exactly one ``report``
  event and it is the first (from nothing to ``reported``), each event starts in the state the
  previous one ended in, the case's state is the last event's and its version is n;
* the idempotency records and the cases agree: every stored report's key has one finished
  record (201) whose sealed answer carries the stored number, and no key without a case has a
  record; the case-number sequence is past every stored number;
* nothing stale survives a kill: SQLite's writer-queue lock file (``<db>.writers``) can be
  locked at once, SQLite's integrity and foreign-key checks pass; PostgreSQL has no session of
  the killed server left.

It prints a table per database and exits 1 when anything above fails: a report lost or stored
twice, acknowledged ≠ stored-and-acknowledged, a broken timeline or record, a valid report
refused (4xx), a replay that differs, fewer kills than asked, or a server life between kills
that acknowledged nothing. The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import hashlib
import http.client
import io
import itertools
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from intake_common import (  # noqa: E402  (bench/ is on the path from here on)
    REPORT_PATH,
    add_reporter,
    child_env,
    ensure_category,
    free_port,
    grid_points,
    percentile,
    postgres_database,
    postgres_drop,
    report_body,
    report_request,
    stop_server,
    wait_healthy,
    web_argv,
    worker_argv,
)

RELIABILITY_DB = "gridgov_reliability"
DEFAULT_POSTGRES = "postgres://gridgov:gridgov@127.0.0.1:5432/gridgov"
WEB_WORKERS = 3
WEB_THREADS = 4
#: the quick form runs `gridgov serve`'s default shape: each restart boots one worker less
QUICK_WEB_WORKERS = 2
#: reporters: grid workers, each in a grid of their own, and intake operators for the district
GRID_WORKERS = 6
INTAKE_OPERATORS = 4
DISTRICT = "320113"
#: seconds a client waits for one answer before it gives the request up and retries it
REQUEST_TIMEOUT = 30.0
#: statuses that say "not done, try again" (409: the same key is still in progress)
RETRY_STATUSES = frozenset({409, 429})
REPLAY_SAMPLE = 300
REPLAY_CLIENTS = 8
#: how long a server life may go without acknowledging a report before the run fails
ACK_PATIENCE = 120.0
#: how long a (re)started server may take to answer /healthz (a busy machine is slow to boot
#: three workers, and a crowd of clients is waiting for them)
START_PATIENCE = 180.0
MARKER = re.compile(r"\[(rly-[0-9a-f]{6}-c\d{3}-r\d{5})\]")

_PR_SET_CHILD_SUBREAPER = 36


# --- setup (a child process: Django is set up there) -------------------------------------------


def setup(out: Path, households: int) -> int:
    import django

    django.setup()
    from django.core.management import call_command

    from gridgov.geo.models import Region

    call_command("migrate", interactive=False, verbosity=0)
    call_command(
        "demo",
        "load",
        "--no-history",
        "--no-registry",
        "--no-accounts",
        "--households",
        str(households),
        stdout=io.StringIO(),
    )
    ensure_category()
    grids = list(
        Region.objects.filter(level="grid").order_by("code").values_list("code", flat=True)
    )
    step = max(1, len(grids) // GRID_WORKERS)
    reporters: list[dict[str, str]] = []
    for i in range(GRID_WORKERS):
        name = f"reliability-gw{i + 1:02d}"
        token = add_reporter(
            username=name, role="grid_worker", region_code=grids[i * step], label="reliability"
        )
        reporters.append({"username": name, "token": token})
    for i in range(INTAKE_OPERATORS):
        name = f"reliability-io{i + 1:02d}"
        token = add_reporter(
            username=name, role="intake_operator", region_code=DISTRICT, label="reliability"
        )
        reporters.append({"username": name, "token": token})
    out.write_text(
        json.dumps({"reporters": reporters, "points": grid_points(), "grids": len(grids)}),
        encoding="utf-8",
    )
    return 0


# --- the check (a child process: Django is set up there) ---------------------------------------


def check(ledger_path: Path, out: Path) -> int:
    """Compare the client's ledger with what the database holds; write the findings as JSON."""
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    from gridgov.accounts.models import User
    from gridgov.cases.models import Case, CaseEvent, CaseSequence
    from gridgov.core.idempotency import _derive_secret, _open  # the records' own sealing
    from gridgov.core.models import IdempotencyRecord

    ledger = json.loads(ledger_path.read_text(encoding="utf-8"))
    reports: list[dict[str, Any]] = ledger["reports"]
    usernames: list[str] = ledger["usernames"]
    user_ids = dict(User.objects.filter(username__in=usernames).values_list("username", "pk"))
    by_marker = {r["marker"]: r for r in reports}

    # cases, by the marker in their description
    stored: dict[str, list[tuple[int, str]]] = defaultdict(list)
    unmarked: list[str] = []
    cases: dict[int, tuple[str, int, str]] = {}
    for pk, number, description, version, state in Case.objects.values_list(
        "pk", "number", "description", "version", "state"
    ).iterator(chunk_size=2000):
        cases[pk] = (number, version, state)
        found = MARKER.search(description)
        if found is None:
            unmarked.append(number)
        else:
            stored[found.group(1)].append((pk, number))

    duplicates = {m: [n for _pk, n in rows] for m, rows in stored.items() if len(rows) > 1}
    unknown = sorted(m for m in stored if m not in by_marker)
    acknowledged = [r for r in reports if r["number"] is not None]
    lost = [r["marker"] for r in acknowledged if r["marker"] not in stored]
    mismatched = [
        r["marker"]
        for r in acknowledged
        if r["marker"] in stored and r["number"] not in [n for _pk, n in stored[r["marker"]]]
    ]
    stored_and_acknowledged = sum(1 for r in acknowledged if r["marker"] in stored)
    stored_not_acknowledged = sum(
        1 for m in stored if m in by_marker and by_marker[m]["number"] is None
    )

    # timelines
    events: dict[int, list[tuple[int, str, str, str]]] = defaultdict(list)
    for case_id, version, action, from_state, to_state in (
        CaseEvent.objects.order_by("case_id", "version")
        .values_list("case_id", "version", "action", "from_state", "to_state")
        .iterator(chunk_size=5000)
    ):
        events[case_id].append((version, action, from_state, to_state))
    bad_timelines: list[str] = []
    for pk, (number, version, state) in cases.items():
        problem = timeline_problem(events.get(pk, []), version=version, state=state)
        if problem is not None:
            bad_timelines.append(f"{number}: {problem}")
    stray_events = sum(1 for case_id in events if case_id not in cases)

    # idempotency records against the cases
    records: dict[tuple[int, str], tuple[int | None, str, str, bytes]] = {}
    record_count = 0
    for row in IdempotencyRecord.objects.values_list(
        "user_id", "key_hash", "status_code", "method", "path", "body"
    ).iterator(chunk_size=2000):
        record_count += 1
        records[(row[0], row[1])] = (row[2], row[3], row[4], bytes(row[5]))
    secret_key = settings.SECRET_KEY
    bad_records: list[str] = []
    orphan_records = 0
    matched_records = 0
    for r in reports:
        user_id = user_ids.get(usernames[r["reporter"]])
        key_hash = hashlib.sha256(r["key"].encode("utf-8")).hexdigest()
        record = records.get((user_id, key_hash)) if user_id is not None else None
        rows = stored.get(r["marker"], [])
        if not rows:
            if record is not None:
                orphan_records += 1  # an answer kept for a report that is not there
            continue
        if record is None:
            bad_records.append(f"{r['marker']}: stored without its idempotency record")
            continue
        status, method, path, sealed = record
        if status != 201 or method != "POST" or path != REPORT_PATH:
            bad_records.append(f"{r['marker']}: record {method} {path} -> {status}")
            continue
        plain = _open(_derive_secret(secret_key, user_pk=user_id, key=r["key"]), sealed)
        answered = json.loads(plain)["number"] if plain is not None else None
        if answered not in [n for _pk, n in rows]:
            bad_records.append(f"{r['marker']}: the record answers {answered}, stored {rows}")
            continue
        matched_records += 1
    strays = record_count - matched_records - orphan_records

    # the case-number sequences are past every stored number (no number given out twice)
    last = dict(CaseSequence.objects.values_list("key", "last"))
    behind = 0
    for number, _version, _state in cases.values():
        key, _sep, seq = number.rpartition("-")
        if last.get(key, 0) < int(seq):
            behind += 1

    database: dict[str, Any] = {"vendor": connection.vendor}
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA integrity_check")
            database["integrity"] = ", ".join(str(row[0]) for row in cursor.fetchall())
            cursor.execute("PRAGMA foreign_key_check")
            database["foreign_key_violations"] = len(cursor.fetchall())

    result = {
        "reports": len(reports),
        "acknowledged": len(acknowledged),
        "cases": len(cases),
        "stored": len(stored),
        "stored_and_acknowledged": stored_and_acknowledged,
        "stored_not_acknowledged": stored_not_acknowledged,
        "duplicates": len(duplicates),
        "duplicate_examples": dict(list(duplicates.items())[:5]),
        "lost": len(lost),
        "lost_examples": lost[:5],
        "mismatched": len(mismatched),
        "mismatched_examples": mismatched[:5],
        "unknown_markers": len(unknown),
        "unmarked_cases": len(unmarked),
        "bad_timelines": len(bad_timelines),
        "bad_timeline_examples": bad_timelines[:5],
        "stray_events": stray_events,
        "idempotency_records": record_count,
        "bad_records": len(bad_records),
        "bad_record_examples": bad_records[:5],
        "orphan_records": orphan_records,
        "stray_records": strays,
        "sequence_behind": behind,
        "database": database,
    }
    out.write_text(json.dumps(result), encoding="utf-8")
    return 0


def timeline_problem(
    events: list[tuple[int, str, str, str]], *, version: int, state: str
) -> str | None:
    """What is wrong with a case's timeline (``(version, action, from, to)`` by version), or
    None. ``CaseEvent.version`` is the case's version after the event: a case at version n has
    the events 1..n, the first its report, each starting where the previous one ended."""
    # the report event: gridgov.cases.actions.REPORT, from nothing to State.REPORTED
    if not events:
        return "no events"
    versions = [v for v, _a, _f, _t in events]
    if versions != list(range(1, len(events) + 1)):
        return f"event versions {versions[:10]} are not 1..{len(events)}"
    _first, first_action, first_from, first_to = events[0]
    if first_action != "report" or first_from != "" or first_to != "reported":
        return f"the first event is {first_action} {first_from!r}->{first_to!r}, not the report"
    if sum(1 for _v, a, _f, _t in events if a == "report") != 1:
        return "more than one report event"
    for (_v1, _a1, _f1, to1), (v2, a2, from2, _t2) in itertools.pairwise(events):
        if from2 != to1:
            return f"event {v2} ({a2}) starts in {from2}, the previous one ended in {to1}"
    if events[-1][3] != state:
        return f"the case is {state}, its last event ended in {events[-1][3]}"
    if version != len(events):
        return f"the case is at version {version} with {len(events)} events"
    return None


# --- the server ---------------------------------------------------------------------------------


def _become_subreaper() -> None:
    """Adopt orphaned grandchildren (gunicorn's workers once their master is killed), so that
    this process reaps them instead of leaving zombies to an init that may not."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def group_members(pgid: int) -> list[tuple[int, str]]:
    """(pid, state) of every process in the process group (Linux /proc), zombies included."""
    members = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid:
            members.append((int(entry), fields[0]))
    return members


class Server:
    """gunicorn and ``gridgov worker`` in one process group of their own, killed together."""

    def __init__(
        self, env: dict[str, str], port: int, log: Path, *, workers: int, threads: int
    ) -> None:
        self.env, self.port, self.log_path = env, port, log
        self.workers, self.threads = workers, threads
        self.web: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None

    @property
    def pgid(self) -> int:
        assert self.web is not None
        return self.web.pid

    def start(self) -> float:
        """Start both processes; the seconds until /healthz answered."""
        log = self.log_path.open("ab")
        try:
            # our own argv lists (gridgov serve's command lines), no shell
            self.web = subprocess.Popen(  # noqa: S603
                web_argv(self.port, workers=self.workers, threads=self.threads),
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                process_group=0,
            )
            self.worker = subprocess.Popen(  # noqa: S603
                worker_argv(),
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                process_group=self.web.pid,
            )
        finally:
            log.close()
        return wait_healthy(self.port, [self.web, self.worker], seconds=START_PATIENCE)

    def kill(self) -> int:
        """SIGKILL the whole group and wait until every member is gone; how many there were."""
        members = group_members(self.pgid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGKILL)
        self._reap(time.monotonic() + 15)
        return len(members)

    def stop(self) -> None:
        """A graceful stop (SIGTERM to the group), then SIGKILL for what is left."""
        if self.web is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGTERM)
        for proc in (self.web, self.worker):
            if proc is not None:
                stop_server(proc)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGKILL)
        self._reap(time.monotonic() + 15)

    def _reap(self, deadline: float) -> None:
        for proc in (self.web, self.worker):
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        while time.monotonic() < deadline:
            alive = [pid for pid, state in group_members(self.pgid) if not _gone(pid, state)]
            if not alive:
                return
            time.sleep(0.02)
        raise SystemExit(f"the server's process group {self.pgid} did not die")


def _gone(pid: int, state: str) -> bool:
    """Whether a process has ended and let go of its files. A killed process whose first thread
    shows as a zombie may still have other threads finishing a system call, with its files (and
    their locks) open: it is gone once reaped (an adopted gunicorn worker, see
    ``_become_subreaper``) or, when another process must reap it, once it has no thread left."""
    if state != "Z":
        return False
    try:
        reaped, _status = os.waitpid(pid, os.WNOHANG)
        return reaped == pid
    except ChildProcessError:
        try:
            return len(os.listdir(f"/proc/{pid}/task")) <= 1
        except OSError:
            return True


def sqlite_queue_free(db_path: Path) -> bool:
    """Whether the writer queue's lock file (gridgov.core.sqlite) can be locked now."""
    import fcntl

    lock = Path(f"{db_path}.writers")
    if not lock.exists():
        return True
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def postgres_sessions(base: str, name: str) -> int:
    """Sessions on database ``name`` other than this one."""
    import psycopg

    with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        ).fetchone()
    return int(row[0]) if row else 0


# --- the clients --------------------------------------------------------------------------------


@dataclass
class Report:
    key: str
    marker: str
    reporter: int
    number: str | None = None
    status: int | None = None
    attempts: int = 0
    replayed: bool = False
    outcome: str = "pending"  # acknowledged | rejected | gave up | pending
    message: str = ""
    path: str = ""
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class Run:
    """The load: clients, the kills and restarts, and what was seen."""

    def __init__(
        self,
        server: Server,
        prepared: dict[str, Any],
        args: argparse.Namespace,
        rng: random.Random,
        after_kill: Any,
    ) -> None:
        self.server = server
        self.reporters: list[dict[str, str]] = prepared["reporters"]
        self.points: list[Any] = prepared["points"]
        self.args = args
        self.rng = rng
        self.after_kill = after_kill
        self.run_id = f"{rng.getrandbits(24):06x}"
        self.lock = threading.Lock()
        self.reports: list[Report] = []
        self.sent = 0
        self.errors: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.ack_times: list[float] = []
        self.kills: list[dict[str, Any]] = []
        self.failure = ""
        self.started = 0.0
        self.load_end = 0.0
        self.retry_until = 0.0
        self.finished = 0.0
        self.last_ack_at = 0.0

    # the killer --------------------------------------------------------------------------

    def killer(self) -> None:
        """Kill the server ``--kills`` times, each at a random moment of its slice of the middle
        of the load (15 % to 85 %), but not before the server's current life has run for
        ``--tail`` to twice that under load and acknowledged a report."""
        args = self.args
        span = args.seconds
        life_start = self.started
        try:
            for i in range(args.kills):
                lo = self.started + span * (0.15 + 0.7 * i / args.kills)
                hi = self.started + span * (0.15 + 0.7 * (i + 1) / args.kills)
                at = max(self.rng.uniform(lo, hi), life_start + self.rng.uniform(1, 2) * args.tail)
                while time.monotonic() < at and not self.failure:
                    time.sleep(0.01)
                if not self._first_ack_since(life_start, f"before kill {i + 1}"):
                    return
                acks_before = len(self.ack_times)
                killed_at = time.monotonic()
                members = self.server.kill()
                down_at = time.monotonic()
                stale = self.after_kill()
                back = self.server.start()
                healthy_at = life_start = time.monotonic()
                self.kills.append(
                    {
                        "at_s": round(killed_at - self.started, 2),
                        "processes": members,
                        "acknowledged_before": acks_before,
                        "dead_in_s": round(down_at - killed_at, 2),
                        "stale": stale,
                        "restart_s": round(back, 2),
                        "down_s": round(healthy_at - down_at, 2),
                        "healthy_at": healthy_at,
                    }
                )
                print(
                    f"  kill {i + 1}: SIGKILL to {members} processes at "
                    f"{killed_at - self.started:5.1f} s ({acks_before:,} acknowledged so far); "
                    f"healthy again in {back:.1f} s" + (f"; STALE: {stale}" if stale else ""),
                    flush=True,
                )
            # the last life too must acknowledge reports; then the load runs its course
            if self._first_ack_since(life_start, "after the last restart"):
                with self.lock:
                    self.load_end = max(self.started + span, time.monotonic() + args.tail)
                    self.retry_until = self.load_end + args.grace
        except BaseException as exc:  # reported as the run's failure
            self.failure = f"the killer failed: {exc}"

    def _first_ack_since(self, moment: float, when: str) -> bool:
        """Wait until a report is acknowledged after ``moment``; False (a failure) when none
        is within ACK_PATIENCE seconds."""
        patience = time.monotonic() + ACK_PATIENCE
        while self.last_ack_at < moment:
            if self.failure:
                return False
            if time.monotonic() > patience:
                self.failure = f"no report acknowledged for {ACK_PATIENCE:.0f} s {when}"
                return False
            time.sleep(0.01)
        return True

    # a client ----------------------------------------------------------------------------

    def client(self, k: int, seed: int) -> None:
        rng = random.Random(seed)
        who = k % len(self.reporters)
        token = self.reporters[who]["token"]
        conn: http.client.HTTPConnection | None = None
        mine: list[Report] = []
        latencies: list[float] = []
        errors: Counter[str] = Counter()
        sent = 0
        seq = 0
        while time.monotonic() < self.load_end and not self.failure:
            seq += 1
            marker = f"rly-{self.run_id}-c{k:03d}-r{seq:05d}"
            key = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            body = report_body(rng, self.points, description=f"井盖缺失，请尽快处理 [{marker}]")
            path, data, headers = report_request(token, body, key=key)
            report = Report(key=key, marker=marker, reporter=who, path=path, body=data)
            report.headers = headers
            mine.append(report)
            pause = 0.05
            while True:
                if time.monotonic() > self.retry_until or self.failure:
                    report.outcome = "gave up"
                    break
                report.attempts += 1
                sent += 1
                began = time.monotonic()
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(
                            "127.0.0.1", self.server.port, timeout=REQUEST_TIMEOUT
                        )
                    conn.request("POST", path, body=data, headers=headers)
                    response = conn.getresponse()
                    payload = response.read()
                    status = response.status
                except (OSError, http.client.HTTPException) as exc:
                    errors[type(exc).__name__] += 1
                    if conn is not None:
                        conn.close()
                    conn = None
                    time.sleep(pause * rng.uniform(0.5, 1.5))
                    pause = min(pause * 2, 1.0)
                    continue
                if 200 <= status < 300:
                    latencies.append(time.monotonic() - began)
                    report.status = status
                    report.number = json.loads(payload)["number"]
                    report.replayed = response.getheader("Idempotent-Replayed") == "true"
                    report.outcome = "acknowledged"
                    with self.lock:
                        self.last_ack_at = time.monotonic()
                        self.ack_times.append(self.last_ack_at)
                    break
                if status >= 500 or status in RETRY_STATUSES:
                    errors[str(status)] += 1
                    time.sleep(pause * rng.uniform(0.5, 1.5))
                    pause = min(pause * 2, 1.0)
                    continue
                report.status = status
                report.outcome = "rejected"
                report.message = _message(payload)
                break
        if conn is not None:
            conn.close()
        with self.lock:
            self.reports.extend(mine)
            self.latencies.extend(latencies)
            self.errors.update(errors)
            self.sent += sent

    def go(self) -> None:
        args = self.args
        self.started = time.monotonic()
        # with kills, the load goes on until the killer has seen the last life acknowledge
        self.load_end = self.started + args.seconds if not args.kills else float("inf")
        self.retry_until = self.load_end + args.grace
        seeds = [self.rng.getrandbits(64) for _ in range(args.clients)]
        threads = [
            threading.Thread(
                target=self.client, args=(k, seeds[k]), name=f"client-{k}", daemon=True
            )
            for k in range(args.clients)
        ]
        killer = threading.Thread(target=self.killer, name="killer", daemon=True)
        for t in threads:
            t.start()
        killer.start()
        try:
            killer.join()
            for t in threads:
                t.join()
        except KeyboardInterrupt:
            self.failure = "interrupted"  # every client stops at its next step
            raise
        finally:
            self.finished = time.monotonic()

    # after the load ----------------------------------------------------------------------

    def replay_sample(self, size: int) -> dict[str, int]:
        """Send a sample of acknowledged reports again, same key: each must answer the same
        number, marked replayed."""
        acked = [r for r in self.reports if r.number is not None]
        sample = self.rng.sample(acked, min(size, len(acked)))
        outcomes: Counter[str] = Counter()

        def replay(part: list[Report]) -> None:
            conn = http.client.HTTPConnection(
                "127.0.0.1", self.server.port, timeout=REQUEST_TIMEOUT
            )
            mine: Counter[str] = Counter()
            try:
                for r in part:
                    try:
                        conn.request("POST", r.path, body=r.body, headers=r.headers)
                        response = conn.getresponse()
                        payload = response.read()
                    except (OSError, http.client.HTTPException):
                        conn.close()
                        mine["differ"] += 1
                        continue
                    replayed = response.getheader("Idempotent-Replayed") == "true"
                    ok = response.status in (200, 201) and replayed
                    same = ok and json.loads(payload)["number"] == r.number
                    mine["same" if same else "differ"] += 1
            finally:
                conn.close()
                with self.lock:
                    outcomes.update(mine)

        threads = [
            threading.Thread(target=replay, args=(sample[i::REPLAY_CLIENTS],))
            for i in range(REPLAY_CLIENTS)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return {"replayed": len(sample), "same": outcomes["same"], "differ": outcomes["differ"]}

    def down_seconds(self) -> float:
        """Seconds without a server: from each kill until /healthz answered again."""
        return sum(k["dead_in_s"] + k["down_s"] for k in self.kills)

    def server_lives(self) -> list[int]:
        """Acknowledgements received in each server life: before the first kill, between a
        restart and the next kill, after the last restart (an answer read after a kill, sent
        before it, counts for the life that sent it)."""
        restarts = [k["healthy_at"] for k in self.kills]
        lives = [0] * (len(self.kills) + 1)
        for t in self.ack_times:
            lives[sum(1 for m in restarts if m <= t)] += 1
        return lives


def _message(payload: bytes) -> str:
    try:
        return str(json.loads(payload).get("message", ""))[:200]
    except (ValueError, AttributeError):
        return payload[:200].decode("utf-8", "replace")


# --- one database -------------------------------------------------------------------------------


def run_engine(
    engine: str, url: str, args: argparse.Namespace, work: Path, postgres_base: str | None
) -> dict[str, Any]:
    var_dir = work / f"var-{engine}"
    shutil.rmtree(var_dir, ignore_errors=True)
    var_dir.mkdir(parents=True)
    env = child_env(url, var_dir)
    began = time.monotonic()
    prepared_path = var_dir / "setup.json"
    code = subprocess.call(  # noqa: S603 - this script, our arguments
        [
            sys.executable,
            __file__,
            "--setup",
            str(prepared_path),
            "--households",
            str(args.households),
        ],
        env=env,
    )
    if code:
        return {"engine": engine, "ok": False, "failures": [f"setup failed (exit {code})"]}
    prepared = json.loads(prepared_path.read_text(encoding="utf-8"))
    seed = args.seed if args.seed is not None else random.SystemRandom().getrandbits(32)
    rng = random.Random(f"{seed}-{engine}")
    print(
        f"\n== {engine}: {prepared['grids']:,} grids, {len(prepared['reporters'])} reporters, "
        f"ready in {time.monotonic() - began:.0f} s; {args.clients} clients for "
        f"{args.seconds:g} s, {args.kills} SIGKILLs, server {args.workers} workers × "
        f"{args.threads} threads + the background worker (seed {seed})",
        flush=True,
    )
    db_path = Path(url.removeprefix("sqlite:///")) if engine == "sqlite" else None

    def after_kill() -> str:
        """What a killed server left behind that it should not have."""
        if db_path is not None:
            return "" if sqlite_queue_free(db_path) else "the SQLite writer lock is still held"
        assert postgres_base is not None
        deadline = time.monotonic() + 10
        while (left := postgres_sessions(postgres_base, RELIABILITY_DB)) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.05)
        return f"{left} PostgreSQL sessions of the killed server" if left else ""

    log = var_dir / "server.log"
    server = Server(env, free_port(), log, workers=args.workers, threads=args.threads)
    try:
        server.start()
    except SystemExit as exc:
        server.stop()
        print(f"the server did not start: {exc}\n-- the end of its log:\n{log_tail(log)}")
        return {"engine": engine, "ok": False, "failures": [f"the server did not start: {exc}"]}
    run = Run(server, prepared, args, rng, after_kill)
    replays: dict[str, int] = {"replayed": 0, "same": 0, "differ": 0}
    try:
        run.go()
        if not run.failure:
            replays = run.replay_sample(REPLAY_SAMPLE // 3 if args.quick else REPLAY_SAMPLE)
    finally:
        server.stop()
    stale_at_end = after_kill()
    ledger_path = var_dir / "ledger.json"
    ledger_path.write_text(
        json.dumps(
            {
                "usernames": [r["username"] for r in prepared["reporters"]],
                "reports": [
                    {"key": r.key, "marker": r.marker, "reporter": r.reporter, "number": r.number}
                    for r in run.reports
                ],
            }
        ),
        encoding="utf-8",
    )
    checked_path = var_dir / "check.json"
    code = subprocess.call(  # noqa: S603 - this script, our arguments
        [sys.executable, __file__, "--check", str(ledger_path), str(checked_path)], env=env
    )
    if code:
        return {"engine": engine, "ok": False, "failures": [f"the check failed (exit {code})"]}
    checked = json.loads(checked_path.read_text(encoding="utf-8"))
    result = summarise(engine, run, checked, replays, stale_at_end)
    print_table(result)
    if result["failures"]:
        print(f"-- the end of the server's log:\n{log_tail(log)}")
    if args.keep:
        print(f"kept: {var_dir} (server.log, ledger.json, check.json)")
    else:
        shutil.rmtree(var_dir, ignore_errors=True)
    return result


def log_tail(log: Path, chars: int = 3000) -> str:
    try:
        return log.read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def summarise(
    engine: str,
    run: Run,
    checked: dict[str, Any],
    replays: dict[str, int],
    stale_at_end: str,
) -> dict[str, Any]:
    reports = run.reports
    outcomes = Counter(r.outcome for r in reports)
    acknowledged = outcomes["acknowledged"]
    duration = run.finished - run.started
    load_s = max(1e-9, min(run.load_end, run.finished) - run.started)
    latencies = sorted(run.latencies)
    rejected = [r for r in reports if r.outcome == "rejected"]
    lives = run.server_lives()
    result: dict[str, Any] = {
        "engine": engine,
        "load_average": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "clients": run.args.clients,
        "seconds": round(load_s, 1),
        "run_s": round(duration, 1),
        "sent": run.sent,
        "reports": len(reports),
        "acknowledged": acknowledged,
        "acknowledged_on_retry": sum(1 for r in reports if r.number and r.attempts > 1),
        "replayed_acknowledgements": sum(1 for r in reports if r.replayed),
        "stored": checked["stored"],
        "stored_and_acknowledged": checked["stored_and_acknowledged"],
        "stored_not_acknowledged": checked["stored_not_acknowledged"],
        "duplicates": checked["duplicates"],
        "lost": checked["lost"],
        "mismatched": checked["mismatched"],
        "rejected": len(rejected),
        "rejected_examples": sorted({f"{r.status} {r.message}" for r in rejected})[:5],
        "gave_up": outcomes["gave up"],
        "kills": len(run.kills),
        "restarts": len(run.kills),
        "restart_s": [k["restart_s"] for k in run.kills],
        "acknowledged_per_server_life": lives,
        "acknowledged_per_s": acknowledged / load_s,
        "up_s": round(load_s - run.down_seconds(), 1),
        "acknowledged_per_up_s": acknowledged / max(1e-9, load_s - run.down_seconds()),
        "requests_per_s": run.sent / load_s,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "errors": dict(run.errors.most_common()),
        "replays": replays,
        "bad_timelines": checked["bad_timelines"],
        "bad_records": checked["bad_records"],
        "orphan_records": checked["orphan_records"],
        "stray_records": checked["stray_records"],
        "check": checked,
    }
    failures: list[str] = []
    if run.failure:
        failures.append(run.failure)
    if result["lost"]:
        failures.append(f"{result['lost']} acknowledged reports lost: {checked['lost_examples']}")
    if result["duplicates"]:
        failures.append(
            f"{result['duplicates']} reports stored twice: {checked['duplicate_examples']}"
        )
    if result["mismatched"]:
        failures.append(
            f"{result['mismatched']} reports stored under another number than acknowledged: "
            f"{checked['mismatched_examples']}"
        )
    if acknowledged != checked["stored_and_acknowledged"]:
        failures.append(
            f"acknowledged {acknowledged} != stored and acknowledged "
            f"{checked['stored_and_acknowledged']}"
        )
    if checked["acknowledged"] != acknowledged:
        failures.append("the ledger and the run disagree on the acknowledgements")
    if rejected:
        failures.append(f"{len(rejected)} valid reports refused: {result['rejected_examples']}")
    if checked["bad_timelines"] or checked["stray_events"]:
        failures.append(
            f"{checked['bad_timelines']} inconsistent timelines, {checked['stray_events']} "
            f"events without a case: {checked['bad_timeline_examples']}"
        )
    if checked["bad_records"] or checked["orphan_records"] or checked["stray_records"]:
        failures.append(
            f"idempotency records: {checked['bad_records']} wrong, {checked['orphan_records']} "
            f"without their case, {checked['stray_records']} unexplained: "
            f"{checked['bad_record_examples']}"
        )
    if checked["unknown_markers"] or checked["unmarked_cases"]:
        failures.append(
            f"{checked['unknown_markers']} cases with a marker no client sent, "
            f"{checked['unmarked_cases']} without a marker"
        )
    if checked["sequence_behind"]:
        failures.append(f"{checked['sequence_behind']} case numbers past their sequence")
    database = checked["database"]
    if database.get("integrity", "ok") != "ok" or database.get("foreign_key_violations"):
        failures.append(f"SQLite's checks: {database}")
    if len(run.kills) < run.args.kills:
        failures.append(f"only {len(run.kills)} of {run.args.kills} kills happened")
    if any(life == 0 for life in lives):
        failures.append(f"a server life acknowledged nothing: {lives}")
    stale = [k["stale"] for k in run.kills if k["stale"]] + ([stale_at_end] if stale_at_end else [])
    if stale:
        failures.append(f"stale state after a kill or the stop: {stale}")
    if replays["differ"]:
        failures.append(f"{replays['differ']} of {replays['replayed']} replays differed")
    result["failures"] = failures
    result["ok"] = not failures
    return result


ROWS = [
    ("sent (requests incl. retries)", "sent", "{:,}"),
    ("reports (distinct keys)", "reports", "{:,}"),
    ("acknowledged", "acknowledged", "{:,}"),
    ("  of them after a retry", "acknowledged_on_retry", "{:,}"),
    ("  of them replayed answers", "replayed_acknowledgements", "{:,}"),
    ("stored", "stored", "{:,}"),
    ("stored, not acknowledged", "stored_not_acknowledged", "{:,}"),
    ("duplicates", "duplicates", "{:,}"),
    ("lost", "lost", "{:,}"),
    ("refused (4xx)", "rejected", "{:,}"),
    ("given up (no answer in time)", "gave_up", "{:,}"),
    ("kills (SIGKILL)", "kills", "{}"),
    ("restarts", "restarts", "{}"),
    ("acknowledged/s", "acknowledged_per_s", "{:.1f}"),
    ("acknowledged/s while up", "acknowledged_per_up_s", "{:.1f}"),
    ("requests/s", "requests_per_s", "{:.1f}"),
    ("p50 latency", "p50_ms", "{:.0f} ms"),
    ("p99 latency", "p99_ms", "{:.0f} ms"),
    ("inconsistent timelines", "bad_timelines", "{}"),
    ("wrong idempotency records", "bad_records", "{}"),
]


def print_table(r: dict[str, Any]) -> None:
    print(
        f"\n{r['engine']}: {r['clients']} clients, {r['seconds']:g} s of load, "
        f"{r['up_s']:g} s of it with a server; load average {r['load_average']}"
    )
    for label, key, fmt in ROWS:
        print(f"  {label:32} {fmt.format(r[key]):>10}")
    lives = " / ".join(f"{n:,}" for n in r["acknowledged_per_server_life"])
    print(f"  acknowledged per server life: {lives}")
    print(f"  restart to /healthz: {', '.join(f'{s:.1f} s' for s in r['restart_s'])}")
    print(
        f"  replayed again at the end: {r['replays']['replayed']}, the same number: "
        f"{r['replays']['same']}"
    )
    if r["errors"]:
        kinds = ", ".join(f"{k} {v:,}" for k, v in r["errors"].items())
        print(f"  retried after: {kinds}")
    verdict = "OK" if r["ok"] else "FAILED"
    print(
        f"  {verdict}: acknowledged {r['acknowledged']:,} = stored and acknowledged "
        f"{r['stored_and_acknowledged']:,}, duplicates {r['duplicates']}, lost {r['lost']}"
    )
    for failure in r["failures"]:
        print(f"  FAILURE: {failure}")


def print_summary(results: list[dict[str, Any]]) -> None:
    done = [r for r in results if "sent" in r]
    if not done:
        return
    print("\n" + " " * 34 + "".join(f"{r['engine']:>12}" for r in done))
    for label, key, fmt in ROWS:
        print(f"{label:34}" + "".join(f"{fmt.format(r[key]):>12}" for r in done))


# --- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="CI-sized: 50 clients for 10 s (still 3 kills)"
    )
    parser.add_argument("--clients", type=int, help="concurrent clients (default 200)")
    parser.add_argument("--seconds", type=float, help="seconds of load (default 30)")
    parser.add_argument("--kills", type=int, default=3, help="SIGKILLs per database (default 3)")
    parser.add_argument(
        "--grace",
        type=float,
        help="seconds clients keep retrying after the load ends (default 20; 10 with --quick)",
    )
    parser.add_argument(
        "--tail",
        type=float,
        help="seconds each server life runs under load at least, the last one too "
        "(default 5; 2 with --quick)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        help=f"gunicorn workers (default {WEB_WORKERS}; with --quick {QUICK_WEB_WORKERS}, as "
        "`gridgov serve` by default)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=WEB_THREADS,
        help=f"threads per gunicorn worker (default {WEB_THREADS})",
    )
    parser.add_argument("--engine", choices=["all", "sqlite", "postgres"], default="all")
    parser.add_argument(
        "--postgres",
        default=None,
        metavar="URL",
        help="a PostgreSQL database whose server gets the run's own database "
        f"{RELIABILITY_DB} (default: DATABASE_URL when it is PostgreSQL, else {DEFAULT_POSTGRES})",
    )
    parser.add_argument(
        "--households", type=int, default=5000, help="size of the demo district (default 5,000)"
    )
    parser.add_argument("--seed", type=int, help="random seed (kill moments, points, keys)")
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory and the PostgreSQL database"
    )
    parser.add_argument("--setup", metavar="OUT", help=argparse.SUPPRESS)
    parser.add_argument("--check", nargs=2, metavar=("LEDGER", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.setup:
        return setup(Path(args.setup), args.households)
    if args.check:
        return check(Path(args.check[0]), Path(args.check[1]))
    args.clients = args.clients or (50 if args.quick else 200)
    args.workers = args.workers or (QUICK_WEB_WORKERS if args.quick else WEB_WORKERS)
    args.seconds = args.seconds or (10.0 if args.quick else 30.0)
    args.grace = args.grace if args.grace is not None else (10.0 if args.quick else 20.0)
    args.tail = args.tail if args.tail is not None else (2.0 if args.quick else 5.0)
    if min(args.clients, args.workers, args.threads) < 1 or args.seconds <= 0 or args.kills < 0:
        parser.error("--clients, --workers, --threads and --seconds must be positive")
    env_url = os.environ.get("DATABASE_URL", "")
    postgres_base = args.postgres or (
        env_url if env_url.startswith(("postgres://", "postgresql://")) else DEFAULT_POSTGRES
    )

    _become_subreaper()
    cores = os.cpu_count() or 0
    print(
        f"crash safety under load - Python {sys.version.split()[0]}, {cores} cores; "
        f"{args.clients} clients, {args.seconds:g} s, {args.kills} kills per database; "
        f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}",
        flush=True,
    )
    work = Path(tempfile.mkdtemp(prefix="gridgov-reliability-"))
    results: list[dict[str, Any]] = []
    try:
        if args.engine in ("all", "sqlite"):
            url = f"sqlite:///{work / 'reliability.sqlite3'}"
            results.append(run_engine("sqlite", url, args, work, None))
        if args.engine in ("all", "postgres"):
            url_pg, how = postgres_database(postgres_base, RELIABILITY_DB)
            if url_pg is None:
                print(
                    f"\nPostgreSQL: {how}. Start it with `bash .ci/postgres.sh`, point "
                    "--postgres at it, or run with --engine sqlite."
                )
                results.append({"engine": "postgres", "ok": False, "failures": [how]})
            else:
                try:
                    results.append(run_engine("postgres", url_pg, args, work, postgres_base))
                finally:
                    if args.keep:
                        print(f"kept: the database {RELIABILITY_DB}")
                    else:
                        postgres_drop(postgres_base, RELIABILITY_DB)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print_summary(results)
    ok = bool(results) and all(r["ok"] for r in results)
    print(
        "\nreliability: "
        + ("every acknowledged report stored exactly once" if ok else "FAILED")
        + "".join(f"; {r['engine']}: {'ok' if r['ok'] else 'FAILED'}" for r in results)
    )
    summary = {
        "check": "crash safety under load",
        "quick": args.quick,
        "clients": args.clients,
        "seconds": args.seconds,
        "kills": args.kills,
        "workers": args.workers,
        "threads": args.threads,
        "cores": cores,
        "ok": ok,
        "engines": [{k: v for k, v in r.items() if k != "check"} for r in results],
    }
    print(json.dumps(summary, sort_keys=True, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
