"""EncryptedTextField: plaintext in Python, tokens in the column, look-ups through hashes."""

from __future__ import annotations

import pytest
from django.db import connection

from gridgov.privacy import crypto
from gridgov.privacy.models import PersonalDataMasked
from gridgov.registry.models import Person
from tests.registry.factories import fresh, id_number, person

pytestmark = pytest.mark.django_db


def _raw(person_pk: int, column: str) -> str:
    table = Person._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [person_pk])  # noqa: S608
        return cursor.fetchone()[0]


def test_it_stores_no_plaintext_in_the_column(world):
    number = id_number()
    someone = person(world.grid_worker_a, id_number=number, phone="13800138000")
    raw_id, raw_phone = _raw(someone.pk, "id_number"), _raw(someone.pk, "phone")
    assert raw_id.startswith("g1$") and raw_phone.startswith("g1$")
    for column in ("id_number", "phone", "id_number_hash", "phone_hash", "name"):
        value = _raw(someone.pk, column)
        assert number not in value and "13800138000" not in value
    assert crypto.decrypt(raw_id) == number


def test_it_reads_the_plaintext_back(world):
    number = id_number()
    someone = person(world.grid_worker_a, id_number=number, phone="13800138000")
    again = fresh(someone)
    assert again.id_number == number
    assert again.phone == "13800138000"
    assert again.id_number_mask == number[:4] + "*" * 10 + number[-4:]
    assert again.phone_mask == "138****8000"


def test_it_keeps_empty_values_empty(world):
    someone = person(world.grid_worker_a)
    assert _raw(someone.pk, "id_number") == ""
    assert fresh(someone).id_number == ""


def test_it_refuses_to_filter_on_the_encrypted_column(world):
    with pytest.raises(TypeError, match="hash"):
        Person.objects.filter(id_number="32011319900101123X").exists()
    with pytest.raises(TypeError):
        Person.objects.filter(phone__startswith="138").exists()
    assert Person.objects.filter(phone__isnull=True).count() == 0


def test_it_stores_a_token_as_it_is(world):
    someone = person(world.grid_worker_a)
    token = crypto.encrypt("13900001111")
    Person.objects.filter(pk=someone.pk).update(phone=token)
    assert _raw(someone.pk, "phone") == token
    assert fresh(someone).phone == "13900001111"


def test_a_row_read_without_its_encrypted_columns_holds_the_masks_and_cannot_be_saved(world):
    number = id_number()
    someone = person(world.grid_worker_a, id_number=number, phone="13800138000")
    masked = Person.objects.defer("id_number", "phone").get(pk=someone.pk)
    assert masked.is_masked
    assert masked.id_number == masked.id_number_mask != number
    assert masked.phone == "138****8000"
    with pytest.raises(PersonalDataMasked):
        masked.save()
    assert fresh(someone).id_number == number
