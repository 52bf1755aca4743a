"""Benchmark intake: reports POSTed through the API by 32 concurrent clients, against a bare insert.

    .venv/bin/python bench/bench_intake.py            # 20 s per endpoint and database
    .venv/bin/python bench/bench_intake.py --quick    # CI-sized: 5 s

For each database — a fresh SQLite file, then PostgreSQL when ``DATABASE_URL`` points at one (in
a separate database, ``gridgov_bench_intake``, created when the role may CREATEDB) — it migrates,
loads the demo district (1,319 grids; 40,000 households and fewer grids with ``--quick``), adds
a category and a grid worker with an API token, and starts the real server as ``gridgov serve``
does (gunicorn, 2 workers × 4 threads) on 127.0.0.1 with ``GRIDGOV_BENCH_ENDPOINTS=1``. Then, in
the same server run:

* **bare** — ``POST /bench/insert``: the same JSON body, parsed, and one row inserted with raw
  SQL (``gridgov.core.bench_views``): the floor for a write on this server and database;
* **report** — ``POST /api/v1/cases`` with ``Authorization: Bearer <token>`` and a fresh
  ``Idempotency-Key``: token auth, validation, the grid look-up, routing, the case number, the
  case and its timeline row, the idempotency record, the full case in the answer.

Each is driven by 32 client threads on keep-alive ``http.client`` connections for the duration
(after a short warm-up), the points spread over the district's grids. Printed: requests per
second, p50/p99 latency, errors (must be 0), and the report's throughput as a ratio of the bare
endpoint's. Targets: ratio ≥ 0.6 and report p99 ≤ 150 ms. The client runs on the same machine
and takes part of its CPU from both endpoints alike. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from intake_common import (  # noqa: E402  (bench/ is on the path from here on)
    add_reporter,
    ensure_category,
    free_port,
    grid_points,
    percentile,
    postgres_database,
    report_body,
    report_request,
    start_server,
    stop_server,
)

TARGET_RATIO = 0.6
TARGET_P99_MS = 150.0
BENCH_DB = "gridgov_bench_intake"
WEB_WORKERS = 2
WEB_THREADS = 4


# --- setup (a child process: settings come from the environment) ------------------------------


def setup(out: Path, households: int) -> int:
    import django

    django.setup()
    from django.core.management import call_command

    from gridgov.core.bench_views import ensure_table
    from gridgov.core.demo import demo_load

    call_command("migrate", interactive=False, verbosity=0)
    ensure_table()
    demo_load(households=households)
    ensure_category()
    raw = add_reporter(
        username="bench-reporter",
        role="grid_worker",
        region_code="320113003001001",
        label="bench",
    )
    points = grid_points()
    out.write_text(
        json.dumps({"token": raw, "points": points, "grids": len(points)}), encoding="utf-8"
    )
    return 0


# (the server: intake_common.start_server, as ``gridgov serve`` runs it)


# --- the clients --------------------------------------------------------------------------------


class Load:
    """``clients`` threads, each on its own keep-alive connection, POSTing for ``seconds``."""

    def __init__(self, port: int, clients: int) -> None:
        self.port = port
        self.clients = clients

    def run(self, make: Any, seconds: float) -> dict[str, Any]:
        stop_at = time.perf_counter() + seconds
        start = threading.Barrier(self.clients + 1)
        lock = threading.Lock()
        latencies: list[float] = []
        errors: dict[str, int] = {}

        def client(k: int) -> None:
            rng = random.Random(k)
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            mine: list[float] = []
            failed: dict[str, int] = {}
            start.wait()
            while time.perf_counter() < stop_at:
                path, body, headers = make(rng)
                t = time.perf_counter()
                try:
                    conn.request("POST", path, body=body, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    status = response.status
                except (OSError, http.client.HTTPException) as exc:
                    failed[type(exc).__name__] = failed.get(type(exc).__name__, 0) + 1
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                    continue
                if status != 201:
                    failed[str(status)] = failed.get(str(status), 0) + 1
                    continue
                mine.append(time.perf_counter() - t)
            conn.close()
            with lock:
                latencies.extend(mine)
                for key, count in failed.items():
                    errors[key] = errors.get(key, 0) + count

        threads = [threading.Thread(target=client, args=(k,)) for k in range(self.clients)]
        for t in threads:
            t.start()
        start.wait()
        began = time.perf_counter()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - began
        latencies.sort()
        return {
            "requests": len(latencies),
            "seconds": elapsed,
            "per_s": len(latencies) / elapsed,
            "p50_ms": percentile(latencies, 0.50) * 1000,
            "p99_ms": percentile(latencies, 0.99) * 1000,
            "max_ms": (latencies[-1] if latencies else float("nan")) * 1000,
            "errors": sum(errors.values()),
            "error_kinds": errors,
        }


def payloads(token: str, points: list[list[Any]]) -> tuple[Any, Any]:
    def report(rng: random.Random) -> tuple[str, bytes, dict[str, str]]:
        # fresh keys: a seeded rng would replay the warm-up's keys in the measured run
        return report_request(token, report_body(rng, points))

    def bare(rng: random.Random) -> tuple[str, bytes, dict[str, str]]:
        body = json.dumps(report_body(rng, points)).encode()
        return "/bench/insert", body, {"Content-Type": "application/json"}

    return report, bare


# --- one database -------------------------------------------------------------------------------


def run_engine(engine: str, url: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    var_dir = work / f"var-{engine}"
    shutil.rmtree(var_dir, ignore_errors=True)
    var_dir.mkdir(parents=True)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "GRIDGOV_VAR_DIR": str(var_dir),
        "DJANGO_SETTINGS_MODULE": "gridgov.settings",
        "GRIDGOV_LOG_LEVEL": "WARNING",
    }
    started = time.perf_counter()
    out = var_dir / "setup.json"
    households = 40_000 if args.quick else 350_000
    code = subprocess.call(
        [sys.executable, __file__, "--setup", str(out), "--households", str(households)], env=env
    )
    if code:
        return {"engine": engine, "error": f"setup failed (exit {code})"}
    prepared = json.loads(out.read_text(encoding="utf-8"))
    print(
        f"\n== {engine}: {prepared['grids']:,} grids, ready in "
        f"{time.perf_counter() - started:.0f} s; {args.clients} clients, {args.seconds:g} s each",
        flush=True,
    )
    port = free_port()
    server = start_server(
        {**env, "GRIDGOV_BENCH_ENDPOINTS": "1"}, port, workers=WEB_WORKERS, threads=WEB_THREADS
    )
    try:
        report, bare = payloads(prepared["token"], prepared["points"])
        load = Load(port, args.clients)
        warm = 1.0 if args.quick else 2.0
        load.run(bare, warm)
        load.run(report, warm)
        bare_r = load.run(bare, args.seconds)
        report_r = load.run(report, args.seconds)
    finally:
        stop_server(server)
    result = {
        "engine": engine,
        "grids": prepared["grids"],
        "clients": args.clients,
        "bare": bare_r,
        "report": report_r,
        "ratio": report_r["per_s"] / max(1e-9, bare_r["per_s"]),
    }
    result["targets_met"] = (
        result["ratio"] >= TARGET_RATIO
        and report_r["p99_ms"] <= TARGET_P99_MS
        and bare_r["errors"] == 0
        and report_r["errors"] == 0
    )
    print_table(result)
    shutil.rmtree(var_dir, ignore_errors=True)
    return result


def print_table(r: dict[str, Any]) -> None:
    print(f"{'':28} {'req/s':>8} {'p50':>9} {'p99':>9} {'errors':>7}")
    for label, key in (
        ("bare insert (raw SQL)", "bare"),
        ("report (POST /api/v1/cases)", "report"),
    ):
        x = r[key]
        kinds = f" {x['error_kinds']}" if x["errors"] else ""
        print(
            f"{label:28} {x['per_s']:8.1f} {x['p50_ms']:7.1f}ms {x['p99_ms']:7.1f}ms "
            f"{x['errors']:7d}{kinds}"
        )
    ratio_ok = "ok" if r["ratio"] >= TARGET_RATIO else "BELOW TARGET"
    p99_ok = "ok" if r["report"]["p99_ms"] <= TARGET_P99_MS else "ABOVE TARGET"
    print(
        f"report / bare throughput: x{r['ratio']:.2f} {ratio_ok} (target ≥ {TARGET_RATIO}); "
        f"report p99 {r['report']['p99_ms']:.0f} ms {p99_ok} (target ≤ {TARGET_P99_MS:.0f} ms)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized: 5 s per endpoint")
    parser.add_argument("--seconds", type=float, help="seconds per endpoint (default 20)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--engine", choices=["all", "sqlite", "postgres"], default="all")
    parser.add_argument("--setup", metavar="OUT", help=argparse.SUPPRESS)
    parser.add_argument("--households", type=int, default=350_000, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.setup:
        return setup(Path(args.setup), args.households)
    args.seconds = args.seconds or (5.0 if args.quick else 20.0)

    from bench_locate import machine

    info = machine()
    print(
        f"intake benchmark - {args.clients} clients, Python {info['python']}, "
        f"{info['cores']} cores, {info['cpu']}",
        flush=True,
    )
    work = Path(tempfile.mkdtemp(prefix="gridgov-intake-"))
    results: list[dict[str, Any]] = []
    try:
        if args.engine in ("all", "sqlite"):
            url = f"sqlite:///{work / 'intake.sqlite3'}"
            results.append(run_engine("sqlite", url, args, work))
        base = os.environ.get("DATABASE_URL", "")
        if args.engine in ("all", "postgres"):
            if base.startswith(("postgres://", "postgresql://")):
                url_pg, how = postgres_database(base, BENCH_DB)
                if url_pg:
                    results.append(run_engine("postgres", url_pg, args, work))
                else:
                    print(f"\nPostgreSQL skipped: {how}")
            elif args.engine == "postgres":
                print("\nPostgreSQL skipped: DATABASE_URL does not point at PostgreSQL")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ok = bool(results) and all(
        "error" not in r and r["bare"]["errors"] == 0 and r["report"]["errors"] == 0
        for r in results
    )
    met = ok and all(r["targets_met"] for r in results)
    print(f"\nno errors: {'yes' if ok else 'NO'}; targets met: {'yes' if met else 'no'}")
    summary = {
        "benchmark": "intake: POST /api/v1/cases vs a bare insert",
        "quick": args.quick,
        "seconds": args.seconds,
        "clients": args.clients,
        "machine": info,
        "no_errors": ok,
        "targets_met": met,
        "engines": results,
    }
    print(json.dumps(summary, sort_keys=True, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
