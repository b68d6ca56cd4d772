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


def test_the_apis_order_reads_its_pages_domain_by_domain(mesh, django_assert_num_queries):
    """The API list's default order (domain name, name, id), read a domain at a time on
    PostgreSQL (products.selectors.ids_by_domain): every page, for every reader, the same as the
    ORDER BY gives, with equal names, a domain named before the others, orphans and drafts the
    reader may or may not see."""
    from rest_framework.test import APIClient

    from domains import services as domain_services
    from products import selectors, services

    analytics = domain_services.domain_create(
        slug="analytics", name="Analytics", owner_team=mesh.users_team
    )
    for i, name in enumerate(("Zeta", "Orders published", "Zeta", "Alpha", "Beta")):
        p = services.product_create(domain=analytics, slug=f"p{i}", name=name, summary="x")
        if i != 4:  # Beta stays a draft of the users team: its owner sees it, others do not
            services.product_publish(product=p)
    for user in (mesh.owner, mesh.other_owner, mesh.consumer, mesh.staff):
        qs = visible(user, DataProduct.objects.all()).order_by(*selectors.BY_DOMAIN)
        expected = list(qs.values_list("pk", flat=True))
        qs.query.ids_and_count = selectors.ids_by_domain
        for size, orphans in ((2, 0), (3, 1), (4, 0), (50, 0)):
            pages = Paginator(expected, size, orphans=orphans)
            for n in pages.page_range:  # a request reads one page: a paginator each
                paginator = IdsFirstPaginator(qs, size, orphans=orphans)
                with django_assert_num_queries(2) as queries:  # ids and total, then rows
                    got = [p.pk for p in paginator.page(n)]
                lateral = "CROSS JOIN LATERAL" in queries.captured_queries[0]["sql"]
                assert lateral == (connection.vendor == "postgresql")
                assert got == list(pages.page(n)), (user, size, n)
                assert paginator.count == len(expected)
            with pytest.raises(EmptyPage):
                IdsFirstPaginator(qs, size).page(len(expected) + 1)
    client = APIClient()
    client.force_authenticate(mesh.consumer)
    names, url = [], "/api/v1/products/?page_size=2"
    while url:
        body = client.get(url).json()
        names += [(p["domain"], p["name"]) for p in body["results"]]
        url = body["next"]
    assert (
        names[:4]
        == [("analytics", "Alpha"), ("analytics", "Orders published")] + [("analytics", "Zeta")] * 2
    )
    assert ("analytics", "Beta") not in names and len(names) == body["count"]


def test_a_page_is_read_before_a_total_counted_elsewhere_is_awaited(mesh):
    """A total counted elsewhere (count_later: a list's facet pass, beside the request) is not
    awaited for the first page's ids and rows: a page_ids hook is told it is not known yet."""
    qs = visible(mesh.owner, DataProduct.objects.all()).order_by("name")
    ordered = list(qs.values_list("pk", flat=True))
    asked, told = [], []

    def page_ids(_qs, bottom, top, total):
        told.append(total)
        return ordered[bottom:top]

    qs.query.page_ids = page_ids
    paginator = IdsFirstPaginator(qs, 2)
    paginator.count_later(lambda: asked.append("count") or len(ordered))
    page = paginator.get_page(1)
    assert [p.pk for p in page.object_list] == ordered[:2]
    assert told == [None] and asked == []  # the rows came first
    assert page.paginator.count == len(ordered) and asked == ["count"]


def test_every_paged_order_ends_with_the_primary_key(mesh):
    """What the portal pages gets the primary key as its last key where its order lacks it
    (the order asked for, else the model's); what cannot take it is left alone."""
    from meshportal.pagination import StablePaginator, in_full_order
    from products.models import AccessRequest

    def order(qs):
        return tuple(str(o) for o in in_full_order(qs).query.order_by)

    assert order(DataProduct.objects.order_by("name")) == ("name", "pk")
    assert order(AccessRequest.objects.all()) == ("-created_at", "pk")  # Meta.ordering
    assert order(DataProduct.objects.order_by("name", "-id")) == ("name", "-id")
    assert order(DataProduct.objects.order_by()) == ()  # unordered: Django warns, as before
    values = DataProduct.objects.order_by("name").values("name")
    assert in_full_order(values) is values
    distinct = DataProduct.objects.order_by("name").distinct()
    assert in_full_order(distinct) is distinct
    sliced = DataProduct.objects.order_by("name")[:5]
    assert in_full_order(sliced) is sliced
    assert in_full_order([3, 1]) == [3, 1]
    assert tuple(
        StablePaginator(DataProduct.objects.order_by("slug"), 2).object_list.query.order_by
    ) == ("slug", "pk")


def test_an_inbox_of_requests_made_at_one_moment_pages_each_once(client, mesh):
    """A hundred and twenty requests with one creation time (a bulk import, a clock's resolution): the
    owner's inbox, read page after page, shows each exactly once."""
    from django.utils import timezone

    from meshportal.audit import audit_context
    from products import services
    from products.models import AccessRequest

    with audit_context(door="command"):
        products = services.products_create_many(
            [
                services.product_build(
                    domain=mesh.orders,
                    slug=f"asked-{i:02}",
                    name=f"Asked {i:02}",
                    status="published",
                )
                for i in range(120)
            ]
        )
    AccessRequest.objects.bulk_create(
        AccessRequest(product=p, requester=mesh.consumer, purpose="reports") for p in products
    )
    AccessRequest.objects.update(created_at=timezone.now())
    client.force_login(mesh.owner)
    first = client.get("/access/inbox/").context["page"]
    seen = [r.pk for r in first]
    for n in range(2, first.paginator.num_pages + 1):
        seen += [r.pk for r in client.get("/access/inbox/", {"page": n}).context["page"]]
    pending = AccessRequest.objects.filter(
        status="pending", product__owner_team=mesh.orders.owner_team
    )
    assert len(seen) == len(set(seen)) == first.paginator.count == pending.count() >= 120
