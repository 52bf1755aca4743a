"""What the fuzz sent and what came back, for the summary at the end of the run (conftest.py)."""

from __future__ import annotations

import os
from collections import Counter, defaultdict

#: (persona, "METHOD /path") -> status code -> responses
ANSWERS: defaultdict[tuple[str, str], Counter[int]] = defaultdict(Counter)
#: ("METHOD /path", status) -> error messages seen (with GRIDGOV_FUZZ_REPORT=1)
MESSAGES: defaultdict[tuple[str, int], Counter[str]] = defaultdict(Counter)


def record(persona: str, operation: str, status: int, message: str = "") -> None:
    ANSWERS[(persona, operation)][status] += 1
    if message:
        MESSAGES[(operation, status)][f"{persona}: {message[:160]}"] += 1


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def summary() -> list[str]:
    """A few lines for every run; with GRIDGOV_FUZZ_REPORT=1 (``make fuzz``) also the operations
    that no persona got a 2xx answer from, and each persona's share of 2xx answers."""
    if not ANSWERS:
        return []
    total: Counter[int] = Counter()
    for statuses in ANSWERS.values():
        total.update(statuses)
    sent = sum(total.values())
    operations = {op for _persona, op in ANSWERS}
    personas = sorted({persona for persona, _op in ANSWERS})
    by_class: Counter[str] = Counter()
    for status, n in total.items():
        by_class[f"{status // 100}xx"] += n
    lines = [
        f"API fuzz: {sent} requests, {len(operations)} operations x {len(personas)} personas "
        f"({os.environ.get('GRIDGOV_FUZZ_EXAMPLES', 'default')} examples each)",
        "  answers: "
        + ", ".join(f"{cls} {n} ({_share(n, sent)})" for cls, n in sorted(by_class.items())),
        "  codes: " + ", ".join(f"{code}: {n}" for code, n in sorted(total.items())),
    ]
    if os.environ.get("GRIDGOV_FUZZ_REPORT") != "1":
        return lines
    for persona in personas:
        mine = {op: c for (p, op), c in ANSWERS.items() if p == persona}
        reached = sum(1 for c in mine.values() if any(200 <= s < 300 for s in c))
        answered = sum(sum(c.values()) for c in mine.values())
        ok = sum(n for c in mine.values() for s, n in c.items() if 200 <= s < 300)
        lines.append(
            f"  {persona:<16} {reached:>3}/{len(mine)} operations answered 2xx at least once, "
            f"{_share(ok, answered)} of {answered} requests 2xx"
        )
    never = sorted(
        op
        for op in operations
        if not any(200 <= s < 300 for (_p, o), c in ANSWERS.items() if o == op for s in c)
    )
    if never:
        lines.append(f"  no 2xx from any persona ({len(never)}):")
        for op in never:
            codes: Counter[int] = Counter()
            for (_p, o), c in ANSWERS.items():
                if o == op:
                    codes.update(c)
            lines.append(f"    {op}: " + ", ".join(f"{s} x{n}" for s, n in sorted(codes.items())))
            for status in sorted(codes):
                for message, _n in MESSAGES[(op, status)].most_common(2):
                    lines.append(f"      {status} {message}")
    return lines
