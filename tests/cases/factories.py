"""Categories and cases for tests, made through the real actions."""

from __future__ import annotations

from typing import Any

from gridgov.accounts.models import User
from gridgov.cases.actions import Inputs, case_act, case_report
from gridgov.cases.models import Case, Category, CategoryAttribute, CategoryClass, Scheme

#: A point inside grid A (320113003001001) and one inside grid B of tests/world.py.
IN_GRID_A = (32.05, 118.82)
IN_GRID_B = (32.05, 118.87)


def category(
    code: str = "01002",
    name: str = "污水井盖",
    *,
    scheme: str = Scheme.GBT47678,
    klass: str = CategoryClass.COMPONENT,
    **fields: Any,
) -> Category:
    major, _ = Category.objects.get_or_create(
        scheme=scheme,
        code=code[:2],
        defaults={"name_zh": "市政公用设施", "name_en": "Municipal utilities", "klass": klass},
    )
    found, _ = Category.objects.get_or_create(
        scheme=scheme,
        code=code,
        defaults={
            "name_zh": name,
            "name_en": fields.pop("name_en", "Sewage manhole cover"),
            "klass": klass,
            "parent": major,
            "handle_limit": fields.pop("handle_limit", "2h"),
            "urgency_levels": ["normal", "urgent", "critical"],
            **fields,
        },
    )
    return found


def with_attributes(cat: Category) -> Category:
    CategoryAttribute.objects.get_or_create(
        category=cat,
        code="damage",
        defaults={
            "datatype": "singlevaluelist",
            "required": True,
            "description": "损坏情况",
            "values": [{"key": "missing", "name": "缺失"}, {"key": "broken", "name": "破损"}],
        },
    )
    CategoryAttribute.objects.get_or_create(
        category=cat,
        code="count",
        defaults={"datatype": "number", "description": "数量"},
    )
    return cat


def report(reporter: User, *, where: tuple[float, float] = IN_GRID_A, **kwargs: Any) -> Case:
    lat, lon = where
    return case_report(
        actor=reporter,
        category=kwargs.pop("category", None) or category(),
        description=kwargs.pop("description", "井盖缺失，行人有跌落危险"),
        lat=lat,
        lon=lon,
        **kwargs,
    )


def act(case: Case, actor: User, action: str, **inputs: Any) -> Case:
    """Take an action with the case's current version (as a user who just loaded it)."""
    case.refresh_from_db()
    return case_act(
        case=case, actor=actor, action=action, version=case.version, inputs=Inputs(**inputs)
    )


def walk(case: Case, world: Any, *steps: str) -> Case:
    """Drive a case through named steps of the ordinary loop with the usual personas."""
    how = {
        "accept": (world.intake_operator, {}),
        "register": (world.intake_operator, {}),
        "dispatch": (world.dispatcher, {"lead_unit": "street-office-003"}),
        "sign": (world.unit_handler, {}),
        "feedback": (world.unit_handler, {"note": "已更换井盖"}),
        "check_pass": (world.supervisor, {"note": "现场核查合格"}),
        "check_fail": (world.supervisor, {"reason": "井盖未固定"}),
        "close": (world.shift_leader, {}),
    }
    for step in steps:
        actor, inputs = how[step]
        case = act(case, actor, step, **inputs)
    return case
