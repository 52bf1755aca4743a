"""Step limits in working time and the stored clock columns of a case.

A limit is written ``<number><unit>`` with unit ``m`` (working minutes), ``h`` (working hours)
or ``d`` (standard working days): ``30m``, ``4h``, ``1.5d``. Categories set their own; the
defaults come from ``GRIDGOV_CASE_*_LIMIT`` settings.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from gridgov.core.worktime import WorkSpan, current_calendar

from .workflow import KEEP, STOP, Step

if TYPE_CHECKING:
    from .models import Case, Category

_LIMIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhd])\s*$", re.IGNORECASE)
#: Share of the limit after which a step turns yellow.
DUE_SOON_SHARE = 0.8
MAX_LIMIT_DAYS = 365


def parse_limit(text: str) -> WorkSpan:
    """``"4h"`` → WorkSpan(hours=4); raises ValidationError naming the problem."""
    m = _LIMIT.match(text or "")
    if not m:
        raise ValidationError(
            _("%(value)r is not a time limit: write a number and m, h or d, e.g. 30m, 4h, 1d")
            % {"value": text}
        )
    value, unit = float(m.group(1)), m.group(2).lower()
    if not math.isfinite(value) or value > MAX_LIMIT_DAYS * 24 * 60:
        raise ValidationError(
            _("%(value)r is out of range: a limit lies between 1 minute and 365 days")
            % {"value": text[:40]}
        )
    span = {"m": WorkSpan(minutes=value), "h": WorkSpan(hours=value), "d": WorkSpan(days=value)}[
        unit
    ]
    if value <= 0 or span.to_timedelta(timedelta(days=1)) > timedelta(days=MAX_LIMIT_DAYS):
        raise ValidationError(
            _("%(value)r is out of range: a limit lies between 1 minute and 365 days")
            % {"value": text}
        )
    return span


def validate_limit(text: str) -> None:
    if text:
        parse_limit(text)


_DEFAULTS = {
    Step.REGISTER: "GRIDGOV_CASE_REGISTER_LIMIT",
    Step.VERIFY: "GRIDGOV_CASE_VERIFY_LIMIT",
    Step.SIGN: "GRIDGOV_CASE_SIGN_LIMIT",
    Step.HANDLE: "GRIDGOV_CASE_HANDLE_LIMIT",
    Step.CHECK: "GRIDGOV_CASE_CHECK_LIMIT",
    Step.CLOSE: "GRIDGOV_CASE_CLOSE_LIMIT",
    Step.REVIEW: "GRIDGOV_CASE_CHECK_LIMIT",
}

#: Which category field sets each step's limit.
_CATEGORY_FIELD = {
    Step.REGISTER: "register",
    Step.SIGN: "sign",
    Step.HANDLE: "handle",
    Step.CHECK: "check",
    Step.REVIEW: "check",
    Step.VERIFY: "check",
}


def step_limit(category: Category, step: str, *, emergency: bool = False) -> str:
    """The limit text of ``step`` for a case of ``category``."""
    if step == Step.REGISTER and emergency:
        own = category.limit("urgent_register")
        return own or str(settings.GRIDGOV_CASE_URGENT_REGISTER_LIMIT)
    field = _CATEGORY_FIELD.get(Step(step))
    own = category.limit(field) if field else ""
    return own or str(getattr(settings, _DEFAULTS[Step(step)]))


@dataclass(frozen=True)
class Clock:
    step: str
    started_at: datetime | None
    limit: str
    due_soon_at: datetime | None
    due_at: datetime | None

    def columns(self) -> dict[str, object]:
        """The case's clock columns, times in UTC (as the database gives them back)."""
        return {
            "step": self.step,
            "step_started_at": _utc(self.started_at),
            "step_limit": self.limit,
            "due_soon_at": _utc(self.due_soon_at),
            "due_at": _utc(self.due_at),
            "light": "green" if self.due_at else "",
        }


NO_CLOCK = Clock("", None, "", None, None)


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None and value.tzinfo is not None else value


def start_clock(category: Category, step: str, at: datetime, *, emergency: bool = False) -> Clock:
    """The clock of ``step`` started at ``at``: due after the step's limit in working time."""
    limit = step_limit(category, step, emergency=emergency)
    return clock_for(step, at, limit)


def clock_for(step: str, at: datetime, limit: str) -> Clock:
    cal = current_calendar()
    span = cal.span(parse_limit(limit))
    due_at = cal.add_working_time(at, span)
    due_soon_at = cal.add_working_time(at, span * DUE_SOON_SHARE)
    return Clock(step, at, limit, due_soon_at, due_at)


def extend_clock(case: Case, span_text: str) -> dict[str, object]:
    """Columns that move the running step's due times by ``span_text`` of working time."""
    if case.due_at is None or case.step_started_at is None:
        return {}
    cal = current_calendar()
    extra = cal.span(parse_limit(span_text))
    total = cal.working_time_between(case.step_started_at, case.due_at) + extra
    due_at = cal.add_working_time(case.due_at, extra)
    due_soon_at = cal.add_working_time(case.step_started_at, total * DUE_SOON_SHARE)
    return {"due_at": due_at, "due_soon_at": due_soon_at, "light": "green"}


def clock_effect(
    effect: str, category: Category, at: datetime, *, emergency: bool = False
) -> Clock | None:
    """The clock after a transition with the table's ``clock`` value; None to keep it."""
    if effect == KEEP:
        return None
    if effect == STOP:
        return NO_CLOCK
    return start_clock(category, effect, at, emergency=emergency)


def light_of(due_soon_at: datetime | None, due_at: datetime | None, now: datetime) -> str:
    """green under 80 % of the limit, yellow 80–100 %, red over; "" without a clock."""
    if due_at is None:
        return ""
    if now >= due_at:
        return "red"
    if due_soon_at is not None and now >= due_soon_at:
        return "yellow"
    return "green"
