"""Chinese number formats as government reports print them: 459,253 (Django's default has none)."""

from django.conf.locale.zh_Hans.formats import *  # noqa: F403

THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
