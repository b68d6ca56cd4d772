"""Facet counts: the same numbers on SQLite (one grouped count per facet) and PostgreSQL (one
MATERIALIZED CTE over the matching set), narrowing each other, in a fixed number of queries."""

import pytest
from django.conf import settings
from django.test import override_settings

from meshportal.audit import audit_context
from products import services
from products.discovery import facets, search, shapes


def _port(slug: str, kind: str = "table") -> dict:
    return {"slug": slug, "name": slug.title(), "kind": kind, "location": f"s.{slug}"}


@pytest.fixture
def faceted(mesh):
    """Besides the mesh: a published orders product with two tags and two table ports (counted
    once under "table"), and one in users with one tag and an API port."""
    with audit_context(door="command"):
        two = services.product_create(
            domain=mesh.orders,
            slug="invoices",
            name="Invoices",
            summary="Orders invoices",
            tags=["sales", "eu"],
            ports=[_port("a"), _port("b"), _port("c", "api")],
        )
        services.product_publish(product=two)
        one = services.product_create(
            domain=mesh.users,
            slug="profiles",
            name="Profiles",
            summary="User profiles",
            tags=["eu"],
            ports=[_port("api", "api")],
        )
        services.product_publish(product=one)
    return mesh


def _counts(result) -> dict:
    return {
        f["key"]: {v["value"]: v["count"] for v in f["values"]}
        for f in result.facets
        if f["values"]
    }


CASES = [
    # (query string, the counts expected for the consumer, facet by facet)
    (
        {},
        {
            "domain": {"orders": 3, "users": 3},
            "status": {"published": 4, "deprecated": 2},
            "tag": {"eu": 2, "sales": 1},
            "port_kind": {"table": 5, "api": 2},
        },
    ),
    (
        {"status": ["published"]},
        {
            "domain": {"orders": 2, "users": 2},
            # the chosen facet keeps the counts of its other values, to widen the choice
            "status": {"published": 4, "deprecated": 2},
            "tag": {"eu": 2, "sales": 1},
        },
    ),
    (
        {"tag": "eu", "domain": ["orders"]},
        {
            "domain": {"orders": 1, "users": 1},  # tag=eu only, not domain
            "tag": {"eu": 1, "sales": 1},  # domain=orders only
            "status": {"published": 1},  # both
            "port_kind": {"table": 1, "api": 1},
        },
    ),
    (
        # Filters on the product's own row (status) and through a subquery (port kind).
        {"port_kind": ["api"], "status": ["published"]},
        {
            "domain": {"orders": 1, "users": 1},
            "status": {"published": 2},  # port kind only
            "port_kind": {"table": 3, "api": 2},  # status only
            "classification": {"internal": 2},
        },
    ),
    ({"q": "invoices"}, {"domain": {"orders": 1}, "tag": {"eu": 1, "sales": 1}}),
    # the chosen domain stays listed (with 0) so that it can be unchecked
    ({"q": "invoices", "domain": ["users"]}, {"domain": {"orders": 1, "users": 0}, "status": {}}),
    ({"q": "zzqqxx"}, {"domain": {}, "tag": {}}),
]


@pytest.mark.parametrize(("data", "expected"), CASES)
def test_counts_narrow_each_other(faceted, data, expected):
    counts = _counts(facets.search(user=faceted.consumer, data=data))
    for key, values in expected.items():
        assert counts.get(key, {}) == values, key


def test_a_private_draft_is_counted_for_its_team_only(faceted):
    consumer = _counts(facets.search(user=faceted.consumer, data={}))
    owner = _counts(facets.search(user=faceted.owner, data={}))
    assert "draft" not in consumer["status"]
    assert owner["status"]["draft"] == 1  # orders' draft; users' draft is another team's


@pytest.mark.postgres
@pytest.mark.skipif(not settings.IS_POSTGRES, reason="the CTE path is PostgreSQL's")
@pytest.mark.parametrize(("data", "expected"), CASES)
def test_postgres_cte_counts_equal_the_per_facet_counts(faceted, data, expected):
    """The one-pass CTE and the old UNION of per-facet counts agree value by value."""
    result = facets.search(user=faceted.consumer, data=data)
    fs, cleaned = result.filterset, result.cleaned
    from meshportal.permissions import visible
    from products.discovery.search import search_products
    from products.models import DataProduct

    base = visible(faceted.consumer, DataProduct.objects.all())
    searched = search_products(base, data["q"]) if data.get("q") else None
    pool = base.filter(pk__in=searched.values("pk")) if searched is not None else base

    def key(r):
        return (r["facet_key"], r["value"], r["label"], r["n"])

    old = sorted(map(key, facets._per_facet(pool, fs, cleaned)))
    active = [n for n, v in cleaned.items() if n != "q" and shapes.chosen(v)]
    sql, params = facets._over_matches_sql(
        pool if searched is not None else base, fs, cleaned, active
    )
    new = sorted(map(key, facets._facet_rows(sql, params)))
    assert new == old


