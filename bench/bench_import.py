"""Benchmark the ledger import: 1,000,000 people from CSV, against a bare bulk insert.

    .venv/bin/python bench/bench_import.py                  # 1,000,000 rows per database
    .venv/bin/python bench/bench_import.py --quick          # CI-sized: 100,000 rows
    .venv/bin/python bench/bench_import.py --engine sqlite  # sqlite | postgres | all

Databases: a fresh SQLite file under the temporary directory, then PostgreSQL when
``DATABASE_URL`` points at one (in a separate database, ``gridgov_bench_import``, created when the
role may CREATEDB; the database named in the URL is not touched). Each runs in its own process.

Data: a district of its own (code 320199) with streets, communities and enough grids for about
300 households each (1,235 grids for 1,000,000 people), an administrator of the district who
imports, and one CSV ledger (UTF-8, 15 columns as community ledgers have them: 姓名, 性别,
公民身份号码, 出生日期, 联系电话, 民族, 人口类型, 与户主关系, 标签, 小区, 楼栋, 单元, 房号,
网格编码, 备注) of N people in households of 1 to 6 living in rooms of 6-storey buildings,
valid synthetic id numbers (GB 11643 check characters, unique), unique mobile numbers, 4 % with
a care tag.

Measured, in the same process and database, one after the other:

* **baseline** — the same file streamed by the same reader (``ledger.readers``), and its rows
  bulk-inserted without any validation, encryption or hashing: buildings, rooms and households
  de-duplicated by their plain text, people with their id and phone numbers as plain text,
  in batches (``executemany`` on SQLite, ``COPY`` on PostgreSQL) in one transaction. Then
  those rows are deleted again (not timed).
* **check** — ``ledger_check``: the upload stored, every row validated (id number check
  character and consistency, phone, dates, codes, tags, grid and scope, duplicates in the file
  and in the registry), the counts written. Reported on its own.
* **commit** — ``ledger_commit`` of the checked file: streamed again, every row validated
  again, id and phone numbers encrypted (AES-GCM), hashed (HMAC) and masked, buildings, rooms
  and households de-duplicated, everything written in one transaction.

Targets (issue 4): the commit of 1,000,000 rows in at most 90 s on each database, and its
throughput at least 0.4 times the baseline's. Printed: seconds, rows per second, the ratio, and
the process's peak resident memory after each phase; last, one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import engines  # noqa: E402  (bench/engines.py, found through the path above)

TARGET_COMMIT_S = 90.0
TARGET_RATIO = 0.4
BENCH_DB = "gridgov_bench_import"
WORK = Path(tempfile.gettempdir()) / "gridgov-bench-import"
DISTRICT = "320199"
HOUSEHOLDS_PER_GRID = 300
BATCH = 2000

HEADERS = [
    "姓名",
    "性别",
    "公民身份号码",
    "出生日期",
    "联系电话",
    "民族",
    "人口类型",
    "与户主关系",
    "标签",
    "小区",
    "楼栋",
    "单元",
    "房号",
    "网格编码",
    "备注",
]
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
)
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂英华建国志红玉兰文斌宇浩然欣怡子涵梓轩"
ETHNICITIES = ["汉族"] * 96 + ["回族", "满族", "壮族", "苗族"]
TYPES = ["户籍人口"] * 80 + ["流动人口"] * 18 + ["境外人员"] * 2
CARE_TAGS = ["独居老人", "空巢老人", "残疾人", "低保", "退役军人"]
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK = "10X98765432"


# --- the parent: one child process per database ---------------------------------------------


def run_child(engine: str, url: str, args: argparse.Namespace, var_dir: Path) -> dict[str, Any]:
    cmd = [__file__, "--child", engine, "--rows", str(args.rows), "--seed", str(args.seed)]
    cmd += ["--file", str(ledger_path(args.rows))]
    return engines.run_child(
        engine,
        cmd,
        url,
        var_dir,
        GRIDGOV_MEDIA_ROOT=str(var_dir / "media"),
        GRIDGOV_MEDIA_STORAGE="local",
        GRIDGOV_LEDGER_MAX_MB="1000",
    )


def ledger_path(rows: int) -> Path:
    return WORK / f"ledger-{rows}.csv"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized: 100,000 rows")
    parser.add_argument("--rows", type=int, help="people in the ledger (default 1,000,000)")
    parser.add_argument("--engine", choices=["all", "sqlite", "postgres"], default="all")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--child", choices=["sqlite", "postgres"], help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.rows = args.rows or (100_000 if args.quick else 1_000_000)
    if args.child:
        return child(args)

    from bench_locate import machine

    info = machine()
    print(
        f"ledger import benchmark - {args.rows:,} people, Python {info['python']}, "
        f"{info['cores']} cores, {info['cpu']}",
        flush=True,
    )
    WORK.mkdir(exist_ok=True)
    ledger = ledger_path(args.rows)
    started = time.perf_counter()
    households = write_ledger(ledger, args.rows, seed=args.seed)
    print(
        f"ledger: {ledger.stat().st_size / 2**20:.0f} MB, {args.rows:,} people in "
        f"{households:,} households, written in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    results = engines.run_engines(
        engines=args.engine,
        work=WORK,
        name="import",
        database=BENCH_DB,
        run=lambda engine, url, var_dir: run_child(engine, url, args, var_dir),
        drop=True,
    )
    ledger.unlink(missing_ok=True)
    return engines.finish(
        results,
        benchmark="ledger import: 1,000,000 people from CSV",
        quick=args.quick,
        rows=args.rows,
        machine=info,
    )


# --- the ledger -------------------------------------------------------------------------------


def grid_count(rows: int) -> int:
    """Grids for about 300 households each (2.7 people a household on average)."""
    return max(1, round(rows / 2.7 / HOUSEHOLDS_PER_GRID))


def grid_codes(rows: int) -> list[str]:
    """Codes of the district's grids: 10 grids a community, 12 communities a street."""
    codes = []
    for k in range(grid_count(rows)):
        street, rest = divmod(k, 120)
        community, grid = divmod(rest, 10)
        codes.append(f"{DISTRICT}{street + 1:03d}{community + 1:03d}{grid + 1:03d}")
    return codes


