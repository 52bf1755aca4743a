"""Login lock-out per account and per address (a django-axes handler).

django-axes compares one failure count with one limit. gridgov wants two: an account is locked
after ``AXES_FAILURE_LIMIT`` failures (5: guessing one person's password), and an address after
``GRIDGOV_LOGIN_IP_FAILURE_LIMIT`` failures across every username (50: password spraying, one
guess for each of many accounts). A street office's staff share one NAT address, so the limit
per address must be far above the limit per account. Both last ``AXES_COOLOFF_TIME``.
"""

from __future__ import annotations

from typing import Any

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.models import AccessAttempt
from axes.signals import user_locked_out
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest

#: ``request.gridgov_lockout``: what is locked ("account" or "address"), for the lock-out page.
ACCOUNT = "account"
ADDRESS = "address"


def address_failures(request: HttpRequest) -> int:
    """Failed logins from the request's address within the cool-off time, over all usernames."""
    ip = getattr(request, "axes_ip_address", None)
    if not ip:
        return 0
    attempts = AccessAttempt.objects.filter(ip_address=ip)
    if settings.AXES_COOLOFF_TIME is not None:
        attempts = attempts.filter(attempt_time__gte=get_cool_off_threshold(request))
    return int(attempts.aggregate(n=Sum("failures_since_start"))["n"] or 0)


def address_locked(request: HttpRequest) -> bool:
    limit = settings.GRIDGOV_LOGIN_IP_FAILURE_LIMIT
    return limit > 0 and address_failures(request) >= limit


class LoginThrottleHandler(AxesDatabaseHandler):
    """axes' database handler, plus the lock of an address after many failures."""

    def is_locked(self, request: Any, credentials: dict[str, Any] | None = None) -> bool:
        if super().is_locked(request, credentials):
            request.gridgov_lockout = ACCOUNT
            return True
        if address_locked(request):
            request.gridgov_lockout = ADDRESS
            return True
        return False

    def user_login_failed(
        self, sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any
    ) -> None:
        super().user_login_failed(sender, credentials, request, **kwargs)
        if request is None:
            return
        if getattr(request, "axes_locked_out", False):
            request.gridgov_lockout = getattr(request, "gridgov_lockout", ACCOUNT)
            return
        if address_locked(request):
            request.axes_locked_out = True
            request.axes_credentials = credentials
            request.gridgov_lockout = ADDRESS
            user_locked_out.send(
                "axes",
                request=request,
                username=None,
                ip_address=request.axes_ip_address,
            )
