"""Issue 20 item 5: trust where people choose, with its breakdown, and no query per row."""

import pytest
from django.urls import reverse

from governance.models import ProductQuality
from tests.factories import PASSWORD


@pytest.fixture
def scored(mesh):
    for i, p in enumerate(mesh.products.values()):
        ProductQuality.objects.update_or_create(
            product=p,
            defaults={
                "trust_score": 60 + i,
                "components": {
                    "checks": {"weight": 50, "value": 0.8},
                    "freshness": {"weight": 20, "value": 1.0},
                    "documentation": {"weight": 30, "value": 0.5},
                },
            },
        )
    return mesh


def _login(client, user):
    assert client.login(username=user.username, password=PASSWORD)


def test_consumer_sees_trust_with_its_breakdown_in_search_rows(client, scored):
    _login(client, scored.consumer)
    html = client.get("/search/?q=published").content.decode()
    score = ProductQuality.objects.get(product=scored.products[("orders", "published")]).trust_score
    assert f"Trust {score}" in html
    assert '<details class="trust-score' in html
    assert "Checks: 80% × weight 50" in html and "Documentation: 50% × weight 30" in html
    assert reverse("governance:trust_help") in html


def test_trust_on_home_and_in_the_product_header(client, scored):
    _login(client, scored.owner)
    assert "Trust " in client.get("/").content.decode()
    product = scored.products[("orders", "published")]
    html = client.get(product.get_absolute_url()).content.decode()
    assert f"Trust {product.quality_state.trust_score}" in html


def test_quality_tab_trust_links_to_the_formula(client, scored):
    _login(client, scored.owner)
    product = scored.products[("orders", "published")]
    html = client.get(product.get_absolute_url() + "?tab=quality").content.decode()
    help_url = reverse("governance:trust_help")
    assert f'href="{help_url}"' in html
    page = client.get(help_url).content.decode()
    assert "How the trust score is computed" in page and "Documentation" in page


def test_no_query_per_row(client, scored, django_assert_max_num_queries):
    """Adding products adds no query to search or home: trust is read from the joined row."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _login(client, scored.staff)
    client.get("/search/?q=published"), client.get("/")  # warm caches (counts, facets)
    counts = []
    for extra in (0, 6):
        for i in range(extra):
            from products import services

            p = services.product_create(
                domain=scored.orders, slug=f"extra-{i}", name=f"Extra {i}", summary="published"
            )
            services.product_publish(product=p)
            ProductQuality.objects.create(product=p, trust_score=50, components={})
        with CaptureQueriesContext(connection) as search:
            client.get("/search/?q=published")
        with CaptureQueriesContext(connection) as home:
            client.get("/")
        counts.append((len(search), len(home)))
    assert counts[0] == counts[1]
    with django_assert_max_num_queries(counts[1][0]):
        client.get("/search/?q=published")
    with django_assert_max_num_queries(counts[1][1]):
        client.get("/")
