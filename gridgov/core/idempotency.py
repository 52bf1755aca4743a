"""Idempotency keys for write endpoints: a retried request answers what the first one did.

Put ``@idempotent`` under the router decorator of every write operation::

    @router.post("/tokens", response={201: TokenCreated})
    @idempotent
    def token_create(request: HttpRequest, payload: TokenIn) -> Status[dict[str, Any]]: ...

A client sends ``Idempotency-Key: <1–200 printable characters>`` (a fresh UUID per logical
request) and the same key when it retries. For an authenticated user:

- the first request runs in one transaction that first inserts an ``IdempotencyRecord`` for
  (user, key), then runs the handler, then stores the response in that record; the handler's
  writes and the record commit together or not at all;
- a retry with the same method, path and body gets the stored status and body unchanged, with
  ``Idempotent-Replayed: true``, and writes nothing;
- the same key with a different request answers 422;
- a retry that arrives while the first request still runs waits on the unique constraint
  (user, key) and then replays (PostgreSQL waits up to ``IN_PROGRESS_WAIT_SECONDS``, then
  answers 409; SQLite serialises writers, so the retry starts once the first has finished);
- an error response (a ``DomainError``, invalid input) is not stored: its transaction is rolled
  back, so a corrected retry with the same key can succeed.

A handler that reads a lot before it writes can keep those reads out of the write
transaction (on SQLite every write transaction holds the database's single write lock):
``@idempotent(deferred=True)`` first looks for a finished request with the key (and replays
it), then runs the handler outside any transaction; the handler calls ``write_phase(request)``
when its reads are done, which opens the transaction and claims the key, exactly as above from
then on. A handler that never calls it writes nothing and stores nothing.

Anonymous requests ignore the header. Records live ``GRIDGOV_IDEMPOTENCY_HOURS`` (default 24);
the ``idempotency.prune`` job deletes expired ones.

Stored responses may hold secrets (a new API token) and personal data, so the record keeps only
a SHA-256 hash of the key, and the body is encrypted with AES-256-GCM (the ``cryptography``
package) under a key derived with HMAC-SHA256 from ``SECRET_KEY``, the user and the client's
key. Only a client that knows the key can have a response replayed; a copy of the database alone
reveals nothing. After ``SECRET_KEY`` changes, stored responses are read with the keys in
``SECRET_KEY_FALLBACKS``; one that cannot be read any more answers 409 instead of running the
request twice.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import inspect
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.http import HttpRequest, HttpResponse
from django.http.request import RawPostDataException
from django.http.response import HttpResponseBase
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja.decorators import decorate_view
from ninja.utils import contribute_operation_callback

from gridgov.core.errors import Conflict, DomainError
from gridgov.core.models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 200
#: How long a retry waits on PostgreSQL for a first request with the same key before 409.
IN_PROGRESS_WAIT_SECONDS = 5.0

_STATE_ATTR = "_gridgov_idempotency"
_NONCE_BYTES = 12  # the GCM standard

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class _State:
    """What the transaction guard and the handler wrapper share about one request."""

    key: str
    record: IdempotencyRecord | None = None
    secret: bytes = b""
    deferred: bool = False
    #: the open write transaction of a deferred handler, entered by ``write_phase``
    atomic: Any = None
    user: Any = None
    #: a deferred handler's answer, rendered before it writes (see ``write_phase``)
    response: HttpResponse | None = None


class _Replay(Exception):  # not an error: carries the stored answer of the claimed key
    def __init__(self, response: HttpResponse) -> None:
        super().__init__("replay")
        self.response = response


OPENAPI_PARAMETER = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
    "description": (
        "Send a fresh unique value (a UUID) per request and the same value when retrying: the "
        "retry answers the first request's stored response (with `Idempotent-Replayed: true`) "
        "and changes nothing. Reusing the value for a different request answers 422."
    ),
}


def idempotent(func: F | None = None, *, deferred: bool = False) -> Any:
    """Make a ninja write operation honour ``Idempotency-Key`` (place it under ``@router.…``).

    ``@idempotent(deferred=True)``: the handler calls ``write_phase(request)`` before its first
    write (see the module's docstring)."""
    if func is None:
        return functools.partial(_make_idempotent, deferred=deferred)
    return _make_idempotent(func, deferred=deferred)


def _make_idempotent(func: F, *, deferred: bool) -> F:
    if hasattr(func, "_ninja_operation"):
        raise TypeError("put @idempotent under the router decorator, not above it")

    @functools.wraps(func)
    def handler(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        state: _State | None = getattr(request, _STATE_ATTR, None)
        user = getattr(request, "user", None)
        if state is None or user is None or not user.is_authenticated:
            return func(request, *args, **kwargs)
        if deferred:
            state.deferred, state.user = True, user
            replay = _finished_replay(request=request, user=user, state=state)
            if replay is not None:
                return replay
            try:
                return func(request, *args, **kwargs)
            except _Replay as claimed:
                return claimed.response
        replay = _begin(request=request, user=user, state=state)
        if replay is not None:
            return replay
        return func(request, *args, **kwargs)

    # ninja reads the handler's signature; resolve the string annotations (``from __future__
    # import annotations``) in the handler's module, not in this one.
    handler.__signature__ = inspect.signature(func, eval_str=True)  # type: ignore[attr-defined]
    contribute_operation_callback(handler, _document_header)
    return decorate_view(functools.partial(_guard, deferred=deferred))(handler)  # type: ignore[return-value]


def write_phase(request: HttpRequest, response: HttpResponse | None = None) -> None:
    """A deferred handler's reads are done: open the write transaction and claim the key.

    A handler that has already rendered its answer passes it as ``response``: the key's record
    is then inserted with it, finished, in one statement (and the handler returns that
    response). If another request with the same key finished meanwhile, this raises what
    answers with its stored response (the handler's own work is dropped). A no-op outside a
    deferred idempotent request, and when called twice."""
    state: _State | None = getattr(request, _STATE_ATTR, None)
    if state is None or not state.deferred or state.atomic is not None:
        return
    state.response = response
    atomic = transaction.atomic()
    atomic.__enter__()
    state.atomic = atomic
    try:
        replay = _begin(request=request, user=state.user, state=state)
    except BaseException:
        _close(state, *sys.exc_info())
        raise
    if replay is not None:
        _close(state, None, None, None)
        raise _Replay(replay)


def _close(state: _State, exc_type: Any, exc: Any, tb: Any) -> None:
    atomic, state.atomic = state.atomic, None
    if atomic is not None:
        atomic.__exit__(exc_type, exc, tb)


def _document_header(operation: Any) -> None:
    extra = dict(operation.openapi_extra or {})
    extra["parameters"] = [*extra.get("parameters", []), OPENAPI_PARAMETER]
    operation.openapi_extra = extra


def _guard(
    run: Callable[..., HttpResponseBase], *, deferred: bool = False
) -> Callable[..., HttpResponseBase]:
    """Wraps the operation's ``run``: one transaction around authentication, handler, response.

    The handler wrapper (which runs after authentication, when ``request.user`` is known) claims
    the key; here the finished response is stored, or everything is rolled back on an error.
    A deferred operation's transaction starts later, in ``write_phase``.
    """

    @functools.wraps(run)
    def guarded(request: HttpRequest, **kw: Any) -> HttpResponseBase:
        key = request.headers.get(HEADER)
        if key is None:
            return run(request, **kw)
        state = _State(key=key)
        setattr(request, _STATE_ATTR, state)
        try:
            if deferred:
                try:
                    response = run(request, **kw)
                    if state.atomic is not None:
                        _finish(state, response)
                except BaseException:
                    _close(state, *sys.exc_info())
                    raise
                _close(state, None, None, None)
            else:
                with transaction.atomic():
                    response = run(request, **kw)
                    _finish(state, response)
        finally:
            delattr(request, _STATE_ATTR)
        return response

    return guarded


def _finish(state: _State, response: HttpResponseBase) -> None:
    """Inside the write transaction: store the response, or roll back on an error."""
    record = state.record
    if record is None:
        return
    if response.status_code >= 400:
        transaction.set_rollback(True)
    elif state.response is not None and response is state.response:
        pass  # inserted finished by write_phase
    elif isinstance(response, HttpResponse):
        _complete(record, response, state.secret)
    else:  # a streamed response cannot be replayed: keep the writes only
        IdempotencyRecord.objects.filter(pk=record.pk).delete()


def _begin(*, request: HttpRequest, user: Any, state: _State) -> HttpResponse | None:
    """Claim the key for this request, or return the replay of the request that claimed it."""
    key = state.key
    key_hash = _key_hash(key)
    secret = _derive_secret(settings.SECRET_KEY, user_pk=user.pk, key=key)
    fingerprint = request_fingerprint(request)
    for _attempt in range(2):
        record = _claim(
            request=request,
            user=user,
            key_hash=key_hash,
            fingerprint=fingerprint,
            finished=(state.response, secret) if state.response is not None else None,
        )
        if record is not None:
            state.record, state.secret = record, secret
            return None
        existing = IdempotencyRecord.objects.filter(user=user, key_hash=key_hash).first()
        if existing is None or existing.expires_at <= timezone.now():
            # expired (or gone in between): forget it and claim the key afresh
            if existing is not None:
                IdempotencyRecord.objects.filter(pk=existing.pk).delete()
            continue
        return _replay(existing, key=key, fingerprint=fingerprint, secret=secret)
    raise _in_progress()


def _key_hash(key: str) -> str:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise DomainError(
            _("the Idempotency-Key header must be 1 to %(max)s printable characters")
            % {"max": MAX_KEY_LENGTH},
            detail={"header": HEADER},
        )
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _finished_replay(*, request: HttpRequest, user: Any, state: _State) -> HttpResponse | None:
    """A deferred request's first look, outside any transaction: the stored answer of a finished
    request with this key, or None (no request, an expired one, or one still running — the
    claim in ``write_phase`` then waits for it or takes the key over)."""
    key_hash = _key_hash(state.key)
    # Every report asks this, and nearly always gets "no": one plain indexed query.
    table = connection.ops.quote_name(IdempotencyRecord._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {table} WHERE user_id = %s AND key_hash = %s",  # noqa: S608
            [user.pk, key_hash],
        )
        found = cursor.fetchone()
    if found is None:
        return None
    existing = IdempotencyRecord.objects.filter(pk=found[0]).first()
    if existing is None or existing.status_code is None or existing.expires_at <= timezone.now():
        return None
    secret = _derive_secret(settings.SECRET_KEY, user_pk=user.pk, key=state.key)
    return _replay(existing, key=state.key, fingerprint=request_fingerprint(request), secret=secret)


def _claim(
    *,
    request: HttpRequest,
    user: Any,
    key_hash: str,
    fingerprint: str,
    finished: tuple[HttpResponse, bytes] | None = None,
) -> IdempotencyRecord | None:
    """Insert the record (with its answer when ``finished``); None when (user, key) is taken.
    Waits while another request holds it."""
    record = IdempotencyRecord(
        user=user,
        key_hash=key_hash,
        fingerprint=fingerprint,
        method=request.method or "",
        path=request.path[:300],
        expires_at=timezone.now() + timedelta(hours=settings.GRIDGOV_IDEMPOTENCY_HOURS),
    )
    if finished is not None:
        response, secret = finished
        record.status_code = response.status_code
        record.content_type = str(response.get("Content-Type", ""))[:100]
        record.body = _seal(secret, response.content)
    try:
        with transaction.atomic(), _lock_wait_limit():
            record.save(force_insert=True)
    except IntegrityError:
        return None
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) == "55P03":  # lock_not_available
            raise _in_progress() from exc
        raise
    return record


@contextmanager
def _lock_wait_limit() -> Iterator[None]:
    """On PostgreSQL, wait at most IN_PROGRESS_WAIT_SECONDS for a row lock inside the block.

    Run inside a savepoint: if the block fails, rolling the savepoint back restores the setting.
    """
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('lock_timeout')")
        previous = cursor.fetchone()[0]
        cursor.execute(
            "SELECT set_config('lock_timeout', %s, true)",
            [f"{int(IN_PROGRESS_WAIT_SECONDS * 1000)}ms"],
        )
    yield
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [previous])


