"""Benchmark scoped person search in a registry of 1,000,000 people.

    .venv/bin/python bench/bench_registry_search.py            # full: about 1,000,000 people
    .venv/bin/python bench/bench_registry_search.py --quick    # CI-sized: about 100,000 people
    .venv/bin/python bench/bench_registry_search.py --engine sqlite --reuse   # keep/reuse the file

Databases: a fresh SQLite file under the temporary directory, then PostgreSQL when
``DATABASE_URL`` points at one (in a separate database, ``gridgov_bench_registry``, created when
the role may CREATEDB; the database named in the URL is not touched). Each runs in its own
process (settings are read from the environment at start-up).

Data: the demo district (Nanjing Qixia, ``gridgov.core.demo.demo_load``) with enough planned
households for the people asked, filled by the demo residents loader
(``gridgov.registry.demo.demo_registry``: bulk inserts with encrypted id and phone numbers,
look-up hashes and masks, tags, organisations, components). Its speed is reported too.

Measured, each beside a baseline from the same run:

* **person search** — ``gridgov.registry.selectors.people_search(user, q)``, the first page of
  50 evaluated, as a grid worker (one grid, about 800 people) and as a street-level supervisor
  (a street, about 10 % of the district), for queries drawn from the people in scope: a surname
  (name prefix), the first two characters of a name, a character of a given name (contains), a
  full name, a mobile number and an id number (both exact, through their keyed hashes), and
  numbers that nobody has. p50/p95 per kind and over all. Baseline: the bare indexed query of
  the same kind in SQL (the name in the scope's region range, ordered, 50 rows; one hash
  equality), timed the same way.

Target: p95 ≤ 100 ms for each user. Printed last: one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import engines  # noqa: E402  (bench/engines.py, found through the path above)

TARGET_P95_MS = 100.0
BENCH_DB = "gridgov_bench_registry"
MARKER = "bench.registry"
#: people per planned household of the demo (occupied rooms x household size), measured
PEOPLE_PER_PLANNED_HOUSEHOLD = 2.39
STREET = "320113003"
GRID = "320113003001001"
PAGE = 50
KINDS = ("surname", "name_start", "given_char", "full_name", "phone", "id_number", "miss")
MIN_SAMPLES = 20


# --- the parent: one child process per database ---------------------------------------------


def run_child(engine: str, url: str, args: argparse.Namespace, var_dir: Path) -> dict[str, Any]:
    cmd = [__file__, "--child", engine, "--people", str(args.people)]
    cmd += ["--samples", str(args.samples), "--budget", str(args.budget), "--seed", str(args.seed)]
    if args.reuse:
        cmd.append("--reuse")
    return engines.run_child(engine, cmd, url, var_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized: about 100,000 people")
    parser.add_argument("--people", type=int, help="people to load (default 1,000,000)")
    parser.add_argument("--samples", type=int, help="searches per kind and user (at most)")
    parser.add_argument(
        "--budget", type=float, help="seconds per user at most (default 90; quick 15)"
    )
    parser.add_argument("--engine", choices=["all", "sqlite", "postgres"], default="all")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse a database loaded by an earlier --reuse run"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--child", choices=["sqlite", "postgres"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.people = args.people or (100_000 if args.quick else 1_000_000)
    args.samples = args.samples or (40 if args.quick else 150)
    args.budget = args.budget or (15.0 if args.quick else 90.0)
    if args.child:
        return child(args)

    from bench_locate import machine

    info = machine()
    print(
        f"registry search benchmark - about {args.people:,} people, Python {info['python']}, "
        f"{info['cores']} cores, {info['cpu']}",
        flush=True,
    )
    results = engines.run_engines(
        engines=args.engine,
        work=Path(tempfile.gettempdir()) / "gridgov-bench",
        name=f"registry-{args.people}",
        database=BENCH_DB,
        run=lambda engine, url, var_dir: run_child(engine, url, args, var_dir),
        reuse=args.reuse,
    )
    return engines.finish(
        results,
        benchmark="registry: scoped person search",
        quick=args.quick,
        people=args.people,
        machine=info,
    )


# --- the child: load, measure, print one JSON line ---------------------------------------------


def child(args: argparse.Namespace) -> int:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    engine = args.child
    started = time.perf_counter()
    call_command("migrate", interactive=False, verbosity=0)
    world = load(args.people, seed=args.seed, reuse=args.reuse)
    print(
        f"\n== {engine}: {world['people']:,} people in {world['households']:,} households "
        + (
            "(reused)"
            if world["reused"]
            else f"(district in {world['district_s']:.0f} s, residents in "
            f"{world['residents_s']:.0f} s: {world['people_per_s']:,.0f} people/s)"
        ),
        flush=True,
    )
    figures: dict[str, Any] = {"engine": engine, "vendor": connection.vendor, **world}
    figures["setup_s"] = time.perf_counter() - started
    rng = random.Random(args.seed)
    for persona in PERSONAS:
        figures[f"search_{persona}"] = measure(persona, args.samples, args.budget, rng)
    figures["targets_met"] = all(
        figures[f"search_{p}"]["all"]["p95_ms"] <= TARGET_P95_MS for p in PERSONAS
    )
    print_table(figures)
    print(json.dumps(figures, sort_keys=True, default=str), flush=True)
    return 0


def load(people: int, *, seed: int, reuse: bool) -> dict[str, Any]:
    """The demo district and its residents (reused when a marked database holds them)."""
    from gridgov.accounts.actions import role_assign, user_create
    from gridgov.core.demo import demo_load
    from gridgov.core.models import Stamp
    from gridgov.geo.models import Region
    from gridgov.registry.demo import demo_registry
    from gridgov.registry.models import Person

    marker = Stamp.objects.filter(key=MARKER).values_list("version", flat=True).first()
    if reuse and marker == people:
        return describe(reused=True)
    if marker is not None or Person.objects.exists():
        raise SystemExit("the bench database holds other data: run without --reuse")
    households = max(1_000, round(people / PEOPLE_PER_PLANNED_HOUSEHOLD))
    t = time.perf_counter()
    demo_load(households=households, seed=2026)
    district_s = time.perf_counter() - t
    last = [time.perf_counter()]

    def progress(done: int, total: int) -> None:
        if time.perf_counter() - last[0] >= 30 or done == total:
            last[0] = time.perf_counter()
            print(f"  residents: {done:,} of {total:,} grids", flush=True)

    t = time.perf_counter()
    result = demo_registry(per_grid=300, pause=False, progress=progress)
    residents_s = time.perf_counter() - t
    street = Region.objects.get(code=STREET)
    grid = Region.objects.get(code=GRID)
    worker = user_create(username="bench-gridworker", password=None)
    role_assign(user=worker, role="grid_worker", region=grid)
    supervisor = user_create(username="bench-supervisor", password=None)
    role_assign(user=supervisor, role="supervisor", region=street)
    Stamp.objects.update_or_create(key=MARKER, defaults={"version": people})
    analyse()
    return {
        **describe(reused=False),
        "district_s": district_s,
        "residents_s": residents_s,
        "people_per_s": result.counts.get("people", 0) / max(1e-9, residents_s),
        "loaded": result.counts,
    }


def describe(*, reused: bool) -> dict[str, Any]:
    from gridgov.registry.models import Household, Person

    return {
        "people": Person.objects.count(),
        "households": Household.objects.count(),
        "reused": reused,
    }


def analyse() -> None:
    """Planner statistics, as a running installation has them."""
    from django.db import connection

    from gridgov.core.dbstats import database_analyze

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    else:
        database_analyze()


# --- measuring -----------------------------------------------------------------------------------

PERSONAS = {"grid_worker": ("bench-gridworker", GRID), "street": ("bench-supervisor", STREET)}


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "n": len(samples),
        "p50_ms": percentile(samples, 0.5) * 1000,
        "p95_ms": percentile(samples, 0.95) * 1000,
        "max_ms": max(samples) * 1000 if samples else float("nan"),
    }


def queries(prefix: str, samples: int, rng: random.Random) -> dict[str, list[str]]:
    """Search texts per kind, drawn from the people in scope (numbers decrypted here)."""
    from gridgov.core.scope import prefix_q
    from gridgov.registry.demo import id_number, mobile
    from gridgov.registry.models import Person

    pks = list(Person.objects.filter(prefix_q("region_code", prefix)).values_list("pk", flat=True))
    chosen = rng.sample(pks, min(len(pks), samples))
    people = list(Person.objects.filter(pk__in=chosen))
    rng.shuffle(people)
    with_phone = [p for p in people if p.phone]
    names = [p.name for p in people]
    misses = []
    for i in range(samples):
        if i % 2:
            misses.append(mobile(rng))
        else:
            misses.append(id_number("110101", _date(rng), rng.randrange(1000)))
    return {
        "surname": [n[0] for n in names],
        "name_start": [n[:2] for n in names],
        "given_char": [n[-1] for n in names],
        "full_name": names,
        "phone": [p.phone for p in with_phone],
        "id_number": [p.id_number for p in people],
        "miss": misses,
    }


def _date(rng: random.Random) -> Any:
    from datetime import date, timedelta

    return date(1940, 1, 1) + timedelta(days=rng.randrange(25_000))


def baseline_sql(kind: str, prefix: str, text: str) -> tuple[str, list[Any]]:
    """The bare indexed query of a search of ``kind`` in ``prefix``'s subtree."""
    from gridgov.privacy import crypto
    from gridgov.registry.selectors import search_kind

    if kind == "miss" or kind in ("phone", "id_number"):
        how = search_kind(text)
        digest = crypto.lookup_hash(how, text)
        column = "id_number_hash" if how == crypto.ID_NUMBER else "phone_hash"
        return (
            f"SELECT id FROM registry_person WHERE {column} = %s AND NOT ({column} = '') "  # noqa: S608
            "AND closed_at IS NULL",
            [digest],
        )
    if len(prefix) >= 15:
        where, params = "region_code = %s", [prefix]
    else:
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        where, params = "region_code >= %s AND region_code < %s", [prefix, upper]
    return (
        f"SELECT id, name FROM registry_person WHERE {where} AND closed_at IS NULL "  # noqa: S608
        f"AND name LIKE %s ORDER BY name, id LIMIT {PAGE}",
        [*params, f"%{text}%"],
    )


