"""The per-process cache of API tokens: a token's hash → its row and its user's row.

Every API request authenticates by token; reading the token with its user was one query and
an ORM round of about 1 ms per request. Each process keeps what the authentication decision
needs — the token (scopes, expiry, revocation) and its user (active or not, and the fields the
request reads) — behind the ``accounts.tokens`` stamp (``core.stamps``). The stamp is bumped in
the same transaction by every save or delete of a token and every save or delete of an existing
user (the signals in ``AccountsConfig.ready``; creating a token or a user needs no bump, since
nothing cached can name it, and neither does a login's ``last_login``). The changing process
drops its cache at once, every other process within ``GRIDGOV_INDEX_CHECK_SECONDS`` (2 s by
default), as with the role assignments. A bulk ``update()`` of tokens or users must call
``tokens_changed()`` itself.

Only tokens that exist are cached (an unknown hash asks the database each time, so random
secrets cannot fill the memory); expiry is checked against the clock on every request.
Each lookup returns new ``ApiToken`` and ``User`` instances: a request may set attributes on
its user (its scopes, its role cache) without another request seeing them.

``last_used_at`` is written at most once a minute per token and process.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from gridgov.accounts.models import ApiToken, User
from gridgov.core.stamps import StampedCache, in_transaction

STAMP = "accounts.tokens"
#: ``last_used_at`` is written when it is older than this.
TOUCH_EVERY = timedelta(minutes=1)
#: A process keeps at most this many tokens; past it, the cache starts afresh.
MAX_TOKENS = 20_000

_TOKEN_FIELDS = [f.attname for f in ApiToken._meta.concrete_fields]
_USER_FIELDS = [f.attname for f in User._meta.concrete_fields]
_SCOPES = _TOKEN_FIELDS.index("scopes")
_LAST_USED = _TOKEN_FIELDS.index("last_used_at")


@dataclass(frozen=True)
class _Entry:
    """A token's and its user's column values, as loaded."""

    token: tuple[Any, ...]
    user: tuple[Any, ...]
    pk: int
    expires_at: datetime | None
    usable: bool  # not revoked, and the user is active


@dataclass
class _Tokens:
    version: int
    by_hash: dict[str, _Entry] = field(default_factory=dict)
    #: token id → the ``last_used_at`` this process knows of (written or read)
    used: dict[int, datetime | None] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _build(version: int) -> _Tokens:
    return _Tokens(version=version)


_cache: StampedCache[_Tokens] = StampedCache(STAMP, _build)


def tokens_changed() -> None:
    """Call inside the transaction that changed tokens or users with a bulk ``update()``."""
    in_transaction(_cache.changed)


def _load(key_hash: str) -> _Entry | None:
    token = ApiToken.objects.select_related("user").filter(key_hash=key_hash).first()
    if token is None:
        return None
    user = token.user
    return _Entry(
        token=tuple(getattr(token, name) for name in _TOKEN_FIELDS),
        user=tuple(getattr(user, name) for name in _USER_FIELDS),
        pk=token.pk,
        expires_at=token.expires_at,
        usable=token.revoked_at is None and user.is_active,
    )


def token_by_hash(key_hash: str) -> ApiToken | None:
    """The valid token (not revoked, not expired, its user active) with this hash, with its
    user attached, or None. Touches ``last_used_at`` at most once a minute."""
    tokens = _cache.get()
    entry = tokens.by_hash.get(key_hash)
    if entry is None:
        entry = _load(key_hash)
        if entry is None:
            return None
        with tokens.lock:
            if len(tokens.by_hash) >= MAX_TOKENS:
                tokens.by_hash.clear()
                tokens.used.clear()
            tokens.by_hash[key_hash] = entry
            tokens.used.setdefault(entry.pk, entry.token[_LAST_USED])
    now = timezone.now()
    if not entry.usable or (entry.expires_at is not None and entry.expires_at <= now):
        return None
    last = tokens.used.get(entry.pk)
    if last is None or now - last > TOUCH_EVERY:
        tokens.used[entry.pk] = now
        ApiToken.objects.filter(pk=entry.pk).update(last_used_at=now)
    return _instances(entry)


def _instances(entry: _Entry) -> ApiToken:
    values = list(entry.token)
    values[_SCOPES] = list(values[_SCOPES] or [])  # a request's own copy of the list
    token = ApiToken.from_db(connection.alias, _TOKEN_FIELDS, values)
    user = User.from_db(connection.alias, _USER_FIELDS, entry.user)
    token._state.fields_cache["user"] = user
    return token


# --- the signals (connected in AccountsConfig.ready) -------------------------------------------


def token_saved_or_deleted(sender: Any, **kwargs: Any) -> None:
    """A token was revoked, changed or deleted: no process may go on trusting its copy."""
    if kwargs.get("raw") or kwargs.get("created"):
        return
    if set(kwargs.get("update_fields") or ()) == {"last_used_at"}:
        return
    tokens_changed()


def user_saved_or_deleted(sender: Any, **kwargs: Any) -> None:
    """A user changed (deactivated, renamed, deleted): their tokens' copies are dropped."""
    if kwargs.get("raw") or kwargs.get("created"):
        return
    if set(kwargs.get("update_fields") or ()) == {"last_login"}:
        return
    tokens_changed()
