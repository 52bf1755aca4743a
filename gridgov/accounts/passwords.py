"""Password rules beyond Django's own (listed in ``AUTH_PASSWORD_VALIDATORS``)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


class LettersAndDigitsValidator:
    """A password holds at least one letter and at least one digit.

    The complexity rule of China's Multi-Level Protection Scheme (等保 2.0) for systems that
    keep personal data: a password mixes kinds of characters. Letters are any script's letters
    (a Chinese character counts), digits are 0-9.
    """

    def validate(self, password: str, user: Any = None) -> None:
        has_letter = any(ch.isalpha() for ch in password)
        has_digit = any("0" <= ch <= "9" for ch in password)
        if not (has_letter and has_digit):
            raise ValidationError(
                _("This password must contain both letters and digits."),
                code="password_no_letters_and_digits",
            )

    def get_help_text(self) -> str:
        return _("Your password must contain both letters and digits.")
