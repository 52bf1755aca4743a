"""Every read of cases, scoped (DESIGN.md rule 2).

Who sees a case:
- staff in a region role (everyone but unit handlers and residents) whose assignment's subtree
  holds the case's grid;
- unit handlers of the case's lead or assisting units (and of a unit it was sent back from they
  see nothing further);
- the reporter (a resident sees only their own reports).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet, Value
from django.db.models.functions import StrIndex, Upper
from django.db.models.lookups import GreaterThan
from django.utils import timezone

from gridgov.accounts.models import UNIT_ROLES, Role
from gridgov.accounts.selectors import user_assignments, user_scope
from gridgov.core.errors import NotFound
from gridgov.core.scope import Scope, prefix_q
from gridgov.core.worktime import local_zone

from .models import Case, Category

#: Roles whose region scope shows every case in it.
_CASE_ROLES = frozenset(set(Role) - set(UNIT_ROLES) - {Role.RESIDENT})


def _unit_ids(user: Any) -> list[int]:
    return sorted(
        {
            a.unit_id
            for a in user_assignments(user)
            if a.role in UNIT_ROLES and a.unit_id and a.unit is not None and a.unit.is_active
        }
    )


def case_region_q(prefix: str) -> Q:
    """Cases in the region ``prefix`` (a code): a street's or a community's through their own
    columns, so the list indexes (street or community, then report order) serve them."""
    if len(prefix) == 9:
        return Q(street_code=prefix)
    if len(prefix) == 12:
        return Q(community_code=prefix)
    return prefix_q("region_code", prefix)


def case_scope_q(scope: Scope) -> Q:
    if scope.everything:
        return Q()
    if not scope.prefixes:
        return Q(pk__in=[])
    query = Q()
    for prefix in scope.prefixes:
        query |= case_region_q(prefix)
    return query


def cases_visible_q(user: Any) -> Q | None:
    """The filter of cases ``user`` may see; None for everything, ``Q(pk__in=[])`` for none."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return Q(pk__in=[])
    scope = user_scope(user, roles=_CASE_ROLES)
    if scope.everything:
        return None
    if scope.is_empty:
        query = Q(reporter=user)
    else:
        query = case_scope_q(scope)
        if _reports_outside(user, scope):
            query |= Q(reporter=user)
    units = _unit_ids(user)
    if units:
        query |= Q(lead_unit_id__in=units) | Q(assisting_units__id__in=units)
    return query


def _reports_outside(user: Any, scope: Any) -> bool:
    """Whether the user reported cases outside their scope (rare for staff). Only then does
    the list need ``OR reporter = user``, which keeps databases from using the region index.
    Asked once per user object (i.e. once per request)."""
    cached = getattr(user, "_gridgov_reports_outside", None)
    if cached is None:
        cached = Case.objects.filter(reporter=user).exclude(case_scope_q(scope)).exists()
        user._gridgov_reports_outside = cached
    return bool(cached)


def cases_visible_to(user: Any) -> QuerySet[Case]:
    q = cases_visible_q(user)
    qs = Case.objects.all()
    if q is None:
        return qs
    if _unit_ids(user):
        # the assisting-units join may repeat a case: keep ids distinct in a subquery
        return qs.filter(pk__in=Case.objects.filter(q).values("pk"))
    return qs.filter(q)


