"""Search, list, home and browse pages: content, facets, htmx partials, permissions, queries."""

import pytest
from django.conf import settings

from meshportal.audit import audit_context
from products import selectors, services
from products.discovery import search


def _published(domain, name: str, n: int) -> None:
    """n published products of the domain's team, named "<name> 00" onwards."""
    with audit_context(door="command"):
        services.products_create_many(
            [
                services.product_build(
                    domain=domain,
                    slug=f"{name.lower()}-{i:02}",
                    name=f"{name} {i:02}",
                    status="published",
                )
                for i in range(n)
            ]
        )


def _facet_count(html: str, facet: str, value: str) -> int | None:
    import re

    m = re.search(rf'id="f-{facet}-{re.escape(value)}".*?facet-count">(\d+)<', html, flags=re.S)
    return int(m.group(1)) if m else None


def test_search_page_finds_by_prefix_and_marks_the_words(client, mesh):
    client.force_login(mesh.consumer)
    r = client.get("/search/", {"q": "ord"})
    assert r.status_code == 200
    assert "Orders published" in r.text
    assert "Orders draft" not in r.text  # drafts are the team's
    r = client.get("/search/", {"q": "publ"})
    assert "<mark>published</mark>" in r.text


def test_htmx_request_gets_only_the_results(client, mesh):
    client.force_login(mesh.consumer)
    r = client.get("/search/", {"q": "orders"}, headers={"HX-Request": "true"})
    assert r.status_code == 200
    assert "<html" not in r.text
    assert 'id="result-count"' in r.text
    assert "HX-Request" in r["Vary"]


def test_facets_narrow_each_other(client, mesh):
    client.force_login(mesh.consumer)
    r = client.get("/search/")
    # consumer sees 4 products: published + deprecated in orders and users
    assert _facet_count(r.text, "domain", "orders") == 2
    assert _facet_count(r.text, "status", "published") == 2
    r = client.get("/search/", {"status": "published"})
    assert _facet_count(r.text, "domain", "orders") == 1
    # the chosen facet keeps its own counts so one can widen the choice
    assert _facet_count(r.text, "status", "deprecated") == 2
    assert r.context["page"].paginator.count == 2


def test_no_results_suggests_a_spelling_and_shows_popular(client, mesh):
    client.force_login(mesh.consumer)
    r = client.get("/search/", {"q": "zzqqxx"})
    assert 'id="no-results"' in r.text
    assert 'id="popular"' in r.text
    assert "Orders published" in r.text  # the product with consumers
    r = client.get("/search/", {"q": "deprecatd xyzzy"})
    if r.context["page"].paginator.count == 0:
        assert "Did you mean" in r.text


def _popular(client) -> list[str]:
    r = client.get("/search/", {"q": "zzqqxx"})
    return [p.name for p in r.context["popular"]]


def test_popular_products_follow_approvals(
    client, mesh, shared_cache, django_capture_on_commit_callbacks
):
    """The ranking is kept in the shared cache for everyone; an approval forgets it."""
    client.force_login(mesh.consumer)
    assert _popular(client)[0] == "Orders published"  # one approved consumer, the others none
    users = mesh.products[("users", "published")]
    with audit_context(door="command"), django_capture_on_commit_callbacks(execute=True):
        for who in (mesh.consumer, mesh.member):
            req = services.access_request_create(product=users, requester=who, purpose="churn")
            services.access_request_approve(request=req, by=mesh.other_owner)
    assert _popular(client)[0] == "Users published"  # two consumers now
    assert "Orders draft" not in _popular(client)  # drafts never: published products only


def test_sort_by_name_and_newest(client, mesh):
    client.force_login(mesh.owner)
    r = client.get("/products/", {"sort": "name"})
    names = [p.name for p in r.context["page"]]
    assert names == sorted(names)
    r = client.get("/products/", {"sort": "trust"})  # falls back to name until quality exists
    assert [p.name for p in r.context["page"]] == names
    r = client.get("/products/", {"sort": "newest"})
    assert r.status_code == 200


