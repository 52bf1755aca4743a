"""Benchmark reading cases and sweeping deadlines with 1,000,000 cases loaded.

    .venv/bin/python bench/bench_cases.py            # full: 1,000,000 cases per database
    .venv/bin/python bench/bench_cases.py --quick    # CI-sized: 50,000 cases
    .venv/bin/python bench/bench_cases.py --engine sqlite --reuse   # keep/reuse the loaded file

Databases: a fresh SQLite file under the temporary directory, then PostgreSQL when
``DATABASE_URL`` points at one (in a separate database, ``gridgov_bench``, created when the role
may CREATEDB; the database named in the URL is not touched). Each runs in its own process
(settings are read from the environment at start-up).

Data: the demo district (Nanjing Qixia: 21 streets, 142 communities, 1,319 grids, its units
and accounts, from ``gridgov.core.demo.demo_load``), 20 categories, and N open cases inserted
in bulk (raw multi-row inserts on SQLite, COPY on PostgreSQL: loading is not what is measured),
spread over the grids (some grids much busier than others), the open states, two years of
reports, and step clocks of which about 65 % are green, 10 % yellow and 25 % red; 10 % of the
cases carry a timeline of 1–8 events.

Measured, each beside a baseline from the same run, as a ratio:

* **case list** — ``GET /api/v1/cases?…`` through Django's test client (URL routing, session
  auth, scoping, filters, the page of 50 with its capped count, serialisation), for a
  street-level dispatcher and a grid worker, each over up to 400 random filter combinations
  (states, category, sub-region, light, source, reporting dates, text, flags, "mine", a later
  page) within a time budget (90 s, at least 30 requests); p50/p95. Baseline: the bare indexed
  query for one grid's newest 50 rows.
* **case page** — ``GET /api/v1/cases/<number>`` (``case_get`` + the timeline +
  ``allowed_transitions``) on random cases the user may see; p50/p95. Baseline: one
  ``SELECT * … WHERE number = ?``.
* **sweep** — one ``gridgov.cases.sweeper.sweep()`` over all N open cases with a realistic
  few changes (0.05 % turn yellow, 0.05 % red, 0.01 % escalate, all notified), and a pass with
  none; first an untimed pass brings the lights up to date with the time spent loading.
  Baseline: ``SELECT count(*)`` over the case table.

Targets: list and page p95 ≤ 100 ms; one sweep ≤ 2 s (at 1,000,000 cases). Printed last: one
JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import engines  # noqa: E402  (bench/engines.py, found through the path above)

TARGET_LIST_P95_MS = 100.0
TARGET_PAGE_P95_MS = 100.0
TARGET_SWEEP_S = 2.0
BENCH_DB = "gridgov_bench"
MARKER = "bench.cases"
CHUNK = 20_000
#: a measurement stops at its time budget, but never with fewer samples than this
MIN_SAMPLES = 30

# --- the parent: one child process per database ---------------------------------------------


def run_child(engine: str, url: str, args: argparse.Namespace, var_dir: Path) -> dict[str, Any]:
    cmd = [__file__, "--child", engine, "--cases", str(args.cases), "--samples", str(args.samples)]
    cmd += ["--budget", str(args.budget), "--seed", str(args.seed)]
    if args.reuse:
        cmd.append("--reuse")
    return engines.run_child(engine, cmd, url, var_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized: 50,000 cases")
    parser.add_argument("--cases", type=int, help="open cases to load (default 1,000,000)")
    parser.add_argument("--samples", type=int, help="requests per measurement (at most)")
    parser.add_argument(
        "--budget", type=float, help="seconds per measurement at most (default 90; quick 10)"
    )
    parser.add_argument("--engine", choices=["all", "sqlite", "postgres"], default="all")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse a database loaded by an earlier --reuse run"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--child", choices=["sqlite", "postgres"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.cases = args.cases or (50_000 if args.quick else 1_000_000)
    args.samples = args.samples or (120 if args.quick else 400)
    args.budget = args.budget or (10.0 if args.quick else 90.0)
    if args.child:
        return child(args)

    from bench_locate import machine

    info = machine()
    print(
        f"case benchmark - {args.cases:,} cases, Python {info['python']}, {info['cores']} cores, "
        f"{info['cpu']}",
        flush=True,
    )
    results = engines.run_engines(
        engines=args.engine,
        work=Path(tempfile.gettempdir()) / "gridgov-bench",
        name=f"cases-{args.cases}",
        database=BENCH_DB,
        run=lambda engine, url, var_dir: run_child(engine, url, args, var_dir),
        reuse=args.reuse,
    )
    return engines.finish(
        results,
        benchmark="cases: list, page, sweep",
        quick=args.quick,
        cases=args.cases,
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
    world = load(args.cases, seed=args.seed, reuse=args.reuse)
    load_s = time.perf_counter() - started
    print(
        f"\n== {engine}: {world['cases']:,} open cases, {world['events']:,} events "
        f"({'reused' if world['reused'] else f'loaded in {load_s:.0f} s'})",
        flush=True,
    )
    rng = random.Random(args.seed)
    figures: dict[str, Any] = {"engine": engine, "vendor": connection.vendor, **world}
    figures["load_s"] = load_s
    for persona in ("dispatcher", "grid_worker"):
        figures[f"list_{persona}"] = measure_list(persona, args.samples, args.budget, rng)
        figures[f"page_{persona}"] = measure_page(persona, args.samples, args.budget, rng)
    figures["sweep"] = measure_sweep(args.cases)
    figures["targets_met"] = targets_met(figures)
    print_table(figures)
    print(json.dumps(figures, sort_keys=True, default=str), flush=True)
    return 0


# --- loading -------------------------------------------------------------------------------------


#: (state, step, share of the open cases)
STATES: list[tuple[str, str, float]] = [
    ("reported", "register", 0.05),
    ("accepted", "register", 0.04),
    ("verifying", "verify", 0.02),
    ("registered", "register", 0.04),
    ("sent_back", "register", 0.01),
    ("dispatched", "sign", 0.14),
    ("handling", "handle", 0.50),
    ("suspended", "", 0.02),
    ("checking", "check", 0.10),
    ("checked", "close", 0.08),
]
#: the default limits in calendar time, roughly (loading does not need working-time precision)
LIMITS = {
    "register": ("30m", timedelta(minutes=30)),
    "verify": ("1h", timedelta(hours=1)),
    "sign": ("24h", timedelta(days=3, hours=5)),
    "handle": ("1d", timedelta(days=1)),
    "check": ("1h", timedelta(hours=1)),
    "close": ("1h", timedelta(hours=1)),
}
ESCALATE_AFTER = {"sign": timedelta(days=3, hours=5), "handle": timedelta(days=7)}
PATH = ["report", "accept", "register", "dispatch", "sign", "feedback", "check_pass"]
STATE_DEPTH = {
    "reported": 1,
    "accepted": 2,
    "verifying": 2,
    "registered": 3,
    "sent_back": 4,
    "dispatched": 4,
    "handling": 5,
    "suspended": 5,
    "checking": 6,
    "checked": 7,
}
SOURCES = [("grid_worker", 0.6), ("resident", 0.15), ("hotline", 0.15), ("supervisor", 0.1)]
WORDS = ["井盖缺失", "路灯不亮", "垃圾堆放", "占道经营", "违章搭建", "噪音扰民", "绿地损坏", "积水"]
STREET = "320113003"
GRID = "320113003001001"


def load(n: int, *, seed: int, reuse: bool) -> dict[str, Any]:
    """The demo district, categories, personas and ``n`` cases (reused when already there)."""
    from gridgov.accounts.actions import role_assign, user_create
    from gridgov.accounts.models import User
    from gridgov.cases.models import Case, CaseEvent
    from gridgov.core.demo import demo_load
    from gridgov.core.models import Stamp
    from gridgov.geo.models import Region

    marker = Stamp.objects.filter(key=MARKER).values_list("version", flat=True).first()
    if reuse and marker == n:
        return describe(reused=True)
    if marker is not None or Case.objects.exists():
        raise SystemExit("the bench database holds other data: run without --reuse")
    demo_load(households=350_000 if n >= 500_000 else 40_000, seed=2026)
    categories = make_categories()
    street = Region.objects.get(code=STREET)
    grid = Region.objects.get(code=GRID)
    dispatcher = user_create(username="bench-dispatcher", password=None)
    role_assign(user=dispatcher, role="dispatcher", region=street)
    worker = user_create(username="bench-gridworker", password=None)
    role_assign(user=worker, role="grid_worker", region=grid)
    actors = list(User.objects.order_by("pk").values_list("pk", flat=True))
    insert_cases(n, seed=seed, categories=categories, worker_id=worker.pk, actors=actors)
    Stamp.objects.update_or_create(key=MARKER, defaults={"version": n})
    analyse()
    assert Case.objects.count() == n, "not every case was loaded"
    assert CaseEvent.objects.exists()
    return describe(reused=False)


def describe(*, reused: bool) -> dict[str, Any]:
    from gridgov.cases.models import Case, CaseEvent

    return {
        "cases": Case.objects.count(),
        "events": CaseEvent.objects.count(),
        "reused": reused,
    }


def make_categories() -> list[tuple[int, str]]:
    """20 minor categories under 4 majors: [(id, code)]."""
    from gridgov.cases.models import Category

    majors = [("01", "市政公用设施"), ("03", "市容环境"), ("06", "街面秩序"), ("10", "其他")]
    found = []
    for code, name in majors:
        major, _ = Category.objects.get_or_create(
            scheme="gbt47678",
            code=code,
            defaults={"name_zh": name, "klass": "event", "handle_limit": "1d"},
        )
        for i in range(1, 6):
            minor, _ = Category.objects.get_or_create(
                scheme="gbt47678",
                code=f"{code}{i:03d}",
                defaults={"name_zh": f"{name}{i}", "klass": "event", "parent": major},
            )
            found.append((minor.pk, minor.code))
    return found


def analyse() -> None:
    """Planner statistics and the visibility map, as a running installation has them
    (PostgreSQL's autovacuum, the ``db.analyze`` job on SQLite)."""
    from django.db import connection

    from gridgov.core.dbstats import database_analyze

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    else:
        database_analyze()


def _weights(rng: random.Random, k: int) -> list[float]:
    """Lognormal weights: some grids are much busier than others."""
    return [rng.lognormvariate(0, 1.0) for _ in range(k)]


def insert_cases(
    n: int, *, seed: int, categories: list[tuple[int, str]], worker_id: int, actors: list[int]
) -> None:
    from django.db import transaction

    from gridgov.accounts.models import Unit
    from gridgov.cases.models import Case, CaseEvent
    from gridgov.geo.models import Region

    rng = random.Random(seed)
    grids = list(
        Region.objects.filter(level="grid").values_list(
            "pk", "code", "label_lat", "label_lon", "parent__parent__code"
        )
    )
    offices = {
        code.removeprefix("320113-street-"): pk
        for pk, code in Unit.objects.filter(code__startswith="320113-street-").values_list(
            "pk", "code"
        )
    }
    departments = list(
        Unit.objects.filter(kind="city_department").values_list("pk", flat=True)
    ) or list(offices.values())
    grid_weights = _weights(rng, len(grids))
    state_names = [s for s, _, _ in STATES]
    state_weights = [w for _, _, w in STATES]
    steps = {s: step for s, step, _ in STATES}
    now = datetime.now(UTC)
    sequence: dict[str, int] = {}
    writer = Writer(Case, CaseEvent)
    next_event = 1
    for start in range(0, n, CHUNK):
        count = min(CHUNK, n - start)
        cases: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        picked = rng.choices(grids, grid_weights, k=count)
        chosen_states = rng.choices(state_names, state_weights, k=count)
        for i in range(count):
            pk = start + i + 1
            grid_pk, code, lat, lon, street = picked[i]
            state = chosen_states[i]
            step = steps[state]
            reported = now - timedelta(days=min(730.0, rng.expovariate(1 / 150)))
            row: dict[str, Any] = {
                "id": pk,
                "state": state,
                "grid_id": grid_pk,
                "region_code": code,
                "street_code": code[:9],
                "community_code": code[:12],
                "lat": lat + rng.uniform(-1e-4, 1e-4),
                "lon": lon + rng.uniform(-1e-4, 1e-4),
                "category_id": rng.choice(categories)[0],
                "source": rng.choices([s for s, _ in SOURCES], [w for _, w in SOURCES])[0],
                "urgency": "urgent" if rng.random() < 0.05 else "normal",
                "supervised": rng.random() < 0.03,
                "description": f"{rng.choice(WORDS)}，{rng.choice(WORDS)}附近，请尽快处理",
                "address": f"栖霞区{rng.choice('和燕迈尧仙马')}路{rng.randint(1, 400)}号",
                "reporter_id": worker_id if code == GRID and rng.random() < 0.5 else None,
                "reporter_name": "居民",
                "suggested_unit_id": offices.get(street),
            }
            row["emergency"] = row["urgency"] != "normal"
            if step:
                limit_text, limit = LIMITS[step]
                light = rng.choices(["green", "yellow", "red"], [0.65, 0.10, 0.25])[0]
                share = {
                    "green": rng.uniform(0.0, 0.79),
                    "yellow": rng.uniform(0.81, 0.99),
                    "red": rng.uniform(1.01, 30.0),
                }[light]
                started = now - limit * share
                reported = min(reported, started)
                after = ESCALATE_AFTER.get(step)
                escalate = started + after if after else None
                row.update(
                    step=step,
                    step_started_at=started,
                    step_limit=limit_text,
                    due_soon_at=started + limit * 0.8,
                    due_at=started + limit,
                    light=light,
                    escalate_at=escalate if escalate and escalate > now else None,
                    updated_at=started,
                )
            else:
                row.update(updated_at=reported + timedelta(days=1))
            depth = STATE_DEPTH[state]
            if depth >= 3:
                row["registered_at"] = reported + timedelta(minutes=20)
            if depth >= 4:
                row["dispatched_at"] = reported + timedelta(minutes=25)
                row["lead_unit_id"] = (
                    offices.get(street) if rng.random() < 0.8 else rng.choice(departments)
                )
            row["reported_at"] = reported
            day = reported.astimezone(LOCAL).strftime("%Y%m%d")
            sequence[day] = sequence.get(day, 0) + 1
            row["number"] = f"320113-{day}-{sequence[day]:05d}"
            row["uuid"] = uuid.UUID(int=rng.getrandbits(128), version=4)
            if rng.random() < 0.10:  # a timeline for one case in ten
                version = 0
                for k in range(rng.randint(1, 8)):
                    action = PATH[min(k, depth - 1)] if k < depth else "supervise"
                    version += 1
                    events.append(
                        {
                            "id": next_event,
                            "case_id": pk,
                            "version": version,
                            "at": reported + timedelta(minutes=10 * k),
                            "actor_id": rng.choice(actors),
                            "actor_role": "",
                            "action": action,
                            "from_state": "",
                            "to_state": state,
                            "note": "",
                            "params": {},
                        }
                    )
                    next_event += 1
                row["version"] = version
            cases.append(row)
        with transaction.atomic():
            writer.write(Case, cases)
            writer.write(CaseEvent, events)
        if (start + count) % 200_000 == 0 or start + count == n:
            print(f"  {start + count:,} cases loaded", flush=True)
    writer.finish()


class Writer:
    """Bulk rows into a model's table: multi-row INSERTs on SQLite, COPY on PostgreSQL.

    Columns follow the model's concrete fields; a field missing from a row gets its default."""

    def __init__(self, *models: Any) -> None:
        from django.db import connection

        self.connection = connection
        self.vendor = connection.vendor
        self.columns: dict[Any, list[tuple[str, str, Callable[[Any], Any], Any]]] = {}
        for model in models:
            cols = []
            for f in model._meta.concrete_fields:
                default = None if f.primary_key else f.get_default()
                cols.append((f.attname, f.column, self._converter(f), default))
            self.columns[model] = cols

    def _converter(self, field: Any) -> Callable[[Any], Any]:
        kind = field.get_internal_type()
        sqlite = self.vendor == "sqlite"
        if kind == "DateTimeField":
            if sqlite:
                return lambda v: (
                    None if v is None else v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
                )
            return lambda v: v
        if kind == "UUIDField":
            return (lambda v: v.hex) if sqlite else (lambda v: v)
        if kind == "JSONField":
            return lambda v: json.dumps(v, ensure_ascii=False)
        if kind == "BooleanField" and sqlite:
            return lambda v: int(bool(v))
        return lambda v: v

    def write(self, model: Any, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        cols = self.columns[model]
        table = model._meta.db_table
        values = [
            tuple(conv(row.get(name, default)) for name, _, conv, default in cols) for row in rows
        ]
        names = ", ".join(self.connection.ops.quote_name(c) for _, c, _, _ in cols)
        with self.connection.cursor() as cursor:
            if self.vendor == "postgresql":
                raw = cursor.cursor
                with raw.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    for value in values:
                        copy.write_row(value)
            else:
                marks = ", ".join(["%s"] * len(cols))
                sql = f"INSERT INTO {table} ({names}) VALUES ({marks})"  # noqa: S608 (model's)
                cursor.executemany(sql, values)

    def finish(self) -> None:
        if self.vendor != "postgresql":
            return
        with self.connection.cursor() as cursor:
            for model in self.columns:
                table = model._meta.db_table
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                    f"(SELECT max(id) FROM {table}))"
                )


def _local_zone() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Shanghai")


LOCAL = _local_zone()


# --- measuring -----------------------------------------------------------------------------------


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


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    result = fn()
    return time.perf_counter() - t, result


def client_for(username: str) -> Any:
    from django.test import Client

    from gridgov.accounts.models import User

    client = Client(HTTP_HOST="127.0.0.1", HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(User.objects.get(username=username))
    return client


PERSONAS = {"dispatcher": "bench-dispatcher", "grid_worker": "bench-gridworker"}


def filter_combinations(persona: str, rng: random.Random) -> Iterator[dict[str, Any]]:
    """Random filters as the case list offers them: 0 to 4 of them, sometimes a later page."""
    from gridgov.geo.models import Region

    if persona == "dispatcher":
        regions = [
            STREET,
            *Region.objects.filter(code__startswith=STREET).values_list("code", flat=True),
        ]
    else:
        regions = [GRID]
    categories = ["01", "03", "06001", "03002", "10004", "06"]
    states = [s for s, _, _ in STATES]
    today = date.today()
    choices: list[Callable[[], dict[str, Any]]] = [
        lambda: {"state": rng.sample(states, rng.randint(1, 3))},
        lambda: {"category": rng.choice(categories)},
        lambda: {"region": rng.choice(regions)},
        lambda: {"light": rng.choice(["green", "yellow", "red", "none"])},
        lambda: {"source": rng.choice(["grid_worker", "resident", "hotline"])},
        lambda: {
            "reported_from": (today - timedelta(days=rng.randint(7, 120))).isoformat(),
            "reported_to": today.isoformat(),
        },
        lambda: {"q": rng.choice(WORDS[:4])},
        lambda: {"supervised": "true"},
        lambda: {"emergency": "true"},
        lambda: {"mine": "true"},
    ]
    while True:
        params: dict[str, Any] = {}
        for make in rng.sample(choices, rng.choice([0, 1, 1, 2, 2, 3, 4])):
            params.update(make())
        if rng.random() < 0.15:
            params["offset"] = 50 * rng.randint(1, 4)
        yield params


def measure_list(persona: str, samples: int, budget: float, rng: random.Random) -> dict[str, Any]:
    from django.db import connection

    client = client_for(PERSONAS[persona])
    combos = filter_combinations(persona, rng)
    for _ in range(10):  # warm-up: URL resolver, templates of errors, caches
        client.get("/api/v1/cases", next(combos))
    times: list[float] = []
    rows = 0
    stop_at = time.perf_counter() + budget
    for _ in range(samples):
        if len(times) >= MIN_SAMPLES and time.perf_counter() > stop_at:
            break
        params = next(combos)
        url = "/api/v1/cases?" + urlencode(params, doseq=True)
        took, response = timed(lambda url=url: client.get(url))
        if response.status_code != 200:
            raise SystemExit(f"GET {url} answered {response.status_code}: {response.content!r}")
        rows += len(response.json()["items"])
        times.append(took)
    # baseline: the bare indexed query for one grid's newest page
    grids = [GRID] if persona == "grid_worker" else _busy_grids(STREET, 20)
    base: list[float] = []
    with connection.cursor() as cursor:
        for i in range(len(times)):
            code = grids[i % len(grids)]
            t = time.perf_counter()
            cursor.execute(
                "SELECT id, number, state, reported_at FROM cases_case WHERE region_code = %s "
                "ORDER BY reported_at DESC LIMIT 50",
                [code],
            )
            cursor.fetchall()
            base.append(time.perf_counter() - t)
    out = {**summary(times), "rows_per_page": rows / max(1, samples)}
    out["baseline"] = summary(base)
    out["ratio_p95"] = out["p95_ms"] / max(1e-9, out["baseline"]["p95_ms"])
    return out


def _busy_grids(prefix: str, k: int) -> list[str]:
    from django.db.models import Count

    from gridgov.cases.models import Case

    return list(
        Case.objects.filter(region_code__startswith=prefix)
        .values("region_code")
        .annotate(n=Count("pk"))
        .order_by("-n")
        .values_list("region_code", flat=True)[:k]
    )


def measure_page(persona: str, samples: int, budget: float, rng: random.Random) -> dict[str, Any]:
    from django.db import connection

    from gridgov.cases.models import Case

    client = client_for(PERSONAS[persona])
    prefix = STREET if persona == "dispatcher" else GRID
    numbers = list(
        Case.objects.filter(region_code__startswith=prefix, version__gt=1)
        .order_by("?")
        .values_list("number", flat=True)[: samples * 2]
    ) or list(
        Case.objects.filter(region_code__startswith=prefix).values_list("number", flat=True)[
            :samples
        ]
    )
    for number in numbers[:5]:
        client.get(f"/api/v1/cases/{number}")
    times: list[float] = []
    events = 0
    stop_at = time.perf_counter() + budget
    for i in range(samples):
        if len(times) >= MIN_SAMPLES and time.perf_counter() > stop_at:
            break
        number = numbers[i % len(numbers)]
        took, response = timed(lambda number=number: client.get(f"/api/v1/cases/{number}"))
        if response.status_code != 200:
            raise SystemExit(f"GET case {number} answered {response.status_code}")
        events += len(response.json().get("timeline", []))
        times.append(took)
    base: list[float] = []
    with connection.cursor() as cursor:
        for i in range(len(times)):
            t = time.perf_counter()
            cursor.execute(
                "SELECT * FROM cases_case WHERE number = %s", [numbers[i % len(numbers)]]
            )
            cursor.fetchall()
            base.append(time.perf_counter() - t)
    out = {**summary(times), "events_per_page": events / max(1, samples)}
    out["baseline"] = summary(base)
    out["ratio_p95"] = out["p95_ms"] / max(1e-9, out["baseline"]["p95_ms"])
    return out


def measure_sweep(n: int) -> dict[str, Any]:
    """One pass with a few changes planted, one with none; ``SELECT count(*)`` as baseline."""
    from django.db import connection
    from django.utils import timezone

    from gridgov.cases.models import Case
    from gridgov.cases.sweeper import sweep
    from gridgov.notifications.models import Notification

    # bring the lights up to date (time passed since loading), then a pass at the same instant:
    # nothing left to change, so it measures the bare cost of looking
    now = timezone.now()
    catch_up_s, caught = timed(lambda: sweep(now=now))
    idle_s, idle = timed(lambda: sweep(now=now))
    k = max(5, n // 2000)  # 0.05 %
    k_esc = max(1, n // 10000)
    green = list(
        Case.objects.filter(light="green", due_soon_at__gt=now + timedelta(minutes=5))
        .order_by("?")
        .values_list("pk", flat=True)[: 2 * k]
    )
    yellow_ids, red_ids = green[:k], green[k : 2 * k]
    Case.objects.filter(pk__in=yellow_ids).update(
        due_soon_at=now - timedelta(seconds=30), due_at=now + timedelta(hours=1)
    )
    Case.objects.filter(pk__in=red_ids).update(
        due_soon_at=now - timedelta(hours=1), due_at=now - timedelta(seconds=30)
    )
    escalating = list(
        Case.objects.filter(escalate_at__gt=now).order_by("?").values_list("pk", flat=True)[:k_esc]
    )
    Case.objects.filter(pk__in=escalating).update(escalate_at=now - timedelta(seconds=30))
    before = Notification.objects.count()
    sweep_s, result = timed(lambda: sweep(now=now))
    notifications = Notification.objects.count() - before
    counts: list[float] = []
    with connection.cursor() as cursor:
        for _ in range(3):
            t = time.perf_counter()
            cursor.execute("SELECT count(*) FROM cases_case")
            cursor.fetchone()
            counts.append(time.perf_counter() - t)
    count_s = min(counts)
    return {
        "catch_up_s": catch_up_s,
        "catch_up": [caught.due_soon, caught.overdue, caught.escalated],
        "idle_s": idle_s,
        "idle_changes": idle.due_soon + idle.overdue + idle.escalated,
        "sweep_s": sweep_s,
        "planted": {
            "due_soon": len(yellow_ids),
            "overdue": len(red_ids),
            "escalate": len(escalating),
        },
        "result": {
            "due_soon": result.due_soon,
            "overdue": result.overdue,
            "escalated": result.escalated,
            "notifications": notifications,
        },
        "count_s": count_s,
        "ratio": sweep_s / max(1e-9, count_s),
    }


def targets_met(f: dict[str, Any]) -> bool:
    lists = all(f[f"list_{p}"]["p95_ms"] <= TARGET_LIST_P95_MS for p in PERSONAS)
    pages = all(f[f"page_{p}"]["p95_ms"] <= TARGET_PAGE_P95_MS for p in PERSONAS)
    return lists and pages and f["sweep"]["sweep_s"] <= TARGET_SWEEP_S


def print_table(f: dict[str, Any]) -> None:
    def ok(value: float, target: float) -> str:
        return "ok" if value <= target else "ABOVE TARGET"

    print(f"{'':34} {'p50':>9} {'p95':>9}  {'baseline p95':>13}  ratio")
    for p in PERSONAS:
        for kind, target in (("list", TARGET_LIST_P95_MS), ("page", TARGET_PAGE_P95_MS)):
            r = f[f"{kind}_{p}"]
            label = f"{'case list' if kind == 'list' else 'case page'} ({p.replace('_', ' ')})"
            print(
                f"{label:34} {r['p50_ms']:7.1f}ms {r['p95_ms']:7.1f}ms  "
                f"{r['baseline']['p95_ms']:11.2f}ms  x{r['ratio_p95']:.0f} "
                f"{ok(r['p95_ms'], target)}"
            )
    s = f["sweep"]
    res = s["result"]
    print(
        f"{'sweep, few changes':34} {s['sweep_s']:8.3f}s {'':9}  {s['count_s']:12.3f}s  "
        f"x{s['ratio']:.1f} {ok(s['sweep_s'], TARGET_SWEEP_S)}  (count(*) baseline)"
    )
    print(
        f"{'':34} {res['due_soon']} due soon, {res['overdue']} overdue, {res['escalated']} "
        f"escalated, {res['notifications']} notifications"
    )
    print(f"{'sweep, no change':34} {s['idle_s']:8.3f}s")


if __name__ == "__main__":
    sys.exit(main())