def id_text(birth: date, serial: int) -> str:
    first17 = f"320113{birth:%Y%m%d}{serial:03d}"
    total = sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True))
    return first17 + CHECK[total % 11]


def write_ledger(path: Path, rows: int, *, seed: int) -> int:
    """The CSV ledger; answers the number of households."""
    rng = random.Random(seed)
    grids = grid_codes(rows)
    serials: dict[tuple[date, int], int] = {}
    today = date(2026, 1, 1)
    written = 0
    households = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(HEADERS)
        grid_index = 0
        while written < rows:
            grid = grids[min(grid_index, len(grids) - 1)]
            estate = f"幸福{int(grid[-6:]):06d}苑"
            for household in range(HOUSEHOLDS_PER_GRID):
                if written >= rows:
                    break
                building = f"{household // 72 + 1}栋"
                unit = str(household % 72 // 12 + 1)
                room = f"{household % 12 // 2 + 1}0{household % 2 + 1}"
                size = min(rng.choice((1, 2, 2, 3, 3, 3, 4, 4, 5, 6)), rows - written)
                households += 1
                head_age = rng.randint(25, 90)
                for member in range(size):
                    relation = (
                        "户主" if member == 0 else "配偶" if member == 1 else rng.choice("子女")
                    )
                    age = head_age if member < 2 else max(0, head_age - rng.randint(20, 35))
                    birth = today - timedelta(days=age * 365 + rng.randint(0, 364))
                    male = (member == 0) == (rng.random() < 0.55)
                    count = serials.get((birth, male), 0)
                    serials[(birth, male)] = count + 1
                    serial = count * 2 + (1 if male else 0)
                    if serial > 999:
                        continue
                    name = rng.choice(SURNAMES) + "".join(
                        rng.choice(GIVEN) for _ in range(rng.choice((1, 2)))
                    )
                    out.writerow(
                        [
                            name,
                            "男" if male else "女",
                            id_text(birth, serial),
                            birth.isoformat(),
                            f"13{written % 7 + 3}{written:08d}",
                            rng.choice(ETHNICITIES),
                            rng.choice(TYPES),
                            relation,
                            rng.choice(CARE_TAGS) if rng.random() < 0.04 else "",
                            estate,
                            building,
                            unit,
                            room,
                            grid,
                            "",
                        ]
                    )
                    written += 1
            grid_index += 1
    return households


# --- the child: set up, measure, print one JSON line -------------------------------------------


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args: argparse.Namespace) -> int:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    engine = args.child
    call_command("migrate", interactive=False, verbosity=0)
    user = setup(args.rows)
    path = Path(args.file)
    print(f"\n== {engine}: {args.rows:,} people, {grid_count(args.rows):,} grids", flush=True)
    figures: dict[str, Any] = {"engine": engine, "vendor": connection.vendor, "rows": args.rows}

    seconds, counts = timed(lambda: baseline(path))
    figures["baseline"] = {
        "s": seconds,
        "cpu_s": LAST_CPU[0],
        "rows_per_s": args.rows / seconds,
        **counts,
    }
    figures["baseline"]["peak_mb"] = peak_mb()
    print(f"  baseline  {seconds:7.1f} s  {args.rows / seconds:9,.0f} rows/s", flush=True)
    clear_registry()

    from gridgov.registry.ledger.importer import ledger_check, ledger_commit

    seconds, li = timed(
        lambda: ledger_check(actor=user, file=path, file_name=path.name, region=DISTRICT)
    )
    if li.status != "checked":
        print(f"  the check failed: {li.message} {li.error_summary[:3]}", flush=True)
        return 1
    figures["check"] = {
        "s": seconds,
        "cpu_s": LAST_CPU[0],
        "rows_per_s": args.rows / seconds,
        "peak_mb": peak_mb(),
    }
    print(f"  check     {seconds:7.1f} s  {args.rows / seconds:9,.0f} rows/s", flush=True)

    seconds, li = timed(lambda: ledger_commit(actor=user, ledger_import=li))
    if li.status != "imported":
        print(f"  the commit failed: {li.message}", flush=True)
        return 1
    figures["commit"] = {
        "s": seconds,
        "cpu_s": LAST_CPU[0],
        "rows_per_s": args.rows / seconds,
        "peak_mb": peak_mb(),
        "created": li.created,
        "updated": li.updated,
    }
    print(f"  commit    {seconds:7.1f} s  {args.rows / seconds:9,.0f} rows/s", flush=True)
    figures["stored"] = verify(args.rows)
    figures["ratio"] = figures["commit"]["rows_per_s"] / figures["baseline"]["rows_per_s"]
    figures["targets_met"] = bool(
        figures["ratio"] >= TARGET_RATIO
        and (args.rows < 1_000_000 or figures["commit"]["s"] <= TARGET_COMMIT_S)
    )
    print_table(figures)
    print(json.dumps(figures, sort_keys=True, default=str), flush=True)
    return 0


