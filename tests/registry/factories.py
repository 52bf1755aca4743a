"""Base data for tests, made through the registry's actions, and valid synthetic id numbers.

The personas come from tests/world.py: ``grid_worker_a`` works in grid A (320113003001001),
``grid_worker_b`` in grid B (…002) beside it, ``grid_leader`` in their community, ``supervisor``
in the street, ``admin`` everywhere. Points IN_GRID_A / IN_GRID_B are (lat, lon) as in
tests/cases/factories.py.
"""

from __future__ import annotations

from datetime import date
from itertools import count
from typing import Any

from gridgov.accounts.models import User
from gridgov.registry import actions
from gridgov.registry.models import Building, Household, Person, Room
from gridgov.registry.validators import id_check_char
from tests.cases.factories import IN_GRID_A as IN_GRID_A
from tests.cases.factories import IN_GRID_B as IN_GRID_B

_sequence = count(1)


def id_number(
    birth: date = date(1990, 1, 1),
    *,
    sex: str = "male",
    region: str = "320113",
    serial: int | None = None,
) -> str:
    """A valid 18-character id number (GB 11643) for a birth date and sex."""
    n = next(_sequence) if serial is None else serial
    order = (n * 2) % 1000  # an even sequence: a woman
    if sex == "male":
        order = (order + 1) % 1000
    first17 = f"{region}{birth:%Y%m%d}{order:03d}"
    return first17 + id_check_char(first17)


def mobile(n: int | None = None) -> str:
    return f"139{(next(_sequence) if n is None else n):08d}"


def building(actor: User, *, where: tuple[float, float] = IN_GRID_A, **fields: Any) -> Building:
    lat, lon = where
    n = next(_sequence)
    fields.setdefault("estate", "和畅园")
    fields.setdefault("number", f"{n}栋")
    return actions.building_create(actor=actor, lon=lon, lat=lat, **fields)


def room(actor: User, home: Building, *, number: str | None = None, **fields: Any) -> Room:
    return actions.room_create(
        actor=actor, building=home, number=number or str(100 + next(_sequence)), **fields
    )


def household(actor: User, in_room: Room | None = None, **fields: Any) -> Household:
    return actions.household_create(actor=actor, room=in_room, **fields)


def home(actor: User, *, where: tuple[float, float] = IN_GRID_A) -> Household:
    """A household in a new room of a new building at ``where``."""
    return household(actor, room(actor, building(actor, where=where)))


def person(actor: User, *, household: Household | None = None, **fields: Any) -> Person:
    fields.setdefault("name", "张三")
    if household is None and "grid" not in fields:
        household = home(actor)
    return actions.person_create(actor=actor, household=household, **fields)


def fresh(record: Any) -> Any:
    """The record as stored now (a new full instance)."""
    return type(record).objects.get(pk=record.pk)
