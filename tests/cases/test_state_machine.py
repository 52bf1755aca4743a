"""A hypothesis state machine drives random actions by random personas on a few cases and checks
the workflow's invariants after every step.

Invariants: a case's version is the number of its timeline events and their versions run 1..n;
each event starts in the state the previous one ended in and the last one ends in the case's
state; a closed case went through a check and a close after its last dispatch (or through a
confirmed self-handling); the clock is where the table and the events put it, with deadlines in
working time (or at the exact end of a working period); terminal states have no clock; a stale
version, or any refused action, changes nothing at all; the engine and the case page's buttons
(``permissions.can``) agree on who may act.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any, ClassVar

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from gridgov.accounts import actions as accounts
from gridgov.accounts.models import Role
from gridgov.cases.actions import Inputs, case_act, case_report
from gridgov.cases.deadlines import DUE_SOON_SHARE, parse_limit
from gridgov.cases.models import Case, CaseEvent, CasePhoto
from gridgov.cases.permissions import LEVELS, can
from gridgov.cases.selectors import case_visible
from gridgov.cases.workflow import (
    ASSISTING,
    CATEGORY,
    KEEP,
    LEAD,
    NOTE,
    PHOTOS,
    RATING,
    REASON,
    REPORT,
    SPAN,
    STOP,
    TABLE,
    TARGET,
    TERMINAL,
    TRANSITIONS,
    URGENCY,
    State,
    Step,
    Transition,
)
from gridgov.core.errors import Conflict, DomainError, NotFound, PermissionDenied
from gridgov.core.worktime import current_calendar, local_zone
from gridgov.notifications.models import Notification
from tests.cases.factories import IN_GRID_A, IN_GRID_B, category
from tests.cases.test_transitions import ALL_INPUTS, PERSONA_NAMES, photo
from tests.world import PASSWORD, World, build_world

MAX_CASES = 5
#: The personas plus a handler of the other unit (cases are dispatched to either unit).
CAST = (*PERSONA_NAMES, "yuhua_handler")
#: Where the machine's clock starts: an ordinary Monday, the turn of the year (chinese-calendar
#: knows 2026, 2027 falls back to Monday–Friday), a Friday evening, a Sunday.
STARTS = [
    datetime(2026, 11, 23, 9, 0, tzinfo=local_zone()),
    datetime(2026, 12, 30, 16, 45, tzinfo=local_zone()),
    datetime(2026, 12, 31, 17, 20, tzinfo=local_zone()),
    datetime(2027, 1, 8, 17, 29, tzinfo=local_zone()),
    datetime(2027, 1, 10, 11, 0, tzinfo=local_zone()),
]
#: The states in which a case has a unit leading it.
WITH_LEAD = {State.DISPATCHED, State.HANDLING, State.SUSPENDED, State.CHECKING, State.CHECKED}
CLOSING = {"close", "review_pass"}
#: How the machine narrows the actions it is offered: a step forward along the loop (a to-do
#: action that is no refusal, and not the verification round trip that could loop for ever), or
#: a side path (requests and decisions, refusals, merges, reopening, rating).
_LOOPS = ("request_verification", "supervise_reply")
MODES = {
    "forward": lambda t: t.todo and t.tone != "danger" and t.action not in _LOOPS,
    "side": lambda t: (
        (not t.todo or t.tone == "danger" or t.action in _LOOPS)
        and t.action not in ("escalate", "send_down", "supervise")
    ),
}


def _good(name: str, pick: int, machine: CaseMachine, case: Case) -> Any:
    if name == TARGET:
        others = [n for n in machine.numbers if n != case.number] or [case.number]
        return others[pick % len(others)]
    return {
        NOTE: "现场已处理，拍照为证",
        REASON: "不属于本单位职责范围",
        PHOTOS: [photo() for _ in range(1 + pick % 2)],
        CATEGORY: ("01002", "01003")[pick % 2],
        URGENCY: ("normal", "urgent", "critical")[pick % 3],
        LEAD: ("street-office-003", "yuhua-office")[pick % 2],
        ASSISTING: [("yuhua-office", "street-office-003")[pick % 2]],
        SPAN: ("2h", "1d", "30m")[pick % 3],
        RATING: 1 + pick % 5,
    }[name]


BAD: dict[str, Any] = {
    NOTE: "坏\x00字符",
    REASON: "长" * 2001,
    PHOTOS: [photo() for _ in range(10)],
    CATEGORY: "99999",
    URGENCY: "panic",
    LEAD: "no-such-unit",
    ASSISTING: ["no-such-unit"],
    SPAN: "soon",
    TARGET: "320113-20000101-00001",
    RATING: 6,
}


def _rows(pks: list[int]) -> dict[int, dict[str, Any]]:
    """Every column of the cases as stored, and their assisting units (two queries, read
    without the ORM: read twice a step, the ORM's conversion of some sixty columns cost about
    as much as the action taken)."""
    table, through = Case._meta.db_table, Case.assisting_units.through._meta.db_table
    marks = ", ".join(["%s"] * len(pks))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} WHERE id IN ({marks})", pks)  # noqa: S608 (model's)
        names = [column[0] for column in cursor.description]
        rows: dict[int, dict[str, Any]] = {}
        for values in cursor.fetchall():
            row = dict(zip(names, values, strict=True))
            rows[row["id"]] = {**row, "assisting": []}
        cursor.execute(
            f"SELECT case_id, unit_id FROM {through} WHERE case_id IN ({marks})"  # noqa: S608
            " ORDER BY case_id, unit_id",
            pks,
        )
        for case_id, unit_id in cursor.fetchall():
            rows[case_id]["assisting"].append(unit_id)
    return rows


def offered(case: Case, user: Any) -> list[Transition]:
    """``permissions.allowed_transitions`` without formatting a refusal for every wrong state
    (which costs a translated state name per transition)."""
    return [t for t in TRANSITIONS if case.state in t.sources and can(case, user, t.action)]


class CaseMachine(RuleBasedStateMachine):
    """Random personas take random (valid-ish) actions on a handful of cases."""

    world: ClassVar[World]
    #: the actions that succeeded at least once over all examples
    done: ClassVar[set[str]] = set()

    def __init__(self) -> None:
        super().__init__()
        # each example runs in a savepoint that teardown rolls back
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.pks: list[int] = []
        self.numbers: list[str] = []
        self.now = STARTS[0]

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    # --- rules --------------------------------------------------------------------------

    @initialize(start=st.sampled_from(STARTS))
    def start(self, start: datetime) -> None:
        self.now = start
        w = self.world
        self._report(w.grid_worker_a, IN_GRID_A, "normal")
        self._report(w.resident, IN_GRID_A, "urgent")
        self._report(w.supervisor, IN_GRID_B, "normal")

    def _report(self, user: Any, where: tuple[float, float], urgency: str) -> None:
        case = case_report(
            actor=user,
            category=category(),
            description="井盖缺失，行人有跌落危险",
            lat=where[0],
            lon=where[1],
            urgency=urgency,
            at=self.now,
        )
        self.pks.append(case.pk)
        self.numbers.append(case.number)

    @precondition(lambda self: len(self.pks) < MAX_CASES)
    @rule(
        persona=st.sampled_from(["grid_worker_a", "grid_worker_b", "resident", "intake_operator"]),
        in_b=st.booleans(),
        urgent=st.booleans(),
    )
    def report_another(self, persona: str, in_b: bool, urgent: bool) -> None:
        self._report(
            self.world.users[persona],
            IN_GRID_B if in_b else IN_GRID_A,
            "urgent" if urgent else "normal",
        )

    @rule(
        which=st.integers(0, MAX_CASES - 1),
        mode=st.sampled_from(["forward"] * 5 + ["side", "side", "offered", "anyone"]),
        data=st.data(),
        pick=st.integers(0, 10_000),
        optional=st.integers(0, 2**10 - 1),
        mischief=st.sampled_from([None] * 40 + [*ALL_INPUTS, "missing", "bad", "stale"]),
        minutes=st.sampled_from([0, 0, 7, 45, 3 * 60, 20 * 60, 3 * 24 * 60]),
    )
    def act(
        self,
        which: int,
        mode: str,
        data: st.DataObject,
        pick: int,
        optional: int,
        mischief: str | None,
        minutes: int,
    ) -> None:
        """Mostly an action the case page offers to someone who can take it, with the inputs
        it needs; sometimes anyone trying anything; sometimes one thing wrong (``mischief``):
        an input it does not take, a missing or bad one, a stale version."""
        self.now += timedelta(minutes=minutes)
        cases = {
            c.pk: c
            for c in Case.objects.select_related(
                "category", "category__parent", "lead_unit"
            ).filter(pk__in=self.pks)
        }
        open_pks = sorted(pk for pk, c in cases.items() if c.state not in TERMINAL)
        pool = open_pks if open_pks and mode != "anyone" else self.pks
        pk = pool[which % len(pool)]
        case = cases[pk]
        offers = {p: offered(case, self.world.users[p]) for p in CAST}
        if mode in MODES:
            narrowed = {p: [t for t in ts if MODES[mode](t)] for p, ts in offers.items()}
            if any(narrowed.values()):
                offers = narrowed
        able = [p for p in CAST if offers[p]]
        if able and mode != "anyone":
            persona = data.draw(st.sampled_from(able), label="persona")
            t = data.draw(st.sampled_from(offers[persona]), label="transition")
        else:
            persona = data.draw(st.sampled_from(CAST), label="persona")
            t = data.draw(st.sampled_from(TRANSITIONS), label="transition")
        user = self.world.users[persona]
        inputs: dict[str, Any] = {name: _good(name, pick, self, case) for name in t.required}
        for bit, name in enumerate(ALL_INPUTS):
            if name in t.optional and optional >> bit & 1:
                inputs[name] = _good(name, pick, self, case)
        if mischief == "missing" and t.required:
            del inputs[t.required[pick % len(t.required)]]
        elif mischief == "bad" and inputs:
            name = sorted(inputs)[pick % len(inputs)]
            inputs[name] = BAD[name]
        elif mischief in ALL_INPUTS and not t.allows_input(mischief):
            inputs[mischief] = _good(mischief, pick, self, case)
        skew = (-1, -2, 1)[pick % 3] if mischief == "stale" else 0
        may = can(case, user, t.action)
        if may:
            assert case_visible(case, user), f"{persona} may {t.action} a case they cannot see"
        before = _rows(self.pks)
        counts = self._counts()
        version = case.version + skew
        try:
            done = case_act(
                case=case.number,
                actor=user,
                action=t.action,
                version=version,
                inputs=Inputs(**inputs),
                at=self.now,
            )
        except DomainError as exc:
            if skew:  # a hidden case answers 404 whatever the version (it is not revealed)
                wanted = Conflict if case_visible(case, user) else NotFound
                assert type(exc) is wanted, f"stale version {version}: {exc!r}"
            elif isinstance(exc, Conflict | PermissionDenied | NotFound):
                assert not may, f"{persona} was offered {t.action} but got {exc!r}"
            else:  # inputs are checked only once the person and the state are right
                assert exc.status == 422 and may, f"{persona} {t.action}: {exc!r}"
            assert _rows(self.pks) == before, f"{t.action} refused but wrote"
            assert self._counts() == counts
            return
        assert skew == 0, f"{t.action} succeeded with a stale version"
        assert may, f"{persona} did {t.action} though the case page would not offer it"
        CaseMachine.done.add(t.action)
        assert done.version == case.version + 1
        assert done.state == (t.target or case.state)
        event = CaseEvent.objects.get(case=done, version=done.version)
        assert (event.action, event.actor_id, event.from_state) == (t.action, user.pk, case.state)
        new_events = self._counts()[0] - counts[0]
        assert new_events == (2 if t.action == "merge" else 1)
        after = _rows(self.pks)
        for p in self.pks:
            if p != pk and (t.action != "merge" or p != done.merged_into_id):
                assert after[p] == before[p], "an action changed another case"

    def _counts(self) -> tuple[int, int, int]:
        """The machine's cases' timeline events and photos, and all notifications (one query:
        it runs twice a step)."""
        events, photos = CaseEvent._meta.db_table, CasePhoto._meta.db_table
        marks = ", ".join(["%s"] * len(self.pks))
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT (SELECT COUNT(*) FROM {events} WHERE case_id IN ({marks})),"  # noqa: S608
                f" (SELECT COUNT(*) FROM {photos} WHERE case_id IN ({marks})),"
                f" (SELECT COUNT(*) FROM {Notification._meta.db_table})",
                [*self.pks, *self.pks],
            )
            counted = cursor.fetchone()
        return (counted[0], counted[1], counted[2])

    # --- invariants ---------------------------------------------------------------------

    @invariant()
    def timelines_and_clocks_hold(self) -> None:
        if not self.pks:
            return
        cases = {c.pk: c for c in Case.objects.filter(pk__in=self.pks).select_related("category")}
        events: dict[int, list[CaseEvent]] = {pk: [] for pk in self.pks}
        for e in CaseEvent.objects.filter(case_id__in=self.pks).order_by("case_id", "version"):
            events[e.case_id].append(e)
        for pk, case in cases.items():
            check_case(case, events[pk])


def check_case(case: Case, events: list[CaseEvent]) -> None:
    where = f"{case.number} ({case.state} v{case.version})"
    # one event per version, 1..n
    assert [e.version for e in events] == list(range(1, case.version + 1)), where
    # a chain of states from the report to the case's state
    assert (events[0].action, events[0].from_state, events[0].to_state) == (
        REPORT,
        "",
        State.REPORTED,
    ), where
    for prev, e in pairwise(events):
        assert e.from_state == prev.to_state, f"{where}: {e} does not follow {prev}"
        assert e.at >= prev.at, where
        if e.action == "merged_in":
            assert e.to_state == e.from_state, where
            continue
        t = TABLE[e.action]
        assert e.from_state in t.sources, f"{where}: {e.action} from {e.from_state}"
        assert e.to_state == (t.target or e.from_state), where
    assert events[-1].to_state == case.state, where

    # closing
    if case.state == State.CLOSED:
        assert case.closed_at is not None, where
        closing = max(i for i, e in enumerate(events) if e.action in CLOSING)
        if events[closing].action == "close":
            dispatched = max(
                i for i, e in enumerate(events) if e.action in ("dispatch", "urgent_dispatch")
            )
            after = [e.action for e in events[dispatched:closing]]
            assert "check_pass" in after, f"{where}: closed without a check: {after}"
        else:
            assert any(e.action == "self_handle" for e in events[:closing]), where
    elif case.state in State.values and case.state not in TERMINAL:
        assert case.closed_at is None, where
    if case.rating is not None:
        assert case.state == State.CLOSED, where
    if case.state == State.MERGED:
        assert case.merged_into_id is not None, where
        survivor = Case.objects.get(pk=case.merged_into_id)
        assert survivor.pk != case.pk
        assert CaseEvent.objects.filter(
            case=survivor, action="merged_in", params__duplicate=case.number
        ).exists(), where
    if case.state in WITH_LEAD:
        assert case.lead_unit_id is not None, where
    if case.state == State.SENT_BACK:
        assert case.lead_unit_id is None, where
    if case.pending:
        assert case.state == State.HANDLING and case.pending in ("extension", "suspension"), where
    assert case.level in LEVELS, where

    check_clock(case, events, where)


def check_clock(case: Case, events: list[CaseEvent], where: str) -> None:
    """The clock is the one the last clock-setting event started, plus approved extensions."""
    cal = current_calendar()
    starter = None
    for i, e in enumerate(events):
        effect = Step.REGISTER if e.action == REPORT else KEEP
        if e.action in TABLE:
            effect = TABLE[e.action].clock
        if effect != KEEP:
            starter = (i, e, effect)
    assert starter is not None, where
    index, started_by, effect = starter
    if effect == STOP or case.state in TERMINAL:
        assert case.state in TERMINAL or case.state == State.SUSPENDED, where
        assert (case.step, case.step_started_at, case.due_at, case.due_soon_at, case.light) == (
            "",
            None,
            None,
            None,
            "",
        ), f"{where}: a stopped case has a clock"
        return
    assert case.step == effect and case.step_started_at == started_by.at, where
    assert case.due_at is not None and case.due_soon_at is not None, where
    assert case.light == "green", where
    extensions = [
        cal.span(parse_limit(e.params["span"]))
        for e in events[index + 1 :]
        if e.action == "approve_extension"
    ]
    limit = cal.span(parse_limit(case.step_limit))
    total = limit + sum(extensions, timedelta())
    assert cal.working_time_between(case.step_started_at, case.due_at) == total, where
    soon = cal.working_time_between(case.step_started_at, case.due_soon_at)
    assert abs(soon - total * DUE_SOON_SHARE) <= timedelta(microseconds=1), where
    assert case.due_soon_at <= case.due_at, where
    for instant in (case.due_at, case.due_soon_at):
        assert in_working_time_or_at_a_period_end(instant), f"{where}: {instant} is off work"


def in_working_time_or_at_a_period_end(instant: datetime) -> bool:
    """A deadline is the earliest instant its span is used up: inside a working period
    ``[start, end)`` or exactly at a period's end (17:30 stays 17:30), never elsewhere."""
    cal = current_calendar()
    if cal.is_within_working_time(instant):
        return True
    local = instant.astimezone(cal.tz)
    return any(end == local for _start, end in cal.working_periods(local.date()))


