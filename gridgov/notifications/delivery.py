"""External delivery of notifications (e-mail and text messages), run by a background job.

One pass:

1. **claim**: select up to ``BATCH`` undelivered rows, then ``UPDATE … SET state='claimed',
   claim_token=<this run> WHERE pk IN (…) AND state='pending'`` (or a claim older than
   ``CLAIM_TIMEOUT``, left by a worker that died). Only rows this UPDATE changed are this run's,
   so two workers never send the same notification twice.
2. **group** the claimed rows per user, with the user's preferences (one query) and how many
   notifications each received in the last hour (one query).
3. **send** outside any transaction: users without a channel (or inactive, or the kind muted)
   are ``skipped``; a user who received more than their ``digest_threshold`` in the last hour
   gets ONE digest per channel for the whole group (``digested``), after which their next
   digest waits ``DIGEST_INTERVAL`` (notifications meanwhile stay pending and go out in it);
   everyone else gets one message per notification and channel (``sent``, or ``failed``).
4. **record** a ``Delivery`` row per message with the address masked, and the outcome on each
   notification, for this user in one short transaction.

Logs carry counts and masked numbers only: no address, no message text.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from gridgov.accounts.models import User
from gridgov.core.masking import mask_phone
from gridgov.notifications.models import (
    Channel,
    Delivery,
    DeliveryState,
    DeliveryStatus,
    Notification,
    NotificationPreference,
)
from gridgov.notifications.sms import SmsBackend, sms_backend

log = logging.getLogger("gridgov.notifications")

BATCH = 500
#: a pass stops after this many batches; the next pass (30 s later) carries on
MAX_BATCHES = 20
#: a claim older than this belongs to a worker that died: the next pass takes the rows over
CLAIM_TIMEOUT = timedelta(minutes=15)
#: the window in which more than ``digest_threshold`` notifications make a digest
DIGEST_WINDOW = timedelta(hours=1)
#: while a storm lasts, at most one digest per user in this interval
DIGEST_INTERVAL = timedelta(minutes=15)
#: titles listed in a digest e-mail
DIGEST_LIST = 20
SMS_MAX = 140

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_DIGITS = re.compile(r"\+?\d[\d -]{6,}\d")


def mask_email(value: str | None) -> str:
    """z***@example.cn: the first character of the local part and the domain."""
    if not value:
        return ""
    local, at, domain = value.strip().rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def scrub(text: str) -> str:
    """Text (an exception's message) with e-mail addresses and phone numbers masked."""
    text = _EMAIL.sub(lambda m: mask_email(m.group(0)), text)
    return _DIGITS.sub(lambda m: mask_phone(re.sub(r"[ -]", "", m.group(0))), text)


@dataclass
class DeliveryReport:
    """What one pass did: notifications by outcome, and messages that went out."""

    claimed: int = 0
    sent: int = 0
    digested: int = 0
    skipped: int = 0
    failed: int = 0
    messages: int = 0

    def add(self, other: DeliveryReport) -> None:
        for name in ("claimed", "sent", "digested", "skipped", "failed", "messages"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def summary(self) -> str:
        return (
            f"{self.claimed} claimed: {self.sent} sent, {self.digested} digested, "
            f"{self.skipped} skipped, {self.failed} failed; {self.messages} messages"
        )


def _claimable(now: datetime) -> Q:
    return Q(delivery_state=DeliveryState.PENDING) | Q(
        delivery_state=DeliveryState.CLAIMED, claimed_at__lt=now - CLAIM_TIMEOUT
    )


def claim_pending(
    *, token: str | None = None, limit: int = BATCH, now: datetime | None = None
) -> list[int]:
    """Claim up to ``limit`` undelivered notifications for the run ``token``; their ids.

    Notifications of a user whose next digest is not due yet stay pending (they will go out
    in that digest). A second claim of the same rows (another worker) gets nothing.
    """
    token = token or uuid.uuid4().hex
    now = now or timezone.now()
    held = NotificationPreference.objects.filter(
        user_id=OuterRef("recipient_id"), next_digest_at__gt=now
    )
    ids = list(
        Notification.objects.filter(_claimable(now))
        .exclude(Exists(held))
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    if not ids:
        return []
    Notification.objects.filter(_claimable(now), pk__in=ids).update(
        delivery_state=DeliveryState.CLAIMED, claim_token=token, claimed_at=now
    )
    return list(
        Notification.objects.filter(
            pk__in=ids, claim_token=token, delivery_state=DeliveryState.CLAIMED
        ).values_list("pk", flat=True)
    )


def deliver_pending(*, now: datetime | None = None) -> DeliveryReport:
    """One delivery pass: claim, send and record batch after batch until nothing is left."""
    report = DeliveryReport()
    sms = _LazySms()
    for _batch in range(MAX_BATCHES):
        token = uuid.uuid4().hex
        moment = now or timezone.now()
        ids = claim_pending(token=token, now=moment)
        if not ids:
            break
        report.add(deliver_claimed(ids=ids, token=token, now=moment, sms=sms))
        if len(ids) < BATCH:
            break
    if report.claimed:
        log.info("notifications delivery: %s", report.summary())
    return report


def deliver_claimed(
    *, ids: list[int], token: str, now: datetime, sms: SmsBackend | None = None
) -> DeliveryReport:
    """Send the notifications claimed by ``token`` and record the outcome."""
    report = DeliveryReport()
    sms = sms or _LazySms()
    rows = list(
        Notification.objects.filter(pk__in=ids, claim_token=token)
        .select_related("recipient")
        .order_by("created_at", "pk")
    )
    if not rows:
        return report
    report.claimed = len(rows)
    groups: dict[int, list[Notification]] = defaultdict(list)
    for row in rows:
        groups[row.recipient_id].append(row)
    prefs = {p.user_id: p for p in NotificationPreference.objects.filter(user_id__in=list(groups))}
    recent = dict(
        Notification.objects.filter(
            recipient_id__in=list(groups), created_at__gte=now - DIGEST_WINDOW
        )
        .exclude(delivery_state=DeliveryState.SKIPPED)
        .order_by()
        .values("recipient_id")
        .annotate(n=Count("id"))
        .values_list("recipient_id", "n")
    )
    with translation.override(settings.LANGUAGE_CODE):
        for user_id, group in groups.items():
            outcome = _deliver_to_user(
                user=group[0].recipient,
                group=group,
                pref=prefs.get(user_id),
                recent=recent.get(user_id, 0),
                token=token,
                now=now,
                sms=sms,
            )
            report.add(outcome)
    return report


class _LazySms:
    """The configured SMS backend, made on the first text message of a pass.

    A pass that sends only e-mail never loads it, and a backend that cannot be loaded fails
    its text messages (recorded as failed deliveries), not the e-mails.
    """

    def __init__(self) -> None:
        self._backend: SmsBackend | None = None

    def send(self, phone: str, text: str) -> None:
        if self._backend is None:
            self._backend = sms_backend()
        self._backend.send(phone, text)


class _Sender:
    """Sends on the user's channels and collects the Delivery rows."""

    def __init__(self, user: User, sms: SmsBackend) -> None:
        self.user = user
        self.sms = sms
        self.deliveries: list[Delivery] = []
        self.messages = 0

    def send(
        self,
        channel: str,
        *,
        notification: Notification | None,
        count: int,
        email: Callable[[], tuple[str, str]],
        text: Callable[[], str],
    ) -> str:
        """Send one message on ``channel``; the Delivery status."""
        if channel == Channel.EMAIL:
            address, masked, missing = self.user.email, mask_email(self.user.email), "no e-mail"
        else:
            phone = self.user.work_phone
            address, masked, missing = phone, mask_phone(phone), "no phone number"
        status, error = DeliveryStatus.SENT, ""
        if not address.strip():
            status, error = DeliveryStatus.SKIPPED, missing
        else:
            try:
                if channel == Channel.EMAIL:
                    subject, message = email()
                    send_mail(subject, message, None, [address], fail_silently=False)
                else:
                    self.sms.send(address, text())
                self.messages += 1
            except Exception as exc:  # one failed message must not stop the others
                status, error = DeliveryStatus.FAILED, f"{type(exc).__name__}: {scrub(str(exc))}"
                log.warning("%s delivery failed: %s", channel, type(exc).__name__)
        self.deliveries.append(
            Delivery(
                recipient=self.user,
                notification=notification,
                is_digest=notification is None,
                notification_count=count,
                channel=channel,
                to=masked[:120],
                status=status,
                error=error[:500],
            )
        )
        return status


def _state_of(statuses: list[str], success: str) -> str:
    if DeliveryStatus.SENT in statuses:
        return success
    if DeliveryStatus.FAILED in statuses:
        return DeliveryState.FAILED
    return DeliveryState.SKIPPED


def _deliver_to_user(
    *,
    user: User,
    group: list[Notification],
    pref: NotificationPreference | None,
    recent: int,
    token: str,
    now: datetime,
    sms: SmsBackend,
) -> DeliveryReport:
    channels = pref.channels if pref is not None and user.is_active else []
    muted = set(pref.muted_kinds or []) if pref is not None else set()
    wanted = [n for n in group if n.kind not in muted] if channels else []
    wanted_ids = {n.pk for n in wanted}
    states: dict[str, list[int]] = defaultdict(list)
    states[DeliveryState.SKIPPED] = [n.pk for n in group if n.pk not in wanted_ids]
    sender = _Sender(user, sms)
    digest_sent = False
    if wanted and pref is not None and recent > pref.digest_threshold:
        statuses = [
            sender.send(
                channel,
                notification=None,
                count=len(wanted),
                email=partial(_digest_email, wanted),
                text=partial(_digest_text, wanted),
            )
            for channel in channels
        ]
        state = _state_of(statuses, DeliveryState.DIGESTED)
        states[state].extend(n.pk for n in wanted)
        digest_sent = state == DeliveryState.DIGESTED
    else:
        for n in wanted:
            statuses = [
                sender.send(
                    channel,
                    notification=n,
                    count=1,
                    email=partial(_single_email, n),
                    text=partial(_single_text, n),
                )
                for channel in channels
            ]
            states[_state_of(statuses, DeliveryState.SENT)].append(n.pk)
    with transaction.atomic():
        Delivery.objects.bulk_create(sender.deliveries)
        for state, pks in states.items():
            if pks:
                Notification.objects.filter(pk__in=pks, claim_token=token).update(
                    delivery_state=state
                )
        if digest_sent and pref is not None:
            NotificationPreference.objects.filter(pk=pref.pk).update(
                next_digest_at=now + DIGEST_INTERVAL
            )
    report = DeliveryReport(messages=sender.messages)
    report.sent = len(states[DeliveryState.SENT])
    report.digested = len(states[DeliveryState.DIGESTED])
    report.skipped = len(states[DeliveryState.SKIPPED])
    report.failed = len(states[DeliveryState.FAILED])
    return report


# --- the messages --------------------------------------------------------------------------


def _absolute(path: str) -> str:
    """``path`` on the site (GRIDGOV_SITE_URL), or the bare path when the URL is not set."""
    base = settings.GRIDGOV_SITE_URL.rstrip("/")
    return base + path


def _one_line(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _footer() -> str:
    url = _absolute(reverse("notifications:preferences"))
    return _("You chose these messages in your notification settings: %(url)s") % {"url": url}


def _single_email(n: Notification) -> tuple[str, str]:
    subject = _one_line(f"[{_('gridgov')}] {n.title}", 200)
    parts = [n.title]
    if n.body:
        parts.append(n.body)
    parts.append(
        _("Open: %(url)s") % {"url": _absolute(reverse("notifications:open", args=[n.uuid]))}
    )
    parts.append("-- \n" + _footer())
    return subject, "\n\n".join(parts)


def _single_text(n: Notification) -> str:
    text = f"【{_('gridgov')}】{n.title}"
    if settings.GRIDGOV_SITE_URL:
        url = _absolute(reverse("notifications:open", args=[n.uuid]))
        return _one_line(text, SMS_MAX - len(url) - 1) + " " + url
    return _one_line(text, SMS_MAX)


def _digest_email(rows: list[Notification]) -> tuple[str, str]:
    count = len(rows)
    subject = ngettext(
        "[%(site)s] %(count)d new notification",
        "[%(site)s] %(count)d new notifications",
        count,
    ) % {"site": _("gridgov"), "count": count}
    lines = [
        ngettext(
            "You have %(count)d new notification:",
            "You have %(count)d new notifications:",
            count,
        )
        % {"count": count},
        "",
    ]
    for n in rows[-DIGEST_LIST:][::-1]:
        stamp = timezone.localtime(n.created_at).strftime("%m-%d %H:%M")
        lines.append(f"- {stamp} {_one_line(n.title, 120)}")
    if count > DIGEST_LIST:
        lines.append(_("… and %(more)d more") % {"more": count - DIGEST_LIST})
    lines += [
        "",
        _("Open your inbox: %(url)s") % {"url": _absolute(reverse("notifications:inbox"))},
    ]
    lines += ["", "-- ", _footer()]
    return subject, "\n".join(lines)


def _digest_text(rows: list[Notification]) -> str:
    count = len(rows)
    text = f"【{_('gridgov')}】" + ngettext(
        "%(count)d new notification", "%(count)d new notifications", count
    ) % {"count": count}
    if settings.GRIDGOV_SITE_URL:
        text += " " + _absolute(reverse("notifications:inbox"))
    return text
