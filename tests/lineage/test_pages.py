"""The lineage pages: the demo story, bounded query counts, and the browser graph."""

import os

import pytest
from django.contrib.auth import get_user_model

from products import services
from products.contracts import services as contracts
from products.lineage import services as lineage_services
from products.models import DataProduct, InputPort, Watch
from tests.lineage.conftest import make_product

pytestmark = pytest.mark.django_db


def test_demo_orders_owner_sees_downstream_products_and_owners(client, demo):
    User = get_user_model()
    client.force_login(User.objects.get(username="olivia"))
    tab = client.get("/products/orders/orders/?tab=lineage").text
    assert 'hx-get="/products/orders/orders/lineage/impact/"' in tab  # loaded after the tab
    page = client.get("/products/orders/orders/lineage/impact/", HTTP_HX_REQUEST="true").text
    for name in ("Campaign Attribution", "Customer 360", "Daily Revenue"):
        assert name in page
    # Their teams and owners, in other domains.
    assert "Web Analytics" in page or "traffic" in page
    assert "tariq" in page and "mia" in page
    carl = User.objects.get(username="carl")
    assert Watch.objects.filter(user=carl, product__slug="orders").exists()
    impact = client.get("/products/orders/orders/lineage/impact.json").json()
    labels = {p["product"] for p in impact["products"]}
    assert {
        "traffic/campaign-attribution",
        "marketing/customer-360",
        "orders/daily-revenue",
        "marketing/email-campaigns",
    } <= labels
    # The demo edges from confidential sources are approved: their owners hold grants.
    assert not InputPort.objects.filter(approved=False).exists()


def test_demo_lineage_seed_is_idempotent(demo):
    from demo import lineage as lineage_demo

    before = (InputPort.objects.count(), Watch.objects.count())
    assert lineage_demo.seed() == 0
    assert (InputPort.objects.count(), Watch.objects.count()) == before


def _chain(mesh, n):
    """A fan of n products consuming orders/published-product, each with one more consumer."""
    root = mesh.products[("orders", "published")]
    for i in range(n):
        p = make_product(mesh.orders, f"fan-{i}")
        lineage_services.input_port_create(product=p, by=mesh.owner, source_port=root.ports.get())
        q = make_product(
            mesh.users, f"leaf-{i}", team=mesh.users_team, status="draft" if i % 2 else "published"
        )
        lineage_services.input_port_create(
            product=q, by=mesh.other_owner, source_port=p.ports.get()
        )
        Watch.objects.create(user=mesh.consumer, product=p)
    return root


@pytest.mark.parametrize("n", [2, 12])
def test_lineage_pages_query_count_bounded(client, mesh, n, django_assert_max_num_queries):
    _chain(mesh, n)
    client.force_login(mesh.owner)
    with django_assert_max_num_queries(15):
        r = client.get("/products/orders/published-product/?tab=lineage")
    assert r.status_code == 200 and "fan-1" in r.text
    with django_assert_max_num_queries(15):
        r = client.get("/products/orders/published-product/lineage/impact/")
    assert r.status_code == 200 and "fan-1" in r.text
    # Session, user, the product (4), the walk (one query per hop on SQLite), nodes (3).
    with django_assert_max_num_queries(16):
        data = client.get("/products/orders/published-product/lineage/graph.json?depth=3").json()
    assert len(data["nodes"]) == 1 + n + (n + 1) // 2  # not the users team's draft leaves
    with django_assert_max_num_queries(16):
        assert (
            len(
                client.get("/products/orders/published-product/lineage/impact.json").json()[
                    "products"
                ]
            )
            == n + (n + 1) // 2
        )
    with django_assert_max_num_queries(12):
        assert client.get("/lineage/mesh.json").status_code == 200
    with django_assert_max_num_queries(12):
        assert client.get("/notifications/preferences/").status_code == 200


