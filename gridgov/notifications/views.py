"""The inbox, opening a notification, the header bell and the delivery preferences."""

from __future__ import annotations

import unicodedata
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from gridgov.accounts.selectors import current_user
from gridgov.core.errors import DomainError
from gridgov.core.masking import mask_phone
from gridgov.notifications import actions, selectors
from gridgov.notifications.delivery import mask_email
from gridgov.notifications.forms import PreferenceForm
from gridgov.notifications.templatetags.notifications import bell_context

PAGE_SIZE = 50
#: the event the badge sends when the count moved; the inbox list reloads on it
CHANGED_EVENT = "notifications-changed"


def _error_page(request: HttpRequest, exc: DomainError) -> HttpResponse:
    context = {"message": exc.message, "status": exc.status}
    return render(request, "core/error.html", context, status=exc.status)


def local_path(link: str) -> str | None:
    """``link`` when it is a path on this site ("/cases/…"), else None (never off-site)."""
    if not link.startswith("/") or link.startswith(("//", "/\\")):
        return None
    if any(ch.isspace() or unicodedata.category(ch).startswith("C") for ch in link):
        return None
    if not url_has_allowed_host_and_scheme(link, allowed_hosts=None):
        return None
    return link


@login_required
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    """The user's notifications, newest first (``?show=unread`` for the unread ones)."""
    user = current_user(request)
    show = "unread" if request.GET.get("show") == "unread" else "all"
    rows = selectors.notifications_of(user, unread=True if show == "unread" else None)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    unread = selectors.unread_count(user)
    context = {"page": page, "show": show, "unread": unread, "notifications_unread": unread}
    if request.headers.get("HX-Target") == "inbox-list":  # the list reloads itself
        return render(request, "notifications/_inbox_list.html", context)
    return render(request, "notifications/inbox.html", context)


@login_required
@require_GET
def open_notification(request: HttpRequest, notification_id: UUID) -> HttpResponse:
    """Mark the notification read and go to what it is about (a path on this site only).

    A GET that writes, because it is the link in the inbox and in e-mails; marking one's own
    notification read is harmless, and its id is an unguessable UUID.
    """
    try:
        n = actions.notification_mark_read(
            user=current_user(request), notification_id=notification_id
        )
    except DomainError as exc:
        return _error_page(request, exc)
    return redirect(local_path(n.link) or reverse("notifications:inbox"))


@login_required
@require_POST
def read_all(request: HttpRequest) -> HttpResponse:
    marked = actions.notifications_mark_all_read(user=current_user(request))
    messages.success(
        request,
        ngettext(
            "%(count)d notification marked read.", "%(count)d notifications marked read.", marked
        )
        % {"count": marked},
    )
    target = reverse("notifications:inbox")
    if request.POST.get("show") == "unread":
        target += "?show=unread"
    return redirect(target)


@never_cache
@require_GET
def badge(request: HttpRequest) -> HttpResponse:
    """The header bell with the unread count, polled by htmx.

    Anonymous callers (a session that expired) get 401, not the login page, so that htmx
    swaps nothing into the header. When the count differs from the ``seen`` one the page
    showed, the ``notifications-changed`` event tells an open inbox to reload its list.
    """
    if not request.user.is_authenticated:
        return HttpResponse(status=401)
    context = bell_context(request.user)
    response = render(request, "notifications/_bell.html", context)
    seen = request.GET.get("seen")
    if seen is not None and seen != str(context["unread"]):
        response["HX-Trigger"] = CHANGED_EVENT
    return response


@login_required
def preferences(request: HttpRequest) -> HttpResponse:
    """Choose e-mail and text messages, and the digest threshold."""
    user = current_user(request)
    pref = selectors.preference_of(user)
    if request.method == "POST":
        form = PreferenceForm(request.POST)
        if form.is_valid():
            try:
                actions.preference_update(
                    user=user,
                    email=form.cleaned_data["email"],
                    sms=form.cleaned_data["sms"],
                    digest_threshold=form.cleaned_data["digest_threshold"],
                )
            except DomainError as exc:
                field = exc.detail.get("field")
                form.add_error(field if field in form.fields else None, exc.message)
            else:
                messages.success(request, _("Your notification settings are saved."))
                return redirect("notifications:preferences")
    else:
        form = PreferenceForm(
            initial={
                "email": pref.email,
                "sms": pref.sms,
                "digest_threshold": pref.digest_threshold,
            }
        )
    context = {
        "form": form,
        "email_address": mask_email(user.email),
        "phone": mask_phone(user.work_phone),
    }
    return render(request, "notifications/preferences.html", context)
