"""Encryption at rest and look-up hashes (gridgov.privacy.crypto)."""

from __future__ import annotations

import base64
import re

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from gridgov.privacy import crypto

KEY_1 = "first-data-key-for-tests-0123456789abcdef"
KEY_2 = "second-data-key-for-tests-0123456789abcdef"
LOOKUP = "lookup-key-for-tests-0123456789abcdef-xyz"


@pytest.fixture(autouse=True)
def _keys(settings):
    settings.GRIDGOV_DATA_KEY = KEY_1
    settings.GRIDGOV_DATA_KEYS_OLD = []
    settings.GRIDGOV_LOOKUP_KEY = LOOKUP


def test_it_round_trips_text_through_a_token():
    token = crypto.encrypt("32011319900101123X")
    assert crypto.decrypt(token) == "32011319900101123X"
    assert crypto.decrypt(crypto.encrypt("王小明 ☎ 13800138000")) == "王小明 ☎ 13800138000"


def test_it_writes_tokens_in_the_documented_format_naming_the_key():
    token = crypto.encrypt("13800138000")
    match = re.fullmatch(r"g1\$([0-9a-f]{8})\$([A-Za-z0-9_-]+)", token)
    assert match is not None
    assert match.group(1) == crypto.key_id(KEY_1)
    assert "=" not in token
    raw = base64.urlsafe_b64decode(match.group(2) + "=" * (-len(match.group(2)) % 4))
    assert len(raw) == 12 + len("13800138000") + 16  # nonce + ciphertext + tag


def test_it_uses_a_fresh_nonce_so_equal_values_give_different_tokens():
    assert crypto.encrypt("13800138000") != crypto.encrypt("13800138000")


def test_it_keeps_empty_text_empty():
    assert crypto.encrypt("") == ""
    assert crypto.decrypt("") == ""


@pytest.mark.parametrize("position", [-1, -5, 15, 25])
def test_it_refuses_a_tampered_token(position):
    token = crypto.encrypt("32011319900101123X")
    chars = list(token)
    chars[position] = "A" if chars[position] != "A" else "B"
    with pytest.raises(crypto.PersonalDataKeyError) as exc:
        crypto.decrypt("".join(chars))
    assert "32011319900101123X" not in str(exc.value)


def test_it_names_the_unknown_key_but_never_the_value():
    token = crypto.encrypt("13800138000")
    with (
        override_settings(GRIDGOV_DATA_KEY=KEY_2),
        pytest.raises(crypto.PersonalDataKeyError) as exc,
    ):
        crypto.decrypt(token)
    assert crypto.key_id(KEY_1) in str(exc.value)
    assert "13800138000" not in str(exc.value)


def test_it_refuses_text_that_is_not_a_token():
    with pytest.raises(crypto.PersonalDataKeyError):
        crypto.decrypt("13800138000")


def test_an_old_key_still_decrypts_and_new_values_use_the_current_key():
    token = crypto.encrypt("13800138000")
    assert crypto.is_current(token)
    with override_settings(GRIDGOV_DATA_KEY=KEY_2, GRIDGOV_DATA_KEYS_OLD=[KEY_1]):
        assert crypto.decrypt(token) == "13800138000"
        assert not crypto.is_current(token)
        fresh = crypto.reencrypt(token)
        assert crypto.token_kid(fresh) == crypto.key_id(KEY_2)
        assert crypto.decrypt(fresh) == "13800138000"
        assert crypto.reencrypt(fresh) == fresh


def test_the_key_ring_follows_the_settings():
    assert crypto.key_ring().current_kid == crypto.key_id(KEY_1)
    with override_settings(GRIDGOV_DATA_KEY=KEY_2):
        assert crypto.key_ring().current_kid == crypto.key_id(KEY_2)
    assert crypto.key_ring().current_kid == crypto.key_id(KEY_1)


def test_it_refuses_a_short_key():
    with override_settings(GRIDGOV_DATA_KEY="too-short"), pytest.raises(ImproperlyConfigured):
        crypto.encrypt("x")


def test_it_accepts_base64_of_32_random_bytes_as_a_key():
    key = base64.b64encode(bytes(range(32))).decode()
    with override_settings(GRIDGOV_DATA_KEY=key):
        assert crypto.decrypt(crypto.encrypt("x")) == "x"


@pytest.mark.parametrize(
    "spelling",
    [
        "13800138000",
        "+86 138 0013 8000",
        "0086-138-0013-8000",
        "86 13800138000",
        "１３８００１３８０００",
    ],
)
def test_phone_hashes_are_equal_for_every_spelling_of_a_number(spelling):
    assert crypto.normalise_phone(spelling) == "13800138000"
    assert crypto.lookup_hash("phone", spelling) == crypto.lookup_hash("phone", "13800138000")


def test_a_landline_written_internationally_hashes_like_the_domestic_form():
    assert crypto.normalise_phone("+86 25 8555 1234") == "02585551234"
    assert crypto.lookup_hash("phone", "+86 25 8555 1234") == crypto.lookup_hash(
        "phone", "025-85551234"
    )
    assert crypto.normalise_phone("86123456") == "86123456"  # a local number, no prefix


def test_id_number_hashes_ignore_spaces_and_the_case_of_x():
    assert crypto.normalise_id_number(" 320113 19900101 123x ") == "32011319900101123X"
    assert crypto.lookup_hash("id_number", "32011319900101123x") == crypto.lookup_hash(
        "id_number", "320113 19900101 123X"
    )


def test_hashes_are_hex_keyed_and_separate_kinds():
    digest = crypto.lookup_hash("phone", "13800138000")
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert digest != crypto.lookup_hash("id_number", "13800138000")
    with override_settings(GRIDGOV_LOOKUP_KEY="another-lookup-key-0123456789abcdefgh"):
        assert crypto.lookup_hash("phone", "13800138000") != digest
    assert crypto.lookup_hash("phone", "") == ""


def test_hashes_do_not_change_when_the_data_key_rotates():
    digest = crypto.lookup_hash("id_number", "32011319900101123X")
    with override_settings(GRIDGOV_DATA_KEY=KEY_2, GRIDGOV_DATA_KEYS_OLD=[KEY_1]):
        assert crypto.lookup_hash("id_number", "32011319900101123X") == digest


def test_an_unknown_hash_kind_is_a_programming_error():
    with pytest.raises(ValueError):
        crypto.lookup_hash("email", "a@b.c")
