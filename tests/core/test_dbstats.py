"""Planner statistics: gathered on SQLite, and on PostgreSQL right after a bulk load."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from gridgov.core.builtin_jobs import analyze_database
from gridgov.core.dbstats import database_analyze

pytestmark = pytest.mark.django_db


def _some_users(count: int = 30) -> None:
    get_user_model().objects.bulk_create(
        get_user_model()(username=f"stats-{n}", display_name=f"统计{n}") for n in range(count)
    )


def test_on_sqlite_the_job_gathers_statistics_for_the_indexes() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only: PostgreSQL keeps its own statistics")
    _some_users()

    message = analyze_database()

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'accounts_user'")
        (rows,) = cursor.fetchone()
    assert message == "sqlite: statistics refreshed"
    assert rows >= 1


@pytest.mark.postgres
def test_on_postgresql_the_job_leaves_statistics_to_the_server_but_a_bulk_load_refreshes_them() -> (
    None
):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    _some_users()

    def planned_and_real_rows() -> tuple[int, int]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint, (SELECT count(*) FROM accounts_user) FROM pg_class "
                "WHERE oid = 'accounts_user'::regclass"
            )
            planned, real = cursor.fetchone()
        return int(planned), int(real)

    # the users of this test's transaction are new to the planner, and the job does not tell it
    planned, real = planned_and_real_rows()
    assert planned != real
    assert analyze_database() == "postgresql: statistics are kept by the server"
    assert planned_and_real_rows() == (planned, real)

    assert database_analyze(bulk_load=True) == "postgresql: statistics refreshed after a bulk load"
    assert planned_and_real_rows() == (real, real)
