"""Masking of personal data for screens, the API and exports."""

from __future__ import annotations


def mask_phone(value: str | None) -> str:
    """138****5678: keep the first 3 and last 4 digits of a phone number."""
    if not value:
        return ""
    digits = value.strip()
    if len(digits) <= 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_id_number(value: str | None) -> str:
    """3201**********123X: keep the first 4 and last 4 characters."""
    if not value:
        return ""
    text = value.strip()
    if len(text) <= 8:
        return "*" * len(text)
    return text[:4] + "*" * (len(text) - 8) + text[-4:]
