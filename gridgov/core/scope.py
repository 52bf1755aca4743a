"""The scope a user works in: a set of region subtrees (code prefixes), or everything.

Every selector of scoped data starts from a ``Scope``; deny by default (an empty scope sees
nothing).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Q


def minimal_prefixes(codes: Iterable[str]) -> tuple[str, ...]:
    """Drop codes that lie inside another code's subtree; sorted and unique."""
    result: list[str] = []
    for code in sorted(set(codes), key=lambda c: (len(c), c)):
        if not any(code.startswith(p) for p in result):
            result.append(code)
    return tuple(sorted(result))


#: The longest region code (a grid's): a prefix this long names exactly one code.
FULL_CODE_LENGTH = 15


def prefix_q(field: str, prefix: str) -> Q:
    """Rows whose ``field`` starts with ``prefix``, written so any database can use an index.

    ``LIKE 'p%'`` alone cannot use a B-tree index on SQLite (its LIKE is case-insensitive), so
    the filter adds the equivalent range ``p <= field < p'`` (``p'``: the last character of
    ``p`` incremented), and a grid's code is an equality. Region codes are digits, which
    sort alike under every collation; the ``startswith`` keeps the filter exact whatever the
    collation. PostgreSQL indexes the LIKE itself (``varchar_pattern_ops``)."""
    if not prefix:
        return Q()
    if len(prefix) >= FULL_CODE_LENGTH:  # a grid: its subtree is itself (indexes love "=")
        return Q(**{field: prefix})
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return Q(**{f"{field}__gte": prefix, f"{field}__lt": upper, f"{field}__startswith": prefix})


@dataclass(frozen=True)
class Scope:
    everything: bool = False
    prefixes: tuple[str, ...] = ()

    @classmethod
    def nothing(cls) -> Scope:
        return cls()

    @classmethod
    def of(cls, codes: Iterable[str]) -> Scope:
        return cls(everything=False, prefixes=minimal_prefixes(codes))

    @property
    def is_empty(self) -> bool:
        return not self.everything and not self.prefixes

    def covers(self, code: str) -> bool:
        """True when ``code`` lies in one of the scope's subtrees."""
        return self.everything or any(code.startswith(p) for p in self.prefixes)

    def q(self, field: str = "code") -> Q:
        """A filter that keeps rows whose ``field`` (a region code) lies in scope."""
        if self.everything:
            return Q()
        if not self.prefixes:
            return Q(pk__in=[])
        query = Q()
        for prefix in self.prefixes:
            query |= prefix_q(field, prefix)
        return query

    def ancestor_codes(self) -> set[str]:
        """Codes of the regions above the scope's roots (shown for context, not content)."""
        from gridgov.geo.codes import ancestor_codes

        codes: set[str] = set()
        for prefix in self.prefixes:
            codes.update(ancestor_codes(prefix))
        return codes
