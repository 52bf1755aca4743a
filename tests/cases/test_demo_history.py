"""The demo case history: cases made by the real actions, consistent, mixed, resumable.

A small demo district (1,000 households, 287 grids, the real units and demo logins) is loaded
once for the module inside a transaction rolled back at the end, with the history's staff and
routing rules. The history of 150 cases over 10 days is run once, in a savepoint that is rolled
back after its facts are collected, so the tests that make their own runs start from the same
empty history. The stopped and resumed run compares itself with an unbroken run of a smaller
plan of its own (the whole history would be made twice more).
"""

from __future__ import annotations

import io
import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from gridgov.accounts.models import RoleAssignment, User
from gridgov.cases import demo as history
from gridgov.cases.models import Case, CaseEvent, Category, RoutingRule
from gridgov.cases.routing import suggest_unit
from gridgov.cases.selectors import todo_counts
from gridgov.cases.workflow import OPEN, TERMINAL, State
from gridgov.core import demo
from gridgov.core.worktime import current_calendar
from gridgov.geo.models import Level, Region

#: every test is a database test (so the test database is set up even for a test that reads
#: only the module's snapshot)
pytestmark = pytest.mark.django_db

HOUSEHOLDS = 1_000
DEMO_SEED = 7
SEED = 2026
CASES = 150
DAYS = 10
#: A fixed end (a Friday afternoon), so that the history, and each rare path this module looks
#: for in it, is the same at every hour of every day: with the real now as the end, 150 cases
#: sometimes held no escalated or no rated case.
END = datetime(2026, 11, 20, 16, 0, tzinfo=timezone.get_default_timezone())
#: Reopening is allowed within GRIDGOV_CASE_REOPEN_DAYS of closing counted from the real now, not
#: from the history's clock: widened for the module so that the history's reopens stay allowed.
REOPEN_DAYS = (timezone.now() - END).days + 30
#: The demo community's first grid.
GRID = f"{demo.DEMO_COMMUNITY}001"
LOGINS = ("intake", "shiftleader", "dispatcher", "handler", "supervisor", "gridworker")


@dataclass
class Snapshot:
    summary: history.HistorySummary
    second: history.HistorySummary
    cases: list[dict[str, Any]]
    events: dict[int, list[dict[str, Any]]]
    todo: dict[str, int]
    acted: dict[str, int]
    counts_after_first: tuple[int, ...]
    counts_after_second: tuple[int, ...]
    rules_added_again: int
    #: category (scheme, code) -> the suggested unit's (kind, name, served region codes) in the
    #: demo community's first grid
    routes: dict[tuple[str, str], tuple[str, str, list[str]]]
    grid_workers: int
    expected_grid_workers: int
    usable_passwords: int
    display_names: list[str]
    #: notifications of the demo logins: all, and unread, once the history is complete
    demo_notifications: tuple[int, int]


def _counts() -> tuple[int, ...]:
    from gridgov.notifications.models import Notification

    return (
        Case.objects.count(),
        CaseEvent.objects.count(),
        User.objects.count(),
        RoutingRule.objects.count(),
        Notification.objects.count(),
    )


def _signature() -> list[tuple[Any, ...]]:
    return list(
        Case.objects.order_by("number").values_list(
            "number", "state", "version", "category__code", "source", "region_code", "reported_at"
        )
    )


def _run(**kwargs: Any) -> history.HistorySummary:
    options: dict[str, Any] = {"cases": CASES, "days": DAYS, "seed": SEED, "end": END}
    return history.demo_history(**{**options, **kwargs})


