"""``EncryptedTextField``: a text column that holds only ``crypto.encrypt`` tokens."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models.lookups import IsNull
from django.utils.translation import gettext_lazy as _

from . import crypto


class EncryptedTextField(models.TextField):
    """The Python value is the plaintext; the column holds its AES-GCM token.

    A value that already is a token is stored as it is (``rotate-key`` writes tokens). The
    column cannot be filtered on (the tokens differ for equal values): look up through the
    keyed ``*_hash`` column next to it. Only ``isnull`` is allowed.
    """

    description = _("Text encrypted at rest")

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return value
        return crypto.decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        if crypto.is_token(value):
            return value
        return crypto.encrypt(value)

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name != "isnull":
            raise TypeError(
                f"{self.name} is encrypted: filter on its *_hash column instead "
                f"(lookup {lookup_name!r} refused)"
            )
        return IsNull

    def get_transform(self, lookup_name: str) -> Any:
        raise TypeError(f"{self.name} is encrypted: no transform ({lookup_name!r}) applies to it")

    def value_to_string(self, obj: Any) -> str:
        """Serialisation (dumpdata) writes the token, never the plaintext."""
        value = self.value_from_object(obj)
        return self.get_prep_value(value) or ""


def encrypted_fields(model: type[models.Model]) -> list[EncryptedTextField]:
    return [f for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
