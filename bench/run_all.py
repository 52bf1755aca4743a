"""Run every benchmark (``make bench``); ``--quick`` runs the CI-sized forms.

Each benchmark prints its figures beside a baseline measured in the same run; the latest
full-run figures are kept in bench/RESULTS.md. ``bench_cases.py`` and ``bench_intake.py`` run on
SQLite, and on PostgreSQL too when ``DATABASE_URL`` points at one (each in a database of its
own); the arguments given here are passed to every benchmark.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
BENCHMARKS = [
    "bench_locate.py",
    "bench_cases.py",
    "bench_intake.py",
    "bench_import.py",
    "bench_registry_search.py",
]


def main() -> int:
    extra = sys.argv[1:]
    failed = []
    for name in BENCHMARKS:
        print(f"\n##### {name} {' '.join(extra)}", flush=True)
        code = subprocess.call([sys.executable, str(BENCH / name), *extra])
        if code:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
