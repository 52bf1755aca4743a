"""Who hears of a case's transition, and what they read (in-app rows in the same transaction;
e-mail and SMS leave later through the notifications job)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from gridgov.accounts.models import Role, User
from gridgov.geo.codes import ancestor_codes

from .models import HandlingLevel

if TYPE_CHECKING:
    from .models import Case, CaseEvent
    from .workflow import Transition

_LEVEL_PREFIX = {
    HandlingLevel.COMMUNITY: 12,
    HandlingLevel.STREET: 9,
    HandlingLevel.DISTRICT: 6,
}


def staff_serving(case: Case, *roles: str, exact_prefix: int | None = None) -> QuerySet[User]:
    """Active users holding one of ``roles`` in a region whose subtree holds the case's grid
    (or exactly at the region ``exact_prefix`` digits long)."""
    codes = (
        [case.region_code[:exact_prefix]]
        if exact_prefix
        else [*ancestor_codes(case.region_code), case.region_code]
    )
    return User.objects.filter(
        is_active=True, assignments__role__in=roles, assignments__region__code__in=codes
    ).distinct()


def unit_handlers(unit_ids: Iterable[int]) -> QuerySet[User]:
    return User.objects.filter(
        is_active=True,
        assignments__role=Role.UNIT_HANDLER,
        assignments__unit_id__in=list(unit_ids),
        assignments__unit__is_active=True,
    ).distinct()


def _send(case: Case, recipients: Iterable[User], kind: str, title: str, body: str = "") -> None:
    from gridgov.notifications.actions import notify

    notify(
        recipients=recipients,
        kind=kind,
        title=title,
        body=body,
        link=case.get_absolute_url(),
        subject_ref=case.number,
    )


def after_report(case: Case) -> None:
    if case.emergency:
        people = staff_serving(case, Role.SHIFT_LEADER, Role.DISPATCHER)
        _send(
            case,
            people,
            "case.urgent",
            _("Urgent case %(number)s: %(category)s")
            % {"number": case.number, "category": case.category.name},
            case.description[:200],
        )


def after_merge(duplicate: Case, survivor: Case) -> None:
    if duplicate.reporter_id:
        _send(
            duplicate,
            User.objects.filter(pk=duplicate.reporter_id, is_active=True),
            "case.merged",
            _("Your report %(number)s is handled as case %(survivor)s")
            % {"number": duplicate.number, "survivor": survivor.number},
        )


def after_transition(case: Case, event: CaseEvent, t: Transition) -> None:
    """Notify the people whose turn it is now (never the actor)."""
    title_args = {"number": case.number, "category": case.category.name}
    people: Iterable[User] = ()
    title = ""
    action = t.action
    lead = [case.lead_unit_id] if case.lead_unit_id else []
    if action in ("dispatch", "urgent_dispatch"):
        units = lead + list(case.assisting_units.values_list("pk", flat=True))
        people = unit_handlers(units)
        title = _("Case %(number)s was dispatched to your unit: %(category)s") % title_args
    elif action == "send_back":
        people = staff_serving(case, Role.DISPATCHER)
        title = _("Case %(number)s was sent back: dispatch it again") % title_args
    elif action in ("request_extension", "request_suspension"):
        people = staff_serving(case, Role.DISPATCHER, Role.SHIFT_LEADER)
        title = _("Case %(number)s: the unit asks for a decision") % title_args
    elif action in (
        "approve_extension",
        "refuse_extension",
        "approve_suspension",
        "refuse_suspension",
        "resume",
        "check_fail",
        "supervise",
    ):
        people = unit_handlers(lead)
        title = _("Case %(number)s: %(action)s") % {**title_args, "action": t.label}
    elif action == "feedback":
        people = staff_serving(case, Role.SUPERVISOR)
        title = _("Case %(number)s was handled: check it") % title_args
    elif action == "check_pass":
        people = staff_serving(case, Role.SHIFT_LEADER)
        title = _("Case %(number)s passed its check: close it") % title_args
    elif action == "request_verification":
        people = staff_serving(case, Role.SUPERVISOR, Role.GRID_WORKER)
        title = _("Case %(number)s: please verify on site") % title_args
    elif action == "verify":
        people = staff_serving(case, Role.INTAKE_OPERATOR)
        title = _("Case %(number)s was verified on site") % title_args
    elif action in ("close", "review_pass", "decline", "void", "review_fail"):
        if case.reporter_id:
            people = User.objects.filter(pk=case.reporter_id, is_active=True)
        title = _("Your report %(number)s: %(action)s") % {**title_args, "action": t.label}
    elif action == "escalate":
        prefix = _LEVEL_PREFIX.get(HandlingLevel(case.level))
        people = staff_serving(
            case,
            Role.SHIFT_LEADER,
            Role.DISPATCHER,
            Role.GRID_LEADER,
            Role.LEADER,
            exact_prefix=prefix,
        )
        title = _("Case %(number)s was escalated to you") % title_args
    elif action == "supervise_reply":
        people = staff_serving(case, Role.SHIFT_LEADER, Role.LEADER)
        title = _("Case %(number)s: the unit replied to supervision") % title_args
    elif action == "reopen":
        people = staff_serving(case, Role.DISPATCHER)
        title = _("Case %(number)s was reopened: dispatch it") % title_args
    if title:
        recipients = [u for u in people if u.pk != event.actor_id]
        if recipients:
            _send(case, recipients, f"case.{action}", title, event.note[:200])
