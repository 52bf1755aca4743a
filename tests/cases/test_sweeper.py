"""The deadline sweeper: lights, due-soon and overdue notices, escalation rules."""

from __future__ import annotations

import importlib
import io
import threading
from collections.abc import Generator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from gridgov.accounts.models import User
from gridgov.cases import sweeper
from gridgov.cases.actions import Inputs, case_act
from gridgov.cases.models import Case, CaseEvent, EscalationRule
from gridgov.cases.sweeper import (
    claim_due_soon,
    claim_escalations,
    claim_overdue,
    escalation_due,
    sweep,
)
from gridgov.core import actions as core_actions
from gridgov.core.jobs import registered_jobs, run_due_jobs
from gridgov.core.worktime import local_zone
from gridgov.notifications.models import DeliveryState, Notification, NotificationPreference
from tests.cases.factories import report
from tests.world import World

pytestmark = pytest.mark.django_db

on_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="two sweepers at once need PostgreSQL (the SQLite test database lives in memory)",
)


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=local_zone())  # type: ignore[misc]


def act_at(case: Case, actor: User, action: str, at: datetime, **inputs: Any) -> Case:
    case.refresh_from_db()
    return case_act(
        case=case,
        actor=actor,
        action=action,
        version=case.version,
        inputs=Inputs(**inputs),
        at=at,
    )


def dispatched_at(world: World, at: datetime) -> Case:
    """A case reported, accepted, registered and dispatched to street-office-003 at ``at``."""
    case = report(world.grid_worker_a, at=at)
    act_at(case, world.intake_operator, "accept", at)
    act_at(case, world.intake_operator, "register", at)
    return act_at(case, world.dispatcher, "dispatch", at, lead_unit="street-office-003")


def inbox(user: User, kind: str) -> list[Notification]:
    return list(Notification.objects.filter(recipient=user, kind=kind))


def kinds_by_persona(world: World) -> dict[str, list[str]]:
    names = {u.pk: name for name, u in world.users.items()}
    found: dict[str, list[str]] = {}
    for recipient, kind in Notification.objects.filter(kind__startswith="case.").values_list(
        "recipient_id", "kind"
    ):
        if kind in (sweeper.KIND_DUE_SOON, sweeper.KIND_OVERDUE, sweeper.KIND_ESCALATED):
            found.setdefault(names[recipient], []).append(kind)
    return {k: sorted(v) for k, v in sorted(found.items())}


@pytest.fixture(autouse=True)
def _rules() -> Generator[None, None, None]:
    """The default rules, whatever an earlier (transactional) test left in the table."""
    EscalationRule.objects.all().delete()
    EscalationRule.objects.create(step="sign", after="24h", notify_role="shift_leader")
    EscalationRule.objects.create(step="handle", after="5d", notify_role="leader")
    sweeper.invalidate_local()
    yield
    sweeper.invalidate_local()


# --- lights -----------------------------------------------------------------------------------


def test_a_case_turns_yellow_after_80_percent_of_its_limit_in_working_time_and_red_after_it(
    world: World,
) -> None:
    # a 30-minute register limit started at 11:50 on a Monday: 10 minutes before lunch, the
    # rest after it; 80 % (24 minutes) is at 13:44, the limit at 13:50
    case = report(world.grid_worker_a, at=local(2026, 11, 23, 11, 50))
    assert case.light == "green" and case.due_at == local(2026, 11, 23, 13, 50)

    assert sweep(now=local(2026, 11, 23, 13, 43)).due_soon == 0
    case.refresh_from_db()
    assert case.light == "green"

    result = sweep(now=local(2026, 11, 23, 13, 44))
    assert (result.due_soon, result.overdue) == (1, 0)
    case.refresh_from_db()
    assert case.light == "yellow"

    result = sweep(now=local(2026, 11, 23, 13, 50))
    assert (result.due_soon, result.overdue) == (0, 1)
    case.refresh_from_db()
    assert case.light == "red"


def test_the_people_whose_turn_it_is_hear_it_is_due_soon_and_their_supervisor_when_overdue(
    world: World,
) -> None:
    report(world.grid_worker_a, at=local(2026, 11, 23, 9, 0))
    sweep(now=local(2026, 11, 23, 9, 25))
    # registering is the intake operators' and dispatchers' turn
    assert kinds_by_persona(world) == {
        "dispatcher": ["case.due_soon"],
        "intake_operator": ["case.due_soon"],
    }
    sweep(now=local(2026, 11, 23, 9, 30))
    assert kinds_by_persona(world) == {
        "dispatcher": ["case.due_soon", "case.overdue"],
        "intake_operator": ["case.due_soon", "case.overdue"],
        "shift_leader": ["case.overdue"],
    }