#: CPU seconds of the last ``timed`` call (this process only: the database server's work on
#: PostgreSQL is not in it; on a busy machine it shows what the wall-clock time hides).
LAST_CPU = [0.0]


def timed(fn: Any) -> tuple[float, Any]:
    started, cpu = time.perf_counter(), time.process_time()
    result = fn()
    LAST_CPU[0] = time.process_time() - cpu
    return time.perf_counter() - started, result


def setup(rows: int) -> Any:
    """The district's regions and an administrator of the district."""
    from gridgov.accounts.actions import role_assign, user_create
    from gridgov.geo.models import Level, Region

    def box(code: str, k: int, size: float) -> dict[str, Any]:
        lon, lat = 118.5 + (k % 40) * size, 31.5 + (k // 40) * size
        return {
            "code": code,
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [
                        [lon, lat],
                        [lon + size, lat],
                        [lon + size, lat + size],
                        [lon, lat + size],
                        [lon, lat],
                    ]
                ],
            },
            "min_lon": lon,
            "min_lat": lat,
            "max_lon": lon + size,
            "max_lat": lat + size,
            "label_lon": lon + size / 2,
            "label_lat": lat + size / 2,
        }

    district = Region.objects.create(name="基准区", level=Level.DISTRICT, **box(DISTRICT, 0, 1.0))
    parents: dict[str, Region] = {DISTRICT: district}
    grids = grid_codes(rows)
    for level, size in ((Level.STREET, 9), (Level.COMMUNITY, 12)):
        codes = sorted({g[:size] for g in grids})
        made = Region.objects.bulk_create(
            Region(
                name=f"{level}{code[-3:]}",
                level=level,
                parent=parents[code[: size - 3]],
                **box(code, k, 0.01),
            )
            for k, code in enumerate(codes)
        )
        parents.update({r.code: r for r in made})
    Region.objects.bulk_create(
        Region(
            name=f"网格{code[-6:]}",
            level=Level.GRID,
            parent=parents[code[:12]],
            target_households=HOUSEHOLDS_PER_GRID,
            grid_type="base",
            **box(code, k, 0.005),
        )
        for k, code in enumerate(grids)
    )
    user = user_create(username="bench-importer", password=None)
    role_assign(user=user, role="administrator", region=district)
    return user