@pytest.mark.browser
def test_browser_opens_lineage_graph_and_clicks_a_node(live_server, transactional_db):
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    from tests.factories import PASSWORD, build_mesh

    mesh = build_mesh()
    src = mesh.products[("users", "published")]
    lineage_services.input_port_create(
        product=mesh.products[("orders", "published")], by=mesh.owner, source_port=src.ports.get()
    )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            page = browser.new_page()
            page.goto(f"{live_server.url}/login/")
            page.fill("input[name=username]", "owner")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.goto(f"{live_server.url}/products/orders/published-product/?tab=lineage")
            page.wait_for_selector("#lineage-graph[data-ready=true]", timeout=15000)
            # The impact table arrives after the tab (htmx): let the page settle before clicking.
            page.wait_for_selector("section[aria-label='Downstream impact']:not([hx-get])")
            labels = page.evaluate(
                "window.meshGraph.nodes('.product').map(n => n.data('label')).sort()"
            )
            assert labels == ["Orders published", "Users published"]
            page.locator("#lineage-graph").scroll_into_view_if_needed()
            target = f"{live_server.url}/products/users/published-product/"
            # Click where the node is once the graph has settled: its place on the page the same
            # in two consecutive animation frames (a late re-fit or a shifting layout moves it).
            where = (
                "() => { const n = window.meshGraph.nodes('.product')"
                ".filter(n => n.data('key') === 'users/published-product')[0];"
                " const p = n.renderedPosition();"
                " const b = document.getElementById('lineage-graph').getBoundingClientRect();"
                " return [b.x + p.x, b.y + p.y]; }"
            )
            page.wait_for_function(
                f"""() => new Promise(done => {{
                    const where = {where};
                    const first = where();
                    requestAnimationFrame(() => requestAnimationFrame(() => {{
                        const second = where();
                        done(first[0] === second[0] && first[1] === second[1]);
                    }}));
                }})"""
            )
            x, y = page.evaluate(f"({where})()")
            page.mouse.click(x, y)
            page.wait_for_url(target, timeout=15000)
            assert page.url == target
            assert page.locator("h1").first.inner_text().startswith("Users published")
            page.goto(f"{live_server.url}/lineage/mesh/")
            page.wait_for_selector("#mesh-graph[data-ready=true]", timeout=15000)
            assert page.evaluate("window.meshGraph.edges().map(e => e.data('weight'))") == [1]
        finally:
            browser.close()
    assert DataProduct.objects.count() == 6


def test_demo_deprecation_reaches_watchers_and_downstream_owners(client, demo, eager_tasks):
    """Issue 8's "Done means": Olivia sees who depends on Orders, announces a new major
    version and then a deprecation; watchers and downstream owners find both in their
    notification centre (unread count in the navigation) and in their mail."""
    from django.core import mail

    from meshportal.models import Notification

    User = get_user_model()
    client.force_login(User.objects.get(username="olivia"))
    lineage_tab = client.get("/products/orders/orders/lineage/impact/").text  # no-JS page
    assert "Campaign Attribution" in lineage_tab and "Customer 360" in lineage_tab
    assert "tariq" in lineage_tab and "mia" in lineage_tab
    Notification.objects.all().delete()
    mail.outbox.clear()
    orders = DataProduct.objects.get(slug="orders")
    version = f"{contracts.major(orders.version) + 1}.0.0"
    with eager_tasks(execute=True):
        services.product_update(product=orders, version=version)
    confirm = client.get("/products/orders/orders/deprecate/").text
    assert "Customer 360" in confirm and "Campaign Attribution" in confirm
    with eager_tasks(execute=True):
        r = client.post(
            "/products/orders/orders/deprecate/", {"sunset_date": "2099-01-01"}, follow=True
        )
    assert "deprecated" in r.text
    for username in ("carl", "tariq", "mia"):
        client.force_login(User.objects.get(username=username))
        page = client.get("/notifications/").text
        assert "Orders is deprecated" in page, username
        assert "retired on 2099-01-01" in page
        assert f"Orders: new major contract version {version}" in page, username
        assert 'aria-label="2 unread"' in page, username
        address = User.objects.get(username=username).email
        subjects = [m.subject for m in mail.outbox if address in m.to]
        assert "[Mesh Portal] Orders is deprecated" in subjects, username
    assert Notification.objects.filter(kind="deprecation", user__username="uma").count() == 0
