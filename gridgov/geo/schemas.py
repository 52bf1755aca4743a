"""API schemas of the geo app."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from ninja import Schema
from pydantic import Field

from gridgov.core.input_guard import Number

Crs = Literal["wgs84", "gcj02"]


class RegionRef(Schema):
    code: str
    name: str
    level: str


class RegionOut(RegionRef):
    parent: str | None = None
    area_m2: float | None = None
    target_households: int | None = None
    grid_type: str = ""
    responsible_unit: str | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    bbox: list[float] | None = None
    label: list[float] | None = Field(None, description="[lon, lat] of a point inside the region")


class RegionDetail(RegionOut):
    ancestors: list[RegionRef]
    children: int
    households: int
    staff_visible: bool
    geometry: dict[str, Any] | None = None


class LocateOut(Schema):
    lon: float = Field(description="WGS-84 longitude used for the look-up")
    lat: float = Field(description="WGS-84 latitude used for the look-up")
    grid: RegionRef
    ancestors: list[RegionRef] = Field(description="district, street, community")


class PointIn(Schema):
    lat: Number = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: Number = Field(ge=-180, le=180, allow_inf_nan=False)


class LocateBulkIn(Schema):
    crs: Crs = "wgs84"
    points: list[PointIn] = Field(min_length=1)


class LocateBulkOut(Schema):
    grids: list[str | None] = Field(
        description="grid code per point, null where outside every grid"
    )


class StaffOut(Schema):
    name: str
    username: str
    role: str
    role_label: str
    region: RegionRef | None
    work_phone: str = Field(description="masked")


class RegionStaffOut(Schema):
    region: RegionRef
    responsible_unit: str | None
    staff: list[StaffOut]
