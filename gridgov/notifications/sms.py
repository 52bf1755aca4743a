"""Text messages: a small backend interface, chosen with ``GRIDGOV_SMS_BACKEND``.

A real gateway (an operator's SMS API) is a class with a ``send(phone, text)`` method that
raises on failure; point ``GRIDGOV_SMS_BACKEND`` at it (a dotted path). The default only logs
that a message would have gone out: the masked number and its length, never the text, which
may carry personal data.
"""

from __future__ import annotations

import logging
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from gridgov.core.masking import mask_phone

log = logging.getLogger("gridgov.notifications.sms")


class SmsBackend(Protocol):
    def send(self, phone: str, text: str) -> None:
        """Send ``text`` to ``phone``; raise on failure."""


class LoggingSmsBackend:
    """Logs "sms to 139****5678: 42 characters" instead of sending."""

    def send(self, phone: str, text: str) -> None:
        log.info("sms to %s: %d characters", mask_phone(phone), len(text))


def sms_backend() -> SmsBackend:
    """A new instance of the configured backend."""
    backend: SmsBackend = import_string(settings.GRIDGOV_SMS_BACKEND)()
    return backend
