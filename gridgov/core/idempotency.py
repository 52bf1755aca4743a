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
``@idempotent(deferred=True)`` runs the handler outside any transaction. The handler renders its
answer first and then calls ``write_phase(request, response)``, which inserts the key's record
already finished with that answer — inside the handler's own ``write_transaction(request)``
when it writes there (commit together or not at all), else in a transaction of its own when
its writes are done. If the key was claimed meanwhile, ``write_phase`` raises what answers with
the stored response (a duplicate still in flight is waited for, as above), and the handler's
transaction is rolled back. A handler that never calls it stores nothing.

By default a deferred operation first looks for a finished request with the key and replays it
without running the handler. ``@idempotent(deferred=True, replay_first=False)`` skips that
look-up for handlers whose every write is inside ``write_transaction`` (or ``write_alone``):
the claim finds a finished request just as well (the retry's work is rolled back), and a retry
that the handler refuses (say, its category was withdrawn since) still answers the stored
response. ``write_alone(request, response, write)`` is for a handler whose whole write is one
statement outside any transaction that inserts the key's record before its own rows
(``core.inserts.insert_together``, PostgreSQL): a taken key writes nothing and replays.

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.http import HttpRequest, HttpResponse
from django.http.request import RawPostDataException
from django.http.response import HttpResponseBase
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja.decorators import decorate_view
from ninja.utils import contribute_operation_callback

from gridgov.core.errors import Conflict, DomainError
from gridgov.core.inserts import PreparedInsert, prepare_insert
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
    user: Any = None
    #: a deferred handler is inside its ``write_transaction``
    writing: bool = False
    #: … and that transaction is the outermost one (the handler's own, not a caller's)
    own_transaction: bool = False
    #: (key hash, sealing secret, request fingerprint), worked out before a deferred handler
    #: runs: not while its write transaction holds locks
    prepared: tuple[str, bytes, str] | None = None


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


def idempotent(func: F | None = None, *, deferred: bool = False, replay_first: bool = True) -> Any:
    """Make a ninja write operation honour ``Idempotency-Key`` (place it under ``@router.…``).

    ``@idempotent(deferred=True)``: the handler renders its answer, then calls
    ``write_phase(request, response)`` (see the module's docstring); ``replay_first=False``:
    no look-up for a finished request before the handler runs."""
    if func is None:
        return functools.partial(_make_idempotent, deferred=deferred, replay_first=replay_first)
    return _make_idempotent(func, deferred=deferred, replay_first=replay_first)


def _make_idempotent(func: F, *, deferred: bool, replay_first: bool = True) -> F:
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
            state.prepared = (  # a malformed key answers 400 here, before any work
                _key_hash(state.key),
                _derive_secret(settings.SECRET_KEY, user_pk=user.pk, key=state.key),
                request_fingerprint(request),
            )
            if replay_first:
                replay = _finished_replay(request=request, user=user, state=state)
                if replay is not None:
                    return replay
            try:
                return func(request, *args, **kwargs)
            except _Replay as claimed:
                return claimed.response
            except DomainError:
                if replay_first:
                    raise
                # A retry of a finished request answers as the first one did, even when the
                # handler would refuse it now (a category withdrawn since, say). Only refused
                # requests pay for this look-up.
                replay = _finished_replay(request=request, user=user, state=state)
                if replay is None:
                    raise
                return replay
        replay = _begin(request=request, user=user, state=state)
        if replay is not None:
            return replay
        return func(request, *args, **kwargs)

    # ninja reads the handler's signature; resolve the string annotations (``from __future__
    # import annotations``) in the handler's module, not in this one.
    handler.__signature__ = inspect.signature(func, eval_str=True)  # type: ignore[attr-defined]
    contribute_operation_callback(handler, _document_header)
    return decorate_view(functools.partial(_guard, deferred=deferred))(handler)  # type: ignore[return-value]


@contextmanager
def write_transaction(request: HttpRequest) -> Iterator[None]:
    """A deferred handler's write transaction (``transaction.atomic()``): its writes and, through
    ``write_phase`` inside it, the key's record commit together or not at all.

    When it is the outermost transaction (the handler's own), the claim bounds its wait for a
    concurrent request with the same key within its own statement on PostgreSQL; nested in a
    caller's transaction, the bound is set and restored around the claim."""
    state: _State | None = getattr(request, _STATE_ATTR, None)
    if state is None or not state.deferred or state.writing:
        with transaction.atomic():
            yield
        return
    outermost = not transaction.get_connection().in_atomic_block
    with transaction.atomic():
        state.writing, state.own_transaction = True, outermost
        try:
            yield
        finally:
            state.writing = state.own_transaction = False


def write_phase(request: HttpRequest, response: HttpResponse) -> None:
    """A deferred handler's answer is final: insert the key's record, finished, with it.

    Inside ``write_transaction(request)`` the record joins the handler's writes; elsewhere it is
    inserted in a transaction of its own (call it last, when the writes are done). If another
    request with the same key finished first, this raises what answers with its stored response
    (the handler's transaction is rolled back); one still running is waited for. A no-op outside
    a deferred idempotent request, for an error response (errors are not stored) and when
    called twice."""
    state: _State | None = getattr(request, _STATE_ATTR, None)
    if state is None or not state.deferred or state.record is not None:
        return
    if response.status_code >= 400:
        return
    if not state.writing:
        with write_transaction(request):
            write_phase(request, response)
        return
    replay = _begin(request=request, user=state.user, state=state, finished=response)
    if replay is not None:
        raise _Replay(replay)


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
    A deferred operation's transaction is the handler's ``write_transaction``.
    """

    @functools.wraps(run)
    def guarded(request: HttpRequest, **kw: Any) -> HttpResponseBase:
        key = request.headers.get(HEADER)
        if key is None:
            return run(request, **kw)
        state = _State(key=key)
        setattr(request, _STATE_ATTR, state)
        try:
            if deferred:  # the handler's write_transaction / write_phase store the answer
                response = run(request, **kw)
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
    elif isinstance(response, HttpResponse):
        _complete(record, response, state.secret)
    else:  # a streamed response cannot be replayed: keep the writes only
        IdempotencyRecord.objects.filter(pk=record.pk).delete()


def _begin(
    *, request: HttpRequest, user: Any, state: _State, finished: HttpResponse | None = None
) -> HttpResponse | None:
    """Claim the key for this request (its record inserted with ``finished``, the final answer,
    when given), or return the replay of the request that claimed it."""
    key = state.key
    key_hash, secret, fingerprint = state.prepared or (
        _key_hash(key),
        _derive_secret(settings.SECRET_KEY, user_pk=user.pk, key=key),
        request_fingerprint(request),
    )
    for _attempt in range(2):
        record = _claim(
            request=request,
            user=user,
            key_hash=key_hash,
            fingerprint=fingerprint,
            finished=(finished, secret) if finished is not None else None,
            bounded=state.own_transaction,
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
    """Outside any transaction: the stored answer of a finished request with this key, or None
    (no request, an expired one, or one still running — the claim in ``write_phase`` then
    waits for it or takes the key over). A deferred request looks first (``replay_first``), or
    when its handler refused it."""
    key_hash, secret, fingerprint = state.prepared or (
        _key_hash(state.key),
        _derive_secret(settings.SECRET_KEY, user_pk=user.pk, key=state.key),
        request_fingerprint(request),
    )
    # Asked before every deferred request that replays first: one plain indexed query.
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
    return _replay(existing, key=state.key, fingerprint=fingerprint, secret=secret)


def _claim(
    *,
    request: HttpRequest,
    user: Any,
    key_hash: str,
    fingerprint: str,
    finished: tuple[HttpResponse, bytes] | None = None,
    bounded: bool = False,
) -> IdempotencyRecord | None:
    """Insert the record (with its answer when ``finished``); None when (user, key) is taken.

    One statement, ``INSERT … ON CONFLICT (user, key) DO NOTHING RETURNING id``: while another
    transaction holds the key, it waits for that one to end (PostgreSQL; SQLite serialises
    writers), at most IN_PROGRESS_WAIT_SECONDS, then 409. ``bounded``: the transaction is the
    caller's own and ends soon after, so the bound is set by the statement itself for the rest
    of it (PostgreSQL); otherwise it is set before and restored after."""
    postgres = connection.vendor == "postgresql"
    insert = _record_insert(
        request=request,
        user=user,
        key_hash=key_hash,
        fingerprint=fingerprint,
        finished=finished,
        bounded=postgres and bounded,
    )
    with _in_progress_after_wait():
        if postgres and not bounded:
            with _lock_wait_limit():
                inserted = insert.execute()
        else:
            inserted = insert.execute()
    return cast(IdempotencyRecord, insert.obj) if inserted is not None else None


def _record_insert(
    *,
    request: HttpRequest,
    user: Any,
    key_hash: str,
    fingerprint: str,
    finished: tuple[HttpResponse, bytes] | None,
    bounded: bool,
) -> PreparedInsert:
    """The key's record, prepared; ``bounded``: its statement bounds the wait for the key."""
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
    if bounded:
        return prepare_insert(
            record,
            on_conflict=_KEY_COLUMNS,
            cte="bound AS (SELECT set_config('lock_timeout', %s, true))",
            cte_params=(_lock_timeout(),),
        )
    return prepare_insert(record, on_conflict=_KEY_COLUMNS)


@contextmanager
def _in_progress_after_wait() -> Iterator[None]:
    """A wait for the key that ran out (PostgreSQL's lock_timeout) answers 409."""
    try:
        yield
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) == "55P03":  # lock_not_available
            raise _in_progress() from exc
        raise


