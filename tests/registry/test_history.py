"""Every create, change, close and tag is on the record's history; personal values masked."""

from __future__ import annotations

import json
from datetime import date

import pytest
from django.utils import timezone

from gridgov.core.errors import NotFound
from gridgov.core.masking import mask_id_number
from gridgov.registry import actions
from gridgov.registry.models import LedgerImport, RecordChange
from gridgov.registry.selectors import record_history
from tests.registry.factories import building, fresh, home, id_number, person

pytestmark = pytest.mark.django_db


def test_a_create_and_each_change_append_one_versioned_entry(world):
    b = building(world.grid_worker_a, floors=5)
    actions.building_update(actor=world.grid_worker_a, building=b, floors=6, reason="实地核对")
    actions.building_close(
        actor=world.grid_worker_a, building=b, closed_reason="demolished", reason="已拆除"
    )
    entries = record_history(world.grid_worker_a, fresh(b))
    assert [(e.action, e.version) for e in entries] == [("create", 1), ("update", 2), ("close", 3)]
    created, changed, closed = entries
    assert created.actor == world.grid_worker_a
    assert created.changes["floors"] == [None, 5]
    assert created.changes["region_code"] == [None, world.grid_a.code]
    assert changed.changes == {"floors": [5, 6]}
    assert changed.reason == "实地核对"
    assert closed.changes["closed_reason"] == ["", "demolished"]
    assert closed.reason == "已拆除"


def test_personal_fields_appear_only_masked_in_the_history(world):
    first, second = id_number(date(1980, 1, 1)), id_number(date(1980, 1, 1))
    someone = person(world.grid_worker_a, id_number=first, phone="13800138000")
    actions.person_update(
        actor=world.grid_worker_a,
        person=someone,
        id_number=second,
        phone="13911112222",
        reason="更正证件号",
    )
    stored = json.dumps(list(RecordChange.objects.values_list("changes", flat=True)))
    for secret in (first, second, "13800138000", "13911112222"):
        assert secret not in stored
    update = RecordChange.objects.get(action="update")
    assert update.changes["id_number"] == [mask_id_number(first), mask_id_number(second)]
    assert update.changes["phone"] == ["138****8000", "139****2222"]
    assert "id_number_hash" not in update.changes
    assert update.reason == "更正证件号"


def test_a_person_created_by_an_import_has_its_import_as_first_entry(world):
    batch = LedgerImport.objects.create(
        created_by=world.grid_worker_a,
        file_name="和畅社区人口台账.xlsx",
        status="imported",
        finished_at=timezone.now(),
    )
    someone = actions.person_create(
        actor=world.grid_worker_a,
        name="王五",
        household=home(world.grid_worker_a),
        import_batch=batch,
        import_row=7,
    )
    assert not RecordChange.objects.filter(record_uuid=someone.uuid).exists()
    actions.person_update(actor=world.grid_worker_a, person=someone, ethnicity="汉族")
    first, second = record_history(world.grid_worker_a, fresh(someone))
    assert (first.action, first.import_batch, first.import_row) == ("create", batch, 7)
    assert first.actor == world.grid_worker_a
    assert (second.action, second.changes) == ("update", {"ethnicity": ["", "汉族"]})


def test_moves_and_heads_are_on_the_history_of_person_and_household(world):
    h = home(world.grid_worker_a)
    someone = person(world.grid_worker_a, household=h, relation="head")
    actions.person_move(actor=world.grid_worker_a, person=someone, grid=world.grid_a, reason="外出")
    household_entries = record_history(world.grid_worker_a, fresh(h))
    assert [e.changes.get("head") for e in household_entries[1:]] == [
        [None, str(someone.uuid)],
        [str(someone.uuid), None],
    ]
    moved = record_history(world.grid_worker_a, fresh(someone))[-1]
    assert moved.changes["household"] == [str(h.uuid), None]
    assert moved.reason == "外出"


def test_a_new_number_with_the_same_mask_still_counts_as_a_change():
    from gridgov.registry.history import diff

    old, new = "320113199001010011", "320113199101020011"
    assert mask_id_number(old) == mask_id_number(new)
    assert diff({"id_number": old}, {"id_number": new}) == {
        "id_number": [mask_id_number(old), mask_id_number(new)]
    }
    assert diff({"id_number": old}, {"id_number": old}) == {}


def test_history_is_read_only_within_scope(world):
    someone = person(world.grid_worker_a)
    with pytest.raises(NotFound):
        record_history(world.grid_worker_b, someone)
    assert record_history(world.supervisor, someone)
