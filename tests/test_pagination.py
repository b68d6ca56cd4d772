"""IdsFirstPaginator: the same pages as Django's paginator, the wide rows read for the page
only."""

import pytest
from django.core.paginator import EmptyPage, Paginator
from django.db import connection
from django.test.utils import CaptureQueriesContext

from meshportal.pagination import IdsFirstPaginator
from meshportal.permissions import visible
from products.models import DataProduct


def test_same_pages_as_the_plain_paginator(mesh):
    qs = visible(mesh.owner, DataProduct.objects.select_related("domain")).order_by("-name")
    first = IdsFirstPaginator(qs, 2, orphans=1)
    plain = Paginator(qs, 2, orphans=1)
    assert first.count == plain.count and first.num_pages == plain.num_pages
    for n in plain.page_range:
        assert [p.pk for p in first.page(n)] == [p.pk for p in plain.page(n)]


def test_the_wide_query_asks_for_the_page_ids_only(mesh):
    qs = DataProduct.objects.select_related("domain", "owner_team").order_by("name")
    with CaptureQueriesContext(connection) as queries:
        page = list(IdsFirstPaginator(qs, 3).page(1))
    assert [p.name for p in page] == list(qs.values_list("name", flat=True)[:3])
    wide = [q["sql"] for q in queries.captured_queries if "domains_team" in q["sql"]]
    assert len(wide) == 1 and " IN (" in wide[0]


def test_a_consumer_pages_only_what_they_may_see(mesh):
    qs = visible(mesh.consumer, DataProduct.objects.all()).order_by("name")
    names = [p.name for n in (1, 2) for p in IdsFirstPaginator(qs, 2).page(n)]
    assert names and not any("draft" in name for name in names)


def test_values_and_empty_lists_page_as_before(mesh):
    values = DataProduct.objects.order_by("name").values("name")
    assert list(IdsFirstPaginator(values, 2).page(1)) == list(values[:2])
    assert list(IdsFirstPaginator(DataProduct.objects.none(), 2).page(1)) == []


def test_the_count_comes_with_the_page_ids(mesh, django_assert_num_queries):
    qs = visible(mesh.owner, DataProduct.objects.select_related("domain")).order_by("name")
    total = qs.count()
    paginator = IdsFirstPaginator(qs, 2, orphans=1)
    with django_assert_num_queries(2):  # ids with the total, then the page's rows
        page = paginator.page(1)
        assert paginator.count == total and len(page) == min(total, 2 if total > 3 else 3)
    # Out of range: the count decides, as with Django's paginator.
    with pytest.raises(EmptyPage):
        IdsFirstPaginator(qs, 2).page(total + 5)
    assert list(IdsFirstPaginator(DataProduct.objects.none().order_by("name"), 2).page(1)) == []