@pytest.fixture(scope="module")
def demo_db(
    django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    media: Path = tmp_path_factory.mktemp("media")
    with (
        django_db_blocker.unblock(),
        override_settings(
            MEDIA_ROOT=str(media),
            PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
            GRIDGOV_CASE_REOPEN_DAYS=REOPEN_DAYS,
        ),
        transaction.atomic(),
    ):
        demo.demo_load(households=HOUSEHOLDS, seed=DEMO_SEED)
        # staff and rules once, for every run of the module; each run then gathers the planner's
        # statistics itself (database_analyze(bulk_load=True)): on PostgreSQL the demo lives in
        # this transaction, which autovacuum never sees
        history.history_prepare(seed=SEED)
        yield
        transaction.set_rollback(True)


@pytest.fixture(scope="module")
def snapshot(demo_db: None, django_db_blocker: Any) -> Snapshot:
    with django_db_blocker.unblock(), transaction.atomic():
        summary = _run()
        counts_after_first = _counts()
        cases: list[dict[str, Any]] = [
            dict(row)
            for row in Case.objects.values(
                "pk", "number", "state", "version", "grid_id", "region_code", "rework_count",
                "send_back_count", "supervised", "level", "due_at", "reported_at", "closed_at",
                "reopen_count", "rating", "source", "merged_into_id",
            )
        ]  # fmt: skip
        events: dict[int, list[dict[str, Any]]] = {}
        for e in CaseEvent.objects.order_by("case_id", "version").values(
            "case_id", "version", "action", "from_state", "to_state", "at", "params"
        ):
            events.setdefault(e["case_id"], []).append(dict(e))
        logins = {u.username: u for u in User.objects.filter(username__in=LOGINS)}
        todo = {name: todo_counts(user)["total"] for name, user in logins.items()}
        acted = {
            name: CaseEvent.objects.filter(actor=user).count() for name, user in logins.items()
        }
        second = _run()
        counts_after_second = _counts()
        categories = list(Category.objects.filter(parent__isnull=False).select_related("parent"))
        rules_added_again = history.routing_rules_ensure(categories=categories, units=_units())
        routes = {}
        for key in (("social", "S0101"), ("gbt47678", "E06001"), ("gbt47678", "01002"),
                    ("gbt47678", "E09001")):  # fmt: skip
            unit = suggest_unit(Category.objects.get(scheme=key[0], code=key[1]), GRID)
            assert unit is not None
            routes[key] = (unit.kind, unit.name, [r.code for r in unit.regions.all()])
        staff = User.objects.filter(username__startswith="demo-")
        grids = Region.objects.filter(level=Level.GRID).count()
        demo_grids = (
            RoleAssignment.objects.filter(
                user__username__in=[u for u, _r, _w in demo.DEMO_USERS], role="grid_worker"
            )
            .values("region")
            .distinct()
            .count()
        )
        grid_workers = staff.filter(username__startswith="demo-gw-").count()
        usable = sum(1 for u in staff if u.has_usable_password())
        names = list(staff.values_list("display_name", flat=True))
        from gridgov.notifications.models import Notification

        mine = Notification.objects.filter(
            recipient__username__in=[u for u, _r, _w in demo.DEMO_USERS]
        )
        demo_notifications = (mine.count(), mine.filter(read_at__isnull=True).count())
        transaction.set_rollback(True)
    return Snapshot(
        summary=summary,
        second=second,
        cases=cases,
        events=events,
        todo=todo,
        acted=acted,
        counts_after_first=counts_after_first,
        counts_after_second=counts_after_second,
        rules_added_again=rules_added_again,
        routes=routes,
        grid_workers=grid_workers,
        expected_grid_workers=grids - demo_grids,
        usable_passwords=usable,
        display_names=names,
        demo_notifications=demo_notifications,
    )


def _units() -> list[Any]:
    from gridgov.accounts.models import Unit

    return list(Unit.objects.filter(is_active=True).prefetch_related("regions"))


@pytest.fixture
def d(demo_db: None, db: None) -> None:
    """A test of its own on the loaded demo (its writes are rolled back after it)."""


# --- the plan -----------------------------------------------------------------------------------


def test_the_report_plan_is_the_same_for_a_seed_and_spread_over_the_days() -> None:
    def plan(seed: int) -> history.ReportPlan:
        return history.plan_reports(
            seed=seed, cases=5_000, days=30, end=END, working_day=lambda d: d.weekday() < 5
        )

    first, again, other = plan(1), plan(1), plan(2)
    assert np.array_equal(first.at, again.at) and np.array_equal(first.source, again.source)
    assert not np.array_equal(first.at, other.at)
    assert np.all(np.diff(first.at) >= 0)
    assert first.at.min() >= END.timestamp() - 30 * 86400 and first.at.max() < END.timestamp()
    shares = Counter(history.SOURCES[s] for s in first.source)
    assert 0.5 < shares["grid_worker"] / 5_000 < 0.6
    assert 0.12 < shares["resident"] / 5_000 < 0.18
    # staff patrol in working hours on working days; residents also write in the evening
    zone = timezone.get_default_timezone()
    hours = {
        source: Counter(
            datetime.fromtimestamp(t, zone).hour
            for t, s in zip(first.at, first.source, strict=True)
            if history.SOURCES[s] == source
        )
        for source in ("grid_worker", "resident")
    }
    staff_evening = sum(n for h, n in hours["grid_worker"].items() if h >= 19)
    resident_evening = sum(n for h, n in hours["resident"].items() if h >= 19)
    assert staff_evening / shares["grid_worker"] < 0.02
    assert resident_evening / shares["resident"] > 0.15


# --- the history ----------------------------------------------------------------------------------


def test_it_makes_the_cases_it_was_asked_for_through_the_actions(snapshot: Snapshot) -> None:
    s = snapshot.summary
    assert (s.added, s.done, s.total) == (CASES, CASES, CASES)
    assert s.complete and s.refused == []
    assert len(snapshot.cases) == CASES
    assert s.actions == sum(len(e) for e in snapshot.events.values()) - sum(
        1 for e in snapshot.events.values() for x in e if x["action"] == "merged_in"
    )


def test_every_case_has_a_consistent_timeline(snapshot: Snapshot) -> None:
    for case in snapshot.cases:
        events = snapshot.events[case["pk"]]
        assert case["version"] == len(events), case["number"]
        assert [e["version"] for e in events] == list(range(1, len(events) + 1))
        assert events[0]["action"] == "report" and events[0]["to_state"] == State.REPORTED
        assert events[0]["at"] == case["reported_at"]
        for before, after in itertools.pairwise(events):
            assert after["from_state"] == before["to_state"], (case["number"], after["action"])
            assert after["at"] >= before["at"], (case["number"], after["action"])
        assert events[-1]["to_state"] == case["state"]
        assert all(e["at"] <= END for e in events)
        assert case["reported_at"] >= END - timedelta(days=DAYS)


def test_every_case_lies_in_a_grid_of_the_district(snapshot: Snapshot) -> None:
    assert all(c["grid_id"] is not None for c in snapshot.cases)
    assert all(c["region_code"].startswith("320113") for c in snapshot.cases)
    assert len({c["region_code"] for c in snapshot.cases}) > 50


def test_the_cases_end_in_a_realistic_mix_of_states(snapshot: Snapshot) -> None:
    states = Counter(c["state"] for c in snapshot.cases)
    closed = states[State.CLOSED]
    open_ = sum(n for state, n in states.items() if state in OPEN)
    refused = states[State.DECLINED] + states[State.VOIDED] + states[State.MERGED]
    # ten days only, so many are still open; closed is still the biggest state
    assert closed == max(states.values()) and closed / CASES > 0.35
    assert open_ / CASES > 0.1
    assert refused >= 1
    assert len([s for s in states if s in OPEN]) >= 4  # open in several states
    cases = snapshot.cases
    assert any(c["rework_count"] for c in cases)
    assert any(c["send_back_count"] for c in cases)
    assert any(c["supervised"] for c in cases)
    assert any(c["level"] != "grid" for c in cases)  # escalated
    assert any(c["rating"] for c in cases)  # rated by residents
    assert any(c["source"] == "resident" for c in cases) and any(
        c["source"] == "hotline" for c in cases
    )
    overdue = [c for c in cases if c["state"] in OPEN and c["due_at"] and c["due_at"] < END]
    assert overdue
    merged = [c for c in cases if c["state"] == State.MERGED]
    assert all(c["merged_into_id"] for c in merged)


def test_most_cases_close_on_time_and_some_late(snapshot: Snapshot) -> None:
    closes = [
        e["params"]["on_time"]
        for events in snapshot.events.values()
        for e in events
        if e["action"] == "close"
    ]
    assert closes.count(True) / len(closes) > 0.8
    assert closes.count(False) >= 1
    closed = [c for c in snapshot.cases if c["state"] == State.CLOSED]
    assert all(c["closed_at"] is not None for c in closed)


def test_the_demo_logins_take_part_and_find_work_in_their_lists(snapshot: Snapshot) -> None:
    for name in ("intake", "shiftleader", "dispatcher", "handler"):
        assert snapshot.acted[name] > 0, name
    assert snapshot.todo["intake"] + snapshot.todo["dispatcher"] + snapshot.todo["shiftleader"]
    assert snapshot.todo["handler"] > 0


def test_the_demo_logins_bells_start_at_zero_once_the_history_is_complete(
    snapshot: Snapshot,
) -> None:
    everything, unread = snapshot.demo_notifications
    assert everything > 0 and unread == 0


def test_a_second_run_adds_nothing(snapshot: Snapshot) -> None:
    second = snapshot.second
    assert second.added == 0 and second.done == CASES
    assert "nothing was added" in second.message
    assert snapshot.counts_after_second == snapshot.counts_after_first
    assert snapshot.rules_added_again == 0


def _stopped_plan_size() -> int:
    """The smallest plan of at least 30 reports (the whole history would be run twice more)
    whose second half, the part a resumed run makes, holds a report and its duplicate: a
    group of two cases (the second merged into, or declined as a duplicate of, the first
    once its steps are due), which the resumed run has to make as the unbroken run does."""
    working_day = current_calendar().is_working_day
    for cases in range(30, CASES):
        plan = history.plan_reports(
            seed=SEED, cases=cases, days=DAYS, end=END, working_day=working_day
        )
        pairs = [
            i
            for i in np.flatnonzero(plan.duplicate)
            # its original after the stop, and early enough to be reported twice
            if i - 1 > cases // 2 and plan.at[i - 1] + 4 * 3600 < END.timestamp()
        ]
        if pairs:
            return cases
    return CASES


def test_a_stopped_run_continues_where_it_stopped_and_ends_as_an_unbroken_one(d: None) -> None:
    cases = _stopped_plan_size()
    with transaction.atomic():  # the unbroken run, rolled back once its cases are noted
        unbroken = _run(cases=cases)
        signature = _signature()
        transaction.set_rollback(True)
    assert unbroken.complete and len(signature) == cases
    assert Case.objects.count() == 0

    class Stop(Exception):
        pass

    def stop_half_way(done: int, total: int) -> None:
        if done >= cases // 2:
            raise Stop

    with pytest.raises(Stop):
        _run(cases=cases, progress=stop_half_way)
    state = history.history_state()
    assert state is not None and cases // 2 <= state["done"] <= cases // 2 + 1
    assert Case.objects.count() == state["done"]
    assert history.history_progress() == (state["done"], cases)

    # asked again (even with other numbers), it continues the stored plan
    resumed = _run(cases=999, days=3, seed=1)
    assert resumed.added == cases - state["done"] and resumed.complete
    assert history.history_progress() is None
    assert _signature() == signature  # the same cases, numbers and states


def test_the_routing_rules_send_each_category_to_a_unit_of_its_kind(snapshot: Snapshot) -> None:
    routes = snapshot.routes
    kind, _name, served = routes[("social", "S0101")]  # 邻里纠纷: the community's committee
    assert kind == "community_committee" and served == [GRID[:12]]
    assert "城市管理" in routes[("gbt47678", "E06001")][1]  # 暴露垃圾: city management
    assert "水务" in routes[("gbt47678", "01002")][1]  # 污水井盖: the water authority
    assert routes[("gbt47678", "E09001")][0] == "street_office"  # 无照经营游商: the fallback


def test_the_synthetic_staff_have_no_usable_password_and_chinese_names(snapshot: Snapshot) -> None:
    # one grid worker per grid, but for the grids of the demo logins gridworker(2)
    assert snapshot.grid_workers == snapshot.expected_grid_workers
    assert snapshot.usable_passwords == 0
    chinese = [
        n for n in snapshot.display_names if n and all("\u4e00" <= ch <= "\u9fff" for ch in n)
    ]
    assert len(chinese) >= len(snapshot.display_names) - 2  # but the api and sensor accounts


def test_the_command_prints_progress_and_a_second_call_adds_nothing(d: None) -> None:
    out = io.StringIO()
    call_command("demo", "history", "--cases", "12", "--days", "3", stdout=out)
    text = out.getvalue()
    assert "12 of 12 cases" in text and "cases/s" in text
    assert Case.objects.count() == 12
    again = io.StringIO()
    call_command("demo", "history", stdout=again)
    assert "nothing was added" in again.getvalue()
    assert Case.objects.count() == 12


def test_staff_see_the_progress_on_the_home_page_while_it_loads(d: None, client: Any) -> None:
    class Stop(Exception):
        pass

    def stop(done: int, total: int) -> None:
        if done >= 5:
            raise Stop

    with pytest.raises(Stop):
        _run(cases=12, progress=stop)
    done = history.history_state()["done"]  # type: ignore[index]
    client.force_login(User.objects.get(username="dispatcher"))
    page = client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert f"Loading demo history: {done} of 12 cases" in page

    client.force_login(User.objects.get(username="resident"))
    assert "Loading demo history" not in client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    _run()  # finishes the stored plan
    client.force_login(User.objects.get(username="dispatcher"))
    assert "Loading demo history" not in client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()


def test_cases_are_never_in_a_terminal_state_with_a_running_clock(snapshot: Snapshot) -> None:
    for case in snapshot.cases:
        if case["state"] in TERMINAL:
            assert case["due_at"] is None, case["number"]


def test_the_working_calendar_places_staff_steps_in_working_time(snapshot: Snapshot) -> None:
    cal = current_calendar()
    staff_steps = [
        e
        for events in snapshot.events.values()
        for e in events
        if e["action"] in ("accept", "register", "dispatch", "sign", "close")
    ]
    inside = sum(1 for e in staff_steps if cal.is_within_working_time(e["at"]))
    assert inside / len(staff_steps) > 0.9
