from __future__ import annotations

import base64
from typing import Any
from uuid import UUID

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice

from gridgov.accounts import actions, selectors
from gridgov.accounts.models import ALL_SCOPES, ApiToken, TokenScope
from gridgov.accounts.selectors import current_user
from gridgov.core import security
from gridgov.core.errors import DomainError

#: session key of a login waiting for its second factor: user id, backend, time, next page
PENDING_KEY = "gridgov_2fa_pending"
#: how long a password stays good for the second step
PENDING_SECONDS = 300


def _safe_next(request: HttpRequest, url: str | None) -> str:
    """``url`` when it points into this site, else the home page."""
    if url and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return reverse(settings.LOGIN_REDIRECT_URL)


class LoginView(auth_views.LoginView):
    """The password step. A user with an authenticator app is not logged in yet: the session
    remembers for five minutes that the password was right, and the code step finishes."""

    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form: Any) -> HttpResponse:
        user = form.get_user()
        if not selectors.has_authenticator(user):
            return super().form_valid(form)
        session = self.request.session
        session.cycle_key()
        session[PENDING_KEY] = {
            "user": user.pk,
            "backend": getattr(user, "backend", settings.AUTHENTICATION_BACKENDS[-1]),
            "at": int(security.now()),
            "next": self.get_redirect_url(),
        }
        return redirect("accounts:two_factor_verify")


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("accounts:login")


@login_required
def tokens(request: HttpRequest) -> HttpResponse:
    """List, create and revoke the user's API tokens; a new secret is shown once."""
    secret = None
    chosen = list(ALL_SCOPES)
    if request.method == "POST":
        # the form's checkboxes, when it showed them (a post without them: every scope)
        given = "scopes_shown" in request.POST
        chosen = request.POST.getlist("scopes") if given else list(ALL_SCOPES)
        try:
            days_raw = request.POST.get("days", "").strip()
            days = int(days_raw) if days_raw else None
            _token, secret = actions.token_create(
                user=current_user(request),
                name=request.POST.get("name", ""),
                days=days,
                scopes=chosen,
            )
        except ValueError:
            messages.error(request, _("The lifetime must be a whole number of days."))
        except DomainError as exc:
            messages.error(request, exc.message)
    rows = ApiToken.objects.filter(user=current_user(request))
    context = {
        "tokens": rows,
        "secret": secret,
        "scopes": [(s.value, s.label, s.value in chosen) for s in TokenScope],
        "default_days": settings.GRIDGOV_API_TOKEN_DAYS,
    }
    return render(request, "accounts/tokens.html", context)


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: UUID) -> HttpResponse:
    try:
        actions.token_revoke(user=current_user(request), token_uuid=str(token_id))
        messages.success(request, _("The token is revoked."))
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("accounts:tokens")


# --- security: the password, two-factor sign-in ----------------------------------------------


@login_required
def security_page(request: HttpRequest) -> HttpResponse:
    """The user's sign-in settings: password, authenticator app, recovery codes."""
    user = current_user(request)
    context = {
        "enrolled": selectors.has_authenticator(user),
        "required": selectors.two_factor_required(user),
        "codes_left": selectors.recovery_codes_left(user),
    }
    return render(request, "accounts/security.html", context)


class PasswordChangeView(auth_views.PasswordChangeView):
    """Change one's password: the old one, then the new one twice, checked by every rule of
    ``AUTH_PASSWORD_VALIDATORS``. The user's other sessions end; this one stays."""

    template_name = "accounts/password_change.html"
    form_class = PasswordChangeForm
    success_url = reverse_lazy("accounts:security")

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        messages.success(self.request, _("Your password is changed."))
        return response


def _qr_data_uri(text: str) -> str:
    """A QR code of ``text`` as an SVG data: URI (an <img>, allowed by the security policy)."""
    return str(segno.make(text, error="m").svg_data_uri(scale=5, border=2))


def _secret_text(device: Any) -> str:
    """The authenticator's secret in base32, in groups of four for typing by hand."""
    raw = base64.b32encode(device.bin_key).decode("ascii").rstrip("=")
    return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4))