def test_a_dispatched_case_due_soon_is_announced_to_the_handlers_of_its_lead_unit(
    world: World,
) -> None:
    case = dispatched_at(world, local(2026, 11, 23, 9, 0))
    assert case.step == "sign"
    sweep(now=case.due_soon_at)
    assert kinds_by_persona(world) == {"unit_handler": ["case.due_soon"]}
    (notice,) = inbox(world.unit_handler, "case.due_soon")
    assert notice.subject_ref == case.number and notice.link == f"/cases/{case.number}/"
    assert case.number in notice.title


def test_a_case_that_passed_both_points_between_two_passes_is_only_announced_overdue(
    world: World,
) -> None:
    case = report(world.grid_worker_a, at=local(2026, 11, 23, 9, 0))
    result = sweep(now=local(2026, 11, 23, 16, 0))
    assert (result.due_soon, result.overdue) == (0, 1)
    case.refresh_from_db()
    assert case.light == "red"
    assert not Notification.objects.filter(kind="case.due_soon").exists()


def test_each_person_is_notified_exactly_once_even_when_the_sweep_runs_twice(
    world: World,
) -> None:
    report(world.grid_worker_a, at=local(2026, 11, 23, 9, 0))
    now = local(2026, 11, 23, 9, 25)
    first, second = sweep(now=now), sweep(now=now)
    assert first.due_soon == 1 and first.notifications == 2
    assert second == sweeper.SweepResult(0, 0, 0, 0)
    assert len(inbox(world.intake_operator, "case.due_soon")) == 1
    sweep(now=local(2026, 11, 23, 10, 0))
    sweep(now=local(2026, 11, 23, 11, 0))
    assert len(inbox(world.intake_operator, "case.overdue")) == 1


def test_two_sweepers_claiming_the_same_cases_at_the_same_time_get_each_case_once(
    world: World,
) -> None:
    early = report(world.grid_worker_a, at=local(2026, 11, 23, 9, 0))
    late = report(world.grid_worker_a, at=local(2026, 11, 23, 9, 2))
    escalating = dispatched_at(world, local(2026, 11, 23, 9, 0))
    now = local(2026, 11, 23, 9, 25)
    assert claim_due_soon(now=now) == [early.pk]
    assert claim_due_soon(now=now) == []
    now = local(2026, 11, 27, 9, 0)
    assert sorted(claim_overdue(now=now)) == sorted([early.pk, late.pk, escalating.pk])
    assert claim_overdue(now=now) == []
    assert claim_escalations(now=now) == [escalating.pk]
    assert claim_escalations(now=now) == []


def test_a_claim_takes_at_most_a_batch_and_the_pass_goes_on_until_all_are_done(
    world: World,
) -> None:
    for minute in range(5):
        report(world.grid_worker_a, at=local(2026, 11, 23, 9, minute))
    now = local(2026, 11, 23, 10, 0)
    assert len(claim_overdue(now=now, batch=2)) == 2
    assert sweep(now=now, batch=2).overdue == 3
    assert Case.objects.filter(light="red").count() == 5


def test_the_sweeper_writes_no_timeline_event_and_leaves_the_version_alone(
    world: World,
) -> None:
    case = dispatched_at(world, local(2026, 11, 20, 15, 0))
    events, version, updated = case.events.count(), case.version, case.updated_at
    result = sweep(now=local(2026, 12, 1, 9, 0))
    assert (result.overdue, result.escalated) == (1, 1)
    case.refresh_from_db()
    assert case.light == "red" and case.escalate_at is None
    assert case.events.count() == events == CaseEvent.objects.filter(case=case).count()
    assert (case.version, case.updated_at) == (version, updated)
    # and a user who loaded the case before the sweep can still act on it
    signed = case_act(
        case=case.number,
        actor=world.unit_handler,
        action="sign",
        version=version,
        at=local(2026, 12, 1, 9, 5),
    )
    assert signed.state == "handling"


def test_a_notification_waits_for_e_mail_only_for_recipients_who_chose_it_and_did_not_mute_it(
    world: World,
) -> None:
    NotificationPreference.objects.create(user=world.intake_operator, email=True)
    NotificationPreference.objects.create(
        user=world.dispatcher, email=True, muted_kinds=["case.due_soon"]
    )
    report(world.grid_worker_a, at=local(2026, 11, 23, 9, 0))
    sweep(now=local(2026, 11, 23, 9, 25))
    (mine,) = inbox(world.intake_operator, "case.due_soon")
    (muted,) = inbox(world.dispatcher, "case.due_soon")
    assert mine.delivery_state == DeliveryState.PENDING
    assert muted.delivery_state == DeliveryState.SKIPPED


