"""Impact analysis and graph JSON on a known graph:

orders/a ──▶ orders/b ──▶ users/c ──▶ users/d (draft, users team only)
    └──(port main)──▶ users/e ──▶ orders/f

A product the user may not see (users/d for the orders team) is not in any answer: the answers
are those the user would get if it did not exist.
"""

import json

import pytest

from products.extensions import ProductExtension
from products.lineage import graph as lineage
from products.lineage import services as lineage_services
from tests.lineage.conftest import make_product

pytestmark = pytest.mark.django_db


@pytest.fixture
def graph(mesh):
    g = {
        "a": make_product(mesh.orders, "a"),
        "b": make_product(mesh.orders, "b"),
        "c": make_product(mesh.users, "c", team=mesh.users_team),
        "d": make_product(mesh.users, "d", status="draft", team=mesh.users_team),
        "e": make_product(mesh.users, "e", team=mesh.users_team),
        "f": make_product(mesh.orders, "f"),
    }
    from products import services

    extra = services.port_create(product=g["a"], slug="extra", name="Extra", kind="table")
    g["extra"] = extra
    for dst, src, by in [
        ("b", "a", mesh.owner),
        ("c", "b", mesh.other_owner),
        ("d", "c", mesh.other_owner),
        ("e", "a", mesh.other_owner),
        ("f", "e", mesh.owner),
    ]:
        lineage_services.input_port_create(
            product=g[dst], by=by, source_port=g[src].ports.get(slug="main")
        )
    lineage_services.input_port_create(product=g["b"], by=mesh.owner, source_port=extra)
    return g


def test_transitive_impact_exact_set_with_paths_for_the_staff(mesh, graph):
    result = lineage.impact(user=mesh.staff, product=graph["a"])
    got = {i.label: i.path for i in result.items}
    assert got == {
        "orders/b": ["orders/a", "orders/b"],
        "users/e": ["orders/a", "users/e"],
        "users/c": ["orders/a", "orders/b", "users/c"],
        "orders/f": ["orders/a", "users/e", "orders/f"],
        "users/d": ["orders/a", "orders/b", "users/c", "users/d"],
    }
    assert result.teams == {"Orders Team": ["owner"], "Users Team": ["other_owner"]}


def _without_d(graph):
    """Forget users/d's input: the graph as it would be if the draft did not exist."""
    graph["d"].input_ports.all().delete()


def test_impact_leaves_out_drafts_the_user_may_not_see(mesh, graph):
    result = lineage.impact(user=mesh.owner, product=graph["a"])
    assert [i.label for i in result.items] == ["orders/b", "users/e", "orders/f", "users/c"]
    assert "users/d" not in json.dumps(result.as_json())
    _without_d(graph)
    assert lineage.impact(user=mesh.owner, product=graph["a"]).as_json() == result.as_json()


def test_impact_does_not_walk_through_a_hidden_draft(mesh, graph):
    """users/g (published) reads the hidden draft users/d: to the orders team it is not
    downstream of orders/a, as it would not be without the draft."""
    g = make_product(mesh.users, "g", team=mesh.users_team)
    lineage_services.input_port_create(
        product=g, by=mesh.other_owner, source_port=graph["d"].ports.get(slug="main")
    )
    assert "users/g" in {i.label for i in lineage.impact(user=mesh.staff, product=graph["a"]).items}
    assert "users/g" not in {
        i.label for i in lineage.impact(user=mesh.owner, product=graph["a"]).items
    }


def test_port_and_field_impact_follow_only_that_port(mesh, graph):
    port = graph["a"].ports.get(slug="main")
    via_main = lineage.impact(user=mesh.staff, product=graph["a"], port=port)
    assert {i.label for i in via_main.items} == {
        "orders/b",
        "users/c",
        "users/d",
        "users/e",
        "orders/f",
    }
    via_extra = lineage.impact(user=mesh.staff, product=graph["a"], port=graph["extra"])
    assert {i.label: i.path for i in via_extra.items} == {
        "orders/b": ["orders/a", "orders/b"],
        "users/c": ["orders/a", "orders/b", "users/c"],
        "users/d": ["orders/a", "orders/b", "users/c", "users/d"],
    }
    field = port.fields.get(name="amount")
    by_field = lineage.impact(user=mesh.staff, product=graph["a"], field=field)
    assert by_field.subject == "orders/a port main field amount"
    assert {i.label for i in by_field.items} == {i.label for i in via_main.items}


def test_impact_json_endpoint(client, mesh, graph):
    client.force_login(mesh.consumer)
    data = client.get("/products/orders/a/lineage/impact.json?port=extra").json()
    assert [(p["product"], p["team"], p["owners"], p["path"]) for p in data["products"]] == [
        ("orders/b", "Orders Team", ["owner"], ["orders/a", "orders/b"]),
        ("users/c", "Users Team", ["other_owner"], ["orders/a", "orders/b", "users/c"]),
    ]
    _without_d(graph)
    assert client.get("/products/orders/a/lineage/impact.json?port=extra").json() == data
    r = client.get("/products/orders/a/lineage/impact.json?port=main&field=amount")
    assert len(r.json()["products"]) == 4
    assert client.get("/products/orders/a/lineage/impact.json?port=nope").status_code == 404


