"""Web security that spans apps: the client's address, rate limits, idle sessions and the
enforcement of two-factor sign-in (see "Security" in docs/architecture.md).

Rate limits are fixed windows counted in the ``ratelimit`` cache (``GRIDGOV_RATE_CACHE``):
anonymous requests per address (``GRIDGOV_RATE_ANON``: Open311, the login and two-factor forms),
and reports and photo uploads of residents per user (``GRIDGOV_RATE_RESIDENT``). Over the limit
a request answers 429 with ``Retry-After``: the API in its ``{"message", "detail"}`` shape,
Open311 in the GeoReport error list, the web forms with a page.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from gridgov.core.errors import DomainError

log = logging.getLogger(__name__)


def now() -> float:
    """Seconds since the epoch; the one clock of this module (tests move it)."""
    return time.time()


# --- the client's address -------------------------------------------------------------------


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or behind ``GRIDGOV_TRUSTED_PROXIES`` proxies the
    address the nearest of them appended to X-Forwarded-For (what a client wrote there
    itself is ignored)."""
    remote = str(request.META.get("REMOTE_ADDR") or "")
    hops = int(getattr(settings, "GRIDGOV_TRUSTED_PROXIES", 0) or 0)
    if hops > 0:
        forwarded = [
            part.strip()
            for part in str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",")
            if part.strip()
        ]
        if len(forwarded) >= hops:
            candidate = forwarded[-hops]
            try:
                return str(ipaddress.ip_address(candidate))
            except ValueError:
                log.warning("an invalid X-Forwarded-For entry was ignored")
    return remote


# --- rate limits ----------------------------------------------------------------------------

_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*$")


@dataclass(frozen=True)
class Rate:
    """``count`` requests per window of ``seconds``."""

    count: int
    seconds: int


def parse_rate(text: str, *, setting: str = "rate") -> Rate | None:
    """``"60/min"``, ``"1000/hour"``, ``"10/15min"`` → a Rate; ``"0"``, ``"off"`` or empty →
    None (no limit)."""
    value = (text or "").strip().lower()
    if value in ("", "0", "off", "none"):
        return None
    match = _RATE.match(value)
    if match is None or match.group(3) not in _UNITS:
        raise ImproperlyConfigured(
            f"{setting} must look like 60/min, 1000/hour or 10/15min (or off), got {text!r}"
        )
    count = int(match.group(1))
    seconds = int(match.group(2) or 1) * _UNITS[match.group(3)]
    if count <= 0:
        return None
    if seconds <= 0:
        raise ImproperlyConfigured(f"{setting} needs a window of at least one second")
    return Rate(count, seconds)


def rate_of(bucket: str) -> Rate | None:
    """The configured rate of a bucket ("anon" or "resident")."""
    setting = f"GRIDGOV_RATE_{bucket.upper()}"
    return parse_rate(str(getattr(settings, setting, "") or ""), setting=setting)


