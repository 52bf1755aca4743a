"""The per-process catalogue: categories with their attributes, routing rules, street offices.

A report reads its category, the category's attributes and major, the routing rules and the
street office of its street. These change a few times a year and are read on every report, so
each process keeps them in memory behind the ``cases.catalogue`` stamp (``core.stamps``): any
save or delete of a category, an attribute, a routing rule or a unit (and any change of the
regions a unit serves) bumps the stamp in the same transaction, through the signals connected
in ``CasesConfig.ready``; bulk writes that bypass signals (the catalogue import, the demo) call
``catalogue_changed()`` themselves.

The cached model instances are shared between the threads of a process: read them, never
modify them (``active_category`` hands them to new cases as their ``category``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from gridgov.accounts.models import Unit, UnitKind
from gridgov.core.stamps import StampedCache, in_transaction

from .models import Category, RoutingRule

STAMP = "cases.catalogue"


@dataclass(frozen=True)
class Catalogue:
    version: int
    #: code → the categories with that code (one per scheme at most), attributes prefetched
    by_code: dict[str, list[Category]] = field(default_factory=dict)
    #: (region prefix, category id or None) → active rules' units, for ``suggest_unit``
    rules: dict[tuple[str, int | None], list[Unit]] = field(default_factory=dict)
    #: street code → the street office serving it with the lowest code
    street_offices: dict[str, Unit] = field(default_factory=dict)

    def category(self, code: str, scheme: str | None = None) -> list[Category]:
        found = self.by_code.get(code, [])
        return [c for c in found if c.scheme == scheme] if scheme else list(found)


def _build(version: int) -> Catalogue:
    by_code: dict[str, list[Category]] = defaultdict(list)
    for category in (
        Category.objects.filter(is_active=True)
        .select_related("parent")
        .prefetch_related("attributes")
        .order_by("scheme", "code")
    ):
        by_code[category.code].append(category)
    rules: dict[tuple[str, int | None], list[Unit]] = defaultdict(list)
    for rule in RoutingRule.objects.filter(unit__is_active=True).select_related("unit"):
        rules[(rule.region_code, rule.category_id)].append(rule.unit)
    offices: dict[str, Unit] = {}
    for unit in (
        Unit.objects.filter(kind=UnitKind.STREET_OFFICE, is_active=True)
        .prefetch_related("regions")
        .order_by("code")
    ):
        for region in unit.regions.all():
            offices.setdefault(region.code, unit)
    return Catalogue(
        version=version, by_code=dict(by_code), rules=dict(rules), street_offices=offices
    )


_cache: StampedCache[Catalogue] = StampedCache(STAMP, _build)


def catalogue() -> Catalogue:
    return _cache.get()


def catalogue_changed() -> None:
    """Call inside the transaction that changed categories, rules or units in bulk."""
    _cache.changed()


def _on_change(sender: Any, **kwargs: Any) -> None:
    if kwargs.get("raw"):  # loaddata: the stamp table may not be there yet
        return
    if str(kwargs.get("action", "post")).startswith("pre"):  # m2m: count the change once
        return
    in_transaction(catalogue_changed)


def connect_signals() -> None:
    from django.db.models.signals import m2m_changed, post_delete, post_save

    from .models import CategoryAttribute

    for model in (Category, CategoryAttribute, RoutingRule, Unit):
        post_save.connect(_on_change, sender=model, dispatch_uid=f"catalogue-{model.__name__}")
        post_delete.connect(_on_change, sender=model, dispatch_uid=f"catalogue-{model.__name__}-d")
    m2m_changed.connect(_on_change, sender=Unit.regions.through, dispatch_uid="catalogue-regions")
