"""Reporting a problem: what is refused and why (422 naming the problem), what is kept, the case
number, the suggested unit and the channel a report comes through."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest

from gridgov.accounts import actions as accounts
from gridgov.accounts.models import Role, UnitKind
from gridgov.cases.actions import next_case_number
from gridgov.cases.models import (
    Case,
    CaseEvent,
    CasePhoto,
    Category,
    CategoryAttribute,
    CategoryClass,
    RoutingRule,
    Scheme,
    Source,
)
from gridgov.cases.routing import suggest_unit
from gridgov.cases.workflow import State, Step
from gridgov.core.errors import DomainError, PermissionDenied
from gridgov.geo.crs import wgs84_to_gcj02
from gridgov.notifications.models import Notification
from tests.cases.factories import category, report
from tests.cases.test_transitions import photo
from tests.world import World

pytestmark = pytest.mark.django_db


def refused(reporter: Any, **kwargs: Any) -> DomainError:
    """Report with ``kwargs``; the DomainError it raises (and nothing was written)."""
    before = (Case.objects.count(), CaseEvent.objects.count())
    with pytest.raises(DomainError) as caught:
        report(reporter, **kwargs)
    assert (Case.objects.count(), CaseEvent.objects.count()) == before
    return caught.value


# --- text -------------------------------------------------------------------------------------


def test_hostile_text_is_kept_as_text_verbatim(world: World) -> None:
    hostile = "<script>alert('x')</script> '; DROP TABLE cases_case; -- {{ 7*7 }} ${7*7} 🚧"
    case = report(world.resident, description=hostile, address="<b>和畅路</b> & 1号")
    case.refresh_from_db()
    assert case.description == hostile
    assert case.address == "<b>和畅路</b> & 1号"
    assert Case.objects.count() == 1


def test_text_is_trimmed_but_keeps_its_line_breaks_and_tabs(world: World) -> None:
    case = report(world.resident, description="  第一行\n第二行\t完  \r\n")
    assert case.description == "第一行\n第二行\t完"


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x08", "\x1b", "\x7f", "\x0b", "\x0c"])
def test_control_characters_are_refused(world: World, char: str, english: None) -> None:
    error = refused(world.resident, description=f"井盖{char}缺失")
    assert error.status == 422 and error.detail == {"field": "description"}
    assert "control characters" in error.message


@pytest.mark.parametrize("field", ["address", "reporter_name", "reporter_phone"])
def test_control_characters_are_refused_in_every_text_field(world: World, field: str) -> None:
    error = refused(world.intake_operator, **{field: "a\x00b"})
    assert error.status == 422 and error.detail == {"field": field}


def test_a_ten_thousand_character_description_is_refused(world: World, english: None) -> None:
    error = refused(world.resident, description="长" * 10_000)
    assert error.status == 422 and error.detail == {"field": "description"}
    assert "10,000" in error.message and "4,000" in error.message
    assert len(report(world.resident, description="长" * 4000).description) == 4000


@pytest.mark.parametrize("description", ["", "   \n\t ", 12345, None])
def test_a_report_needs_a_description_in_words(world: World, description: Any) -> None:
    error = refused(world.resident, description=description)
    assert error.status == 422 and error.detail == {"field": "description"}


# --- where ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lat", "lon"),
    [
        (91, 118.82),
        (-90.0001, 118.82),
        (32.05, 180.5),
        (32.05, -181),
        (math.nan, 118.82),
        (32.05, math.inf),
        (-math.inf, 118.82),
        ("abc", 118.82),
        (32.05, "东经118度"),
        (None, 118.82),
        ([32.05], 118.82),
    ],
)
def test_a_location_that_is_no_point_on_earth_is_refused(world: World, lat: Any, lon: Any) -> None:
    error = refused(world.resident, where=(lat, lon))
    assert error.status == 422


def test_a_latitude_too_large_for_a_float_is_refused_with_422(world: World) -> None:
    error = refused(world.resident, where=(10**400, 118.82))
    assert error.status == 422


def test_a_point_in_no_grid_is_refused_naming_the_nearest_grid(world: World, english: None) -> None:
    error = refused(world.resident, where=(32.10, 119.20))  # 19 km east of grid D
    assert error.status == 422
    assert error.detail["nearest"] == "320113005001001"
    assert 18_000 < error.detail["distance_m"] < 20_000
    assert "320113005001001" in error.message and "lies in no grid" in error.message


def test_a_gcj02_point_is_converted_to_wgs84_before_finding_its_grid(world: World) -> None:
    # near the A/B border: the GCJ-02 offset (~500 m east here) would put it in grid B
    wgs_lon, wgs_lat = 118.847, 32.05
    gcj_lon, gcj_lat = wgs84_to_gcj02(wgs_lon, wgs_lat)
    assert gcj_lon > 118.85  # read as WGS-84, the GCJ-02 numbers lie in grid B
    as_gcj = report(world.resident, where=(gcj_lat, gcj_lon), crs="gcj02")
    assert as_gcj.region_code == "320113003001001"
    assert as_gcj.lat == pytest.approx(wgs_lat, abs=1e-7)
    assert as_gcj.lon == pytest.approx(wgs_lon, abs=1e-7)
    as_wgs = report(world.resident, where=(gcj_lat, gcj_lon))
    assert as_wgs.region_code == "320113003001002"


def test_an_unknown_coordinate_system_is_refused_with_422(world: World) -> None:
    error = refused(world.resident, crs="bd09")
    assert error.status == 422


# --- what -------------------------------------------------------------------------------------


def test_an_unknown_category_is_refused(world: World) -> None:
    error = refused(world.resident, category="09999")
    assert error.status == 422 and error.detail == {"field": "category"}


def test_a_category_is_named_by_its_code_or_by_scheme_and_code(world: World) -> None:
    category()
    assert report(world.resident, category="01002").category.code == "01002"
    assert report(world.resident, category="gbt47678:01002").category.code == "01002"
    Category.objects.create(
        scheme=Scheme.LEGACY, code="01002", name_zh="旧编码", klass=CategoryClass.COMPONENT
    )
    error = refused(world.resident, category="01002")
    assert error.status == 422 and error.detail == {"field": "category"}
    assert report(world.resident, category="legacy:01002").category.scheme == Scheme.LEGACY


def test_an_inactive_category_is_refused(world: World) -> None:
    old = category("01009", "废弃类别", name_en="Retired")
    old.is_active = False
    old.save(update_fields=["is_active"])
    for given in (old, "01009"):
        assert refused(world.resident, category=given).status == 422


def test_an_urgency_the_category_does_not_take_is_refused(world: World) -> None:
    calm = category("01004", "路灯", name_en="Street light", urgency_levels=["normal"])
    error = refused(world.resident, category=calm, urgency="urgent")
    assert error.status == 422
    assert report(world.resident, category=calm).urgency == "normal"
    assert refused(world.resident, urgency="panic").status == 422


def test_an_urgent_report_takes_the_emergency_path_and_alerts_the_command_centre(
    world: World,
) -> None:
    case = report(world.resident, urgency="critical")
    assert case.emergency and case.step_limit == "10m"
    alerted = set(
        Notification.objects.filter(kind="case.urgent", subject_ref=case.number).values_list(
            "recipient__username", flat=True
        )
    )
    assert alerted == {"shift_leader", "dispatcher"}
    assert not report(world.resident).emergency


# --- attributes (Open311 GeoReport v2 datatypes) ----------------------------------------------


def with_every_datatype() -> Category:
    cat = category("01005", "消防栓", name_en="Fire hydrant")
    lists = [{"key": "a", "name": "甲"}, {"key": "b", "name": "乙"}, {"key": "c", "name": "丙"}]
    specs: list[tuple[str, str, bool, dict[str, Any]]] = [
        ("s", "string", True, {}),
        ("n", "number", False, {}),
        ("when", "datetime", False, {}),
        ("t", "text", False, {}),
        ("one", "singlevaluelist", False, {"values": lists}),
        ("many", "multivaluelist", False, {"values": lists}),
        ("fixed", "string", True, {"variable": False}),
    ]
    for code, datatype, required, extra in specs:
        CategoryAttribute.objects.create(
            category=cat,
            code=code,
            datatype=datatype,
            required=required,
            description=f"问题{code}",
            **extra,
        )
    return cat


def test_attributes_of_every_datatype_are_cleaned(world: World) -> None:
    cat = with_every_datatype()
    case = report(
        world.resident,
        category=cat,
        attributes={
            "s": "  锈蚀  ",
            "n": "3",
            "when": "2026-11-22T09:30",
            "t": "第一行\n第二行",
            "one": "b",
            "many": ["c", "a", "c"],
        },
    )
    assert case.attributes == {
        "s": "锈蚀",
        "n": 3,
        "when": "2026-11-22T09:30:00+08:00",
        "t": "第一行\n第二行",
        "one": "b",
        "many": ["c", "a"],
    }
    # an attribute the reporter does not enter is not required from them; numbers stay numbers
    again = report(world.resident, category=cat, attributes={"s": 7, "n": 2.5, "many": "b"})
    assert again.attributes == {"s": "7", "n": 2.5, "many": ["b"]}


@pytest.mark.parametrize(
    ("code", "value"),
    [
        ("s", None),
        ("s", ""),
        ("s", ["列表"]),
        ("s", True),
        ("s", "x" * 201),
        ("s", "坏\x00"),
        ("n", "三"),
        ("n", "nan"),
        ("n", "inf"),
        ("n", False),
        ("n", [1]),
        ("when", "昨天"),
        ("when", 20261122),
        ("when", "2026-13-45T10:00"),
        ("t", "长" * 2001),
        ("one", "z"),
        ("one", ["a"]),
        ("many", ["a", "z"]),
        ("many", {"a": 1}),
    ],
)
def test_a_bad_attribute_value_is_refused_naming_the_attribute(
    world: World, code: str, value: Any
) -> None:
    attributes: dict[str, Any] = {"s": "锈蚀", code: value}
    error = refused(world.resident, category=with_every_datatype(), attributes=attributes)
    assert error.status == 422
    assert list(error.detail["attributes"]) == [code]
    assert f"问题{code}" in error.message


def test_unknown_attribute_codes_are_refused(world: World) -> None:
    error = refused(
        world.resident,
        category=with_every_datatype(),
        attributes={"s": "锈蚀", "colour": "red", "size": 3},
    )
    assert error.status == 422 and sorted(error.detail["attributes"]) == ["colour", "size"]


def test_a_number_attribute_too_large_for_a_float_is_refused_with_422(world: World) -> None:
    error = refused(
        world.resident, category=with_every_datatype(), attributes={"s": "锈蚀", "n": 10**400}
    )
    assert error.status == 422


# --- photos -----------------------------------------------------------------------------------


def test_a_report_takes_at_most_nine_photos(world: World) -> None:
    assert refused(world.resident, photos=[photo() for _ in range(10)]).status == 422
    case = report(world.resident, photos=[photo() for _ in range(9)])
    event = CaseEvent.objects.get(case=case, version=1)
    assert CasePhoto.objects.filter(case=case, event=event).count() == 9
    assert event.params["photos"] == 9


# --- the case: number, first event, clock -----------------------------------------------------


def test_a_case_number_is_district_local_date_and_a_five_digit_sequence(world: World) -> None:
    case = report(world.grid_worker_a)
    district, day, sequence = case.number.split("-")
    assert district == "320113" and len(day) == 8 and day.isdigit()
    assert len(sequence) == 5 and sequence.isdigit()
    elsewhere = report(world.admin, where=(31.95, 118.75))  # grid E, district 320114
    assert elsewhere.number.startswith("320114-")


def test_case_numbers_count_per_district_and_local_day(world: World) -> None:
    # 16:30 UTC on the 22nd is already 00:30 on the 23rd in Shanghai
    evening = datetime(2026, 11, 22, 16, 30, tzinfo=UTC)
    assert next_case_number("320113", evening) == "320113-20261123-00001"
    assert next_case_number("320113", evening) == "320113-20261123-00002"
    assert next_case_number("320114", evening) == "320114-20261123-00001"
    earlier = datetime(2026, 11, 22, 15, 59, tzinfo=UTC)
    assert next_case_number("320113", earlier) == "320113-20261122-00001"
    assert next_case_number("320113", evening) == "320113-20261123-00003"


def test_reports_get_distinct_numbers_in_sequence(world: World) -> None:
    numbers = [report(world.resident).number for _ in range(5)]
    assert len(set(numbers)) == 5
    sequences = [int(n.rsplit("-", 1)[1]) for n in numbers]
    assert sequences == list(range(sequences[0], sequences[0] + 5))


def test_a_report_is_the_first_event_and_starts_the_register_clock(world: World) -> None:
    case = report(world.grid_worker_a, address="和畅路1号")
    assert (case.state, case.version, case.step) == (State.REPORTED, 1, Step.REGISTER)
    assert case.grid is not None and case.grid.code == case.region_code == "320113003001001"
    assert case.reporter == world.grid_worker_a
    assert case.reporter_name == world.grid_worker_a.label
    event = CaseEvent.objects.get(case=case)
    assert (event.version, event.action, event.from_state, event.to_state) == (
        1,
        "report",
        "",
        State.REPORTED,
    )
    assert (event.actor, event.actor_role) == (world.grid_worker_a, Role.GRID_WORKER)
    assert event.params == {"source": "grid_worker", "urgency": "normal", "category": "01002"}


# --- the suggested unit -----------------------------------------------------------------------


def unit(world: World, code: str, kind: str = UnitKind.CITY_DEPARTMENT) -> Any:
    made = accounts.unit_create(code=code, name=code, kind=kind)
    world.units[code] = made
    return made


def suggested(cat: Category, region_code: str) -> str | None:
    found = suggest_unit(cat, region_code)
    return found.code if found else None


def test_the_most_specific_routing_rule_suggests_the_unit(world: World) -> None:
    minor = category()
    assert minor.parent is not None
    grid_a = "320113003001001"
    # without a rule: the street office serving the grid's street
    assert suggest_unit(minor, grid_a) == world.units["street-office-003"]
    RoutingRule.objects.create(unit=unit(world, "anything-anywhere"))
    assert suggested(minor, grid_a) == "anything-anywhere"
    RoutingRule.objects.create(category=minor.parent, unit=unit(world, "major-anywhere"))
    assert suggested(minor, grid_a) == "major-anywhere"
    RoutingRule.objects.create(category=minor, unit=unit(world, "minor-anywhere"))
    assert suggested(minor, grid_a) == "minor-anywhere"
    # a longer region prefix beats any category specificity
    RoutingRule.objects.create(region_code="320113", unit=unit(world, "any-in-district"))
    assert suggested(minor, grid_a) == "any-in-district"
    RoutingRule.objects.create(
        region_code="320113", category=minor.parent, unit=unit(world, "major-in-district")
    )
    assert suggested(minor, grid_a) == "major-in-district"
    RoutingRule.objects.create(
        region_code="320113003", unit=unit(world, "any-in-street", UnitKind.UTILITY)
    )
    assert suggested(minor, grid_a) == "any-in-street"
    RoutingRule.objects.create(region_code=grid_a, category=minor, unit=unit(world, "minor-here"))
    assert suggested(minor, grid_a) == "minor-here"
    # a rule for another region does not apply
    assert suggested(minor, "320113003001002") == "any-in-street"
    assert suggested(minor, "320114001001001") == "minor-anywhere"


def test_a_rule_for_an_inactive_unit_is_ignored(world: World) -> None:
    minor = category()
    closed = unit(world, "closed-department")
    RoutingRule.objects.create(category=minor, unit=closed)
    closed.is_active = False
    closed.save(update_fields=["is_active"])
    assert suggest_unit(minor, "320113003001001") == world.units["street-office-003"]


def test_without_a_rule_or_a_street_office_nothing_is_suggested(world: World) -> None:
    minor = category()
    assert suggest_unit(minor, "320113005001001") is None  # street 005 has no office
    assert suggest_unit(minor, "320114001001001") == world.units["yuhua-office"]
    case = report(world.intake_operator, where=(32.10, 118.95))  # grid D
    assert case.suggested_unit is None


def test_a_report_carries_the_suggested_unit(world: World) -> None:
    case = report(world.resident)
    assert case.suggested_unit == world.units["street-office-003"]


# --- the channel ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "source"),
    [
        ("grid_worker_a", Source.GRID_WORKER),
        ("grid_leader", Source.GRID_WORKER),
        ("supervisor", Source.SUPERVISOR),
        ("intake_operator", Source.HOTLINE),
        ("shift_leader", Source.HOTLINE),
        ("resident", Source.RESIDENT),
        ("dispatcher", Source.API),
        ("unit_handler", Source.API),
        ("leader", Source.API),
        ("admin", Source.API),
    ],
)
def test_the_channel_follows_the_reporters_role(world: World, persona: str, source: str) -> None:
    assert report(world.users[persona]).source == source


@pytest.mark.parametrize(
    ("persona", "source"),
    [
        ("resident", Source.HOTLINE),
        ("resident", Source.API),
        ("resident", Source.SENSOR),
        ("resident", Source.GRID_WORKER),
        ("grid_worker_a", Source.RESIDENT),
        ("grid_worker_a", Source.HOTLINE),
        ("unit_handler", Source.SUPERVISOR),
        ("intake_operator", Source.GRID_WORKER),
    ],
)
def test_a_channel_the_reporters_roles_do_not_use_is_refused(
    world: World, persona: str, source: str
) -> None:
    with pytest.raises(PermissionDenied):
        report(world.users[persona], source=source)
    assert not Case.objects.exists()


def test_a_channel_may_be_named_when_the_role_uses_it(world: World) -> None:
    assert report(world.intake_operator, source=Source.HOTLINE).source == Source.HOTLINE
    assert report(world.dispatcher, source=Source.SENSOR).source == Source.SENSOR
    event = CaseEvent.objects.get(case=report(world.grid_leader, source=Source.API))
    assert event.actor_role == Role.GRID_LEADER


def test_an_unknown_channel_is_refused_with_422(world: World) -> None:
    assert refused(world.intake_operator, source="pigeon").status == 422


def test_an_account_without_a_role_may_not_report(world: World) -> None:
    with pytest.raises(PermissionDenied):
        report(world.nobody)
    assert not Case.objects.exists()
