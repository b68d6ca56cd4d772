"""The lineage pages: bounded query counts and the browser graph (the demo story:
test_demo.py)."""

import os

import pytest

from products.lineage import services as lineage_services
from products.models import DataProduct, Watch
from tests.lineage.conftest import make_product

pytestmark = pytest.mark.django_db


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
