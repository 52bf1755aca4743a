"""Checks of a set of child regions (usually the grids of a community) against their parent.

Three kinds of problem, each with the area in m² (geodesic) and a share:

* ``outside``: a child lies partly outside its parent (share = of the child's area);
* ``overlap``: two siblings overlap (share = of the smaller sibling's area);
* ``gap``: part of the parent is covered by no child (share = of the parent's area).

Slivers are ignored: a piece counts only if it is at least ``min_area_m2`` (1 m²) and thicker
than ``min_width_m`` (10 cm, measured as 2·area/perimeter), so the centimetre rounding of stored
coordinates never raises a warning. Pure functions, no database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import shapely
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from shapely import STRtree
from shapely.errors import GEOSException
from shapely.geometry.base import BaseGeometry

from gridgov.geo.geometry import geodesic_area, geodesic_area_perimeter, polygonal_part

MIN_AREA_M2 = 1.0
MIN_WIDTH_M = 0.1

OUTSIDE = "outside"
OVERLAP = "overlap"
GAP = "gap"
#: The kinds as words for reports (``Problem.kind`` itself stays the machine-readable code).
KIND_LABELS = {
    OUTSIDE: gettext_lazy("outside"),
    OVERLAP: gettext_lazy("overlap"),
    GAP: gettext_lazy("gap"),
    "error": gettext_lazy("error"),
}


def kind_label(kind: str) -> str:
    """The translated word for a problem kind (``overlap`` -> 重叠)."""
    return str(KIND_LABELS.get(kind, kind))


def named(name: str, code: str) -> str:
    """A region as ``name (code)``, punctuated for the active language: 和畅社区（320113003001）."""
    return _("%(name)s (%(code)s)") % {"name": name, "code": code}


@dataclass(frozen=True)
class Problem:
    """One finding of a check; ``codes`` are the regions involved (parent last for gaps)."""

    kind: str
    message: str
    codes: list[str] = field(default_factory=list)
    area_m2: float = 0.0
    share: float = 0.0

    @property
    def label(self) -> str:
        """The kind as a translated word, for people (``kind`` stays the code)."""
        return kind_label(self.kind)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["area_m2"] = round(self.area_m2, 1)
        data["share"] = round(self.share, 6)
        return data


def significant_area(
    geom: BaseGeometry, *, min_area_m2: float = MIN_AREA_M2, min_width_m: float = MIN_WIDTH_M
) -> float:
    """Area in m² of the parts of ``geom`` that are neither tiny nor hairline slivers."""
    poly = polygonal_part(geom)
    if poly.is_empty:
        return 0.0
    total = 0.0
    for part in shapely.get_parts(poly):
        area, perimeter = geodesic_area_perimeter(part)
        if area < min_area_m2:
            continue
        if perimeter > 0 and 2.0 * area / perimeter < min_width_m:
            continue
        total += area
    return total


def _clean(geom: BaseGeometry) -> BaseGeometry:
    return geom if geom.is_valid else polygonal_part(shapely.make_valid(geom))


def _pct(share: float) -> str:
    if share >= 0.0001:
        return f"{share * 100:.2f} %"
    return _("under %(share)s") % {"share": "0.01 %"}


def _m2(area: float) -> str:
    return f"{area:,.0f}"


def check_children(
    parent: BaseGeometry | None,
    children: Sequence[tuple[str, BaseGeometry]],
    *,
    parent_code: str = "",
    parent_label: str = "",
    child_labels: dict[str, str] | None = None,
    child_noun: str | None = None,
    min_area_m2: float = MIN_AREA_M2,
    min_width_m: float = MIN_WIDTH_M,
) -> list[Problem]:
    """Check ``children`` (code, geometry) against ``parent`` and each other.

    ``child_noun`` names the children in a gap message (translated, plural: "grids"); the
    messages are translated into the active language when the check runs.
    """
    labels = child_labels or {}
    parent_name = parent_label or parent_code or _("the parent")
    noun = child_noun if child_noun is not None else _("parts")
    problems: list[Problem] = []
    items = [
        (code, _clean(geom)) for code, geom in children if geom is not None and not geom.is_empty
    ]
    if not items:
        return problems

    def name(code: str) -> str:
        label = labels.get(code)
        return named(label, code) if label else code

    def measure(geom: BaseGeometry) -> float:
        return significant_area(geom, min_area_m2=min_area_m2, min_width_m=min_width_m)

    child_area = {code: geodesic_area(geom) for code, geom in items}
    try:
        if parent is not None and not parent.is_empty:
            parent = _clean(parent)
            shapely.prepare(parent)
            for code, geom in items:
                if shapely.contains_properly(parent, geom):
                    continue
                area = measure(shapely.difference(geom, parent))
                if area > 0:
                    share = area / child_area[code] if child_area[code] else 1.0
                    problems.append(
                        Problem(
                            kind=OUTSIDE,
                            message=(
                                _(
                                    "%(child)s lies partly outside %(parent)s: %(area)s m² "
                                    "(%(share)s of it)"
                                )
                                % {
                                    "child": name(code),
                                    "parent": parent_name,
                                    "area": _m2(area),
                                    "share": _pct(share),
                                }
                            ),
                            codes=[code, parent_code] if parent_code else [code],
                            area_m2=area,
                            share=share,
                        )
                    )

        geoms = np.array([geom for _code, geom in items], dtype=object)
        tree = STRtree(geoms)
        pairs = tree.query(geoms, predicate="intersects")
        for i, j in sorted({(int(a), int(b)) for a, b in pairs.T if a < b}):
            (code_a, geom_a), (code_b, geom_b) = items[i], items[j]
            area = measure(shapely.intersection(geom_a, geom_b))
            if area > 0:
                smaller = min(child_area[code_a], child_area[code_b]) or 1.0
                share = area / smaller
                problems.append(
                    Problem(
                        kind=OVERLAP,
                        message=_("%(first)s and %(second)s overlap by %(area)s m²")
                        % {"first": name(code_a), "second": name(code_b), "area": _m2(area)},
                        codes=[code_a, code_b],
                        area_m2=area,
                        share=min(share, 1.0),
                    )
                )

        if parent is not None and not parent.is_empty:
            covered = shapely.union_all(geoms)
            area = measure(shapely.difference(parent, covered))
            if area > 0:
                total = geodesic_area(parent) or 1.0
                share = area / total
                problems.append(
                    Problem(
                        kind=GAP,
                        message=(
                            _(
                                "%(share)s of %(parent)s (%(area)s m²) is covered by none "
                                "of its %(children)s"
                            )
                            % {
                                "share": _pct(share),
                                "parent": parent_name,
                                "area": _m2(area),
                                "children": noun,
                            }
                        ),
                        codes=[parent_code] if parent_code else [],
                        area_m2=area,
                        share=share,
                    )
                )
    except GEOSException as exc:  # pragma: no cover - inputs are made valid above
        problems.append(
            Problem(
                kind="error", message=_("the geometry check failed: %(error)s") % {"error": exc}
            )
        )
    return problems


def check_grids(
    community: BaseGeometry | None,
    grids: Sequence[tuple[str, BaseGeometry]],
    *,
    community_code: str = "",
    community_label: str = "",
    grid_labels: dict[str, str] | None = None,
    min_area_m2: float = MIN_AREA_M2,
    min_width_m: float = MIN_WIDTH_M,
) -> list[Problem]:
    """Check the grids of one community: outside, overlaps and gaps (see the module docstring)."""
    return check_children(
        community,
        grids,
        parent_code=community_code,
        parent_label=community_label,
        child_labels=grid_labels,
        child_noun=_("grids"),
        min_area_m2=min_area_m2,
        min_width_m=min_width_m,
    )
