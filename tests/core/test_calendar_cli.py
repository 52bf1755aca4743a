"""``gridgov calendar``: show, deadline, override, remove."""

from __future__ import annotations

from collections.abc import Generator
from datetime import date
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from gridgov.core import worktime
from gridgov.core.models import CalendarOverride


@pytest.fixture(autouse=True)
def _fresh_calendar() -> Generator[None, None, None]:
    worktime.invalidate_local()
    yield
    worktime.invalidate_local()


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("calendar", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_it_shows_a_month_with_kinds(db: None, english: None) -> None:
    out, err = run("show", "2026-10")
    assert "2026-10-01 Thu  holiday" in out
    assert "2026-10-10 Sat  makeup_workday" in out
    assert "National Day" in out
    assert "working days" in out
    assert err == ""


def test_it_warns_for_a_year_without_data(db: None, english: None) -> None:
    out, err = run("show", "2027-01")
    assert "2027-01-01 Fri  workday         fallback" in out
    assert "does not cover 2027" in err


def test_it_computes_deadlines(db: None) -> None:
    out, _ = run("deadline", "2026-12-30T10:00", "--days", "2")
    assert out.strip() == "2027-01-01T10:00:00+08:00"
    out, _ = run("deadline", "2026-11-20T16:00+08:00", "--hours", "24")
    assert out.strip() == "2026-11-25T17:30:00+08:00"
    out, _ = run("deadline", "2026-11-24T11:50", "--minutes", "30")
    assert out.strip() == "2026-11-24T13:50:00+08:00"
    with pytest.raises(CommandError):
        run("deadline", "2026-11-24T11:50")
    with pytest.raises(CommandError):
        run("deadline", "tomorrow", "--hours", "1")


def test_it_adds_and_removes_overrides(db: None, english: None) -> None:
    out, _ = run("override", "2027-01-01", "holiday", "--note", "New Year")
    assert "holiday" in out
    assert CalendarOverride.objects.get(date=date(2027, 1, 1)).note == "New Year"
    out, _ = run("deadline", "2026-12-30T10:00", "--days", "2")
    assert out.strip() == "2027-01-04T10:00:00+08:00"
    run("override", "2027-02-20", "workday", "--hours", "08:30-12:00")
    assert worktime.day_kind(date(2027, 2, 20)) == ("makeup_workday", "override")
    out, _ = run("remove", "2027-01-01")
    assert "workday (fallback)" in out
    with pytest.raises(CommandError, match="no calendar override"):
        run("remove", "2027-01-01")
    with pytest.raises(CommandError, match="invalid working hours"):
        run("override", "2027-02-21", "workday", "--hours", "late")
