"""Observed edges (`?observed=1`) in impact analysis (the impact page, its JSON, the Lineage
tab's checkbox, the deprecate page) and on the mesh map; a draft the user may not see is never
in the answer.

    orders/published ──(observed: svc_users writes crm.users from sales.orders)──▶ users/published
    users/published ──(declared)──▶ users/deprecated
    orders/published ──(observed)──▶ users/draft (the users team's draft) ──(declared)──▶ orders/f
"""

import pytest

from products.lineage import graph as lineage
from products.lineage import services as lineage_services
from products.models import OutputPort
from tests.lineage.conftest import make_product
from tests.test_browser import browser, page, sign_in  # noqa: F401  (shared browser fixtures)
from tests.usage.conftest import INGEST, bearer, event

pytestmark = pytest.mark.django_db

ORDERS = "/products/orders/published-product"


@pytest.fixture
def observed(usage_mesh):
    m = usage_mesh
    m.users_draft = m.products[("users", "draft")]
    OutputPort.objects.filter(product=m.users_draft).update(
        data_source=m.source, location="crm.drafts"
    )
    m.users_deprecated = m.products[("users", "deprecated")]
    lineage_services.input_port_create(
        product=m.users_deprecated, by=m.other_owner, source_port=m.users_product.ports.get()
    )
    m.f = make_product(m.orders, "f")
    lineage_services.input_port_create(
        product=m.f, by=m.staff, source_port=m.users_draft.ports.get()
    )
    batch = {
        "events": [
            event("svc_users", "INSERT INTO crm.users SELECT * FROM sales.orders"),
            event("svc_users", "INSERT INTO crm.drafts SELECT order_id FROM sales.orders"),
        ]
    }
    assert bearer(m.staff).post(INGEST, batch, format="json").status_code == 201
    return m


def _labels(result) -> dict[str, tuple[list[str], bool]]:
    return {i.label: (i.path, i.observed) for i in result.items}


def test_declared_only_by_default(observed):
    m = observed
    assert lineage.impact(user=m.staff, product=m.orders_product).items == []


def test_observed_edges_reach_and_are_marked(observed):
    m = observed
    got = _labels(lineage.impact(user=m.staff, product=m.orders_product, observed=True))
    assert got == {
        "users/published-product": (["orders/published-product", "users/published-product"], True),
        "users/draft-product": (["orders/published-product", "users/draft-product"], True),
        "users/deprecated-product": (
            ["orders/published-product", "users/published-product", "users/deprecated-product"],
            True,
        ),
        "orders/f": (["orders/published-product", "users/draft-product", "orders/f"], True),
    }


def test_a_declared_path_wins_and_is_not_marked(observed):
    m = observed
    lineage_services.input_port_create(
        product=m.users_product, by=m.other_owner, source_port=m.orders_product.ports.get()
    )
    got = _labels(lineage.impact(user=m.staff, product=m.orders_product, observed=True))
    assert got["users/published-product"] == (
        ["orders/published-product", "users/published-product"],
        False,
    )
    assert got["users/deprecated-product"][1] is False
    assert got["users/draft-product"][1] is True


def test_a_hidden_draft_is_answered_as_if_it_did_not_exist(observed, client):
    m = observed
    client.force_login(m.consumer)
    data = client.get(f"{ORDERS}/lineage/impact.json?observed=1").json()
    assert data["observed_included"] is True
    assert {p["product"]: p["observed"] for p in data["products"]} == {
        "users/published-product": True,
        "users/deprecated-product": True,
    }  # no users draft, and no orders/f, reached only through it
    html = client.get(f"{ORDERS}/lineage/impact/?observed=1").text
    assert "users/draft-product" not in html and "Users draft" not in html
    assert "orders/f" not in html
    # its own team sees it
    client.force_login(m.other_owner)
    data = client.get(f"{ORDERS}/lineage/impact.json?observed=1").json()
    assert {"users/draft-product", "orders/f"} <= {p["product"] for p in data["products"]}


def test_the_impact_page_has_the_checkbox_and_marks_observed(observed, client):
    client.force_login(observed.consumer)
    html = client.get(f"{ORDERS}/lineage/impact/").text
    assert 'name="observed"' in html and "No product depends on" in html
    html = client.get(f"{ORDERS}/lineage/impact/?observed=1").text
    row = html.split(">Users published</a>")[1].split("</tr>")[0]
    assert ">observed<" in row
    assert 'id="impact-observed" checked' in html


def test_the_lineage_tab_asks_for_observed_impact(observed, client):
    client.force_login(observed.consumer)
    html = client.get(f"{ORDERS}/?tab=lineage&observed=1").text
    assert f'hx-get="{ORDERS}/lineage/impact/?observed=1"' in html
    assert "Include dependencies observed in query logs" in html
    html = client.get(f"{ORDERS}/?tab=lineage").text
    assert f'hx-get="{ORDERS}/lineage/impact/"' in html


def test_port_impact_follows_observed_edges_of_that_port_only(observed):
    m = observed
    from products import services

    extra = services.port_create(product=m.orders_product, slug="extra", name="Extra", kind="table")
    result = lineage.impact(user=m.staff, product=m.orders_product, port=extra, observed=True)
    assert result.items == []
    main = m.orders_product.ports.get(slug="main")
    result = lineage.impact(user=m.staff, product=m.orders_product, port=main, observed=True)
    assert "users/published-product" in _labels(result)


