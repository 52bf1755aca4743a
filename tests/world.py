"""A small world for tests: two districts, grids A and B side by side, and the personas.

Region tree (WGS-84 rectangles near Nanjing):

    320113 district
      320113003 street
        320113003001 community  -> grids A (…001, west) and B (…002, east)
        320113003002 community  -> grid C (…001)
      320113005 street
        320113005001 community  -> grid D (…001)
    320114 district (elsewhere) -> street 320114001 -> community 320114001001 -> grid E (…001)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shapely.geometry import box, mapping

from gridgov.accounts import actions
from gridgov.accounts.models import Role, Unit, UnitKind, User
from gridgov.geo.index import grids_changed
from gridgov.geo.models import Level, Region

PASSWORD = "correct-horse-battery-9"


def _region(
    code: str,
    name: str,
    level: str,
    parent: Region | None,
    bounds: tuple[float, float, float, float],
) -> Region:
    from pyproj import Geod

    poly = box(*bounds)
    area, _ = Geod(ellps="WGS84").geometry_area_perimeter(poly)
    point = poly.representative_point()
    return Region.objects.create(
        code=code,
        name=name,
        level=level,
        parent=parent,
        geometry=mapping(poly),
        min_lon=bounds[0],
        min_lat=bounds[1],
        max_lon=bounds[2],
        max_lat=bounds[3],
        label_lon=point.x,
        label_lat=point.y,
        area_m2=abs(area),
        target_households=300 if level == Level.GRID else None,
        grid_type="base" if level == Level.GRID else "",
    )


@dataclass
class World:
    regions: dict[str, Region] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    units: dict[str, Unit] = field(default_factory=dict)

    def __getattr__(self, name: str) -> User:
        try:
            return self.__dict__["users"][name]
        except KeyError as exc:
            raise AttributeError(name) from exc

    @property
    def grid_a(self) -> Region:
        return self.regions["320113003001001"]

    @property
    def grid_b(self) -> Region:
        return self.regions["320113003001002"]

    @property
    def grid_d(self) -> Region:
        return self.regions["320113005001001"]

    @property
    def grid_e(self) -> Region:
        return self.regions["320114001001001"]


#: persona -> (role, region code or unit code)
PERSONAS: dict[str, tuple[str, str | None]] = {
    "admin": (Role.ADMINISTRATOR, None),
    "leader": (Role.LEADER, "320113"),
    "intake_operator": (Role.INTAKE_OPERATOR, "320113"),
    "shift_leader": (Role.SHIFT_LEADER, "320113"),
    "dispatcher": (Role.DISPATCHER, "320113"),
    "unit_handler": (Role.UNIT_HANDLER, "street-office-003"),
    "supervisor": (Role.SUPERVISOR, "320113003"),
    "grid_leader": (Role.GRID_LEADER, "320113003001"),
    "grid_worker_a": (Role.GRID_WORKER, "320113003001001"),
    "grid_worker_b": (Role.GRID_WORKER, "320113003001002"),
    "resident": (Role.RESIDENT, "320113003001"),
}


def build_world() -> World:
    w = World()
    r = w.regions
    r["320113"] = _region("320113", "栖霞区", Level.DISTRICT, None, (118.80, 32.00, 119.00, 32.20))
    r["320113003"] = _region(
        "320113003", "迈皋桥街道", Level.STREET, r["320113"], (118.80, 32.00, 118.90, 32.20)
    )
    r["320113003001"] = _region(
        "320113003001", "和畅社区", Level.COMMUNITY, r["320113003"], (118.80, 32.00, 118.90, 32.10)
    )
    r["320113003001001"] = _region(
        "320113003001001",
        "和畅第001网格",
        Level.GRID,
        r["320113003001"],
        (118.80, 32.00, 118.85, 32.10),
    )
    r["320113003001002"] = _region(
        "320113003001002",
        "和畅第002网格",
        Level.GRID,
        r["320113003001"],
        (118.85, 32.00, 118.90, 32.10),
    )
    r["320113003002"] = _region(
        "320113003002", "华电社区", Level.COMMUNITY, r["320113003"], (118.80, 32.10, 118.90, 32.20)
    )
    r["320113003002001"] = _region(
        "320113003002001",
        "华电第001网格",
        Level.GRID,
        r["320113003002"],
        (118.80, 32.10, 118.90, 32.20),
    )
    r["320113005"] = _region(
        "320113005", "燕子矶街道", Level.STREET, r["320113"], (118.90, 32.00, 119.00, 32.20)
    )
    r["320113005001"] = _region(
        "320113005001",
        "燕子矶社区",
        Level.COMMUNITY,
        r["320113005"],
        (118.90, 32.00, 119.00, 32.20),
    )
    r["320113005001001"] = _region(
        "320113005001001",
        "燕子矶第001网格",
        Level.GRID,
        r["320113005001"],
        (118.90, 32.00, 119.00, 32.20),
    )
    r["320114"] = _region(
        "320114", "雨花台区", Level.DISTRICT, None, (118.70, 31.90, 118.80, 32.00)
    )
    r["320114001"] = _region(
        "320114001", "雨花街道", Level.STREET, r["320114"], (118.70, 31.90, 118.80, 32.00)
    )
    r["320114001001"] = _region(
        "320114001001", "雨花社区", Level.COMMUNITY, r["320114001"], (118.70, 31.90, 118.80, 32.00)
    )
    r["320114001001001"] = _region(
        "320114001001001",
        "雨花第001网格",
        Level.GRID,
        r["320114001001"],
        (118.70, 31.90, 118.80, 32.00),
    )
    grids_changed()

    w.units["street-office-003"] = actions.unit_create(
        code="street-office-003",
        name="迈皋桥街道办事处",
        kind=UnitKind.STREET_OFFICE,
        regions=[r["320113003"]],
    )
    w.units["yuhua-office"] = actions.unit_create(
        code="yuhua-office",
        name="雨花街道办事处",
        kind=UnitKind.STREET_OFFICE,
        regions=[r["320114001"]],
    )
    for persona, (role, where) in PERSONAS.items():
        user = actions.user_create(
            username=persona,
            password=PASSWORD,
            display_name=persona.replace("_", " ").title(),
            work_phone="13912345678",
        )
        if role == Role.UNIT_HANDLER:
            actions.role_assign(user=user, role=role, unit=w.units[where or ""])
        else:
            actions.role_assign(user=user, role=role, region=r[where] if where else None)
        if role == Role.ADMINISTRATOR:
            user.is_staff = user.is_superuser = True
            user.save(update_fields=["is_staff", "is_superuser"])
        w.users[persona] = user
    # someone with an account but no role at all: sees nothing
    w.users["nobody"] = actions.user_create(username="nobody", password=PASSWORD)
    return w
