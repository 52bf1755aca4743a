"""Many people acting on one case at the same moment: exactly one transition per version wins,
everyone else gets 409 and the timeline gains one event. Reports at the same moment get
distinct, consecutive case numbers.

These tests need real concurrent transactions. They run on PostgreSQL, and on SQLite when the
test database is a file (``GRIDGOV_TEST_SQLITE=/tmp/gridgov-test.sqlite3``): the default
in-memory SQLite test database is shared between threads through SQLite's shared cache, whose
table locks fail at once ("database table is locked") instead of waiting, so nothing meaningful
can be measured there.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, connections
from django.utils import timezone

from gridgov.accounts import actions as accounts
from gridgov.accounts.models import Role, User
from gridgov.cases import actions
from gridgov.cases.actions import Inputs, case_act, case_report
from gridgov.cases.models import Case, CaseEvent
from gridgov.cases.workflow import State
from gridgov.core.errors import Conflict, DomainError
from tests.cases.factories import IN_GRID_A, category, report
from tests.cases.test_transitions import photo
from tests.world import PASSWORD, World

THREADS = 20


def _in_memory_sqlite() -> bool:
    test_name = settings.DATABASES["default"].get("TEST", {}).get("NAME")
    return connection.vendor == "sqlite" and not test_name


pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        _in_memory_sqlite(),
        reason="concurrent transactions need PostgreSQL or a file-based SQLite test database "
        "(set GRIDGOV_TEST_SQLITE=/tmp/gridgov-test.sqlite3)",
    ),
]


def at_once(jobs: list[Callable[[], Any]]) -> list[Any]:
    """Run each job in its own thread (and database connection), all released together;
    returns what each returned or raised, in order."""
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)

    def run(i: int, job: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = job()
        except Exception as exc:  # each outcome is examined by the test
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread is stuck"
    return results


def acting(number: str, username: str, action: str, **inputs: Any) -> Callable[[], Any]:
    def job() -> Any:
        user = User.objects.get(username=username)  # each thread its own user object
        return case_act(
            case=number, actor=user, action=action, version=1, inputs=Inputs(**inputs)
        ).version

    return job


def _outcomes(results: list[Any]) -> Counter[str]:
    unexpected = [r for r in results if isinstance(r, Exception) and not isinstance(r, Conflict)]
    assert not unexpected, f"errors other than 409: {unexpected!r}"
    return Counter("409" if isinstance(r, Conflict) else "won" for r in results)


@pytest.mark.postgres
def test_twenty_intake_operators_accepting_at_once_make_one_transition(world: World) -> None:
    operators = []
    for i in range(THREADS):
        user = accounts.user_create(username=f"operator{i:02d}", password=PASSWORD)
        accounts.role_assign(user=user, role=Role.INTAKE_OPERATOR, region=world.regions["320113"])
        operators.append(user.username)
    case = report(world.grid_worker_a)

    results = at_once([acting(case.number, name, "accept", note="受理") for name in operators])

    assert _outcomes(results) == {"won": 1, "409": THREADS - 1}
    assert all(r.status == 409 for r in results if isinstance(r, DomainError))
    case.refresh_from_db()
    assert (case.state, case.version) == (State.ACCEPTED, 2)
    assert list(CaseEvent.objects.filter(case=case).values_list("action", flat=True)) == [
        "report",
        "accept",
    ]


@pytest.mark.postgres
def test_twenty_different_valid_actions_at_once_only_one_happens(world: World) -> None:
    case = report(world.grid_worker_a, urgency="urgent")
    target = report(world.resident).number
    lead = {"lead_unit": "street-office-003"}
    attempts: list[tuple[str, str, dict[str, Any]]] = [
        ("intake_operator", "accept", {}),
        ("intake_operator", "decline", {"reason": "不予受理"}),
        ("intake_operator", "merge", {"target": target}),
        ("intake_operator", "escalate", {"reason": "上报"}),
        ("shift_leader", "accept", {"note": "受理"}),
        ("shift_leader", "decline", {"reason": "重复"}),
        ("shift_leader", "urgent_dispatch", lead),
        ("shift_leader", "escalate", {"reason": "上报"}),
        ("shift_leader", "merge", {"target": target}),
        ("dispatcher", "urgent_dispatch", lead),
        ("dispatcher", "escalate", {"reason": "上报"}),
        ("grid_worker_a", "self_handle", {"note": "已处理", "photos": [photo()]}),
        ("grid_worker_a", "escalate", {"reason": "上报"}),
        ("supervisor", "escalate", {"reason": "上报"}),
        ("grid_leader", "escalate", {"reason": "上报"}),
        ("intake_operator", "accept", {"urgency": "critical"}),
        ("shift_leader", "accept", {}),
        ("dispatcher", "urgent_dispatch", {**lead, "note": "立即处置"}),
        ("intake_operator", "decline", {"reason": "不属实"}),
        ("grid_worker_a", "self_handle", {"note": "已盖好", "photos": [photo()]}),
    ]
    assert len(attempts) == THREADS

    results = at_once([acting(case.number, who, action, **kw) for who, action, kw in attempts])

    assert _outcomes(results) == {"won": 1, "409": THREADS - 1}
    winner = next(i for i, r in enumerate(results) if not isinstance(r, Exception))
    who, action, _inputs = attempts[winner]
    case.refresh_from_db()
    assert case.version == 2
    events = list(CaseEvent.objects.filter(case=case).order_by("version"))
    assert [e.action for e in events] == ["report", action]
    assert events[-1].actor == world.users[who]
    merged_in = CaseEvent.objects.filter(case__number=target, action="merged_in").count()
    assert merged_in == (1 if action == "merge" else 0)


@pytest.mark.postgres
def test_the_losers_reload_and_their_next_action_succeeds(world: World) -> None:
    case = report(world.grid_worker_a)
    results = at_once([acting(case.number, "intake_operator", "accept") for _ in range(5)])
    assert _outcomes(results) == {"won": 1, "409": 4}
    loser = next(r for r in results if isinstance(r, Conflict))
    assert loser.detail == {"version": 2, "state": State.ACCEPTED}
    done = case_act(
        case=case.number,
        actor=world.intake_operator,
        action="register",
        version=loser.detail["version"],
    )
    assert (done.state, done.version) == (State.REGISTERED, 3)


@pytest.mark.postgres
def test_twenty_reports_at_once_get_twenty_distinct_consecutive_numbers(world: World) -> None:
    cat = category()
    moment = timezone.now()

    def reporting() -> str:
        user = User.objects.get(username="grid_worker_a")
        return case_report(
            actor=user,
            category=cat,
            description="井盖缺失",
            lat=IN_GRID_A[0],
            lon=IN_GRID_A[1],
            at=moment,
        ).number

    numbers = at_once([reporting] * THREADS)

    errors = [n for n in numbers if isinstance(n, Exception)]
    assert not errors, errors
    assert len(set(numbers)) == THREADS
    prefixes = {n.rsplit("-", 1)[0] for n in numbers}
    day = timezone.localtime(moment).strftime("%Y%m%d")
    assert prefixes == {f"320113-{day}"}
    sequence = sorted(int(n.rsplit("-", 1)[1]) for n in numbers)
    assert sequence == list(range(sequence[0], sequence[0] + THREADS))
    assert Case.objects.filter(number__in=numbers).count() == THREADS


# not marked "postgres": tests/conftest.py turns a skipped report of such a test into a failure
# when GRIDGOV_REQUIRE_POSTGRES=1, and an expected failure is reported as skipped
def test_two_cases_merged_into_each_other_at_once_give_one_merge_and_one_409(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = report(world.grid_worker_a), report(world.resident)
    both_locked = threading.Barrier(2)
    merge = actions._EFFECTS["merge"]

    def merge_once_both_hold_their_case(*args: Any) -> Any:
        # (on SQLite the second transaction cannot even start until the first one ends)
        with contextlib.suppress(threading.BrokenBarrierError):
            both_locked.wait(timeout=2)
        return merge(*args)

    monkeypatch.setitem(actions._EFFECTS, "merge", merge_once_both_hold_their_case)

    results = at_once(
        [
            acting(first.number, "intake_operator", "merge", target=second.number),
            acting(second.number, "shift_leader", "merge", target=first.number),
        ]
    )

    assert _outcomes(results) == {"won": 1, "409": 1}
    states = sorted(
        Case.objects.filter(pk__in=[first.pk, second.pk]).values_list("state", flat=True)
    )
    assert states == [State.MERGED, State.REPORTED]
