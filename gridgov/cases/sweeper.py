"""The deadline sweeper: lights, due-soon and overdue notices, escalation rules (DESIGN.md rule 5).

Each open step's clock is stored on the case (``due_soon_at`` at 80 % of the limit, ``due_at``,
``escalate_at``), so one pass is three indexed range scans, each bounded by what changed:

1. **due soon** — ``light`` green → yellow where ``due_soon_at <= now < due_at``;
2. **overdue** — ``light`` green or yellow → red where ``due_at <= now``;
3. **escalation** — ``escalate_at`` → NULL where ``escalate_at <= now``. The action engine sets
   ``escalate_at`` when a clock starts, from the step's ``EscalationRule`` (see
   ``escalation_due``); clearing it is the marker that the rule fired for this step.

Every change is a *claim*: one ``UPDATE … WHERE id IN (SELECT … LIMIT n) AND <the same
condition> RETURNING id`` (SQLite ≥ 3.35, PostgreSQL). Only the rows this statement flipped
come back, and only those are notified, in the same transaction: two sweepers racing (two
workers, or the job and ``gridgov sweep``) never notify twice, and a crash after the flip
rolls the flip back with its notifications.

The sweeper writes no timeline event and leaves ``version`` and ``updated_at`` alone: a light
and an escalation mark are bookkeeping of the clock, not transitions (a user's action with
the version they loaded must not fail because a light changed).

Notifications are made in bulk: a batch of claimed cases costs a fixed number of queries
(the cases, the staff of their regions, the handlers of their units, preferences, one bulk
insert), whatever its size.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from django.utils.translation import gettext as _

from gridgov.accounts.models import Role, RoleAssignment
from gridgov.core.stamps import StampedCache
from gridgov.core.worktime import WorkSpan, current_calendar, local_zone
from gridgov.geo.codes import CodeError, ancestor_codes

from .deadlines import parse_limit
from .models import Case, EscalationRule, Light
from .workflow import LEAD_UNIT, Step

log = logging.getLogger("gridgov.cases.sweeper")

#: The version stamp bumped whenever an escalation rule is saved or deleted.
RULES_STAMP = "cases.escalation_rules"
DEFAULT_BATCH = 5000

KIND_DUE_SOON = "case.due_soon"
KIND_OVERDUE = "case.overdue"
KIND_ESCALATED = "case.escalated"

#: Whose turn a step is: they hear that it is due soon (region roles, or LEAD_UNIT for the
#: handlers of the case's lead unit).
STEP_OWNERS: dict[str, tuple[str, ...]] = {
    Step.REGISTER: (Role.INTAKE_OPERATOR, Role.DISPATCHER),
    Step.VERIFY: (Role.SUPERVISOR,),
    Step.SIGN: (LEAD_UNIT,),
    Step.HANDLE: (LEAD_UNIT,),
    Step.CHECK: (Role.SUPERVISOR,),
    Step.CLOSE: (Role.SHIFT_LEADER,),
    Step.REVIEW: (Role.INTAKE_OPERATOR,),
}
#: Who hears of an overdue step besides its owners: their supervisor.
OVERDUE_ALSO: tuple[str, ...] = (Role.SHIFT_LEADER,)


# --- escalation rules -------------------------------------------------------------------------


@dataclass(frozen=True)
class Escalation:
    """An escalation rule as the engine and the sweeper use it."""

    step: str
    after: str
    span: WorkSpan
    notify_role: str


def _load_rules(version: int) -> dict[str, Escalation]:
    rules: dict[str, Escalation] = {}
    for rule in EscalationRule.objects.all():
        try:
            span = parse_limit(rule.after)
        except ValidationError:
            log.warning("escalation rule %s ignored: %r is not a span", rule.step, rule.after)
            continue
        rules[rule.step] = Escalation(rule.step, rule.after, span, rule.notify_role)
    return rules


_rules: StampedCache[dict[str, Escalation]] = StampedCache(RULES_STAMP, _load_rules)


def escalation_rules() -> dict[str, Escalation]:
    """The rules by step (cached per process, rebuilt when ``cases.escalation_rules`` moves)."""
    return _rules.get()


def escalation_due(step: str, started_at: datetime | None) -> datetime | None:
    """When a clock of ``step`` started at ``started_at`` escalates: the step's rule's span of
    working time later; None when the step has no rule (or there is no clock)."""
    if not step or started_at is None:
        return None
    rule = escalation_rules().get(step)
    if rule is None:
        return None
    cal = current_calendar()
    return cal.add_working_time(started_at, cal.span(rule.span))


def escalation_rules_changed(**_kwargs: object) -> None:
    """Call inside the transaction that changed the rules (connected to the model's signals).

    A changed rule applies to clocks started afterwards; running clocks keep their
    ``escalate_at``."""
    _rules.changed()


def invalidate_local() -> None:
    """Forget this process's rules (tests; the stamp takes care of other processes)."""
    _rules.invalidate()


post_save.connect(escalation_rules_changed, sender=EscalationRule, dispatch_uid="escalation_rules")
post_delete.connect(
    escalation_rules_changed, sender=EscalationRule, dispatch_uid="escalation_rules_deleted"
)


# --- claims -----------------------------------------------------------------------------------


def _db_time(value: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


def _execute(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def _table() -> str:
    return connection.ops.quote_name(Case._meta.db_table)


def claim_due_soon(*, now: datetime, batch: int = DEFAULT_BATCH) -> list[int]:
    """Turn up to ``batch`` green cases whose 80 % point has passed (but not their due time)
    yellow; the ids of the cases this call turned (none that another sweeper turned first)."""
    t = _table()
    # the lights are literals, as in the partial index ``case_sweep_yellow``: a database only
    # uses a partial index when the query's condition visibly implies the index's
    cond = f"light = '{Light.GREEN.value}' AND due_soon_at <= %s AND due_at > %s"
    at = _db_time(now)
    sql = (
        f"UPDATE {t} SET light = '{Light.YELLOW.value}' WHERE id IN ("  # noqa: S608 (constants)
        f"SELECT id FROM {t} WHERE {cond} ORDER BY due_soon_at LIMIT %s) AND {cond} RETURNING id"
    )
    return [int(row[0]) for row in _execute(sql, [at, at, batch, at, at])]


def claim_overdue(*, now: datetime, batch: int = DEFAULT_BATCH) -> list[int]:
    """Turn up to ``batch`` green or yellow cases whose due time has passed red; the ids of the
    cases this call turned."""
    t = _table()
    lights = f"'{Light.GREEN.value}', '{Light.YELLOW.value}'"  # as in ``case_sweep_red``
    cond = f"light IN ({lights}) AND due_at <= %s"
    at = _db_time(now)
    sql = (
        f"UPDATE {t} SET light = '{Light.RED.value}' WHERE id IN ("  # noqa: S608 (constants)
        f"SELECT id FROM {t} WHERE {cond} ORDER BY due_at LIMIT %s) AND {cond} RETURNING id"
    )
    return [int(row[0]) for row in _execute(sql, [at, batch, at])]


def claim_escalations(*, now: datetime, batch: int = DEFAULT_BATCH) -> list[int]:
    """Clear up to ``batch`` due ``escalate_at`` marks; the ids of the cases this call cleared
    (their rule fires once per clock: the engine sets the mark again when a clock starts)."""
    t = _table()
    cond = "escalate_at <= %s"
    at = _db_time(now)
    sql = (
        f"UPDATE {t} SET escalate_at = NULL WHERE id IN ("  # noqa: S608 (the model's own table)
        f"SELECT id FROM {t} WHERE {cond} ORDER BY escalate_at LIMIT %s) AND {cond} RETURNING id"
    )
    return [int(row[0]) for row in _execute(sql, [at, batch, at])]


# --- who hears of it --------------------------------------------------------------------------


def _region_chain(code: str) -> list[str]:
    try:
        return [*ancestor_codes(code), code]
    except CodeError:
        return [code]


class Audience:
    """The staff of a batch of cases, loaded with two queries: region roles on the cases'
    grids and their ancestors, and the handlers of the cases' lead units."""

    def __init__(self, cases: Sequence[Case], roles: Iterable[str]) -> None:
        wanted = set(roles)
        region_roles = wanted - {LEAD_UNIT, Role.UNIT_HANDLER}
        self._staff: dict[tuple[str, str], set[int]] = defaultdict(set)
        self._handlers: dict[int, set[int]] = defaultdict(set)
        codes = {c for case in cases for c in _region_chain(case.region_code)}
        if region_roles and codes:
            rows = RoleAssignment.objects.filter(
                role__in=sorted(region_roles),
                region__code__in=sorted(codes),
                user__is_active=True,
            ).values_list("role", "region__code", "user_id")
            for role, code, user_id in rows:
                self._staff[(role, code)].add(user_id)
        units = {case.lead_unit_id for case in cases if case.lead_unit_id}
        if wanted & {LEAD_UNIT, Role.UNIT_HANDLER} and units:
            handlers = RoleAssignment.objects.filter(
                role=Role.UNIT_HANDLER,
                unit_id__in=sorted(units),
                unit__is_active=True,
                user__is_active=True,
            ).values_list("unit_id", "user_id")
            for unit_id, user_id in handlers:
                self._handlers[unit_id].add(user_id)

    def of(self, case: Case, roles: Iterable[str]) -> set[int]:
        """Ids of the users holding one of ``roles`` for ``case``."""
        people: set[int] = set()
        chain = _region_chain(case.region_code)
        for role in roles:
            if role in (LEAD_UNIT, Role.UNIT_HANDLER):
                if case.lead_unit_id:
                    people |= self._handlers.get(case.lead_unit_id, set())
            else:
                for code in chain:
                    people |= self._staff.get((role, code), set())
        return people


@dataclass(frozen=True)
class Message:
    recipients: frozenset[int]
    kind: str
    title: str
    case: Case


def notify_many(messages: Sequence[Message]) -> int:
    """Put each message in its recipients' inboxes, in bulk; returns how many rows were made.

    The rows are what ``notifications.actions.notify`` makes (its delivery decision from each
    recipient's preferences included), for many titles at once: one query for the preferences
    and bulk inserts, instead of two queries per case.
    """
    from gridgov.notifications.actions import TITLE_MAX
    from gridgov.notifications.models import DeliveryState, Notification, NotificationPreference

    people = sorted({pk for m in messages for pk in m.recipients})
    if not people:
        return 0
    wants: dict[int, list[str]] = {
        user_id: list(muted or [])
        for user_id, muted in NotificationPreference.objects.filter(user_id__in=people)
        .exclude(email=False, sms=False)
        .values_list("user_id", "muted_kinds")
    }
    created = timezone.now()
    rows = [
        Notification(
            recipient_id=pk,
            kind=m.kind,
            title=m.title[:TITLE_MAX],
            body="",
            link=m.case.get_absolute_url(),
            subject_ref=m.case.number,
            created_at=created,
            delivery_state=(
                DeliveryState.PENDING
                if pk in wants and m.kind not in wants[pk]
                else DeliveryState.SKIPPED
            ),
        )
        for m in messages
        for pk in sorted(m.recipients)
    ]
    Notification.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


def _local(value: datetime | None) -> str:
    return timezone.localtime(value, local_zone()).strftime("%Y-%m-%d %H:%M") if value else "—"


def _step_label(step: str) -> str:
    try:
        return str(Step(step).label)
    except ValueError:
        return step


def _loaded(ids: Sequence[int]) -> list[Case]:
    return list(
        Case.objects.filter(pk__in=list(ids))
        .select_related("category")
        .only(
            "id",
            "number",
            "region_code",
            "step",
            "due_at",
            "lead_unit_id",
            "category__name_zh",
            "category__name_en",
        )
        .order_by("pk")
    )


def _announce(kind: str, ids: Sequence[int]) -> int:
    """Notify the people concerned by the cases ``ids`` just turned yellow or red."""
    cases = _loaded(ids)
    overdue = kind == KIND_OVERDUE
    extra = OVERDUE_ALSO if overdue else ()
    roles = {r for case in cases for r in STEP_OWNERS.get(case.step, ())} | set(extra)
    audience = Audience(cases, roles)
    messages = []
    for case in cases:
        args = {
            "number": case.number,
            "step": _step_label(case.step),
            "due": _local(case.due_at),
            "category": case.category.name,
        }
        if overdue:
            title = _("Case %(number)s is overdue: %(step)s was due %(due)s (%(category)s)") % args
        else:
            title = _("Case %(number)s is due soon: %(step)s by %(due)s (%(category)s)") % args
        people = audience.of(case, (*STEP_OWNERS.get(case.step, ()), *extra))
        if people:
            messages.append(Message(frozenset(people), kind, title, case))
    return notify_many(messages)


def _escalate(ids: Sequence[int]) -> int:
    """Notify the role each case's step rule names."""
    cases = _loaded(ids)
    rules = escalation_rules()
    audience = Audience(cases, {r.notify_role for r in rules.values()})
    messages = []
    for case in cases:
        rule = rules.get(case.step)
        if rule is None:  # the rule was deleted after the clock started
            continue
        title = _(
            "Case %(number)s: %(step)s has not been done within %(after)s of working time "
            "(%(category)s)"
        ) % {
            "number": case.number,
            "step": _step_label(case.step),
            "after": rule.after,
            "category": case.category.name,
        }
        people = audience.of(case, (rule.notify_role,))
        if people:
            messages.append(Message(frozenset(people), KIND_ESCALATED, title, case))
    return notify_many(messages)


# --- the pass ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepResult:
    due_soon: int
    overdue: int
    escalated: int
    notifications: int = 0


def sweep(*, now: datetime | None = None, batch: int = DEFAULT_BATCH) -> SweepResult:
    """One pass: turn lights, apply escalation rules, notify (each batch in one transaction)."""
    now = now or timezone.now()
    due_soon = overdue = escalated = notified = 0
    # a case that passed both points since the last pass is not due soon (``due_at > now``):
    # it turns red once, and its people hear once that it is overdue
    for phase in ("due_soon", "overdue", "escalation"):
        while True:
            with transaction.atomic():
                if phase == "overdue":
                    ids = claim_overdue(now=now, batch=batch)
                    overdue += len(ids)
                    notified += _announce(KIND_OVERDUE, ids) if ids else 0
                elif phase == "due_soon":
                    ids = claim_due_soon(now=now, batch=batch)
                    due_soon += len(ids)
                    notified += _announce(KIND_DUE_SOON, ids) if ids else 0
                else:
                    ids = claim_escalations(now=now, batch=batch)
                    escalated += len(ids)
                    notified += _escalate(ids) if ids else 0
            if len(ids) < batch:
                break
    return SweepResult(due_soon, overdue, escalated, notified)
