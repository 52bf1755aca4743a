"""``gridgov privacy rotate-key`` and ``check``: re-encrypt everything, leave hashes alone."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings

from gridgov.privacy import crypto
from gridgov.registry.actions import organisation_create
from gridgov.registry.models import Organisation, Person
from tests.registry.factories import fresh, id_number, person

pytestmark = pytest.mark.django_db

OLD = "the-old-data-key-for-rotation-tests-0123456789"
NEW = "the-new-data-key-for-rotation-tests-0123456789"


def _raw(model, column):
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE {column} <> '' ORDER BY id")  # noqa: S608
        return [row[0] for row in cursor.fetchall()]


def _run(*args):
    out = StringIO()
    call_command("privacy", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def registry(world, settings):
    settings.GRIDGOV_DATA_KEY = OLD
    settings.GRIDGOV_DATA_KEYS_OLD = []
    people = [
        person(world.grid_worker_a, name=f"居民{i}", id_number=id_number(), phone=f"1390000{i:04d}")
        for i in range(5)
    ]
    organisation_create(
        actor=world.grid_worker_a,
        name="和畅便利店",
        kind="shop",
        contact_phone="025-85551234",
        grid=world.grid_a,
    )
    return people


def test_rotate_key_re_encrypts_everything_under_the_new_key_and_keeps_the_hashes(registry):
    before = {p.pk: (p.id_number, p.phone, p.id_number_hash, p.phone_hash) for p in registry}
    old_tokens = _raw(Person, "id_number")
    with override_settings(GRIDGOV_DATA_KEY=NEW, GRIDGOV_DATA_KEYS_OLD=[OLD]):
        out = _run("rotate-key", "--batch", "2")
        assert "registry.Person.id_number: 5 re-encrypted" in out
        assert "registry.Person.phone: 5 re-encrypted" in out
        assert "registry.Organisation.contact_phone: 1 re-encrypted" in out
        new_kid = crypto.key_id(NEW)
        for model, column in (
            (Person, "id_number"),
            (Person, "phone"),
            (Organisation, "contact_phone"),
        ):
            assert all(crypto.token_kid(t) == new_kid for t in _raw(model, column))
        assert set(_raw(Person, "id_number")).isdisjoint(old_tokens)
        for p in registry:
            again = fresh(p)
            assert (again.id_number, again.phone, again.id_number_hash, again.phone_hash) == before[
                p.pk
            ]
        assert fresh(Organisation.objects.get()).contact_phone == "02585551234"
        assert "0 re-encrypted" in _run("rotate-key")  # nothing left: resumable and idempotent
    # the old key can now be retired
    with override_settings(GRIDGOV_DATA_KEY=NEW, GRIDGOV_DATA_KEYS_OLD=[]):
        assert "all values decrypt" in _run("check")
        assert fresh(registry[0]).id_number == before[registry[0].pk][0]


def test_check_counts_values_per_key_and_reports_what_cannot_be_decrypted(registry):
    with override_settings(GRIDGOV_DATA_KEY=NEW, GRIDGOV_DATA_KEYS_OLD=[OLD]):
        out = _run("check")
        assert f"{crypto.key_id(OLD)}: 5" in out
        assert "all values decrypt" in out
    with override_settings(GRIDGOV_DATA_KEY=NEW, GRIDGOV_DATA_KEYS_OLD=[]):
        with pytest.raises(CommandError, match="cannot be decrypted"):
            _run("check")
        with pytest.raises(CommandError, match="could not be decrypted"):
            _run("rotate-key")


def test_a_new_value_written_during_a_rotation_is_already_under_the_new_key(registry, world):
    with override_settings(GRIDGOV_DATA_KEY=NEW, GRIDGOV_DATA_KEYS_OLD=[OLD]):
        newcomer = person(world.grid_worker_a, name="新居民", phone="13911112222")
        token = next(t for t in _raw(Person, "phone") if crypto.decrypt(t) == "13911112222")
        assert crypto.is_current(token)
        assert fresh(newcomer).phone == "13911112222"
