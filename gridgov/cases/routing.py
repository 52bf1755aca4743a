"""Which unit a case should go to: routing rules (category × region), else the street office."""

from __future__ import annotations

from gridgov.accounts.models import Unit

from .cache import catalogue
from .models import Category


def suggest_unit(category: Category, region_code: str) -> Unit | None:
    """The most specific active rule's unit: the longest region prefix first, then a rule for
    the category over one for its major over one for any category. Without a rule, the street
    office serving the case's street; None when there is none.

    Reads the process's catalogue (``cases.cache``): no query once it is loaded."""
    known = catalogue()
    prefixes = [region_code[:n] for n in (15, 12, 9, 6) if len(region_code) >= n] + [""]
    kinds = [category.pk] + ([category.parent_id] if category.parent_id else []) + [None]
    for prefix in sorted(set(prefixes), key=len, reverse=True):
        for kind in kinds:
            units = known.rules.get((prefix, kind))
            if units:
                return min(units, key=lambda u: u.code)
    return known.street_offices.get(region_code[:9])