def test_many_cases_changing_in_one_pass_cost_the_same_queries_as_two(world: World) -> None:
    def queries_for(count: int) -> int:
        Case.objects.all().delete()
        for i in range(count):
            report(world.grid_worker_a, at=local(2026, 11, 23, 9, 0) + timedelta(seconds=i))
        with CaptureQueriesContext(connection) as captured:
            result = sweep(now=local(2026, 11, 23, 9, 25))
        assert result.due_soon == count and result.notifications == 2 * count
        return len(captured.captured_queries)

    assert queries_for(2) == queries_for(30)


# --- escalation -------------------------------------------------------------------------------


def test_the_shift_leader_hears_when_the_unit_has_not_signed_within_24_working_hours(
    world: World,
) -> None:
    # Friday 15:00: 2.5 h on Friday, the weekend does not count, 7.5 h on Monday and on
    # Tuesday, 6.5 h on Wednesday: 24 working hours end on Wednesday at 16:30
    case = dispatched_at(world, local(2026, 11, 20, 15, 0))
    assert case.escalate_at == local(2026, 11, 25, 16, 30)

    assert sweep(now=local(2026, 11, 25, 16, 29)).escalated == 0
    assert inbox(world.shift_leader, "case.escalated") == []

    assert sweep(now=local(2026, 11, 25, 16, 30)).escalated == 1
    (notice,) = inbox(world.shift_leader, "case.escalated")
    assert case.number in notice.title and notice.subject_ref == case.number
    assert kinds_by_persona(world)["shift_leader"].count("case.escalated") == 1
    assert "case.escalated" not in kinds_by_persona(world).get("unit_handler", [])

    assert sweep(now=local(2026, 11, 30, 9, 0)).escalated == 0
    assert len(inbox(world.shift_leader, "case.escalated")) == 1


def test_the_24_working_hours_run_across_the_new_year_and_its_holiday(world: World) -> None:
    # chinese-calendar does not know 2027 yet: the administrator enters New Year's Day
    core_actions.calendar_override_set(day=date(2027, 1, 1), kind="holiday", note="元旦")
    # Wednesday 30 December 10:00: 6 h that day, 7.5 h on Thursday 31, none on Friday 1
    # January or the weekend, 7.5 h on Monday 4, and 3 h on Tuesday 5 January
    case = dispatched_at(world, local(2026, 12, 30, 10, 0))
    assert case.escalate_at == local(2027, 1, 5, 11, 30)
    assert sweep(now=local(2027, 1, 5, 11, 29)).escalated == 0
    assert sweep(now=local(2027, 1, 5, 11, 30)).escalated == 1
    assert len(inbox(world.shift_leader, "case.escalated")) == 1


def test_signing_in_time_starts_the_handling_clock_with_its_own_rule_and_the_sign_rule_never_fires(
    world: World,
) -> None:
    case = dispatched_at(world, local(2026, 11, 23, 9, 0))
    case = act_at(case, world.unit_handler, "sign", local(2026, 11, 24, 9, 0))
    # the handle rule: 5 working days after signing, the leader hears of it
    assert case.step == "handle" and case.escalate_at == local(2026, 12, 1, 9, 0)
    assert sweep(now=local(2026, 11, 30, 17, 0)).escalated == 0
    assert sweep(now=local(2026, 12, 1, 9, 0)).escalated == 1
    assert kinds_by_persona(world)["leader"] == ["case.escalated"]
    assert "case.escalated" not in kinds_by_persona(world).get("shift_leader", [])


def test_a_step_without_a_rule_never_escalates_and_a_stopped_clock_clears_the_mark(
    world: World,
) -> None:
    case = report(world.grid_worker_a, at=local(2026, 11, 23, 9, 0))
    assert case.step == "register" and case.escalate_at is None
    case = dispatched_at(world, local(2026, 11, 23, 9, 0))
    assert case.escalate_at is not None
    case = act_at(case, world.unit_handler, "sign", local(2026, 11, 23, 9, 30))
    act_at(case, world.unit_handler, "request_suspension", local(2026, 11, 23, 9, 40), reason="x")
    case = act_at(case, world.dispatcher, "approve_suspension", local(2026, 11, 23, 9, 50))
    assert case.step == "" and case.escalate_at is None