def test_facet_counts_take_a_fixed_number_of_queries_whatever_the_filters(
    faceted, django_assert_num_queries
):
    """One query; on PostgreSQL one more before it, estimating the size (MESH_EXACT_COUNTS)."""
    data = {"q": "orders", "status": ["published"], "tag": "eu", "domain": ["orders"]}
    result = facets.search(user=faceted.consumer, data=data)  # warm: the filter form's choices
    with django_assert_num_queries(2 if settings.IS_POSTGRES else 1):
        facets.facet_counts(
            base=facets.visible(faceted.consumer, facets.DataProduct.objects.all()),
            searched=None,
            fs=result.filterset,
            cleaned={k: v for k, v in result.cleaned.items() if k != "q"},
        )


@pytest.mark.parametrize(("data", "expected"), CASES)
def test_the_facet_pass_counts_the_page_total(faceted, data, expected):
    """PostgreSQL: the facet query also counts the products passing every filter, the number
    the paginator shows (no COUNT(*) of its own); SQLite leaves it to the paginator."""
    result = facets.search(user=faceted.consumer, data=data)
    if settings.IS_POSTGRES:
        assert result.total == result.queryset.count()
    else:
        assert result.total is None


def test_the_total_hides_what_the_user_may_not_see(faceted):
    """The total counts only visible products: the owner's team sees its draft, others not."""
    consumer = facets.search(user=faceted.consumer, data={"status": ["draft"]})
    owner = facets.search(user=faceted.owner, data={"status": ["draft"]})
    assert consumer.queryset.count() == 0
    assert owner.queryset.count() == 1
    if settings.IS_POSTGRES:
        assert (consumer.total, owner.total) == (0, 1)


# -- many-valued facets stored in the product's row (PostgreSQL) ---------------------------------

postgres_only = pytest.mark.skipif(not settings.IS_POSTGRES, reason="facet_values is PostgreSQL's")


def _stored(slug: str) -> dict:
    from products.models import DataProduct

    values = DataProduct.objects.get(slug=slug).facet_values
    return {key: set(v) for key, v in values.items()}


@pytest.mark.postgres
@postgres_only
def test_stored_values_follow_the_services(faceted):
    """Every write through the services re-stores the tags and port kinds with the vector."""
    from products.models import OutputPort

    assert _stored("invoices") == {"tag": {"sales", "eu"}, "port_kind": {"table", "api"}}
    invoices = OutputPort.objects.get(product__slug="invoices", slug="c").product
    with audit_context(door="command"):
        services.port_update(port=invoices.ports.get(slug="c"), kind="table")
        services.product_update(product=invoices, tags=["eu", "finance"])
    assert _stored("invoices") == {"tag": {"eu", "finance"}, "port_kind": {"table"}}
    counts = _counts(facets.search(user=faceted.consumer, data={}))
    assert counts["tag"] == {"eu": 2, "finance": 1}
    assert counts["port_kind"] == {"table": 5, "api": 1}  # invoices: no API port left


@pytest.mark.postgres
@postgres_only
def test_a_product_never_stored_is_counted_from_its_tables(faceted):
    """A NULL (a product written around the services, or before the column existed) is read
    from the tag links and the ports: the counts do not change."""
    from products.models import DataProduct

    before = _counts(facets.search(user=faceted.consumer, data={}))
    DataProduct.objects.update(facet_values=None)
    assert _counts(facets.search(user=faceted.consumer, data={})) == before
    narrowed = {"tag": "eu", "port_kind": ["api"]}
    stored = facets.search(user=faceted.consumer, data=narrowed)
    assert _counts(stored)["port_kind"] == {"table": 1, "api": 2}


@pytest.mark.postgres
@postgres_only
def test_a_deleted_tag_is_not_offered(faceted):
    from products.models import Tag

    Tag.objects.filter(slug="sales").delete()  # no re-index: the stored slug stays behind
    assert "sales" in _stored("invoices")["tag"]
    assert _counts(facets.search(user=faceted.consumer, data={}))["tag"] == {"eu": 2}


@pytest.mark.postgres
@postgres_only
def test_the_migrations_fill_stores_what_index_product_stores(faceted):
    """Migration products 0015 fills the column for products indexed before it with its own
    SQL: the same values as search.index_product writes."""
    import importlib

    from django.db import connection

    from products.models import DataProduct

    fill = importlib.import_module("products.migrations.0015_facet_values").FILL
    expected = {p.pk: _stored(p.slug) for p in DataProduct.objects.filter(slug="invoices")}
    DataProduct.objects.update(facet_values=None)
    with connection.cursor() as cursor:
        cursor.execute(fill)
    assert {pk: _stored("invoices") for pk in expected} == expected