def _in_progress() -> Conflict:
    return Conflict(_("a request with this key is still in progress"), detail={"header": HEADER})


def _replay(
    record: IdempotencyRecord, *, key: str, fingerprint: str, secret: bytes
) -> HttpResponse:
    if record.fingerprint != fingerprint:
        raise DomainError(
            _("the idempotency key was already used for a different request"),
            detail={"header": HEADER},
            status=422,
        )
    if record.status_code is None:
        raise _in_progress()
    body = _open(secret, bytes(record.body))
    for fallback in getattr(settings, "SECRET_KEY_FALLBACKS", []):
        if body is not None:
            break
        body = _open(_derive_secret(fallback, user_pk=record.user_id, key=key), bytes(record.body))
    if body is None:
        raise Conflict(
            _("the stored response for this key can no longer be read; retry with a new key"),
            detail={"header": HEADER},
        )
    response = HttpResponse(
        body, status=record.status_code, content_type=record.content_type or None
    )
    response[REPLAYED_HEADER] = "true"
    return response


def _complete(record: IdempotencyRecord, response: HttpResponse, secret: bytes) -> None:
    record.status_code = response.status_code
    record.content_type = str(response.get("Content-Type", ""))[:100]
    record.body = _seal(secret, response.content)
    record.save(update_fields=["status_code", "content_type", "body"])


