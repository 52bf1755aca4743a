"""A name search reads a page's ids first, then those rows (core.querysets.DeferredJoinQuerySet).

Whatever the page, the rows are the ones an ordinary query gives, in the same order, with the
same related rows, masks and tags; only the SQL differs."""

from __future__ import annotations

import pytest
from django.core.paginator import Paginator
from django.db import connection
from django.test.utils import CaptureQueriesContext

from gridgov.registry import selectors
from gridgov.registry.models import Person
from tests.registry.factories import home, person

pytestmark = pytest.mark.django_db

NAMES = ["王芳", "王伟", "李王", "张三", "王秀英", "赵王明", "王一", "钱二", "王二", "孙王"]


@pytest.fixture
def wangs(world):
    """Ten people in grid A, eight with 王 in their name, two of those closed."""
    house = home(world.grid_worker_a)
    people = [person(world.grid_worker_a, household=house, name=name) for name in NAMES]
    Person.objects.filter(name__in=["王一", "孙王"]).update(closed_at="2026-11-01T00:00Z")
    return people


def ordinary(user, text, *, include_closed=False):
    """The same search read the ordinary way: whole rows, filtered, ordered, sliced."""
    return list(
        selectors.people_visible_to(user, include_closed=include_closed)
        .filter(name__contains=text)
        .order_by("name", "pk")
    )


@pytest.mark.parametrize("include_closed", [False, True])
def test_every_page_of_a_name_search_holds_the_rows_an_ordinary_query_gives(
    world, wangs, include_closed
):
    user = world.grid_worker_a
    expected = ordinary(user, "王", include_closed=include_closed)
    assert len(expected) == (8 if include_closed else 6)
    found = selectors.people_search(user, "王", include_closed=include_closed)
    for start in range(0, 9):
        for size in (1, 2, 3, 50):
            assert list(found[start : start + size]) == expected[start : start + size]
    assert found.count() == len(expected)
    assert list(found) == expected


def test_the_page_asks_for_its_ids_with_the_limit_and_then_for_those_rows(world, wangs):
    found = selectors.people_search(world.grid_worker_a, "王")
    with CaptureQueriesContext(connection) as queries:
        rows = list(found[1:3])
    assert rows == ordinary(world.grid_worker_a, "王")[1:3]
    assert len(queries) == 1
    sql = queries[0]["sql"].upper()
    assert "IN (SELECT" in sql
    assert "LIMIT 2" in sql
    assert "OFFSET 1" in sql


def test_a_page_keeps_related_rows_deferred_secrets_and_visible_tags(world, wangs):
    user = world.grid_worker_a
    found = (
        selectors.people_search(user, "王")
        .select_related("household")
        .prefetch_related(selectors.tags_prefetch(user))
    )
    with CaptureQueriesContext(connection) as queries:
        page = list(found[:3])
        households = [p.household.pk for p in page]
        tags = [p.visible_tag_list for p in page]
    assert len(queries) == 2  # the page with its households, then the tags
    assert households == [wangs[0].household_id] * 3
    assert tags == [[], [], []]
    assert all(p.is_masked for p in page)
    assert '"id_number"' not in queries[0]["sql"]  # the ciphertext is never read


def test_the_web_paginator_and_further_filters_page_the_same_way(world, wangs):
    user = world.grid_worker_a
    expected = [p for p in ordinary(user, "王") if p.name != "王芳"]
    pages = Paginator(selectors.people_search(user, "王").exclude(name="王芳"), 2)
    assert pages.count == 5
    assert [list(pages.page(n).object_list) for n in (1, 2, 3)] == [
        expected[0:2],
        expected[2:4],
        expected[4:5],
    ]


def test_single_rows_counts_and_exact_number_searches_read_as_ever(world, wangs):
    user = world.grid_worker_a
    found = selectors.people_search(user, "王")
    assert found[0] == ordinary(user, "王")[0]
    assert found.exists()
    assert selectors.people_search(user, "王芳").get().name == "王芳"
    assert not selectors.people_search(world.grid_worker_b, "王").exists()
    assert list(selectors.people_search(world.grid_worker_b, "王")[:10]) == []


def test_the_id_is_a_key_column_of_the_primary_key_only():
    """A foreign-key check (``id = $1``) must have one index to choose: with the id as a later
    key of the search index, PostgreSQL planned the checks at a big import's commit, on a table
    it believed empty, as scans of that whole index."""
    for index in Person._meta.indexes:
        assert "id" not in index.fields, index.name
    search = next(i for i in Person._meta.indexes if i.name == "person_scope_name")
    assert search.fields == ["region_code", "name", "closed_at"]
    assert search.include == ("id",)
