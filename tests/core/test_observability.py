"""Probes and metrics: /healthz is cheap, /readyz names what is not ready, /metrics counts what
operators watch (requests, open and overdue cases, worker lag) and only for operators."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from gridgov.cases.models import Case
from gridgov.core import gunicorn_conf, observability
from gridgov.core.jobs import HEARTBEAT, worker_heartbeat
from gridgov.core.models import JobLease
from tests.cases.factories import act, category, report
from tests.world import World

OUTSIDE = "203.0.113.7"


@pytest.fixture(autouse=True)
def _fresh_figures() -> Iterator[None]:
    """Every test reads the database afresh (the figures are cached for a few seconds)."""
    observability.snapshot_reset()
    observability.readiness_reset()
    yield
    observability.snapshot_reset()
    observability.readiness_reset()


@pytest.fixture
def media(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return Path(settings.MEDIA_ROOT)


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a metrics page, by name and labels (parsed by prometheus_client)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def scrape(client: Client | None = None, **extra: Any) -> dict[Any, float]:
    response = (client or Client()).get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return samples(response.content.decode())


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def alive(seconds_ago: float = 0) -> None:
    """A worker finished a pass ``seconds_ago``."""
    worker_heartbeat(owner="host:1", interval=30)
    JobLease.objects.filter(name=HEARTBEAT).update(
        last_finished_at=timezone.now() - timedelta(seconds=seconds_ago)
    )


# --- /healthz -------------------------------------------------------------------------------------


def test_healthz_answers_without_touching_the_database(
    db: None, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(0):
        response = Client().get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


def test_the_probes_answer_whatever_host_name_the_caller_used(db: None, media: Path) -> None:
    alive()
    client = Client(HTTP_HOST="10.0.3.17:8000")  # not in GRIDGOV_ALLOWED_HOSTS

    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/metrics").status_code == 200
    assert client.get("/accounts/login/").status_code == 400  # everything else still checks


# --- /readyz --------------------------------------------------------------------------------------


def test_readyz_is_ready_when_database_migrations_worker_and_media_are(
    db: None, media: Path
) -> None:
    alive(seconds_ago=20)

    response = Client().get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"] == {"database": "ok", "migrations": "ok", "worker": "ok", "media": "ok"}
    assert re.fullmatch(r"last pass 2\d s ago", body["details"]["worker"])
    assert body["details"]["migrations"] == "all applied"
    assert not list(media.iterdir()), "the media probe leaves no file behind"


def test_readyz_names_a_worker_that_has_not_run_for_too_long(
    db: None, media: Path, settings: Any
) -> None:
    settings.GRIDGOV_READY_WORKER_SECONDS = 300
    alive(seconds_ago=600)

    response = Client().get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready" and body["failed"] == ["worker"]
    assert body["checks"]["worker"] == "failed" and body["checks"]["database"] == "ok"
    assert re.fullmatch(r"last pass 6\d\d s ago \(limit 300 s\)", body["details"]["worker"])


def test_readyz_is_not_ready_before_any_worker_has_run(db: None, media: Path) -> None:
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["details"]["worker"] == "no worker has run yet"


def test_readyz_leaves_the_worker_out_when_told_to(db: None, media: Path, settings: Any) -> None:
    settings.GRIDGOV_READY_WORKER_SECONDS = 0
    assert Client().get("/readyz").status_code == 200


def test_readyz_names_migrations_that_are_not_applied(db: None, media: Path) -> None:
    alive()
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM django_migrations WHERE app = 'cases' AND name = "
            "(SELECT max(name) FROM django_migrations WHERE app = 'cases')"
        )

    response = Client().get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["migrations"]
    assert body["details"]["migrations"].startswith("1 not applied: cases.")


def test_readyz_names_a_media_folder_that_cannot_be_written(
    db: None, settings: Any, tmp_path: Path
) -> None:
    alive()
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the media folder should be")
    settings.MEDIA_ROOT = blocker / "media"

    response = Client().get("/readyz")

    assert response.status_code == 503
    assert response.json()["failed"] == ["media"]


def test_readyz_names_a_database_that_does_not_answer(
    db: None, media: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import OperationalError

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("connection refused")

    with monkeypatch.context() as patched:
        patched.setattr(connection, "cursor", refused)
        response = Client().get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["database", "migrations", "worker"]
    assert body["details"]["database"] == "OperationalError"
    assert body["details"]["worker"] == "not checked: the database is unavailable"


def test_readyz_gives_the_details_only_to_operators(db: None, media: Path, settings: Any) -> None:
    settings.GRIDGOV_METRICS_TOKEN = "s3cret-token-for-prometheus"
    from_outside = Client(REMOTE_ADDR=OUTSIDE)

    plain = from_outside.get("/readyz").json()
    with_token = from_outside.get(
        "/readyz", headers={"Authorization": "Bearer s3cret-token-for-prometheus"}
    ).json()

    assert set(plain) == {"status", "checks", "failed"}  # no worker yet: not ready
    assert plain["checks"]["worker"] == "failed"
    assert "details" in with_token


# --- /metrics -------------------------------------------------------------------------------------


def test_the_case_gauges_count_open_overdue_and_due_soon_cases_by_state(world: World) -> None:
    category()
    now = timezone.now()
    overdue = report(world.grid_worker_a)
    due_soon = report(world.grid_worker_a)
    accepted = act(report(world.resident), world.intake_operator, "accept")
    act(report(world.resident), world.intake_operator, "decline", reason="不属实")
    Case.objects.filter(pk=overdue.pk).update(
        due_soon_at=now - timedelta(hours=2), due_at=now - timedelta(hours=1)
    )
    Case.objects.filter(pk=due_soon.pk).update(
        due_soon_at=now - timedelta(minutes=1), due_at=now + timedelta(hours=1)
    )
    Case.objects.filter(pk=accepted.pk).update(
        due_soon_at=now + timedelta(hours=1), due_at=now + timedelta(hours=2)
    )

    found = scrape()

    assert value(found, "gridgov_database_up") == 1
    assert value(found, "gridgov_cases_open", state="reported") == 2
    assert value(found, "gridgov_cases_open", state="accepted") == 1
    assert value(found, "gridgov_cases_overdue", state="reported") == 1
    assert value(found, "gridgov_cases_due_soon", state="reported") == 1
    assert value(found, "gridgov_cases_overdue", state="accepted") == 0
    assert ("gridgov_cases_open", frozenset({("state", "declined")})) not in found
    assert ("gridgov_cases_open", frozenset({("state", "dispatched")})) in found  # zero, shown
    assert sum(v for (name, _l), v in found.items() if name == "gridgov_cases_open") == 3


def test_the_worker_gauges_show_its_last_pass_and_the_longest_waiting_job(db: None) -> None:
    before = scrape()
    assert value(before, "gridgov_worker_last_pass_age_seconds") == float("inf")
    observability.snapshot_reset()
    alive(seconds_ago=42)
    JobLease.objects.create(name="cases.sweep", next_run_at=timezone.now() - timedelta(minutes=2))
    JobLease.objects.create(name="later", next_run_at=timezone.now() + timedelta(minutes=5))

    found = scrape()

    assert 42 <= value(found, "gridgov_worker_last_pass_age_seconds") < 100
    assert 120 <= value(found, "gridgov_worker_oldest_due_job_age_seconds") < 200


def test_a_request_shows_up_in_the_latency_histogram_under_its_route_name(db: None) -> None:
    labels = {"route": "accounts:login", "method": "GET", "status": "2xx"}
    before = scrape()

    assert Client().get("/accounts/login/?next=/cases/13812345678/").status_code == 200
    after = scrape()

    name = "gridgov_http_request_duration_seconds"
    assert value(after, f"{name}_count", **labels) == value(before, f"{name}_count", **labels) + 1
    assert value(after, f"{name}_sum", **labels) > value(before, f"{name}_sum", **labels)
    routes = {dict(labels_)["route"] for (n, labels_), _v in after.items() if n == f"{name}_count"}
    assert not any("/" in r or "1381234" in r for r in routes), routes


def test_an_unknown_path_is_counted_as_unmatched_not_by_its_path(db: None) -> None:
    Client().get("/no/such/page/abc")
    found = scrape()
    routes = {
        dict(labels)["route"]
        for (name, labels), _v in found.items()
        if name == "gridgov_http_request_duration_seconds_count"
    }
    assert "unmatched" in routes and not any("abc" in r for r in routes)


@pytest.mark.parametrize(
    "headers",
    [
        {"REMOTE_ADDR": OUTSIDE},
        {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": OUTSIDE},  # through the proxy
        {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_REAL_IP": OUTSIDE},
        {"REMOTE_ADDR": OUTSIDE, "HTTP_AUTHORIZATION": "Bearer wrong-token"},
    ],
)
def test_metrics_are_refused_to_everyone_else(db: None, settings: Any, headers: Any) -> None:
    settings.GRIDGOV_METRICS_TOKEN = "s3cret-token-for-prometheus"
    response = Client().get("/metrics", **headers)
    assert response.status_code == 403
    assert b"gridgov_" not in response.content


def test_metrics_are_served_with_the_token_from_anywhere(db: None, settings: Any) -> None:
    settings.GRIDGOV_METRICS_TOKEN = "s3cret-token-for-prometheus"
    found = scrape(
        REMOTE_ADDR=OUTSIDE,
        HTTP_X_FORWARDED_FOR=OUTSIDE,
        HTTP_AUTHORIZATION="Bearer s3cret-token-for-prometheus",
    )
    assert value(found, "gridgov_database_up") == 1


def test_metrics_are_served_to_an_allowed_network(db: None, settings: Any) -> None:
    settings.GRIDGOV_METRICS_ALLOW = ["127.0.0.1", "10.8.0.0/16"]
    assert Client().get("/metrics", REMOTE_ADDR="10.8.3.4").status_code == 200
    assert Client().get("/metrics", REMOTE_ADDR="::ffff:10.8.3.4").status_code == 200
    assert Client().get("/metrics", REMOTE_ADDR="10.9.0.1").status_code == 403


def test_metrics_of_several_server_processes_are_added_up(
    db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "prometheus"
    folder.mkdir()
    (folder / "histogram_999999.db").write_bytes(b"")  # a stale file of an earlier run
    gunicorn_conf.clear_multiprocess_dir(folder)
    assert not list(folder.iterdir())
    observe = (
        "import django; django.setup(); "
        "from gridgov.core.observability import REQUEST_SECONDS; "
        "REQUEST_SECONDS.labels('cases:list', 'GET', '2xx').observe(0.2)"
    )
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
        "DJANGO_SETTINGS_MODULE": "gridgov.settings",
    }
    for _process in range(2):  # two gunicorn workers, one request each
        subprocess.run([sys.executable, "-c", observe], env=env, check=True, timeout=120)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))

    found = scrape()

    labels = {"route": "cases:list", "method": "GET", "status": "2xx"}
    assert value(found, "gridgov_http_request_duration_seconds_count", **labels) == 2
    assert value(found, "gridgov_database_up") == 1  # the database figures come along