@pytest.mark.postgres
@postgres_only
def test_the_facet_pass_counts_domains_and_teams_by_key_and_names_each_group_once(faceted):
    """The matches are read from the products' own rows: no domain or team joined to each of
    them (a sample of 1,000 carried 1,000 copies of 20 names); each group found is named once,
    with the name it has now."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    faceted.orders.name = "Order management"
    faceted.orders.save()
    with CaptureQueriesContext(connection) as queries:
        result = facets.search(user=faceted.consumer, data={"q": "orders"})
    domains = next(f for f in result.facets if f["key"] == "domain")["values"]
    assert {(v["value"], v["label"]) for v in domains} >= {("orders", "Order management")}
    teams = next(f for f in result.facets if f["key"] == "owner_team")["values"]
    assert teams and all(v["label"] and v["count"] > 0 for v in teams)
    facet_pass = next(q["sql"] for q in queries if "_over_matches" in q["sql"])
    matches = facet_pass[: facet_pass.index(") SELECT ")]  # the CTE
    assert "domains_domain" not in matches and "domains_team" not in matches


@pytest.mark.postgres
@postgres_only
def test_a_renamed_tag_is_offered_under_its_new_slug(faceted):
    """The admin renames a tag: its products are indexed again (search text and facet values)."""
    from products.models import Tag

    tag = Tag.objects.get(slug="sales")
    tag.slug, tag.name = "revenue", "Revenue"
    tag.save()
    assert "revenue" in _stored("invoices")["tag"]
    assert _counts(facets.search(user=faceted.consumer, data={}))["tag"] == {"eu": 2, "revenue": 1}
    found = facets.search(user=faceted.consumer, data={"q": "revenue"}).queryset
    assert [p.slug for p in found] == ["invoices"]


# -- past MESH_EXACT_COUNTS: estimates from a sample (PostgreSQL) --------------------------------


@pytest.fixture
def many(faceted):
    """120 published products in orders besides the mesh's, and a draft of the users team that
    the consumer may not see."""
    with audit_context(door="command"):
        services.products_create_many(
            [
                services.product_build(
                    domain=faceted.orders,
                    slug=f"ledger-{i}",
                    name=f"Ledger {i}",
                    summary="Orders ledger",
                    status="published",
                    classification="internal" if i % 3 else "confidential",
                )
                for i in range(120)
            ]
        )
        services.product_create(
            domain=faceted.users, slug="secret-orders", name="Secret orders", summary="Orders"
        )
    return faceted


def _exact_ids(user, data) -> list[int]:
    with override_settings(MESH_EXACT_COUNTS=10**6):
        return list(facets.search(user=user, data=data).queryset.values_list("pk", flat=True))


def _sampled_total(ids: list[int], *, limit: int) -> int:
    """What the estimate must say for these products: the ones in the PROBE buckets say how
    many buckets to read, and those buckets' products scaled up to all BUCKETS. Computed from
    the ids' own buckets, so the test holds whichever ids the database gave (a fixed ratio to
    the real total failed now and then: ~20 products of a sample vary by a fifth and more)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT (hashint8(id) & 63) FROM unnest(%s::bigint[]) AS id", [ids])
        buckets = [b for (b,) in cursor.fetchall()]
    read = facets._buckets_for(sum(b < search.PROBE for b in buckets), limit)
    assert read < search.BUCKETS  # a sample, not every product
    return facets._about(sum(b < read for b in buckets) * search.BUCKETS / read)


def _exact(user, data) -> tuple[int, dict]:
    """The real total and counts, with the threshold far above the mesh."""
    with override_settings(MESH_EXACT_COUNTS=10**6):
        result = facets.search(user=user, data=data)
    assert not result.approximate
    return result.queryset.count(), _counts(result)


@pytest.mark.postgres
@postgres_only
@pytest.mark.parametrize("data", [{}, {"q": "orders"}, {"q": "ledger", "status": ["published"]}])
def test_past_the_threshold_counts_are_estimates_of_the_visible_products(many, data):
    total, exact = _exact(many.consumer, data)
    with override_settings(MESH_EXACT_COUNTS=20):
        result = facets.search(user=many.consumer, data=data)
    assert result.approximate
    assert result.total == _sampled_total(_exact_ids(many.consumer, data), limit=20)
    estimated = _counts(result)
    for key, values in estimated.items():
        # only values that really occur among what the consumer sees, never another's draft
        assert set(values) <= set(exact[key]), key


