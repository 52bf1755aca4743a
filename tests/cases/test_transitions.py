"""Every transition of the workflow table, for every persona, from every state; then each side
path on its own.

The helpers at the top (``case_in``, ``ready_for``, ``inputs_for``, ``expected_actors`` …) drive
a fresh case to any state through the real actions; tests/cases/test_state_machine.py,
test_concurrency.py and test_visibility.py use them too.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from gridgov.accounts import actions as accounts
from gridgov.accounts.models import UNIT_ROLES, Role, User
from gridgov.cases.actions import Inputs, case_act
from gridgov.cases.deadlines import parse_limit
from gridgov.cases.models import Case, CaseEvent, CasePhoto, HandlingLevel
from gridgov.cases.permissions import can
from gridgov.cases.workflow import (
    ASSISTING,
    CATEGORY,
    LEAD,
    LEAD_UNIT,
    NOTE,
    PHOTOS,
    RATING,
    REASON,
    REPORTER,
    SPAN,
    TABLE,
    TARGET,
    TRANSITIONS,
    URGENCY,
    State,
    Step,
    Transition,
)
from gridgov.core.errors import Conflict, DomainError, NotFound, PermissionDenied
from gridgov.core.photos import StoredPhoto
from gridgov.core.worktime import current_calendar
from gridgov.notifications.models import Notification
from tests.cases.factories import IN_GRID_A, IN_GRID_B, act, category, report
from tests.world import PERSONAS, World

pytestmark = pytest.mark.django_db

#: Every persona of tests/world.py, the one without any role included.
PERSONA_NAMES: tuple[str, ...] = (*PERSONAS, "nobody")
#: The unit of the unit_handler persona; cases are dispatched to it.
UNIT = "street-office-003"
OTHER_UNIT = "yuhua-office"
ALL_INPUTS = (NOTE, REASON, PHOTOS, CATEGORY, URGENCY, LEAD, ASSISTING, SPAN, TARGET, RATING)


# --- helpers: photos, inputs, cases in any state ---------------------------------------------


def photo() -> StoredPhoto:
    """A stored photo as ``photo_save`` describes one (no file is needed to attach it)."""
    stem = f"cases/2026/11/{uuid.uuid4().hex}"
    return StoredPhoto(
        name=f"{stem}.jpg",
        thumbnail_name=f"{stem}_thumb.jpg",
        width=1280,
        height=960,
        size=123_456,
        sha256="ab" * 32,
        gps=None,
        source_format="jpeg",
    )


def inputs_for(world: World, action: str) -> dict[str, Any]:
    """Valid values for the inputs ``action`` requires (a merge gets a fresh target case)."""
    values: dict[str, Any] = {
        NOTE: "现场已处理，拍照为证",
        REASON: "不属于本单位职责范围",
        PHOTOS: [photo()],
        LEAD: UNIT,
        SPAN: "2h",
        RATING: 5,
    }
    wanted: dict[str, Any] = {}
    for name in TABLE[action].required:
        if name == TARGET:
            wanted[name] = report(world.resident, description="同一处井盖缺失").number
        else:
            wanted[name] = values[name]
    return wanted


#: How each state is reached from a fresh report: (action, persona) steps.
_ACCEPTED = (("accept", "intake_operator"),)
_REGISTERED = (*_ACCEPTED, ("register", "intake_operator"))
_DISPATCHED = (*_REGISTERED, ("dispatch", "dispatcher"))
_HANDLING = (*_DISPATCHED, ("sign", "unit_handler"))
_CHECKING = (*_HANDLING, ("feedback", "unit_handler"))
_CHECKED = (*_CHECKING, ("check_pass", "supervisor"))
ROUTES: dict[str, tuple[tuple[str, str], ...]] = {
    State.REPORTED: (),
    State.ACCEPTED: _ACCEPTED,
    State.VERIFYING: (*_ACCEPTED, ("request_verification", "intake_operator")),
    State.REGISTERED: _REGISTERED,
    State.DISPATCHED: _DISPATCHED,
    State.SENT_BACK: (*_DISPATCHED, ("send_back", "unit_handler")),
    State.HANDLING: _HANDLING,
    "handling+extension": (*_HANDLING, ("request_extension", "unit_handler")),
    "handling+suspension": (*_HANDLING, ("request_suspension", "unit_handler")),
    State.SUSPENDED: (
        *_HANDLING,
        ("request_suspension", "unit_handler"),
        ("approve_suspension", "dispatcher"),
    ),
    State.CHECKING: _CHECKING,
    State.CHECKED: _CHECKED,
    State.CLOSED: (*_CHECKED, ("close", "shift_leader")),
    State.SELF_HANDLED: (("self_handle", "grid_worker_a"),),
    State.DECLINED: (("decline", "intake_operator"),),
    State.VOIDED: (*_ACCEPTED, ("void", "intake_operator")),
    State.MERGED: (("merge", "intake_operator"),),
}
#: Every state of the table is reachable.
assert {s for s in ROUTES if s in State.values} == set(State.values)


def case_in(
    world: World,
    situation: str,
    *,
    urgency: str = "normal",
    reporter: str = "grid_worker_a",
    where: tuple[float, float] = IN_GRID_A,
) -> Case:
    """A fresh case in grid A (by default), reported by ``reporter`` and driven through the
    real actions to ``situation`` (a state, or "handling+extension"/"handling+suspension")."""
    case = report(world.users[reporter], urgency=urgency, where=where)
    for action, persona in ROUTES[situation]:
        case = act(case, world.users[persona], action, **inputs_for(world, action))
    assert case.state == situation.split("+")[0]
    return case


def ready_for(world: World, action: str, state: str | None = None) -> Case:
    """A case in ``state`` (default: the action's usual source state) whose guard is met."""
    t = TABLE[action]
    state = state or USUAL_SOURCE[action]
    situation = state
    if state == State.HANDLING and t.guard in ("extension_pending", "suspension_pending"):
        situation = "handling+" + t.guard.removesuffix("_pending")
    case = case_in(world, situation, urgency="urgent" if t.guard == "urgent" else "normal")
    if t.guard == "supervised":
        case = act(case, world.shift_leader, "supervise", note="请加快处置")
    if t.guard == "can_go_down":
        case = act(case, world.shift_leader, "escalate", reason="需要社区协调")
    return case


#: The state each action is tried in for the full persona matrix.
USUAL_SOURCE: dict[str, str] = {
    "accept": State.REPORTED,
    "decline": State.REPORTED,
    "request_verification": State.ACCEPTED,
    "verify": State.VERIFYING,
    "register": State.ACCEPTED,
    "void": State.ACCEPTED,
    "self_handle": State.REPORTED,
    "review_pass": State.SELF_HANDLED,
    "review_fail": State.SELF_HANDLED,
    "merge": State.REPORTED,
    "dispatch": State.REGISTERED,
    "urgent_dispatch": State.REPORTED,
    "sign": State.DISPATCHED,
    "send_back": State.DISPATCHED,
    "request_extension": State.HANDLING,
    "approve_extension": State.HANDLING,
    "refuse_extension": State.HANDLING,
    "request_suspension": State.HANDLING,
    "approve_suspension": State.HANDLING,
    "refuse_suspension": State.HANDLING,
    "resume": State.SUSPENDED,
    "feedback": State.HANDLING,
    "check_pass": State.CHECKING,
    "check_fail": State.CHECKING,
    "close": State.CHECKED,
    "reopen": State.CLOSED,
    "evaluate": State.CLOSED,
    "escalate": State.HANDLING,
    "send_down": State.HANDLING,
    "supervise": State.HANDLING,
    "supervise_reply": State.HANDLING,
}
assert set(USUAL_SOURCE) == set(TABLE), "every transition needs a usual source state"


def _covers(where: str | None, code: str) -> bool:
    return where is None or code.startswith(where)


def expected_visible(world: World, persona: str, case: Case) -> bool:
    """Who sees a case, worked out from tests/world.py (not from the selectors)."""
    user = world.users[persona]
    if case.reporter_id == user.pk:
        return True
    if persona not in PERSONAS:
        return False
    role, where = PERSONAS[persona]
    if role in UNIT_ROLES:
        units = {u.code for u in case.assisting_units.all()}
        if case.lead_unit is not None:
            units.add(case.lead_unit.code)
        return where in units
    return role != Role.RESIDENT and _covers(where, case.region_code)


def expected_actors(world: World, t: Transition, case: Case) -> set[str]:
    """The personas the table admits for ``t`` on ``case``: a role of ``who`` whose region
    holds the case's grid, the lead unit's handler, the reporter."""
    admitted = set()
    for persona in PERSONA_NAMES:
        user = world.users[persona]
        role, where = PERSONAS.get(persona, ("", ""))
        ok = (
            (role in t.who and role not in UNIT_ROLES and _covers(where, case.region_code))
            or (
                LEAD_UNIT in t.who
                and role in UNIT_ROLES
                and case.lead_unit is not None
                and case.lead_unit.code == where
            )
            or (REPORTER in t.who and case.reporter_id == user.pk)
        )
        if t.guard == "reporter_only" and case.reporter_id != user.pk:
            ok = False
        if ok:
            admitted.add(persona)
    return admitted


def snapshot(case: Case) -> dict[str, Any]:
    """Everything an action could change about a case, to compare before and after."""
    row: dict[str, Any] = dict(Case.objects.filter(pk=case.pk).values().get())
    row["assisting"] = sorted(case.assisting_units.values_list("pk", flat=True))
    row["events"] = CaseEvent.objects.filter(case=case).count()
    row["photos"] = CasePhoto.objects.filter(case=case).count()
    row["notifications"] = Notification.objects.count()
    return row


def attempt(case: Case, user: User, action: str, **inputs: Any) -> Case:
    case.refresh_from_db()
    return case_act(
        case=case.number, actor=user, action=action, version=case.version, inputs=Inputs(**inputs)
    )


def last_event(case: Case) -> CaseEvent:
    return CaseEvent.objects.filter(case=case).order_by("-version").first()  # type: ignore[return-value]


def ids(transitions: tuple[Transition, ...]) -> list[str]:
    return [t.action for t in transitions]


# --- the table, persona by persona ------------------------------------------------------------


@pytest.mark.parametrize("t", TRANSITIONS, ids=ids(TRANSITIONS))
def test_exactly_the_personas_the_table_admits_may_take_the_transition(
    world: World, t: Transition
) -> None:
    """Allowed personas succeed; every other persona gets 403 (404 when the case is hidden from
    them) and the case is left exactly as it was."""
    refused_case = ready_for(world, t.action)
    admitted = expected_actors(world, t, refused_case)
    assert admitted, f"nobody in the world may {t.action}: the test would prove nothing"
    inputs = inputs_for(world, t.action)
    problems: list[str] = []
    for persona in PERSONA_NAMES:
        user = world.users[persona]
        if persona in admitted:
            case = ready_for(world, t.action)
            before = snapshot(case)
            if not can(case, user, t.action):
                problems.append(f"{persona}: the case page would not offer {t.action}")
            try:
                done = attempt(case, user, t.action, **inputs_for(world, t.action))
            except DomainError as exc:
                problems.append(f"{persona}: refused ({exc.status} {exc.message})")
                continue
            event = last_event(done)
            expected_state = t.target or before["state"]
            if (done.version, done.state) != (before["version"] + 1, expected_state):
                problems.append(f"{persona}: now v{done.version} {done.state}")
            if (event.action, event.actor_id, event.from_state, event.to_state) != (
                t.action,
                user.pk,
                before["state"],
                expected_state,
            ):
                problems.append(f"{persona}: timeline says {event}")
            if CaseEvent.objects.filter(case=done).count() != before["events"] + 1:
                problems.append(f"{persona}: not exactly one new event")
            continue
        before = snapshot(refused_case)
        visible = expected_visible(world, persona, refused_case)
        wanted = PermissionDenied if visible else NotFound
        if can(refused_case, user, t.action):
            problems.append(f"{persona}: the case page would offer {t.action}")
        try:
            attempt(refused_case, user, t.action, **inputs)
        except DomainError as exc:
            if type(exc) is not wanted:
                problems.append(f"{persona}: {type(exc).__name__} instead of {wanted.__name__}")
            elif exc.status != (403 if visible else 404):
                problems.append(f"{persona}: status {exc.status}")
        else:
            problems.append(f"{persona}: succeeded but the table does not admit them")
            refused_case = ready_for(world, t.action)
            continue
        if snapshot(refused_case) != before:
            problems.append(f"{persona}: the refused attempt changed the case")
    assert not problems, f"{t.action}:\n" + "\n".join(problems)


@pytest.mark.parametrize("t", TRANSITIONS, ids=ids(TRANSITIONS))
def test_the_transition_succeeds_from_each_of_its_source_states(
    world: World, t: Transition
) -> None:
    for state in sorted(t.sources):
        case = ready_for(world, t.action, state)
        actor = sorted(expected_actors(world, t, case))[0]
        done = attempt(case, world.users[actor], t.action, **inputs_for(world, t.action))
        assert done.state == (t.target or state), f"from {state}"
        assert last_event(done).from_state == state


#: One case in each state, for the wrong-state checks.
MUSEUM_STATES = sorted(s for s in ROUTES if s in State.values)


@pytest.mark.parametrize("state", MUSEUM_STATES)
def test_every_transition_from_a_state_outside_its_sources_answers_409(
    world: World, state: str
) -> None:
    case = case_in(world, state, urgency="urgent")
    before = snapshot(case)
    problems = []
    for t in TRANSITIONS:
        if state in t.sources:
            continue
        # someone the table would admit if they can see the case, else the shift leader (who
        # sees the whole district): the state is checked before the person
        admitted = [
            p for p in sorted(expected_actors(world, t, case)) if expected_visible(world, p, case)
        ]
        user = world.users[admitted[0] if admitted else "shift_leader"]
        try:
            attempt(case, user, t.action, **inputs_for(world, t.action))
        except Conflict as exc:
            assert exc.status == 409
            assert exc.detail["state"] == state
        except DomainError as exc:
            problems.append(f"{t.action}: {type(exc).__name__} {exc.message}")
        else:
            problems.append(f"{t.action}: succeeded from {state}")
        if can(case, user, t.action):
            problems.append(f"{t.action}: offered on the case page in {state}")
    assert not problems, "\n".join(problems)
    assert snapshot(case) | {"notifications": 0} == before | {"notifications": 0}


# --- inputs ---------------------------------------------------------------------------------

WITH_REQUIRED = tuple(t for t in TRANSITIONS if t.required)


def _admitted_actor(world: World, t: Transition, case: Case) -> User:
    return world.users[sorted(expected_actors(world, t, case))[0]]


@pytest.mark.parametrize("t", WITH_REQUIRED, ids=ids(WITH_REQUIRED))
def test_a_missing_required_input_is_refused_with_422_naming_it(
    world: World, t: Transition, english: None
) -> None:
    case = ready_for(world, t.action)
    user = _admitted_actor(world, t, case)
    full = inputs_for(world, t.action)
    for name in t.required:
        before = snapshot(case)
        given = {k: v for k, v in full.items() if k != name}
        with pytest.raises(DomainError) as caught:
            attempt(case, user, t.action, **given)
        assert caught.value.status == 422
        assert caught.value.detail == {"missing": [name]}
        assert name in caught.value.message and str(t.label) in caught.value.message
        assert snapshot(case) == before


@pytest.mark.parametrize("t", TRANSITIONS, ids=ids(TRANSITIONS))
def test_an_input_the_transition_does_not_take_is_refused_with_422(
    world: World, t: Transition
) -> None:
    case = ready_for(world, t.action)
    user = _admitted_actor(world, t, case)
    extra = {NOTE: "多余的备注", REASON: "多余的理由", RATING: 3, SPAN: "1h", PHOTOS: [photo()]}
    unexpected = next(name for name in extra if not t.allows_input(name))
    before = snapshot(case)
    with pytest.raises(DomainError) as caught:
        attempt(
            case, user, t.action, **inputs_for(world, t.action), **{unexpected: extra[unexpected]}
        )
    assert caught.value.status == 422
    assert caught.value.detail == {"unexpected": [unexpected]}
    assert snapshot(case) == before


def test_text_inputs_with_control_characters_or_too_long_are_refused(world: World) -> None:
    case = ready_for(world, "decline")
    for bad in ("垃圾\x00", "\x1b[31m红色", "长" * 2001):
        with pytest.raises(DomainError) as caught:
            attempt(case, world.intake_operator, "decline", reason=bad)
        assert caught.value.status == 422 and caught.value.detail == {"field": "reason"}
    done = attempt(case, world.intake_operator, "decline", reason="  重复上报\n见另一案件  ")
    assert last_event(done).note == "重复上报\n见另一案件"


def test_an_unknown_action_is_refused_with_422(world: World) -> None:
    case = report(world.grid_worker_a)
    with pytest.raises(DomainError) as caught:
        attempt(case, world.shift_leader, "teleport")
    assert caught.value.status == 422


def test_a_case_number_that_does_not_exist_answers_404(world: World) -> None:
    with pytest.raises(NotFound):
        case_act(case="320113-20261123-99999", actor=world.shift_leader, action="accept", version=1)


# --- side paths -----------------------------------------------------------------------------


def notified(user: User, kind: str, case: Case) -> bool:
    return Notification.objects.filter(recipient=user, kind=kind, subject_ref=case.number).exists()


def test_declining_needs_a_reason_stops_the_clock_and_tells_the_reporter(world: World) -> None:
    case = report(world.resident)
    assert case.due_at is not None
    done = act(case, world.intake_operator, "decline", reason="不属于受理范围")
    assert done.state == State.DECLINED
    assert (done.step, done.due_at, done.due_soon_at, done.light) == ("", None, None, "")
    assert last_event(done).note == "不属于受理范围"
    assert notified(world.resident, "case.decline", done)


def test_verification_on_site_goes_to_the_field_and_comes_back_to_intake(world: World) -> None:
    case = case_in(world, State.ACCEPTED)
    case = act(case, world.intake_operator, "request_verification", note="请核实位置")
    assert (case.state, case.step) == (State.VERIFYING, Step.VERIFY)
    assert notified(world.supervisor, "case.request_verification", case)
    assert notified(world.grid_worker_a, "case.request_verification", case)
    assert not notified(world.grid_worker_b, "case.request_verification", case)
    # a grid worker of the other grid does not serve this one
    with pytest.raises(NotFound):
        act(case, world.grid_worker_b, "verify", note="看不到")
    case = act(
        case, world.grid_worker_a, "verify", note="属实，井盖缺失", photos=[photo(), photo()]
    )
    assert (case.state, case.step) == (State.ACCEPTED, Step.REGISTER)
    event = last_event(case)
    assert event.params["photos"] == 2
    assert CasePhoto.objects.filter(case=case, event=event).count() == 2
    assert notified(world.intake_operator, "case.verify", case)
    case = act(case, world.intake_operator, "register")
    assert case.state == State.REGISTERED and case.registered_at is not None


@pytest.mark.parametrize("state", [State.ACCEPTED, State.VERIFYING, State.REGISTERED])
def test_voiding_ends_the_case_from_each_intake_state(world: World, state: str) -> None:
    case = case_in(world, state)
    done = act(case, world.shift_leader, "void", reason="虚假上报")
    assert done.state == State.VOIDED and done.due_at is None
    assert notified(world.grid_worker_a, "case.void", done)


def test_voiding_is_not_possible_once_dispatched(world: World) -> None:
    case = case_in(world, State.DISPATCHED)
    with pytest.raises(Conflict):
        act(case, world.intake_operator, "void", reason="太迟了")


def test_a_grid_worker_solves_their_own_report_on_the_spot_and_intake_confirms(
    world: World,
) -> None:
    case = report(world.grid_worker_a)
    with pytest.raises(DomainError) as caught:
        act(case, world.grid_worker_a, "self_handle", note="已处理")  # photos are required
    assert caught.value.detail == {"missing": ["photos"]}
    case = act(case, world.grid_worker_a, "self_handle", note="已盖好井盖", photos=[photo()])
    assert (case.state, case.step) == (State.SELF_HANDLED, Step.REVIEW)
    case = act(case, world.intake_operator, "review_pass")
    assert case.state == State.CLOSED and case.closed_at is not None and case.due_at is None
    assert notified(world.grid_worker_a, "case.review_pass", case)


def test_a_self_handling_that_did_not_solve_it_is_taken_in_by_intake(world: World) -> None:
    case = case_in(world, State.SELF_HANDLED)
    case = act(case, world.shift_leader, "review_fail", reason="照片显示仍未处理")
    assert (case.state, case.step) == (State.ACCEPTED, Step.REGISTER)
    assert notified(world.grid_worker_a, "case.review_fail", case)


def test_only_the_reporting_grid_worker_may_solve_a_report_on_the_spot(world: World) -> None:
    by_resident = report(world.resident)
    by_worker = report(world.grid_worker_a)
    for case, persona in (
        (by_resident, "grid_worker_a"),
        (by_worker, "grid_leader"),
        (by_resident, "grid_leader"),
    ):
        assert not can(case, world.users[persona], "self_handle")
        with pytest.raises(PermissionDenied):
            act(case, world.users[persona], "self_handle", note="已处理", photos=[photo()])


def test_merging_a_duplicate_records_it_on_the_survivor_and_tells_its_reporter(
    world: World,
) -> None:
    survivor = case_in(world, State.DISPATCHED)
    duplicate = report(world.resident, description="又看到井盖没了")
    survivor_before = snapshot(survivor)
    merged = act(duplicate, world.intake_operator, "merge", target=survivor.number, note="同一井盖")
    assert merged.state == State.MERGED
    assert merged.merged_into_id == survivor.pk and merged.closed_at is not None
    assert merged.due_at is None
    assert last_event(merged).params == {"target": survivor.number}
    survivor.refresh_from_db()
    assert survivor.version == survivor_before["version"] + 1
    assert survivor.state == State.DISPATCHED
    merged_in = last_event(survivor)
    assert (merged_in.action, merged_in.from_state, merged_in.to_state) == (
        "merged_in",
        State.DISPATCHED,
        State.DISPATCHED,
    )
    assert merged_in.params == {"duplicate": merged.number}
    assert merged_in.note == "同一井盖"
    assert notified(world.resident, "case.merged", merged)


def test_a_merge_needs_an_open_visible_other_case(world: World) -> None:
    duplicate = report(world.resident)
    closed = case_in(world, State.CLOSED)
    elsewhere = report(world.admin, where=(31.95, 118.75))  # grid E, outside the district
    for target in (duplicate.number, closed.number, elsewhere.number, "320113-20261123-99999"):
        before = snapshot(duplicate)
        with pytest.raises(DomainError) as caught:
            act(duplicate, world.intake_operator, "merge", target=target)
        assert caught.value.status == 422, target
        assert snapshot(duplicate) == before


def test_the_emergency_path_is_only_for_urgent_cases(world: World) -> None:
    normal = report(world.grid_worker_a)
    with pytest.raises(Conflict):
        act(normal, world.dispatcher, "urgent_dispatch", lead_unit=UNIT)
    assert not can(normal, world.dispatcher, "urgent_dispatch")
    urgent = report(world.grid_worker_a, urgency="urgent")
    assert urgent.emergency and urgent.step_limit == "10m"
    done = act(urgent, world.dispatcher, "urgent_dispatch", lead_unit=UNIT, note="立即处置")
    assert (done.state, done.step) == (State.DISPATCHED, Step.SIGN)
    assert done.registered_at is not None and done.dispatched_at is not None
    assert done.lead_unit is not None and done.lead_unit.code == UNIT
    assert last_event(done).params["emergency"] is True
    assert notified(world.unit_handler, "case.urgent_dispatch", done)


def test_a_sent_back_case_is_dispatched_again_to_another_unit(world: World) -> None:
    case = case_in(world, State.HANDLING)
    case = act(case, world.unit_handler, "send_back", reason="属于供水公司")
    assert case.state == State.SENT_BACK and case.lead_unit is None
    assert case.send_back_count == 1 and case.step == Step.REGISTER
    assert last_event(case).params["unit"]["code"] == UNIT
    assert notified(world.dispatcher, "case.send_back", case)
    with pytest.raises(NotFound):  # no longer theirs
        act(case, world.unit_handler, "sign")
    case = act(case, world.dispatcher, "dispatch", lead_unit=OTHER_UNIT)
    assert case.state == State.DISPATCHED and case.lead_unit is not None
    assert case.lead_unit.code == OTHER_UNIT
    assert last_event(case).params["suggested_unit_overridden"] is True


def test_an_extension_is_asked_for_refused_asked_again_and_approved(world: World) -> None:
    case = case_in(world, State.HANDLING)
    due = case.due_at
    assert due is not None
    with pytest.raises(DomainError) as caught:
        act(case, world.unit_handler, "request_extension", reason="需要采购", span="soon")
    assert caught.value.status == 422 and caught.value.detail == {"field": "span"}
    case = act(case, world.unit_handler, "request_extension", reason="需要采购", span="4h")
    assert (case.pending, case.pending_params) == ("extension", {"span": "4h"})
    assert notified(world.dispatcher, "case.request_extension", case)
    with pytest.raises(Conflict):  # one request at a time
        act(case, world.unit_handler, "request_suspension", reason="暂时无法处理")
    with pytest.raises(Conflict):  # no feedback while a decision is pending
        act(case, world.unit_handler, "feedback", note="好了")
    with pytest.raises(Conflict):  # a suspension was not asked for
        act(case, world.dispatcher, "approve_suspension")
    case = act(case, world.dispatcher, "refuse_extension", reason="时间足够")
    assert (case.pending, case.due_at, case.extension_count) == ("", due, 0)
    case = act(case, world.unit_handler, "request_extension", reason="确需采购", span="4h")
    case = act(case, world.shift_leader, "approve_extension")
    cal = current_calendar()
    assert case.due_at == cal.add_working_time(due, timedelta(hours=4))
    assert cal.working_time_between(due, case.due_at) == timedelta(hours=4)
    assert case.pending == "" and case.extension_count == 1
    assert last_event(case).params["span"] == "4h"
    assert notified(world.unit_handler, "case.approve_extension", case)


def test_a_suspension_stops_the_clock_and_resuming_starts_it_again(world: World) -> None:
    case = case_in(world, "handling+suspension")
    case = act(case, world.dispatcher, "refuse_suspension", reason="必须处理")
    assert case.state == State.HANDLING and case.pending == ""
    case = act(case, world.unit_handler, "request_suspension", reason="待汛期结束")
    case = act(case, world.dispatcher, "approve_suspension", note="同意挂账")
    assert case.state == State.SUSPENDED and case.pending == ""
    assert (case.step, case.due_at, case.due_soon_at) == ("", None, None)
    case = act(case, world.dispatcher, "resume")
    assert (case.state, case.step) == (State.HANDLING, Step.HANDLE)
    started = case.step_started_at
    assert started is not None and case.due_at is not None
    assert case.due_at == current_calendar().add_working_time(started, parse_limit("2h"))


def test_a_failed_check_is_reworked_by_the_same_unit_on_a_new_clock(world: World) -> None:
    case = case_in(world, State.CHECKING)
    case = act(case, world.intake_operator, "check_fail", reason="井盖未固定", photos=[photo()])
    assert (case.state, case.step, case.rework_count) == (State.HANDLING, Step.HANDLE, 1)
    assert case.lead_unit is not None and case.lead_unit.code == UNIT
    assert notified(world.unit_handler, "case.check_fail", case)
    case = act(case, world.unit_handler, "feedback", note="已加固")
    case = act(case, world.supervisor, "check_pass")
    assert case.state == State.CHECKED
    assert notified(world.shift_leader, "case.check_pass", case)


def test_escalation_goes_up_to_the_district_and_no_further(world: World) -> None:
    case = report(world.grid_worker_a)
    levels = []
    for persona in ("grid_worker_a", "supervisor", "dispatcher"):
        case = act(case, world.users[persona], "escalate", reason="超出本级能力")
        levels.append(case.level)
    assert levels == [HandlingLevel.COMMUNITY, HandlingLevel.STREET, HandlingLevel.DISTRICT]
    # each level's staff hear of it: the community's grid leader, then the district's
    assert notified(world.grid_leader, "case.escalate", case)
    assert notified(world.leader, "case.escalate", case)
    assert not notified(world.grid_worker_a, "case.escalate", case)
    assert last_event(case).params["level"] == {"from": "street", "to": "district"}
    assert case.state == State.REPORTED
    assert not can(case, world.dispatcher, "escalate")
    with pytest.raises(Conflict):
        act(case, world.dispatcher, "escalate", reason="再上一级")


def test_sending_down_goes_to_the_grid_and_no_further(world: World) -> None:
    case = report(world.grid_worker_a)
    with pytest.raises(Conflict):
        act(case, world.leader, "send_down", reason="基层处理")
    case = act(case, world.shift_leader, "escalate", reason="协调")
    case = act(case, world.shift_leader, "escalate", reason="协调")
    case = act(case, world.leader, "send_down", reason="街道处理")
    assert case.level == HandlingLevel.COMMUNITY
    case = act(case, world.dispatcher, "send_down", reason="网格处理")
    assert case.level == HandlingLevel.GRID
    with pytest.raises(Conflict):
        act(case, world.dispatcher, "send_down", reason="再下一级")


def test_supervision_is_replied_to_by_the_unit_only_once_supervised(world: World) -> None:
    case = case_in(world, State.HANDLING)
    assert not can(case, world.unit_handler, "supervise_reply")
    with pytest.raises(Conflict):
        act(case, world.unit_handler, "supervise_reply", note="正在处理")
    with pytest.raises(PermissionDenied):
        act(case, world.dispatcher, "supervise", note="督办")
    case = act(case, world.leader, "supervise", note="请两日内办结")
    assert case.supervised and case.state == State.HANDLING
    assert notified(world.unit_handler, "case.supervise", case)
    case = act(case, world.unit_handler, "supervise_reply", note="明日完成")
    assert last_event(case).note == "明日完成"
    assert notified(world.shift_leader, "case.supervise_reply", case)
    assert notified(world.leader, "case.supervise_reply", case)


def test_a_closed_case_is_reopened_within_the_window(world: World, settings: Any) -> None:
    settings.GRIDGOV_CASE_REOPEN_DAYS = 7
    case = case_in(world, State.CLOSED)
    case = act(case, world.grid_worker_a, "evaluate", rating=2)
    case = act(case, world.shift_leader, "reopen", reason="群众反映仍未修好")
    assert (case.state, case.step) == (State.REGISTERED, Step.REGISTER)
    assert (case.closed_at, case.rating, case.reopen_count) == (None, None, 1)
    assert notified(world.dispatcher, "case.reopen", case)


def _closed_days_ago(world: World, days: float) -> Case:
    case = case_in(world, State.CHECKED)
    case.refresh_from_db()
    return case_act(
        case=case,
        actor=world.shift_leader,
        action="close",
        version=case.version,
        at=timezone.now() - timedelta(days=days),
    )


def test_a_case_closed_longer_ago_than_the_window_cannot_be_reopened(
    world: World, settings: Any
) -> None:
    settings.GRIDGOV_CASE_REOPEN_DAYS = 7
    case = _closed_days_ago(world, 8)
    assert not can(case, world.shift_leader, "reopen")
    with pytest.raises(Conflict):
        act(case, world.shift_leader, "reopen", reason="太迟了")
    settings.GRIDGOV_CASE_REOPEN_DAYS = 10
    assert act(case, world.shift_leader, "reopen", reason="窗口放宽").state == State.REGISTERED


def test_only_the_reporter_rates_a_closed_case_once_from_1_to_5(world: World) -> None:
    case = case_in(world, State.CLOSED, reporter="resident")
    for persona in ("grid_worker_a", "shift_leader", "intake_operator"):
        with pytest.raises(PermissionDenied):
            act(case, world.users[persona], "evaluate", rating=5)
    for bad in (0, 6, -1, True, 4.5, "5"):
        with pytest.raises(DomainError) as caught:
            act(case, world.resident, "evaluate", rating=bad)
        assert caught.value.status == 422, bad
    case = act(case, world.resident, "evaluate", rating=4, note="修得很快")
    assert case.rating == 4 and last_event(case).params == {"rating": 4}
    with pytest.raises(Conflict):
        act(case, world.resident, "evaluate", rating=5)


def test_the_reporter_cannot_rate_a_case_that_is_not_closed(world: World) -> None:
    case = case_in(world, State.CHECKED, reporter="resident")
    with pytest.raises(Conflict):
        act(case, world.resident, "evaluate", rating=5)


def test_a_dispatch_to_an_unknown_or_inactive_unit_is_refused(world: World) -> None:
    case = case_in(world, State.REGISTERED)
    world.units[OTHER_UNIT].is_active = False
    world.units[OTHER_UNIT].save(update_fields=["is_active"])
    for unit in ("no-such-unit", OTHER_UNIT):
        with pytest.raises(DomainError) as caught:
            act(case, world.dispatcher, "dispatch", lead_unit=unit)
        assert caught.value.status == 422, unit
        assert caught.value.detail == {"field": "lead_unit"}
    done = act(case, world.dispatcher, "dispatch", lead_unit=UNIT, assisting_units=[UNIT])
    assert list(done.assisting_units.all()) == []  # the lead is not also assisting


def test_a_dispatch_names_its_assisting_units_who_are_told_too(world: World) -> None:
    other = accounts.user_create(username="yuhua_handler", password="x-y-z-12345678")
    accounts.role_assign(user=other, role=Role.UNIT_HANDLER, unit=world.units[OTHER_UNIT])
    case = case_in(world, State.REGISTERED)
    done = act(case, world.dispatcher, "dispatch", lead_unit=UNIT, assisting_units=[OTHER_UNIT])
    assert [u.code for u in done.assisting_units.all()] == [OTHER_UNIT]
    assert notified(other, "case.dispatch", done) and notified(
        world.unit_handler, "case.dispatch", done
    )
    # an assisting unit sees the case but the lead unit's actions are not theirs
    with pytest.raises(PermissionDenied):
        act(done, other, "sign")


def test_accepting_may_reclassify_and_change_urgency(world: World) -> None:
    other = category("01003", "雨水井盖", name_en="Rain-water manhole cover")
    case = report(world.grid_worker_a)
    case = act(case, world.intake_operator, "accept", category=other.code, urgency="urgent")
    assert case.category_id == other.pk and case.urgency == "urgent" and case.emergency
    assert last_event(case).params == {
        "category": {"from": "01002", "to": "01003"},
        "urgency": {"from": "normal", "to": "urgent"},
    }
    with pytest.raises(DomainError):
        act(case, world.intake_operator, "register", urgency="panic")


def test_a_case_in_another_grid_is_hidden_from_a_grid_worker(world: World) -> None:
    case = report(world.grid_worker_b, where=IN_GRID_B)
    with pytest.raises(NotFound):
        act(case, world.grid_worker_a, "escalate", reason="看不到")


def _generator(units: list[str]) -> Iterator[str]:
    yield from units


def test_assisting_units_given_as_any_iterable_are_kept(world: World) -> None:
    case = case_in(world, State.REGISTERED)
    done = act(
        case, world.dispatcher, "dispatch", lead_unit=UNIT, assisting_units=_generator([OTHER_UNIT])
    )
    assert [u.code for u in done.assisting_units.all()] == [OTHER_UNIT]


def test_an_action_can_be_taken_on_every_database_engine(world: World) -> None:
    case = report(world.grid_worker_a)
    assert act(case, world.intake_operator, "accept").state == State.ACCEPTED


def test_intake_cannot_give_an_urgency_the_category_does_not_take(world: World) -> None:
    calm = category("01004", "路灯", name_en="Street light", urgency_levels=["normal"])
    case = report(world.grid_worker_a, category=calm)
    with pytest.raises(DomainError) as caught:
        act(case, world.intake_operator, "accept", urgency="urgent")
    assert caught.value.status == 422