@never_cache
@login_required
def two_factor_enrol(request: HttpRequest) -> HttpResponse:
    """Set up an authenticator app: scan the QR code (or type the secret), enter a code, and
    keep the recovery codes, shown once."""
    user = current_user(request)
    next_url = _safe_next(request, request.POST.get("next") or request.GET.get("next"))
    if selectors.two_factor_step(user) == "verify":
        # replacing an authenticator takes the current one first
        return redirect(reverse("accounts:two_factor_verify") + "?next=" + request.path)
    error = None
    if request.method == "POST":
        try:
            device, codes = actions.two_factor_confirm(user=user, code=request.POST.get("code", ""))
        except DomainError as exc:
            error = exc.message
        else:
            otp_login(request, device)
            messages.success(request, _("Two-factor sign-in is on."))
            return render(
                request,
                "accounts/recovery_codes.html",
                {"codes": codes, "next": next_url, "first": True},
            )
    device = actions.two_factor_begin(user=user)
    context = {
        "qr": _qr_data_uri(device.config_url),
        "secret": _secret_text(device),
        "error": error,
        "next": next_url,
        "required": selectors.two_factor_required(user),
        "replacing": selectors.has_authenticator(user),
    }
    return render(request, "accounts/two_factor_enrol.html", context, status=422 if error else 200)


def _pending_user(request: HttpRequest) -> tuple[Any, dict[str, Any]] | None:
    """The user who gave the right password in this session, within ``PENDING_SECONDS``."""
    pending = request.session.get(PENDING_KEY)
    if not isinstance(pending, dict):
        return None
    if security.now() - float(pending.get("at", 0)) > PENDING_SECONDS:
        del request.session[PENDING_KEY]
        return None
    user_id = pending.get("user")
    if not isinstance(user_id, int):
        return None
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return None
    return user, pending


@never_cache
@sensitive_post_parameters("code")
def two_factor_verify(request: HttpRequest) -> HttpResponse:
    """The second step: a code of the authenticator app, or a recovery code. Finishes a login
    begun with the password, or verifies a session that was logged in without a code."""
    pending = None
    if request.user.is_authenticated:
        user: Any = request.user
        if selectors.two_factor_step(user) != "verify":
            return redirect(_safe_next(request, request.GET.get("next")))
        next_url = request.POST.get("next") or request.GET.get("next")
    else:
        found = _pending_user(request)
        if found is None:
            messages.info(request, _("Please log in again."))
            return redirect("accounts:login")
        user, pending = found
        next_url = pending.get("next")
    error = None
    if request.method == "POST":
        device = actions.two_factor_check(user=user, code=request.POST.get("code", ""))
        if device is not None:
            if pending is not None:
                request.session.pop(PENDING_KEY, None)
                login(request, user, backend=pending["backend"])
            otp_login(request, device)
            if isinstance(device, StaticDevice):
                left = selectors.recovery_codes_left(user)
                messages.warning(
                    request,
                    _(
                        "You used a recovery code; %(left)d are left. Set up your "
                        "authenticator again or make new codes on the security page."
                    )
                    % {"left": left},
                )
            return HttpResponseRedirect(_safe_next(request, next_url))
        error = _(
            "The code is wrong or has expired. Enter the code the app shows now, or a "
            "recovery code. After several wrong codes, wait a few seconds between tries."
        )
    return render(
        request,
        "accounts/two_factor_verify.html",
        {"error": error, "next": next_url or "", "username": user.get_username()},
        status=422 if error else 200,
    )


@login_required
@require_POST
def recovery_codes(request: HttpRequest) -> HttpResponse:
    """New recovery codes (the old ones stop working), shown once."""
    user = current_user(request)
    if not selectors.has_authenticator(user):
        messages.error(request, _("Set up an authenticator app first."))
        return redirect("accounts:security")
    codes = actions.recovery_codes_replace(user=user)
    return render(
        request,
        "accounts/recovery_codes.html",
        {"codes": codes, "next": reverse("accounts:security"), "first": False},
    )


@login_required
@require_POST
@sensitive_post_parameters("password")
def two_factor_disable(request: HttpRequest) -> HttpResponse:
    """Turn two-factor sign-in off, with the password (refused when a role requires it)."""
    user = current_user(request)
    try:
        actions.two_factor_disable(user=user, password=request.POST.get("password", ""))
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Two-factor sign-in is off."))
    return redirect("accounts:security")
