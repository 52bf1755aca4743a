"""Benchmark GridIndex (gridgov.geo.spatial) against a plain shapely STRtree.

    .venv/bin/python bench/bench_locate.py            # full: 2,000,000 points per case
    .venv/bin/python bench/bench_locate.py --quick    # CI-sized, well under 20 s

Cases: the demo district's grids (Nanjing Qixia as ``gridgov demo load`` cuts it, made in
memory) and a synthetic city of 50,000 grids (see bench/synthetic_city.py). For each it
measures the build time, bulk ``locate_many`` throughput, single ``locate`` latency, each
beside the STRtree baseline, and checks that every answer equals the baseline's (points
within 1e-9° of an edge may differ). It prints a table and, last, one JSON line. Django is
set up only to plan the demo grids (no database is touched).

To benchmark other polygons (the real demo grids, say), call ``run(polygons, points, label)``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from synthetic_city import make_city, random_points  # noqa: E402

from gridgov.geo.spatial import GridIndex  # noqa: E402

TARGET_POINTS_PER_S = 2_000_000
TARGET_SINGLE_US = 5.0
EDGE_TOLERANCE_DEG = 1e-9


def demo_grids() -> list[BaseGeometry]:
    """The demo district's grids, cut in memory exactly as ``gridgov demo load`` cuts them."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gridgov.settings")
    import django

    django.setup()
    from gridgov.core.demo import demo_plan, plan_grids

    return list(plan_grids(demo_plan()))


# ---------------------------------------------------------------------- the baseline


def baseline_locate_many(tree: shapely.STRtree, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Points-within-polygons with a plain STRtree: the lowest polygon index per point, or -1."""
    point_i, poly_i = tree.query(shapely.points(lon, lat), predicate="within")
    owner = np.full(len(lon), np.iinfo(np.int64).max)
    np.minimum.at(owner, point_i, poly_i)
    owner[owner == np.iinfo(np.int64).max] = -1
    return owner


def baseline_locate(tree: shapely.STRtree, lon: float, lat: float) -> int:
    found = tree.query(shapely.Point(lon, lat), predicate="within")
    return int(found.min()) if len(found) else -1


# ---------------------------------------------------------------------- timing helpers


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    """Best wall time of ``repeat`` runs, and the result of the last."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def latency(
    fn: Callable[[float, float], int], lon: list[float], lat: list[float]
) -> dict[str, float]:
    """Mean (from one tight loop) and p50/p99 (from per-call timings, timer cost removed), µs."""
    gc.disable()
    try:
        t = time.perf_counter()
        for x, y in zip(lon, lat, strict=True):
            fn(x, y)
        mean = (time.perf_counter() - t) / len(lon) * 1e6
        clock = time.perf_counter_ns
        empty = []
        for _ in range(2000):
            t0 = clock()
            empty.append(clock() - t0)
        timer_ns = float(np.median(empty))
        samples = np.empty(len(lon))
        for k, (x, y) in enumerate(zip(lon, lat, strict=True)):
            t0 = clock()
            fn(x, y)
            samples[k] = clock() - t0
    finally:
        gc.enable()
    samples = np.maximum(samples - timer_ns, 0.0) / 1000.0
    return {
        "mean_us": mean,
        "p50_us": float(np.percentile(samples, 50)),
        "p99_us": float(np.percentile(samples, 99)),
    }