def test_graph_json_depth_and_redaction(client, mesh, graph):
    client.force_login(mesh.owner)
    data = client.get("/products/users/c/lineage/graph.json?depth=1").json()
    keys = {n.get("key") for n in data["nodes"]}
    assert keys == {"users/c", "orders/b"}  # not the hidden draft d, not even as a placeholder
    assert "draft" not in json.dumps(data) and f"p{graph['d'].pk}" not in json.dumps(data)
    deeper = client.get("/products/users/c/lineage/graph.json?depth=2").json()
    assert {n.get("key") for n in deeper["nodes"]} == {"users/c", "orders/b", "orders/a"}
    root = next(n for n in deeper["nodes"] if n.get("root"))
    assert root["domain"] == "users" and root["url"] == "/products/users/c/"
    assert {g["id"] for g in deeper["groups"]} == {"d-orders", "d-users"}
    client.force_login(mesh.other_owner)
    data = client.get("/products/users/c/lineage/graph.json?depth=1").json()
    assert {n.get("key") for n in data["nodes"]} == {"users/c", "orders/b", "users/d"}
    client.force_login(mesh.owner)
    with_d = client.get("/products/users/c/lineage/graph.json?depth=2").content
    _without_d(graph)
    assert client.get("/products/users/c/lineage/graph.json?depth=2").content == with_d


class PassingBadges(ProductExtension):
    def node_badges(self, products):
        return {p.pk: {"label": "passing"} for p in products}


def test_an_extensions_badges_reach_the_nodes(client, mesh, graph, settings):
    settings.PRODUCT_EXTENSIONS = [*settings.PRODUCT_EXTENSIONS, f"{__name__}.PassingBadges"]
    client.force_login(mesh.owner)
    data = client.get("/products/orders/a/lineage/graph.json?depth=1").json()
    assert {n["badge"]["label"] for n in data["nodes"]} == {"passing"}


def test_mesh_map_weights_cross_domain_dependencies(client, mesh, graph):
    client.force_login(mesh.consumer)
    data = client.get("/lineage/mesh.json").json()
    by_id = {n["id"]: n for n in data["nodes"]}
    edges = {
        (by_id[e["source"]]["slug"], by_id[e["target"]]["slug"]): e["weight"] for e in data["edges"]
    }
    # b→c and a→e go orders→users; e→f goes back. c→d is inside users (and d is hidden).
    assert edges == {("orders", "users"): 2, ("users", "orders"): 1}
    assert by_id[f"d{mesh.orders.pk}"]["url"] == "/domains/orders/"
    page = client.get("/lineage/mesh/")
    assert page.status_code == 200 and 'id="mesh-graph"' in page.text


def _mesh_reference(user):
    """The mesh map by definition: visible products per domain, and distinct pairs of visible
    products in different domains per pair of domains."""
    from collections import Counter

    from meshportal.permissions import visible
    from products.models import DataProduct, InputPort

    domain_of = dict(visible(user, DataProduct.objects.all()).values_list("pk", "domain_id"))
    pairs = {
        (s, d)
        for s, d in InputPort.objects.filter(source_product__isnull=False).values_list(
            "source_product_id", "product_id"
        )
        if s in domain_of and d in domain_of and domain_of[s] != domain_of[d]
    }
    weights = Counter((f"d{domain_of[s]}", f"d{domain_of[d]}") for s, d in pairs)
    return dict(Counter(domain_of.values())), dict(weights)


def _mesh_got(user):
    data = lineage.mesh_map(user=user)
    counts = {int(n["id"][1:]): n["products"] for n in data["nodes"] if n["products"]}
    return counts, {(e["source"], e["target"]): e["weight"] for e in data["edges"]}


@pytest.mark.parametrize("cached", [False, True], ids=["no cache", "redis cache"])
def test_mesh_map_is_right_for_everyone_before_and_after_changes(
    mesh, graph, request, cached, django_capture_on_commit_callbacks
):
    from products import services

    cache = request.getfixturevalue("shared_cache") if cached else None
    people = [mesh.consumer, mesh.owner, mesh.other_owner, mesh.staff]

    def check():
        for user in people * 2:  # the second round reads the cache
            assert _mesh_got(user) == _mesh_reference(user), user.username

    check()
    if cached:
        assert cache.get(lineage._mesh_cache_key()) is not None
    with django_capture_on_commit_callbacks(execute=True):  # a new cross-domain edge
        lineage_services.input_port_create(
            product=graph["f"], by=mesh.owner, source_port=graph["c"].ports.get()
        )
    check()
    with django_capture_on_commit_callbacks(execute=True):  # the draft d goes public
        services.product_publish(product=graph["d"])
    check()
