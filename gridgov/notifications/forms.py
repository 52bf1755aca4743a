"""The preferences form of the web screens (the API validates with its own schema)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from gridgov.notifications.actions import DIGEST_THRESHOLD_RANGE


class PreferenceForm(forms.Form):
    email = forms.BooleanField(label=_("By e-mail"), required=False)
    sms = forms.BooleanField(label=_("By text message"), required=False)
    digest_threshold = forms.IntegerField(
        label=_("Digest above"),
        min_value=DIGEST_THRESHOLD_RANGE[0],
        max_value=DIGEST_THRESHOLD_RANGE[1],
        help_text=_(
            "When more notifications than this arrive within an hour, you get one summary "
            "instead of one message each (1 to 1000)."
        ),
    )