def measure(persona: str, samples: int, budget: float, rng: random.Random) -> dict[str, Any]:
    from django.db import connection

    from gridgov.accounts.models import User
    from gridgov.registry.selectors import people_search

    username, prefix = PERSONAS[persona]
    user = User.objects.get(username=username)
    texts = queries(prefix, samples, rng)
    for text in texts["full_name"][:5]:  # warm-up: caches, the scope, compiled queries
        list(people_search(user, text)[:PAGE])
    out: dict[str, Any] = {}
    every: list[float] = []
    every_base: list[float] = []
    per_kind_budget = budget / len(KINDS)
    for kind in KINDS:
        times: list[float] = []
        base: list[float] = []
        rows = 0
        stop_at = time.perf_counter() + per_kind_budget
        for text in texts[kind]:
            if len(times) >= MIN_SAMPLES and time.perf_counter() > stop_at:
                break
            t = time.perf_counter()
            found = list(people_search(user, text)[:PAGE])
            took = time.perf_counter() - t
            times.append(took)
            rows += len(found)
            sql, params = baseline_sql(kind, prefix, text)
            with connection.cursor() as cursor:
                t = time.perf_counter()
                cursor.execute(sql, params)
                cursor.fetchall()
                base.append(time.perf_counter() - t)
        if not times:
            continue
        out[kind] = {
            **summary(times),
            "rows_per_search": rows / len(times),
            "baseline": summary(base),
        }
        out[kind]["ratio_p95"] = out[kind]["p95_ms"] / max(1e-9, out[kind]["baseline"]["p95_ms"])
        every += times
        every_base += base
    out["all"] = {**summary(every), "baseline": summary(every_base)}
    out["all"]["ratio_p95"] = out["all"]["p95_ms"] / max(1e-9, out["all"]["baseline"]["p95_ms"])
    return out


def print_table(f: dict[str, Any]) -> None:
    print(f"{'':34} {'p50':>9} {'p95':>9}  {'baseline p95':>13}  {'ratio':>6}  rows")
    for persona in PERSONAS:
        r = f[f"search_{persona}"]
        for kind in (*KINDS, "all"):
            if kind not in r:
                continue
            k = r[kind]
            label = f"{persona.replace('_', ' ')}: {kind.replace('_', ' ')}"
            verdict = ""
            if kind == "all":
                verdict = "ok" if k["p95_ms"] <= TARGET_P95_MS else "ABOVE TARGET"
            rows = f"{k['rows_per_search']:5.1f}" if "rows_per_search" in k else ""
            print(
                f"{label:34} {k['p50_ms']:7.1f}ms {k['p95_ms']:7.1f}ms  "
                f"{k['baseline']['p95_ms']:11.2f}ms  x{k['ratio_p95']:<5.0f}  {rows} {verdict}"
            )


if __name__ == "__main__":
    sys.exit(main())