def write_alone(
    request: HttpRequest,
    response: HttpResponse,
    write: Callable[[PreparedInsert | None], bool],
) -> None:
    """A deferred handler whose whole write is ONE statement outside any transaction, which
    inserts the key's record (finished with ``response``) before its own rows and only then
    them (``core.inserts.insert_together``, PostgreSQL): ``write(record)`` runs it and answers
    whether the record went in (``record`` is None without a key: write as usual).

    If the key was taken, nothing was written: the request that holds it is replayed (the
    statement waited for it to finish, at most IN_PROGRESS_WAIT_SECONDS, else 409), a
    different request with the key answers 422, and an expired record is dropped and the
    statement run again."""
    state: _State | None = getattr(request, _STATE_ATTR, None)
    if state is None or not state.deferred or response.status_code >= 400:
        write(None)
        return
    user = state.user
    key_hash, secret, fingerprint = state.prepared or (
        _key_hash(state.key),
        _derive_secret(settings.SECRET_KEY, user_pk=user.pk, key=state.key),
        request_fingerprint(request),
    )
    insert = _record_insert(
        request=request,
        user=user,
        key_hash=key_hash,
        fingerprint=fingerprint,
        finished=(response, secret),
        bounded=connection.vendor == "postgresql",
    )
    for _attempt in range(2):
        with _in_progress_after_wait():
            written = write(insert)
        if written:
            state.record, state.secret = cast(IdempotencyRecord, insert.obj), secret
            return
        existing = IdempotencyRecord.objects.filter(user=user, key_hash=key_hash).first()
        if existing is None or existing.expires_at <= timezone.now():
            if existing is not None:
                IdempotencyRecord.objects.filter(pk=existing.pk).delete()
            continue
        raise _Replay(_replay(existing, key=state.key, fingerprint=fingerprint, secret=secret))
    raise _in_progress()


_KEY_COLUMNS = ("user_id", "key_hash")


def _lock_timeout() -> str:
    return f"{int(IN_PROGRESS_WAIT_SECONDS * 1000)}ms"


@contextmanager
def _lock_wait_limit() -> Iterator[None]:
    """On PostgreSQL, wait at most IN_PROGRESS_WAIT_SECONDS for a row lock inside the block;
    the caller's setting is back afterwards (if the block fails, so does the transaction)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('lock_timeout')")
        previous = cursor.fetchone()[0]
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [_lock_timeout()])
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