@pytest.mark.postgres
@postgres_only
def test_the_sample_is_read_from_its_covering_indexes_alone(many):
    """The facet pass over a sample reads each sampled product from the sample-bucket index and
    its quality state from the quality index, never the wide rows (migrations products.0021
    and governance.0010; on the 10,000-product bench mesh the plan is an Index Only Scan): every
    product column the pass reads is one the index holds. (A test's few rows are too few for
    the planner to choose an index at all, hence the columns rather than the plan.)"""
    import re

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with override_settings(MESH_EXACT_COUNTS=20), CaptureQueriesContext(connection) as queries:
        assert facets.search(user=many.consumer, data={}).approximate
    sql = next(q["sql"] for q in queries.captured_queries if "_over_matches" in q["sql"])
    read = set(re.findall(r'"products_dataproduct"\."(\w+)"', sql))
    assert {"id", "status", "facet_values"} <= read

    def covered(index: str) -> set[str]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
                " WHERE c.relname = %s",
                [index],
            )
            return {row[0] for row in cursor.fetchall()}

    assert read <= covered("dataproduct_sample_cover")
    assert '"governance_productquality" "U0" WHERE "U0"."product_id"' in sql
    assert covered("productquality_state_cover") == {"product_id", "state"}


@pytest.mark.postgres
@postgres_only
def test_under_the_threshold_counts_are_exact(many):
    result = facets.search(user=many.consumer, data={"q": "orders"})
    assert not result.approximate
    assert result.total == result.queryset.count() >= 121


@pytest.mark.postgres
@postgres_only
def test_the_page_says_about_when_the_counts_are_estimates(many, client):
    client.force_login(many.consumer)
    with override_settings(MESH_EXACT_COUNTS=20):
        html = client.get("/search/", {"q": "ledger"}).content.decode()
    assert 'About <span id="result-count">' in html
    assert 'class="badge rounded-pill text-bg-light border facet-count" title="About' in html
    exact = client.get("/search/", {"q": "ledger"}).content.decode()
    assert "About <span" not in exact and 'title="About' not in exact
    assert '<span id="result-count">120</span>' in exact


def test_sqlite_counts_are_always_exact(many):
    if settings.IS_POSTGRES:
        pytest.skip("SQLite's path")
    with override_settings(MESH_EXACT_COUNTS=1):
        result = facets.search(user=many.consumer, data={"q": "orders"})
    assert not result.approximate


@pytest.mark.parametrize(
    ("n", "shown"), [(4814.4, 4800), (156.0, 160), (99.6, 100), (12.4, 12), (0.2, 0), (995, 1000)]
)
def test_estimates_are_whole_numbers_to_two_significant_digits(n, shown):
    assert facets._about(n) == shown and isinstance(facets._about(n), int)


def test_a_chosen_value_stays_listed_first_even_past_the_shown_few(faceted, client):
    """Facet lists show 12 values, chosen ones first; one with no product left is shown with 0
    (in an estimate's sample a rare value can be missing: it must stay to be unchecked)."""
    result = facets.search(user=faceted.consumer, data={"q": "profiles", "tag": "sales"})
    tags = next(f for f in result.facets if f["key"] == "tag")["values"]
    assert tags[0] == {"value": "sales", "label": "sales", "count": 0, "checked": True}
    client.force_login(faceted.consumer)
    html = client.get("/search/", {"q": "profiles", "tag": "sales"}).text
    assert 'id="f-tag-sales" checked' in html


@pytest.mark.postgres
@postgres_only
def test_the_mcp_tool_says_when_its_facet_counts_are_estimates(many):
    from agents import tools

    exact = tools.search_products(many.consumer, query="ledger")
    assert exact["facets_approximate"] is False and exact["total"] == 120
    with override_settings(MESH_EXACT_COUNTS=20):
        estimated = tools.search_products(many.consumer, query="ledger")
    assert estimated["facets_approximate"] is True
    assert estimated["total"] == 120  # its page count is its own, exact
    assert set(estimated["facets"]["classification"]) <= {"internal", "confidential"}


def test_a_page_past_an_estimated_end_says_so_and_links_back_to_the_first():
    from django.core.paginator import Paginator
    from django.template.loader import render_to_string
    from django.test import RequestFactory

    page = Paginator(list(range(100)), 25).page(4)
    page.object_list = []  # the estimate promised a fourth page; the rows ended before it
    request = RequestFactory().get("/search/", {"q": "orders", "page": "4", "tag": "eu"})
    context = {"page": page, "facets": [], "q": "orders", "approximate": True}
    html = render_to_string("products/_search_results.html", context, request=request)
    assert 'id="past-the-end"' in html and 'id="no-results"' not in html
    assert 'href="?q=orders&amp;tag=eu"' in html  # the same search, its first page
    assert "About <span" in html