@pytest.mark.parametrize("sort", ["newest", "trust", "name"])
def test_a_list_sorted_by_what_no_index_orders_reads_its_page_ids_first(client, mesh, sort):
    """Newest first or by trust, the order covers every product: the page's ids are read alone
    and only the page's wide rows (with domain, team, quality state and snippet) after them.
    By name the rows come straight from the name index in one statement. The page is the
    same either way."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from products.discovery import facets

    _published(mesh.users, "Sorted", 30)
    client.force_login(mesh.owner)
    with CaptureQueriesContext(connection) as queries:
        page = client.get("/products/", {"sort": sort}).context["page"]
    result = facets.search(user=mesh.owner, data={"sort": sort})
    assert [p.pk for p in page] == list(result.queryset.values_list("pk", flat=True)[:25])
    wide = [q["sql"] for q in queries.captured_queries if '"summary"' in q["sql"]]
    assert len(wide) == 1
    own = wide[0].replace(selectors._TAG_PAIRS.sql, "")  # the tags' subquery has its own order
    by_ids = " IN (" in own or "= ANY(" in own  # PostgreSQL: the ids as one array parameter
    assert (by_ids and "ORDER BY" not in own) == (sort != "name")


@pytest.mark.postgres
def test_the_newest_order_is_an_indexs_order(mesh):
    """The "Newest" sort's ORDER BY is the index dataproduct_newest's, column for column, so a
    page's ids are read from it in order (at 10,000 products 3.0 -> 0.1 ms) rather than every
    product sorted."""
    import re

    from django.db import connection

    from products.discovery import facets
    from products.models import DataProduct

    sql = str(facets.all_sorts()["newest"](DataProduct.objects.all()).query)
    order = sql.split(" ORDER BY ")[1].replace('"products_dataproduct".', "").replace('"', "")
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'dataproduct_newest'")
        (indexdef,) = cursor.fetchone()
    columns = re.search(r"btree \((.*)\)$", indexdef).group(1)
    assert (
        columns
        == order.replace(" ASC", "")
        == ("published_at DESC NULLS LAST, created_at DESC, name, id")
    )


def test_list_shows_own_drafts_to_the_team_only(client, mesh):
    client.force_login(mesh.member)
    assert "Orders draft" in client.get("/products/").text
    client.force_login(mesh.other_owner)
    assert "Orders draft" not in client.get("/products/").text


def test_anonymous_is_sent_to_sign_in(client, mesh):
    for url in ("/", "/search/?q=orders", "/products/"):
        r = client.get(url)
        assert r.status_code == 302 and "/login/" in r["Location"]


PAGES = [
    "/",
    "/search/?q=orders",
    "/search/?q=ordr&status=published&domain=orders",
    "/search/?q=zzqqxx",
    "/products/?tag=bulk&port_kind=table&sort=newest",
    "/products/orders/published-product/",
    "/products/orders/published-product/?tab=schema",
    "/products/orders/published-product/?tab=ports",
    "/products/orders/published-product/?tab=access",
    "/domains/orders/",
    "/tags/bulk/",
    "/teams/orders-team/",
]


def test_query_count_does_not_grow_with_data(client, mesh, django_assert_max_num_queries):
    """5 products or 45: every page runs the same bounded number of queries."""
    client.force_login(mesh.consumer)
    _bulk_more(mesh, 0, 5)
    counts = {}
    for url in PAGES:
        # 15, the page budget, with a search's one look at the semantic vectors
        # (products.discovery.semantic: the fusion query, or with nothing near only the
        # vectors' stamp) and the portal analytics' count of the search (usage: one upsert).
        # A search with no match spends two on "Did you mean …?" (the close names, tags and
        # field names in one query).
        with django_assert_max_num_queries(15) as small:
            assert client.get(url).status_code == 200, url
        counts[url] = len(small.captured_queries)
    _bulk_more(mesh, 5, 45)
    for url in PAGES:
        with django_assert_max_num_queries(counts[url]):
            assert client.get(url).status_code == 200, url


def _bulk_more(mesh, start, stop):
    with audit_context(door="command"):
        for i in range(start, stop):
            p = services.product_create(
                domain=mesh.orders if i % 2 else mesh.users,
                slug=f"bulk-{i}",
                name=f"Bulk orders {i}",
                summary="Orders in bulk",
                tags=[f"t{i % 3}", "bulk"],
                ports=[
                    {
                        "name": "Main",
                        "kind": "table" if i % 2 else "file",
                        "fields": [{"name": "order_id"}],
                    }
                ],
            )
            services.product_publish(product=p)


def test_home_sections(client, mesh):
    client.force_login(mesh.consumer)
    services.access_request_create(
        product=mesh.products[("users", "published")],
        requester=mesh.consumer,
        purpose="churn study",
    )
    r = client.get("/")
    assert "autofocus" in r.text and 'action="/search/"' in r.text
    assert [d.product_count for d in r.context["domains"]] == [2, 2]  # drafts not counted
    assert "Recently published" in r.text and "Most trusted" in r.text
    assert [x.product.name for x in r.context["pending"]] == ["Users published"]
    assert "New product in" not in r.text and r.context["mine"] == []
    client.force_login(mesh.member)
    r = client.get("/")
    assert "New product in Orders" in r.text
    assert {p.name for p in r.context["mine"]} == {
        "Orders draft",
        "Orders published",
        "Orders deprecated",
    }


def test_domain_page_shows_team_and_create_button_to_members_only(client, mesh):
    client.force_login(mesh.member)
    r = client.get("/domains/orders/")
    assert "New product" in r.text and 'id="domain-team"' in r.text and "owner" in r.text
    assert "Orders draft" in r.text
    client.force_login(mesh.consumer)
    r = client.get("/domains/orders/")
    assert "New product" not in r.text and "Orders draft" not in r.text
    assert "Orders published" in r.text


def test_team_page_lists_its_products(client, mesh):
    client.force_login(mesh.consumer)
    r = client.get("/teams/orders-team/")
    assert "Orders published" in r.text and "Orders draft" not in r.text


def test_a_team_page_pages_its_products_and_links_to_the_rest(client, mesh):
    """A team owning more products than a page shows pages them by name, as the domain page
    does (it showed the first 50 and said nothing of the others), and links to the search
    filtered by the team."""
    import re

    _published(mesh.orders, "Part", 30)
    client.force_login(mesh.consumer)

    def names(html: str) -> list[str]:
        return re.findall(r'<a class="fw-semibold" href="[^"]*">([^<]*)</a>', html)

    first = client.get("/teams/orders-team/").text
    second = client.get("/teams/orders-team/", {"page": 2}).text
    seen = names(first) + names(second)
    assert len(names(first)) == 25 and "Page 1 of 2" in first
    assert 'href="/teams/orders-team/?page=2"' in first
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 32  # and the two published
    assert "Orders draft" not in first + second  # a draft: its own team sees it, not a consumer
    link = re.search(r'href="(/products/\?owner_team=orders-team)"', first).group(1)
    assert len(names(client.get(link).text)) == 25
    # The page rendered again under a member form's error keeps its pages, linked to the team.
    client.force_login(mesh.owner)
    r = client.post("/teams/orders-team/members/", {"username": "nobody", "role": "member"})
    assert r.status_code == 400 and 'href="/teams/orders-team/?page=2"' in r.text


def test_tag_page(client, mesh):
    services.product_update(product=mesh.products[("users", "published")], tags=["churn"])
    client.force_login(mesh.consumer)
    r = client.get("/tags/churn/")
    assert "Users published" in r.text and "Orders published" not in r.text
    assert client.get("/tags/nope/").status_code == 404


def test_product_page_overview_for_consumer_and_member(client, mesh):
    client.force_login(mesh.consumer)
    r = client.get("/products/orders/published-product/")
    assert "urn:mesh:orders:published-product" in r.text and "data-copy" in r.text
    assert 'id="owners"' in r.text and "owner" in r.text
    assert "Request access" in r.text
    assert "Clone" not in r.text and ">Edit<" not in r.text
    for tab in ("schema", "ports", "access", "activity"):
        assert client.get(f"/products/orders/published-product/?tab={tab}").status_code == 200
    assert (
        "sales.secret_table" not in client.get("/products/orders/published-product/?tab=ports").text
    )
    client.force_login(mesh.member)
    r = client.get("/products/orders/published-product/")
    assert "Clone" in r.text and ">Edit<" in r.text


@pytest.mark.postgres
@pytest.mark.skipif(not settings.IS_POSTGRES, reason="PostgreSQL reads a page's rows by id")
def test_a_pages_rows_are_one_statement_for_every_search(client, mesh):
    """A page's rows are read by their ids in one SQL text whatever the words, filters or
    number of rows (compiled once per process), with the words marked in each row's snippet."""
    import re

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _published(mesh.users, "Sorted", 30)
    client.force_login(mesh.owner)
    texts, pages = set(), {}
    for data in ({"q": "sorted"}, {"q": "sorted 01", "status": "published"}, {"q": "product"}):
        with CaptureQueriesContext(connection) as queries:
            pages[data["q"]] = client.get("/products/", data).context["page"]
        wide = [q["sql"] for q in queries.captured_queries if '"summary"' in q["sql"]]
        assert len(wide) == 1
        texts.add(re.sub(r"'[^']*'", "?", wide[0]))  # the values bound into the text
    assert len(texts) == 1
    assert len(pages["sorted"].object_list) == 25
    assert [row.name for row in pages["sorted 01"].object_list] == ["Sorted 01"]
    marked = [search.snippet(row, "product") for row in pages["product"].object_list]
    assert marked and all("<mark>product</mark>" in str(snippet) for snippet in marked)