def test_the_deprecate_page_lists_observed_consumers_when_asked(observed, client):
    client.force_login(observed.owner)
    html = client.get(f"{ORDERS}/deprecate/").text
    assert "Include dependencies observed in query logs" in html
    assert "users/published-product" not in html
    html = client.get(f"{ORDERS}/deprecate/?observed=1").text
    assert "users/published-product" in html and ">observed<" in html


def _observed_weights(data) -> dict[tuple[str, str], int]:
    names = {n["id"]: n["slug"] for n in data["nodes"]}
    return {(names[e["source"]], names[e["target"]]): e["weight"] for e in data["observed_edges"]}


def test_mesh_map_adds_undeclared_observed_dependencies_visible_to_the_user(observed, client):
    client.force_login(observed.consumer)
    assert "observed_edges" not in client.get("/lineage/mesh.json").json()
    data = client.get("/lineage/mesh.json?observed=1").json()
    assert _observed_weights(data) == {("orders", "users"): 1}  # not the users team's draft
    client.force_login(observed.other_owner)
    data = client.get("/lineage/mesh.json?observed=1").json()
    assert _observed_weights(data) == {("orders", "users"): 2}


def test_a_declared_dependency_is_not_drawn_again_as_observed(observed, client):
    m = observed
    lineage_services.input_port_create(
        product=m.users_product, by=m.other_owner, source_port=m.orders_product.ports.get()
    )
    client.force_login(m.consumer)
    data = client.get("/lineage/mesh.json?observed=1").json()
    assert _observed_weights(data) == {}
    assert [(e["source"], e["target"]) for e in data["edges"]] == [
        (f"d{m.orders.pk}", f"d{m.users.pk}")
    ]


def test_mesh_page_toggle_legend_and_table(observed, client, django_assert_max_num_queries):
    client.force_login(observed.consumer)
    html = client.get("/lineage/mesh/").text
    assert 'id="mesh-observed"' in html and "observed, not declared" not in html
    assert 'data-url="/lineage/mesh.json"' in html
    with django_assert_max_num_queries(14):
        html = client.get("/lineage/mesh/?observed=1").text
    assert 'data-url="/lineage/mesh.json?observed=1"' in html
    assert "dotted: observed in the warehouses' query logs, not declared" in html
    table = html.split('id="mesh-dependencies"')[1].split("</table>")[0]
    assert "<td>Orders</td><td>Users</td><td>1</td>" in table and "observed, not declared" in table


def test_the_lineage_graph_adds_observed_edges_when_asked(observed, client):
    m = observed
    client.force_login(m.consumer)
    data = client.get(f"{ORDERS}/lineage/graph.json").json()
    assert data["edges"] == [] and [n["key"] for n in data["nodes"]] == ["orders/published-product"]
    data = client.get(f"{ORDERS}/lineage/graph.json?observed=1&depth=2").json()
    key = {n["id"]: n["key"] for n in data["nodes"]}
    edges = {(key[e["source"]], key[e["target"]]): e["observed"] for e in data["edges"]}
    assert edges == {
        ("orders/published-product", "users/published-product"): True,
        ("users/published-product", "users/deprecated-product"): False,
    }  # not the users team's draft, nor orders/f behind it
    client.force_login(m.other_owner)
    data = client.get(f"{ORDERS}/lineage/graph.json?observed=1&depth=2").json()
    assert {"users/draft-product", "orders/f"} <= {n["key"] for n in data["nodes"]}
    html = client.get(f"{ORDERS}/?tab=lineage&observed=1").text
    assert "graph.json?depth=2&amp;observed=1" in html
    assert "dotted blue edges are observed" in html


@pytest.mark.browser
def test_browser_draws_observed_dependencies_dotted(page, observed):  # noqa: F811
    sign_in(page, "consumer")
    page.goto("/lineage/mesh/")
    page.wait_for_selector("#mesh-graph[data-ready=true]")
    assert page.evaluate("window.meshGraph.edges().length") == 0
    page.check("#mesh-observed")
    page.click("form:has(#mesh-observed) button[type=submit]")
    page.wait_for_url("**/lineage/mesh/?observed=1")
    page.wait_for_selector("#mesh-graph[data-ready=true]")
    styles = page.evaluate(
        "window.meshGraph.edges('.observed').map(e => [e.data('weight'), e.style('line-style')])"
    )
    assert styles == [[1, "dotted"]]
    page.goto(f"{ORDERS}/?tab=lineage&observed=1")
    page.wait_for_selector("#lineage-graph[data-ready=true]")
    styles = page.evaluate(
        "window.meshGraph.edges('.observed').map(e => [e.target().data('key'), e.style('line-style')])"
    )
    assert styles == [["users/published-product", "dotted"]]


def test_the_assistants_lineage_tool_follows_observed_edges_when_asked(observed):
    """MCP `lineage` (agents.tools): declared only by default; with `observed`, the observed
    dependencies and what they reach, marked, and never a draft the person may not see."""
    from agents import tools

    m = observed
    urn = m.orders_product.urn
    plain = tools.lineage(m.consumer, urn=urn)
    assert plain["impact"]["products"] == [] and plain["downstream"] == []
    seen = tools.lineage(m.consumer, urn=urn, observed=True)
    impact = {p["urn"]: p["observed"] for p in seen["impact"]["products"]}
    assert impact == {m.users_product.urn: True, m.users_deprecated.urn: True}
    assert {(e["to"], e["observed"]) for e in seen["edges"]} >= {(m.users_product.urn, True)}
    assert m.users_draft.urn not in str(seen) and m.f.urn not in str(seen)
    mine = tools.lineage(m.other_owner, urn=urn, observed=True)
    assert m.users_draft.urn in {p["urn"] for p in mine["impact"]["products"]}
