"""Every open, reveal, search and export of personal data is logged; reveals need clearance."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from gridgov.accounts import actions as account_actions
from gridgov.accounts.models import Role
from gridgov.core.errors import NotFound, PermissionDenied
from gridgov.privacy.actions import (
    access_log_export,
    access_log_search,
    personal_reveal,
    safe_filter,
)
from gridgov.privacy.errors import ValidationFailed
from gridgov.privacy.models import AccessLog, Clearance
from gridgov.privacy.selectors import access_log_for, clearance_of
from gridgov.registry.selectors import person_get, person_open
from tests.registry.factories import id_number, person

pytestmark = pytest.mark.django_db


@pytest.fixture
def someone(world):
    return person(world.grid_worker_a, id_number=id_number(), phone="13800138000")


def test_the_seeded_clearances_match_the_design(world):
    assert clearance_of(world.grid_worker_a) == (1, True)
    assert clearance_of(world.grid_leader) == (1, True)
    assert clearance_of(world.leader) == (2, False)
    assert clearance_of(world.supervisor) == (0, False)
    assert clearance_of(world.dispatcher) == (0, False)
    assert clearance_of(world.resident) == (0, False)
    assert clearance_of(world.nobody) == (0, False)
    assert clearance_of(world.admin) == (2, True)


def test_opening_a_record_logs_who_which_fields_and_from_where(world, someone):
    opened = person_open(world.grid_worker_a, someone.uuid, channel="web", screen="person-detail")
    assert opened.id_number == opened.id_number_mask
    log = AccessLog.objects.get()
    assert log.user == world.grid_worker_a
    assert log.kind == "view"
    assert log.subject_type == "person"
    assert log.subject_uuid == someone.uuid
    assert log.channel == "web"
    assert log.screen == "person-detail"
    assert "id_number_mask" in log.fields and "phone_mask" in log.fields
    assert log.region_code == someone.region_code


def test_opening_a_record_out_of_scope_is_not_found_and_not_logged(world, someone):
    with pytest.raises(NotFound):
        person_open(world.grid_worker_b, someone.uuid, channel="api", screen="/api/people")
    assert not AccessLog.objects.exists()


def test_a_grid_worker_reveals_with_a_reason_and_the_reveal_is_logged(world, someone):
    masked = person_get(world.grid_worker_a, someone.uuid)
    values = personal_reveal(
        actor=world.grid_worker_a,
        subject_type="person",
        subject=masked,
        fields=["id_number", "phone"],
        reason="入户核实身份",
        channel="web",
        screen="person-detail",
    )
    assert values == {"id_number": someone.id_number, "phone": "13800138000"}
    log = AccessLog.objects.get()
    assert (log.kind, log.reason, log.channel) == ("reveal", "入户核实身份", "web")
    assert log.fields == ["id_number", "phone"]
    assert log.subject_uuid == someone.uuid


def test_a_reveal_without_the_clearance_is_refused(world, someone):
    with pytest.raises(PermissionDenied):
        personal_reveal(
            actor=world.supervisor,
            subject_type="person",
            subject=someone,
            fields=["id_number"],
            reason="需要联系本人",
            channel="web",
        )
    assert not AccessLog.objects.exists()


def test_a_reveal_without_a_reason_is_refused(world, someone):
    for reason in ("", "  ", "看看"):
        with pytest.raises(ValidationFailed) as exc:
            personal_reveal(
                actor=world.grid_worker_a,
                subject_type="person",
                subject=someone,
                fields=["phone"],
                reason=reason,
                channel="api",
            )
        assert exc.value.status == 422
        assert "reason" in exc.value.detail
    assert not AccessLog.objects.exists()


def test_a_reveal_outside_the_grid_of_the_revealing_role_is_refused(world, someone):
    with pytest.raises(PermissionDenied):
        personal_reveal(
            actor=world.grid_worker_b,
            subject_type="person",
            subject=someone,
            fields=["phone"],
            reason="联系核实情况",
            channel="web",
        )


def test_a_reveal_of_a_field_that_is_not_personal_data_is_refused(world, someone):
    with pytest.raises(ValidationFailed):
        personal_reveal(
            actor=world.grid_worker_a,
            subject_type="person",
            subject=someone,
            fields=["name"],
            reason="联系核实情况",
            channel="web",
        )


def test_a_clearance_change_by_an_administrator_takes_effect(world, someone):
    Clearance.objects.filter(role=Role.GRID_WORKER).update(may_reveal=False)
    with pytest.raises(PermissionDenied):
        personal_reveal(
            actor=world.grid_worker_a,
            subject_type="person",
            subject=someone,
            fields=["phone"],
            reason="联系核实情况",
            channel="web",
        )


def test_searches_and_exports_are_logged_without_personal_values(world, someone):
    access_log_search(
        actor=world.grid_worker_a,
        subject_type="person",
        filter={"q": someone.id_number},
        count=1,
        channel="web",
        screen="people-search",
    )
    access_log_export(
        actor=world.grid_worker_a,
        subject_type="person",
        filter={"region": "320113003001001", "phone": "+86 138 0013 8000", "tag": "disabled"},
        count=42,
        screen="people-export",
    )
    search, export = AccessLog.objects.order_by("pk")
    assert search.kind == "search" and search.count == 1
    assert search.filter == {"q": someone.id_number_mask}
    assert export.kind == "export" and export.channel == "export" and export.count == 42
    assert export.filter == {
        "region": "320113003001001",
        "phone": "138****8000",
        "tag": "disabled",
    }
    stored = json.dumps([search.filter, export.filter])
    assert someone.id_number not in stored and "13800138000" not in stored


def test_safe_filter_masks_id_numbers_and_phones_in_free_text_only():
    assert safe_filter({"q": "张三"}) == {"q": "张三"}
    assert safe_filter({"q": "13800138000"}) == {"q": "138****8000"}
    assert safe_filter({"region": "320113003001001"}) == {"region": "320113003001001"}


def test_only_administrators_read_the_log_and_regional_ones_their_regions(world, someone):
    person_open(world.grid_worker_a, someone.uuid, channel="web")
    elsewhere = person(world.admin, grid=world.grid_e)
    person_open(world.admin, elsewhere.uuid, channel="api")
    assert access_log_for(world.admin).count() == 2
    assert access_log_for(world.admin, subject_uuid=someone.uuid).count() == 1
    assert access_log_for(world.admin, user="grid_worker_a").count() == 1
    assert access_log_for(world.admin, since=timezone.now() + timedelta(days=1)).count() == 0
    for persona in ("grid_worker_a", "supervisor", "leader"):
        with pytest.raises(PermissionDenied):
            access_log_for(world.users[persona])
    street_admin = account_actions.user_create(username="street-admin", password="x" * 11 + "1")
    account_actions.role_assign(
        user=street_admin, role=Role.ADMINISTRATOR, region=world.regions["320113003"]
    )
    assert [log.subject_uuid for log in access_log_for(street_admin)] == [someone.uuid]


def test_the_access_log_command_prints_the_log(world, someone, capsys):
    person_open(world.grid_worker_a, someone.uuid, channel="cli", screen="registry show")
    call_command("privacy", "access-log", "--person", str(someone.uuid), "--json")
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["user"] == "grid_worker_a"
    assert entry["kind"] == "view" and entry["channel"] == "cli"
    call_command("privacy", "access-log", "--user", "grid_worker_a", "--as", "admin")
    assert "grid_worker_a" in capsys.readouterr().out


def test_the_access_log_command_refuses_bad_input_and_non_administrators(world):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="uuid"):
        call_command("privacy", "access-log", "--person", "not-a-uuid")
    with pytest.raises(CommandError, match="date"):
        call_command("privacy", "access-log", "--since", "yesterday")
    with pytest.raises(CommandError):
        call_command("privacy", "access-log", "--as", "grid_worker_a")
