"""Portal analytics recorded by the portal itself: product page views and searches (one
statement per page, search as you type counted once), their retention, the platform's page
and API, and everyone else refused."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.test_browser import browser  # noqa: F401  (the shared browser fixture)
from tests.test_browser_design import open_page  # noqa: F401
from tests.usage.conftest import bearer, session
from usage import services
from usage.models import ProductView, SearchDay

pytestmark = pytest.mark.django_db

ORDERS = "/products/orders/published-product/"


def _searches() -> dict[str, tuple[int, int]]:
    return {s.query: (s.searches, s.empty) for s in SearchDay.objects.filter(searches__gt=0)}


def test_a_product_page_load_counts_once_per_load_and_person(client, mesh):
    client.force_login(mesh.consumer)
    client.get(ORDERS)
    client.get(ORDERS + "?tab=schema")
    client.get(ORDERS + "?tab=quality", HTTP_HX_REQUEST="true")  # a tab refreshing itself
    client.force_login(mesh.owner)
    client.get(ORDERS)
    rows = {(v.user.username, v.views) for v in ProductView.objects.select_related("user")}
    assert rows == {("consumer", 2), ("owner", 1)}
    assert client.get("/products/orders/draft-product/").status_code == 200
    client.force_login(mesh.consumer)
    assert client.get("/products/orders/draft-product/").status_code == 404
    assert not ProductView.objects.filter(user=mesh.consumer, product__slug="draft-product")


def test_recording_a_view_is_one_statement(client, mesh, django_assert_num_queries):
    product = mesh.products[("orders", "published")]
    services.product_view_record(product=product, user=mesh.consumer)
    with django_assert_num_queries(1):
        services.product_view_record(product=product, user=mesh.consumer)
    assert ProductView.objects.get().views == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_view_counted_outside_a_transaction_leaves_the_next_writes_durable(mesh):
    """On PostgreSQL a page view commits without waiting for the disk; the setting is the
    count's own: the connection's next transaction commits durably again."""
    from django.db import connection

    product = mesh.products[("orders", "published")]
    for _ in range(2):
        services.product_view_record(product=product, user=mesh.consumer)
    assert ProductView.objects.get(user=mesh.consumer).views == 2
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"


def test_searches_are_counted_per_query_with_no_result(client, mesh):
    client.force_login(mesh.consumer)
    client.get("/search/", {"q": "Orders  Published"})
    client.get("/search/", {"q": "orders published", "sort": "name"})  # the same: once
    client.get("/search/", {"q": "orders published", "page": "2"})
    client.get("/search/", {"q": "zebra"})
    client.get("/search/")  # browsing: no search
    assert _searches() == {"orders published": (1, 0), "zebra": (1, 1)}
    client.force_login(mesh.owner)
    client.get("/search/", {"q": "zebra"})
    assert _searches()["zebra"] == (2, 2)


def test_search_as_you_type_counts_the_query_once(client, mesh):
    client.force_login(mesh.consumer)
    for typed in ("ord", "order", "orders"):
        client.get("/search/", {"q": typed}, HTTP_HX_REQUEST="true")
    client.get("/search/", {"q": "zzz"}, HTTP_HX_REQUEST="true")
    assert _searches() == {"orders": (1, 0), "zzz": (1, 1)}


def test_a_search_typed_later_is_a_new_search(mesh):
    now = timezone.now().replace(hour=12)
    last = services.search_record(query="ord", found=True, now=now)
    services.search_record(query="orders", found=True, last=last, now=now + timedelta(minutes=5))
    assert _searches() == {"ord": (1, 0), "orders": (1, 0)}


def test_retention(mesh, settings):
    settings.MESH_ANALYTICS_RETENTION_DAYS = 10
    product = mesh.products[("orders", "published")]
    now = timezone.now()
    services.product_view_record(product=product, user=mesh.consumer, now=now - timedelta(days=11))
    services.product_view_record(product=product, user=mesh.consumer, now=now)
    services.search_record(query="old", found=True, now=now - timedelta(days=11))
    services.search_record(query="new", found=False, now=now)
    assert services.analytics_purge() == 2
    assert [v.day for v in ProductView.objects.all()] == [now.date()]
    assert _searches() == {"new": (1, 1)}


@pytest.fixture
def recorded(mesh, client):
    """Three people open orders' product, one opens users'; searches with and without results."""
    for who, url in (
        (mesh.consumer, ORDERS),
        (mesh.approved, ORDERS),
        (mesh.owner, ORDERS),
        (mesh.owner, "/products/users/published-product/"),
    ):
        client.force_login(who)
        client.get(url)
    for who, q in ((mesh.consumer, "orders"), (mesh.approved, "orders"), (mesh.owner, "unicorn")):
        client.force_login(who)
        client.get("/search/", {"q": q})
    return mesh


def test_platform_sees_views_searches_and_charts(recorded, client, django_assert_max_num_queries):
    client.force_login(recorded.staff)
    with django_assert_max_num_queries(24) as small:
        page = client.get("/analytics/").text
    viewed = page.split(">Most viewed (product pages)<")[1].split("</ol>")[0]
    assert viewed.index("Orders published") < viewed.index("Users published")
    assert "3 views, 3 people" in viewed
    top = page.split('id="top-searches"')[1].split("</table>")[0]
    assert "<td>orders</td><td>2</td><td>0</td>" in top
    empty = page.split('id="empty-searches"')[1].split("</table>")[0]
    assert "<td>unicorn</td><td>1</td>" in empty and "orders" not in empty
    for chart in ("chart-people", "chart-searches", "chart-access"):
        assert f'id="{chart}"' in page
    assert "(the table below has the figures)" in page
    # more people, products and searches: the same number of queries
    for i in range(5):
        services.search_record(query=f"q{i}", found=bool(i % 2))
        services.product_view_record(
            product=recorded.products[("users", "deprecated")], user=recorded.council
        )
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert client.get("/analytics/").status_code == 200


def test_the_api_gives_the_figures_to_the_platform_only(recorded):
    r = bearer(recorded.staff).get("/api/v1/usage/analytics/")
    assert r.status_code == 200
    data = r.json()
    assert data["top_products"]["viewed"][0] == {
        "product": "orders/published-product",
        "name": "Orders published",
        "views": 3,
        "viewers": 3,
    }
    assert data["searches"]["no_result"] == [{"query": "unicorn", "searches": 1}]
    assert data["searches"]["total"] == 3
    assert data["people"]["viewers_30_days"] == 3
    for who in (recorded.owner, recorded.council, recorded.consumer):
        r = session(who).get("/api/v1/usage/analytics/")
        assert r.status_code == 403
        assert "platform team" in r.json()["detail"]


@pytest.mark.parametrize("who", ["owner", "council", "consumer"])
def test_others_are_refused_the_page(recorded, client, who):
    client.force_login(getattr(recorded, who))
    r = client.get("/analytics/")
    assert r.status_code == 403 and "unicorn" not in r.text


@pytest.mark.browser
def test_analytics_and_observed_maps_pass_axe(open_page, recorded):  # noqa: F811
    """The analytics page (its charts and tables), and the mesh map and Lineage tab with
    observed edges: no serious or critical axe-core violation, and the page fits a phone."""
    from tests.test_browser import sign_in
    from tests.test_browser_design import axe_problems

    page = open_page(viewport={"width": 390, "height": 844})
    sign_in(page, "staff")
    problems = []
    for url in ("/analytics/", "/lineage/mesh/?observed=1", f"{ORDERS}?tab=lineage&observed=1"):
        page.goto(url)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{url} is {width} px wide on a 390-px phone"
        problems += axe_problems(page)
    assert problems == []