def hit(bucket: str, key: str, rate: Rate) -> int | None:
    """Count one request of ``key`` in ``bucket``; the seconds to wait when it is over the
    limit, else None.

    A fixed window: the counter of the current window starts at the first request and is
    incremented by each one after it. Should the cache fail, the request passes (and the
    failure is logged): a broken counter must not take the site down.
    """
    t = now()
    window = int(t // rate.seconds)
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    cache_key = f"gridgov:rate:{bucket}:{rate.seconds}:{window}:{digest}"
    try:
        cache = caches["ratelimit"]
        if cache.add(cache_key, 1, timeout=rate.seconds + 1):
            count = 1
        else:
            try:
                count = cache.incr(cache_key)
            except ValueError:  # the window's counter expired between add and incr
                cache.set(cache_key, 1, timeout=rate.seconds + 1)
                count = 1
    except Exception:
        log.exception("the rate-limit cache failed; the request was let through")
        return None
    if count <= rate.count:
        return None
    return max(1, math.ceil((window + 1) * rate.seconds - t))


class RateLimited(DomainError):
    """Too many requests; ``retry_after`` seconds until the next window."""

    status = 429

    def __init__(self, retry_after: int):
        super().__init__(
            retry_after_message(retry_after), detail={"retry_after": retry_after}, status=429
        )
        self.retry_after = retry_after


def retry_after_message(seconds: int) -> str:
    return ngettext(
        "too many requests: try again in %(seconds)d second",
        "too many requests: try again in %(seconds)d seconds",
        seconds,
    ) % {"seconds": seconds}


#: Views limited per address for everyone (the URL name, the methods; None: every method).
ANON_VIEWS: dict[str, frozenset[str] | None] = {
    "accounts:login": frozenset({"POST"}),
    "accounts:two_factor_verify": frozenset({"POST"}),
    "admin:login": frozenset({"POST"}),
}
#: URL namespaces limited per address (every view, every method).
ANON_NAMESPACES = frozenset({"open311"})
#: Views limited per user for residents (users holding no staff role).
RESIDENT_VIEWS: dict[str, frozenset[str]] = {
    "cases:report": frozenset({"POST"}),
    "api:report": frozenset({"POST"}),
    "api:photo_upload": frozenset({"POST"}),
}


def is_resident(user: Any) -> bool:
    """A signed-in user who holds no staff role (a resident, or someone without a role)."""
    from gridgov.accounts.models import STAFF_ROLES
    from gridgov.accounts.selectors import user_role_names

    if user is None or not user.is_authenticated:
        return False
    return not any(role in STAFF_ROLES for role in user_role_names(user))


def limit_for(request: HttpRequest, user: Any) -> tuple[str, str] | None:
    """(bucket, key) of the rate limit a request counts against, or None."""
    match = request.resolver_match
    if match is None:
        return None
    name = match.view_name
    method = request.method or "GET"
    methods = ANON_VIEWS.get(name, frozenset())
    if (name in ANON_VIEWS and (methods is None or method in methods)) or (
        match.namespace in ANON_NAMESPACES
    ):
        return "anon", "ip:" + client_ip(request)
    if method in RESIDENT_VIEWS.get(name, frozenset()) and is_resident(user):
        return "resident", f"user:{user.pk}"
    return None


def check_rate(request: HttpRequest, user: Any) -> int | None:
    """Count the request against its limit; the seconds to wait when over it, else None."""
    found = limit_for(request, user)
    if found is None:
        return None
    bucket, key = found
    rate = rate_of(bucket)
    if rate is None:
        return None
    wait = hit(bucket, key, rate)
    if wait is not None:
        log.warning("rate limit %s exceeded on %s", bucket, request.resolver_match.view_name)  # type: ignore[union-attr]
    return wait


def throttle_api(request: HttpRequest, user: Any) -> None:
    """For the API, once the caller is known: RateLimited when over the limit."""
    wait = check_rate(request, user)
    if wait is not None:
        raise RateLimited(wait)


def too_many_requests(request: HttpRequest, wait: int) -> HttpResponse:
    """The 429 answer in the shape the caller expects."""
    message = retry_after_message(wait)
    match = request.resolver_match
    response: HttpResponse
    if match is not None and match.namespace in ANON_NAMESPACES:  # Open311's error list
        response = JsonResponse(
            [{"code": 429, "description": message}],
            status=429,
            safe=False,
            json_dumps_params={"ensure_ascii": False},
        )
        response["Access-Control-Allow-Origin"] = "*"
    elif request.path_info.startswith("/api/"):
        response = JsonResponse(
            {"message": message, "detail": {"retry_after": wait}},
            status=429,
            json_dumps_params={"ensure_ascii": False},
        )
    else:
        response = render(
            request, "accounts/rate_limited.html", {"message": message, "wait": wait}, status=429
        )
    response["Retry-After"] = str(wait)
    return response


class RateLimitMiddleware:
    """Applies the limits of web views and Open311 (the API applies its own once the token
    is read: ``throttle_api`` in gridgov/api/main.py)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Any, args: Any, kwargs: Any
    ) -> HttpResponse | None:
        if request.path_info.startswith("/api/v1/"):
            return None
        wait = check_rate(request, getattr(request, "user", None))
        if wait is None:
            return None
        return too_many_requests(request, wait)


# --- sessions: idle and absolute limits -----------------------------------------------------

SEEN_KEY = "gridgov_seen"
STARTED_KEY = "gridgov_started"
#: last-seen is written at most this often (a session write per request would cost a query)
SEEN_GRANULARITY = 60
#: requests that do not count as activity: the header bell's poll
BACKGROUND_VIEWS = frozenset({"notifications:badge"})


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _login_url(request: HttpRequest) -> str:
    return reverse("accounts:login") + "?" + urlencode({"next": request.get_full_path()})


class IdleSessionMiddleware:
    """Ends a web session after ``GRIDGOV_SESSION_IDLE_SECONDS`` without a request, and after
    ``SESSION_COOKIE_AGE`` since it began whatever the activity (0 turns the idle limit off).

    The request that finds its session expired goes on as an anonymous one: a page that needs
    a login redirects to it with a message saying why, an htmx request is told to reload the
    page, the API answers 401.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Any, args: Any, kwargs: Any
    ) -> HttpResponse | None:
        session = getattr(request, "session", None)
        if session is None or "_auth_user_id" not in session:
            return None
        t = now()
        seen = session.get(SEEN_KEY)
        started = session.get(STARTED_KEY)
        idle = int(settings.GRIDGOV_SESSION_IDLE_SECONDS or 0)
        lifetime = int(settings.SESSION_COOKIE_AGE or 0)
        reason = None
        if idle > 0 and seen is not None and t - float(seen) > idle:
            minutes = max(1, idle // 60)
            reason = ngettext(
                "You were logged out after %(minutes)d minute without activity.",
                "You were logged out after %(minutes)d minutes without activity.",
                minutes,
            ) % {"minutes": minutes}
        elif lifetime > 0 and started is not None and t - float(started) > lifetime:
            reason = _("Your session has ended. Please log in again.")
        if reason is not None:
            logout(request)
            if request.path_info.startswith("/api/"):
                return None
            messages.info(request, reason)
            if _is_htmx(request):
                response = HttpResponse(status=401)
                response["HX-Redirect"] = _login_url(request)
                return response
            return None
        match = request.resolver_match
        if match is not None and match.view_name in BACKGROUND_VIEWS:
            return None
        if started is None:
            session[STARTED_KEY] = int(t)
        if seen is None or t - float(seen) >= SEEN_GRANULARITY:
            session[SEEN_KEY] = int(t)
        return None


# --- two-factor sign-in ---------------------------------------------------------------------

#: Views a signed-in user may reach before the second factor: to give it, to enrol, to leave.
TWO_FACTOR_OPEN_VIEWS = frozenset(
    {
        "accounts:login",
        "accounts:logout",
        "accounts:two_factor_verify",
        "accounts:two_factor_enrol",
        "set_language",
        "favicon",
        "healthz",
        "readyz",
        "admin:logout",
    }
)


def uses_api_token(request: HttpRequest) -> bool:
    """An API request that authenticates with a token (two-factor rules do not apply)."""
    return request.path_info.startswith("/api/") and bool(
        request.headers.get("Authorization") or request.headers.get("X-API-Token")
    )


class TwoFactorMiddleware:
    """Sends a signed-in user who has not given their second factor to the step they owe:
    the code, when they have an authenticator (their session is not yet verified), or the
    enrolment, when one of their roles is listed in ``GRIDGOV_2FA_ROLES``. API tokens are not
    affected; a session's API call answers 403 naming the step."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Any, args: Any, kwargs: Any
    ) -> HttpResponse | None:
        from gridgov.accounts.selectors import two_factor_step

        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or uses_api_token(request):
            return None
        match = request.resolver_match
        if match is not None and match.view_name in TWO_FACTOR_OPEN_VIEWS:
            return None
        step = two_factor_step(user)
        if step is None:
            return None
        url_name = "accounts:two_factor_verify" if step == "verify" else "accounts:two_factor_enrol"
        target = reverse(url_name)
        if request.path_info.startswith("/api/"):
            message = (
                _("two-factor sign-in required: enter your code at %(url)s")
                if step == "verify"
                else _("two-factor sign-in required: set up an authenticator app at %(url)s")
            ) % {"url": target}
            return JsonResponse(
                {"message": message, "detail": {"two_factor": step, "url": target}},
                status=403,
                json_dumps_params={"ensure_ascii": False},
            )
        target += "?" + urlencode({"next": request.get_full_path()})
        if _is_htmx(request):
            response = HttpResponse(status=403)
            response["HX-Redirect"] = target
            return response
        response = HttpResponse(status=302)
        response["Location"] = target
        return response
