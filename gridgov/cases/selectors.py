"""Every read of cases, scoped (DESIGN.md rule 2).

Who sees a case:
- staff in a region role (everyone but unit handlers and residents) whose assignment's subtree
  holds the case's grid;
- unit handlers of the case's lead or assisting units (and of a unit it was sent back from they
  see nothing further);
- the reporter (a resident sees only their own reports).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from gridgov.accounts.models import UNIT_ROLES, Role
from gridgov.accounts.selectors import user_assignments, user_scope
from gridgov.core.errors import NotFound

from .models import Case

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


def cases_visible_q(user: Any) -> Q | None:
    """The filter of cases ``user`` may see; None for everything, ``Q(pk__in=[])`` for none."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return Q(pk__in=[])
    scope = user_scope(user, roles=_CASE_ROLES)
    if scope.everything:
        return None
    query = Q(reporter=user)
    if not scope.is_empty:
        query |= scope.q("region_code")
    units = _unit_ids(user)
    if units:
        query |= Q(lead_unit_id__in=units) | Q(assisting_units__id__in=units)
    return query


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
