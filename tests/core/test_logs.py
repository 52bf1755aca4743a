"""Structured logs: JSON lines with the request's id, the access log, no personal data."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from gridgov.core.jobs import Job, run_due_jobs
from gridgov.core.logs import (
    ContextFilter,
    JsonFormatter,
    PersonalDataFilter,
    log_context,
    mask_personal_numbers,
    sane_request_id,
)
from tests.world import World

ID_NUMBER = "32011319900101123X"
MOBILE = "13812345678"


@pytest.fixture
def console() -> Iterator[io.StringIO]:
    """What the configured console handler (settings.LOGGING) writes, in JSON, at DEBUG."""
    handler = next(h for h in logging.getLogger().handlers if h.name == "console")
    stream = io.StringIO()
    old_stream, old_formatter = handler.setStream(stream), handler.formatter
    handler.setFormatter(JsonFormatter())
    loggers = [logging.getLogger(), logging.getLogger("gridgov.access")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
        handler.setFormatter(old_formatter)
        handler.setStream(old_stream)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def record(message: str, *args: Any, **extra: Any) -> logging.LogRecord:
    rec = logging.LogRecord("gridgov.test", logging.INFO, __file__, 1, message, args, None)
    rec.__dict__.update(extra)
    return rec


def test_a_json_line_has_time_level_logger_message_and_the_request_id() -> None:
    rec = record("case %s dispatched", "320113-20261124-00001")
    with log_context(request_id="abc123"):
        ContextFilter().filter(rec)
    entry = json.loads(JsonFormatter().format(rec))

    assert entry["message"] == "case 320113-20261124-00001 dispatched"
    assert entry["level"] == "INFO" and entry["logger"] == "gridgov.test"
    assert entry["request_id"] == "abc123"
    assert entry["time"].endswith("Z") and "T" in entry["time"]


def test_id_numbers_and_mobile_numbers_in_a_message_and_its_arguments_are_masked() -> None:
    rec = record("person %s called from %s", ID_NUMBER, f"+86 {MOBILE[:3]}-{MOBILE[3:7]}-7777")
    rec.path = f"/registry/search/{MOBILE}"
    PersonalDataFilter().filter(rec)
    text = JsonFormatter().format(rec)

    assert ID_NUMBER not in text and MOBILE not in text and "1234-7777" not in text
    assert "3201**********123X" in text and "138****7777" in text
    assert json.loads(text)["path"] == "/registry/search/138****5678"


def test_numbers_that_are_not_personal_are_left_alone() -> None:
    text = "grid 320113003001001 case 320113-20261124-00042 took 1732412345678 µs, id 42"
    assert mask_personal_numbers(text) == text


def test_a_personal_number_in_an_exception_is_masked(console: io.StringIO) -> None:
    try:
        raise ValueError(f"no such person {ID_NUMBER}")
    except ValueError:
        logging.getLogger("gridgov.test").exception("lookup failed for %s", MOBILE)

    written = console.getvalue()
    assert ID_NUMBER not in written and MOBILE not in written
    (entry,) = lines(console)
    assert entry["message"] == "lookup failed for 138****5678"
    assert "no such person 3201**********123X" in entry["exc"]


def test_the_configured_console_masks_what_any_logger_writes(console: io.StringIO) -> None:
    logging.getLogger("some.library").warning("sms to %s for %s", MOBILE, ID_NUMBER)

    (entry,) = lines(console)
    assert entry["message"] == "sms to 138****5678 for 3201**********123X"


def test_every_request_gets_an_access_line_with_its_id_route_status_and_user(
    world: World, console: io.StringIO
) -> None:
    client = Client()
    client.force_login(world.dispatcher)

    response = client.get("/cases/", headers={"Accept-Language": "en"})

    rid = response["X-Request-ID"]
    access = [e for e in lines(console) if e["logger"] == "gridgov.access"]
    assert len(access) == 1
    (entry,) = access
    assert entry["request_id"] == rid and len(rid) == 32
    assert (entry["method"], entry["path"], entry["status"]) == ("GET", "/cases/", 200)
    assert entry["route"] == "cases:list"
    assert entry["user_id"] == world.dispatcher.pk
    assert isinstance(entry["duration_ms"], float)
    assert world.dispatcher.username not in json.dumps(entry)


def test_a_phone_number_in_the_query_string_never_reaches_the_log(
    world: World, console: io.StringIO
) -> None:
    client = Client()
    client.force_login(world.grid_worker_a)

    client.get(f"/registry/search/?q={MOBILE}")
    client.get(f"/api/v1/registry/people/search?q={MOBILE}&id_number={ID_NUMBER}")
    client.get(f"/no/such/page/{MOBILE}?phone={MOBILE}")

    written = console.getvalue()
    assert written, "the requests were logged"
    assert MOBILE not in written and ID_NUMBER not in written
    paths = [e["path"] for e in lines(console) if e["logger"] == "gridgov.access"]
    assert "/registry/search/" in paths and all("?" not in p for p in paths)


def test_the_proxys_request_id_is_kept_when_it_is_a_sane_token(db: None) -> None:
    response = Client().get("/healthz", headers={"X-Request-ID": "edge-7f3a.42_b"})
    assert response["X-Request-ID"] == "edge-7f3a.42_b"


@pytest.mark.parametrize(
    "sent",
    ["x" * 65, "has space", "semi;colon", "<script>", "new\nline", "ünïcode", ""],
)
def test_a_request_id_that_is_not_a_short_token_is_replaced(db: None, sent: str) -> None:
    assert sane_request_id(sent) is None
    response = Client().get("/healthz", HTTP_X_REQUEST_ID=sent)
    assert response["X-Request-ID"] != sent and len(response["X-Request-ID"]) == 32


def test_two_requests_get_two_ids(db: None) -> None:
    client = Client()
    assert client.get("/healthz")["X-Request-ID"] != client.get("/healthz")["X-Request-ID"]


@pytest.mark.django_db
def test_a_background_job_logs_with_its_own_job_id(
    console: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gridgov.core import jobs

    job_log = logging.getLogger("gridgov.jobs")  # INFO with GRIDGOV_LOG_FORMAT=json
    monkeypatch.setattr(job_log, "level", logging.INFO)

    def noisy() -> str:
        logging.getLogger("gridgov.test").info("sweeping")
        return "2 cases marked"

    job = Job("test.noisy", every=timedelta(hours=1), run=noisy)
    monkeypatch.setattr(jobs, "registered_jobs", lambda: [job])

    assert run_due_jobs(owner="w") == [("test.noisy", "2 cases marked")]

    entries = [e for e in lines(console) if e.get("job") == "test.noisy"]
    assert [e["message"] for e in entries] == [
        "sweeping",
        "job test.noisy finished: 2 cases marked",
    ]
    assert entries[0]["request_id"] == entries[1]["request_id"]
    assert entries[0]["request_id"].startswith("job-")
    assert entries[1]["outcome"] == "2 cases marked"
