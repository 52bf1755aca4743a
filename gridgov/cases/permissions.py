"""Who may take which action on a case: the workflow table applied to one user and one case.

Used by the action engine, the case page's buttons, the API's ``allowed_actions`` and the
inboxes, so all four agree.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from gridgov.accounts.models import UNIT_ROLES, Role
from gridgov.accounts.selectors import user_assignments, user_scope

from .models import HandlingLevel, Urgency
from .workflow import LEAD_UNIT, REPORTER, TABLE, TRANSITIONS, Transition

if TYPE_CHECKING:
    from .models import Case

LEVELS: list[str] = [
    HandlingLevel.GRID,
    HandlingLevel.COMMUNITY,
    HandlingLevel.STREET,
    HandlingLevel.DISTRICT,
]


def _reopen_window(case: Case) -> str | Promise | None:
    days = int(settings.GRIDGOV_CASE_REOPEN_DAYS)
    if case.closed_at is None or timezone.now() - case.closed_at > timedelta(days=days):
        return _("a case can be reopened only within %(days)s days of closing") % {"days": days}
    return None


def _urgent(case: Case) -> str | Promise | None:
    if case.urgency != Urgency.NORMAL or case.emergency:
        return None
    return _("only urgent cases take the emergency path")


def _nothing_pending(case: Case) -> str | Promise | None:
    if case.pending:
        return _("a request for an extension or a suspension is waiting for a decision")
    return None


def _pending(kind: str, message: Promise) -> Callable[[Case], str | Promise | None]:
    return lambda case: None if case.pending == kind else message


def _level_not(level: str, message: Promise) -> Callable[[Case], str | Promise | None]:
    return lambda case: None if case.level != level else message


#: Extra conditions of the table's transitions: None when met, else why not.
GUARDS: dict[str, Callable[[Case], str | Promise | None]] = {
    "": lambda case: None,
    "reporter_only": lambda case: None,  # checked with the actor in acting_role
    "urgent": _urgent,
    "nothing_pending": _nothing_pending,
    "extension_pending": _pending("extension", _("no extension has been asked for")),
    "suspension_pending": _pending("suspension", _("no suspension has been asked for")),
    "reopen_window": _reopen_window,
    "not_rated": lambda case: None if case.rating is None else _("the case has been rated already"),
    "can_go_up": _level_not(HandlingLevel.DISTRICT, _("the case is at the district level already")),
    "can_go_down": _level_not(HandlingLevel.GRID, _("the case is at the grid level already")),
    "supervised": lambda case: None if case.supervised else _("the case is not under supervision"),
}


def acting_role(case: Case, user: Any, t: Transition) -> str | None:
    """The role in which ``user`` may take ``t`` on ``case`` (ignoring state), else None."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    if t.guard == "reporter_only" and case.reporter_id != user.pk:
        return None
    for who in sorted(t.who):
        if who == REPORTER:
            if case.reporter_id is not None and case.reporter_id == user.pk:
                return REPORTER
        elif who == LEAD_UNIT:
            if case.lead_unit_id is not None and any(
                a.role in UNIT_ROLES and a.unit_id == case.lead_unit_id and a.unit.is_active
                for a in user_assignments(user)
                if a.unit is not None
            ):
                return Role.UNIT_HANDLER
        elif user_scope(user, roles={who}).covers(case.region_code):
            return who
    return None


def refusal(case: Case, user: Any, t: Transition) -> str | Promise | None:
    """Why ``user`` may not take ``t`` on ``case`` now; None when they may."""
    if case.state not in t.sources:
        return _("%(action)s is not possible while the case is %(state)s") % {
            "action": t.label,
            "state": case.get_state_display(),
        }
    if acting_role(case, user, t) is None:
        return _("you may not %(action)s this case") % {"action": str(t.label).lower()}
    return GUARDS[t.guard](case)


def allowed_transitions(case: Case, user: Any) -> list[Transition]:
    """The transitions ``user`` may take on ``case`` now, in table order."""
    return [
        t
        for t in TRANSITIONS
        if case.state in t.sources
        and acting_role(case, user, t) is not None
        and GUARDS[t.guard](case) is None
    ]


def can(case: Case, user: Any, action: str) -> bool:
    return action in TABLE and refusal(case, user, TABLE[action]) is None
