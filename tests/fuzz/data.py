"""The world the API fuzz runs in: the personas of tests/world.py, their API tokens, cases at
every stage of the loop (one with a photo), base data of every kind, a ledger import, a
notification and a calendar override, all made through the real actions.

``build`` answers a :class:`FuzzWorld`: the raw token of each persona and the real values the
fuzzer may put into the path, the query or the body (``pools``), so that a good share of its
requests reaches an object that exists instead of answering 404.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from PIL import Image

from gridgov.accounts import actions as accounts
from gridgov.accounts.models import Unit
from gridgov.cases.models import Case, CasePhoto, Category
from gridgov.cases.workflow import TABLE
from gridgov.core.actions import calendar_override_set
from gridgov.core.photos import photo_save
from gridgov.geo.models import Region
from gridgov.notifications.actions import notify
from gridgov.registry import actions as registry
from gridgov.registry.ledger.importer import ledger_check
from gridgov.registry.models import LedgerImport, TagType
from tests.cases import factories as cases
from tests.registry import factories as base
from tests.registry.data.ledgers import csv_bytes, household_rows
from tests.world import World, build_world

#: Personas that use the API, in the order each generated request is sent as them: the
#: anonymous caller first, the administrator (who may change the most) last.
PERSONAS = (
    "anonymous",
    "resident",
    "grid_worker_a",
    "supervisor",
    "unit_handler",
    "intake_operator",
    "dispatcher",
    "admin",
)

#: A day with a calendar override, and a few more the fuzzer may name.
OVERRIDE_DAY = date(2026, 10, 9)


@dataclass
class FuzzWorld:
    world: World
    #: persona -> raw API token (the one the fuzz authenticates with)
    tokens: dict[str, str] = field(default_factory=dict)
    #: pool name -> real values (see ``pool_for`` in test_api_fuzz.py)
    pools: dict[str, list[Any]] = field(default_factory=dict)


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), "#336699").save(out, format="JPEG")
    return out.getvalue()


def _cases(w: World) -> list[Case]:
    """A case at each stage of the ordinary loop, in grids A and B; the first has a photo."""
    photo = photo_save(data=_jpeg(), filename="drain.jpg")
    made = [cases.report(w.resident, photos=[photo])]
    made.append(cases.report(w.grid_worker_a))
    made.append(cases.walk(cases.report(w.resident), w, "accept"))
    made.append(
        cases.walk(cases.report(w.resident, where=cases.IN_GRID_B), w, "accept", "register")
    )
    made.append(cases.walk(cases.report(w.grid_worker_a), w, "accept", "register", "dispatch"))
    made.append(
        cases.walk(cases.report(w.grid_worker_a), w, "accept", "register", "dispatch", "sign")
    )
    made.append(
        cases.walk(
            cases.report(w.grid_worker_a), w, "accept", "register", "dispatch", "sign", "feedback"
        )
    )
    made.append(
        cases.walk(
            cases.report(w.resident),
            w,
            "accept",
            "register",
            "dispatch",
            "sign",
            "feedback",
            "check_pass",
            "close",
        )
    )
    return made


def _base_data(w: World) -> dict[str, list[str]]:
    """Buildings, rooms, households and people in grids A and B, an organisation, a component,
    a tagged person and a closed building."""
    actor = w.grid_leader
    found: dict[str, list[str]] = {
        "buildings": [],
        "rooms": [],
        "households": [],
        "people": [],
        "organisations": [],
        "components": [],
    }
    for where in (cases.IN_GRID_A, cases.IN_GRID_B):
        building = base.building(actor, where=where)
        room = base.room(actor, building)
        household = base.household(actor, room)
        head = base.person(
            actor,
            household=household,
            name="王芳",
            id_number=base.id_number(date(1958, 3, 2), sex="female"),
            phone=base.mobile(),
            relation="head",
        )
        child = base.person(
            actor, household=household, name="王小明", id_number=base.id_number(date(2015, 6, 1))
        )
        found["buildings"].append(str(building.uuid))
        found["rooms"].append(str(room.uuid))
        found["households"].append(str(household.uuid))
        found["people"] += [str(head.uuid), str(child.uuid)]
    tag = TagType.objects.filter(active=True).order_by("sensitivity", "code").first()
    if tag is not None:
        registry.person_tag_add(actor=actor, person=found["people"][0], tag=tag)
    closed = base.building(actor, where=cases.IN_GRID_A)
    registry.building_close(
        actor=actor, building=closed, closed_reason="demolished", reason="fuzz: torn down"
    )
    found["buildings"].append(str(closed.uuid))
    org = registry.organisation_create(
        actor=actor,
        name="和畅便利店",
        kind="shop",
        contact_phone=base.mobile(),
        lon=cases.IN_GRID_A[1],
        lat=cases.IN_GRID_A[0],
    )
    found["organisations"].append(str(org.uuid))
    component = registry.component_create(
        actor=w.supervisor,
        code="320113" + "01002" + "000123",
        category=cases.category(),
        lon=cases.IN_GRID_A[1],
        lat=cases.IN_GRID_A[0],
    )
    found["components"].append(str(component.uuid))
    return found


def _ledger_import(w: World) -> LedgerImport:
    data = io.BytesIO(csv_bytes(household_rows(2)))
    return ledger_check(actor=w.grid_worker_a, file=data, file_name="ledger.csv")


def build() -> FuzzWorld:
    w = build_world()
    fw = FuzzWorld(world=w)
    spare_tokens: list[str] = []
    for name, user in w.users.items():
        fw.tokens[name] = accounts.token_create(user=user, name="fuzz")[1]
        # a second token of each user: the one the fuzzer may revoke (never the fuzz's own)
        spare_tokens.append(str(accounts.token_create(user=user, name="spare")[0].uuid))

    cases.category()  # the category the cases are reported in
    cases.with_attributes(cases.category("01001", "上水井盖", name_en="Water manhole cover"))
    made = _cases(w)
    base_data = _base_data(w)
    ledger = _ledger_import(w)
    notify(
        recipients=list(w.users.values()), kind="case.dispatched", title="fuzz", subject_ref="C-1"
    )
    calendar_override_set(day=OVERRIDE_DAY, kind="holiday", note="fuzz")

    regions = list(Region.objects.order_by("code").values_list("code", flat=True))
    categories = list(
        Category.objects.filter(parent__isnull=False)
        .order_by("code")
        .values_list("code", flat=True)
    )
    units = list(Unit.objects.order_by("code").values_list("code", flat=True))
    usernames = sorted(u.username for u in w.users.values())
    tags = list(TagType.objects.order_by("code").values_list("code", flat=True)[:6])
    fw.pools = {
        "region": regions,
        "community": [c for c in regions if len(c) == 12],
        "grid": [c for c in regions if len(c) == 15],
        "unit": units,
        "category": categories,
        "scheme": sorted(set(Category.objects.values_list("scheme", flat=True))),
        "number": [c.number for c in made],
        "action": sorted(TABLE),
        "photo": [str(p.uuid) for p in CasePhoto.objects.all()],
        "username": usernames,
        "token_id": spare_tokens,
        "notification_id": [
            str(n) for n in w.grid_worker_a.notifications.values_list("uuid", flat=True)
        ],
        "day": [OVERRIDE_DAY.isoformat(), "2026-10-01", "2026-12-31"],
        "tag": tags,
        "ledger": [str(ledger.uuid)],
        "version": [1, 2, 3],
        "lat": [cases.IN_GRID_A[0], cases.IN_GRID_B[0], 32.15],
        "lon": [cases.IN_GRID_A[1], cases.IN_GRID_B[1], 118.95],
        # valid and not yet registered: a create or change with one of them can succeed
        "id_number": [base.id_number(date(1985, 5, 5), sex=sex) for sex in ("male", "female")],
        "mobile": [base.mobile() for _ in range(3)],
        "photos": [[]],
        "component_code": ["320113" + "01002" + "000999"],
        **base_data,
    }
    return fw
