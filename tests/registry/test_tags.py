"""Tags are data; sensitive ones are seen and set only by cleared roles."""

from __future__ import annotations

import json

import pytest
from django.db.models import Prefetch

from gridgov.accounts.models import Role, User
from gridgov.core.errors import Conflict, PermissionDenied
from gridgov.privacy.errors import ValidationFailed
from gridgov.privacy.models import Clearance
from gridgov.registry import actions, selectors
from gridgov.registry.models import PersonTag, RecordChange, TagType
from tests.registry.factories import person

pytestmark = pytest.mark.django_db


@pytest.fixture
def tagged(world):
    someone = person(world.grid_worker_a, tags=["elderly_alone"])
    actions.person_tag_add(
        actor=world.grid_worker_a, person=someone, tag="community_correction", note="2026年起"
    )
    return someone


def test_the_standard_tag_types_are_seeded_with_their_levels(db):
    assert TagType.objects.get(code="elderly_alone").name_zh == "独居老人"
    assert TagType.objects.get(code="drug_user").sensitivity == 1
    assert TagType.objects.filter(sensitivity=0).count() == 8
    assert TagType.objects.filter(sensitivity=1).count() == 6


def test_sensitive_tags_are_hidden_from_a_supervisor(world, tagged):
    def codes(user):
        return [t.tag_type.code for t in selectors.visible_tags(user, tagged)]

    assert codes(world.grid_worker_a) == ["elderly_alone", "community_correction"]
    assert codes(world.grid_leader) == ["elderly_alone", "community_correction"]
    assert codes(world.supervisor) == ["elderly_alone"]
    assert codes(world.dispatcher) == ["elderly_alone"]
    assert codes(world.admin) == ["elderly_alone", "community_correction"]


def test_a_list_prefetches_only_the_visible_tags(world, tagged, django_assert_num_queries):
    people = list(
        selectors.people_visible_to(world.supervisor).prefetch_related(
            selectors.tags_prefetch(world.supervisor)
        )
    )
    with django_assert_num_queries(0):
        assert [t.tag_type.code for t in selectors.visible_tags(world.supervisor, people[0])] == [
            "elderly_alone"
        ]
    assert isinstance(selectors.tags_prefetch(world.supervisor), Prefetch)


def test_tag_types_offered_follow_the_clearance(world):
    assert not selectors.tag_types_visible_to(world.supervisor).filter(sensitivity=1).exists()
    assert selectors.tag_types_visible_to(world.grid_worker_a).filter(code="drug_user").exists()


def test_a_role_without_the_clearance_may_not_set_or_remove_a_sensitive_tag(world, tagged):
    Clearance.objects.filter(role=Role.GRID_WORKER).update(level=0)
    worker = User.objects.get(pk=world.grid_worker_a.pk)  # a new request reads it again
    with pytest.raises(PermissionDenied):
        actions.person_tag_add(actor=worker, person=tagged, tag="drug_user")
    with pytest.raises(PermissionDenied):
        actions.person_tag_remove(actor=worker, person=tagged, tag="community_correction")
    actions.person_tag_add(actor=worker, person=tagged, tag="veteran")
    assert [t.tag_type.code for t in selectors.visible_tags(worker, tagged)] == [
        "elderly_alone",
        "veteran",
    ]


def test_tagging_twice_or_with_an_unknown_or_retired_tag_is_refused(world, tagged):
    with pytest.raises(Conflict):
        actions.person_tag_add(actor=world.grid_worker_a, person=tagged, tag="elderly_alone")
    with pytest.raises(ValidationFailed):
        actions.person_tag_add(actor=world.grid_worker_a, person=tagged, tag="vip")
    TagType.objects.filter(code="veteran").update(active=False)
    with pytest.raises(ValidationFailed):
        actions.person_tag_add(actor=world.grid_worker_a, person=tagged, tag="veteran")


def test_untagging_is_recorded_and_a_missing_tag_is_a_conflict(world, tagged):
    actions.person_tag_remove(
        actor=world.grid_worker_a, person=tagged, tag="elderly_alone", reason="已与子女同住"
    )
    assert not PersonTag.objects.filter(tag_type__code="elderly_alone").exists()
    with pytest.raises(Conflict):
        actions.person_tag_remove(actor=world.grid_worker_a, person=tagged, tag="elderly_alone")
    untag = RecordChange.objects.get(action="untag")
    assert untag.changes == {"tag": ["elderly_alone", None]}
    assert untag.reason == "已与子女同住"


def test_the_history_shows_sensitive_tag_changes_only_to_cleared_users(world, tagged):
    def tag_changes(user):
        return [
            e.changes["tag"][1] for e in selectors.record_history(user, tagged) if e.action == "tag"
        ]

    assert tag_changes(world.grid_worker_a) == ["elderly_alone", "community_correction"]
    assert tag_changes(world.supervisor) == ["elderly_alone"]
    seen_by_supervisor = json.dumps(
        [e.changes for e in selectors.record_history(world.supervisor, tagged)]
    )
    assert "community_correction" not in seen_by_supervisor