def case_visible(case: Case, user: Any) -> bool:
    """Whether ``user`` may see ``case`` (one case already loaded: no query for most users)."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if case.reporter_id is not None and case.reporter_id == user.pk:
        return True
    if user_scope(user, roles=_CASE_ROLES).covers(case.region_code):
        return True
    units = _unit_ids(user)
    if not units:
        return False
    if case.lead_unit_id in units:
        return True
    return case.assisting_units.filter(pk__in=units).exists()


def case_get(number: str, user: Any) -> Case:
    """The case numbered ``number`` if ``user`` may see it; NotFound otherwise (also when it
    exists out of scope: its existence is not revealed)."""
    case = (
        Case.objects.select_related(
            "category", "category__parent", "grid", "lead_unit", "suggested_unit", "reporter"
        )
        .filter(number=str(number)[:24])
        .first()
    )
    if case is None or not case_visible(case, user):
        raise NotFound(_not_found(number))
    return case


def _not_found(number: str) -> str:
    from django.utils.translation import gettext as _

    return _("no case %(number)s") % {"number": str(number)[:30]}


# --- the case list ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseFilter:
    """The filters of the case list, the API list and the exports (all optional)."""

    states: tuple[str, ...] = ()
    category: str = ""  # a category code; a major covers its minors
    region: str = ""  # a region code: the case's grid lies in its subtree
    unit: str = ""  # a unit code: lead or assisting
    light: str = ""  # green / yellow / red / none
    source: str = ""
    reported_from: date | None = None
    reported_to: date | None = None  # inclusive
    text: str = ""  # number, description or address contains
    supervised: bool | None = None
    emergency: bool | None = None
    mine: bool = False  # only cases waiting for the user (their to-do list)

    def is_empty(self) -> bool:
        return self == CaseFilter()


def _category_ids(code: str) -> list[int]:
    """The categories with this code and their minors (a major's code covers its minors)."""
    ids = set(
        Category.objects.filter(Q(code=code) | Q(parent__code=code)).values_list("pk", flat=True)
    )
    return sorted(ids) or [0]


def _contains_q(text: str, *fields: str) -> Q:
    """Any of ``fields`` contains ``text`` (ignoring ASCII case), written as
    ``strpos(upper(field), upper(text)) > 0`` rather than ``ILIKE '%text%'``: PostgreSQL takes
    a contains-pattern to match almost nothing, so it read a whole street and sorted it instead
    of walking the list index newest-first until a page is full (a comparison with a function
    gets the planner's ordinary estimate). SQLite's ``instr`` costs the same as its LIKE."""
    needle = Value(text.upper())
    query = Q()
    for name in fields:
        query |= Q(GreaterThan(StrIndex(Upper(name), needle), 0))
    return query


def cases_filtered(user: Any, f: CaseFilter, *, now: datetime | None = None) -> QuerySet[Case]:
    """The cases ``user`` may see that match ``f``, newest report first."""
    now = now or timezone.now()
    qs = cases_visible_to(user)
    if f.states:
        qs = qs.filter(state__in=list(f.states))
    if f.category:
        qs = qs.filter(category_id__in=_category_ids(f.category))
    if f.region:
        qs = qs.filter(case_region_q(f.region))
    if f.unit:
        qs = qs.filter(
            pk__in=Case.objects.filter(
                Q(lead_unit__code=f.unit) | Q(assisting_units__code=f.unit)
            ).values("pk")
        )
    if f.light == "red":
        qs = qs.filter(due_at__lte=now)
    elif f.light == "yellow":
        qs = qs.filter(due_soon_at__lte=now, due_at__gt=now)
    elif f.light == "green":
        qs = qs.filter(due_soon_at__gt=now)
    elif f.light == "none":
        qs = qs.filter(due_at__isnull=True)
    if f.source:
        qs = qs.filter(source=f.source)
    zone = local_zone()
    if f.reported_from:
        qs = qs.filter(
            reported_at__gte=datetime.combine(f.reported_from, datetime.min.time(), tzinfo=zone)
        )
    if f.reported_to:
        end = datetime.combine(f.reported_to + timedelta(days=1), datetime.min.time(), tzinfo=zone)
        qs = qs.filter(reported_at__lt=end)
    if f.supervised is not None:
        qs = qs.filter(supervised=f.supervised)
    if f.emergency is not None:
        qs = qs.filter(emergency=f.emergency)
    if f.mine:
        qs = qs.filter(todo_q(user, states=f.states or None))
    if f.text:  # last: the only filter the list indexes cannot check, so it reads the rows
        qs = qs.filter(_contains_q(f.text.strip()[:100], "number", "description", "address"))
    return qs.order_by("-reported_at", "-pk")


#: The guards of the workflow table as filters, so a to-do list holds only cases whose action
#: can really be taken (guards that need the actor, like the reopen window, are not to-dos).
_GUARD_Q: dict[str, Q] = {
    "": Q(),
    "urgent": Q(emergency=True) | ~Q(urgency="normal"),
    "nothing_pending": Q(pending=""),
    "extension_pending": Q(pending="extension"),
    "suspension_pending": Q(pending="suspension"),
    "supervised": Q(supervised=True),
}


def todo_q(user: Any, *, states: Collection[str] | None = None) -> Q:
    """Cases waiting for ``user``: a to-do transition of the workflow table is theirs in the
    case's state (and its guard holds), within the role's scope; for unit handlers, the lead
    unit's transitions on their unit's cases. ``states``: only these states (a list filtered
    by state as well), left out of the query where they cannot match, so a database never
    reads a street to find that "my to-dos among checked cases" is nothing."""
    from .workflow import LEAD_UNIT, TRANSITIONS

    def wanted_by(who: str) -> Q:
        wanted = Q(pk__in=[])
        for t in TRANSITIONS:
            if t.todo and who in t.who and t.guard in _GUARD_Q:
                sources = sorted(set(t.sources) & set(states) if states is not None else t.sources)
                if sources:
                    wanted |= Q(state__in=sources) & _GUARD_Q[t.guard]
        return wanted

    query = Q(pk__in=[])
    roles = {a.role for a in user_assignments(user) if a.role not in UNIT_ROLES}
    for role in sorted(roles):
        scope = user_scope(user, roles={role})
        if scope.is_empty:
            continue
        query |= case_scope_q(scope) & wanted_by(role)
    units = _unit_ids(user)
    if units:
        query |= Q(lead_unit_id__in=units) & wanted_by(LEAD_UNIT)
    return query


def todo_counts(user: Any, *, now: datetime | None = None) -> dict[str, int]:
    """The user's to-do list counted by light (green, yellow, red) and in all."""
    now = now or timezone.now()
    qs = cases_visible_to(user).filter(todo_q(user))
    counts = qs.aggregate(
        total=Count("pk"),
        red=Count("pk", filter=Q(due_at__lte=now)),
        yellow=Count("pk", filter=Q(due_soon_at__lte=now, due_at__gt=now)),
    )
    total, red, yellow = counts["total"] or 0, counts["red"] or 0, counts["yellow"] or 0
    return {"total": total, "red": red, "yellow": yellow, "green": total - red - yellow}
