"""Which unit a case should go to: routing rules (category × region), else the street office."""

from __future__ import annotations

from django.db.models import Q

from gridgov.accounts.models import Unit, UnitKind

from .models import Category, RoutingRule


def suggest_unit(category: Category, region_code: str) -> Unit | None:
    """The most specific active rule's unit: the longest region prefix first, then a rule for
    the category over one for its major over one for any category. Without a rule, the street
    office serving the case's street; None when there is none."""
    prefixes = [""] + [region_code[:n] for n in (6, 9, 12, 15) if len(region_code) >= n]
    categories = [category.pk] + ([category.parent_id] if category.parent_id else [])
    rules = list(
        RoutingRule.objects.filter(region_code__in=prefixes, unit__is_active=True)
        .filter(Q(category_id__in=categories) | Q(category__isnull=True))
        .select_related("unit")
    )

    def rank(rule: RoutingRule) -> tuple[int, int]:
        specificity = (
            0 if rule.category_id is None else (2 if rule.category_id == category.pk else 1)
        )
        return (len(rule.region_code), specificity)

    if rules:
        return max(rules, key=rank).unit
    return (
        Unit.objects.filter(
            kind=UnitKind.STREET_OFFICE, is_active=True, regions__code=region_code[:9]
        )
        .order_by("code")
        .first()
    )