def _twins(mesh, n: int) -> set[int]:
    """n published products of users' team alike in every key a sort orders by: one name, one
    publication and creation time, no quality yet (one trust)."""
    from django.utils import timezone

    from products.models import DataProduct

    _published(mesh.users, "Twin", n)
    twins = DataProduct.objects.filter(slug__startswith="twin-")
    now = timezone.now()
    twins.update(name="Twin", published_at=now, created_at=now)
    return set(twins.values_list("pk", flat=True))


@pytest.mark.parametrize("filtered", [False, True])
@pytest.mark.parametrize("sort", ["name", "newest", "trust"])
def test_a_lists_pages_hold_each_product_once_when_its_sort_keys_tie(client, mesh, sort, filtered):
    """Sixty products alike in every key of the sort: read page after page, the list shows each
    product exactly once (the order ends with the id, so a tie cannot move a product from one
    page to the next between two statements)."""
    twins = _twins(mesh, 60)
    client.force_login(mesh.consumer)
    data = {"sort": sort, **({"status": "published"} if filtered else {})}
    first = client.get("/products/", data).context["page"]
    seen = [p.pk for p in first]
    for n in range(2, first.paginator.num_pages + 1):
        seen += [p.pk for p in client.get("/products/", {**data, "page": n}).context["page"]]
    assert len(seen) == len(set(seen)) == first.paginator.count
    assert twins <= set(seen)