def request_fingerprint(request: HttpRequest) -> str:
    """SHA-256 over the method, the path with its query string, and the body."""
    digest = hashlib.sha256()
    for part in (request.method or "", request.get_full_path()):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    try:
        digest.update(hashlib.sha256(request.body).digest())
    except RawPostDataException:  # a multipart body already parsed into POST and FILES
        digest.update(_form_digest(request))
    return digest.hexdigest()


def _form_digest(request: HttpRequest) -> bytes:
    digest = hashlib.sha256()
    for name in sorted(request.POST):
        for value in request.POST.getlist(name):
            digest.update(f"{name}\0{value}\0".encode())
    for name in sorted(request.FILES):
        for upload in request.FILES.getlist(name):
            digest.update(f"{name}\0{upload.name}\0{upload.size}\0".encode())
            for chunk in upload.chunks():
                digest.update(chunk)
            upload.seek(0)
    return digest.digest()


# --- sealing stored bodies -----------------------------------------------------------------


def _derive_secret(secret_key: str | bytes, *, user_pk: Any, key: str) -> bytes:
    message = f"gridgov.idempotency\0{user_pk}\0{key}".encode()
    if isinstance(secret_key, str):
        secret_key = secret_key.encode("utf-8")
    return hmac.new(secret_key, message, hashlib.sha256).digest()


def _seal(secret: bytes, plaintext: bytes) -> bytes:
    """AES-256-GCM (the ``cryptography`` package): nonce + ciphertext with its tag."""
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + AESGCM(secret).encrypt(nonce, plaintext, None)


def _open(secret: bytes, sealed: bytes) -> bytes | None:
    """The plaintext, or None when the body was sealed under another key or altered."""
    nonce, ciphertext = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
    if len(nonce) != _NONCE_BYTES:
        return None
    try:
        return AESGCM(secret).decrypt(nonce, ciphertext, None)
    except InvalidTag:
        return None


# --- housekeeping --------------------------------------------------------------------------


def idempotency_prune(*, now: datetime | None = None, batch: int = 5000) -> int:
    """Delete expired records in batches (short transactions); returns how many."""
    now = now or timezone.now()
    deleted = 0
    while True:
        ids = list(
            IdempotencyRecord.objects.filter(expires_at__lte=now).values_list("pk", flat=True)[
                :batch
            ]
        )
        if not ids:
            return deleted
        count, _detail = IdempotencyRecord.objects.filter(pk__in=ids).delete()
        deleted += count