def test_a_changed_rule_applies_to_clocks_started_afterwards(world: World) -> None:
    before = dispatched_at(world, local(2026, 11, 23, 9, 0))
    rule = EscalationRule.objects.get(step="sign")
    rule.after = "2h"
    rule.save()
    after = dispatched_at(world, local(2026, 11, 23, 9, 0))
    assert after.escalate_at == local(2026, 11, 23, 11, 0)
    before.refresh_from_db()
    assert before.escalate_at == local(2026, 11, 26, 10, 30)


def test_escalation_due_follows_the_rules_and_ignores_a_rule_with_an_unreadable_span() -> None:
    # Monday 9:00: 7 h on Monday, 7.5 h on Tuesday and Wednesday, 2 h on Thursday
    start = local(2026, 11, 23, 9, 0)
    assert escalation_due("sign", start) == local(2026, 11, 26, 10, 30)
    assert escalation_due("register", start) is None
    assert escalation_due("", None) is None
    EscalationRule.objects.filter(step="sign").update(after="soon")
    sweeper.escalation_rules_changed()
    assert escalation_due("sign", start) is None


def test_the_migration_seeds_the_default_rules_and_keeps_an_administrators_own() -> None:
    migration = importlib.import_module("gridgov.cases.migrations.0003_escalation_defaults")
    EscalationRule.objects.all().delete()
    EscalationRule.objects.create(step="handle", after="3d", notify_role="shift_leader")
    migration.add_defaults(apps, None)
    migration.add_defaults(apps, None)
    assert sorted(EscalationRule.objects.values_list("step", "after", "notify_role")) == [
        ("handle", "3d", "shift_leader"),
        ("sign", "24h", "shift_leader"),
    ]


# --- the job and the command ------------------------------------------------------------------


def test_the_sweeper_is_a_registered_job_that_runs_every_minute(world: World) -> None:
    (job,) = [j for j in registered_jobs() if j.name == "cases.sweep"]
    assert job.every == timedelta(seconds=60)
    report(world.grid_worker_a, at=timezone.now() - timedelta(days=30))
    outcomes = dict(run_due_jobs(owner="test-worker"))
    assert outcomes["cases.sweep"].startswith("0 due soon, 1 overdue, 0 escalated")
    assert Case.objects.get().light == "red"


def test_gridgov_sweep_prints_the_counts(world: World, english: None) -> None:
    report(world.grid_worker_a, at=local(2026, 11, 23, 9, 0))
    out = io.StringIO()
    call_command("sweep", "--now", "2026-11-23T09:25", stdout=out)
    assert out.getvalue().strip() == "1 due soon, 0 overdue, 0 escalated; 2 notifications"
    out = io.StringIO()
    call_command("sweep", "--now", "2026-11-23T09:25", stdout=out)
    assert out.getvalue().strip() == "0 due soon, 0 overdue, 0 escalated; 0 notifications"


def test_gridgov_sweep_refuses_a_date_it_cannot_read(english: None) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="is not a date and time"):
        call_command("sweep", "--now", "next tuesday")


# --- two sweepers at once ---------------------------------------------------------------------


@on_postgres
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sweepers_running_at_once_notify_each_person_once(world: World) -> None:
    for minute in range(20):
        report(world.grid_worker_a, at=local(2026, 11, 23, 9, minute))
    now = local(2026, 11, 23, 16, 0)
    start = threading.Barrier(2)
    results: list[sweeper.SweepResult] = []

    def run() -> None:
        try:
            start.wait(timeout=10)
            results.append(sweep(now=now, batch=3))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 2
    # a sweeper stops when a claim comes back short; whatever both left, the next pass takes
    leftover = sweep(now=now)
    assert sum(r.overdue for r in results) + leftover.overdue == 20
    assert len(inbox(world.shift_leader, "case.overdue")) == 20
    assert len(inbox(world.intake_operator, "case.overdue")) == 20


@pytest.mark.skipif(connection.vendor != "sqlite", reason="reads SQLite's query plans")
def test_the_claims_use_the_partial_indexes_of_clocks_whose_light_may_change(
    world: World,
) -> None:
    with CaptureQueriesContext(connection) as captured:
        claim_due_soon(now=local(2026, 11, 23, 9, 0))
        claim_overdue(now=local(2026, 11, 23, 9, 0))
    plans = []
    with connection.cursor() as cursor:
        for query in captured.captured_queries:
            cursor.execute("EXPLAIN QUERY PLAN " + query["sql"])
            plans.append(" ".join(str(row[-1]) for row in cursor.fetchall()))
    assert "case_sweep_yellow" in plans[0]
    assert "case_sweep_red" in plans[1]
