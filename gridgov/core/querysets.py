"""Querysets that read big tables a page at a time.

A search such as "people in this street whose name contains 王, by name, 50 at a time" must
filter a large range of rows that no index orders for it. Asked for whole rows, a database
reads every candidate row from the table before it can sort them (PostgreSQL then prefers
walking a name index in order and throwing most rows away, or a sequential scan: a quarter of
a second and more at a million people). Asked only for the ids, it reads a covering index
(``region_code, name, closed_at`` with the id) and never touches the table; the page's rows are then
fetched by primary key. That is a *deferred join*, and :class:`DeferredJoinQuerySet` does it
whenever a marked queryset is sliced, so pagination (Django's ``Paginator``, the API's
``offset``/``limit``) gets it without knowing:

    SELECT … FROM person WHERE id IN (
        SELECT id FROM person WHERE <scope> AND <filters> ORDER BY name, id LIMIT 50 OFFSET k
    ) ORDER BY name, id

Only slices are rewritten; iterating, counting, ``exists()`` and ``get()`` stay as they were.
"""

from __future__ import annotations

from typing import Any, Self, TypeVar

from django.db import models
from django.db.models.query import ModelIterable

M = TypeVar("M", bound=models.Model)


class DeferredJoinQuerySet(models.QuerySet[M]):
    """A queryset whose slices, once :meth:`deferred_join` is asked for, pick the page's ids
    first (the filters, the ordering, the limit and the offset) and then fetch those rows by
    primary key, keeping ``select_related``, ``only``/``defer``, ``prefetch_related`` and the
    ordering. A queryset with annotations, ``extra`` or ``distinct`` fields is sliced as
    usual (its rows could not be rebuilt from their ids alone)."""

    _deferred_join = False

    def deferred_join(self) -> Self:
        clone = self.all()
        clone._deferred_join = True
        return clone

    def _clone(self) -> Self:  # every derived queryset keeps the mark
        clone: Self = super()._clone()  # type: ignore[misc]  # private in django-stubs
        clone._deferred_join = self._deferred_join
        return clone

    def __getitem__(self, k: Any) -> Any:
        if isinstance(k, slice) and k.step is None and self._joins_deferred():
            return self._page(k)
        return super().__getitem__(k)

    def _joins_deferred(self) -> bool:
        query = self.query
        return (
            self._deferred_join
            and self._result_cache is None
            and self._iterable_class is ModelIterable
            and not query.is_sliced
            and not query.annotations
            and not query.extra
            and not query.distinct_fields
            and not query.combinator
        )

    def _page(self, k: slice) -> models.QuerySet[M]:
        ids = self.values("pk")[k]  # a values queryset: sliced the ordinary way
        page: models.QuerySet[M] = self.model._base_manager.filter(pk__in=ids)
        page.query.select_related = self.query.select_related
        page.query.deferred_loading = self.query.deferred_loading
        page.query.default_ordering = self.query.default_ordering
        page.query.order_by = self.query.order_by
        lookups = getattr(self, "_prefetch_related_lookups", ())
        return page.prefetch_related(*lookups) if lookups else page
