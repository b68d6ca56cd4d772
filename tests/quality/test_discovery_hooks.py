"""Quality feeds discovery: the trust sort, "most trusted" and the domain tiles' check share."""

import pytest

from governance.models import ProductQuality, QualityCheck
from products.discovery import facets as discovery

pytestmark = pytest.mark.django_db


def test_search_sorts_by_trust_and_home_shows_the_most_trusted(client, mesh):
    low = mesh.products[("orders", "published")]
    high = mesh.products[("users", "published")]
    ProductQuality.objects.create(product=low, trust_score=20)
    ProductQuality.objects.create(product=high, trust_score=90)
    assert "trust" in discovery.sort_choices()
    client.force_login(mesh.consumer)
    page = client.get("/search/?sort=trust").text
    assert page.index("Users published") < page.index("Orders published")
    assert [p.pk for p in discovery.most_trusted(user=mesh.consumer)][:2] == [high.pk, low.pk]


def test_domain_tiles_show_share_of_products_passing_checks(client, mesh):
    from governance.quality import services as quality_services

    for state, status in [("published", "passed"), ("deprecated", "failed")]:
        product = mesh.products[("orders", state)]
        QualityCheck.objects.create(
            port=product.ports.get(), name="rows", kind="row_count", params={"min": 1}
        )
        QualityCheck.objects.filter(port__product=product).update(last_status=status)
        quality_services.product_quality_refresh(product=product)  # as every run does
    client.force_login(mesh.consumer)
    assert "50% of checked products pass their checks" in client.get("/").text


def test_quality_state_is_a_search_facet(client, mesh):
    from governance.quality import services as quality_services

    failing = mesh.products[("orders", "published")]
    passing = mesh.products[("users", "published")]
    for product, status in [(failing, "failed"), (passing, "passed")]:
        QualityCheck.objects.create(
            port=product.ports.get(),
            name="rows",
            kind="row_count",
            params={"min": 1},
            last_status=status,
        )
        quality_services.product_quality_refresh(product=product)
    client.force_login(mesh.consumer)
    page = client.get("/search/?quality=failing").text
    assert "Orders published" in page and "Users published" not in page
    assert 'name="quality"' in page  # the facet is offered with its counts


def test_freshness_breach_badge_shows_in_header_and_lists_without_a_query_per_row(
    client, mesh, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from products.models import DataProduct

    breached = mesh.products[("orders", "published")]
    ProductQuality.objects.create(product=breached, freshness_breached=True)
    ProductQuality.objects.create(product=mesh.products[("users", "published")])
    client.force_login(mesh.consumer)
    badge = "Freshness SLO breached"
    # The product page header, whatever the tab.
    for tab in ("overview", "schema", "activity"):
        page = client.get(breached.get_absolute_url() + f"?tab={tab}").text
        assert badge in page, tab
    assert badge not in client.get(mesh.products[("users", "published")].get_absolute_url()).text
    # Search result cards and product lists.
    page = client.get("/search/?q=published").text
    assert page.count(badge) == 1
    assert badge in client.get("/products/").text
    assert badge in client.get(breached.domain.get_absolute_url()).text

    def queries(url):
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    before = {url: queries(url) for url in ("/search/?q=published", "/products/", "/")}
    # Every other product breaches too: the same number of queries.
    for p in DataProduct.objects.exclude(quality_state__isnull=False):
        ProductQuality.objects.create(product=p, freshness_breached=True)
    assert {url: queries(url) for url in before} == before
    assert client.get("/products/").text.count(badge) > 1