@pytest.mark.django_db
def test_random_walks_through_the_workflow_keep_every_invariant() -> None:
    world = build_world()
    world.users["yuhua_handler"] = accounts.user_create(username="yuhua_handler", password=PASSWORD)
    accounts.role_assign(
        user=world.users["yuhua_handler"], role=Role.UNIT_HANDLER, unit=world.units["yuhua-office"]
    )
    CaseMachine.world = world
    CaseMachine.done = set()
    category("01003", "雨水井盖", name_en="Rain-water manhole cover")
    run_state_machine_as_test(
        CaseMachine,
        settings=settings(
            max_examples=20,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            print_blob=True,
        ),
    )
    print(f"actions taken: {len(CaseMachine.done)} of {len(TABLE)}: {sorted(CaseMachine.done)}")
    assert len(CaseMachine.done) >= len(TABLE) // 2, "the machine hardly moved the cases"


@pytest.mark.django_db
def test_the_period_end_rule_accepts_a_deadline_at_17_30_but_not_at_night() -> None:
    zone = local_zone()
    assert in_working_time_or_at_a_period_end(datetime(2026, 11, 23, 17, 30, tzinfo=zone))
    assert in_working_time_or_at_a_period_end(datetime(2026, 11, 23, 12, 0, tzinfo=zone))
    assert in_working_time_or_at_a_period_end(datetime(2026, 11, 23, 10, 0, tzinfo=zone))
    assert not in_working_time_or_at_a_period_end(datetime(2026, 11, 23, 17, 31, tzinfo=zone))
    assert not in_working_time_or_at_a_period_end(datetime(2026, 11, 22, 10, 0, tzinfo=zone))
    assert not in_working_time_or_at_a_period_end(datetime(2026, 11, 23, 8, 29, tzinfo=zone))
