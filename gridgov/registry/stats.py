"""Aggregate statistics of the registry, computed by the database (no loop over people).

One entry point, ``registry_stats(actor, region_code="")``: the figures of one region (a grid,
a community, a street or a district) inside the actor's scope, or of their whole scope when no
region is named. Every figure counts open records only and starts from the scoped selectors,
so a grid worker of grid B never counts a resident of grid A; tag counts leave out tags above
the actor's clearance (a supervisor sees no key-person tag, not even as a number).

The answer (``RegistryStats``) is a frozen dataclass; ``as_dict()`` gives JSON-ready data for
the API and the charts (population by person type, age pyramid in 5-year bands by sex, tag
counts, rooms by use, and the figures of each region one level down).

About a dozen queries in all, whatever the number of people: each figure is one ``GROUP BY``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import Substr
from django.utils import timezone
from django.utils.translation import gettext as _

from gridgov.core.errors import NotFound
from gridgov.core.scope import Scope, prefix_q
from gridgov.geo.codes import LENGTH_LEVEL, LEVEL_LENGTH
from gridgov.geo.models import Region

from .models import PersonTag, PersonType, RoomUse, Sex, TagType
from .selectors import (
    buildings_visible_to,
    households_visible_to,
    people_visible_to,
    registry_scope,
    rooms_visible_to,
    tag_level,
)

#: Width of an age band, in years.
BAND_YEARS = 5
#: The last band is open: "100+".
OLDEST_BAND = 100
BAND_COUNT = OLDEST_BAND // BAND_YEARS + 1


@dataclass(frozen=True)
class StatsRegion:
    """The region the figures are about ("" code: the actor's whole scope)."""

    code: str
    name: str
    level: str


@dataclass(frozen=True)
class RegistryStats:
    region: StatsRegion
    #: Open records: buildings, rooms, households, people.
    totals: dict[str, int]
    #: ``[{"key": "registered", "label": ..., "count": n}]`` in the order of ``PersonType``.
    population_by_type: list[dict[str, Any]]
    #: ``[{"band": "0-4", "low": 0, "male": n, "female": n, "unknown": n}]``, youngest first.
    age_pyramid: list[dict[str, Any]]
    #: People without a birth date (not in the pyramid).
    age_unknown: int
    #: ``[{"code", "label", "sensitivity", "count"}]``: active tag types the actor may see.
    tags: list[dict[str, Any]]
    #: ``[{"key": "rented", "label": ..., "count": n}]`` in the order of ``RoomUse``.
    rooms_by_use: list[dict[str, Any]]
    #: The regions one level down (communities of a street, grids of a community…):
    #: ``[{"code", "name", "people", "households"}]``; empty for a grid.
    by_region: list[dict[str, Any]] = field(default_factory=list)
    on: date | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["on"] = self.on.isoformat() if self.on else None
        return data


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year - years, day=28)


def age_band_expression(today: date) -> Case:
    """The age band (0 for 0–4 years, 1 for 5–9, …, 20 for 100+) of ``birth_date`` on
    ``today``, as an SQL expression: a birth date after ``today`` less 5·(k+1) years means an
    age below 5·(k+1)."""
    whens = [
        When(birth_date__gt=_years_before(today, BAND_YEARS * (k + 1)), then=Value(k))
        for k in range(BAND_COUNT - 1)
    ]
    return Case(*whens, default=Value(BAND_COUNT - 1), output_field=IntegerField())


def band_label(k: int) -> str:
    low = k * BAND_YEARS
    return f"{low}+" if low >= OLDEST_BAND else f"{low}-{low + BAND_YEARS - 1}"


def stats_region(actor: Any, region_code: str = "") -> tuple[StatsRegion, Q]:
    """The region asked for and the filter of its records (on ``region_code``).

    NotFound when the region does not exist or lies (even partly) outside the actor's scope:
    a grid worker may ask for their grid, not for their community."""
    scope = registry_scope(actor)
    code = (region_code or "").strip()
    if not code:
        return _scope_region(scope), Q()
    region = Region.objects.filter(code=code).only("code", "name", "level").first()
    if region is None or scope.is_empty or not scope.covers(region.code):
        raise NotFound(
            _("no region with code %(code)s is visible to you") % {"code": code[:20]},
            detail={"region": code[:20]},
        )
    return StatsRegion(region.code, region.name, region.level), prefix_q("region_code", code)


def _scope_region(scope: Scope) -> StatsRegion:
    """The whole scope: named after its one region when it has one."""
    if len(scope.prefixes) == 1:
        region = Region.objects.filter(code=scope.prefixes[0]).only("name", "level").first()
        if region is not None:
            return StatsRegion(region.code, region.name, region.level)
    return StatsRegion("", _("all your regions"), "")


def _counts(qs: QuerySet[Any], column: str) -> dict[Any, int]:
    return {row[column]: row["n"] for row in qs.order_by().values(column).annotate(n=Count("pk"))}


