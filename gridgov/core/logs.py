"""Structured logs: a request or job id on every line, JSON lines, personal numbers masked.

``GRIDGOV_LOG_FORMAT=json`` writes one JSON object per line (see ``JsonFormatter``); ``plain``
(the default, for ``make run``) the usual ``time level logger message``. Two filters sit on the
console handler (``settings.LOGGING``):

- ``ContextFilter`` stamps each record with the id of the request (``ObservabilityMiddleware``
  in ``gridgov.core.observability``) or background job (``gridgov.core.jobs``) it belongs to,
  from a context variable, so a line logged deep in an action carries it too;
- ``PersonalDataFilter`` is the last line of defence for personal data: whatever looks like an
  18-character id number or an 11-digit mobile number in a message, its arguments, an exception
  or a logged path is masked as on screen (3201**********123X, 138****5678). Code must not log
  personal data in the first place; this catches what slips through.

This module is imported by the logging configuration (and by gunicorn's master process through
``gridgov.core.gunicorn_conf``) before Django is set up: it must not import models or settings.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from gridgov.core.masking import mask_id_number, mask_phone

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "gridgov_request_id", default=None
)
_job: contextvars.ContextVar[str | None] = contextvars.ContextVar("gridgov_job", default=None)

#: A request id taken from the proxy's X-Request-ID: a short token, nothing else.
_SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

#: 17 digits and a digit or X (GB 11643), not part of a longer run of digits.
_ID_NUMBER = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")
#: A mainland mobile number, optionally after +86 / 86, written whole or as 3-4-4 with spaces
#: or hyphens, not part of a longer run of digits.
_MOBILE = re.compile(r"(?<![0-9])(?:\+?86[ -]?)?1[3-9][0-9](?:[ -]?[0-9]{4}){2}(?![0-9])")

#: Record attributes the JSON formatter writes when a record carries them (``extra=``).
_EXTRA_FIELDS = ("user_id", "method", "path", "route", "status", "duration_ms", "outcome")


def sane_request_id(value: str | None) -> str | None:
    """The proxy's request id when it is a short token ([A-Za-z0-9._-], at most 64), else None."""
    if value and _SANE_ID.fullmatch(value):
        return value
    return None


def new_id() -> str:
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    return _request_id.get()


@contextlib.contextmanager
def log_context(*, request_id: str | None = None, job: str | None = None) -> Iterator[str]:
    """Tag every line logged inside the block with ``request_id`` (a new one if not given) and,
    for a background job, its name. Yields the id."""
    rid = request_id or new_id()
    rid_token = _request_id.set(rid)
    job_token = _job.set(job)
    try:
        yield rid
    finally:
        _job.reset(job_token)
        _request_id.reset(rid_token)


def mask_personal_numbers(text: str) -> str:
    """``text`` with id numbers and mobile numbers masked as on screen."""
    if not text:
        return text
    text = _ID_NUMBER.sub(lambda m: mask_id_number(m.group(0)), text)
    return _MOBILE.sub(lambda m: mask_phone(re.sub(r"[^0-9]", "", m.group(0))[-11:]), text)


class ContextFilter(logging.Filter):
    """Stamp records with the current request or job id (``request_id``) and job name."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = _request_id.get()
        if getattr(record, "job", None) is None:
            record.job = _job.get()
        return True


class PersonalDataFilter(logging.Filter):
    """Mask id numbers and mobile numbers in the message, its arguments, the exception text and
    a logged path (a last line of defence; see the module's docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let logging report it as usual
            return True
        record.msg, record.args = mask_personal_numbers(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_personal_numbers(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_personal_numbers(record.stack_info)
        path = getattr(record, "path", None)
        if isinstance(path, str):
            record.path = mask_personal_numbers(path)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message, request_id, job,
    and, where the record has them, user_id, method, path, route, status, duration_ms, outcome;
    an exception's traceback as ``exc``."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, tz=UTC)
        entry: dict[str, Any] = {
            "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or _request_id.get(),
        }
        job = getattr(record, "job", None) or _job.get()
        if job:
            entry["job"] = job
        for field in _EXTRA_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)
