"""Planner statistics. SQLite never gathers them by itself: without ``ANALYZE`` it cannot tell a
selective index from a useless one, and scoped case lists choose plans that sort whole streets.
"""

from __future__ import annotations

from django.db import connection

#: Rows SQLite samples per index (``PRAGMA analysis_limit``): approximate statistics in well
#: under a second even with millions of cases.
ANALYSIS_LIMIT = 2000


def database_analyze(*, bulk_load: bool = False) -> str:
    """Gather planner statistics on SQLite; on other databases leave it to the server, except
    right after a bulk load (``bulk_load``): PostgreSQL's autovacuum notices the new rows only
    on its next round, a minute or more later, and until then plans by the old, often
    near-empty, tables (the demo history's first queries took 100 times longer)."""
    if connection.vendor == "postgresql" and bulk_load:
        # gridgov's own tables: a plain ANALYZE would also try the server's catalogues, which
        # the application's role may not own (a warning each in the server's log)
        tables = connection.introspection.django_table_names(only_existing=True)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE " + ", ".join(connection.ops.quote_name(t) for t in tables))
        return "postgresql: statistics refreshed after a bulk load"
    if connection.vendor != "sqlite":
        return f"{connection.vendor}: statistics are kept by the server"
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA analysis_limit={ANALYSIS_LIMIT}")
        cursor.execute("ANALYZE")
    return "sqlite: statistics refreshed"
