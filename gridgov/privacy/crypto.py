"""Encryption at rest and keyed look-up hashes for personal data (DESIGN.md rule 8).

Values (id numbers, phones) are encrypted with AES-256-GCM under the *data key*; a token reads
``g1$<kid>$<base64url(nonce + ciphertext + tag)>`` where ``kid`` names the key (the first 8 hex
characters of the SHA-256 of the AES key), so a token can always be matched to its key.

- ``GRIDGOV_DATA_KEY``: the current key (any text of at least 32 characters, e.g. base64 of 32
  random bytes; the AES key is the SHA-256 of the text). New values are encrypted under it.
- ``GRIDGOV_DATA_KEYS_OLD``: earlier keys, still accepted for decryption until
  ``gridgov privacy rotate-key`` has re-encrypted every value under the current key.
- ``GRIDGOV_LOOKUP_KEY``: the HMAC key of the look-up hashes (``*_hash`` columns), kept apart
  from the data key so that rotating the data key changes no hash.

The key ring is rebuilt whenever the settings change (it is cached by their values), so tests
and operators can switch keys with ``override_settings`` or a restart.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

#: Every token starts with the format version.
TOKEN_PREFIX = "g1$"  # noqa: S105 (a format marker, not a secret)
_TOKEN = re.compile(r"^g1\$([0-9a-f]{8})\$([A-Za-z0-9_-]{38,})$")
_NONCE_BYTES = 12
#: The shortest key text accepted (base64 of 32 bytes is 44 characters).
MIN_KEY_CHARS = 32

#: Look-up hash kinds.
ID_NUMBER = "id_number"
PHONE = "phone"


class PersonalDataKeyError(Exception):
    """A token cannot be decrypted: its key is unknown, or it was altered (bad tag).

    The message names the key id, never the value."""


@dataclass(frozen=True)
class KeyRing:
    current_kid: str
    ciphers: dict[str, AESGCM]
    lookup_key: bytes

    @property
    def current(self) -> AESGCM:
        return self.ciphers[self.current_kid]

    @property
    def kids(self) -> list[str]:
        return list(self.ciphers)


def _aes_key(text: str, name: str) -> bytes:
    text = text.strip()
    if len(text) < MIN_KEY_CHARS:
        raise ImproperlyConfigured(
            f"{name} must be at least {MIN_KEY_CHARS} characters long (for example base64 of "
            "32 random bytes: python -c 'import os,base64;print(base64.b64encode(os.urandom(32))"
            ".decode())')"
        )
    return hashlib.sha256(text.encode("utf-8")).digest()


def kid_of(aes_key: bytes) -> str:
    return hashlib.sha256(aes_key).hexdigest()[:8]


def key_id(key_text: str) -> str:
    """The kid of a key given as its text (what the settings hold)."""
    return kid_of(_aes_key(key_text, "the key"))


@lru_cache(maxsize=8)
def _build_ring(current: str, old: tuple[str, ...], lookup: str) -> KeyRing:
    ciphers: dict[str, AESGCM] = {}
    key = _aes_key(current, "GRIDGOV_DATA_KEY")
    current_kid = kid_of(key)
    ciphers[current_kid] = AESGCM(key)
    for text in old:
        old_key = _aes_key(text, "GRIDGOV_DATA_KEYS_OLD")
        ciphers.setdefault(kid_of(old_key), AESGCM(old_key))
    return KeyRing(
        current_kid=current_kid,
        ciphers=ciphers,
        lookup_key=_aes_key(lookup, "GRIDGOV_LOOKUP_KEY"),
    )


def key_ring() -> KeyRing:
    """The keys of the current settings (cached per settings values)."""
    old = getattr(settings, "GRIDGOV_DATA_KEYS_OLD", ()) or ()
    if isinstance(old, str):
        old = [k for k in old.split(",") if k.strip()]
    return _build_ring(
        str(settings.GRIDGOV_DATA_KEY),
        tuple(str(k).strip() for k in old if str(k).strip()),
        str(settings.GRIDGOV_LOOKUP_KEY),
    )


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def is_token(value: str) -> bool:
    """Whether ``value`` has the shape of an encrypted token (not whether it decrypts)."""
    return bool(_TOKEN.match(value))


def token_kid(token: str) -> str | None:
    found = _TOKEN.match(token)
    return found.group(1) if found else None


def encrypt(plaintext: str) -> str:
    """The token of ``plaintext`` under the current key; ``""`` stays ``""``."""
    if plaintext == "":
        return ""
    ring = key_ring()
    nonce = os.urandom(_NONCE_BYTES)
    sealed = ring.current.encrypt(nonce, plaintext.encode("utf-8"), None)
    return f"{TOKEN_PREFIX}{ring.current_kid}${_b64encode(nonce + sealed)}"


def decrypt(token: str) -> str:
    """The plaintext of a token made by ``encrypt`` under the current or an old key."""
    if token == "":
        return ""
    found = _TOKEN.match(token)
    if not found:
        raise PersonalDataKeyError("the stored value is not an encrypted token (format g1$…)")
    kid, body = found.groups()
    cipher = key_ring().ciphers.get(kid)
    if cipher is None:
        raise PersonalDataKeyError(
            f"no key with id {kid} is configured: set GRIDGOV_DATA_KEY or add the old key to "
            "GRIDGOV_DATA_KEYS_OLD"
        )
    try:
        raw = _b64decode(body)
        if _b64encode(raw) != body:  # non-canonical (altered padding bits)
            raise ValueError("non-canonical base64")
        plain = cipher.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], None)
    except (InvalidTag, ValueError) as exc:
        raise PersonalDataKeyError(
            f"a value encrypted under key {kid} fails its integrity check (altered or corrupt)"
        ) from exc
    return plain.decode("utf-8")


def is_current(token: str) -> bool:
    """Whether ``token`` is encrypted under the current key (``""`` counts as current)."""
    if token == "":
        return True
    return token_kid(token) == key_ring().current_kid


def reencrypt(token: str) -> str:
    """The token re-encrypted under the current key (as is when it already is)."""
    return token if is_current(token) else encrypt(decrypt(token))


# --- normalisation and look-up hashes ------------------------------------------------------------

_SPACES = re.compile(r"\s+")
_NOT_DIGIT = re.compile(r"[^0-9]")
_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")


def normalise_id_number(value: str) -> str:
    """``" 3201 1319 9001 01123x "`` → ``"32011319900101123X"`` (full-width forms folded)."""
    text = unicodedata.normalize("NFKC", value or "")
    return _SPACES.sub("", text).upper()


def normalise_phone(value: str) -> str:
    """Digits only, without the country prefix: ``"+86 138 0013 8000"`` → ``"13800138000"``.

    ``+86``/``0086``/``86`` before a mobile number is dropped; ``+86 25 8…`` (a landline written
    internationally) becomes ``0258…``, as it is dialled inside China.
    """
    text = unicodedata.normalize("NFKC", value or "").strip()
    digits = _NOT_DIGIT.sub("", text)
    international = text.startswith("+") or digits.startswith("0086")
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and (international or _MOBILE.match(digits[2:])):
        digits = digits[2:]
    else:
        return digits
    if not _MOBILE.match(digits) and not digits.startswith(("0", "400", "800")):
        digits = "0" + digits
    return digits


_NORMALISERS = {ID_NUMBER: normalise_id_number, PHONE: normalise_phone}


def normalise(kind: str, value: str) -> str:
    try:
        return _NORMALISERS[kind](value)
    except KeyError:
        raise ValueError(f"unknown look-up kind {kind!r}") from None


def lookup_hash(kind: str, value: str) -> str:
    """HMAC-SHA256 of ``kind`` and the normalised value as 64 hex characters; ``""`` for empty.

    Stable across data key rotations; equal for every spelling of the same number."""
    normal = normalise(kind, value)
    if not normal:
        return ""
    message = f"{kind}\0{normal}".encode()
    return hmac.new(key_ring().lookup_key, message, hashlib.sha256).hexdigest()