def near_an_edge(polygons: Sequence[BaseGeometry], lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    tree = shapely.STRtree(shapely.boundary(np.asarray(polygons, dtype=object)))
    point_i, _ = tree.query(
        shapely.points(lon, lat), predicate="dwithin", distance=EDGE_TOLERANCE_DEG
    )
    mask = np.zeros(len(lon), dtype=bool)
    mask[point_i] = True
    return mask


# ---------------------------------------------------------------------- one case


def run(
    polygons: Sequence[BaseGeometry],
    points: tuple[np.ndarray, np.ndarray],
    label: str,
    *,
    n_single: int = 100_000,
    repeat: int = 3,
) -> dict[str, Any]:
    """Benchmark one set of polygons (lon/lat) on the given points; print and return figures."""
    lon = np.ascontiguousarray(points[0], dtype=np.float64)
    lat = np.ascontiguousarray(points[1], dtype=np.float64)
    n = len(lon)
    print(f"\n== {label}: {len(polygons):,} grids, {n:,} points", flush=True)

    build_s, index = best_of(1, lambda: GridIndex.build(polygons))
    tree_s, tree = best_of(1, lambda: shapely.STRtree(list(polygons)))
    stats = index.stats()

    bulk_s, found = best_of(repeat, lambda: index.locate_many(lon, lat))
    base_bulk_s, expected = best_of(
        max(1, repeat - 1), lambda: baseline_locate_many(tree, lon, lat)
    )

    differ = found != expected
    mismatches = int(differ.sum())
    unexplained = int((differ & ~near_an_edge(polygons, lon, lat)).sum()) if mismatches else 0

    k = min(n_single, n)
    xs, ys = lon[:k].tolist(), lat[:k].tolist()
    single = latency(index.locate, xs, ys)
    single_found = [index.locate(x, y) for x, y in zip(xs, ys, strict=True)]
    single_mismatches = int(np.count_nonzero(np.asarray(single_found) != found[:k]))
    kb = min(k, 20_000)
    base_single = latency(lambda x, y: baseline_locate(tree, x, y), xs[:kb], ys[:kb])

    result = {
        "label": label,
        "grids": len(polygons),
        "points": n,
        "inside_fraction": float(np.mean(found >= 0)),
        "build_s": build_s,
        "strtree_build_s": tree_s,
        "index": stats,
        "bulk_points_per_s": n / bulk_s,
        "baseline_bulk_points_per_s": n / base_bulk_s,
        "bulk_speedup": base_bulk_s / bulk_s,
        "single_calls": k,
        "single_mean_us": single["mean_us"],
        "single_p50_us": single["p50_us"],
        "single_p99_us": single["p99_us"],
        "baseline_single_calls": kb,
        "baseline_single_mean_us": base_single["mean_us"],
        "baseline_single_p99_us": base_single["p99_us"],
        "single_speedup": base_single["mean_us"] / single["mean_us"],
        "mismatches": mismatches,
        "mismatches_not_near_an_edge": unexplained,
        "locate_vs_locate_many_mismatches": single_mismatches,
    }
    _print_case(result)
    return result


def _print_case(r: dict[str, Any]) -> None:
    s = r["index"]
    bulk_ok = r["bulk_points_per_s"] >= TARGET_POINTS_PER_S
    single_ok = r["single_mean_us"] <= TARGET_SINGLE_US
    rows = [
        ("build", f"{r['build_s']:.2f} s", f"STRtree {r['strtree_build_s']:.2f} s", ""),
        (
            "index",
            f"{s['raster_cols']}x{s['raster_rows']} cells",
            f"{s['boundary_fraction']:.1%} boundary, {s['memory_mb']:.0f} MB",
            "",
        ),
        (
            "bulk locate_many",
            f"{r['bulk_points_per_s'] / 1e6:.2f} M points/s",
            f"{r['baseline_bulk_points_per_s'] / 1e6:.2f} M points/s",
            f"x{r['bulk_speedup']:.1f} {'ok' if bulk_ok else 'BELOW TARGET'}",
        ),
        (
            "single locate mean",
            f"{r['single_mean_us']:.2f} µs",
            f"{r['baseline_single_mean_us']:.2f} µs",
            f"x{r['single_speedup']:.1f} {'ok' if single_ok else 'ABOVE TARGET'}",
        ),
        (
            "single locate p99",
            f"{r['single_p99_us']:.2f} µs",
            f"{r['baseline_single_p99_us']:.2f} µs",
            "",
        ),
        (
            "answers = baseline",
            f"{r['points'] - r['mismatches']:,}/{r['points']:,}",
            f"{r['mismatches_not_near_an_edge']} off an edge",
            "ok" if r["mismatches_not_near_an_edge"] == 0 else "WRONG",
        ),
    ]
    print(f"{'':20} {'GridIndex':>24} {'STRtree baseline':>32}  ratio")
    for name, ours, theirs, note in rows:
        print(f"{name:20} {ours:>24} {theirs:>32}  {note}")


# ---------------------------------------------------------------------- main


def machine() -> dict[str, Any]:
    model = platform.processor() or ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next(
            (line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line),
            model,
        )
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "shapely": shapely.__version__,
        "cpu": model,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized run (well under 20 s)")
    parser.add_argument("--points", type=int, help="random points per case")
    parser.add_argument("--grids", type=int, help="grids in the large synthetic city")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    n_points = args.points or (200_000 if args.quick else 2_000_000)
    n_grids = args.grids or (10_000 if args.quick else 50_000)
    n_single = 20_000 if args.quick else 100_000
    repeat = 2 if args.quick else 3

    info = machine()
    print(
        f"GridIndex benchmark - Python {info['python']}, numpy {info['numpy']}, shapely "
        f"{info['shapely']}, {info['cores']} cores, {info['cpu']}"
    )
    results = []
    cases: list[tuple[str, int, Callable[[], Sequence[BaseGeometry]]]] = [
        ("demo district grids (Nanjing Qixia, gridgov demo load)", args.seed + 1, demo_grids),
        (f"synthetic city ({n_grids:,} grids)", args.seed, lambda: make_city(n_grids, args.seed)),
    ]
    for label, seed, make in cases:
        t = time.perf_counter()
        polygons = list(make())
        print(
            f"\nmade {label}: {len(polygons):,} grids in {time.perf_counter() - t:.1f} s",
            flush=True,
        )
        points = random_points(polygons, n_points, seed=seed + 100)
        results.append(run(polygons, points, label, n_single=n_single, repeat=repeat))

    ok = all(r["mismatches_not_near_an_edge"] == 0 for r in results)
    ok = ok and all(r["locate_vs_locate_many_mismatches"] == 0 for r in results)
    targets = all(
        r["bulk_points_per_s"] >= TARGET_POINTS_PER_S and r["single_mean_us"] <= TARGET_SINGLE_US
        for r in results
    )
    print(f"\ncorrect: {'yes' if ok else 'NO'}; targets met: {'yes' if targets else 'no'}")
    summary = {
        "benchmark": "gridgov.geo.spatial.GridIndex",
        "quick": args.quick,
        "machine": info,
        "correct": ok,
        "targets_met": targets,
        "cases": results,
    }
    print(json.dumps(summary, sort_keys=True))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
