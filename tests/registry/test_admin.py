"""The admin shows base data read-only and masked, and logs the opening of a person's page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from gridgov.privacy.models import AccessLog
from gridgov.registry import actions
from gridgov.registry.models import Building, Person
from tests.registry.factories import building, id_number, person

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, world):
    client.force_login(world.admin)
    return client


@pytest.fixture
def someone(world):
    return person(world.grid_worker_a, id_number=id_number(), phone="13800138000")


def test_the_person_list_and_page_show_masks_only(admin_client, someone):
    secret = Person.objects.get().id_number
    listing = admin_client.get(reverse("admin:registry_person_changelist"))
    page = admin_client.get(reverse("admin:registry_person_change", args=[someone.pk]))
    for response in (listing, page):
        assert response.status_code == 200
        html = response.content.decode()
        assert secret not in html and "13800138000" not in html
        assert someone.id_number_mask in html and "138****8000" in html
        assert "g1$" not in html


def test_opening_a_person_in_the_admin_is_logged(admin_client, someone, world):
    admin_client.get(reverse("admin:registry_person_change", args=[someone.pk]))
    log = AccessLog.objects.get()
    assert (log.user, log.kind, log.channel) == (world.admin, "view", "web")
    assert log.subject_uuid == someone.uuid
    assert log.screen.startswith("admin:")


def test_the_admin_finds_a_person_by_id_number_or_phone_through_the_hash(admin_client, someone):
    secret = Person.objects.get().id_number
    url = reverse("admin:registry_person_changelist")
    for term in (secret.lower(), "+86 138 0013 8000", "张三"):
        assert someone.id_number_mask in admin_client.get(url, {"q": term}).content.decode()
    assert (
        someone.id_number_mask not in admin_client.get(url, {"q": "13900000000"}).content.decode()
    )


def test_records_are_neither_added_changed_nor_deleted_in_the_admin(admin_client, world):
    b = building(world.grid_worker_a)
    assert admin_client.get(reverse("admin:registry_building_add")).status_code == 403
    delete = reverse("admin:registry_building_delete", args=[b.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    change = reverse("admin:registry_building_change", args=[b.pk])
    admin_client.post(change, {"floors": 99})
    assert Building.objects.get(pk=b.pk).floors is None


def test_tag_types_and_clearances_are_edited_by_administrators(admin_client):
    assert admin_client.get(reverse("admin:registry_tagtype_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:privacy_clearance_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:privacy_accesslog_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:privacy_accesslog_add")).status_code == 403


def test_an_organisation_shows_its_contact_phone_masked(admin_client, world):
    org = actions.organisation_create(
        actor=world.grid_worker_a, name="和畅超市", contact_phone="13912345678", grid=world.grid_a
    )
    html = admin_client.get(reverse("admin:registry_organisation_change", args=[org.pk])).content
    assert b"13912345678" not in html and b"139****5678" in html