def clear_registry() -> None:
    """Empty the registry's tables again after the baseline (not timed)."""
    from django.db import connection, transaction

    from gridgov.registry.models import Building, Household, Person, PersonTag, Room

    tables = [m._meta.db_table for m in (PersonTag, Person, Household, Room, Building)]
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # a fresh heap and fresh indexes, as before
            cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")
        else:
            for table in tables:
                cursor.execute(f"DELETE FROM {table}")  # noqa: S608


def verify(rows: int) -> dict[str, int]:
    from gridgov.registry.models import Building, Household, Person, PersonTag, Room

    people = Person.objects.count()
    assert people == rows, f"{people} people stored, {rows} expected"
    assert not Person.objects.filter(id_number_hash="").exists()
    return {
        "people": people,
        "households": Household.objects.count(),
        "rooms": Room.objects.count(),
        "buildings": Building.objects.count(),
        "tags": PersonTag.objects.count(),
    }


def baseline(path: Path) -> dict[str, int]:
    """The same rows bulk-inserted without validation, encryption or hashing."""
    import uuid

    from django.db import connection, transaction
    from django.utils import timezone

    from gridgov.geo.models import Region
    from gridgov.registry.ledger.columns import suggest_mapping
    from gridgov.registry.ledger.importer import bulk_session
    from gridgov.registry.ledger.readers import open_ledger
    from gridgov.registry.models import Building, Household, Person, Room

    postgres = connection.vendor == "postgresql"
    now = timezone.now()
    stamp = now if postgres else connection.ops.adapt_datetimefield_value(now)

    def new_uuid() -> Any:
        value = uuid.uuid4()
        return value if postgres else value.hex

    grids = {
        code: (pk, lon, lat)
        for pk, code, lon, lat in Region.objects.filter(level="grid").values_list(
            "pk", "code", "label_lon", "label_lat"
        )
    }

    def writer(model: Any, names: list[str]) -> Any:
        fields = {f.attname: f for f in model._meta.concrete_fields}
        quote = connection.ops.quote_name
        columns = ", ".join(quote(fields[n].column) for n in names)
        table = quote(model._meta.db_table)

        def write(rows: list[tuple[Any, ...]]) -> None:
            if not rows:
                return
            with connection.cursor() as cursor:
                if postgres:
                    with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
                else:
                    marks = ", ".join(["%s"] * len(names))
                    cursor.executemany(
                        f"INSERT INTO {table} ({columns}) VALUES ({marks})",  # noqa: S608
                        rows,
                    )

        return write

    common = ["id", "created_at", "updated_at", "uuid", "region_code", "version"]
    closed = ["closed_reason", "closed_note"]
    write_building = writer(
        Building,
        [
            *common,
            *closed,
            "estate",
            "number",
            "address",
            "address_key",
            "kind",
            "households",
            "lon",
            "lat",
            "community_code",
            "grid_id",
        ],
    )
    write_room = writer(Room, [*common, *closed, "building_id", "unit", "number", "use"])
    write_household = writer(Household, [*common, *closed, "room_id", "number"])
    person_names = [
        *common,
        *closed,
        "name",
        "sex",
        "birth_date",
        "id_number",
        "id_number_hash",
        "id_number_mask",
        "phone",
        "phone_hash",
        "phone_mask",
        "ethnicity",
        "person_type",
        "household_id",
        "relation",
        "verification",
    ]
    write_person = writer(Person, person_names)
    buildings: dict[tuple[str, str, str], int] = {}
    rooms: dict[tuple[int, str, str], int] = {}
    households: dict[int, int] = {}
    batch: dict[str, list[tuple[Any, ...]]] = {"b": [], "r": [], "h": [], "p": []}
    ids = {"b": 0, "r": 0, "h": 0, "p": 0}

    def flush() -> None:
        write_building(batch["b"])
        write_room(batch["r"])
        write_household(batch["h"])
        write_person(batch["p"])
        for key in batch:
            batch[key] = []

    with transaction.atomic(), bulk_session(), open_ledger(path) as reader:
        mapping = suggest_mapping(reader.headers)
        col = {field: i for i, (_h, field) in enumerate(mapping.items()) if field}
        for _number, v in reader.rows():
            grid = v[col["grid_code"]]
            key = (grid, v[col["estate"]], v[col["building"]])
            building = buildings.get(key)
            if building is None:
                ids["b"] += 1
                building = buildings[key] = ids["b"]
                grid_pk, lon, lat = grids[grid]
                address = key[1] + key[2]
                batch["b"].append(
                    (
                        *(building, stamp, stamp, new_uuid(), grid, 1, "", ""),
                        *(key[1], key[2], address, address, "residential", 0, lon, lat),
                        *(grid[:12], grid_pk),
                    )
                )
            room_key = (building, v[col["unit"]], v[col["room"]])
            room = rooms.get(room_key)
            if room is None:
                ids["r"] += 1
                room = rooms[room_key] = ids["r"]
                batch["r"].append(
                    (
                        room,
                        stamp,
                        stamp,
                        new_uuid(),
                        grid,
                        1,
                        "",
                        "",
                        building,
                        *room_key[1:],
                        "rented",
                    )
                )
            household = households.get(room)
            if household is None:
                ids["h"] += 1
                household = households[room] = ids["h"]
                batch["h"].append((household, stamp, stamp, new_uuid(), grid, 1, "", "", room, ""))
            ids["p"] += 1
            batch["p"].append(
                (
                    *(ids["p"], stamp, stamp, new_uuid(), grid, 1, "", ""),
                    *(v[col["name"]], "male" if v[col["sex"]] == "男" else "female"),
                    *(v[col["birth_date"]], v[col["id_number"]], "", "", v[col["phone"]], ""),
                    *("", v[col["ethnicity"]], "registered", household, "", "unverified"),
                )
            )
            if len(batch["p"]) >= BATCH:
                flush()
        flush()
    return {"buildings": ids["b"], "rooms": ids["r"], "households": ids["h"]}


def print_table(f: dict[str, Any]) -> None:
    print(f"  {'':10} {'seconds':>9} {'CPU s':>7} {'rows/s':>10} {'peak MB':>9}")
    for name in ("baseline", "check", "commit"):
        r = f[name]
        print(
            f"  {name:10} {r['s']:9.1f} {r['cpu_s']:7.1f} {r['rows_per_s']:10,.0f} "
            f"{r['peak_mb']:9.0f}"
        )
    s = f["stored"]
    print(
        f"  stored: {s['people']:,} people, {s['households']:,} households, {s['rooms']:,} "
        f"rooms, {s['buildings']:,} buildings, {s['tags']:,} tags"
    )
    print(
        f"  commit/baseline throughput ratio {f['ratio']:.2f} (target >= {TARGET_RATIO}); "
        f"commit {f['commit']['s']:.1f} s (target <= {TARGET_COMMIT_S:.0f} s at 1,000,000 rows)"
    )


if __name__ == "__main__":
    sys.exit(main())
