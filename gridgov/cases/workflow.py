"""The closed loop as one declarative table (DESIGN.md rule 3).

Each ``Transition`` says from which states an action may be taken, the state it leads to, who
may take it, which inputs it requires, and what it does to the step clock. The action engine
(``gridgov.cases.actions.case_act``), the buttons on the case page, the API, the inboxes and the
tests all read this table: adding a step is one entry here (plus its effect, if it has one, in
``actions._EFFECTS``).

Who may act is a set of role names (gridgov.accounts.models.Role) plus two relations:

- ``LEAD_UNIT``: a unit handler of the case's lead unit;
- ``REPORTER``: the user who reported the case.

A region role acts only on cases whose grid lies in the subtree of that role's assignment.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from gridgov.accounts.models import Role


class State(models.TextChoices):
    REPORTED = "reported", _("Reported")
    ACCEPTED = "accepted", _("Accepted")
    VERIFYING = "verifying", _("Verifying on site")
    REGISTERED = "registered", _("Registered")
    SENT_BACK = "sent_back", _("Sent back")
    DISPATCHED = "dispatched", _("Dispatched")
    HANDLING = "handling", _("Handling")
    SUSPENDED = "suspended", _("Suspended")
    CHECKING = "checking", _("Checking")
    CHECKED = "checked", _("Checked")
    SELF_HANDLED = "self_handled", _("Self-handled, in review")
    CLOSED = "closed", _("Closed")
    DECLINED = "declined", _("Declined")
    VOIDED = "voided", _("Voided")
    MERGED = "merged", _("Merged")


TERMINAL = frozenset({State.CLOSED, State.DECLINED, State.VOIDED, State.MERGED})
OPEN = frozenset(set(State) - TERMINAL)


class Step(models.TextChoices):
    """The clocks a case runs against. Limits come from the category (see deadlines.py)."""

    REGISTER = "register", _("Register and dispatch")
    VERIFY = "verify", _("Verify on site")
    SIGN = "sign", _("Sign for")
    HANDLE = "handle", _("Handle")
    CHECK = "check", _("Check")
    CLOSE = "close", pgettext_lazy("case step", "Close")
    REVIEW = "review", _("Review self-handling")


#: The clock effects of a transition besides starting a named step.
KEEP = "keep"  # the running clock goes on
STOP = "stop"  # no clock any more (closed, declined, suspended …)

LEAD_UNIT = "lead_unit"
REPORTER = "reporter"

# inputs
NOTE = "note"
REASON = "reason"
PHOTOS = "photos"
CATEGORY = "category"
URGENCY = "urgency"
LEAD = "lead_unit"
ASSISTING = "assisting_units"
SPAN = "span"
TARGET = "target"
RATING = "rating"

INTAKE = frozenset({Role.INTAKE_OPERATOR, Role.SHIFT_LEADER})
COMMAND = frozenset({Role.DISPATCHER, Role.SHIFT_LEADER})
FIELD = frozenset({Role.SUPERVISOR, Role.GRID_WORKER, Role.GRID_LEADER})


@dataclass(frozen=True)
class Transition:
    action: str
    label: str | Promise
    sources: frozenset[str]
    target: str | None  # None: the state stays
    who: frozenset[str]
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    clock: str = KEEP  # a Step value, KEEP or STOP
    #: a named extra condition checked by the engine (see actions._GUARDS)
    guard: str = ""
    #: the action belongs to somebody's to-do list (the inboxes list such cases)
    todo: bool = True
    #: "danger" for refusing/negative actions (the case page styles them so)
    tone: str = ""

    def allows_input(self, name: str) -> bool:
        return name in self.required or name in self.optional


S = State
_OPEN_HANDLING = frozenset({S.DISPATCHED, S.HANDLING, S.SUSPENDED, S.CHECKING, S.CHECKED})
_BEFORE_DISPATCH = frozenset({S.REPORTED, S.ACCEPTED, S.VERIFYING, S.REGISTERED, S.SENT_BACK})

TRANSITIONS: tuple[Transition, ...] = (
    # intake
    Transition("accept", _("Accept"), frozenset({S.REPORTED}), S.ACCEPTED, INTAKE,
               optional=(NOTE, CATEGORY, URGENCY)),
    Transition("decline", _("Decline"), frozenset({S.REPORTED}), S.DECLINED, INTAKE,
               required=(REASON,), clock=STOP, tone="danger"),
    Transition("request_verification", _("Ask for on-site verification"),
               frozenset({S.ACCEPTED}), S.VERIFYING, INTAKE, optional=(NOTE,), clock=Step.VERIFY),
    Transition("verify", _("Report verification"), frozenset({S.VERIFYING}), S.ACCEPTED, FIELD,
               required=(NOTE,), optional=(PHOTOS,), clock=Step.REGISTER),
    Transition("register", _("Register"), frozenset({S.ACCEPTED}), S.REGISTERED, INTAKE,
               optional=(NOTE, CATEGORY, URGENCY)),
    Transition("void", _("Void"), frozenset({S.ACCEPTED, S.VERIFYING, S.REGISTERED}), S.VOIDED,
               INTAKE, required=(REASON,), clock=STOP, tone="danger"),
    Transition("self_handle", _("Solved on the spot"), frozenset({S.REPORTED}), S.SELF_HANDLED,
               frozenset({Role.GRID_WORKER, Role.GRID_LEADER}), required=(NOTE, PHOTOS),
               clock=Step.REVIEW, guard="reporter_only", todo=False),
    Transition("review_pass", _("Confirm self-handling"), frozenset({S.SELF_HANDLED}), S.CLOSED,
               INTAKE, optional=(NOTE,), clock=STOP),
    Transition("review_fail", _("Not solved: take it in"), frozenset({S.SELF_HANDLED}),
               S.ACCEPTED, INTAKE, required=(REASON,), clock=Step.REGISTER, tone="danger"),
    Transition("merge", _("Merge into another case"), _BEFORE_DISPATCH - {S.SENT_BACK}, S.MERGED,
               INTAKE, required=(TARGET,), optional=(NOTE,), clock=STOP, todo=False),
    # command
    Transition("dispatch", _("Dispatch"), frozenset({S.REGISTERED, S.SENT_BACK}), S.DISPATCHED,
               COMMAND, required=(LEAD,), optional=(ASSISTING, NOTE), clock=Step.SIGN),
    Transition("urgent_dispatch", _("Emergency: register and dispatch"),
               frozenset({S.REPORTED, S.ACCEPTED}), S.DISPATCHED, COMMAND,
               required=(LEAD,), optional=(ASSISTING, NOTE, CATEGORY), clock=Step.SIGN,
               guard="urgent"),
    # the unit
    Transition("sign", _("Sign for"), frozenset({S.DISPATCHED}), S.HANDLING,
               frozenset({LEAD_UNIT}), optional=(NOTE,), clock=Step.HANDLE),
    Transition("send_back", _("Send back: not ours"), frozenset({S.DISPATCHED, S.HANDLING}),
               S.SENT_BACK, frozenset({LEAD_UNIT}), required=(REASON,), clock=Step.REGISTER,
               tone="danger"),
    Transition("request_extension", _("Ask for more time"), frozenset({S.HANDLING}), None,
               frozenset({LEAD_UNIT}), required=(REASON, SPAN), guard="nothing_pending",
               todo=False),
    Transition("approve_extension", _("Approve extension"), frozenset({S.HANDLING}), None,
               COMMAND, optional=(NOTE,), guard="extension_pending"),
    Transition("refuse_extension", _("Refuse extension"), frozenset({S.HANDLING}), None,
               COMMAND, required=(REASON,), guard="extension_pending", tone="danger"),
    Transition("request_suspension", _("Ask to suspend (挂账)"), frozenset({S.HANDLING}), None,
               frozenset({LEAD_UNIT}), required=(REASON,), guard="nothing_pending", todo=False),
    Transition("approve_suspension", _("Approve suspension"), frozenset({S.HANDLING}),
               S.SUSPENDED, COMMAND, optional=(NOTE,), clock=STOP, guard="suspension_pending"),
    Transition("refuse_suspension", _("Refuse suspension"), frozenset({S.HANDLING}), None,
               COMMAND, required=(REASON,), guard="suspension_pending", tone="danger"),
    Transition("resume", _("Resume"), frozenset({S.SUSPENDED}), S.HANDLING, COMMAND,
               optional=(NOTE,), clock=Step.HANDLE, todo=False),
    Transition("feedback", _("Feed back the result"), frozenset({S.HANDLING}), S.CHECKING,
               frozenset({LEAD_UNIT}), required=(NOTE,), optional=(PHOTOS,), clock=Step.CHECK,
               guard="nothing_pending"),
    # check and close
    Transition("check_pass", _("Check: solved"), frozenset({S.CHECKING}), S.CHECKED,
               frozenset({Role.SUPERVISOR, Role.INTAKE_OPERATOR}), optional=(NOTE, PHOTOS),
               clock=Step.CLOSE),
    Transition("check_fail", _("Check: rework"), frozenset({S.CHECKING}), S.HANDLING,
               frozenset({Role.SUPERVISOR, Role.INTAKE_OPERATOR}), required=(REASON,),
               optional=(PHOTOS,), clock=Step.HANDLE, tone="danger"),
    Transition("close", pgettext_lazy("case action", "Close"), frozenset({S.CHECKED}), S.CLOSED,
               frozenset({Role.SHIFT_LEADER}), optional=(NOTE,), clock=STOP),
    Transition("reopen", _("Reopen"), frozenset({S.CLOSED}), S.REGISTERED,
               frozenset({Role.SHIFT_LEADER}), required=(REASON,), clock=Step.REGISTER,
               guard="reopen_window", todo=False),
    Transition("evaluate", _("Rate the result"), frozenset({S.CLOSED}), None,
               frozenset({REPORTER}), required=(RATING,), optional=(NOTE,), guard="not_rated",
               todo=False),
    # any open case
    Transition("escalate", _("Escalate one level"), OPEN, None,
               FIELD | COMMAND | frozenset({Role.INTAKE_OPERATOR}), required=(REASON,),
               guard="can_go_up", todo=False),
    Transition("send_down", _("Send down one level"), OPEN, None,
               COMMAND | frozenset({Role.LEADER}), required=(REASON,), guard="can_go_down",
               todo=False),
    Transition("supervise", _("Supervise (督办)"), _OPEN_HANDLING, None,
               frozenset({Role.SHIFT_LEADER, Role.LEADER}), required=(NOTE,), todo=False),
    Transition("supervise_reply", _("Reply to supervision"), _OPEN_HANDLING, None,
               frozenset({LEAD_UNIT}), required=(NOTE,), guard="supervised"),
)  # fmt: skip

TABLE: dict[str, Transition] = {t.action: t for t in TRANSITIONS}

#: The report itself is the first event of every case (not a transition between states).
REPORT = "report"

ACTION_LABELS: dict[str, str | Promise] = {
    REPORT: _("Report"),
    "merged_in": _("Duplicate merged in"),
    **{t.action: t.label for t in TRANSITIONS},
}


def transition(action: str) -> Transition:
    return TABLE[action]