@pytest.mark.parametrize("reader", ["consumer", "member"])
def test_a_list_by_trust_reads_its_pages_above_a_floor_of_scores(client, mesh, reader):
    """Sorted by trust, the products list reads a page's ids among the products scoring at
    least a floor (through the score's index), not by sorting every product joined to its
    score; each page is still the order's own: ties by name then id, the never-checked (score
    0) after every checked one, a member's drafts in their place. A filtered list too."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from governance.models import ProductQuality
    from products.discovery import facets
    from products.models import DataProduct

    _published(mesh.orders, "Scored", 60)
    scored = DataProduct.objects.filter(slug__startswith="scored-").order_by("slug")
    ProductQuality.objects.bulk_create(
        ProductQuality(product=p, trust_score=[90, 75, 75, 40, 20][i % 5])
        for i, p in enumerate(scored)
        if i % 7  # some never checked
    )
    DataProduct.objects.filter(slug__in=["scored-01", "scored-06"]).update(name="Scored tie")
    DataProduct.objects.filter(slug="scored-02").update(status=DataProduct.Status.DRAFT)
    user = getattr(mesh, reader)
    client.force_login(user)
    for data in ({"sort": "trust"}, {"sort": "trust", "status": ["published", "draft"]}):
        listed = facets.search(user=user, data=data).queryset
        order = [pk for (pk,) in listed.values_list("pk")]  # the ORDER BY itself
        assert (scored.get(slug="scored-02").pk in order) == (reader == "member")
        seen: list[int] = []
        n = 1
        while True:
            with CaptureQueriesContext(connection) as queries:
                page = client.get("/products/", {**data, "page": n}).context["page"]
            seen += [p.pk for p in page]
            if n == 1 and "status" not in data:
                assert any('"trust_score" >=' in q["sql"] for q in queries.captured_queries)
            if not page.has_next():
                break
            n += 1
        assert seen == order
        assert len(order) > 50


@pytest.mark.parametrize("url", ["/domains/users/", "/teams/users-team/", "/tags/twin/"])
def test_a_domain_team_or_tag_page_holds_each_product_once_when_names_tie(client, mesh, url):
    """Sixty products of one name on a domain's, a team's or a tag's pages, read one after
    another: each shows exactly once (the pages end their order by name with the id)."""
    from products.models import DataProduct, Tag

    twins = _twins(mesh, 60)
    tag = Tag.objects.create(slug="twin", name="twin")
    for product in DataProduct.objects.filter(pk__in=twins):
        product.tags.add(tag)
    client.force_login(mesh.consumer)
    first = client.get(url).context["page"]
    seen = [p.pk for p in first]
    for n in range(2, first.paginator.num_pages + 1):
        seen += [p.pk for p in client.get(url, {"page": n}).context["page"]]
    assert len(seen) == len(set(seen)) == first.paginator.count
    assert twins <= set(seen)
