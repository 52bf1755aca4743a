"""Planner statistics. SQLite never gathers them by itself: without ``ANALYZE`` it cannot tell a
selective index from a useless one, and scoped case lists choose plans that sort whole streets.
"""

from __future__ import annotations

from django.db import connection

#: Rows SQLite samples per index (``PRAGMA analysis_limit``): approximate statistics in well
#: under a second even with millions of cases.
ANALYSIS_LIMIT = 2000


def database_analyze() -> str:
    """Gather planner statistics on SQLite; on other databases leave it to the server."""
    if connection.vendor != "sqlite":
        return f"{connection.vendor}: statistics are kept by the server"
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA analysis_limit={ANALYSIS_LIMIT}")
        cursor.execute("ANALYZE")
    return "sqlite: statistics refreshed"
