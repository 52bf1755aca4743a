from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from gridgov.accounts import actions
from gridgov.accounts.models import ApiToken
from gridgov.accounts.selectors import current_user
from gridgov.core.errors import DomainError


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("accounts:login")


@login_required
def tokens(request: HttpRequest) -> HttpResponse:
    """List, create and revoke the user's API tokens; a new secret is shown once."""
    secret = None
    if request.method == "POST":
        try:
            days_raw = request.POST.get("days", "").strip()
            days = int(days_raw) if days_raw else None
            _token, secret = actions.token_create(
                user=current_user(request), name=request.POST.get("name", ""), days=days
            )
        except ValueError:
            messages.error(request, _("The lifetime must be a whole number of days."))
        except DomainError as exc:
            messages.error(request, exc.message)
    rows = ApiToken.objects.filter(user=current_user(request))
    return render(request, "accounts/tokens.html", {"tokens": rows, "secret": secret})


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: UUID) -> HttpResponse:
    try:
        actions.token_revoke(user=current_user(request), token_uuid=str(token_id))
        messages.success(request, _("The token is revoked."))
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("accounts:tokens")