def _choices(counts: dict[Any, int], choices: Any) -> list[dict[str, Any]]:
    rows = [
        {"key": value, "label": str(label), "count": counts.get(value, 0)}
        for value, label in choices.choices
    ]
    known = set(choices.values)
    rows.extend(
        {"key": value, "label": str(value), "count": n}
        for value, n in counts.items()
        if value not in known
    )
    return rows


def population_by_type(people: QuerySet[Any]) -> list[dict[str, Any]]:
    return _choices(_counts(people, "person_type"), PersonType)


def rooms_by_use(rooms: QuerySet[Any]) -> list[dict[str, Any]]:
    return _choices(_counts(rooms, "use"), RoomUse)


def age_pyramid(people: QuerySet[Any], today: date) -> tuple[list[dict[str, Any]], int]:
    """(bands youngest first with counts per sex, people without a birth date)."""
    rows = (
        people.order_by()
        .filter(birth_date__isnull=False)
        .annotate(band=age_band_expression(today))
        .values("band", "sex")
        .annotate(n=Count("pk"))
    )
    sexes = list(Sex.values)
    bands: list[dict[str, Any]] = [
        {"band": band_label(k), "low": k * BAND_YEARS, **dict.fromkeys(sexes, 0)}
        for k in range(BAND_COUNT)
    ]
    for row in rows:
        sex = row["sex"] if row["sex"] in sexes else Sex.UNKNOWN
        bands[int(row["band"])][sex] += row["n"]
    unknown = people.order_by().filter(birth_date__isnull=True).count()
    return bands, unknown


def tag_counts(actor: Any, people: QuerySet[Any]) -> list[dict[str, Any]]:
    """Open people per active tag type the actor may see (zero counts included)."""
    level = tag_level(actor)
    types = list(
        TagType.objects.filter(active=True, sensitivity__lte=level).order_by(
            "sensitivity", "order", "code"
        )
    )
    counts = {
        row["tag_type_id"]: row["n"]
        for row in PersonTag.objects.filter(
            person__in=people.order_by().values("pk"), tag_type__sensitivity__lte=level
        )
        .values("tag_type_id")
        .annotate(n=Count("pk"))
    }
    return [
        {
            "code": t.code,
            "label": t.name,
            "sensitivity": t.sensitivity,
            "count": counts.get(t.pk, 0),
        }
        for t in types
    ]


def _child_length(region: StatsRegion, scope: Scope) -> int | None:
    if region.level:
        order = list(LEVEL_LENGTH.values())
        here = LEVEL_LENGTH.get(region.level)
        if here is None or here == order[-1]:
            return None
        return order[order.index(here) + 1]
    if scope.everything:
        return LEVEL_LENGTH["district"]
    shortest = min((len(p) for p in scope.prefixes), default=0)
    return shortest if shortest in LENGTH_LEVEL else None


def by_region(
    people: QuerySet[Any], households: QuerySet[Any], length: int | None
) -> list[dict[str, Any]]:
    """People and households of each region one level down (by the prefix of their code)."""
    if length is None:
        return []

    def grouped(qs: QuerySet[Any]) -> dict[str, int]:
        return {
            row["part"]: row["n"]
            for row in qs.order_by()
            .annotate(part=Substr("region_code", 1, length))
            .values("part")
            .annotate(n=Count("pk"))
        }

    people_per = grouped(people)
    households_per = grouped(households)
    codes = sorted(set(people_per) | set(households_per))
    names = dict(Region.objects.filter(code__in=codes).values_list("code", "name"))
    return [
        {
            "code": code,
            "name": names.get(code, ""),
            "people": people_per.get(code, 0),
            "households": households_per.get(code, 0),
        }
        for code in codes
    ]


def registry_stats(
    actor: Any, region_code: str = "", *, today: date | None = None
) -> RegistryStats:
    """The statistics of ``region_code`` (or of the actor's whole scope) as the actor may see
    them; NotFound for a region outside their scope."""
    region, where = stats_region(actor, region_code)
    today = today or timezone.localdate()
    people = people_visible_to(actor).filter(where)
    households = households_visible_to(actor).filter(where)
    rooms = rooms_visible_to(actor).filter(where)
    buildings = buildings_visible_to(actor).filter(where)
    pyramid, age_unknown = age_pyramid(people, today)
    return RegistryStats(
        region=region,
        totals={
            "buildings": buildings.order_by().count(),
            "rooms": rooms.order_by().count(),
            "households": households.order_by().count(),
            "people": people.order_by().count(),
        },
        population_by_type=population_by_type(people),
        age_pyramid=pyramid,
        age_unknown=age_unknown,
        tags=tag_counts(actor, people),
        rooms_by_use=rooms_by_use(rooms),
        by_region=by_region(people, households, _child_length(region, registry_scope(actor))),
        on=today,
    )
