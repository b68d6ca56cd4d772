import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from meshportal.permissions import clear_caches
from products.lineage import graph as lineage
from products.lineage import services as lineage_services
from products.models import InputPort
from tests.lineage.conftest import make_product

pytestmark = pytest.mark.django_db


def _consume(consumer, source, by):
    return lineage_services.input_port_create(
        product=consumer, by=by, source_port=source.ports.get()
    )


def test_declared_input_shows_on_both_product_pages(client, mesh):
    source = mesh.products[("users", "published")]
    consumer = mesh.products[("orders", "published")]
    client.force_login(mesh.owner)
    r = client.post(
        "/products/orders/published-product/lineage/inputs/add/",
        {"source": "users/published-product/main"},
        follow=True,
    )
    assert "now consumes" in r.text
    assert InputPort.objects.get(product=consumer).source_product == source
    page = client.get("/products/orders/published-product/?tab=lineage").text
    assert "Consumes" in page and "users/published-product/main" in page
    client.force_login(mesh.other_owner)
    page = client.get("/products/users/published-product/?tab=lineage").text
    assert "Orders published" in page and "reads main" in page


def test_external_source_input(mesh):
    inp = lineage_services.input_port_create(
        product=mesh.products[("orders", "published")],
        by=mesh.owner,
        external_name="Salesforce CRM",
        external_kind="saas",
    )
    assert inp.source_product is None and inp.approved
    assert str(inp).endswith("Salesforce CRM")


def test_self_loop_refused_naming_it(mesh):
    p = mesh.products[("orders", "published")]
    with pytest.raises(ValidationError) as e:
        _consume(p, p, mesh.owner)
    assert "published-product → published-product" in str(e.value)
    assert not InputPort.objects.exists()


def test_cycle_refused_naming_the_cycle(mesh):
    a = make_product(mesh.orders, "orders-x")
    b = make_product(mesh.orders, "customer-360")
    c = make_product(mesh.orders, "churn")
    _consume(b, a, mesh.owner)  # a → b
    _consume(c, b, mesh.owner)  # b → c
    with pytest.raises(ValidationError) as e:
        _consume(a, c, mesh.owner)  # c → a closes a → b → c → a
    assert "cycle: churn → orders-x → customer-360 → churn" in str(e.value)
    assert InputPort.objects.count() == 2


def test_cycle_refused_through_the_page_with_message(client, mesh):
    a = make_product(mesh.orders, "orders-x")
    b = make_product(mesh.orders, "customer-360")
    _consume(b, a, mesh.owner)
    client.force_login(mesh.owner)
    r = client.post(
        "/products/orders/orders-x/lineage/inputs/add/", {"source": "orders/customer-360/main"}
    )
    assert r.status_code == 200
    assert "customer-360 → orders-x → customer-360" in r.text


def test_duplicate_input_refused(mesh):
    src, dst = mesh.products[("users", "published")], mesh.products[("orders", "published")]
    _consume(dst, src, mesh.owner)
    with pytest.raises(ValidationError, match="already consumes"):
        _consume(dst, src, mesh.owner)


def test_restricted_source_without_access_is_unapproved_with_warning(client, mesh):
    make_product(mesh.users, "secrets", classification="restricted", team=mesh.users_team)
    client.force_login(mesh.owner)
    r = client.post(
        "/products/orders/published-product/lineage/inputs/add/",
        {"source": "users/secrets/main"},
        follow=True,
    )
    assert "marked unapproved" in r.text
    inp = InputPort.objects.get()
    assert inp.approved is False
    graph = client.get("/products/orders/published-product/lineage/graph.json").json()
    assert [e["approved"] for e in graph["edges"]] == [False]
    assert (
        'badge text-bg-warning">unapproved'
        in client.get("/products/orders/published-product/?tab=lineage").text
    )
    # Once the team's access is approved, the input counts.
    from products import services

    req = services.access_request_create(
        product=inp.source_product,
        requester=mesh.member,
        purpose="feeds orders",
        team=mesh.orders_team,
    )
    services.access_request_approve(request=req, by=mesh.other_owner)
    inp.refresh_from_db()
    assert inp.approved is True
    assert (
        'badge text-bg-warning">unapproved'
        not in client.get("/products/orders/published-product/?tab=lineage").text
    )


def test_restricted_source_with_approved_access_is_approved(mesh):
    from products import services

    secrets = make_product(mesh.users, "secrets", classification="restricted")
    req = services.access_request_create(product=secrets, requester=mesh.owner, purpose="feed")
    services.access_request_approve(request=req, by=mesh.other_owner)
    clear_caches(mesh.owner)  # a new request would start with an empty permission cache
    inp = _consume(mesh.products[("orders", "published")], secrets, mesh.owner)
    assert inp.approved is True


def test_invisible_draft_port_cannot_be_named(client, mesh):
    client.force_login(mesh.owner)
    r = client.post(
        "/products/orders/published-product/lineage/inputs/add/",
        {"source": "users/draft-product/main"},
    )
    assert "No output port users/draft-product/main that you may see" in r.text
    assert not InputPort.objects.exists()


@pytest.mark.parametrize("who,status", [("member_of_other_team", 403), ("consumer", 403)])
def test_non_owners_cannot_declare_or_remove_inputs(client, mesh, who, status):
    user = mesh.other_owner if who == "member_of_other_team" else mesh.consumer
    inp = _consume(
        mesh.products[("orders", "published")], mesh.products[("users", "published")], mesh.owner
    )
    client.force_login(user)
    base = "/products/orders/published-product/lineage/inputs"
    assert client.get(f"{base}/add/").status_code == status
    assert client.post(f"{base}/add/", {"external_name": "x"}).status_code == status
    assert client.post(f"{base}/{inp.pk}/delete/").status_code == status
    assert InputPort.objects.count() == 1


def test_drafts_are_404_for_outsiders(client, mesh):
    client.force_login(mesh.consumer)
    base = "/products/orders/draft-product/lineage"
    for url in (
        f"{base}/graph.json",
        f"{base}/impact.json",
        f"{base}/impact/",
        f"{base}/inputs/add/",
    ):
        assert client.get(url).status_code == 404, url
    assert client.post(f"{base}/watch/", {"on": "1"}).status_code == 404


def test_owner_removes_an_input(client, mesh):
    inp = _consume(
        mesh.products[("orders", "published")], mesh.products[("users", "published")], mesh.owner
    )
    client.force_login(mesh.member)
    r = client.post(
        f"/products/orders/published-product/lineage/inputs/{inp.pk}/delete/", follow=True
    )
    assert "Input removed" in r.text and not InputPort.objects.exists()


def test_cte_and_iterative_walks_agree(mesh):
    ps = [make_product(mesh.orders, f"p{i}") for i in range(6)]
    for a, b in [(0, 1), (1, 2), (2, 3), (0, 4), (4, 3), (3, 5)]:
        _consume(ps[b], ps[a], mesh.owner)
    ids = [p.pk for p in ps]
    expected = {(ids[a], ids[b]) for a, b in [(0, 1), (1, 2), (0, 4), (4, 3)]}
    assert lineage.edges_within([ids[0]], depth=2, downstream=True) == expected
    assert (
        lineage._edges_iterative({ids[0]}, depth=2, near="source_product_id", far="product_id")
        == expected
    )
    up = lineage.edges_within([ids[5]], depth=1, downstream=False)
    assert up == {(ids[3], ids[5])}
    if connection.vendor == "postgresql":
        assert lineage._edges_iterative(
            {ids[5]}, depth=3, near="product_id", far="source_product_id"
        ) == lineage.edges_within([ids[5]], depth=3, downstream=False)
